//! Validation of CustomResourceDefinition objects (apiextensions-apiserver 1.32's
//! `ValidateCustomResourceDefinition` and the structural-schema rules of `ValidateStructural`),
//! with kube's field paths and wording, and the defaults its strategy applies.
//!
//! What is checked: the name (`<plural>.<group>`), group, names, scope, versions (names,
//! exactly one storage version, a schema each), conversion (`None`; `Webhook` is refused: it
//! needs a conversion webhook pod, which this control plane does not run), subresources,
//! printer columns, stored versions, and each schema: a structural `object` root, a `type` on
//! every specified field, what `metadata` may say, what logical junctors may hold, list and map
//! types, patterns that compile, defaults that validate. CEL rules (`x-kubernetes-validations`)
//! are checked for shape only.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde_json::{Map, Value, json};

use super::schema::Schema;
use crate::error::Cause;
use crate::gostr::quote as go_quote;
use crate::json as j;
use crate::validation as v;

fn invalid(field: impl Into<String>, value: &str, detail: &str) -> Cause {
    Cause::invalid(field, value, detail)
}

/// `Invalid value` of a composite value, printed as JSON.
fn invalid_raw(field: impl Into<String>, value: &Value, detail: &str) -> Cause {
    let shown = match value {
        Value::String(s) => go_quote(s),
        other => String::from_utf8(crate::json::to_vec(other)).unwrap_or_default(),
    };
    Cause {
        reason: "FieldValueInvalid",
        message: format!("Invalid value: {shown}: {detail}"),
        field: field.into(),
    }
}

fn required(field: impl Into<String>, detail: &str) -> Cause {
    let mut c = Cause::required(field);
    if !detail.is_empty() {
        c.message = format!("Required value: {detail}");
    }
    c
}

fn forbidden(field: impl Into<String>, detail: &str) -> Cause {
    Cause::forbidden(field, format!("Forbidden: {detail}"))
}

fn not_supported(field: impl Into<String>, value: &str, allowed: &[&str]) -> Cause {
    let list: Vec<String> = allowed.iter().map(|a| go_quote(a)).collect();
    Cause::not_supported(
        field,
        format!(
            "Unsupported value: {}: supported values: {}",
            go_quote(value),
            list.join(", ")
        ),
    )
}

fn duplicate(field: impl Into<String>, value: &str) -> Cause {
    Cause {
        reason: "FieldValueDuplicate",
        message: format!("Duplicate value: {}", go_quote(value)),
        field: field.into(),
    }
}

/// Applies the defaults of `SetDefaults_CustomResourceDefinition` and the create strategy
/// (`status` reset to `storedVersions` = the storage version) or the update strategy (status
/// kept, the new storage version added to `storedVersions`).
pub fn default(crd: &mut Value, old: Option<&Value>) {
    let Some(map) = crd.as_object_mut() else {
        return;
    };
    if let Some(spec) = map.get_mut("spec").and_then(Value::as_object_mut) {
        if let Some(names) = spec.get_mut("names").and_then(Value::as_object_mut) {
            let kind = names
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if names
                .get("singular")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                names.insert("singular".into(), Value::from(kind.to_lowercase()));
            }
            if !kind.is_empty()
                && names
                    .get("listKind")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
            {
                names.insert("listKind".into(), Value::from(format!("{kind}List")));
            }
        }
        let conversion = spec
            .entry("conversion")
            .or_insert_with(|| json!({"strategy": "None"}));
        if let Some(c) = conversion.as_object_mut() {
            c.entry("strategy").or_insert_with(|| Value::from("None"));
            if let Some(port) = c
                .get_mut("webhook")
                .and_then(|w| w.get_mut("clientConfig"))
                .and_then(|cc| cc.get_mut("service"))
                .and_then(Value::as_object_mut)
            {
                port.entry("port").or_insert_with(|| Value::from(443));
            }
        }
        if let Some(versions) = spec.get_mut("versions").and_then(Value::as_array_mut) {
            for version in versions {
                if let Some(v) = version.as_object_mut() {
                    v.entry("served").or_insert(Value::Bool(false));
                    v.entry("storage").or_insert(Value::Bool(false));
                }
            }
        }
    }
    let storage = map
        .get("spec")
        .and_then(|s| s.get("versions"))
        .and_then(Value::as_array)
        .and_then(|vs| {
            vs.iter()
                .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        })
        .map(|v| j::string_at(v, "/name"));
    if old.is_none() {
        map.insert(
            "status".into(),
            json!({"conditions": null, "acceptedNames": {"plural": "", "kind": ""}, "storedVersions": []}),
        );
    }
    if let (Some(storage), Some(status)) = (
        storage,
        map.get_mut("status").and_then(Value::as_object_mut),
    ) {
        let stored = status
            .entry("storedVersions")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Some(list) = stored.as_array_mut()
            && !list.iter().any(|v| v.as_str() == Some(storage.as_str()))
        {
            list.push(Value::from(storage));
        }
    }
}

