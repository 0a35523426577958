//! The cause collector every rule writes to: each cause worded as kube 1.32's
//! `field.Error.ErrorBody()`, with its bad value rendered as kube renders it; and the lenient
//! JSON accessors the rules read objects with (a missing or mistyped field reads as empty).

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde_json::{Map, Value};

use crate::error::Cause;
use crate::gostr::quote;

pub(super) const FIELD_IMMUTABLE: &str = "field is immutable";

/// A field error's bad value, rendered as kube 1.32's `ErrorBody` renders it.
pub(super) enum Bad<'a> {
    Str(&'a str),
    Int(i64),
    /// Already rendered (Go `%#v` of a composite value).
    Raw(String),
}

impl Bad<'_> {
    fn render(&self) -> String {
        match self {
            Bad::Str(s) => quote(s),
            Bad::Int(n) => n.to_string(),
            Bad::Raw(s) => s.clone(),
        }
    }
}

/// Collects causes, worded as `field.Error.ErrorBody()`.
#[derive(Default)]
pub(super) struct Errs {
    pub(super) causes: Vec<Cause>,
}

impl Errs {
    pub(super) fn push(&mut self, reason: &'static str, field: &str, message: String) {
        self.causes.push(Cause {
            reason,
            message,
            field: field.to_string(),
        });
    }

    pub(super) fn required(&mut self, field: &str, detail: &str) {
        let message = if detail.is_empty() {
            "Required value".to_string()
        } else {
            format!("Required value: {detail}")
        };
        self.push("FieldValueRequired", field, message);
    }

    pub(super) fn invalid(&mut self, field: &str, value: Bad<'_>, detail: &str) {
        let message = if detail.is_empty() {
            format!("Invalid value: {}", value.render())
        } else {
            format!("Invalid value: {}: {detail}", value.render())
        };
        self.push("FieldValueInvalid", field, message);
    }

    pub(super) fn invalid_each(&mut self, field: &str, value: &str, msgs: Vec<String>) {
        for m in msgs {
            self.invalid(field, Bad::Str(value), &m);
        }
    }

    pub(super) fn not_supported(&mut self, field: &str, value: &str, supported: &[&str]) {
        let list: Vec<String> = supported.iter().map(|s| quote(s)).collect();
        self.push(
            "FieldValueNotSupported",
            field,
            format!(
                "Unsupported value: {}: supported values: {}",
                quote(value),
                list.join(", ")
            ),
        );
    }

    pub(super) fn forbidden(&mut self, field: &str, detail: &str) {
        self.push("FieldValueForbidden", field, format!("Forbidden: {detail}"));
    }

    pub(super) fn duplicate(&mut self, field: &str, value: Bad<'_>) {
        self.push(
            "FieldValueDuplicate",
            field,
            format!("Duplicate value: {}", value.render()),
        );
    }

    pub(super) fn not_found(&mut self, field: &str, value: &str) {
        self.push(
            "FieldValueNotFound",
            field,
            format!("Not found: {}", quote(value)),
        );
    }

    pub(super) fn too_long(&mut self, field: &str, max: usize) {
        self.push(
            "FieldValueTooLong",
            field,
            format!("Too long: may not be more than {max} bytes"),
        );
    }

    pub(super) fn port_num(&mut self, field: &str, port: i64) {
        if !(1..=65535).contains(&port) {
            self.invalid(
                field,
                Bad::Int(port),
                "must be between 1 and 65535, inclusive",
            );
        }
    }

    pub(super) fn nonnegative(&mut self, field: &str, value: Option<&Value>) {
        if let Some(n) = value.and_then(Value::as_i64)
            && n < 0
        {
            self.invalid(field, Bad::Int(n), "must be greater than or equal to 0");
        }
    }
}

pub(super) fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

pub(super) fn arr<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
}

pub(super) fn obj_at<'a>(v: &'a Value, key: &str) -> Option<&'a Map<String, Value>> {
    v.get(key).and_then(Value::as_object)
}
