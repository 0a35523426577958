//! Access reviews: `SelfSubjectAccessReview` and `SelfSubjectRulesReview`
//! (`authorization.k8s.io/v1`, `kubectl auth can-i`) and `SelfSubjectReview`
//! (`authentication.k8s.io/v1`, `kubectl auth whoami`). Verdicts come from the checks that guard
//! every request — [`crate::authz::authorize`] itself, given the request the attributes
//! describe, and the public paths from the router — so a review cannot disagree with what the
//! server then does. Nothing is stored.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde_json::{Map, Value, json};

use super::Cluster;
use super::request::{self, ApiRequest, ApiResponse, Method, Query, ResourcePath, Route};
use crate::auth::Identity;
use crate::error::Cause;
use crate::resource::{self, ResourceType};
use crate::token::NodeIdentity;
use crate::{Error, UnixTime, json as j};

/// One review kind: served only as `create` on its cluster-scoped collection.
#[derive(Debug, PartialEq, Eq)]
pub struct Review {
    /// API group.
    pub group: &'static str,
    /// API version.
    pub version: &'static str,
    /// Plural in the path.
    pub plural: &'static str,
    /// Singular name for discovery.
    pub singular: &'static str,
    /// Kind of the body and the answer.
    pub kind: &'static str,
    /// Any caller may ask it, anonymous ones included: it reviews the caller itself (the
    /// self-subject reviews). Otherwise only a caller kube's RBAC lets `create` it may, which
    /// here is the administrator (see [`may_create`]).
    pub about_the_caller: bool,
}

impl Review {
    /// `group/version`.
    pub fn api_version(&self) -> String {
        alloc::format!("{}/{}", self.group, self.version)
    }
}

/// The reviews served, by group then plural (discovery's order).
pub const REVIEWS: &[Review] = &[
    Review {
        group: "authentication.k8s.io",
        version: "v1",
        plural: "selfsubjectreviews",
        singular: "selfsubjectreview",
        kind: "SelfSubjectReview",
        about_the_caller: true,
    },
    Review {
        group: "authentication.k8s.io",
        version: "v1",
        plural: "tokenreviews",
        singular: "tokenreview",
        kind: "TokenReview",
        about_the_caller: false,
    },
    Review {
        group: "authorization.k8s.io",
        version: "v1",
        plural: "selfsubjectaccessreviews",
        singular: "selfsubjectaccessreview",
        kind: "SelfSubjectAccessReview",
        about_the_caller: true,
    },
    Review {
        group: "authorization.k8s.io",
        version: "v1",
        plural: "selfsubjectrulesreviews",
        singular: "selfsubjectrulesreview",
        kind: "SelfSubjectRulesReview",
        about_the_caller: true,
    },
];

/// The review served at `/apis/{group}/{version}/{plural}`.
pub fn lookup(group: &str, version: &str, plural: &str) -> Option<&'static Review> {
    REVIEWS
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// Non-resource URLs a rules review reports, each with a path that stands for it.
const NON_RESOURCE_URLS: &[(&str, &str)] = &[
    ("/api", "/api"),
    ("/api/*", "/api/v1"),
    ("/apis", "/apis"),
    ("/apis/*", "/apis/apps/v1"),
    ("/attestation", "/attestation"),
    ("/attestation/*", "/attestation/config"),
    ("/healthz", "/healthz"),
    ("/healthz/*", "/healthz/ping"),
    ("/livez", "/livez"),
    ("/livez/*", "/livez/ping"),
    (
        "/.well-known/openid-configuration",
        "/.well-known/openid-configuration",
    ),
    (
        "/.well-known/openid-configuration/",
        "/.well-known/openid-configuration/",
    ),
    ("/openapi/*", "/openapi/v3"),
    ("/openid/v1/jwks", "/openid/v1/jwks"),
    ("/openid/v1/jwks/", "/openid/v1/jwks/"),
    ("/readyz", "/readyz"),
    ("/readyz/*", "/readyz/ping"),
    ("/version", "/version"),
];

