//! The CronJob controller, as kube-controller-manager 1.32's (`cronjob_controllerv2.go`): at
//! each scheduled time it creates a Job named `<cronjob>-<minutes since the epoch>` from the job
//! template, follows its Jobs in `status.active`, `lastScheduleTime` and `lastSuccessfulTime`,
//! applies `concurrencyPolicy` (Allow, Forbid, Replace), `suspend`, `startingDeadlineSeconds` and
//! the history limits, and warns (`TooManyMissedTimes`) when more than 100 start times were
//! missed. Its next run is a timer at the next scheduled time (`Controllers::requeue_at`), never
//! a scan.

use alloc::string::String;
use alloc::vec::Vec;
use serde_json::{Value, json};

use super::events::Involved;
use super::gc::Propagation;
use super::job::{condition_true, finished};
use super::{Queue, controller_ref, controller_ref_to, deleting};
use crate::cluster::Cluster;
use crate::cluster::deletion::DeleteOptions;
use crate::cron::{self, Schedule};
use crate::resource::ResourceId;
use crate::store::ObjectKey;
use crate::{Error, UnixTime, json as j};

const COMPONENT: &str = "cronjob-controller";
/// The annotation with the time a Job was scheduled for.
const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";
/// kube runs a CronJob again this long after its next scheduled time.
const NEXT_SCHEDULE_DELTA_NANOS: u64 = 100_000_000;
/// Missed start times beyond this draw a `TooManyMissedTimes` warning.
const MANY_MISSED: i64 = 100;
/// Seconds before a failed Job creation is tried again.
const RETRY_SECS: u64 = 10;

/// What `mostRecentScheduleTime` finds.
struct Recent {
    earliest: UnixTime,
    most_recent: Option<UnixTime>,
    missed: i64,
}

/// kube's `mostRecentScheduleTime`: the latest start time not after `now` since the last one
/// scheduled (or creation), and how many were missed.
fn most_recent_schedule_time(
    cj: &Value,
    now: UnixTime,
    schedule: &Schedule,
    with_deadline: bool,
) -> Result<Recent, String> {
    let time = |p: &str| {
        cj.pointer(p)
            .and_then(Value::as_str)
            .and_then(UnixTime::parse_rfc3339)
    };
    let mut earliest = time("/status/lastScheduleTime")
        .or_else(|| time("/metadata/creationTimestamp"))
        .unwrap_or(now);
    if with_deadline
        && let Some(deadline) = cj
            .pointer("/spec/startingDeadlineSeconds")
            .and_then(Value::as_u64)
    {
        let since = UnixTime::from_secs(now.secs().saturating_sub(deadline));
        if since > earliest {
            earliest = since;
        }
    }
    let none = |earliest| Recent {
        earliest,
        most_recent: None,
        missed: 0,
    };
    let Some(t1) = schedule.next(earliest) else {
        return Ok(none(earliest));
    };
    if now < t1 {
        return Ok(none(earliest));
    }
    let Some(t2) = schedule.next(t1) else {
        return Ok(Recent {
            earliest,
            most_recent: Some(t1),
            missed: 0,
        });
    };
    if now < t2 {
        return Ok(Recent {
            earliest,
            most_recent: Some(t1),
            missed: 0,
        });
    }
    let between = i64::try_from(t2.secs().saturating_sub(t1.secs())).unwrap_or(i64::MAX);
    if between < 1 {
        return Err("time difference between two schedules is less than 1 second".into());
    }
    let elapsed = i64::try_from(now.secs().saturating_sub(t1.secs())).unwrap_or(i64::MAX);
    let missed = elapsed / between + 1;
    let back = missed.saturating_sub(2).saturating_mul(between);
    let potential = if back >= 0 {
        t1.secs().saturating_add(u64::try_from(back).unwrap_or(0))
    } else {
        t1.secs().saturating_sub(back.unsigned_abs())
    };
    let mut most_recent = None;
    let mut t = schedule.next(UnixTime::from_secs(potential));
    // Uniform schedules take two or three steps; the cap bounds odd ones.
    for _ in 0..1024 {
        match t {
            Some(at) if at <= now => {
                most_recent = Some(at);
                t = schedule.next(at);
            }
            _ => break,
        }
    }
    Ok(Recent {
        earliest,
        most_recent,
        missed,
    })
}

