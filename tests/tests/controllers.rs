//! The workload controllers end to end with the real `kubectl`: Deployments, ReplicaSets, pods,
//! rollouts, scaling, garbage collection and Endpoints. Without a scheduler or workers here, the
//! test plays the kubelet: it binds pods (`pods/NAME/binding`), reports them Running and Ready
//! through the status subresource, and confirms the deletion of terminating ones (grace 0), as
//! bound pods are deleted gracefully.

use std::time::{Duration, Instant};

use nautilus_tests::DevCluster;
use serde_json::{Value, json};

fn get_json(c: &DevCluster, args: &[&str]) -> Value {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    serde_json::from_str(&c.kubectl_ok(&all)).expect("kubectl -o json")
}

fn items(c: &DevCluster, args: &[&str]) -> Vec<Value> {
    get_json(c, args)["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Polls `check` until it holds (10 s at most).
#[track_caller]
fn wait_for(c: &DevCluster, what: &str, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if check() {
            eprintln!("{what}: {:?}", started.elapsed());
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}\n{}", c.logs());
}

/// Binds every unbound pod to `n1`, reports every pod Running and Ready, and confirms the
/// deletion of terminating ones with grace 0, as a kubelet would.
fn kubelet(c: &DevCluster) {
    for (i, pod) in items(c, &["pods"]).iter().enumerate() {
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        let base = format!("/api/v1/namespaces/default/pods/{name}");
        if pod["metadata"]["deletionTimestamp"].is_string() {
            let options =
                json!({"gracePeriodSeconds": 0, "preconditions": {"uid": pod["metadata"]["uid"]}});
            let body = serde_json::to_vec(&options).unwrap();
            let reply = c.request("DELETE", &base, Some(&body), &[]).unwrap();
            assert!(
                reply.status == 200 || reply.status == 404,
                "confirm {name}: {}",
                reply.status
            );
            continue;
        }
        if pod["spec"]["nodeName"].is_null() {
            let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
                "target": {"apiVersion": "v1", "kind": "Node", "name": "n1"}});
            let body = serde_json::to_vec(&binding).unwrap();
            let reply = c
                .request(
                    "POST",
                    &format!("{base}/binding"),
                    Some(&body),
                    &[("content-type", "application/json")],
                )
                .unwrap();
            assert!(
                reply.status == 201 || reply.status == 409,
                "bind {name}: {}",
                reply.status
            );
        }
        if pod["status"]["phase"] == "Running" {
            continue;
        }
        let ip = format!("10.42.{}.{}", i / 200, i % 200 + 10);
        let status = json!({"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}});
        let body = serde_json::to_vec(&status).unwrap();
        let reply = c
            .request(
                "PATCH",
                &format!("{base}/status"),
                Some(&body),
                &[("content-type", "application/merge-patch+json")],
            )
            .unwrap();
        assert!(
            reply.status == 200 || reply.status == 404,
            "status {name}: {}",
            reply.status
        );
    }
}

fn pods_of(c: &DevCluster, label: &str) -> Vec<Value> {
    items(c, &["pods", "-l", label])
}

/// Plays the kubelet until the deployment's rollout is complete.
fn roll_until_complete(c: &DevCluster, name: &str, replicas: i64) {
    wait_for(c, "the rollout", || {
        kubelet(c);
        let d = get_json(c, &["deployment", name]);
        let s = &d["status"];
        s["observedGeneration"] == d["metadata"]["generation"]
            && s["updatedReplicas"] == replicas
            && s["replicas"] == replicas
            && s["availableReplicas"] == replicas
            && pods_of(c, &format!("app={name}"))
                .iter()
                .all(|p| p["metadata"]["deletionTimestamp"].is_null())
    });
}

#[test]
fn deployment_create_scale_roll_undo_and_delete() {
    let c = DevCluster::start();
    c.kubectl_ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx",
        "--replicas=3",
    ]);
    wait_for(&c, "3 pods", || pods_of(&c, "app=web").len() == 3);
    let sets = items(&c, &["rs"]);
    assert_eq!(sets.len(), 1);
    let rs = &sets[0];
    let rs_name = rs["metadata"]["name"].as_str().unwrap().to_string();
    assert!(rs_name.starts_with("web-"), "{rs_name}");
    for pod in pods_of(&c, "app=web") {
        let owner = &pod["metadata"]["ownerReferences"][0];
        assert_eq!(owner["kind"], "ReplicaSet");
        assert_eq!(owner["name"], rs_name.as_str());
        assert_eq!(owner["uid"], rs["metadata"]["uid"]);
        assert_eq!(owner["controller"], true);
    }
    let out = c.kubectl_ok(&["get", "rs"]);
    assert!(out.contains(&rs_name), "{out}");

    c.kubectl_ok(&["scale", "deployment", "web", "--replicas=5"]);
    wait_for(&c, "5 pods", || pods_of(&c, "app=web").len() == 5);
    roll_until_complete(&c, "web", 5);
    let out = c.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=20s"]);
    assert!(out.contains("successfully rolled out"), "{out}");

    c.kubectl_ok(&["set", "image", "deployment/web", "nginx=nginx:1.27"]);
    wait_for(&c, "a second ReplicaSet", || items(&c, &["rs"]).len() == 2);
    roll_until_complete(&c, "web", 5);
    let out = c.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=20s"]);
    assert!(out.contains("successfully rolled out"), "{out}");
    let d = get_json(&c, &["deployment", "web"]);
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "2"
    );
    let old = get_json(&c, &["rs", &rs_name]);
    assert_eq!(
        old["spec"]["replicas"], 0,
        "the old ReplicaSet is scaled down"
    );
    assert!(
        pods_of(&c, "app=web")
            .iter()
            .all(|p| p["spec"]["containers"][0]["image"] == "nginx:1.27")
    );

    let history = c.kubectl_ok(&["rollout", "history", "deployment/web"]);
    let revisions: Vec<&str> = history
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.parse::<u32>().is_ok())
        .collect();
    assert_eq!(revisions, ["1", "2"], "{history}");

    let out = c.kubectl_ok(&["rollout", "undo", "deployment/web"]);
    assert!(out.contains("rolled back"), "{out}");
    roll_until_complete(&c, "web", 5);
    let back = get_json(&c, &["rs", &rs_name]);
    assert_eq!(
        back["spec"]["replicas"], 5,
        "undo reuses the first ReplicaSet"
    );
    assert_eq!(
        back["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "3"
    );
    assert_eq!(items(&c, &["rs"]).len(), 2);
    let events = c.kubectl_ok(&["get", "events"]);
    assert!(
        events.contains("ScalingReplicaSet") && events.contains("SuccessfulCreate"),
        "{events}"
    );

    // kubectl's default cascade is Background: the deployment, then its sets and pods.
    c.kubectl_ok(&["delete", "deployment", "web"]);
    wait_for(&c, "the ReplicaSets and pods to go", || {
        kubelet(&c);
        items(&c, &["rs"]).is_empty() && pods_of(&c, "app=web").is_empty()
    });
}

