//! Field ownership against kube's behaviour: the scenarios of structured-merge-diff's own tests
//! (`merge/leaf_test.go`, `set_test.go`, `multiple_appliers_test.go`) and of apimachinery's
//! `managedfields` tests, replayed on the served types, plus the wire details clients read
//! (FieldsV1, entry order, times, conflict messages and causes).

use alloc::string::String;
use alloc::vec::Vec;
use serde_json::{Value, json};

use super::*;
use crate::error::Cause;
use crate::resource::ResourceId as R;

const T0: UnixTime = UnixTime::from_secs(1_731_627_989); // 2024-11-14T23:46:29Z
const T1: UnixTime = UnixTime::from_secs(1_731_628_989); // 2024-11-15T00:03:09Z
const T2: UnixTime = UnixTime::from_secs(1_731_629_989); // 2024-11-15T00:19:49Z

/// A ConfigMap as a client sends it; `data` values stand in for structured-merge-diff's leaves.
fn cm(data: Value) -> Value {
    let mut obj = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "cm", "namespace": "default"}});
    if !data.is_null() {
        obj["data"] = data;
    }
    obj
}

/// What the store adds to every object, which no manager owns and no apply may remove.
fn stored(mut obj: Value) -> Value {
    obj["metadata"]["uid"] = json!("0b5e2c1a-0000-4000-8000-000000000001");
    obj["metadata"]["resourceVersion"] = json!("7");
    obj["metadata"]["creationTimestamp"] = json!("2024-11-14T23:46:29Z");
    obj
}

fn apply(live: Option<&Value>, config: &Value, manager: &str, now: UnixTime) -> Value {
    let out = server_side_apply(R::ConfigMaps, None, None, live, config, manager, false, now)
        .unwrap_or_else(|e| panic!("apply by {manager}: {e}"));
    stored(out)
}

fn force(live: &Value, config: &Value, manager: &str, now: UnixTime) -> Value {
    stored(
        server_side_apply(
            R::ConfigMaps,
            None,
            None,
            Some(live),
            config,
            manager,
            true,
            now,
        )
        .unwrap(),
    )
}

fn conflict(live: &Value, config: &Value, manager: &str) -> (String, Vec<Cause>) {
    match server_side_apply(
        R::ConfigMaps,
        None,
        None,
        Some(live),
        config,
        manager,
        false,
        T2,
    ) {
        Err(Error::ApplyConflict { message, causes }) => (message, causes),
        other => panic!("expected a conflict, got {other:?}"),
    }
}

fn update(old: &Value, mut new: Value, manager: &str, now: UnixTime) -> Value {
    record_update(R::ConfigMaps, None, Some(old), &mut new, manager, None, now);
    new
}

/// `(manager, operation) -> fieldsV1` of every entry.
fn owners(obj: &Value) -> Vec<(String, String, Value)> {
    obj["metadata"]["managedFields"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|e| {
            (
                e["manager"].as_str().unwrap_or_default().into(),
                e["operation"].as_str().unwrap_or_default().into(),
                e["fieldsV1"].clone(),
            )
        })
        .collect()
}

fn managed(obj: &Value) -> Vec<Value> {
    obj["metadata"]["managedFields"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn owner(manager: &str, operation: &str, fields: Value) -> (String, String, Value) {
    (manager.into(), operation.into(), fields)
}

fn entry<'a>(obj: &'a Value, manager: &str) -> &'a Value {
    obj["metadata"]["managedFields"]
        .as_array()
        .and_then(|l| l.iter().find(|e| e["manager"] == manager))
        .unwrap_or(&Value::Null)
}

