//! The OpenAPI v2 and v3 forms of custom resources, as apiextensions-apiserver's
//! `controller/openapi/builder` publishes them: per served version, the kind's schema (the
//! structural schema with `metadata`, `apiVersion` and `kind` added, int-or-string unfolded,
//! and for v2 what kubectl cannot read removed) under the REST-friendly name
//! `<reversed group>.<version>.<Kind>`, its list, and the paths of its verbs.
//!
//! The paths and the shared schemas they reference (ObjectMeta, ListMeta, Status,
//! DeleteOptions, Patch, Scale) are taken from kube-apiserver's own documents that core
//! embeds (the Deployment paths of `apps/v1`, which carry every parameter a custom resource
//! has, with kube's wording), renamed for the custom kind: nothing is restated by hand.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde_json::{Map, Value, json};

use super::{Definition, Version};

const STANDARD_METADATA: &str = "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const LIST_METADATA: &str = "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";
const API_VERSION: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const KIND: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";
const EMBEDDED_API_VERSION: &str = "apiVersion defines the versioned schema of this representation of an object. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const EMBEDDED_KIND: &str = "kind is a string value representing the type of this object. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";

/// `ToRESTFriendlyName("group/version/Kind")`: the group's labels reversed, then dots.
pub fn definition_name(group: &str, version: &str, kind: &str) -> String {
    let mut labels: Vec<&str> = group.split('.').collect();
    labels.reverse();
    format!("{}.{version}.{kind}", labels.join("."))
}

/// Which document a schema goes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// `/openapi/v2` (`#/definitions/`).
    V2,
    /// `/openapi/v3` (`#/components/schemas/`).
    V3,
}

impl Form {
    fn reference(self, name: &str) -> String {
        match self {
            Form::V2 => format!("#/definitions/{name}"),
            Form::V3 => format!("#/components/schemas/{name}"),
        }
    }
}

/// The keys of a schema node the structural schema keeps (`NewStructural` then
/// `ToKubeOpenAPI`); the rest (`example`, `externalDocs`, `$schema`, ...) is not published.
const STRUCTURAL_KEYS: &[&str] = &[
    "type",
    "nullable",
    "description",
    "title",
    "default",
    "format",
    "enum",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "multipleOf",
    "maxProperties",
    "minProperties",
    "required",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-embedded-resource",
    "x-kubernetes-int-or-string",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
    "x-kubernetes-validations",
];

/// The structural form of `raw`, int-or-string unfolded into `anyOf` (kube's `Unfold`).
fn structural(raw: &Value, junctor: bool) -> Value {
    let Some(map) = raw.as_object() else {
        return Value::Object(Map::new());
    };
    let mut out = Map::new();
    for key in STRUCTURAL_KEYS {
        if let Some(v) = map.get(*key) {
            if *key == "x-kubernetes-preserve-unknown-fields" && v != &Value::Bool(true) {
                continue;
            }
            out.insert((*key).into(), v.clone());
        }
    }
    if let Some(props) = map.get("properties").and_then(Value::as_object) {
        let props: Map<String, Value> = props
            .iter()
            .map(|(k, v)| (k.clone(), structural(v, junctor)))
            .collect();
        out.insert("properties".into(), Value::Object(props));
    }
    if let Some(items) = map.get("items").filter(|i| i.is_object()) {
        out.insert("items".into(), structural(items, junctor));
    }
    match map.get("additionalProperties") {
        Some(Value::Object(_)) => {
            if let Some(a) = map.get("additionalProperties") {
                out.insert("additionalProperties".into(), structural(a, junctor));
            }
        }
        Some(Value::Bool(b)) => {
            out.insert("additionalProperties".into(), Value::Bool(*b));
        }
        _ => {}
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(list) = map.get(key).and_then(Value::as_array) {
            out.insert(
                key.into(),
                Value::Array(list.iter().map(|s| structural(s, true)).collect()),
            );
        }
    }
    if let Some(not) = map.get("not") {
        out.insert("not".into(), structural(not, true));
    }
    if !junctor
        && out.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true))
        && !out.contains_key("anyOf")
        && !out.contains_key("allOf")
    {
        out.insert(
            "anyOf".into(),
            json!([{"type": "integer"}, {"type": "string"}]),
        );
    }
    Value::Object(out)
}

