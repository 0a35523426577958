//! Drives a cluster the way an operator built on kube-rs does: server-side apply with field
//! ownership, a finalizer added and removed by `kube::runtime::finalizer`, a metadata-only
//! watcher, dry runs, and a `Controller` reconciling the ConfigMap each parent owns. Exits
//! non-zero with a message naming the first mismatch.
//!
//!     kubers KUBECONFIG

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::metadata_watcher;
use kube::runtime::watcher::{self, Event};
use kube::{Client, Config, ResourceExt};
use serde_json::{Value, json};

const NS: &str = "default";
/// How long one awaited event or state may take before the run fails.
const LIMIT: Duration = Duration::from_secs(30);

fn fail(message: impl std::fmt::Display) -> ! {
    eprintln!("kubers: FAIL: {message}");
    std::process::exit(1);
}

fn check<T, E: Debug>(result: Result<T, E>, what: &str) -> T {
    result.unwrap_or_else(|e| fail(format!("{what}: {e:?}")))
}

/// The API error (code, reason, message) of a failed call.
fn api_error<T: Debug>(result: Result<T, kube::Error>, what: &str) -> kube::core::ErrorResponse {
    match result {
        Err(kube::Error::Api(status)) => status,
        other => fail(format!("{what}: want an API error, got {other:?}")),
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, path] = args.as_slice() else {
        fail("usage: kubers KUBECONFIG");
    };
    let kubeconfig = check(Kubeconfig::read_from(path), "read kubeconfig");
    let config = check(
        Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await,
        "load kubeconfig",
    );
    let client = check(Client::try_from(config), "client");
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), NS);

    server_side_apply(&cms).await;
    finalizers(&cms).await;
    metadata_only_watcher(&cms).await;
    dry_run(&cms).await;
    controller(client, &cms).await;
    println!("kubers: OK");
}

fn data(cm: &ConfigMap) -> BTreeMap<String, String> {
    cm.data.clone().unwrap_or_default()
}

fn want_data(cm: &ConfigMap, want: &[(&str, &str)], when: &str) {
    let want: BTreeMap<String, String> = want
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if data(cm) != want {
        fail(format!(
            "data of {} {when}: want {want:?}, got {:?}",
            cm.name_any(),
            data(cm)
        ));
    }
}

/// managedFields holds exactly one `Apply` entry per manager in `want` (manager, fieldsV1).
fn want_owners(cm: &ConfigMap, want: &[(&str, Value)], when: &str) {
    let entries = cm.metadata.managed_fields.clone().unwrap_or_default();
    let all = serde_json::to_string(&entries).unwrap_or_default();
    let mut got: BTreeMap<String, Value> = BTreeMap::new();
    for e in &entries {
        let manager = e.manager.clone().unwrap_or_default();
        if e.operation.as_deref() != Some("Apply") {
            fail(format!(
                "managedFields of {} {when}: {manager} has operation {:?}, want Apply (all: {all})",
                cm.name_any(),
                e.operation
            ));
        }
        if e.fields_type.as_deref() != Some("FieldsV1") || e.api_version.as_deref() != Some("v1") {
            fail(format!(
                "managedFields of {} {when}: {manager} is not a v1 FieldsV1 entry: {all}",
                cm.name_any()
            ));
        }
        let fields = e
            .fields_v1
            .as_ref()
            .map(|f| f.0.clone())
            .unwrap_or_default();
        if got.insert(manager.clone(), fields).is_some() {
            fail(format!(
                "managedFields of {} {when}: two entries for {manager}: {all}",
                cm.name_any()
            ));
        }
    }
    let want: BTreeMap<String, Value> = want
        .iter()
        .map(|(m, f)| (m.to_string(), f.clone()))
        .collect();
    if got != want {
        fail(format!(
            "managedFields of {} {when}: want {want:?}, got {all}",
            cm.name_any()
        ));
    }
}

fn apply_body(name: &str, labels: Option<Value>, data: Value) -> Value {
    let mut metadata = json!({"name": name});
    if let Some(labels) = labels {
        metadata["labels"] = labels;
    }
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data})
}

