//! The resource quota controller (kube-controller-manager's): recalculates each quota's
//! `status.used` from the objects in its namespace, and copies `spec.hard` to `status.hard`,
//! whenever a quota or anything in its namespace changes.

use alloc::string::String;
use alloc::vec::Vec;
use serde_json::{Value, json};

use crate::UnixTime;
use crate::cluster::Cluster;
use crate::quota::{self, ResourceList};
use crate::resource::{RESOURCES, ResourceId};
use crate::store::ObjectKey;

impl Cluster {
    /// Whether namespace `ns` holds any ResourceQuota. O(log n).
    pub(crate) fn has_quotas(&self, ns: &str) -> bool {
        self.store
            .range(ResourceId::ResourceQuotas, Some(ns), None)
            .next()
            .is_some()
    }

    /// Recalculates every quota of namespace `ns` (`syncResourceQuota`), writing the status of
    /// those whose hard limits or usage changed.
    pub(crate) fn sync_quotas(&mut self, now: UnixTime, ns: &str) {
        let keys: Vec<ObjectKey> = self
            .store
            .range(ResourceId::ResourceQuotas, Some(ns), None)
            .map(|(k, _)| k.clone())
            .collect();
        for key in keys {
            let Some(mut rq) = self.load(&key) else {
                continue;
            };
            let hard = quota::list_from_json(rq.pointer("/spec/hard"));
            let mut used = quota::list_from_json(rq.pointer("/status/used"));
            for (name, q) in self.calculate_usage(now, ns, &rq, &hard) {
                used.insert(name, q);
            }
            used.retain(|name, _| hard.contains_key(name));
            let status = json!({
                "hard": quota::list_to_json(&hard),
                "used": quota::list_to_json(&used),
            });
            if rq.get("status") == Some(&status) {
                continue;
            }
            if let Some(map) = rq.as_object_mut() {
                map.insert("status".into(), status);
            }
            // A refused write (store full) is retried by the next change in the namespace.
            let _ = self.controller_update(now, &key, &mut rq);
        }
    }

    /// `quota.CalculateUsage`: the usage of every tracked resource `hard` names, summed over
    /// the namespace's objects the quota covers (zero where none).
    fn calculate_usage(
        &self,
        now: UnixTime,
        ns: &str,
        rq: &Value,
        hard: &ResourceList,
    ) -> ResourceList {
        let mut usage: ResourceList = hard
            .keys()
            .filter(|name| quota::tracked(name))
            .map(|name| (name.clone(), crate::quantity::Quantity::zero()))
            .collect();
        for rt in RESOURCES.iter().filter(|r| r.namespaced) {
            let names: Vec<String> = quota::matching_resources(rt.id, hard)
                .into_iter()
                .map(String::from)
                .collect();
            if names.is_empty() {
                continue;
            }
            for (_, object) in self.store.range(rt.id, Some(ns), None) {
                let Ok(obj) = serde_json::from_slice::<Value>(&object.json.bytes()) else {
                    continue;
                };
                if !quota::matches(rq, hard, rt.id, &obj) {
                    continue;
                }
                for (name, q) in quota::usage(rt.id, &obj, now) {
                    if names.contains(&name) {
                        let sum = usage.get(&name).copied().unwrap_or_default().plus(q);
                        usage.insert(name, sum);
                    }
                }
            }
        }
        usage
    }

