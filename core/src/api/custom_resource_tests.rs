//! Custom resources served end to end through `Cluster` (routing, storage versions,
//! discovery, watches, tables, deletion), driven with requests as a client would.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde_json::{Value, json};

use super::tests::{Reply, T0, TOKEN, call_full as call, server};
use crate::Config;
use crate::api::{ApiRequest, Cluster, Method, Outcome, WatchPoll};
use crate::cluster::test_harness::column_names;
use crate::crd::tests::{crd, foo_schema, one_version};

fn get(s: &mut Cluster, path: &str) -> Reply {
    call(s, Method::Get, path, None, None, None)
}

fn settle(s: &mut Cluster) {
    for _ in 0..10 {
        s.handle_timeout(T0);
        if s.poll_timeout().is_none_or(|t| t > T0) {
            break;
        }
    }
}

fn install(s: &mut Cluster, crd: Value) -> Reply {
    let r = call(
        s,
        Method::Post,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        Some(crd),
        None,
        None,
    );
    settle(s);
    r
}

fn widgets() -> Value {
    crd(
        "example.com",
        "widgets",
        "Widget",
        "Namespaced",
        json!([
        {"name": "v1beta1", "served": true, "storage": false, "schema": {"openAPIV3Schema": {
            "type": "object", "x-kubernetes-preserve-unknown-fields": true}}},
        {"name": "v1", "served": true, "storage": true,
         "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}},
         "additionalPrinterColumns": [{"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
            {"name": "Color", "type": "string", "jsonPath": ".spec.color", "priority": 1}],
         "schema": {"openAPIV3Schema": {"type": "object", "properties": {
            "spec": {"type": "object", "properties": {
                "size": {"type": "integer", "minimum": 1, "default": 3},
                "color": {"type": "string"},
                "replicas": {"type": "integer"}}},
            "status": {"type": "object", "properties": {"replicas": {"type": "integer"}}}}}}}]),
    )
}

#[test]
fn a_crd_is_established_and_its_objects_are_served() {
    let mut s = server(Config::default());
    let created = install(&mut s, widgets());
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["status"]["storedVersions"], json!(["v1"]));
    let crd = get(
        &mut s,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com",
    )
    .body;
    let conditions: Vec<(String, String)> = crd["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["type"].as_str().unwrap().into(),
                c["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        conditions.contains(&("NamesAccepted".into(), "True".into())),
        "{conditions:?}"
    );
    assert!(
        conditions.contains(&("Established".into(), "True".into())),
        "{conditions:?}"
    );
    assert_eq!(crd["status"]["acceptedNames"]["kind"], "Widget");

    // Discovery: the group, both versions (v1 preferred), and the resource.
    let groups = get(&mut s, "/apis").body;
    let group = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "example.com")
        .unwrap()
        .clone();
    assert_eq!(group["preferredVersion"]["version"], "v1");
    assert_eq!(group["versions"].as_array().unwrap().len(), 2);
    let list = get(&mut s, "/apis/example.com/v1").body;
    let names: Vec<&str> = list["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["widgets", "widgets/scale", "widgets/status"]);
    assert_eq!(list["resources"][0]["shortNames"], json!(["fz"]));

    // Create in v1beta1: stored in v1, answered in v1beta1, defaulted and pruned by v1beta1's
    // schema (which preserves everything).
    let ns = "/apis/example.com/v1beta1/namespaces/default/widgets";
    let w = call(
        &mut s,
        Method::Post,
        ns,
        Some(
            json!({"apiVersion": "example.com/v1beta1", "kind": "Widget",
        "metadata": {"name": "w1"}, "spec": {"size": 2, "color": "red", "extra": true}}),
        ),
        None,
        None,
    );
    assert_eq!(w.status, 201, "{}", w.body);
    assert_eq!(w.body["apiVersion"], "example.com/v1beta1");
    assert_eq!(w.body["metadata"]["generation"], 1);
    // Read in v1: pruned and served in v1 (the object predates nothing; v1 prunes `extra`).
    let v1 = get(&mut s, "/apis/example.com/v1/namespaces/default/widgets/w1").body;
    assert_eq!(v1["apiVersion"], "example.com/v1");
    assert_eq!(v1["spec"]["size"], 2);
    // Created in v1: defaulted, unknown fields pruned with a warning under Warn.
    let w2 = call(
        &mut s,
        Method::Post,
        "/apis/example.com/v1/namespaces/default/widgets?fieldValidation=Strict",
        Some(
            json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w2"}, "spec": {"bogus": 1}}),
        ),
        None,
        None,
    );
    assert_eq!(w2.status, 400);
    assert_eq!(
        w2.body["message"],
        "Widget in version \"v1\" cannot be handled as a Widget: strict decoding error: unknown field \"spec.bogus\""
    );
    let w2 = call(
        &mut s,
        Method::Post,
        "/apis/example.com/v1/namespaces/default/widgets",
        Some(
            json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w2"}, "spec": {"bogus": 1}}),
        ),
        None,
        None,
    );
    assert_eq!(w2.status, 201, "{}", w2.body);
    assert_eq!(w2.body["spec"], json!({"size": 3}));
    let bad = call(
        &mut s,
        Method::Post,
        "/apis/example.com/v1/namespaces/default/widgets",
        Some(
            json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w3"}, "spec": {"size": 0}}),
        ),
        None,
        None,
    );
    assert_eq!(bad.status, 422);
    assert_eq!(
        bad.body["message"],
        "Widget.example.com \"w3\" is invalid: spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1"
    );

    // Strategic merge patch is refused; merge patch works; status is a subresource.
    let smp = call(
        &mut s,
        Method::Patch,
        "/apis/example.com/v1/namespaces/default/widgets/w2",
        Some(json!({"spec": {"size": 4}})),
        Some("application/strategic-merge-patch+json"),
        None,
    );
    assert_eq!(smp.status, 415);
    let patched = call(
        &mut s,
        Method::Patch,
        "/apis/example.com/v1/namespaces/default/widgets/w2",
        Some(json!({"spec": {"size": 4}, "status": {"replicas": 9}})),
        None,
        None,
    );
    assert_eq!(patched.status, 200);
    assert_eq!(patched.body["spec"]["size"], 4);
    assert!(
        patched.body.get("status").is_none(),
        "status changes only through /status"
    );
    assert_eq!(patched.body["metadata"]["generation"], 2);
    let status = call(
        &mut s,
        Method::Patch,
        "/apis/example.com/v1/namespaces/default/widgets/w2/status",
        Some(json!({"status": {"replicas": 9}})),
        None,
        None,
    );
    assert_eq!(status.body["status"]["replicas"], 9);
    assert_eq!(status.body["metadata"]["generation"], 2);

    // Scale.
    let scale = get(
        &mut s,
        "/apis/example.com/v1/namespaces/default/widgets/w2/scale",
    )
    .body;
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["status"]["replicas"], 9);
    let scaled = call(
        &mut s,
        Method::Patch,
        "/apis/example.com/v1/namespaces/default/widgets/w2/scale",
        Some(json!({"spec": {"replicas": 5}})),
        None,
        None,
    );
    assert_eq!(scaled.body["spec"]["replicas"], 5, "{}", scaled.body);
    assert_eq!(
        get(&mut s, "/apis/example.com/v1/namespaces/default/widgets/w2").body["spec"]["replicas"],
        5
    );

    // Table with the printer columns.
    let table = call(
        &mut s,
        Method::Get,
        "/apis/example.com/v1/namespaces/default/widgets",
        None,
        None,
        Some("application/json;as=Table;v=v1;g=meta.k8s.io"),
    )
    .body;
    let columns = column_names(&table);
    assert_eq!(columns, ["Name", "Size", "Color"]);
    assert_eq!(table["columnDefinitions"][2]["priority"], 1);
    assert_eq!(table["rows"][1]["cells"], json!(["w2", 4, null]));

    // Lists in each version, with the list kind.
    let list = get(&mut s, "/apis/example.com/v1beta1/widgets").body;
    assert_eq!(list["kind"], "WidgetList");
    assert_eq!(list["apiVersion"], "example.com/v1beta1");
    assert!(
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["apiVersion"] == "example.com/v1beta1")
    );
}

