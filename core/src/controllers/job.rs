//! The Job controller, as kube-controller-manager 1.32's: runs `parallelism` pods at a time
//! (fewer when only the remaining completions need them) until `completions` pods succeed,
//! counts each finished pod once through the `batch.kubernetes.io/job-tracking` finalizer, fails
//! the Job past `backoffLimit` failures or `activeDeadlineSeconds`, deletes the pods of a
//! suspended Job, and deletes a finished Job after `ttlSecondsAfterFinished`.
//!
//! Terminal conditions come in two steps, as with 1.32's default feature gates: first
//! `SuccessCriteriaMet` or `FailureTarget` (the remaining pods are deleted), then `Complete` or
//! `Failed` once no pod of the Job is still running or terminating.
//!
//! Not done: Indexed completion (pods are made as for NonIndexed), pod failure and success
//! policies, backoff delays between pod re-creations.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use serde_json::{Value, json};

use super::events::Involved;
use super::gc::Propagation;
use super::replicaset::{PodView, ReplicaKind};
use super::{Queue, controller_of, deleting, finalizers, int_at, meta_mut};
use crate::cluster::Cluster;
use crate::cluster::deletion::{DeleteOptions, completes_deletion};
use crate::resource::ResourceId;
use crate::store::ObjectKey;
use crate::{UnixTime, json as j};

/// The finalizer the Job controller puts on its pods until it has counted them.
pub(crate) const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
const COMPONENT: &str = "job-controller";

/// Whether condition `ty` is `True` in a Job's status.
pub(crate) fn condition_true(job: &Value, ty: &str) -> bool {
    job.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter()
                .any(|c| j::str_at(c, "/type") == ty && j::str_at(c, "/status") == "True")
        })
}

/// kube's `IsJobFinished`: `Complete` or `Failed` is `True`.
pub(crate) fn finished(job: &Value) -> bool {
    condition_true(job, "Complete") || condition_true(job, "Failed")
}

/// When a finished Job finished: its `Complete` or `Failed` condition's transition time.
fn finish_time(job: &Value) -> Option<UnixTime> {
    job.pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| {
            matches!(j::str_at(c, "/type"), "Complete" | "Failed")
                && j::str_at(c, "/status") == "True"
        })
        .and_then(|c| UnixTime::parse_rfc3339(j::str_at(c, "/lastTransitionTime")))
}

/// A Job condition as kube's `newCondition` writes it.
fn condition(ty: &str, status: &str, reason: &str, message: &str, now: UnixTime) -> Value {
    json!({
        "type": ty, "status": status, "reason": reason, "message": message,
        "lastProbeTime": now.rfc3339(), "lastTransitionTime": now.rfc3339(),
    })
}

/// Sets `ty` to `status` unless it already has it; returns whether anything changed.
fn ensure_condition(
    conditions: &mut Vec<Value>,
    ty: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: UnixTime,
) -> bool {
    match conditions.iter_mut().find(|c| j::str_at(c, "/type") == ty) {
        Some(c) if j::str_at(c, "/status") == status => false,
        Some(c) => {
            *c = condition(ty, status, reason, message, now);
            true
        }
        None => {
            // kube adds a False condition only to flip an existing one.
            if status == "False" {
                return false;
            }
            conditions.push(condition(ty, status, reason, message, now));
            true
        }
    }
}

fn find_condition<'a>(conditions: &'a [Value], ty: &str) -> Option<&'a Value> {
    conditions
        .iter()
        .find(|c| j::str_at(c, "/type") == ty && j::str_at(c, "/status") == "True")
}

