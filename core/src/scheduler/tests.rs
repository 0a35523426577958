//! The scheduler driven through the API in virtual time: pods created by requests, bound by
//! `handle_timeout`, read back as a client would see them.

use alloc::string::String;
use alloc::vec::Vec;
use core::ops::{Deref, DerefMut};
use serde_json::{Value, json};

use crate::cluster::test_harness::Cluster as Harness;
use crate::{Config, UnixTime};

/// The harness's cluster, its controllers not yet run, with the scheduler's own questions.
struct Cluster(Harness);

impl Deref for Cluster {
    type Target = Harness;
    fn deref(&self) -> &Harness {
        &self.0
    }
}

impl DerefMut for Cluster {
    fn deref_mut(&mut self) -> &mut Harness {
        &mut self.0
    }
}

impl Cluster {
    fn new() -> Self {
        Self::with(Config::default())
    }

    fn with(config: Config) -> Self {
        Self(Harness::unsettled(config))
    }

    fn node(&mut self, name: &str, extra: Value) {
        let mut node = json!({"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                "allocatable": {"cpu": "2", "memory": "4Gi", "pods": "110"}}});
        crate::patch::merge_patch(&mut node, &extra);
        let (code, body) = self.post("/api/v1/nodes", node);
        assert_eq!(code, 201, "{body}");
    }

    fn pod(&mut self, name: &str, spec: Value) -> (u16, Value) {
        let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]}});
        crate::patch::merge_patch(&mut pod, &json!({ "spec": spec }));
        self.post("/api/v1/namespaces/default/pods", pod)
    }

    fn run(&mut self) {
        for _ in 0..100 {
            if self.server.poll_timeout().is_none_or(|t| t > self.now) {
                return;
            }
            self.run_timers();
        }
        panic!("the scheduler does not settle");
    }

    /// Runs what is due now, then lets virtual time pass through the retry backoff (kube's
    /// 1-10 s) of pods woken by a change.
    fn settle(&mut self) {
        self.run();
        for _ in 0..20 {
            match self.server.poll_timeout() {
                Some(due) if due > self.now && due <= self.now.plus_secs(10) => {
                    self.now = due;
                    self.run_timers();
                    self.run();
                }
                _ => return,
            }
        }
    }

    fn get_pod(&mut self, name: &str) -> Value {
        self.get(&alloc::format!("/api/v1/namespaces/default/pods/{name}"))
            .1
    }

    fn node_of(&mut self, name: &str) -> String {
        self.get_pod(name)["spec"]["nodeName"]
            .as_str()
            .unwrap_or("")
            .into()
    }

    fn condition(&mut self, name: &str) -> Value {
        let pod = self.get_pod(name);
        pod["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == "PodScheduled"))
            .cloned()
            .unwrap_or(Value::Null)
    }

    fn events_for(&mut self, name: &str) -> Vec<(String, String, String)> {
        let (_, list) = self.get("/api/v1/namespaces/default/events");
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["involvedObject"]["name"] == name)
            .map(|e| {
                (
                    e["type"].as_str().unwrap().into(),
                    e["reason"].as_str().unwrap().into(),
                    e["message"].as_str().unwrap().into(),
                )
            })
            .collect()
    }
}

#[test]
fn pods_land_on_ready_uncordoned_nodes_with_events() {
    let mut c = Cluster::new();
    c.node("ready", json!({}));
    c.node("cordoned", json!({"spec": {"unschedulable": true}}));
    c.node(
        "notready",
        json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}}),
    );
    assert_eq!(c.pod("web", json!({})).0, 201);
    assert!(
        c.server.poll_timeout().is_some_and(|t| t <= c.now),
        "a pending pod is work due at once"
    );
    assert_eq!(c.server.poll_timeout(), Some(UnixTime::default()));
    c.run();
    assert_eq!(c.node_of("web"), "ready");
    assert_eq!(c.condition("web")["status"], "True");
    assert_eq!(
        c.events_for("web"),
        [(
            "Normal".into(),
            "Scheduled".into(),
            "Successfully assigned default/web to ready".into()
        )]
    );
    let stats = c.server.scheduler_stats();
    assert_eq!(stats.attempts_scheduled, 1);
    assert_eq!(stats.pending_active, 0);
    assert_eq!(stats.latency.count, 1);
    assert!(c.server.poll_timeout().is_none_or(|t| t > c.now));
    // A pod naming another scheduler is left alone.
    c.pod("other", json!({"schedulerName": "someone-else"}));
    c.run();
    assert_eq!(c.node_of("other"), "");
}