#[test]
fn leaf_fields_follow_structured_merge_diff() {
    // leaf_test.go "apply_twice": the second configuration is what the applier owns.
    let live = apply(
        None,
        &cm(json!({"numeric": "1", "string": "s"})),
        "default",
        T0,
    );
    let live = apply(
        Some(&live),
        &cm(json!({"numeric": "2", "string": "s", "bool": "false"})),
        "default",
        T1,
    );
    assert_eq!(
        live["data"],
        json!({"numeric": "2", "string": "s", "bool": "false"})
    );
    assert_eq!(
        owners(&live),
        alloc::vec![owner(
            "default",
            "Apply",
            json!({"f:data": {"f:bool": {}, "f:numeric": {}, "f:string": {}}})
        )]
    );

    // "apply_update_apply_no_conflict": a controller's field survives the applier's next apply.
    let live = apply(
        None,
        &cm(json!({"numeric": "1", "string": "s"})),
        "default",
        T0,
    );
    let live = update(
        &live,
        stored(cm(json!({"numeric": "1", "string": "s", "bool": "true"}))),
        "controller",
        T1,
    );
    let live = apply(
        Some(&live),
        &cm(json!({"numeric": "2", "string": "s"})),
        "default",
        T2,
    );
    assert_eq!(
        live["data"],
        json!({"numeric": "2", "string": "s", "bool": "true"})
    );
    assert_eq!(
        owners(&live),
        alloc::vec![
            owner(
                "default",
                "Apply",
                json!({"f:data": {"f:numeric": {}, "f:string": {}}})
            ),
            owner("controller", "Update", json!({"f:data": {"f:bool": {}}})),
        ]
    );

    // "apply_update_apply_with_conflict": the controller took `string`; applying another value
    // conflicts until forced, and forcing moves it back.
    let live = apply(
        None,
        &cm(json!({"numeric": "1", "string": "s"})),
        "default",
        T0,
    );
    let live = update(
        &live,
        stored(cm(
            json!({"numeric": "1", "string": "controller string", "bool": "true"}),
        )),
        "controller",
        T1,
    );
    let config = cm(json!({"numeric": "2", "string": "user string"}));
    let (message, causes) = conflict(&live, &config, "default");
    assert_eq!(
        message,
        "Apply failed with 1 conflict: conflict with \"controller\" using v1: .data.string"
    );
    assert_eq!(
        causes,
        alloc::vec![Cause {
            reason: "FieldManagerConflict",
            message: "conflict with \"controller\" using v1".into(),
            field: ".data.string".into(),
        }]
    );
    let live = force(&live, &config, "default", T2);
    assert_eq!(
        live["data"],
        json!({"numeric": "2", "string": "user string", "bool": "true"})
    );
    assert_eq!(
        owners(&live),
        alloc::vec![
            owner(
                "default",
                "Apply",
                json!({"f:data": {"f:numeric": {}, "f:string": {}}})
            ),
            owner("controller", "Update", json!({"f:data": {"f:bool": {}}})),
        ]
    );

    // "apply_twice_remove": what the applier stops applying goes.
    let live = apply(
        None,
        &cm(json!({"numeric": "1", "string": "s", "bool": "false"})),
        "default",
        T0,
    );
    let live = apply(
        Some(&live),
        &cm(json!({"string": "new string"})),
        "default",
        T1,
    );
    assert_eq!(live["data"], json!({"string": "new string"}));

    // "update_apply_omits": a field an updater took stays when the applier drops it.
    let live = apply(None, &cm(json!({"numeric": "2"})), "default", T0);
    let live = update(&live, stored(cm(json!({"numeric": "1"}))), "controller", T1);
    let live = apply(Some(&live), &cm(Value::Null), "default", T2);
    assert_eq!(live["data"], json!({"numeric": "1"}));
    assert_eq!(
        owners(&live),
        alloc::vec![owner(
            "controller",
            "Update",
            json!({"f:data": {"f:numeric": {}}})
        )]
    );

    // "apply_remove_empty_set": the last field goes, the emptied map with it, and no entry is left.
    let live = apply(None, &cm(json!({"string": "s"})), "default", T0);
    let live = apply(Some(&live), &cm(Value::Null), "default", T1);
    assert!(live.get("data").is_none(), "{live}");
    assert!(live["metadata"].get("managedFields").is_none(), "{live}");
    assert_eq!(
        live["metadata"]["uid"],
        "0b5e2c1a-0000-4000-8000-000000000001"
    );
}

#[test]
fn sets_merge_in_order_and_share_items() {
    let with_finalizers = |f: Value| {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cm", "namespace": "default", "finalizers": f}})
    };
    // set_test.go "apply_update_apply_no_overlap".
    let live = apply(None, &with_finalizers(json!(["a", "c"])), "default", T0);
    let live = update(
        &live,
        stored(with_finalizers(json!(["a", "b", "c", "d"]))),
        "controller",
        T1,
    );
    let live = apply(
        Some(&live),
        &with_finalizers(json!(["a", "aprime", "c", "cprime"])),
        "default",
        T2,
    );
    assert_eq!(
        live["metadata"]["finalizers"],
        json!(["a", "b", "aprime", "c", "d", "cprime"])
    );
    assert_eq!(
        owners(&live),
        alloc::vec![
            owner(
                "default",
                "Apply",
                json!({"f:metadata": {"f:finalizers": {"v:\"a\"": {}, "v:\"aprime\"": {}, "v:\"c\"": {}, "v:\"cprime\"": {}}}})
            ),
            owner(
                "controller",
                "Update",
                json!({"f:metadata": {"f:finalizers": {"v:\"b\"": {}, "v:\"d\"": {}}}})
            ),
        ]
    );
    // "apply_update_apply_with_overlap": applying an item another manager also set is no
    // conflict; both own it.
    let live = apply(None, &with_finalizers(json!(["a", "c"])), "default", T0);
    let live = update(
        &live,
        stored(with_finalizers(json!(["a", "b", "c", "d"]))),
        "controller",
        T1,
    );
    let live = apply(
        Some(&live),
        &with_finalizers(json!(["a", "b", "c"])),
        "default",
        T2,
    );
    assert_eq!(live["metadata"]["finalizers"], json!(["a", "b", "c", "d"]));
    assert_eq!(
        entry(&live, "controller")["fieldsV1"],
        json!({"f:metadata": {"f:finalizers": {"v:\"b\"": {}, "v:\"d\"": {}}}})
    );
}

fn pod(containers: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
        "spec": {"containers": containers}})
}

fn apply_pod(live: Option<&Value>, config: &Value, manager: &str, now: UnixTime) -> Value {
    stored(server_side_apply(R::Pods, None, None, live, config, manager, false, now).unwrap())
}

