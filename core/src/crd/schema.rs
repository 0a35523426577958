//! Structural schemas of custom resources (apiextensions-apiserver's `apiserver/schema`): a
//! CRD version's `openAPIV3Schema` compiled once into a tree of [`Node`]s that validates,
//! prunes and defaults objects.
//!
//! - Validation follows kube-openapi's validator as apiextensions-apiserver runs it (its
//!   messages, its `in body` wording, and the mapping of each failure to a field error in
//!   `ValidateCustomResource`): types and `nullable`, formats, `enum`, bounds, lengths,
//!   `pattern` ([`super::pattern`]), item and property counts, `uniqueItems`, `multipleOf`,
//!   `required`, and `allOf`/`anyOf`/`oneOf`/`not`.
//! - Pruning drops the fields the schema does not specify, except under
//!   `x-kubernetes-preserve-unknown-fields`, and keeps `apiVersion`/`kind`/`metadata` at the
//!   root and in `x-kubernetes-embedded-resource` objects, whose `metadata` keeps only
//!   ObjectMeta's fields; the dropped paths are what `fieldValidation=Strict` reports.
//! - Defaulting fills absent (or non-nullable `null`) properties, items and map values from
//!   their `default`, after pruning.
//!
//! Compilation refuses nothing a validated CRD can hold; every walk is bounded by the JSON depth
//! limit applied to bodies and schemas before they get here. `x-kubernetes-validations` (CEL)
//! rules are kept in the published schema but not evaluated.

use crate::gostr::quote as go_quote;
use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde_json::{Map, Value};

use super::pattern::Pattern;
use crate::error::Cause;

/// A JSON type a schema names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Type {
    /// No `type`: anything (only with `x-kubernetes-int-or-string` or
    /// `x-kubernetes-preserve-unknown-fields` in a structural schema).
    #[default]
    Unset,
    /// `object`.
    Object,
    /// `array`.
    Array,
    /// `string`.
    String,
    /// `integer`.
    Integer,
    /// `number`.
    Number,
    /// `boolean`.
    Boolean,
}

impl Type {
    fn parse(text: &str) -> Result<Self, String> {
        Ok(match text {
            "" => Type::Unset,
            "object" => Type::Object,
            "array" => Type::Array,
            "string" => Type::String,
            "integer" => Type::Integer,
            "number" => Type::Number,
            "boolean" => Type::Boolean,
            other => return Err(format!("{other} is an invalid type name")),
        })
    }

    /// The name as OpenAPI writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Type::Unset => "",
            Type::Object => "object",
            Type::Array => "array",
            Type::String => "string",
            Type::Integer => "integer",
            Type::Number => "number",
            Type::Boolean => "boolean",
        }
    }
}

/// `x-kubernetes-list-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ListType {
    /// Not given (atomic for apply).
    #[default]
    Unset,
    /// `atomic`.
    Atomic,
    /// `set`: scalar items, no duplicates.
    Set,
    /// `map`: object items keyed by `x-kubernetes-list-map-keys`.
    Map,
}

/// Value validations of one node, kept apart so that plain structural nodes stay small.
#[derive(Debug, Default)]
pub struct Checks {
    format: String,
    enumeration: Vec<Value>,
    maximum: Option<f64>,
    exclusive_maximum: bool,
    minimum: Option<f64>,
    exclusive_minimum: bool,
    max_length: Option<u64>,
    min_length: Option<u64>,
    pattern: Option<(String, Pattern)>,
    max_items: Option<u64>,
    min_items: Option<u64>,
    unique_items: bool,
    multiple_of: Option<f64>,
    max_properties: Option<u64>,
    min_properties: Option<u64>,
    required: Vec<String>,
    all_of: Vec<Node>,
    any_of: Vec<Node>,
    one_of: Vec<Node>,
    not: Option<Box<Node>>,
}