#[test]
fn unschedulable_pod_gets_kube_message_and_is_retried_when_a_node_changes() {
    let mut c = Cluster::new();
    c.node("a", json!({}));
    c.node("b", json!({"spec": {"taints": [{"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"}]}}));
    c.node("c", json!({}));
    c.pod("picky", json!({"nodeSelector": {"disk": "ssd"}}));
    c.run();
    let cond = c.condition("picky");
    assert_eq!(cond["status"], "False");
    assert_eq!(cond["reason"], "Unschedulable");
    let message = "0/3 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }, 2 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.";
    assert_eq!(cond["message"], message);
    assert_eq!(
        c.events_for("picky"),
        [("Warning".into(), "FailedScheduling".into(), message.into())]
    );
    assert_eq!(c.server.scheduler_stats().pending_unschedulable, 1);
    assert!(
        !c.server.scheduler.has_immediate_work(),
        "parked pods wait for a change"
    );
    // A heartbeat-like write that changes nothing the filters see does not retry it.
    c.merge_patch(
        "/api/v1/nodes/a",
        json!({"metadata": {"annotations": {"x": "y"}}}),
    );
    assert!(!c.server.scheduler.has_immediate_work());
    c.merge_patch(
        "/api/v1/nodes/c",
        json!({"metadata": {"labels": {"disk": "ssd"}}}),
    );
    assert!(
        c.server.poll_timeout().is_some_and(|t| t <= c.now),
        "a label change retries it"
    );
    c.settle();
    assert_eq!(c.node_of("picky"), "c");
    assert_eq!(c.condition("picky")["status"], "True");
}

#[test]
fn resources_are_accounted_and_freed() {
    let mut c = Cluster::new();
    c.node("small", json!({}));
    let big = json!({"containers": [{"name": "c", "image": "x", "resources": {"requests": {"cpu": "1500m"}}}]});
    c.pod("one", big.clone());
    c.pod("two", big.clone());
    c.run();
    assert_eq!(c.node_of("one"), "small");
    assert_eq!(c.node_of("two"), "");
    assert_eq!(
        c.condition("two")["message"],
        "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."
    );
    // More than any node: unschedulable, not an error.
    c.pod("huge", json!({"containers": [{"name": "c", "image": "x", "resources": {"requests": {"memory": "1Ti"}}}]}));
    c.run();
    assert!(
        c.condition("huge")["message"]
            .as_str()
            .unwrap()
            .contains("1 Insufficient memory")
    );
    // Deleting the bound pod starts its grace period: its cpu stays taken while it terminates,
    // as kube-scheduler keeps an assigned pod until it is gone.
    let (code, _) = c.delete("/api/v1/namespaces/default/pods/one", Value::Null);
    assert_eq!(code, 200);
    c.settle();
    assert_eq!(c.node_of("two"), "", "one still holds its cpu");
    // The kubelet's grace-0 delete frees it: the parked pod is retried and fits.
    let (code, _) = c.delete(
        "/api/v1/namespaces/default/pods/one",
        json!({"gracePeriodSeconds": 0}),
    );
    assert_eq!(code, 200);
    assert!(c.server.poll_timeout().is_some_and(|t| t <= c.now));
    c.settle();
    assert_eq!(c.node_of("two"), "small");
    // A terminal pod frees its resources too.
    c.merge_patch(
        "/api/v1/namespaces/default/pods/two/status",
        json!({"status": {"phase": "Succeeded"}}),
    );
    c.pod("three", big);
    c.run();
    assert_eq!(c.node_of("three"), "small");
    let stats = c.server.scheduler_stats();
    assert_eq!(stats.attempts_error, 0);
    assert!(stats.attempts_unschedulable >= 2);
}

#[test]
fn tolerations_host_ports_and_affinity() {
    let mut c = Cluster::new();
    c.node("gpu", json!({"metadata": {"labels": {"gen": "7"}}, "spec": {"taints": [{"key": "gpu", "value": "true", "effect": "NoSchedule"}]}}));
    c.node("plain", json!({"metadata": {"labels": {"gen": "3"}}}));
    c.pod("tolerant", json!({"tolerations": [{"key": "gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}],
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "gen", "operator": "Gt", "values": ["5"]}]}]}}}}));
    c.run();
    assert_eq!(c.node_of("tolerant"), "gpu");
    let port = json!({"containers": [{"name": "c", "image": "x", "ports": [{"containerPort": 80, "hostPort": 8080}]}]});
    c.pod("p1", port.clone());
    c.pod("p2", port.clone());
    c.pod("p3", port);
    c.run();
    assert_eq!(c.node_of("p1"), "plain");
    assert_eq!(c.node_of("p2"), "");
    assert_eq!(
        c.condition("p2")["message"],
        "0/2 nodes are available: 1 node(s) didn't have free ports for the requested pod ports, 1 node(s) had untolerated taint {gpu: true}. preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, 1 Preemption is not helpful for scheduling."
    );
}