#[test]
fn multiple_appliers_keep_what_another_owns() {
    // multiple_appliers_test.go "remove_one_keep_one".
    let names = |names: &[&str]| Value::Array(names.iter().map(|n| json!({"name": n})).collect());
    let live = apply_pod(None, &pod(names(&["a", "b", "c"])), "apply-one", T0);
    let live = apply_pod(Some(&live), &pod(names(&["c", "d"])), "apply-two", T1);
    assert_eq!(live["spec"]["containers"], names(&["a", "b", "c", "d"]));
    let live = apply_pod(Some(&live), &pod(names(&["a"])), "apply-one", T2);
    assert_eq!(live["spec"]["containers"], names(&["a", "c", "d"]));
    assert_eq!(
        entry(&live, "apply-one")["fieldsV1"],
        json!({"f:spec": {"f:containers": {"k:{\"name\":\"a\"}": {".": {}, "f:name": {}}}}})
    );
    assert_eq!(
        entry(&live, "apply-two")["fieldsV1"],
        json!({"f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:name": {}},
                                            "k:{\"name\":\"d\"}": {".": {}, "f:name": {}}}}})
    );

    // "unset_complex_sole_owner": a struct the applier alone set goes whole when it stops.
    let dep = |strategy: Value| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"replicas": 1, "strategy": strategy}})
    };
    let live = stored(
        server_side_apply(
            R::Deployments,
            None,
            None,
            None,
            &dep(json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 2}})),
            "apply-one",
            false,
            T0,
        )
        .unwrap(),
    );
    let next = server_side_apply(
        R::Deployments,
        None,
        None,
        Some(&live),
        &dep(json!({"type": "RollingUpdate"})),
        "apply-one",
        false,
        T1,
    )
    .unwrap();
    assert_eq!(next["spec"]["strategy"], json!({"type": "RollingUpdate"}));
    // "unset_complex_shared_with_applier": kept while another applier owns part of it.
    let live = stored(
        server_side_apply(
            R::Deployments,
            None,
            None,
            Some(&live),
            &dep(json!({"rollingUpdate": {"maxSurge": 2}})),
            "apply-two",
            false,
            T1,
        )
        .unwrap(),
    );
    let next = server_side_apply(
        R::Deployments,
        None,
        None,
        Some(&live),
        &dep(json!({"type": "RollingUpdate"})),
        "apply-one",
        false,
        T2,
    )
    .unwrap();
    assert_eq!(
        next["spec"]["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 2}})
    );
}

#[test]
fn defaulted_fields_survive_pruning_and_dangling_items_go() {
    // The server defaulted imagePullPolicy inside a container the applier owns: nobody owns it,
    // it stays while the container stays, and goes with the container.
    let config = |containers: Value| pod(containers);
    let live = apply_pod(
        None,
        &config(json!([{"name": "a", "image": "x"}, {"name": "b", "image": "y"}])),
        "mgr",
        T0,
    );
    let mut defaulted = live.clone();
    defaulted["spec"]["containers"][0]["imagePullPolicy"] = json!("Always");
    defaulted["spec"]["containers"][1]["imagePullPolicy"] = json!("Always");
    defaulted["spec"]["restartPolicy"] = json!("Always");
    let next = apply_pod(
        Some(&defaulted),
        &config(json!([{"name": "a", "image": "x2"}])),
        "mgr",
        T1,
    );
    assert_eq!(
        next["spec"],
        json!({"containers": [{"name": "a", "image": "x2", "imagePullPolicy": "Always"}],
               "restartPolicy": "Always"})
    );
}

#[test]
fn conflicts_list_every_field_by_manager_and_name_subresources() {
    // Two updaters own fields the applier changes: grouped by manager identity, sorted.
    let live = apply(
        None,
        &cm(json!({"a": "1", "b": "1", "c": "1"})),
        "owner",
        T0,
    );
    let live = update(
        &live,
        stored(cm(json!({"a": "2", "b": "2", "c": "1"}))),
        "zeta",
        T1,
    );
    let live = update(
        &live,
        stored(cm(json!({"a": "2", "b": "2", "c": "3"}))),
        "alpha",
        T1,
    );
    let (message, causes) = conflict(&live, &cm(json!({"a": "9", "b": "9", "c": "9"})), "owner");
    assert_eq!(
        message,
        "Apply failed with 3 conflicts: conflicts with \"alpha\" using v1:\n- .data.c\n\
         conflicts with \"zeta\" using v1:\n- .data.a\n- .data.b"
    );
    let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(fields, alloc::vec![".data.c", ".data.a", ".data.b"]);
    // The Status: 409 Conflict, causes only in the details.
    let status = Error::ApplyConflict {
        message: message.clone(),
        causes,
    }
    .to_status();
    assert_eq!(status["code"], 409);
    assert_eq!(status["reason"], "Conflict");
    assert_eq!(
        status["details"],
        json!({"causes": [
            {"reason": "FieldManagerConflict", "message": "conflict with \"alpha\" using v1", "field": ".data.c"},
            {"reason": "FieldManagerConflict", "message": "conflict with \"zeta\" using v1", "field": ".data.a"},
            {"reason": "FieldManagerConflict", "message": "conflict with \"zeta\" using v1", "field": ".data.b"}]})
    );

    // An applier conflicts with another applier (no "using"), and a status writer is named by
    // its subresource.
    let node = json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "n", "labels": {"zone": "a"}}, "status": {"capacity": {"cpu": "1"}}});
    let mut live = stored(node.clone());
    record_update(R::Nodes, None, None, &mut live, "creator", None, T0);
    let mut next = live.clone();
    next["status"]["capacity"]["cpu"] = json!("2");
    record_update(
        R::Nodes,
        None,
        Some(&live),
        &mut next,
        "kubelet",
        Some("status"),
        T1,
    );
    let err = server_side_apply(
        R::Nodes,
        None,
        Some("status"),
        Some(&next),
        &json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"},
                "status": {"capacity": {"cpu": "4"}}}),
        "ops",
        false,
        T2,
    )
    .unwrap_err();
    assert_eq!(
        err.message(),
        "Apply failed with 1 conflict: conflict with \"kubelet\" with subresource \"status\" using v1: .status.capacity.cpu"
    );
}

