//! YAML bodies end up as the same JSON the JSON path takes, with the same bounds.

use alloc::string::String;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{ApiRequest, Cluster, Method};
use crate::{Config, UnixTime};

const TOKEN: &str = "admin-secret";
const T0: UnixTime = UnixTime::from_secs(1_750_000_000);

fn server() -> Cluster {
    let config = Config {
        admin_token_sha256: Some(Sha256::digest(TOKEN.as_bytes()).into()),
        max_body_bytes: 64 * 1024,
        ..Config::default()
    };
    Cluster::new(config, [7; 32], T0)
}

fn send(s: &mut Cluster, method: Method, path: &str, body: &[u8], media: &str) -> (u16, Value) {
    let auth = alloc::format!("Bearer {TOKEN}");
    let mut req = ApiRequest::new(method, path);
    req.authorization = Some(&auth);
    req.content_type = Some(media);
    req.body = body;
    let r = s.handle_request(T0, &req).into_response().unwrap();
    (
        r.status,
        serde_json::from_slice(&r.body).unwrap_or(Value::Null),
    )
}

const MANIFEST: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: from-yaml
  labels:
    enabled: 'yes'
data:
  replicas: '3'
  script: |
    echo hi
";

#[test]
fn yaml_creates_updates_and_applies_like_json() {
    let mut s = server();
    let path = "/api/v1/namespaces/default/configmaps";
    let (status, created) = send(
        &mut s,
        Method::Post,
        path,
        MANIFEST.as_bytes(),
        "application/yaml",
    );
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        created["data"],
        json!({"replicas": "3", "script": "echo hi\n"})
    );
    assert_eq!(created["metadata"]["labels"]["enabled"], "yes");

    let rv = created["metadata"]["resourceVersion"].as_str().unwrap();
    let update = alloc::format!("{MANIFEST}  more: value\n").replace(
        "  name: from-yaml\n",
        &alloc::format!("  name: from-yaml\n  resourceVersion: \"{rv}\"\n"),
    );
    let (status, updated) = send(
        &mut s,
        Method::Put,
        "/api/v1/namespaces/default/configmaps/from-yaml",
        update.as_bytes(),
        "application/yaml; charset=utf-8",
    );
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["data"]["more"], "value");

    // A YAML apply patch, new object and then a change, anchors included.
    let apply = "apiVersion: v1
kind: ConfigMap
metadata:
  name: applied
  labels: &labels {app: web}
  annotations: *labels
data:
  on: on
";
    // (force: the create through apply also records an Update entry today, issue 14 item 1.)
    let applied = "/api/v1/namespaces/default/configmaps/applied?fieldManager=yaml-test&force=true";
    // YAML 1.1 as kube reads it: an unquoted on is true, and a ConfigMap value must be a
    // string (kube's typed conversion of the applied configuration fails: 500, nothing made).
    let (status, body) = send(
        &mut s,
        Method::Patch,
        applied,
        apply.as_bytes(),
        "application/apply-patch+yaml",
    );
    assert_eq!(status, 500, "{body}");
    let (status, body) = send(
        &mut s,
        Method::Patch,
        applied,
        apply.replace("on: on", "on: \"on\"").as_bytes(),
        "application/apply-patch+yaml",
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["metadata"]["annotations"], json!({"app": "web"}));
    let (_, got) = send(
        &mut s,
        Method::Get,
        "/api/v1/namespaces/default/configmaps/applied",
        b"",
        "application/json",
    );
    assert_eq!(got["data"], json!({"true": "on"}));
    // JSON apply bodies are unchanged.
    let (status, _) = send(
        &mut s,
        Method::Patch,
        applied,
        br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"applied"},"data":{"true":"json"}}"#,
        "application/apply-patch+yaml",
    );
    assert_eq!(status, 200);
}

