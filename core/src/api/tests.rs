//! Request → response cases against the core alone, in virtual time: no sockets, no clock.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{ApiRequest, Cluster, Method, Outcome, WatchPoll, Watcher};
use crate::{Config, UnixTime};

pub(super) const TOKEN: &str = "admin-secret";
pub(super) const T0: UnixTime = UnixTime::from_secs(1_750_000_000);

pub(super) fn server(config: Config) -> Cluster {
    let config = Config {
        admin_token_sha256: Some(Sha256::digest(TOKEN.as_bytes()).into()),
        ..config
    };
    Cluster::new(config, [7; 32], T0)
}

pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) body: Value,
}

pub(super) fn call(s: &mut Cluster, method: Method, path: &str, body: Option<Value>) -> Reply {
    call_with(s, method, path, body, None)
}

pub(super) fn call_with(
    s: &mut Cluster,
    method: Method,
    path: &str,
    body: Option<Value>,
    content_type: Option<&str>,
) -> Reply {
    call_full(s, method, path, body, content_type, None)
}

/// One request as the administrator at `T0`, with the content type (a merge patch's or JSON by
/// default) and `Accept` given.
pub(super) fn call_full(
    s: &mut Cluster,
    method: Method,
    path: &str,
    body: Option<Value>,
    content_type: Option<&str>,
    accept: Option<&str>,
) -> Reply {
    let bytes = body
        .map(|b| serde_json::to_vec(&b).unwrap())
        .unwrap_or_default();
    let auth = alloc::format!("Bearer {TOKEN}");
    let mut req = ApiRequest::new(method, path);
    req.authorization = Some(&auth);
    req.body = &bytes;
    req.accept = accept;
    let default_type = if method == Method::Patch {
        "application/merge-patch+json"
    } else {
        "application/json"
    };
    req.content_type = content_type.or(Some(default_type));
    let r = crate::cluster::test_harness::answer(s, T0, &req)
        .into_response()
        .expect("not a watch");
    Reply {
        status: r.status,
        body: serde_json::from_slice(&r.body).unwrap_or(Value::Null),
    }
}

pub(super) fn watch(s: &mut Cluster, path: &str) -> Watcher {
    let auth = alloc::format!("Bearer {TOKEN}");
    let mut req = ApiRequest::new(Method::Get, path);
    req.authorization = Some(&auth);
    match s.handle_request(T0, &req) {
        Outcome::Watch(w) => *w,
        outcome => panic!("{path}: {:?}", outcome.into_response()),
    }
}

pub(super) fn events(s: &Cluster, w: &mut Watcher) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    let ring = s.watch_ring();
    while let WatchPoll::Wrote(_) = w.poll(&ring, T0, &mut out, 1000) {}
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let name = v["object"]["metadata"]["name"]
                .as_str()
                .unwrap_or("")
                .into();
            (v["type"].as_str().unwrap().into(), name, v)
        })
        .collect()
}

pub(super) fn cm(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}, "data": {"k": "v"}})
}

