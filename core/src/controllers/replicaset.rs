//! The ReplicaSet controller, as kube-controller-manager's: keeps `spec.replicas` active pods
//! made from the template (named `RSNAME-xxxxx`, owned with `controller` and
//! `blockOwnerDeletion`), adopts orphans its selector matches and releases owned pods it no
//! longer matches, and reports replicas, fullyLabeled, ready and available counts. Creations come
//! in slow-start batches (1, 2, 4, ...) up to `Config::controller_burst` per sync and stop at the
//! first failure, which becomes a `ReplicaFailure` condition (reason `FailedCreate`).
//!
//! ReplicationControllers run through the same code, as kube-controller-manager runs them
//! through its ReplicaSet controller: only the owner kind, the event source and the selector
//! (a plain label map) differ ([`ReplicaKind`]).

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use serde_json::{Value, json};

use super::events::Involved;
use super::{
    Queue, controller_ref, controller_ref_to, deleting, int_at, meta_mut, workload_selector,
};
use crate::cluster::Cluster;
use crate::cluster::deletion::DeleteOptions;
use crate::resource::ResourceId;
use crate::store::ObjectKey;
use crate::{Error, UnixTime, json as j};

/// Which kind of pod owner a sync is for: the two replica-keeping kinds, and Jobs, which claim
/// their pods the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReplicaKind {
    ReplicaSet,
    ReplicationController,
    Job,
}

impl ReplicaKind {
    fn resource(self) -> ResourceId {
        match self {
            Self::ReplicaSet => ResourceId::ReplicaSets,
            Self::ReplicationController => ResourceId::ReplicationControllers,
            Self::Job => ResourceId::Jobs,
        }
    }

    fn api_version(self) -> &'static str {
        match self {
            Self::ReplicaSet => "apps/v1",
            Self::ReplicationController => "v1",
            Self::Job => "batch/v1",
        }
    }

    fn kind(self) -> &'static str {
        self.resource().info().kind
    }

    pub(crate) fn queue(self) -> Queue {
        match self {
            Self::ReplicaSet => Queue::ReplicaSet,
            Self::ReplicationController => Queue::ReplicationController,
            Self::Job => Queue::Job,
        }
    }

    /// The event source kube's controller manager gives each.
    pub(crate) fn component(self) -> &'static str {
        match self {
            Self::ReplicaSet => "replicaset-controller",
            Self::ReplicationController => "replication-controller",
            Self::Job => "job-controller",
        }
    }

    /// The owner's selector: a `LabelSelector` for a ReplicaSet, a label map for an RC.
    pub(crate) fn selector(self, owner: &Value) -> Option<crate::selector::LabelSelector> {
        match self {
            Self::ReplicaSet | Self::Job => workload_selector(owner),
            Self::ReplicationController => {
                let map = owner.pointer("/spec/selector")?.as_object()?;
                crate::selector::LabelSelector::from_json(&json!({ "matchLabels": map })).ok()
            }
        }
    }
}
/// What the controller needs of one pod.
#[derive(Debug, Clone)]
pub(crate) struct PodFacts {
    pub(crate) name: String,
    pub(crate) assigned: bool,
    pub(crate) phase_rank: u8,
    pub(crate) ready: bool,
    /// When the pod last turned Ready.
    pub(crate) ready_since: Option<UnixTime>,
    pub(crate) restarts: i64,
    pub(crate) created: String,
    pub(crate) labels: Vec<(String, String)>,
}

impl PodFacts {
    pub(crate) fn of(pod: &Value) -> Self {
        let ready_condition = pod
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .and_then(|c| c.iter().find(|c| j::str_at(c, "/type") == "Ready"));
        let ready = ready_condition.is_some_and(|c| j::str_at(c, "/status") == "True");
        let ready_since = ready_condition
            .and_then(|c| UnixTime::parse_rfc3339(j::str_at(c, "/lastTransitionTime")));
        let restarts = pod
            .pointer("/status/containerStatuses")
            .and_then(Value::as_array)
            .map(|s| s.iter().map(|c| int_at(c, "/restartCount")).sum())
            .unwrap_or(0);
        Self {
            name: j::string_at(pod, "/metadata/name"),
            assigned: !j::str_at(pod, "/spec/nodeName").is_empty(),
            phase_rank: match j::str_at(pod, "/status/phase") {
                "Pending" | "" => 0,
                "Unknown" => 1,
                _ => 2,
            },
            ready,
            ready_since,
            restarts,
            created: j::string_at(pod, "/metadata/creationTimestamp"),
            labels: crate::selector::labels_of(pod),
        }
    }