/// The errors of a CRD object (its metadata is checked by the caller), as causes.
pub fn validate(crd: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut out = Vec::new();
    let empty = Value::Null;
    let spec = crd.get("spec").unwrap_or(&empty);
    let group = j::str_at(spec, "/group");
    let plural = j::str_at(spec, "/names/plural");
    let name = j::str_at(crd, "/metadata/name");
    if !name.is_empty() && name != format!("{plural}.{group}") {
        out.push(invalid(
            "metadata.name",
            name,
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    if group.is_empty() {
        out.push(required("spec.group", ""));
    } else {
        let errs = v::dns1123_subdomain_errors(group);
        if !errs.is_empty() {
            out.push(invalid("spec.group", group, &errs.join(",")));
        }
        if group.split('.').count() < 2 {
            out.push(invalid(
                "spec.group",
                group,
                "should be a domain with at least one dot",
            ));
        }
    }
    validate_names(&mut out, spec.get("names").unwrap_or(&empty), "spec.names");
    match j::str_at(spec, "/scope") {
        "Cluster" | "Namespaced" => {}
        "" => out.push(required("spec.scope", "")),
        other => out.push(not_supported(
            "spec.scope",
            other,
            &["Cluster", "Namespaced"],
        )),
    }
    validate_versions(&mut out, spec);
    validate_conversion(&mut out, spec);
    if spec.get("preserveUnknownFields").and_then(Value::as_bool) == Some(true) {
        out.push(invalid_raw(
            "spec.preserveUnknownFields",
            &Value::Bool(true),
            "must be false",
        ));
    }
    validate_stored_versions(&mut out, crd);
    if let Some(old) = old {
        let old_scope = j::str_at(old, "/spec/scope");
        let scope = j::str_at(spec, "/scope");
        if !old_scope.is_empty() && old_scope != scope {
            out.push(invalid("spec.scope", scope, "field is immutable"));
        }
        let old_kind = j::str_at(old, "/status/acceptedNames/kind");
        let kind = j::str_at(spec, "/names/kind");
        if !old_kind.is_empty()
            && old_kind != kind
            && old.pointer("/metadata/deletionTimestamp").is_some()
        {
            out.push(invalid("spec.names.kind", kind, "field is immutable"));
        }
    }
    out
}

fn dns_label(field: String, value: &str, out: &mut Vec<Cause>) {
    let errs = v::dns1123_label_errors(value);
    if !errs.is_empty() {
        out.push(invalid(field, value, &errs.join(",")));
    }
}

fn validate_names(out: &mut Vec<Cause>, names: &Value, path: &str) {
    let plural = j::str_at(names, "/plural");
    let singular = j::str_at(names, "/singular");
    let kind = j::str_at(names, "/kind");
    let list_kind = j::str_at(names, "/listKind");
    if plural.is_empty() {
        out.push(required(format!("{path}.plural"), ""));
    } else {
        dns_label(format!("{path}.plural"), plural, out);
    }
    if singular.is_empty() {
        out.push(required(format!("{path}.singular"), ""));
    } else {
        dns_label(format!("{path}.singular"), singular, out);
    }
    for (field, value) in [("kind", kind), ("listKind", list_kind)] {
        if value.is_empty() {
            out.push(required(format!("{path}.{field}"), ""));
            continue;
        }
        let errs = v::dns1035_label_errors(&value.to_lowercase());
        if !errs.is_empty() {
            out.push(invalid(
                format!("{path}.{field}"),
                value,
                &format!(
                    "may have mixed case, but should otherwise match: {}",
                    errs.join(",")
                ),
            ));
        }
    }
    if !kind.is_empty() && kind == list_kind {
        out.push(invalid(
            format!("{path}.listKind"),
            list_kind,
            "kind and listKind may not be the same",
        ));
    }
    for (i, short) in names
        .get("shortNames")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        dns_label(
            format!("{path}.shortNames[{i}]"),
            short.as_str().unwrap_or(""),
            out,
        );
    }
    for (i, category) in names
        .get("categories")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        dns_label(
            format!("{path}.categories[{i}]"),
            category.as_str().unwrap_or(""),
            out,
        );
    }
}

fn validate_versions(out: &mut Vec<Cause>, spec: &Value) {
    let versions = spec
        .get("versions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if versions.is_empty() {
        out.push(required(
            "spec.versions",
            "must have exactly one version marked as storage version",
        ));
        return;
    }
    let mut seen: Vec<&str> = Vec::new();
    let mut storage = 0usize;
    for (i, version) in versions.iter().enumerate() {
        let path = format!("spec.versions[{i}]");
        let name = j::str_at(version, "/name");
        let errs = v::dns1035_label_errors(name);
        if !errs.is_empty() {
            out.push(invalid(format!("{path}.name"), name, &errs.join(",")));
        }
        if seen.contains(&name) {
            out.push(duplicate(format!("{path}.name"), name));
        }
        seen.push(name);
        if version.get("storage").and_then(Value::as_bool) == Some(true) {
            storage += 1;
        }
        if let Some(warning) = version.get("deprecationWarning").and_then(Value::as_str)
            && warning.len() > 256
        {
            out.push(invalid(
                format!("{path}.deprecationWarning"),
                warning,
                "must be <= 256 characters long",
            ));
        }
        match version.pointer("/schema/openAPIV3Schema") {
            None | Some(Value::Null) => out.push(required(
                format!("{path}.schema.openAPIV3Schema"),
                "schemas are required",
            )),
            Some(schema) => validate_schema(
                out,
                schema,
                &format!("{path}.schema.openAPIV3Schema"),
                version.pointer("/subresources/status").is_some(),
            ),
        }
        if let Some(subresources) = version.get("subresources") {
            validate_subresources(out, subresources, &format!("{path}.subresources"));
        }
        for (c, column) in version
            .get("additionalPrinterColumns")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            validate_column(
                out,
                column,
                &format!("{path}.additionalPrinterColumns[{c}]"),
            );
        }
    }
    if storage != 1 {
        out.push(invalid_raw(
            "spec.versions",
            spec.get("versions").unwrap_or(&Value::Null),
            "must have exactly one version marked as storage version",
        ));
    }
}

