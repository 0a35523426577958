//! Node lifecycle, as kube-controller-manager's node lifecycle controller and taint manager do
//! it: a node whose heartbeats (Lease renewals or Ready status posts) stop for the grace period
//! turns `Ready=Unknown` and gets the `node.kubernetes.io/unreachable` NoSchedule and NoExecute
//! taints; its pods are evicted once their toleration of that taint runs out (immediately when
//! they have none); a heartbeat brings the node back and lifts the taints. Heartbeats are timed
//! by the server's clock when it sees them, never by the worker's.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;
use alloc::vec::Vec;
use serde_json::{Value, json};

use super::events::Involved;
use crate::cluster::Cluster;
use crate::cluster::WriteContext;
use crate::cluster::deletion::DeleteOptions;
use crate::resource::ResourceId;
use crate::store::ObjectKey;
use crate::{UnixTime, json as j};

/// Taint key for nodes whose heartbeats stopped.
pub(crate) const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
const COMPONENT: &str = "node-controller";

#[derive(Debug, Clone, Copy)]
struct NodeHealth {
    last_heartbeat: UnixTime,
    /// Set while the node is marked unreachable (the NoExecute taint's `timeAdded`).
    unreachable_since: Option<UnixTime>,
    /// A heartbeat arrived while unreachable; the next run lifts the taints.
    recovered: bool,
    /// When this node next needs the controller (its entry in `NodeLifecycle::deadlines`):
    /// the end of its grace period, at once after a recovery, or its next pod eviction.
    due: Option<UnixTime>,
}

/// Heartbeat bookkeeping for every known node, with each node's next deadline in an ordered
/// set, so that a heartbeat and a run cost O(log n) for the nodes concerned, never a pass over
/// all of them (10,000 stakers heartbeat 1,000 times a second).
#[derive(Debug, Default)]
pub(crate) struct NodeLifecycle {
    nodes: BTreeMap<String, NodeHealth>,
    deadlines: BTreeSet<(UnixTime, String)>,
    /// Nodes looked at by runs since start: the work the lifecycle does, which must follow
    /// the nodes that are due, not the nodes that exist.
    visits: u64,
}

impl NodeLifecycle {
    /// When the lifecycle next has work.
    pub(crate) fn due(&self) -> Option<UnixTime> {
        self.deadlines.first().map(|(at, _)| *at)
    }

    /// Moves `node`'s deadline to `due` (none: nothing to do until its next heartbeat).
    fn reschedule(&mut self, node: &str, due: Option<UnixTime>) {
        let Some(health) = self.nodes.get_mut(node) else {
            return;
        };
        let old = core::mem::replace(&mut health.due, due);
        if old == due {
            return;
        }
        if let Some(old) = old {
            self.deadlines.remove(&(old, String::from(node)));
        }
        if let Some(due) = due {
            self.deadlines.insert((due, String::from(node)));
        }
    }

    fn heartbeat(&mut self, node: &str, now: UnixTime, grace_secs: u64) {
        let health = self.nodes.entry(node.into()).or_insert(NodeHealth {
            last_heartbeat: now,
            unreachable_since: None,
            recovered: false,
            due: None,
        });
        health.last_heartbeat = now;
        let due = if health.unreachable_since.is_some() {
            health.recovered = true;
            UnixTime::default()
        } else {
            now.plus_secs(grace_secs)
        };
        self.reschedule(node, Some(due));
    }

    /// A restarted server has heard from nobody yet: every reachable node (`nodes`, all the
    /// store holds) gets a full grace period from `now`, as kube's node lifecycle controller
    /// gives the nodes it first sees, instead of being found late by the downtime.
    pub(crate) fn restarted(&mut self, now: UnixTime, grace_secs: u64, nodes: Vec<String>) {
        for name in nodes {
            let health = self.nodes.entry(name.clone()).or_insert(NodeHealth {
                last_heartbeat: now,
                unreachable_since: None,
                recovered: false,
                due: None,
            });
            if health.unreachable_since.is_some() {
                continue;
            }
            health.last_heartbeat = health.last_heartbeat.max(now);
            self.reschedule(&name, Some(now.plus_secs(grace_secs)));
        }
    }