/// One compiled schema node.
#[derive(Debug, Default)]
pub struct Node {
    /// `type`.
    pub type_: Type,
    /// `nullable`.
    pub nullable: bool,
    /// `x-kubernetes-preserve-unknown-fields`.
    pub preserve_unknown: bool,
    /// `x-kubernetes-embedded-resource`.
    pub embedded: bool,
    /// `x-kubernetes-int-or-string`.
    pub int_or_string: bool,
    /// `properties`, sorted by name.
    pub properties: Vec<(String, Node)>,
    /// `additionalProperties` as a schema (`true` compiles to a preserving node).
    pub additional: Option<Box<Node>>,
    /// `items`.
    pub items: Option<Box<Node>>,
    /// `default`.
    pub default: Option<Value>,
    /// `x-kubernetes-list-type`.
    pub list_type: ListType,
    /// `x-kubernetes-list-map-keys`.
    pub map_keys: Vec<String>,
    /// `x-kubernetes-map-type: atomic`.
    pub atomic_map: bool,
    checks: Option<Box<Checks>>,
}

/// A compiled `openAPIV3Schema`.
#[derive(Debug)]
pub struct Schema {
    root: Option<Node>,
    bytes: usize,
}

/// The fields ObjectMeta has, which `metadata` keeps at a resource root and in embedded
/// resources.
const OBJECT_META_FIELDS: &[&str] = &[
    "annotations",
    "creationTimestamp",
    "deletionGracePeriodSeconds",
    "deletionTimestamp",
    "finalizers",
    "generateName",
    "generation",
    "labels",
    "managedFields",
    "name",
    "namespace",
    "ownerReferences",
    "resourceVersion",
    "selfLink",
    "uid",
];

impl Schema {
    /// No schema: every field is kept and nothing is checked.
    pub const PRESERVE: Schema = Schema {
        root: None,
        bytes: 0,
    };

    /// Compiles an `openAPIV3Schema`.
    pub fn compile(raw: &Value) -> Result<Schema, String> {
        let mut bytes = 0usize;
        let root = compile_node(raw, &mut bytes)?;
        Ok(Schema {
            root: Some(root),
            bytes,
        })
    }

    /// The root node, if there is a schema.
    pub fn root(&self) -> Option<&Node> {
        self.root.as_ref()
    }

    /// Approximate heap bytes of the compiled tree, for the registry's budget.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Validates `obj`, kube's field errors as causes (none when valid).
    pub fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        if let Some(root) = &self.root {
            let mut errors = Vec::new();
            validate(root, obj, "", &mut errors);
            out.extend(errors.into_iter().map(Failure::into_cause));
        }
        out
    }

    /// Drops the fields the schema does not specify (and unknown `metadata` fields of the
    /// object and of embedded resources); returns their paths, sorted
    /// (`spec.foo`, `metadata.bogus`), as strict field validation reports them.
    pub fn prune(&self, obj: &mut Value) -> Vec<String> {
        let mut pruned = Vec::new();
        match &self.root {
            Some(root) => prune(root, obj, "", true, &mut pruned),
            None => prune_metadata(obj, "", &mut pruned),
        }
        pruned.sort();
        pruned
    }

    /// Prunes a value that is not a resource (a `default`): no `metadata` is kept specially.
    pub fn prune_value(&self, value: &mut Value) -> Vec<String> {
        let mut pruned = Vec::new();
        if let Some(root) = &self.root {
            prune(root, value, "", false, &mut pruned);
        }
        pruned
    }

    /// Fills defaults into `obj`.
    pub fn default(&self, obj: &mut Value) {
        if let Some(root) = &self.root {
            apply_defaults(root, obj);
        }
    }

    /// The node at a dotted path of property names (`spec.replicas`), for the scale
    /// subresource and printer columns.
    pub fn node_at(&self, path: &[&str]) -> Option<&Node> {
        let mut node = self.root.as_ref()?;
        for step in path {
            node = node.property(step)?;
        }
        Some(node)
    }
}

impl Node {
    /// The property `name`.
    pub fn property(&self, name: &str) -> Option<&Node> {
        self.properties
            .binary_search_by(|(k, _)| k.as_str().cmp(name))
            .ok()
            .and_then(|i| self.properties.get(i))
            .map(|(_, n)| n)
    }

    /// What a value under key `name` of an object of this node is checked and pruned against.
    pub fn child(&self, name: &str) -> Option<&Node> {
        self.property(name).or(self.additional.as_deref())
    }

    /// `format`, if any.
    pub fn format(&self) -> &str {
        self.checks.as_ref().map_or("", |c| c.format.as_str())
    }
}

fn number(v: Option<&Value>) -> Option<f64> {
    v.and_then(Value::as_f64)
}

