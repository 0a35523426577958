//! Graceful pod deletion end to end, with the real kubectl and simulated workers whose kubelets
//! confirm deletions (grace 0) as a kubelet does: a deleted pod terminates until its kubelet
//! confirms, a second delete may only shorten its grace, `--grace-period=0 --force` removes it at
//! once; `kubectl scale`, `kubectl rollout` and `kubectl delete ns` go on while pods on a dead
//! worker terminate, and finish when its kubelet comes back.

use std::time::{Duration, Instant};

use nautilus_tests::DevCluster;
use nautilus_tests::simulator::{DEFAULT_PACKAGE, SimConfig, Simulator, package_arg};
use serde_json::Value;

/// Polls `check` every 100 ms until it is true or `limit` passes.
#[track_caller]
fn wait_for(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A dev cluster that takes stake events, with two simulated workers (kubelets on) whose nodes
/// stay Ready for two minutes without heartbeats, so a paused worker is a dead kubelet only.
fn cluster() -> (DevCluster, Simulator) {
    let c = DevCluster::start_with(&[
        &package_arg(&DEFAULT_PACKAGE),
        "--min-stake=1000000000",
        "--node-grace-secs=120",
    ]);
    let sim = Simulator::start(
        &c,
        SimConfig {
            workers: 2,
            interval: Duration::from_secs(1),
            connections: 2,
            watch_pods: true,
            ..SimConfig::default()
        },
    )
    .unwrap();
    wait_for(Duration::from_secs(15), "two Ready nodes", || {
        let out = c.kubectl_ok(&["get", "nodes", "--no-headers"]);
        out.lines().filter(|l| l.contains(" Ready ")).count() == 2
    });
    (c, sim)
}

fn get(c: &DevCluster, path: &str) -> Option<Value> {
    let reply = c.request("GET", path, None, &[]).unwrap();
    match reply.status {
        200 => Some(reply.json()),
        404 => None,
        other => panic!(
            "GET {path}: {other} {}",
            String::from_utf8_lossy(&reply.body)
        ),
    }
}

fn pod(c: &DevCluster, ns: &str, name: &str) -> Option<Value> {
    get(c, &format!("/api/v1/namespaces/{ns}/pods/{name}"))
}

fn running(pod: &Option<Value>) -> bool {
    pod.as_ref()
        .is_some_and(|p| p["status"]["phase"] == "Running")
}

/// Creates pod `name` bound to `node` and waits until its kubelet runs it.
fn run_pod(c: &DevCluster, name: &str, node: &str) {
    let manifest = format!(
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}"}},
            "spec":{{"nodeName":"{node}","containers":[{{"name":"c","image":"nginx:1.27"}}]}}}}"#
    );
    let created = c.kubectl_with_input(&["create", "-f", "-"], Some(&manifest));
    assert!(created.status.success(), "{created:?}");
    wait_for(Duration::from_secs(10), "the pod Running", || {
        running(&pod(c, "default", name))
    });
}

/// The (type, deletionGracePeriodSeconds) of the watch events of pod `name` after `rv`.
fn events_since(c: &DevCluster, rv: &str, name: &str) -> Vec<(String, Value)> {
    let path = format!(
        "/api/v1/namespaces/default/pods?watch=true&resourceVersion={rv}&timeoutSeconds=1&fieldSelector=metadata.name%3D{name}"
    );
    let reply = c.request("GET", &path, None, &[]).unwrap();
    assert_eq!(reply.status, 200);
    String::from_utf8_lossy(&reply.body)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let event: Value = serde_json::from_str(l).unwrap();
            (
                event["type"].as_str().unwrap().to_string(),
                event["object"]["metadata"]["deletionGracePeriodSeconds"].clone(),
            )
        })
        .collect()
}

