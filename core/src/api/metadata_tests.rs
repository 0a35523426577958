//! Metadata-only reads against the core alone: GET, LIST and WATCH in JSON and protobuf.

use alloc::string::String;
use alloc::vec::Vec;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{ApiRequest, Cluster, Method, Outcome, WatchPoll};
use crate::{Config, UnixTime};

const TOKEN: &str = "admin-secret";
const T0: UnixTime = UnixTime::from_secs(1_750_000_000);
const OBJECT: &str = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";
const LIST: &str = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";
const PROTO_OBJECT: &str =
    "application/vnd.kubernetes.protobuf;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";
const PROTO_LIST: &str =
    "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";

fn server() -> Cluster {
    let config = Config {
        admin_token_sha256: Some(Sha256::digest(TOKEN.as_bytes()).into()),
        ..Config::default()
    };
    let mut s = Cluster::new(config, [7; 32], T0);
    for (name, owner) in [("a", true), ("b", false), ("c", false)] {
        let mut cm = json!({"metadata": {"name": name, "labels": {"app": "web"},
            "annotations": {"note": name}, "finalizers": ["example.com/keep"]},
            "data": {"big": "x".repeat(100)}});
        if owner {
            cm["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1",
                "kind": "ReplicaSet", "name": "rs", "uid": "11111111-2222-4333-8444-555555555555",
                "controller": true}]);
        }
        let (status, body) = call(
            &mut s,
            Method::Post,
            "/api/v1/namespaces/default/configmaps",
            None,
            Some(&cm),
        );
        assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    }
    s
}

fn request<'a>(method: Method, path: &'a str, auth: &'a str) -> ApiRequest<'a> {
    let mut req = ApiRequest::new(method, path);
    req.authorization = Some(auth);
    req.content_type = Some("application/json");
    req
}

fn call(
    s: &mut Cluster,
    method: Method,
    path: &str,
    accept: Option<&str>,
    body: Option<&Value>,
) -> (u16, Vec<u8>) {
    let (status, _, bytes) = call_typed(s, method, path, accept, body);
    (status, bytes)
}

fn call_typed(
    s: &mut Cluster,
    method: Method,
    path: &str,
    accept: Option<&str>,
    body: Option<&Value>,
) -> (u16, &'static str, Vec<u8>) {
    let auth = alloc::format!("Bearer {TOKEN}");
    let bytes = body
        .map(|b| serde_json::to_vec(b).unwrap())
        .unwrap_or_default();
    let mut req = request(method, path, &auth);
    req.accept = accept;
    req.body = &bytes;
    let r = s
        .handle_request(T0, &req)
        .into_response()
        .expect("no watch");
    (r.status, r.content_type, r.body)
}

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

#[test]
fn a_get_answers_only_the_metadata() {
    let mut s = server();
    let path = "/api/v1/namespaces/default/configmaps/a";
    let (_, full) = call(&mut s, Method::Get, path, None, None);
    let full = json_of(&full);
    let (status, content_type, body) = call_typed(&mut s, Method::Get, path, Some(OBJECT), None);
    assert_eq!((status, content_type), (200, "application/json"));
    let partial = json_of(&body);
    assert_eq!(
        partial,
        json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": full["metadata"]})
    );
    let (_, beta) = call(
        &mut s,
        Method::Get,
        path,
        Some("application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1beta1"),
        None,
    );
    assert_eq!(json_of(&beta)["apiVersion"], "meta.k8s.io/v1beta1");

    let (status, content_type, body) =
        call_typed(&mut s, Method::Get, path, Some(PROTO_OBJECT), None);
    assert_eq!(
        (status, content_type),
        (200, "application/vnd.kubernetes.protobuf")
    );
    let decoded =
        crate::protobuf::decode_as("meta.k8s.io/v1", "PartialObjectMetadata", &body).unwrap();
    assert_eq!(decoded["kind"], "PartialObjectMetadata");
    assert_eq!(decoded["metadata"], full["metadata"]);

    let (status, body) = call(&mut s, Method::Get, path, Some(LIST), None);
    assert_eq!(status, 406);
    assert_eq!(
        json_of(&body)["message"],
        "you requested PartialObjectMetadataList, but the requested object is not a list (*core.ConfigMap)"
    );
    let (status, body) = call(
        &mut s,
        Method::Get,
        path,
        Some("application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v3"),
        None,
    );
    assert_eq!(
        (status, json_of(&body)["reason"].as_str()),
        (406, Some("NotAcceptable"))
    );
}

