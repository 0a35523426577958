//! kube-apiserver's NodeRestriction admission plugin (v1.32, with the CVE-2025-5187 fix) for
//! Seal-token identities, rule by rule and in kube's words: a node changes only its own Node
//! (never its taints, its ownerReferences, or labels outside the kubelet allowlist), its own
//! Lease, and the status of the pods bound to it (never their labels); it deletes only pods bound
//! to it.
//!
//! Nautilus adds three rules kube has no need for:
//! - the `nautilus.io/` annotations are the enclave's record of the node's stake (owner, stake,
//!   trust level): a node may not set, change or remove them;
//! - `spec.unschedulable` (the cordon) is the admin's and the enclave's: kube's equivalent is the
//!   `node.kubernetes.io/unschedulable` taint, which nodes may not touch either;
//! - mirror pods are refused (kube lets a node create them for its static pods, with any labels,
//!   which would put them in any Service's endpoints). A node may create its own Node (as a
//!   kubelet registers itself); the create checks its stake and stamps the enclave's
//!   annotations as `register-worker` does.

use alloc::collections::BTreeSet;
use alloc::string::String;
use alloc::vec::Vec;
use serde_json::{Map, Value};

use super::{Attempt, Operation};
use crate::Error;
use crate::authz::node::NODE_LEASE_NAMESPACE;
use crate::resource::ResourceId;
use crate::store::{ObjectKey, Store};

/// The annotation prefix of the enclave's own records on a Node.
pub(crate) const ENCLAVE_ANNOTATION_PREFIX: &str = "nautilus.io/";
/// `api.MirrorPodAnnotationKey`.
const MIRROR_POD_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// Labels a kubelet may set on its own Node (`k8s.io/kubelet/pkg/apis.kubeletLabels`).
const KUBELET_LABELS: &[&str] = &[
    "kubernetes.io/hostname",
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/region",
    "beta.kubernetes.io/instance-type",
    "node.kubernetes.io/instance-type",
    "kubernetes.io/os",
    "kubernetes.io/arch",
    "beta.kubernetes.io/os",
    "beta.kubernetes.io/arch",
];
/// Label namespaces a kubelet may set, with their subdomains (`kubeletLabelNamespaces`).
const KUBELET_LABEL_NAMESPACES: &[&str] = &["kubelet.kubernetes.io", "node.kubernetes.io"];
/// `v1.LabelNamespaceNodeRestriction`: reserved for admins to steer workloads.
const NODE_RESTRICTION_NAMESPACE: &str = "node-restriction.kubernetes.io";

/// Admits a write by the node `node`, or refuses it with kube's Forbidden status.
pub(crate) fn admit(node: &str, attempt: &Attempt<'_>) -> Result<(), Error> {
    let verdict = match attempt.resource.id {
        ResourceId::Pods => match attempt.subresource {
            None => pod(node, attempt.operation),
            Some("status") => pod_status(node, attempt.operation),
            Some(other) => Err(alloc::format!(
                "unexpected pod subresource \"{other}\", only 'status' and 'eviction' are allowed"
            )),
        },
        ResourceId::Nodes => own_node(node, attempt),
        ResourceId::Leases => lease(node, attempt),
        ResourceId::CSINodes => csi_node(node, attempt),
        _ => Ok(()),
    };
    verdict.map_err(|message| {
        crate::authz::forbidden_error(
            &crate::cluster::object::qualified(attempt.resource),
            attempt.name,
            &message,
        )
    })
}

/// `admitPod`: no pod creation (see the module doc on mirror pods), deletion of its own pods.
fn pod(node: &str, operation: Operation<'_>) -> Result<(), String> {
    match operation {
        Operation::Create(pod) => {
            if annotations(pod).contains_key(MIRROR_POD_ANNOTATION) {
                Err(alloc::format!(
                    "node \"{node}\" can not create mirror pods: this cluster does not run static pods"
                ))
            } else {
                Err(alloc::format!(
                    "pod does not have \"{MIRROR_POD_ANNOTATION}\" annotation, node \"{node}\" can only create mirror pods"
                ))
            }
        }
        Operation::Delete(pod) if node_name(pod) == node => Ok(()),
        Operation::Delete(_) => Err(alloc::format!(
            "node \"{node}\" can only delete pods with spec.nodeName set to itself"
        )),
        Operation::Update { .. } => Err(alloc::format!(
            "unexpected operation \"UPDATE\", node \"{node}\" can only create and delete mirror pods"
        )),
    }
}