/// Whether `identity` may `verb` the non-resource `path`: what dispatch (and, for
/// `/attestation`, the runtime) lets each caller read.
pub(crate) fn non_resource_allowed(
    identity: &Identity,
    verb: &str,
    path: &str,
    crds: &crate::crd::Registry,
) -> bool {
    if matches!(identity, Identity::Admin | Identity::User(_)) {
        return true;
    }
    if !matches!(verb, "get" | "head") {
        return false;
    }
    let attestation = path == "/attestation" || path.starts_with("/attestation/");
    match request::route(path, crds) {
        Some(Route::Health(_) | Route::Version) => true,
        _ if attestation => true,
        _ if *identity == Identity::Anonymous => false,
        Some(
            Route::CoreApiVersions
            | Route::ApiGroupList
            | Route::ApiGroup(_)
            | Route::ResourceList(..)
            | Route::OpenApiV3Index
            | Route::OpenApiV3(_)
            | Route::OpenApiV2,
        ) => true,
        Some(Route::OpenId(_)) => may_read_issuer_documents(identity),
        _ => false,
    }
}

/// Who may read the issuer's OIDC documents: the administrator and certificate users, and
/// ServiceAccounts (kube's default `system:service-account-issuer-discovery` binding is for the
/// group `system:serviceaccounts`; nodes and the relay have no such binding).
pub(crate) fn may_read_issuer_documents(identity: &Identity) -> bool {
    matches!(
        identity,
        Identity::Admin | Identity::User(_) | Identity::ServiceAccount(_)
    )
}

/// A request's verb as the HTTP request that would carry it (method, watch).
fn request_of(verb: &str) -> Option<(Method, bool)> {
    Some(match verb {
        "get" | "list" => (Method::Get, false),
        "watch" => (Method::Get, true),
        "create" => (Method::Post, false),
        "update" => (Method::Put, false),
        "patch" => (Method::Patch, false),
        "delete" | "deletecollection" => (Method::Delete, false),
        _ => return None,
    })
}

/// `spec.resourceAttributes` of an access review.
struct ResourceAttributes<'a> {
    namespace: &'a str,
    verb: &'a str,
    group: &'a str,
    version: &'a str,
    resource: &'a str,
    subresource: &'a str,
    name: &'a str,
    field_selector: Option<String>,
}

impl<'a> ResourceAttributes<'a> {
    fn from(value: &'a Value) -> Self {
        let text = |key: &str| value.get(key).and_then(Value::as_str).unwrap_or("");
        Self {
            namespace: text("namespace"),
            verb: text("verb"),
            group: text("group"),
            version: text("version"),
            resource: text("resource"),
            subresource: text("subresource"),
            name: text("name"),
            field_selector: value.get("fieldSelector").and_then(field_selector),
        }
    }
}

/// A `FieldSelectorAttributes` as the query-string selector a request would carry.
fn field_selector(value: &Value) -> Option<String> {
    if let Some(raw) = value
        .get("rawSelector")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        return Some(raw.into());
    }
    let terms: Vec<String> = value
        .get("requirements")
        .and_then(Value::as_array)?
        .iter()
        .filter_map(|r| {
            let key = r.get("key")?.as_str()?;
            let values = r.get("values")?.as_array()?;
            match (r.get("operator")?.as_str()?, values.as_slice()) {
                ("In", [one]) => Some(alloc::format!("{key}={}", one.as_str()?)),
                ("NotIn", [one]) => Some(alloc::format!("{key}!={}", one.as_str()?)),
                _ => None,
            }
        })
        .collect();
    (!terms.is_empty()).then(|| terms.join(","))
}

/// Served resource types matching an access review's group, version (any when empty) and
/// resource.
fn resource_type(
    group: &str,
    version: &str,
    plural: &str,
) -> Option<&'static ResourceType<'static>> {
    if version.is_empty() {
        resource::builtin().find(|r| r.group == group && r.plural == plural)
    } else {
        resource::lookup(group, version, plural)
    }
}

