//! Table columns and cells of PodTemplates, ReplicationControllers, Jobs and CronJobs, as
//! kube-apiserver 1.32's printers (`pkg/printers/internalversion`) write them.

use alloc::borrow::ToOwned;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use serde_json::Value;

use super::{
    AGE, CONTAINERS_DESC, Column, IMAGES_DESC, NAME, age, col, format_label_selector,
    format_labels, human_duration, int, list, present, text, wide,
};
use crate::UnixTime;

pub(super) const POD_TEMPLATE: &[Column] = &[
    NAME,
    col("Containers", "string", CONTAINERS_DESC),
    col("Images", "string", IMAGES_DESC),
    col("Pod Labels", "string", "The labels for the pod template."),
];

pub(super) const REPLICATION_CONTROLLER: &[Column] = &[
    NAME,
    col(
        "Desired",
        "integer",
        "Replicas is the number of desired replicas. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller#what-is-a-replicationcontroller",
    ),
    col(
        "Current",
        "integer",
        "Replicas is the most recently observed number of replicas. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller#what-is-a-replicationcontroller",
    ),
    col(
        "Ready",
        "integer",
        "The number of ready replicas for this replication controller.",
    ),
    AGE,
    wide("Containers", "string", CONTAINERS_DESC),
    wide("Images", "string", IMAGES_DESC),
    wide(
        "Selector",
        "string",
        "Selector is a label query over pods that should match the Replicas count. If Selector is empty, it is defaulted to the labels present on the Pod template. Label keys and values that must match in order to be controlled by this replication controller, if empty defaulted to labels on Pod template. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
    ),
];

const JOB_SELECTOR_DESC: &str = "A label query over pods that should match the pod count. Normally, the system sets this field for you. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors";

pub(super) const JOB: &[Column] = &[
    NAME,
    col("Status", "string", "Status of the job."),
    col(
        "Completions",
        "string",
        "The number of pods which reached phase Succeeded. The value increases monotonically for a given spec. However, it may decrease in reaction to scale down of elastic indexed jobs.",
    ),
    col("Duration", "string", "Time required to complete the job."),
    AGE,
    wide("Containers", "string", CONTAINERS_DESC),
    wide("Images", "string", IMAGES_DESC),
    wide("Selector", "string", JOB_SELECTOR_DESC),
];

pub(super) const CRON_JOB: &[Column] = &[
    NAME,
    col(
        "Schedule",
        "string",
        "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron.",
    ),
    col(
        "Timezone",
        "string",
        "The time zone name for the given schedule, see https://en.wikipedia.org/wiki/List_of_tz_database_time_zones. If not specified, this will default to the time zone of the kube-controller-manager process. The set of valid time zone names and the time zone offset is loaded from the system-wide time zone database by the API server during CronJob validation and the controller manager during execution. If no system-wide time zone database can be found a bundled version of the database is used instead. If the time zone name becomes invalid during the lifetime of a CronJob or due to a change in host configuration, the controller will stop creating new new Jobs and will create a system event with the reason UnknownTimeZone. More information can be found in https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/#time-zones",
    ),
    col(
        "Suspend",
        "boolean",
        "This flag tells the controller to suspend subsequent executions, it does not apply to already started executions.  Defaults to false.",
    ),
    col(
        "Active",
        "integer",
        "A list of pointers to currently running jobs.",
    ),
    col(
        "Last Schedule",
        "string",
        "Information when was the last time the job was successfully scheduled.",
    ),
    AGE,
    wide("Containers", "string", CONTAINERS_DESC),
    wide("Images", "string", IMAGES_DESC),
    wide("Selector", "string", JOB_SELECTOR_DESC),
];

/// `layoutContainerCells` of the pod spec at `pointer`.
fn containers_at(obj: &Value, pointer: &str) -> (String, String) {
    let containers = list(obj, pointer);
    let names: Vec<&str> = containers.iter().map(|c| text(c, "/name")).collect();
    let images: Vec<&str> = containers.iter().map(|c| text(c, "/image")).collect();
    (names.join(","), images.join(","))
}

