//! The disruption controller (kube-controller-manager's): each PodDisruptionBudget's status
//! from the pods its selector picks (`currentHealthy`, `desiredHealthy`, `expectedPods`,
//! `disruptionsAllowed`, the `DisruptionAllowed` condition, `observedGeneration`), and the
//! `pods/eviction` subresource that honours it.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use serde_json::{Map, Value, json};

use crate::cluster::Cluster;
use crate::cluster::WriteContext;
use crate::cluster::deletion::{DeleteOptions, DeleteQuery};
use crate::resource::ResourceId;
use crate::selector::LabelSelector;
use crate::store::ObjectKey;
use crate::{Error, UnixTime, json as j};

/// How long an eviction's entry in `disruptedPods` waits for the pod's deletion (kube's
/// `DeletionTimeout`, 2 minutes).
const DELETION_TIMEOUT_SECS: u64 = 120;

/// Most entries `disruptedPods` may hold before evictions are refused (kube's
/// `MaxDisruptedPodSize`).
const MAX_DISRUPTED_PODS: usize = 2000;

/// The selector of a PodDisruptionBudget; `None` (matches nothing) when unset or malformed.
fn pdb_selector(pdb: &Value) -> Option<LabelSelector> {
    let sel = pdb.pointer("/spec/selector").filter(|s| !s.is_null())?;
    LabelSelector::from_json(sel).ok()
}

/// Whether a pod is Ready and not being deleted (`IsPodReady` and no deletion timestamp).
fn healthy(pod: &Value) -> bool {
    super::deleting(pod).then_some(()).is_none()
        && j::array_at(pod, "/status/conditions")
            .iter()
            .any(|c| j::str_at(c, "/type") == "Ready" && j::str_at(c, "/status") == "True")
}

/// `intstr.GetScaledValueFromIntOrPercent(v, total, roundUp)`.
fn scaled(v: &Value, total: i64, round_up: bool) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => {
            let percent: i64 = s.strip_suffix('%')?.parse().ok()?;
            let product = percent.checked_mul(total)?;
            Some(if round_up {
                (product + 99).div_euclid(100)
            } else {
                product.div_euclid(100)
            })
        }
        _ => None,
    }
}

/// `UpdateDisruptionAllowedCondition`: condition `DisruptionAllowed` (`SufficientPods` or
/// `InsufficientPods`) stamped with `generation`; returns its status.
fn set_allowed_condition(
    conditions: &mut Vec<Value>,
    now: UnixTime,
    allowed: bool,
    generation: i64,
) -> &'static str {
    let (status, reason) = if allowed {
        ("True", "SufficientPods")
    } else {
        ("False", "InsufficientPods")
    };
    super::set_condition(
        conditions,
        now,
        "DisruptionAllowed",
        status,
        reason,
        "",
        false,
    );
    for c in conditions.iter_mut() {
        if j::str_at(c, "/type") == "DisruptionAllowed"
            && let Some(map) = c.as_object_mut()
        {
            map.insert("observedGeneration".into(), Value::from(generation));
        }
    }
    status
}

impl Cluster {
    /// The PodDisruptionBudgets in `ns` whose selector matches `labels`.
    pub(crate) fn pdbs_for(&self, ns: &str, labels: &[(String, String)]) -> Vec<String> {
        self.store
            .range(ResourceId::PodDisruptionBudgets, Some(ns), None)
            .filter_map(|(k, o)| {
                let pdb: Value = serde_json::from_slice(&o.json.bytes()).ok()?;
                pdb_selector(&pdb)?
                    .matches(labels)
                    .then(|| String::from(&*k.name))
            })
            .collect()
    }

    /// The pods `pdb` selects in `ns`.
    fn pdb_pods(&self, ns: &str, pdb: &Value) -> Vec<Value> {
        let Some(selector) = pdb_selector(pdb) else {
            return Vec::new();
        };
        self.store
            .range(ResourceId::Pods, Some(ns), None)
            .filter(|(_, o)| selector.matches(&*o.index))
            .filter_map(|(_, o)| serde_json::from_slice(&o.json.bytes()).ok())
            .collect()
    }

