//! PodTemplates, ReplicationControllers, Jobs and CronJobs driven through the API in virtual
//! time.

use alloc::borrow::ToOwned;
use alloc::string::String;
use alloc::vec::Vec;
use serde_json::{Value, json};

use super::workload_tests::Cluster;
use crate::UnixTime;

const RCS: &str = "/api/v1/namespaces/default/replicationcontrollers";
const JOBS: &str = "/apis/batch/v1/namespaces/default/jobs";
const CRONJOBS: &str = "/apis/batch/v1/namespaces/default/cronjobs";
const PODS: &str = "/api/v1/namespaces/default/pods";
const TEMPLATES: &str = "/api/v1/namespaces/default/podtemplates";

fn rc(name: &str, replicas: i64) -> Value {
    json!({"metadata": {"name": name}, "spec": {"replicas": replicas,
        "template": {"metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})
}

fn job(name: &str, extra: Value) -> Value {
    let mut job = json!({"metadata": {"name": name}, "spec": {
        "template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "c", "image": "busybox"}]}}}});
    crate::patch::merge_patch(&mut job, &json!({ "spec": extra }));
    job
}

fn cron_job(name: &str, schedule: &str, policy: &str) -> Value {
    json!({"metadata": {"name": name}, "spec": {"schedule": schedule,
        "concurrencyPolicy": policy,
        "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "OnFailure",
            "containers": [{"name": "c", "image": "busybox"}]}}}}}})
}

impl Cluster {
    fn pods_of(&mut self, kind: &str, name: &str) -> Vec<Value> {
        self.items(PODS)
            .into_iter()
            .filter(|p| {
                p["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|r| r.iter().any(|r| r["kind"] == kind && r["name"] == name))
            })
            .collect()
    }

    fn set_phase(&mut self, pod: &str, phase: &str) {
        let (code, body) = self.patch(
            &alloc::format!("{PODS}/{pod}/status"),
            json!({"status": {"phase": phase}}),
            "application/merge-patch+json",
        );
        assert_eq!(code, 200, "{body}");
        self.settle();
    }

    /// Moves time to `at` and runs whatever falls due, as the runtime's timer would.
    fn advance_to(&mut self, at: UnixTime) {
        self.now = at;
        self.server.handle_timeout(at);
        self.settle();
    }
}

#[test]
fn replication_controller_keeps_its_replicas_with_kube_defaults() {
    let mut c = Cluster::new();
    let (code, created) = c.post(RCS, rc("web", 3));
    assert_eq!(code, 201, "{created}");
    // Selector and labels default to the template's labels; a new RC's status is zeroed.
    assert_eq!(created["spec"]["selector"], json!({"app": "web"}));
    assert_eq!(created["metadata"]["labels"], json!({"app": "web"}));
    assert_eq!(created["status"], json!({"replicas": 0}));
    assert_eq!(created["metadata"]["generation"], 1);
    c.settle();
    let pods = c.pods_of("ReplicationController", "web");
    assert_eq!(pods.len(), 3);
    let owner = &pods[0]["metadata"]["ownerReferences"][0];
    assert_eq!(owner["apiVersion"], "v1");
    assert_eq!(owner["controller"], true);
    let (_, rc) = c.get(&alloc::format!("{RCS}/web"));
    assert_eq!(rc["status"]["replicas"], 3);
    assert_eq!(rc["status"]["observedGeneration"], 1);
    assert!(
        c.events()
            .iter()
            .any(|(reason, _)| reason == "SuccessfulCreate"),
    );

    // The scale subresource reads and writes spec.replicas.
    let (code, scale) = c.get(&alloc::format!("{RCS}/web/scale"));
    assert_eq!(code, 200, "{scale}");
    assert_eq!(scale["status"]["replicas"], 3);
    assert_eq!(scale["status"]["selector"], "app=web");
    let (code, body) = c.patch(
        &alloc::format!("{RCS}/web/scale"),
        json!({"spec": {"replicas": 1}}),
        "application/merge-patch+json",
    );
    assert_eq!(code, 200, "{body}");
    c.settle();
    assert_eq!(c.pods_of("ReplicationController", "web").len(), 1);

    // A pod relabelled out of the selector is released and replaced.
    let pod = c.pods_of("ReplicationController", "web")[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let (code, _) = c.patch(
        &alloc::format!("{PODS}/{pod}"),
        json!({"metadata": {"labels": {"app": "other"}}}),
        "application/merge-patch+json",
    );
    assert_eq!(code, 200);
    c.settle();
    let (_, released) = c.get(&alloc::format!("{PODS}/{pod}"));
    assert!(
        released["metadata"]["ownerReferences"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "{released}"
    );
    assert_eq!(c.pods_of("ReplicationController", "web").len(), 1);

    // Deleting a v1 RC without options orphans its pods (kube's default for this kind).
    let (code, _) = c.delete(&alloc::format!("{RCS}/web"), Value::Null);
    assert_eq!(code, 200);
    c.settle();
    assert_eq!(c.get(&alloc::format!("{RCS}/web")).0, 404);
    assert_eq!(c.items(PODS).len(), 2);
    assert!(c.pods_of("ReplicationController", "web").is_empty());
}

#[test]
fn replication_controller_validation_is_kubes() {
    let mut c = Cluster::new();
    let mut bad = rc("bad", -1);
    bad["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
    bad["spec"]["selector"] = json!({"app": "other"});
    let (code, status) = c.post(RCS, bad);
    assert_eq!(code, 422, "{status}");
    let fields: Vec<&str> = status["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "spec.replicas",
            "spec.template.metadata.labels",
            "spec.template.spec.restartPolicy"
        ]
    );
    assert_eq!(c.items(RCS).len(), 0);
}

#[test]
fn job_runs_parallel_pods_to_completion() {
    let mut c = Cluster::new();
    let (code, created) = c.post(
        JOBS,
        job("calc", json!({"completions": 3, "parallelism": 2})),
    );
    assert_eq!(code, 201, "{created}");
    let uid = created["metadata"]["uid"].as_str().unwrap().to_owned();
    assert_eq!(
        created["spec"]["selector"],
        json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}})
    );
    assert_eq!(
        created["spec"]["template"]["metadata"]["labels"]["job-name"],
        "calc"
    );
    assert_eq!(created["spec"]["backoffLimit"], 6);
    assert_eq!(created["spec"]["completionMode"], "NonIndexed");
    assert_eq!(
        created["spec"]["podReplacementPolicy"],
        "TerminatingOrFailed"
    );
    c.settle();
    let pods = c.pods_of("Job", "calc");
    assert_eq!(pods.len(), 2);
    assert_eq!(
        pods[0]["metadata"]["finalizers"],
        json!(["batch.kubernetes.io/job-tracking"])
    );
    let (_, j) = c.get(&alloc::format!("{JOBS}/calc"));
    assert_eq!(j["status"]["active"], 2);
    assert!(j["status"]["startTime"].is_string());

    // Each success is counted once, and its finalizer released; the last run is made.
    for round in 0..3 {
        let pod = c
            .pods_of("Job", "calc")
            .into_iter()
            .find(|p| p["status"]["phase"] == "Pending")
            .unwrap();
        c.set_phase(pod["metadata"]["name"].as_str().unwrap(), "Succeeded");
        let (_, j) = c.get(&alloc::format!("{JOBS}/calc"));
        assert_eq!(j["status"]["succeeded"], round + 1, "{j}");
    }
    let (_, j) = c.get(&alloc::format!("{JOBS}/calc"));
    let types: Vec<&str> = j["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["SuccessCriteriaMet", "Complete"]);
    assert!(j["status"]["completionTime"].is_string());
    assert!(j["status"].get("active").is_none());
    for pod in c.pods_of("Job", "calc") {
        assert!(pod["metadata"].get("finalizers").is_none(), "{pod}");
    }
}

#[test]
fn job_fails_past_its_backoff_limit() {
    let mut c = Cluster::new();
    let (code, _) = c.post(JOBS, job("flaky", json!({"backoffLimit": 1})));
    assert_eq!(code, 201);
    c.settle();
    for _ in 0..2 {
        let pod = c
            .pods_of("Job", "flaky")
            .into_iter()
            .find(|p| p["status"]["phase"] == "Pending")
            .unwrap();
        c.set_phase(pod["metadata"]["name"].as_str().unwrap(), "Failed");
    }
    let (_, j) = c.get(&alloc::format!("{JOBS}/flaky"));
    assert_eq!(j["status"]["failed"], 2, "{j}");
    let failed = Cluster::condition(&j, "Failed").unwrap();
    assert_eq!(failed.1, "BackoffLimitExceeded");
    assert_eq!(failed.2, "Job has reached the specified backoff limit");
    assert!(Cluster::condition(&j, "FailureTarget").is_some());
    // No replacement after the failure.
    assert_eq!(c.pods_of("Job", "flaky").len(), 2);
}

#[test]
fn suspending_a_job_deletes_its_pods_and_resuming_recreates_them() {
    let mut c = Cluster::new();
    c.post(
        JOBS,
        job("pause", json!({"parallelism": 2, "completions": 4})),
    );
    c.settle();
    assert_eq!(c.pods_of("Job", "pause").len(), 2);
    let (code, _) = c.patch(
        &alloc::format!("{JOBS}/pause"),
        json!({"spec": {"suspend": true}}),
        "application/merge-patch+json",
    );
    assert_eq!(code, 200);
    c.settle();
    assert!(c.pods_of("Job", "pause").is_empty());
    let (_, j) = c.get(&alloc::format!("{JOBS}/pause"));
    assert_eq!(
        Cluster::condition(&j, "Suspended").unwrap().1,
        "JobSuspended"
    );
    // Deleted pending pods count as failed, as kube counts them.
    assert_eq!(j["status"]["failed"], 2);
    c.patch(
        &alloc::format!("{JOBS}/pause"),
        json!({"spec": {"suspend": false}}),
        "application/merge-patch+json",
    );
    c.settle();
    assert_eq!(c.pods_of("Job", "pause").len(), 2);
    let (_, j) = c.get(&alloc::format!("{JOBS}/pause"));
    assert_eq!(Cluster::condition(&j, "Suspended").unwrap().0, "False");
}

#[test]
fn job_template_and_selector_are_immutable() {
    let mut c = Cluster::new();
    c.post(JOBS, job("fixed", json!({})));
    let (code, status) = c.patch(
        &alloc::format!("{JOBS}/fixed"),
        json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "other"}]}}}}),
        "application/strategic-merge-patch+json",
    );
    assert_eq!(code, 422, "{status}");
    assert_eq!(status["details"]["causes"][0]["field"], "spec.template");
    let (code, status) = c.post(
        JOBS,
        job(
            "always",
            json!({"template": {"spec": {"restartPolicy": "Always"}}}),
        ),
    );
    assert_eq!(code, 422);
    assert_eq!(
        status["details"]["causes"][0]["message"],
        "Required value: valid values: \"OnFailure\", \"Never\""
    );
}