/// `nextScheduleTimeDuration`, as the time to run again.
fn next_run(cj: &Value, now: UnixTime, schedule: &Schedule) -> Option<UnixTime> {
    let from = match most_recent_schedule_time(cj, now, schedule, false) {
        Err(_) => now,
        Ok(Recent {
            most_recent: Some(t),
            ..
        }) => t,
        Ok(Recent {
            earliest, missed, ..
        }) => {
            if missed == 0 {
                earliest
            } else {
                now
            }
        }
    };
    let next = schedule.next(from)?;
    Some(UnixTime {
        nanos: next.nanos.saturating_add(NEXT_SCHEDULE_DELTA_NANOS),
    })
}

/// An `ObjectReference` to a Job, as `status.active` holds it.
fn job_ref(job: &Value) -> Value {
    json!({
        "kind": "Job",
        "namespace": j::str_at(job, "/metadata/namespace"),
        "name": j::str_at(job, "/metadata/name"),
        "uid": j::str_at(job, "/metadata/uid"),
        "apiVersion": "batch/v1",
        "resourceVersion": j::str_at(job, "/metadata/resourceVersion"),
    })
}

/// kube's `byJobStartTime`: started before not started, earlier first, then by name.
fn by_start_time(a: &Value, b: &Value) -> core::cmp::Ordering {
    let start = |v: &Value| {
        v.pointer("/status/startTime")
            .and_then(Value::as_str)
            .and_then(UnixTime::parse_rfc3339)
    };
    match (start(a), start(b)) {
        (Some(x), Some(y)) if x != y => x.cmp(&y),
        (Some(_), None) => core::cmp::Ordering::Less,
        (None, Some(_)) => core::cmp::Ordering::Greater,
        _ => j::str_at(a, "/metadata/name").cmp(j::str_at(b, "/metadata/name")),
    }
}

impl Cluster {
    /// One pass of the CronJob controller over the CronJob `ns/name` at `now`.
    pub(crate) fn sync_cronjob(&mut self, now: UnixTime, ns: &str, name: &str) {
        let key = ObjectKey::new(ResourceId::CronJobs, ns, name);
        let Some(cj) = self.load(&key) else {
            return;
        };
        let uid = j::string_at(&cj, "/metadata/uid");
        let jobs: Vec<Value> = self
            .store
            .range(ResourceId::Jobs, Some(ns), None)
            .filter_map(|(_, o)| serde_json::from_slice::<Value>(&o.json.bytes()).ok())
            .filter(|job| controller_ref(job).is_some_and(|r| r.uid == uid))
            .collect();
        let mut status = cj.get("status").cloned().unwrap_or_else(|| json!({}));
        let mut active: Vec<Value> = status
            .get("active")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let involved = Involved::of(&cj);

        let jobs = self.cleanup_finished_jobs(now, &cj, jobs, &mut active);
        for job in &jobs {
            let job_uid = j::str_at(job, "/metadata/uid");
            let listed = active.iter().any(|r| j::str_at(r, "/uid") == job_uid);
            if !finished(job) {
                if !listed {
                    self.record_event(
                        now,
                        &involved,
                        "Warning",
                        "UnexpectedJob",
                        &alloc::format!(
                            "Saw a job that the controller did not create or forgot: {}",
                            j::str_at(job, "/metadata/name")
                        ),
                        COMPONENT,
                    );
                }
                continue;
            }
            if listed {
                active.retain(|r| j::str_at(r, "/uid") != job_uid);
                let condition = if condition_true(job, "Complete") {
                    "Complete"
                } else {
                    "Failed"
                };
                self.record_event(
                    now,
                    &involved,
                    "Normal",
                    "SawCompletedJob",
                    &alloc::format!(
                        "Saw completed job: {}, condition: {condition}",
                        j::str_at(job, "/metadata/name")
                    ),
                    COMPONENT,
                );
            }
            if condition_true(job, "Complete")
                && let Some(done) = job.pointer("/status/completionTime").cloned()
                && let Some(map) = status.as_object_mut()
            {
                let later = |t: &Value| t.as_str().and_then(UnixTime::parse_rfc3339);
                let current = map.get("lastSuccessfulTime").and_then(later);
                if current.is_none_or(|c| later(&done).is_some_and(|d| d > c)) {
                    map.insert("lastSuccessfulTime".into(), done);
                }
            }
        }
        // Jobs in the active list that no longer exist.
        let missing: Vec<String> = active
            .iter()
            .filter(|r| {
                let job_uid = j::str_at(r, "/uid");
                jobs.iter()
                    .all(|job| j::str_at(job, "/metadata/uid") != job_uid)
            })
            .map(|r| j::string_at(r, "/name"))
            .collect();
        for job in &missing {
            self.record_event(
                now,
                &involved,
                "Normal",
                "MissingJob",
                &alloc::format!("Active job went missing: {job}"),
                COMPONENT,
            );
        }
        active.retain(|r| !missing.contains(&j::string_at(r, "/name")));

        if !deleting(&cj) {
            self.schedule_cronjob(now, &cj, &mut status, &mut active);
        }
        if let Some(map) = status.as_object_mut() {
            if active.is_empty() {
                map.remove("active");
            } else {
                map.insert("active".into(), Value::Array(active));
            }
        }
        if cj.get("status") == Some(&status) {
            return;
        }
        let Some(mut current) = self.load(&key) else {
            return;
        };
        if let Some(map) = current.as_object_mut() {
            map.insert("status".into(), status);
        }
        let _ = self.controller_update(now, &key, &mut current);
    }

