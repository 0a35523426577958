//! The node authorizer's reference index: which Secrets, ConfigMaps, PersistentVolumeClaims and
//! ServiceAccounts the pods bound to each node name, kept current on every pod write and delete,
//! so that "does a pod bound to node N use this object" is one lookup, never a scan of the pods.
//!
//! kube-apiserver keeps the same relation as a graph fed by informers (`node <- pod <- secret`);
//! here it is updated in the write path itself, so a pod's deletion or a new binding changes what
//! its node may read before the write is answered. Every pod's references count against
//! [`crate::Config::max_pod_references`]; a pod write that would go beyond it is refused and
//! changes nothing.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use serde_json::Value;

use crate::Error;

/// What a pod refers to by name, in its own namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum RefKind {
    /// Image pull secrets, secret volumes and projections, env and envFrom secret references,
    /// and the secret references of volume plugins (CSI, iSCSI, RBD, ...).
    Secret,
    /// ConfigMap volumes and projections, env and envFrom ConfigMap references.
    ConfigMap,
    /// `persistentVolumeClaim` volumes and the claims of generic ephemeral volumes.
    PersistentVolumeClaim,
    /// `spec.serviceAccountName`.
    ServiceAccount,
}

/// One pod's distinct references and the node it is bound to (`None` while pending).
#[derive(Debug, Clone, PartialEq, Eq)]
struct PodEntry {
    node: Option<Box<str>>,
    refs: Box<[(RefKind, Box<str>)]>,
}

/// Joins key parts. No namespace, object or node name can hold it (a request's can, raw, but is
/// then refused), and reference names that do are not indexed, so keys never collide.
const SEP: char = '/';

/// The index. Only pods with at least one reference have an entry. Keys are single joined
/// strings (one allocation each, not one per part): at 100,000 pods that halves the index.
#[derive(Debug)]
pub(crate) struct ReferenceIndex {
    /// Each pod's entry, by `namespace/name`.
    pods: BTreeMap<Box<str>, PodEntry>,
    /// How many bound pods use each object, per node, by `kind/namespace/name/node`.
    edges: BTreeMap<Box<str>, u32>,
    /// References held by all entries together, against `limit`.
    held: usize,
    /// `Config::max_pod_references`.
    limit: usize,
}

/// What one pod write does to the index: computed (and checked against the budget) before the
/// store commits, applied after it did.
#[derive(Debug)]
pub(crate) struct PodChange {
    /// `namespace/name`.
    key: Box<str>,
    entry: Option<PodEntry>,
}

impl ReferenceIndex {
    /// An empty index holding at most `limit` references.
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            pods: BTreeMap::new(),
            edges: BTreeMap::new(),
            held: 0,
            limit,
        }
    }

    /// The change that storing `pod` (or, with `None`, deleting it) under `namespace/name`
    /// makes. Refused with 507 when the pod's references would take the index above its budget;
    /// changes nothing either way.
    pub(crate) fn prepare(
        &self,
        namespace: &str,
        name: &str,
        pod: Option<&Value>,
    ) -> Result<PodChange, Error> {
        let entry = pod.and_then(|pod| {
            let refs = references(pod);
            if refs.is_empty() {
                return None;
            }
            let node = crate::json::str_at(pod, "/spec/nodeName");
            Some(PodEntry {
                node: (!node.is_empty()).then(|| node.into()),
                refs: refs.into_boxed_slice(),
            })
        });
        let key: Box<str> = alloc::format!("{namespace}{SEP}{name}").into();
        let old = self.pods.get(&key).map_or(0, |e| e.refs.len());
        let new = entry.as_ref().map_or(0, |e| e.refs.len());
        if new > old {
            let after = self.held.saturating_sub(old).checked_add(new);
            if after.is_none_or(|after| after > self.limit) {
                return Err(Error::InsufficientStorage(alloc::format!(
                    "the node authorizer's reference index is full: pod {namespace}/{name} names {new} objects and {} of the {} pod references allowed are held (max_pod_references)",
                    self.held,
                    self.limit
                )));
            }
        }
        Ok(PodChange { key, entry })
    }

    /// Applies a change [`ReferenceIndex::prepare`] accepted.
    pub(crate) fn apply(&mut self, change: PodChange) {
        let key = change.key;
        let namespace = key.split_once(SEP).map_or("", |(ns, _)| ns);
        if let Some(old) = self.pods.get(&key) {
            self.held = self.held.saturating_sub(old.refs.len());
            for edge in edges(namespace, old) {
                if let Some(count) = self.edges.get_mut(&edge) {
                    *count = count.saturating_sub(1);
                    if *count == 0 {
                        self.edges.remove(&edge);
                    }
                }
            }
        }
        match change.entry {
            Some(entry) => {
                self.held = self.held.saturating_add(entry.refs.len());
                for edge in edges(namespace, &entry) {
                    let count = self.edges.entry(edge).or_insert(0);
                    *count = count.saturating_add(1);
                }
                self.pods.insert(key, entry);
            }
            None => {
                self.pods.remove(&key);
            }
        }
    }

    /// Whether a pod bound to `node` names the `kind` object `namespace/name`.
    pub(crate) fn uses(&self, kind: RefKind, namespace: &str, name: &str, node: &str) -> bool {
        ![namespace, name, node]
            .iter()
            .any(|part| part.contains(SEP))
            && self
                .edges
                .contains_key(&*edge_key(kind, namespace, name, node))
    }

    /// References held.
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.held
    }
}

