//! HorizontalPodAutoscalers against the core alone: stored as `autoscaling/v2`, served as v1
//! too with kube's conversion (a cpu Utilization metric for v1's target, annotations for what v1
//! cannot say), defaulted, validated in kube's words, printed with kube's columns. No autoscaling
//! controller runs: there is no metrics server here, and status is whatever a client writes.

use serde_json::{Value, json};

use crate::api::Method;
use crate::cluster::test_harness::{Cluster, column_names, messages};

const V2: &str = "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers";
const V1: &str = "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers";

fn hpa_v2(name: &str) -> Value {
    json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "maxReplicas": 5}})
}

#[test]
fn an_hpa_is_defaulted_as_v2_and_read_as_v1() {
    let mut c = Cluster::new();
    let mut body = hpa_v2("web");
    body["status"] = json!({"currentReplicas": 3});
    let (code, created) = c.post(V2, body);
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["spec"]["minReplicas"], 1);
    assert_eq!(
        created["spec"]["metrics"],
        json!([{"type": "Resource", "resource": {"name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": 80}}}])
    );
    assert_eq!(
        created["status"],
        json!({"currentMetrics": null, "desiredReplicas": 0}),
        "status is the controller's (kube-apiserver encodes an empty one so)"
    );
    let (code, v1) = c.get(&alloc::format!("{V1}/web"));
    assert_eq!(code, 200, "{v1}");
    assert_eq!(v1["apiVersion"], "autoscaling/v1");
    assert_eq!(
        v1["spec"],
        json!({"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 1, "maxReplicas": 5, "targetCPUUtilizationPercentage": 80})
    );
    assert_eq!(
        v1["status"],
        json!({"currentReplicas": 0, "desiredReplicas": 0})
    );
    assert!(v1["metadata"].get("annotations").is_none(), "{v1}");
    assert_eq!(
        v1["metadata"]["resourceVersion"],
        created["metadata"]["resourceVersion"]
    );

    // A v1 create: its target is a cpu metric; without one, kube's implicit 80%.
    let v1_body = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "api"},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "api"},
            "minReplicas": 2, "maxReplicas": 4, "targetCPUUtilizationPercentage": 50}});
    let (code, answer) = c.post(V1, v1_body);
    assert_eq!(code, 201, "{answer}");
    assert_eq!(answer["apiVersion"], "autoscaling/v1");
    assert_eq!(answer["spec"]["targetCPUUtilizationPercentage"], 50);
    let (_, v2) = c.get(&alloc::format!("{V2}/api"));
    assert_eq!(
        v2["spec"]["metrics"],
        json!([{"type": "Resource", "resource": {"name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": 50}}}])
    );

    // Both versions list both, and print kube's columns.
    let (_, list) = c.get(V1);
    assert_eq!(list["kind"], "HorizontalPodAutoscalerList");
    assert_eq!(list["apiVersion"], "autoscaling/v1");
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    let table = c.table(V1);
    assert_eq!(
        column_names(&table),
        [
            "Name",
            "Reference",
            "Targets",
            "MinPods",
            "MaxPods",
            "Replicas",
            "Age"
        ]
    );
    assert_eq!(
        table["rows"][1]["cells"],
        json!([
            "web",
            "Deployment/web",
            "cpu: <unknown>/80%",
            "1",
            5,
            0,
            "0s"
        ])
    );
}