/// (1) Server-side apply: ownership, a conflict naming the owner, force, and removal of fields
/// no longer applied.
async fn server_side_apply(cms: &Api<ConfigMap>) {
    let a = PatchParams::apply("op-a");
    let applied_a = apply_body(
        "ssa",
        Some(json!({"app": "demo"})),
        json!({"a": "1", "b": "2", "c": "3"}),
    );
    let cm = check(
        cms.patch("ssa", &a, &Patch::Apply(&applied_a)).await,
        "op-a applies ssa",
    );
    want_data(
        &cm,
        &[("a", "1"), ("b", "2"), ("c", "3")],
        "after op-a's apply",
    );
    want_owners(
        &cm,
        &[(
            "op-a",
            json!({"f:data": {"f:a": {}, "f:b": {}, "f:c": {}}, "f:metadata": {"f:labels": {"f:app": {}}}}),
        )],
        "after op-a's apply",
    );

    let applied_b = apply_body("ssa", None, json!({"a": "9"}));
    let conflict = api_error(
        cms.patch(
            "ssa",
            &PatchParams::apply("op-b"),
            &Patch::Apply(&applied_b),
        )
        .await,
        "op-b's apply of data.a (owned by op-a)",
    );
    if conflict.code != 409 || conflict.reason != "Conflict" {
        fail(format!(
            "op-b's conflicting apply: want 409 Conflict, got {conflict:?}"
        ));
    }
    if !conflict.message.contains(r#"conflict with "op-a""#)
        || !conflict.message.contains(".data.a")
    {
        fail(format!(
            "op-b's conflict does not name op-a and .data.a: {}",
            conflict.message
        ));
    }
    let cm = check(cms.get("ssa").await, "get ssa after the refused apply");
    want_data(
        &cm,
        &[("a", "1"), ("b", "2"), ("c", "3")],
        "after the refused apply",
    );

    let cm = check(
        cms.patch(
            "ssa",
            &PatchParams::apply("op-b").force(),
            &Patch::Apply(&applied_b),
        )
        .await,
        "op-b force-applies data.a",
    );
    want_data(
        &cm,
        &[("a", "9"), ("b", "2"), ("c", "3")],
        "after op-b's forced apply",
    );
    want_owners(
        &cm,
        &[
            (
                "op-a",
                json!({"f:data": {"f:b": {}, "f:c": {}}, "f:metadata": {"f:labels": {"f:app": {}}}}),
            ),
            ("op-b", json!({"f:data": {"f:a": {}}})),
        ],
        "after op-b's forced apply",
    );

    // op-a stops applying c (its alone: removed) and a (op-b's now: kept).
    let applied_a = apply_body("ssa", Some(json!({"app": "demo"})), json!({"b": "2"}));
    let cm = check(
        cms.patch("ssa", &a, &Patch::Apply(&applied_a)).await,
        "op-a applies without c",
    );
    want_data(
        &cm,
        &[("a", "9"), ("b", "2")],
        "after op-a stopped applying c",
    );
    want_owners(
        &cm,
        &[
            (
                "op-a",
                json!({"f:data": {"f:b": {}}, "f:metadata": {"f:labels": {"f:app": {}}}}),
            ),
            ("op-b", json!({"f:data": {"f:a": {}}})),
        ],
        "after op-a stopped applying c",
    );
    check(
        cms.delete("ssa", &DeleteParams::default()).await,
        "delete ssa",
    );
    println!("kubers: server-side apply ownership, conflict, force and removal OK");
}

/// One pass of kube-rs's finalizer helper over `name` as it is now; which branch it took.
async fn finalizer_pass(cms: &Api<ConfigMap>, name: &str) -> &'static str {
    let obj = Arc::new(check(cms.get(name).await, "get before a finalizer pass"));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let result = finalizer(cms, "kubers.test/cleanup", obj, |event| async move {
        let branch = match event {
            Finalizer::Apply(_) => "apply",
            Finalizer::Cleanup(_) => "cleanup",
        };
        let _ = tx.send(branch);
        Ok::<_, std::convert::Infallible>(Action::await_change())
    })
    .await;
    check(result, "kube-rs finalizer helper");
    rx.try_recv().unwrap_or("none")
}

