//! The pod garbage collector, as kube-controller-manager's PodGC (v1.32) does it, per node:
//!
//! - pods bound to a node that does not exist are marked Failed (condition `DisruptionTarget`,
//!   reason `DeletionByPodGC`) and force-deleted; a node seen deleted is acted on at once, a
//!   node never seen after kube's 40 s quarantine (it may be registering);
//! - terminating pods on a node that is not Ready and carries the
//!   `node.kubernetes.io/out-of-service` taint (an operator's word that it is down) are marked
//!   Failed and force-deleted;
//! - terminating pods never bound to a node are marked Failed and force-deleted.
//!
//! Like kube's, it leaves terminating pods on a node that is merely NotReady or unreachable: they
//! wait for that node's kubelet, its deletion, or the out-of-service taint.

use alloc::string::String;
use alloc::vec::Vec;
use serde_json::{Value, json};

use super::{Queue, deleting, update_pod_condition};
use crate::cluster::Cluster;
use crate::cluster::deletion::DeleteOptions;
use crate::resource::ResourceId;
use crate::store::ObjectKey;
use crate::{UnixTime, json as j};

/// Taint an operator puts on a node that is shut down for good (non-graceful node shutdown).
pub(crate) const OUT_OF_SERVICE: &str = "node.kubernetes.io/out-of-service";

/// kube's PodGC `quarantineTime`: how long a pod's unknown node may take to appear.
pub(crate) const QUARANTINE_SECS: u64 = 40;

/// Whether `node` is out of service as PodGC's `gcTerminating` sees it: not Ready and tainted
/// `node.kubernetes.io/out-of-service`.
pub(crate) fn out_of_service(node: &Value) -> bool {
    let ready = node
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| j::str_at(c, "/type") == "Ready" && j::str_at(c, "/status") == "True");
    let tainted = node
        .pointer("/spec/taints")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|t| j::str_at(t, "/key") == OUT_OF_SERVICE);
    !ready && tainted
}

impl Cluster {
    /// PodGC's pass over the pods bound to `node`.
    pub(crate) fn sync_pod_gc(&mut self, now: UnixTime, node: &str) {
        let node_key = ObjectKey::new(ResourceId::Nodes, "", node);
        let (orphaned, terminating_only) = match self.load(&node_key) {
            None => (true, false),
            Some(n) if out_of_service(&n) => (false, true),
            Some(_) => return,
        };
        let pods: Vec<ObjectKey> = self
            .store
            .pods_on(node)
            .map(|(key, _)| key.clone())
            .collect();
        for key in pods {
            let Some(pod) = self.load(&key) else {
                continue;
            };
            if terminating_only && !deleting(&pod) {
                continue;
            }
            let condition = orphaned.then(|| {
                json!({"type": "DisruptionTarget", "status": "True",
                    "reason": "DeletionByPodGC", "message": "PodGC: node no longer exists"})
            });
            // A failed write (the store refuses) is retried on the next change of the pod.
            self.mark_failed_and_force_delete(now, &key, pod, condition);
        }
    }

    /// PodGC's `gcUnscheduledTerminating` for one pod: a pod being deleted that has no node
    /// (its finalizers hold it) is marked Failed and force-deleted.
    pub(crate) fn gc_unscheduled_terminating(&mut self, now: UnixTime, key: &ObjectKey) {
        let Some(pod) = self.load(key) else {
            return;
        };
        if deleting(&pod) && j::str_at(&pod, "/spec/nodeName").is_empty() {
            self.mark_failed_and_force_delete(now, key, pod, None);
        }
    }

    /// kube's `markFailedAndDeletePodWithCondition`: a pod not yet Succeeded or Failed is set
    /// Failed (with `condition`, if any) so it does not stay Running with no kubelet to say
    /// otherwise, then deleted with grace 0.
    fn mark_failed_and_force_delete(
        &mut self,
        now: UnixTime,
        key: &ObjectKey,
        mut pod: Value,
        condition: Option<Value>,
    ) {
        if !matches!(j::str_at(&pod, "/status/phase"), "Succeeded" | "Failed") {
            let changed = set_status(&mut pod, now, "Failed", condition);
            if changed && self.controller_write(now, key, &mut pod).is_err() {
                return;
            }
        }
        let _ = self.controller_delete(now, key, pod, &DeleteOptions::force());
    }

    /// Routes one pod change to PodGC: its node unknown (checked again after the quarantine),
    /// out of service while it terminates, or none while it terminates.
    pub(crate) fn pod_gc_observe(&mut self, now: UnixTime, key: &ObjectKey, pod: &Value) {
        let node = j::str_at(pod, "/spec/nodeName");
        if node.is_empty() {
            if deleting(pod) && !matches!(j::str_at(pod, "/status/phase"), "Succeeded" | "Failed") {
                self.controllers
                    .enqueue(Queue::UnscheduledPod, &key.namespace, &key.name);
            }
            return;
        }
        let node_key = ObjectKey::new(ResourceId::Nodes, "", node);
        match self.store.get(&node_key) {
            None => {
                self.controllers
                    .requeue_at(now.plus_secs(QUARANTINE_SECS), Queue::PodGc, "", node)
            }
            Some(_) if deleting(pod) && self.controllers.out_of_service.contains(node) => {
                self.controllers.enqueue(Queue::PodGc, "", node);
            }
            Some(_) => {}
        }
    }

    /// Routes one node change to PodGC: a deleted node orphans its pods at once; a node out of
    /// service releases its terminating ones.
    pub(crate) fn pod_gc_observe_node(&mut self, name: &str, node: Option<&Value>) {
        let out = node.is_some_and(out_of_service);
        if out {
            self.controllers.out_of_service.insert(String::from(name));
        } else {
            self.controllers.out_of_service.remove(name);
        }
        if node.is_none() || out {
            self.controllers.enqueue(Queue::PodGc, "", name);
        }
    }
}

/// Sets `status.phase` and, if given, a condition (kube's `UpdatePodCondition`: its
/// `lastTransitionTime` moves only when its status changes); whether anything changed.
fn set_status(pod: &mut Value, now: UnixTime, phase: &str, condition: Option<Value>) -> bool {
    let Some(map) = pod.as_object_mut() else {
        return false;
    };
    let status = map.entry("status").or_insert_with(|| json!({}));
    if !status.is_object() {
        *status = json!({});
    }
    let Some(status) = status.as_object_mut() else {
        return false;
    };
    let mut changed = status.get("phase").and_then(Value::as_str) != Some(phase);
    status.insert("phase".into(), Value::from(phase));
    if let Some(condition) = condition {
        changed |= update_pod_condition(status, now, condition);
    }
    changed
}