#[test]
fn pods_of_one_owner_spread_across_nodes() {
    let mut c = Cluster::new();
    for i in 0..4 {
        c.node(&alloc::format!("n{i}"), json!({}));
    }
    // The owner must exist, or garbage collection removes its pods as orphans of a dead owner.
    let (code, owner) = c.post(
        "/api/v1/namespaces/default/configmaps",
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner"}}),
    );
    assert_eq!(code, 201, "{owner}");
    let uid = owner["metadata"]["uid"].clone();
    for i in 0..8 {
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": alloc::format!("rs-{i}"), "ownerReferences": [{"apiVersion": "v1",
                "kind": "ConfigMap", "name": "owner", "uid": uid, "controller": true}]},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]}});
        c.post("/api/v1/namespaces/default/pods", pod);
    }
    c.run();
    let mut per_node = alloc::collections::BTreeMap::new();
    for i in 0..8 {
        *per_node
            .entry(c.node_of(&alloc::format!("rs-{i}")))
            .or_insert(0) += 1;
    }
    assert_eq!(per_node.len(), 4, "{per_node:?}");
    assert!(per_node.values().all(|n| *n == 2), "{per_node:?}");
}

#[test]
fn placement_is_deterministic_for_the_same_inputs() {
    let place = || {
        let mut c = Cluster::new();
        for i in 0..5 {
            c.node(&alloc::format!("n{i}"), json!({}));
        }
        for i in 0..20 {
            c.pod(&alloc::format!("p{i}"), json!({}));
        }
        c.run();
        (0..20)
            .map(|i| c.node_of(&alloc::format!("p{i}")))
            .collect::<Vec<_>>()
    };
    let first = place();
    assert!(first.iter().all(|n| !n.is_empty()));
    assert_eq!(first, place());
}

#[test]
fn periodic_retry_and_queue_budget() {
    let mut c = Cluster::with(Config {
        scheduler_queue_capacity: 3,
        scheduler_batch: 2,
        scheduler_retry_secs: 30,
        scheduler_rescan_secs: 5,
        ..Config::default()
    });
    for i in 0..7 {
        assert_eq!(c.pod(&alloc::format!("p{i}"), json!({})).0, 201);
    }
    let stats = c.server.scheduler_stats();
    assert_eq!(stats.pending_active, 3, "the budget holds");
    assert!(stats.queue_overflowed);
    // No nodes: every attempt parks its pod; the scan finds the refused ones later.
    c.run();
    let stats = c.server.scheduler_stats();
    assert_eq!(stats.pending_unschedulable, 3);
    assert_eq!(
        c.condition("p0")["message"],
        "no nodes available to schedule pods"
    );
    let due = c.server.poll_timeout().unwrap();
    assert!(due > c.now && due <= c.now.plus_secs(30), "{due:?}");
    // A node arrives: parked pods retry at once, the refused ones after the rescan.
    c.node("n", json!({}));
    c.run();
    for _ in 0..5 {
        c.now = c.now.plus_secs(5);
        c.run_timers();
        c.run();
    }
    for i in 0..7 {
        assert_eq!(c.node_of(&alloc::format!("p{i}")), "n", "p{i}");
    }
    assert!(!c.server.scheduler_stats().queue_overflowed);
    // The periodic flush retries a parked pod with no event at all.
    c.pod("big", json!({"containers": [{"name": "c", "image": "x", "resources": {"requests": {"cpu": "64"}}}]}));
    c.run();
    let attempts = c.server.scheduler_stats().attempts_unschedulable;
    c.now = c.now.plus_secs(31);
    assert!(c.server.poll_timeout().unwrap() <= c.now);
    c.run_timers();
    assert_eq!(
        c.server.scheduler_stats().attempts_unschedulable,
        attempts + 1
    );
}

#[test]
fn deleting_a_node_with_bound_pods_keeps_the_books_straight() {
    let mut c = Cluster::new();
    c.node("n", json!({}));
    let half = json!({"containers": [{"name": "c", "image": "x", "resources": {"requests": {"cpu": "1"}}}]});
    c.pod("a", half.clone());
    c.pod("b", half.clone());
    c.run();
    let (code, _) = c.delete("/api/v1/nodes/n", Value::Null);
    assert_eq!(code, 200);
    c.node("n", json!({}));
    c.pod("c", half);
    c.run();
    assert_eq!(
        c.node_of("c"),
        "",
        "the re-added node still carries a and b"
    );
    c.delete(
        "/api/v1/namespaces/default/pods/a",
        json!({"gracePeriodSeconds": 0}),
    );
    c.settle();
    assert_eq!(c.node_of("c"), "n");
}