#[test]
fn times_change_only_with_the_object() {
    let config = cm(json!({"a": "1"}));
    let live = apply(None, &config, "first", T0);
    assert_eq!(entry(&live, "first")["time"], "2024-11-14T23:46:29Z");
    // The same configuration again changes nothing: the time stays.
    let again = apply(Some(&live), &config, "first", T1);
    assert_eq!(again, live);
    // A second applier of the same values shares ownership; the object did not change, so kube
    // writes its entry without a time.
    let shared = apply(Some(&live), &config, "second", T1);
    assert_eq!(shared["data"], live["data"]);
    assert!(entry(&shared, "second").get("time").is_none(), "{shared}");
    assert_eq!(
        entry(&shared, "second")["fieldsV1"],
        json!({"f:data": {"f:a": {}}})
    );
    // Entries sort by operation, then time (none first), then manager.
    let order: Vec<&str> = shared["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["manager"].as_str().unwrap())
        .collect();
    assert_eq!(order, alloc::vec!["second", "first"]);
    // A changing apply stamps the new time.
    let changed = apply(Some(&live), &cm(json!({"a": "2"})), "first", T2);
    assert_eq!(entry(&changed, "first")["time"], "2024-11-15T00:19:49Z");
    assert_eq!(entry(&changed, "first")["apiVersion"], "v1");
    assert_eq!(entry(&changed, "first")["fieldsType"], "FieldsV1");
}

#[test]
fn apply_to_an_object_without_ownership_records_before_first_apply() {
    // Created before managedFields existed (or cleared): its fields get an owner first, which
    // the applier then conflicts with.
    let live = stored(cm(json!({"a": "1", "b": "1"})));
    let (message, _) = conflict(&live, &cm(json!({"a": "2"})), "mgr");
    assert_eq!(
        message,
        "Apply failed with 1 conflict: conflict with \"before-first-apply\" using v1: .data.a"
    );
    let next = force(&live, &cm(json!({"a": "2"})), "mgr", T1);
    assert_eq!(
        owners(&next),
        alloc::vec![
            owner("mgr", "Apply", json!({"f:data": {"f:a": {}}})),
            owner(
                "before-first-apply",
                "Update",
                json!({"f:data": {".": {}, "f:b": {}}})
            ),
        ]
    );
    // An update of such an object does not start tracking.
    let updated = update(&live, stored(cm(json!({"a": "3"}))), "editor", T1);
    assert!(
        updated["metadata"].get("managedFields").is_none(),
        "{updated}"
    );
}

#[test]
fn client_sent_managed_fields_follow_kube_rules() {
    let mut live = stored(cm(json!({"a": "1"})));
    record_update(R::ConfigMaps, None, None, &mut live, "creator", None, T0);
    let entries = live["metadata"]["managedFields"].clone();
    // Absent or null: the stored list is kept.
    let mut body = live.clone();
    body["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("managedFields");
    body["data"]["b"] = json!("2");
    let next = update(&live, body.clone(), "editor", T1);
    assert_eq!(
        entry(&next, "creator")["fieldsV1"],
        json!({"f:data": {".": {}, "f:a": {}}})
    );
    assert_eq!(
        entry(&next, "editor")["fieldsV1"],
        json!({"f:data": {"f:b": {}}})
    );
    body["metadata"]["managedFields"] = Value::Null;
    assert_eq!(update(&live, body.clone(), "editor", T1), next);
    // `[]` and `[{}]` clear it, and the object stays untracked.
    for reset in [json!([]), json!([{}])] {
        body["metadata"]["managedFields"] = reset;
        let next = update(&live, body.clone(), "editor", T1);
        assert!(next["metadata"].get("managedFields").is_none(), "{next}");
    }
    // A readable list replaces the stored one (kubectl's client-side-apply migration does this).
    let mut renamed = entries.clone();
    renamed[0]["manager"] = json!("kubectl");
    renamed[0]["operation"] = json!("Apply");
    let mut body = live.clone();
    body["metadata"]["managedFields"] = renamed;
    let next = update(&live, body, "kubectl", T1);
    assert_eq!(
        owners(&next),
        alloc::vec![owner(
            "kubectl",
            "Apply",
            json!({"f:data": {".": {}, "f:a": {}}})
        )]
    );
    // An unreadable one is ignored in favour of the stored list.
    for bad in [
        json!([{"manager": "x", "operation": "Patch", "apiVersion": "v1", "fieldsType": "FieldsV1"}]),
        json!([{"manager": "x", "operation": "Update", "fieldsType": "FieldsV1"}]),
        json!([{"manager": "x", "operation": "Update", "apiVersion": "v1"}]),
        json!([{"manager": "x", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1",
                "fieldsV1": {"k:{": {}}}]),
    ] {
        let mut body = live.clone();
        body["metadata"]["managedFields"] = bad;
        assert_eq!(update(&live, body, "kubectl", T1), live);
    }
    // A subresource write never sets ownership from its body.
    let mut pod_live = stored(pod(json!([{"name": "c", "image": "i"}])));
    record_update(R::Pods, None, None, &mut pod_live, "creator", None, T0);
    let mut status = pod_live.clone();
    status["status"] = json!({"phase": "Running"});
    status["metadata"]["managedFields"] = json!([]);
    record_update(
        R::Pods,
        None,
        Some(&pod_live),
        &mut status,
        "kubelet",
        Some("status"),
        T1,
    );
    assert_eq!(
        owners(&status),
        alloc::vec![
            owner(
                "creator",
                "Update",
                json!({"f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:image": {}, "f:name": {}}}}})
            ),
            owner("kubelet", "Update", json!({"f:status": {"f:phase": {}}})),
        ]
    );
    assert_eq!(entry(&status, "kubelet")["subresource"], "status");
}

