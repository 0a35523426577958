//! Kubernetes rules real clients rely on, end to end with the real binaries, the real kubectl
//! and the official Python client: server-side dry runs persist nothing, access reviews answer
//! `kubectl auth can-i` / `whoami` from the real authorizer, metadata-only reads, YAML bodies.

use std::process::Command;
use std::time::Duration;

use nautilus_tests::DevCluster;
use nautilus_tests::simulator::{DEFAULT_PACKAGE, SimConfig, Simulator, package_arg};
use serde_json::{Value, json};

fn get(c: &DevCluster, path: &str) -> (u16, Value) {
    let reply = c.request("GET", path, None, &[]).expect("GET");
    (reply.status, reply.json())
}

fn send(c: &DevCluster, method: &str, path: &str, body: &str, content_type: &str) -> (u16, Value) {
    let reply = c
        .request(
            method,
            path,
            Some(body.as_bytes()),
            &[("content-type", content_type)],
        )
        .expect("request");
    (reply.status, reply.json())
}

fn revision(c: &DevCluster) -> String {
    get(c, "/api/v1/namespaces")
        .1
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .expect("list revision")
        .to_string()
}

const CONFIGMAP: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: NAME
  namespace: default
data:
  key: value
";

fn configmap(name: &str) -> String {
    CONFIGMAP.replace("NAME", name)
}

#[test]
fn kubectl_and_python_dry_runs_persist_nothing() {
    let c = DevCluster::start();
    c.kubectl_with_input(&["create", "-f", "-"], Some(&configmap("kept")));
    assert_eq!(get(&c, "/api/v1/namespaces/default/configmaps/kept").0, 200);
    let before = revision(&c);

    let out = c.kubectl_with_input(
        &["create", "--dry-run=server", "-o", "json", "-f", "-"],
        Some(&configmap("created")),
    );
    assert!(out.status.success(), "{out:?}");
    let shown: Value = serde_json::from_slice(&out.stdout).expect("kubectl -o json");
    assert_eq!(shown["metadata"]["uid"].as_str().map(str::len), Some(36));
    assert!(shown["metadata"]["creationTimestamp"].is_string());
    assert_eq!(shown["metadata"].get("resourceVersion"), None, "{shown}");

    let out = c.kubectl_with_input(
        &["apply", "--server-side", "--dry-run=server", "-f", "-"],
        Some(&configmap("applied")),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("configmap/applied serverside-applied (server dry run)"),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deleted = c.kubectl_ok(&["delete", "--dry-run=server", "configmap", "kept"]);
    assert!(
        deleted.contains("configmap \"kept\" deleted (server dry run)"),
        "{deleted}"
    );

    // The raw apply that used to answer 201 and save.
    let (code, body) = send(
        &c,
        "PATCH",
        "/api/v1/namespaces/default/configmaps/raw?dryRun=All&fieldManager=x",
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"raw"},"data":{"a":"b"}}"#,
        "application/apply-patch+yaml",
    );
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["data"]["a"], "b");
    let (code, body) = send(
        &c,
        "PATCH",
        "/api/v1/namespaces/default/configmaps/kept?dryRun=Some",
        "{}",
        "application/merge-patch+json",
    );
    assert_eq!((code, &body["reason"]), (422, &json!("Invalid")), "{body}");

    // The Python client's dry_run="All".
    let script = r#"
import sys
from kubernetes import client, config
config.load_kube_config(sys.argv[1])
v1 = client.CoreV1Api()
body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="python"), data={"k": "v"})
made = v1.create_namespaced_config_map("default", body, dry_run="All")
assert made.metadata.uid and not made.metadata.resource_version, made.metadata
patched = v1.patch_namespaced_config_map("kept", "default", {"data": {"key": "changed"}}, dry_run="All")
assert patched.data["key"] == "changed", patched.data
v1.delete_namespaced_config_map("kept", "default", dry_run="All")
print("dry runs: OK")
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&c.kubeconfig)
        .output()
        .expect("python3");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("dry runs: OK"),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    for name in ["created", "applied", "raw", "python"] {
        let (code, _) = get(&c, &format!("/api/v1/namespaces/default/configmaps/{name}"));
        assert_eq!(code, 404, "{name} was stored");
    }
    let (_, kept) = get(&c, "/api/v1/namespaces/default/configmaps/kept");
    assert_eq!(kept["data"]["key"], "value");
    assert_eq!(kept["metadata"].get("deletionTimestamp"), None);
    assert_eq!(revision(&c), before, "a dry run moved the revision");
}

