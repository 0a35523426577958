//! kube-apiserver's RequestInfo, reduced to what request metrics label: the verb as kube reports
//! it, the built-in resource, subresource and scope. It reads the path with [`route`]'s own
//! parsing, so the two cannot disagree on what a path names, but looks up built-in resources
//! only: custom resources and unknown paths get no resource, so label sets stay bounded whatever
//! clients send. It allocates nothing and needs no lock, so a runtime can classify a request
//! before it waits for core.
//!
//! [`route`]: super::request::route

use core::hash::{Hash, Hasher};

use super::request::{Method, ParsedPath, parse_path};
use crate::resource::{self, ResourceType};

/// The request verb as kube-apiserver's metrics report it (`LIST` and `WATCH` are GETs of
/// collections, `APPLY` a server-side apply PATCH).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Verb {
    Get,
    List,
    Watch,
    Post,
    Put,
    Patch,
    Apply,
    Delete,
    DeleteCollection,
    Other,
}

impl Verb {
    /// The label value (`GET`, `LIST`, ..., `DELETECOLLECTION`, `OTHER`).
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::List => "LIST",
            Verb::Watch => "WATCH",
            Verb::Post => "POST",
            Verb::Put => "PUT",
            Verb::Patch => "PATCH",
            Verb::Apply => "APPLY",
            Verb::Delete => "DELETE",
            Verb::DeleteCollection => "DELETECOLLECTION",
            Verb::Other => "OTHER",
        }
    }

    /// Whether the request only reads: kube-apiserver's `request_kind` of the in-flight gauge.
    pub fn read_only(self) -> bool {
        matches!(self, Verb::Get | Verb::List | Verb::Watch)
    }
}

/// kube-apiserver's `scope` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Not a built-in resource path (discovery, health, custom resources, unknown paths).
    None,
    /// One object: named in the path, or created by a POST.
    Resource,
    /// A collection in one namespace.
    Namespace,
    /// A collection across the cluster.
    Cluster,
}

impl Scope {
    /// The label value; empty for [`Scope::None`].
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::None => "",
            Scope::Resource => "resource",
            Scope::Namespace => "namespace",
            Scope::Cluster => "cluster",
        }
    }
}

/// What the method, path, query and content type say about a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestInfo {
    /// The verb.
    pub verb: Verb,
    /// The built-in resource type the path names, in the group-version it names (a view's own
    /// row for `events.k8s.io/v1` events, say); `None` for anything else.
    pub resource: Option<&'static ResourceType<'static>>,
    /// The subresource: one the resource serves, `unknown` for any other, empty for none.
    pub subresource: &'static str,
    /// The scope.
    pub scope: Scope,
}

impl Hash for RequestInfo {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.verb.hash(state);
        // A built-in type is one row of `resource::builtin()`: its id and version tell it apart.
        self.resource.map(|r| (r.id, r.version)).hash(state);
        self.subresource.hash(state);
        self.scope.hash(state);
    }
}

impl RequestInfo {
    /// Classifies a request. `query` is the raw query string; `content_type` tells APPLY from
    /// PATCH.
    pub fn parse(method: &str, path: &str, query: &str, content_type: Option<&str>) -> Self {
        let method = Method::parse(method);
        let shape = match parse_path(path) {
            Some(ParsedPath::Api(api)) => api.resource_shape().map(|shape| (api, shape)),
            _ => None,
        };
        let Some((api, shape)) = shape else {
            return Self::non_resource(method);
        };
        let resource = resource::lookup(api.group, api.version, shape.plural)
            .filter(|rt| shape.fits(rt.namespaced));
        let named = shape.name.is_some();
        let verb = match method {
            Method::Get | Method::Head if shape.watch_prefix || watch_requested(query) => {
                Verb::Watch
            }
            Method::Get | Method::Head if named => Verb::Get,
            Method::Get | Method::Head => Verb::List,
            Method::Post => Verb::Post,
            Method::Put => Verb::Put,
            Method::Patch
                if content_type.is_some_and(|c| c.starts_with("application/apply-patch")) =>
            {
                Verb::Apply
            }
            Method::Patch => Verb::Patch,
            Method::Delete if named => Verb::Delete,
            Method::Delete => Verb::DeleteCollection,
            Method::Options | Method::Other => Verb::Other,
        };
        let subresource = match (resource, shape.subresource) {
            (Some(rt), Some(sub)) => rt
                .subresources
                .iter()
                .find(|s| **s == sub)
                .copied()
                .unwrap_or("unknown"),
            _ => "",
        };
        // A create names one object too (the one in its body): kube-apiserver's installer gives
        // POST routes the `resource` scope (kubernetes/kubernetes#110009 did the same for
        // custom resources).
        let scope = match resource {
            None => Scope::None,
            Some(_) if named || method == Method::Post => Scope::Resource,
            Some(_) if shape.namespace.is_some() => Scope::Namespace,
            Some(_) => Scope::Cluster,
        };
        Self {
            verb,
            resource,
            subresource,
            scope,
        }
    }