#[test]
fn yaml_errors_and_bombs_are_refused_with_kubes_wording_and_change_nothing() {
    let mut s = server();
    let path = "/api/v1/namespaces/default/configmaps";
    let before = s.store().revision();
    let mut bomb = String::from(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bomb}\nl0: &l0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for i in 1..9 {
        let p = i - 1;
        bomb.push_str(&alloc::format!(
            "l{i}: &l{i} [*l{p},*l{p},*l{p},*l{p},*l{p},*l{p},*l{p},*l{p},*l{p},*l{p}]\n"
        ));
    }
    let (status, body) = send(
        &mut s,
        Method::Post,
        path,
        bomb.as_bytes(),
        "application/yaml",
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["message"],
        "the object provided is unrecognized (must be of type ConfigMap): yaml: document contains excessive aliasing (apiVersion: v1\nkind: ConfigMap ...)"
    );
    let (status, body) = send(
        &mut s,
        Method::Patch,
        "/api/v1/namespaces/default/configmaps/bomb?fieldManager=x",
        bomb.as_bytes(),
        "application/apply-patch+yaml",
    );
    assert_eq!(
        (status, &body["message"]),
        (
            400,
            &json!("error decoding YAML: yaml: document contains excessive aliasing")
        )
    );
    let deep = alloc::format!("a: {}", "[".repeat(5000));
    let (status, body) = send(
        &mut s,
        Method::Post,
        path,
        deep.as_bytes(),
        "application/yaml",
    );
    assert_eq!(status, 400);
    assert!(
        body["message"].as_str().unwrap().contains("nests deeper"),
        "{body}"
    );
    let big = alloc::format!("data: {{a: \"{}\"}}", "x".repeat(70 * 1024));
    assert_eq!(
        send(
            &mut s,
            Method::Post,
            path,
            big.as_bytes(),
            "application/yaml"
        )
        .0,
        413
    );
    let (status, body) = send(
        &mut s,
        Method::Post,
        path,
        b"metadata: [unclosed",
        "application/yaml",
    );
    assert_eq!(status, 400);
    assert!(
        body["message"].as_str().unwrap().contains("yaml: line"),
        "{body}"
    );
    let (status, _) = send(
        &mut s,
        Method::Post,
        path,
        b"- just\n- a list\n",
        "application/yaml",
    );
    assert_eq!(status, 400);
    assert_eq!(s.store().revision(), before);
}

#[test]
fn a_yaml_apply_with_a_duplicate_key_is_refused_under_strict_only() {
    let mut s = server();
    let apply = "
apiVersion: v1
kind: ConfigMap
metadata:
  name: twice
data:
  foo: foo1
  foo: foo2
";
    let path = "/api/v1/namespaces/default/configmaps/twice?fieldManager=m";
    let (status, body) = send(
        &mut s,
        Method::Patch,
        &alloc::format!("{path}&fieldValidation=Strict"),
        apply.as_bytes(),
        "application/apply-patch+yaml",
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["message"],
        "error strict decoding YAML: error converting YAML to JSON: yaml: unmarshal errors:\n  line 8: key \"foo\" already set in map"
    );
    let (status, _) = send(
        &mut s,
        Method::Get,
        "/api/v1/namespaces/default/configmaps/twice",
        b"",
        "application/json",
    );
    assert_eq!(status, 404, "a refused apply created the object");
    // Warn (the default) applies it, the later value winning.
    let (status, body) = send(
        &mut s,
        Method::Patch,
        path,
        apply.as_bytes(),
        "application/apply-patch+yaml",
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["data"]["foo"], "foo2");
}

/// A flow-style YAML body is scanned for repeated keys like JSON; a single-quoted `'}'` in a
/// sequence once made that scan loop forever on the `}` (found by the `body_decode` fuzz
/// target), hanging the server on one request.
#[test]
fn flow_yaml_with_a_quoted_brace_in_a_sequence_is_answered() {
    let mut s = server();
    let body = br#"{"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": "v", "k": "w"}, "metadata": {"name": "flow"}, "extra": ['}']}"#;
    let (status, created) = send(
        &mut s,
        Method::Post,
        "/api/v1/namespaces/default/configmaps",
        body,
        "application/yaml",
    );
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["data"], json!({"k": "w"}));
    assert!(created.get("extra").is_none());
}