#[test]
fn kubectl_auth_can_i_and_whoami_for_the_admin_and_a_node() {
    let c = DevCluster::start_with(&[&package_arg(&DEFAULT_PACKAGE), "--min-stake=1000000000"]);
    assert_eq!(
        c.kubectl_ok(&["auth", "can-i", "create", "pods"]).trim(),
        "yes"
    );
    assert_eq!(
        c.kubectl_ok(&["auth", "can-i", "delete", "nodes", "--all-namespaces"])
            .trim(),
        "yes"
    );
    let list = c.kubectl_ok(&["auth", "can-i", "--list"]);
    assert!(
        list.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["*.*", "[]", "[]", "[*]"]),
        "{list}"
    );
    let whoami = c.kubectl_ok(&["auth", "whoami", "-o", "json"]);
    let whoami: Value = serde_json::from_str(&whoami).expect("whoami json");
    assert_eq!(whoami["status"]["userInfo"]["username"], "nautilus:admin");
    assert_eq!(
        whoami["status"]["userInfo"]["groups"],
        json!(["system:masters", "system:authenticated"])
    );

    let sim = Simulator::start(
        &c,
        SimConfig {
            workers: 2,
            interval: Duration::from_secs(2),
            connections: 2,
            ..SimConfig::default()
        },
    )
    .expect("simulated workers");
    let token = sim.worker(0).token();
    let as_node = |args: &[&str]| {
        let mut all = vec!["--token", token.as_str()];
        all.extend_from_slice(args);
        c.kubectl(&all)
    };
    let out = as_node(&["auth", "can-i", "get", "nodes/sim-00000"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "yes",
        "{out:?}"
    );
    let out = as_node(&["auth", "can-i", "get", "nodes/sim-00001"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .starts_with("no - nodes \"sim-00001\" is forbidden: User \"system:node:sim-00000\""),
        "{out:?}"
    );
    // The verdict matches the request itself.
    let out = as_node(&["get", "node", "sim-00001"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Forbidden"),
        "{out:?}"
    );
    // Authorization only, as in kube: a node may create (mirror) pods, admission narrows it.
    let out = as_node(&["auth", "can-i", "create", "pods"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "yes",
        "{out:?}"
    );
    let out = as_node(&["auth", "can-i", "create", "configmaps"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("no - configmaps is forbidden"),
        "{out:?}"
    );
    let out = as_node(&["auth", "whoami"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("system:node:sim-00000"), "{out:?}");
    assert!(
        text.contains("[system:nodes system:authenticated]"),
        "{text}"
    );
    let out = as_node(&["auth", "can-i", "--list"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("nodes ") && l.contains("[sim-00000]")),
        "{text}"
    );
    assert!(!text.contains("*.*"), "{text}");
}

const META: &str = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";
const META_LIST: &str = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";
/// What client-go's metadata client sends for a LIST (protobuf first).
const CLIENT_GO_LIST: &str = "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json";
const CLIENT_GO_WATCH: &str = "application/vnd.kubernetes.protobuf;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json";

fn read(c: &DevCluster, path: &str, accept: &str) -> nautilus_tests::client::Reply {
    c.request("GET", path, None, &[("accept", accept)])
        .expect("GET")
}

#[test]
fn metadata_only_reads_of_every_resource_in_json_and_protobuf() {
    let c = DevCluster::start();
    c.kubectl_with_input(&["create", "-f", "-"], Some(&configmap("meta")));
    let (_, full) = get(&c, "/api/v1/namespaces/default/configmaps/meta");

    let one = read(&c, "/api/v1/namespaces/default/configmaps/meta", META);
    assert_eq!(one.status, 200);
    assert_eq!(one.header("content-type"), Some("application/json"));
    let one = one.json();
    assert_eq!(
        one,
        json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": full["metadata"]})
    );

    // Every served resource lists as PartialObjectMetadataList, in JSON and in protobuf.
    let discovery = get(&c, "/api/v1").1;
    let mut paths: Vec<String> = discovery["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str())
        .filter(|n| !n.contains('/'))
        .map(|n| format!("/api/v1/{n}"))
        .collect();
    paths.extend(
        [
            "/apis/apps/v1/deployments",
            "/apis/apps/v1/replicasets",
            "/apis/coordination.k8s.io/v1/leases",
        ]
        .map(String::from),
    );
    for path in &paths {
        let (_, whole) = get(&c, path);
        let list = read(&c, path, META_LIST);
        assert_eq!(list.status, 200, "{path}");
        let list = list.json();
        assert_eq!(list["kind"], "PartialObjectMetadataList", "{path}");
        let items = list["items"].as_array().unwrap();
        assert_eq!(
            items.len(),
            whole["items"].as_array().unwrap().len(),
            "{path}"
        );
        for (item, object) in items.iter().zip(whole["items"].as_array().unwrap()) {
            assert_eq!(item["kind"], "PartialObjectMetadata");
            assert_eq!(item["metadata"], object["metadata"], "{path}");
        }
        let proto = read(&c, path, CLIENT_GO_LIST);
        assert_eq!(
            proto.header("content-type"),
            Some("application/vnd.kubernetes.protobuf"),
            "{path}"
        );
        let decoded = nautilus_core::protobuf::decode_as(
            "meta.k8s.io/v1",
            "PartialObjectMetadataList",
            &proto.body,
        )
        .expect("a protobuf PartialObjectMetadataList");
        assert_eq!(decoded["kind"], "PartialObjectMetadataList");
        let decoded_items = decoded["items"].as_array().cloned().unwrap_or_default();
        assert_eq!(decoded_items.len(), items.len(), "{path}");
        for (ours, item) in decoded_items.iter().zip(items) {
            assert_eq!(ours["metadata"], item["metadata"], "{path}");
        }
    }

    // Not served: a list form on one object, another version.
    let refused = read(&c, "/api/v1/namespaces/default/configmaps/meta", META_LIST);
    assert_eq!(refused.status, 406);
    assert_eq!(
        refused.json()["message"],
        "you requested PartialObjectMetadataList, but the requested object is not a list (*core.ConfigMap)"
    );
    let refused = read(
        &c,
        "/api/v1/namespaces/default/configmaps",
        "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v9",
    );
    assert_eq!(refused.status, 406);

    // A metadata watch, protobuf frames as client-go's metadata informer asks for them.
    let watch = read(
        &c,
        "/api/v1/namespaces/default/configmaps?watch=1&fieldSelector=metadata.name%3Dmeta&timeoutSeconds=1",
        CLIENT_GO_WATCH,
    );
    assert_eq!(
        watch.header("content-type"),
        Some("application/vnd.kubernetes.protobuf;stream=watch")
    );
    let body = &watch.body;
    let len = u32::from_be_bytes(body[..4].try_into().unwrap()) as usize;
    let event = &body[4..4 + len];
    assert_eq!(&event[..7], b"\x0a\x05ADDED");
    let start = event
        .windows(4)
        .position(|w| w == b"k8s\0")
        .expect("embedded object");
    let object = nautilus_core::protobuf::decode_as(
        "meta.k8s.io/v1",
        "PartialObjectMetadata",
        &event[start..],
    )
    .unwrap();
    assert_eq!(object["metadata"], full["metadata"]);
    let watch = read(
        &c,
        "/api/v1/namespaces/default/configmaps?watch=1&fieldSelector=metadata.name%3Dmeta&timeoutSeconds=1",
        META,
    );
    let first: Value =
        serde_json::from_slice(watch.body.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(first["object"], one);
}

#[test]
fn yaml_bodies_create_update_and_apply_and_bombs_are_refused() {
    let c = DevCluster::start();
    let manifest = workspace_yaml();
    let (code, created) = send(
        &c,
        "POST",
        "/api/v1/namespaces/default/configmaps?fieldManager=curl",
        &manifest,
        "application/yaml",
    );
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["data"]["enabled"], "yes");
    assert_eq!(created["metadata"]["labels"]["app"], "web");
    // kubectl reads back what the JSON path would have stored.
    let shown = c.kubectl_ok(&[
        "get",
        "configmap",
        "from-yaml",
        "-o",
        "jsonpath={.data.script}",
    ]);
    assert_eq!(shown, "echo hi\nexit 0\n");

    let rv = created["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let update = manifest.replace(
        "  name: from-yaml\n",
        &format!("  name: from-yaml\n  resourceVersion: \"{rv}\"\n"),
    ) + "  extra: added\n";
    let (code, updated) = send(
        &c,
        "PUT",
        "/api/v1/namespaces/default/configmaps/from-yaml",
        &update,
        "application/yaml",
    );
    assert_eq!(
        (code, &updated["data"]["extra"]),
        (200, &json!("added")),
        "{updated}"
    );

    let apply =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied-yaml\ndata:\n  key: value\n";
    let (code, applied) = send(
        &c,
        "PATCH",
        "/api/v1/namespaces/default/configmaps/applied-yaml?fieldManager=yaml",
        apply,
        "application/apply-patch+yaml",
    );
    assert_eq!(
        (code, &applied["data"]["key"]),
        (201, &json!("value")),
        "{applied}"
    );

    let before = revision(&c);
    let mut bomb = String::from(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bomb}\nl0: &l0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for i in 1..9 {
        let p = i - 1;
        bomb.push_str(&format!(
            "l{i}: &l{i} [*l{p},*l{p},*l{p},*l{p},*l{p},*l{p},*l{p},*l{p},*l{p},*l{p}]\n"
        ));
    }
    let (code, refused) = send(
        &c,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        &bomb,
        "application/yaml",
    );
    assert_eq!(code, 400, "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("yaml: document contains excessive aliasing"),
        "{refused}"
    );
    let (code, _) = send(
        &c,
        "PATCH",
        "/api/v1/namespaces/default/configmaps/bomb?fieldManager=yaml",
        &bomb,
        "application/apply-patch+yaml",
    );
    assert_eq!(code, 400);
    assert_eq!(revision(&c), before, "a refused body changed the store");
    assert_eq!(get(&c, "/api/v1/namespaces/default/configmaps/bomb").0, 404);
}

fn workspace_yaml() -> String {
    "apiVersion: v1
kind: ConfigMap
metadata:
  name: from-yaml
  labels: {app: web}
data:
  enabled: 'yes'
  script: |
    echo hi
    exit 0
"
    .to_string()
}
