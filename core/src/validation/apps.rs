//! Validation of Deployments and ReplicaSets as kube 1.32's `pkg/apis/apps/validation` does it:
//! replicas, a non-empty selector that matches the template's labels and never changes, the pod
//! template, and a Deployment's strategy and deadlines.

use alloc::format;
use serde_json::{Map, Value};

use super::causes::{Bad, Errs, FIELD_IMMUTABLE, arr, obj_at, s};
use super::meta::{
    go_label_selector, go_map, validate_annotations, validate_label_selector, validate_labels,
};
use super::pods::validate_pod_spec;
use crate::resource::ResourceId;
use crate::selector::LabelSelector;

pub(super) fn validate_workload(
    e: &mut Errs,
    resource: ResourceId,
    obj: &Value,
    old: Option<&Value>,
) {
    let empty = Value::Null;
    let spec = obj.get("spec").unwrap_or(&empty);
    e.nonnegative("spec.replicas", spec.get("replicas"));
    e.nonnegative("spec.minReadySeconds", spec.get("minReadySeconds"));
    let kind = if resource == ResourceId::Deployments {
        "deployment"
    } else {
        "replicaset"
    };
    let mut selector = None;
    match spec.get("selector").filter(|v| !v.is_null()) {
        None => e.required("spec.selector", ""),
        Some(sel) => {
            validate_label_selector(e, sel, "spec.selector");
            let n = obj_len(sel, "matchLabels").saturating_add(arr(sel, "matchExpressions").len());
            if n == 0 {
                e.invalid(
                    "spec.selector",
                    Bad::Raw(go_label_selector(sel)),
                    &format!("empty selector is invalid for {kind}"),
                );
            }
            match LabelSelector::from_json(sel) {
                Ok(s) => selector = Some(s),
                Err(_) => e.invalid(
                    "spec.selector",
                    Bad::Raw(go_label_selector(sel)),
                    "invalid label selector",
                ),
            }
        }
    }
    let template = spec.get("template").unwrap_or(&empty);
    let tmeta = template.get("metadata").unwrap_or(&empty);
    if let Some(sel) = &selector
        && !sel.is_empty()
    {
        let labels = crate::selector::labels_of(template);
        if !sel.matches(&labels) {
            e.invalid(
                "spec.template.metadata.labels",
                Bad::Raw(go_map(obj_at(tmeta, "labels"))),
                "`selector` does not match template `labels`",
            );
        }
    }
    validate_labels(e, tmeta.get("labels"), "spec.template.metadata.labels");
    validate_annotations(
        e,
        tmeta.get("annotations"),
        "spec.template.metadata.annotations",
    );
    let tspec = template.get("spec").unwrap_or(&empty);
    validate_pod_spec(e, tspec, "spec.template.spec", false);
    if let Some(policy) = tspec.get("restartPolicy").and_then(Value::as_str)
        && policy != "Always"
    {
        e.not_supported("spec.template.spec.restartPolicy", policy, &["Always"]);
    }
    if tspec
        .get("activeDeadlineSeconds")
        .is_some_and(|v| !v.is_null())
    {
        e.forbidden(
            "spec.template.spec.activeDeadlineSeconds",
            "activeDeadlineSeconds in ReplicaSet is not Supported",
        );
    }
    if resource == ResourceId::Deployments {
        e.nonnegative(
            "spec.revisionHistoryLimit",
            spec.get("revisionHistoryLimit"),
        );
        if let Some(strategy) = spec.get("strategy") {
            let t = s(strategy, "type");
            const TYPES: &[&str] = &["Recreate", "RollingUpdate"];
            if !t.is_empty() && !TYPES.contains(&t) {
                e.not_supported("spec.strategy.type", t, TYPES);
            }
            if t == "Recreate" && strategy.get("rollingUpdate").is_some_and(|v| !v.is_null()) {
                e.forbidden(
                    "spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                );
            }
        }
        if let (Some(p), Some(m)) = (
            spec.get("progressDeadlineSeconds").and_then(Value::as_i64),
            spec.get("minReadySeconds").and_then(Value::as_i64),
        ) && p <= m
        {
            e.invalid(
                "spec.progressDeadlineSeconds",
                Bad::Int(p),
                "must be greater than minReadySeconds",
            );
        }
    }
    if let Some(old) = old {
        let new_sel = spec.get("selector").unwrap_or(&empty);
        let old_sel = old.pointer("/spec/selector").unwrap_or(&empty);
        if new_sel != old_sel {
            e.invalid(
                "spec.selector",
                Bad::Raw(go_label_selector(new_sel)),
                FIELD_IMMUTABLE,
            );
        }
    }
}

fn obj_len(v: &Value, key: &str) -> usize {
    obj_at(v, key).map_or(0, Map::len)
}