/// kube's `ToStructuralOpenAPIV2`: no junctors; nullable and preserving nodes lose what
/// kubectl 1.x misreads.
fn to_v2(node: &mut Value) {
    let Some(map) = node.as_object_mut() else {
        return;
    };
    for key in ["allOf", "anyOf", "oneOf", "not"] {
        map.remove(key);
    }
    if map.get("nullable") == Some(&Value::Bool(true)) {
        map.remove("type");
        map.remove("nullable");
        map.remove("items");
        map.remove("properties");
    }
    let preserve = map.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    if preserve {
        map.remove("items");
        map.remove("properties");
    }
    if !map.contains_key("items") && map.get("type").and_then(Value::as_str) == Some("array") {
        map.remove("type");
    }
    if preserve && map.get("type").and_then(Value::as_str) == Some("object") {
        map.remove("type");
    }
    let nullable_props: Vec<String> = map
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| {
            p.iter()
                .filter(|(_, v)| v.get("nullable") == Some(&Value::Bool(true)))
                .map(|(k, _)| k.clone())
                .collect()
        })
        .unwrap_or_default();
    if !nullable_props.is_empty()
        && let Some(required) = map.get_mut("required").and_then(Value::as_array_mut)
    {
        required.retain(|r| {
            !r.as_str()
                .is_some_and(|r| nullable_props.iter().any(|n| n == r))
        });
        if required.is_empty() {
            map.remove("required");
        }
    }
    if map
        .get("additionalProperties")
        .and_then(|a| a.get("nullable"))
        == Some(&Value::Bool(true))
    {
        map.remove("required");
    }
    if let Some(props) = map.get_mut("properties").and_then(Value::as_object_mut) {
        for child in props.values_mut() {
            to_v2(child);
        }
    }
    if let Some(items) = map.get_mut("items") {
        to_v2(items);
    }
    if let Some(additional) = map.get_mut("additionalProperties") {
        to_v2(additional);
    }
}

fn type_meta_property(description: &str) -> Value {
    json!({"description": description, "type": "string"})
}

fn meta_ref(form: Form, name: &str, description: &str) -> Value {
    match form {
        Form::V2 => json!({"$ref": form.reference(name), "description": description}),
        Form::V3 => json!({
            "allOf": [{"$ref": form.reference(name)}],
            "description": description,
        }),
    }
}

/// `addEmbeddedProperties`: `x-kubernetes-embedded-resource` objects gain `apiVersion`,
/// `kind` and `metadata`, and require the first two (not under a preserving node in v2).
fn add_embedded(node: &mut Value, form: Form) {
    let Some(map) = node.as_object_mut() else {
        return;
    };
    if let Some(props) = map.get_mut("properties").and_then(Value::as_object_mut) {
        for child in props.values_mut() {
            add_embedded(child, form);
        }
    }
    if let Some(items) = map.get_mut("items") {
        add_embedded(items, form);
    }
    if let Some(additional) = map.get_mut("additionalProperties") {
        add_embedded(additional, form);
    }
    let flag = |m: &Map<String, Value>, k: &str| m.get(k) == Some(&Value::Bool(true));
    if form == Form::V2 && flag(map, "x-kubernetes-preserve-unknown-fields") {
        return;
    }
    if !flag(map, "x-kubernetes-embedded-resource") {
        return;
    }
    let props = map
        .entry("properties")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(props) = props.as_object_mut() {
        props.insert(
            "apiVersion".into(),
            type_meta_property(EMBEDDED_API_VERSION),
        );
        props.insert("kind".into(), type_meta_property(EMBEDDED_KIND));
        props.insert(
            "metadata".into(),
            meta_ref(form, OBJECT_META, STANDARD_METADATA),
        );
    }
    let required = map
        .entry("required")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Some(list) = required.as_array_mut() {
        for key in ["kind", "apiVersion"] {
            if !list.iter().any(|r| r.as_str() == Some(key)) {
                list.push(Value::from(key));
            }
        }
    }
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!([{"group": group, "kind": kind, "version": version}])
}

/// The kind's published schema in version `version` (`buildKubeNative`).
pub fn kind_schema(d: &Definition, version: &Version, form: Form) -> Value {
    let raw = &version.raw_schema;
    let root_preserves =
        raw.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    let mut schema = if raw.is_null() || (form == Form::V2 && root_preserves) {
        json!({"type": "object"})
    } else {
        let mut s = structural(raw, false);
        if form == Form::V2 {
            to_v2(&mut s);
        }
        if let Some(map) = s.as_object_mut() {
            let props = map
                .entry("properties")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(props) = props.as_object_mut() {
                props.insert(
                    "metadata".into(),
                    meta_ref(form, OBJECT_META, STANDARD_METADATA),
                );
                props.insert("apiVersion".into(), type_meta_property(API_VERSION));
                props.insert("kind".into(), type_meta_property(KIND));
            }
        }
        add_embedded(&mut s, form);
        s
    };
    if let Some(map) = schema.as_object_mut() {
        map.insert(
            "x-kubernetes-group-version-kind".into(),
            gvk(&d.group, &version.name, &d.kind),
        );
        map.insert(
            "x-kubernetes-selectable-fields".into(),
            selectable_fields(version),
        );
    }
    schema
}