#[test]
fn what_v1_cannot_say_round_trips_through_annotations() {
    let mut c = Cluster::new();
    let mut body = hpa_v2("mem");
    body["spec"]["metrics"] = json!([
        {"type": "Resource", "resource": {"name": "memory",
            "target": {"type": "AverageValue", "averageValue": "500Mi"}}},
        {"type": "Resource", "resource": {"name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": 60}}},
        {"type": "Pods", "pods": {"metric": {"name": "qps"},
            "target": {"type": "AverageValue", "averageValue": "10"}}}]);
    body["spec"]["behavior"] = json!({"scaleDown": {"stabilizationWindowSeconds": 300}});
    let (code, created) = c.post(V2, body);
    assert_eq!(code, 201, "{created}");
    // The behavior's missing rules come from kube's defaults.
    assert_eq!(
        created["spec"]["behavior"],
        json!({"scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
                {"type": "Pods", "value": 4, "periodSeconds": 15},
                {"type": "Percent", "value": 100, "periodSeconds": 15}]},
            "scaleDown": {"stabilizationWindowSeconds": 300, "selectPolicy": "Max", "policies": [
                {"type": "Percent", "value": 100, "periodSeconds": 15}]}})
    );
    let (_, v1) = c.get(&alloc::format!("{V1}/mem"));
    assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 60);
    let notes = &v1["metadata"]["annotations"];
    let metrics: Value = serde_json::from_str(
        notes["autoscaling.alpha.kubernetes.io/metrics"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        metrics,
        json!([{"type": "Resource", "resource": {"name": "memory", "targetAverageValue": "500Mi"}},
            {"type": "Pods", "pods": {"metricName": "qps", "targetAverageValue": "10"}}])
    );
    let behavior: Value = serde_json::from_str(
        notes["autoscaling.alpha.kubernetes.io/behavior"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(behavior["ScaleDown"]["StabilizationWindowSeconds"], 300);
    assert_eq!(behavior["ScaleUp"]["Policies"][0]["Type"], "Pods");

    // A v1 client's read-modify-write keeps what it could not see.
    let mut edited = v1.clone();
    edited["spec"]["maxReplicas"] = json!(9);
    let (code, answer) = c.call(
        Method::Put,
        &alloc::format!("{V1}/mem"),
        edited,
        "application/json",
    );
    assert_eq!(code, 200, "{answer}");
    let (_, v2) = c.get(&alloc::format!("{V2}/mem"));
    assert_eq!(v2["spec"]["maxReplicas"], 9);
    assert_eq!(
        v2["spec"]["metrics"],
        created["spec"]["metrics"]
            .clone()
            .as_array()
            .map(|m| {
                // v1 lists the other metrics first, then its cpu target, as kube's conversion does.
                json!([m[0], m[2], m[1]])
            })
            .unwrap()
    );
    assert_eq!(v2["spec"]["behavior"], created["spec"]["behavior"]);
    assert!(v2["metadata"].get("annotations").is_none(), "{v2}");

    // Status is written through its subresource; v1 shows the cpu utilization.
    let mut status = v2.clone();
    status["status"] = json!({"currentReplicas": 2, "desiredReplicas": 3,
        "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu",
            "current": {"averageUtilization": 75, "averageValue": "150m"}}}]});
    status["spec"]["maxReplicas"] = json!(1);
    let (code, answer) = c.call(
        Method::Put,
        &alloc::format!("{V2}/mem/status"),
        status,
        "application/json",
    );
    assert_eq!(code, 200, "{answer}");
    assert_eq!(
        answer["spec"]["maxReplicas"], 9,
        "a status write keeps the spec"
    );
    let (_, v1) = c.get(&alloc::format!("{V1}/mem"));
    assert_eq!(v1["status"]["currentCPUUtilizationPercentage"], 75);
    assert_eq!(v1["status"]["desiredReplicas"], 3);
    // The current metrics travel as v1 metric statuses, named after `current`.
    let current: Value = serde_json::from_str(
        v1["metadata"]["annotations"]["autoscaling.alpha.kubernetes.io/current-metrics"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        current,
        json!([{"type": "Resource", "resource": {"name": "cpu",
            "currentAverageUtilization": 75, "currentAverageValue": "150m"}}])
    );
    let table = c.table(V2);
    // kube's printer pairs statuses with specs by position: the cpu status sits beside the
    // memory target.
    assert_eq!(
        table["rows"][0]["cells"][2],
        "memory: 150m/500Mi, <unknown>/10 + 1 more..."
    );
}

