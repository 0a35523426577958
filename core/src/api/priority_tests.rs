//! `scheduling.k8s.io/v1` PriorityClass and kube's Priority admission against the core alone:
//! the system classes at start, the reserved prefix and immutable value in kube's words, one
//! global default, and pods (a client's and a controller's) given their class's priority.

use alloc::string::String;
use alloc::vec::Vec;
use serde_json::{Value, json};

use crate::api::Method;
use crate::cluster::test_harness::{Cluster, column_names, messages};

const CLASSES: &str = "/apis/scheduling.k8s.io/v1/priorityclasses";
const PODS: &str = "/api/v1/namespaces/default/pods";

fn class(name: &str, value: i64, extra: Value) -> Value {
    let mut c = json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
        "metadata": {"name": name}, "value": value});
    if let (Some(map), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
        map.extend(extra.clone());
    }
    c
}

fn pod(name: &str, spec: Value) -> Value {
    let mut spec = spec;
    spec["containers"] = json!([{"name": "c", "image": "nginx"}]);
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})
}

#[test]
fn system_classes_exist_and_names_and_values_follow_kubes_rules() {
    let mut c = Cluster::new();
    let (code, table) = c.call(Method::Get, CLASSES, Value::Null, "application/json");
    assert_eq!(code, 200, "{table}");
    let listed: Vec<(String, i64, Value)> = table["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                String::from(i["metadata"]["name"].as_str().unwrap()),
                i["value"].as_i64().unwrap(),
                i["preemptionPolicy"].clone(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (
                String::from("system-cluster-critical"),
                2_000_000_000,
                json!("PreemptLowerPriority")
            ),
            (
                String::from("system-node-critical"),
                2_000_001_000,
                json!("PreemptLowerPriority")
            ),
        ]
    );

    let (code, answer) = c.post(CLASSES, class("system-mine", 5, json!({})));
    assert_eq!(code, 422, "{answer}");
    assert_eq!(
        answer["message"],
        "PriorityClass.scheduling.k8s.io \"system-mine\" is invalid: metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: system-mine is not a known system priority class"
    );
    let (code, answer) = c.post(
        CLASSES,
        class(
            "huge",
            1_000_000_001,
            json!({"preemptionPolicy": "Sometimes"}),
        ),
    );
    assert_eq!(code, 422, "{answer}");
    assert_eq!(
        messages(&answer),
        [
            "value: Forbidden: maximum allowed value of a user defined priority is 1000000000",
            "preemptionPolicy: Unsupported value: \"Sometimes\": supported values: \"PreemptLowerPriority\", \"Never\"",
        ]
    );
    let (code, created) = c.post(CLASSES, class("high", 1000, json!({"description": "d"})));
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["preemptionPolicy"], "PreemptLowerPriority");
    let (code, answer) = c.patch(
        &alloc::format!("{CLASSES}/high"),
        json!({"value": 2000, "preemptionPolicy": "Never"}),
        "application/merge-patch+json",
    );
    assert_eq!(code, 422, "{answer}");
    assert_eq!(
        messages(&answer),
        [
            "value: Forbidden: may not be changed in an update.",
            "preemptionPolicy: Invalid value: \"Never\": field is immutable",
        ]
    );
    // A system class put back with another value is refused.
    assert_eq!(
        c.delete(
            &alloc::format!("{CLASSES}/system-node-critical"),
            Value::Null
        )
        .0,
        200
    );
    let (code, answer) = c.post(CLASSES, class("system-node-critical", 7, json!({})));
    assert_eq!(code, 422, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .ends_with("error: value of system-node-critical PriorityClass must be 2000001000"),
        "{answer}"
    );

    let (_, table) = c.call(
        Method::Get,
        &alloc::format!("{CLASSES}/high"),
        Value::Null,
        "application/json",
    );
    assert_eq!(table["value"], 1000);
    let req_table = |c: &mut Cluster| {
        let auth = "Bearer admin";
        let mut req = crate::api::ApiRequest::new(Method::Get, CLASSES);
        req.authorization = Some(auth);
        req.accept = Some("application/json;as=Table;v=v1;g=meta.k8s.io");
        let r = c
            .server
            .handle_request(c.now, &req)
            .into_response()
            .unwrap();
        serde_json::from_slice::<Value>(&r.body).unwrap()
    };
    let table = req_table(&mut c);
    let columns = column_names(&table);
    assert_eq!(
        columns,
        ["Name", "Value", "Global-Default", "Age", "PreemptionPolicy"]
    );
    assert_eq!(
        table["rows"][0]["cells"],
        json!(["high", 1000, false, "0s", "PreemptLowerPriority"])
    );
}