#[test]
fn crud_round_trip_sets_server_fields_and_conflicts_on_stale_versions() {
    let mut s = server(Config::default());
    let created = call(
        &mut s,
        Method::Post,
        "/api/v1/namespaces/default/configmaps",
        Some(cm("a", json!({}))),
    );
    assert_eq!(created.status, 201);
    let meta = &created.body["metadata"];
    assert_eq!(meta["uid"].as_str().unwrap().len(), 36);
    assert_eq!(meta["creationTimestamp"], T0.rfc3339());
    let rv = meta["resourceVersion"].as_str().unwrap().to_string();
    let mut update = created.body.clone();
    update["data"]["k"] = json!("w");
    assert_eq!(
        call(
            &mut s,
            Method::Put,
            "/api/v1/namespaces/default/configmaps/a",
            Some(update.clone())
        )
        .status,
        200
    );
    let stale = call(
        &mut s,
        Method::Put,
        "/api/v1/namespaces/default/configmaps/a",
        Some(update),
    );
    assert_eq!(
        (stale.status, stale.body["reason"].as_str()),
        (409, Some("Conflict"))
    );
    let got = call(
        &mut s,
        Method::Get,
        "/api/v1/namespaces/default/configmaps/a",
        None,
    );
    assert_eq!(got.body["data"]["k"], "w");
    assert_ne!(got.body["metadata"]["resourceVersion"], rv.as_str());
    let dup = call(
        &mut s,
        Method::Post,
        "/api/v1/namespaces/default/configmaps",
        Some(cm("a", json!({}))),
    );
    assert_eq!(
        (dup.status, dup.body["reason"].as_str()),
        (409, Some("AlreadyExists"))
    );
    let missing_ns = call(
        &mut s,
        Method::Post,
        "/api/v1/namespaces/nope/configmaps",
        Some(cm("a", json!({}))),
    );
    assert_eq!(
        (missing_ns.status, missing_ns.body["message"].as_str()),
        (404, Some("namespaces \"nope\" not found"))
    );
    assert_eq!(
        call(
            &mut s,
            Method::Delete,
            "/api/v1/namespaces/default/configmaps/a",
            None
        )
        .status,
        200
    );
    assert_eq!(
        call(
            &mut s,
            Method::Get,
            "/api/v1/namespaces/default/configmaps/a",
            None
        )
        .status,
        404
    );
}

#[test]
fn a_no_op_update_keeps_the_revision() {
    let mut s = server(Config::default());
    let created = call(
        &mut s,
        Method::Post,
        "/api/v1/namespaces/default/configmaps",
        Some(cm("a", json!({}))),
    );
    let before = s.store().revision();
    let again = call(
        &mut s,
        Method::Put,
        "/api/v1/namespaces/default/configmaps/a",
        Some(created.body.clone()),
    );
    assert_eq!(again.status, 200);
    assert_eq!(s.store().revision(), before);
    assert_eq!(
        again.body["metadata"]["resourceVersion"],
        created.body["metadata"]["resourceVersion"]
    );
}

#[test]
fn paginated_lists_show_one_snapshot_even_while_objects_change() {
    let mut s = server(Config::default());
    for name in ["a", "b", "c", "d"] {
        call(
            &mut s,
            Method::Post,
            "/api/v1/namespaces/default/configmaps",
            Some(cm(name, json!({}))),
        );
    }
    let first = call(
        &mut s,
        Method::Get,
        "/api/v1/namespaces/default/configmaps?limit=2",
        None,
    );
    let names = |v: &Value| {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&first.body), ["a", "b"]);
    assert_eq!(first.body["metadata"]["remainingItemCount"], 2);
    let token = first.body["metadata"]["continue"]
        .as_str()
        .unwrap()
        .to_string();
    // Changes after the first page: c deleted, d modified, e created.
    call(
        &mut s,
        Method::Delete,
        "/api/v1/namespaces/default/configmaps/c",
        None,
    );
    call(
        &mut s,
        Method::Patch,
        "/api/v1/namespaces/default/configmaps/d",
        Some(json!({"data": {"k": "changed"}})),
    );
    call(
        &mut s,
        Method::Post,
        "/api/v1/namespaces/default/configmaps",
        Some(cm("e", json!({}))),
    );
    let reply = {
        let path = alloc::format!("/api/v1/namespaces/default/configmaps?limit=2&continue={token}");
        call(&mut s, Method::Get, &path, None)
    };
    assert_eq!(
        names(&reply.body),
        ["c", "d"],
        "the page shows the snapshot of the first page"
    );
    assert_eq!(reply.body["items"][1]["data"]["k"], "v");
    assert_eq!(
        reply.body["metadata"]["resourceVersion"],
        first.body["metadata"]["resourceVersion"]
    );
    assert!(reply.body["metadata"]["continue"].is_null());
}