#[test]
fn invalid_autoscalers_are_refused_in_kube_s_words() {
    let mut c = Cluster::new();
    let mut body = hpa_v2("bad");
    body["spec"]["minReplicas"] = json!(0);
    body["spec"]["maxReplicas"] = json!(0);
    body["spec"]["scaleTargetRef"] = json!({"kind": "Deployment", "name": "a/b"});
    body["spec"]["metrics"] = json!([
        {"type": "Resource", "resource": {"name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": 0}}},
        {"type": "Pods", "resource": {"name": "cpu",
            "target": {"type": "Percentage", "averageValue": "-1"}}}]);
    body["spec"]["behavior"] = json!({"scaleUp": {"selectPolicy": "Fastest", "policies": []}});
    let (code, status) = c.post(V2, body);
    assert_eq!(code, 422, "{status}");
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .starts_with("HorizontalPodAutoscaler.autoscaling \"bad\" is invalid: "),
        "{status}"
    );
    assert_eq!(
        messages(&status),
        [
            "spec.minReplicas: Invalid value: 0: must be greater than or equal to 1",
            "spec.maxReplicas: Invalid value: 0: must be greater than 0",
            "spec.scaleTargetRef.name: Invalid value: \"a/b\": may not contain '/'",
            "spec.metrics[0].resource.target.averageUtilization: Invalid value: 0: must be greater than 0",
            "spec.metrics[1].resource.target.type: Invalid value: \"Percentage\": must be either Utilization, Value, or AverageValue",
            "spec.metrics[1].resource.target.averageValue: Invalid value: -1: must be positive",
            "spec.metrics[1].pods: Required value: must populate information for the given metric source",
            "spec.metrics: Forbidden: must specify at least one Object or External metric to support scaling to zero replicas",
            "spec.behavior.scaleUp.selectPolicy: Unsupported value: \"Fastest\": supported values: \"Disabled\", \"Max\", \"Min\"",
            "spec.behavior.scaleUp.policies: Required value: must specify at least one Policy",
        ]
    );
    // maxReplicas below minReplicas, and no target, through v1.
    let v1_body = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "small"},
        "spec": {"scaleTargetRef": {"kind": "", "name": ""}, "minReplicas": 3, "maxReplicas": 2}});
    let (code, status) = c.post(V1, v1_body);
    assert_eq!(code, 422, "{status}");
    assert_eq!(
        messages(&status),
        [
            "spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`",
            "spec.scaleTargetRef.kind: Required value",
            "spec.scaleTargetRef.name: Required value",
        ]
    );
    assert_eq!(c.get(&alloc::format!("{V2}/small")).0, 404);
}

