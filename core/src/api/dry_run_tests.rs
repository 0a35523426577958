//! `dryRun=All` on every write verb: the answer is the one the write would give, and nothing is
//! kept — no revision, no watch event, no allocation, no controller reaction.

use alloc::string::String;
use alloc::vec::Vec;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{ApiRequest, Cluster, Method, Outcome, WatchPoll};
use crate::{Config, UnixTime};

const TOKEN: &str = "admin-secret";
const T0: UnixTime = UnixTime::from_secs(1_750_000_000);

fn server() -> Cluster {
    let config = Config {
        admin_token_sha256: Some(Sha256::digest(TOKEN.as_bytes()).into()),
        ..Config::default()
    };
    Cluster::new(config, [7; 32], T0)
}

fn call(
    s: &mut Cluster,
    method: Method,
    path: &str,
    body: Option<&Value>,
    content_type: &str,
) -> (u16, Value) {
    let bytes = body
        .map(|b| serde_json::to_vec(b).unwrap())
        .unwrap_or_default();
    let auth = alloc::format!("Bearer {TOKEN}");
    let mut req = ApiRequest::new(method, path);
    req.authorization = Some(&auth);
    req.body = &bytes;
    req.content_type = Some(content_type);
    req.user_agent = Some("kubectl/v1.32.4");
    let r = crate::cluster::test_harness::answer(s, T0, &req)
        .into_response()
        .expect("no watch");
    (
        r.status,
        serde_json::from_slice(&r.body).unwrap_or(Value::Null),
    )
}

const JSON: &str = "application/json";
const MERGE: &str = "application/merge-patch+json";

fn get(s: &mut Cluster, path: &str) -> (u16, Value) {
    call(s, Method::Get, path, None, JSON)
}

/// Everything a write can leave behind: the revision, the number of objects, the allocations
/// and the bytes a watch from the start would stream.
fn footprint(s: &mut Cluster) -> (u64, usize, usize, usize, Vec<u8>) {
    let auth = alloc::format!("Bearer {TOKEN}");
    let mut req = ApiRequest::new(Method::Get, "/api/v1/configmaps?watch=1&resourceVersion=1");
    req.authorization = Some(&auth);
    let Outcome::Watch(mut watcher) = s.handle_request(T0, &req) else {
        panic!("not a watch")
    };
    let mut out = Vec::new();
    let ring = s.watch_ring();
    while let WatchPoll::Wrote(_) = watcher.poll(&ring, T0, &mut out, 1000) {}
    (
        s.store().revision(),
        s.store().len(),
        s.services.counts().0,
        s.services.counts().1,
        out,
    )
}

fn configmap(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}})
}

#[test]
fn a_dry_run_create_answers_the_object_the_create_would_store_and_keeps_nothing() {
    let mut s = server();
    let before = footprint(&mut s);
    let (status, body) = call(
        &mut s,
        Method::Post,
        "/api/v1/namespaces/default/configmaps?dryRun=All&fieldManager=kubectl-create",
        Some(&configmap("a")),
        JSON,
    );
    assert_eq!(status, 201, "{body}");
    let meta = &body["metadata"];
    assert_eq!(meta["uid"].as_str().map(str::len), Some(36));
    assert_eq!(meta["creationTimestamp"], T0.rfc3339());
    assert_eq!(meta["namespace"], "default");
    assert_eq!(meta.get("resourceVersion"), None, "{body}");
    assert_eq!(meta["managedFields"][0]["manager"], "kubectl-create");
    assert_eq!(footprint(&mut s), before);
    assert_eq!(
        get(&mut s, "/api/v1/namespaces/default/configmaps/a").0,
        404
    );

    // generateName is filled in, a Service gets its allocations shown but not kept.
    let service = json!({"metadata": {"generateName": "web-"},
        "spec": {"type": "NodePort", "ports": [{"port": 80}]}});
    let (status, body) = call(
        &mut s,
        Method::Post,
        "/api/v1/namespaces/default/services?dryRun=All",
        Some(&service),
        JSON,
    );
    assert_eq!(status, 201, "{body}");
    assert!(
        body["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with("web-")
    );
    assert!(body["spec"]["clusterIP"].is_string(), "{body}");
    assert!(body["spec"]["ports"][0]["nodePort"].is_number(), "{body}");
    assert_eq!(footprint(&mut s), before);

    // Errors are the real write's: validation, and an existing name.
    let (status, invalid) = call(
        &mut s,
        Method::Post,
        "/api/v1/namespaces/default/pods?dryRun=All",
        Some(&json!({"metadata": {"name": "p"}, "spec": {}})),
        JSON,
    );
    let (_, real) = call(
        &mut s,
        Method::Post,
        "/api/v1/namespaces/default/pods",
        Some(&json!({"metadata": {"name": "p"}, "spec": {}})),
        JSON,
    );
    assert_eq!((status, &invalid), (422, &real));
    let (status, body) = call(
        &mut s,
        Method::Post,
        "/api/v1/namespaces/default/services?dryRun=All",
        Some(&json!({"metadata": {"name": "kubernetes"}, "spec": {"ports": [{"port": 1}]}})),
        JSON,
    );
    assert_eq!(
        (status, body["reason"].as_str()),
        (409, Some("AlreadyExists"))
    );
}

#[test]
fn a_dry_run_of_another_value_is_refused_with_kubes_wording() {
    let mut s = server();
    let before = footprint(&mut s);
    for (method, path, kind) in [
        (
            Method::Post,
            "/api/v1/namespaces/default/configmaps?dryRun=true",
            "CreateOptions",
        ),
        (
            Method::Put,
            "/api/v1/namespaces/default/configmaps/a?dryRun=server",
            "UpdateOptions",
        ),
        (
            Method::Patch,
            "/api/v1/namespaces/default/configmaps/a?dryRun=All&dryRun=x",
            "PatchOptions",
        ),
        (
            Method::Delete,
            "/api/v1/namespaces/default/configmaps/a?dryRun=1",
            "DeleteOptions",
        ),
    ] {
        let (status, body) = call(&mut s, method, path, Some(&configmap("a")), MERGE);
        assert_eq!(status, 422, "{path}: {body}");
        assert_eq!(body["details"]["kind"], kind);
        assert_eq!(body["details"]["group"], "meta.k8s.io");
        assert_eq!(body["details"]["causes"][0]["field"], "dryRun");
    }
    let (status, body) = call(
        &mut s,
        Method::Delete,
        "/api/v1/namespaces/default/services/kubernetes",
        Some(&json!({"dryRun": ["Some"]})),
        JSON,
    );
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        body["message"],
        "DeleteOptions.meta.k8s.io \"\" is invalid: dryRun: Unsupported value: [\"Some\"]: supported values: \"All\""
    );
    assert_eq!(footprint(&mut s), before);
    assert_eq!(
        get(&mut s, "/api/v1/namespaces/default/services/kubernetes").0,
        200
    );
}

