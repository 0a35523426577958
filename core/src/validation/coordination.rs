//! Validation of `coordination.k8s.io` Leases as kube 1.32's `pkg/apis/coordination/validation`
//! does it: a positive lease duration and a non-negative transition count.

use serde_json::Value;

use super::causes::{Bad, Errs};

pub(super) fn validate_lease(e: &mut Errs, obj: &Value) {
    let empty = Value::Null;
    let spec = obj.get("spec").unwrap_or(&empty);
    if let Some(n) = spec.get("leaseDurationSeconds").and_then(Value::as_i64)
        && n <= 0
    {
        e.invalid(
            "spec.leaseDurationSeconds",
            Bad::Int(n),
            "must be greater than 0",
        );
    }
    e.nonnegative("spec.leaseTransitions", spec.get("leaseTransitions"));
}