impl Cluster {
    /// `POST` of a review: the answer carries the caller's user or its verdict; nothing is kept.
    /// Any caller may ask, anonymous ones included, as each is told only about itself.
    pub(super) fn handle_review(
        &mut self,
        now: UnixTime,
        req: &ApiRequest<'_>,
        identity: &Identity,
        review: &'static Review,
    ) -> Result<ApiResponse, Error> {
        if req.method != Method::Post {
            return Err(Error::MethodNotAllowed(alloc::format!(
                "the server does not allow this method on the requested resource ({})",
                req.path
            )));
        }
        // A review has no Table conversion: kube's output negotiation refuses `as=Table` before
        // the body is read (other Accept values are answered with JSON, as before).
        if matches!(
            request::negotiate(req.accept),
            Ok(request::Representation::Table)
        ) {
            return Err(Error::NotAcceptable(
                "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf".into(),
            ));
        }
        if req.body_too_large {
            return Err(Error::TooLarge(alloc::format!(
                "the request body is larger than the limit of {} bytes",
                self.config.max_body_bytes
            )));
        }
        Query::parse(req.query)?.dry_run("CreateOptions")?;
        let api_version = review.api_version();
        let mut body = self.decode_body(req, &api_version, review.kind)?;
        let Some(map) = body.as_object_mut() else {
            return Err(Error::BadRequest(alloc::format!(
                "the body of a {} must be a JSON object",
                review.kind
            )));
        };
        match map.get("apiVersion").and_then(Value::as_str) {
            None | Some("") => {}
            Some(v) if v == api_version => {}
            Some(v) => {
                return Err(Error::BadRequest(alloc::format!(
                    "the API version in the data ({v}) does not match the expected API version ({api_version})"
                )));
            }
        }
        match map.get("kind").and_then(Value::as_str) {
            None | Some("") => {}
            Some(k) if k == review.kind => {}
            Some(k) => {
                return Err(Error::BadRequest(alloc::format!(
                    "{k} in version \"{v}\" cannot be handled as a {kind}: the kind in the data ({k}) does not match the expected kind ({kind})",
                    v = review.version,
                    kind = review.kind,
                )));
            }
        }
        let spec = map.get("spec").cloned().unwrap_or(Value::Null);
        let (metadata, status) = match review.kind {
            "SelfSubjectReview" => (
                json!({"creationTimestamp": now.rfc3339()}),
                json!({"userInfo": identity.user_info()}),
            ),
            "TokenReview" => (
                json!({"creationTimestamp": null}),
                self.token_review(now, &spec)?,
            ),
            "SelfSubjectAccessReview" => {
                check_empty_metadata(review, map.get("metadata"))?;
                (
                    json!({"creationTimestamp": null}),
                    self.access_review(identity, review, &spec)?,
                )
            }
            _ => (
                json!({"creationTimestamp": null}),
                self.rules_review(identity, &spec)?,
            ),
        };
        let mut answer = Map::new();
        answer.insert("kind".into(), review.kind.into());
        answer.insert("apiVersion".into(), api_version.into());
        answer.insert("metadata".into(), metadata);
        if review.kind != "SelfSubjectReview" {
            answer.insert("spec".into(), spec);
        }
        answer.insert("status".into(), status);
        Ok(ApiResponse::json(201, j::to_vec(&Value::Object(answer))))
    }

    /// A `SelfSubjectAccessReview`'s status: `allowed`, and the refusal's reason.
    fn access_review(
        &self,
        identity: &Identity,
        review: &Review,
        spec: &Value,
    ) -> Result<Value, Error> {
        let present = |key: &str| spec.get(key).filter(|v| !v.is_null());
        let (resource, non_resource) = (
            present("resourceAttributes"),
            present("nonResourceAttributes"),
        );
        let verdict = match (resource, non_resource) {
            (Some(attributes), None) => {
                self.resource_verdict(identity, &ResourceAttributes::from(attributes))
            }
            (None, Some(attributes)) => {
                let text = |key: &str| attributes.get(key).and_then(Value::as_str).unwrap_or("");
                if non_resource_allowed(identity, text("verb"), text("path"), &self.crds) {
                    Ok(())
                } else {
                    Err(String::new())
                }
            }
            (Some(_), Some(attributes)) => {
                return Err(invalid_review(
                    review,
                    "spec.nonResourceAttributes",
                    &String::from_utf8_lossy(&j::to_vec(attributes)),
                    "cannot be specified in combination with resourceAttributes",
                ));
            }
            (None, None) => {
                return Err(invalid_review(
                    review,
                    "spec.resourceAttributes",
                    "null",
                    "exactly one of nonResourceAttributes or resourceAttributes must be specified",
                ));
            }
        };
        Ok(match verdict {
            Ok(()) => json!({"allowed": true}),
            Err(reason) if reason.is_empty() => json!({"allowed": false}),
            Err(reason) => json!({"allowed": false, "reason": reason}),
        })
    }