    /// Ready for at least `min_ready` seconds at `now` (kube's `IsPodAvailable`).
    pub(crate) fn available(&self, min_ready: u64, now: UnixTime) -> bool {
        self.ready
            && (min_ready == 0
                || self
                    .ready_since
                    .is_some_and(|t| t.plus_secs(min_ready) <= now))
    }
}

/// What the controllers need of one pod version, parsed once per revision and cached.
#[derive(Debug)]
pub(crate) struct PodView {
    pub(crate) facts: PodFacts,
    pub(crate) uid: String,
    /// uid of the managing owner (`controller: true`).
    pub(crate) controller_uid: Option<String>,
    /// Counts toward replicas (kube's `FilterActivePods`).
    pub(crate) active: bool,
    pub(crate) deleting: bool,
    /// Succeeded or Failed.
    pub(crate) terminal: bool,
    /// Phase Succeeded.
    pub(crate) succeeded: bool,
    /// Still holds the Job controller's tracking finalizer (not yet counted).
    pub(crate) tracked: bool,
    pub(crate) ip: String,
    pub(crate) node: String,
    /// Named container ports, for named `targetPort`s.
    pub(crate) ports: Vec<(String, i64)>,
}

impl PodView {
    pub(crate) fn of(pod: &Value) -> Self {
        let ports = pod
            .pointer("/spec/containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| c.get("ports")?.as_array())
            .flatten()
            .filter_map(|p| {
                let name = j::str_at(p, "/name");
                (!name.is_empty()).then(|| (String::from(name), int_at(p, "/containerPort")))
            })
            .collect();
        Self {
            facts: PodFacts::of(pod),
            uid: j::string_at(pod, "/metadata/uid"),
            controller_uid: controller_ref(pod).map(|r| r.uid),
            active: is_active(pod),
            deleting: deleting(pod),
            terminal: matches!(j::str_at(pod, "/status/phase"), "Succeeded" | "Failed"),
            succeeded: j::str_at(pod, "/status/phase") == "Succeeded",
            tracked: super::finalizers(pod)
                .iter()
                .any(|f| f == super::job::TRACKING_FINALIZER),
            ip: j::string_at(pod, "/status/podIP"),
            node: j::string_at(pod, "/spec/nodeName"),
            ports,
        }
    }
}

/// Whether a pod counts toward replicas (kube's `FilterActivePods`).
pub(crate) fn is_active(pod: &Value) -> bool {
    !matches!(j::str_at(pod, "/status/phase"), "Succeeded" | "Failed") && !deleting(pod)
}

/// Orders pods so that the ones to delete first come first, after kube's `ActivePods` ranking:
/// unassigned before assigned, Pending before Unknown before Running, not ready before ready,
/// ready for less time first, more restarts first, newer first.
pub(crate) fn deletion_order(a: &PodFacts, b: &PodFacts) -> core::cmp::Ordering {
    a.assigned
        .cmp(&b.assigned)
        .then(a.phase_rank.cmp(&b.phase_rank))
        .then(a.ready.cmp(&b.ready))
        .then(b.ready_since.cmp(&a.ready_since))
        .then(b.restarts.cmp(&a.restarts))
        .then(b.created.cmp(&a.created))
}

impl Cluster {
    /// The pod at `key` as the controllers see it, parsed once per stored revision.
    pub(crate) fn pod_view(&mut self, key: &ObjectKey) -> Option<Arc<PodView>> {
        let stored = self.store.get(key)?;
        if let Some((revision, view)) = self.controllers.pods.get(key)
            && *revision == stored.revision
        {
            return Some(view.clone());
        }
        let revision = stored.revision;
        let pod: Value = serde_json::from_slice(&stored.json.bytes()).ok()?;
        let view = Arc::new(PodView::of(&pod));
        self.controllers
            .pods
            .insert(key.clone(), (revision, view.clone()));
        Some(view)
    }

