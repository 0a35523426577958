//! NodeRestriction end to end (issue 13, item 4): a staked worker, holding its own Seal token,
//! drives the real binaries with the real `kubectl --token` (raw HTTP where kubectl cannot say
//! it) and cannot relabel, untaint, uncordon or disown its Node, strip its stake record, or move
//! its pod into another Service's endpoints; while it can read exactly the Secrets and ConfigMaps
//! its own pods use, as a kubelet must.

use std::time::{Duration, Instant};

use nautilus_tests::DevCluster;
use nautilus_tests::client::Reply;
use nautilus_tests::kubectl_forbidden as refused;
use nautilus_tests::simulator::{
    DEFAULT_PACKAGE, SimConfig, Simulator, now_secs, package_arg, register_body,
};
use serde_json::{Value, json};

fn cluster() -> DevCluster {
    DevCluster::start_with(&[
        &package_arg(&DEFAULT_PACKAGE),
        "--min-stake=1000000000",
        "--node-grace-secs=40",
    ])
}

fn workers(c: &DevCluster, watch_pods: bool) -> Simulator {
    let config = SimConfig {
        workers: 2,
        interval: Duration::from_secs(2),
        connections: 2,
        watch_pods,
        ..SimConfig::default()
    };
    Simulator::start(c, config).unwrap()
}

fn text(reply: &Reply) -> String {
    String::from_utf8_lossy(&reply.body).into_owned()
}

fn get_json(c: &DevCluster, path: &str) -> Value {
    let reply = c.request("GET", path, None, &[]).unwrap();
    assert_eq!(reply.status, 200, "GET {path}: {}", text(&reply));
    reply.json()
}

