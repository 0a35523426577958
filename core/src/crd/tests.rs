//! CRDs against the core alone: schema validation, pruning and defaulting as kube's
//! apiextensions-apiserver does them, CRD validation, and custom resources served end to end
//! through `Cluster` (routing, storage versions, discovery, watches, tables, deletion).

use crate::api::test_harness::column_names;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::schema::Schema;
use crate::api::{ApiRequest, Cluster, Method, Outcome, WatchPoll};
use crate::{Config, UnixTime};

const TOKEN: &str = "admin-secret";
const T0: UnixTime = UnixTime::from_secs(1_750_000_000);

fn causes(schema: &Value, obj: &Value) -> Vec<String> {
    Schema::compile(schema)
        .unwrap()
        .validate(obj)
        .into_iter()
        .map(|c| alloc::format!("{}: {}", c.field, c.message))
        .collect()
}

/// The e2e suite's `schemaFoo`.
fn foo_schema() -> Value {
    json!({
        "description": "Foo CRD for Testing", "type": "object",
        "properties": {
            "spec": {"type": "object", "description": "Specification of Foo", "properties": {
                "bars": {"description": "List of Bars and their specs.", "type": "array", "items": {
                    "type": "object", "required": ["name"], "properties": {
                        "name": {"description": "Name of Bar.", "type": "string"},
                        "age": {"description": "Age of Bar.", "type": "string"},
                        "feeling": {"description": "Whether Bar is feeling great.", "type": "string", "enum": ["Great", "Down"]},
                        "bazs": {"description": "List of Bazs.", "items": {"type": "string"}, "type": "array"}}}}}},
            "status": {"description": "Status of Foo", "type": "object", "properties": {
                "bars": {"type": "array", "items": {"type": "object", "properties": {
                    "quxType": {"type": "string", "pattern": "in-tree|out-of-tree"}}}}}}}
    })
}

#[test]
fn validation_speaks_kubes_field_errors() {
    let s = foo_schema();
    assert!(
        causes(
            &s,
            &json!({"spec": {"bars": [{"name": "a", "feeling": "Great"}]}})
        )
        .is_empty()
    );
    assert_eq!(
        causes(&s, &json!({"spec": {"bars": [{"age": "10"}]}})),
        ["spec.bars[0].name: Required value"]
    );
    assert_eq!(
        causes(
            &s,
            &json!({"spec": {"bars": [{"name": "a", "feeling": "NonExistentValue"}]}})
        ),
        [
            "spec.bars[0].feeling: Unsupported value: \"NonExistentValue\": supported values: \"Great\", \"Down\""
        ]
    );
    assert_eq!(
        causes(&s, &json!({"spec": {"bars": "x"}})),
        [
            "spec.bars: Invalid value: \"string\": spec.bars in body must be of type array: \"string\""
        ]
    );
    assert_eq!(
        causes(&s, &json!({"status": {"bars": [{"quxType": "builtin"}]}})),
        [
            "status.bars[0].quxType: Invalid value: \"builtin\": status.bars[0].quxType in body should match 'in-tree|out-of-tree'"
        ]
    );
    let bounds = json!({"type": "object", "properties": {
        "n": {"type": "integer", "minimum": 1, "maximum": 10},
        "e": {"type": "number", "exclusiveMaximum": true, "maximum": 1.5},
        "s": {"type": "string", "maxLength": 3, "minLength": 2},
        "l": {"type": "array", "items": {"type": "string"}, "maxItems": 1, "minItems": 1},
        "m": {"type": "integer", "multipleOf": 3},
        "t": {"type": "string", "format": "date-time"},
        "ios": {"x-kubernetes-int-or-string": true},
        "null": {"type": "string"},
        "ok": {"type": "string", "nullable": true}}});
    let got = causes(
        &bounds,
        &json!({"n": 0, "e": 1.5, "s": "abcd", "l": ["a", "b"], "m": 4,
        "t": "yesterday", "ios": true, "null": null, "ok": null}),
    );
    assert_eq!(
        got,
        [
            "e: Invalid value: 1.5: e in body should be less than 1.5",
            "ios: Invalid value: \"boolean\": ios in body must be of type integer,string: \"boolean\"",
            "l: Too many: 2: must have at most 1 items",
            "m: Invalid value: 4: m in body should be a multiple of 3",
            "n: Invalid value: 0: n in body should be greater than or equal to 1",
            "null: Invalid value: \"null\": null in body must be of type string: \"null\"",
            "s: Too long: may not be more than 3 bytes",
            "t: Invalid value: \"yesterday\": t in body must be of type date-time: \"yesterday\"",
        ]
    );
    assert!(
        causes(
            &bounds,
            &json!({"n": 10, "ios": "50%", "t": "2024-01-01T00:00:00Z", "m": 6.0})
        )
        .is_empty()
    );
}

