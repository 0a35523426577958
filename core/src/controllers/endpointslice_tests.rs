//! The EndpointSlice controller driven through the API in virtual time: what kube's controller
//! writes for the same Services and pods (names, labels, owner, ports, conditions, node, zone,
//! placeholder, 100 endpoints a slice), kept in step with the Endpoints controller, restored
//! when someone else changes a managed slice, and gone with its Service.

use alloc::string::String;
use alloc::vec::Vec;
use serde_json::{Value, json};

use super::workload_tests::Cluster;

const PODS: &str = "/api/v1/namespaces/default/pods";
const SERVICES: &str = "/api/v1/namespaces/default/services";
const SLICES: &str = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices";
const MERGE: &str = "application/merge-patch+json";

fn service(c: &mut Cluster, name: &str, ports: Value) {
    let svc = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "labels": {"team": "a", "kubernetes.io/service-name": "x"}},
        "spec": {"selector": {"app": name}, "ports": ports}});
    let (code, body) = c.post(SERVICES, svc);
    assert_eq!(code, 201, "{body}");
}

/// A pod of `app` on `node` with a named container port; with an IP it is Running, Ready or not.
fn pod(c: &mut Cluster, app: &str, name: &str, node: &str, ip: &str, ready: bool) {
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "nginx",
            "ports": [{"name": "http", "containerPort": 8080}]}]}});
    let (code, body) = c.post(PODS, pod);
    assert_eq!(code, 201, "{body}");
    if !ip.is_empty() {
        let status = json!({"status": {"phase": "Running", "podIP": ip,
            "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}});
        let (code, body) = c.patch(&alloc::format!("{PODS}/{name}/status"), status, MERGE);
        assert_eq!(code, 200, "{body}");
    }
}

fn slices_of(c: &mut Cluster, service: &str) -> Vec<Value> {
    c.items(&alloc::format!(
        "{SLICES}?labelSelector=kubernetes.io%2Fservice-name%3D{service}"
    ))
}

fn addresses(slice: &Value) -> Vec<String> {
    slice["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| String::from(e["addresses"][0].as_str().unwrap()))
        .collect()
}

#[test]
fn a_services_slice_lists_its_pods_with_kubes_conditions() {
    let mut c = Cluster::new();
    let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1",
        "labels": {"topology.kubernetes.io/zone": "zone-a"}}});
    assert_eq!(c.post("/api/v1/nodes", node).0, 201);
    service(
        &mut c,
        "web",
        json!([{"name": "http", "port": 80, "targetPort": "http", "appProtocol": "http"},
            {"name": "metrics", "port": 9090, "protocol": "TCP"}]),
    );
    pod(&mut c, "web", "a", "n1", "10.1.0.1", true);
    pod(&mut c, "web", "b", "n2", "10.1.0.2", false);
    pod(&mut c, "web", "c", "n1", "", false);
    pod(&mut c, "other", "d", "n1", "10.1.0.4", true);
    c.settle();

    let slices = slices_of(&mut c, "web");
    assert_eq!(slices.len(), 1, "{slices:?}");
    let slice = &slices[0];
    let name = slice["metadata"]["name"].as_str().unwrap();
    assert!(name.starts_with("web-") && name.len() == 9, "{name}");
    assert_eq!(slice["metadata"]["generateName"], "web-");
    assert_eq!(slice["metadata"]["generation"], 1);
    assert_eq!(
        slice["metadata"]["labels"],
        json!({"team": "a", "kubernetes.io/service-name": "web",
            "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"})
    );
    let svc = c.get(&alloc::format!("{SERVICES}/web")).1;
    assert_eq!(
        slice["metadata"]["ownerReferences"],
        json!([{"apiVersion": "v1", "kind": "Service", "name": "web",
            "uid": svc["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true}])
    );
    assert_eq!(slice["addressType"], "IPv4");
    assert_eq!(
        slice["ports"],
        json!([{"name": "http", "port": 8080, "protocol": "TCP", "appProtocol": "http"},
            {"name": "metrics", "port": 9090, "protocol": "TCP"}])
    );
    let pod_a = c.get(&alloc::format!("{PODS}/a")).1;
    assert_eq!(
        slice["endpoints"],
        json!([
            {"addresses": ["10.1.0.1"], "conditions": {"ready": true, "serving": true, "terminating": false},
                "nodeName": "n1", "zone": "zone-a",
                "targetRef": {"kind": "Pod", "namespace": "default", "name": "a", "uid": pod_a["metadata"]["uid"]}},
            {"addresses": ["10.1.0.2"], "conditions": {"ready": false, "serving": false, "terminating": false},
                "nodeName": "n2",
                "targetRef": {"kind": "Pod", "namespace": "default", "name": "b", "uid": c.get(&alloc::format!("{PODS}/b")).1["metadata"]["uid"]}}
        ])
    );

    // Ready later; then terminating (a bound pod is deleted gracefully): still listed, not
    // ready, serving while Ready, as kube-proxy expects; then finished: gone.
    c.patch(
        &alloc::format!("{PODS}/b/status"),
        json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
        MERGE,
    );
    let (code, body) = c.delete(&alloc::format!("{PODS}/a"), Value::Null);
    assert_eq!(code, 200, "{body}");
    c.settle();
    let slice = &slices_of(&mut c, "web")[0];
    assert_eq!(slice["metadata"]["name"], name, "updated in place");
    assert_eq!(slice["metadata"]["generation"], 2);
    assert_eq!(
        slice["endpoints"][0]["conditions"],
        json!({"ready": false, "serving": true, "terminating": true})
    );
    assert_eq!(
        slice["endpoints"][1]["conditions"],
        json!({"ready": true, "serving": true, "terminating": false})
    );
    let ep = c.get("/api/v1/namespaces/default/endpoints/web").1;
    assert_eq!(ep["subsets"][0]["addresses"][0]["ip"], "10.1.0.2", "{ep}");
    c.patch(
        &alloc::format!("{PODS}/b/status"),
        json!({"status": {"phase": "Succeeded"}}),
        MERGE,
    );
    c.settle();
    assert_eq!(addresses(&slices_of(&mut c, "web")[0]), ["10.1.0.1"]);

    // Someone else's edit of a managed slice is undone; a deleted one comes back.
    let path = alloc::format!("{SLICES}/{name}");
    let (code, body) = c.patch(&path, json!({"endpoints": []}), MERGE);
    assert_eq!(code, 200, "{body}");
    c.settle();
    assert_eq!(addresses(&slices_of(&mut c, "web")[0]), ["10.1.0.1"]);
    assert_eq!(c.delete(&path, Value::Null).0, 200);
    c.settle();
    let slices = slices_of(&mut c, "web");
    assert_eq!(slices.len(), 1);
    assert_ne!(slices[0]["metadata"]["name"], name);

    // The Service goes, and its slices with it.
    assert_eq!(
        c.delete(&alloc::format!("{SERVICES}/web"), Value::Null).0,
        200
    );
    c.settle();
    assert!(slices_of(&mut c, "web").is_empty());
}

#[test]
fn slices_split_by_ports_and_at_100_endpoints_and_a_placeholder_stands_for_none() {
    let mut c = Cluster::new();
    service(
        &mut c,
        "api",
        json!([{"name": "http", "port": 80, "targetPort": "http"}]),
    );
    c.settle();
    let slices = slices_of(&mut c, "api");
    assert_eq!(slices.len(), 1);
    assert_eq!(
        (&slices[0]["endpoints"], &slices[0]["ports"]),
        (&json!([]), &json!([])),
        "the placeholder"
    );
    let placeholder = slices[0]["metadata"]["name"].clone();

    for i in 0..150 {
        let ip = alloc::format!("10.2.{}.{}", i / 100, i % 100 + 1);
        pod(&mut c, "api", &alloc::format!("p{i}"), "n1", &ip, true);
    }
    // A pod whose container has no `http` port serves no port of the Service.
    let bare = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "bare", "labels": {"app": "api"}},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "nginx"}]}});
    assert_eq!(c.post(PODS, bare).0, 201);
    c.patch(
        &alloc::format!("{PODS}/bare/status"),
        json!({"status": {"phase": "Running", "podIP": "10.3.0.1",
            "conditions": [{"type": "Ready", "status": "True"}]}}),
        MERGE,
    );
    c.settle();
    let mut sizes: Vec<(usize, Value)> = slices_of(&mut c, "api")
        .iter()
        .map(|s| (s["endpoints"].as_array().unwrap().len(), s["ports"].clone()))
        .collect();
    sizes.sort_by_key(|(n, _)| *n);
    let http = json!([{"name": "http", "port": 8080, "protocol": "TCP"}]);
    assert_eq!(
        sizes,
        [(1, json!([])), (50, http.clone()), (100, http.clone())]
    );
    assert!(
        slices_of(&mut c, "api")
            .iter()
            .any(|s| s["metadata"]["name"] == placeholder),
        "the placeholder was reused for the port-less pod"
    );

    // Scale down: the slices shrink, the extra one goes.
    for i in 0..140 {
        assert_eq!(
            c.delete(
                &alloc::format!("{PODS}/p{i}"),
                json!({"gracePeriodSeconds": 0})
            )
            .0,
            200
        );
    }
    c.settle();
    let mut sizes: Vec<usize> = slices_of(&mut c, "api")
        .iter()
        .map(|s| s["endpoints"].as_array().unwrap().len())
        .collect();
    sizes.sort_unstable();
    assert_eq!(sizes, [1, 10]);
}

