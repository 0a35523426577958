//! The controllers around graceful pod deletion, in virtual time, with a stand-in kubelet: the
//! ReplicaSet and Deployment controllers do not count terminating pods as active and do not
//! delete them again, a Recreate rollout waits for them, Endpoints drop them, namespace
//! deletion waits for them, and PodGC force-deletes the pods of a node that is gone or out of
//! service as kube's does, and leaves them on a node that is merely unreachable.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::ops::{Deref, DerefMut};
use serde_json::{Value, json};

use crate::cluster::test_harness::Cluster as Harness;
use crate::resource::ResourceId;
use crate::watch::EventType;

const PODS: &str = "/api/v1/namespaces/default/pods";
const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/default/deployments";
const REPLICASETS: &str = "/apis/apps/v1/namespaces/default/replicasets";

/// The harness's cluster with a stand-in kubelet.
struct Cluster {
    harness: Harness,
    /// Nodes whose kubelet has stopped (it neither runs nor confirms deletions).
    dead: Vec<String>,
}

impl Deref for Cluster {
    type Target = Harness;
    fn deref(&self) -> &Harness {
        &self.harness
    }
}

impl DerefMut for Cluster {
    fn deref_mut(&mut self) -> &mut Harness {
        &mut self.harness
    }
}

impl Cluster {
    /// A cluster with one Ready node, `n1`, with room for 110 pods.
    fn new() -> Self {
        let mut c = Self {
            harness: Harness::new(),
            dead: Vec::new(),
        };
        c.node("n1");
        c
    }

    fn node(&mut self, name: &str) {
        let node = json!({"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "status": {"conditions": [{"type": "Ready", "status": "True",
                    "lastHeartbeatTime": self.now.rfc3339(), "lastTransitionTime": self.now.rfc3339()}],
                "allocatable": {"cpu": "8", "memory": "16Gi", "pods": "110"}}});
        let (code, body) = self.harness.post("/api/v1/nodes", node);
        assert_eq!(code, 201, "{body}");
    }

    /// A create that must succeed: the object created.
    fn post(&mut self, path: &str, body: Value) -> Value {
        let (code, created) = self.harness.post(path, body);
        assert_eq!(code, 201, "{created}");
        created
    }

    /// A merge patch that must succeed: the object patched.
    fn patch(&mut self, path: &str, body: Value) -> Value {
        let (code, patched) = self.harness.merge_patch(path, body);
        assert_eq!(code, 200, "{patched}");
        patched
    }

    fn delete(&mut self, path: &str, options: Option<Value>) -> (u16, Value) {
        self.harness.delete(path, options.unwrap_or(Value::Null))
    }

    /// Runs the controllers and the scheduler until nothing is due at once (bounded); a
    /// namespace waiting for its pods waits for a change.
    fn settle(&mut self) {
        for _ in 0..100 {
            self.run_timers();
            if self.server.poll_timeout().is_none_or(|t| t > self.now) {
                return;
            }
        }
        panic!("controllers did not settle");
    }

    /// One pass of a kubelet on every live node: a terminating pod is confirmed with grace 0
    /// (its containers stop at once), any other bound pod is reported Running and Ready.
    fn kubelet(&mut self) {
        for pod in self.items("/api/v1/pods") {
            let node = pod["spec"]["nodeName"].as_str().unwrap_or("").to_string();
            if node.is_empty() || self.dead.contains(&node) {
                continue;
            }
            let path = alloc::format!(
                "/api/v1/namespaces/{}/pods/{}",
                pod["metadata"]["namespace"].as_str().unwrap(),
                pod["metadata"]["name"].as_str().unwrap()
            );
            if pod["metadata"]["deletionTimestamp"].is_string() {
                let options = json!({"gracePeriodSeconds": 0, "preconditions": {"uid": pod["metadata"]["uid"]}});
                let (code, body) = self.delete(&path, Some(options));
                assert_eq!(code, 200, "{body}");
            } else if pod["status"]["phase"] != "Running" {
                let ip = alloc::format!("10.1.0.{}", 1 + self.server.store().revision() % 250);
                let status = json!({"status": {"phase": "Running", "podIP": ip,
                    "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": self.now.rfc3339()}]}});
                self.patch(&alloc::format!("{path}/status"), status);
            }
        }
        self.settle();
    }

    /// Pods of the default namespace as (name, terminating).
    fn pods(&mut self) -> Vec<(String, bool)> {
        self.items(PODS)
            .iter()
            .map(|p| {
                (
                    p["metadata"]["name"].as_str().unwrap().into(),
                    p["metadata"]["deletionTimestamp"].is_string(),
                )
            })
            .collect()
    }

    fn terminating(&mut self) -> usize {
        self.pods().iter().filter(|(_, t)| *t).count()
    }

    fn active(&mut self) -> Vec<String> {
        self.pods()
            .into_iter()
            .filter(|(_, t)| !*t)
            .map(|(n, _)| n)
            .collect()
    }

    fn replicaset(&mut self) -> Value {
        let sets = self.items(REPLICASETS);
        assert_eq!(sets.len(), 1, "{sets:?}");
        sets.into_iter().next().unwrap()
    }
}

