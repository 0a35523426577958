//! Validation of PriorityClasses as kube 1.32's `pkg/apis/scheduling/validation` does it: the
//! reserved `system-` names, the highest user-definable value, the preemption policy, and what an
//! update may not change.

use alloc::format;
use alloc::string::ToString;
use serde_json::Value;

use super::causes::{Bad, Errs, FIELD_IMMUTABLE};
use crate::gostr::quote;

/// `ValidatePriorityClass` and, with `old`, `ValidatePriorityClassUpdate`.
pub(super) fn validate_priority_class(e: &mut Errs, obj: &Value, old: Option<&Value>) {
    use crate::admission::priority::{HIGHEST_USER_DEFINABLE, SYSTEM_PREFIX, known_system_class};
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let value = obj.get("value").and_then(Value::as_i64).unwrap_or(0);
    let global_default = obj.get("globalDefault").and_then(Value::as_bool) == Some(true);
    if name.starts_with(SYSTEM_PREFIX) {
        if let Err(error) = known_system_class(name, value, global_default) {
            e.forbidden(
                "metadata.name",
                &format!(
                    "priority class names with '{SYSTEM_PREFIX}' prefix are reserved for system use only. error: {error}"
                ),
            );
        }
    } else if value > HIGHEST_USER_DEFINABLE {
        e.forbidden(
            "value",
            &format!(
                "maximum allowed value of a user defined priority is {HIGHEST_USER_DEFINABLE}"
            ),
        );
    }
    let policy = obj.get("preemptionPolicy").and_then(Value::as_str);
    match policy {
        None | Some("PreemptLowerPriority" | "Never") => {}
        Some("") => e.required("preemptionPolicy", ""),
        Some(other) => e.not_supported(
            "preemptionPolicy",
            other,
            &["PreemptLowerPriority", "Never"],
        ),
    }
    let Some(old) = old else {
        return;
    };
    if old.get("value").and_then(Value::as_i64).unwrap_or(0) != value {
        e.forbidden("value", "may not be changed in an update.");
    }
    let old_policy = old.get("preemptionPolicy").and_then(Value::as_str);
    if policy != old_policy {
        let shown = policy.map_or_else(|| "null".to_string(), quote);
        e.invalid("preemptionPolicy", Bad::Raw(shown), FIELD_IMMUTABLE);
    }
}