fn selectable_fields(version: &Version) -> Value {
    Value::Array(
        version
            .selectable_fields
            .iter()
            .map(|f| json!({"fieldPath": f}))
            .collect(),
    )
}

/// The list kind's published schema (`buildListSchema`).
pub fn list_schema(d: &Definition, version: &Version, form: Form) -> Value {
    let item = definition_name(&d.group, &version.name, &d.kind);
    let schema = json!({
        "description": format!("{} is a list of {}", d.list_kind, d.kind),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": type_meta_property(API_VERSION),
            "items": {
                "description": format!("List of {}. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md", d.plural),
                "type": "array",
                "items": {"$ref": form.reference(&item)},
            },
            "kind": type_meta_property(KIND),
            "metadata": meta_ref(form, LIST_META, LIST_METADATA),
        },
        "x-kubernetes-group-version-kind": gvk(&d.group, &version.name, &d.list_kind),
        "x-kubernetes-selectable-fields": selectable_fields(version),
    });
    schema
}

/// The definitions one served version publishes: (name, schema) for the kind and its list.
pub fn definitions(d: &Definition, version: &Version, form: Form) -> [(String, Value); 2] {
    [
        (
            definition_name(&d.group, &version.name, &d.kind),
            kind_schema(d, version, form),
        ),
        (
            definition_name(&d.group, &version.name, &d.list_kind),
            list_schema(d, version, form),
        ),
    ]
}

/// The Deployment paths of kube's own `apps/v1` document, which a custom resource's paths are
/// made from.
#[derive(Debug, Clone, Default)]
pub struct PathTemplate {
    /// `/apis/apps/v1/namespaces/{namespace}/deployments`.
    collection: Value,
    /// `.../deployments/{name}`.
    object: Value,
    /// `.../deployments/{name}/status`.
    status: Value,
    /// `.../deployments/{name}/scale`.
    scale: Value,
    /// `/apis/apps/v1/deployments` (list across namespaces).
    all_namespaces: Value,
}

const TEMPLATE_PREFIX: &str = "/apis/apps/v1";

impl PathTemplate {
    /// Takes the template paths out of a parsed `apps/v1` document (v3 or v2).
    pub fn from_document(doc: &Value) -> Self {
        let path = |p: &str| {
            doc.get("paths")
                .and_then(|paths| paths.get(format!("{TEMPLATE_PREFIX}{p}").as_str()))
                .cloned()
                .unwrap_or(Value::Null)
        };
        Self {
            collection: path("/namespaces/{namespace}/deployments"),
            object: path("/namespaces/{namespace}/deployments/{name}"),
            status: path("/namespaces/{namespace}/deployments/{name}/status"),
            scale: path("/namespaces/{namespace}/deployments/{name}/scale"),
            all_namespaces: path("/deployments"),
        }
    }

    /// The paths of `d` in `version`, for `form`'s document.
    pub fn paths(&self, d: &Definition, version: &Version, form: Form) -> Vec<(String, Value)> {
        let prefix = format!("/apis/{}/{}", d.group, version.name);
        let collection = if d.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}", d.plural)
        } else {
            format!("{prefix}/{}", d.plural)
        };
        let mut out = Vec::new();
        let mut add = |path: String, template: &Value, sub: &str| {
            if template.is_null() {
                return;
            }
            let mut item = template.clone();
            rename(&mut item, d, version, form, sub);
            if !d.namespaced {
                drop_namespace(&mut item);
            }
            out.push((path, item));
        };
        add(collection.clone(), &self.collection, "");
        add(format!("{collection}/{{name}}"), &self.object, "");
        if version.status {
            add(
                format!("{collection}/{{name}}/status"),
                &self.status,
                "Status",
            );
        }
        if version.scale.is_some() {
            add(format!("{collection}/{{name}}/scale"), &self.scale, "Scale");
        }
        if d.namespaced {
            add(format!("{prefix}/{}", d.plural), &self.all_namespaces, "");
        }
        out
    }
}

fn is_namespace_param(p: &Value) -> bool {
    p.get("name").and_then(Value::as_str) == Some("namespace")
        || p.get("$ref")
            .and_then(Value::as_str)
            .is_some_and(|r| r.contains("/namespace-"))
}