    /// A request for no resource path: the method alone says the verb.
    fn non_resource(method: Method) -> Self {
        let verb = match method {
            Method::Get | Method::Head => Verb::Get,
            Method::Post => Verb::Post,
            Method::Put => Verb::Put,
            Method::Patch => Verb::Patch,
            Method::Delete => Verb::Delete,
            Method::Options | Method::Other => Verb::Other,
        };
        Self {
            verb,
            resource: None,
            subresource: "",
            scope: Scope::None,
        }
    }
}

/// Whether the first `watch` parameter is true, as core reads it ([`super::request::Query::flag`]).
fn watch_requested(query: &str) -> bool {
    query
        .split('&')
        .find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (key == "watch").then_some(value)
        })
        .is_some_and(|value| matches!(value, "true" | "1"))
}

#[cfg(test)]
mod tests {
    use alloc::format;
    use alloc::string::String;

    use serde_json::json;

    use super::*;
    use crate::api::request::{Route, route};

    /// `verb resource subresource scope` of a request, `-` for an empty label.
    fn describe(info: RequestInfo) -> String {
        let dash = |s: &'static str| if s.is_empty() { "-" } else { s };
        format!(
            "{} {} {} {}",
            info.verb.as_str(),
            dash(info.resource.map_or("", |r| r.plural)),
            dash(info.subresource),
            dash(info.scope.as_str())
        )
    }

    #[test]
    fn classifies_like_kube_request_info() {
        // kube-apiserver's RequestInfo: a GET of a collection is LIST, `watch=true` (or the
        // legacy /watch/ prefix) is WATCH, a DELETE of a collection is DELETECOLLECTION, a PATCH
        // with the apply content type is APPLY; scope is resource/namespace/cluster.
        let cases = [
            (
                "GET /api/v1/namespaces/default/pods/web",
                "",
                "GET pods - resource",
            ),
            (
                "GET /api/v1/namespaces/default/pods",
                "limit=500",
                "LIST pods - namespace",
            ),
            ("GET /api/v1/pods", "", "LIST pods - cluster"),
            (
                "GET /api/v1/pods",
                "watch=true&resourceVersion=5",
                "WATCH pods - cluster",
            ),
            ("GET /api/v1/pods", "watch=1", "WATCH pods - cluster"),
            ("GET /api/v1/pods", "watch=false", "LIST pods - cluster"),
            (
                "GET /api/v1/watch/namespaces/default/pods",
                "",
                "WATCH pods - namespace",
            ),
            ("GET /api/v1/namespaces", "", "LIST namespaces - cluster"),
            (
                "GET /api/v1/namespaces/kube-system",
                "",
                "GET namespaces - resource",
            ),
            (
                "PUT /api/v1/namespaces/x/finalize",
                "",
                "PUT namespaces finalize resource",
            ),
            (
                "PATCH /api/v1/nodes/n1/status",
                "",
                "PATCH nodes status resource",
            ),
            (
                "POST /api/v1/namespaces/d/pods/web/binding",
                "",
                "POST pods binding resource",
            ),
            (
                "DELETE /api/v1/namespaces/d/configmaps",
                "",
                "DELETECOLLECTION configmaps - namespace",
            ),
            (
                "DELETE /api/v1/namespaces/d/configmaps/c",
                "",
                "DELETE configmaps - resource",
            ),
            (
                "GET /apis/apps/v1/namespaces/d/deployments",
                "",
                "LIST deployments - namespace",
            ),
            // Deployments live in apps, not the core group: no resource label.
            ("GET /api/v1/deployments", "", "LIST - - -"),
            (
                "GET /api/v1/namespaces/d/pods/web/exec",
                "",
                "GET pods unknown resource",
            ),
            ("GET /api", "", "GET - - -"),
            ("GET /apis/apps/v1", "", "GET - - -"),
            ("GET /healthz", "", "GET - - -"),
            ("BREW /metrics", "", "OTHER - - -"),
            // The first `watch` decides, as core reads the query.
            (
                "GET /api/v1/pods",
                "watch=false&watch=true",
                "LIST pods - cluster",
            ),
            (
                "HEAD /api/v1/namespaces/d/pods/web",
                "",
                "GET pods - resource",
            ),
            ("OPTIONS /api/v1/pods", "", "OTHER pods - cluster"),
            ("DELETE /healthz", "", "DELETE - - -"),
            // A create is scoped to the one object it creates.
            ("POST /api/v1/namespaces/d/pods", "", "POST pods - resource"),
            ("POST /api/v1/namespaces", "", "POST namespaces - resource"),
            ("POST /api/v1/nodes", "", "POST nodes - resource"),
        ];
        for (request, query, expected) in cases {
            let (method, path) = request.split_once(' ').unwrap();
            assert_eq!(
                describe(RequestInfo::parse(method, path, query, None)),
                expected,
                "{request}?{query}"
            );
        }
        let apply = RequestInfo::parse(
            "PATCH",
            "/apis/apps/v1/namespaces/d/deployments/web",
            "",
            Some("application/apply-patch+yaml"),
        );
        assert_eq!(describe(apply), "APPLY deployments - resource");
        let merge = RequestInfo::parse(
            "PATCH",
            "/apis/apps/v1/namespaces/d/deployments/web",
            "",
            Some("application/merge-patch+json"),
        );
        assert_eq!(describe(merge), "PATCH deployments - resource");
        assert!(Verb::Watch.read_only() && !Verb::Apply.read_only());
    }