#[test]
fn updates_record_their_manager_or_unknown_and_drop_foreign_versions() {
    let mut created = stored(cm(json!({"a": "1"})));
    record_update(R::ConfigMaps, None, None, &mut created, "", None, T0);
    assert_eq!(entry(&created, "unknown")["operation"], "Update");
    // An entry of a version the server does not serve is forgotten on the next write.
    let mut live = created.clone();
    live["metadata"]["managedFields"]
        .as_array_mut()
        .unwrap()
        .push(
            json!({"manager": "old", "operation": "Update", "apiVersion": "v1beta1",
            "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:z": {}}}}),
        );
    let next = update(&live, stored(cm(json!({"a": "2"}))), "editor", T1);
    assert!(entry(&next, "old").is_null(), "{next}");
    assert_eq!(
        entry(&next, "editor")["fieldsV1"],
        json!({"f:data": {"f:a": {}}})
    );
}

#[test]
fn scale_writes_own_replicas_without_a_time() {
    let dep = |replicas: u64| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "c"}]}}}})
    };
    let mut live = stored(dep(1));
    record_update(
        R::Deployments,
        None,
        None,
        &mut live,
        "kubectl-create",
        None,
        T0,
    );
    let mut scaled = live.clone();
    scaled["spec"]["replicas"] = json!(3);
    record_update(
        R::Deployments,
        None,
        Some(&live),
        &mut scaled,
        "kubectl-scale",
        Some("scale"),
        T1,
    );
    assert_eq!(
        owners(&scaled)[0],
        owner(
            "kubectl-scale",
            "Update",
            json!({"f:spec": {"f:replicas": {}}})
        )
    );
    let scale_entry = entry(&scaled, "kubectl-scale");
    assert_eq!(scale_entry["subresource"], "scale");
    assert_eq!(scale_entry["apiVersion"], "apps/v1");
    assert!(scale_entry.get("time").is_none());
    assert!(
        entry(&scaled, "kubectl-create")["fieldsV1"]["f:spec"]
            .get("f:replicas")
            .is_none()
    );
    // The same value again moves nothing.
    let mut again = scaled.clone();
    record_update(
        R::Deployments,
        None,
        Some(&scaled),
        &mut again,
        "other",
        Some("scale"),
        T2,
    );
    assert_eq!(again, scaled);
}

#[test]
fn kubectl_server_side_apply_takes_over_from_client_side_apply() {
    // `kubectl apply` (client side) created it; `kubectl apply --server-side` later changes
    // a field client-side apply set and the object still has as it was set: no conflict, and
    // the annotation follows.
    let manifest = cm(json!({"a": "1", "b": "1"}));
    let mut last = String::new();
    super::fieldpath::go_json(&manifest, &mut last);
    last.push('\n');
    let mut live = manifest.clone();
    live["metadata"]["annotations"] =
        json!({"kubectl.kubernetes.io/last-applied-configuration": last});
    let mut live = stored(live);
    record_update(
        R::ConfigMaps,
        None,
        None,
        &mut live,
        "kubectl-client-side-apply",
        None,
        T0,
    );
    let config = cm(json!({"a": "2", "b": "1"}));
    let next = stored(
        server_side_apply(
            R::ConfigMaps,
            None,
            None,
            Some(&live),
            &config,
            "kubectl",
            false,
            T1,
        )
        .unwrap(),
    );
    assert_eq!(next["data"], json!({"a": "2", "b": "1"}));
    let mut expected = String::new();
    super::fieldpath::go_json(&config, &mut expected);
    expected.push('\n');
    assert_eq!(
        next["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"],
        Value::String(expected)
    );
    // Another manager name gets no such bridge.
    assert_eq!(
        server_side_apply(
            R::ConfigMaps,
            None,
            None,
            Some(&live),
            &config,
            "helm",
            false,
            T1
        )
        .unwrap_err()
        .code(),
        409
    );
    // A field someone changed since client-side apply set it still conflicts.
    let edited = update(
        &live,
        {
            let mut e = live.clone();
            e["data"]["b"] = json!("edited");
            e
        },
        "kubectl-edit",
        T1,
    );
    let (message, _) = conflict(&edited, &cm(json!({"a": "2", "b": "3"})), "kubectl");
    assert_eq!(
        message,
        "Apply failed with 1 conflict: conflict with \"kubectl-edit\" using v1: .data.b"
    );
}