/// kube's `asTable` converts an included object to the group-version asked for: a Table read
/// through v1 (GET, LIST and watch alike) embeds v1 objects, cells printed from the stored kind.
#[test]
fn tables_through_v1_embed_v1_objects() {
    let mut c = Cluster::new();
    let table = crate::cluster::test_harness::TABLE;
    let mut watcher = c.watch(
        &alloc::format!("{V1}?watch=1&includeObject=Object"),
        Some(table),
    );
    let (code, created) = c.post(V2, hpa_v2("web"));
    assert_eq!(code, 201, "{created}");
    let v1 = c.get(&alloc::format!("{V1}/web")).1;
    assert_eq!(v1["apiVersion"], "autoscaling/v1");
    assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 80);

    let events = c.drain(&mut watcher);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "ADDED");
    assert_eq!(events[0]["object"]["kind"], "Table");
    assert_eq!(events[0]["object"]["rows"][0]["object"], v1);
    let (_, get) = c.request(
        Method::Get,
        &alloc::format!("{V1}/web?includeObject=Object"),
        Some(table),
        &Value::Null,
        "application/json",
    );
    assert_eq!(get["rows"][0]["object"], v1);
    let (_, list) = c.request(
        Method::Get,
        &alloc::format!("{V1}?includeObject=Object"),
        Some(table),
        &Value::Null,
        "application/json",
    );
    assert_eq!(list["rows"][0]["object"], v1);
    for row in [&events[0]["object"]["rows"][0], &get["rows"][0]] {
        assert_eq!(row["cells"], list["rows"][0]["cells"]);
    }
    // Through v2 the same rows embed the stored shape; without includeObject, metadata.
    let (_, v2) = c.request(
        Method::Get,
        &alloc::format!("{V2}/web?includeObject=Object"),
        Some(table),
        &Value::Null,
        "application/json",
    );
    assert_eq!(v2["rows"][0]["object"], created);
    let (_, partial) = c.request(
        Method::Get,
        &alloc::format!("{V1}/web"),
        Some(table),
        &Value::Null,
        "application/json",
    );
    assert_eq!(
        partial["rows"][0]["object"]["kind"],
        "PartialObjectMetadata"
    );
    assert_eq!(partial["rows"][0]["object"]["metadata"], v1["metadata"]);
}

/// Field ownership as kube records it across the two versions of one group: each manager in the
/// version it wrote with, v1 paths for v1 writers; a v2 write takes from a v1 manager what it
/// changed as v1 sees it, and an apply conflicts across versions.
#[test]
fn managers_are_recorded_in_their_version_and_compared_across_both() {
    let mut c = Cluster::new();
    let managers = |obj: &Value| {
        obj["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let fields = e["fieldsV1"]["f:spec"]
                    .as_object()
                    .map(|m| m.keys().cloned().collect::<alloc::vec::Vec<_>>().join(","))
                    .unwrap_or_default();
                alloc::format!(
                    "{} {} {}",
                    e["manager"].as_str().unwrap(),
                    e["apiVersion"].as_str().unwrap(),
                    fields
                )
            })
            .collect::<alloc::vec::Vec<_>>()
    };
    let body = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"},
            "maxReplicas": 5, "targetCPUUtilizationPercentage": 50}});
    let (code, created) = c.post(&alloc::format!("{V1}?fieldManager=m1"), body);
    assert_eq!(code, 201, "{created}");
    // The creator owns the defaulted minReplicas too: kube defaults before it records.
    assert_eq!(
        managers(&created),
        [
            "m1 autoscaling/v1 f:maxReplicas,f:minReplicas,f:scaleTargetRef,f:targetCPUUtilizationPercentage"
        ]
    );
    // Read through v2 the entry is as recorded.
    assert_eq!(
        managers(&c.get(&alloc::format!("{V2}/web")).1),
        managers(&created)
    );
    let metrics = json!({"spec": {"metrics": [{"type": "Resource", "resource": {"name": "cpu",
        "target": {"type": "Utilization", "averageUtilization": 60}}}]}});
    let (code, patched) = c.patch(
        &alloc::format!("{V2}/web?fieldManager=m2"),
        metrics,
        "application/merge-patch+json",
    );
    assert_eq!(code, 200, "{patched}");
    assert_eq!(
        managers(&patched),
        [
            "m1 autoscaling/v1 f:maxReplicas,f:minReplicas,f:scaleTargetRef",
            "m2 autoscaling/v2 f:metrics"
        ]
    );
    // An apply through v1 of the cpu target conflicts with the v2 manager of the metrics.
    let apply = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"}, "spec": {"targetCPUUtilizationPercentage": 70}});
    let (code, status) = c.patch(
        &alloc::format!("{V1}/web?fieldManager=a1"),
        apply.clone(),
        "application/apply-patch+yaml",
    );
    assert_eq!(code, 409, "{status}");
    assert_eq!(
        status["message"],
        "Apply failed with 1 conflict: conflict with \"m2\" using autoscaling/v2: .spec.metrics"
    );
    let (code, applied) = c.patch(
        &alloc::format!("{V1}/web?fieldManager=a1&force=true"),
        apply,
        "application/apply-patch+yaml",
    );
    assert_eq!(code, 200, "{applied}");
    assert_eq!(applied["spec"]["targetCPUUtilizationPercentage"], 70);
    assert_eq!(
        managers(&applied),
        [
            "a1 autoscaling/v1 f:targetCPUUtilizationPercentage",
            "m1 autoscaling/v1 f:maxReplicas,f:minReplicas,f:scaleTargetRef"
        ]
    );
}

