//! Validation of HorizontalPodAutoscalers as kube-apiserver 1.32 does it
//! (`pkg/apis/autoscaling/validation`), on the stored `autoscaling/v2` shape whichever version
//! the write came through (kube validates the internal type, which is v2's): replica bounds, the
//! scale target, each metric source and target, and the scaling behavior, with kube's field
//! paths and wording. Scaling to zero (`HPAScaleToZero`) is an alpha feature, off.

use alloc::format;
use alloc::string::{String, ToString};
use serde_json::Value;

use super::causes::{Bad, Errs, arr, s};
use super::names::{dns1123_label_errors, qualified_name_errors};
use crate::quantity::Quantity;

/// `MaxPeriodSeconds`.
const MAX_PERIOD_SECONDS: i64 = 1800;
/// `MaxStabilizationWindowSeconds`.
const MAX_STABILIZATION_WINDOW_SECONDS: i64 = 3600;
/// `validSelectPolicyTypesList` (sorted).
const SELECT_POLICIES: &[&str] = &["Disabled", "Max", "Min"];
/// `validPolicyTypesList` (sorted).
const POLICY_TYPES: &[&str] = &["Percent", "Pods"];
/// `validMetricSourceTypesList` (sorted).
const METRIC_TYPES: &[&str] = &[
    "ContainerResource",
    "External",
    "Object",
    "Pods",
    "Resource",
];

fn int(v: &Value, pointer: &str) -> Option<i64> {
    v.pointer(pointer).and_then(Value::as_i64)
}

/// `ValidateHorizontalPodAutoscaler` and, with `old`, `...Update`; the status checks of a
/// status update hold for every write (a spec write keeps the stored status).
pub(super) fn validate_hpa(e: &mut Errs, obj: &Value, old: Option<&Value>) {
    // `HPAScaleToZero` is off: 1, unless the stored object already has 0.
    let lower = match old.and_then(|o| int(o, "/spec/minReplicas")) {
        Some(0) => 0,
        _ => 1,
    };
    let empty = Value::Null;
    let spec = obj.get("spec").unwrap_or(&empty);
    let min = int(spec, "/minReplicas");
    if let Some(min) = min
        && min < lower
    {
        e.invalid(
            "spec.minReplicas",
            Bad::Int(min),
            &format!("must be greater than or equal to {lower}"),
        );
    }
    let max = int(spec, "/maxReplicas").unwrap_or(0);
    if max < 1 {
        e.invalid("spec.maxReplicas", Bad::Int(max), "must be greater than 0");
    }
    if let Some(min) = min
        && max < min
    {
        e.invalid(
            "spec.maxReplicas",
            Bad::Int(max),
            "must be greater than or equal to `minReplicas`",
        );
    }
    reference(
        e,
        spec.get("scaleTargetRef").unwrap_or(&empty),
        "spec.scaleTargetRef",
    );
    let metrics = arr(spec, "metrics");
    let (mut object, mut external) = (false, false);
    for (i, metric) in metrics.iter().enumerate() {
        metric_spec(e, metric, &format!("spec.metrics[{i}]"));
        object |= s(metric, "type") == "Object";
        external |= s(metric, "type") == "External";
    }
    if min == Some(0) && !object && !external {
        e.forbidden(
            "spec.metrics",
            "must specify at least one Object or External metric to support scaling to zero replicas",
        );
    }
    if let Some(behavior) = spec.get("behavior").filter(|b| !b.is_null()) {
        for (key, path) in [
            ("scaleUp", "spec.behavior.scaleUp"),
            ("scaleDown", "spec.behavior.scaleDown"),
        ] {
            if let Some(rules) = behavior.get(key).filter(|r| !r.is_null()) {
                scaling_rules(e, rules, path);
            }
        }
    }
    e.nonnegative(
        "status.currentReplicas",
        obj.pointer("/status/currentReplicas"),
    );
    e.nonnegative(
        "status.desiredReplicas",
        obj.pointer("/status/desiredReplicas"),
    );
}

/// `IsValidPathSegmentName`.
fn path_segment_errors(name: &str) -> alloc::vec::Vec<String> {
    let mut out = alloc::vec::Vec::new();
    if name == "." || name == ".." {
        out.push(format!("may not be '{name}'"));
        return out;
    }
    for illegal in ["/", "%"] {
        if name.contains(illegal) {
            out.push(format!("may not contain '{illegal}'"));
        }
    }
    out
}