fn deployment(name: &str, replicas: i64, strategy: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": replicas, "strategy": {"type": strategy},
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx:1.26"}]}}}})
}

#[test]
fn replicasets_replace_terminating_pods_and_do_not_count_them() {
    let mut c = Cluster::new();
    c.post(DEPLOYMENTS, deployment("web", 3, "RollingUpdate"));
    c.settle();
    c.kubelet();
    assert_eq!(c.active().len(), 3);

    // The kubelet of n1 stops confirming: a deleted pod stays, terminating, and the ReplicaSet
    // replaces it at once, as it no longer counts.
    c.dead.push("n1".into());
    let victim = c.active().remove(0);
    let (code, _) = c.delete(&alloc::format!("{PODS}/{victim}"), None);
    assert_eq!(code, 200);
    c.settle();
    assert_eq!(c.active().len(), 3, "{:?}", c.pods());
    assert_eq!(c.terminating(), 1);
    assert!(c.active().iter().all(|n| *n != victim));
    let rs = c.replicaset();
    assert_eq!(rs["status"]["replicas"], 3, "{rs}");

    // Scaling down deletes active pods gracefully and never the same one twice.
    c.patch(
        &alloc::format!("{DEPLOYMENTS}/web"),
        json!({"spec": {"replicas": 1}}),
    );
    c.settle();
    assert_eq!(c.active().len(), 1, "{:?}", c.pods());
    assert_eq!(c.terminating(), 3);
    let quiet = c.server.store().revision();
    c.settle();
    c.run_timers();
    assert_eq!(
        c.server.store().revision(),
        quiet,
        "terminating pods are left alone"
    );
    let rs = c.replicaset();
    assert_eq!(rs["status"]["replicas"], 1, "{rs}");
    let (_, d) = c.get(&alloc::format!("{DEPLOYMENTS}/web"));
    assert_eq!(d["status"]["replicas"], 1, "{d}");

    // The kubelet comes back and confirms: the terminating pods go, the count stays.
    c.dead.clear();
    c.kubelet();
    assert_eq!(c.pods().len(), 1, "{:?}", c.pods());
    assert_eq!(c.replicaset()["status"]["replicas"], 1);
}

