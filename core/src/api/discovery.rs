//! Discovery documents: `/version`, `/api`, `/apis`, per-group and per-version resource lists,
//! and the aggregated `APIGroupDiscoveryList` form that saves kubectl every further call.
//!
//! Everything is derived from [`crate::resource::RESOURCES`], [`crate::resource::GROUPS`],
//! the access reviews of [`super::access::REVIEWS`], the APIServices ([`super::apiservices`])
//! and the CRD registry's established definitions, so discovery cannot disagree with routing.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use base64::Engine as _;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::access::{REVIEWS, Review};
use super::apiservices;
use crate::crd::{Registry, Served};
use crate::resource::{GROUPS, ResourceType, VERBS};

/// A resource served without storage: an access review (create only) or the APIServices
/// (read-only, derived from what is served).
struct Unstored {
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    verbs: &'static [&'static str],
}

fn unstored() -> impl Iterator<Item = Unstored> {
    let reviews = REVIEWS.iter().map(|r: &'static Review| Unstored {
        group: r.group,
        version: r.version,
        plural: r.plural,
        singular: r.singular,
        kind: r.kind,
        verbs: &["create"],
    });
    reviews.chain(core::iter::once(Unstored {
        group: apiservices::GROUP,
        version: apiservices::VERSION,
        plural: apiservices::PLURAL,
        singular: apiservices::SINGULAR,
        kind: apiservices::KIND,
        verbs: apiservices::VERBS,
    }))
}

/// Every built-in API group (resources', reviews' and APIServices'), sorted by name as kube
/// lists them.
fn groups() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&'static str, &'static str)> = GROUPS.to_vec();
    for r in unstored() {
        if !out.contains(&(r.group, r.version)) {
            out.push((r.group, r.version));
        }
    }
    // By name only, stably: a group's versions stay in their preferred order.
    out.sort_by(|a, b| a.0.cmp(b.0));
    out
}

fn unstored_of(group: &str, version: &str) -> impl Iterator<Item = Unstored> {
    unstored().filter(move |r| r.group == group && r.version == version)
}

/// The Kubernetes version this server reports; kubectl dispatchers pick their client by `minor`.
pub const GIT_VERSION: &str = "v1.32.0-nautilus";

/// `GET /version`, reporting a 1.32-compatible server.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "32",
        "gitVersion": GIT_VERSION,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2024-12-11T00:00:00Z",
        "goVersion": "go1.23.3",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// `GET /api` (`APIVersions`).
pub fn core_api_versions() -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})
}

fn group_version(group: &str, version: &str) -> Value {
    json!({"groupVersion": alloc::format!("{group}/{version}"), "version": version})
}

fn group_entry(group: &str, versions: &[String]) -> Value {
    let listed: Vec<Value> = versions.iter().map(|v| group_version(group, v)).collect();
    let preferred = versions
        .first()
        .map_or(Value::Null, |v| group_version(group, v));
    json!({
        "name": group,
        "versions": listed,
        "preferredVersion": preferred,
    })
}

/// Every served group besides the core group with its versions (preferred first): the
/// built-in groups, then the custom resources' groups by name.
pub(super) fn all_groups(crds: &Registry) -> Vec<(String, Vec<String>)> {
    let builtin = groups();
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for (g, v) in &builtin {
        match out.last_mut() {
            Some((name, versions)) if name == g => versions.push(String::from(*v)),
            _ => out.push((String::from(*g), vec![String::from(*v)])),
        }
    }
    out.extend(
        crds.groups()
            .into_iter()
            .filter(|(g, _)| !builtin.iter().any(|(b, _)| b == g)),
    );
    out
}

/// `GET /apis` (`APIGroupList`).
pub fn api_group_list(crds: &Registry) -> Value {
    let groups: Vec<Value> = all_groups(crds)
        .iter()
        .map(|(g, v)| group_entry(g, v))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `GET /apis/{group}` (`APIGroup`).
pub fn api_group(group: &str, crds: &Registry) -> Option<Value> {
    let (name, versions) = all_groups(crds).into_iter().find(|(g, _)| g == group)?;
    let mut entry = group_entry(&name, &versions);
    let obj = entry.as_object_mut()?;
    obj.insert("kind".into(), "APIGroup".into());
    obj.insert("apiVersion".into(), "v1".into());
    Some(entry)
}

/// One served subresource as discovery describes it.
struct Sub<'a> {
    name: &'static str,
    group: &'a str,
    version: &'a str,
    kind: &'a str,
    verbs: &'static [&'static str],
}

