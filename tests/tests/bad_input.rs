//! Hostile and malformed input against the real binaries: every bad request gets kube's `Status`
//! (HTTP code, `reason`, message), stores nothing (the store revision that a LIST reports stays
//! put), and leaves the enclave process alive.
//!
//! Each test starts its own `DevCluster` (about 0.1 s): the "nothing stored" checks compare the
//! global store revision, which parallel tests sharing one cluster would move, and a cluster held
//! in a `static` is never dropped, which would leak the processes.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::rt::TokioIo;
use nautilus_tests::DevCluster;
use nautilus_tests::client::{Connection, Reply, tls_config};
use rustls::pki_types::ServerName;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt as _;

/// One cluster, one namespace, and the enclave pid seen at the start.
struct Fixture {
    cluster: DevCluster,
    ns: String,
    pid: u32,
}

impl Fixture {
    fn new(ns: &str) -> Self {
        Self::with_args(ns, &[])
    }

    fn with_args(ns: &str, enclave_args: &[&str]) -> Self {
        let cluster = DevCluster::start_with(enclave_args);
        let pid = cluster.enclave_pid().expect("the enclave child is running");
        let fixture = Self {
            cluster,
            ns: ns.to_string(),
            pid,
        };
        let reply = fixture.post(
            "/api/v1/namespaces",
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        );
        assert_eq!(reply.status, 201, "create namespace: {}", text(&reply));
        // The namespace's own objects (its `default` ServiceAccount and `kube-root-ca.crt`) are
        // written by controllers after the create: wait for both, so that the tests' "nothing
        // was written" revision checks start after them.
        let deadline = Instant::now() + Duration::from_secs(20);
        for own in [
            format!("/api/v1/namespaces/{ns}/serviceaccounts/default"),
            format!("/api/v1/namespaces/{ns}/configmaps/kube-root-ca.crt"),
        ] {
            while fixture.get(&own).status != 200 {
                assert!(Instant::now() < deadline, "{own} never appeared");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        fixture
    }

    fn req(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        headers: &[(&str, &str)],
    ) -> Reply {
        self.cluster
            .request(method, path, body, headers)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}\n{}", self.cluster.logs()))
    }

    fn get(&self, path: &str) -> Reply {
        self.req("GET", path, None, &[])
    }

    fn post(&self, path: &str, body: &Value) -> Reply {
        self.req("POST", path, Some(body.to_string().as_bytes()), &[])
    }

    fn path(&self, resource: &str) -> String {
        format!("/api/v1/namespaces/{}/{resource}", self.ns)
    }

    /// The store revision: `metadata.resourceVersion` of a LIST.
    fn revision(&self) -> u64 {
        let reply = self.get("/api/v1/namespaces");
        assert_eq!(reply.status, 200, "list namespaces: {}", text(&reply));
        reply.json()["metadata"]["resourceVersion"]
            .as_str()
            .and_then(|rv| rv.parse().ok())
            .unwrap_or_else(|| panic!("list has no numeric resourceVersion: {}", text(&reply)))
    }

    fn assert_absent(&self, path: &str) {
        let reply = self.get(path);
        assert_eq!(
            reply.status,
            404,
            "{path} should not exist: {}",
            text(&reply)
        );
    }

    /// The enclave is the same process as at the start and still runs (not a zombie).
    fn assert_alive(&self) {
        let now = self.cluster.enclave_pid();
        assert_eq!(
            now,
            Some(self.pid),
            "the enclave process changed or died\n{}",
            self.cluster.logs()
        );
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .expect("enclave /proc status");
        assert!(
            !status
                .lines()
                .any(|l| l.starts_with("State:") && l.contains('Z')),
            "the enclave is a zombie"
        );
        let ready = self.cluster.anonymous("GET", "/readyz").expect("readyz");
        assert_eq!(ready.status, 200, "readyz: {}", text(&ready));
    }

    fn kubectl_err(&self, args: &[&str]) -> String {
        self.cluster.kubectl_err(args)
    }
}

fn text(reply: &Reply) -> String {
    String::from_utf8_lossy(&reply.body).into_owned()
}

/// Asserts a kube `Status` answer and returns its JSON.
#[track_caller]
fn assert_status(reply: &Reply, code: u16, reason: &str, fragment: &str) -> Value {
    assert_eq!(reply.status, code, "HTTP code; body: {}", text(reply));
    let body = reply.json();
    assert_eq!(body["kind"], "Status", "not a Status: {body}");
    assert_eq!(body["apiVersion"], "v1", "Status apiVersion: {body}");
    assert_eq!(body["status"], "Failure", "Status.status: {body}");
    assert_eq!(body["code"], u64::from(code), "Status.code: {body}");
    assert_eq!(body["reason"], reason, "Status.reason: {body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(fragment),
        "Status.message {message:?} lacks {fragment:?}"
    );
    body
}

fn configmap(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}})
}