#[test]
fn a_recreate_rollout_waits_for_the_old_pods_to_be_gone() {
    let mut c = Cluster::new();
    c.post(DEPLOYMENTS, deployment("db", 2, "Recreate"));
    c.settle();
    c.kubelet();
    let old: Vec<String> = c.active();
    assert_eq!(old.len(), 2);
    c.dead.push("n1".into());
    c.patch(
        &alloc::format!("{DEPLOYMENTS}/db"),
        json!({"spec": {"template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]}}}}),
    );
    c.settle();
    assert_eq!(c.terminating(), 2, "{:?}", c.pods());
    assert!(
        c.active().is_empty(),
        "no new pod while old ones terminate: {:?}",
        c.pods()
    );
    c.dead.clear();
    c.kubelet();
    c.kubelet();
    let now = c.active();
    assert_eq!(now.len(), 2, "{:?}", c.pods());
    assert!(now.iter().all(|n| !old.contains(n)));
}

#[test]
fn endpoints_drop_terminating_pods_unless_not_ready_addresses_are_published() {
    let mut c = Cluster::new();
    for name in ["web", "all"] {
        c.post(
            "/api/v1/namespaces/default/services",
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
                "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}],
                    "publishNotReadyAddresses": name == "all"}}),
        );
    }
    for name in ["a", "b"] {
        c.post(
            PODS,
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "web"}},
                "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "nginx"}]}}),
        );
    }
    c.settle();
    c.kubelet();
    let addresses = |c: &mut Cluster, service: &str| -> Vec<String> {
        let (_, ep) = c.get(&alloc::format!(
            "/api/v1/namespaces/default/endpoints/{service}"
        ));
        ep["subsets"][0]["addresses"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| a["targetRef"]["name"].as_str().unwrap().into())
            .collect()
    };
    assert_eq!(addresses(&mut c, "web"), ["a", "b"]);
    c.dead.push("n1".into());
    assert_eq!(c.delete(&alloc::format!("{PODS}/a"), None).0, 200);
    c.settle();
    assert!(c.get(&alloc::format!("{PODS}/a")).1["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(
        addresses(&mut c, "web"),
        ["b"],
        "a terminates: out of the Service"
    );
    let (_, ep) = c.get("/api/v1/namespaces/default/endpoints/web");
    assert!(ep["subsets"][0]["notReadyAddresses"].is_null(), "{ep}");
    assert_eq!(
        addresses(&mut c, "all"),
        ["a", "b"],
        "published while terminating"
    );
    c.dead.clear();
    c.kubelet();
    assert_eq!(addresses(&mut c, "all"), ["b"]);
}

#[test]
fn a_namespace_waits_for_its_terminating_pods() {
    let mut c = Cluster::new();
    c.post(
        "/api/v1/namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}),
    );
    let pods = "/api/v1/namespaces/shop/pods";
    for (name, node) in [("bound", Some("n1")), ("loose", None)] {
        let mut spec =
            json!({"schedulerName": "elsewhere", "containers": [{"name": "c", "image": "nginx"}]});
        if let Some(node) = node {
            spec["nodeName"] = json!(node);
        }
        c.post(
            pods,
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}),
        );
    }
    c.post(
        "/api/v1/namespaces/shop/configmaps",
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}}),
    );
    c.settle();
    c.dead.push("n1".into());
    assert_eq!(c.delete("/api/v1/namespaces/shop", None).0, 200);
    c.settle();
    let names: Vec<(String, bool)> = c
        .items(pods)
        .iter()
        .map(|p| {
            (
                p["metadata"]["name"].as_str().unwrap().into(),
                p["metadata"]["deletionTimestamp"].is_string(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [("bound".to_string(), true)],
        "only the terminating pod is left"
    );
    assert!(c.items("/api/v1/namespaces/shop/configmaps").is_empty());
    let (code, ns) = c.get("/api/v1/namespaces/shop");
    assert_eq!(code, 200);
    assert_eq!(ns["status"]["phase"], "Terminating");
    let quiet = c.server.store().revision();
    c.run_timers();
    assert_eq!(
        c.server.store().revision(),
        quiet,
        "a waiting namespace writes nothing"
    );
    assert!(
        c.server.poll_timeout().is_none_or(|t| t > c.now),
        "nor is it due again until something in it changes"
    );
    c.dead.clear();
    c.kubelet();
    c.settle();
    assert_eq!(c.get("/api/v1/namespaces/shop").0, 404);
}

/// The last state of each pod deleted after `revision`, by name.
fn deleted_pods(c: &Cluster, revision: u64) -> Vec<(String, Value)> {
    let mut events = Vec::new();
    c.server
        .watch_ring()
        .read_after(revision, usize::MAX, &mut events)
        .unwrap();
    events
        .iter()
        .filter(|e| e.key.resource == ResourceId::Pods && e.kind == EventType::Deleted)
        .map(|e| {
            (
                String::from(&*e.key.name),
                serde_json::from_slice(&e.object.json.bytes()).unwrap(),
            )
        })
        .collect()
}

fn bound_pod(name: &str, node: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "nginx"}]}})
}