#[test]
fn logical_junctors_and_list_types() {
    let s = json!({"type": "object", "properties": {
        "one": {"type": "string", "oneOf": [{"pattern": "^a"}, {"pattern": "b$"}]},
        "any": {"type": "integer", "anyOf": [{"minimum": 10}, {"maximum": 0}]},
        "not": {"type": "string", "not": {"enum": ["forbidden"]}},
        "set": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
        "map": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["k"],
            "items": {"type": "object", "properties": {"k": {"type": "string"}}}}}});
    assert!(
        causes(
            &s,
            &json!({"one": "ax", "any": 11, "not": "fine", "set": ["a", "b"],
        "map": [{"k": "a"}, {"k": "b"}]})
        )
        .is_empty()
    );
    let got = causes(
        &s,
        &json!({"one": "ab", "any": 5, "not": "forbidden", "set": ["a", "a"],
        "map": [{"k": "a"}, {"k": "a"}]}),
    );
    assert!(
        got.contains(
            &"any: Invalid value: 5: \"any\" must validate at least one schema (anyOf)".to_string()
        ),
        "{got:?}"
    );
    assert!(got.contains(&"one: Invalid value: \"ab\": \"one\" must validate one and only one schema (oneOf). Found 2 valid alternatives".to_string()), "{got:?}");
    assert!(
        got.contains(
            &"not: Invalid value: \"forbidden\": \"not\" must not validate the schema (not)"
                .to_string()
        ),
        "{got:?}"
    );
    assert!(
        got.contains(&"set[1]: Duplicate value: \"a\"".to_string()),
        "{got:?}"
    );
    assert!(
        got.contains(&"map[1]: Duplicate value: {\"k\":\"a\"}".to_string()),
        "{got:?}"
    );
}

#[test]
fn pruning_keeps_what_the_schema_and_preserve_say() {
    let s = Schema::compile(&json!({"type": "object", "properties": {
        "spec": {"type": "object", "properties": {
            "known": {"type": "string"},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                "properties": {"typed": {"type": "object", "properties": {"x": {"type": "string"}}}}},
            "template": {"type": "object", "x-kubernetes-embedded-resource": true,
                "properties": {"spec": {"type": "object"}}},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}}}}}}))
    .unwrap();
    let mut obj = json!({"apiVersion": "g/v1", "kind": "K",
        "metadata": {"name": "x", "unknownMeta": 1},
        "extra": 1,
        "spec": {"known": "k", "unknown": 2,
            "free": {"anything": {"deep": 1}, "typed": {"x": "y", "gone": 1}},
            "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "bogus": 1},
                "spec": {"dropped": 1}, "status": 1},
            "labels": {"a": "b"}}});
    let pruned = s.prune(&mut obj);
    assert_eq!(
        pruned,
        [
            "extra",
            "metadata.unknownMeta",
            "spec.free.typed.gone",
            "spec.template.metadata.bogus",
            "spec.template.spec.dropped",
            "spec.template.status",
            "spec.unknown",
        ]
    );
    assert_eq!(
        obj,
        json!({"apiVersion": "g/v1", "kind": "K", "metadata": {"name": "x"},
            "spec": {"known": "k", "free": {"anything": {"deep": 1}, "typed": {"x": "y"}},
                "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}},
                "labels": {"a": "b"}}})
    );
    // Preserving the root keeps everything but unknown metadata.
    let all =
        Schema::compile(&json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}))
            .unwrap();
    let mut obj = json!({"a": {"b": [{"c": "d"}]}, "metadata": {"name": "n", "x": 1}});
    assert_eq!(all.prune(&mut obj), ["metadata.x"]);
    assert_eq!(
        obj,
        json!({"a": {"b": [{"c": "d"}]}, "metadata": {"name": "n"}})
    );
}