#[test]
fn apply_refuses_what_kube_refuses() {
    let cases: &[(Value, u16, &str)] = &[
        (
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "cm"}}),
            400,
            "invalid object type: /v1, Kind=Secret",
        ),
        (
            json!({"metadata": {"name": "cm"}}),
            400,
            "invalid object type: /, Kind=",
        ),
        (
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "managedFields": []}}),
            400,
            "metadata.managedFields must be nil",
        ),
    ];
    for (config, code, message) in cases {
        let err =
            server_side_apply(R::ConfigMaps, None, None, None, config, "m", false, T0).unwrap_err();
        assert_eq!((err.code(), err.message().as_str()), (*code, *message));
    }
    // A configuration that does not fit its type: kube's unclassified 500, worded as kube.
    let dup = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"template": {"spec": {"containers": [
            {"name": "c", "ports": [{"containerPort": 93}, {"containerPort": 93, "protocol": "TCP"}],
             "env": [{"name": "FOO"}, {"name": "FOO"}]}]}}}});
    let err =
        server_side_apply(R::Deployments, None, None, None, &dup, "m", false, T0).unwrap_err();
    assert_eq!(err.code(), 500);
    assert_eq!(
        err.message(),
        "failed to create typed patch object (default/web; apps/v1, Kind=Deployment): errors:\n  \
         .spec.template.spec.containers[name=\"c\"].env: duplicate entries for key [name=\"FOO\"]\n  \
         .spec.template.spec.containers[name=\"c\"].ports: duplicate entries for key [containerPort=93,protocol=\"TCP\"]"
    );
    assert!(err.to_status().get("reason").is_none());
}

#[test]
fn status_subresource_apply_owns_status_only() {
    let mut live = stored(pod(json!([{"name": "c", "image": "i"}])));
    record_update(R::Pods, None, None, &mut live, "creator", None, T0);
    let config = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "changed"}]},
        "status": {"phase": "Running"}});
    let next = server_side_apply(
        R::Pods,
        None,
        Some("status"),
        Some(&live),
        &config,
        "kubelet",
        false,
        T1,
    )
    .unwrap();
    assert_eq!(next["status"], json!({"phase": "Running"}));
    // The configuration's spec is merged (admission sees it; the status strategy of the write
    // puts the stored spec back) but not owned, so it is no conflict either.
    assert_eq!(next["spec"]["containers"][0]["image"], "changed");
    let e = entry(&next, "kubelet");
    assert_eq!(
        (
            e["operation"].clone(),
            e["subresource"].clone(),
            e["fieldsV1"].clone()
        ),
        (
            json!("Apply"),
            json!("status"),
            json!({"f:status": {"f:phase": {}}})
        )
    );
    // And the main resource's apply does not own status (the write resets it).
    let main =
        server_side_apply(R::Pods, None, None, Some(&live), &config, "mgr", true, T1).unwrap();
    assert!(entry(&main, "mgr")["fieldsV1"].get("f:status").is_none());
    assert!(entry(&main, "mgr")["fieldsV1"]["f:spec"].is_object());
}

#[test]
fn create_by_apply_has_only_the_apply_entry() {
    let config = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx",
                    "ports": [{"containerPort": 80}]}]}}}});
    let created = server_side_apply(
        R::Deployments,
        None,
        None,
        None,
        &config,
        "kubectl",
        false,
        T0,
    )
    .unwrap();
    assert_eq!(
        created["metadata"]["managedFields"],
        json!([{"manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1",
            "time": "2024-11-14T23:46:29Z", "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {"f:replicas": {}, "f:selector": {},
                    "f:template": {"f:metadata": {"f:labels": {"f:app": {}}},
                        "f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {
                            ".": {}, "f:image": {}, "f:name": {},
                            "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {
                                ".": {}, "f:containerPort": {}}}}}}}}}}])
    );
}

#[test]
fn nulls_in_a_configuration_clear_what_they_name() {
    let dep = |replicas: Value| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"}, "spec": {"replicas": replicas}})
    };
    let live = stored(
        server_side_apply(
            R::Deployments,
            None,
            None,
            None,
            &dep(json!(3)),
            "m",
            false,
            T0,
        )
        .unwrap(),
    );
    // A null scalar leaves the field out (the API then defaults it); the applier owns it.
    let next = server_side_apply(
        R::Deployments,
        None,
        None,
        Some(&live),
        &dep(Value::Null),
        "m",
        false,
        T1,
    )
    .unwrap();
    assert_eq!(next["spec"], json!({}));
    assert_eq!(
        entry(&next, "m")["fieldsV1"],
        json!({"f:spec": {"f:replicas": {}}})
    );
    // `data: null` in place of data the applier owned: its items go, the map with them.
    let live = apply(None, &cm(json!({"a": "1"})), "m", T0);
    let mut config = cm(Value::Null);
    config["data"] = Value::Null;
    let next = apply(Some(&live), &config, "m", T1);
    assert!(next.get("data").is_none(), "{next}");
    assert_eq!(entry(&next, "m")["fieldsV1"], json!({"f:data": {}}));
}

#[test]
fn record_update_on_create_matches_kube_fieldsv1() {
    // kubectl create configmap cm --from-literal=key=v (fieldManager=kubectl-create).
    let mut cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "cm", "namespace": "default", "labels": {"app": "x"}},
        "data": {"key": "v"}});
    record_update(
        R::ConfigMaps,
        None,
        None,
        &mut cm,
        "kubectl-create",
        None,
        T0,
    );
    assert_eq!(
        managed(&cm),
        alloc::vec![
            json!({"manager": "kubectl-create", "operation": "Update", "apiVersion": "v1",
            "time": "2024-11-14T23:46:29Z", "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {".": {}, "f:key": {}},
                         "f:metadata": {"f:labels": {".": {}, "f:app": {}}}}})
        ]
    );
    // A pod: f:spec has no "." (a Go struct is never absent); containers items do.
    let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "nginx", "image": "nginx", "resources": {}}]},
        "status": {"phase": "Pending"}});
    record_update(R::Pods, None, None, &mut pod, "kubectl-run", None, T0);
    assert_eq!(
        entry(&pod, "kubectl-run")["fieldsV1"],
        json!({"f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {
            ".": {}, "f:image": {}, "f:name": {}, "f:resources": {}}}}})
    );
}

