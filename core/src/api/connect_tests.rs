//! The pod subresources that reach the kubelet, against the core alone: the kubelet call
//! (address, port, path and query as kube-apiserver builds them) or kube's refusal before any
//! connection.

use alloc::string::String;
use serde_json::{Value, json};

use crate::api::request::ApiRequest;
use crate::api::{KubeletCall, KubeletCallKind, Method, Outcome, StreamOptions};
use crate::cluster::test_harness::{ADMIN, Cluster};

fn setup() -> Cluster {
    let mut c = Cluster::new();
    let (code, _) = c.post(
        "/api/v1/nodes",
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}),
    );
    assert_eq!(code, 201);
    let (code, body) = c.merge_patch(
        "/api/v1/nodes/n1/status",
        json!({"status": {"addresses": [{"type": "Hostname", "address": "n1"},
            {"type": "InternalIP", "address": "10.1.2.3"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10255}}}}),
    );
    assert_eq!(code, 200, "{body}");
    for (name, node, containers) in [
        ("web", Some("n1"), &["app"][..]),
        ("two", Some("n1"), &["a", "b"][..]),
        ("pending", None, &["app"][..]),
        ("lost", Some("gone"), &["app"][..]),
    ] {
        let mut spec = json!({"containers": containers.iter()
            .map(|n| json!({"name": n, "image": "busybox"})).collect::<alloc::vec::Vec<_>>(),
            "nodeSelector": {"none": "x"}});
        if let Some(node) = node {
            spec["nodeName"] = json!(node);
        }
        let (code, body) = c.post(
            "/api/v1/namespaces/default/pods",
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}),
        );
        assert_eq!(code, 201, "{body}");
    }
    c
}

/// The admin's `method path`: the kubelet call, or the refusal's status and message.
fn connect(c: &mut Cluster, method: Method, path: &str) -> Result<KubeletCall, (u16, String)> {
    let auth = alloc::format!("Bearer {ADMIN}");
    let mut req = ApiRequest::new(method, path);
    req.authorization = Some(&auth);
    match c.server.handle_request(c.now, &req) {
        Outcome::Kubelet(call) => Ok(*call),
        Outcome::Response(r) => {
            let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
            let message = body["message"].as_str().map_or_else(
                || String::from_utf8_lossy(&r.body).into_owned(),
                String::from,
            );
            Err((r.status, message))
        }
        other => panic!("{other:?}"),
    }
}

const POD: &str = "/api/v1/namespaces/default/pods";

#[test]
fn kubelet_calls_are_built_as_kube_apiserver_builds_them() {
    let mut c = setup();
    let cases: &[(Method, &str, &str, KubeletCallKind)] = &[
        (
            Method::Get,
            "web/log",
            "/containerLogs/default/web/app",
            KubeletCallKind::Logs { follow: false },
        ),
        (
            Method::Get,
            "web/log?follow=true&tailLines=10&timestamps=true&limitBytes=5&previous=1&sinceSeconds=3",
            "/containerLogs/default/web/app?follow=true&limitBytes=5&previous=true&sinceSeconds=3&tailLines=10&timestamps=true",
            KubeletCallKind::Logs { follow: true },
        ),
        (
            Method::Get,
            "two/log?container=b&sinceTime=2026-01-02T03:04:05Z",
            "/containerLogs/default/two/b?sinceTime=2026-01-02T03%3A04%3A05Z",
            KubeletCallKind::Logs { follow: false },
        ),
        (
            Method::Post,
            "web/exec?command=sh&command=-c&command=echo+a+b&stdin=true&stdout=true&tty=true",
            "/exec/default/web/app?command=sh&command=-c&command=echo+a+b&input=1&output=1&tty=1",
            KubeletCallKind::RemoteCommand(StreamOptions {
                stdin: true,
                stdout: true,
                stderr: false,
                tty: true,
            }),
        ),
        (
            Method::Get,
            "two/attach?container=a&stdout=1&stderr=1",
            "/attach/default/two/a?error=1&output=1",
            KubeletCallKind::RemoteCommand(StreamOptions {
                stdin: false,
                stdout: true,
                stderr: true,
                tty: false,
            }),
        ),
        (
            Method::Post,
            "web/portforward?ports=8080&ports=9090",
            "/portForward/default/web?port=8080%2C9090",
            KubeletCallKind::PortForward,
        ),
    ];
    for (method, path, want, kind) in cases {
        let call = connect(&mut c, *method, &alloc::format!("{POD}/{path}"))
            .unwrap_or_else(|e| panic!("{path}: {e:?}"));
        assert_eq!(call.path_and_query, *want, "{path}");
        assert_eq!(call.kind, *kind, "{path}");
        assert_eq!(
            (call.node.as_str(), call.host.as_str(), call.port),
            ("n1", "10.1.2.3", 10255),
            "{path}"
        );
        assert_eq!(call.method, *method, "{path}");
    }
}

#[test]
fn refusals_are_kubes() {
    let mut c = setup();
    let cases: &[(Method, &str, u16, &str)] = &[
        (Method::Get, "nope/log", 404, "pods \"nope\" not found"),
        (
            Method::Get,
            "web/log?container=x",
            400,
            "container x is not valid for pod web",
        ),
        (
            Method::Get,
            "two/log",
            400,
            "a container name must be specified for pod two, choose one of: [a b]",
        ),
        (
            Method::Get,
            "web/log?tailLines=-1&limitBytes=0",
            422,
            "PodLogOptions \"web\" is invalid: [tailLines: Invalid value: -1: must be greater than or equal to 0, limitBytes: Invalid value: 0: must be greater than 0]",
        ),
        (
            Method::Get,
            "web/log?sinceSeconds=0",
            422,
            "PodLogOptions \"web\" is invalid: sinceSeconds: Invalid value: 0: must be greater than 0",
        ),
        (
            Method::Get,
            "web/log?sinceSeconds=5&sinceTime=2026-01-02T03:04:05Z",
            422,
            "at most one of `sinceTime` or `sinceSeconds` may be specified",
        ),
        (
            Method::Post,
            "pending/exec?command=true&stdout=1",
            400,
            "pod pending does not have a host assigned",
        ),
        (
            Method::Post,
            "pending/portforward?ports=80",
            400,
            "pod pending does not have a host assigned",
        ),
        (Method::Get, "lost/log", 404, "nodes \"gone\" not found"),
        (
            Method::Delete,
            "web/exec",
            405,
            "the server does not allow this method on the requested resource",
        ),
        (
            Method::Post,
            "web/log",
            405,
            "the server does not allow this method on the requested resource",
        ),
    ];
    for (method, path, code, message) in cases {
        let (got, text) = connect(&mut c, *method, &alloc::format!("{POD}/{path}"))
            .map(|call| panic!("{path}: {call:?}"))
            .unwrap_err();
        assert_eq!(got, *code, "{path}: {text}");
        assert!(text.contains(message), "{path}: {text}");
    }
    // An unscheduled pod's log is empty, as kube gives no location for it.
    let (code, _) = c.get(&alloc::format!("{POD}/pending/log"));
    assert_eq!(code, 200);
}