/// `admitPodStatus`: the status of its own pods, without touching their labels (a pod's labels
/// decide which Services send it traffic) or resource claims.
fn pod_status(node: &str, operation: Operation<'_>) -> Result<(), String> {
    let Operation::Update { old, new } = operation else {
        return Err(alloc::format!(
            "unexpected operation \"{}\"",
            name_of(operation)
        ));
    };
    if node_name(old) != node {
        return Err(alloc::format!(
            "node \"{node}\" can only update pod status for pods with spec.nodeName set to itself"
        ));
    }
    if labels(old) != labels(new) {
        return Err(alloc::format!(
            "node \"{node}\" cannot update labels through pod status"
        ));
    }
    if claim_statuses(old) != claim_statuses(new) {
        // sic: kube's wording.
        return Err(alloc::format!(
            "node \"{node}\" cannot update resource claim statues"
        ));
    }
    Ok(())
}

/// `admitNode`, plus the enclave's annotations and the cordon.
fn own_node(node: &str, attempt: &Attempt<'_>) -> Result<(), String> {
    if attempt.name != node {
        return Err(alloc::format!(
            "node \"{node}\" is not allowed to modify node \"{}\"",
            attempt.name
        ));
    }
    match attempt.operation {
        Operation::Create(new) => {
            if !spec(new, "configSource").is_null() {
                // sic: kube's wording.
                return Err(alloc::format!(
                    "node \"{node}\" is not allowed to create pods with a non-nil configSource"
                ));
            }
            let forbidden = forbidden_labels(&modified_keys(&labels(new), &Map::new()));
            if !forbidden.is_empty() {
                return Err(alloc::format!(
                    "node \"{node}\" is not allowed to set the following labels: {}",
                    forbidden.join(", ")
                ));
            }
            let enclave: Vec<String> = modified_keys(&annotations(new), &Map::new())
                .into_iter()
                .filter(|k| k.starts_with(ENCLAVE_ANNOTATION_PREFIX))
                .collect();
            if !enclave.is_empty() {
                return Err(alloc::format!(
                    "node \"{node}\" is not allowed to modify annotations: {}",
                    enclave.join(", ")
                ));
            }
            // The create itself then checks the stake and writes the enclave's annotations,
            // as register-worker does.
            Ok(())
        }
        Operation::Update { old, new } => {
            let config_source = spec(new, "configSource");
            if !config_source.is_null() && config_source != spec(old, "configSource") {
                return Err(alloc::format!(
                    "node \"{node}\" is not allowed to update configSource to a new non-nil configSource"
                ));
            }
            if taints(old) != taints(new) {
                return Err(alloc::format!(
                    "node \"{node}\" is not allowed to modify taints"
                ));
            }
            if unschedulable(old) != unschedulable(new) {
                return Err(alloc::format!(
                    "node \"{node}\" is not allowed to modify spec.unschedulable"
                ));
            }
            if list_at(old, "/metadata/ownerReferences")
                != list_at(new, "/metadata/ownerReferences")
            {
                return Err(alloc::format!(
                    "node \"{node}\" is not allowed to modify ownerReferences"
                ));
            }
            let forbidden = forbidden_labels(&modified_keys(&labels(new), &labels(old)));
            if !forbidden.is_empty() {
                // sic: kube leaves the node out of this one.
                return Err(alloc::format!(
                    "is not allowed to modify labels: {}",
                    forbidden.join(", ")
                ));
            }
            let enclave: Vec<String> = modified_keys(&annotations(new), &annotations(old))
                .into_iter()
                .filter(|k| k.starts_with(ENCLAVE_ANNOTATION_PREFIX))
                .collect();
            if !enclave.is_empty() {
                return Err(alloc::format!(
                    "node \"{node}\" is not allowed to modify annotations: {}",
                    enclave.join(", ")
                ));
            }
            Ok(())
        }
        Operation::Delete(_) => Ok(()),
    }
}

/// `admitLease`: only its own Lease, only in `kube-node-lease`.
fn lease(node: &str, attempt: &Attempt<'_>) -> Result<(), String> {
    if attempt.namespace != NODE_LEASE_NAMESPACE {
        return Err(alloc::format!(
            "can only access leases in the \"{NODE_LEASE_NAMESPACE}\" system namespace"
        ));
    }
    let name = match attempt.operation {
        Operation::Create(new) => crate::json::str_at(new, "/metadata/name"),
        _ => attempt.name,
    };
    if name != node {
        return Err("can only access node lease with the same name as the requesting node".into());
    }
    Ok(())
}