fn count(v: Option<&Value>) -> Option<u64> {
    v.and_then(Value::as_u64)
}

fn compile_list(v: Option<&Value>, bytes: &mut usize) -> Result<Vec<Node>, String> {
    v.and_then(Value::as_array)
        .map(|items| items.iter().map(|s| compile_node(s, bytes)).collect())
        .unwrap_or_else(|| Ok(Vec::new()))
}

fn compile_node(raw: &Value, bytes: &mut usize) -> Result<Node, String> {
    let Some(map) = raw.as_object() else {
        return Err("a schema must be an object".into());
    };
    *bytes = bytes.saturating_add(core::mem::size_of::<Node>());
    let flag = |key: &str| map.get(key).and_then(Value::as_bool).unwrap_or(false);
    let mut node = Node {
        type_: Type::parse(map.get("type").and_then(Value::as_str).unwrap_or(""))?,
        nullable: flag("nullable"),
        preserve_unknown: flag("x-kubernetes-preserve-unknown-fields"),
        embedded: flag("x-kubernetes-embedded-resource"),
        int_or_string: flag("x-kubernetes-int-or-string"),
        default: map.get("default").cloned(),
        list_type: match map.get("x-kubernetes-list-type").and_then(Value::as_str) {
            Some("atomic") => ListType::Atomic,
            Some("set") => ListType::Set,
            Some("map") => ListType::Map,
            _ => ListType::Unset,
        },
        map_keys: map
            .get("x-kubernetes-list-map-keys")
            .and_then(Value::as_array)
            .map(|keys| {
                keys.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default(),
        atomic_map: map.get("x-kubernetes-map-type").and_then(Value::as_str) == Some("atomic"),
        ..Node::default()
    };
    if let Some(d) = &node.default {
        *bytes = bytes.saturating_add(crate::json::to_vec(d).len());
    }
    if let Some(props) = map.get("properties").and_then(Value::as_object) {
        let mut properties = Vec::with_capacity(props.len());
        for (name, schema) in props {
            *bytes = bytes.saturating_add(name.len().saturating_add(24));
            properties.push((name.clone(), compile_node(schema, bytes)?));
        }
        properties.sort_by(|a, b| a.0.cmp(&b.0));
        node.properties = properties;
    }
    match map.get("additionalProperties") {
        Some(Value::Bool(true)) => {
            node.additional = Some(Box::new(Node {
                preserve_unknown: true,
                ..Node::default()
            }));
        }
        Some(schema @ Value::Object(_)) => {
            node.additional = Some(Box::new(compile_node(schema, bytes)?));
        }
        _ => {}
    }
    if let Some(items) = map.get("items") {
        let items = match items {
            Value::Array(list) => list.first().unwrap_or(&Value::Null),
            other => other,
        };
        if items.is_object() {
            node.items = Some(Box::new(compile_node(items, bytes)?));
        }
    }
    let pattern = match map.get("pattern").and_then(Value::as_str) {
        Some(p) => {
            *bytes = bytes.saturating_add(p.len().saturating_mul(64));
            Some((p.to_string(), Pattern::new(p)?))
        }
        None => None,
    };
    let checks = Checks {
        format: map
            .get("format")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        enumeration: map
            .get("enum")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        maximum: number(map.get("maximum")),
        exclusive_maximum: flag("exclusiveMaximum"),
        minimum: number(map.get("minimum")),
        exclusive_minimum: flag("exclusiveMinimum"),
        max_length: count(map.get("maxLength")),
        min_length: count(map.get("minLength")),
        pattern,
        max_items: count(map.get("maxItems")),
        min_items: count(map.get("minItems")),
        unique_items: flag("uniqueItems"),
        multiple_of: number(map.get("multipleOf")),
        max_properties: count(map.get("maxProperties")),
        min_properties: count(map.get("minProperties")),
        required: map
            .get("required")
            .and_then(Value::as_array)
            .map(|r| {
                r.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default(),
        all_of: compile_list(map.get("allOf"), bytes)?,
        any_of: compile_list(map.get("anyOf"), bytes)?,
        one_of: compile_list(map.get("oneOf"), bytes)?,
        not: match map.get("not") {
            Some(s) => Some(Box::new(compile_node(s, bytes)?)),
            None => None,
        },
    };
    let trivial = checks.format.is_empty()
        && checks.enumeration.is_empty()
        && checks.maximum.is_none()
        && checks.minimum.is_none()
        && checks.max_length.is_none()
        && checks.min_length.is_none()
        && checks.pattern.is_none()
        && checks.max_items.is_none()
        && checks.min_items.is_none()
        && !checks.unique_items
        && checks.multiple_of.is_none()
        && checks.max_properties.is_none()
        && checks.min_properties.is_none()
        && checks.required.is_empty()
        && checks.all_of.is_empty()
        && checks.any_of.is_empty()
        && checks.one_of.is_empty()
        && checks.not.is_none();
    if !trivial {
        *bytes = bytes.saturating_add(core::mem::size_of::<Checks>());
        node.checks = Some(Box::new(checks));
    }
    Ok(node)
}

/// Which field-error shape a validation failure takes (kube's `ValidateCustomResource`).
#[derive(Debug)]
enum Kind {
    Required,
    NotSupported(Vec<String>),
    TooLong(u64),
    TooMany { actual: usize, max: u64 },
    TypeInvalid,
    Invalid,
    Duplicate,
}

/// One validation failure: the field, the value as kube prints it, the validator's message.
#[derive(Debug)]
struct Failure {
    path: String,
    value: String,
    message: String,
    kind: Kind,
}

impl Failure {
    fn into_cause(self) -> Cause {
        let field = self.path.trim_start_matches('.').to_string();
        match self.kind {
            Kind::Required => Cause::required(field),
            Kind::NotSupported(values) => Cause {
                reason: "FieldValueNotSupported",
                message: format!(
                    "Unsupported value: {}: supported values: {}",
                    self.value,
                    values.join(", ")
                ),
                field,
            },
            Kind::TooLong(max) => Cause {
                reason: "FieldValueTooLong",
                message: format!("Too long: may not be more than {max} bytes"),
                field,
            },
            Kind::TooMany { actual, max } => Cause {
                reason: "FieldValueTooMany",
                message: format!("Too many: {actual}: must have at most {max} items"),
                field,
            },
            Kind::TypeInvalid => Cause {
                reason: "FieldValueTypeInvalid",
                message: format!("Invalid value: {}: {}", self.value, self.message),
                field,
            },
            Kind::Invalid => Cause {
                reason: "FieldValueInvalid",
                message: format!("Invalid value: {}: {}", self.value, self.message),
                field,
            },
            Kind::Duplicate => Cause {
                reason: "FieldValueDuplicate",
                message: format!("Duplicate value: {}", self.value),
                field,
            },
        }
    }
}

fn json_text(v: &Value) -> String {
    String::from_utf8(crate::json::to_vec(v)).unwrap_or_default()
}

/// A value as a field error prints it: strings quoted, numbers and booleans bare, `null`.
fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => go_quote(s),
        Value::Null => String::from("\"null\""),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => json_text(other),
    }
}

/// Whether `f` is a whole number (go-openapi's `IsFloat64AJSONInteger`, with its tolerance).
fn integral(f: f64) -> bool {
    if !f.is_finite() {
        return false;
    }
    if !(-9.0e15..=9.0e15).contains(&f) {
        // Beyond 2^53 every double is a whole number.
        return true;
    }
    let whole = f as i64 as f64;
    let diff = if f > whole { f - whole } else { whole - f };
    diff == 0.0 || diff < 1e-9 * if f < 0.0 { -f } else { f }
}

/// A number as Go's `%v` prints a float64 bound (`1`, `1.5`).
fn go_number(n: f64) -> String {
    if integral(n) && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// The JSON type of a value, as kube-openapi names it (`integer` for integral numbers).
fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn name_of(path: &str) -> &str {
    path
}

fn fail(out: &mut Vec<Failure>, path: &str, value: &Value, kind: Kind, message: String) {
    out.push(Failure {
        path: path.to_string(),
        value: shown(value),
        message,
        kind,
    });
}

/// An array's or object's size against `maxItems`/`minItems` or `maxProperties`/`minProperties`:
/// the same two rules with kube's wording for each noun.
struct Size {
    len: usize,
    max: Option<u64>,
    min: Option<u64>,
    noun: &'static str,
}

impl Size {
    fn check(&self, out: &mut Vec<Failure>, path: &str, value: &Value, name: &str) {
        if let Some(max) = self.max
            && self.len as u64 > max
        {
            let actual = self.len;
            fail(
                out,
                path,
                value,
                Kind::TooMany { actual, max },
                String::new(),
            );
        }
        if let Some(min) = self.min
            && (self.len as u64) < min
        {
            let message = format!("{name} in body should have at least {min} {}", self.noun);
            fail(out, path, value, Kind::Invalid, message);
        }
    }
}

/// Whether `value` matches `type_` (integral floats count as integers, integers as numbers).
fn type_matches(type_: Type, value: &Value) -> bool {
    match (type_, value) {
        (Type::Unset, _) => true,
        (Type::Object, Value::Object(_))
        | (Type::Array, Value::Array(_))
        | (Type::String, Value::String(_))
        | (Type::Boolean, Value::Bool(_))
        | (Type::Number, Value::Number(_)) => true,
        (Type::Integer, Value::Number(n)) => {
            n.is_i64() || n.is_u64() || n.as_f64().is_some_and(integral)
        }
        _ => false,
    }
}

fn validate(node: &Node, value: &Value, path: &str, out: &mut Vec<Failure>) {
    if value.is_null() {
        if node.type_ != Type::Unset && !node.nullable {
            let name = name_of(path);
            out.push(Failure {
                path: path.to_string(),
                value: String::from("\"null\""),
                message: format!(
                    "{name} in body must be of type {}: \"null\"",
                    node.type_.as_str()
                ),
                kind: Kind::TypeInvalid,
            });
        }
        if let Some(checks) = &node.checks {
            check_enum(checks, value, path, out);
        }
        return;
    }
    if node.int_or_string && node.type_ == Type::Unset {
        if !matches!(value, Value::String(_)) && !type_matches(Type::Integer, value) {
            let name = name_of(path);
            let actual = json_type(value);
            fail(
                out,
                path,
                &Value::from(actual),
                Kind::TypeInvalid,
                format!("{name} in body must be of type integer,string: \"{actual}\""),
            );
            return;
        }
    } else if !type_matches(node.type_, value) {
        let name = name_of(path);
        let actual = json_type(value);
        fail(
            out,
            path,
            &Value::from(actual),
            Kind::TypeInvalid,
            format!(
                "{name} in body must be of type {}: \"{actual}\"",
                node.type_.as_str()
            ),
        );
        return;
    }
    if let Some(checks) = &node.checks {
        check_values(checks, value, path, out);
    }
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let child_path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                if let Some(prop) = node.property(key) {
                    validate(prop, child, &child_path, out);
                } else if let Some(additional) = &node.additional {
                    validate(additional, child, &child_path, out);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = &node.items {
                for (i, child) in items.iter().enumerate() {
                    validate(item, child, &format!("{path}[{i}]"), out);
                }
            }
            check_list_type(node, items, path, out);
        }
        _ => {}
    }
}

fn check_enum(checks: &Checks, value: &Value, path: &str, out: &mut Vec<Failure>) {
    if checks.enumeration.is_empty() || checks.enumeration.iter().any(|e| e == value) {
        return;
    }
    let values = checks
        .enumeration
        .iter()
        .map(|e| match e {
            Value::String(s) => go_quote(s),
            other => go_quote(&json_text(other)),
        })
        .collect();
    fail(out, path, value, Kind::NotSupported(values), String::new());
}

fn check_values(checks: &Checks, value: &Value, path: &str, out: &mut Vec<Failure>) {
    let name = name_of(path);
    check_enum(checks, value, path, out);
    match value {
        Value::String(s) => {
            let chars = s.chars().count() as u64;
            if let Some(max) = checks.max_length
                && chars > max
            {
                fail(out, path, value, Kind::TooLong(max), String::new());
            }
            if let Some(min) = checks.min_length
                && chars < min
            {
                fail(
                    out,
                    path,
                    value,
                    Kind::Invalid,
                    format!("{name} in body should be at least {min} chars long"),
                );
            }
            if let Some((text, pattern)) = &checks.pattern
                && !pattern.is_match(s)
            {
                fail(
                    out,
                    path,
                    value,
                    Kind::Invalid,
                    format!("{name} in body should match '{text}'"),
                );
            }
            if !checks.format.is_empty() && !format_ok(&checks.format, s) {
                fail(
                    out,
                    path,
                    value,
                    Kind::TypeInvalid,
                    format!(
                        "{name} in body must be of type {}: {}",
                        checks.format,
                        go_quote(s)
                    ),
                );
            }
        }
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(0.0);
            if let Some(max) = checks.maximum {
                let over = if checks.exclusive_maximum {
                    x >= max
                } else {
                    x > max
                };
                if over {
                    let how = if checks.exclusive_maximum {
                        "less than"
                    } else {
                        "less than or equal to"
                    };
                    fail(
                        out,
                        path,
                        value,
                        Kind::Invalid,
                        format!("{name} in body should be {how} {}", go_number(max)),
                    );
                }
            }
            if let Some(min) = checks.minimum {
                let under = if checks.exclusive_minimum {
                    x <= min
                } else {
                    x < min
                };
                if under {
                    let how = if checks.exclusive_minimum {
                        "greater than"
                    } else {
                        "greater than or equal to"
                    };
                    fail(
                        out,
                        path,
                        value,
                        Kind::Invalid,
                        format!("{name} in body should be {how} {}", go_number(min)),
                    );
                }
            }
            if let Some(factor) = checks.multiple_of
                && factor > 0.0
                && !integral(if factor < 1.0 {
                    1.0 / factor * x
                } else {
                    x / factor
                })
            {
                fail(
                    out,
                    path,
                    value,
                    Kind::Invalid,
                    format!(
                        "{name} in body should be a multiple of {}",
                        go_number(factor)
                    ),
                );
            }
        }
        Value::Array(items) => {
            let size = Size {
                len: items.len(),
                max: checks.max_items,
                min: checks.min_items,
                noun: "items",
            };
            size.check(out, path, value, name);
            if checks.unique_items && has_duplicates(items) {
                fail(
                    out,
                    path,
                    value,
                    Kind::Invalid,
                    format!("{name} in body shouldn't contain duplicates"),
                );
            }
        }
        Value::Object(map) => {
            let size = Size {
                len: map.len(),
                max: checks.max_properties,
                min: checks.min_properties,
                noun: "properties",
            };
            size.check(out, path, value, name);
            for key in &checks.required {
                if !map.contains_key(key) {
                    out.push(Failure {
                        path: format!("{path}.{key}"),
                        value: String::new(),
                        message: String::new(),
                        kind: Kind::Required,
                    });
                }
            }
        }
        _ => {}
    }
    check_junctors(checks, value, path, out);
}

fn check_junctors(checks: &Checks, value: &Value, path: &str, out: &mut Vec<Failure>) {
    let quoted = go_quote(path);
    let valid = |node: &Node| {
        let mut errors = Vec::new();
        validate(node, value, path, &mut errors);
        errors
    };
    if !checks.any_of.is_empty() {
        let mut best: Option<Vec<Failure>> = None;
        let mut ok = false;
        for node in &checks.any_of {
            let errors = valid(node);
            if errors.is_empty() {
                ok = true;
                break;
            }
            if best.as_ref().is_none_or(|b| errors.len() < b.len()) {
                best = Some(errors);
            }
        }
        if !ok {
            fail(
                out,
                path,
                value,
                Kind::Invalid,
                format!("{quoted} must validate at least one schema (anyOf)"),
            );
            out.extend(best.unwrap_or_default());
        }
    }
    if !checks.one_of.is_empty() {
        let mut validated = 0usize;
        let mut best: Option<Vec<Failure>> = None;
        for node in &checks.one_of {
            let errors = valid(node);
            if errors.is_empty() {
                validated += 1;
            } else if validated == 0 && best.as_ref().is_none_or(|b| errors.len() < b.len()) {
                best = Some(errors);
            }
        }
        if validated != 1 {
            let detail = if validated == 0 {
                String::from("Found none valid")
            } else {
                format!("Found {validated} valid alternatives")
            };
            fail(
                out,
                path,
                value,
                Kind::Invalid,
                format!("{quoted} must validate one and only one schema (oneOf). {detail}"),
            );
            if validated == 0 {
                out.extend(best.unwrap_or_default());
            }
        }
    }
    if !checks.all_of.is_empty() {
        let mut validated = 0usize;
        let mut failures = Vec::new();
        for node in &checks.all_of {
            let errors = valid(node);
            if errors.is_empty() {
                validated += 1;
            }
            failures.extend(errors);
        }
        if validated != checks.all_of.len() {
            let detail = if validated == 0 {
                ". None validated"
            } else {
                ""
            };
            out.extend(failures);
            fail(
                out,
                path,
                value,
                Kind::Invalid,
                format!("{quoted} must validate all the schemas (allOf){detail}"),
            );
        }
    }
    if let Some(not) = &checks.not
        && valid(not).is_empty()
    {
        fail(
            out,
            path,
            value,
            Kind::Invalid,
            format!("{quoted} must not validate the schema (not)"),
        );
    }
}

/// `x-kubernetes-list-type` checks kube's structural validation makes: `set` items unique,
/// `map` items unique by their keys.
fn check_list_type(node: &Node, items: &[Value], path: &str, out: &mut Vec<Failure>) {
    match node.list_type {
        ListType::Set => {
            for (i, item) in items.iter().enumerate() {
                if items.iter().take(i).any(|earlier| earlier == item) {
                    out.push(Failure {
                        path: format!("{path}[{i}]"),
                        value: shown(item),
                        message: String::new(),
                        kind: Kind::Duplicate,
                    });
                }
            }
        }
        ListType::Map if !node.map_keys.is_empty() => {
            let key_of = |item: &Value| -> Vec<Value> {
                node.map_keys
                    .iter()
                    .map(|k| item.get(k).cloned().unwrap_or(Value::Null))
                    .collect()
            };
            for (i, item) in items.iter().enumerate() {
                let key = key_of(item);
                if items.iter().take(i).any(|earlier| key_of(earlier) == key) {
                    let shown_key: Map<String, Value> = node
                        .map_keys
                        .iter()
                        .zip(key.iter())
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    out.push(Failure {
                        path: format!("{path}[{i}]"),
                        value: json_text(&Value::Object(shown_key)),
                        message: String::new(),
                        kind: Kind::Duplicate,
                    });
                }
            }
        }
        _ => {}
    }
}

fn has_duplicates(items: &[Value]) -> bool {
    items
        .iter()
        .enumerate()
        .any(|(i, item)| items.iter().take(i).any(|earlier| earlier == item))
}

/// The string formats kube validates (its supported set); any other format passes.
fn format_ok(format: &str, s: &str) -> bool {
    match format {
        "date-time" | "datetime" => crate::time::UnixTime::parse_rfc3339(s).is_some(),
        "date" => is_date(s),
        "byte" => base64::Engine::decode(&base64::engine::general_purpose::STANDARD, s).is_ok(),
        "int32" | "int64" | "float" | "double" => true,
        "uuid" => is_uuid(s, None),
        "uuid3" => is_uuid(s, Some(b'3')),
        "uuid4" => is_uuid(s, Some(b'4')),
        "uuid5" => is_uuid(s, Some(b'5')),
        "ipv4" => s.parse::<core::net::Ipv4Addr>().is_ok(),
        "ipv6" => s.parse::<core::net::Ipv6Addr>().is_ok(),
        "cidr" => s.split_once('/').is_some_and(|(ip, bits)| {
            let bits: Option<u8> = bits.parse().ok();
            (ip.parse::<core::net::Ipv4Addr>().is_ok() && bits.is_some_and(|b| b <= 32))
                || (ip.parse::<core::net::Ipv6Addr>().is_ok() && bits.is_some_and(|b| b <= 128))
        }),
        "hostname" => crate::validation::is_dns1123_subdomain(&s.to_ascii_lowercase()),
        "email" => s
            .split_once('@')
            .is_some_and(|(user, host)| !user.is_empty() && host.contains('.')),
        "mac" => {
            let parts: Vec<&str> = s.split([':', '-']).collect();
            matches!(parts.len(), 6 | 8 | 20)
                && parts
                    .iter()
                    .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
        }
        "hexcolor" => s
            .strip_prefix('#')
            .is_some_and(|h| matches!(h.len(), 3 | 6) && h.bytes().all(|b| b.is_ascii_hexdigit())),
        "duration" => is_duration(s),
        _ => true,
    }
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        })
}