#[test]
fn orphan_and_foreground_cascades() {
    let c = DevCluster::start();
    c.kubectl_ok(&[
        "create",
        "deployment",
        "keep",
        "--image=nginx",
        "--replicas=2",
    ]);
    wait_for(&c, "2 pods", || pods_of(&c, "app=keep").len() == 2);
    c.kubectl_ok(&["delete", "deployment", "keep", "--cascade=orphan"]);
    let sets = items(&c, &["rs", "-l", "app=keep"]);
    assert_eq!(sets.len(), 1, "the ReplicaSet stays");
    assert!(
        sets[0]["metadata"]["ownerReferences"].is_null(),
        "{}",
        sets[0]
    );
    let rs = sets[0]["metadata"]["name"].as_str().unwrap().to_string();
    c.kubectl_ok(&["delete", "rs", &rs, "--cascade=orphan"]);
    let pods = pods_of(&c, "app=keep");
    assert_eq!(pods.len(), 2, "the pods stay");
    assert!(
        pods.iter()
            .all(|p| p["metadata"]["ownerReferences"].is_null())
    );

    c.kubectl_ok(&[
        "create",
        "deployment",
        "fg",
        "--image=nginx",
        "--replicas=2",
    ]);
    wait_for(&c, "2 pods", || pods_of(&c, "app=fg").len() == 2);
    // kubectl waits until the deployment is gone; with Foreground its dependents went first.
    c.kubectl_ok(&[
        "delete",
        "deployment",
        "fg",
        "--cascade=foreground",
        "--timeout=20s",
    ]);
    assert!(items(&c, &["rs", "-l", "app=fg"]).is_empty());
    assert!(pods_of(&c, "app=fg").is_empty());
}