/// (2) kube-rs's `finalizer` helper: it adds its finalizer with a JSON patch whose `test` op
/// expects `/metadata/finalizers` to be null, reconciles, and after a delete runs the cleanup and
/// removes the finalizer, after which the object is gone.
async fn finalizers(cms: &Api<ConfigMap>) {
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some("fin".into()),
            ..ObjectMeta::default()
        },
        data: Some([("k".to_string(), "v".to_string())].into()),
        ..ConfigMap::default()
    };
    check(cms.create(&PostParams::default(), &cm).await, "create fin");
    // First pass: no finalizer yet, so the helper only adds it (test null + add).
    let branch = finalizer_pass(cms, "fin").await;
    if branch != "none" {
        fail(format!(
            "first finalizer pass: want only the finalizer added, ran {branch}"
        ));
    }
    let cm = check(cms.get("fin").await, "get fin after the first pass");
    if cm.finalizers() != ["kubers.test/cleanup"] {
        fail(format!(
            "finalizers after kube-rs added its own: want [kubers.test/cleanup], got {:?}",
            cm.finalizers()
        ));
    }
    if finalizer_pass(cms, "fin").await != "apply" {
        fail("second finalizer pass: want the reconciler's Apply branch");
    }
    check(
        cms.delete("fin", &DeleteParams::default()).await,
        "delete fin",
    );
    let cm = check(
        cms.get("fin").await,
        "get fin after delete (it has a finalizer)",
    );
    if cm.metadata.deletion_timestamp.is_none() {
        fail("fin after delete: want a deletionTimestamp (Terminating), got none");
    }
    if finalizer_pass(cms, "fin").await != "cleanup" {
        fail("finalizer pass on a deleted object: want the Cleanup branch");
    }
    match cms.get_opt("fin").await {
        Ok(None) => {}
        other => fail(format!(
            "fin after kube-rs removed its finalizer: want it gone, got {other:?}"
        )),
    }
    println!("kubers: finalizer helper OK");
}

/// (3) `metadata_watcher`: the initial list, an add, an update and a delete, each as
/// `PartialObjectMetadata` with the object's name and resourceVersion.
async fn metadata_only_watcher(cms: &Api<ConfigMap>) {
    let labels: BTreeMap<String, String> =
        [("kubers-test".to_string(), "watch".to_string())].into();
    let labelled = |name: &str, data: Option<&str>| ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(labels.clone()),
            ..ObjectMeta::default()
        },
        data: data.map(|d| [("k".to_string(), d.to_string())].into()),
        ..ConfigMap::default()
    };
    let pre = check(
        cms.create(&PostParams::default(), &labelled("watched-before", None))
            .await,
        "create watched-before",
    );
    let config = watcher::Config::default().labels("kubers-test=watch");
    let mut events = metadata_watcher(cms.clone(), config).boxed();
    let mut next = async |what: &str| match tokio::time::timeout(LIMIT, events.try_next()).await {
        Ok(Ok(Some(event))) => event,
        Ok(other) => fail(format!(
            "metadata watcher {what}: stream ended or failed: {other:?}"
        )),
        Err(_) => fail(format!("metadata watcher {what}: no event in {LIMIT:?}")),
    };
    let check_meta = |obj: &kube::core::PartialObjectMeta<ConfigMap>, what: &str| {
        let kind = obj.types.as_ref().map(|t| t.kind.as_str()).unwrap_or("");
        if kind != "PartialObjectMetadata" {
            fail(format!(
                "metadata watcher {what}: kind {kind:?}, want PartialObjectMetadata"
            ));
        }
    };
    // The initial list: Init, then InitApply of watched-before, then InitDone.
    let mut seen_before = false;
    loop {
        match next("initial list").await {
            Event::Init => {}
            Event::InitApply(obj) => {
                if obj.name_any() != "watched-before"
                    || obj.resource_version() != pre.resource_version()
                {
                    fail(format!("initial list: unexpected {:?}", obj.metadata));
                }
                seen_before = true;
            }
            Event::InitDone => break,
            other => fail(format!("initial list: unexpected {other:?}")),
        }
    }
    if !seen_before {
        fail("initial list of the metadata watcher lacks watched-before");
    }

    let created = check(
        cms.create(&PostParams::default(), &labelled("watched", Some("1")))
            .await,
        "create watched",
    );
    match next("add").await {
        Event::Apply(obj)
            if obj.name_any() == "watched"
                && obj.resource_version() == created.resource_version() =>
        {
            check_meta(&obj, "add");
        }
        other => fail(format!(
            "metadata watcher add: want Apply of watched, got {other:?}"
        )),
    }
    let mut changed = created.clone();
    changed.data = Some([("k".to_string(), "2".to_string())].into());
    let updated = check(
        cms.replace("watched", &PostParams::default(), &changed)
            .await,
        "update watched",
    );
    if updated.resource_version() == created.resource_version() {
        fail("update of watched kept its resourceVersion");
    }
    match next("update").await {
        Event::Apply(obj)
            if obj.name_any() == "watched"
                && obj.resource_version() == updated.resource_version() =>
        {
            check_meta(&obj, "update");
        }
        other => fail(format!(
            "metadata watcher update: want Apply of watched, got {other:?}"
        )),
    }
    check(
        cms.delete("watched", &DeleteParams::default()).await,
        "delete watched",
    );
    match next("delete").await {
        Event::Delete(obj) if obj.name_any() == "watched" => {
            check_meta(&obj, "delete");
            if obj.resource_version() == updated.resource_version() {
                fail("metadata watcher delete: want the deletion's resourceVersion");
            }
        }
        other => fail(format!(
            "metadata watcher delete: want Delete of watched, got {other:?}"
        )),
    }
    check(
        cms.delete("watched-before", &DeleteParams::default()).await,
        "delete watched-before",
    );
    match next("delete of watched-before").await {
        Event::Delete(obj) if obj.name_any() == "watched-before" => {}
        other => fail(format!(
            "metadata watcher: want Delete of watched-before, got {other:?}"
        )),
    }
    println!("kubers: metadata-only watcher OK");
}

