//! The pod scheduler, as kube-scheduler's default profile does it, inside core: every pending pod
//! that names no node and asks for the default scheduler (or ours) is filtered and scored against
//! the nodes and bound through the `pods/binding` path; one that fits nowhere gets
//! `PodScheduled=False` (reason `Unschedulable`, kube's message) and a `FailedScheduling` event and
//! waits until a node or a bound pod changes (then out its kube-like backoff, 1-10 s), or the
//! periodic retry (`Config::scheduler_retry_secs`).
//!
//! Driving: store writes of pods and nodes feed it (`Cluster::scheduler_observe`, called by
//! the write path's one feed with each change's time and origin); `Cluster::handle_timeout`
//! runs at most `Config::scheduler_batch` attempts per call; `poll_timeout` is due at once while
//! the active queue holds pods, and includes the retry and rescan deadlines. Node bookkeeping (requested resources, host ports,
//! pods per owner per node) is incremental.

mod filters;
mod info;
mod messages;
mod node;
mod queue;
mod scores;
#[cfg(test)]
mod tests;

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use serde_json::{Value, json};

use crate::cluster::Cluster;
use crate::cluster::{Origin, WriteContext};
use crate::controllers::events::Involved;
use crate::resource::ResourceId;
use crate::store::ObjectKey;
use crate::{Config, UnixTime, json as j};

use info::{NodeInfo, PodInfo};
use messages::Diagnosis;
use node::NodeCache;
use queue::{Queue, Ticket};

/// The scheduler name kube uses by default; pods naming it (or nothing) are ours.
pub const DEFAULT_SCHEDULER: &str = "default-scheduler";
/// Our own name, also accepted in `spec.schedulerName`.
pub const SCHEDULER_NAME: &str = "nautilus-scheduler";

/// Upper bounds (microseconds) of the latency histogram's buckets; a last, unbounded bucket
/// follows. Latency is measured from when a pod entered the queue (the time of the request that
/// created or changed it) to the bind, like kube's `pod_scheduling_sli_duration_seconds`.
pub const LATENCY_BUCKETS_MICROS: [u64; 10] = [
    1_000, 5_000, 10_000, 50_000, 100_000, 500_000, 1_000_000, 5_000_000, 10_000_000, 60_000_000,
];

/// A fixed-bucket histogram of queue-to-bind latency.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LatencyHistogram {
    /// Binds per bucket: `counts[i]` for latency ≤ `LATENCY_BUCKETS_MICROS[i]` (and above the
    /// previous bound); the last entry counts the rest. Not cumulative.
    pub counts: [u64; LATENCY_BUCKETS_MICROS.len() + 1],
    /// Sum of all observed latencies, in microseconds.
    pub sum_micros: u64,
    /// Number of observations.
    pub count: u64,
}

impl LatencyHistogram {
    fn observe(&mut self, micros: u64) {
        let bucket = LATENCY_BUCKETS_MICROS
            .iter()
            .position(|b| micros <= *b)
            .unwrap_or(LATENCY_BUCKETS_MICROS.len());
        if let Some(c) = self.counts.get_mut(bucket) {
            *c = c.saturating_add(1);
        }
        self.sum_micros = self.sum_micros.saturating_add(micros);
        self.count = self.count.saturating_add(1);
    }
}

/// Counters and gauges of the scheduler, for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchedulerStats {
    /// Attempts that bound the pod (kube: `scheduler_schedule_attempts_total{result="scheduled"}`).
    pub attempts_scheduled: u64,
    /// Attempts that found no node (`result="unschedulable"`).
    pub attempts_unschedulable: u64,
    /// Attempts that failed otherwise, e.g. the bind was refused (`result="error"`).
    pub attempts_error: u64,
    /// Pods waiting in the active queue (`scheduler_pending_pods{queue="active"}`).
    pub pending_active: usize,
    /// Pods that fit nowhere, waiting for a change (`queue="unschedulable"`).
    pub pending_unschedulable: usize,
    /// Whether the queue budget was exceeded and pods are being found by periodic scans.
    pub queue_overflowed: bool,
    /// Nodes the scheduler knows.
    pub nodes: usize,
    /// Queue-to-bind latency of the last bound pod, in microseconds.
    pub last_latency_micros: u64,
    /// Queue-to-bind latency of every bound pod.
    pub latency: LatencyHistogram,
}