fn drop_namespace(item: &mut Value) {
    if let Some(params) = item.get_mut("parameters").and_then(Value::as_array_mut) {
        params.retain(|p| !is_namespace_param(p));
    }
    if let Some(map) = item.as_object_mut() {
        for (key, op) in map.iter_mut() {
            if key == "parameters" {
                continue;
            }
            if let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) {
                params.retain(|p| !is_namespace_param(p));
            }
            if let Some(id) = op.get_mut("operationId")
                && let Some(text) = id.as_str()
            {
                *id = Value::from(text.replacen("Namespaced", "", 1));
            }
        }
    }
}

/// Rewrites a Deployment path item for the custom kind: schema references, the
/// group-version-kind, descriptions, operation ids, tags, and the media types a custom
/// resource takes (no strategic merge patch, no protobuf, JSON and YAML only).
fn rename(item: &mut Value, d: &Definition, version: &Version, form: Form, sub: &str) {
    let kind_ref = form.reference(&definition_name(&d.group, &version.name, &d.kind));
    let list_ref = form.reference(&definition_name(&d.group, &version.name, &d.list_kind));
    let deployment_ref = form.reference("io.k8s.api.apps.v1.Deployment");
    let deployment_list_ref = form.reference("io.k8s.api.apps.v1.DeploymentList");
    let Some(map) = item.as_object_mut() else {
        return;
    };
    for (key, op) in map.iter_mut() {
        if key == "parameters" {
            continue;
        }
        let Some(op) = op.as_object_mut() else {
            continue;
        };
        if let Some(text) = op.get("description").and_then(Value::as_str) {
            let text = text.replace("Deployment", &d.kind);
            op.insert("description".into(), Value::from(text));
        }
        if let Some(id) = op.get("operationId").and_then(Value::as_str) {
            let id = id.replacen("AppsV1", "", 1).replace("Deployment", &d.kind);
            op.insert("operationId".into(), Value::from(id));
        }
        let tag = format!("{}_{}", d.group.replace('.', "_"), version.name);
        op.insert("tags".into(), json!([tag]));
        op.insert(
            "x-kubernetes-group-version-kind".into(),
            json!({"group": d.group, "kind": d.kind, "version": version.name}),
        );
        if op.contains_key("produces") {
            op.insert(
                "produces".into(),
                json!(["application/json", "application/yaml"]),
            );
        }
        if key == "patch" {
            let patch_types = [
                "application/json-patch+json",
                "application/merge-patch+json",
                "application/apply-patch+yaml",
            ];
            if op.contains_key("consumes") {
                op.insert("consumes".into(), json!(patch_types));
            }
            if let Some(content) = op
                .get_mut("requestBody")
                .and_then(|b| b.get_mut("content"))
                .and_then(Value::as_object_mut)
            {
                content.retain(|k, _| patch_types.contains(&k.as_str()));
            }
        } else if op.contains_key("consumes") {
            op.insert(
                "consumes".into(),
                json!(["application/json", "application/yaml"]),
            );
        }
        if let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) {
            for response in responses.values_mut() {
                if let Some(content) = response.get_mut("content").and_then(Value::as_object_mut) {
                    content.retain(|k, _| k == "application/json" || k == "application/yaml");
                }
            }
        }
        if let Some(content) = op
            .get_mut("requestBody")
            .and_then(|b| b.get_mut("content"))
            .and_then(Value::as_object_mut)
            && key != "patch"
        {
            content.retain(|k, _| k == "application/json" || k == "application/yaml");
        }
    }
    let _ = sub;
    replace_refs(item, &deployment_list_ref, &list_ref);
    replace_refs(item, &deployment_ref, &kind_ref);
}

fn replace_refs(v: &mut Value, from: &str, to: &str) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if k == "$ref" && child.as_str() == Some(from) {
                    *child = Value::from(to);
                } else {
                    replace_refs(child, from, to);
                }
            }
        }
        Value::Array(items) => {
            for child in items {
                replace_refs(child, from, to);
            }
        }
        _ => {}
    }
}

/// Every `$ref` target (`#/components/schemas/X` → `X`) under `v`.
pub fn refs(v: &Value, prefix: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                if k == "$ref"
                    && let Some(name) = child.as_str().and_then(|r| r.strip_prefix(prefix))
                {
                    if !out.iter().any(|o| o == name) {
                        out.push(name.to_string());
                    }
                } else {
                    refs(child, prefix, out);
                }
            }
        }
        Value::Array(items) => {
            for child in items {
                refs(child, prefix, out);
            }
        }
        _ => {}
    }
}
