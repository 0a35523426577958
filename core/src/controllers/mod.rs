//! Controllers that run inside core on the runtime's timers (`Cluster::handle_timeout`): they
//! read and write through the same store paths as requests and do no I/O of their own.
//!
//! The workload controllers (ReplicaSet, Deployment, Endpoints, garbage collector) follow a change
//! feed: the watch ring's events after the last revision they processed are dispatched to bounded
//! work queues of object keys, like kube-controller-manager's informers and work queues. When the
//! ring has moved past that revision (410 Expired for a watcher) the feed resyncs by scanning the
//! store instead. A sync whose write the store refuses (a full budget, say) runs again after
//! kube's per-item backoff (5 ms doubling to 1000 s) instead of waiting for the next change.

pub(crate) mod apf;
pub(crate) mod apiserver_endpoints;
pub(crate) mod crd;
pub(crate) mod cronjob;
pub(crate) mod csr_signing;
pub(crate) mod deployment;
pub(crate) mod disruption;
pub(crate) mod endpoints;
pub(crate) mod endpointslice;
pub(crate) mod event_ttl;
pub(crate) mod events;
pub(crate) mod gc;
pub(crate) mod job;
pub(crate) mod node_lifecycle;
pub(crate) mod pod_gc;
pub(crate) mod replicaset;
pub(crate) mod resourcequota;
pub(crate) mod serviceaccount;

#[cfg(test)]
mod batch_tests;
#[cfg(test)]
mod disruption_tests;
#[cfg(test)]
mod endpointslice_tests;
#[cfg(test)]
mod graceful_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod workload_tests;

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;
use alloc::vec::Vec;
use serde_json::{Map, Value, json};

use crate::cluster::Cluster;
use crate::cluster::WriteContext;
use crate::resource::ResourceId;
use crate::selector::LabelSelector;
use crate::store::ObjectKey;
use crate::watch::{EventType, WatchEvent};
use crate::{Error, UnixTime, json as j};
use replicaset::ReplicaKind;

/// A namespaced object's (namespace, name).
pub(crate) type NsName = (String, String);

/// Passes over feed and queues in one `handle_timeout`: controllers react to each other's writes
/// (a Deployment creates a ReplicaSet, which creates pods) within one call, up to this depth.
const MAX_PASSES: usize = 8;

/// One `metadata.ownerReferences` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OwnerRef {
    pub(crate) api_version: String,
    pub(crate) kind: String,
    pub(crate) name: String,
    pub(crate) uid: String,
    pub(crate) controller: bool,
    pub(crate) block: bool,
}

impl Cluster {
    /// Where the owner `r` is stored, for a dependent in `namespace` (a built-in kind or a
    /// served custom resource); `None` for a kind not served.
    pub(crate) fn owner_key(&self, r: &OwnerRef, namespace: &str) -> Option<ObjectKey> {
        let (id, namespaced) = match crate::resource::lookup_kind(&r.api_version, &r.kind) {
            Some(rt) => (rt.id, rt.namespaced),
            None => {
                let served = self.crds.lookup_kind(&r.api_version, &r.kind)?;
                (
                    ResourceId::Custom(served.definition.id),
                    served.definition.namespaced,
                )
            }
        };
        let ns = if namespaced { namespace } else { "" };
        Some(ObjectKey::new(id, ns, &r.name))
    }
}

/// The owner references of `obj`.
pub(crate) fn owner_refs(obj: &Value) -> Vec<OwnerRef> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|refs| {
            refs.iter()
                .map(|r| OwnerRef {
                    api_version: j::string_at(r, "/apiVersion"),
                    kind: j::string_at(r, "/kind"),
                    name: j::string_at(r, "/name"),
                    uid: j::string_at(r, "/uid"),
                    controller: r.get("controller").and_then(Value::as_bool) == Some(true),
                    block: r.get("blockOwnerDeletion").and_then(Value::as_bool) == Some(true),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The few metadata fields the feed needs, read without building a tree of the whole object.
#[derive(serde::Deserialize)]
struct Partial<'a> {
    #[serde(borrow, default)]
    metadata: Option<PartialMeta<'a>>,
}

#[derive(serde::Deserialize)]
struct PartialMeta<'a> {
    #[serde(borrow, default)]
    uid: Option<alloc::borrow::Cow<'a, str>>,
    #[serde(borrow, default, rename = "ownerReferences")]
    owner_references: Vec<PartialRef<'a>>,
}

#[derive(serde::Deserialize)]
struct PartialRef<'a> {
    #[serde(borrow, default)]
    kind: alloc::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    name: alloc::borrow::Cow<'a, str>,
    #[serde(default)]
    controller: Option<bool>,
}

/// `metadata.uid` of stored JSON.
fn uid_of(json: &[u8]) -> Option<String> {
    let partial: Partial<'_> = serde_json::from_slice(json).ok()?;
    Some(String::from(partial.metadata?.uid?))
}

/// (kind, name) of the managing owner in stored JSON.
fn controller_of(json: &[u8]) -> Option<(String, String)> {
    let partial: Partial<'_> = serde_json::from_slice(json).ok()?;
    partial
        .metadata?
        .owner_references
        .into_iter()
        .find(|r| r.controller == Some(true))
        .map(|r| (String::from(r.kind), String::from(r.name)))
}

/// The managing owner (`controller: true`) of `obj`, if any.
pub(crate) fn controller_ref(obj: &Value) -> Option<OwnerRef> {
    owner_refs(obj).into_iter().find(|r| r.controller)
}