/// The scheduler's state inside [`Cluster`].
#[derive(Debug)]
pub(crate) struct Scheduler {
    nodes: NodeCache,
    queue: Queue,
    /// kube's `nextStartNodeIndex`: where the next attempt starts looking.
    next_start: usize,
    /// When parked pods are next retried regardless of events.
    next_flush: Option<UnixTime>,
    /// When the store is next scanned for pods a full queue refused; `Some(0)` = at once.
    next_scan: Option<UnixTime>,
    /// A node or bound pod changed since parked pods were last looked at.
    wake_requested: bool,
    /// When the next woken pod's backoff ends.
    next_wake: Option<UnixTime>,
    /// Last failure message (hash) and when its event was recorded, per pending pod.
    last_failure: BTreeMap<ObjectKey, (u64, UnixTime)>,
    stats: SchedulerStats,
}

impl Scheduler {
    /// An empty scheduler with the queue budget of `config`.
    pub(crate) fn new(config: &Config) -> Self {
        Self {
            nodes: NodeCache::default(),
            queue: Queue::new(config.scheduler_queue_capacity),
            next_start: 0,
            next_flush: None,
            next_scan: None,
            wake_requested: false,
            next_wake: None,
            last_failure: BTreeMap::new(),
            stats: SchedulerStats::default(),
        }
    }

    /// Work due at once: pods in the active queue, parked pods to wake after a change, or a
    /// scan of pods a full queue refused. O(1).
    pub(crate) fn has_immediate_work(&self) -> bool {
        self.queue.active_len() > 0
            || self.wake_requested
            || self.next_scan == Some(UnixTime::default())
    }

    /// When the scheduler next has work.
    pub(crate) fn due(&self) -> Option<UnixTime> {
        if self.has_immediate_work() {
            return Some(UnixTime::default());
        }
        [self.next_flush, self.next_scan, self.next_wake]
            .into_iter()
            .flatten()
            .min()
    }

    /// The node cache and the set of pending pods: what the scheduler derives from the
    /// records (its backoff timers are its own, like kube-scheduler's after a restart).
    #[cfg(test)]
    pub(crate) fn fingerprint(&self) -> alloc::string::String {
        alloc::format!("{:?} {:?}", self.nodes, self.queue.pending())
    }

    fn refused(&mut self) {
        if self.next_scan.is_none() {
            self.next_scan = Some(UnixTime::default());
        }
    }
}

/// kube's `numFeasibleNodesToFind` with the adaptive default percentage: all nodes below 100,
/// else `50 - n/125` percent (at least 5 %), but never fewer than 100.
fn nodes_to_find(all: usize) -> usize {
    if all < 100 {
        return all;
    }
    let percent = 50usize.saturating_sub(all / 125).max(5);
    (all * percent / 100).max(100)
}

/// Whether writes of `resource` concern the scheduler (pods and nodes).
pub(crate) fn observes(resource: ResourceId) -> bool {
    matches!(resource, ResourceId::Pods | ResourceId::Nodes)
}

fn phase_terminal(phase: &str) -> bool {
    matches!(phase, "Succeeded" | "Failed")
}

fn ours(scheduler_name: &str) -> bool {
    matches!(scheduler_name, "" | DEFAULT_SCHEDULER | SCHEDULER_NAME)
}

/// Whether an unbound pod is one to schedule now.
fn wants_scheduling(pod: &Value) -> bool {
    j::str_at(pod, "/spec/nodeName").is_empty()
        && ours(j::str_at(pod, "/spec/schedulerName"))
        && !phase_terminal(j::str_at(pod, "/status/phase"))
        && pod.pointer("/metadata/deletionTimestamp").is_none()
        && pod
            .pointer("/spec/schedulingGates")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
}

fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl Cluster {
    /// Notes a committed write of a pod or node (`None`: deleted), made at `at` by `origin`,
    /// for the scheduler: queues pending pods (entering the queue at `at`), accounts bound
    /// ones, and retries parked pods when a node or a bound pod changed in a way that could
    /// let them fit. The scheduler's own status writes do not requeue the pod.
    pub(crate) fn scheduler_observe(
        &mut self,
        key: &ObjectKey,
        obj: Option<&Value>,
        at: UnixTime,
        origin: &Origin,
    ) {
        match (key.resource, obj) {
            (ResourceId::Nodes, Some(node))
                if self.scheduler.nodes.upsert_node(NodeInfo::of(node)) =>
            {
                self.wake_parked();
            }
            (ResourceId::Nodes, None) => self.scheduler.nodes.remove_node(&key.name),
            (ResourceId::Pods, None) => {
                self.scheduler.queue.remove(key);
                self.scheduler.last_failure.remove(key);
                if self.scheduler.nodes.release_pod(key) {
                    self.wake_parked();
                }
            }
            (ResourceId::Pods, Some(pod)) => {
                self.observe_pod(key, pod, at, *origin == Origin::Scheduler);
            }
            _ => {}
        }
    }

    fn observe_pod(&mut self, key: &ObjectKey, pod: &Value, at: UnixTime, own_write: bool) {
        let sched = &mut self.scheduler;
        let node = j::str_at(pod, "/spec/nodeName");
        if !node.is_empty() {
            sched.queue.remove(key);
            sched.last_failure.remove(key);
            if phase_terminal(j::str_at(pod, "/status/phase")) {
                if sched.nodes.release_pod(key) {
                    self.wake_parked();
                }
            } else if !sched.nodes.is_bound(key) {
                sched.nodes.bind_pod(key, node, &PodInfo::usage(pod));
            }
            return;
        }
        if own_write {
            return;
        }
        if !wants_scheduling(pod) {
            sched.queue.remove(key);
            sched.last_failure.remove(key);
        } else if sched.queue.is_unschedulable(key) {
            // Its spec or labels may have changed (tolerations added, say): try again.
            sched.queue.activate(key);
        } else if !sched.queue.push(key.clone(), at) {
            sched.refused();
        }
    }

    /// A change that may let parked pods fit: they are retried once their backoff is over.
    /// O(1) here; the parked set is looked at once per `handle_timeout`.
    fn wake_parked(&mut self) {
        if self.scheduler.queue.unschedulable_len() > 0 {
            self.scheduler.wake_requested = true;
        }
    }

    /// Whether pods wait in the scheduler's active queue, unlike parked pods.
    #[cfg(test)]
    pub(crate) fn has_scheduling_backlog(&self) -> bool {
        self.scheduler.queue.active_len() > 0
    }

    /// What the scheduler has done and holds, for metrics.
    pub fn scheduler_stats(&self) -> SchedulerStats {
        SchedulerStats {
            pending_active: self.scheduler.queue.active_len(),
            pending_unschedulable: self.scheduler.queue.unschedulable_len(),
            queue_overflowed: self.scheduler.next_scan.is_some(),
            nodes: self.scheduler.nodes.len(),
            ..self.scheduler.stats.clone()
        }
    }

    /// The scheduler's share of `handle_timeout`: retries parked pods when their time has come,
    /// rescans the store when the queue overflowed, then makes up to `scheduler_batch` attempts.
    pub(crate) fn run_scheduler(&mut self, now: UnixTime) {
        if let Some(due) = self.scheduler.next_flush
            && now >= due
        {
            let retry = self.config.scheduler_retry_secs;
            let cutoff = UnixTime {
                nanos: now
                    .nanos
                    .saturating_sub(retry.saturating_mul(1_000_000_000)),
            };
            self.scheduler.next_flush = self
                .scheduler
                .queue
                .activate_parked_before(cutoff)
                .map(|t| t.plus_secs(retry));
        }
        if self.scheduler.wake_requested || self.scheduler.next_wake.is_some_and(|t| now >= t) {
            let changed = core::mem::take(&mut self.scheduler.wake_requested);
            self.scheduler.next_wake = self.scheduler.queue.wake(now, changed);
        }
        if let Some(due) = self.scheduler.next_scan
            && now >= due
        {
            self.rescan(now);
        }
        self.schedule_pending(now, self.config.scheduler_batch);
    }

    /// Queues the pending pods of the store that the queue does not hold (after a full queue
    /// refused some); schedules the next scan if some are still left out.
    fn rescan(&mut self, now: UnixTime) {
        let candidates: Vec<ObjectKey> = self
            .store
            .range(ResourceId::Pods, None, None)
            .filter(|(k, o)| {
                let field = |name: &str| o.index.field(name);
                field("spec.nodeName").is_empty()
                    && ours(field("spec.schedulerName"))
                    && !phase_terminal(field("status.phase"))
                    && !self.scheduler.queue.contains(k)
            })
            .map(|(k, _)| k.clone())
            .collect();
        let mut left_out = false;
        for key in candidates {
            if !self.scheduler.queue.push(key, now) {
                left_out = true;
                break;
            }
        }
        self.scheduler.next_scan =
            left_out.then(|| now.plus_secs(self.config.scheduler_rescan_secs.max(1)));
    }

    /// Makes up to `budget` scheduling attempts at `now`; returns how many were made. Part of
    /// `handle_timeout`, public for benchmarks and tests that drive the scheduler alone.
    pub fn schedule_pending(&mut self, now: UnixTime, budget: usize) -> usize {
        let mut attempts = 0;
        while attempts < budget {
            let Some((key, ticket)) = self.scheduler.queue.pop() else {
                break;
            };
            attempts += 1;
            self.schedule_one(now, key, ticket);
        }
        attempts
    }

    fn schedule_one(&mut self, now: UnixTime, key: ObjectKey, ticket: Ticket) {
        let Some(stored) = self.store.get(&key) else {
            return;
        };
        let Ok(pod) = serde_json::from_slice::<Value>(&stored.json.bytes()) else {
            self.scheduler.stats.attempts_error += 1;
            return;
        };
        if !wants_scheduling(&pod) {
            return;
        }
        let info = PodInfo::of(&pod);
        let sched = &mut self.scheduler;
        let slots = sched.nodes.slots();
        let all = sched.nodes.len();
        let wanted = nodes_to_find(all);
        let start = if slots.is_empty() {
            0
        } else {
            sched.next_start % slots.len()
        };
        let mut feasible = Vec::new();
        let mut diagnosis = Diagnosis::default();
        let mut visited = 0;
        for i in 0..slots.len() {
            visited += 1;
            let Some(Some(node)) = slots.get((start + i) % slots.len()) else {
                continue;
            };
            match filters::filter(&info, node) {
                None => {
                    feasible.push((start + i) % slots.len());
                    if feasible.len() >= wanted {
                        break;
                    }
                }
                Some(rejection) => diagnosis.add(&node.info, rejection),
            }
        }
        if !slots.is_empty() {
            sched.next_start = (start + visited) % slots.len();
        }
        let chosen = scores::pick(&info, &sched.nodes, &feasible).and_then(|slot| {
            sched
                .nodes
                .slots()
                .get(slot)
                .and_then(Option::as_ref)
                .map(|n| n.info.name.clone())
        });
        match chosen {
            Some(node) => self.bind_to(now, &key, pod, &node, ticket),
            None => self.park_unschedulable(now, key, pod, ticket, &diagnosis.message(all)),
        }
    }

    fn bind_to(
        &mut self,
        now: UnixTime,
        key: &ObjectKey,
        mut pod: Value,
        node: &str,
        ticket: Ticket,
    ) {
        if self
            .bind_pod(&WriteContext::scheduler(now), key, &mut pod, node)
            .is_err()
        {
            // A refused write (a full store, say): park the pod for the periodic retry rather
            // than drop it. One bound meanwhile by someone else is dropped at that retry.
            self.scheduler.stats.attempts_error += 1;
            self.park(now, key.clone(), ticket);
            return;
        }
        let stats = &mut self.scheduler.stats;
        stats.attempts_scheduled += 1;
        let micros = now.nanos.saturating_sub(ticket.since.nanos) / 1_000;
        stats.last_latency_micros = micros;
        stats.latency.observe(micros);
        let message = messages::scheduled(&key.namespace, &key.name, node);
        self.record_event(
            now,
            &Involved::of(&pod),
            "Normal",
            "Scheduled",
            &message,
            DEFAULT_SCHEDULER,
        );
    }

    fn park_unschedulable(
        &mut self,
        now: UnixTime,
        key: ObjectKey,
        mut pod: Value,
        ticket: Ticket,
        message: &str,
    ) {
        self.scheduler.stats.attempts_unschedulable += 1;
        let previous = pod
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .and_then(|cs| {
                cs.iter()
                    .find(|c| c.get("type").and_then(Value::as_str) == Some("PodScheduled"))
            })
            .cloned();
        let same = previous.as_ref().is_some_and(|c| {
            j::str_at(c, "/status") == "False"
                && j::str_at(c, "/reason") == "Unschedulable"
                && j::str_at(c, "/message") == message
        });
        if !same {
            let transition = match &previous {
                Some(c) if j::str_at(c, "/status") == "False" => c
                    .get("lastTransitionTime")
                    .cloned()
                    .unwrap_or_else(|| Value::from(now.rfc3339())),
                _ => Value::from(now.rfc3339()),
            };
            let condition = json!({
                "type": "PodScheduled", "status": "False", "lastProbeTime": null,
                "lastTransitionTime": transition, "reason": "Unschedulable", "message": message,
            });
            set_condition(&mut pod, condition);
            let _ = self.write_existing(&WriteContext::scheduler(now), &key, &mut pod);
        }
        // One event per distinct message, or per retry period while it stays the same, so a
        // busy cluster does not fill the store with identical events.
        let hash = fnv(message);
        let retry = self.config.scheduler_retry_secs;
        let record = match self.scheduler.last_failure.get(&key) {
            Some((h, at)) => *h != hash || now >= at.plus_secs(retry),
            None => true,
        };
        if record {
            self.scheduler.last_failure.insert(key.clone(), (hash, now));
            self.record_event(
                now,
                &Involved::of(&pod),
                "Warning",
                "FailedScheduling",
                message,
                DEFAULT_SCHEDULER,
            );
        }
        self.park(now, key, ticket);
    }

    fn park(&mut self, now: UnixTime, key: ObjectKey, ticket: Ticket) {
        self.scheduler.queue.park(key, ticket, now);
        if self.scheduler.next_flush.is_none() {
            self.scheduler.next_flush = Some(now.plus_secs(self.config.scheduler_retry_secs));
        }
    }
}

/// Replaces (or adds) the condition of the same type in `status.conditions`.
pub(crate) fn set_condition(pod: &mut Value, condition: Value) {
    let Some(map) = pod.as_object_mut() else {
        return;
    };
    let status = map.entry("status").or_insert_with(|| json!({}));
    let Some(status) = status.as_object_mut() else {
        return;
    };
    let list = status.entry("conditions").or_insert_with(|| json!([]));
    if !list.is_array() {
        *list = json!([]);
    }
    let kind = condition.get("type").cloned();
    if let Some(list) = list.as_array_mut() {
        match list.iter_mut().find(|c| c.get("type") == kind.as_ref()) {
            Some(existing) => *existing = condition,
            None => list.push(condition),
        }
    }
}