const STATUS_VERBS: &[&str] = &["get", "patch", "update"];

/// One served resource as discovery describes it: a built-in kind or a custom resource.
struct Entry<'a> {
    group: &'a str,
    version: &'a str,
    plural: &'a str,
    singular: &'a str,
    kind: &'a str,
    namespaced: bool,
    short_names: Vec<&'a str>,
    categories: Vec<&'a str>,
    subresources: Vec<&'static str>,
    /// The group, version and kind objects are stored as (for `storageVersionHash`): a view's
    /// are its storage row's.
    storage_group: &'a str,
    storage_version: &'a str,
    storage_kind: &'a str,
}

impl<'a> Entry<'a> {
    fn builtin(r: &'a ResourceType<'static>) -> Self {
        Self {
            group: r.group,
            version: r.version,
            plural: r.plural,
            singular: r.singular,
            kind: r.kind,
            namespaced: r.namespaced,
            short_names: r.short_names.to_vec(),
            categories: r.categories.to_vec(),
            subresources: if r.id == crate::resource::ResourceId::Pods {
                // Served by the kubelet, through the enclave (`objects::connect`).
                let mut all = r.subresources.to_vec();
                all.extend_from_slice(super::objects::connect::SUBRESOURCES);
                all
            } else {
                r.subresources.to_vec()
            },
            storage_group: r.id.info().group,
            storage_version: r.id.info().version,
            storage_kind: r.id.info().kind,
        }
    }

    fn custom(served: &'a Served) -> Self {
        let d = &served.definition;
        let v = served.version();
        let mut subresources = Vec::new();
        if v.status {
            subresources.push("status");
        }
        if v.scale.is_some() {
            subresources.push("scale");
        }
        Self {
            group: &d.group,
            version: &v.name,
            plural: &d.plural,
            singular: &d.singular,
            kind: &d.kind,
            namespaced: d.namespaced,
            short_names: d.short_names.iter().map(String::as_str).collect(),
            categories: d.categories.iter().map(String::as_str).collect(),
            subresources,
            storage_group: &d.group,
            storage_version: d
                .storage_version()
                .map_or(v.name.as_str(), |s| s.name.as_str()),
            storage_kind: &d.kind,
        }
    }

    /// The kind and verbs of subresource `sub`, as kube-apiserver registers them.
    fn subresource(&self, sub: &'static str) -> Sub<'a> {
        let own = |verbs| Sub {
            name: sub,
            group: self.group,
            version: self.version,
            kind: self.kind,
            verbs,
        };
        match sub {
            "binding" => Sub {
                name: sub,
                group: "",
                version: "v1",
                kind: "Binding",
                verbs: &["create"],
            },
            // kube registers pods/eviction as policy/v1 Eviction, create only; kubectl drain
            // looks for exactly that and otherwise deletes pods, ignoring their budgets.
            "eviction" => Sub {
                name: sub,
                group: "policy",
                version: "v1",
                kind: "Eviction",
                verbs: &["create"],
            },
            // kube registers serviceaccounts/token as authentication.k8s.io/v1 TokenRequest,
            // create only.
            "token" => Sub {
                name: sub,
                group: "authentication.k8s.io",
                version: "v1",
                kind: "TokenRequest",
                verbs: &["create"],
            },
            "scale" => Sub {
                name: sub,
                group: "autoscaling",
                version: "v1",
                kind: "Scale",
                verbs: STATUS_VERBS,
            },
            "finalize" => own(&["update"]),
            // kube registers the kubelet's subresources with their options kinds (the log
            // answers a Pod's), get and create for the upgrades (WebSocket uses GET, SPDY POST).
            "log" => own(&["get"]),
            "exec" | "attach" | "portforward" => Sub {
                name: sub,
                group: self.group,
                version: self.version,
                kind: match sub {
                    "exec" => "PodExecOptions",
                    "attach" => "PodAttachOptions",
                    _ => "PodPortForwardOptions",
                },
                verbs: &["create", "get"],
            },
            _ => own(STATUS_VERBS),
        }
    }

    /// `storageVersionHash`: base64 of the first 8 bytes of SHA-256 of `group/version/kind`
    /// (k8s.io/apiserver `discovery.StorageVersionHash`; `/v1/Pod` gives `xPOwRZ+Yhw8=`).
    fn storage_version_hash(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.storage_group.as_bytes());
        hasher.update(b"/");
        hasher.update(self.storage_version.as_bytes());
        hasher.update(b"/");
        hasher.update(self.storage_kind.as_bytes());
        let digest = hasher.finalize();
        base64::engine::general_purpose::STANDARD.encode(digest.get(..8).unwrap_or_default())
    }
}

