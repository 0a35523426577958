//! Validation of Events as kube-apiserver 1.32 does it (`pkg/apis/core/validation/events.go`):
//! the legacy rules every Event passes whichever API wrote it, and the strict ones that apply
//! only to writes through `events.k8s.io/v1` (`ValidateEventCreate`/`ValidateEventUpdate` with
//! that request version). Both run on the stored (core `v1`) shape, as kube's run on the
//! internal type, so field paths name the internal fields (`message`, `involvedObject`,
//! `reportingController`) whichever API was used.

use alloc::format;
use alloc::string::{String, ToString};
use serde_json::Value;

use super::causes::{Bad, Errs, FIELD_IMMUTABLE, s};
use super::names::{dns1123_subdomain_errors, qualified_name_errors};
use crate::gostr::quote;

/// `ReportingInstanceLengthLimit`, `ActionLengthLimit`, `ReasonLengthLimit`.
const SHORT_FIELD_LIMIT: usize = 128;
/// `NoteLengthLimit`: an Event's message (`note`) is at most 1 KiB.
const NOTE_LIMIT: usize = 1024;

/// Whether a time field holds a time (Go's zero `metav1.Time` encodes as null or is absent).
fn is_set(obj: &Value, key: &str) -> bool {
    obj.get(key)
        .is_some_and(|v| !v.is_null() && v.as_str() != Some(""))
}

/// `legacyValidateEvent`: what every Event must satisfy, core `v1` writes included.
pub(super) fn validate_legacy(e: &mut Errs, obj: &Value) {
    let ns = obj
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    let involved_ns = obj
        .pointer("/involvedObject/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !is_set(obj, "eventTime") {
        // An "old" Event: its namespace and its object's must agree.
        let ok = if involved_ns.is_empty() {
            ns.is_empty() || ns == "default"
        } else {
            ns == involved_ns
        };
        if !ok {
            e.invalid(
                "involvedObject.namespace",
                Bad::Str(involved_ns),
                "does not match event.namespace",
            );
        }
    } else {
        if involved_ns.is_empty() && ns != "default" && ns != "kube-system" {
            e.invalid(
                "involvedObject.namespace",
                Bad::Str(involved_ns),
                "does not match event.namespace",
            );
        }
        let controller = s(obj, "reportingComponent");
        if controller.is_empty() {
            e.required("reportingController", "");
        }
        e.invalid_each(
            "reportingController",
            controller,
            qualified_name_errors(controller),
        );
        for (field, limit) in [
            ("reportingInstance", SHORT_FIELD_LIMIT),
            ("action", SHORT_FIELD_LIMIT),
            ("reason", SHORT_FIELD_LIMIT),
        ] {
            let value = s(obj, field);
            if value.is_empty() {
                e.required(field, "");
            }
            if value.len() > limit {
                e.invalid(
                    field,
                    Bad::Str(""),
                    &format!("can have at most {limit} characters"),
                );
            }
        }
        if s(obj, "message").len() > NOTE_LIMIT {
            e.invalid(
                "message",
                Bad::Str(""),
                &format!("can have at most {NOTE_LIMIT} characters"),
            );
        }
    }
    e.invalid_each("namespace", ns, dns1123_subdomain_errors(ns));
}

/// `validateV1EventSeries`.
fn validate_series(e: &mut Errs, obj: &Value) {
    let Some(series) = obj.get("series").filter(|v| !v.is_null()) else {
        return;
    };
    if series.get("count").and_then(Value::as_i64).unwrap_or(0) < 2 {
        e.invalid("series.count", Bad::Str(""), "should be at least 2");
    }
    if !is_set(series, "lastObservedTime") {
        e.required("series.lastObservedTime", "");
    }
}

/// The strict rules of a create through `events.k8s.io/v1` (`ValidateEventCreate` beyond the
/// legacy rules; object metadata is checked for every kind already).
pub(super) fn validate_v1_create(e: &mut Errs, obj: &Value) {
    validate_series(e, obj);
    if !is_set(obj, "eventTime") {
        e.required("eventTime", "");
    }
    let kind = s(obj, "type");
    if kind != "Normal" && kind != "Warning" {
        e.invalid("type", Bad::Str(""), &format!("has invalid value: {kind}"));
    }
    for field in ["firstTimestamp", "lastTimestamp"] {
        if is_set(obj, field) {
            e.invalid(field, Bad::Str(""), "needs to be unset");
        }
    }
    if obj.get("count").and_then(Value::as_i64).unwrap_or(0) != 0 {
        e.invalid("count", Bad::Str(""), "needs to be unset");
    }
    let source = obj.get("source").unwrap_or(&Value::Null);
    if !s(source, "component").is_empty() || !s(source, "host").is_empty() {
        e.invalid("source", Bad::Str(""), "needs to be unset");
    }
}