fn pod(name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]}
    })
}

#[test]
fn malformed_and_truncated_json_is_400() {
    let f = Fixture::new("bad-json");
    let before = f.revision();
    let full = configmap("x").to_string();
    let truncated = &full[..full.len() / 2];
    let cases: [&[u8]; 5] = [
        b"{notjson",
        truncated.as_bytes(),
        b"",
        b"\xff\xfe{\"kind\":\"ConfigMap\"}",
        b"[1,2,3]",
    ];
    for body in cases {
        let reply = f.req("POST", &f.path("configmaps"), Some(body), &[]);
        let status = assert_status(&reply, 400, "BadRequest", "");
        assert!(
            !status["message"].as_str().unwrap_or_default().is_empty(),
            "empty message for {:?}",
            String::from_utf8_lossy(body)
        );
    }
    f.assert_absent(&format!("{}/x", f.path("configmaps")));
    assert_eq!(f.revision(), before, "a rejected body changed the store");
    f.assert_alive();
}

#[test]
fn malformed_yaml_is_400_and_other_media_types_are_415() {
    // kube-apiserver decodes application/yaml (so does Nautilus now); a body that is not YAML
    // is its decoder's 400, a media type it has no decoder for its 415.
    let f = Fixture::new("bad-yaml");
    let before = f.revision();
    let reply = f.req(
        "POST",
        &f.path("configmaps"),
        Some(b"apiVersion: v1\nkind: ConfigMap\nmetadata: [unclosed\n"),
        &[("content-type", "application/yaml")],
    );
    assert_status(
        &reply,
        400,
        "BadRequest",
        "the object provided is unrecognized (must be of type ConfigMap): yaml: line",
    );
    let yaml = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y\ndata:\n  k: v\n";
    let reply = f.req(
        "POST",
        &f.path("configmaps"),
        Some(yaml),
        &[("content-type", "text/yaml")],
    );
    assert_status(&reply, 415, "UnsupportedMediaType", "application/yaml");
    f.assert_absent(&format!("{}/y", f.path("configmaps")));
    assert_eq!(f.revision(), before);
    f.assert_alive();
}

#[test]
fn kubectl_create_of_malformed_yaml_fails_client_side() {
    let f = Fixture::new("bad-kubectl-yaml");
    let before = f.revision();
    let dir = tempfile::tempdir().expect("temp dir");
    let files = [
        (
            "unterminated.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: trunc\n  namespace: bad-kubectl-yaml\ndata:\n  a: \"unterminated\n",
        ),
        (
            "flow.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: trunc2\n  namespace: bad-kubectl-yaml\ndata:\n  a: [1, 2\n",
        ),
    ];
    for (name, content) in files {
        let path = dir.path().join(name);
        std::fs::write(&path, content).expect("write manifest");
        let err = f.kubectl_err(&["create", "-f", path.to_str().expect("utf-8 path")]);
        assert!(err.contains("error parsing"), "kubectl stderr: {err}");
    }
    f.assert_absent(&format!("{}/trunc", f.path("configmaps")));
    f.assert_absent(&format!("{}/trunc2", f.path("configmaps")));
    assert_eq!(f.revision(), before);
    f.assert_alive();
}

#[test]
fn wrong_kind_or_api_version_for_the_path_is_400() {
    let f = Fixture::new("bad-kind");
    let before = f.revision();
    // kube-apiserver (handlers/rest.go transformDecodeError): `ConfigMap in version "v1" cannot
    // be handled as a Pod: ...`.
    let mut body = configmap("cm-as-pod");
    let reply = f.post(&f.path("pods"), &body);
    assert_status(
        &reply,
        400,
        "BadRequest",
        "ConfigMap in version \"v1\" cannot be handled as a Pod",
    );
    f.assert_absent(&format!("{}/cm-as-pod", f.path("pods")));
    f.assert_absent(&format!("{}/cm-as-pod", f.path("configmaps")));
    // kube-apiserver (handlers/create.go): the API version check, verbatim.
    body["apiVersion"] = json!("apps/v1");
    let reply = f.post(&f.path("configmaps"), &body);
    assert_status(
        &reply,
        400,
        "BadRequest",
        "the API version in the data (apps/v1) does not match the expected API version (v1)",
    );
    let mut deployment = pod("deploy-in-core");
    deployment["apiVersion"] = json!("apps/v1");
    deployment["kind"] = json!("Deployment");
    let reply = f.post(&f.path("pods"), &deployment);
    assert_status(&reply, 400, "BadRequest", "apps/v1");
    f.assert_absent(&format!("{}/deploy-in-core", f.path("pods")));
    assert_eq!(f.revision(), before);
    f.assert_alive();
}

