//! What kube-apiserver's typed decoding refuses before anything is stored: timestamps that are
//! not RFC 3339, repeated keys under `fieldValidation=Strict`, over-long field managers, and
//! patches that move an object to another namespace.

use alloc::string::String;
use alloc::vec::Vec;
use serde_json::{Value, json};

use super::tests::{T0, TOKEN, call, call_with, cm, server};
use super::{ApiRequest, Cluster, Method};
use crate::Config;

/// A request with a raw body; returns (status, body, warnings).
fn raw(
    s: &mut Cluster,
    method: Method,
    path: &str,
    body: &[u8],
    content_type: &str,
) -> (u16, Value, Vec<String>) {
    let auth = alloc::format!("Bearer {TOKEN}");
    let mut req = ApiRequest::new(method, path);
    req.authorization = Some(&auth);
    req.body = body;
    req.content_type = Some(content_type);
    let r = s
        .handle_request(T0, &req)
        .into_response()
        .expect("not a watch");
    (
        r.status,
        serde_json::from_slice(&r.body).unwrap_or(Value::Null),
        r.warnings,
    )
}

fn event(name: &str, last: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Event",
        "metadata": {"name": name, "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
        "reason": "Test", "message": "m", "type": "Normal", "count": 1,
        "firstTimestamp": "2024-01-01T00:00:00Z", "lastTimestamp": last})
}

const EVENTS: &str = "/api/v1/namespaces/default/events";

#[test]
fn a_timestamp_that_is_not_rfc3339_is_a_decode_error_and_stores_nothing() {
    let mut s = server(Config::default());
    let before = s.store().revision();
    let r = call(
        &mut s,
        Method::Post,
        EVENTS,
        Some(event("e", json!("tomorrow"))),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.body["reason"], "BadRequest");
    assert_eq!(
        r.body["message"],
        "Event in version \"v1\" cannot be handled as a Event: parsing time \"tomorrow\" as \"2006-01-02T15:04:05Z07:00\": cannot parse \"tomorrow\" as \"2006\""
    );
    let r = call(&mut s, Method::Post, EVENTS, Some(event("e", json!(17))));
    assert_eq!(r.status, 400);
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .ends_with("json: cannot unmarshal number into Go value of type string"),
        "{}",
        r.body
    );
    // MicroTime wants exactly six fraction digits, as kube's RFC3339Micro layout does.
    let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "l"}, "spec": {"renewTime": "2024-01-01T00:00:00Z"}});
    let r = call(
        &mut s,
        Method::Post,
        "/apis/coordination.k8s.io/v1/namespaces/default/leases",
        Some(lease),
    );
    assert_eq!(r.status, 400);
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .ends_with("cannot parse \"Z\" as \".000000\""),
        "{}",
        r.body
    );
    assert_eq!(s.store().revision(), before, "nothing was stored");
}

#[test]
fn every_time_field_of_every_type_is_checked_and_stored_in_utc() {
    let mut s = server(Config::default());
    let r = call(
        &mut s,
        Method::Post,
        EVENTS,
        Some(event("e", json!("2024-01-01T01:00:00.5+01:00"))),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["lastTimestamp"], "2024-01-01T00:00:00Z");
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "i"}]}});
    assert_eq!(
        call(
            &mut s,
            Method::Post,
            "/api/v1/namespaces/default/pods",
            Some(pod)
        )
        .status,
        201
    );
    // A container state deep in pod status, through the status subresource.
    let bad_status = json!({"status": {"containerStatuses": [{"name": "c", "ready": true,
        "restartCount": 0, "image": "i", "imageID": "",
        "state": {"running": {"startedAt": "yesterday"}}}]}});
    let r = call_with(
        &mut s,
        Method::Patch,
        "/api/v1/namespaces/default/pods/p/status",
        Some(bad_status),
        Some("application/merge-patch+json"),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.body["details"]["causes"][0]["field"], "patch");
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .contains("parsing time \"yesterday\""),
        "{}",
        r.body
    );
    // A taint's timeAdded on a Node, and a pod template's conditions in a Deployment.
    let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"},
        "spec": {"taints": [{"key": "k", "effect": "NoSchedule", "timeAdded": "soon"}]}});
    assert_eq!(
        call(&mut s, Method::Post, "/api/v1/nodes", Some(node)).status,
        400
    );
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {
            "metadata": {"labels": {"a": "b"}, "creationTimestamp": "later"},
            "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
    let r = call(
        &mut s,
        Method::Post,
        "/apis/apps/v1/namespaces/default/deployments",
        Some(deployment),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body["message"].as_str().unwrap().starts_with(
            "Deployment in version \"v1\" cannot be handled as a Deployment: parsing time \"later\""
        ),
        "{}",
        r.body
    );
}