fn validate_conversion(out: &mut Vec<Cause>, spec: &Value) {
    let Some(conversion) = spec.get("conversion") else {
        return;
    };
    match j::str_at(conversion, "/strategy") {
        "None" | "" => {
            if conversion.get("webhook").is_some_and(|w| !w.is_null()) {
                out.push(forbidden(
                    "spec.conversion.webhookClientConfig",
                    "should not be set when strategy is not set to Webhook",
                ));
            }
        }
        "Webhook" => out.push(forbidden(
            "spec.conversion.strategy",
            "Webhook conversion is not supported by this server (it needs a conversion webhook pod, which it does not run); use None",
        )),
        other => out.push(not_supported(
            "spec.conversion.strategy",
            other,
            &["None", "Webhook"],
        )),
    }
}

fn validate_stored_versions(out: &mut Vec<Cause>, crd: &Value) {
    let Some(stored) = crd
        .pointer("/status/storedVersions")
        .and_then(Value::as_array)
    else {
        return;
    };
    if stored.is_empty() {
        return;
    }
    let versions: Vec<&str> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|vs| vs.iter().map(|v| j::str_at(v, "/name")).collect())
        .unwrap_or_default();
    for (i, s) in stored.iter().enumerate() {
        let s = s.as_str().unwrap_or("");
        if !versions.contains(&s) {
            out.push(invalid(
                format!("status.storedVersions[{i}]"),
                s,
                "must appear in spec.versions",
            ));
        }
    }
}