    fn forget(&mut self, node: &str) {
        if let Some(health) = self.nodes.remove(node)
            && let Some(due) = health.due
        {
            self.deadlines.remove(&(due, String::from(node)));
        }
    }

    /// Takes the first node whose deadline is at or before `now`.
    fn pop_due(&mut self, now: UnixTime) -> Option<(String, NodeHealth)> {
        if self.deadlines.first().is_none_or(|(at, _)| *at > now) {
            return None;
        }
        let (_, name) = self.deadlines.pop_first()?;
        let health = self.nodes.get_mut(&name)?;
        health.due = None;
        self.visits = self.visits.saturating_add(1);
        Some((name, *health))
    }

    /// Nodes looked at by runs since start.
    /// Each node's last heartbeat.
    #[cfg(test)]
    pub(crate) fn heartbeats(&self) -> Vec<(String, UnixTime)> {
        self.nodes
            .iter()
            .map(|(name, h)| (name.clone(), h.last_heartbeat))
            .collect()
    }

    #[cfg(test)]
    pub(crate) fn visits(&self) -> u64 {
        self.visits
    }
}

/// Node counts by readiness, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeReadiness {
    /// Node objects in the store.
    pub registered: usize,
    /// Nodes whose heartbeats arrive within the grace period.
    pub ready: usize,
    /// Nodes marked `Ready=Unknown` (heartbeats stopped), until a heartbeat brings them back.
    pub unreachable: usize,
}

impl NodeReadiness {
    /// Registered nodes that are not ready: unreachable ones, and nodes that never sent a
    /// heartbeat (created but no kubelet or worker behind them).
    pub fn not_ready(&self) -> usize {
        self.registered.saturating_sub(self.ready)
    }
}

impl Cluster {
    /// Node counts by readiness: one pass over the heartbeat table (no store scan), taken at
    /// scrape time.
    pub fn node_readiness(&self) -> NodeReadiness {
        let unreachable = self
            .lifecycle
            .nodes
            .values()
            .filter(|h| h.unreachable_since.is_some() && !h.recovered)
            .count();
        let registered = self.store.count(ResourceId::Nodes);
        NodeReadiness {
            registered,
            ready: self
                .lifecycle
                .nodes
                .len()
                .saturating_sub(unreachable)
                .min(registered),
            unreachable,
        }
    }

    /// Seal-token validation outcomes since start.
    pub fn token_stats(&self) -> crate::token::TokenStats {
        self.tokens.stats()
    }
}

fn ready_condition(node: &Value) -> Option<&Value> {
    node.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
}

/// What the node lifecycle compares in a Node's or a Lease's previous version: its
/// `status.conditions` and its `spec.renewTime`, as a small object of the same shape. Every
/// heartbeat rewrites a Node and a Lease; reading only these fields (serde skips the rest
/// without building it) instead of the whole previous object took a full parse off each.
pub(crate) fn lifecycle_fields(json: &[u8]) -> Option<Value> {
    #[derive(serde::Deserialize)]
    struct Previous {
        #[serde(default)]
        status: Option<Status>,
        #[serde(default)]
        spec: Option<Spec>,
    }
    #[derive(serde::Deserialize)]
    struct Status {
        #[serde(default)]
        conditions: Option<Value>,
    }
    #[derive(serde::Deserialize)]
    struct Spec {
        #[serde(default, rename = "renewTime")]
        renew_time: Option<Value>,
    }
    let previous: Previous = serde_json::from_slice(json).ok()?;
    let mut old = serde_json::Map::new();
    if let Some(conditions) = previous.status.and_then(|s| s.conditions) {
        old.insert(
            "status".into(),
            serde_json::json!({ "conditions": conditions }),
        );
    }
    if let Some(renew_time) = previous.spec.and_then(|s| s.renew_time) {
        old.insert(
            "spec".into(),
            serde_json::json!({ "renewTime": renew_time }),
        );
    }
    Some(Value::Object(old))
}