#[test]
fn schema_changes_default_objects_on_read() {
    let mut s = server(Config::default());
    let schema =
        json!({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}}});
    install(
        &mut s,
        crd(
            "example.com",
            "things",
            "Thing",
            "Cluster",
            one_version(schema),
        ),
    );
    let r = call(
        &mut s,
        Method::Post,
        "/apis/example.com/v1/things",
        Some(json!({"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "t1"}})),
        None,
        None,
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let patched = call(
        &mut s,
        Method::Patch,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/things.example.com",
        Some(
            json!([{"op": "add", "path": "/spec/versions/0/schema/openAPIV3Schema/properties/a/default", "value": "A"}]),
        ),
        Some("application/json-patch+json"),
        None,
    );
    assert_eq!(patched.status, 200, "{}", patched.body);
    settle(&mut s);
    assert_eq!(get(&mut s, "/apis/example.com/v1/things/t1").body["a"], "A");
    let list = get(&mut s, "/apis/example.com/v1/things").body;
    assert_eq!(list["items"][0]["a"], "A");
}

#[test]
fn watches_see_custom_resources_in_their_version() {
    let mut s = server(Config::default());
    install(&mut s, widgets());
    let auth = alloc::format!("Bearer {TOKEN}");
    let mut req = ApiRequest::new(
        Method::Get,
        "/apis/example.com/v1beta1/namespaces/default/widgets?watch=true&fieldSelector=metadata.name%3Dw1",
    );
    req.authorization = Some(&auth);
    let Outcome::Watch(mut w) = s.handle_request(T0, &req) else {
        panic!("not a watch")
    };
    call(
        &mut s,
        Method::Post,
        "/apis/example.com/v1/namespaces/default/widgets",
        Some(json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"}})),
        None,
        None,
    );
    call(
        &mut s,
        Method::Post,
        "/apis/example.com/v1/namespaces/default/widgets",
        Some(json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w2"}})),
        None,
        None,
    );
    let mut out = Vec::new();
    let ring = s.watch_ring();
    while let WatchPoll::Wrote(_) = w.poll(&ring, T0, &mut out, 100) {}
    let text = String::from_utf8(out).unwrap();
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 1, "{text}");
    assert_eq!(events[0]["type"], "ADDED");
    assert_eq!(events[0]["object"]["apiVersion"], "example.com/v1beta1");
    assert_eq!(events[0]["object"]["metadata"]["name"], "w1");
}

#[test]
fn deleting_a_crd_deletes_its_objects_then_the_crd() {
    let mut s = server(Config::default());
    install(&mut s, widgets());
    for name in ["a", "b"] {
        let r = call(
            &mut s,
            Method::Post,
            "/apis/example.com/v1/namespaces/default/widgets",
            Some(
                json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name}}),
            ),
            None,
            None,
        );
        assert_eq!(r.status, 201);
    }
    // One held by a finalizer.
    call(
        &mut s,
        Method::Patch,
        "/apis/example.com/v1/namespaces/default/widgets/b",
        Some(json!({"metadata": {"finalizers": ["example.com/hold"]}})),
        None,
        None,
    );
    let path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com";
    let deleted = call(&mut s, Method::Delete, path, None, None, None);
    assert_eq!(deleted.status, 200);
    assert_eq!(
        deleted.body["metadata"]["finalizers"],
        json!([crate::crd::CLEANUP_FINALIZER])
    );
    assert!(deleted.body["metadata"]["deletionTimestamp"].is_string());
    settle(&mut s);
    let crd = get(&mut s, path).body;
    let terminating = crd["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Terminating")
        .unwrap()
        .clone();
    assert_eq!(terminating["reason"], "InstanceDeletionInProgress");
    assert_eq!(
        get(&mut s, "/apis/example.com/v1/namespaces/default/widgets/a").status,
        404
    );
    assert_eq!(
        call(
            &mut s,
            Method::Post,
            "/apis/example.com/v1/namespaces/default/widgets",
            Some(
                json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "c"}})
            ),
            None,
            None
        )
        .status,
        405
    );
    // Releasing the finalizer lets the CRD go.
    call(
        &mut s,
        Method::Patch,
        "/apis/example.com/v1/namespaces/default/widgets/b",
        Some(json!({"metadata": {"finalizers": null}})),
        None,
        None,
    );
    settle(&mut s);
    assert_eq!(get(&mut s, path).status, 404);
    assert_eq!(get(&mut s, "/apis/example.com/v1").status, 404);
    assert!(s.crds().get("widgets.example.com").is_none());
}