#[test]
fn defaults_fill_absent_and_null_fields() {
    let s = Schema::compile(&json!({"type": "object", "properties": {
        "a": {"type": "string", "default": "A"},
        "b": {"type": "string", "nullable": true, "default": "B"},
        "c": {"type": "string", "default": "C"},
        "spec": {"type": "object", "default": {}, "properties": {
            "replicas": {"type": "integer", "default": 1},
            "ports": {"type": "array", "items": {"type": "object", "properties": {
                "protocol": {"type": "string", "default": "TCP"}}}}}}}}))
    .unwrap();
    let mut obj = json!({"b": null, "c": null, "spec": {"ports": [{}, {"protocol": "UDP"}]}});
    s.default(&mut obj);
    assert_eq!(
        obj,
        json!({"a": "A", "b": null, "c": "C",
            "spec": {"replicas": 1, "ports": [{"protocol": "TCP"}, {"protocol": "UDP"}]}})
    );
    let mut empty = json!({});
    s.default(&mut empty);
    assert_eq!(empty["spec"], json!({"replicas": 1}));
}

fn crd(group: &str, plural: &str, kind: &str, scope: &str, versions: Value) -> Value {
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": alloc::format!("{plural}.{group}")},
        "spec": {"group": group, "scope": scope,
            "names": {"plural": plural, "singular": plural.trim_end_matches('s'), "kind": kind,
                "shortNames": ["fz"], "categories": ["all"]},
            "versions": versions}})
}