/// Whether the stored Node `json` posts `Ready=True`, read from its conditions alone (a
/// heartbeat asks this of a whole Node every time; `false` for an unreadable one).
pub(crate) fn posts_ready(json: &[u8]) -> bool {
    lifecycle_fields(json).is_some_and(|node| {
        ready_condition(&node)
            .and_then(|c| c.get("status"))
            .and_then(Value::as_str)
            == Some("True")
    })
}

impl Cluster {
    /// Notes a request-driven write of `obj` (`old` before it) for heartbeat tracking.
    pub(crate) fn observe_for_lifecycle(
        &mut self,
        now: UnixTime,
        resource: ResourceId,
        obj: &Value,
        old: Option<&Value>,
    ) {
        let grace = self.config.node_grace_secs;
        match resource {
            ResourceId::Nodes => {
                let ready = ready_condition(obj);
                let posted_ready =
                    ready.and_then(|c| c.get("status")).and_then(Value::as_str) == Some("True");
                let changed = old.is_none_or(|o| ready_condition(o) != ready);
                if posted_ready && changed {
                    self.lifecycle
                        .heartbeat(j::str_at(obj, "/metadata/name"), now, grace);
                }
            }
            ResourceId::Leases if j::str_at(obj, "/metadata/namespace") == "kube-node-lease" => {
                let renewed = old
                    .is_none_or(|o| o.pointer("/spec/renewTime") != obj.pointer("/spec/renewTime"));
                let name = j::str_at(obj, "/metadata/name");
                let node_exists = self
                    .store
                    .get(&ObjectKey::new(ResourceId::Nodes, "", name))
                    .is_some();
                if renewed && node_exists {
                    self.lifecycle.heartbeat(name, now, grace);
                }
            }
            // A pod bound to (or changed on) an unreachable node: the taint manager looks at
            // that node again, as kube's does on pod updates.
            ResourceId::Pods => {
                let node = j::str_at(obj, "/spec/nodeName");
                let waiting = self
                    .lifecycle
                    .nodes
                    .get(node)
                    .is_some_and(|h| h.unreachable_since.is_some() && !h.recovered);
                if waiting {
                    self.lifecycle.reschedule(node, Some(UnixTime::default()));
                }
            }
            _ => {}
        }
    }

    /// Forgets a deleted node.
    pub(crate) fn forget_node(&mut self, name: &str) {
        self.lifecycle.forget(name);
        self.registrations.observe(name, None);
    }

    /// Runs the node lifecycle at `now` for the nodes whose deadline has come: marks nodes
    /// unreachable, lifts the taints of recovered ones, and evicts pods whose toleration ran out.
    pub(crate) fn run_node_lifecycle(&mut self, now: UnixTime) {
        let grace = self.config.node_grace_secs;
        while let Some((name, health)) = self.lifecycle.pop_due(now) {
            if self
                .store
                .get(&ObjectKey::new(ResourceId::Nodes, "", &name))
                .is_none()
            {
                self.lifecycle.forget(&name);
                continue;
            }
            if health.recovered {
                self.set_reachable(now, &name);
                if let Some(h) = self.lifecycle.nodes.get_mut(&name) {
                    h.recovered = false;
                    h.unreachable_since = None;
                }
                let due = health.last_heartbeat.plus_secs(grace).max(now);
                self.lifecycle.reschedule(&name, Some(due));
                continue;
            }
            let since = match health.unreachable_since {
                Some(since) => since,
                None if now >= health.last_heartbeat.plus_secs(grace) => {
                    self.set_unreachable(now, &name);
                    if let Some(h) = self.lifecycle.nodes.get_mut(&name) {
                        h.unreachable_since = Some(now);
                    }
                    now
                }
                None => {
                    let due = health.last_heartbeat.plus_secs(grace);
                    self.lifecycle.reschedule(&name, Some(due));
                    continue;
                }
            };
            let next = self.evict_pods(now, &name, since);
            self.lifecycle.reschedule(&name, next);
        }
    }