#[test]
fn names_in_use_are_not_accepted() {
    let mut s = server(Config::default());
    install(&mut s, widgets());
    let mut clash = crd(
        "example.com",
        "gadgets",
        "Widget",
        "Cluster",
        one_version(json!({"type": "object"})),
    );
    clash["spec"]["names"]["shortNames"] = json!([]);
    install(&mut s, clash);
    let crd = get(
        &mut s,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gadgets.example.com",
    )
    .body;
    let names = crd["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "NamesAccepted")
        .unwrap()
        .clone();
    assert_eq!(names["status"], "False");
    // Kind and list kind both clash; as in kube, the last check's reason stands.
    assert_eq!(names["reason"], "ListKindConflict");
    assert_eq!(names["message"], "\"WidgetList\" is already in use");
    assert_eq!(get(&mut s, "/apis/example.com/v1/gadgets").status, 404);
}

#[test]
fn openapi_publishes_served_versions() {
    let mut s = server(Config::default());
    install(
        &mut s,
        crd(
            "example.com",
            "foos",
            "Foo",
            "Namespaced",
            one_version(foo_schema()),
        ),
    );
    let v2 = get(&mut s, "/openapi/v2").body;
    let def = &v2["definitions"]["com.example.v1.Foo"];
    assert_eq!(def["description"], "Foo CRD for Testing");
    assert_eq!(
        def["properties"]["spec"]["properties"]["bars"]["items"]["required"],
        json!(["name"])
    );
    assert_eq!(
        def["x-kubernetes-group-version-kind"],
        json!([{"group": "example.com", "kind": "Foo", "version": "v1"}])
    );
    assert_eq!(
        def["properties"]["metadata"]["$ref"],
        "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    );
    assert!(v2["definitions"]["com.example.v1.FooList"].is_object());
    assert!(
        v2["paths"]["/apis/example.com/v1/namespaces/{namespace}/foos/{name}"]["patch"].is_object()
    );
    // The built-in definitions are still there.
    assert!(v2["definitions"]["io.k8s.api.core.v1.Pod"].is_object());
    let index = get(&mut s, "/openapi/v3").body;
    let url = index["paths"]["apis/example.com/v1"]["serverRelativeURL"]
        .as_str()
        .unwrap()
        .to_string();
    let doc = get(&mut s, &url);
    assert_eq!(doc.status, 200);
    let patch =
        &doc.body["paths"]["/apis/example.com/v1/namespaces/{namespace}/foos/{name}"]["patch"];
    assert_eq!(
        patch["x-kubernetes-group-version-kind"],
        json!({"group": "example.com", "kind": "Foo", "version": "v1"})
    );
    assert!(
        patch["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "fieldValidation")
    );
    let content: Vec<&String> = patch["requestBody"]["content"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert!(
        !content.iter().any(|c| c.contains("strategic")),
        "{content:?}"
    );
    assert!(
        doc.body["components"]["schemas"]["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]
            .is_object()
    );
    assert!(doc.body["components"]["schemas"]["com.example.v1.Foo"].is_object());
    // Stop serving: the definitions go.
    let mut crd_obj = get(
        &mut s,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/foos.example.com",
    )
    .body;
    crd_obj["spec"]["versions"][0]["served"] = json!(false);
    let r = call(
        &mut s,
        Method::Put,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/foos.example.com",
        Some(crd_obj),
        None,
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let v2 = get(&mut s, "/openapi/v2").body;
    assert!(v2["definitions"].get("com.example.v1.Foo").is_none());
    assert_eq!(
        get(&mut s, "/openapi/v3").body["paths"].get("apis/example.com/v1"),
        None
    );
}

#[test]
fn the_crd_budget_is_enforced() {
    let mut s = server(Config {
        max_crds: 1,
        ..Config::default()
    });
    assert_eq!(install(&mut s, widgets()).status, 201);
    let second = install(
        &mut s,
        crd(
            "example.com",
            "foos",
            "Foo",
            "Cluster",
            one_version(json!({"type": "object"})),
        ),
    );
    assert_eq!(second.status, 507, "{}", second.body);
    assert_eq!(
        get(
            &mut s,
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/foos.example.com"
        )
        .status,
        404
    );
}