#[test]
fn selectorless_and_external_name_services_get_no_managed_slices() {
    let mut c = Cluster::new();
    let plain = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ext"},
        "spec": {"ports": [{"port": 80}]}});
    assert_eq!(c.post(SERVICES, plain).0, 201);
    let named = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "dns"},
        "spec": {"type": "ExternalName", "externalName": "example.com", "selector": {"app": "x"}}});
    assert_eq!(c.post(SERVICES, named).0, 201);
    // A hand-made slice for the selectorless one is left as it is.
    let mine = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "ext-1", "labels": {"kubernetes.io/service-name": "ext"}},
        "addressType": "IPv4", "endpoints": [{"addresses": ["192.0.2.10"]}],
        "ports": [{"port": 80}]});
    let (code, created) = c.post(SLICES, mine);
    assert_eq!(code, 201, "{created}");
    assert_eq!(
        created["ports"],
        json!([{"name": "", "port": 80, "protocol": "TCP"}])
    );
    c.settle();
    assert_eq!(slices_of(&mut c, "ext"), [created]);
    assert!(slices_of(&mut c, "dns").is_empty());
}

#[test]
fn the_kubernetes_service_lists_the_advertised_address_and_keeps_it() {
    let mut c = Cluster::with(crate::Config {
        advertise_address: Some("192.0.2.7:6443".parse().unwrap()),
        ..crate::Config::default()
    });
    let ep = c.get("/api/v1/namespaces/default/endpoints/kubernetes").1;
    assert_eq!(
        ep["subsets"],
        json!([{"addresses": [{"ip": "192.0.2.7"}],
            "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]}])
    );
    assert_eq!(
        ep["metadata"]["labels"],
        json!({"endpointslice.kubernetes.io/skip-mirror": "true"})
    );
    let path = alloc::format!("{SLICES}/kubernetes");
    let slice = c.get(&path).1;
    assert_eq!(
        slice["metadata"]["labels"],
        json!({"kubernetes.io/service-name": "kubernetes"})
    );
    assert_eq!(slice["addressType"], "IPv4");
    assert_eq!(
        slice["endpoints"],
        json!([{"addresses": ["192.0.2.7"], "conditions": {"ready": true}}])
    );
    assert_eq!(
        slice["ports"],
        json!([{"name": "https", "port": 6443, "protocol": "TCP"}])
    );
    assert_eq!(
        slices_of(&mut c, "kubernetes").len(),
        1,
        "no managed slice besides"
    );

    // Changed or deleted by hand: put back.
    let (code, body) = c.patch(
        &path,
        json!({"endpoints": [{"addresses": ["192.0.2.99"]}]}),
        MERGE,
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        c.delete(
            "/api/v1/namespaces/default/endpoints/kubernetes",
            Value::Null
        )
        .0,
        200
    );
    c.settle();
    assert_eq!(c.get(&path).1["endpoints"][0]["addresses"][0], "192.0.2.7");
    let ep = c.get("/api/v1/namespaces/default/endpoints/kubernetes").1;
    assert_eq!(ep["subsets"][0]["addresses"][0]["ip"], "192.0.2.7", "{ep}");

    // Without an advertised address, neither is written (as before).
    let mut c = Cluster::new();
    assert_eq!(
        c.get("/api/v1/namespaces/default/endpoints/kubernetes").0,
        404
    );
    assert_eq!(c.get(&path).0, 404);
}