/// `admitCSINode`: only its own CSINode.
fn csi_node(node: &str, attempt: &Attempt<'_>) -> Result<(), String> {
    let name = match attempt.operation {
        Operation::Create(new) => crate::json::str_at(new, "/metadata/name"),
        _ => attempt.name,
    };
    if name != node {
        return Err("can only access CSINode with the same name as the requesting node".into());
    }
    Ok(())
}

/// The labels among `modified` a node may not add, change or remove on its Node
/// (`getForbiddenLabels`), sorted.
pub(crate) fn forbidden_labels(modified: &BTreeSet<String>) -> Vec<String> {
    modified
        .iter()
        .filter(|key| {
            let namespace = key.split_once('/').map_or("", |(ns, _)| ns);
            let restricted = namespace == NODE_RESTRICTION_NAMESPACE
                || namespace.ends_with(&alloc::format!(".{NODE_RESTRICTION_NAMESPACE}"));
            restricted || (is_kubernetes_label(namespace) && !is_kubelet_label(key, namespace))
        })
        .cloned()
        .collect()
}

/// The refusal of a node's own `register-worker` labels: the create wording for a new Node, the
/// update wording for one that exists (its stored labels are what it changes).
pub(crate) fn check_registration_labels(
    node: &str,
    old: Option<&Value>,
    new: &Value,
) -> Result<(), Error> {
    let before = old.map(labels).unwrap_or_default();
    let forbidden = forbidden_labels(&modified_keys(&labels(new), &before));
    if forbidden.is_empty() {
        return Ok(());
    }
    let message = if old.is_some() {
        alloc::format!("is not allowed to modify labels: {}", forbidden.join(", "))
    } else {
        alloc::format!(
            "node \"{node}\" is not allowed to set the following labels: {}",
            forbidden.join(", ")
        )
    };
    Err(crate::authz::forbidden_error("nodes", node, &message))
}

/// `isKubernetesLabel`: the namespace is `kubernetes.io`, `k8s.io` or a subdomain of either.
fn is_kubernetes_label(namespace: &str) -> bool {
    ["kubernetes.io", "k8s.io"]
        .iter()
        .any(|d| namespace == *d || namespace.ends_with(&alloc::format!(".{d}")))
}

/// `kubeletapis.IsKubeletLabel`.
fn is_kubelet_label(key: &str, namespace: &str) -> bool {
    KUBELET_LABELS.contains(&key)
        || KUBELET_LABEL_NAMESPACES
            .iter()
            .any(|d| namespace == *d || namespace.ends_with(&alloc::format!(".{d}")))
}

/// Keys whose values differ between `a` and `b`, present in either (`getModifiedLabels`).
fn modified_keys(a: &Map<String, Value>, b: &Map<String, Value>) -> BTreeSet<String> {
    a.iter()
        .filter(|(k, v)| b.get(*k) != Some(*v))
        .chain(b.iter().filter(|(k, v)| a.get(*k) != Some(*v)))
        .map(|(k, _)| k.clone())
        .collect()
}

fn labels(obj: &Value) -> Map<String, Value> {
    map_at(obj, "/metadata/labels")
}

fn annotations(obj: &Value) -> Map<String, Value> {
    map_at(obj, "/metadata/annotations")
}

/// The object at `pointer`; absent, `null` and `{}` all read as empty, as Go's maps do.
fn map_at(obj: &Value, pointer: &str) -> Map<String, Value> {
    obj.pointer(pointer)
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// The list at `pointer`; absent, `null` and `[]` all read as empty (kube's semantic equality).
fn list_at<'a>(obj: &'a Value, pointer: &str) -> &'a [Value] {
    obj.pointer(pointer)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn spec<'a>(obj: &'a Value, field: &str) -> &'a Value {
    obj.get("spec")
        .and_then(|s| s.get(field))
        .unwrap_or(&Value::Null)
}

fn node_name(pod: &Value) -> &str {
    crate::json::str_at(pod, "/spec/nodeName")
}

fn unschedulable(node: &Value) -> bool {
    spec(node, "unschedulable").as_bool().unwrap_or(false)
}