    fn update_node(
        &mut self,
        now: UnixTime,
        name: &str,
        change: impl FnOnce(&mut Value) -> bool,
    ) -> Option<Value> {
        let key = ObjectKey::new(ResourceId::Nodes, "", name);
        let mut node: Value = serde_json::from_slice(&self.store.get(&key)?.json.bytes()).ok()?;
        if !change(&mut node) {
            return Some(node);
        }
        self.write_existing(&WriteContext::server(now), &key, &mut node)
            .ok()?;
        Some(node)
    }

    fn set_unreachable(&mut self, now: UnixTime, name: &str) {
        let stamp = now.rfc3339();
        let node = self.update_node(now, name, |node| {
            let Some(map) = node.as_object_mut() else {
                return false;
            };
            let status = map.entry("status").or_insert_with(|| json!({}));
            if let Some(status) = status.as_object_mut() {
                let conditions = status.entry("conditions").or_insert_with(|| json!([]));
                if let Some(list) = conditions.as_array_mut() {
                    list.retain(|c| c.get("type").and_then(Value::as_str) != Some("Ready"));
                    list.push(json!({
                        "type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown",
                        "message": "Kubelet stopped posting node status.",
                        "lastHeartbeatTime": stamp, "lastTransitionTime": stamp,
                    }));
                }
            }
            let spec = map.entry("spec").or_insert_with(|| json!({}));
            if let Some(spec) = spec.as_object_mut() {
                let taints = spec.entry("taints").or_insert_with(|| json!([]));
                if let Some(list) = taints.as_array_mut() {
                    list.retain(|t| t.get("key").and_then(Value::as_str) != Some(UNREACHABLE));
                    list.push(
                        json!({"key": UNREACHABLE, "effect": "NoSchedule", "timeAdded": stamp}),
                    );
                    list.push(
                        json!({"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": stamp}),
                    );
                }
            }
            true
        });
        if let Some(node) = node {
            let message = alloc::format!("Node {name} status is now: NodeNotReady");
            self.record_event(
                now,
                &Involved::of(&node),
                "Normal",
                "NodeNotReady",
                &message,
                COMPONENT,
            );
        }
    }

    fn set_reachable(&mut self, now: UnixTime, name: &str) {
        let node = self.update_node(now, name, |node| {
            let Some(list) = node
                .pointer_mut("/spec/taints")
                .and_then(Value::as_array_mut)
            else {
                return false;
            };
            let before = list.len();
            list.retain(|t| t.get("key").and_then(Value::as_str) != Some(UNREACHABLE));
            before != list.len()
        });
        if let Some(node) = node {
            let message = alloc::format!("Node {name} status is now: NodeReady");
            self.record_event(
                now,
                &Involved::of(&node),
                "Normal",
                "NodeReady",
                &message,
                COMPONENT,
            );
        }
    }

    /// Evicts the pods on `node` whose toleration of the unreachable NoExecute taint (added at
    /// `since`) has run out; returns when the next one is due.
    fn evict_pods(&mut self, now: UnixTime, node: &str, since: UnixTime) -> Option<UnixTime> {
        let mut due_now = Vec::new();
        let mut next: Option<UnixTime> = None;
        for (key, object) in self.store.pods_on(node) {
            let Ok(pod) = serde_json::from_slice::<Value>(&object.json.bytes()) else {
                continue;
            };
            if pod.pointer("/metadata/deletionTimestamp").is_some() {
                continue;
            }
            match toleration_seconds(&pod, UNREACHABLE) {
                Toleration::None => due_now.push(key.clone()),
                Toleration::Forever => {}
                Toleration::For(secs) => {
                    let due = since.plus_secs(secs);
                    if now >= due {
                        due_now.push(key.clone());
                    } else {
                        next = Some(next.map_or(due, |n| n.min(due)));
                    }
                }
            }
        }
        for key in due_now {
            self.evict_pod(now, &key);
        }
        next
    }
}