fn minute(n: u64) -> UnixTime {
    // 1_750_000_000 is 15:06:40 UTC; the next whole minute is 1_750_000_020.
    UnixTime::from_secs(1_750_000_020 + 60 * n)
}

#[test]
fn cron_job_creates_a_job_at_each_scheduled_minute() {
    let mut c = Cluster::new();
    let (code, created) = c.post(CRONJOBS, cron_job("tick", "*/1 * * * ?", "Allow"));
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["spec"]["suspend"], false);
    assert_eq!(created["spec"]["successfulJobsHistoryLimit"], 3);
    c.settle();
    assert!(c.items(JOBS).is_empty());
    // The controller's next run is a deadline just after the next scheduled minute.
    let due = c.server.poll_timeout().unwrap();
    assert_eq!(due.secs(), minute(0).secs());
    c.advance_to(UnixTime::from_secs(minute(0).secs() + 1));
    let jobs = c.names(JOBS);
    assert_eq!(jobs, [alloc::format!("tick-{}", minute(0).secs() / 60)]);
    let (_, cj) = c.get(&alloc::format!("{CRONJOBS}/tick"));
    assert_eq!(cj["status"]["active"].as_array().unwrap().len(), 1);
    assert_eq!(cj["status"]["lastScheduleTime"], minute(0).rfc3339());
    let (_, j) = c.get(&alloc::format!("{JOBS}/{}", jobs[0]));
    assert_eq!(
        j["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"],
        minute(0).rfc3339()
    );
    assert_eq!(j["metadata"]["ownerReferences"][0]["kind"], "CronJob");
    c.advance_to(UnixTime::from_secs(minute(1).secs() + 1));
    let (_, cj) = c.get(&alloc::format!("{CRONJOBS}/tick"));
    assert_eq!(cj["status"]["active"].as_array().unwrap().len(), 2);

    // A finished Job leaves the active list and sets lastSuccessfulTime.
    let first = c.names(JOBS)[0].clone();
    let pod = c.pods_of("Job", &first)[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    c.set_phase(&pod, "Succeeded");
    let (_, cj) = c.get(&alloc::format!("{CRONJOBS}/tick"));
    assert_eq!(cj["status"]["active"].as_array().unwrap().len(), 1, "{cj}");
    assert!(cj["status"]["lastSuccessfulTime"].is_string());
    assert!(c.events().iter().any(|(r, _)| r == "SawCompletedJob"));
}