/// Taints as Go decodes them: an empty `value` and a missing one are the same.
fn taints(node: &Value) -> Vec<(&str, &str, &str, &Value)> {
    list_at(node, "/spec/taints")
        .iter()
        .map(|t| {
            let text = |f: &str| t.get(f).and_then(Value::as_str).unwrap_or("");
            (
                text("key"),
                text("value"),
                text("effect"),
                t.get("timeAdded").unwrap_or(&Value::Null),
            )
        })
        .collect()
}

/// `status.resourceClaimStatuses` as `resourceClaimStatusesEqual` compares them.
fn claim_statuses(pod: &Value) -> Vec<(&str, Option<&str>)> {
    list_at(pod, "/status/resourceClaimStatuses")
        .iter()
        .map(|s| {
            (
                s.get("name").and_then(Value::as_str).unwrap_or(""),
                s.get("resourceClaimName").and_then(Value::as_str),
            )
        })
        .collect()
}

fn name_of(operation: Operation<'_>) -> &'static str {
    match operation {
        Operation::Create(_) => "CREATE",
        Operation::Update { .. } => "UPDATE",
        Operation::Delete(_) => "DELETE",
    }
}

/// `admitServiceAccount`: a node may ask a token (`serviceaccounts/<name>/token`) only bound to
/// a pod, by name and uid, that is scheduled on it, so a token it gets dies with that pod. kube
/// then fills in the node binding itself.
pub(crate) fn token_request(
    node: &str,
    namespace: &str,
    account: &str,
    request: &Value,
    store: &Store,
) -> Result<(), Error> {
    let refuse = |message: &str| crate::authz::forbidden_error("serviceaccounts", account, message);
    let reference = request
        .pointer("/spec/boundObjectRef")
        .filter(|r| !r.is_null());
    let text = |key: &str| {
        reference
            .and_then(|r| r.get(key))
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    if reference.is_none() || text("apiVersion") != "v1" || text("kind") != "Pod" {
        return Err(refuse("node requested token not bound to a pod"));
    }
    let (pod_name, pod_uid) = (text("name"), text("uid"));
    if pod_name.is_empty() {
        return Err(refuse("node requested token not bound to a pod"));
    }
    if pod_uid.is_empty() {
        return Err(refuse(
            "node requested token with a pod binding without a uid",
        ));
    }
    // kube reads the pod from its informer, whose lister names the resource `pod`.
    let Some(stored) = store.get(&ObjectKey::new(ResourceId::Pods, namespace, pod_name)) else {
        return Err(Error::NotFound {
            resource: "pod".into(),
            name: pod_name.into(),
        });
    };
    let pod: Value = serde_json::from_slice(&stored.json.bytes())
        .map_err(|_| refuse("the stored pod does not parse"))?;
    let field = |pointer: &str| pod.pointer(pointer).and_then(Value::as_str).unwrap_or("");
    if field("/metadata/uid") != pod_uid {
        return Err(refuse(&alloc::format!(
            "the UID in the bound object reference ({pod_uid}) does not match the UID in record. The object might have been deleted and then recreated"
        )));
    }
    if field("/spec/nodeName") != node {
        return Err(refuse(
            "node requested token bound to a pod scheduled on a different node",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kubelet_label_allowlist_is_kubes() {
        let keys: BTreeSet<String> = [
            "kubernetes.io/hostname",
            "kubernetes.io/os",
            "topology.kubernetes.io/zone",
            "node.kubernetes.io/instance-type",
            "node.kubernetes.io/anything",
            "x.kubelet.kubernetes.io/y",
            "example.com/role",
            "nautilus.io/simulated",
            "plain",
            "node-role.kubernetes.io/control-plane",
            "node-restriction.kubernetes.io/x",
            "a.node-restriction.kubernetes.io/x",
            "kubernetes.io/foo",
            "k8s.io/foo",
            "sub.k8s.io/foo",
            "topology.kubernetes.io/other",
        ]
        .iter()
        .map(|s| String::from(*s))
        .collect();
        assert_eq!(
            forbidden_labels(&keys),
            [
                "a.node-restriction.kubernetes.io/x",
                "k8s.io/foo",
                "kubernetes.io/foo",
                "node-restriction.kubernetes.io/x",
                "node-role.kubernetes.io/control-plane",
                "sub.k8s.io/foo",
                "topology.kubernetes.io/other",
            ]
        );
    }
}
