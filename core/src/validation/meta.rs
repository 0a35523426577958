//! Rules every object passes (`ValidateObjectMeta` and its update): name, generateName,
//! labels, annotations, owner references and finalizers; and the `metav1.LabelSelector` rules and
//! Go renderings that kinds with selectors share.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde_json::{Map, Value};

use super::causes::{Bad, Errs, FIELD_IMMUTABLE, arr, s};
use super::names::{label_value_errors, name_errors, qualified_name_errors};
use crate::gostr::quote;
use crate::resource::ResourceId;

/// kube's `TotalAnnotationSizeLimitB`.
const ANNOTATIONS_MAX: usize = 256 * 1024;

pub(super) fn validate_labels(e: &mut Errs, labels: Option<&Value>, path: &str) {
    let Some(map) = labels.and_then(Value::as_object) else {
        return;
    };
    for (k, v) in map {
        e.invalid_each(path, k, qualified_name_errors(k));
        match v.as_str() {
            Some(v) => e.invalid_each(path, v, label_value_errors(v)),
            None => e.invalid(path, Bad::Raw(v.to_string()), "must be a string"),
        }
    }
}

pub(super) fn validate_annotations(e: &mut Errs, annotations: Option<&Value>, path: &str) {
    let Some(map) = annotations.and_then(Value::as_object) else {
        return;
    };
    let mut total: usize = 0;
    for (k, v) in map {
        e.invalid_each(path, k, qualified_name_errors(&k.to_ascii_lowercase()));
        let len = v.as_str().map_or(0, str::len);
        total = total.saturating_add(k.len()).saturating_add(len);
    }
    if total > ANNOTATIONS_MAX {
        e.too_long(path, ANNOTATIONS_MAX);
    }
}

pub(super) fn validate_meta(e: &mut Errs, resource: ResourceId, meta: &Value) {
    let generate = s(meta, "generateName");
    if !generate.is_empty() {
        e.invalid_each(
            "metadata.generateName",
            generate,
            name_errors(resource, generate, true),
        );
    }
    let name = s(meta, "name");
    if name.is_empty() {
        e.required("metadata.name", "name or generateName is required");
    } else {
        e.invalid_each("metadata.name", name, name_errors(resource, name, false));
    }
    e.nonnegative("metadata.generation", meta.get("generation"));
    validate_labels(e, meta.get("labels"), "metadata.labels");
    validate_annotations(e, meta.get("annotations"), "metadata.annotations");
    for r in arr(meta, "ownerReferences") {
        let p = "metadata.ownerReferences";
        let api_version = s(r, "apiVersion");
        // `schema.FromAPIVersionAndKind`: the version is after the last '/'.
        let version = api_version.rsplit('/').next().unwrap_or("");
        if version.is_empty() {
            e.invalid(
                &format!("{p}.apiVersion"),
                Bad::Str(api_version),
                "version must not be empty",
            );
        }
        for (field, what) in [("kind", "kind"), ("name", "name"), ("uid", "uid")] {
            if s(r, field).is_empty() {
                e.invalid(
                    &format!("{p}.{field}"),
                    Bad::Str(""),
                    &format!("{what} must not be empty"),
                );
            }
        }
    }
    for f in arr(meta, "finalizers") {
        let f = f.as_str().unwrap_or("");
        e.invalid_each("metadata.finalizers", f, qualified_name_errors(f));
    }
}

/// Go's `time.Time.String()` for the RFC 3339 UTC form kube stores (`2024-01-02T03:04:05Z`).
fn go_time(value: &str) -> String {
    match value.strip_suffix('Z').and_then(|v| v.split_once('T')) {
        Some((date, time)) => format!("{date} {time} +0000 UTC"),
        None => value.to_string(),
    }
}

pub(super) fn validate_meta_update(e: &mut Errs, meta: &Value, old: &Value) {
    for key in ["name", "namespace", "uid"] {
        let (new_v, old_v) = (s(meta, key), s(old, key));
        if new_v != old_v {
            e.invalid(&format!("metadata.{key}"), Bad::Str(new_v), FIELD_IMMUTABLE);
        }
    }
    let (new_ts, old_ts) = (s(meta, "creationTimestamp"), s(old, "creationTimestamp"));
    if new_ts != old_ts {
        e.invalid(
            "metadata.creationTimestamp",
            Bad::Raw(go_time(new_ts)),
            FIELD_IMMUTABLE,
        );
    }
    if let (Some(n), Some(o)) = (
        meta.get("generation").and_then(Value::as_i64),
        old.get("generation").and_then(Value::as_i64),
    ) && n < o
    {
        e.invalid(
            "metadata.generation",
            Bad::Int(n),
            "must not be decremented",
        );
    }
}

/// Go's `%#v` of a `map[string]string`, keys sorted as fmt prints them.
pub(super) fn go_map(m: Option<&Map<String, Value>>) -> String {
    let Some(m) = m else {
        return "map[string]string(nil)".into();
    };
    let mut entries: Vec<(&String, &str)> = m
        .iter()
        .map(|(k, v)| (k, v.as_str().unwrap_or("")))
        .collect();
    entries.sort();
    let inner: Vec<String> = entries
        .iter()
        .map(|(k, v)| format!("{}:{}", quote(k), quote(v)))
        .collect();
    format!("map[string]string{{{}}}", inner.join(", "))
}

/// Go's `%#v` of a `v1.LabelSelector`.
pub(super) fn go_label_selector(sel: &Value) -> String {
    let labels = sel.get("matchLabels").and_then(Value::as_object);
    let exprs = match sel.get("matchExpressions").and_then(Value::as_array) {
        None => "[]v1.LabelSelectorRequirement(nil)".to_string(),
        Some(list) => {
            let items: Vec<String> = list
                .iter()
                .map(|x| {
                    let values = match x.get("values").and_then(Value::as_array) {
                        None => "[]string(nil)".to_string(),
                        Some(v) => {
                            let v: Vec<String> =
                                v.iter().map(|s| quote(s.as_str().unwrap_or(""))).collect();
                            format!("[]string{{{}}}", v.join(", "))
                        }
                    };
                    format!(
                        "v1.LabelSelectorRequirement{{Key:{}, Operator:{}, Values:{}}}",
                        quote(s(x, "key")),
                        quote(s(x, "operator")),
                        values
                    )
                })
                .collect();
            format!("[]v1.LabelSelectorRequirement{{{}}}", items.join(", "))
        }
    };
    format!(
        "v1.LabelSelector{{MatchLabels:{}, MatchExpressions:{}}}",
        go_map(labels),
        exprs
    )
}

pub(super) fn validate_label_selector(e: &mut Errs, sel: &Value, path: &str) {
    validate_labels(e, sel.get("matchLabels"), &format!("{path}.matchLabels"));
    for (i, x) in arr(sel, "matchExpressions").iter().enumerate() {
        let xp = format!("{path}.matchExpressions[{i}]");
        let values = arr(x, "values");
        match s(x, "operator") {
            "In" | "NotIn" => {
                if values.is_empty() {
                    e.required(
                        &format!("{xp}.values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    );
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    e.forbidden(
                        &format!("{xp}.values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    );
                }
            }
            other => e.invalid(
                &format!("{xp}.operator"),
                Bad::Str(other),
                "not a valid selector operator",
            ),
        }
        let key = s(x, "key");
        e.invalid_each(&format!("{xp}.key"), key, qualified_name_errors(key));
        for (j, v) in values.iter().enumerate() {
            let v = v.as_str().unwrap_or("");
            e.invalid_each(&format!("{xp}.values[{j}]"), v, label_value_errors(v));
        }
    }
}
