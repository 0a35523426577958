//! Defaults of PodTemplates, ReplicationControllers, Jobs and CronJobs: kube 1.32's
//! `SetDefaults_*` (core/v1, batch/v1) and what the registry strategies set on create (status
//! reset, the Job's generated selector).

use alloc::string::String;
use serde_json::{Map, Value, json};

use super::{entry, pod_spec, set_default};
use crate::validation::{CONTROLLER_UID, JOB_NAME, LEGACY_CONTROLLER_UID, LEGACY_JOB_NAME};

fn template_spec(template: Option<&mut Value>) {
    if let Some(spec) = template
        .and_then(|t| t.get_mut("spec"))
        .and_then(Value::as_object_mut)
    {
        pod_spec(spec);
    }
}

fn non_empty_map(value: Option<&Value>) -> Option<Map<String, Value>> {
    value
        .and_then(Value::as_object)
        .filter(|m| !m.is_empty())
        .cloned()
}

pub(super) fn pod_template(map: &mut Map<String, Value>) {
    template_spec(map.get_mut("template"));
}

/// `SetDefaults_ReplicationController`: selector and labels from the template's labels,
/// one replica.
pub(super) fn replication_controller(map: &mut Map<String, Value>, create: bool) {
    let template_labels = map
        .get("spec")
        .and_then(|s| s.pointer("/template/metadata/labels"))
        .and_then(Value::as_object)
        .cloned();
    if let Some(labels) = template_labels {
        if let Some(spec) = map.get_mut("spec").and_then(Value::as_object_mut)
            && non_empty_map(spec.get("selector")).is_none()
        {
            spec.insert("selector".into(), Value::Object(labels.clone()));
        }
        if let Some(meta) = entry(map, "metadata", json!({})).as_object_mut()
            && non_empty_map(meta.get("labels")).is_none()
        {
            meta.insert("labels".into(), Value::Object(labels));
        }
    }
    if let Some(spec) = map.get_mut("spec").and_then(Value::as_object_mut) {
        set_default(spec, "replicas", Value::from(1));
        template_spec(spec.get_mut("template"));
    }
    if create {
        map.insert("status".into(), json!({"replicas": 0}));
    }
}

/// `SetDefaults_Job`, then on create the strategy's status reset and generated selector
/// (`uid` is the Job's, assigned before validation as kube does).
pub(super) fn job(map: &mut Map<String, Value>, create: Option<&str>) {
    let Some(spec) = map.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let unset = |spec: &Map<String, Value>, key: &str| spec.get(key).is_none_or(Value::is_null);
    if unset(spec, "completions") && unset(spec, "parallelism") {
        spec.insert("completions".into(), Value::from(1));
        spec.insert("parallelism".into(), Value::from(1));
    }
    set_default(spec, "parallelism", Value::from(1));
    let backoff = if unset(spec, "backoffLimitPerIndex") {
        6
    } else {
        i64::from(i32::MAX)
    };
    set_default(spec, "backoffLimit", Value::from(backoff));
    set_default(spec, "completionMode", Value::from("NonIndexed"));
    set_default(spec, "suspend", Value::from(false));
    let replacement = if unset(spec, "podFailurePolicy") {
        "TerminatingOrFailed"
    } else {
        "Failed"
    };
    set_default(spec, "podReplacementPolicy", Value::from(replacement));
    if let Some(rules) = spec
        .get_mut("podFailurePolicy")
        .and_then(|p| p.get_mut("rules"))
        .and_then(Value::as_array_mut)
    {
        for pattern in rules
            .iter_mut()
            .filter_map(|r| r.get_mut("onPodConditions"))
            .filter_map(Value::as_array_mut)
            .flatten()
            .filter_map(Value::as_object_mut)
        {
            set_default(pattern, "status", Value::from("True"));
        }
    }
    set_default(spec, "manualSelector", Value::from(false));
    template_spec(spec.get_mut("template"));
    let manual = spec.get("manualSelector").and_then(Value::as_bool) == Some(true);
    if let Some(uid) = create {
        map.insert("status".into(), json!({}));
        if !manual {
            generate_selector(map, uid);
        }
    }
    // The Job's own labels default to its template's; kube defaults them again on every read,
    // so a created Job shows its generated selector's labels.
    let template_labels = map
        .get("spec")
        .and_then(|s| s.pointer("/template/metadata/labels"))
        .and_then(Value::as_object)
        .cloned();
    if let Some(labels) = template_labels
        && let Some(meta) = entry(map, "metadata", json!({})).as_object_mut()
        && non_empty_map(meta.get("labels")).is_none()
    {
        meta.insert("labels".into(), Value::Object(labels));
    }
}

/// The Job strategy's generated selector: the template gets the job-name and controller-uid
/// labels (both spellings) and the selector matches the uid.
fn generate_selector(map: &mut Map<String, Value>, uid: &str) {
    let name = map
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .map(String::from)
        .unwrap_or_default();
    let Some(spec) = map.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let template = entry(spec, "template", json!({}));
    if let Some(template) = template.as_object_mut() {
        let meta = entry(template, "metadata", json!({}));
        if let Some(meta) = meta.as_object_mut() {
            let labels = entry(meta, "labels", json!({}));
            if !labels.is_object() {
                *labels = json!({});
            }
            if let Some(labels) = labels.as_object_mut() {
                for key in [LEGACY_JOB_NAME, JOB_NAME] {
                    labels
                        .entry(key)
                        .or_insert_with(|| Value::from(name.as_str()));
                }
                for key in [LEGACY_CONTROLLER_UID, CONTROLLER_UID] {
                    labels.entry(key).or_insert_with(|| Value::from(uid));
                }
            }
        }
    }
    let selector = entry(spec, "selector", json!({}));
    if !selector.is_object() {
        *selector = json!({});
    }
    if let Some(selector) = selector.as_object_mut() {
        let match_labels = entry(selector, "matchLabels", json!({}));
        if let Some(match_labels) = match_labels.as_object_mut() {
            match_labels
                .entry(CONTROLLER_UID)
                .or_insert_with(|| Value::from(uid));
        }
    }
}

/// `SetDefaults_CronJob` and the job template's pod defaults.
pub(super) fn cron_job(map: &mut Map<String, Value>, create: bool) {
    if let Some(spec) = map.get_mut("spec").and_then(Value::as_object_mut) {
        if spec
            .get("concurrencyPolicy")
            .is_none_or(|p| p.is_null() || p.as_str() == Some(""))
        {
            spec.insert("concurrencyPolicy".into(), Value::from("Allow"));
        }
        set_default(spec, "suspend", Value::from(false));
        set_default(spec, "successfulJobsHistoryLimit", Value::from(3));
        set_default(spec, "failedJobsHistoryLimit", Value::from(1));
        template_spec(
            spec.get_mut("jobTemplate")
                .and_then(|t| t.get_mut("spec"))
                .and_then(|s| s.get_mut("template")),
        );
    }
    if create {
        map.insert("status".into(), json!({}));
    }
}