/// `kind/namespace/name/node`.
fn edge_key(kind: RefKind, namespace: &str, name: &str, node: &str) -> Box<str> {
    let kind = match kind {
        RefKind::Secret => 's',
        RefKind::ConfigMap => 'c',
        RefKind::PersistentVolumeClaim => 'p',
        RefKind::ServiceAccount => 'a',
    };
    alloc::format!("{kind}{SEP}{namespace}{SEP}{name}{SEP}{node}").into()
}

/// The edges a pod entry contributes: none while it is pending.
fn edges<'a>(namespace: &'a str, entry: &'a PodEntry) -> impl Iterator<Item = Box<str>> + 'a {
    entry.node.iter().flat_map(move |node| {
        entry
            .refs
            .iter()
            .map(move |(kind, name)| edge_key(*kind, namespace, name, node))
    })
}

/// The distinct objects `pod` names, as kube's node graph reads them (`VisitPodSecretNames`,
/// `VisitPodConfigmapNames` over all containers, claims, the service account).
pub(crate) fn references(pod: &Value) -> Vec<(RefKind, Box<str>)> {
    let mut out: Vec<(RefKind, Box<str>)> = Vec::new();
    let mut add = |kind: RefKind, name: Option<&Value>| {
        if let Some(name) = name
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty() && !n.contains(SEP))
        {
            out.push((kind, name.into()));
        }
    };
    let Some(spec) = pod.get("spec") else {
        return Vec::new();
    };
    add(RefKind::ServiceAccount, spec.get("serviceAccountName"));
    for secret in items(spec.get("imagePullSecrets")) {
        add(RefKind::Secret, secret.get("name"));
    }
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        for container in items(spec.get(list)) {
            for from in items(container.get("envFrom")) {
                add(RefKind::Secret, from.pointer("/secretRef/name"));
                add(RefKind::ConfigMap, from.pointer("/configMapRef/name"));
            }
            for env in items(container.get("env")) {
                add(RefKind::Secret, env.pointer("/valueFrom/secretKeyRef/name"));
                add(
                    RefKind::ConfigMap,
                    env.pointer("/valueFrom/configMapKeyRef/name"),
                );
            }
        }
    }
    let pod_name = crate::json::str_at(pod, "/metadata/name");
    for volume in items(spec.get("volumes")) {
        add(RefKind::Secret, volume.pointer("/secret/secretName"));
        add(RefKind::ConfigMap, volume.pointer("/configMap/name"));
        for source in items(volume.pointer("/projected/sources")) {
            add(RefKind::Secret, source.pointer("/secret/name"));
            add(RefKind::ConfigMap, source.pointer("/configMap/name"));
        }
        add(RefKind::Secret, volume.pointer("/azureFile/secretName"));
        for plugin in [
            "cephfs",
            "cinder",
            "flexVolume",
            "iscsi",
            "rbd",
            "scaleIO",
            "storageos",
        ] {
            add(
                RefKind::Secret,
                volume
                    .get(plugin)
                    .and_then(|p| p.pointer("/secretRef/name")),
            );
        }
        add(
            RefKind::Secret,
            volume.pointer("/csi/nodePublishSecretRef/name"),
        );
        add(
            RefKind::PersistentVolumeClaim,
            volume.pointer("/persistentVolumeClaim/claimName"),
        );
        // A generic ephemeral volume's claim is named `<pod>-<volume>`.
        if volume.get("ephemeral").is_some_and(Value::is_object) {
            let claim = alloc::format!("{pod_name}-{}", crate::json::str_at(volume, "/name"));
            add(RefKind::PersistentVolumeClaim, Some(&Value::from(claim)));
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

fn items(value: Option<&Value>) -> impl Iterator<Item = &Value> {
    value
        .and_then(Value::as_array)
        .into_iter()
        .flat_map(|a| a.iter())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(node: &str) -> Value {
        json!({"metadata": {"name": "web", "namespace": "default"}, "spec": {
            "nodeName": node,
            "serviceAccountName": "default",
            "imagePullSecrets": [{"name": "registry"}],
            "initContainers": [{"name": "init", "envFrom": [{"secretRef": {"name": "init-env"}}]}],
            "containers": [{"name": "app",
                "env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "db", "key": "k"}}},
                        {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "k"}}},
                        {"name": "C", "value": "plain"}],
                "envFrom": [{"configMapRef": {"name": "env-cm"}}]}],
            "ephemeralContainers": [{"name": "debug", "env": [{"name": "D", "valueFrom": {"secretKeyRef": {"name": "debug-secret"}}}]}],
            "volumes": [
                {"name": "s", "secret": {"secretName": "db"}},
                {"name": "c", "configMap": {"name": "files"}},
                {"name": "p", "projected": {"sources": [{"secret": {"name": "proj-s"}}, {"configMap": {"name": "proj-c"}}, {"serviceAccountToken": {"path": "t"}}]}},
                {"name": "claim", "persistentVolumeClaim": {"claimName": "data"}},
                {"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}},
                {"name": "csi", "csi": {"driver": "d", "nodePublishSecretRef": {"name": "csi-secret"}}},
                {"name": "rbd", "rbd": {"monitors": [], "image": "i", "secretRef": {"name": "ceph"}}},
                {"name": "az", "azureFile": {"secretName": "azure", "shareName": "s"}},
                {"name": "empty", "emptyDir": {}}]}})
    }

    #[test]
    fn every_way_a_pod_names_an_object_is_read_once() {
        let refs = references(&pod("n"));
        let names: Vec<(RefKind, &str)> = refs.iter().map(|(k, n)| (*k, &**n)).collect();
        use RefKind::*;
        assert_eq!(
            names,
            [
                (Secret, "azure"),
                (Secret, "ceph"),
                (Secret, "csi-secret"),
                (Secret, "db"),
                (Secret, "debug-secret"),
                (Secret, "init-env"),
                (Secret, "proj-s"),
                (Secret, "registry"),
                (ConfigMap, "env-cm"),
                (ConfigMap, "files"),
                (ConfigMap, "proj-c"),
                (ConfigMap, "settings"),
                (PersistentVolumeClaim, "data"),
                (PersistentVolumeClaim, "web-scratch"),
                (ServiceAccount, "default"),
            ]
        );
    }

    #[test]
    fn binding_deleting_and_moving_pods_keeps_the_index_exact() {
        let mut index = ReferenceIndex::new(100);
        let pending = pod("");
        let change = index.prepare("default", "web", Some(&pending)).unwrap();
        index.apply(change);
        assert_eq!(index.held(), 15);
        assert!(
            !index.uses(RefKind::Secret, "default", "db", "n"),
            "a pending pod grants nothing"
        );
        let bound = pod("n");
        index.apply(index.prepare("default", "web", Some(&bound)).unwrap());
        assert!(index.uses(RefKind::Secret, "default", "db", "n"));
        assert!(index.uses(RefKind::ConfigMap, "default", "proj-c", "n"));
        assert!(!index.uses(RefKind::Secret, "default", "db", "other"));
        assert!(!index.uses(RefKind::Secret, "kube-system", "db", "n"));
        assert!(!index.uses(RefKind::ConfigMap, "default", "db", "n"));
        // A second pod on the same node using the same secret: deleting one keeps the edge.
        let mut second = pod("n");
        second["metadata"]["name"] = json!("api");
        index.apply(index.prepare("default", "api", Some(&second)).unwrap());
        assert_eq!(index.held(), 30);
        index.apply(index.prepare("default", "web", None).unwrap());
        assert!(index.uses(RefKind::Secret, "default", "db", "n"));
        assert!(!index.uses(
            RefKind::PersistentVolumeClaim,
            "default",
            "web-scratch",
            "n"
        ));
        index.apply(index.prepare("default", "api", None).unwrap());
        assert!(!index.uses(RefKind::Secret, "default", "db", "n"));
        assert_eq!(index.held(), 0);
        assert!(index.edges.is_empty() && index.pods.is_empty());
    }

    #[test]
    fn a_pod_beyond_the_budget_is_refused_and_changes_nothing() {
        let mut index = ReferenceIndex::new(20);
        index.apply(index.prepare("default", "web", Some(&pod("n"))).unwrap());
        let mut second = pod("n");
        second["metadata"]["name"] = json!("api");
        let refused = index.prepare("default", "api", Some(&second)).unwrap_err();
        assert_eq!(refused.code(), 507);
        assert!(
            refused.message().contains("max_pod_references"),
            "{refused}"
        );
        assert_eq!(index.held(), 15);
        // Rewriting the same pod (a binding, a status update) never needs more room.
        let mut moved = pod("m");
        moved["status"] = json!({"phase": "Running"});
        index.apply(index.prepare("default", "web", Some(&moved)).unwrap());
        assert!(index.uses(RefKind::Secret, "default", "db", "m"));
        assert!(!index.uses(RefKind::Secret, "default", "db", "n"));
        // Names that could blur the joined keys are neither indexed nor matched.
        let odd = json!({"metadata": {"name": "odd"}, "spec": {"nodeName": "m",
            "imagePullSecrets": [{"name": "db/m"}]}});
        assert!(references(&odd).is_empty());
        assert!(!index.uses(RefKind::Secret, "default/db", "m", "m"));
        assert!(!index.uses(RefKind::Secret, "default", "db/m", "m"));
        // A pod that names nothing takes no room at all.
        let bare = json!({"metadata": {"name": "bare"}, "spec": {"containers": []}});
        index.apply(index.prepare("default", "bare", Some(&bare)).unwrap());
        assert_eq!(index.held(), 15);
    }
}
