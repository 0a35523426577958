//! Server-side apply field ownership and JSON patch `test` through the real binaries: the real
//! `kubectl` (v1.32) applying as two field managers, and the official Python client
//! (`tests/python/server_side_apply.py`), asserting what kube-apiserver answers.

use std::process::Command;

use nautilus_tests::{DevCluster, workspace_dir};
use serde_json::{Value, json};

fn configmap(data: &[(&str, &str)]) -> String {
    let mut yaml = String::from(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: default\n",
    );
    if !data.is_empty() {
        yaml.push_str("data:\n");
        for (k, v) in data {
            yaml.push_str(&format!("  {k}: \"{v}\"\n"));
        }
    }
    yaml
}

fn apply(c: &DevCluster, manager: &str, yaml: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["apply", "--server-side", "-f", "-"];
    let flag = format!("--field-manager={manager}");
    if manager != "kubectl" {
        args.push(&flag);
    }
    args.extend_from_slice(extra);
    c.kubectl_with_input(&args, Some(yaml))
}

#[track_caller]
fn apply_ok(c: &DevCluster, manager: &str, yaml: &str, extra: &[&str]) -> String {
    let out = apply(c, manager, yaml, extra);
    assert!(
        out.status.success(),
        "apply by {manager} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        c.logs()
    );
    String::from_utf8(out.stdout).unwrap()
}

fn get(c: &DevCluster) -> Value {
    let out = c.kubectl_ok(&[
        "get",
        "configmap",
        "settings",
        "-n",
        "default",
        "--show-managed-fields",
        "-o",
        "json",
    ]);
    serde_json::from_str(&out).unwrap()
}

/// `(manager, operation, fieldsV1)` of every entry, in the order the server wrote them.
fn owners(obj: &Value) -> Vec<(String, String, Value)> {
    obj["metadata"]["managedFields"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|e| {
            (
                e["manager"].as_str().unwrap_or_default().to_string(),
                e["operation"].as_str().unwrap_or_default().to_string(),
                e["fieldsV1"].clone(),
            )
        })
        .collect()
}

fn owner(manager: &str, operation: &str, fields: Value) -> (String, String, Value) {
    (manager.into(), operation.into(), fields)
}

#[test]
fn kubectl_apply_by_two_managers_conflicts_forces_and_prunes() {
    let c = DevCluster::start();
    // team-a creates: its Apply entry owns exactly what it applied.
    let out = apply_ok(
        &c,
        "team-a",
        &configmap(&[("owner", "a"), ("shared", "1"), ("only-a", "x")]),
        &[],
    );
    assert!(
        out.contains("configmap/settings serverside-applied"),
        "{out}"
    );
    let obj = get(&c);
    assert_eq!(
        owners(&obj),
        vec![owner(
            "team-a",
            "Apply",
            json!({"f:data": {"f:only-a": {}, "f:owner": {}, "f:shared": {}}})
        )]
    );
    let entry = &obj["metadata"]["managedFields"][0];
    assert_eq!(entry["apiVersion"], "v1");
    assert_eq!(entry["fieldsType"], "FieldsV1");
    assert!(
        entry["time"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{entry}"
    );

    // team-b changing team-a's field is refused, naming team-a; kubectl offers --force-conflicts.
    let refused = apply(
        &c,
        "team-b",
        &configmap(&[("owner", "b"), ("shared", "1")]),
        &[],
    );
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains(r#"Apply failed with 1 conflict: conflict with "team-a": .data.owner"#),
        "{stderr}"
    );
    assert!(stderr.contains("--force-conflicts"), "{stderr}");
    assert_eq!(get(&c)["data"]["owner"], "a");

    // --force-conflicts moves `owner` to team-b's Apply entry; `shared` (same value) is shared.
    apply_ok(
        &c,
        "team-b",
        &configmap(&[("owner", "b"), ("shared", "1")]),
        &["--force-conflicts"],
    );
    let obj = get(&c);
    assert_eq!(
        obj["data"],
        json!({"owner": "b", "shared": "1", "only-a": "x"})
    );
    let mut got = owners(&obj);
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got,
        vec![
            owner(
                "team-a",
                "Apply",
                json!({"f:data": {"f:only-a": {}, "f:shared": {}}})
            ),
            owner(
                "team-b",
                "Apply",
                json!({"f:data": {"f:owner": {}, "f:shared": {}}})
            ),
        ]
    );

    // team-a stops applying both its fields: `only-a` (its alone) is removed, `shared` (also
    // team-b's) stays, and team-a's entry goes with its last field.
    apply_ok(&c, "team-a", &configmap(&[]), &[]);
    let obj = get(&c);
    assert_eq!(obj["data"], json!({"owner": "b", "shared": "1"}));
    assert_eq!(
        owners(&obj),
        vec![owner(
            "team-b",
            "Apply",
            json!({"f:data": {"f:owner": {}, "f:shared": {}}})
        )]
    );

    // A non-apply write records an Update entry for its manager and takes the field it changed.
    c.kubectl_ok(&[
        "label",
        "configmap",
        "settings",
        "-n",
        "default",
        "tier=web",
    ]);
    c.kubectl_ok(&[
        "patch",
        "configmap",
        "settings",
        "-n",
        "default",
        "--type=merge",
        "-p",
        r#"{"data":{"shared":"2"}}"#,
    ]);
    let obj = get(&c);
    assert_eq!(
        owners(&obj),
        vec![
            owner("team-b", "Apply", json!({"f:data": {"f:owner": {}}})),
            owner(
                "kubectl-label",
                "Update",
                json!({"f:metadata": {"f:labels": {".": {}, "f:tier": {}}}})
            ),
            owner(
                "kubectl-patch",
                "Update",
                json!({"f:data": {"f:shared": {}}})
            ),
        ]
    );
}

