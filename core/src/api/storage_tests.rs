//! `storage.k8s.io/v1` CSINode and CSIDriver against the core alone: stored, defaulted and
//! validated as kube does, printed with kube's columns, and in discovery.

use alloc::string::String;
use alloc::vec::Vec;
use serde_json::{Value, json};

use super::{ApiRequest, Method};
use crate::cluster::test_harness::{ADMIN, NOW, TABLE, call, causes, server};

const STORAGE: &str = "/apis/storage.k8s.io/v1";

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(f, m)| (String::from(*f), String::from(*m)))
        .collect()
}

fn column_names(table: &Value) -> Vec<&str> {
    table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect()
}

#[test]
fn csi_drivers_are_defaulted_validated_and_printed() {
    let mut s = server();
    let driver = json!({"apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver",
        "metadata": {"name": "csi.example.com"},
        "spec": {"tokenRequests": [{"audience": "vault"}, {"audience": "gcp"}]}});
    let (status, created) = call(
        &mut s,
        Method::Post,
        &alloc::format!("{STORAGE}/csidrivers"),
        None,
        &driver,
    );
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        created["spec"],
        json!({"attachRequired": true, "podInfoOnMount": false, "storageCapacity": false,
            "fsGroupPolicy": "ReadWriteOnceWithFSType", "volumeLifecycleModes": ["Persistent"],
            "requiresRepublish": false, "seLinuxMount": false,
            "tokenRequests": [{"audience": "vault"}, {"audience": "gcp"}]})
    );
    let (status, table) = call(
        &mut s,
        Method::Get,
        &alloc::format!("{STORAGE}/csidrivers"),
        Some(TABLE),
        &Value::Null,
    );
    assert_eq!(status, 200, "{table}");
    assert_eq!(
        column_names(&table),
        [
            "Name",
            "AttachRequired",
            "PodInfoOnMount",
            "StorageCapacity",
            "TokenRequests",
            "RequiresRepublish",
            "Modes",
            "Age"
        ]
    );
    assert_eq!(
        table["rows"][0]["cells"],
        json!([
            "csi.example.com",
            true,
            false,
            false,
            "vault,gcp",
            false,
            "Persistent",
            "0s"
        ])
    );

    // attachRequired and volumeLifecycleModes are immutable; podInfoOnMount is not.
    let (status, answer) = call(
        &mut s,
        Method::Patch,
        &alloc::format!("{STORAGE}/csidrivers/csi.example.com"),
        None,
        &json!({"spec": {"attachRequired": false, "podInfoOnMount": true,
            "volumeLifecycleModes": ["Persistent", "Ephemeral"]}}),
    );
    assert_eq!(status, 422, "{answer}");
    assert_eq!(
        answer["message"],
        "CSIDriver.storage.k8s.io \"csi.example.com\" is invalid: [spec.attachedRequired: Invalid value: false: field is immutable, spec.volumeLifecycleModes: Invalid value: []storage.VolumeLifecycleMode{\"Persistent\", \"Ephemeral\"}: field is immutable]"
    );
    let (status, answer) = call(
        &mut s,
        Method::Patch,
        &alloc::format!("{STORAGE}/csidrivers/csi.example.com"),
        None,
        &json!({"spec": {"podInfoOnMount": true}}),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["spec"]["podInfoOnMount"], true);

    let bad = json!({"apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver",
        "metadata": {"name": "Bad_Driver"},
        "spec": {"fsGroupPolicy": "Always", "volumeLifecycleModes": ["Forever"],
            "tokenRequests": [{"audience": "a", "expirationSeconds": 60},
                {"audience": "a"}, {"audience": "b", "expirationSeconds": 5_000_000_000_i64}]}});
    let (status, answer) = call(
        &mut s,
        Method::Post,
        &alloc::format!("{STORAGE}/csidrivers"),
        None,
        &bad,
    );
    assert_eq!(status, 422, "{answer}");
    assert_eq!(
        causes(&answer),
        pairs(&[
            (
                "metadata.name",
                "Invalid value: \"Bad_Driver\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
            ),
            (
                "spec.fsGroupPolicy",
                "Unsupported value: \"Always\": supported values: \"File\", \"None\", \"ReadWriteOnceWithFSType\""
            ),
            (
                "spec.tokenRequests[0].expirationSeconds",
                "Invalid value: 60: may not specify a duration less than 10 minutes"
            ),
            ("spec.tokenRequests[1].audience", "Duplicate value: \"a\""),
            (
                "spec.tokenRequests[2].expirationSeconds",
                "Invalid value: 5000000000: may not specify a duration larger than 2^32 seconds"
            ),
            (
                "spec.volumeLifecycleModes",
                "Unsupported value: \"Forever\": supported values: \"Persistent\", \"Ephemeral\""
            ),
        ])
    );
}