    /// The scheduling half of a sync: creates the Job due now, if any, and sets the timer for
    /// the next one.
    fn schedule_cronjob(
        &mut self,
        now: UnixTime,
        cj: &Value,
        status: &mut Value,
        active: &mut Vec<Value>,
    ) {
        let ns = j::string_at(cj, "/metadata/namespace");
        let name = j::string_at(cj, "/metadata/name");
        let involved = Involved::of(cj);
        let spec_schedule = j::string_at(cj, "/spec/schedule");
        let time_zone = cj.pointer("/spec/timeZone").and_then(Value::as_str);
        let zone = match time_zone.map(cron::load_zone) {
            None => jiff::tz::TimeZone::UTC,
            Some(Ok(zone)) => zone,
            Some(Err(e)) => {
                self.record_event(
                    now,
                    &involved,
                    "Warning",
                    "UnknownTimeZone",
                    &alloc::format!(
                        "invalid timeZone: \"{}\": {e}",
                        time_zone.unwrap_or_default()
                    ),
                    COMPONENT,
                );
                return;
            }
        };
        if cj.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true) {
            return;
        }
        if cron::mentions_tz(&spec_schedule) {
            self.record_event(
                now,
                &involved,
                "Warning",
                "UnsupportedSchedule",
                &alloc::format!(
                    "CRON_TZ or TZ used in schedule \"{spec_schedule}\" is not officially supported, see https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ for more details"
                ),
                COMPONENT,
            );
        }
        let schedule = match cron::parse(&spec_schedule, &zone) {
            Ok(s) => s,
            Err(e) => {
                self.record_event(
                    now,
                    &involved,
                    "Warning",
                    "UnparseableSchedule",
                    &alloc::format!("unparseable schedule: \"{spec_schedule}\" : {e}"),
                    COMPONENT,
                );
                return;
            }
        };
        let requeue = |server: &mut Self| {
            if let Some(at) = next_run(cj, now, &schedule) {
                server
                    .controllers
                    .requeue_at(at, Queue::CronJob, &ns, &name);
            }
        };
        let recent = match most_recent_schedule_time(cj, now, &schedule, true) {
            Ok(r) => r,
            Err(e) => {
                self.record_event(
                    now,
                    &involved,
                    "Warning",
                    "InvalidSchedule",
                    &alloc::format!("invalid schedule: {spec_schedule} : {e}"),
                    COMPONENT,
                );
                return;
            }
        };
        let Some(scheduled) = recent.most_recent.filter(|t| *t <= now) else {
            requeue(self);
            return;
        };
        if recent.missed > MANY_MISSED {
            self.record_event(
                now,
                &involved,
                "Warning",
                "TooManyMissedTimes",
                "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew",
                COMPONENT,
            );
        }
        if let Some(deadline) = cj
            .pointer("/spec/startingDeadlineSeconds")
            .and_then(Value::as_u64)
            && scheduled.plus_secs(deadline) < now
        {
            self.record_event(
                now,
                &involved,
                "Warning",
                "MissSchedule",
                &alloc::format!(
                    "Missed scheduled time to start a job: {}",
                    cron::rfc1123z(scheduled)
                ),
                COMPONENT,
            );
            requeue(self);
            return;
        }
        let job_name = alloc::format!("{name}-{}", scheduled.secs() / 60);
        let last = status
            .pointer("/lastScheduleTime")
            .and_then(Value::as_str)
            .and_then(UnixTime::parse_rfc3339);
        if active.iter().any(|r| j::str_at(r, "/name") == job_name)
            || last.is_some_and(|l| l.secs() == scheduled.secs())
        {
            requeue(self);
            return;
        }
        let policy = j::string_at(cj, "/spec/concurrencyPolicy");
        if policy == "Forbid" && !active.is_empty() {
            self.record_event(
                now,
                &involved,
                "Normal",
                "JobAlreadyActive",
                "Not starting job because prior execution is running and concurrency policy is Forbid",
                COMPONENT,
            );
            requeue(self);
            return;
        }
        if policy == "Replace" {
            for r in active.clone() {
                let key = ObjectKey::new(ResourceId::Jobs, &ns, j::str_at(&r, "/name"));
                let Some(job) = self.load(&key) else {
                    active.retain(|a| a != &r);
                    continue;
                };
                if !self.delete_cron_job_child(now, cj, &key, job) {
                    return;
                }
                active.retain(|a| a != &r);
            }
        }
        let mut job = self.job_from_template(cj, &job_name, scheduled, schedule.zone());
        let created = match self.controller_create(now, ResourceId::Jobs, &ns, &mut job) {
            Ok(()) => {
                self.record_event(
                    now,
                    &involved,
                    "Normal",
                    "SuccessfulCreate",
                    &alloc::format!("Created job {job_name}"),
                    COMPONENT,
                );
                self.load(&ObjectKey::new(ResourceId::Jobs, &ns, &job_name))
            }
            Err(Error::AlreadyExists { .. }) => {
                // Made by an earlier pass whose status write was lost: list it again, if ours.
                let existing = self.load(&ObjectKey::new(ResourceId::Jobs, &ns, &job_name));
                let ours = existing.as_ref().is_some_and(|job| {
                    controller_ref(job).is_some_and(|r| r.uid == j::str_at(cj, "/metadata/uid"))
                });
                if !ours {
                    return;
                }
                existing
            }
            Err(e) => {
                if !matches!(e, Error::Forbidden { .. }) {
                    self.record_event(
                        now,
                        &involved,
                        "Warning",
                        "FailedCreate",
                        &alloc::format!("Error creating job: {}", e.message()),
                        COMPONENT,
                    );
                }
                self.controllers
                    .requeue_at(now.plus_secs(RETRY_SECS), Queue::CronJob, &ns, &name);
                return;
            }
        };
        if let Some(job) = created {
            active.push(job_ref(&job));
        }
        if let Some(map) = status.as_object_mut() {
            map.insert("lastScheduleTime".into(), Value::from(scheduled.rfc3339()));
        }
        requeue(self);
    }

    /// `getJobFromTemplate2`: the Job for the run scheduled at `scheduled`.
    fn job_from_template(
        &self,
        cj: &Value,
        job_name: &str,
        scheduled: UnixTime,
        zone: &jiff::tz::TimeZone,
    ) -> Value {
        let template = cj.pointer("/spec/jobTemplate").unwrap_or(&Value::Null);
        let object = |p: &str| {
            template
                .pointer(p)
                .filter(|v| v.is_object())
                .cloned()
                .unwrap_or_else(|| json!({}))
        };
        let mut annotations = object("/metadata/annotations");
        if let Some(map) = annotations.as_object_mut() {
            map.insert(
                SCHEDULED_TIMESTAMP.into(),
                Value::from(cron::rfc3339_in(scheduled, zone)),
            );
        }
        let mut metadata = json!({
            "name": job_name,
            "annotations": annotations,
            "ownerReferences": [controller_ref_to(cj, "batch/v1", "CronJob")],
        });
        let labels = object("/metadata/labels");
        if let (Some(map), false) = (
            metadata.as_object_mut(),
            labels.as_object().is_none_or(serde_json::Map::is_empty),
        ) {
            map.insert("labels".into(), labels);
        }
        json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": metadata,
            "spec": object("/spec"),
        })
    }

    /// Deletes a Job of the CronJob (Background, as kube's `deleteJob`); false on failure.
    fn delete_cron_job_child(
        &mut self,
        now: UnixTime,
        cj: &Value,
        key: &ObjectKey,
        job: Value,
    ) -> bool {
        let involved = Involved::of(cj);
        let background = DeleteOptions::with_propagation(Propagation::Background);
        match self.controller_delete(now, key, job, &background) {
            Ok(_) => {
                self.record_event(
                    now,
                    &involved,
                    "Normal",
                    "SuccessfulDelete",
                    &alloc::format!("Deleted job {}", key.name),
                    COMPONENT,
                );
                true
            }
            Err(e) => {
                self.record_event(
                    now,
                    &involved,
                    "Warning",
                    "FailedDelete",
                    &alloc::format!("Deleted job: {}", e.message()),
                    COMPONENT,
                );
                false
            }
        }
    }

    /// `cleanupFinishedJobs`: deletes the oldest finished Jobs beyond the history limits; returns
    /// the Jobs that remain.
    fn cleanup_finished_jobs(
        &mut self,
        now: UnixTime,
        cj: &Value,
        jobs: Vec<Value>,
        active: &mut Vec<Value>,
    ) -> Vec<Value> {
        let limit = |field: &str| {
            cj.pointer(&alloc::format!("/spec/{field}"))
                .and_then(Value::as_i64)
        };
        let limits = [
            ("Complete", limit("successfulJobsHistoryLimit")),
            ("Failed", limit("failedJobsHistoryLimit")),
        ];
        let mut doomed: Vec<String> = Vec::new();
        for (condition, limit) in limits {
            let Some(limit) = limit else {
                continue;
            };
            let mut done: Vec<&Value> = jobs
                .iter()
                .filter(|job| condition_true(job, condition))
                .collect();
            let excess = done
                .len()
                .saturating_sub(usize::try_from(limit.max(0)).unwrap_or(usize::MAX));
            done.sort_by(|a, b| by_start_time(a, b));
            doomed.extend(
                done.into_iter()
                    .take(excess)
                    .map(|job| j::string_at(job, "/metadata/name")),
            );
        }
        let ns = j::string_at(cj, "/metadata/namespace");
        let mut kept = Vec::new();
        for job in jobs {
            let name = j::string_at(&job, "/metadata/name");
            if doomed.contains(&name) {
                let key = ObjectKey::new(ResourceId::Jobs, &ns, &name);
                let uid = j::string_at(&job, "/metadata/uid");
                if self.delete_cron_job_child(now, cj, &key, job) {
                    active.retain(|r| j::str_at(r, "/uid") != uid);
                    continue;
                }
                if let Some(job) = self.load(&key) {
                    kept.push(job);
                }
                continue;
            }
            kept.push(job);
        }
        kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> UnixTime {
        UnixTime::parse_rfc3339(text).unwrap()
    }

    fn cron_job(created: &str, last: Option<&str>) -> Value {
        let mut cj = json!({"metadata": {"creationTimestamp": created}, "spec": {}, "status": {}});
        if let Some(last) = last {
            cj["status"]["lastScheduleTime"] = Value::from(last);
        }
        cj
    }

    #[test]
    fn most_recent_time_counts_missed_runs() {
        let every_minute = cron::parse("* * * * *", &jiff::tz::TimeZone::UTC).unwrap();
        let cj = cron_job("2024-01-01T00:00:30Z", None);
        let before =
            most_recent_schedule_time(&cj, at("2024-01-01T00:00:59Z"), &every_minute, true)
                .unwrap();
        assert!(before.most_recent.is_none());
        let one = most_recent_schedule_time(&cj, at("2024-01-01T00:01:10Z"), &every_minute, true)
            .unwrap();
        assert_eq!(one.most_recent, Some(at("2024-01-01T00:01:00Z")));
        // Three hours later: 180 runs missed, the latest is the one to start.
        let many = most_recent_schedule_time(&cj, at("2024-01-01T03:00:20Z"), &every_minute, true)
            .unwrap();
        assert_eq!(many.most_recent, Some(at("2024-01-01T03:00:00Z")));
        assert!(many.missed > MANY_MISSED);
        // A starting deadline moves the window forward, so fewer count as missed.
        let mut bounded = cj.clone();
        bounded["spec"]["startingDeadlineSeconds"] = Value::from(200);
        let few =
            most_recent_schedule_time(&bounded, at("2024-01-01T03:00:20Z"), &every_minute, true)
                .unwrap();
        assert_eq!(few.most_recent, Some(at("2024-01-01T03:00:00Z")));
        assert!(few.missed <= 4);
        // The next run comes after the most recent time, 100 ms past the minute.
        let next = next_run(
            &cron_job("2024-01-01T00:00:30Z", Some("2024-01-01T00:01:00Z")),
            at("2024-01-01T00:01:10Z"),
            &every_minute,
        )
        .unwrap();
        assert_eq!(next.secs(), at("2024-01-01T00:02:00Z").secs());
        assert_eq!(next.nanos % 1_000_000_000, NEXT_SCHEDULE_DELTA_NANOS);
    }
}