fn one_version(schema: Value) -> Value {
    json!([{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": schema}}])
}

#[test]
fn crd_validation_has_kubes_wording() {
    let check = |crd: &Value| -> Vec<String> {
        let mut crd = crd.clone();
        super::validation::default(&mut crd, None);
        super::validation::validate(&crd, None)
            .into_iter()
            .map(|c| alloc::format!("{}: {}", c.field, c.message))
            .collect()
    };
    let good = crd(
        "example.com",
        "foos",
        "Foo",
        "Namespaced",
        one_version(foo_schema()),
    );
    assert_eq!(check(&good), Vec::<String>::new());
    let mut bad = good.clone();
    bad["metadata"]["name"] = json!("wrong.example.com");
    bad["spec"]["group"] = json!("nodot");
    bad["spec"]["scope"] = json!("Everywhere");
    bad["spec"]["versions"][0]["storage"] = json!(false);
    bad["spec"]["conversion"] = json!({"strategy": "Webhook"});
    let got = check(&bad);
    assert!(got.contains(&"metadata.name: Invalid value: \"wrong.example.com\": must be spec.names.plural+\".\"+spec.group".to_string()), "{got:?}");
    assert!(
        got.contains(
            &"spec.group: Invalid value: \"nodot\": should be a domain with at least one dot"
                .to_string()
        ),
        "{got:?}"
    );
    assert!(got.contains(&"spec.scope: Unsupported value: \"Everywhere\": supported values: \"Cluster\", \"Namespaced\"".to_string()), "{got:?}");
    assert!(
        got.iter()
            .any(|c| c.starts_with("spec.versions: Invalid value: ")
                && c.ends_with("must have exactly one version marked as storage version")),
        "{got:?}"
    );
    assert!(
        got.iter().any(|c| c.starts_with(
            "spec.conversion.strategy: Forbidden: Webhook conversion is not supported"
        )),
        "{got:?}"
    );
    // Structural rules.
    let nonstructural = crd(
        "example.com",
        "foos",
        "Foo",
        "Namespaced",
        one_version(json!({
        "type": "object", "properties": {
            "untyped": {"description": "no type"},
            "list": {"type": "array"},
            "both": {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": {"type": "string"}},
            "junctor": {"type": "string", "anyOf": [{"type": "string"}]},
            "metadata": {"type": "object", "properties": {"labels": {"type": "object"}}},
            "bad": {"type": "string", "pattern": "("}}})),
    );
    let got = check(&nonstructural);
    let path = "spec.versions[0].schema.openAPIV3Schema";
    for want in [
        alloc::format!(
            "{path}.properties[untyped].type: Required value: must not be empty for specified object fields"
        ),
        alloc::format!("{path}.properties[list].items: Required value: must be specified"),
        alloc::format!(
            "{path}.properties[both].additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive"
        ),
        alloc::format!(
            "{path}.properties[junctor].anyOf[0].type: Forbidden: must be empty to be structural"
        ),
        alloc::format!(
            "{path}.properties[metadata]: Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified"
        ),
    ] {
        assert!(got.contains(&want), "{want} not in {got:?}");
    }
    assert!(
        got.iter().any(|c| c.starts_with(&alloc::format!(
            "{path}.properties[bad].pattern: Invalid value: \"(\": error parsing regexp"
        ))),
        "{got:?}"
    );
    let no_schema = crd(
        "example.com",
        "foos",
        "Foo",
        "Cluster",
        json!([{"name": "v1", "served": true, "storage": true}]),
    );
    assert_eq!(
        check(&no_schema),
        ["spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required"]
    );
}

#[test]
fn versions_sort_like_kube() {
    let mut v = alloc::vec![
        "v1beta1",
        "v1",
        "v2alpha1",
        "v11alpha2",
        "foo",
        "v2",
        "v1beta2",
        "v10"
    ];
    v.sort_by(|a, b| super::compare_versions(a, b));
    assert_eq!(
        v,
        [
            "v10",
            "v2",
            "v1",
            "v1beta2",
            "v1beta1",
            "v11alpha2",
            "v2alpha1",
            "foo"
        ]
    );
}

// --- through the API server ---

fn server(config: Config) -> Cluster {
    let config = Config {
        admin_token_sha256: Some(Sha256::digest(TOKEN.as_bytes()).into()),
        ..config
    };
    Cluster::new(config, [7; 32], T0)
}

struct Reply {
    status: u16,
    body: Value,
    content_type: &'static str,
}

fn call(
    s: &mut Cluster,
    method: Method,
    path: &str,
    body: Option<Value>,
    content_type: Option<&str>,
    accept: Option<&str>,
) -> Reply {
    let bytes = body
        .map(|b| serde_json::to_vec(&b).unwrap())
        .unwrap_or_default();
    let auth = alloc::format!("Bearer {TOKEN}");
    let mut req = ApiRequest::new(method, path);
    req.authorization = Some(&auth);
    req.body = &bytes;
    req.accept = accept;
    req.content_type = content_type.or(Some(if method == Method::Patch {
        "application/merge-patch+json"
    } else {
        "application/json"
    }));
    let r = s
        .handle_request(T0, &req)
        .into_response()
        .expect("not a watch");
    Reply {
        status: r.status,
        body: serde_json::from_slice(&r.body).unwrap_or(Value::Null),
        content_type: r.content_type,
    }
}

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
        json!([super::CLEANUP_FINALIZER])
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
    let _ = Reply {
        status: 0,
        body: Value::Null,
        content_type: "",
    }
    .content_type;
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