    /// Whether `identity` may make the request the attributes describe; the refusal's reason.
    fn resource_verdict(
        &self,
        identity: &Identity,
        attributes: &ResourceAttributes<'_>,
    ) -> Result<(), String> {
        match identity {
            Identity::Admin | Identity::User(_) => return Ok(()),
            // Dispatch answers an anonymous resource request 401 before authorizing it; RBAC,
            // which decides for ServiceAccounts in kube, gives no reason when it denies.
            Identity::Anonymous | Identity::ServiceAccount(_) => return Err(String::new()),
            _ => {}
        }
        let Some(rt) = resource_type(attributes.group, attributes.version, attributes.resource)
        else {
            return Err(alloc::format!(
                "the server does not serve the resource \"{}\" in API group \"{}\"",
                attributes.resource,
                attributes.group
            ));
        };
        let Some((method, watch)) = request_of(attributes.verb) else {
            return Err(alloc::format!(
                "no request of the verb \"{}\" is served to {}",
                attributes.verb,
                identity.username()
            ));
        };
        let named = matches!(
            attributes.verb,
            "get" | "watch" | "update" | "patch" | "delete"
        );
        let path = ResourcePath {
            resource: resource::Resource::Builtin(rt),
            namespace: Some(attributes.namespace).filter(|ns| rt.namespaced && !ns.is_empty()),
            name: Some(attributes.name).filter(|n| named && !n.is_empty()),
            subresource: Some(attributes.subresource).filter(|s| !s.is_empty()),
            watch_prefix: false,
        };
        self.authorize_request(
            identity,
            method,
            &path,
            watch,
            attributes.field_selector.as_deref(),
        )
        .map_err(|e| e.message())
    }

    /// The authorizer's decision on the request dispatch would see: `method` on `path` with the
    /// query a client sends for `watch` and `field_selector`.
    fn authorize_request(
        &self,
        identity: &Identity,
        method: Method,
        path: &ResourcePath<'_>,
        watch: bool,
        field_selector: Option<&str>,
    ) -> Result<(), Error> {
        crate::authz::authorize(
            identity,
            || {
                Ok(super::admit::attributes(
                    method,
                    path,
                    watch,
                    field_selector,
                ))
            },
            &self.store,
            &self.references,
        )
    }