/// The resources served in `group`/`version`, sorted by plural (as kube-apiserver lists them);
/// `None` when that group version is not served.
fn entries<'a>(group: &str, version: &str, custom: &'a [Served]) -> Option<Vec<Entry<'a>>> {
    let builtin = if group.is_empty() {
        version == "v1"
    } else {
        groups().iter().any(|(g, v)| *g == group && *v == version)
    };
    if !builtin && custom.is_empty() {
        return None;
    }
    let mut out: Vec<Entry<'a>> = crate::resource::builtin()
        .filter(|r| r.group == group && r.version == version)
        .map(Entry::builtin)
        .collect();
    out.extend(custom.iter().map(Entry::custom));
    out.sort_by(|a, b| a.plural.cmp(b.plural));
    Some(out)
}

fn strings(items: &[&str]) -> Value {
    Value::Array(items.iter().map(|s| Value::from(*s)).collect())
}

/// `GET /api/v1` or `/apis/{group}/{version}` (`APIResourceList`).
pub fn api_resource_list(group: &str, version: &str, crds: &Registry) -> Option<Value> {
    let custom = crds.served_in(group, version);
    let mut entries_list: Vec<(String, Value)> = Vec::new();
    for r in entries(group, version, &custom)? {
        let mut e = Map::new();
        e.insert("name".into(), r.plural.into());
        e.insert("singularName".into(), r.singular.into());
        e.insert("namespaced".into(), r.namespaced.into());
        e.insert("kind".into(), r.kind.into());
        e.insert("verbs".into(), strings(VERBS));
        if !r.short_names.is_empty() {
            e.insert("shortNames".into(), strings(&r.short_names));
        }
        if !r.categories.is_empty() {
            e.insert("categories".into(), strings(&r.categories));
        }
        e.insert("storageVersionHash".into(), r.storage_version_hash().into());
        entries_list.push((r.plural.into(), Value::Object(e)));
        for sub in &r.subresources {
            let s = r.subresource(sub);
            let name = alloc::format!("{}/{}", r.plural, s.name);
            let mut e = Map::new();
            e.insert("name".into(), name.clone().into());
            e.insert("singularName".into(), "".into());
            e.insert("namespaced".into(), r.namespaced.into());
            if s.group != r.group || s.version != r.version {
                e.insert("group".into(), s.group.into());
                e.insert("version".into(), s.version.into());
            }
            e.insert("kind".into(), s.kind.into());
            e.insert("verbs".into(), strings(s.verbs));
            entries_list.push((name, Value::Object(e)));
        }
    }
    for unstored in unstored_of(group, version) {
        let entry = json!({
            "name": unstored.plural,
            "singularName": unstored.singular,
            "namespaced": false,
            "kind": unstored.kind,
            "verbs": strings(unstored.verbs),
        });
        entries_list.push((unstored.plural.into(), entry));
    }
    entries_list.sort_by(|a, b| a.0.cmp(&b.0));
    let resources: Vec<Value> = entries_list.into_iter().map(|(_, e)| e).collect();
    let group_version = if group.is_empty() {
        String::from(version)
    } else {
        alloc::format!("{group}/{version}")
    };
    let mut list = Map::new();
    list.insert("kind".into(), "APIResourceList".into());
    // kube-apiserver omits apiVersion on /api/v1 but sets it on group versions.
    if !group.is_empty() {
        list.insert("apiVersion".into(), "v1".into());
    }
    list.insert("groupVersion".into(), group_version.into());
    list.insert("resources".into(), Value::Array(resources));
    Some(Value::Object(list))
}

