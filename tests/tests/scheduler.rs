//! The scheduler end to end, with the real binaries, the real `kubectl` and simulated workers as
//! the nodes: pods created without a node are bound promptly to Ready, uncordoned nodes and run;
//! a pod that fits nowhere shows kube-scheduler's FailedScheduling message in `kubectl describe`
//! and is bound once a node is labeled to match; tolerations let pods onto tainted nodes.

use std::time::{Duration, Instant};

use nautilus_tests::DevCluster;
use nautilus_tests::simulator::{DEFAULT_PACKAGE, SimConfig, Simulator, package_arg};
use serde_json::Value;

fn cluster() -> DevCluster {
    DevCluster::start_with(&[&package_arg(&DEFAULT_PACKAGE), "--min-stake=1000000000"])
}

fn workers(c: &DevCluster, n: usize) -> Simulator {
    let cfg = SimConfig {
        workers: n,
        interval: Duration::from_millis(2_000),
        connections: 4,
        watch_pods: true,
        ..SimConfig::default()
    };
    Simulator::start(c, cfg).unwrap()
}

/// Polls `check` every 50 ms until it is true or `limit` passes.
#[track_caller]
fn wait_for(limit: Duration, what: &str, mut check: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    loop {
        if check() {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn pod(c: &DevCluster, name: &str) -> Value {
    let reply = c
        .request(
            "GET",
            &format!("/api/v1/namespaces/default/pods/{name}"),
            None,
            &[],
        )
        .unwrap();
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    reply.json()
}

fn node_of(c: &DevCluster, name: &str) -> String {
    pod(c, name)["spec"]["nodeName"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn running(c: &DevCluster, name: &str) -> bool {
    pod(c, name)["status"]["phase"] == "Running"
}

#[track_caller]
fn create(c: &DevCluster, manifest: &str) {
    let out = c.kubectl_with_input(&["create", "-f", "-"], Some(manifest));
    assert!(
        out.status.success(),
        "kubectl create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn pods_land_on_ready_nodes_only_and_run() {
    let c = cluster();
    let sim = workers(&c, 3);
    let nodes: Vec<String> = sim.workers().iter().map(|w| w.node.clone()).collect();
    // One worker is cordoned, one created by hand never reports Ready.
    c.kubectl_ok(&["cordon", &nodes[0]]);
    let ghost = r#"{"apiVersion":"v1","kind":"Node","metadata":{"name":"ghost"},
        "status":{"allocatable":{"cpu":"64","memory":"256Gi","pods":"110"}}}"#;
    create(&c, ghost);
    c.kubectl_ok(&["run", "first", "--image=nginx:1.27"]);
    // Bound by the enclave's timer right after the create request (the runtime wakes it when
    // core reports immediate work), not at the next periodic tick.
    let bound = wait_for(Duration::from_secs(5), "first bound", || {
        !node_of(&c, "first").is_empty()
    });
    eprintln!("first pod seen bound {bound:?} after kubectl run returned");
    assert!(bound < Duration::from_millis(500), "{bound:?}");
    for i in 0..8 {
        c.kubectl_ok(&["run", &format!("p{i}"), "--image=nginx:1.27"]);
    }
    let all: Vec<String> = std::iter::once("first".to_string())
        .chain((0..8).map(|i| format!("p{i}")))
        .collect();
    wait_for(Duration::from_secs(15), "all pods Running", || {
        all.iter().all(|p| running(&c, p))
    });
    let mut per_node = std::collections::BTreeMap::new();
    for p in &all {
        let node = node_of(&c, p);
        assert!(
            node == nodes[1] || node == nodes[2],
            "{p} landed on {node}, not a Ready uncordoned node"
        );
        *per_node.entry(node).or_insert(0) += 1;
    }
    assert_eq!(
        per_node.len(),
        2,
        "least-allocated spreads them: {per_node:?}"
    );
    let described = c.kubectl_ok(&["describe", "pod", "first"]);
    assert!(
        described.contains("Scheduled")
            && described.contains("default-scheduler")
            && described.contains(&format!(
                "Successfully assigned default/first to {}",
                node_of(&c, "first")
            )),
        "{described}"
    );
    let wide = c.kubectl_ok(&["get", "pod", "first", "-o", "wide"]);
    assert!(wide.contains(&node_of(&c, "first")), "{wide}");
    let cond = pod(&c, "first")["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "PodScheduled").cloned())
        .unwrap_or(Value::Null);
    assert_eq!(cond["status"], "True", "{cond}");
}

#[test]
fn an_impossible_selector_waits_with_failed_scheduling_until_a_node_matches() {
    let c = cluster();
    let sim = workers(&c, 2);
    let nodes: Vec<String> = sim.workers().iter().map(|w| w.node.clone()).collect();
    let manifest = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"picky"},
        "spec":{"nodeSelector":{"disk":"ssd"},"containers":[{"name":"c","image":"nginx:1.27"}]}}"#;
    create(&c, manifest);
    let message = "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.";
    wait_for(
        Duration::from_secs(5),
        "FailedScheduling in describe",
        || {
            let d = c.kubectl_ok(&["describe", "pod", "picky"]);
            d.contains("FailedScheduling") && d.contains(message)
        },
    );
    let get = c.kubectl_ok(&["get", "pod", "picky"]);
    assert!(get.contains("Pending"), "{get}");
    let cond = pod(&c, "picky")["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "PodScheduled").cloned())
        .unwrap_or(Value::Null);
    assert_eq!(cond["status"], "False", "{cond}");
    assert_eq!(cond["reason"], "Unschedulable", "{cond}");
    assert_eq!(cond["message"], message, "{cond}");
    c.kubectl_ok(&["label", "node", &nodes[1], "disk=ssd"]);
    wait_for(
        Duration::from_secs(10),
        "picky Running on the labeled node",
        || node_of(&c, "picky") == nodes[1] && running(&c, "picky"),
    );
    // Malformed affinity never reaches the scheduler.
    let bad = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"bad"},
        "spec":{"affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[
        {"matchExpressions":[{"key":"disk","operator":"Near","values":["ssd"]}]}]}}},
        "containers":[{"name":"c","image":"nginx:1.27"}]}}"#;
    let out = c.kubectl_with_input(&["create", "-f", "-"], Some(bad));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator: Invalid value: \"Near\": not a valid selector operator"),
        "{err}"
    );
}

#[test]
fn a_pod_tolerating_a_taint_lands_on_the_tainted_node() {
    let c = cluster();
    let sim = workers(&c, 2);
    let nodes: Vec<String> = sim.workers().iter().map(|w| w.node.clone()).collect();
    c.kubectl_ok(&["taint", "node", &nodes[0], "dedicated=gpu:NoSchedule"]);
    c.kubectl_ok(&["label", "node", &nodes[0], "gpu=yes"]);
    c.kubectl_ok(&["run", "plain", "--image=nginx:1.27"]);
    let tolerant = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"tolerant"},
        "spec":{"nodeSelector":{"gpu":"yes"},
        "tolerations":[{"key":"dedicated","operator":"Equal","value":"gpu","effect":"NoSchedule"}],
        "containers":[{"name":"c","image":"nginx:1.27"}]}}"#;
    create(&c, tolerant);
    wait_for(Duration::from_secs(10), "both Running", || {
        running(&c, "plain") && running(&c, "tolerant")
    });
    assert_eq!(node_of(&c, "tolerant"), nodes[0]);
    assert_eq!(
        node_of(&c, "plain"),
        nodes[1],
        "the untolerated taint kept it off"
    );
}