    /// A `SelfSubjectRulesReview`'s status for `spec.namespace`.
    fn rules_review(&self, identity: &Identity, spec: &Value) -> Result<Value, Error> {
        let namespace = spec.get("namespace").and_then(Value::as_str).unwrap_or("");
        if namespace.is_empty() {
            return Err(Error::BadRequest("no namespace on request".into()));
        }
        let non_resource_rules = if matches!(identity, Identity::Admin | Identity::User(_)) {
            alloc::vec![json!({"verbs": ["*"], "nonResourceURLs": ["*"]})]
        } else {
            let urls: Vec<&str> = NON_RESOURCE_URLS
                .iter()
                .filter(|(_, sample)| non_resource_allowed(identity, "get", sample, &self.crds))
                .map(|(url, _)| *url)
                .collect();
            alloc::vec![json!({"verbs": ["get"], "nonResourceURLs": urls})]
        };
        let (resource_rules, incomplete) = match identity {
            Identity::Admin | Identity::User(_) => (
                alloc::vec![json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]})],
                false,
            ),
            Identity::Node(node) => self.node_rules(identity, node, namespace),
            // kube's `system:basic-user`, which every authenticated caller is bound to.
            Identity::ServiceAccount(_) => (
                alloc::vec![
                    json!({"verbs": ["create"], "apiGroups": ["authorization.k8s.io"],
                        "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]}),
                    json!({"verbs": ["create"], "apiGroups": ["authentication.k8s.io"],
                        "resources": ["selfsubjectreviews"]}),
                ],
                false,
            ),
            // What the component reads, beside `system:basic-user`'s reviews.
            Identity::Component(component) => (
                component
                    .readable()
                    .iter()
                    .map(|(group, plural)| {
                        json!({"verbs": ["get", "list", "watch"], "apiGroups": [group],
                            "resources": [plural]})
                    })
                    .chain([
                        json!({"verbs": ["create"], "apiGroups": ["authorization.k8s.io"],
                            "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]}),
                        json!({"verbs": ["create"], "apiGroups": ["authentication.k8s.io"],
                            "resources": ["selfsubjectreviews"]}),
                    ])
                    .collect(),
                false,
            ),
            _ => (Vec::new(), false),
        };
        let mut status = json!({
            "resourceRules": resource_rules,
            "nonResourceRules": non_resource_rules,
            "incomplete": incomplete,
        });
        if incomplete && let Some(map) = status.as_object_mut() {
            map.insert(
                "evaluationError".into(),
                "a node may also list and watch the pods bound to it with the field selector spec.nodeName=<node>, which rules cannot express; ask a SelfSubjectAccessReview".into(),
            );
        }
        Ok(status)
    }

    /// A node's rules in `namespace`, found by asking [`crate::authz::authorize`] about every
    /// served resource and subresource, verb, and the names that can matter (its own, and the
    /// pods bound to it). `true` when some access needs a field selector rules cannot express.
    fn node_rules(
        &self,
        identity: &Identity,
        node: &NodeIdentity,
        namespace: &str,
    ) -> (Vec<Value>, bool) {
        const COLLECTION: &[&str] = &["create", "list", "watch", "deletecollection"];
        const NAMED: &[&str] = &["get", "watch", "update", "patch", "delete"];
        let me = node.node_id.as_str();
        let own_selector = alloc::format!("spec.nodeName={me}");
        // (group, resource, names) -> verbs
        let mut rules: BTreeMap<(&str, String, Vec<String>), BTreeSet<&str>> = BTreeMap::new();
        let mut incomplete = false;
        let pods: Vec<String> = self
            .store
            .pods_on(me)
            .filter(|(k, _)| &*k.namespace == namespace)
            .map(|(k, _)| k.name.to_string())
            .collect();
        for rt in resource::builtin() {
            let ns = rt.namespaced.then_some(namespace);
            let subs = core::iter::once(None).chain(rt.subresources.iter().map(|s| Some(*s)));
            for sub in subs {
                let resource = match sub {
                    Some(sub) => alloc::format!("{}/{sub}", rt.plural),
                    None => rt.plural.to_string(),
                };
                let path = |name: Option<&'static str>| ResourcePath {
                    resource: resource::Resource::Builtin(rt),
                    namespace: ns,
                    name,
                    subresource: sub,
                    watch_prefix: false,
                };
                let allows = |verb: &str, path: &ResourcePath<'_>, selector: Option<&str>| {
                    request_of(verb).is_some_and(|(method, watch)| {
                        self.authorize_request(identity, method, path, watch, selector)
                            .is_ok()
                    })
                };
                for verb in COLLECTION {
                    if allows(verb, &path(None), None) {
                        rules
                            .entry((rt.group, resource.clone(), Vec::new()))
                            .or_default()
                            .insert(verb);
                    } else if allows(verb, &path(None), Some(&own_selector)) {
                        incomplete = true;
                    }
                }
                let mut names: Vec<&str> = alloc::vec![me];
                if rt.id == resource::ResourceId::Pods {
                    names.extend(pods.iter().map(String::as_str));
                }
                for name in names {
                    let named = ResourcePath {
                        name: Some(name),
                        ..path(None)
                    };
                    for verb in NAMED {
                        if allows(verb, &named, None) {
                            rules
                                .entry((rt.group, resource.clone(), alloc::vec![name.into()]))
                                .or_default()
                                .insert(verb);
                        }
                    }
                }
            }
        }
        let rules = rules
            .into_iter()
            .map(|((group, resource, names), verbs)| {
                let mut rule = json!({
                    "verbs": verbs.into_iter().collect::<Vec<_>>(),
                    "apiGroups": [group],
                    "resources": [resource],
                });
                if !names.is_empty()
                    && let Some(map) = rule.as_object_mut()
                {
                    map.insert("resourceNames".into(), Value::from(names));
                }
                rule
            })
            .collect();
        (rules, incomplete)
    }
}

/// kube's `metadata: must be empty` check of an access review.
fn check_empty_metadata(review: &Review, metadata: Option<&Value>) -> Result<(), Error> {
    let Some(Value::Object(meta)) = metadata else {
        return Ok(());
    };
    let empty = meta.iter().all(|(k, v)| match k.as_str() {
        "creationTimestamp" => v.is_null(),
        "managedFields" => true,
        _ => v.is_null() || v.as_str() == Some("") || v.as_object().is_some_and(Map::is_empty),
    });
    if empty {
        return Ok(());
    }
    Err(invalid_review(
        review,
        "metadata",
        &String::from_utf8_lossy(&j::to_vec(&Value::Object(meta.clone()))),
        "must be empty",
    ))
}