#[test]
fn record_update_moves_ownership_and_merges_entries() {
    let old = {
        let mut d = super::tests::deployment();
        record_update(
            R::Deployments,
            None,
            None,
            &mut d,
            "kubectl-create",
            None,
            T0,
        );
        d
    };
    // kubectl edit changes the image: the field moves from kubectl-create to kubectl-edit.
    let mut new = old.clone();
    new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.16");
    record_update(
        R::Deployments,
        None,
        Some(&old),
        &mut new,
        "kubectl-edit",
        None,
        T1,
    );
    let image = "k:{\"name\":\"nginx\"}";
    assert_eq!(
        entry(&new, "kubectl-edit")["fieldsV1"],
        json!({"f:spec": {"f:template": {"f:spec": {"f:containers": {image: {"f:image": {}}}}}}})
    );
    assert_eq!(entry(&new, "kubectl-edit")["time"], "2024-11-15T00:03:09Z");
    let create = &entry(&new, "kubectl-create")["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
        [image];
    assert!(create.get("f:image").is_none());
    assert!(create.get("f:name").is_some());

    // The same manager again: one entry, union of both writes.
    let old2 = new.clone();
    new["spec"]["replicas"] = json!(3);
    record_update(
        R::Deployments,
        None,
        Some(&old2),
        &mut new,
        "kubectl-edit",
        None,
        T1,
    );
    let edits: Vec<_> = managed(&new)
        .into_iter()
        .filter(|e| e["manager"] == "kubectl-edit")
        .collect();
    assert_eq!(edits.len(), 1);
    assert!(edits[0]["fieldsV1"]["f:spec"]["f:replicas"].is_object());

    // A write that changes nothing adds no entry.
    let before = new.clone();
    record_update(
        R::Deployments,
        None,
        Some(&before),
        &mut new,
        "noop",
        None,
        T1,
    );
    assert_eq!(new, before);

    // Status subresource: only status counts, under its own entry.
    let old3 = new.clone();
    new["status"] = json!({"replicas": 3});
    new["spec"]["replicas"] = json!(9);
    record_update(
        R::Deployments,
        None,
        Some(&old3),
        &mut new,
        "kube-controller-manager",
        Some("status"),
        T1,
    );
    let e = entry(&new, "kube-controller-manager");
    assert_eq!(e["subresource"], "status");
    assert_eq!(e["fieldsV1"], json!({"f:status": {"f:replicas": {}}}));

    // Removing a field drops it from its owner.
    let old4 = new.clone();
    new["metadata"]["labels"] = json!(null);
    new["metadata"].as_object_mut().unwrap().remove("labels");
    record_update(
        R::Deployments,
        None,
        Some(&old4),
        &mut new,
        "kubectl-edit",
        None,
        T1,
    );
    assert!(
        entry(&new, "kubectl-create")["fieldsV1"]["f:metadata"]
            .get("f:labels")
            .is_none()
    );
}

#[test]
fn record_update_caps_update_managers() {
    // capmanagers.go: 13 updaters, sorted by time then identity; the oldest becomes the
    // `ancient-changes` bucket and the next ones merge into it until ten are left.
    let mut obj = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "cm"}, "data": {}});
    record_update(R::ConfigMaps, None, None, &mut obj, "creator", None, T0);
    for i in 0..12u64 {
        let old = obj.clone();
        obj["data"][alloc::format!("k{i}")] = json!("v");
        record_update(
            R::ConfigMaps,
            None,
            Some(&old),
            &mut obj,
            &alloc::format!("m{i:02}"),
            None,
            T0.plus_secs(i),
        );
    }
    let list = managed(&obj);
    assert_eq!(list.len(), 10);
    assert_eq!(
        list[0],
        json!({"manager": "ancient-changes", "operation": "Update", "apiVersion": "v1",
            "time": "2024-11-14T23:46:31Z", "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {".": {}, "f:k0": {}, "f:k1": {}, "f:k2": {}}}})
    );
    let rest: Vec<&str> = list[1..]
        .iter()
        .map(|e| e["manager"].as_str().unwrap())
        .collect();
    assert_eq!(
        rest,
        alloc::vec![
            "m03", "m04", "m05", "m06", "m07", "m08", "m09", "m10", "m11"
        ]
    );
}

#[test]
fn a_map_pruning_empties_still_counts_as_present_for_its_owner() {
    // Checked against kube-apiserver 1.32: x owns `data` itself (it applied `data: null`),
    // y owned `data.k` and stops applying it. Pruning empties `data`, which kube compares as
    // null (not absent), so x keeps `f:data`; the stored object has no `data`.
    // y also stops applying its label: pruning reaches into metadata, which y's own
    // `metadata.name` keeps (server metadata is stripped from the set only afterwards).
    let c = |labels: Value, data: Value| {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "labels": labels}, "data": data})
    };
    let live = apply(None, &c(json!({"a": "1"}), json!({"k": "v"})), "x", T0);
    let live = apply(
        Some(&live),
        &c(json!({"a": "1"}), json!({"k": "v"})),
        "y",
        T0,
    );
    let live = apply(
        Some(&live),
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": null}),
        "x",
        T1,
    );
    assert_eq!(live["data"], json!({"k": "v"}));
    let next = apply(
        Some(&live),
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}),
        "y",
        T2,
    );
    assert!(next.get("data").is_none(), "{next}");
    assert!(next["metadata"].get("labels").is_none(), "{next}");
    assert_eq!(next["metadata"]["name"], "c");
    assert_eq!(
        owners(&next),
        alloc::vec![owner("x", "Apply", json!({"f:data": {}}))]
    );
}