impl Cluster {
    /// Evicts a pod for a NoExecute taint as kube's taint-eviction controller does: the event,
    /// the `DisruptionTarget` condition (reason `DeletionByTaintManager`), then a delete with
    /// empty options, so a pod bound to a node terminates gracefully. A pod already being
    /// deleted is left alone.
    pub(crate) fn evict_pod(&mut self, now: UnixTime, key: &ObjectKey) {
        let Some(mut pod) = self.load(key) else {
            return;
        };
        if super::deleting(&pod) {
            return;
        }
        let message = alloc::format!("Marking for deletion Pod {}/{}", key.namespace, key.name);
        self.record_event(
            now,
            &Involved::of(&pod),
            "Normal",
            "TaintManagerEviction",
            &message,
            "taint-eviction-controller",
        );
        let condition = json!({"type": "DisruptionTarget", "status": "True",
            "reason": "DeletionByTaintManager",
            "message": "Taint manager: deleting due to NoExecute taint"});
        let changed = super::mark_pod(&mut pod, now, condition);
        if changed
            && self
                .write_existing(&WriteContext::server(now), key, &mut pod)
                .is_err()
        {
            return;
        }
        let _ = self.delete_object(
            &WriteContext::server(now),
            key,
            pod,
            &DeleteOptions::default(),
        );
    }
}

/// How long a pod tolerates a NoExecute taint.
pub(crate) enum Toleration {
    None,
    Forever,
    For(u64),
}

/// One toleration, compiled: the single matcher the scheduler's taint filter and the taint
/// manager's evictions share (kube's `Toleration.ToleratesTaint`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TolerationRule {
    key: String,
    /// `Exists`; otherwise `Equal` (the default).
    exists: bool,
    /// An operator other than Equal/Exists (admission refuses these): tolerates nothing.
    invalid: bool,
    value: String,
    effect: String,
    /// `tolerationSeconds`; `None` means forever.
    seconds: Option<i64>,
}

impl TolerationRule {
    /// Compiles one `spec.tolerations` entry.
    pub(crate) fn of(t: &Value) -> Self {
        let text = |k: &str| String::from(t.get(k).and_then(Value::as_str).unwrap_or(""));
        let operator = t.get("operator").and_then(Value::as_str).unwrap_or("");
        Self {
            key: text("key"),
            exists: operator == "Exists",
            invalid: !matches!(operator, "" | "Equal" | "Exists"),
            value: text("value"),
            effect: text("effect"),
            seconds: t.get("tolerationSeconds").and_then(Value::as_i64),
        }
    }

    /// Whether this toleration tolerates the taint `key=value:effect`: an empty effect matches
    /// every effect, an empty key with `Exists` matches every key, `Equal` compares values.
    pub(crate) fn tolerates(&self, key: &str, value: &str, effect: &str) -> bool {
        if self.invalid
            || (!self.effect.is_empty() && self.effect != effect)
            || (!self.key.is_empty() && self.key != key)
        {
            return false;
        }
        self.exists || self.value == value
    }
}

/// How long `pod` tolerates the NoExecute taint `taint` (the shortest matching toleration).
pub(crate) fn toleration_seconds(pod: &Value, taint: &str) -> Toleration {
    let mut best = Toleration::None;
    for t in pod
        .pointer("/spec/tolerations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let rule = TolerationRule::of(t);
        if !rule.tolerates(taint, "", "NoExecute") {
            continue;
        }
        let this = match rule.seconds {
            None => Toleration::Forever,
            Some(s) => Toleration::For(u64::try_from(s).unwrap_or(0)),
        };
        best = match (best, this) {
            (Toleration::None, t) => t,
            (Toleration::For(a), Toleration::For(b)) => Toleration::For(a.min(b)),
            (Toleration::For(a), Toleration::Forever | Toleration::None)
            | (Toleration::Forever, Toleration::For(a)) => Toleration::For(a),
            (Toleration::Forever, _) => Toleration::Forever,
        };
    }
    best
}

#[cfg(test)]
mod readiness_tests {
    use super::*;
    use crate::Config;
    use crate::cluster::test_harness::Cluster as Harness;