    /// The pods `rs` owns or its selector matches in `ns`, after adopting matching orphans and
    /// releasing owned pods it no longer matches. `manage` false: neither.
    pub(crate) fn claim_pods(
        &mut self,
        now: UnixTime,
        kind: ReplicaKind,
        rs: &Value,
        ns: &str,
        selector: &crate::selector::LabelSelector,
        manage: bool,
    ) -> Vec<Arc<PodView>> {
        let uid = j::string_at(rs, "/metadata/uid");
        // The candidates, in key order: the namespace's pods the selector matches (one pass by
        // their indexed labels) and the pods that name this owner but no longer match (one
        // lookup in the ownership graph, not one per pod of the namespace: with thousands of
        // other pods those lookups were most of a sync's cost).
        let named = self.controllers.graph.dependents_of(&uid);
        let mut candidates: Vec<(&ObjectKey, u64)> = self
            .store
            .range(ResourceId::Pods, Some(ns), None)
            .filter(|(_, object)| selector.matches(&*object.index))
            .map(|(key, object)| (key, object.revision))
            .collect();
        let unmatched = named.iter().filter_map(|key| {
            let object = self.store.get(key)?;
            let in_ns = key.resource == ResourceId::Pods && &*key.namespace == ns;
            (in_ns && !selector.matches(&*object.index)).then_some((key, object.revision))
        });
        let before = candidates.len();
        candidates.extend(unmatched);
        if candidates.len() > before {
            candidates.sort_unstable_by(|a, b| a.0.cmp(b.0));
        }
        // Cached views need neither a key copy nor a parse.
        let mut views: Vec<Arc<PodView>> = Vec::new();
        let mut misses: Vec<ObjectKey> = Vec::new();
        for (key, revision) in candidates {
            match self.controllers.pods.get(key) {
                Some((cached, view)) if *cached == revision => views.push(view.clone()),
                _ => misses.push(key.clone()),
            }
        }
        for key in misses {
            views.extend(self.pod_view(&key));
        }
        let mut owned = Vec::new();
        for view in views {
            let key = || ObjectKey::new(ResourceId::Pods, ns, &view.facts.name);
            let matches = selector.matches(&view.facts.labels);
            match &view.controller_uid {
                Some(owner) if *owner == uid => {
                    if matches {
                        owned.push(view);
                    } else if manage && let Some(mut pod) = self.load(&key()) {
                        super::gc::remove_owner_refs(&mut pod, core::slice::from_ref(&uid));
                        let _ = self.controller_update(now, &key(), &mut pod);
                    }
                }
                Some(_) => {}
                None if matches && manage && !view.deleting => {
                    let key = key();
                    let Some(mut pod) = self.load(&key) else {
                        continue;
                    };
                    if let Some(meta) = meta_mut(&mut pod) {
                        let refs = meta.entry("ownerReferences").or_insert_with(|| json!([]));
                        if let Some(list) = refs.as_array_mut() {
                            list.push(controller_ref_to(rs, kind.api_version(), kind.kind()));
                        }
                    }
                    if self.controller_update(now, &key, &mut pod).is_ok()
                        && let Some(view) = self.pod_view(&key)
                    {
                        owned.push(view);
                    }
                }
                None => {}
            }
        }
        owned
    }