/// A controller owner reference to `owner` (kind `kind`), as kube's controllers write it.
pub(crate) fn controller_ref_to(owner: &Value, api_version: &str, kind: &str) -> Value {
    json!({
        "apiVersion": api_version,
        "kind": kind,
        "name": j::str_at(owner, "/metadata/name"),
        "uid": j::str_at(owner, "/metadata/uid"),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// Whether `obj` is being deleted.
pub(crate) fn deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

/// The finalizers of `obj`.
pub(crate) fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// The `metadata` map of `obj`, created if missing.
pub(crate) fn meta_mut(obj: &mut Value) -> Option<&mut Map<String, Value>> {
    let map = obj.as_object_mut()?;
    let meta = map.entry("metadata").or_insert_with(|| json!({}));
    if !meta.is_object() {
        *meta = json!({});
    }
    meta.as_object_mut()
}

/// An integer field, clamped to `i64`, 0 when absent.
pub(crate) fn int_at(obj: &Value, pointer: &str) -> i64 {
    obj.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

/// The selector of a workload (`spec.selector`), `None` when missing or malformed.
pub(crate) fn workload_selector(obj: &Value) -> Option<LabelSelector> {
    LabelSelector::from_json(obj.pointer("/spec/selector")?).ok()
}

/// Which work queue a key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Queue {
    /// A namespace's `default` ServiceAccount and root-CA ConfigMap; the key's name is the
    /// namespace's. First: the pods the workload controllers create in a new namespace need
    /// its account (ServiceAccount admission).
    NamespaceDefaults,
    ReplicaSet,
    ReplicationController,
    Job,
    CronJob,
    Deployment,
    Service,
    /// PodGC's pass over the pods of one node (gone, or out of service); the key's name is the
    /// node's.
    PodGc,
    /// PodGC's look at one terminating pod that has no node.
    UnscheduledPod,
    /// CustomResourceDefinitions: names, conditions, and the deletion of their objects.
    Crd,
    /// Every ResourceQuota of the key's namespace (the name is empty).
    Quota,
    /// One PodDisruptionBudget.
    Disruption,
    /// One FlowSchema's `Dangling` condition.
    FlowSchemaStatus,
    /// The mandatory API priority and fairness objects (one was deleted).
    ApfMandatory,
    /// One CertificateSigningRequest: approval and signing by the kubelet signers.
    Csr,
}

/// Dependents → owner uids and back, as kube's garbage collector keeps its graph.
#[derive(Debug, Default)]
pub(crate) struct OwnerGraph {
    owners: BTreeMap<ObjectKey, Vec<String>>,
    dependents: BTreeMap<String, BTreeSet<ObjectKey>>,
}

impl OwnerGraph {
    /// Records that `key` is owned by `uids` (replacing what it had).
    fn set(&mut self, key: &ObjectKey, uids: Vec<String>) {
        if let Some(old) = self.owners.remove(key) {
            for uid in old {
                if let Some(set) = self.dependents.get_mut(&uid) {
                    set.remove(key);
                    if set.is_empty() {
                        self.dependents.remove(&uid);
                    }
                }
            }
        }
        if uids.is_empty() {
            return;
        }
        for uid in &uids {
            self.dependents
                .entry(uid.clone())
                .or_default()
                .insert(key.clone());
        }
        self.owners.insert(key.clone(), uids);
    }

    /// The dependents that name owner `uid`.
    pub(crate) fn dependents_of(&self, uid: &str) -> Vec<ObjectKey> {
        self.dependents
            .get(uid)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The owner uids `key` names.
    pub(crate) fn owners_of(&self, key: &ObjectKey) -> &[String] {
        self.owners.get(key).map_or(&[], Vec::as_slice)
    }
}

/// The workload controllers' feed position, work queues and caches.
#[derive(Debug, Default)]
pub(crate) struct Controllers {
    /// The last store revision whose change has been dispatched.
    pub(crate) processed: u64,
    /// Keys waiting for a sync, per controller.
    queue: BTreeSet<(Queue, String, String)>,
    /// Dependents whose owners must be checked (dangling or deleted owners).
    gc_dependents: BTreeSet<ObjectKey>,
    /// Owners being deleted with the `orphan` or `foregroundDeletion` finalizer.
    gc_owners: BTreeSet<ObjectKey>,
    /// Owners waiting for their dependents (foreground deletion), by uid.
    waiting: BTreeMap<String, ObjectKey>,
    /// Syncs due later (minReadySeconds), by time.
    delayed: BTreeSet<(UnixTime, Queue, String, String)>,
    /// Ownership graph.
    pub(crate) graph: OwnerGraph,
    /// Label selectors of Services (their `spec.selector` maps), for routing pod changes.
    service_selectors: BTreeMap<NsName, Vec<(String, String)>>,
    /// Label selectors of ReplicaSets and Deployments, for routing orphans to adopters.
    workload_selectors: BTreeMap<ObjectKey, LabelSelector>,
    /// Pods as the controllers see them, by key, with the revision they were parsed at: a
    /// ReplicaSet or Service sync reads its pods without parsing them again. Bounded by the
    /// pods in the store (entries go with their pods).
    pub(crate) pods: BTreeMap<ObjectKey, (u64, alloc::sync::Arc<replicaset::PodView>)>,
    /// Nodes PodGC sees out of service (not Ready, `node.kubernetes.io/out-of-service`).
    pub(crate) out_of_service: BTreeSet<String>,
    /// A write of the running sync was refused: the sync runs again after a backoff.
    write_refused: bool,
    /// Work to run again after a refused write, by time.
    retries: BTreeSet<(UnixTime, Work)>,
    /// Consecutive refused syncs per unit of work (reset when one completes).
    failures: BTreeMap<Work, u32>,
}

/// The first retry after a refused write, doubling per failure up to [`RETRY_MAX_SECS`]: kube's
/// default controller rate limiter (`ItemExponentialFailureRateLimiter(5ms, 1000s)`).
const RETRY_BASE_MILLIS: u64 = 5;
const RETRY_MAX_SECS: u64 = 1000;

/// How long to wait before the `failures`th retry.
fn retry_delay_nanos(failures: u32) -> u64 {
    let base = RETRY_BASE_MILLIS * 1_000_000;
    let max = RETRY_MAX_SECS * 1_000_000_000;
    1u64.checked_shl(failures.saturating_sub(1))
        .and_then(|factor| base.checked_mul(factor))
        .map_or(max, |d| d.min(max))
}

/// Whether a refused write may pass later (a full budget, a rate limit, an internal error), as
/// opposed to a final answer (the object is gone or exists already, the namespace is being
/// deleted).
fn retriable(error: &Error) -> bool {
    !matches!(
        error,
        Error::NotFound { .. } | Error::AlreadyExists { .. } | Error::Forbidden { .. }
    )
}

impl Controllers {
    /// Keys queued, all queues together. O(1).
    pub(crate) fn queued(&self) -> usize {
        self.queue.len() + self.gc_dependents.len() + self.gc_owners.len()
    }

    pub(crate) fn enqueue(&mut self, queue: Queue, namespace: &str, name: &str) {
        self.queue.insert((queue, namespace.into(), name.into()));
    }

    /// Syncs `name` again at `at` (no earlier than now).
    pub(crate) fn requeue_at(&mut self, at: UnixTime, queue: Queue, namespace: &str, name: &str) {
        // One pending timer per key is enough: keep the earliest.
        let existing: Vec<_> = self
            .delayed
            .iter()
            .filter(|(_, q, ns, n)| *q == queue && ns == namespace && n == name)
            .cloned()
            .collect();
        if existing.iter().any(|(t, ..)| *t <= at) {
            return;
        }
        for e in existing {
            self.delayed.remove(&e);
        }
        self.delayed
            .insert((at, queue, namespace.into(), name.into()));
    }

    /// The earliest delayed sync or retry.
    pub(crate) fn next_delayed(&self) -> Option<UnixTime> {
        let delayed = self.delayed.first().map(|(t, ..)| *t);
        let retry = self.retries.first().map(|(t, _)| *t);
        delayed.into_iter().chain(retry).min()
    }

    /// Notes what a controller's write returned: a refusal that may pass makes the running
    /// sync retry.
    fn note<T>(&mut self, result: Result<T, Error>) -> Result<T, Error> {
        if let Err(e) = &result
            && retriable(e)
        {
            self.write_refused = true;
        }
        result
    }

    /// After one unit of work: retried with backoff if one of its writes was refused (at most
    /// `limit` units wait; past that a refused one waits for its next change), else its
    /// failure count is cleared.
    fn settle(&mut self, now: UnixTime, work: Work, limit: usize) {
        if !core::mem::take(&mut self.write_refused) {
            self.failures.remove(&work);
            return;
        }
        if !self.failures.contains_key(&work) && self.failures.len() >= limit {
            return;
        }
        let failures = self.failures.entry(work.clone()).or_insert(0);
        *failures = failures.saturating_add(1);
        let at = UnixTime {
            nanos: now.nanos.saturating_add(retry_delay_nanos(*failures)),
        };
        self.retries.insert((at, work));
    }

    /// Moves the retries due at `now` to their queues.
    fn release_retries(&mut self, now: UnixTime) {
        while self.retries.first().is_some_and(|(at, _)| *at <= now) {
            let Some((_, work)) = self.retries.pop_first() else {
                break;
            };
            match work {
                Work::Owner(key) => {
                    self.gc_owners.insert(key);
                }
                Work::Dependent(key) => {
                    self.gc_dependents.insert(key);
                }
                Work::Sync(queue, ns, name) => {
                    self.queue.insert((queue, ns, name));
                }
            }
        }
    }
}

impl Cluster {
    /// Whether the workload controllers have unprocessed changes or queued keys. O(1).
    pub(crate) fn controllers_pending(&self) -> bool {
        self.store.revision() > self.controllers.processed || self.controllers.queued() > 0
    }

    /// Runs the workload controllers at `now`: feed, queues, until quiet or out of budget.
    pub(crate) fn run_controllers(&mut self, now: UnixTime) {
        while let Some((at, ..)) = self.controllers.delayed.first() {
            if *at > now {
                break;
            }
            let Some((_, queue, ns, name)) = self.controllers.delayed.pop_first() else {
                break;
            };
            self.controllers.queue.insert((queue, ns, name));
        }
        self.controllers.release_retries(now);
        let mut syncs = self.config.controller_syncs_per_run;
        for _ in 0..MAX_PASSES {
            self.read_feed(now);
            if self.controllers.queued() == 0 {
                if self.store.revision() == self.controllers.processed {
                    break;
                }
                continue;
            }
            while syncs > 0 {
                let Some(work) = self.next_work() else {
                    break;
                };
                syncs -= 1;
                self.controllers.write_refused = false;
                let unit = work.clone();
                match work {
                    Work::Owner(key) => self.gc_process_owner(now, &key),
                    Work::Dependent(key) => self.gc_process_dependent(now, &key),
                    Work::Sync(Queue::Deployment, ns, name) => {
                        self.sync_deployment(now, &ns, &name);
                    }
                    Work::Sync(Queue::ReplicaSet, ns, name) => {
                        self.sync_replicas(now, ReplicaKind::ReplicaSet, &ns, &name);
                    }
                    Work::Sync(Queue::ReplicationController, ns, name) => {
                        self.sync_replicas(now, ReplicaKind::ReplicationController, &ns, &name);
                    }
                    Work::Sync(Queue::Job, ns, name) => self.sync_job(now, &ns, &name),
                    Work::Sync(Queue::CronJob, ns, name) => self.sync_cronjob(now, &ns, &name),
                    Work::Sync(Queue::Service, ns, name) => {
                        if (ns.as_str(), name.as_str())
                            == ("default", apiserver_endpoints::KUBERNETES)
                        {
                            self.reconcile_apiserver_endpoints(now);
                        }
                        self.sync_endpoints(now, &ns, &name);
                        self.sync_endpoint_slices(now, &ns, &name);
                    }
                    Work::Sync(Queue::PodGc, _, node) => self.sync_pod_gc(now, &node),
                    Work::Sync(Queue::UnscheduledPod, ns, name) => {
                        let key = ObjectKey::new(ResourceId::Pods, &ns, &name);
                        self.gc_unscheduled_terminating(now, &key);
                    }
                    Work::Sync(Queue::Crd, _, name) => self.sync_crd(now, &name),
                    Work::Sync(Queue::NamespaceDefaults, _, ns) => {
                        self.sync_namespace_defaults(now, &ns);
                    }
                    Work::Sync(Queue::Quota, ns, _) => self.sync_quotas(now, &ns),
                    Work::Sync(Queue::Disruption, ns, name) => {
                        self.sync_disruption_budget(now, &ns, &name);
                    }
                    Work::Sync(Queue::FlowSchemaStatus, _, name) => {
                        self.sync_flow_schema_status(now, &name);
                    }
                    Work::Sync(Queue::ApfMandatory, ..) => {
                        self.ensure_apf_configuration(now, true);
                    }
                    Work::Sync(Queue::Csr, _, name) => self.sync_csr(now, &name),
                }
                let limit = self.config.controller_queue_limit;
                self.controllers.settle(now, unit, limit);
            }
            if syncs == 0 {
                break;
            }
        }
    }

    fn next_work(&mut self) -> Option<Work> {
        let c = &mut self.controllers;
        if let Some(key) = c.gc_owners.pop_first() {
            return Some(Work::Owner(key));
        }
        if let Some(key) = c.gc_dependents.pop_first() {
            return Some(Work::Dependent(key));
        }
        c.queue
            .pop_first()
            .map(|(q, ns, name)| Work::Sync(q, ns, name))
    }

    /// Dispatches the ring's events after the processed revision, within the queue budget.
    fn read_feed(&mut self, now: UnixTime) {
        let ring = self.store.ring().clone();
        let mut events = Vec::new();
        let budget = self.config.controller_queue_limit;
        loop {
            let room = budget.saturating_sub(self.controllers.queued());
            if room < 16 || self.store.revision() <= self.controllers.processed {
                return;
            }
            events.clear();
            let batch = self.config.controller_events_per_run.min(room);
            match ring.read_after(self.controllers.processed, batch.max(1), &mut events) {
                Err(_) => {
                    self.resync(now);
                    return;
                }
                Ok(0) => {
                    // The ring holds nothing newer (it is empty after a restart): resync.
                    self.resync(now);
                    return;
                }
                Ok(_) => {}
            }
            for event in &events {
                if self.controllers.queued().saturating_add(16) > budget {
                    return;
                }
                self.dispatch_event(now, event);
                self.controllers.processed = event.revision();
            }
        }
    }

    /// Routes one change to the controllers that care and updates the caches.
    fn dispatch_event(&mut self, now: UnixTime, event: &WatchEvent) {
        let resource = event.key.resource;
        if resource == ResourceId::Events {
            return;
        }
        let Ok(obj) = serde_json::from_slice::<Value>(&event.object.json.bytes()) else {
            return;
        };
        let deleted = event.kind == EventType::Deleted;
        if deleted && resource == ResourceId::Pods {
            self.controllers.pods.remove(&event.key);
        }
        self.observe_object(&event.key, &obj, deleted);
        let ns = &*event.key.namespace;
        let name = &*event.key.name;
        if let Some(quota_ns) = self.quota_namespace(&event.key) {
            self.controllers.enqueue(Queue::Quota, &quota_ns, "");
        }
        match resource {
            ResourceId::Namespaces if !deleted => {
                self.controllers.enqueue(Queue::NamespaceDefaults, "", name);
            }
            ResourceId::ServiceAccounts if deleted && name == "default" => {
                self.controllers.enqueue(Queue::NamespaceDefaults, "", ns);
            }
            ResourceId::ConfigMaps if name == serviceaccount::ROOT_CA_CONFIGMAP => {
                self.controllers.enqueue(Queue::NamespaceDefaults, "", ns);
            }
            ResourceId::ConfigMaps if name == csr_signing::AUTHENTICATION_CONFIGMAP => {
                self.controllers.enqueue(Queue::NamespaceDefaults, "", ns);
            }
            ResourceId::CertificateSigningRequests if !deleted => {
                self.controllers.enqueue(Queue::Csr, "", name);
            }
            ResourceId::PodDisruptionBudgets => {
                self.controllers.enqueue(Queue::Disruption, ns, name);
            }
            ResourceId::FlowSchemas | ResourceId::PriorityLevelConfigurations
                if deleted && Self::is_mandatory_apf(resource, name) =>
            {
                self.controllers.enqueue(Queue::ApfMandatory, "", "");
            }
            _ => {}
        }
        match resource {
            ResourceId::FlowSchemas if !deleted => {
                self.controllers.enqueue(Queue::FlowSchemaStatus, "", name);
            }
            ResourceId::PriorityLevelConfigurations => {
                for fs in self.flow_schemas_of(name) {
                    self.controllers.enqueue(Queue::FlowSchemaStatus, "", &fs);
                }
            }
            _ => {}
        }
        if resource == ResourceId::Pods {
            let mut budgets = self.pdbs_for(ns, &event.object.index.label_pairs());
            if let Some(prev) = &event.previous {
                budgets.extend(self.pdbs_for(ns, &prev.index.label_pairs()));
            }
            for budget in budgets {
                self.controllers.enqueue(Queue::Disruption, ns, &budget);
            }
        }
        if !ns.is_empty() && self.terminating.contains(ns) {
            // Something changed in a namespace being deleted: its deletion may go on.
            self.namespaces_due.insert(String::from(ns));
        }
        match resource {
            ResourceId::Pods => {
                let mut owners: Vec<(String, String)> = controller_ref(&obj)
                    .map(|r| (r.kind, r.name))
                    .into_iter()
                    .collect();
                owners.extend(
                    event
                        .previous
                        .as_ref()
                        .and_then(|p| controller_of(&p.json.bytes())),
                );
                let gone =
                    deleted || matches!(j::str_at(&obj, "/status/phase"), "Succeeded" | "Failed");
                for (kind, owner) in &owners {
                    match kind.as_str() {
                        "ReplicaSet" => {
                            self.controllers.enqueue(Queue::ReplicaSet, ns, owner);
                            if gone {
                                // kube's deployment controller looks again when a pod stops
                                // (a Recreate rollout waits for the old ones).
                                self.enqueue_deployment_of(ns, owner);
                            }
                        }
                        "ReplicationController" => {
                            self.controllers
                                .enqueue(Queue::ReplicationController, ns, owner);
                        }
                        "Job" => self.controllers.enqueue(Queue::Job, ns, owner),
                        _ => {}
                    }
                }
                if !deleted {
                    self.pod_gc_observe(now, &event.key, &obj);
                }
                if owners.is_empty() && !deleted {
                    let labels = &event.object.index.label_pairs();
                    self.enqueue_adopters(ResourceId::ReplicaSets, ns, labels);
                    self.enqueue_adopters(ResourceId::ReplicationControllers, ns, labels);
                    self.enqueue_adopters(ResourceId::Jobs, ns, labels);
                }
                let mut label_sets = alloc::vec![event.object.index.label_pairs()];
                if let Some(prev) = &event.previous {
                    label_sets.push(prev.index.label_pairs());
                }
                let services: Vec<String> = self
                    .controllers
                    .service_selectors
                    .range((String::from(ns), String::new())..)
                    .take_while(|((sns, _), _)| sns == ns)
                    .filter(|(_, sel)| label_sets.iter().any(|labels| map_matches(sel, labels)))
                    .map(|((_, sname), _)| sname.clone())
                    .collect();
                for service in services {
                    self.controllers.enqueue(Queue::Service, ns, &service);
                }
            }
            ResourceId::ReplicaSets => {
                self.controllers.enqueue(Queue::ReplicaSet, ns, name);
                let mut owners: Vec<(String, String)> = controller_ref(&obj)
                    .map(|r| (r.kind, r.name))
                    .into_iter()
                    .collect();
                owners.extend(
                    event
                        .previous
                        .as_ref()
                        .and_then(|p| controller_of(&p.json.bytes())),
                );
                for (kind, owner) in &owners {
                    if kind == "Deployment" {
                        self.controllers.enqueue(Queue::Deployment, ns, owner);
                    }
                }
                if owners.is_empty() && !deleted {
                    self.enqueue_adopters(
                        ResourceId::Deployments,
                        ns,
                        &event.object.index.label_pairs(),
                    );
                }
            }
            ResourceId::Deployments => self.controllers.enqueue(Queue::Deployment, ns, name),
            ResourceId::CustomResourceDefinitions => {
                self.controllers.enqueue(Queue::Crd, "", name);
                // A definition that goes (or changes its names) may free names others wait for.
                let group = j::str_at(&obj, "/spec/group");
                let others: Vec<String> = self
                    .crds
                    .definitions()
                    .filter(|d| d.group == group && d.name != name && !d.names_accepted)
                    .map(|d| d.name.clone())
                    .collect();
                for other in others {
                    self.controllers.enqueue(Queue::Crd, "", &other);
                }
            }
            ResourceId::Custom(id) if deleted => {
                // The last objects of a definition being deleted let its finalizer go.
                let terminating = self
                    .crds
                    .by_id(id)
                    .filter(|d| d.terminating)
                    .map(|d| d.name.clone());
                if let Some(crd) = terminating {
                    self.controllers.enqueue(Queue::Crd, "", &crd);
                }
            }
            ResourceId::ReplicationControllers => {
                self.controllers
                    .enqueue(Queue::ReplicationController, ns, name);
            }
            ResourceId::Jobs => {
                self.controllers.enqueue(Queue::Job, ns, name);
                let mut owners: Vec<(String, String)> = controller_ref(&obj)
                    .map(|r| (r.kind, r.name))
                    .into_iter()
                    .collect();
                owners.extend(
                    event
                        .previous
                        .as_ref()
                        .and_then(|p| controller_of(&p.json.bytes())),
                );
                for (kind, owner) in &owners {
                    if kind == "CronJob" {
                        self.controllers.enqueue(Queue::CronJob, ns, owner);
                    }
                }
            }
            ResourceId::CronJobs => self.controllers.enqueue(Queue::CronJob, ns, name),
            ResourceId::Services => self.controllers.enqueue(Queue::Service, ns, name),
            // A managed slice changed or went by someone else's hand: the controller restores it.
            ResourceId::EndpointSlices => {
                let label = |key: &str| event.object.index.label(key).map(String::from);
                if label(endpointslice::MANAGED_BY_LABEL).as_deref()
                    == Some(endpointslice::CONTROLLER_NAME)
                    && let Some(service) = label(endpointslice::SERVICE_NAME_LABEL)
                {
                    self.controllers.enqueue(Queue::Service, ns, &service);
                }
                if (ns, name) == ("default", apiserver_endpoints::KUBERNETES) {
                    self.controllers.enqueue(Queue::Service, ns, name);
                }
            }
            ResourceId::Endpoints if (ns, name) == ("default", apiserver_endpoints::KUBERNETES) => {
                self.controllers.enqueue(Queue::Service, ns, name);
            }
            ResourceId::Nodes => self.pod_gc_observe_node(name, (!deleted).then_some(&obj)),
            _ => {}
        }
    }

    /// Queues the Deployment that controls ReplicaSet `rs` in `ns`, if any.
    fn enqueue_deployment_of(&mut self, ns: &str, rs: &str) {
        let key = ObjectKey::new(ResourceId::ReplicaSets, ns, rs);
        if let Some((kind, name)) = self
            .store
            .get(&key)
            .and_then(|o| controller_of(&o.json.bytes()))
            && kind == "Deployment"
        {
            self.controllers.enqueue(Queue::Deployment, ns, &name);
        }
    }

    /// Updates the graph and selector caches for one object version, and queues garbage
    /// collection work it implies.
    fn observe_object(&mut self, key: &ObjectKey, obj: &Value, deleted: bool) {
        let refs = if deleted { Vec::new() } else { owner_refs(obj) };
        let old_uids: Vec<String> = self.controllers.graph.owners_of(key).to_vec();
        let uids: Vec<String> = refs.iter().map(|r| r.uid.clone()).collect();
        for uid in old_uids.iter().chain(uids.iter()) {
            if let Some(owner) = self.controllers.waiting.get(uid).cloned() {
                self.controllers.gc_owners.insert(owner);
            }
        }
        self.controllers.graph.set(key, uids);
        let uid = j::str_at(obj, "/metadata/uid");
        if deleted {
            self.controllers.waiting.remove(uid);
            for dependent in self.controllers.graph.dependents_of(uid) {
                self.controllers.gc_dependents.insert(dependent);
            }
        } else {
            let fins = finalizers(obj);
            if deleting(obj) && fins.iter().any(|f| f == gc::ORPHAN || f == gc::FOREGROUND) {
                self.controllers.gc_owners.insert(key.clone());
            }
            if refs.iter().any(|r| !self.owner_present(r, &key.namespace)) {
                self.controllers.gc_dependents.insert(key.clone());
            }
        }
        match key.resource {
            ResourceId::Services => {
                let k = (String::from(&*key.namespace), String::from(&*key.name));
                let selector = service_selector(obj);
                if deleted || selector.is_empty() {
                    self.controllers.service_selectors.remove(&k);
                } else {
                    self.controllers.service_selectors.insert(k, selector);
                }
            }
            ResourceId::ReplicaSets
            | ResourceId::Deployments
            | ResourceId::ReplicationControllers
            | ResourceId::Jobs => {
                let selector = if key.resource == ResourceId::ReplicationControllers {
                    ReplicaKind::ReplicationController.selector(obj)
                } else {
                    workload_selector(obj)
                };
                match selector.filter(|s| !s.is_empty() && !deleted) {
                    Some(sel) => {
                        self.controllers.workload_selectors.insert(key.clone(), sel);
                    }
                    None => {
                        self.controllers.workload_selectors.remove(key);
                    }
                }
            }
            _ => {}
        }
    }

    /// Whether the owner `r` names exists with that uid.
    pub(crate) fn owner_present(&self, r: &OwnerRef, namespace: &str) -> bool {
        let Some(key) = self.owner_key(r, namespace) else {
            // A kind this server does not serve cannot be checked; kube leaves such
            // dependents alone rather than collect them on a lookup failure.
            return true;
        };
        self.store
            .get(&key)
            .is_some_and(|o| uid_of(&o.json.bytes()).is_some_and(|uid| uid == r.uid))
    }

    /// Queues the workloads of `resource` in `ns` whose selector matches `labels` (orphans).
    fn enqueue_adopters(&mut self, resource: ResourceId, ns: &str, labels: &[(String, String)]) {
        let start = ObjectKey::new(resource, ns, "");
        let names: Vec<String> = self
            .controllers
            .workload_selectors
            .range(start..)
            .take_while(|(k, _)| k.resource == resource && &*k.namespace == ns)
            .filter(|(_, sel)| sel.matches(labels))
            .map(|(k, _)| String::from(&*k.name))
            .collect();
        let queue = match resource {
            ResourceId::Deployments => Queue::Deployment,
            ResourceId::ReplicationControllers => Queue::ReplicationController,
            ResourceId::Jobs => Queue::Job,
            _ => Queue::ReplicaSet,
        };
        for name in names {
            self.controllers.enqueue(queue, ns, &name);
        }
    }

    /// Rebuilds the graph and caches from the store and queues every workload: the feed's
    /// position left the ring. Each object is queued at most once, so this is bounded by the
    /// store's object budget.
    fn resync(&mut self, now: UnixTime) {
        self.controllers.processed = self.store.revision();
        self.controllers.graph = OwnerGraph::default();
        self.controllers.service_selectors.clear();
        self.controllers.workload_selectors.clear();
        self.controllers.pods.clear();
        self.controllers.out_of_service.clear();
        self.namespaces_due.extend(self.terminating.iter().cloned());
        let mut resources: Vec<ResourceId> = crate::resource::RESOURCES
            .iter()
            .map(|r| r.id)
            .filter(|id| *id != ResourceId::Events)
            .collect();
        resources.extend(self.custom_ids());
        for resource in resources {
            let objects: Vec<(ObjectKey, Value)> = self
                .store
                .range(resource, None, None)
                .filter_map(|(k, o)| {
                    Some((k.clone(), serde_json::from_slice(&o.json.bytes()).ok()?))
                })
                .collect();
            for (key, obj) in objects {
                self.observe_object(&key, &obj, false);
                let queue = match key.resource {
                    ResourceId::CustomResourceDefinitions => Queue::Crd,
                    ResourceId::Namespaces => {
                        self.controllers
                            .enqueue(Queue::NamespaceDefaults, "", &key.name);
                        continue;
                    }
                    ResourceId::ResourceQuotas => {
                        self.controllers.enqueue(Queue::Quota, &key.namespace, "");
                        continue;
                    }
                    ResourceId::PodDisruptionBudgets => Queue::Disruption,
                    ResourceId::FlowSchemas => Queue::FlowSchemaStatus,
                    ResourceId::CertificateSigningRequests => Queue::Csr,
                    ResourceId::Deployments => Queue::Deployment,
                    ResourceId::ReplicaSets => Queue::ReplicaSet,
                    ResourceId::ReplicationControllers => Queue::ReplicationController,
                    ResourceId::Jobs => Queue::Job,
                    ResourceId::CronJobs => Queue::CronJob,
                    ResourceId::Services => Queue::Service,
                    ResourceId::Pods => {
                        // A pod whose node is gone (its deletion may have left the ring before
                        // the feed saw it) or out of service.
                        self.pod_gc_observe(now, &key, &obj);
                        continue;
                    }
                    ResourceId::Nodes => {
                        self.pod_gc_observe_node(&key.name, Some(&obj));
                        continue;
                    }
                    _ => continue,
                };
                self.controllers.enqueue(queue, &key.namespace, &key.name);
            }
        }
    }

    /// The stored object at `key`, parsed.
    pub(crate) fn load(&self, key: &ObjectKey) -> Option<Value> {
        serde_json::from_slice(&self.store.get(key)?.json.bytes()).ok()
    }

    /// Creates an object on a controller's behalf: refused in a terminating namespace, as
    /// kube's NamespaceLifecycle admission refuses it.
    pub(crate) fn controller_create(
        &mut self,
        now: UnixTime,
        resource: ResourceId,
        namespace: &str,
        obj: &mut Value,
    ) -> Result<(), Error> {
        let ns_key = ObjectKey::new(ResourceId::Namespaces, "", namespace);
        let terminating = self.terminating.contains(namespace)
            || self
                .store
                .get(&ns_key)
                .is_none_or(|n| n.index.field_is("status.phase", "Terminating"));
        if terminating {
            // Final: the namespace goes, and with it what would have been created.
            return Err(Error::Forbidden {
                resource: String::from(resource.info().plural),
                name: j::string_at(obj, "/metadata/name"),
                message: alloc::format!(
                    "unable to create new content in namespace {namespace} because it is being terminated"
                ),
                causes: Vec::new(),
            });
        }
        if let Some(meta) = meta_mut(obj) {
            meta.insert("namespace".into(), Value::from(namespace));
        }
        // Quota admission judges a controller's creates as any client's: a ReplicaSet over its
        // namespace's pod quota gets kube's `exceeded quota` refusal (and its ReplicaFailure).
        // kube's controllers send only a generateName, which admission's errors name (`pods
        // "web-" is forbidden`): the name is generated after admission.
        let mut name = j::string_at(obj, "/metadata/generateName");
        if name.is_empty() {
            name = j::string_at(obj, "/metadata/name");
        }
        let charges = self.admit_quota(now, resource, namespace, &name, obj, None)?;
        let created = self.create_internal(
            &WriteContext::server(now),
            resource,
            namespace,
            obj,
            "kube-controller-manager",
        );
        // ServiceAccount admission's refusal names an account that may yet be created: the
        // sync is retried with backoff, as kube's controllers retry every failed create.
        if created.is_err() && resource == ResourceId::Pods {
            let account = j::str_at(obj, "/spec/serviceAccountName");
            let key = ObjectKey::new(ResourceId::ServiceAccounts, namespace, account);
            if !account.is_empty() && self.store.get(&key).is_none() {
                self.controllers.write_refused = true;
            }
        }
        self.controllers.note(created)?;
        self.charge_quotas(now, charges);
        Ok(())
    }

    /// Replaces a stored object on a controller's behalf; a changed `spec` bumps `generation`.
    /// The write is recorded in managedFields as kube's controllers' are: an `Update` entry of
    /// the component that runs the controller, on the `status` subresource when only the
    /// status changed.
    pub(crate) fn controller_update(
        &mut self,
        now: UnixTime,
        key: &ObjectKey,
        obj: &mut Value,
    ) -> Result<(), Error> {
        let old = self.load(key).ok_or_else(|| Error::NotFound {
            resource: String::from(key.resource.info().plural),
            name: String::from(&*key.name),
        })?;
        if old == *obj {
            return Ok(());
        }
        let changed = match key.resource {
            ResourceId::Deployments | ResourceId::ReplicaSets => old.get("spec") != obj.get("spec"),
            ResourceId::EndpointSlices => crate::validation::endpoint_slice_changed(&old, obj),
            _ => false,
        };
        if changed {
            let generation = int_at(&old, "/metadata/generation").saturating_add(1);
            if let Some(meta) = meta_mut(obj) {
                meta.insert("generation".into(), Value::from(generation));
            }
        }
        let subresource = only_status_changed(&old, obj).then_some("status");
        let manager = controller_manager(key.resource);
        crate::patch::record_update(
            key.resource,
            None,
            Some(&old),
            obj,
            manager,
            subresource,
            now,
        );
        let written = self.write_existing(&WriteContext::server(now), key, obj);
        self.controllers.note(written).map(|_| ())
    }

    /// Replaces a stored object on a controller's behalf, as it is (no generation bump).
    pub(crate) fn controller_write(
        &mut self,
        now: UnixTime,
        key: &ObjectKey,
        obj: &mut Value,
    ) -> Result<Vec<u8>, Error> {
        let written = self.write_existing(&WriteContext::server(now), key, obj);
        self.controllers.note(written)
    }

    /// Removes a stored object on a controller's behalf, `obj` being its last state.
    pub(crate) fn controller_remove(
        &mut self,
        now: UnixTime,
        key: &ObjectKey,
        obj: &mut Value,
    ) -> Result<Vec<u8>, Error> {
        let removed = self.write_delete(&WriteContext::server(now), key, obj);
        self.controllers.note(removed)
    }

    /// Deletes an object on a controller's behalf, as a DELETE with `options` would.
    pub(crate) fn controller_delete(
        &mut self,
        now: UnixTime,
        key: &ObjectKey,
        obj: Value,
        options: &crate::cluster::deletion::DeleteOptions,
    ) -> Result<crate::cluster::deletion::Deletion, Error> {
        let deleted = self.delete_object(&WriteContext::server(now), key, obj, options);
        self.controllers.note(deleted)
    }
}

/// The field manager kube's writes of `resource`'s controller carry: the component's name
/// (its user agent), as a managedFields entry of operation `Update`.
fn controller_manager(resource: ResourceId) -> &'static str {
    match resource {
        ResourceId::FlowSchemas | ResourceId::PriorityLevelConfigurations => {
            "api-priority-and-fairness-config-consumer-v1"
        }
        ResourceId::CustomResourceDefinitions => "kube-apiserver",
        _ => "kube-controller-manager",
    }
}

/// Whether `new` differs from `old` in `status` alone (a controller's status update).
fn only_status_changed(old: &Value, new: &Value) -> bool {
    let (Some(old), Some(new)) = (old.as_object(), new.as_object()) else {
        return false;
    };
    old.get("status") != new.get("status")
        && old
            .iter()
            .filter(|(k, _)| *k != "status")
            .all(|(k, v)| new.get(k) == Some(v))
        && new.keys().all(|k| k == "status" || old.contains_key(k))
}

/// One unit of controller work: a garbage-collection look at an owner or a dependent, or a
/// sync of one key of one queue.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Work {
    Owner(ObjectKey),
    Dependent(ObjectKey),
    Sync(Queue, String, String),
}

/// A Service's `spec.selector` as (key, value) pairs (empty: no selector).
pub(crate) fn service_selector(service: &Value) -> Vec<(String, String)> {
    service
        .pointer("/spec/selector")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.into())))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a Service-style selector map matches `labels` (every pair present).