pub(super) fn pod_template_cells(obj: &Value, name: Value) -> Vec<Value> {
    let (names, images) = containers_at(obj, "/template/spec/containers");
    vec![
        name,
        names.into(),
        images.into(),
        format_labels(obj.pointer("/template/metadata/labels")).into(),
    ]
}

pub(super) fn replication_controller_cells(
    obj: &Value,
    name: Value,
    created: String,
) -> Vec<Value> {
    let (names, images) = containers_at(obj, "/spec/template/spec/containers");
    vec![
        name,
        // Defaulted to 1 on create; a stored RC always has it.
        int(obj, "/spec/replicas").into(),
        int(obj, "/status/replicas").into(),
        int(obj, "/status/readyReplicas").into(),
        created.into(),
        names.into(),
        images.into(),
        format_labels(obj.pointer("/spec/selector")).into(),
    ]
}

/// `hasJobCondition`: the first condition of `ty` decides.
fn has_condition(obj: &Value, ty: &str) -> bool {
    list(obj, "/status/conditions")
        .iter()
        .find(|c| text(c, "/type") == ty)
        .is_some_and(|c| text(c, "/status") == "True")
}

pub(super) fn job_cells(obj: &Value, name: Value, created: String, now: UnixTime) -> Vec<Value> {
    let succeeded = int(obj, "/status/succeeded");
    let completions = if present(obj, "/spec/completions") {
        format!("{succeeded}/{}", int(obj, "/spec/completions"))
    } else if int(obj, "/spec/parallelism") > 1 {
        format!("{succeeded}/1 of {}", int(obj, "/spec/parallelism"))
    } else {
        format!("{succeeded}/1")
    };
    let time = |pointer: &str| {
        obj.pointer(pointer)
            .and_then(Value::as_str)
            .and_then(UnixTime::parse_rfc3339)
    };
    let duration = match (time("/status/startTime"), time("/status/completionTime")) {
        (None, _) => String::new(),
        (Some(start), None) => human_duration(i128::from(now.nanos) - i128::from(start.nanos)),
        (Some(start), Some(end)) => human_duration(i128::from(end.nanos) - i128::from(start.nanos)),
    };
    let status = if has_condition(obj, "Complete") {
        "Complete"
    } else if has_condition(obj, "Failed") {
        "Failed"
    } else if present(obj, "/metadata/deletionTimestamp") {
        "Terminating"
    } else if has_condition(obj, "Suspended") {
        "Suspended"
    } else if has_condition(obj, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let (names, images) = containers_at(obj, "/spec/template/spec/containers");
    vec![
        name,
        status.into(),
        completions.into(),
        duration.into(),
        created.into(),
        names.into(),
        images.into(),
        format_label_selector(obj.pointer("/spec/selector")).into(),
    ]
}

pub(super) fn cron_job_cells(
    obj: &Value,
    name: Value,
    created: String,
    now: UnixTime,
) -> Vec<Value> {
    let last = if present(obj, "/status/lastScheduleTime") {
        age(obj.pointer("/status/lastScheduleTime"), now)
    } else {
        "<none>".to_owned()
    };
    let time_zone = obj
        .pointer("/spec/timeZone")
        .and_then(Value::as_str)
        .unwrap_or("<none>");
    let suspend = match obj.pointer("/spec/suspend").and_then(Value::as_bool) {
        Some(true) => "True",
        Some(false) => "False",
        None => "<unset>",
    };
    let active = i64::try_from(list(obj, "/status/active").len()).unwrap_or(i64::MAX);
    let (names, images) = containers_at(obj, "/spec/jobTemplate/spec/template/spec/containers");
    vec![
        name,
        Value::from(text(obj, "/spec/schedule")),
        time_zone.into(),
        suspend.into(),
        active.into(),
        last.into(),
        created.into(),
        names.into(),
        images.into(),
        format_label_selector(obj.pointer("/spec/jobTemplate/spec/selector")).into(),
    ]
}
