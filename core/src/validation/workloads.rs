//! Validation of PodTemplates, ReplicationControllers, Jobs and CronJobs, after kube 1.32's
//! `pkg/apis/core/validation` (`ValidatePodTemplate`, `ValidateReplicationController`) and
//! `pkg/apis/batch/validation` (`ValidateJob`, `ValidateCronJobCreate` and their updates).

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde_json::Value;

use super::causes::{Bad, Errs, FIELD_IMMUTABLE, arr, obj_at};
use super::meta::{
    go_label_selector, go_map, validate_annotations, validate_label_selector, validate_labels,
};
use super::names::dns1123_label_errors;
use super::pods::validate_pod_spec;
use crate::selector::LabelSelector;

/// Labels the Job strategy puts on a generated selector and on the pod template.
pub(crate) const CONTROLLER_UID: &str = "batch.kubernetes.io/controller-uid";
pub(crate) const JOB_NAME: &str = "batch.kubernetes.io/job-name";
pub(crate) const LEGACY_CONTROLLER_UID: &str = "controller-uid";
pub(crate) const LEGACY_JOB_NAME: &str = "job-name";

/// `ValidatePodTemplateSpec` under `path` (`template`, `spec.template`, ...).
fn pod_template_spec(e: &mut Errs, template: &Value, path: &str) {
    let empty = Value::Null;
    let meta = template.get("metadata").unwrap_or(&empty);
    validate_labels(e, meta.get("labels"), &format!("{path}.labels"));
    validate_annotations(e, meta.get("annotations"), &format!("{path}.annotations"));
    let spec = template.get("spec").unwrap_or(&empty);
    validate_pod_spec(e, spec, &format!("{path}.spec"), false);
    if !arr(spec, "ephemeralContainers").is_empty() {
        e.forbidden(
            &format!("{path}.spec.ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        );
    }
}

pub(super) fn validate_pod_template(e: &mut Errs, obj: &Value) {
    pod_template_spec(e, obj.get("template").unwrap_or(&Value::Null), "template");
}

/// The labels a selector map or a template's `metadata.labels` holds.
fn string_pairs(map: Option<&serde_json::Map<String, Value>>) -> Vec<(String, String)> {
    map.map(|m| {
        m.iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
            .collect()
    })
    .unwrap_or_default()
}

pub(super) fn validate_replication_controller(e: &mut Errs, obj: &Value) {
    let empty = Value::Null;
    let spec = obj.get("spec").unwrap_or(&empty);
    e.nonnegative("spec.minReadySeconds", spec.get("minReadySeconds"));
    let selector = string_pairs(obj_at(spec, "selector"));
    if selector.is_empty() {
        e.required("spec.selector", "");
    }
    e.nonnegative("spec.replicas", spec.get("replicas"));
    match spec.get("template").filter(|t| !t.is_null()) {
        None => e.required("spec.template", ""),
        Some(template) => {
            let tmeta = template.get("metadata").unwrap_or(&empty);
            if !selector.is_empty() {
                let labels = string_pairs(obj_at(tmeta, "labels"));
                if !selector.iter().all(|pair| labels.contains(pair)) {
                    e.invalid(
                        "spec.template.metadata.labels",
                        Bad::Raw(go_map(obj_at(tmeta, "labels"))),
                        "`selector` does not match template `labels`",
                    );
                }
            }
            pod_template_spec(e, template, "spec.template");
            let tspec = template.get("spec").unwrap_or(&empty);
            let policy = tspec
                .get("restartPolicy")
                .and_then(Value::as_str)
                .unwrap_or("");
            if policy != "Always" {
                e.not_supported("spec.template.spec.restartPolicy", policy, &["Always"]);
            }
            if tspec
                .get("activeDeadlineSeconds")
                .is_some_and(|v| !v.is_null())
            {
                e.forbidden(
                    "spec.template.spec.activeDeadlineSeconds",
                    "activeDeadlineSeconds in ReplicationController is not Supported",
                );
            }
        }
    }
    let status = obj.get("status").unwrap_or(&empty);
    let count = |field: &str| status.get(field).and_then(Value::as_i64).unwrap_or(0);
    for field in [
        "replicas",
        "fullyLabeledReplicas",
        "readyReplicas",
        "availableReplicas",
        "observedGeneration",
    ] {
        e.nonnegative(&format!("status.{field}"), status.get(field));
    }
    for field in ["fullyLabeledReplicas", "readyReplicas", "availableReplicas"] {
        if count(field) > count("replicas") {
            e.invalid(
                &format!("status.{field}"),
                Bad::Int(count(field)),
                "cannot be greater than status.replicas",
            );
        }
    }
    if count("availableReplicas") > count("readyReplicas") {
        e.invalid(
            "status.availableReplicas",
            Bad::Int(count("availableReplicas")),
            "cannot be greater than readyReplicas",
        );
    }
}

fn int_field(spec: &Value, field: &str) -> Option<i64> {
    spec.get(field).and_then(Value::as_i64)
}

/// `validateJobSpec` (what a Job and a CronJob's job template share) under `path`.
fn job_spec(e: &mut Errs, spec: &Value, path: &str) {
    for field in [
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
        "backoffLimitPerIndex",
        "maxFailedIndexes",
    ] {
        e.nonnegative(&format!("{path}.{field}"), spec.get(field));
    }
    let present = |field: &str| spec.get(field).is_some_and(|v| !v.is_null());
    if present("maxFailedIndexes") && !present("backoffLimitPerIndex") {
        e.required(
            &format!("{path}.backoffLimitPerIndex"),
            "when maxFailedIndexes is specified",
        );
    }
    let mode = spec.get("completionMode").and_then(Value::as_str);
    match mode {
        None | Some("NonIndexed") => {
            for field in ["backoffLimitPerIndex", "maxFailedIndexes"] {
                if let Some(v) = int_field(spec, field) {
                    e.invalid(
                        &format!("{path}.{field}"),
                        Bad::Int(v),
                        "requires indexed completion mode",
                    );
                }
            }
        }
        Some("Indexed") => {
            if !present("completions") {
                e.required(
                    &format!("{path}.completions"),
                    "when completion mode is Indexed",
                );
            }
            if let Some(p) = int_field(spec, "parallelism")
                && p > 100_000
            {
                e.invalid(
                    &format!("{path}.parallelism"),
                    Bad::Int(p),
                    "must be less than or equal to 100000 when completion mode is Indexed",
                );
            }
            if let (Some(c), Some(m)) = (
                int_field(spec, "completions"),
                int_field(spec, "maxFailedIndexes"),
            ) && m > c
            {
                e.invalid(
                    &format!("{path}.maxFailedIndexes"),
                    Bad::Int(m),
                    "must be less than or equal to completions",
                );
            }
        }
        Some(other) => e.not_supported(
            &format!("{path}.completionMode"),
            other,
            &["NonIndexed", "Indexed"],
        ),
    }
    if present("successPolicy") && mode != Some("Indexed") {
        e.invalid(
            &format!("{path}.successPolicy"),
            Bad::Raw(
                spec.get("successPolicy")
                    .map(Value::to_string)
                    .unwrap_or_default(),
            ),
            "requires indexed completion mode",
        );
    }
    let failure_policy = present("podFailurePolicy");
    if let Some(policy) = spec.get("podReplacementPolicy").and_then(Value::as_str) {
        if failure_policy {
            if policy != "Failed" {
                e.not_supported(&format!("{path}.podReplacementPolicy"), policy, &["Failed"]);
            }
        } else if !matches!(policy, "Failed" | "TerminatingOrFailed") {
            e.not_supported(
                &format!("{path}.podReplacementPolicy"),
                policy,
                &["Failed", "TerminatingOrFailed"],
            );
        }
    }
    let template = spec.get("template").unwrap_or(&Value::Null);
    pod_template_spec(e, template, &format!("{path}.template"));
    let restart = template
        .pointer("/spec/restartPolicy")
        .and_then(Value::as_str)
        .unwrap_or("");
    let restart_path = format!("{path}.template.spec.restartPolicy");
    match restart {
        "Always" | "" => e.required(&restart_path, "valid values: \"OnFailure\", \"Never\""),
        "OnFailure" | "Never" => {
            if failure_policy && restart != "Never" {
                e.invalid(
                    &restart_path,
                    Bad::Str(restart),
                    "only \"Never\" is supported when podFailurePolicy is specified",
                );
            }
        }
        other => e.not_supported(&restart_path, other, &["OnFailure", "Never"]),
    }
}

/// `ValidateJob` (create) or `ValidateJobUpdate` (with `old`).
pub(super) fn validate_job(e: &mut Errs, obj: &Value, old: Option<&Value>) {
    let empty = Value::Null;
    let meta = obj.get("metadata").unwrap_or(&empty);
    let spec = obj.get("spec").unwrap_or(&empty);
    let template_meta = spec.pointer("/template/metadata").unwrap_or(&empty);
    let template_labels = string_pairs(obj_at(template_meta, "labels"));
    let manual = spec.get("manualSelector").and_then(Value::as_bool) == Some(true);
    let selector = spec.get("selector").filter(|s| !s.is_null());
    if old.is_none() && !manual && selector.is_some() {
        let uid = meta.get("uid").and_then(Value::as_str).unwrap_or("");
        let name = meta.get("name").and_then(Value::as_str).unwrap_or("");
        if uid.is_empty() {
            e.required("metadata.uid", "");
        }
        for (key, value) in [
            (LEGACY_CONTROLLER_UID, uid),
            (LEGACY_JOB_NAME, name),
            (CONTROLLER_UID, uid),
            (JOB_NAME, name),
        ] {
            has_label(e, &template_labels, key, value);
        }
        let expected: Vec<(String, String)> = [
            (CONTROLLER_UID, uid),
            (JOB_NAME, name),
            (LEGACY_CONTROLLER_UID, uid),
            (LEGACY_JOB_NAME, name),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        if let Some(sel) = selector
            && let Ok(parsed) = LabelSelector::from_json(sel)
            && !parsed.matches(&expected)
        {
            e.invalid(
                "spec.selector",
                Bad::Raw(go_label_selector(sel)),
                "`selector` not auto-generated",
            );
        }
    }
    job_spec(e, spec, "spec");
    match selector {
        None => e.required("spec.selector", ""),
        Some(sel) => {
            validate_label_selector(e, sel, "spec.selector");
            if let Ok(parsed) = LabelSelector::from_json(sel)
                && !parsed.matches(&template_labels)
            {
                e.invalid(
                    "spec.template.metadata.labels",
                    Bad::Raw(go_map(obj_at(template_meta, "labels"))),
                    "`selector` does not match template `labels`",
                );
            }
        }
    }
    if spec.get("completionMode").and_then(Value::as_str) == Some("Indexed")
        && let Some(completions) = int_field(spec, "completions")
        && completions > 0
    {
        let name = meta.get("name").and_then(Value::as_str).unwrap_or("");
        let hostname = format!("{name}-{}", completions - 1);
        if !dns1123_label_errors(&hostname).is_empty() {
            e.invalid(
                "metadata.name",
                Bad::Str(name),
                &format!("will not able to create pod with invalid DNS label: {hostname}"),
            );
        }
    }
    if let Some(old) = old {
        job_update(e, obj, old);
    }
}

/// `ValidateHasLabel`.
fn has_label(e: &mut Errs, labels: &[(String, String)], key: &str, value: &str) {
    match labels.iter().find(|(k, _)| k == key) {
        None => e.required(
            &format!("spec.template.metadata.labels[{key}]"),
            &format!("must be '{value}'"),
        ),
        Some((_, v)) if v != value => e.invalid(
            &format!("spec.template.metadata.labels[{key}]"),
            Bad::Str(v),
            &format!("must be '{value}'"),
        ),
        Some(_) => {}
    }
}

/// `ValidateJobSpecUpdate`: what a Job may not change.
fn job_update(e: &mut Errs, obj: &Value, old: &Value) {
    let empty = Value::Null;
    let spec = obj.get("spec").unwrap_or(&empty);
    let old_spec = old.get("spec").unwrap_or(&empty);
    let indexed = spec.get("completionMode").and_then(Value::as_str) == Some("Indexed");
    let mut immutable = alloc::vec!["selector", "completionMode", "podFailurePolicy"];
    immutable.extend(["backoffLimitPerIndex", "managedBy", "successPolicy"]);
    if !indexed {
        immutable.insert(0, "completions");
    }
    for field in immutable {
        let (new, before) = (
            spec.get(field).filter(|v| !v.is_null()),
            old_spec.get(field).filter(|v| !v.is_null()),
        );
        if new != before {
            e.invalid(&format!("spec.{field}"), render(new), FIELD_IMMUTABLE);
        }
    }
    // A suspended Job that never started may change where its pods run (kube's
    // AllowMutableSchedulingDirectives).
    let suspended = old_spec.get("suspend").and_then(Value::as_bool) == Some(true);
    let never_started = old.pointer("/status/startTime").is_none_or(Value::is_null);
    let mut template = spec.get("template").cloned().unwrap_or(Value::Null);
    let mut old_template = old_spec.get("template").cloned().unwrap_or(Value::Null);
    if suspended && never_started {
        for t in [&mut template, &mut old_template] {
            if let Some(meta) = t.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.remove("labels");
                meta.remove("annotations");
            }
            if let Some(pod) = t.get_mut("spec").and_then(Value::as_object_mut) {
                for field in ["nodeSelector", "tolerations", "schedulingGates"] {
                    pod.remove(field);
                }
                if let Some(affinity) = pod.get_mut("affinity").and_then(Value::as_object_mut) {
                    affinity.remove("nodeAffinity");
                }
                if pod
                    .get("affinity")
                    .and_then(Value::as_object)
                    .is_some_and(serde_json::Map::is_empty)
                {
                    pod.remove("affinity");
                }
            }
        }
    }
    if template != old_template {
        e.invalid(
            "spec.template",
            Bad::Raw(template.to_string()),
            FIELD_IMMUTABLE,
        );
    }
}

fn render(value: Option<&Value>) -> Bad<'_> {
    match value {
        None => Bad::Raw("null".into()),
        Some(Value::Number(n)) => Bad::Int(n.as_i64().unwrap_or(0)),
        Some(Value::String(s)) => Bad::Str(s),
        Some(other) => Bad::Raw(other.to_string()),
    }
}

/// `ValidateCronJobCreate` (without `old`) or `ValidateCronJobUpdate`.
pub(super) fn validate_cron_job(e: &mut Errs, obj: &Value, old: Option<&Value>) {
    let empty = Value::Null;
    let spec = obj.get("spec").unwrap_or(&empty);
    let old_spec = old.and_then(|o| o.get("spec"));
    let schedule = spec.get("schedule").and_then(Value::as_str).unwrap_or("");
    let time_zone = spec.get("timeZone").filter(|v| !v.is_null());
    if schedule.is_empty() {
        e.required("spec.schedule", "");
    } else {
        let allow_tz = old_spec
            .and_then(|s| s.get("schedule"))
            .and_then(Value::as_str)
            .is_some_and(crate::cron::mentions_tz);
        if let Err(message) = crate::cron::parse(schedule, &jiff::tz::TimeZone::UTC) {
            e.invalid("spec.schedule", Bad::Str(schedule), &message);
        }
        if crate::cron::mentions_tz(schedule) {
            if !allow_tz {
                e.invalid(
                    "spec.schedule",
                    Bad::Str(schedule),
                    "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
                );
            } else if time_zone.is_some() {
                e.invalid(
                    "spec.schedule",
                    Bad::Str(schedule),
                    "cannot use both timeZone field and TZ or CRON_TZ in schedule",
                );
            }
        }
    }
    e.nonnegative(
        "spec.startingDeadlineSeconds",
        spec.get("startingDeadlineSeconds"),
    );
    if old_spec.is_none_or(|o| o.get("timeZone").filter(|v| !v.is_null()) != time_zone) {
        time_zone_errors(e, time_zone);
    }
    match spec.get("concurrencyPolicy").and_then(Value::as_str) {
        Some("Allow" | "Forbid" | "Replace") => {}
        None | Some("") => e.required("spec.concurrencyPolicy", ""),
        Some(other) => e.not_supported(
            "spec.concurrencyPolicy",
            other,
            &["Allow", "Forbid", "Replace"],
        ),
    }
    let job_template_spec = spec.pointer("/jobTemplate/spec").unwrap_or(&empty);
    job_spec(e, job_template_spec, "spec.jobTemplate.spec");
    if let Some(sel) = job_template_spec.get("selector").filter(|v| !v.is_null()) {
        e.invalid(
            "spec.jobTemplate.spec.selector",
            Bad::Raw(go_label_selector(sel)),
            "`selector` will be auto-generated",
        );
    }
    if job_template_spec
        .get("manualSelector")
        .and_then(Value::as_bool)
        == Some(true)
    {
        e.not_supported(
            "spec.jobTemplate.spec.manualSelector",
            "true",
            &["nil", "false"],
        );
    }
    for field in ["successfulJobsHistoryLimit", "failedJobsHistoryLimit"] {
        e.nonnegative(&format!("spec.{field}"), spec.get(field));
    }
    if old.is_none() {
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        if name.len() > 52 {
            e.invalid(
                "metadata.name",
                Bad::Str(name),
                "must be no more than 52 characters",
            );
        }
    }
}

/// `validateTimeZone`.
fn time_zone_errors(e: &mut Errs, time_zone: Option<&Value>) {
    let Some(value) = time_zone else {
        return;
    };
    let zone = value.as_str().unwrap_or("");
    let path = "spec.timeZone";
    if zone.is_empty() {
        e.invalid(
            path,
            Bad::Str(zone),
            "timeZone must be nil or non-empty string",
        );
        return;
    }
    let part_ok = |part: &str| {
        part != "."
            && part != ".."
            && !part.starts_with('-')
            && (1..=14).contains(&part.len())
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'+'))
    };
    if !zone.split('/').all(part_ok) {
        e.invalid(path, Bad::Str(zone), &format!("unknown time zone {zone}"));
        return;
    }
    if zone.eq_ignore_ascii_case("Local") {
        e.invalid(
            path,
            Bad::Str(zone),
            "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
        );
    }
    if let Err(message) = crate::cron::load_zone(zone) {
        e.invalid(path, Bad::Str(zone), &message);
    }
}