#[test]
fn body_over_3_mib_is_413() {
    let f = Fixture::new("bad-large");
    let before = f.revision();
    let mut body = configmap("big");
    body["data"]["k"] = json!("x".repeat(3 * 1024 * 1024 + 1024));
    let reply = f.post(&f.path("configmaps"), &body);
    // kube: "Request entity too large: limit is 3145728"; the limit is in both messages.
    assert_status(&reply, 413, "RequestEntityTooLarge", "3145728");
    f.assert_absent(&format!("{}/big", f.path("configmaps")));
    assert_eq!(f.revision(), before);
    // A body just under the limit still works (the cap is on the body, not on the object).
    body["data"]["k"] = json!("x".repeat(1024 * 1024));
    let reply = f.post(&f.path("configmaps"), &body);
    assert_eq!(reply.status, 201, "1 MiB configmap: {}", text(&reply));
    f.assert_alive();
}

#[test]
fn nesting_ten_thousand_deep_is_400() {
    let f = Fixture::new("bad-deep");
    let before = f.revision();
    for (open, close) in [("[", "]"), ("{\"a\":", "}")] {
        let body = format!(
            "{{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{{\"name\":\"deep\"}},\"data\":{}1{}}}",
            open.repeat(10_000),
            close.repeat(10_000)
        );
        let reply = f.req("POST", &f.path("configmaps"), Some(body.as_bytes()), &[]);
        assert_status(&reply, 400, "BadRequest", "");
        // The same depth in a patch body.
        let patch = format!(
            "{{\"metadata\":{}1{}}}",
            open.repeat(10_000),
            close.repeat(10_000)
        );
        let reply = f.req(
            "PATCH",
            &format!("{}/deep", f.path("configmaps")),
            Some(patch.as_bytes()),
            &[("content-type", "application/merge-patch+json")],
        );
        assert!(
            reply.status == 400 || reply.status == 404,
            "deep patch: {} {}",
            reply.status,
            text(&reply)
        );
    }
    f.assert_absent(&format!("{}/deep", f.path("configmaps")));
    assert_eq!(f.revision(), before);
    f.assert_alive();
}

fn pod_with_unknown_field(name: &str) -> Value {
    let mut body = pod(name);
    body["spec"]["foo"] = json!(1);
    body
}

#[test]
fn unknown_field_strict_is_400() {
    let f = Fixture::new("bad-strict");
    let before = f.revision();
    let body = pod_with_unknown_field("strict").to_string();
    let reply = f.req(
        "POST",
        &format!("{}?fieldValidation=Strict", f.path("pods")),
        Some(body.as_bytes()),
        &[],
    );
    assert_status(
        &reply,
        400,
        "BadRequest",
        "strict decoding error: unknown field \"spec.foo\"",
    );
    f.assert_absent(&format!("{}/strict", f.path("pods")));
    assert_eq!(f.revision(), before);
    f.assert_alive();
}