#[test]
fn continue_tokens_expire_with_the_ring_and_reject_resource_versions() {
    let mut s = server(Config {
        watch_ring_capacity: 8,
        ..Config::default()
    });
    for i in 0..3 {
        call(
            &mut s,
            Method::Post,
            "/api/v1/namespaces/default/configmaps",
            Some(cm(&alloc::format!("c{i}"), json!({}))),
        );
    }
    let first = call(
        &mut s,
        Method::Get,
        "/api/v1/namespaces/default/configmaps?limit=1",
        None,
    );
    let token = first.body["metadata"]["continue"]
        .as_str()
        .unwrap()
        .to_string();
    let with_rv = call(
        &mut s,
        Method::Get,
        &alloc::format!("/api/v1/namespaces/default/configmaps?continue={token}&resourceVersion=5"),
        None,
    );
    assert_eq!(with_rv.status, 400);
    for i in 0..10 {
        call(
            &mut s,
            Method::Post,
            "/api/v1/namespaces/default/configmaps",
            Some(cm(&alloc::format!("x{i}"), json!({}))),
        );
    }
    let expired = call(
        &mut s,
        Method::Get,
        &alloc::format!("/api/v1/namespaces/default/configmaps?continue={token}"),
        None,
    );
    assert_eq!(
        (expired.status, expired.body["reason"].as_str()),
        (410, Some("Expired"))
    );
    let garbage = call(
        &mut s,
        Method::Get,
        "/api/v1/namespaces/default/configmaps?continue=%21%21",
        None,
    );
    assert_eq!(garbage.status, 400);
}

#[test]
fn watches_replay_follow_selectors_and_expire() {
    let mut s = server(Config {
        watch_ring_capacity: 16,
        ..Config::default()
    });
    let start = s.store().revision();
    let mut all = watch(
        &mut s,
        &alloc::format!("/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={start}"),
    );
    let mut selected = watch(
        &mut s,
        &alloc::format!(
            "/api/v1/configmaps?watch=1&labelSelector=app%3Dweb&resourceVersion={start}"
        ),
    );
    call(
        &mut s,
        Method::Post,
        "/api/v1/namespaces/default/configmaps",
        Some(cm("a", json!({"app": "web"}))),
    );
    call(
        &mut s,
        Method::Post,
        "/api/v1/namespaces/default/configmaps",
        Some(cm("b", json!({"app": "db"}))),
    );
    call(
        &mut s,
        Method::Patch,
        "/api/v1/namespaces/default/configmaps/a",
        Some(json!({"metadata": {"labels": {"app": "db"}}})),
    );
    call(
        &mut s,
        Method::Patch,
        "/api/v1/namespaces/default/configmaps/b",
        Some(json!({"metadata": {"labels": {"app": "web"}}})),
    );
    call(
        &mut s,
        Method::Delete,
        "/api/v1/namespaces/default/configmaps/b",
        None,
    );
    let kinds = |e: Vec<(String, String, Value)>| {
        e.into_iter()
            .map(|(t, n, _)| alloc::format!("{t} {n}"))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        kinds(events(&s, &mut all)),
        [
            "ADDED a",
            "ADDED b",
            "MODIFIED a",
            "MODIFIED b",
            "DELETED b"
        ]
    );
    // Leaving the selector is a DELETED, entering it an ADDED, as kube-apiserver does.
    assert_eq!(
        kinds(events(&s, &mut selected)),
        ["ADDED a", "DELETED a", "ADDED b", "DELETED b"]
    );

    let mut stale = watch(
        &mut s,
        &alloc::format!("/api/v1/configmaps?watch=1&resourceVersion={start}"),
    );
    for i in 0..20 {
        call(
            &mut s,
            Method::Post,
            "/api/v1/namespaces/default/configmaps",
            Some(cm(&alloc::format!("n{i}"), json!({}))),
        );
    }
    let e = events(&s, &mut stale);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].0, "ERROR");
    assert_eq!(e[0].2["object"]["code"], 410);
    assert!(
        e[0].2["object"]["message"]
            .as_str()
            .unwrap()
            .starts_with(&alloc::format!("too old resource version: {start} ("))
    );
}