    /// A registry serving the namespaced custom resource `widgets.example.com/v1`.
    fn registry_with_widgets() -> crate::crd::Registry {
        let mut crds = crate::crd::Registry::new(&crate::Config::default());
        let crd = json!({"apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object",
                        "x-kubernetes-preserve-unknown-fields": true}}}]},
            "status": {"conditions": [{"type": "Established", "status": "True"},
                {"type": "NamesAccepted", "status": "True"}]}});
        let definition = crds.prepare(&crd, 1).unwrap();
        crds.install(definition);
        crds
    }

    /// The labels `route` implies for a path: the built-in resource type, subresource and
    /// scope; `None` for anything else.
    fn routed(
        path: &str,
        crds: &crate::crd::Registry,
    ) -> Option<(&'static ResourceType<'static>, &'static str, Scope)> {
        let Some(Route::Resource(p)) = route(path, crds) else {
            return None;
        };
        let crate::resource::Resource::Builtin(rt) = p.resource else {
            return None;
        };
        let subresource = match p.subresource {
            None => "",
            Some(sub) => rt
                .subresources
                .iter()
                .find(|s| **s == sub)
                .copied()
                .unwrap_or("unknown"),
        };
        let scope = match (p.namespace, p.name) {
            (_, Some(_)) => Scope::Resource,
            (Some(_), None) => Scope::Namespace,
            (None, None) => Scope::Cluster,
        };
        Some((rt, subresource, scope))
    }

    #[test]
    fn request_info_names_what_route_routes() {
        let crds = registry_with_widgets();
        // (path, what route answers, the GET's labels: `verb group/version plural sub scope`).
        let cases = [
            (
                "/api/v1/namespaces/default/pods/web",
                "resource",
                "GET /v1 pods - resource",
            ),
            (
                "/api/v1/namespaces/default/pods",
                "resource",
                "LIST /v1 pods - namespace",
            ),
            ("/api/v1/pods", "resource", "LIST /v1 pods - cluster"),
            ("/api/v1/nodes/n1", "resource", "GET /v1 nodes - resource"),
            ("/api/v1/nodes", "resource", "LIST /v1 nodes - cluster"),
            (
                "/api/v1/nodes/n1/status",
                "resource",
                "GET /v1 nodes status resource",
            ),
            (
                "/api/v1/namespaces",
                "resource",
                "LIST /v1 namespaces - cluster",
            ),
            (
                "/api/v1/namespaces/kube-system",
                "resource",
                "GET /v1 namespaces - resource",
            ),
            (
                "/api/v1/namespaces/x/status",
                "resource",
                "GET /v1 namespaces status resource",
            ),
            (
                "/api/v1/namespaces/x/finalize",
                "resource",
                "GET /v1 namespaces finalize resource",
            ),
            // A namespace named `status` or `finalize` holds objects like any other.
            (
                "/api/v1/namespaces/status/pods",
                "resource",
                "LIST /v1 pods - namespace",
            ),
            (
                "/api/v1/watch/namespaces/default/pods",
                "resource",
                "WATCH /v1 pods - namespace",
            ),
            ("/api/v1/watch/pods", "resource", "WATCH /v1 pods - cluster"),
            (
                "/api/v1/watch/namespaces/x",
                "resource",
                "WATCH /v1 namespaces - resource",
            ),
            (
                "/api/v1/namespaces/d/pods/web/status",
                "resource",
                "GET /v1 pods status resource",
            ),
            (
                "/api/v1/namespaces/d/pods/web/exec",
                "resource",
                "GET /v1 pods unknown resource",
            ),
            (
                "/apis/apps/v1/namespaces/d/deployments/web/scale",
                "resource",
                "GET apps/v1 deployments scale resource",
            ),
            (
                "/apis/rbac.authorization.k8s.io/v1/clusterroles/admin",
                "resource",
                "GET rbac.authorization.k8s.io/v1 clusterroles - resource",
            ),
            // A second group-version of a built-in kind is labelled with its own.
            (
                "/apis/events.k8s.io/v1/namespaces/d/events",
                "resource",
                "LIST events.k8s.io/v1 events - namespace",
            ),
            (
                "/apis/autoscaling/v1/namespaces/d/horizontalpodautoscalers/h",
                "resource",
                "GET autoscaling/v1 horizontalpodautoscalers - resource",
            ),
            (
                "/apis/autoscaling/v2/namespaces/d/horizontalpodautoscalers/h/status",
                "resource",
                "GET autoscaling/v2 horizontalpodautoscalers status resource",
            ),
            // A trailing slash is ignored.
            (
                "/api/v1/namespaces/default/pods/",
                "resource",
                "LIST /v1 pods - namespace",
            ),
            (
                "/api/v1/namespaces/",
                "resource",
                "LIST /v1 namespaces - cluster",
            ),
            // Custom resources are routed but get no resource label.
            (
                "/apis/example.com/v1/namespaces/d/widgets",
                "custom",
                "LIST - - - -",
            ),
            (
                "/apis/example.com/v1/namespaces/d/widgets/w/status",
                "custom",
                "GET - - - -",
            ),
            // Not served (404): unknown plurals, a plural in the wrong group, version or scope,
            // too many segments, empty segments.
            ("/api/v1/widgets", "none", "LIST - - - -"),
            ("/api/v1/deployments", "none", "LIST - - - -"),
            ("/apis/apps/v1beta1/deployments", "none", "LIST - - - -"),
            ("/api/v1beta1/pods", "none", "GET - - - -"),
            ("/api/v1/namespaces/d/widgets", "none", "LIST - - - -"),
            ("/api/v1/namespaces/d/nodes", "none", "LIST - - - -"),
            ("/api/v1/namespaces/d/nodes/n1", "none", "GET - - - -"),
            ("/api/v1/pods/x", "none", "GET - - - -"),
            (
                "/apis/example.com/v2/namespaces/d/widgets",
                "none",
                "LIST - - - -",
            ),
            (
                "/api/v1/namespaces/d/pods/x/status/more",
                "none",
                "GET - - - -",
            ),
            ("/api/v1/namespaces/x/status/more", "none", "GET - - - -"),
            ("/api/v1//pods", "none", "GET - - - -"),
            ("/api/v1/watch", "none", "GET - - - -"),
            // Paths that name no resource type.
            ("/api/v1", "other", "GET - - - -"),
            ("/apis/apps", "other", "GET - - - -"),
            ("/api/v1/heartbeat", "other", "LIST - - - -"),
            (
                "/apis/apiregistration.k8s.io/v1/apiservices",
                "other",
                "LIST - - - -",
            ),
            ("/readyz/ping", "other", "GET - - - -"),
            ("/nope", "none", "GET - - - -"),
        ];
        for (path, routes_to, expected) in cases {
            let routed_to = match route(path, &crds) {
                Some(Route::Resource(p)) if p.resource.rt().custom.is_some() => "custom",
                Some(Route::Resource(_)) => "resource",
                Some(_) => "other",
                None => "none",
            };
            assert_eq!(routed_to, routes_to, "{path}");
            let info = RequestInfo::parse("GET", path, "", None);
            let labels = info.resource.map(|r| (r, info.subresource, info.scope));
            assert_eq!(labels, routed(path, &crds), "{path}");
            if labels.is_none() {
                assert_eq!((info.subresource, info.scope), ("", Scope::None), "{path}");
            }
            let (group_version, plural) = info.resource.map_or(("-".into(), "-"), |r| {
                (format!("{}/{}", r.group, r.version), r.plural)
            });
            let dash = |s: &'static str| if s.is_empty() { "-" } else { s };
            assert_eq!(
                format!(
                    "{} {group_version} {plural} {} {}",
                    info.verb.as_str(),
                    dash(info.subresource),
                    dash(info.scope.as_str())
                ),
                expected,
                "{path}"
            );
        }
    }

    #[test]
    fn request_info_hash_follows_equality() {
        use core::hash::BuildHasher;
        let hasher = hashbrown::DefaultHashBuilder::default();
        let a = RequestInfo::parse("GET", "/apis/events.k8s.io/v1/events", "", None);
        let b = RequestInfo::parse("GET", "/apis/events.k8s.io/v1/events", "", None);
        let core_events = RequestInfo::parse("GET", "/api/v1/events", "", None);
        assert_eq!(a, b);
        assert_eq!(hasher.hash_one(a), hasher.hash_one(b));
        // One stored kind, two group-versions: two label sets.
        assert_ne!(a, core_events);
        assert_eq!(a.resource.map(|r| r.id), core_events.resource.map(|r| r.id));
    }
}