#[test]
fn malformed_affinity_is_refused_at_admission() {
    let mut c = Cluster::new();
    let req = |expr: Value| {
        json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
            {"nodeSelectorTerms": [{"matchExpressions": [expr]}]}}}})
    };
    let base = "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]";
    let cases: Vec<(Value, String, &str)> = alloc::vec![
        (req(json!({"key": "a", "operator": "Near", "values": ["x"]})), alloc::format!("{base}.matchExpressions[0].operator"),
            "Invalid value: \"Near\": not a valid selector operator"),
        (req(json!({"key": "a", "operator": "In"})), alloc::format!("{base}.matchExpressions[0].values"),
            "Required value: must be specified when `operator` is 'In' or 'NotIn'"),
        (req(json!({"key": "a", "operator": "Exists", "values": ["x"]})), alloc::format!("{base}.matchExpressions[0].values"),
            "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"),
        (req(json!({"key": "a", "operator": "Gt", "values": ["1", "2"]})), alloc::format!("{base}.matchExpressions[0].values"),
            "Required value: must be specified single value when `operator` is 'Lt' or 'Gt'"),
        (req(json!({"key": "a", "operator": "Lt", "values": ["ten"]})), alloc::format!("{base}.matchExpressions[0].values[0]"),
            "Invalid value: \"ten\": must be an integer when `operator` is 'Lt' or 'Gt'"),
        (req(json!({"key": "bad key!", "operator": "Exists"})), alloc::format!("{base}.matchExpressions[0].key"),
            "Invalid value: \"bad key!\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"),
        (json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.labels", "operator": "In", "values": ["x"]}]}]}}}}),
            alloc::format!("{base}.matchFields[0].key"), "Invalid value: \"metadata.labels\": not a valid field selector key"),
        (json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}}}),
            "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms".into(),
            "Required value: must have at least one node selector term"),
        (json!({"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 0, "preference": {"matchExpressions": [{"key": "a", "operator": "Exists"}]}}]}}}),
            "spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight".into(),
            "Invalid value: 0: must be in the range 1-100"),
        (json!({"nodeSelector": {"bad key!": "x"}}), "spec.nodeSelector".into(),
            "Invalid value: \"bad key!\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"),
    ];
    for (i, (spec, field, message)) in cases.into_iter().enumerate() {
        let (code, body) = c.pod(&alloc::format!("bad-{i}"), spec);
        assert_eq!(code, 422, "{i}: {body}");
        assert_eq!(body["reason"], "Invalid");
        let causes = body["details"]["causes"].as_array().unwrap();
        assert!(
            causes
                .iter()
                .any(|c| c["field"] == field.as_str() && c["message"] == message),
            "{i}: {causes:?}"
        );
    }
    assert_eq!(
        c.server.scheduler_stats().pending_active,
        0,
        "none reached the scheduler"
    );
}

#[test]
fn a_bind_the_store_refuses_is_retried_not_lost() {
    let setup = |c: &mut Cluster| {
        c.node("n", json!({}));
        c.pod("p", json!({}));
    };
    let mut probe = Cluster::new();
    setup(&mut probe);
    let used = probe.server.store().used_bytes();
    // Room for nothing more than what is stored: the bind (nodeName, condition) cannot fit.
    let mut c = Cluster::with(Config {
        max_store_bytes: used + 16,
        ..Config::default()
    });
    setup(&mut c);
    c.run();
    let stats = c.server.scheduler_stats();
    assert_eq!(stats.attempts_error, 1);
    assert_eq!(
        stats.pending_unschedulable, 1,
        "parked for the periodic retry"
    );
    assert_eq!(c.node_of("p"), "");
    assert!(c.server.poll_timeout().is_some_and(|t| t > c.now));
}

#[test]
fn a_backlog_beyond_one_batch_is_reported_until_drained() {
    let mut c = Cluster::with(Config {
        scheduler_batch: 2,
        ..Config::default()
    });
    c.node("n", json!({}));
    assert!(!c.server.has_scheduling_backlog());
    for i in 0..5 {
        assert_eq!(c.pod(&alloc::format!("p{i}"), json!({})).0, 201);
    }
    // Five pods, two attempts per call: the runtime must call again at once, three times.
    let mut calls = 0;
    while c.server.has_scheduling_backlog() {
        c.run_timers();
        calls += 1;
        assert!(calls <= 3, "the backlog does not shrink");
    }
    assert_eq!(calls, 3);
    assert_eq!(c.server.scheduler_stats().attempts_scheduled, 5);
    // A pod that fits nowhere is parked, not a backlog: the runtime need not poll for it.
    c.pod("big", json!({"containers": [{"name": "c", "image": "x", "resources": {"requests": {"cpu": "64"}}}]}));
    assert!(c.server.has_scheduling_backlog());
    c.run();
    assert!(!c.server.has_scheduling_backlog());
    assert_eq!(c.server.scheduler_stats().pending_unschedulable, 1);
}