async fn want_not_found(cms: &Api<ConfigMap>, name: &str, when: &str) {
    match cms.get_opt(name).await {
        Ok(None) => {}
        other => fail(format!("get {name} {when}: want NotFound, got {other:?}")),
    }
}

/// (4) Dry runs (create, apply, merge patch, delete) answer with the object and persist nothing.
async fn dry_run(cms: &Api<ConfigMap>) {
    let dry = PostParams {
        dry_run: true,
        field_manager: None,
    };
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some("dry-create".into()),
            ..ObjectMeta::default()
        },
        data: Some([("k".to_string(), "v".to_string())].into()),
        ..ConfigMap::default()
    };
    let answer = check(cms.create(&dry, &cm).await, "dry-run create");
    want_data(&answer, &[("k", "v")], "dry-run create's answer");
    want_not_found(cms, "dry-create", "after a dry-run create").await;

    let apply = apply_body("dry-apply", None, json!({"k": "v"}));
    let answer = check(
        cms.patch(
            "dry-apply",
            &PatchParams::apply("op-a").dry_run(),
            &Patch::Apply(&apply),
        )
        .await,
        "dry-run apply",
    );
    want_data(&answer, &[("k", "v")], "dry-run apply's answer");
    want_owners(
        &answer,
        &[("op-a", json!({"f:data": {"f:k": {}}}))],
        "dry-run apply's answer",
    );
    want_not_found(cms, "dry-apply", "after a dry-run apply").await;

    // On an existing object: a dry-run apply, merge patch and delete leave it as it was.
    let kept = check(
        cms.patch(
            "dry-apply",
            &PatchParams::apply("op-a"),
            &Patch::Apply(&apply),
        )
        .await,
        "apply dry-apply for real",
    );
    let changed = apply_body("dry-apply", None, json!({"k": "changed"}));
    let answer = check(
        cms.patch(
            "dry-apply",
            &PatchParams::apply("op-a").dry_run(),
            &Patch::Apply(&changed),
        )
        .await,
        "dry-run apply over an existing object",
    );
    want_data(
        &answer,
        &[("k", "changed")],
        "dry-run apply's answer over an existing object",
    );
    let merge = PatchParams {
        dry_run: true,
        ..PatchParams::default()
    };
    let answer = check(
        cms.patch(
            "dry-apply",
            &merge,
            &Patch::Merge(json!({"data": {"m": "x"}})),
        )
        .await,
        "dry-run merge patch",
    );
    want_data(
        &answer,
        &[("k", "v"), ("m", "x")],
        "dry-run merge patch's answer",
    );
    let dry_delete = DeleteParams {
        dry_run: true,
        ..DeleteParams::default()
    };
    check(cms.delete("dry-apply", &dry_delete).await, "dry-run delete");
    let cm = check(
        cms.get("dry-apply").await,
        "get dry-apply after the dry runs",
    );
    want_data(
        &cm,
        &[("k", "v")],
        "after a dry-run apply, patch and delete",
    );
    if cm.resource_version() != kept.resource_version() || cm.metadata.deletion_timestamp.is_some()
    {
        fail(format!(
            "dry runs changed dry-apply: resourceVersion {:?} -> {:?}, deletionTimestamp {:?}",
            kept.resource_version(),
            cm.resource_version(),
            cm.metadata.deletion_timestamp
        ));
    }
    check(
        cms.delete("dry-apply", &DeleteParams::default()).await,
        "delete dry-apply",
    );
    println!("kubers: dry run OK");
}