/// Polls `check` every 100 ms until it is true or `limit` passes.
#[track_caller]
fn wait_for(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A raw request as worker `i` (kubectl cannot patch a status subresource as a node: it reads the
/// subresource first, which kube's Node authorizer refuses too); expects 403 with `message`.
#[track_caller]
fn refused_raw(
    sim: &Simulator,
    i: usize,
    method: &str,
    path: &str,
    content_type: &str,
    body: &str,
    message: &str,
) {
    let reply = sim
        .request_as(
            i,
            method,
            path,
            Some(body.as_bytes()),
            &[("content-type", content_type)],
        )
        .unwrap();
    assert_eq!(reply.status, 403, "{method} {path}: {}", text(&reply));
    let status = reply.json();
    assert_eq!(status["reason"], "Forbidden", "{status}");
    assert_eq!(status["message"], message, "{method} {path}");
}

#[track_caller]
fn allowed(c: &DevCluster, token: &str, args: &[&str]) -> String {
    let mut all = vec!["--token", token];
    all.extend_from_slice(args);
    c.kubectl_ok(&all)
}

/// What the node may not change: labels, annotations, taints, the cordon, ownership.
fn guarded(node: &Value) -> Value {
    json!([
        node["metadata"]["labels"],
        node["metadata"]["annotations"],
        node["spec"],
        node["metadata"]["ownerReferences"]
    ])
}

#[test]
fn a_worker_cannot_relabel_untaint_uncordon_disown_or_unstake_its_node() {
    let c = cluster();
    let sim = workers(&c, false);
    let me = sim.worker(0).node.clone();
    c.kubectl_ok(&["label", "node", &me, "node-role.kubernetes.io/worker="]);
    c.kubectl_ok(&["taint", "node", &me, "dedicated=gpu:NoSchedule"]);
    c.kubectl_ok(&["cordon", &me]);
    let node_path = format!("/api/v1/nodes/{me}");
    let before = get_json(&c, &node_path);
    assert_eq!(before["spec"]["unschedulable"], true, "{before}");
    let token = sim.worker(0).token();
    let t = token.as_str();
    let labels = |keys: &str| {
        format!(r#"nodes "{me}" is forbidden: is not allowed to modify labels: {keys}"#)
    };
    let own = |what: &str| {
        format!(r#"nodes "{me}" is forbidden: node "{me}" is not allowed to modify {what}"#)
    };

    // Labels: merge patch (kubectl label), JSON patch, strategic merge, apply, nodes/status.
    for key in [
        "node-role.kubernetes.io/control-plane",
        "node-restriction.kubernetes.io/x",
        "kubernetes.io/foo",
    ] {
        refused(
            &c,
            t,
            &["label", "node", &me, &format!("{key}=y")],
            None,
            &labels(key),
        );
        let escaped = key.replace('/', "~1");
        refused(
            &c,
            t,
            &[
                "patch",
                "node",
                &me,
                "--type",
                "json",
                "-p",
                &format!(r#"[{{"op":"add","path":"/metadata/labels/{escaped}","value":"y"}}]"#),
            ],
            None,
            &labels(key),
        );
        refused(
            &c,
            t,
            &[
                "patch",
                "node",
                &me,
                "--type",
                "strategic",
                "-p",
                &format!(r#"{{"metadata":{{"labels":{{"{key}":"y"}}}}}}"#),
            ],
            None,
            &labels(key),
        );
        refused_raw(
            &sim,
            0,
            "PATCH",
            &format!("{node_path}/status"),
            "application/merge-patch+json",
            &format!(r#"{{"metadata":{{"labels":{{"{key}":"y"}}}}}}"#),
            &labels(key),
        );
        let manifest = json!({"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": me, "labels": {key: "y"}}})
        .to_string();
        refused(
            &c,
            t,
            &[
                "apply",
                "--server-side",
                "--force-conflicts",
                "--field-manager",
                "kubelet",
                "-f",
                "-",
            ],
            Some(&manifest),
            &labels(key),
        );
    }
    // The admin's label, changed or removed.
    refused(
        &c,
        t,
        &[
            "label",
            "node",
            &me,
            "--overwrite",
            "node-role.kubernetes.io/worker=gpu",
        ],
        None,
        &labels("node-role.kubernetes.io/worker"),
    );
    refused(
        &c,
        t,
        &["label", "node", &me, "node-role.kubernetes.io/worker-"],
        None,
        &labels("node-role.kubernetes.io/worker"),
    );

    // Taints and the cordon.
    refused(
        &c,
        t,
        &["taint", "node", &me, "dedicated-"],
        None,
        &own("taints"),
    );
    refused(
        &c,
        t,
        &["taint", "node", &me, "mine=x:NoExecute"],
        None,
        &own("taints"),
    );
    refused_raw(
        &sim,
        0,
        "PATCH",
        &format!("{node_path}/status"),
        "application/merge-patch+json",
        r#"{"spec":{"taints":null}}"#,
        &own("taints"),
    );
    // (kubectl uncordon prints the refusal but exits 0.)
    let out = c.kubectl(&["--token", t, "uncordon", &me]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            r#"unable to uncordon node "{me}": {}"#,
            own("spec.unschedulable")
        )),
        "{stderr}"
    );

    // The enclave's stake record.
    for key in [
        "nautilus.io/stake-id",
        "nautilus.io/staker-address",
        "nautilus.io/stake-trust-level",
    ] {
        refused(
            &c,
            t,
            &["annotate", "node", &me, &format!("{key}-")],
            None,
            &own(&format!("annotations: {key}")),
        );
    }
    refused(
        &c,
        t,
        &[
            "annotate",
            "node",
            &me,
            "--overwrite",
            "nautilus.io/stake-trust-level=light-client",
        ],
        None,
        &own("annotations: nautilus.io/stake-trust-level"),
    );

    // ownerReferences to an owner that does not exist: the garbage collector would delete the
    // Node (what the review saw), so the write itself is refused.
    refused(
        &c,
        t,
        &[
            "patch",
            "node",
            &me,
            "--type",
            "merge",
            "-p",
            r#"{"metadata":{"ownerReferences":[{"apiVersion":"v1","kind":"Namespace","name":"gone","uid":"0f1e2d3c-0000-4000-8000-000000000001"}]}}"#,
        ],
        None,
        &own("ownerReferences"),
    );
    // And a direct delete stays refused.
    refused(
        &c,
        t,
        &["delete", "node", &me, "--wait=false"],
        None,
        &format!(
            r#"nodes "{me}" is forbidden: User "system:node:{me}" cannot delete resource "nodes""#
        ),
    );

    // The seed's register-worker, with the same labels: the seed's error JSON.
    let now = now_secs();
    let body = register_body(
        &me,
        t,
        now,
        Some(&json!({"labels": {
        "node-role.kubernetes.io/control-plane": "", "kubernetes.io/hostname": me}})),
    );
    let reply = sim
        .raw_request(
            "POST",
            "/api/v1/register-worker",
            Some(&body),
            &[("x-seal-token".into(), t.into())],
        )
        .unwrap();
    assert_eq!(reply.status, 403, "{}", text(&reply));
    let answer = reply.json();
    assert_eq!(answer["status"], "error", "{answer}");
    assert_eq!(answer["reason"], "Forbidden", "{answer}");
    assert_eq!(
        answer["message"],
        labels("node-role.kubernetes.io/control-plane").as_str()
    );

    // Nothing above changed the Node; the other worker's Node was not touched either.
    let after = get_json(&c, &node_path);
    assert_eq!(guarded(&after), guarded(&before), "{after}");
    assert!(after["metadata"]["ownerReferences"].is_null(), "{after}");

    // What a kubelet may do still works: its own labels, its own status, a fresh registration.
    allowed(
        &c,
        t,
        &[
            "label",
            "node",
            &me,
            "example.com/gpu=a100",
            "topology.kubernetes.io/zone=z1",
        ],
    );
    let node = get_json(&c, &node_path);
    assert_eq!(node["metadata"]["labels"]["example.com/gpu"], "a100");
    assert_eq!(
        node["metadata"]["labels"]["topology.kubernetes.io/zone"],
        "z1"
    );
    allowed(&c, t, &["get", "node", &me]);
    let reply = sim.register_one(0).unwrap();
    assert_eq!(reply.status, 200, "{}", text(&reply));
    // The Node survived: no garbage collection took it.
    let node = get_json(&c, &node_path);
    assert_eq!(node["spec"]["unschedulable"], true, "{node}");
    assert_eq!(
        node["metadata"]["annotations"]["nautilus.io/stake-id"],
        before["metadata"]["annotations"]["nautilus.io/stake-id"]
    );
}

const SHOP: &str = r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"shop","namespace":"default"},
"spec":{"selector":{"app":"shop"},"ports":[{"port":80,"targetPort":8080}]}}"#;

fn pod(name: &str, app: &str, node: &str) -> String {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default", "labels": {"app": app}},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "nginx:1.27", "ports": [{"containerPort": 8080}]}]}})
    .to_string()
}

fn endpoint_ips(c: &DevCluster) -> Vec<String> {
    let reply = c
        .request(
            "GET",
            "/api/v1/namespaces/default/endpoints/shop",
            None,
            &[],
        )
        .unwrap();
    if reply.status != 200 {
        return Vec::new();
    }
    let ep = reply.json();
    ep["subsets"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["addresses"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a["ip"].as_str().map(String::from))
        .collect()
}

fn pod_ip(c: &DevCluster, name: &str) -> Option<String> {
    get_json(c, &format!("/api/v1/namespaces/default/pods/{name}"))["status"]["podIP"]
        .as_str()
        .map(String::from)
}

#[test]
fn a_worker_cannot_move_its_pod_into_another_services_endpoints() {
    let c = cluster();
    let sim = workers(&c, true);
    let (me, other) = (sim.worker(0).node.clone(), sim.worker(1).node.clone());
    let create = |manifest: &str| {
        let out = c.kubectl_with_input(&["create", "-f", "-"], Some(manifest));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    create(SHOP);
    create(&pod("shop-1", "shop", &other));
    create(&pod("thief", "thief", &me));
    wait_for(
        Duration::from_secs(15),
        "both pods Running with an IP",
        || pod_ip(&c, "shop-1").is_some() && pod_ip(&c, "thief").is_some(),
    );
    let shop_ip = pod_ip(&c, "shop-1").unwrap();
    let thief_ip = pod_ip(&c, "thief").unwrap();
    wait_for(Duration::from_secs(10), "shop's endpoints", || {
        endpoint_ips(&c) == [shop_ip.clone()]
    });

    let token = sim.worker(0).token();
    let message = format!(
        r#"pods "thief" is forbidden: node "{me}" cannot update labels through pod status"#
    );
    let thief_status = "/api/v1/namespaces/default/pods/thief/status";
    refused_raw(
        &sim,
        0,
        "PATCH",
        thief_status,
        "application/merge-patch+json",
        r#"{"metadata":{"labels":{"app":"shop"}}}"#,
        &message,
    );
    refused_raw(
        &sim,
        0,
        "PATCH",
        thief_status,
        "application/json-patch+json",
        r#"[{"op":"replace","path":"/metadata/labels/app","value":"shop"}]"#,
        &message,
    );
    refused_raw(
        &sim,
        0,
        "PATCH",
        thief_status,
        "application/strategic-merge-patch+json",
        r#"{"metadata":{"labels":{"app":"shop"}},"status":{"phase":"Running"}}"#,
        &message,
    );
    // kubectl, as the node, is refused before it can even read the status it would patch.
    refused(
        &c,
        &token,
        &[
            "patch",
            "pod",
            "thief",
            "--subresource",
            "status",
            "--type",
            "merge",
            "-p",
            r#"{"metadata":{"labels":{"app":"shop"}}}"#,
        ],
        None,
        &format!(
            r#"pods "thief" is forbidden: User "system:node:{me}" cannot get resource "pods/status" in API group "" in the namespace "default""#
        ),
    );
    // A kubelet's PUT of the whole pod to /status.
    let mut stolen = get_json(&c, "/api/v1/namespaces/default/pods/thief");
    stolen["metadata"]["labels"]["app"] = json!("shop");
    let reply = sim
        .request_as(
            0,
            "PUT",
            "/api/v1/namespaces/default/pods/thief/status",
            Some(stolen.to_string().as_bytes()),
            &[("content-type", "application/json")],
        )
        .unwrap();
    assert_eq!(reply.status, 403, "{}", text(&reply));
    assert_eq!(reply.json()["message"], message.as_str());
    // Nor through the pod itself, nor another node's pod.
    refused(
        &c,
        &token,
        &["label", "pod", "thief", "--overwrite", "app=shop"],
        None,
        &format!(
            r#"pods "thief" is forbidden: User "system:node:{me}" cannot patch resource "pods" in API group "" in the namespace "default""#
        ),
    );
    refused_raw(
        &sim,
        0,
        "PATCH",
        "/api/v1/namespaces/default/pods/shop-1/status",
        "application/merge-patch+json",
        r#"{"status":{"phase":"Failed"}}"#,
        &format!(
            r#"pods "shop-1" is forbidden: node "{me}" can only update pod status for pods with spec.nodeName set to itself"#
        ),
    );
    // Its own status still goes through.
    let reply = sim
        .request_as(
            0,
            "PATCH",
            thief_status,
            Some(br#"{"metadata":{"annotations":{"example.com/probe":"ok"}}}"#),
            &[("content-type", "application/merge-patch+json")],
        )
        .unwrap();
    assert_eq!(reply.status, 200, "{}", text(&reply));

    // Let the Endpoints controller show whatever it would: a second shop pod appears in them, and
    // the thief never did.
    create(&pod("shop-2", "shop", &other));
    wait_for(
        Duration::from_secs(15),
        "shop-2 in shop's endpoints",
        || pod_ip(&c, "shop-2").is_some_and(|ip| endpoint_ips(&c).contains(&ip)),
    );
    let ips = endpoint_ips(&c);
    assert!(!ips.contains(&thief_ip), "{ips:?} has the thief {thief_ip}");
    assert!(ips.contains(&shop_ip), "{ips:?}");
    let thief = get_json(&c, "/api/v1/namespaces/default/pods/thief");
    assert_eq!(thief["metadata"]["labels"], json!({"app": "thief"}));
    assert_eq!(sim.stats().watch_errors, 0, "{:?}", sim.error_samples());
}

#[test]
fn a_worker_reads_the_secrets_and_configmaps_its_pods_use_and_no_others() {
    let c = cluster();
    let sim = workers(&c, false);
    let (me, other) = (sim.worker(0).node.clone(), sim.worker(1).node.clone());
    c.kubectl_ok(&[
        "create",
        "secret",
        "generic",
        "db",
        "--from-literal=password=s3cret",
    ]);
    c.kubectl_ok(&[
        "create",
        "secret",
        "generic",
        "payroll",
        "--from-literal=key=k",
    ]);
    c.kubectl_ok(&[
        "create",
        "configmap",
        "settings",
        "--from-literal=mode=fast",
    ]);
    c.kubectl_ok(&["create", "configmap", "unrelated", "--from-literal=x=y"]);
    let mine = get_json(&c, "/api/v1/namespaces/default/secrets/db");
    let token = sim.worker(0).token();
    let theirs = sim.worker(1).token();
    let denied = |node: &str, kind: &str, name: &str| {
        format!(
            r#"{kind} "{name}" is forbidden: User "system:node:{node}" cannot get resource "{kind}" in API group "" in the namespace "default": no relationship found between node '{node}' and this object"#
        )
    };
    // No pod uses them yet.
    refused(
        &c,
        &token,
        &["get", "secret", "db"],
        None,
        &denied(&me, "secrets", "db"),
    );

    let app = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "app", "namespace": "default"},
        "spec": {"nodeName": me, "containers": [{"name": "c", "image": "nginx:1.27",
            "env": [{"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}]}],
            "volumes": [{"name": "cfg", "configMap": {"name": "settings"}}]}})
    .to_string();
    let out = c.kubectl_with_input(&["create", "-f", "-"], Some(&app));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // What its pod uses, with kubectl and as a kubelet's single-object watch list.
    let secret: Value =
        serde_json::from_str(&allowed(&c, &token, &["get", "secret", "db", "-o", "json"])).unwrap();
    assert_eq!(secret["data"], mine["data"]);
    let cm = allowed(
        &c,
        &token,
        &[
            "get",
            "configmap",
            "settings",
            "-o",
            "jsonpath={.data.mode}",
        ],
    );
    assert_eq!(cm, "fast");
    let listed = sim
        .request_as(
            0,
            "GET",
            "/api/v1/namespaces/default/secrets?fieldSelector=metadata.name%3Ddb&resourceVersion=0",
            None,
            &[],
        )
        .unwrap();
    assert_eq!(listed.status, 200, "{}", text(&listed));
    assert_eq!(listed.json()["items"][0]["metadata"]["name"], "db");

    // Nothing else.
    refused(
        &c,
        &token,
        &["get", "secret", "payroll"],
        None,
        &denied(&me, "secrets", "payroll"),
    );
    refused(
        &c,
        &token,
        &["get", "configmap", "unrelated"],
        None,
        &denied(&me, "configmaps", "unrelated"),
    );
    refused(
        &c,
        &token,
        &["get", "secrets"],
        None,
        &format!(
            r#"secrets is forbidden: User "system:node:{me}" cannot list resource "secrets" in API group "" in the namespace "default": No Object name found"#
        ),
    );
    refused(
        &c,
        &theirs,
        &["get", "secret", "db"],
        None,
        &denied(&other, "secrets", "db"),
    );

    // Deleted, the pod terminates on its node: its kubelet still reads what it uses, and only
    // that node's kubelet may confirm the deletion (grace 0), as kube's NodeRestriction says.
    c.kubectl_ok(&["delete", "pod", "app", "--wait=false"]);
    let path = "/api/v1/namespaces/default/pods/app";
    let terminating = get_json(&c, path);
    assert_eq!(terminating["metadata"]["deletionGracePeriodSeconds"], 30);
    allowed(&c, &token, &["get", "secret", "db", "-o", "name"]);
    let confirm = json!({"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0,
        "preconditions": {"uid": terminating["metadata"]["uid"]}})
    .to_string();
    refused_raw(
        &sim,
        1,
        "DELETE",
        path,
        "application/json",
        &confirm,
        &format!(
            r#"pods "app" is forbidden: node "{other}" can only delete pods with spec.nodeName set to itself"#
        ),
    );
    let reply = sim
        .request_as(
            0,
            "DELETE",
            path,
            Some(confirm.as_bytes()),
            &[("content-type", "application/json")],
        )
        .unwrap();
    assert_eq!(reply.status, 200, "{}", text(&reply));

    // The pod gone, so is the access.
    assert_eq!(c.request("GET", path, None, &[]).unwrap().status, 404);
    refused(
        &c,
        &token,
        &["get", "secret", "db"],
        None,
        &denied(&me, "secrets", "db"),
    );
}