#[test]
fn kubectl_delete_pod_waits_for_the_kubelet_and_force_does_not() {
    let (c, sim) = cluster();
    let node = sim.worker(0).node.clone();

    // A live kubelet confirms at once: kubectl's default wait for the deletion returns.
    run_pod(&c, "quick", &node);
    let out = c.kubectl_ok(&["delete", "pod", "quick", "--timeout=20s"]);
    assert!(out.contains("pod \"quick\" deleted"), "{out}");
    assert!(pod(&c, "default", "quick").is_none());

    run_pod(&c, "web", &node);
    let rv = pod(&c, "default", "web").unwrap()["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    sim.pause(0);
    c.kubectl_ok(&["delete", "pod", "web", "--wait=false"]);
    let web = pod(&c, "default", "web").expect("terminating, not gone");
    assert_eq!(web["metadata"]["deletionGracePeriodSeconds"], 30, "{web}");
    assert!(web["metadata"]["deletionTimestamp"].is_string(), "{web}");
    let listed = c.kubectl_ok(&["get", "pod", "web", "--no-headers"]);
    assert!(listed.contains("Terminating"), "{listed}");

    // A longer grace changes nothing; a shorter one shortens it.
    c.kubectl_ok(&["delete", "pod", "web", "--grace-period=90", "--wait=false"]);
    assert_eq!(
        pod(&c, "default", "web").unwrap()["metadata"]["deletionGracePeriodSeconds"],
        30
    );
    c.kubectl_ok(&["delete", "pod", "web", "--grace-period=5", "--wait=false"]);
    assert_eq!(
        pod(&c, "default", "web").unwrap()["metadata"]["deletionGracePeriodSeconds"],
        5
    );
    // Past its grace it is still there: only its kubelet (or a force) removes it.
    std::thread::sleep(Duration::from_secs(6));
    assert!(pod(&c, "default", "web").is_some());
    sim.resume(0).unwrap();
    wait_for(
        Duration::from_secs(10),
        "the kubelet's confirmation",
        || pod(&c, "default", "web").is_none(),
    );
    let events = events_since(&c, &rv, "web");
    let kinds: Vec<(&str, i64)> = events
        .iter()
        .map(|(t, g)| (t.as_str(), g.as_i64().unwrap_or(-1)))
        .collect();
    assert_eq!(
        kinds,
        [
            ("MODIFIED", 30),
            ("MODIFIED", 5),
            ("MODIFIED", 0),
            ("DELETED", 0)
        ],
        "watchers see the pod terminate, then go"
    );
    assert!(sim.stats().pods_deleted >= 2, "{:?}", sim.stats());

    // Force: gone at once, with kubectl's warning, whatever the kubelet does.
    run_pod(&c, "stuck", &node);
    sim.pause(0);
    let out = c.kubectl(&["delete", "pod", "stuck", "--grace-period=0", "--force"]);
    assert!(out.status.success(), "{out:?}");
    let warning = String::from_utf8_lossy(&out.stderr);
    assert!(
        warning.contains("Immediate deletion does not wait"),
        "{warning}"
    );
    assert!(pod(&c, "default", "stuck").is_none());
    sim.resume(0).unwrap();
    assert_eq!(sim.stats().watch_errors, 0, "{:?}", sim.error_samples());
}

#[test]
fn scale_rollout_and_namespace_deletion_go_on_while_pods_terminate() {
    let (c, sim) = cluster();
    let (live, dead) = (sim.worker(0).node.clone(), sim.worker(1).node.clone());
    c.kubectl_ok(&["create", "namespace", "shop"]);
    let ns = ["-n", "shop"];
    let kubectl = |args: &[&str]| c.kubectl_ok(&[args, &ns[..]].concat());
    kubectl(&[
        "create",
        "deployment",
        "web",
        "--image=nginx:1.26",
        "--replicas=4",
    ]);
    kubectl(&["rollout", "status", "deployment/web", "--timeout=60s"]);
    let pods = || -> Vec<Value> {
        get(&c, "/api/v1/namespaces/shop/pods").unwrap()["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let on = |p: &Value, n: &str| p["spec"]["nodeName"] == n;
    let terminating = |p: &Value| p["metadata"]["deletionTimestamp"].is_string();
    assert_eq!(
        pods().iter().filter(|p| on(p, &dead)).count(),
        2,
        "spread two and two"
    );

    // Worker 1's kubelet dies; an operator cordons its node.
    sim.pause(1);
    c.kubectl_ok(&["cordon", &dead]);

    // Scale down: the ReplicaSet deletes three pods gracefully; those on the live worker go,
    // those on the dead one terminate, and the counts leave them out.
    kubectl(&["scale", "deployment", "web", "--replicas=1"]);
    kubectl(&["rollout", "status", "deployment/web", "--timeout=30s"]);
    wait_for(
        Duration::from_secs(10),
        "the live worker's victims gone",
        || {
            pods()
                .iter()
                .filter(|p| on(p, &live))
                .all(|p| !terminating(p))
        },
    );
    let all = pods();
    let stuck: Vec<&Value> = all.iter().filter(|p| terminating(p)).collect();
    assert!(
        !stuck.is_empty() && stuck.iter().all(|p| on(p, &dead)),
        "{all:?}"
    );
    assert_eq!(all.iter().filter(|p| !terminating(p)).count(), 1, "{all:?}");
    let status = kubectl(&[
        "get",
        "deployment",
        "web",
        "-o",
        "jsonpath={.status.replicas} {.status.readyReplicas}",
    ]);
    assert_eq!(status, "1 1");
    let listed = kubectl(&["get", "pods", "--no-headers"]);
    assert_eq!(
        listed.matches("Terminating").count(),
        stuck.len(),
        "{listed}"
    );

    // A rollout completes on the live worker meanwhile.
    kubectl(&["scale", "deployment", "web", "--replicas=2"]);
    kubectl(&["set", "image", "deployment/web", "nginx=nginx:1.27"]);
    kubectl(&["rollout", "status", "deployment/web", "--timeout=60s"]);
    wait_for(Duration::from_secs(20), "only new pods active", || {
        let active: Vec<Value> = pods().into_iter().filter(|p| !terminating(p)).collect();
        active.len() == 2
            && active
                .iter()
                .all(|p| p["spec"]["containers"][0]["image"] == "nginx:1.27" && on(p, &live))
    });

    // The namespace waits for the pods that terminate on the dead worker.
    c.kubectl_ok(&["delete", "namespace", "shop", "--wait=false"]);
    wait_for(
        Duration::from_secs(10),
        "only the dead worker's pods left",
        || {
            let left = pods();
            !left.is_empty() && left.iter().all(|p| terminating(p) && on(p, &dead))
        },
    );
    let phase = c.kubectl_ok(&["get", "namespace", "shop", "-o", "jsonpath={.status.phase}"]);
    assert_eq!(phase, "Terminating");
    // Its kubelet back, the pods go, then the namespace.
    sim.resume(1).unwrap();
    wait_for(Duration::from_secs(20), "the namespace gone", || {
        get(&c, "/api/v1/namespaces/shop").is_none()
    });
    assert_eq!(sim.stats().watch_errors, 0, "{:?}", sim.error_samples());
}