pub(crate) fn map_matches<L: crate::selector::Labels + ?Sized>(
    selector: &[(String, String)],
    labels: &L,
) -> bool {
    !selector.is_empty()
        && selector
            .iter()
            .all(|(k, v)| labels.label(k) == Some(v.as_str()))
}

/// Sets condition `type_` in `conditions` (a status `conditions` array), keeping its
/// `lastTransitionTime` when the status is unchanged, as kube's condition helpers do. Returns
/// whether anything changed.
pub(crate) fn set_condition(
    conditions: &mut Vec<Value>,
    now: UnixTime,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    with_update_time: bool,
) -> bool {
    let stamp = now.rfc3339();
    let existing = conditions
        .iter()
        .position(|c| j::str_at(c, "/type") == type_);
    let mut condition = json!({
        "type": type_, "status": status, "reason": reason, "message": message,
        "lastTransitionTime": stamp,
    });
    if with_update_time && let Some(map) = condition.as_object_mut() {
        map.insert("lastUpdateTime".into(), Value::from(stamp.clone()));
    }
    if let Some(i) = existing
        && let Some(old) = conditions.get_mut(i)
    {
        if j::str_at(old, "/status") == status
            && j::str_at(old, "/reason") == reason
            && j::str_at(old, "/message") == message
        {
            return false;
        }
        if j::str_at(old, "/status") == status
            && let (Some(map), Some(t)) = (condition.as_object_mut(), old.get("lastTransitionTime"))
        {
            map.insert("lastTransitionTime".into(), t.clone());
        }
        *old = condition;
        return true;
    }
    conditions.push(condition);
    true
}

