//! Issue 4's scenario end to end, with the real kubectl and six simulated workers: a deployment's
//! pods are scheduled, spread and run; a rollout completes; two workers die and their pods are
//! evicted (terminating, with no kubelet to confirm) and recreated on the others; one dead node
//! is deleted (PodGC force-deletes its pods) and the other comes back (its kubelet confirms);
//! deleting the deployment removes its ReplicaSets and pods.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use nautilus_tests::DevCluster;
use nautilus_tests::simulator::{DEFAULT_PACKAGE, SimConfig, Simulator, package_arg};
use serde_json::Value;

/// Polls `check` every 200 ms until it is true or `limit` passes.
#[track_caller]
fn wait_for(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn pods(c: &DevCluster) -> Vec<Value> {
    let reply = c
        .request(
            "GET",
            "/api/v1/namespaces/default/pods?labelSelector=app%3Dweb",
            None,
            &[],
        )
        .unwrap();
    assert_eq!(reply.status, 200);
    reply.json()["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn terminating(pod: &Value) -> bool {
    pod["metadata"]["deletionTimestamp"].is_string()
}

fn is_running_ready(pod: &Value) -> bool {
    !terminating(pod)
        && pod["status"]["phase"] == "Running"
        && pod["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// Running and Ready pods of the deployment by node, and the images they run.
fn running(c: &DevCluster) -> (BTreeMap<String, usize>, BTreeSet<String>) {
    let mut by_node = BTreeMap::new();
    let mut images = BTreeSet::new();
    for pod in pods(c).iter().filter(|p| is_running_ready(p)) {
        let node = pod["spec"]["nodeName"].as_str().unwrap_or("").to_string();
        *by_node.entry(node).or_insert(0) += 1;
        if let Some(image) = pod["spec"]["containers"][0]["image"].as_str() {
            images.insert(image.to_string());
        }
    }
    (by_node, images)
}

#[test]
fn a_deployment_runs_rolls_survives_dead_workers_and_is_deleted() {
    let c = DevCluster::start_with(&[
        &package_arg(&DEFAULT_PACKAGE),
        "--min-stake=1000000000",
        "--node-grace-secs=3",
    ]);
    let sim = Simulator::start(
        &c,
        SimConfig {
            workers: 6,
            interval: Duration::from_millis(500),
            connections: 4,
            watch_pods: true,
            ..SimConfig::default()
        },
    )
    .unwrap();
    wait_for(Duration::from_secs(15), "six Ready nodes", || {
        let out = c.kubectl_ok(&["get", "nodes", "--no-headers"]);
        out.lines().filter(|l| l.contains(" Ready ")).count() == 6
    });

    c.kubectl_ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx",
        "--replicas=6",
    ]);
    c.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=60s"]);
    let (by_node, images) = running(&c);
    assert_eq!(by_node.values().sum::<usize>(), 6, "{by_node:?}");
    // Spread: six pods of one owner on six empty, equal nodes land one per node.
    assert_eq!(by_node.len(), 6, "pods not spread: {by_node:?}");
    assert_eq!(images, BTreeSet::from(["nginx".to_string()]));

    // A rollout to a new image completes and leaves two ReplicaSets in the history.
    c.kubectl_ok(&["set", "image", "deployment/web", "nginx=nginx:1.27"]);
    c.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=90s"]);
    wait_for(Duration::from_secs(30), "only new pods", || {
        let (by_node, images) = running(&c);
        by_node.values().sum::<usize>() == 6
            && images == BTreeSet::from(["nginx:1.27".to_string()])
            && pods(&c).len() == 6
    });
    let history = c.kubectl_ok(&["rollout", "history", "deployment/web"]);
    assert!(history.contains('1') && history.contains('2'), "{history}");

    // Tolerate unreachable nodes for 2 s instead of kube's default 300 s, so the test is quick.
    c.kubectl_ok(&[
        "patch",
        "deployment",
        "web",
        "--type=merge",
        "-p",
        r#"{"spec":{"template":{"spec":{"tolerations":[
            {"key":"node.kubernetes.io/unreachable","operator":"Exists","effect":"NoExecute","tolerationSeconds":2},
            {"key":"node.kubernetes.io/not-ready","operator":"Exists","effect":"NoExecute","tolerationSeconds":2}]}}}}"#,
    ]);
    c.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=90s"]);
    wait_for(
        Duration::from_secs(30),
        "six pods with the toleration",
        || {
            let all = pods(&c);
            all.len() == 6
                && all.iter().all(|p| {
                    is_running_ready(p)
                        && p["spec"]["tolerations"]
                            .to_string()
                            .contains("\"tolerationSeconds\":2")
                })
        },
    );

    // Two workers die: after the grace period and the toleration, their pods are evicted and
    // recreated on the four that live. Deleted gracefully, the evicted pods terminate on the
    // dead nodes, where no kubelet confirms, as in kube.
    let dead: BTreeSet<String> = [sim.worker(0).node.clone(), sim.worker(1).node.clone()].into();
    sim.pause(0);
    sim.pause(1);
    wait_for(
        Duration::from_secs(60),
        "pods moved off the dead workers",
        || {
            let all = pods(&c);
            let (by_node, _) = running(&c);
            all.iter().filter(|p| !terminating(p)).count() == 6
                && by_node.values().sum::<usize>() == 6
                && by_node.keys().all(|n| !dead.contains(n))
        },
    );
    let left: Vec<Value> = pods(&c).into_iter().filter(terminating).collect();
    assert_eq!(left.len(), 2, "the evicted pods terminate: {left:?}");
    assert!(
        left.iter()
            .all(|p| dead.contains(p["spec"]["nodeName"].as_str().unwrap_or(""))),
        "{left:?}"
    );
    let listed = c.kubectl_ok(&["get", "pods", "-l", "app=web", "--no-headers"]);
    assert_eq!(listed.matches("Terminating").count(), 2, "{listed}");
    let rs = c.kubectl_ok(&[
        "get",
        "rs",
        "-l",
        "app=web",
        "-o",
        "jsonpath={range .items[?(@.spec.replicas>0)]}{.status.replicas}{end}",
    ]);
    assert_eq!(rs, "6", "terminating pods are not counted");

    let (by_node, _) = running(&c);
    assert_eq!(
        by_node.len(),
        4,
        "pods should spread over the live workers: {by_node:?}"
    );
    let events = c.kubectl_ok(&["get", "events", "-A"]);
    assert!(
        events.contains("TaintManagerEviction") || events.contains("Evict"),
        "{events}"
    );

    // One dead machine is removed for good: PodGC force-deletes its pod. The other comes back:
    // its kubelet confirms the deletion of its terminating pod.
    c.kubectl_ok(&["delete", "node", &sim.worker(0).node]);
    sim.resume(1).unwrap();
    wait_for(Duration::from_secs(20), "the terminating pods gone", || {
        let all = pods(&c);
        all.len() == 6 && !all.iter().any(terminating)
    });
    // Deleting the deployment removes its ReplicaSets and pods.
    c.kubectl_ok(&["delete", "deployment", "web"]);
    wait_for(Duration::from_secs(30), "ReplicaSets and pods gone", || {
        let rs = c.kubectl_ok(&["get", "replicasets", "--no-headers"]);
        rs.trim().is_empty() && pods(&c).is_empty()
    });
}
