//! Table columns of HorizontalPodAutoscalers, as kube-apiserver 1.32 prints them (the same for
//! `autoscaling/v1` and `v2`: kube prints the internal type, which is v2's).

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use serde_json::Value;

use super::{AGE, Column, NAME, col, text};

pub(super) const HORIZONTAL_POD_AUTOSCALER: &[Column] = &[
    NAME,
    col(
        "Reference",
        "string",
        "reference to scaled resource; horizontal pod autoscaler will learn the current resource consumption and will set the desired number of pods by using its Scale subresource.",
    ),
    col(
        "Targets",
        "string",
        "metrics contains the specifications for which to use to calculate the desired replica count (the maximum replica count across all metrics will be used).  The desired replica count is calculated multiplying the ratio between the target value and the current value by the current number of pods.  Ergo, metrics used must decrease as the pod count is increased, and vice-versa.  See the individual metric source types for more information about how each type of metric must respond.",
    ),
    col(
        "MinPods",
        "string",
        "minReplicas is the lower limit for the number of replicas to which the autoscaler can scale down.  It defaults to 1 pod.  minReplicas is allowed to be 0 if the alpha feature gate HPAScaleToZero is enabled and at least one Object or External metric is configured.  Scaling is active as long as at least one metric value is available.",
    ),
    col(
        "MaxPods",
        "string",
        "maxReplicas is the upper limit for the number of replicas to which the autoscaler can scale up. It cannot be less that minReplicas.",
    ),
    col(
        "Replicas",
        "string",
        "currentReplicas is current number of replicas of pods managed by this autoscaler.",
    ),
    AGE,
];

/// A quantity as the printer shows it (the stored canonical form).
fn quantity(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => format!("{n}"),
        _ => String::from("0"),
    }
}

/// `formatHPAMetrics`: each metric's current value over its target, two at most.
fn metrics(specs: &[Value], statuses: &[Value]) -> String {
    if specs.is_empty() {
        return "<none>".into();
    }
    const MAX: usize = 2;
    let unknown = || String::from("<unknown>");
    let mut list: Vec<String> = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let status = statuses.get(i);
        let current = |source: &str, pointer: &str| {
            status
                .and_then(|s| s.get(source))
                .filter(|s| !s.is_null())
                .map(|s| quantity(s.pointer(pointer)))
        };
        let kind = spec.get("type").and_then(Value::as_str).unwrap_or("");
        let entry = match kind {
            "External" | "Object" => {
                let source = if kind == "External" {
                    "external"
                } else {
                    "object"
                };
                let target = spec.get(source).and_then(|s| s.get("target"));
                match target
                    .and_then(|t| t.get("averageValue"))
                    .filter(|v| !v.is_null())
                {
                    Some(avg) => format!(
                        "{}/{} (avg)",
                        status
                            .and_then(|s| s.get(source))
                            .and_then(|s| s.pointer("/current/averageValue"))
                            .filter(|v| !v.is_null())
                            .map_or_else(unknown, |v| quantity(Some(v))),
                        quantity(Some(avg))
                    ),
                    None => format!(
                        "{}/{}",
                        current(source, "/current/value").unwrap_or_else(unknown),
                        quantity(target.and_then(|t| t.get("value")))
                    ),
                }
            }
            "Pods" => format!(
                "{}/{}",
                current("pods", "/current/averageValue").unwrap_or_else(unknown),
                quantity(spec.pointer("/pods/target/averageValue"))
            ),
            "Resource" | "ContainerResource" => {
                let source = if kind == "Resource" {
                    "resource"
                } else {
                    "containerResource"
                };
                let s = spec.get(source).unwrap_or(&Value::Null);
                let name = text(s, "/name");
                match s.pointer("/target/averageValue").filter(|v| !v.is_null()) {
                    Some(avg) => format!(
                        "{name}: {}/{}",
                        current(source, "/current/averageValue").unwrap_or_else(unknown),
                        quantity(Some(avg))
                    ),
                    None => {
                        let now = status
                            .and_then(|st| st.get(source))
                            .and_then(|st| st.pointer("/current/averageUtilization"))
                            .and_then(Value::as_i64)
                            .map_or_else(unknown, |u| format!("{u}%"));
                        let target = s
                            .pointer("/target/averageUtilization")
                            .and_then(Value::as_i64)
                            .map_or_else(|| String::from("<auto>"), |u| format!("{u}%"));
                        format!("{name}: {now}/{target}")
                    }
                }
            }
            _ => "<unknown type>".into(),
        };
        list.push(entry);
    }
    let count = list.len();
    if count > MAX {
        list.truncate(MAX);
        format!("{} + {} more...", list.join(", "), count - MAX)
    } else {
        list.join(", ")
    }
}

/// The cells of one HorizontalPodAutoscaler (`printHorizontalPodAutoscaler`).
pub(super) fn cells(obj: &Value, name: Value, created: String) -> Vec<Value> {
    let list = |pointer: &str| {
        obj.pointer(pointer)
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice)
    };
    let reference = format!(
        "{}/{}",
        text(obj, "/spec/scaleTargetRef/kind"),
        text(obj, "/spec/scaleTargetRef/name")
    );
    let min = obj
        .pointer("/spec/minReplicas")
        .and_then(Value::as_i64)
        .map_or_else(|| String::from("<unset>"), |n| format!("{n}"));
    let max = obj
        .pointer("/spec/maxReplicas")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let replicas = obj
        .pointer("/status/currentReplicas")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    vec![
        name,
        reference.into(),
        metrics(list("/spec/metrics"), list("/status/currentMetrics")).into(),
        min.into(),
        max.into(),
        replicas.into(),
        created.into(),
    ]
}