    /// Quota admission (`CheckRequest`): refuses a write that would take a covering quota
    /// past its hard limits, or a pod that names no request for a limited compute resource.
    /// Returns each covering quota's new `status.used`, written by [`Self::charge_quotas`] once
    /// the object is stored. Creates of every kind and updates of Services are evaluated, as
    /// kube's evaluators handle them.
    pub(crate) fn admit_quota(
        &mut self,
        now: UnixTime,
        resource: ResourceId,
        ns: &str,
        name: &str,
        obj: &Value,
        old: Option<&Value>,
    ) -> Result<Vec<(ObjectKey, ResourceList)>, crate::Error> {
        if ns.is_empty()
            || (old.is_some() && resource != ResourceId::Services)
            || !self.has_quotas(ns)
        {
            return Ok(Vec::new());
        }
        let mut keys: Vec<ObjectKey> = self
            .store
            .range(ResourceId::ResourceQuotas, Some(ns), None)
            .map(|(k, _)| k.clone())
            .collect();
        // A quota the controller has not calculated yet is calculated now, rather than
        // refusing the request as "status unknown" as kube must.
        if keys.iter().any(|k| {
            self.load(k)
                .is_none_or(|q| q.pointer("/status/used").is_none())
        }) {
            self.sync_quotas(now, ns);
            keys = self
                .store
                .range(ResourceId::ResourceQuotas, Some(ns), None)
                .map(|(k, _)| k.clone())
                .collect();
        }
        let forbidden = |detail: String| {
            let rt = resource.info();
            let qualified = crate::cluster::object::qualified(rt);
            crate::Error::Forbidden {
                message: alloc::format!("{qualified} \"{name}\" is forbidden: {detail}"),
                resource: qualified,
                name: name.into(),
                causes: Vec::new(),
            }
        };
        let mut delta = quota::usage(resource, obj, now);
        if let Some(old) = old {
            let before = quota::usage(resource, old, now);
            for (k, q) in &mut delta {
                let previous = before.get(k).copied().unwrap_or_default();
                let rest = q.minus(previous);
                *q = if rest.is_negative() {
                    crate::quantity::Quantity::zero()
                } else {
                    rest
                };
            }
        }
        delta.retain(|_, q| !q.is_zero());
        let mut charges = Vec::new();
        for key in keys {
            let Some(rq) = self.load(&key) else {
                continue;
            };
            let hard = quota::list_from_json(rq.pointer("/status/hard"));
            if !quota::matches(&rq, &hard, resource, obj) {
                continue;
            }
            let limited = quota::matching_resources(resource, &hard);
            if resource == ResourceId::Pods
                && let Err(detail) = quota::pod_constraints(&limited, obj)
            {
                return Err(forbidden(alloc::format!(
                    "failed quota: {}: {detail}",
                    key.name
                )));
            }
            let requested: ResourceList = delta
                .iter()
                .filter(|(k, _)| hard.contains_key(*k))
                .map(|(k, q)| (k.clone(), *q))
                .collect();
            if requested.is_empty() {
                continue;
            }
            let used = quota::list_from_json(rq.pointer("/status/used"));
            let new_used = quota::add(used.clone(), &requested);
            let exceeded: Vec<&String> = requested
                .keys()
                .filter(|k| {
                    let total = new_used.get(*k).copied().unwrap_or_default();
                    hard.get(*k).is_some_and(|limit| total > *limit)
                })
                .collect();
            if !exceeded.is_empty() {
                let only = |list: &ResourceList| -> ResourceList {
                    exceeded
                        .iter()
                        .map(|k| ((*k).clone(), list.get(*k).copied().unwrap_or_default()))
                        .collect()
                };
                return Err(forbidden(alloc::format!(
                    "exceeded quota: {}, requested: {}, used: {}, limited: {}",
                    key.name,
                    quota::pretty(&only(&requested)),
                    quota::pretty(&only(&used)),
                    quota::pretty(&only(&hard)),
                )));
            }
            charges.push((key, new_used));
        }
        Ok(charges)
    }

    /// Records admitted usage in the quotas' status, so the next request sees it before the
    /// controller recalculates.
    pub(crate) fn charge_quotas(&mut self, now: UnixTime, charges: Vec<(ObjectKey, ResourceList)>) {
        for (key, used) in charges {
            let Some(mut rq) = self.load(&key) else {
                continue;
            };
            let Some(status) = rq.get_mut("status").and_then(Value::as_object_mut) else {
                continue;
            };
            status.insert("used".into(), quota::list_to_json(&used));
            let _ = self.controller_update(now, &key, &mut rq);
        }
    }

    /// The namespaces whose quotas a change to `key` may move: its own, when it has quotas.
    pub(crate) fn quota_namespace(&self, key: &ObjectKey) -> Option<String> {
        let ns = &*key.namespace;
        (!ns.is_empty() && key.resource != ResourceId::Events && self.has_quotas(ns))
            .then(|| String::from(ns))
    }
}