fn json_path_under(path: &str, roots: &[&str]) -> bool {
    let Ok(parsed) = super::columns::JsonPath::parse(path) else {
        return false;
    };
    parsed
        .fields()
        .is_some_and(|f| f.len() >= 2 && f.first().is_some_and(|r| roots.contains(r)))
}

fn validate_subresources(out: &mut Vec<Cause>, sub: &Value, path: &str) {
    let Some(scale) = sub.get("scale") else {
        return;
    };
    let spec_path = j::str_at(scale, "/specReplicasPath");
    if spec_path.is_empty() {
        out.push(required(format!("{path}.scale.specReplicasPath"), ""));
    } else if !json_path_under(spec_path, &["spec"]) {
        out.push(invalid(
            format!("{path}.scale.specReplicasPath"),
            spec_path,
            "should be a json path under .spec",
        ));
    }
    let status_path = j::str_at(scale, "/statusReplicasPath");
    if status_path.is_empty() {
        out.push(required(format!("{path}.scale.statusReplicasPath"), ""));
    } else if !json_path_under(status_path, &["status"]) {
        out.push(invalid(
            format!("{path}.scale.statusReplicasPath"),
            status_path,
            "should be a json path under .status",
        ));
    }
    if let Some(selector) = scale.get("labelSelectorPath").and_then(Value::as_str)
        && !json_path_under(selector, &["spec", "status"])
    {
        out.push(invalid(
            format!("{path}.scale.labelSelectorPath"),
            selector,
            "should be a json path under either .spec or .status",
        ));
    }
}

const COLUMN_TYPES: &[&str] = &["boolean", "date", "integer", "number", "string"];
const COLUMN_FORMATS: &[&str] = &[
    "byte",
    "date",
    "date-time",
    "double",
    "float",
    "int32",
    "int64",
    "name",
    "password",
];

fn validate_column(out: &mut Vec<Cause>, column: &Value, path: &str) {
    if j::str_at(column, "/name").is_empty() {
        out.push(required(format!("{path}.name"), ""));
    }
    let type_ = j::str_at(column, "/type");
    let types = COLUMN_TYPES.join(",");
    if type_.is_empty() {
        out.push(required(
            format!("{path}.type"),
            &format!("must be one of {types}"),
        ));
    } else if !COLUMN_TYPES.contains(&type_) {
        out.push(invalid(
            format!("{path}.type"),
            type_,
            &format!("must be one of {types}"),
        ));
    }
    let format_ = j::str_at(column, "/format");
    if !format_.is_empty() && !COLUMN_FORMATS.contains(&format_) {
        out.push(invalid(
            format!("{path}.format"),
            format_,
            &format!("must be one of {}", COLUMN_FORMATS.join(",")),
        ));
    }
    let json_path = j::str_at(column, "/jsonPath");
    if json_path.is_empty() {
        out.push(required(format!("{path}.JSONPath"), ""));
    } else if let Err(e) = super::columns::JsonPath::parse(json_path) {
        out.push(invalid(
            format!("{path}.JSONPath"),
            json_path,
            &format!("must be a simple json path: {e}"),
        ));
    }
}