#[test]
fn pods_get_their_class_priority_or_the_global_defaults() {
    let mut c = Cluster::new();
    // No default class: priority 0 and PreemptLowerPriority, no class name.
    let (code, p) = c.post(PODS, pod("plain", json!({})));
    assert_eq!(code, 201, "{p}");
    assert_eq!(
        (
            &p["spec"]["priority"],
            &p["spec"]["preemptionPolicy"],
            p["spec"].get("priorityClassName")
        ),
        (&json!(0), &json!("PreemptLowerPriority"), None)
    );
    let (code, p) = c.post(
        PODS,
        pod(
            "critical",
            json!({"priorityClassName": "system-node-critical"}),
        ),
    );
    assert_eq!(code, 201, "{p}");
    assert_eq!(p["spec"]["priority"], 2_000_001_000);

    let (code, answer) = c.post(PODS, pod("lost", json!({"priorityClassName": "nope"})));
    assert_eq!(code, 403, "{answer}");
    assert_eq!(
        answer["message"],
        "pods \"lost\" is forbidden: no PriorityClass with name nope was found"
    );

    let low = class(
        "low",
        10,
        json!({"globalDefault": true, "preemptionPolicy": "Never"}),
    );
    assert_eq!(c.post(CLASSES, low).0, 201);
    let (code, answer) = c.post(CLASSES, class("other", 20, json!({"globalDefault": true})));
    assert_eq!(code, 403, "{answer}");
    assert_eq!(
        answer["message"],
        "priorityclasses.scheduling.k8s.io \"other\" is forbidden: PriorityClass low is already marked as default. Only one default can exist"
    );
    let (code, p) = c.post(PODS, pod("defaulted", json!({})));
    assert_eq!(code, 201, "{p}");
    assert_eq!(
        (
            &p["spec"]["priorityClassName"],
            &p["spec"]["priority"],
            &p["spec"]["preemptionPolicy"]
        ),
        (&json!("low"), &json!(10), &json!("Never"))
    );
    let (code, answer) = c.post(
        PODS,
        pod("wrong", json!({"priorityClassName": "low", "priority": 5})),
    );
    assert_eq!(code, 403, "{answer}");
    assert_eq!(
        answer["message"],
        "pods \"wrong\" is forbidden: the integer value of priority (5) must not be provided in pod spec; priority admission controller computed 10 from the given PriorityClass name"
    );
    let (code, answer) = c.post(
        PODS,
        pod(
            "policy",
            json!({"preemptionPolicy": "PreemptLowerPriority"}),
        ),
    );
    assert_eq!(code, 403, "{answer}");
    assert_eq!(
        answer["message"],
        "pods \"policy\" is forbidden: the string value of PreemptionPolicy (PreemptLowerPriority) must not be provided in pod spec; priority admission controller computed Never from the given PriorityClass name"
    );

    // An update that leaves the priority out keeps it.
    let mut update = p.clone();
    update["spec"].as_object_mut().unwrap().remove("priority");
    update["spec"]
        .as_object_mut()
        .unwrap()
        .remove("preemptionPolicy");
    update["metadata"]["labels"] = json!({"x": "y"});
    let (code, updated) = c.call(
        Method::Put,
        &alloc::format!("{PODS}/defaulted"),
        update,
        "application/json",
    );
    assert_eq!(code, 200, "{updated}");
    assert_eq!(updated["spec"]["priority"], 10);

    // A controller's pods meet the same admission.
    let rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "rs"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "rs"}},
            "template": {"metadata": {"labels": {"app": "rs"}},
                "spec": {"priorityClassName": "system-cluster-critical",
                    "containers": [{"name": "c", "image": "nginx"}]}}}});
    assert_eq!(
        c.post("/apis/apps/v1/namespaces/default/replicasets", rs).0,
        201
    );
    c.settle();
    let pods = c.items(&alloc::format!("{PODS}?labelSelector=app%3Drs"));
    assert_eq!(pods.len(), 1);
    assert_eq!(pods[0]["spec"]["priority"], 2_000_000_000);
}