/// A two-replica Deployment `web` on container port 8080, exposed as Service `web` on port 80.
fn expose_web(c: &DevCluster) {
    c.kubectl_ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx",
        "--replicas=2",
        "--port=8080",
    ]);
    c.kubectl_ok(&[
        "expose",
        "deployment",
        "web",
        "--port=80",
        "--target-port=8080",
    ]);
}

#[test]
fn services_get_endpoints_of_ready_pods() {
    let c = DevCluster::start();
    expose_web(&c);
    wait_for(&c, "2 pods", || pods_of(&c, "app=web").len() == 2);
    wait_for(&c, "endpoints with the pods' IPs", || {
        kubelet(&c);
        let ep = get_json(&c, &["endpoints", "web"]);
        ep["subsets"][0]["addresses"].as_array().map(Vec::len) == Some(2)
    });
    let ep = get_json(&c, &["endpoints", "web"]);
    let mut ips: Vec<String> = ep["subsets"][0]["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["ip"].as_str().unwrap().to_string())
        .collect();
    let mut pod_ips: Vec<String> = pods_of(&c, "app=web")
        .iter()
        .map(|p| p["status"]["podIP"].as_str().unwrap().to_string())
        .collect();
    ips.sort();
    pod_ips.sort();
    assert_eq!(ips, pod_ips);
    assert_eq!(ep["subsets"][0]["ports"][0]["port"], 8080);
    let out = c.kubectl_ok(&["get", "endpoints", "web"]);
    assert!(out.contains(":8080"), "{out}");
}

/// The addresses of the managed EndpointSlices of `service`, sorted, and each slice's ready
/// conditions.
fn slice_addresses(c: &DevCluster, service: &str) -> (Vec<String>, Vec<Value>) {
    let label = format!("kubernetes.io/service-name={service}");
    let slices = items(c, &["endpointslices", "-l", &label]);
    let mut ips = Vec::new();
    let mut conditions = Vec::new();
    for slice in &slices {
        assert_eq!(slice["addressType"], "IPv4", "{slice}");
        assert_eq!(
            slice["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"],
            "endpointslice-controller.k8s.io"
        );
        for e in slice["endpoints"].as_array().into_iter().flatten() {
            ips.push(e["addresses"][0].as_str().unwrap().to_string());
            conditions.push(e["conditions"].clone());
        }
    }
    ips.sort();
    (ips, conditions)
}

fn ready_pod_ips(c: &DevCluster, label: &str) -> Vec<String> {
    let mut ips: Vec<String> = pods_of(c, label)
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .filter_map(|p| p["status"]["podIP"].as_str().map(String::from))
        .collect();
    ips.sort();
    ips
}

/// kube-proxy reads EndpointSlices: the slice of an exposed Deployment lists its ready pods'
/// IPs with kube's conditions, and follows it as it scales up and down.
#[test]
fn services_get_endpoint_slices_that_follow_scale() {
    // Where pods would reach the API (dev mode listens on loopback, which kube's endpoint
    // validation refuses, so it advertises nothing by itself).
    let c = DevCluster::start_with(&["--advertise-address=192.0.2.10:6443"]);
    expose_web(&c);
    for replicas in [2usize, 5, 1] {
        c.kubectl_ok(&[
            "scale",
            "deployment",
            "web",
            &format!("--replicas={replicas}"),
        ]);
        wait_for(&c, &format!("a slice of {replicas} ready pods"), || {
            kubelet(&c);
            let pods = ready_pod_ips(&c, "app=web");
            let (ips, conditions) = slice_addresses(&c, "web");
            pods.len() == replicas
                && ips == pods
                && conditions
                    .iter()
                    .all(|c| *c == json!({"ready": true, "serving": true, "terminating": false}))
        });
    }
    let slice = &items(
        &c,
        &["endpointslices", "-l", "kubernetes.io/service-name=web"],
    )[0];
    assert_eq!(
        slice["ports"],
        json!([{"name": "", "port": 8080, "protocol": "TCP"}])
    );
    assert_eq!(slice["metadata"]["ownerReferences"][0]["kind"], "Service");
    assert_eq!(slice["endpoints"][0]["targetRef"]["kind"], "Pod");
    assert_eq!(slice["endpoints"][0]["nodeName"], "n1");
    let table = c.kubectl_ok(&[
        "get",
        "endpointslices",
        "-l",
        "kubernetes.io/service-name=web",
    ]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"],
        "{table}"
    );
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(
        (row[1], row[2], row[3]),
        ("IPv4", "8080", ready_pod_ips(&c, "app=web")[0].as_str()),
        "{table}"
    );

    // The `kubernetes` Service's own slice and Endpoints name the advertised API address.
    let api = get_json(&c, &["endpointslice", "kubernetes"]);
    assert_eq!(
        (&api["endpoints"], &api["ports"]),
        (
            &json!([{"addresses": ["192.0.2.10"], "conditions": {"ready": true}}]),
            &json!([{"name": "https", "port": 6443, "protocol": "TCP"}])
        ),
        "{api}"
    );
    let ep = get_json(&c, &["endpoints", "kubernetes"]);
    assert_eq!(ep["subsets"][0]["addresses"][0]["ip"], "192.0.2.10", "{ep}");

    // The Service goes, and its slices with it.
    c.kubectl_ok(&["delete", "service", "web"]);
    wait_for(&c, "the slices to go", || {
        items(
            &c,
            &["endpointslices", "-l", "kubernetes.io/service-name=web"],
        )
        .is_empty()
    });
}

#[test]
fn bad_deployments_and_the_object_budget() {
    let c = DevCluster::start_with(&["--max-objects=150"]);
    let bad = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: bad\nspec:\n  selector:\n    matchLabels:\n      app: a\n  template:\n    metadata:\n      labels:\n        app: b\n    spec:\n      containers:\n      - name: c\n        image: nginx\n";
    let out = c.kubectl_with_input(&["apply", "-f", "-"], Some(bad));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"b\"}: `selector` does not match template `labels`"),
        "{err}"
    );
    let err = c.kubectl_err(&[
        "create",
        "deployment",
        "neg",
        "--image=nginx",
        "--replicas=-1",
    ]);
    assert!(err.contains("must be greater than or equal to 0"), "{err}");

    c.kubectl_ok(&[
        "create",
        "deployment",
        "huge",
        "--image=nginx",
        "--replicas=100000",
    ]);
    wait_for(&c, "a ReplicaFailure condition", || {
        let d = get_json(&c, &["deployment", "huge"]);
        d["status"]["conditions"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "ReplicaFailure" && c["reason"] == "FailedCreate")
        })
    });
    let rs = &items(&c, &["rs"])[0];
    let failure = rs["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "ReplicaFailure")
        .unwrap()
        .clone();
    assert!(
        failure["message"]
            .as_str()
            .unwrap()
            .contains("maximum of 150 objects"),
        "{failure}"
    );
    let pods = pods_of(&c, "app=huge").len();
    assert!(pods > 50 && pods < 150, "{pods}");
    // The cluster stays usable, and deleting the deployment frees the budget.
    c.kubectl_ok(&["get", "ns"]);
    c.kubectl_ok(&["delete", "deployment", "huge", "--timeout=20s"]);
    wait_for(&c, "the pods to go", || pods_of(&c, "app=huge").is_empty());
    c.kubectl_ok(&["create", "configmap", "after", "--from-literal=a=b"]);
}