/// Removes condition `type_`; returns whether it was there.
pub(crate) fn remove_condition(conditions: &mut Vec<Value>, type_: &str) -> bool {
    let before = conditions.len();
    conditions.retain(|c| j::str_at(c, "/type") != type_);
    before != conditions.len()
}

/// [`update_pod_condition`] on `pod`'s status (made when missing): the `DisruptionTarget` an
/// eviction or a taint manager writes before it deletes the pod; whether anything changed.
pub(crate) fn mark_pod(pod: &mut Value, now: UnixTime, condition: Value) -> bool {
    pod.as_object_mut()
        .and_then(|map| {
            let status = map.entry("status").or_insert_with(|| json!({}));
            status.as_object_mut()
        })
        .is_some_and(|status| update_pod_condition(status, now, condition))
}

/// kube's `UpdatePodCondition` on a pod's status map: sets the condition of its type, keeping
/// `lastTransitionTime` when its status is unchanged; whether anything changed.
pub(crate) fn update_pod_condition(
    status: &mut serde_json::Map<String, Value>,
    now: UnixTime,
    mut condition: Value,
) -> bool {
    let conditions = status.entry("conditions").or_insert_with(|| json!([]));
    if !conditions.is_array() {
        *conditions = json!([]);
    }
    let Some(list) = conditions.as_array_mut() else {
        return false;
    };
    let type_ = String::from(j::str_at(&condition, "/type"));
    let existing = list.iter().position(|c| j::str_at(c, "/type") == type_);
    let transition = match existing.and_then(|i| list.get(i)) {
        Some(old) if j::str_at(old, "/status") == j::str_at(&condition, "/status") => old
            .get("lastTransitionTime")
            .cloned()
            .unwrap_or_else(|| Value::from(now.rfc3339())),
        _ => Value::from(now.rfc3339()),
    };
    if let Some(map) = condition.as_object_mut() {
        map.insert("lastTransitionTime".into(), transition);
        map.entry("lastProbeTime").or_insert(Value::Null);
    }
    match existing.and_then(|i| list.get_mut(i)) {
        Some(old) if *old == condition => false,
        Some(old) => {
            *old = condition;
            true
        }
        None => {
            list.push(condition);
            true
        }
    }
}
