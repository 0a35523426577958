//! `autoscaling/v1` HorizontalPodAutoscalers side by side with the real kube-apiserver 1.32 (the
//! peers of `tests/peers/`): an `autoscaling/v2` object with every metric source, a behavior and
//! a status with current metrics and conditions, read through v1, must give the same spec,
//! status and `autoscaling.alpha.kubernetes.io/*` annotations byte for byte — kube writes those
//! with Go's `json.Marshal` of the v1 (and, for the behavior, internal) types, in struct field
//! order. Builds the peers first when they are missing or stale (slow the first time).

use nautilus_tests::DevCluster;
use nautilus_tests::peers::{self, Etcd, KubeApiServer, tmpfs_dir};
use serde_json::{Value, json};

const V1: &str = "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers";
const V2: &str = "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers";

fn hpa() -> Value {
    let selector = json!({"matchLabels": {"b": "2", "a": "1"},
        "matchExpressions": [{"key": "k", "operator": "In", "values": ["v"]}]});
    let ingress = json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "main"});
    json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "full", "namespace": "default"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 2, "maxReplicas": 10,
            "metrics": [
                {"type": "Resource", "resource": {"name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 70}}},
                {"type": "Resource", "resource": {"name": "memory",
                    "target": {"type": "AverageValue", "averageValue": "500Mi"}}},
                {"type": "Pods", "pods": {"metric": {"name": "packets", "selector": selector},
                    "target": {"type": "AverageValue", "averageValue": "1k"}}},
                {"type": "Object", "object": {"describedObject": ingress,
                    "metric": {"name": "requests"}, "target": {"type": "Value", "value": "10k"}}},
                {"type": "External", "external": {"metric": {"name": "queue",
                    "selector": {"matchLabels": {"q": "x"}}},
                    "target": {"type": "AverageValue", "averageValue": "30"}}},
                {"type": "ContainerResource", "containerResource": {"name": "cpu",
                    "container": "app",
                    "target": {"type": "Utilization", "averageUtilization": 60}}}],
            "behavior": {
                "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
                    {"type": "Percent", "value": 100, "periodSeconds": 15},
                    {"type": "Pods", "value": 4, "periodSeconds": 15}]},
                "scaleDown": {"stabilizationWindowSeconds": 300,
                    "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}}}})
}

fn status() -> Value {
    let ingress = json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "main"});
    json!({"status": {"observedGeneration": 1, "lastScaleTime": "2025-06-15T15:00:00Z",
        "currentReplicas": 3, "desiredReplicas": 4,
        "currentMetrics": [
            {"type": "Resource", "resource": {"name": "cpu",
                "current": {"averageUtilization": 50, "averageValue": "250m"}}},
            {"type": "Pods", "pods": {"metric": {"name": "packets"},
                "current": {"averageValue": "900"}}},
            {"type": "Object", "object": {"describedObject": ingress,
                "metric": {"name": "requests"}, "current": {"value": "9k"}}},
            {"type": "External", "external": {"metric": {"name": "queue"},
                "current": {"averageValue": "20"}}},
            {"type": "ContainerResource", "containerResource": {"name": "cpu", "container": "app",
                "current": {"averageUtilization": 40, "averageValue": "100m"}}}],
        "conditions": [
            {"type": "AbleToScale", "status": "True",
                "lastTransitionTime": "2025-06-15T15:00:00Z", "reason": "ReadyForNewScale",
                "message": "recommended size matches current size"},
            {"type": "ScalingActive", "status": "False",
                "lastTransitionTime": "2025-06-15T15:01:00Z",
                "reason": "FailedGetResourceMetric", "message": "no metrics"}]}})
}

#[test]
fn v1_reads_carry_kube_s_conversion_annotations_byte_for_byte() {
    if let Err(e) = peers::build(&["kube-apiserver", "etcd"]) {
        panic!("{e}");
    }
    let data = tmpfs_dir().expect("tmpfs dir");
    let etcd = Etcd::start(data.path()).unwrap_or_else(|e| panic!("{e}"));
    let kube = KubeApiServer::start(&etcd, "hpa-admin-token").unwrap_or_else(|e| panic!("{e}"));
    let dev = DevCluster::start();
    let json_type = [("content-type", "application/json")];
    let merge = [("content-type", "application/merge-patch+json")];
    let mut read = Vec::new();
    for (name, request) in [
        (
            "kube-apiserver",
            &(|m: &str, p: &str, b: Option<&[u8]>, h: &[(&str, &str)]| kube.request(m, p, b, h))
                as &dyn Fn(&str, &str, Option<&[u8]>, &[(&str, &str)]) -> _,
        ),
        ("nautilus", &|m: &str,
                       p: &str,
                       b: Option<&[u8]>,
                       h: &[(&str, &str)]| {
            dev.request(m, p, b, h)
        }),
    ] {
        let body = hpa().to_string();
        let created = request("POST", V2, Some(body.as_bytes()), &json_type).expect(name);
        assert_eq!(created.status, 201, "{name}: {}", created.json());
        let body = status().to_string();
        let path = format!("{V2}/full/status");
        let patched = request("PATCH", &path, Some(body.as_bytes()), &merge).expect(name);
        assert_eq!(patched.status, 200, "{name}: {}", patched.json());
        let v1 = request("GET", &format!("{V1}/full"), None, &[]).expect(name);
        assert_eq!(v1.status, 200, "{name}: {}", v1.json());
        read.push(v1.json());
    }
    let (kube, ours) = (&read[0], &read[1]);
    let annotations = |o: &Value| o["metadata"]["annotations"].clone();
    let annotations_kube = annotations(kube);
    for key in ["metrics", "current-metrics", "conditions", "behavior"] {
        let key = format!("autoscaling.alpha.kubernetes.io/{key}");
        assert!(
            annotations_kube[&key].is_string(),
            "kube wrote no {key}: {kube}"
        );
        assert_eq!(
            annotations(ours)[&key].as_str(),
            annotations_kube[&key].as_str(),
            "{key}"
        );
    }
    assert_eq!(annotations(ours), annotations_kube);
    assert_eq!(ours["spec"], kube["spec"]);
    assert_eq!(ours["status"], kube["status"]);
}
