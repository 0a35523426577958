//! The real Kubernetes peers start and serve: etcd + kube-apiserver answer the real kubectl, and
//! kube-scheduler binds a pod to a Node made by hand. Builds the peers first when they are
//! missing or stale (`tests/peers/build.sh`; slow the first time, cached after).

use std::time::{Duration, Instant};

use nautilus_tests::client;
use nautilus_tests::peers::{self, Etcd, KubeApiServer, KubeScheduler};

const NODE: &str = r#"{
  "apiVersion": "v1",
  "kind": "Node",
  "metadata": {"name": "hand-made", "labels": {"kubernetes.io/hostname": "hand-made"}},
  "status": {
    "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
    "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
    "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                    "message": "made by hand", "lastHeartbeatTime": "2025-01-01T00:00:00Z",
                    "lastTransitionTime": "2025-01-01T00:00:00Z"}]
  }
}"#;

const POD: &str = r#"{
  "apiVersion": "v1",
  "kind": "Pod",
  "metadata": {"name": "to-schedule", "namespace": "default"},
  "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
                           "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}
}"#;

#[test]
fn etcd_kube_apiserver_and_kube_scheduler_serve_kubectl_and_bind_a_pod() {
    if let Err(e) = peers::build(&["kube-apiserver", "etcd", "kube-scheduler"]) {
        panic!("{e}");
    }
    let data = tempfile::tempdir().expect("etcd data dir");
    let etcd = Etcd::start(data.path()).unwrap_or_else(|e| panic!("{e}"));
    let api = KubeApiServer::start(&etcd, "peer-admin-token").unwrap_or_else(|e| panic!("{e}"));

    let version = api
        .request("GET", "/version", None, &[])
        .expect("GET /version");
    assert_eq!(version.status, 200);
    assert_eq!(version.json()["minor"], "32", "{}", version.json());

    let namespaces = api.kubectl.ok(&["get", "namespaces", "-o", "name"]);
    for ns in ["namespace/default", "namespace/kube-system"] {
        assert!(namespaces.lines().any(|l| l == ns), "{namespaces}");
    }
    api.kubectl.ok(&[
        "create",
        "configmap",
        "smoke",
        "--from-literal=greeting=hello",
    ]);
    assert_eq!(
        api.kubectl.ok(&[
            "get",
            "configmap",
            "smoke",
            "-o",
            "jsonpath={.data.greeting}"
        ]),
        "hello"
    );
    let wrong = [("authorization".to_string(), "Bearer wrong".to_string())];
    let anonymous = client::blocking_request(
        api.port,
        &api.ca_pem,
        "GET",
        "/api/v1/namespaces",
        None,
        &wrong,
    )
    .expect("GET with a wrong token");
    assert_eq!(anonymous.status, 401, "a token not in the file is refused");

    let scheduler = KubeScheduler::start(&api.kubeconfig).unwrap_or_else(|e| panic!("{e}"));
    let out = api.kubectl.run(&["create", "-f", "-"], Some(NODE));
    assert!(out.status.success(), "{out:?}");
    // The TaintNodesByCondition admission plugin taints every new Node not-ready; the node
    // lifecycle controller (kube-controller-manager, not running here) would lift it.
    let taints = api.kubectl.ok(&[
        "get",
        "node",
        "hand-made",
        "-o",
        "jsonpath={.spec.taints[*].key}",
    ]);
    assert_eq!(taints, "node.kubernetes.io/not-ready");
    api.kubectl.ok(&[
        "taint",
        "node",
        "hand-made",
        "node.kubernetes.io/not-ready:NoSchedule-",
    ]);
    // The ServiceAccount admission plugin refuses pods until the namespace's default
    // ServiceAccount exists (kube-controller-manager would create it).
    api.kubectl.ok(&[
        "create",
        "serviceaccount",
        "default",
        "--namespace",
        "default",
    ]);
    let out = api.kubectl.run(&["create", "-f", "-"], Some(POD));
    assert!(out.status.success(), "{out:?}");

    let deadline = Instant::now() + Duration::from_secs(60);
    let node = loop {
        let node = api.kubectl.ok(&[
            "get",
            "pod",
            "to-schedule",
            "-o",
            "jsonpath={.spec.nodeName}",
        ]);
        if !node.is_empty() {
            break node;
        }
        assert!(
            Instant::now() < deadline,
            "kube-scheduler never bound the pod:\n{}",
            scheduler.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(node, "hand-made");
    let scheduled = api.kubectl.ok(&[
        "get",
        "pod",
        "to-schedule",
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"PodScheduled\")].status}",
    ]);
    assert_eq!(scheduled, "True");
}