impl Cluster {
    /// Brings one Job's pods to its spec and writes its status.
    pub(crate) fn sync_job(&mut self, now: UnixTime, ns: &str, name: &str) {
        let key = ObjectKey::new(ResourceId::Jobs, ns, name);
        let Some(job) = self.load(&key) else {
            self.release_job_pods(now, ns, name, None);
            return;
        };
        if finished(&job) {
            self.release_job_pods(now, ns, name, Some(j::str_at(&job, "/metadata/uid")));
            self.expire_finished_job(now, &key, &job);
            return;
        }
        let Some(selector) = ReplicaKind::Job.selector(&job).filter(|s| !s.is_empty()) else {
            return;
        };
        let manage = !deleting(&job);
        let pods = self.claim_pods(now, ReplicaKind::Job, &job, ns, &selector, manage);
        let spec = job.get("spec").cloned().unwrap_or(Value::Null);
        let suspended = spec.get("suspend").and_then(Value::as_bool) == Some(true);
        let mut status = job.get("status").cloned().unwrap_or_else(|| json!({}));
        let mut conditions: Vec<Value> = status
            .get("conditions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();

        // Count finished pods once: their finalizer goes, their count goes into the status.
        let mut succeeded = int_at(&job, "/status/succeeded");
        let mut failed = int_at(&job, "/status/failed");
        for pod in pods.iter().filter(|p| p.tracked) {
            let done = pod.succeeded || pod.terminal || pod.deleting;
            if !done || !self.remove_tracking_finalizer(now, ns, &pod.facts.name) {
                continue;
            }
            if pod.succeeded {
                succeeded = succeeded.saturating_add(1);
            } else {
                failed = failed.saturating_add(1);
            }
        }
        let mut active: Vec<Arc<PodView>> = pods.iter().filter(|p| p.active).cloned().collect();
        let terminating = pods.iter().filter(|p| p.deleting && !p.terminal).count();
        if let Some(map) = status.as_object_mut()
            && !map.contains_key("startTime")
            && !suspended
        {
            map.insert("startTime".into(), Value::from(now.rfc3339()));
        }
        let start = status
            .get("startTime")
            .and_then(Value::as_str)
            .and_then(UnixTime::parse_rfc3339);

        // What ends the Job, if anything has.
        let backoff_limit = spec
            .get("backoffLimit")
            .and_then(Value::as_i64)
            .unwrap_or(6);
        let mut target: Option<Value> = find_condition(&conditions, "FailureTarget")
            .or_else(|| find_condition(&conditions, "SuccessCriteriaMet"))
            .cloned();
        if target.is_none() {
            let deadline = spec.get("activeDeadlineSeconds").and_then(Value::as_u64);
            let past_deadline = !suspended
                && deadline.is_some_and(|d| start.is_some_and(|s| s.plus_secs(d) <= now));
            if failed > backoff_limit {
                target = Some(condition(
                    "FailureTarget",
                    "True",
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit",
                    now,
                ));
            } else if past_deadline {
                target = Some(condition(
                    "FailureTarget",
                    "True",
                    "DeadlineExceeded",
                    "Job was active longer than specified deadline",
                    now,
                ));
            } else if let (Some(d), Some(s), false) = (deadline, start, suspended) {
                self.controllers
                    .requeue_at(s.plus_secs(d), Queue::Job, ns, name);
            }
        }
        let completions = spec.get("completions").and_then(Value::as_i64);
        if target.is_none() && manage {
            if suspended {
                self.delete_job_pods(now, &job, &mut active);
                if ensure_condition(
                    &mut conditions,
                    "Suspended",
                    "True",
                    "JobSuspended",
                    "Job suspended",
                    now,
                ) {
                    self.record_event(
                        now,
                        &Involved::of(&job),
                        "Normal",
                        "Suspended",
                        "Job suspended",
                        COMPONENT,
                    );
                }
            } else {
                if ensure_condition(
                    &mut conditions,
                    "Suspended",
                    "False",
                    "JobResumed",
                    "Job resumed",
                    now,
                ) {
                    self.record_event(
                        now,
                        &Involved::of(&job),
                        "Normal",
                        "Resumed",
                        "Job resumed",
                        COMPONENT,
                    );
                    if let Some(map) = status.as_object_mut() {
                        map.insert("startTime".into(), Value::from(now.rfc3339()));
                    }
                }
                self.manage_job_pods(now, &job, &spec, succeeded, terminating, &mut active);
            }
        }
        let done = match completions {
            Some(c) => succeeded >= c,
            None => succeeded > 0,
        };
        if target.is_none() && done && active.is_empty() {
            target = Some(condition(
                "SuccessCriteriaMet",
                "True",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
                now,
            ));
        }
        if let Some(target) = &target {
            // The Job is ending: its remaining pods go, then the terminal condition comes.
            self.delete_job_pods(now, &job, &mut active);
            let ty = j::str_at(target, "/type");
            if conditions.iter().all(|c| j::str_at(c, "/type") != ty) {
                conditions.push(target.clone());
            }
            let still_running = pods.iter().any(|p| !p.terminal);
            if !still_running {
                let (terminal, reason, message) = (
                    if ty == "FailureTarget" {
                        "Failed"
                    } else {
                        "Complete"
                    },
                    j::str_at(target, "/reason"),
                    j::str_at(target, "/message"),
                );
                conditions.push(condition(terminal, "True", reason, message, now));
                if terminal == "Complete" {
                    if let Some(map) = status.as_object_mut() {
                        map.insert("completionTime".into(), Value::from(now.rfc3339()));
                    }
                    self.record_event(
                        now,
                        &Involved::of(&job),
                        "Normal",
                        "Completed",
                        "Job completed",
                        COMPONENT,
                    );
                } else {
                    self.record_event(
                        now,
                        &Involved::of(&job),
                        "Warning",
                        reason,
                        message,
                        COMPONENT,
                    );
                }
            }
        }
        let ready = active.iter().filter(|p| p.facts.ready).count();
        if let Some(map) = status.as_object_mut() {
            map.insert("active".into(), Value::from(active.len()));
            map.insert("ready".into(), Value::from(ready));
            map.insert("terminating".into(), Value::from(terminating));
            map.insert("succeeded".into(), Value::from(succeeded));
            map.insert("failed".into(), Value::from(failed));
            map.insert("uncountedTerminatedPods".into(), json!({}));
            for field in ["active", "succeeded", "failed"] {
                if map.get(field).and_then(Value::as_i64) == Some(0) {
                    map.remove(field);
                }
            }
            if conditions.is_empty() {
                map.remove("conditions");
            } else {
                map.insert("conditions".into(), Value::Array(conditions));
            }
        }
        if job.get("status") == Some(&status) {
            return;
        }
        let Some(mut current) = self.load(&key) else {
            return;
        };
        if let Some(map) = current.as_object_mut() {
            map.insert("status".into(), status);
        }
        if self.controller_update(now, &key, &mut current).is_ok() && finished(&current) {
            // A finished Job may have a TTL; and its pods' finalizers are gone already.
            self.expire_finished_job(now, &key, &current);
        }
    }

    /// Creates or deletes pods so that `parallelism` (at most what the remaining completions
    /// need) are active.
    fn manage_job_pods(
        &mut self,
        now: UnixTime,
        job: &Value,
        spec: &Value,
        succeeded: i64,
        terminating: usize,
        active: &mut Vec<Arc<PodView>>,
    ) {
        let parallelism = spec.get("parallelism").and_then(Value::as_i64).unwrap_or(1);
        let mut want = match spec.get("completions").and_then(Value::as_i64) {
            Some(c) => parallelism.min(c.saturating_sub(succeeded)),
            // Without completions, the first success means no new pods.
            None if succeeded > 0 => 0,
            None => parallelism,
        }
        .max(0);
        // `podReplacementPolicy: Failed` waits for terminating pods before replacing them.
        if j::str_at(spec, "/podReplacementPolicy") == "Failed" {
            want = want.saturating_sub(i64::try_from(terminating).unwrap_or(i64::MAX));
        }
        let want = usize::try_from(want).unwrap_or(0);
        if active.len() < want {
            let missing = (want - active.len()).min(self.config.controller_burst);
            // A refused create was noted: the sync is retried with backoff.
            let (created, _) = self.create_pods(now, ReplicaKind::Job, job, missing);
            active.extend(created);
        } else if active.len() > want {
            active.sort_by(|a, b| super::replicaset::deletion_order(&a.facts, &b.facts));
            let mut surplus: Vec<Arc<PodView>> = active.drain(..active.len() - want).collect();
            self.delete_job_pods(now, job, &mut surplus);
            active.extend(surplus);
        }
    }

    /// Deletes the pods in `pods` (their finalizer keeps them until they are counted); the
    /// ones whose deletion failed stay in `pods`.
    fn delete_job_pods(&mut self, now: UnixTime, job: &Value, pods: &mut Vec<Arc<PodView>>) {
        let ns = j::string_at(job, "/metadata/namespace");
        let mut kept = Vec::new();
        for pod in pods.drain(..) {
            let key = ObjectKey::new(ResourceId::Pods, &ns, &pod.facts.name);
            let Some(obj) = self.load(&key) else {
                continue;
            };
            // kube's job controller deletes its pods with default options: gracefully.
            match self.controller_delete(now, &key, obj, &DeleteOptions::default()) {
                Ok(_) => self.record_event(
                    now,
                    &Involved::of(job),
                    "Normal",
                    "SuccessfulDelete",
                    &alloc::format!("Deleted pod: {}", pod.facts.name),
                    COMPONENT,
                ),
                Err(_) => kept.push(pod),
            }
        }
        *pods = kept;
    }

    /// Removes the tracking finalizer from pod `name`; true when it is gone.
    fn remove_tracking_finalizer(&mut self, now: UnixTime, ns: &str, name: &str) -> bool {
        let key = ObjectKey::new(ResourceId::Pods, ns, name);
        let Some(mut pod) = self.load(&key) else {
            return false;
        };
        let before = pod.clone();
        let list: Vec<String> = finalizers(&pod)
            .into_iter()
            .filter(|f| f != TRACKING_FINALIZER)
            .collect();
        if let Some(meta) = meta_mut(&mut pod) {
            if list.is_empty() {
                meta.remove("finalizers");
            } else {
                meta.insert("finalizers".into(), json!(list));
            }
        }
        // kube's ShouldDeleteDuringUpdate: a pod still in its grace period stays for its kubelet.
        if completes_deletion(&before, &pod) {
            return self.controller_remove(now, &key, &mut pod).is_ok();
        }
        self.controller_update(now, &key, &mut pod).is_ok()
    }

    /// Lets go of the pods a Job named `name` made: when the Job is gone (`uid` None) or has
    /// finished, nothing will count them any more (kube's orphan-pod cleanup).
    fn release_job_pods(&mut self, now: UnixTime, ns: &str, name: &str, uid: Option<&str>) {
        let held: Vec<String> = self
            .store
            .range(ResourceId::Pods, Some(ns), None)
            .filter(|(_, o)| {
                controller_of(&o.json.bytes())
                    .is_some_and(|(kind, owner)| kind == "Job" && owner == name)
            })
            .filter_map(|(k, o)| {
                let pod: Value = serde_json::from_slice(&o.json.bytes()).ok()?;
                let tracked = finalizers(&pod).iter().any(|f| f == TRACKING_FINALIZER);
                let terminal = matches!(j::str_at(&pod, "/status/phase"), "Succeeded" | "Failed");
                let owned_now =
                    uid.is_some_and(|u| super::controller_ref(&pod).is_some_and(|r| r.uid == u));
                (tracked && (uid.is_none() || !owned_now || terminal || deleting(&pod)))
                    .then(|| String::from(&*k.name))
            })
            .collect();
        for pod in held {
            self.remove_tracking_finalizer(now, ns, &pod);
        }
    }

    /// Deletes a finished Job once its `ttlSecondsAfterFinished` has passed (kube's
    /// ttl-after-finished controller, Foreground), or looks again then.
    fn expire_finished_job(&mut self, now: UnixTime, key: &ObjectKey, job: &Value) {
        let Some(ttl) = job
            .pointer("/spec/ttlSecondsAfterFinished")
            .and_then(Value::as_u64)
        else {
            return;
        };
        if deleting(job) {
            return;
        }
        let Some(done) = finish_time(job) else {
            return;
        };
        let at = done.plus_secs(ttl);
        if at > now {
            self.controllers
                .requeue_at(at, Queue::Job, &key.namespace, &key.name);
            return;
        }
        // kube's TTL-after-finished controller: Foreground, on the uid it looked at.
        let options = DeleteOptions {
            uid: Some(j::string_at(job, "/metadata/uid")),
            ..DeleteOptions::with_propagation(Propagation::Foreground)
        };
        let _ = self.controller_delete(now, key, job.clone(), &options);
    }
}