#[test]
fn csi_nodes_are_validated_and_printed() {
    let mut s = server();
    let node = json!({"apiVersion": "storage.k8s.io/v1", "kind": "CSINode",
        "metadata": {"name": "node-a"},
        "spec": {"drivers": [{"name": "csi.example.com", "nodeID": "i-123",
            "topologyKeys": ["topology.example.com/zone"], "allocatable": {"count": 16}}]}});
    let (status, created) = call(
        &mut s,
        Method::Post,
        &alloc::format!("{STORAGE}/csinodes"),
        None,
        &node,
    );
    assert_eq!(status, 201, "{created}");
    let (_, table) = call(
        &mut s,
        Method::Get,
        &alloc::format!("{STORAGE}/csinodes/node-a"),
        Some(TABLE),
        &Value::Null,
    );
    assert_eq!(column_names(&table), ["Name", "Drivers", "Age"]);
    assert_eq!(table["rows"][0]["cells"], json!(["node-a", 1, "0s"]));

    // A registered driver's entry may not change; a new driver may be added.
    let mut update = created.clone();
    update["spec"]["drivers"] = json!([
        {"name": "csi.example.com", "nodeID": "i-456", "topologyKeys": ["topology.example.com/zone"],
            "allocatable": {"count": 16}},
        {"name": "other.example.com", "nodeID": "n"}]);
    let (status, answer) = call(
        &mut s,
        Method::Put,
        &alloc::format!("{STORAGE}/csinodes/node-a"),
        None,
        &update,
    );
    assert_eq!(status, 422, "{answer}");
    assert_eq!(
        causes(&answer),
        pairs(&[(
            "CSINodeDriver",
            "Invalid value: storage.CSINodeDriver{Name:\"csi.example.com\", NodeID:\"i-456\", TopologyKeys:[]string{\"topology.example.com/zone\"}, Allocatable:(*storage.VolumeNodeResources)(0xc000000000)}: field is immutable"
        )])
    );
    update["spec"]["drivers"][0]["nodeID"] = json!("i-123");
    let (status, answer) = call(
        &mut s,
        Method::Put,
        &alloc::format!("{STORAGE}/csinodes/node-a"),
        None,
        &update,
    );
    assert_eq!(status, 200, "{answer}");

    let bad = json!({"apiVersion": "storage.k8s.io/v1", "kind": "CSINode",
        "metadata": {"name": "node-b"},
        "spec": {"drivers": [
            {"name": "", "nodeID": "", "topologyKeys": ["", "a/b/c"], "allocatable": {"count": -1}},
            {"name": "d", "nodeID": "x".repeat(257), "topologyKeys": ["k", "k"]},
            {"name": "d", "nodeID": "y"}]}});
    let (status, answer) = call(
        &mut s,
        Method::Post,
        &alloc::format!("{STORAGE}/csinodes"),
        None,
        &bad,
    );
    assert_eq!(status, 422, "{answer}");
    let got = causes(&answer);
    let long = alloc::format!(
        "Invalid value: \"{}\": must be 256 characters or less",
        "x".repeat(257)
    );
    assert_eq!(
        got,
        pairs(&[
            ("spec.drivers[0].name", "Required value"),
            (
                "spec.drivers[0].name",
                "Invalid value: \"\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
            ),
            ("spec.drivers[0].nodeID", "Required value"),
            (
                "spec.drivers[0].allocatable.count",
                "Invalid value: -1: must be greater than or equal to 0"
            ),
            ("spec.drivers[0]", "Required value"),
            (
                "spec.drivers[0]",
                "Invalid value: \"\": name part must be non-empty"
            ),
            (
                "spec.drivers[0]",
                "Invalid value: \"\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
            ),
            (
                "spec.drivers[0]",
                "Invalid value: \"a/b/c\": a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
            ),
            ("spec.drivers[1].nodeID", long.as_str()),
            ("spec.drivers[1]", "Duplicate value: \"k\""),
            ("spec.drivers[2].name", "Duplicate value: \"d\""),
        ])
    );
}

