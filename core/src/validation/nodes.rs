//! Validation of Nodes as kube 1.32's `pkg/apis/core/validation` does it: each taint's key, value
//! and effect.

use alloc::format;
use serde_json::Value;

use super::causes::{Errs, arr, s};
use super::names::{label_value_errors, qualified_name_errors};

pub(super) fn validate_node(e: &mut Errs, obj: &Value) {
    let empty = Value::Null;
    let spec = obj.get("spec").unwrap_or(&empty);
    for (i, t) in arr(spec, "taints").iter().enumerate() {
        let tp = format!("spec.taints[{i}]");
        let key = s(t, "key");
        if key.is_empty() {
            e.required(&format!("{tp}.key"), "");
        } else {
            e.invalid_each(&format!("{tp}.key"), key, qualified_name_errors(key));
        }
        let v = s(t, "value");
        e.invalid_each(&format!("{tp}.value"), v, label_value_errors(v));
        const EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];
        let effect = s(t, "effect");
        if effect.is_empty() {
            e.required(&format!("{tp}.effect"), "");
        } else if !EFFECTS.contains(&effect) {
            e.not_supported(&format!("{tp}.effect"), effect, EFFECTS);
        }
    }
}