#[test]
fn pod_gc_force_deletes_the_pods_of_a_deleted_node() {
    let mut c = Cluster::new();
    c.node("n2");
    c.post(PODS, bound_pod("running", "n2"));
    c.post(PODS, bound_pod("leaving", "n2"));
    c.post(PODS, bound_pod("elsewhere", "n1"));
    c.settle();
    c.dead.push("n2".into());
    c.kubelet();
    assert_eq!(c.delete(&alloc::format!("{PODS}/leaving"), None).0, 200);
    c.settle();
    let before = c.server.store().revision();
    assert_eq!(c.delete("/api/v1/nodes/n2", None).0, 200);
    c.settle();
    let gone = deleted_pods(&c, before);
    let names: Vec<&str> = gone.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["leaving", "running"]);
    for (name, pod) in &gone {
        assert_eq!(pod["status"]["phase"], "Failed", "{name}: {pod}");
        let condition = pod["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "DisruptionTarget")
            .unwrap();
        assert_eq!(condition["reason"], "DeletionByPodGC");
        assert_eq!(condition["message"], "PodGC: node no longer exists");
        assert_eq!(pod["metadata"]["deletionGracePeriodSeconds"], 0);
    }
    assert_eq!(c.pods(), [("elsewhere".to_string(), false)]);
}

#[test]
fn pod_gc_waits_out_the_quarantine_for_a_node_it_never_saw() {
    let mut c = Cluster::new();
    c.post(PODS, bound_pod("early", "n9"));
    c.settle();
    c.now = c.now.plus_secs(39);
    c.run_timers();
    c.settle();
    assert_eq!(c.pods().len(), 1, "the node may still be registering");
    c.now = c.now.plus_secs(1);
    assert!(c.server.poll_timeout().is_some_and(|t| t <= c.now));
    c.run_timers();
    c.settle();
    assert!(c.pods().is_empty());

    // A node that registers within the quarantine keeps its pod.
    c.post(PODS, bound_pod("patient", "n8"));
    c.settle();
    c.now = c.now.plus_secs(20);
    c.node("n8");
    c.now = c.now.plus_secs(30);
    c.run_timers();
    c.settle();
    assert_eq!(c.pods().len(), 1);
}

#[test]
fn pod_gc_releases_terminating_pods_only_from_an_out_of_service_node() {
    let mut c = Cluster::new();
    c.node("n2");
    c.post(PODS, bound_pod("stays", "n2"));
    c.post(PODS, bound_pod("leaving", "n2"));
    c.settle();
    c.dead.push("n2".into());
    assert_eq!(c.delete(&alloc::format!("{PODS}/leaving"), None).0, 200);
    c.settle();
    let taint = json!({"spec": {"taints": [{"key": "node.kubernetes.io/out-of-service", "value": "nodeshutdown", "effect": "NoExecute"}]}});
    // Unreachable alone (Ready=Unknown) holds a terminating pod, as in kube.
    let unknown = json!({"status": {"conditions": [{"type": "Ready", "status": "Unknown",
        "lastHeartbeatTime": c.now.rfc3339(), "lastTransitionTime": c.now.rfc3339()}]}});
    c.patch("/api/v1/nodes/n2/status", unknown);
    c.settle();
    assert_eq!(c.terminating(), 1);
    // Tainted out-of-service while still Ready: nothing either.
    let ready = json!({"status": {"conditions": [{"type": "Ready", "status": "True",
        "lastHeartbeatTime": c.now.rfc3339(), "lastTransitionTime": c.now.rfc3339()}]}});
    c.patch("/api/v1/nodes/n2/status", ready);
    c.patch("/api/v1/nodes/n2", taint);
    c.settle();
    assert_eq!(c.terminating(), 1);
    // Both: the terminating pod is marked Failed and force-deleted; the other stays.
    let before = c.server.store().revision();
    let not_ready = json!({"status": {"conditions": [{"type": "Ready", "status": "False",
        "lastHeartbeatTime": c.now.rfc3339(), "lastTransitionTime": c.now.rfc3339()}]}});
    c.patch("/api/v1/nodes/n2/status", not_ready);
    c.settle();
    let gone = deleted_pods(&c, before);
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].0, "leaving");
    assert_eq!(gone[0].1["status"]["phase"], "Failed");
    assert_eq!(c.pods(), [("stays".to_string(), false)]);
    // A pod that starts terminating there afterwards goes at once too.
    assert_eq!(c.delete(&alloc::format!("{PODS}/stays"), None).0, 200);
    c.settle();
    assert!(c.pods().is_empty());
}