#[test]
fn watch_list_sends_initial_state_then_the_end_bookmark() {
    let mut s = server(Config::default());
    call(
        &mut s,
        Method::Post,
        "/api/v1/namespaces/default/configmaps",
        Some(cm("a", json!({}))),
    );
    let refused = {
        let auth = alloc::format!("Bearer {TOKEN}");
        let mut req = ApiRequest::new(
            Method::Get,
            "/api/v1/configmaps?watch=1&sendInitialEvents=true",
        );
        req.authorization = Some(&auth);
        match s.handle_request(T0, &req) {
            Outcome::Watch(_) => 0,
            outcome => outcome.into_response().unwrap().status,
        }
    };
    assert_eq!(
        refused, 422,
        "sendInitialEvents without resourceVersionMatch=NotOlderThan is refused"
    );
    let mut w = watch(
        &mut s,
        "/api/v1/configmaps?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true",
    );
    let e = events(&s, &mut w);
    assert_eq!(e[0].0, "ADDED");
    let bookmark = e.last().unwrap();
    assert_eq!(bookmark.0, "BOOKMARK");
    assert_eq!(
        bookmark.2["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    assert_eq!(
        bookmark.2["object"]["metadata"]["resourceVersion"],
        alloc::format!("{}", s.store().revision())
    );
}

#[test]
fn a_full_store_answers_507_and_keeps_serving() {
    let mut s = server(Config {
        max_objects: 8,
        ..Config::default()
    });
    let mut refused = None;
    for i in 0..10 {
        let r = call(
            &mut s,
            Method::Post,
            "/api/v1/namespaces/default/configmaps",
            Some(cm(&alloc::format!("c{i}"), json!({}))),
        );
        if r.status != 201 {
            refused = Some(r);
            break;
        }
    }
    let refused = refused.expect("the budget is reached");
    assert_eq!(
        (refused.status, refused.body["reason"].as_str()),
        (507, Some("InsufficientStorage"))
    );
    let before = s.store().revision();
    assert_eq!(
        call(&mut s, Method::Get, "/api/v1/configmaps", None).status,
        200
    );
    assert_eq!(s.store().revision(), before);
}

#[test]
fn deleting_a_namespace_terminates_it_then_removes_everything() {
    let mut s = server(Config::default());
    call(
        &mut s,
        Method::Post,
        "/api/v1/namespaces",
        Some(json!({"metadata": {"name": "tmp"}})),
    );
    call(
        &mut s,
        Method::Post,
        "/api/v1/namespaces/tmp/configmaps",
        Some(json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}})),
    );
    call(
        &mut s,
        Method::Post,
        "/api/v1/namespaces/tmp/configmaps",
        Some(cm("free", json!({}))),
    );
    let deleted = call(&mut s, Method::Delete, "/api/v1/namespaces/tmp", None);
    assert_eq!(deleted.body["status"]["phase"], "Terminating");
    let refused = call(
        &mut s,
        Method::Post,
        "/api/v1/namespaces/tmp/configmaps",
        Some(cm("late", json!({}))),
    );
    assert_eq!(
        (refused.status, refused.body["reason"].as_str()),
        (403, Some("Forbidden"))
    );
    assert!(s.poll_timeout().is_some());
    s.handle_timeout(T0);
    assert_eq!(
        call(
            &mut s,
            Method::Get,
            "/api/v1/namespaces/tmp/configmaps/free",
            None
        )
        .status,
        404
    );
    assert_eq!(
        call(&mut s, Method::Get, "/api/v1/namespaces/tmp", None).status,
        200,
        "a finalizer holds the namespace"
    );
    call(
        &mut s,
        Method::Patch,
        "/api/v1/namespaces/tmp/configmaps/held",
        Some(json!({"metadata": {"finalizers": null}})),
    );
    assert_eq!(
        call(
            &mut s,
            Method::Get,
            "/api/v1/namespaces/tmp/configmaps/held",
            None
        )
        .status,
        404
    );
    s.handle_timeout(T0);
    assert_eq!(
        call(&mut s, Method::Get, "/api/v1/namespaces/tmp", None).status,
        404
    );
    // Only the compaction clock is left ticking.
    assert_eq!(s.poll_timeout(), s.compactor.poll_timeout());
}