fn invalid_review(review: &Review, field: &str, value: &str, detail: &str) -> Error {
    Error::Invalid {
        kind: alloc::format!("{}.{}", review.kind, review.group),
        name: String::new(),
        causes: alloc::vec![Cause {
            reason: "FieldValueInvalid",
            message: alloc::format!("Invalid value: {value}: {detail}"),
            field: field.into(),
        }],
    }
}

/// Whether `identity` may create `review`: anyone a review about the caller itself; the
/// administrator any other (kube: RBAC `create`, which `system:masters` holds), every other
/// caller gets kube's 403.
pub(super) fn may_create(identity: &Identity, review: &Review) -> Result<(), Error> {
    if review.about_the_caller || matches!(identity, Identity::Admin | Identity::User(_)) {
        return Ok(());
    }
    Err(crate::authz::forbidden_error(
        &alloc::format!("{}.{}", review.plural, review.group),
        "",
        &alloc::format!(
            "User \"{}\" cannot create resource \"{}\" in API group \"{}\" at the cluster scope",
            identity.username(),
            review.plural,
            review.group
        ),
    ))
}

/// The kind kube's bearer-token authenticator gives when no authenticator takes a token.
const INVALID_BEARER_TOKEN: &str = "invalid bearer token";

impl Cluster {
    /// `TokenReview` (kube's tokenreview REST `Create`): the token as this server would
    /// authenticate it in an `Authorization` header — a ServiceAccount token (signature, times,
    /// audiences, account and bound object), the admin token, the relay credential, a Seal
    /// token (signature, lifetime, stake) — for the requested audiences (the server's own when
    /// none). A token refused is `authenticated: false` with the reason, never a 401.
    fn token_review(&mut self, now: UnixTime, spec: &Value) -> Result<Value, Error> {
        let token = spec.get("token").and_then(Value::as_str).unwrap_or("");
        if token.is_empty() {
            return Err(Error::BadRequest(
                "token is required for TokenReview in authentication".into(),
            ));
        }
        let wanted: Option<Vec<&str>> = match spec.get("audiences").and_then(Value::as_array) {
            Some(list) if !list.is_empty() => Some(list.iter().filter_map(Value::as_str).collect()),
            _ => None,
        };
        let refused = |error: String| json!({"user": {}, "error": error});
        match self.authenticate_service_account(now, token, wanted.as_deref()) {
            Ok(None) => {}
            Ok(Some((user, audiences))) => {
                let identity = Identity::ServiceAccount(alloc::boxed::Box::new(user));
                return Ok(json!({
                    "authenticated": true,
                    "user": identity.user_info(),
                    "audiences": audiences,
                }));
            }
            // kube-apiserver's authenticator is a union whose first member, the loopback
            // client's token, fails every other token with "invalid bearer token": a token the
            // ServiceAccount authenticator refuses shows both errors.
            Err(error) => {
                return Ok(refused(alloc::format!("[{INVALID_BEARER_TOKEN}, {error}]")));
            }
        }
        // An audience-agnostic authenticator takes a token only for the server's own audience.
        let api_audiences = self.config.api_audiences();
        if wanted.is_some_and(|wanted| !wanted.iter().any(|w| api_audiences.contains(w))) {
            return Ok(refused(INVALID_BEARER_TOKEN.into()));
        }
        let header = alloc::format!("Bearer {token}");
        let identity = if token.starts_with(crate::token::TOKEN_PREFIX) {
            match self.tokens.validate(token, now, None, &self.stakes) {
                Ok(node) => Identity::Node(alloc::boxed::Box::new(node)),
                Err(e) => return Ok(refused(alloc::format!("invalid Seal token: {e}"))),
            }
        } else {
            match crate::auth::authenticate(&self.config, Some(&header)) {
                Ok(identity @ (Identity::Admin | Identity::Relay)) => identity,
                _ => return Ok(refused(INVALID_BEARER_TOKEN.into())),
            }
        };
        Ok(json!({
            "authenticated": true,
            "user": identity.user_info(),
            "audiences": api_audiences,
        }))
    }
}
