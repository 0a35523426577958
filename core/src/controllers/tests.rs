//! The node lifecycle driven through hours of heartbeats in virtual time.

use alloc::string::String;
use alloc::vec::Vec;
use serde_json::{Value, json};

use crate::UnixTime;
use crate::cluster::test_harness::Cluster;

fn renew_lease(c: &mut Cluster, node: &str) {
    let body = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": node, "namespace": "kube-node-lease"},
        "spec": {"holderIdentity": node, "leaseDurationSeconds": 40, "renewTime": c.now.rfc3339_micros()}});
    let path =
        alloc::format!("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{node}");
    let (code, _) = c.put(&path, body);
    assert!(code == 200 || code == 201, "lease renewal: {code}");
}

fn ready(c: &mut Cluster, node: &str) -> String {
    let (_, n) = c.get(&alloc::format!("/api/v1/nodes/{node}"));
    n["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap()["status"]
        .as_str()
        .unwrap()
        .into()
}

fn taints(c: &mut Cluster, node: &str) -> Vec<String> {
    let (_, n) = c.get(&alloc::format!("/api/v1/nodes/{node}"));
    n["spec"]["taints"]
        .as_array()
        .map(|t| {
            t.iter()
                .map(|t| {
                    alloc::format!(
                        "{}:{}",
                        t["key"].as_str().unwrap(),
                        t["effect"].as_str().unwrap()
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Whether the taint manager evicted the pod: it is terminating (gracefully: with no
/// kubelet on an unreachable node to confirm, it stays, as in kube) with the
/// `DisruptionTarget` condition the eviction adds.
fn evicted(c: &mut Cluster, name: &str) -> bool {
    let (code, pod) = c.get(&alloc::format!("/api/v1/namespaces/default/pods/{name}"));
    assert_eq!(code, 200, "{pod}");
    let marked = pod["metadata"]["deletionTimestamp"].is_string();
    if marked {
        assert_eq!(pod["metadata"]["deletionGracePeriodSeconds"], 30, "{pod}");
        assert!(
            pod["status"]["conditions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| {
                    c["type"] == "DisruptionTarget" && c["reason"] == "DeletionByTaintManager"
                }),
            "{pod}"
        );
    }
    marked
}
fn node(name: &str, now: UnixTime) -> Value {
    json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
        "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "ready",
            "lastHeartbeatTime": now.rfc3339(), "lastTransitionTime": now.rfc3339()}]}})
}

fn pod(name: &str, node: &str, tolerations: Option<Value>) -> Value {
    let mut spec = json!({"nodeName": node, "containers": [{"name": "c", "image": "nginx"}]});
    if let Some(t) = tolerations {
        spec["tolerations"] = t;
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})
}

#[test]
fn an_hour_of_lease_renewals_never_flaps_then_silence_taints_and_evicts() {
    let mut c = Cluster::new();
    let now = c.now;
    assert_eq!(c.post("/api/v1/nodes", node("w1", now)).0, 201);
    // Default tolerations (300 s, added at admission), none at all, and forever.
    assert_eq!(
        c.post(
            "/api/v1/namespaces/default/pods",
            pod("defaulted", "w1", None)
        )
        .0,
        201
    );
    assert_eq!(
        c.post(
            "/api/v1/namespaces/default/pods",
            pod(
                "bare",
                "w1",
                Some(json!([{"key": "other", "operator": "Exists"}]))
            )
        )
        .0,
        201
    );
    let forever = json!([{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}]);
    assert_eq!(
        c.post(
            "/api/v1/namespaces/default/pods",
            pod("stays", "w1", Some(forever))
        )
        .0,
        201
    );
    // The admission default replaced nothing the user gave.
    let (_, bare) = c.get("/api/v1/namespaces/default/pods/bare");
    assert_eq!(bare["spec"]["tolerations"].as_array().unwrap().len(), 3);

    for _ in 0..360 {
        renew_lease(&mut c, "w1");
        c.advance(10);
        assert_eq!(
            ready(&mut c, "w1"),
            "True",
            "no flap while renewing every 10 s"
        );
    }
    renew_lease(&mut c, "w1");
    let silent_from = c.now;
    c.advance(39);
    assert_eq!(ready(&mut c, "w1"), "True");
    c.advance(2);
    assert_eq!(
        ready(&mut c, "w1"),
        "Unknown",
        "Ready=Unknown within grace + 1 s of the last heartbeat"
    );
    assert!(c.now.secs() - silent_from.secs() <= 41);
    assert_eq!(
        taints(&mut c, "w1"),
        [
            "node.kubernetes.io/unreachable:NoSchedule",
            "node.kubernetes.io/unreachable:NoExecute"
        ]
    );
    // `bare` tolerated the taint only by a wildcard on another key: the admission default of
    // 300 s applies to it too, like DefaultTolerationSeconds.
    c.advance(298);
    assert!(!evicted(&mut c, "defaulted") && !evicted(&mut c, "bare"));
    c.advance(3);
    assert!(
        evicted(&mut c, "defaulted") && evicted(&mut c, "bare"),
        "evicted after tolerationSeconds"
    );
    assert!(
        !evicted(&mut c, "stays"),
        "a toleration without seconds keeps the pod"
    );

    let (_, events) = c.get("/api/v1/namespaces/default/events");
    let reasons: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons.contains(&"NodeNotReady") && reasons.contains(&"TaintManagerEviction"),
        "{reasons:?}"
    );

    renew_lease(&mut c, "w1");
    c.advance(1);
    assert!(
        taints(&mut c, "w1").is_empty(),
        "a heartbeat lifts the taints"
    );
    let (_, events) = c.get("/api/v1/namespaces/default/events");
    assert!(
        events["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["reason"] == "NodeReady")
    );
}

#[test]
fn a_pod_without_any_matching_toleration_is_evicted_at_once() {
    let mut c = Cluster::new();
    let now = c.now;
    let created = c.post("/api/v1/nodes", node("w2", now));
    assert_eq!(created.0, 201, "{}", created.1);
    assert!(c.server.poll_timeout().is_some());
    // A zero-second toleration of its own keeps admission from adding the 300 s default.
    let (code, _) = c.post("/api/v1/namespaces/default/pods", pod("q", "w2", Some(json!([{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 0}]))));
    assert_eq!(code, 201);
    c.advance(41);
    assert_eq!(ready(&mut c, "w2"), "Unknown");
    assert!(evicted(&mut c, "q"));
}