#[test]
fn unauthenticated_callers_reach_only_public_paths() {
    let mut s = server(Config::default());
    for (path, code) in [
        ("/healthz", 200),
        ("/readyz", 200),
        ("/version", 200),
        ("/api/v1/pods", 401),
        ("/api", 401),
    ] {
        let req = ApiRequest::new(Method::Get, path);
        let Outcome::Response(r) = s.handle_request(T0, &req) else {
            panic!()
        };
        assert_eq!(r.status, code, "{path}");
    }
    let mut req = ApiRequest::new(Method::Get, "/api/v1/pods");
    req.authorization = Some("Bearer wrong");
    let Outcome::Response(r) = s.handle_request(T0, &req) else {
        panic!()
    };
    assert_eq!(r.status, 401);
}

/// A request from kubectl 1.32 (its User-Agent) with an optional content type.
fn kubectl(s: &mut Cluster, method: Method, path: &str, body: Value, content_type: &str) -> Reply {
    let bytes = serde_json::to_vec(&body).unwrap();
    let auth = alloc::format!("Bearer {TOKEN}");
    let mut req = ApiRequest::new(method, path);
    req.authorization = Some(&auth);
    req.user_agent = Some("kubectl/v1.32.4 (linux/amd64) kubernetes/59526cd");
    req.content_type = Some(content_type);
    req.body = &bytes;
    let r = crate::cluster::test_harness::answer(s, T0, &req)
        .into_response()
        .expect("not a watch");
    Reply {
        status: r.status,
        body: serde_json::from_slice(&r.body).unwrap_or(Value::Null),
    }
}

const APPLY: &str = "application/apply-patch+yaml";

