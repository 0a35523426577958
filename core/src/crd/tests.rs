//! CRDs against the core alone: schema validation, pruning and defaulting as kube's
//! apiextensions-apiserver does them, and CRD validation. Custom resources served through the
//! API are tested in `api/custom_resource_tests.rs`.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde_json::{Value, json};

use super::schema::Schema;

fn causes(schema: &Value, obj: &Value) -> Vec<String> {
    Schema::compile(schema)
        .unwrap()
        .validate(obj)
        .into_iter()
        .map(|c| alloc::format!("{}: {}", c.field, c.message))
        .collect()
}

/// The e2e suite's `schemaFoo`.
pub(crate) fn foo_schema() -> Value {
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

pub(crate) fn crd(group: &str, plural: &str, kind: &str, scope: &str, versions: Value) -> Value {
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": alloc::format!("{plural}.{group}")},
        "spec": {"group": group, "scope": scope,
            "names": {"plural": plural, "singular": plural.trim_end_matches('s'), "kind": kind,
                "shortNames": ["fz"], "categories": ["all"]},
            "versions": versions}})
}

pub(crate) fn one_version(schema: Value) -> Value {
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