    fn post_node(c: &mut Harness, name: &str, ready: Option<&str>) {
        let now = c.now;
        let mut node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}});
        if let Some(status) = ready {
            node["status"] = json!({"conditions": [{"type": "Ready", "status": status,
                "lastHeartbeatTime": now.rfc3339(), "lastTransitionTime": now.rfc3339()}]});
        }
        let (code, body) = c.post("/api/v1/nodes", node);
        assert_eq!(code, 201, "{body}");
    }

    #[test]
    fn readiness_counts_follow_the_lifecycle() {
        let mut c = Harness::unsettled(Config {
            node_grace_secs: 40,
            ..Config::default()
        });
        assert_eq!(c.server.node_readiness(), NodeReadiness::default());
        post_node(&mut c, "w1", Some("True"));
        post_node(&mut c, "w2", Some("True"));
        // A node object nothing heartbeats for is registered but not ready.
        post_node(&mut c, "idle", None);
        let counts = c.server.node_readiness();
        assert_eq!(
            (counts.registered, counts.ready, counts.unreachable),
            (3, 2, 0)
        );
        assert_eq!(counts.not_ready(), 1);
        // Past the grace period with no heartbeat, both turn Ready=Unknown.
        let later = c.now.plus_secs(41);
        c.server.handle_timeout(later);
        let counts = c.server.node_readiness();
        assert_eq!(
            (counts.registered, counts.ready, counts.unreachable),
            (3, 0, 2)
        );
        assert_eq!(counts.not_ready(), 3);
    }
}

#[cfg(test)]
mod lifecycle_fields_tests {
    use super::{lifecycle_fields, posts_ready};
    use serde_json::json;

    /// The small object answers what the lifecycle asks of the whole one: the Ready condition
    /// of a Node, the renewTime of a Lease; and an unreadable version reads as no version.
    #[test]
    fn the_lifecycle_sees_the_same_ready_condition_and_renew_time() {
        let node = json!({"kind": "Node", "metadata": {"name": "n", "labels": {"a": "b"}},
            "spec": {"podCIDR": "10.0.0.0/24", "taints": [{"key": "k", "effect": "NoSchedule"}]},
            "status": {"conditions": [{"type": "MemoryPressure", "status": "False"},
                {"type": "Ready", "status": "True", "lastHeartbeatTime": "2026-12-06T00:00:00Z"}],
                "images": [{"names": ["x"], "sizeBytes": 1}], "nodeInfo": {"kubeletVersion": "v1.32.0"}}});
        let small = lifecycle_fields(&serde_json::to_vec(&node).unwrap()).unwrap();
        assert_eq!(
            small.pointer("/status/conditions"),
            node.pointer("/status/conditions")
        );
        let lease = json!({"kind": "Lease", "metadata": {"name": "n", "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": "n", "leaseDurationSeconds": 40, "renewTime": "2026-12-06T00:00:00.000001Z"}});
        let small = lifecycle_fields(&serde_json::to_vec(&lease).unwrap()).unwrap();
        assert_eq!(
            small.pointer("/spec/renewTime"),
            lease.pointer("/spec/renewTime")
        );
        assert_eq!(small.pointer("/status"), None);
        assert_eq!(lifecycle_fields(b"{\"status\": 3}"), None);
        assert_eq!(lifecycle_fields(b"not json"), None);
    }

    /// Ready is read from the Ready condition's status alone, whatever else the Node holds.
    #[test]
    fn posts_ready_reads_the_ready_condition() {
        let node = |status: &str| {
            serde_json::to_vec(
                &json!({"metadata": {"name": "n"}, "status": {"conditions": [
                {"type": "DiskPressure", "status": "True"}, {"type": "Ready", "status": status}]}}),
            )
            .unwrap()
        };
        assert!(posts_ready(&node("True")));
        assert!(!posts_ready(&node("False")));
        assert!(!posts_ready(&node("Unknown")));
        assert!(!posts_ready(
            br#"{"status": {"conditions": [{"type": "DiskPressure", "status": "True"}]}}"#
        ));
        assert!(!posts_ready(br#"{"metadata": {}}"#));
        assert!(!posts_ready(b"not json"));
    }
}