fn response_kind(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "version": version, "kind": kind})
}

fn discovery_version(group: &str, version: &str, crds: &Registry) -> Value {
    let unstored = unstored_of(group, version).map(|r| {
        json!({
            "resource": r.plural,
            "responseKind": response_kind(r.group, r.version, r.kind),
            "scope": "Cluster",
            "singularResource": r.singular,
            "verbs": strings(r.verbs),
        })
    });
    let custom = crds.served_in(group, version);
    let resources: Vec<Value> = entries(group, version, &custom)
        .unwrap_or_default()
        .into_iter()
        .map(|r| {
            let mut e = Map::new();
            e.insert("resource".into(), r.plural.into());
            e.insert(
                "responseKind".into(),
                response_kind(r.group, r.version, r.kind),
            );
            e.insert(
                "scope".into(),
                if r.namespaced {
                    "Namespaced"
                } else {
                    "Cluster"
                }
                .into(),
            );
            e.insert("singularResource".into(), r.singular.into());
            e.insert("verbs".into(), strings(VERBS));
            if !r.short_names.is_empty() {
                e.insert("shortNames".into(), strings(&r.short_names));
            }
            if !r.categories.is_empty() {
                e.insert("categories".into(), strings(&r.categories));
            }
            let mut subs = r.subresources.clone();
            subs.sort_unstable();
            let subs: Vec<Value> = subs
                .into_iter()
                .map(|sub| {
                    let s = r.subresource(sub);
                    json!({
                        "subresource": s.name,
                        "responseKind": response_kind(s.group, s.version, s.kind),
                        "verbs": strings(s.verbs),
                    })
                })
                .collect();
            if !subs.is_empty() {
                e.insert("subresources".into(), Value::Array(subs));
            }
            Value::Object(e)
        })
        .chain(unstored)
        .collect();
    json!({"version": version, "resources": resources, "freshness": "Current"})
}