    /// `getExpectedScale`: the replicas of the controllers that own `pods` (ReplicaSets through
    /// their Deployment, ReplicationControllers, StatefulSets), each counted once; pods without
    /// a controller count one each.
    fn expected_scale(&self, ns: &str, pods: &[Value]) -> i64 {
        let mut controllers: BTreeMap<(String, String), i64> = BTreeMap::new();
        let mut unmanaged = 0i64;
        for pod in pods {
            let Some(owner) = super::controller_ref(pod) else {
                unmanaged += 1;
                continue;
            };
            let Some(key) = self.owner_key(&owner, ns) else {
                continue;
            };
            let Some(mut obj) = self.load(&key) else {
                continue;
            };
            let mut id = (owner.kind.clone(), owner.name.clone());
            if owner.kind == "ReplicaSet"
                && let Some(deployment) =
                    super::controller_ref(&obj).filter(|d| d.kind == "Deployment")
                && let Some(dkey) = self.owner_key(&deployment, ns)
                && let Some(d) = self.load(&dkey)
            {
                id = (deployment.kind, deployment.name);
                obj = d;
            }
            let replicas = obj
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            controllers.insert(id, replicas);
        }
        controllers.values().sum::<i64>() + unmanaged
    }

    /// Recomputes the status of PodDisruptionBudget `ns/name` (`trySync`).
    pub(crate) fn sync_disruption_budget(&mut self, now: UnixTime, ns: &str, name: &str) {
        let key = ObjectKey::new(ResourceId::PodDisruptionBudgets, ns, name);
        let Some(mut pdb) = self.load(&key) else {
            return;
        };
        if super::deleting(&pdb) {
            return;
        }
        let pods = self.pdb_pods(ns, &pdb);
        // Evictions not yet followed by the pod's deletion stay recorded for two minutes.
        let live: Vec<&str> = pods
            .iter()
            .filter(|p| !super::deleting(p))
            .map(|p| j::str_at(p, "/metadata/name"))
            .collect();
        let disrupted: Map<String, Value> = pdb
            .pointer("/status/disruptedPods")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter(|(pod, at)| {
                        live.contains(&pod.as_str())
                            && at
                                .as_str()
                                .and_then(UnixTime::parse_rfc3339)
                                .is_some_and(|t| t.plus_secs(DELETION_TIMEOUT_SECS) > now)
                    })
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        // `buildDisruptedPodMap`'s recheck: the budget is synced again when the first recorded
        // eviction times out, so that pod counts as healthy again.
        if let Some(recheck) = disrupted
            .values()
            .filter_map(|at| at.as_str().and_then(UnixTime::parse_rfc3339))
            .map(|t| t.plus_secs(DELETION_TIMEOUT_SECS))
            .min()
        {
            self.controllers
                .requeue_at(recheck, super::Queue::Disruption, ns, name);
        }
        // `countHealthyPods`: a pod whose eviction is recorded is about to go, so it no longer
        // counts as healthy.
        let current = i64::try_from(
            pods.iter()
                .filter(|p| healthy(p) && !disrupted.contains_key(j::str_at(p, "/metadata/name")))
                .count(),
        )
        .unwrap_or(0);
        let (expected, desired) = match (
            pdb.pointer("/spec/maxUnavailable").filter(|v| !v.is_null()),
            pdb.pointer("/spec/minAvailable").filter(|v| !v.is_null()),
        ) {
            (Some(max), _) => {
                let expected = self.expected_scale(ns, &pods);
                let max = scaled(max, expected, true).unwrap_or(0);
                (expected, (expected - max).max(0))
            }
            (None, Some(min @ Value::Number(_))) => (
                i64::try_from(pods.len()).unwrap_or(0),
                min.as_i64().unwrap_or(0),
            ),
            (None, Some(min)) => {
                let expected = self.expected_scale(ns, &pods);
                (expected, scaled(min, expected, true).unwrap_or(0))
            }
            (None, None) => (0, 0),
        };
        let mut allowed = current - desired;
        if expected <= 0 || allowed <= 0 {
            allowed = 0;
        }
        let generation = pdb
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let mut conditions: Vec<Value> = j::array_at(&pdb, "/status/conditions").to_vec();
        let status = set_allowed_condition(&mut conditions, now, allowed > 0, generation);
        let mut next = json!({
            "observedGeneration": generation,
            "disruptionsAllowed": allowed,
            "currentHealthy": current,
            "desiredHealthy": desired,
            "expectedPods": expected,
            "conditions": conditions,
        });
        if !disrupted.is_empty()
            && let Some(map) = next.as_object_mut()
        {
            map.insert("disruptedPods".into(), Value::Object(disrupted));
        }
        let unchanged = {
            let old = pdb.get("status");
            let same = |f: &str| old.and_then(|o| o.get(f)) == next.get(f);
            [
                "observedGeneration",
                "disruptionsAllowed",
                "currentHealthy",
                "desiredHealthy",
                "expectedPods",
                "disruptedPods",
            ]
            .iter()
            .all(|f| same(f))
                && old
                    .and_then(|o| o.get("conditions"))
                    .and_then(Value::as_array)
                    .is_some_and(|c| {
                        c.iter().any(|c| {
                            j::str_at(c, "/type") == "DisruptionAllowed"
                                && j::str_at(c, "/status") == status
                                && c.get("observedGeneration").and_then(Value::as_i64)
                                    == Some(generation)
                        })
                    })
        };
        if unchanged {
            return;
        }
        if let Some(map) = pdb.as_object_mut() {
            map.insert("status".into(), next);
        }
        let _ = self.controller_update(now, &key, &mut pdb);
    }