/// How Go's `%v` prints one field of an Event (what an immutable-field error shows).
type GoValue = fn(&Value) -> String;

/// The strict rules of an update through `events.k8s.io/v1` (`ValidateEventUpdate` beyond the
/// legacy rules): a changed series is checked again, and everything an Event reports is
/// immutable, each refused with its new value printed as Go prints it.
pub(super) fn validate_v1_update(e: &mut Errs, obj: &Value, old: &Value) {
    let series = |v: &Value| v.get("series").filter(|s| !s.is_null()).cloned();
    if series(obj) != series(old) {
        validate_series(e, obj);
    }
    let checks: [(&str, GoValue); 14] = [
        ("involvedObject", |v| go_reference(v.get("involvedObject"))),
        ("reason", |v| quote(s(v, "reason"))),
        ("message", |v| quote(s(v, "message"))),
        ("source", |v| go_source(v.get("source"))),
        ("firstTimestamp", |v| go_time(v.get("firstTimestamp"))),
        ("lastTimestamp", |v| go_time(v.get("lastTimestamp"))),
        ("count", |v| {
            v.get("count")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                .to_string()
        }),
        ("reason", |v| quote(s(v, "reason"))),
        ("type", |v| quote(s(v, "type"))),
        ("eventTime", |v| go_time(v.get("eventTime"))),
        ("action", |v| quote(s(v, "action"))),
        ("related", |v| {
            match v.get("related").filter(|r| !r.is_null()) {
                Some(r) => go_reference(Some(r)),
                None => String::from("null"),
            }
        }),
        ("reportingController", |v| quote(s(v, "reportingComponent"))),
        ("reportingInstance", |v| quote(s(v, "reportingInstance"))),
    ];
    // kube checks `reason` twice, and so reports a changed reason twice.
    for (field, render) in checks {
        let (new, was) = (render(obj), render(old));
        if new != was {
            e.invalid(field, Bad::Raw(new), FIELD_IMMUTABLE);
        }
    }
}

/// Go's `%#v` of an internal `core.ObjectReference`.
fn go_reference(r: Option<&Value>) -> String {
    let r = r.unwrap_or(&Value::Null);
    format!(
        "core.ObjectReference{{Kind:{}, Namespace:{}, Name:{}, UID:{}, APIVersion:{}, ResourceVersion:{}, FieldPath:{}}}",
        quote(s(r, "kind")),
        quote(s(r, "namespace")),
        quote(s(r, "name")),
        quote(s(r, "uid")),
        quote(s(r, "apiVersion")),
        quote(s(r, "resourceVersion")),
        quote(s(r, "fieldPath")),
    )
}

/// Go's `%#v` of an internal `core.EventSource`.
fn go_source(r: Option<&Value>) -> String {
    let r = r.unwrap_or(&Value::Null);
    format!(
        "core.EventSource{{Component:{}, Host:{}}}",
        quote(s(r, "component")),
        quote(s(r, "host"))
    )
}

/// Go's `time.Time.String()` of a stored `Time` or `MicroTime` (`2024-01-02T03:04:05.5Z`):
/// fractional seconds without trailing zeros; the zero time when unset.
fn go_time(v: Option<&Value>) -> String {
    let Some(text) = v.and_then(Value::as_str).filter(|t| !t.is_empty()) else {
        return String::from("0001-01-01 00:00:00 +0000 UTC");
    };
    let Some((date, time)) = text.strip_suffix('Z').and_then(|t| t.split_once('T')) else {
        return String::from(text);
    };
    let time = match time.split_once('.') {
        Some((whole, fraction)) => {
            let fraction = fraction.trim_end_matches('0');
            if fraction.is_empty() {
                String::from(whole)
            } else {
                format!("{whole}.{fraction}")
            }
        }
        None => String::from(time),
    };
    format!("{date} {time} +0000 UTC")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn go_renderings() {
        assert_eq!(
            go_time(Some(&json!("2024-01-02T03:04:05.120000Z"))),
            "2024-01-02 03:04:05.12 +0000 UTC"
        );
        assert_eq!(go_time(None), "0001-01-01 00:00:00 +0000 UTC");
        assert_eq!(
            go_reference(Some(&json!({"kind": "Pod", "name": "p"}))),
            "core.ObjectReference{Kind:\"Pod\", Namespace:\"\", Name:\"p\", UID:\"\", APIVersion:\"\", ResourceVersion:\"\", FieldPath:\"\"}"
        );
    }
}