#[test]
fn dry_run_updates_patches_and_applies_change_nothing() {
    let mut s = server();
    let (_, created) = call(
        &mut s,
        Method::Post,
        "/api/v1/namespaces/default/configmaps",
        Some(&configmap("a")),
        JSON,
    );
    let stored_rv = created["metadata"]["resourceVersion"].clone();
    let before = footprint(&mut s);
    let base = "/api/v1/namespaces/default/configmaps/a";
    let mut update = created.clone();
    update["data"]["k"] = json!("put");
    let patches: [(Method, String, Value, &str, &str); 6] = [
        (
            Method::Put,
            alloc::format!("{base}?dryRun=All"),
            update,
            JSON,
            "put",
        ),
        (
            Method::Patch,
            alloc::format!("{base}?dryRun=All"),
            json!({"data": {"k": "merge"}}),
            MERGE,
            "merge",
        ),
        (
            Method::Patch,
            alloc::format!("{base}?dryRun=All"),
            json!({"data": {"k": "strategic"}}),
            "application/strategic-merge-patch+json",
            "strategic",
        ),
        (
            Method::Patch,
            alloc::format!("{base}?dryRun=All"),
            json!([{"op": "replace", "path": "/data/k", "value": "json"}]),
            "application/json-patch+json",
            "json",
        ),
        (
            Method::Patch,
            alloc::format!("{base}?dryRun=All&fieldManager=x&force=true"),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "apply"}}),
            "application/apply-patch+yaml",
            "apply",
        ),
        (
            Method::Patch,
            "/api/v1/namespaces/default/configmaps/new?dryRun=All&fieldManager=x".into(),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "new"}, "data": {"k": "apply-new"}}),
            "application/apply-patch+yaml",
            "apply-new",
        ),
    ];
    for (method, path, body, media, want) in &patches {
        let (status, answer) = call(&mut s, *method, path, Some(body), media);
        assert!(matches!(status, 200 | 201), "{path} {media}: {answer}");
        assert_eq!(answer["data"]["k"], *want, "{media}");
        if *want != "apply-new" {
            assert_eq!(answer["metadata"]["resourceVersion"], stored_rv, "{media}");
        }
        assert_eq!(footprint(&mut s), before, "{media} left something behind");
    }
    assert_eq!(get(&mut s, base).1["data"]["k"], "v");
    assert_eq!(
        get(&mut s, "/api/v1/namespaces/default/configmaps/new").0,
        404
    );
}