    /// Brings one ReplicaSet's (or ReplicationController's) pods to its spec and writes its
    /// status.
    pub(crate) fn sync_replicas(&mut self, now: UnixTime, kind: ReplicaKind, ns: &str, name: &str) {
        let key = ObjectKey::new(kind.resource(), ns, name);
        let Some(rs) = self.load(&key) else {
            return;
        };
        // kube: an empty or malformed selector selects nothing for a ReplicaSet.
        let Some(selector) = kind.selector(&rs).filter(|s| !s.is_empty()) else {
            return;
        };
        let manage = !deleting(&rs);
        let pods = self.claim_pods(now, kind, &rs, ns, &selector, manage);
        let mut active: Vec<Arc<PodView>> = pods.into_iter().filter(|p| p.active).collect();
        let want = usize::try_from(int_at(&rs, "/spec/replicas").max(0)).unwrap_or(usize::MAX);
        let mut failure: Option<(&str, String)> = None;
        if manage && active.len() < want {
            let missing = (want - active.len()).min(self.config.controller_burst);
            let (created, error) = self.create_pods(now, kind, &rs, missing);
            active.extend(created);
            // A refused create was noted: the sync is retried with backoff (room may free up
            // meanwhile), as kube requeues a failed sync.
            if let Some(e) = error {
                failure = Some(("FailedCreate", e.message()));
            }
        } else if manage && active.len() > want {
            let surplus = (active.len() - want).min(self.config.controller_burst);
            active.sort_by(|a, b| deletion_order(&a.facts, &b.facts));
            let doomed: Vec<Arc<PodView>> = active.drain(..surplus).collect();
            for pod in doomed {
                let pod_key = ObjectKey::new(ResourceId::Pods, ns, &pod.facts.name);
                let Some(obj) = self.load(&pod_key) else {
                    continue;
                };
                // kube's ReplicaSet controller deletes with empty options: a pod bound to a node
                // terminates gracefully, and, no longer active, is not deleted again.
                match self.controller_delete(now, &pod_key, obj, &DeleteOptions::default()) {
                    Ok(_) => self.record_event(
                        now,
                        &Involved::of(&rs),
                        "Normal",
                        "SuccessfulDelete",
                        &alloc::format!("Deleted pod: {}", pod.facts.name),
                        kind.component(),
                    ),
                    Err(e) => {
                        active.push(pod);
                        failure = Some(("FailedDelete", e.message()));
                    }
                }
            }
        }
        self.write_replicaset_status(now, kind, &key, &rs, &active, failure);
    }

    /// Creates up to `count` pods from the template in slow-start batches; returns the created
    /// pods and the error that stopped creation, if any.
    pub(crate) fn create_pods(
        &mut self,
        now: UnixTime,
        kind: ReplicaKind,
        rs: &Value,
        count: usize,
    ) -> (Vec<Arc<PodView>>, Option<Error>) {
        let mut created = Vec::new();
        let mut batch = 1usize;
        while created.len() < count {
            let this_batch = batch.min(count - created.len());
            for _ in 0..this_batch {
                match self.create_pod(now, kind, rs) {
                    Ok(pod) => created.push(pod),
                    Err(e) => {
                        self.record_event(
                            now,
                            &Involved::of(rs),
                            "Warning",
                            "FailedCreate",
                            &alloc::format!("Error creating: {}", e.message()),
                            kind.component(),
                        );
                        return (created, Some(e));
                    }
                }
            }
            batch = batch.saturating_mul(2);
        }
        (created, None)
    }

