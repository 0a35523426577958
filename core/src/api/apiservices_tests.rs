//! APIServices against the core alone: one per served group-version, in discovery, readable
//! as objects, lists, Tables and metadata, and never writable.

use crate::cluster::test_harness::column_names;
use alloc::string::String;
use alloc::vec::Vec;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{ApiRequest, Cluster, Method};
use crate::{Config, UnixTime};

const ADMIN: &str = "admin";
const NOW: UnixTime = UnixTime::from_secs(1_750_000_000);
const APISERVICES: &str = "/apis/apiregistration.k8s.io/v1/apiservices";

fn server() -> Cluster {
    let config = Config {
        admin_token_sha256: Some(Sha256::digest(ADMIN.as_bytes()).into()),
        ..Config::default()
    };
    Cluster::new(config, [3; 32], NOW)
}

fn call(
    s: &mut Cluster,
    method: Method,
    path: &str,
    accept: Option<&str>,
    body: &Value,
) -> (u16, Value) {
    let auth = alloc::format!("Bearer {ADMIN}");
    let bytes = serde_json::to_vec(body).unwrap();
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let mut req = ApiRequest::new(method, path);
    req.query = query;
    req.authorization = Some(&auth);
    req.accept = accept;
    req.content_type = Some("application/json");
    if !body.is_null() {
        req.body = &bytes;
    }
    let r = s.handle_request(NOW, &req).into_response().unwrap();
    (
        r.status,
        serde_json::from_slice(&r.body).unwrap_or(Value::Null),
    )
}

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| String::from(i["metadata"]["name"].as_str().unwrap()))
        .collect()
}

#[test]
fn one_local_available_apiservice_per_served_group_version() {
    let mut s = server();
    let (status, list) = call(&mut s, Method::Get, APISERVICES, None, &Value::Null);
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["kind"], "APIServiceList");
    let names = names(&list);
    for want in [
        "v1.",
        "v1.apps",
        "v1.batch",
        "v1.apiextensions.k8s.io",
        "v1.authorization.k8s.io",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from {names:?}"
        );
    }
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    // Every group-version discovery lists has one, and nothing else does.
    let (_, groups) = call(&mut s, Method::Get, "/apis", None, &Value::Null);
    let mut served: Vec<String> = alloc::vec![String::from("v1.")];
    for g in groups["groups"].as_array().unwrap() {
        for v in g["versions"].as_array().unwrap() {
            let name = alloc::format!(
                "{}.{}",
                v["version"].as_str().unwrap(),
                g["name"].as_str().unwrap()
            );
            if name != "v1.apiregistration.k8s.io" {
                served.push(name);
            }
        }
    }
    served.sort();
    assert_eq!(names, served);

    let (status, apps) = call(
        &mut s,
        Method::Get,
        &alloc::format!("{APISERVICES}/v1.apps"),
        None,
        &Value::Null,
    );
    assert_eq!(status, 200, "{apps}");
    assert_eq!(
        apps["spec"],
        json!({"group": "apps", "version": "v1", "groupPriorityMinimum": 17800, "versionPriority": 15})
    );
    assert_eq!(
        apps["metadata"]["labels"]["kube-aggregator.kubernetes.io/automanaged"],
        "onstart"
    );
    let available = &apps["status"]["conditions"][0];
    assert_eq!(
        (
            &available["type"],
            &available["status"],
            &available["reason"]
        ),
        (&json!("Available"), &json!("True"), &json!("Local"))
    );
    let (_, core) = call(
        &mut s,
        Method::Get,
        &alloc::format!("{APISERVICES}/v1."),
        None,
        &Value::Null,
    );
    assert_eq!(
        core["spec"],
        json!({"version": "v1", "groupPriorityMinimum": 18000, "versionPriority": 1})
    );
    let (status, missing) = call(
        &mut s,
        Method::Get,
        &alloc::format!("{APISERVICES}/v9.nope"),
        None,
        &Value::Null,
    );
    assert_eq!(
        (status, &missing["reason"]),
        (404, &json!("NotFound")),
        "{missing}"
    );
    assert_eq!(
        missing["message"],
        "apiservices.apiregistration.k8s.io \"v9.nope\" not found"
    );
}