#[test]
fn dry_run_deletes_answer_like_the_delete_and_keep_the_object() {
    let mut s = server();
    call(
        &mut s,
        Method::Post,
        "/api/v1/namespaces/default/configmaps",
        Some(&configmap("a")),
        JSON,
    );
    let held = json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}});
    call(
        &mut s,
        Method::Post,
        "/api/v1/namespaces/default/configmaps",
        Some(&held),
        JSON,
    );
    call(
        &mut s,
        Method::Post,
        "/api/v1/namespaces",
        Some(&json!({"metadata": {"name": "tmp"}})),
        JSON,
    );
    let before = footprint(&mut s);
    let (status, body) = call(
        &mut s,
        Method::Delete,
        "/api/v1/namespaces/default/configmaps/a?dryRun=All",
        None,
        JSON,
    );
    assert_eq!(
        (status, body["metadata"]["name"].as_str()),
        (200, Some("a"))
    );
    // kubectl sends the dry run in the DeleteOptions body.
    let (status, body) = call(
        &mut s,
        Method::Delete,
        "/api/v1/namespaces/default/configmaps/held",
        Some(&json!({"propagationPolicy": "Background", "dryRun": ["All"]})),
        JSON,
    );
    // kube's handler answers 202 only for `orphanDependents: false`; a held object is 200.
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["metadata"]["deletionTimestamp"], T0.rfc3339());
    let (status, body) = call(
        &mut s,
        Method::Delete,
        "/api/v1/namespaces/default/configmaps/a?dryRun=All&propagationPolicy=Foreground",
        None,
        JSON,
    );
    assert_eq!(status, 200);
    assert_eq!(
        body["metadata"]["finalizers"],
        json!(["foregroundDeletion"])
    );
    let (status, body) = call(
        &mut s,
        Method::Delete,
        "/api/v1/namespaces/tmp?dryRun=All",
        None,
        JSON,
    );
    assert_eq!(
        (status, &body["status"]["phase"]),
        (200, &json!("Terminating"))
    );
    let (status, body) = call(
        &mut s,
        Method::Delete,
        "/api/v1/namespaces/default/configmaps?dryRun=All",
        None,
        JSON,
    );
    assert_eq!(status, 200);
    assert_eq!(body["items"].as_array().map(Vec::len), Some(2), "{body}");
    assert_eq!(footprint(&mut s), before);
    assert!(s.terminating.is_empty());
    assert_eq!(
        get(&mut s, "/api/v1/namespaces/default/configmaps/a").0,
        200
    );
    assert_eq!(
        get(&mut s, "/api/v1/namespaces/default/configmaps/held").1["metadata"]
            .get("deletionTimestamp"),
        None
    );
    assert_eq!(
        get(&mut s, "/api/v1/namespaces/tmp").1["status"]["phase"],
        "Active"
    );
}

#[test]
fn dry_run_subresources_and_controllers_see_nothing() {
    let mut s = server();
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}});
    let (status, _) = call(
        &mut s,
        Method::Post,
        "/apis/apps/v1/namespaces/default/deployments?dryRun=All",
        Some(&deployment),
        JSON,
    );
    assert_eq!(status, 201);
    s.handle_timeout(T0);
    assert_eq!(s.store().count(crate::resource::ResourceId::ReplicaSets), 0);
    assert_eq!(s.store().count(crate::resource::ResourceId::Deployments), 0);

    let pod = json!({"metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]}});
    call(
        &mut s,
        Method::Post,
        "/api/v1/namespaces/default/pods",
        Some(&pod),
        JSON,
    );
    call(
        &mut s,
        Method::Post,
        "/apis/apps/v1/namespaces/default/deployments",
        Some(&deployment),
        JSON,
    );
    let before = footprint(&mut s);
    let stored = |s: &mut Cluster, path: &str| get(s, path).1;
    let pod_before = stored(&mut s, "/api/v1/namespaces/default/pods/p");
    let deployment_before = stored(&mut s, "/apis/apps/v1/namespaces/default/deployments/web");
    let (status, body) = call(
        &mut s,
        Method::Patch,
        "/api/v1/namespaces/default/pods/p/status?dryRun=All",
        Some(&json!({"status": {"phase": "Running"}})),
        MERGE,
    );
    assert_eq!((status, &body["status"]["phase"]), (200, &json!("Running")));
    let (status, body) = call(
        &mut s,
        Method::Post,
        "/api/v1/namespaces/default/pods/p/binding?dryRun=All",
        Some(&json!({"metadata": {"name": "p"}, "target": {"kind": "Node", "name": "n1"}})),
        JSON,
    );
    assert_eq!((status, &body["status"]), (201, &json!("Success")));
    let (status, body) = call(
        &mut s,
        Method::Patch,
        "/apis/apps/v1/namespaces/default/deployments/web/scale?dryRun=All",
        Some(&json!({"spec": {"replicas": 5}})),
        MERGE,
    );
    assert_eq!((status, &body["spec"]["replicas"]), (200, &json!(5)));
    let (status, body) = call(
        &mut s,
        Method::Put,
        "/apis/apps/v1/namespaces/default/deployments/web/scale?dryRun=All",
        Some(&json!({"metadata": {"name": "web"}, "spec": {"replicas": 7}})),
        JSON,
    );
    assert_eq!((status, &body["spec"]["replicas"]), (200, &json!(7)));
    assert_eq!(footprint(&mut s), before);
    assert_eq!(
        stored(&mut s, "/api/v1/namespaces/default/pods/p"),
        pod_before
    );
    assert_eq!(
        stored(&mut s, "/apis/apps/v1/namespaces/default/deployments/web"),
        deployment_before
    );
}