#[test]
fn large_keyed_lists_stay_fast() {
    // ~50k items fit in a 3 MiB body; lookups by key must not be quadratic.
    let env: Vec<Value> = (0..50_000)
        .map(|i| json!({"name": alloc::format!("V{i}"), "value": "x"}))
        .collect();
    let pod = |env: &[Value]| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
               "spec": {"containers": [{"name": "c", "image": "i", "env": env}]}})
    };
    let mut patched_env = env.clone();
    patched_env.reverse();
    let mut created = pod(&env);
    record_update(
        R::Pods,
        None,
        None,
        &mut created,
        "kubectl-create",
        None,
        T0,
    );
    let applied = server_side_apply(
        R::Pods,
        None,
        None,
        Some(&created),
        &pod(&patched_env),
        "kubectl",
        true,
        T1,
    )
    .unwrap();
    assert_eq!(
        applied["spec"]["containers"][0]["env"]
            .as_array()
            .unwrap()
            .len(),
        50_000
    );
}

/// A CronJob as a client applies it: one container per name in the job template's pod spec.
fn cron_job(containers: Value) -> Value {
    json!({"apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "nightly", "namespace": "default"},
        "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {"spec": {
            "restartPolicy": "Never", "containers": containers}}}}}})
}

#[test]
fn workload_templates_nest_keyed_lists_as_pods_do() {
    // The pod template deep in a CronJob merges its containers by name, like a pod's own
    // (multiple_appliers_test.go "remove_one_keep_one" one level further down).
    let apply_cj = |live: Option<&Value>, config: &Value, manager: &str, now: UnixTime| {
        stored(
            server_side_apply(R::CronJobs, None, None, live, config, manager, false, now).unwrap(),
        )
    };
    let containers = |live: &Value| {
        live["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"].clone()
    };
    let live = apply_cj(
        None,
        &cron_job(json!([{"name": "a", "image": "busybox"}])),
        "one",
        T0,
    );
    let live = apply_cj(
        Some(&live),
        &cron_job(json!([{"name": "b", "image": "busybox"}])),
        "two",
        T1,
    );
    assert_eq!(
        containers(&live),
        json!([{"name": "a", "image": "busybox"}, {"name": "b", "image": "busybox"}])
    );
    let spec = |items: Value| {
        json!({"f:spec": {"f:jobTemplate": {"f:spec": {"f:template": {"f:spec": {
            "f:containers": items, "f:restartPolicy": {}}}}}, "f:schedule": {}}})
    };
    assert_eq!(
        entry(&live, "two")["fieldsV1"],
        spec(json!({"k:{\"name\":\"b\"}": {".": {}, "f:image": {}, "f:name": {}}}))
    );
    // The shared scalars conflict by path; the other's container is not touched by pruning.
    let mut config = cron_job(json!([]));
    config["spec"]["schedule"] = json!("0 4 * * *");
    let (message, causes) = match server_side_apply(
        R::CronJobs,
        None,
        None,
        Some(&live),
        &config,
        "two",
        false,
        T2,
    ) {
        Err(Error::ApplyConflict { message, causes }) => (message, causes),
        other => panic!("expected a conflict, got {other:?}"),
    };
    assert_eq!(
        message,
        "Apply failed with 1 conflict: conflict with \"one\": .spec.schedule"
    );
    assert_eq!(causes.len(), 1);
    let live = apply_cj(Some(&live), &cron_job(json!([])), "two", T2);
    assert_eq!(
        containers(&live),
        json!([{"name": "a", "image": "busybox"}])
    );
    // An empty keyed list is no member of ToFieldSet (only null and empty maps are), so
    // "two" owns nothing under containers any more.
    assert_eq!(
        entry(&live, "two")["fieldsV1"],
        json!({"f:spec": {"f:jobTemplate": {"f:spec": {"f:template": {"f:spec": {
            "f:restartPolicy": {}}}}}, "f:schedule": {}}})
    );
}

#[test]
fn record_update_on_create_of_a_job_skips_its_zero_value_structs() {
    // kubectl create job: spec and template are Go structs (never absent), so they carry no
    // "."; the container item does.
    let mut job = json!({"apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "calc", "namespace": "default"},
        "spec": {"template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "c", "image": "busybox"}]}}}});
    record_update(R::Jobs, None, None, &mut job, "kubectl-create", None, T0);
    assert_eq!(
        entry(&job, "kubectl-create")["fieldsV1"],
        json!({"f:spec": {"f:template": {"f:spec": {
            "f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:image": {}, "f:name": {}}},
            "f:restartPolicy": {}}}}})
    );
}