#[test]
fn kubectl_server_side_apply_takes_over_client_side_apply() {
    let c = DevCluster::start();
    let out = c.kubectl_with_input(
        &["apply", "-f", "-"],
        Some(&configmap(&[("mode", "blue"), ("size", "1")])),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        owners(&get(&c))
            .into_iter()
            .map(|(m, o, _)| (m, o))
            .collect::<Vec<_>>(),
        vec![("kubectl-client-side-apply".into(), "Update".into())]
    );
    // The server lets kubectl's server-side apply change what client-side apply set; kubectl
    // then keeps the annotation under its own `kubectl-last-applied` applier and moves the old
    // manager's fields to its Apply entry (two more requests that go through the same paths).
    apply_ok(
        &c,
        "kubectl",
        &configmap(&[("mode", "green"), ("size", "1")]),
        &[],
    );
    let obj = get(&c);
    assert_eq!(obj["data"], json!({"mode": "green", "size": "1"}));
    let mut got = owners(&obj);
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got,
        vec![
            owner(
                "kubectl",
                "Apply",
                json!({"f:data": {"f:mode": {}, "f:size": {}}})
            ),
            owner(
                "kubectl-last-applied",
                "Apply",
                json!({"f:metadata": {"f:annotations": {
                    "f:kubectl.kubernetes.io/last-applied-configuration": {}}}})
            ),
        ]
    );
    let annotation =
        obj["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .as_str()
            .unwrap_or_default();
    assert!(annotation.contains(r#""mode":"green""#), "{annotation}");
    // Another manager gets no such pass.
    let refused = apply(&c, "team-x", &configmap(&[("mode", "red")]), &[]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains(r#"Apply failed with 1 conflict: conflict with "kubectl": .data.mode"#),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

#[test]
fn kubectl_json_patch_adds_finalizers_only_when_absent() {
    let c = DevCluster::start();
    apply_ok(&c, "kubectl", &configmap(&[("a", "1")]), &[]);
    let add_first = r#"[{"op":"test","path":"/metadata/finalizers","value":null},{"op":"add","path":"/metadata/finalizers","value":["example.com/cleanup"]}]"#;
    c.kubectl_ok(&[
        "patch",
        "configmap",
        "settings",
        "-n",
        "default",
        "--type=json",
        "-p",
        add_first,
    ]);
    assert_eq!(
        get(&c)["metadata"]["finalizers"],
        json!(["example.com/cleanup"])
    );
    // Present now: the test fails and nothing changes (kube's generic 422, no detail).
    let err = c.kubectl_err(&[
        "patch",
        "configmap",
        "settings",
        "-n",
        "default",
        "--type=json",
        "-p",
        add_first,
    ]);
    assert!(
        err.contains(
            "The request is invalid: the server rejected our request due to an error in our request"
        ),
        "{err}"
    );
    assert_eq!(
        get(&c)["metadata"]["finalizers"],
        json!(["example.com/cleanup"])
    );
    c.kubectl_ok(&[
        "patch",
        "configmap",
        "settings",
        "-n",
        "default",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
    ]);
}

#[test]
fn python_client_applies_with_field_ownership() {
    let probe = Command::new("python3")
        .args(["-c", "import kubernetes"])
        .output()
        .expect("python3 on PATH");
    assert!(
        probe.status.success(),
        "the Python `kubernetes` module is not importable; run `pip install kubernetes`:\n{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    let c = DevCluster::start();
    let script = workspace_dir().join("tests/python/server_side_apply.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(&c.kubeconfig)
        .env("PYTHONUNBUFFERED", "1")
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("server_side_apply: OK"),
        "server_side_apply.py failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}\ncluster logs:\n{}",
        out.status,
        c.logs()
    );
}