#[test]
fn apiservices_are_in_plain_and_aggregated_discovery() {
    let mut s = server();
    let (status, list) = call(
        &mut s,
        Method::Get,
        "/apis/apiregistration.k8s.io/v1",
        None,
        &Value::Null,
    );
    assert_eq!(status, 200, "{list}");
    let entry = &list["resources"][0];
    assert_eq!(
        (&entry["name"], &entry["kind"], &entry["namespaced"]),
        (&json!("apiservices"), &json!("APIService"), &json!(false))
    );
    assert_eq!(entry["verbs"], json!(["get", "list"]));
    let (status, _) = call(
        &mut s,
        Method::Get,
        "/apis/apiregistration.k8s.io",
        None,
        &Value::Null,
    );
    assert_eq!(status, 200);
    let (_, aggregated) = call(
        &mut s,
        Method::Get,
        "/apis",
        Some("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"),
        &Value::Null,
    );
    let group = aggregated["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["metadata"]["name"] == "apiregistration.k8s.io")
        .expect("apiregistration.k8s.io in aggregated discovery");
    assert_eq!(
        group["versions"][0]["resources"][0]["resource"],
        "apiservices"
    );
}

#[test]
fn custom_resource_groups_get_one_and_lose_it_with_their_definition() {
    let mut s = server();
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
    });
    let (status, answer) = call(
        &mut s,
        Method::Post,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        None,
        &crd,
    );
    assert_eq!(status, 201, "{answer}");
    s.handle_timeout(NOW);
    let (status, widgets) = call(
        &mut s,
        Method::Get,
        &alloc::format!("{APISERVICES}/v1.example.com"),
        None,
        &Value::Null,
    );
    assert_eq!(status, 200, "{widgets}");
    assert_eq!(
        widgets["spec"],
        json!({"group": "example.com", "version": "v1", "groupPriorityMinimum": 1000, "versionPriority": 100})
    );
    assert_eq!(
        widgets["metadata"]["labels"]["kube-aggregator.kubernetes.io/automanaged"],
        "true"
    );
    let (_, selected) = call(
        &mut s,
        Method::Get,
        &alloc::format!(
            "{APISERVICES}?labelSelector=kube-aggregator.kubernetes.io/automanaged%3Dtrue"
        ),
        None,
        &Value::Null,
    );
    assert_eq!(names(&selected), ["v1.example.com"]);
    let (_, by_name) = call(
        &mut s,
        Method::Get,
        &alloc::format!("{APISERVICES}?fieldSelector=metadata.name%3Dv1.apps"),
        None,
        &Value::Null,
    );
    assert_eq!(names(&by_name), ["v1.apps"]);

    let (status, _) = call(
        &mut s,
        Method::Delete,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com",
        None,
        &Value::Null,
    );
    assert_eq!(status, 200);
    for _ in 0..4 {
        s.handle_timeout(NOW);
    }
    let (status, _) = call(
        &mut s,
        Method::Get,
        &alloc::format!("{APISERVICES}/v1.example.com"),
        None,
        &Value::Null,
    );
    assert_eq!(status, 404);
}

#[test]
fn tables_and_metadata_are_served_and_writes_and_watches_refused() {
    let mut s = server();
    let (status, table) = call(
        &mut s,
        Method::Get,
        APISERVICES,
        Some("application/json;as=Table;v=v1;g=meta.k8s.io"),
        &Value::Null,
    );
    assert_eq!(status, 200, "{table}");
    let columns = column_names(&table);
    assert_eq!(columns, ["Name", "Service", "Available", "Age"]);
    let apps = table["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["cells"][0] == "v1.apps")
        .unwrap();
    assert_eq!(apps["cells"][1], "Local");
    assert_eq!(apps["cells"][2], "True");
    assert_eq!(apps["object"]["kind"], "PartialObjectMetadata");

    let (status, meta) = call(
        &mut s,
        Method::Get,
        APISERVICES,
        Some("application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"),
        &Value::Null,
    );
    assert_eq!(status, 200, "{meta}");
    assert_eq!(meta["kind"], "PartialObjectMetadataList");
    assert!(meta["items"][0].get("spec").is_none(), "{meta}");

    let body = json!({"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": {"name": "v1.x.io"},
        "spec": {"group": "x.io", "version": "v1", "groupPriorityMinimum": 1, "versionPriority": 1}});
    let (status, refused) = call(&mut s, Method::Post, APISERVICES, None, &body);
    assert_eq!(
        (status, &refused["reason"]),
        (405, &json!("MethodNotAllowed")),
        "{refused}"
    );
    let (status, _) = call(
        &mut s,
        Method::Delete,
        &alloc::format!("{APISERVICES}/v1.apps"),
        None,
        &Value::Null,
    );
    assert_eq!(status, 405);
    let (status, _) = call(
        &mut s,
        Method::Get,
        &alloc::format!("{APISERVICES}?watch=true"),
        None,
        &Value::Null,
    );
    assert_eq!(status, 405);
    let (status, still) = call(
        &mut s,
        Method::Get,
        &alloc::format!("{APISERVICES}/v1.apps"),
        None,
        &Value::Null,
    );
    assert_eq!(status, 200, "{still}");
}