    fn create_pod(
        &mut self,
        now: UnixTime,
        kind: ReplicaKind,
        rs: &Value,
    ) -> Result<Arc<PodView>, Error> {
        let rs_name = j::str_at(rs, "/metadata/name");
        let ns = j::str_at(rs, "/metadata/namespace");
        let template = rs.pointer("/spec/template").cloned().unwrap_or(json!({}));
        let mut labels = template
            .pointer("/metadata/labels")
            .cloned()
            .unwrap_or(json!({}));
        if !labels.is_object() {
            labels = json!({});
        }
        let mut metadata = json!({
            "generateName": alloc::format!("{rs_name}-"),
            "labels": labels,
            "ownerReferences": [controller_ref_to(rs, kind.api_version(), kind.kind())],
        });
        if kind == ReplicaKind::Job
            && let Some(map) = metadata.as_object_mut()
        {
            // The Job controller counts a pod once it finishes, then lets it go.
            map.insert("finalizers".into(), json!([super::job::TRACKING_FINALIZER]));
        }
        if let (Some(annotations), Some(map)) = (
            template
                .pointer("/metadata/annotations")
                .filter(|a| a.is_object()),
            metadata.as_object_mut(),
        ) {
            map.insert("annotations".into(), annotations.clone());
        }
        let mut last = Error::Internal("no pod name was free".into());
        // A generated name can collide; kube retries with another suffix.
        for _ in 0..3 {
            let pod_name = alloc::format!("{rs_name}-{}", self.ids.name_suffix());
            if let Some(map) = metadata.as_object_mut() {
                map.insert("name".into(), Value::from(pod_name.as_str()));
            }
            let mut pod = json!({
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": metadata.clone(),
                "spec": template.get("spec").cloned().unwrap_or(json!({})),
            });
            match self.controller_create(now, ResourceId::Pods, ns, &mut pod) {
                Ok(()) => {
                    self.record_event(
                        now,
                        &Involved::of(rs),
                        "Normal",
                        "SuccessfulCreate",
                        &alloc::format!("Created pod: {pod_name}"),
                        kind.component(),
                    );
                    return Ok(Arc::new(PodView::of(&pod)));
                }
                Err(Error::AlreadyExists { .. }) | Err(Error::Internal(_)) => {
                    last = Error::AlreadyExists {
                        resource: "pods".into(),
                        name: pod_name,
                    };
                }
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    fn write_replicaset_status(
        &mut self,
        now: UnixTime,
        kind: ReplicaKind,
        key: &ObjectKey,
        rs: &Value,
        active: &[Arc<PodView>],
        failure: Option<(&str, String)>,
    ) {
        let min_ready = u64::try_from(int_at(rs, "/spec/minReadySeconds")).unwrap_or(0);
        let template_labels =
            crate::selector::labels_of(rs.pointer("/spec/template").unwrap_or(&Value::Null));
        let fully = active
            .iter()
            .filter(|p| template_labels.iter().all(|l| p.facts.labels.contains(l)))
            .count();
        let ready = active.iter().filter(|p| p.facts.ready).count();
        let available = active
            .iter()
            .filter(|p| p.facts.available(min_ready, now))
            .count();
        // Ready but not yet available: look again when minReadySeconds has passed.
        if let Some(at) = active
            .iter()
            .filter(|p| p.facts.ready && !p.facts.available(min_ready, now))
            .filter_map(|p| p.facts.ready_since.map(|t| t.plus_secs(min_ready)))
            .min()
        {
            self.controllers
                .requeue_at(at, kind.queue(), &key.namespace, &key.name);
        }
        let mut conditions: Vec<Value> = rs
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        match &failure {
            Some((reason, message)) => {
                super::set_condition(
                    &mut conditions,
                    now,
                    "ReplicaFailure",
                    "True",
                    reason,
                    message,
                    false,
                );
            }
            None => {
                super::remove_condition(&mut conditions, "ReplicaFailure");
            }
        }
        let mut status = json!({
            "replicas": active.len(),
            "fullyLabeledReplicas": fully,
            "readyReplicas": ready,
            "availableReplicas": available,
            "observedGeneration": int_at(rs, "/metadata/generation"),
        });
        if let Some(map) = status.as_object_mut() {
            for field in ["fullyLabeledReplicas", "readyReplicas", "availableReplicas"] {
                if map.get(field).and_then(Value::as_u64) == Some(0) {
                    map.remove(field);
                }
            }
            if !conditions.is_empty() {
                map.insert("conditions".into(), Value::Array(conditions));
            }
        }
        if rs.get("status") == Some(&status) {
            return;
        }
        // Re-read: the sync may have written the ReplicaSet (never its spec) since it loaded it.
        let Some(mut current) = self.load(key) else {
            return;
        };
        if let Some(map) = current.as_object_mut() {
            map.insert("status".into(), status);
        }
        let _ = self.controller_update(now, key, &mut current);
    }
}