#[test]
fn repeated_keys_follow_field_validation() {
    let mut s = server(Config::default());
    let path = "/api/v1/namespaces/default/configmaps";
    let body = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"},"data":{"k":"1","k":"2"}}"#;
    let (status, reply, _) = raw(
        &mut s,
        Method::Post,
        &alloc::format!("{path}?fieldValidation=Strict"),
        body,
        "application/json",
    );
    assert_eq!(status, 400, "{reply}");
    assert_eq!(
        reply["message"],
        "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding error: duplicate field \"data.k\""
    );
    let (status, reply, warnings) = raw(
        &mut s,
        Method::Post,
        &alloc::format!("{path}?fieldValidation=Warn"),
        body,
        "application/json",
    );
    assert_eq!(status, 201, "{reply}");
    assert_eq!(warnings, ["duplicate field \"data.k\""]);
    assert_eq!(reply["data"]["k"], "2", "the last value wins");
    let ignored = body.replace_ascii(b"\"a\"", b"\"b\"");
    let (status, reply, warnings) = raw(
        &mut s,
        Method::Post,
        &alloc::format!("{path}?fieldValidation=Ignore"),
        &ignored,
        "application/json",
    );
    assert_eq!((status, warnings.len()), (201, 0), "{reply}");
    assert_eq!(reply["data"]["k"], "2");
}

trait ReplaceAscii {
    fn replace_ascii(&self, from: &[u8], to: &[u8]) -> Vec<u8>;
}

impl ReplaceAscii for [u8] {
    fn replace_ascii(&self, from: &[u8], to: &[u8]) -> Vec<u8> {
        let text = core::str::from_utf8(self).unwrap();
        text.replacen(
            core::str::from_utf8(from).unwrap(),
            core::str::from_utf8(to).unwrap(),
            1,
        )
        .into_bytes()
    }
}

#[test]
fn a_field_manager_longer_than_128_bytes_is_refused_per_verb() {
    let mut s = server(Config::default());
    let long: String = "m".repeat(129);
    let path = alloc::format!("/api/v1/namespaces/default/configmaps?fieldManager={long}");
    let r = call(&mut s, Method::Post, &path, Some(cm("a", json!({}))));
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(
        r.body["message"],
        "CreateOptions.meta.k8s.io \"\" is invalid: fieldManager: Too long: may not be more than 128 bytes"
    );
    assert_eq!(r.body["details"]["group"], "meta.k8s.io");
    assert_eq!(r.body["details"]["kind"], "CreateOptions");
    assert_eq!(
        r.body["details"]["causes"][0]["reason"],
        "FieldValueTooLong"
    );
    let ok = alloc::format!(
        "/api/v1/namespaces/default/configmaps?fieldManager={}",
        "m".repeat(128)
    );
    assert_eq!(
        call(&mut s, Method::Post, &ok, Some(cm("a", json!({})))).status,
        201
    );
    let patch = alloc::format!("/api/v1/namespaces/default/configmaps/a?fieldManager={long}");
    let r = call(
        &mut s,
        Method::Patch,
        &patch,
        Some(json!({"data": {"x": "y"}})),
    );
    assert_eq!(r.status, 422);
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .starts_with("PatchOptions.meta.k8s.io"),
        "{}",
        r.body
    );
    let r = call(
        &mut s,
        Method::Post,
        "/api/v1/namespaces/default/configmaps?fieldManager=a%07b",
        Some(cm("b", json!({}))),
    );
    assert_eq!(r.status, 422);
    assert_eq!(
        r.body["details"]["causes"][0]["message"],
        // Go's %q writes U+0007 as \a (strconv.Quote), as kube's field error does.
        "Invalid value: \"a\\ab\": invalid character U+0007 (at position 1)"
    );
}