/// `ValidateCrossVersionObjectReference`.
fn reference(e: &mut Errs, r: &Value, path: &str) {
    for key in ["kind", "name"] {
        let value = s(r, key);
        let at = format!("{path}.{key}");
        if value.is_empty() {
            e.required(&at, "");
        } else {
            e.invalid_each(&at, value, path_segment_errors(value));
        }
    }
}

fn scaling_rules(e: &mut Errs, rules: &Value, path: &str) {
    if let Some(window) = rules
        .get("stabilizationWindowSeconds")
        .and_then(Value::as_i64)
    {
        let at = format!("{path}.stabilizationWindowSeconds");
        if window < 0 {
            e.invalid(
                &at,
                Bad::Int(window),
                "must be greater than or equal to zero",
            );
        }
        if window > MAX_STABILIZATION_WINDOW_SECONDS {
            e.invalid(
                &at,
                Bad::Int(window),
                &format!("must be less than or equal to {MAX_STABILIZATION_WINDOW_SECONDS}"),
            );
        }
    }
    if let Some(select) = rules.get("selectPolicy").and_then(Value::as_str)
        && !SELECT_POLICIES.contains(&select)
    {
        e.not_supported(&format!("{path}.selectPolicy"), select, SELECT_POLICIES);
    }
    let policies = arr(rules, "policies");
    if policies.is_empty() {
        e.required(
            &format!("{path}.policies"),
            "must specify at least one Policy",
        );
    }
    for (i, policy) in policies.iter().enumerate() {
        let at = format!("{path}.policies[{i}]");
        let kind = s(policy, "type");
        if !POLICY_TYPES.contains(&kind) {
            e.not_supported(&format!("{at}.type"), kind, POLICY_TYPES);
        }
        let value = policy.get("value").and_then(Value::as_i64).unwrap_or(0);
        if value <= 0 {
            e.invalid(
                &format!("{at}.value"),
                Bad::Int(value),
                "must be greater than zero",
            );
        }
        let period = policy
            .get("periodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if period <= 0 {
            e.invalid(
                &format!("{at}.periodSeconds"),
                Bad::Int(period),
                "must be greater than zero",
            );
        }
        if period > MAX_PERIOD_SECONDS {
            e.invalid(
                &format!("{at}.periodSeconds"),
                Bad::Int(period),
                &format!("must be less than or equal to {MAX_PERIOD_SECONDS}"),
            );
        }
    }
}

/// `validateMetricSpec`: a known type, its one source populated and valid.
fn metric_spec(e: &mut Errs, metric: &Value, path: &str) {
    let kind = s(metric, "type");
    if kind.is_empty() {
        e.required(&format!("{path}.type"), "must specify a metric source type");
    }
    if !METRIC_TYPES.contains(&kind) {
        e.not_supported(&format!("{path}.type"), kind, METRIC_TYPES);
    }
    let sources = [
        "object",
        "external",
        "pods",
        "resource",
        "containerResource",
    ];
    let present: alloc::vec::Vec<&str> = sources
        .into_iter()
        .filter(|k| metric.get(*k).is_some_and(|v| !v.is_null()))
        .collect();
    if let Some(first) = present.first() {
        let src = metric.get(*first).unwrap_or(&Value::Null);
        let at = format!("{path}.{first}");
        match *first {
            "object" => object_source(e, src, &at),
            "external" => external_source(e, src, &at),
            "pods" => pods_source(e, src, &at),
            "resource" => resource_source(e, src, &at, false),
            _ => resource_source(e, src, &at, true),
        }
    }
    let expected = match kind {
        "Object" => "object",
        "Pods" => "pods",
        "Resource" => "resource",
        "External" => "external",
        "ContainerResource" => "containerResource",
        _ => {
            e.not_supported(&format!("{path}.type"), kind, METRIC_TYPES);
            ""
        }
    };
    if !expected.is_empty() && !present.contains(&expected) {
        e.required(
            &format!("{path}.{expected}"),
            "must populate information for the given metric source",
        );
    }
    if present.len() != 1 {
        // kube ranges over a Go set here: its order is not fixed; sorted is one of its orders.
        let mut others: alloc::vec::Vec<&str> =
            present.into_iter().filter(|k| *k != expected).collect();
        others.sort_unstable();
        for other in others {
            e.forbidden(
                &format!("{path}.{other}"),
                "must populate the given metric source only",
            );
        }
    }
}

/// `validateMetricIdentifier`.
fn metric_identifier(e: &mut Errs, id: &Value, path: &str) {
    let name = s(id, "name");
    let at = format!("{path}.name");
    if name.is_empty() {
        e.required(&at, "must specify a metric name");
    } else {
        e.invalid_each(&at, name, path_segment_errors(name));
    }
}