    /// `POST pods/{name}/eviction` (`EvictionREST.Create`): deletes the pod unless its one
    /// PodDisruptionBudget allows no disruption (429); a budget that allows one records the
    /// eviction in `disruptedPods` and lowers `disruptionsAllowed` first. A dry run (`?dryRun=All`
    /// or the body's `deleteOptions.dryRun`, merged as kube's `propagateDryRun` does) checks the
    /// budget and changes nothing.
    pub(crate) fn evict(
        &mut self,
        now: UnixTime,
        ns: &str,
        name: &str,
        eviction: &Value,
        dry_run_query: bool,
    ) -> Result<Value, Error> {
        let body_name = j::str_at(eviction, "/metadata/name");
        if !body_name.is_empty() && body_name != name {
            return Err(Error::BadRequest(
                "name in URL does not match name in Eviction object".into(),
            ));
        }
        let key = ObjectKey::new(ResourceId::Pods, ns, name);
        let pod = self.load(&key).ok_or_else(|| Error::NotFound {
            resource: "pods".into(),
            name: name.into(),
        })?;
        let options = eviction
            .get("deleteOptions")
            .filter(|o| !o.is_null())
            .cloned()
            .unwrap_or(Value::Null);
        let dry_run = dry_run_query || options.pointer("/dryRun/0").is_some();
        // The eviction's deleteOptions (grace period, preconditions, propagation) as a DELETE
        // of the pod would read them.
        let mut delete = DeleteOptions::of_body(&options, &DeleteQuery::default())?;
        let ignore_pdb = matches!(
            j::str_at(&pod, "/status/phase"),
            "Succeeded" | "Failed" | "Pending"
        ) || super::deleting(&pod);
        let mut budget = None;
        if !ignore_pdb {
            let labels = crate::selector::labels_of(&pod);
            let budgets = self.pdbs_for(ns, &labels);
            if budgets.len() > 1 {
                return Err(Error::Internal(
                    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
                        .into(),
                ));
            }
            budget = budgets.into_iter().next();
        }
        // kube answers a refused budget (429) before a failed precondition (409, found when it
        // adds the condition); here both are checked before anything is spent, so a conflict
        // leaves the budget as it was.
        if let Some(budget) = &budget {
            self.charge_disruption(now, ns, budget, &pod, true)?;
        }
        crate::cluster::deletion::check_preconditions(&key, &pod, &delete)?;
        if let Some(budget) = &budget {
            self.charge_disruption(now, ns, budget, &pod, dry_run)?;
        }
        if dry_run {
            return Ok(
                json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
            );
        }
        let pod = self.mark_evicted(now, &key, pod)?;
        // The preconditions held for the pod as it was; the condition just written is the
        // eviction's own change (kube moves the resourceVersion precondition past it too).
        delete.resource_version = None;
        self.controller_delete(now, &key, pod, &delete)?;
        Ok(
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
        )
    }