#[test]
fn cron_job_concurrency_policies() {
    let mut c = Cluster::new();
    c.post(CRONJOBS, cron_job("forbid", "* * * * *", "Forbid"));
    c.post(CRONJOBS, cron_job("replace", "* * * * *", "Replace"));
    c.settle();
    c.advance_to(UnixTime::from_secs(minute(0).secs() + 1));
    c.advance_to(UnixTime::from_secs(minute(1).secs() + 1));
    let jobs = c.names(JOBS);
    let forbid: Vec<&String> = jobs.iter().filter(|n| n.starts_with("forbid-")).collect();
    assert_eq!(forbid.len(), 1, "{jobs:?}");
    assert!(c.events().iter().any(|(r, _)| r == "JobAlreadyActive"));
    let replace: Vec<&String> = jobs.iter().filter(|n| n.starts_with("replace-")).collect();
    assert_eq!(
        replace,
        [&alloc::format!("replace-{}", minute(1).secs() / 60)]
    );
}

#[test]
fn suspended_cron_job_schedules_nothing_and_missed_runs_warn() {
    let mut c = Cluster::new();
    let mut suspended = cron_job("idle", "* * * * *", "Allow");
    suspended["spec"]["suspend"] = json!(true);
    c.post(CRONJOBS, suspended);
    c.settle();
    c.advance_to(UnixTime::from_secs(minute(3).secs() + 1));
    assert!(c.items(JOBS).is_empty());
    // Resumed three hours later: one Job for the latest time, and kube's warning.
    c.now = UnixTime::from_secs(minute(180).secs() + 5);
    c.patch(
        &alloc::format!("{CRONJOBS}/idle"),
        json!({"spec": {"suspend": false}}),
        "application/merge-patch+json",
    );
    c.settle();
    assert_eq!(
        c.names(JOBS),
        [alloc::format!("idle-{}", minute(180).secs() / 60)]
    );
    assert!(c.events().iter().any(|(r, _)| r == "TooManyMissedTimes"));
}