#[test]
fn unknown_field_warn_is_201_with_warning_and_dropped() {
    let f = Fixture::new("bad-warn");
    for (mode, name, warns) in [("Warn", "warned", true), ("Ignore", "ignored", false)] {
        let body = pod_with_unknown_field(name).to_string();
        let reply = f.req(
            "POST",
            &format!("{}?fieldValidation={mode}", f.path("pods")),
            Some(body.as_bytes()),
            &[],
        );
        assert_eq!(reply.status, 201, "{mode}: {}", text(&reply));
        let warning = reply.header("warning");
        if warns {
            let warning = warning.unwrap_or_else(|| panic!("{mode}: no Warning header"));
            assert!(
                warning.starts_with("299 - ") && warning.contains(r#"unknown field \"spec.foo\""#),
                "Warning header: {warning}"
            );
        } else {
            assert_eq!(warning, None, "{mode} must not warn");
        }
        // kube decodes into the typed Pod, so the unknown field is dropped, never stored.
        let stored = f.get(&format!("{}/{name}", f.path("pods"))).json();
        assert_eq!(
            stored["spec"].get("foo"),
            None,
            "{mode}: the unknown field was stored: {}",
            stored["spec"]
        );
        assert_eq!(
            reply.json()["spec"].get("foo"),
            None,
            "{mode}: answer has spec.foo"
        );
    }
    f.assert_alive();
}

#[test]
fn kubectl_create_with_unknown_field_fails_strict() {
    let f = Fixture::new("bad-kubectl-strict");
    let before = f.revision();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("pod.yaml");
    std::fs::write(
        &path,
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: unk\n  namespace: bad-kubectl-strict\nspec:\n  foo: 1\n  containers:\n  - name: c\n    image: i\n",
    )
    .expect("write manifest");
    let err = f.kubectl_err(&["create", "-f", path.to_str().expect("utf-8 path")]);
    assert!(
        err.contains("BadRequest")
            && err.contains("strict decoding error: unknown field \"spec.foo\""),
        "kubectl stderr: {err}"
    );
    f.assert_absent(&format!("{}/unk", f.path("pods")));
    assert_eq!(f.revision(), before);
    f.assert_alive();
}

#[test]
fn invalid_names_are_422_with_metadata_name_cause() {
    let f = Fixture::new("bad-names");
    let before = f.revision();
    let long = "a".repeat(254);
    for (resource, make) in [
        ("configmaps", configmap as fn(&str) -> Value),
        ("pods", pod),
    ] {
        for (name, fragment) in [
            ("Upper", "RFC 1123"),
            ("under_score", "RFC 1123"),
            (long.as_str(), "must be no more than 253 characters"),
            ("-leading", "RFC 1123"),
        ] {
            let reply = f.post(&f.path(resource), &make(name));
            let status = assert_status(&reply, 422, "Invalid", fragment);
            assert!(
                status["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("is invalid: metadata.name: Invalid value"),
                "message: {status}"
            );
            let causes = status["details"]["causes"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            assert!(
                !causes.is_empty()
                    && causes.iter().all(
                        |c| c["field"] == "metadata.name" && c["reason"] == "FieldValueInvalid"
                    ),
                "{resource}/{name}: causes {causes:?}"
            );
            assert_eq!(status["details"]["name"], name, "details.name: {status}");
        }
    }
    assert_eq!(f.revision(), before);
    f.assert_alive();
}

#[test]
fn pod_without_containers_is_422() {
    let f = Fixture::new("bad-required");
    let before = f.revision();
    for body in [
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "empty"}, "spec": {}}),
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "empty"}}),
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "empty"}, "spec": {"containers": []}}),
    ] {
        let reply = f.post(&f.path("pods"), &body);
        let status = assert_status(
            &reply,
            422,
            "Invalid",
            "Pod \"empty\" is invalid: spec.containers: Required value",
        );
        let causes = status["details"]["causes"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(
            causes
                .iter()
                .any(|c| c["field"] == "spec.containers" && c["reason"] == "FieldValueRequired"),
            "causes: {causes:?}"
        );
        assert_eq!(status["details"]["kind"], "Pod", "details: {status}");
    }
    f.assert_absent(&format!("{}/empty", f.path("pods")));
    assert_eq!(f.revision(), before);
    f.assert_alive();
}