#[test]
fn pod_gc_fails_a_terminating_pod_that_never_had_a_node() {
    let mut c = Cluster::new();
    c.post(
        PODS,
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "held", "finalizers": ["example.com/hold"]},
            "spec": {"schedulerName": "elsewhere", "containers": [{"name": "c", "image": "nginx"}]}}),
    );
    c.settle();
    assert_eq!(c.delete(&alloc::format!("{PODS}/held"), None).0, 200);
    c.settle();
    let (code, pod) = c.get(&alloc::format!("{PODS}/held"));
    assert_eq!(code, 200, "the finalizer holds it");
    assert_eq!(pod["status"]["phase"], "Failed", "{pod}");
}

#[test]
fn a_suspended_jobs_pods_terminate_until_their_kubelet_confirms() {
    const JOBS: &str = "/apis/batch/v1/namespaces/default/jobs";
    let mut c = Cluster::new();
    c.post(
        JOBS,
        json!({"metadata": {"name": "calc"}, "spec": {"parallelism": 2, "completions": 4,
            "template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "c", "image": "busybox"}]}}}}),
    );
    c.settle();
    c.kubelet();
    assert_eq!(c.active().len(), 2);

    // Suspending deletes the running pods with default options: they terminate, and releasing
    // their tracking finalizer does not cut their grace period short.
    c.dead.push("n1".into());
    c.patch(
        &alloc::format!("{JOBS}/calc"),
        json!({"spec": {"suspend": true}}),
    );
    c.settle();
    assert_eq!(c.terminating(), 2);
    assert!(c.active().is_empty());
    for pod in c.items(PODS) {
        assert_eq!(pod["metadata"]["deletionGracePeriodSeconds"], 30, "{pod}");
    }
    let (_, job) = c.get(&alloc::format!("{JOBS}/calc"));
    assert_eq!(job["status"]["terminating"], 2, "{job}");
    assert!(job["status"].get("active").is_none(), "{job}");

    // The kubelet's grace-0 confirmation removes them.
    c.dead.clear();
    c.kubelet();
    assert!(c.pods().is_empty());
    let (_, job) = c.get(&alloc::format!("{JOBS}/calc"));
    assert_eq!(job["status"]["terminating"], 0, "{job}");
}

#[test]
fn replication_controllers_replace_terminating_pods_and_do_not_count_them() {
    const RCS: &str = "/api/v1/namespaces/default/replicationcontrollers";
    let mut c = Cluster::new();
    c.post(
        RCS,
        json!({"metadata": {"name": "web"}, "spec": {"replicas": 2, "selector": {"app": "web"},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx:1.26"}]}}}}),
    );
    c.settle();
    c.kubelet();
    assert_eq!(c.active().len(), 2);

    c.dead.push("n1".into());
    let victim = c.active().remove(0);
    let (code, _) = c.delete(&alloc::format!("{PODS}/{victim}"), None);
    assert_eq!(code, 200);
    c.settle();
    assert_eq!((c.active().len(), c.terminating()), (2, 1));
    let (_, rc) = c.get(&alloc::format!("{RCS}/web"));
    assert_eq!(rc["status"]["replicas"], 2, "{rc}");

    c.dead.clear();
    c.kubelet();
    assert_eq!((c.active().len(), c.terminating()), (2, 0));
}
