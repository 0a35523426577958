//! The scheduling workload both `sched_bench` (core only) and `bench --only peer` (ours beside
//! kube-scheduler) use: the same nodes and pods from the same seed.

use serde_json::{Value, json};

/// A small deterministic generator (xorshift) so runs are comparable.
pub struct Rng(pub u64);

impl Rng {
    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// One of `items`, uniformly.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next_u64() % items.len() as u64) as usize]
    }

    /// True `percent` times in a hundred.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }
}

/// Node `i` of a mixed fleet: four sizes, four zones, two disk kinds, a `gen` label 0–7, a
/// NoSchedule taint on every tenth and a PreferNoSchedule one on every twenty-fifth; Ready.
pub fn node(rng: &mut Rng, i: usize) -> Value {
    let (cpu, memory) = *rng.pick(&[("2", "4Gi"), ("4", "8Gi"), ("8", "32Gi"), ("16", "64Gi")]);
    let zone = *rng.pick(&["a", "b", "c", "d"]);
    let disk = *rng.pick(&["ssd", "hdd"]);
    let mut taints = Vec::new();
    if i.is_multiple_of(10) {
        taints.push(json!({"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}));
    }
    if i.is_multiple_of(25) {
        taints.push(json!({"key": "maintenance", "effect": "PreferNoSchedule"}));
    }
    json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": format!("node-{i:04}"), "labels": {
            "kubernetes.io/hostname": format!("node-{i:04}"),
            "topology.kubernetes.io/zone": zone, "disk": disk, "gen": (i % 8).to_string()}},
        "spec": {"taints": taints},
        "status": {"conditions": [{"type": "Ready", "status": "True"}],
            "allocatable": {"cpu": cpu, "memory": memory, "pods": "110"}}})
}

/// Pending pod `i`: mixed requests, some tolerations, node selectors and affinities, one in two
/// hundred impossible to place; owned by one of a hundred ReplicaSets; labelled `bench-seq=i`
/// so that a watcher can tell which pod an event is about.
pub fn pod(rng: &mut Rng, i: usize) -> Value {
    let cpu = *rng.pick(&["50m", "100m", "250m", "500m", "1"]);
    let memory = *rng.pick(&["64Mi", "128Mi", "256Mi", "512Mi", "1Gi"]);
    let mut spec = json!({"containers": [{"name": "app", "image": "nginx",
        "resources": {"requests": {"cpu": cpu, "memory": memory}}}]});
    let Some(map) = spec.as_object_mut() else {
        return spec;
    };
    if rng.chance(10) {
        map.insert(
            "tolerations".into(),
            json!([{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]),
        );
    }
    if rng.chance(20) {
        map.insert("nodeSelector".into(), json!({"disk": "ssd"}));
    }
    if rng.chance(10) {
        map.insert("affinity".into(), json!({"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["a", "b"]},
                {"key": "gen", "operator": "Gt", "values": ["2"]}]}]},
            "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 10, "preference": {
                "matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}}]}}));
    }
    if i.is_multiple_of(200) {
        // Impossible: a label no node has, or more cpu than any node.
        if i.is_multiple_of(400) {
            map.insert("nodeSelector".into(), json!({"pool": "nowhere"}));
        } else {
            map.insert(
                "containers".into(),
                json!([{"name": "app", "image": "nginx", "resources": {"requests": {"cpu": "64"}}}]),
            );
        }
    }
    let owner = i % 100;
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("pod-{i:05}"), "labels": {"app": format!("app-{owner}"), "bench-seq": i.to_string()},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("rs-{owner}"),
                "uid": format!("00000000-0000-4000-8000-{owner:012}"), "controller": true}]},
        "spec": spec})
}