/// The annotations carry what kube-apiserver 1.32 writes, byte for byte (captured from it for
/// this object): Go's `json.Marshal` of the v1 types, fields in struct order, map keys sorted.
#[test]
fn v1_annotations_are_written_in_go_field_order() {
    let mut c = Cluster::new();
    let selector = json!({"matchLabels": {"b": "2", "a": "1"},
        "matchExpressions": [{"key": "k", "operator": "In", "values": ["v"]}]});
    let mut body = hpa_v2("full");
    body["spec"]["metrics"] = json!([
        {"type": "Pods", "pods": {"metric": {"name": "packets", "selector": selector},
            "target": {"type": "AverageValue", "averageValue": "1k"}}},
        {"type": "Object", "object": {"describedObject": {"apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress", "name": "main"}, "metric": {"name": "requests"},
            "target": {"type": "Value", "value": "10k"}}}]);
    body["spec"]["behavior"] = json!({
        "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
            {"type": "Percent", "value": 100, "periodSeconds": 15},
            {"type": "Pods", "value": 4, "periodSeconds": 15}]},
        "scaleDown": {"stabilizationWindowSeconds": 300,
            "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}});
    let (code, created) = c.post(V2, body);
    assert_eq!(code, 201, "{created}");
    let status = json!({"status": {"currentReplicas": 1, "desiredReplicas": 1, "conditions": [
        {"type": "ScalingActive", "status": "False", "lastTransitionTime": "2025-06-15T15:01:00Z",
            "reason": "FailedGetResourceMetric", "message": "no metrics"}]}});
    let (code, patched) = c.patch(
        &alloc::format!("{V2}/full/status"),
        status,
        "application/merge-patch+json",
    );
    assert_eq!(code, 200, "{patched}");
    let (_, v1) = c.get(&alloc::format!("{V1}/full"));
    let note = |key: &str| {
        v1["metadata"]["annotations"][alloc::format!("autoscaling.alpha.kubernetes.io/{key}")]
            .as_str()
            .map(alloc::string::String::from)
            .unwrap_or_default()
    };
    assert_eq!(
        note("metrics"),
        r#"[{"type":"Pods","pods":{"metricName":"packets","targetAverageValue":"1k","selector":{"matchLabels":{"a":"1","b":"2"},"matchExpressions":[{"key":"k","operator":"In","values":["v"]}]}}},{"type":"Object","object":{"target":{"kind":"Ingress","name":"main","apiVersion":"networking.k8s.io/v1"},"metricName":"requests","targetValue":"10k"}}]"#
    );
    assert_eq!(
        note("conditions"),
        r#"[{"type":"ScalingActive","status":"False","lastTransitionTime":"2025-06-15T15:01:00Z","reason":"FailedGetResourceMetric","message":"no metrics"}]"#
    );
    assert_eq!(
        note("behavior"),
        r#"{"ScaleUp":{"StabilizationWindowSeconds":0,"SelectPolicy":"Max","Policies":[{"Type":"Percent","Value":100,"PeriodSeconds":15},{"Type":"Pods","Value":4,"PeriodSeconds":15}]},"ScaleDown":{"StabilizationWindowSeconds":300,"SelectPolicy":"Max","Policies":[{"Type":"Percent","Value":100,"PeriodSeconds":15}]}}"#
    );
}