/// Keys a schema node may not hold in a CRD, with kube's detail.
const UNSUPPORTED: &[(&str, &str)] = &[
    ("id", "id is not supported"),
    ("additionalItems", "additionalItems is not supported"),
    ("patternProperties", "patternProperties is not supported"),
    ("definitions", "definitions is not supported"),
    ("dependencies", "dependencies is not supported"),
    ("$ref", "$ref is not supported"),
];

/// Keys a node inside `allOf`/`anyOf`/`oneOf`/`not` may not hold to stay structural.
const NOT_IN_JUNCTORS: &[&str] = &[
    "type",
    "nullable",
    "default",
    "additionalProperties",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-embedded-resource",
    "x-kubernetes-int-or-string",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
];

const OPENAPI_TYPES: &[&str] = &["array", "boolean", "integer", "number", "object", "string"];

fn validate_schema(out: &mut Vec<Cause>, schema: &Value, path: &str, status_subresource: bool) {
    let Some(root) = schema.as_object() else {
        out.push(invalid_raw(path, schema, "must be an object"));
        return;
    };
    match root.get("type").and_then(Value::as_str).unwrap_or("") {
        "object" => {}
        "" => out.push(required(format!("{path}.type"), "must not be empty at the root")),
        other if status_subresource => out.push(invalid(
            format!("{path}.type"),
            other,
            "only \"object\" is allowed as the type at the root of the schema if the status subresource is enabled",
        )),
        other => out.push(invalid(format!("{path}.type"), other, "must be object at the root")),
    }
    if root.get("nullable").and_then(Value::as_bool) == Some(true) {
        out.push(forbidden(
            format!("{path}.nullable"),
            "nullable cannot be true at the root",
        ));
    }
    if let Some(meta) = root
        .get("properties")
        .and_then(|p| p.get("metadata"))
        .and_then(Value::as_object)
    {
        validate_root_metadata(out, meta, &format!("{path}.properties[metadata]"));
    }
    let before = out.len();
    walk(out, root, path, Context::Root);
    if out.len() == before {
        match Schema::compile(schema) {
            Err(e) => out.push(invalid(path, "", &e)),
            Ok(compiled) => check_defaults(out, &compiled, schema, path),
        }
    }
}