fn is_uuid(s: &str, version: Option<u8>) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
        && version.is_none_or(|v| b.get(14) == Some(&v))
}

/// Go's `time.ParseDuration` forms (`1h30m`, `1.5s`, `300ms`), and the `1 day`-style units
/// go-openapi also accepts are not.
fn is_duration(s: &str) -> bool {
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    if s == "0" {
        return true;
    }
    let mut rest = s;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let digits = rest
            .bytes()
            .take_while(|c| c.is_ascii_digit() || *c == b'.')
            .count();
        if digits == 0 {
            return false;
        }
        rest = rest.get(digits..).unwrap_or("");
        let unit = ["ns", "us", "µs", "ms", "s", "m", "h"]
            .iter()
            .filter(|u| rest.starts_with(**u))
            .max_by_key(|u| u.len());
        match unit {
            Some(u) => rest = rest.get(u.len()..).unwrap_or(""),
            None => return false,
        }
    }
    true
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Drops unknown ObjectMeta fields of `obj.metadata` (at a resource root or in an embedded
/// resource), recording their paths.
fn prune_metadata(obj: &mut Value, path: &str, pruned: &mut Vec<String>) {
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let unknown: Vec<String> = meta
        .keys()
        .filter(|k| !OBJECT_META_FIELDS.contains(&k.as_str()))
        .cloned()
        .collect();
    let meta_path = join(path, "metadata");
    for key in unknown {
        meta.remove(&key);
        pruned.push(join(&meta_path, &key));
    }
}

fn prune(
    node: &Node,
    value: &mut Value,
    path: &str,
    resource_root: bool,
    pruned: &mut Vec<String>,
) {
    if (resource_root || node.embedded) && value.is_object() {
        prune_metadata(value, path, pruned);
    }
    if node.preserve_unknown {
        // Known fields are still pruned below them (kube's skipPrune).
        match value {
            Value::Object(map) => {
                for (key, child) in map.iter_mut() {
                    if (resource_root || node.embedded) && key == "metadata" {
                        continue;
                    }
                    if let Some(prop) = node.child(key) {
                        prune(prop, child, &join(path, key), false, pruned);
                    }
                }
            }
            Value::Array(items) => {
                if let Some(item) = &node.items {
                    for (i, child) in items.iter_mut().enumerate() {
                        prune(item, child, &format!("{path}[{i}]"), false, pruned);
                    }
                }
            }
            _ => {}
        }
        return;
    }
    match value {
        Value::Object(map) => {
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                let keeps_meta = resource_root || node.embedded;
                if keeps_meta && matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                    if key == "metadata" {
                        continue;
                    }
                    if map.get(&key).is_some_and(Value::is_string) {
                        continue;
                    }
                }
                let child_path = join(path, &key);
                match node.child(&key) {
                    Some(prop) => {
                        if let Some(child) = map.get_mut(&key) {
                            prune(prop, child, &child_path, false, pruned);
                        }
                    }
                    None => {
                        map.remove(&key);
                        pruned.push(child_path);
                    }
                }
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter_mut().enumerate() {
                let child_path = format!("{path}[{i}]");
                match &node.items {
                    Some(item) => prune(item, child, &child_path, false, pruned),
                    None => prune(&Node::default(), child, &child_path, false, pruned),
                }
            }
        }
        _ => {}
    }
}

fn non_nullable_null(value: &Value, node: &Node) -> bool {
    value.is_null() && !node.nullable
}

fn apply_defaults(node: &Node, value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, prop) in &node.properties {
                let Some(default) = &prop.default else {
                    continue;
                };
                if map.get(key).is_none_or(|v| non_nullable_null(v, prop)) {
                    map.insert(key.clone(), default.clone());
                }
            }
            for (key, child) in map.iter_mut() {
                if let Some(prop) = node.property(key) {
                    apply_defaults(prop, child);
                } else if let Some(additional) = &node.additional {
                    if non_nullable_null(child, additional)
                        && let Some(default) = &additional.default
                    {
                        *child = default.clone();
                    }
                    apply_defaults(additional, child);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = &node.items {
                for child in items.iter_mut() {
                    if non_nullable_null(child, item)
                        && let Some(default) = &item.default
                    {
                        *child = default.clone();
                    }
                    apply_defaults(item, child);
                }
            }
        }
        _ => {}
    }
}