    /// `addConditionAndDeletePod`'s first half: the pod gets the `DisruptionTarget` condition
    /// (reason `EvictionByEvictionAPI`) before it is deleted, so its controllers and kubelet see
    /// a voluntary disruption. Returns the pod as stored.
    fn mark_evicted(
        &mut self,
        now: UnixTime,
        key: &ObjectKey,
        mut pod: Value,
    ) -> Result<Value, Error> {
        let condition = json!({"type": "DisruptionTarget", "status": "True",
            "reason": "EvictionByEvictionAPI", "message": "Eviction API: evicting"});
        let changed = super::mark_pod(&mut pod, now, condition);
        if changed {
            self.write_existing(&WriteContext::server(now), key, &mut pod)?;
        }
        Ok(pod)
    }

    /// Checks budget `ns/budget` for evicting `pod` and records the disruption (unless `dry_run`).
    fn charge_disruption(
        &mut self,
        now: UnixTime,
        ns: &str,
        budget: &str,
        pod: &Value,
        dry_run: bool,
    ) -> Result<(), Error> {
        let key = ObjectKey::new(ResourceId::PodDisruptionBudgets, ns, budget);
        let Some(mut pdb) = self.load(&key) else {
            return Ok(());
        };
        let status = |f: &str| {
            pdb.pointer(&alloc::format!("/status/{f}"))
                .and_then(Value::as_i64)
                .unwrap_or(0)
        };
        let generation = pdb
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if status("observedGeneration") < generation {
            // `createTooManyRequestsError`: kube suggests a retry in 10 s.
            return Err(Error::DisruptionBudget {
                detail: alloc::format!(
                    "The disruption budget {budget} is still being processed by the server."
                ),
                retry_after_secs: 10,
            });
        }
        let (current, desired) = (status("currentHealthy"), status("desiredHealthy"));
        if !healthy(pod) {
            let always = j::str_at(&pdb, "/spec/unhealthyPodEvictionPolicy") == "AlwaysAllow";
            if always || (current >= desired && desired > 0) {
                return Ok(());
            }
        }
        let allowed = status("disruptionsAllowed");
        if allowed < 0 {
            return Err(Error::Forbidden {
                resource: "poddisruptionbudget.policy".into(),
                name: budget.into(),
                message: "pdb disruptions allowed is negative".into(),
                causes: Vec::new(),
            });
        }
        let disrupted = pdb
            .pointer("/status/disruptedPods")
            .and_then(Value::as_object)
            .map_or(0, Map::len);
        if disrupted > MAX_DISRUPTED_PODS {
            return Err(Error::Forbidden {
                resource: "poddisruptionbudget.policy".into(),
                name: budget.into(),
                message:
                    "DisruptedPods map too big - too many evictions not confirmed by PDB controller"
                        .into(),
                causes: Vec::new(),
            });
        }
        if allowed == 0 {
            return Err(Error::DisruptionBudget {
                detail: alloc::format!(
                    "The disruption budget {budget} needs {desired} healthy pods and has {current} currently"
                ),
                retry_after_secs: 0,
            });
        }
        if dry_run {
            return Ok(());
        }
        let observed = status("observedGeneration");
        if let Some(status) = pdb.get_mut("status").and_then(Value::as_object_mut) {
            status.insert("disruptionsAllowed".into(), Value::from(allowed - 1));
            if allowed == 1 {
                // `UpdateDisruptionAllowedCondition`: the last disruption spent turns the
                // condition False at once, before the controller's next sync.
                let mut conditions: Vec<Value> = status
                    .get("conditions")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                set_allowed_condition(&mut conditions, now, false, observed);
                status.insert("conditions".into(), Value::Array(conditions));
            }
            let map = status
                .entry("disruptedPods")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(map) = map.as_object_mut() {
                map.insert(
                    j::string_at(pod, "/metadata/name"),
                    Value::from(now.rfc3339()),
                );
            }
        }
        self.controller_update(now, &key, &mut pdb)
    }
}