fn validate_root_metadata(out: &mut Vec<Cause>, meta: &Map<String, Value>, path: &str) {
    let allowed_keys = ["type", "properties", "description"];
    let extra = meta.keys().any(|k| !allowed_keys.contains(&k.as_str()));
    let props_ok = meta
        .get("properties")
        .and_then(Value::as_object)
        .is_none_or(|p| {
            p.iter().all(|(k, v)| {
                matches!(k.as_str(), "name" | "generateName")
                    && v.as_object().is_some_and(|s| {
                        s.keys().all(|k| {
                            matches!(
                                k.as_str(),
                                "type"
                                    | "description"
                                    | "maxLength"
                                    | "pattern"
                                    | "format"
                                    | "enum"
                                    | "minLength"
                            )
                        })
                    })
            })
        });
    if extra || !props_ok {
        out.push(forbidden(
            path,
            "must not specify anything other than name and generateName, but metadata is implicitly specified",
        ));
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    Root,
    Property,
    Item,
    Additional,
    Junctor,
}

fn walk(out: &mut Vec<Cause>, node: &Map<String, Value>, path: &str, ctx: Context) {
    for (key, detail) in UNSUPPORTED {
        if node.contains_key(*key) {
            out.push(forbidden(format!("{path}.{key}"), detail));
        }
    }
    let type_ = node.get("type").and_then(Value::as_str).unwrap_or("");
    if type_ == "null" {
        out.push(forbidden(
            format!("{path}.type"),
            "type cannot be set to null, use nullable as an alternative",
        ));
    } else if !type_.is_empty() && !OPENAPI_TYPES.contains(&type_) {
        out.push(not_supported(format!("{path}.type"), type_, OPENAPI_TYPES));
    }
    let flag = |k: &str| node.get(k).and_then(Value::as_bool) == Some(true);
    if node.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(false)) {
        out.push(invalid_raw(
            format!("{path}.x-kubernetes-preserve-unknown-fields"),
            &Value::Bool(false),
            "must be true or undefined",
        ));
    }
    if ctx == Context::Junctor {
        for key in NOT_IN_JUNCTORS {
            if node.contains_key(*key) {
                out.push(forbidden(
                    format!("{path}.{key}"),
                    "must be empty to be structural",
                ));
            }
        }
    } else if type_.is_empty()
        && ctx != Context::Root
        && !flag("x-kubernetes-int-or-string")
        && !flag("x-kubernetes-preserve-unknown-fields")
    {
        let what = match ctx {
            Context::Item => "must not be empty for specified array items",
            _ => "must not be empty for specified object fields",
        };
        out.push(required(format!("{path}.type"), what));
    }
    if flag("x-kubernetes-int-or-string") && !type_.is_empty() {
        out.push(forbidden(
            format!("{path}.type"),
            "must be empty if x-kubernetes-int-or-string is true",
        ));
    }
    if flag("x-kubernetes-embedded-resource") && type_ != "object" && ctx != Context::Junctor {
        out.push(required(
            format!("{path}.type"),
            "must be object if x-kubernetes-embedded-resource is true",
        ));
    }
    if node.contains_key("properties")
        && node
            .get("additionalProperties")
            .is_some_and(|a| a != &Value::Bool(false))
    {
        out.push(forbidden(
            format!("{path}.additionalProperties"),
            "additionalProperties and properties are mutual exclusive",
        ));
    }
    if let Some(map_type) = node.get("x-kubernetes-map-type").and_then(Value::as_str) {
        if !matches!(map_type, "atomic" | "granular") {
            out.push(not_supported(
                format!("{path}.x-kubernetes-map-type"),
                map_type,
                &["atomic", "granular"],
            ));
        }
        if type_ != "object" {
            out.push(invalid(
                format!("{path}.type"),
                type_,
                "must be object if x-kubernetes-map-type is specified",
            ));
        }
    }
    let list_type = node.get("x-kubernetes-list-type").and_then(Value::as_str);
    if let Some(list_type) = list_type {
        if !matches!(list_type, "atomic" | "set" | "map") {
            out.push(not_supported(
                format!("{path}.x-kubernetes-list-type"),
                list_type,
                &["atomic", "set", "map"],
            ));
        }
        if type_ != "array" {
            out.push(invalid(
                format!("{path}.type"),
                type_,
                "must be array if x-kubernetes-list-type is specified",
            ));
        }
    }
    let keys: Vec<&str> = node
        .get("x-kubernetes-list-map-keys")
        .and_then(Value::as_array)
        .map(|k| k.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !keys.is_empty() && list_type != Some("map") {
        out.push(required(
            format!("{path}.x-kubernetes-list-type"),
            "must be map if x-kubernetes-list-map-keys is non-empty",
        ));
    }
    if list_type == Some("map") {
        if keys.is_empty() {
            out.push(required(
                format!("{path}.x-kubernetes-list-map-keys"),
                "must not be empty if x-kubernetes-list-type is map",
            ));
        }
        let item_props = node
            .get("items")
            .and_then(|i| i.get("properties"))
            .and_then(Value::as_object);
        if !keys
            .iter()
            .all(|k| item_props.is_some_and(|p| p.contains_key(*k)))
        {
            out.push(invalid_raw(
                format!("{path}.x-kubernetes-list-map-keys"),
                node.get("x-kubernetes-list-map-keys")
                    .unwrap_or(&Value::Null),
                "entries must all be names of item properties",
            ));
        }
    }
    if let Some(pattern) = node.get("pattern").and_then(Value::as_str)
        && let Err(e) = super::pattern::Pattern::new(pattern)
    {
        out.push(invalid(format!("{path}.pattern"), pattern, &e));
    }
    if let Some(rules) = node
        .get("x-kubernetes-validations")
        .and_then(Value::as_array)
    {
        for (i, rule) in rules.iter().enumerate() {
            if j::str_at(rule, "/rule").is_empty() {
                out.push(required(
                    format!("{path}.x-kubernetes-validations[{i}].rule"),
                    "rule is not specified",
                ));
            }
        }
    }
    if let Some(props) = node.get("properties").and_then(Value::as_object) {
        for (name, child) in props {
            if let Some(child) = child.as_object() {
                let child_ctx = if ctx == Context::Junctor {
                    Context::Junctor
                } else {
                    Context::Property
                };
                walk(out, child, &format!("{path}.properties[{name}]"), child_ctx);
            }
        }
    }
    match node.get("items") {
        Some(Value::Array(_)) => out.push(forbidden(
            format!("{path}.items"),
            "items must be a schema object and not an array",
        )),
        Some(Value::Object(items)) => {
            let child_ctx = if ctx == Context::Junctor {
                Context::Junctor
            } else {
                Context::Item
            };
            walk(out, items, &format!("{path}.items"), child_ctx);
        }
        _ => {
            if type_ == "array" && ctx != Context::Junctor {
                out.push(required(format!("{path}.items"), "must be specified"));
            }
        }
    }
    if let Some(Value::Object(additional)) = node.get("additionalProperties") {
        let child_ctx = if ctx == Context::Junctor {
            Context::Junctor
        } else {
            Context::Additional
        };
        walk(
            out,
            additional,
            &format!("{path}.additionalProperties"),
            child_ctx,
        );
    }
    for junctor in ["allOf", "anyOf", "oneOf"] {
        for (i, sub) in node
            .get(junctor)
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            if let Some(sub) = sub.as_object() {
                walk(
                    out,
                    sub,
                    &format!("{path}.{junctor}[{i}]"),
                    Context::Junctor,
                );
            }
        }
    }
    if let Some(Value::Object(not)) = node.get("not") {
        walk(out, not, &format!("{path}.not"), Context::Junctor);
    }
}