#[test]
fn a_list_answers_a_partial_object_metadata_list_in_pages() {
    let mut s = server();
    let path = "/api/v1/namespaces/default/configmaps?limit=2";
    let (status, content_type, body) = call_typed(&mut s, Method::Get, path, Some(LIST), None);
    assert_eq!((status, content_type), (200, "application/json"));
    let list = json_of(&body);
    assert_eq!(list["kind"], "PartialObjectMetadataList");
    assert_eq!(list["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(list["metadata"]["remainingItemCount"], 1);
    let token = String::from(list["metadata"]["continue"].as_str().unwrap());
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    for item in items {
        assert_eq!(item["kind"], "PartialObjectMetadata");
        assert_eq!(item["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(item.as_object().unwrap().len(), 3, "{item}");
        assert_eq!(item["metadata"]["finalizers"], json!(["example.com/keep"]));
    }
    assert_eq!(items[0]["metadata"]["ownerReferences"][0]["name"], "rs");
    let next = alloc::format!("/api/v1/namespaces/default/configmaps?limit=2&continue={token}");
    let (_, body) = call(&mut s, Method::Get, &next, Some(LIST), None);
    assert_eq!(json_of(&body)["items"][0]["metadata"]["name"], "c");

    let (status, content_type, body) =
        call_typed(&mut s, Method::Get, path, Some(PROTO_LIST), None);
    assert_eq!(
        (status, content_type),
        (200, "application/vnd.kubernetes.protobuf")
    );
    let decoded =
        crate::protobuf::decode_as("meta.k8s.io/v1", "PartialObjectMetadataList", &body).unwrap();
    assert_eq!(decoded["metadata"], list["metadata"]);
    for (ours, json) in decoded["items"].as_array().unwrap().iter().zip(items) {
        assert_eq!(ours["metadata"], json["metadata"]);
    }

    let (status, body) = call(&mut s, Method::Get, path, Some(OBJECT), None);
    assert_eq!(status, 406);
    assert_eq!(
        json_of(&body)["message"],
        "you requested PartialObjectMetadata, but the requested object is a list (*core.ConfigMapList)"
    );
    let (_, body) = call(
        &mut s,
        Method::Get,
        "/apis/apps/v1/deployments",
        Some("application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1beta1"),
        None,
    );
    let empty = json_of(&body);
    assert_eq!(empty["apiVersion"], "meta.k8s.io/v1beta1");
    assert_eq!(empty["items"], json!([]));
}

fn watch(s: &mut Cluster, path: &str, accept: &str) -> super::Watcher {
    let auth = alloc::format!("Bearer {TOKEN}");
    let mut req = request(Method::Get, path, &auth);
    req.accept = Some(accept);
    match s.handle_request(T0, &req) {
        Outcome::Watch(w) => *w,
        other => panic!("{:?}", other.into_response()),
    }
}

fn drain(s: &Cluster, w: &mut super::Watcher) -> Vec<u8> {
    let mut out = Vec::new();
    let ring = s.watch_ring();
    while let WatchPoll::Wrote(_) = w.poll(&ring, T0, &mut out, 1000) {}
    out
}

#[test]
fn a_watch_sends_partial_object_metadata_events_in_json_and_protobuf_frames() {
    let mut s = server();
    let path = "/api/v1/namespaces/default/configmaps?watch=1&allowWatchBookmarks=true";
    let mut json_watch = watch(&mut s, path, OBJECT);
    let mut proto_watch = watch(&mut s, path, PROTO_OBJECT);
    assert_eq!(json_watch.content_type(), "application/json");
    assert_eq!(
        proto_watch.content_type(),
        "application/vnd.kubernetes.protobuf;stream=watch"
    );
    assert!(json_watch.wants_bookmarks() && proto_watch.wants_bookmarks());
    call(
        &mut s,
        Method::Delete,
        "/api/v1/namespaces/default/configmaps/b",
        None,
        None,
    );
    let lines = drain(&s, &mut json_watch);
    let events: Vec<Value> = String::from_utf8(lines)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Three initial ADDED, then the deletion marking b (its finalizer holds it).
    assert_eq!(events.len(), 4);
    for event in &events {
        assert_eq!(event["object"]["kind"], "PartialObjectMetadata");
        assert!(event["object"].get("data").is_none());
    }
    assert_eq!(events[3]["type"], "MODIFIED");
    assert!(events[3]["object"]["metadata"]["deletionTimestamp"].is_string());
    let mut bookmark = Vec::new();
    json_watch.write_bookmark(&mut bookmark);
    let bookmark: Value = serde_json::from_slice(&bookmark).unwrap();
    assert_eq!(bookmark["object"]["kind"], "PartialObjectMetadata");

    let mut frames = drain(&s, &mut proto_watch);
    proto_watch.write_bookmark(&mut frames);
    let mut rest = frames.as_slice();
    let mut seen = Vec::new();
    while !rest.is_empty() {
        let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        let event = &rest[4..4 + len];
        rest = &rest[4 + len..];
        // WatchEvent{type=1, object=2 RawExtension{raw=1}}, read by hand.
        let type_len = event[1] as usize;
        let kind = core::str::from_utf8(&event[2..2 + type_len]).unwrap();
        let embedded_start = event[2 + type_len..]
            .windows(4)
            .position(|w| w == b"k8s\0")
            .unwrap()
            + 2
            + type_len;
        let object = crate::protobuf::decode_as(
            "meta.k8s.io/v1",
            "PartialObjectMetadata",
            &event[embedded_start..],
        )
        .unwrap();
        seen.push((String::from(kind), object));
    }
    let kinds: Vec<&str> = seen.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds, ["ADDED", "ADDED", "ADDED", "MODIFIED", "BOOKMARK"]);
    for ((_, ours), event) in seen.iter().zip(&events) {
        assert_eq!(ours["metadata"], event["object"]["metadata"]);
    }
}