#[test]
fn cron_job_validation_is_kubes() {
    let mut c = Cluster::new();
    let (code, status) = c.post(CRONJOBS, cron_job("bad", "61 * * * *", "Sometimes"));
    assert_eq!(code, 422, "{status}");
    let messages: Vec<&str> = status["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        messages,
        [
            "Invalid value: \"61 * * * *\": end of range (61) above maximum (59): 61",
            "Unsupported value: \"Sometimes\": supported values: \"Allow\", \"Forbid\", \"Replace\""
        ]
    );
    let mut zoned = cron_job("zoned", "0 9 * * *", "Allow");
    zoned["spec"]["timeZone"] = json!("Europe/Nowhere");
    let (code, status) = c.post(CRONJOBS, zoned);
    assert_eq!(code, 422);
    assert_eq!(
        status["details"]["causes"][0]["message"],
        "Invalid value: \"Europe/Nowhere\": unknown time zone Europe/Nowhere"
    );
    let (code, status) = c.post(CRONJOBS, cron_job("tz", "TZ=UTC 0 9 * * *", "Allow"));
    assert_eq!(code, 422);
    assert_eq!(
        status["details"]["causes"][0]["message"],
        "Invalid value: \"TZ=UTC 0 9 * * *\": cannot use TZ or CRON_TZ in schedule, use timeZone field instead"
    );
}