/// Every `default` must validate against its own node and survive pruning (kube: "must not
/// have unknown fields").
fn check_defaults(out: &mut Vec<Cause>, compiled: &Schema, raw: &Value, path: &str) {
    fn visit(out: &mut Vec<Cause>, raw: &Value, path: &str) {
        let Some(node) = raw.as_object() else {
            return;
        };
        if let Some(default) = node.get("default") {
            let mut wrapper = Map::new();
            for (k, v) in node {
                if k != "default" {
                    wrapper.insert(k.clone(), v.clone());
                }
            }
            if let Ok(schema) = Schema::compile(&Value::Object(wrapper)) {
                let mut pruned = default.clone();
                let dropped = schema.prune_value(&mut pruned);
                if let Some(first) = dropped.first() {
                    out.push(invalid(
                        format!("{path}.default"),
                        "",
                        &format!("must not have unknown fields: {first}"),
                    ));
                }
                for cause in schema.validate(default) {
                    let field = if cause.field.is_empty() {
                        format!("{path}.default")
                    } else {
                        format!("{path}.default.{}", cause.field)
                    };
                    out.push(Cause { field, ..cause });
                }
            }
        }
        if let Some(props) = node.get("properties").and_then(Value::as_object) {
            for (name, child) in props {
                visit(out, child, &format!("{path}.properties[{name}]"));
            }
        }
        if let Some(items) = node.get("items") {
            visit(out, items, &format!("{path}.items"));
        }
        if let Some(additional) = node.get("additionalProperties") {
            visit(out, additional, &format!("{path}.additionalProperties"));
        }
    }
    let _ = compiled;
    visit(out, raw, path);
}