#[test]
fn storage_group_is_discovered() {
    let mut s = server();
    let (status, list) = call(&mut s, Method::Get, STORAGE, None, &Value::Null);
    assert_eq!(status, 200, "{list}");
    let resources: Vec<(&str, &str, bool)> = list["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap(),
                r["kind"].as_str().unwrap(),
                r["namespaced"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        resources,
        [
            ("csidrivers", "CSIDriver", false),
            ("csinodes", "CSINode", false),
            ("volumeattachments", "VolumeAttachment", false),
            ("volumeattachments/status", "VolumeAttachment", false)
        ]
    );
    let (status, group) = call(
        &mut s,
        Method::Get,
        "/apis/storage.k8s.io",
        None,
        &Value::Null,
    );
    assert_eq!(status, 200, "{group}");
    assert_eq!(
        group["preferredVersion"]["groupVersion"],
        "storage.k8s.io/v1"
    );
    let (status, service) = call(
        &mut s,
        Method::Get,
        "/apis/apiregistration.k8s.io/v1/apiservices/v1.storage.k8s.io",
        None,
        &Value::Null,
    );
    assert_eq!(status, 200, "{service}");
    assert_eq!(service["spec"]["groupPriorityMinimum"], 16800);
}

/// A kubelet writes its CSINode as protobuf (and reads the JSON answer, as whole objects are
/// answered in JSON).
#[test]
fn csi_nodes_are_written_and_read_as_protobuf() {
    let mut s = server();
    let node = json!({"metadata": {"name": "node-a"},
        "spec": {"drivers": [{"name": "csi.example.com", "nodeID": "i-123",
            "topologyKeys": ["topology.example.com/zone"], "allocatable": {"count": 16}}]}});
    let body = crate::protobuf::encode::object("storage.k8s.io/v1", "CSINode", &node).unwrap();
    let auth = alloc::format!("Bearer {ADMIN}");
    let path = alloc::format!("{STORAGE}/csinodes");
    let mut req = ApiRequest::new(Method::Post, &path);
    req.authorization = Some(&auth);
    req.content_type = Some("application/vnd.kubernetes.protobuf");
    req.body = &body;
    let r = s.server.handle_request(NOW, &req).into_response().unwrap();
    let created: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(r.status, 201, "{created}");
    assert_eq!(created["spec"], node["spec"]);

    let path = alloc::format!("{STORAGE}/csinodes/node-a");
    let mut req = ApiRequest::new(Method::Get, &path);
    req.authorization = Some(&auth);
    req.accept = Some("application/vnd.kubernetes.protobuf,application/json");
    let r = s.server.handle_request(NOW, &req).into_response().unwrap();
    assert_eq!(r.status, 200);
    let read: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(read["spec"], node["spec"]);
    assert_eq!(read["metadata"]["uid"], created["metadata"]["uid"]);
}

#[test]
fn volume_attachments_are_validated_and_printed() {
    let mut s = server();
    let va = json!({"apiVersion": "storage.k8s.io/v1", "kind": "VolumeAttachment",
        "metadata": {"name": "csi-123"},
        "spec": {"attacher": "csi.example.com", "nodeName": "node-a",
            "source": {"persistentVolumeName": "pv-1"}},
        "status": {"attached": true}});
    let path = alloc::format!("{STORAGE}/volumeattachments");
    let (status, created) = call(&mut s, Method::Post, &path, None, &va);
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        created["status"],
        json!({"attached": false}),
        "status is the attacher's (kube-apiserver encodes an empty one so): {created}"
    );
    let one = alloc::format!("{path}/csi-123");
    let (status, attached) = call(
        &mut s,
        Method::Patch,
        &alloc::format!("{one}/status"),
        None,
        &json!({"status": {"attached": true}}),
    );
    assert_eq!(status, 200, "{attached}");
    let (_, table) = call(&mut s, Method::Get, &path, Some(TABLE), &Value::Null);
    assert_eq!(
        column_names(&table),
        ["Name", "Attacher", "PV", "Node", "Attached", "Age"]
    );
    assert_eq!(
        table["rows"][0]["cells"],
        json!(["csi-123", "csi.example.com", "pv-1", "node-a", true, "0s"])
    );
    let (status, answer) = call(
        &mut s,
        Method::Patch,
        &one,
        None,
        &json!({"spec": {"nodeName": "node-b"}}),
    );
    assert_eq!(status, 422, "{answer}");
    assert_eq!(
        causes(&answer),
        pairs(&[(
            "spec",
            "Invalid value: storage.VolumeAttachmentSpec{Attacher:\"csi.example.com\", Source:storage.VolumeAttachmentSource{PersistentVolumeName:(*string)(0xc000000000), InlineVolumeSpec:(*core.PersistentVolumeSpec)(nil)}, NodeName:\"node-b\"}: field is immutable"
        )])
    );
    let bad = json!({"apiVersion": "storage.k8s.io/v1", "kind": "VolumeAttachment",
        "metadata": {"name": "bad"},
        "spec": {"attacher": "", "nodeName": "Node_A", "source": {}}});
    let (status, answer) = call(&mut s, Method::Post, &path, None, &bad);
    assert_eq!(status, 422, "{answer}");
    let subdomain = |v: &str| {
        alloc::format!(
            "Invalid value: \"{v}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        )
    };
    let want: Vec<(String, String)> = alloc::vec![
        (
            String::from("spec.attacher"),
            String::from("Required value")
        ),
        (
            String::from("spec.source"),
            String::from(
                "Required value: must specify exactly one of inlineVolumeSpec and persistentVolumeName"
            )
        ),
        (String::from("spec.nodeName"), subdomain("Node_A")),
        (
            String::from("spec.attacher"),
            String::from("Required value")
        ),
        (String::from("spec.attacher"), subdomain("")),
    ];
    assert_eq!(causes(&answer), want);
}