/// `validateMetricTarget`.
fn metric_target(e: &mut Errs, target: &Value, path: &str) {
    let kind = s(target, "type");
    if kind.is_empty() {
        e.required(&format!("{path}.type"), "must specify a metric target type");
    }
    if !["Utilization", "Value", "AverageValue"].contains(&kind) {
        e.invalid(
            &format!("{path}.type"),
            Bad::Str(kind),
            "must be either Utilization, Value, or AverageValue",
        );
    }
    for key in ["value", "averageValue"] {
        if let Some(v) = target.get(key).filter(|v| !v.is_null()) {
            let positive = Quantity::from_json(v).is_some_and(|q| !q.is_zero() && !q.is_negative());
            if !positive {
                let shown = match v {
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                };
                e.invalid(
                    &format!("{path}.{key}"),
                    Bad::Raw(shown),
                    "must be positive",
                );
            }
        }
    }
    if let Some(u) = target.get("averageUtilization").and_then(Value::as_i64)
        && u < 1
    {
        e.invalid(
            &format!("{path}.averageUtilization"),
            Bad::Int(u),
            "must be greater than 0",
        );
    }
}

fn has(target: &Value, key: &str) -> bool {
    target.get(key).is_some_and(|v| !v.is_null())
}

fn object_source(e: &mut Errs, src: &Value, path: &str) {
    let empty = Value::Null;
    reference(
        e,
        src.get("describedObject").unwrap_or(&empty),
        &format!("{path}.describedObject"),
    );
    metric_identifier(
        e,
        src.get("metric").unwrap_or(&empty),
        &format!("{path}.metric"),
    );
    let target = src.get("target").unwrap_or(&empty);
    metric_target(e, target, &format!("{path}.target"));
    if !has(target, "value") && !has(target, "averageValue") {
        e.required(
            &format!("{path}.target.averageValue"),
            "must set either a target value or averageValue",
        );
    }
}

fn external_source(e: &mut Errs, src: &Value, path: &str) {
    let empty = Value::Null;
    metric_identifier(
        e,
        src.get("metric").unwrap_or(&empty),
        &format!("{path}.metric"),
    );
    let target = src.get("target").unwrap_or(&empty);
    metric_target(e, target, &format!("{path}.target"));
    if !has(target, "value") && !has(target, "averageValue") {
        e.required(
            &format!("{path}.target.averageValue"),
            "must set either a target value for metric or a per-pod target",
        );
    }
    if has(target, "value") && has(target, "averageValue") {
        e.forbidden(
            &format!("{path}.target.value"),
            "may not set both a target value for metric and a per-pod target",
        );
    }
}

fn pods_source(e: &mut Errs, src: &Value, path: &str) {
    let empty = Value::Null;
    metric_identifier(
        e,
        src.get("metric").unwrap_or(&empty),
        &format!("{path}.metric"),
    );
    let target = src.get("target").unwrap_or(&empty);
    metric_target(e, target, &format!("{path}.target"));
    if !has(target, "averageValue") {
        e.required(
            &format!("{path}.target.averageValue"),
            "must specify a positive target averageValue",
        );
    }
}

/// `validateResourceSource`, or with `container`, `validateContainerResourceSource`.
fn resource_source(e: &mut Errs, src: &Value, path: &str, container: bool) {
    let name = s(src, "name");
    let name_at = format!("{path}.name");
    if name.is_empty() {
        e.required(&name_at, "must specify a resource name");
    } else if container {
        e.invalid_each(&name_at, name, qualified_name_errors(name));
        let standard = ["cpu", "memory", "ephemeral-storage"].contains(&name)
            || name.starts_with("hugepages-");
        if !name.contains('/') && !standard {
            e.invalid(
                &name_at,
                Bad::Str(name),
                "must be a standard resource for containers",
            );
        }
    }
    if container {
        let c = s(src, "container");
        let at = format!("{path}.container");
        if c.is_empty() {
            e.required(&at, "must specify a container");
        } else {
            e.invalid_each(&at, c, dns1123_label_errors(c));
        }
    }
    let empty = Value::Null;
    let target = src.get("target").unwrap_or(&empty);
    metric_target(e, target, &format!("{path}.target"));
    if !has(target, "averageUtilization") && !has(target, "averageValue") {
        e.required(
            &format!("{path}.target.averageUtilization"),
            "must set either a target raw value or a target utilization",
        );
    }
    if has(target, "averageUtilization") && has(target, "averageValue") {
        e.forbidden(
            &format!("{path}.target.averageValue"),
            "may not set both a target raw value and a target utilization",
        );
    }
}