/// The reconciler: each parent ConfigMap (label `kubers-role=parent`) owns a child ConfigMap
/// `<parent>-child` holding the parent's data, applied server-side by `kubers-controller`.
async fn reconcile(
    parent: Arc<ConfigMap>,
    cms: Arc<Api<ConfigMap>>,
) -> Result<Action, kube::Error> {
    let owner = OwnerReference {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        name: parent.name_any(),
        uid: parent.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    };
    let name = format!("{}-child", parent.name_any());
    let child = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"kubers-role": "child"}, "ownerReferences": [owner]},
        "data": parent.data.clone().unwrap_or_default(),
    });
    cms.patch(
        &name,
        &PatchParams::apply("kubers-controller").force(),
        &Patch::Apply(&child),
    )
    .await?;
    Ok(Action::await_change())
}

fn error_policy(_: Arc<ConfigMap>, error: &kube::Error, _: Arc<Api<ConfigMap>>) -> Action {
    eprintln!("kubers: reconcile error (retried): {error}");
    Action::requeue(Duration::from_secs(1))
}

/// Polls `name` until `accept` holds for it (`None` = absent), or fails after [`LIMIT`].
async fn wait_for(
    cms: &Api<ConfigMap>,
    name: &str,
    what: &str,
    accept: impl Fn(Option<&ConfigMap>) -> bool,
) {
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let got = check(cms.get_opt(name).await, "get while waiting");
        if accept(got.as_ref()) {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            fail(format!(
                "{what}: not reached in {LIMIT:?}; last seen {got:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// (5) A `Controller` over parent ConfigMaps that owns child ConfigMaps: the child appears,
/// follows the parent's data, is recreated when deleted (the owned watch triggers the parent),
/// and goes with its parent (the server's garbage collector).
async fn controller(client: Client, cms: &Api<ConfigMap>) {
    let parents = watcher::Config::default().labels("kubers-role=parent");
    let children = watcher::Config::default().labels("kubers-role=child");
    let context = Arc::new(cms.clone());
    let run = Controller::new(cms.clone(), parents)
        .owns(Api::<ConfigMap>::namespaced(client, NS), children)
        .run(reconcile, error_policy, context)
        .for_each(|_| futures::future::ready(()));
    let handle = tokio::spawn(run);

    let parent = ConfigMap {
        metadata: ObjectMeta {
            name: Some("parent".into()),
            labels: Some([("kubers-role".to_string(), "parent".to_string())].into()),
            ..ObjectMeta::default()
        },
        data: Some([("x".to_string(), "1".to_string())].into()),
        ..ConfigMap::default()
    };
    let parent = check(
        cms.create(&PostParams::default(), &parent).await,
        "create parent",
    );
    let parent_uid = parent.uid().unwrap_or_default();
    let owned_with = move |want: &'static str| {
        let parent_uid = parent_uid.clone();
        move |cm: Option<&ConfigMap>| {
            cm.is_some_and(|cm| {
                data(cm).get("x").map(String::as_str) == Some(want)
                    && cm.owner_references().iter().any(|o| {
                        o.uid == parent_uid && o.controller == Some(true) && o.kind == "ConfigMap"
                    })
            })
        }
    };
    wait_for(
        cms,
        "parent-child",
        "the controller creates parent-child",
        owned_with("1"),
    )
    .await;

    check(
        cms.patch(
            "parent",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"x": "2"}})),
        )
        .await,
        "change the parent's data",
    );
    wait_for(
        cms,
        "parent-child",
        "parent-child follows the parent's data",
        owned_with("2"),
    )
    .await;

    check(
        cms.delete("parent-child", &DeleteParams::default()).await,
        "delete parent-child",
    );
    wait_for(
        cms,
        "parent-child",
        "the controller recreates parent-child",
        owned_with("2"),
    )
    .await;
    let child = check(cms.get("parent-child").await, "get the recreated child");
    let managers: Vec<String> = child
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|e| e.manager)
        .collect();
    if managers != ["kubers-controller"] {
        fail(format!(
            "parent-child's managers: want [kubers-controller], got {managers:?}"
        ));
    }
    handle.abort();

    check(
        cms.delete("parent", &DeleteParams::default()).await,
        "delete parent",
    );
    wait_for(
        cms,
        "parent-child",
        "the garbage collector deletes parent-child",
        |cm| cm.is_none(),
    )
    .await;
    println!("kubers: controller OK");
}