fn managers(obj: &Value) -> Vec<(String, String)> {
    obj["metadata"]["managedFields"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|e| {
            (
                e["manager"].as_str().unwrap().to_string(),
                e["operation"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn server_side_apply_records_the_applier_not_the_user_agent() {
    let mut s = server(Config::default());
    let path = "/api/v1/namespaces/default/configmaps/cm";
    let cfg = |data: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": data});
    // Issue 14's report: the applied fields went to "kubectl" (the User-Agent) as Update.
    let created = kubectl(
        &mut s,
        Method::Patch,
        &alloc::format!("{path}?fieldManager=mgr-a"),
        cfg(json!({"key": "1", "other": "1"})),
        APPLY,
    );
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(
        created.body["metadata"]["managedFields"],
        json!([{"manager": "mgr-a", "operation": "Apply", "apiVersion": "v1",
            "time": "2025-06-15T15:06:40Z", "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {"f:key": {}, "f:other": {}}}}])
    );
    // A second applier changing mgr-a's field: 409 naming mgr-a, one cause per field.
    let refused = kubectl(
        &mut s,
        Method::Patch,
        &alloc::format!("{path}?fieldManager=mgr-b"),
        cfg(json!({"key": "2"})),
        APPLY,
    );
    assert_eq!(refused.status, 409);
    assert_eq!(
        refused.body,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "Apply failed with 1 conflict: conflict with \"mgr-a\": .data.key",
            "reason": "Conflict",
            "details": {"causes": [{"reason": "FieldManagerConflict",
                "message": "conflict with \"mgr-a\"", "field": ".data.key"}]},
            "code": 409})
    );
    // Forced, the field moves to mgr-b's Apply entry.
    let forced = kubectl(
        &mut s,
        Method::Patch,
        &alloc::format!("{path}?fieldManager=mgr-b&force=true"),
        cfg(json!({"key": "2"})),
        APPLY,
    );
    assert_eq!(forced.status, 200, "{}", forced.body);
    assert_eq!(
        managers(&forced.body),
        alloc::vec![
            ("mgr-a".into(), "Apply".into()),
            ("mgr-b".into(), "Apply".into())
        ]
    );
    // mgr-a stops applying `other`, which only it owned: gone.
    let pruned = kubectl(
        &mut s,
        Method::Patch,
        &alloc::format!("{path}?fieldManager=mgr-a"),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}}),
        APPLY,
    );
    assert_eq!(pruned.status, 200, "{}", pruned.body);
    assert_eq!(pruned.body["data"], json!({"key": "2"}));
    assert_eq!(
        managers(&pruned.body),
        alloc::vec![("mgr-b".into(), "Apply".into())]
    );
    // A merge patch without fieldManager is managed by the User-Agent's product name.
    let labelled = kubectl(
        &mut s,
        Method::Patch,
        path,
        json!({"metadata": {"labels": {"a": "b"}}}),
        "application/merge-patch+json",
    );
    assert_eq!(
        managers(&labelled.body),
        alloc::vec![
            ("mgr-b".into(), "Apply".into()),
            ("kubectl".into(), "Update".into())
        ]
    );
}

#[test]
fn field_manager_options_are_checked_as_kube_checks_them() {
    let mut s = server(Config::default());
    let path = "/api/v1/namespaces/default/configmaps/cm";
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}});
    let missing = kubectl(&mut s, Method::Patch, path, body.clone(), APPLY);
    assert_eq!(
        missing.body,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
            "reason": "Invalid",
            "details": {"group": "meta.k8s.io", "kind": "PatchOptions",
                "causes": [{"reason": "FieldValueRequired",
                    "message": "Required value: is required for apply patch", "field": "fieldManager"}]},
            "code": 422})
    );
    let long = "m".repeat(129);
    let too_long = kubectl(
        &mut s,
        Method::Post,
        &alloc::format!("/api/v1/namespaces/default/configmaps?fieldManager={long}"),
        body.clone(),
        "application/json",
    );
    assert_eq!(too_long.status, 422);
    assert_eq!(
        too_long.body["message"],
        "CreateOptions.meta.k8s.io \"\" is invalid: fieldManager: Too long: may not be more than 128 bytes"
    );
    let forced = kubectl(
        &mut s,
        Method::Patch,
        &alloc::format!("{path}?force=true"),
        json!({}),
        "application/merge-patch+json",
    );
    assert_eq!(
        forced.body["message"],
        "PatchOptions.meta.k8s.io \"\" is invalid: force: Forbidden: may not be specified for non-apply patch"
    );
    // Applying to the status of a Deployment owns status only; its spec stays as stored.
    let dep = "/apis/apps/v1/namespaces/default/deployments/web";
    let spec = json!({"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]}}});
    let created = kubectl(
        &mut s,
        Method::Patch,
        &alloc::format!("{dep}?fieldManager=owner"),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": spec}),
        APPLY,
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let status = kubectl(
        &mut s,
        Method::Patch,
        &alloc::format!("{dep}/status?fieldManager=reporter"),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 9}, "status": {"observedGeneration": 7}}),
        APPLY,
    );
    assert_eq!(status.status, 200, "{}", status.body);
    assert_eq!(status.body["spec"]["replicas"], 1);
    assert_eq!(status.body["status"]["observedGeneration"], 7);
    let reporter = status.body["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["manager"] == "reporter")
        .cloned()
        .unwrap();
    assert_eq!(reporter["subresource"], "status");
    assert_eq!(
        reporter["fieldsV1"],
        json!({"f:status": {"f:observedGeneration": {}}})
    );
    // Applying to a subresource of a missing object does not create it.
    let status = kubectl(
        &mut s,
        Method::Patch,
        "/api/v1/namespaces/default/pods/nope/status?fieldManager=m",
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "nope"}}),
        APPLY,
    );
    assert_eq!(status.status, 404);
}

#[test]
fn objects_the_server_creates_stay_tracked() {
    // kube's skipNonApplied keeps an object without managedFields untracked; what the server
    // creates itself is owned by its component, so later writes are recorded.
    let mut s = server(Config::default());
    let ns = call(&mut s, Method::Get, "/api/v1/namespaces/default", None);
    assert_eq!(
        managers(&ns.body),
        alloc::vec![("kube-apiserver".into(), "Update".into())]
    );
    let labelled = kubectl(
        &mut s,
        Method::Patch,
        "/api/v1/namespaces/default",
        json!({"metadata": {"labels": {"team": "a"}}}),
        "application/merge-patch+json",
    );
    assert_eq!(
        managers(&labelled.body),
        alloc::vec![
            ("kube-apiserver".into(), "Update".into()),
            ("kubectl".into(), "Update".into())
        ]
    );
}