#[test]
fn a_patch_that_moves_the_namespace_is_refused() {
    let mut s = server(Config::default());
    call(
        &mut s,
        Method::Post,
        "/api/v1/namespaces",
        Some(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}})),
    );
    let path = "/api/v1/namespaces/default/configmaps";
    assert_eq!(
        call(&mut s, Method::Post, path, Some(cm("a", json!({})))).status,
        201
    );
    let before = s.store().revision();
    let json_patch = json!([{"op": "replace", "path": "/metadata/namespace", "value": "other"}]);
    let r = call_with(
        &mut s,
        Method::Patch,
        "/api/v1/namespaces/default/configmaps/a",
        Some(json_patch),
        Some("application/json-patch+json"),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        r.body["message"],
        "the namespace of the provided object does not match the namespace sent on the request"
    );
    let r = call(
        &mut s,
        Method::Patch,
        "/api/v1/namespaces/default/configmaps/a",
        Some(json!({"metadata": {"namespace": "other"}})),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(s.store().revision(), before, "nothing changed");
    // Removing it is fine: an unset namespace takes the request's.
    let remove = json!([{"op": "remove", "path": "/metadata/namespace"}, {"op": "add", "path": "/data", "value": {"x": "1"}}]);
    let r = call_with(
        &mut s,
        Method::Patch,
        "/api/v1/namespaces/default/configmaps/a",
        Some(remove),
        Some("application/json-patch+json"),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["metadata"]["namespace"], "default");
}

/// A value its Go field cannot hold never gets stored, by any verb: a create or update is
/// refused as kube's decoder refuses it (400), a merge or JSON patch whose result holds one
/// as kube's patch handler does (422 `patch: Invalid value`), an apply as its typed
/// conversion does (500); the object is left as it was.
#[test]
fn a_value_of_the_wrong_json_type_is_stored_by_no_verb() {
    let mut s = crate::cluster::test_harness::server();
    let path = "/apis/apps/v1/namespaces/default/deployments";
    let deployment = |replicas: Value| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"a": "b"}},
                "template": {"metadata": {"labels": {"a": "b"}},
                    "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})
    };
    let decoder = "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32";
    let (code, body) = s.post(path, deployment(json!("3")));
    assert_eq!(code, 400, "{body}");
    assert_eq!(
        body["message"],
        alloc::format!("Deployment in version \"v1\" cannot be handled as a Deployment: {decoder}")
    );
    assert_eq!(s.post(path, deployment(json!(1))).0, 201);
    let one = alloc::format!("{path}/web");
    let (code, body) = s.put(&one, deployment(json!("3")));
    assert_eq!(code, 400, "{body}");
    for (kind, patch) in [
        (
            "application/merge-patch+json",
            json!({"spec": {"replicas": "3"}}),
        ),
        (
            "application/json-patch+json",
            json!([{"op": "replace", "path": "/spec/replicas", "value": "3"}]),
        ),
        (
            "application/strategic-merge-patch+json",
            json!({"spec": {"replicas": "3"}}),
        ),
    ] {
        let (code, body) = s.patch(&one, patch, kind);
        assert_eq!(code, 422, "{kind}: {body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("patch: Invalid value: ") && message.ends_with(decoder),
            "{kind}: {message}"
        );
    }
    let (code, body) = s.patch(
        &alloc::format!("{one}?fieldManager=m"),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": "3"}}),
        "application/apply-patch+yaml",
    );
    assert_eq!(code, 500, "{body}");
    assert!(
        body["message"].as_str().unwrap_or_default().starts_with(
            "failed to create typed patch object (default/web; apps/v1, Kind=Deployment): "
        ),
        "{body}"
    );
    let (_, stored) = s.get(&one);
    assert_eq!(stored["spec"]["replicas"], 1, "{stored}");
}