/// Aggregated discovery for `/api` (`core_group`) or `/apis`.
///
/// Served with Content-Type `application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList`.
/// The core group's entry has no name, as kube-apiserver's does (ObjectMeta with only the
/// zero `creationTimestamp` it serialises as `null` in 1.32). A custom group lists its versions
/// preferred first.
pub fn aggregated(core_group: bool, crds: &Registry) -> Value {
    let items: Vec<Value> = if core_group {
        vec![json!({
            "metadata": {"creationTimestamp": null},
            "versions": [discovery_version("", "v1", crds)],
        })]
    } else {
        all_groups(crds)
            .iter()
            .map(|(g, versions)| {
                let versions: Vec<Value> = versions
                    .iter()
                    .map(|v| discovery_version(g, v, crds))
                    .collect();
                json!({
                    "metadata": {"name": g, "creationTimestamp": null},
                    "versions": versions,
                })
            })
            .collect()
    };
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none() -> Registry {
        Registry::new(&crate::Config::default())
    }

    fn api_group_list() -> Value {
        super::api_group_list(&none())
    }

    fn api_group(group: &str) -> Option<Value> {
        super::api_group(group, &none())
    }

    fn api_resource_list(group: &str, version: &str) -> Option<Value> {
        super::api_resource_list(group, version, &none())
    }

    fn aggregated(core: bool) -> Value {
        super::aggregated(core, &none())
    }

    fn find<'a>(list: &'a Value, key: &str, name: &str) -> &'a Value {
        list.as_array()
            .unwrap()
            .iter()
            .find(|e| e[key] == name)
            .unwrap_or_else(|| panic!("{name} missing"))
    }

    #[test]
    fn version_is_1_32() {
        let v = version();
        assert_eq!(v["major"], "1");
        assert_eq!(v["minor"], "32");
        assert!(v["gitVersion"].as_str().unwrap().starts_with("v1.32."));
        for key in [
            "gitCommit",
            "gitTreeState",
            "buildDate",
            "goVersion",
            "compiler",
            "platform",
        ] {
            assert!(v[key].is_string(), "{key}");
        }
    }

    #[test]
    fn group_list_and_group() {
        let list = api_group_list();
        assert_eq!(list["kind"], "APIGroupList");
        let apps = find(&list["groups"], "name", "apps");
        assert_eq!(
            apps["preferredVersion"],
            json!({"groupVersion": "apps/v1", "version": "v1"})
        );
        find(&list["groups"], "name", "coordination.k8s.io");
        let g = api_group("coordination.k8s.io").unwrap();
        assert_eq!(g["kind"], "APIGroup");
        assert_eq!(g["versions"][0]["groupVersion"], "coordination.k8s.io/v1");
        assert_eq!(
            api_group("batch").unwrap()["versions"][0]["groupVersion"],
            "batch/v1"
        );
        assert!(api_group("storage.k8s.io").is_some());
        assert!(api_group("resource.k8s.io").is_none());
        assert_eq!(core_api_versions()["versions"], json!(["v1"]));
    }

    #[test]
    fn core_resource_list() {
        let list = api_resource_list("", "v1").unwrap();
        assert_eq!(list["groupVersion"], "v1");
        assert!(list.get("apiVersion").is_none());
        let res = &list["resources"];
        let pods = find(res, "name", "pods");
        assert_eq!(pods["singularName"], "pod");
        assert_eq!(pods["namespaced"], true);
        assert_eq!(pods["kind"], "Pod");
        assert_eq!(pods["shortNames"], json!(["po"]));
        assert_eq!(pods["categories"], json!(["all"]));
        assert_eq!(pods["storageVersionHash"], "xPOwRZ+Yhw8=");
        assert_eq!(pods["verbs"], strings(VERBS));
        let binding = find(res, "name", "pods/binding");
        assert_eq!(binding["kind"], "Binding");
        assert_eq!(binding["verbs"], json!(["create"]));
        // What kubectl drain's CheckEvictionSupport looks for (else it deletes, past budgets).
        let eviction = find(res, "name", "pods/eviction");
        assert_eq!(
            (&eviction["group"], &eviction["version"], &eviction["kind"]),
            (&json!("policy"), &json!("v1"), &json!("Eviction"))
        );
        assert_eq!(eviction["verbs"], json!(["create"]));
        let status = find(res, "name", "pods/status");
        assert_eq!(status["verbs"], json!(["get", "patch", "update"]));
        assert_eq!(status["singularName"], "");
        let nodes = find(res, "name", "nodes");
        assert_eq!(nodes["namespaced"], false);
        assert!(nodes.get("categories").is_none());
        assert_eq!(
            find(res, "name", "namespaces/finalize")["verbs"],
            json!(["update"])
        );
        find(res, "name", "services");
        let names: Vec<&str> = res
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
        assert!(api_resource_list("", "v2").is_none());
        assert!(api_resource_list("apps", "v1beta1").is_none());
    }

    #[test]
    fn apps_resource_list_has_scale() {
        let list = api_resource_list("apps", "v1").unwrap();
        assert_eq!(list["apiVersion"], "v1");
        assert_eq!(list["groupVersion"], "apps/v1");
        let scale = find(&list["resources"], "name", "deployments/scale");
        assert_eq!(scale["group"], "autoscaling");
        assert_eq!(scale["version"], "v1");
        assert_eq!(scale["kind"], "Scale");
        assert_eq!(scale["verbs"], json!(["get", "patch", "update"]));
        let deploy = find(&list["resources"], "name", "deployments");
        assert_eq!(deploy["storageVersionHash"], "8aSe+NMegvE=");
        assert_eq!(deploy["shortNames"], json!(["deploy"]));
        let leases = api_resource_list("coordination.k8s.io", "v1").unwrap();
        assert_eq!(
            find(&leases["resources"], "name", "leases")["kind"],
            "Lease"
        );
    }

    #[test]
    fn aggregated_core_and_groups() {
        let core = aggregated(true);
        assert_eq!(core["kind"], "APIGroupDiscoveryList");
        assert_eq!(core["apiVersion"], "apidiscovery.k8s.io/v2");
        let items = core["items"].as_array().unwrap();
        assert_eq!(items.len(), 1);
        assert!(items[0]["metadata"].get("name").is_none());
        let v1 = &items[0]["versions"][0];
        assert_eq!(v1["version"], "v1");
        assert_eq!(v1["freshness"], "Current");
        let pods = find(&v1["resources"], "resource", "pods");
        assert_eq!(
            pods["responseKind"],
            json!({"group": "", "version": "v1", "kind": "Pod"})
        );
        assert_eq!(pods["scope"], "Namespaced");
        assert_eq!(pods["singularResource"], "pod");
        for (sub, kind, verbs) in [
            ("log", "Pod", json!(["get"])),
            ("exec", "PodExecOptions", json!(["create", "get"])),
            ("attach", "PodAttachOptions", json!(["create", "get"])),
            (
                "portforward",
                "PodPortForwardOptions",
                json!(["create", "get"]),
            ),
        ] {
            let s = find(&pods["subresources"], "subresource", sub);
            assert_eq!(s["responseKind"]["kind"], kind, "{sub}");
            assert_eq!(s["verbs"], verbs, "{sub}");
        }
        let binding = find(&pods["subresources"], "subresource", "binding");
        assert_eq!(binding["responseKind"]["kind"], "Binding");
        assert_eq!(binding["verbs"], json!(["create"]));
        let eviction = find(&pods["subresources"], "subresource", "eviction");
        assert_eq!(
            eviction["responseKind"],
            json!({"group": "policy", "version": "v1", "kind": "Eviction"})
        );
        assert_eq!(eviction["verbs"], json!(["create"]));
        assert_eq!(
            find(&v1["resources"], "resource", "nodes")["scope"],
            "Cluster"
        );
        assert!(
            find(&v1["resources"], "resource", "configmaps")
                .get("subresources")
                .is_none()
        );

        let groups = aggregated(false);
        let items = groups["items"].as_array().unwrap();
        let names: Vec<&str> = items
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "admissionregistration.k8s.io",
                "apiextensions.k8s.io",
                "apiregistration.k8s.io",
                "apps",
                "authentication.k8s.io",
                "authorization.k8s.io",
                "autoscaling",
                "batch",
                "certificates.k8s.io",
                "coordination.k8s.io",
                "discovery.k8s.io",
                "events.k8s.io",
                "flowcontrol.apiserver.k8s.io",
                "networking.k8s.io",
                "node.k8s.io",
                "policy",
                "rbac.authorization.k8s.io",
                "scheduling.k8s.io",
                "storage.k8s.io"
            ]
        );
        let reviews = &items[5]["versions"][0]["resources"];
        let sar = find(reviews, "resource", "selfsubjectaccessreviews");
        assert_eq!(
            sar["responseKind"],
            json!({"group": "authorization.k8s.io", "version": "v1", "kind": "SelfSubjectAccessReview"})
        );
        assert_eq!(sar["verbs"], json!(["create"]));
        assert_eq!(sar["scope"], "Cluster");
        find(reviews, "resource", "selfsubjectrulesreviews");
        find(
            &items[4]["versions"][0]["resources"],
            "resource",
            "selfsubjectreviews",
        );
        let list = api_resource_list("authorization.k8s.io", "v1").unwrap();
        let rules = find(&list["resources"], "name", "selfsubjectrulesreviews");
        assert_eq!(rules["kind"], "SelfSubjectRulesReview");
        assert_eq!(rules["namespaced"], false);
        assert_eq!(
            api_group("authentication.k8s.io").unwrap()["preferredVersion"]["groupVersion"],
            "authentication.k8s.io/v1"
        );
        let deploy = find(
            &items[3]["versions"][0]["resources"],
            "resource",
            "deployments",
        );
        assert_eq!(deploy["categories"], json!(["all"]));
        let scale = find(&deploy["subresources"], "subresource", "scale");
        assert_eq!(
            scale["responseKind"],
            json!({"group": "autoscaling", "version": "v1", "kind": "Scale"})
        );
        assert_eq!(
            find(&deploy["subresources"], "subresource", "status")["responseKind"]["kind"],
            "Deployment"
        );
    }
}