#[test]
fn pod_template_pages_expire_at_compaction_and_continue_inconsistently() {
    let mut c = Cluster::new();
    for i in 0..5 {
        let (code, created) = c.post(
            TEMPLATES,
            json!({"metadata": {"name": alloc::format!("template-{i:04}")},
                "template": {"spec": {"containers": [{"name": "test", "image": "test2"}]}}}),
        );
        assert_eq!(code, 201, "{created}");
        assert_eq!(created["metadata"]["generation"], 1);
        assert_eq!(
            created["template"]["spec"]["restartPolicy"], "Always",
            "pod spec defaults apply to templates"
        );
    }
    let (_, first) = c.get(&alloc::format!("{TEMPLATES}?limit=2"));
    assert_eq!(first["metadata"]["remainingItemCount"], 3);
    let token = first["metadata"]["continue"].as_str().unwrap().to_owned();
    let first_rv = first["metadata"]["resourceVersion"].clone();
    // Within one compaction interval the token still reads the same snapshot.
    c.advance_to(c.now.plus_secs(300));
    let (code, _) = c.get(&alloc::format!("{TEMPLATES}?limit=2&continue={token}"));
    assert_eq!(code, 200);
    c.post(
        TEMPLATES,
        json!({"metadata": {"name": "template-9999"},
            "template": {"spec": {"containers": [{"name": "test", "image": "test2"}]}}}),
    );
    c.advance_to(c.now.plus_secs(300));
    let (code, status) = c.get(&alloc::format!("{TEMPLATES}?limit=2&continue={token}"));
    assert_eq!(code, 410, "{status}");
    assert_eq!(status["reason"], "Expired");
    let inconsistent = status["metadata"]["continue"].as_str().unwrap().to_owned();
    let (code, page) = c.get(&alloc::format!(
        "{TEMPLATES}?limit=2&continue={inconsistent}"
    ));
    assert_eq!(code, 200, "{page}");
    assert_ne!(page["metadata"]["resourceVersion"], first_rv);
    let names: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["template-0002", "template-0003"]);
    // It counts what was created since: template-0004 and template-9999 remain.
    assert_eq!(page["metadata"]["remainingItemCount"], 2);
    let rv = page["metadata"]["resourceVersion"].clone();
    let next = page["metadata"]["continue"].as_str().unwrap().to_owned();
    let (_, last) = c.get(&alloc::format!("{TEMPLATES}?limit=2&continue={next}"));
    assert_eq!(last["metadata"]["resourceVersion"], rv);
    assert!(last["metadata"].get("continue").is_none());
}