#[test]
fn stale_resource_version_on_put_is_409_conflict() {
    let f = Fixture::new("bad-stale");
    let created = f.post(&f.path("configmaps"), &configmap("cm")).json();
    let old_rv = created["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();
    let mut update = created.clone();
    update["data"]["k"] = json!("second");
    let path = format!("{}/cm", f.path("configmaps"));
    let reply = f.req("PUT", &path, Some(update.to_string().as_bytes()), &[]);
    assert_eq!(reply.status, 200, "first update: {}", text(&reply));
    let before = f.revision();
    update["data"]["k"] = json!("third");
    update["metadata"]["resourceVersion"] = json!(old_rv);
    let reply = f.req("PUT", &path, Some(update.to_string().as_bytes()), &[]);
    let status = assert_status(
        &reply,
        409,
        "Conflict",
        "Operation cannot be fulfilled on configmaps \"cm\": the object has been modified; please apply your changes to the latest version and try again",
    );
    assert_eq!(status["details"]["name"], "cm");
    assert_eq!(status["details"]["kind"], "configmaps");
    assert_eq!(f.get(&path).json()["data"]["k"], "second");
    assert_eq!(f.revision(), before);
    f.assert_alive();
}

#[test]
fn immutable_pod_spec_change_is_422() {
    let f = Fixture::new("bad-immutable");
    let path = format!("{}/p", f.path("pods"));
    let created = f.post(&f.path("pods"), &pod("p"));
    assert_eq!(created.status, 201, "{}", text(&created));
    let current = f.get(&path).json();
    let before = f.revision();
    let mut update = current.clone();
    update["spec"]["restartPolicy"] = json!("Never");
    let reply = f.req("PUT", &path, Some(update.to_string().as_bytes()), &[]);
    let status = assert_status(
        &reply,
        422,
        "Invalid",
        "Pod \"p\" is invalid: spec: Forbidden: pod updates may not change fields other than",
    );
    let causes = status["details"]["causes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        causes
            .iter()
            .any(|c| c["field"] == "spec" && c["reason"] == "FieldValueForbidden"),
        "causes: {causes:?}"
    );
    for (ctype, patch) in [
        (
            "application/merge-patch+json",
            r#"{"spec":{"restartPolicy":"Never"}}"#,
        ),
        (
            "application/strategic-merge-patch+json",
            r#"{"spec":{"containers":[{"name":"app","command":["sh"]}]}}"#,
        ),
        (
            "application/json-patch+json",
            r#"[{"op":"replace","path":"/spec/containers/0/name","value":"other"}]"#,
        ),
    ] {
        let reply = f.req(
            "PATCH",
            &path,
            Some(patch.as_bytes()),
            &[("content-type", ctype)],
        );
        assert_status(&reply, 422, "Invalid", "pod updates may not change fields");
    }
    let after = f.get(&path).json();
    assert_eq!(after["spec"], current["spec"], "the pod spec changed");
    assert_eq!(f.revision(), before);
    // The image is mutable: the same path accepts a legal change.
    let reply = f.req(
        "PATCH",
        &path,
        Some(br#"{"spec":{"containers":[{"name":"app","image":"registry.k8s.io/pause:3.9"}]}}"#),
        &[("content-type", "application/strategic-merge-patch+json")],
    );
    assert_eq!(reply.status, 200, "image change: {}", text(&reply));
    f.assert_alive();
}

#[test]
fn create_in_missing_namespace_is_404() {
    let f = Fixture::new("bad-nsmissing");
    let before = f.revision();
    let reply = f.post("/api/v1/namespaces/x/configmaps", &configmap("cm"));
    let status = assert_status(&reply, 404, "NotFound", "namespaces \"x\" not found");
    assert_eq!(status["message"], "namespaces \"x\" not found");
    assert_eq!(status["details"]["name"], "x");
    assert_eq!(status["details"]["kind"], "namespaces");
    f.assert_absent("/api/v1/namespaces/x");
    f.assert_absent("/api/v1/namespaces/x/configmaps/cm");
    assert_eq!(f.revision(), before);
    f.assert_alive();
}

#[test]
fn create_in_terminating_namespace_is_403() {
    let f = Fixture::new("bad-terminating");
    let mut held = configmap("held");
    held["metadata"]["finalizers"] = json!(["example.com/hold"]);
    let reply = f.post(&f.path("configmaps"), &held);
    assert_eq!(reply.status, 201, "{}", text(&reply));
    let reply = f.req("DELETE", "/api/v1/namespaces/bad-terminating", None, &[]);
    assert!(
        reply.status == 200 || reply.status == 202,
        "delete ns: {}",
        text(&reply)
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ns = f.get("/api/v1/namespaces/bad-terminating").json();
        if ns["status"]["phase"] == "Terminating" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "namespace never Terminating: {ns}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let before = f.revision();
    let reply = f.post(&f.path("configmaps"), &configmap("new"));
    let status = assert_status(
        &reply,
        403,
        "Forbidden",
        "configmaps \"new\" is forbidden: unable to create new content in namespace bad-terminating because it is being terminated",
    );
    // NamespaceLifecycle admission adds this cause; clients test for it
    // (apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause)).
    let causes = status["details"]["causes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        causes.iter().any(|c| c["reason"] == "NamespaceTerminating"
            && c["field"] == "metadata.namespace"
            && c["message"] == "namespace bad-terminating is being terminated"),
        "missing the NamespaceTerminating cause: {status}"
    );
    f.assert_absent(&format!("{}/new", f.path("configmaps")));
    assert_eq!(f.revision(), before);
    f.assert_alive();
}

#[test]
fn watch_from_a_revision_older_than_the_ring_is_410_expired() {
    let f = Fixture::with_args("bad-expired", &["--watch-ring=20"]);
    let old = f.revision();
    for i in 0..30 {
        let reply = f.post(&f.path("configmaps"), &configmap(&format!("w{i}")));
        assert_eq!(reply.status, 201, "{}", text(&reply));
    }
    let path = format!("{}?watch=true&resourceVersion={old}", f.path("configmaps"));
    let reply = f.get(&path);
    assert_eq!(reply.status, 200, "{}", text(&reply));
    let check = |body: &str| {
        let lines: Vec<&str> = body.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "exactly one event expected: {body}");
        let event: Value = serde_json::from_str(lines[0]).expect("event is JSON");
        assert_eq!(event["type"], "ERROR", "{event}");
        let status = &event["object"];
        assert_eq!(status["kind"], "Status", "{event}");
        assert_eq!(status["code"], 410, "{event}");
        assert_eq!(status["reason"], "Expired", "{event}");
        let message = status["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with(&format!("too old resource version: {old} (")),
            "message: {message}"
        );
    };
    check(&text(&reply));
    let raw = f.cluster.kubectl_ok(&["get", "--raw", &path]);
    check(&raw);
    f.assert_alive();
}

/// Reads `/proc/<pid>/status` VmRSS in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("proc status")
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

async fn tls_stream(
    port: u16,
    ca_pem: &[u8],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let connector = tokio_rustls::TlsConnector::from(tls_config(ca_pem));
    connector
        .connect(ServerName::try_from("127.0.0.1").expect("name"), tcp)
        .await
        .expect("TLS handshake")
}

#[test]
fn stalled_watcher_neither_blocks_others_nor_grows_memory() {
    const OBJECTS: usize = 50;
    const WRITES: u64 = 5_000;
    let f = Fixture::with_args("bad-stalled", &["--watch-ring=100"]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let port = f.cluster.port;
    let ca = f.cluster.ca_pem.clone();
    let token = f.cluster.token.clone();
    let headers = vec![("authorization".to_string(), format!("Bearer {token}"))];
    let cm_path = f.path("configmaps");
    let payload = "x".repeat(20 * 1024);

    rt.block_on(async {
        let mut writer = Connection::open(port, tls_config(&ca)).await.expect("open");
        for i in 0..OBJECTS {
            let reply = writer
                .send(
                    "POST",
                    &cm_path,
                    Some(configmap(&format!("cm{i}")).to_string().as_bytes()),
                    &headers,
                )
                .await
                .expect("create");
            assert_eq!(reply.status, 201, "{}", text(&reply));
        }
    });
    let start_rv = f.revision();
    let rss_before = rss_kib(f.pid);

    // The stalled client: asks for a watch over TLS and never reads a byte.
    let stalled = rt.block_on(async {
        let mut stream = tls_stream(port, &ca).await;
        let request = format!(
            "GET {cm_path}?watch=true&resourceVersion={start_rv} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nAccept: application/json\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.expect("send watch");
        stream.flush().await.expect("flush");
        stream
    });

    // A normal watcher that reads every event.
    let seen = Arc::new(AtomicU64::new(0));
    let last_rv = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(std::sync::Mutex::new(None::<String>));
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (seen, last_rv, failed, done) =
            (seen.clone(), last_rv.clone(), failed.clone(), done.clone());
        let (ca, token, path) = (
            ca.clone(),
            token.clone(),
            format!("{cm_path}?watch=true&resourceVersion={start_rv}"),
        );
        rt.spawn(async move {
            let stream = tls_stream(port, &ca).await;
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .expect("http handshake");
            tokio::spawn(async move {
                let _ = conn.await;
            });
            let request = hyper::Request::builder()
                .uri(path)
                .header("host", "127.0.0.1")
                .header("authorization", format!("Bearer {token}"))
                .body(Empty::<Bytes>::new())
                .expect("request");
            let response = sender.send_request(request).await.expect("watch response");
            assert_eq!(response.status(), 200);
            let mut body = response.into_body();
            let mut buf: Vec<u8> = Vec::new();
            let mut expect_rv = start_rv;
            while !done.load(Ordering::Relaxed) {
                let Some(frame) = body.frame().await else {
                    break;
                };
                let Ok(frame) = frame else { break };
                let Some(data) = frame.data_ref() else {
                    continue;
                };
                buf.extend_from_slice(data);
                while let Some(end) = buf.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=end).collect();
                    let event: Value = match serde_json::from_slice(&line) {
                        Ok(v) => v,
                        Err(e) => {
                            *failed.lock().expect("lock") = Some(format!("bad event line: {e}"));
                            return;
                        }
                    };
                    let rv: u64 = event["object"]["metadata"]["resourceVersion"]
                        .as_str()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                    if event["type"] != "MODIFIED" || rv <= expect_rv {
                        *failed.lock().expect("lock") = Some(format!(
                            "unexpected event after rv {expect_rv}: {}",
                            String::from_utf8_lossy(&line[..line.len().min(300)])
                        ));
                        return;
                    }
                    expect_rv = rv;
                    last_rv.store(rv, Ordering::Relaxed);
                    seen.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };

    // ~5,000 writes of 20 KB objects, cycling over the configmaps so the store stays small and
    // any memory growth is buffering.
    let started = Instant::now();
    let final_rv = rt.block_on(async {
        let mut writer = Connection::open(port, tls_config(&ca)).await.expect("open");
        let patch_headers = vec![
            headers[0].clone(),
            (
                "content-type".to_string(),
                "application/merge-patch+json".to_string(),
            ),
        ];
        let mut rv = 0;
        for i in 0..WRITES {
            let name = format!("cm{}", i as usize % OBJECTS);
            let body = json!({"data": {"k": format!("{i}-{payload}")}}).to_string();
            let reply = writer
                .send(
                    "PATCH",
                    &format!("{cm_path}/{name}"),
                    Some(body.as_bytes()),
                    &patch_headers,
                )
                .await
                .expect("patch");
            assert_eq!(reply.status, 200, "write {i}: {}", text(&reply));
            if i % 1000 == 999 {
                // Ordinary reads stay fast while the stalled watcher sits there.
                let t = Instant::now();
                let reply = writer
                    .send("GET", &format!("{cm_path}/cm0"), None, &headers)
                    .await
                    .expect("get");
                assert_eq!(reply.status, 200);
                assert!(
                    t.elapsed() < Duration::from_secs(2),
                    "GET took {:?}",
                    t.elapsed()
                );
            }
            rv = reply.json()["metadata"]["resourceVersion"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
        }
        rv
    });
    let write_time = started.elapsed();

    // The reading watcher gets every event, promptly.
    let deadline = Instant::now() + Duration::from_secs(10);
    while last_rv.load(Ordering::Relaxed) < final_rv && Instant::now() < deadline {
        if failed.lock().expect("lock").is_some() || watcher.is_finished() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    done.store(true, Ordering::Relaxed);
    if let Some(problem) = failed.lock().expect("lock").clone() {
        panic!("reading watcher: {problem}");
    }
    assert_eq!(
        seen.load(Ordering::Relaxed),
        WRITES,
        "the reading watcher saw {} of {WRITES} events (last rv {}, final {final_rv}) after {write_time:?} of writes",
        seen.load(Ordering::Relaxed),
        last_rv.load(Ordering::Relaxed)
    );
    watcher.abort();

    let rss_after = rss_kib(f.pid);
    assert!(
        rss_after < rss_before + 200 * 1024,
        "enclave RSS grew from {rss_before} KiB to {rss_after} KiB"
    );

    // The stalled watcher was given up on: draining it ends (EOF or a 410 ERROR event) instead
    // of replaying all {WRITES} events.
    let drained = rt.block_on(async move {
        use tokio::io::AsyncReadExt as _;
        let mut stream = stalled;
        let mut all = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            match tokio::time::timeout(Duration::from_secs(3), stream.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return (all, true),
                Ok(Ok(n)) => all.extend_from_slice(&chunk[..n]),
                Err(_) => return (all, false),
            }
        }
    });
    let (bytes, ended) = drained;
    let body = String::from_utf8_lossy(&bytes);
    let modified = body.matches("\"type\":\"MODIFIED\"").count();
    let expired = body.contains("\"type\":\"ERROR\"") && body.contains("\"code\":410");
    eprintln!(
        "stalled watcher: {WRITES} writes in {write_time:?}; RSS {rss_before} -> {rss_after} KiB; \
         stalled stream had {} bytes, {modified} events, ended={ended}, expired={expired}",
        bytes.len()
    );
    assert!(
        ended || expired,
        "the stalled watch is still open after {modified} events and never got 410"
    );
    if expired && !ended {
        // The ERROR event is the last one: the chunked response is finished after it.
        assert!(
            bytes.ends_with(b"\r\n0\r\n\r\n"),
            "the stalled watch got 410 but its response did not end: {:?}",
            String::from_utf8_lossy(&bytes[bytes.len().saturating_sub(300)..])
        );
    }
    assert!(
        (modified as u64) < WRITES,
        "the stalled watcher was buffered all {modified} events"
    );
    f.assert_alive();
}

#[test]
fn half_open_and_slowloris_connections_do_not_stop_service() {
    let f = Fixture::new("bad-slowloris");
    let port = f.cluster.port;
    let opened = Instant::now();
    let mut idle = Vec::new();
    for _ in 0..200 {
        idle.push(TcpStream::connect(("127.0.0.1", port)).expect("connect"));
    }
    // Half a TLS ClientHello: a handshake record header announcing 512 bytes, then 40 of them.
    let mut partial = Vec::new();
    for _ in 0..20 {
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let mut hello = vec![
            0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
        ];
        hello.extend_from_slice(&[0x42; 29]);
        s.write_all(&hello).expect("half hello");
        partial.push(s);
    }
    for i in 0..20 {
        let t = Instant::now();
        let reply = f.get(&f.path("configmaps"));
        assert_eq!(reply.status, 200, "request {i}: {}", text(&reply));
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "request {i} took {:?}",
            t.elapsed()
        );
        let reply = f.post(&f.path("configmaps"), &configmap(&format!("cm{i}")));
        assert_eq!(reply.status, 201, "create {i}: {}", text(&reply));
    }
    // The proxy's default handshake timeout is 10 s: after it, every silent or partial
    // connection has been closed.
    let wait = Duration::from_secs(12).saturating_sub(opened.elapsed());
    std::thread::sleep(wait);
    let mut still_open = 0;
    for s in idle.iter_mut().chain(partial.iter_mut()) {
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let mut b = [0u8; 64];
        match s.read(&mut b) {
            Ok(0) => {}
            Ok(_) => {} // an alert, then close
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                still_open += 1;
            }
            Err(_) => {}
        }
    }
    assert_eq!(
        still_open, 0,
        "{still_open} idle connections outlived the handshake timeout"
    );
    let reply = f.get(&f.path("configmaps"));
    assert_eq!(reply.status, 200);
    f.assert_alive();
}

#[test]
fn authentication_401_and_anonymous_health() {
    let f = Fixture::new("bad-auth");
    let before = f.revision();
    let reply = f
        .cluster
        .anonymous("GET", "/api/v1/pods")
        .expect("anonymous");
    assert_status(&reply, 401, "Unauthorized", "Unauthorized");
    for auth in [
        "Bearer wrong",
        "Bearer ",
        "Basic YWRtaW46YWRtaW4=",
        "bearer",
    ] {
        let reply = nautilus_tests::client::blocking_request(
            f.cluster.port,
            &f.cluster.ca_pem,
            "GET",
            "/api/v1/pods",
            None,
            &[("authorization".into(), auth.into())],
        )
        .expect("request");
        assert_status(&reply, 401, "Unauthorized", "Unauthorized");
    }
    // Writes without credentials are refused before anything is decoded.
    let reply = nautilus_tests::client::blocking_request(
        f.cluster.port,
        &f.cluster.ca_pem,
        "POST",
        &f.path("configmaps"),
        Some(configmap("anon").to_string().as_bytes()),
        &[],
    )
    .expect("request");
    assert_status(&reply, 401, "Unauthorized", "");
    for path in ["/healthz", "/readyz", "/livez", "/version"] {
        let reply = f.cluster.anonymous("GET", path).expect("anonymous");
        assert_eq!(reply.status, 200, "{path}: {}", text(&reply));
    }
    f.assert_absent(&format!("{}/anon", f.path("configmaps")));
    assert_eq!(f.revision(), before);
    f.assert_alive();
}

#[test]
fn unsupported_patch_content_type_is_415() {
    let f = Fixture::new("bad-patch-type");
    let path = format!("{}/cm", f.path("configmaps"));
    assert_eq!(f.post(&f.path("configmaps"), &configmap("cm")).status, 201);
    let before = f.revision();
    for ctype in ["application/json", "application/xml", "text/plain"] {
        let reply = f.req(
            "PATCH",
            &path,
            Some(br#"{"data":{"k":"changed"}}"#),
            &[("content-type", ctype)],
        );
        assert_status(
            &reply,
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include:",
        );
    }
    assert_eq!(f.get(&path).json()["data"]["k"], "v");
    assert_eq!(f.revision(), before);
    f.assert_alive();
}

#[test]
fn json_patch_with_failing_test_op_is_422_and_changes_nothing() {
    let f = Fixture::new("bad-patch-test");
    let path = format!("{}/cm", f.path("configmaps"));
    assert_eq!(f.post(&f.path("configmaps"), &configmap("cm")).status, 201);
    let original = f.get(&path).json();
    let before = f.revision();
    let patch = br#"[{"op":"add","path":"/data/extra","value":"1"},{"op":"test","path":"/data/k","value":"not-v"},{"op":"replace","path":"/data/k","value":"changed"}]"#;
    let reply = f.req(
        "PATCH",
        &path,
        Some(patch),
        &[("content-type", "application/json-patch+json")],
    );
    assert_status(&reply, 422, "Invalid", "");
    // A patch that is not a JSON array: kube-apiserver fails jsonpatch.DecodePatch with 400.
    let reply = f.req(
        "PATCH",
        &path,
        Some(br#"{"op":"add"}"#),
        &[("content-type", "application/json-patch+json")],
    );
    assert_status(
        &reply,
        400,
        "BadRequest",
        "json: cannot unmarshal object into Go value of type jsonpatch.Patch",
    );
    assert_eq!(f.get(&path).json(), original, "the object changed");
    assert_eq!(f.revision(), before);
    f.assert_alive();
}

#[test]
fn methods_not_allowed_are_405() {
    let f = Fixture::new("bad-method");
    assert_eq!(f.post(&f.path("configmaps"), &configmap("cm")).status, 201);
    let before = f.revision();
    let collection = f.path("configmaps");
    let body = configmap("cm").to_string();
    for (method, path) in [
        ("PUT", collection.clone()),
        ("PATCH", collection.clone()),
        ("POST", format!("{collection}/cm")),
    ] {
        let reply = f.req(
            method,
            &path,
            Some(body.as_bytes()),
            &[(
                "content-type",
                if method == "PATCH" {
                    "application/merge-patch+json"
                } else {
                    "application/json"
                },
            )],
        );
        assert_status(
            &reply,
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        );
    }
    assert_eq!(f.revision(), before);
    f.assert_alive();
}

#[test]
fn kubectl_create_generators_send_protobuf() {
    // `kubectl create namespace|configmap|secret` build typed objects and POST them as
    // application/vnd.kubernetes.protobuf (kubectl 1.32, seen with -v=8); kube-apiserver decodes
    // protobuf for built-in types, and client-go has no JSON fallback for it.
    let f = Fixture::new("bad-protobuf");
    let out = f
        .cluster
        .kubectl(&["create", "namespace", "made-by-kubectl"]);
    assert!(
        out.status.success(),
        "kubectl create namespace failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = f.cluster.kubectl(&[
        "create",
        "configmap",
        "made",
        "-n",
        "bad-protobuf",
        "--from-literal=a=b",
    ]);
    assert!(
        out.status.success(),
        "kubectl create configmap failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    f.assert_alive();
}
