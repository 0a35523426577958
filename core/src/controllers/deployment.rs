//! The Deployment controller, as kube-controller-manager's: a Deployment owns ReplicaSets named
//! `NAME-<pod-template-hash>`; the one whose template equals the Deployment's is "new", the
//! others are "old". RollingUpdate scales the new one up within `maxSurge` and the old ones down
//! within `maxUnavailable` (kube's rounding: surge up, unavailable down, never both zero);
//! Recreate scales the old ones to zero and waits for their pods before scaling up. Revisions
//! live in `deployment.kubernetes.io/revision` (reusing an old ReplicaSet, as `kubectl rollout
//! undo` does, bumps it and records `revision-history`); old ReplicaSets beyond
//! `revisionHistoryLimit` are deleted; `spec.paused` stops rollouts but not scaling.

use alloc::collections::BTreeSet;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde_json::{Map, Value, json};

use super::events::Involved;
use super::gc::Propagation;
use super::{
    controller_ref, controller_ref_to, deleting, int_at, meta_mut, remove_condition, set_condition,
    workload_selector,
};
use crate::cluster::Cluster;
use crate::cluster::deletion::DeleteOptions;
use crate::resource::ResourceId;
use crate::store::ObjectKey;
use crate::{Error, UnixTime, json as j};

const COMPONENT: &str = "deployment-controller";
/// Revision of a Deployment and of its ReplicaSets.
pub(crate) const REVISION: &str = "deployment.kubernetes.io/revision";
const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
const DESIRED: &str = "deployment.kubernetes.io/desired-replicas";
const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
/// Label that tells the ReplicaSets (and their pods) of one Deployment apart.
pub(crate) const HASH_LABEL: &str = "pod-template-hash";
/// Annotations never copied from a Deployment to its ReplicaSets (kube's skip list).
const NOT_COPIED: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED,
    MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
];

/// FNV-1a, 32 bits (kube hashes pod templates with it).
fn fnv32a(bytes: &[u8]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for b in bytes {
        hash ^= u32::from(*b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// kube's `rand.SafeEncodeString`: each byte mapped onto an alphabet without vowels or
/// look-alike characters, so hashes never spell words.
fn safe_encode(text: &str) -> String {
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    text.bytes()
        .map(|b| {
            char::from(
                *ALPHANUMS
                    .get(usize::from(b) % ALPHANUMS.len())
                    .unwrap_or(&b'x'),
            )
        })
        .collect()
}

/// The `pod-template-hash` of a template: FNV-32a of its canonical JSON (kube hashes a
/// deterministic dump of the Go struct; the JSON of the stored template is our equivalent),
/// salted with `collisionCount`, printed in decimal and safe-encoded.
pub(crate) fn template_hash(template: &Value, collision_count: i64) -> String {
    let mut bytes = j::to_vec(&without_hash(template));
    if collision_count > 0 {
        bytes.extend_from_slice(collision_count.to_string().as_bytes());
    }
    safe_encode(&fnv32a(&bytes).to_string())
}

/// A template without the `pod-template-hash` label, in the form kube's `EqualIgnoreHash`
/// compares: null, empty-map and empty-list fields dropped (semantic equality treats them as
/// absent; `kubectl rollout undo` sends `creationTimestamp: null`).
fn without_hash(template: &Value) -> Value {
    let mut t = template.clone();
    if let Some(labels) = t
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(HASH_LABEL);
    }
    prune_empty(&mut t);
    t
}

/// Removes null, `{}` and `[]` members of objects, depth first. Bounded by the input's depth,
/// which intake already capped.
fn prune_empty(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for v in map.values_mut() {
                prune_empty(v);
            }
            map.retain(|_, v| match v {
                Value::Null => false,
                Value::Object(m) => !m.is_empty(),
                Value::Array(a) => !a.is_empty(),
                _ => true,
            });
        }
        Value::Array(items) => items.iter_mut().for_each(prune_empty),
        _ => {}
    }
}

/// An int-or-percent (`maxSurge`, `maxUnavailable`) of `total`, rounded up or down.
pub(crate) fn int_or_percent(value: Option<&Value>, total: i64, round_up: bool) -> i64 {
    match value {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(Value::String(s)) => {
            let Some(p) = s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) else {
                return s.parse().unwrap_or(0);
            };
            let scaled = p.saturating_mul(total);
            if round_up {
                scaled.saturating_add(99).div_euclid(100)
            } else {
                scaled.div_euclid(100)
            }
        }
        _ => 0,
    }
}

/// (maxSurge, maxUnavailable) of a Deployment, as kube's `ResolveFenceposts`: surge rounds up,
/// unavailable rounds down, and both zero would deadlock so unavailable becomes 1. Recreate
/// has neither.
pub(crate) fn surge_and_unavailable(d: &Value) -> (i64, i64) {
    let replicas = int_at(d, "/spec/replicas");
    if j::str_at(d, "/spec/strategy/type") == "Recreate" {
        return (0, 0);
    }
    let rolling = d.pointer("/spec/strategy/rollingUpdate");
    let pick = |field: &str| {
        rolling
            .and_then(|r| r.get(field))
            .cloned()
            .unwrap_or(Value::from("25%"))
    };
    let surge = int_or_percent(Some(&pick("maxSurge")), replicas, true).max(0);
    let mut unavailable = int_or_percent(Some(&pick("maxUnavailable")), replicas, false).max(0);
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    (surge, unavailable.min(replicas.max(0)))
}

fn revision_of(rs: &Value) -> u64 {
    j::str_at(
        rs,
        &alloc::format!("/metadata/annotations/{}", REVISION.replace('/', "~1")),
    )
    .parse()
    .unwrap_or(0)
}

fn annotation<'a>(obj: &'a Value, name: &str) -> &'a str {
    obj.pointer("/metadata/annotations")
        .and_then(|a| a.get(name))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn set_annotation(obj: &mut Value, name: &str, value: &str) {
    if let Some(meta) = meta_mut(obj) {
        let annotations = meta.entry("annotations").or_insert_with(|| json!({}));
        if !annotations.is_object() {
            *annotations = json!({});
        }
        if let Some(map) = annotations.as_object_mut() {
            map.insert(name.into(), Value::from(value));
        }
    }
}

/// Copies the Deployment's annotations (but not the skip list) onto a ReplicaSet.
fn copy_annotations(d: &Value, rs: &mut Value) {
    let Some(from) = d
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
    else {
        return;
    };
    let pairs: Vec<(String, String)> = from
        .iter()
        .filter(|(k, _)| !NOT_COPIED.contains(&k.as_str()))
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect();
    for (k, v) in pairs {
        set_annotation(rs, &k, &v);
    }
}

/// kube's `isScalingEvent`: an active ReplicaSet was sized for another replica count.
fn is_scaling_event(d: &Value, sets: &Sets) -> bool {
    let want = int_at(d, "/spec/replicas").to_string();
    sets.all.iter().any(|(_, rs)| {
        let desired = annotation(rs, DESIRED);
        spec_replicas(rs) > 0 && !desired.is_empty() && desired != want
    })
}

fn spec_replicas(rs: &Value) -> i64 {
    int_at(rs, "/spec/replicas")
}

fn status_field(rs: &Value, field: &str) -> i64 {
    int_at(rs, &alloc::format!("/status/{field}"))
}

/// The rollout's working set: all owned ReplicaSets and which one is new.
struct Sets {
    all: Vec<(ObjectKey, Value)>,
    new: Option<usize>,
}

impl Sets {
    fn new_rs(&self) -> Option<&Value> {
        self.new.and_then(|i| self.all.get(i)).map(|(_, v)| v)
    }

    fn old(&self) -> impl Iterator<Item = (usize, &Value)> {
        self.all
            .iter()
            .enumerate()
            .filter(move |(i, _)| Some(*i) != self.new)
            .map(|(i, (_, v))| (i, v))
    }

    fn sum(&self, f: impl Fn(&Value) -> i64) -> i64 {
        self.all.iter().map(|(_, v)| f(v)).sum()
    }
}

impl Cluster {
    /// The ReplicaSets a Deployment owns, after adopting orphans it selects and releasing owned
    /// ones it no longer selects.
    fn claim_replicasets(
        &mut self,
        now: UnixTime,
        d: &Value,
        ns: &str,
        selector: &crate::selector::LabelSelector,
        manage: bool,
    ) -> Vec<(ObjectKey, Value)> {
        let uid = j::string_at(d, "/metadata/uid");
        let mut keys: BTreeSet<ObjectKey> = self
            .controllers
            .graph
            .dependents_of(&uid)
            .into_iter()
            .filter(|k| k.resource == ResourceId::ReplicaSets && &*k.namespace == ns)
            .collect();
        keys.extend(
            self.store
                .range(ResourceId::ReplicaSets, Some(ns), None)
                .filter(|(_, o)| selector.matches(&*o.index))
                .map(|(k, _)| k.clone()),
        );
        let mut owned = Vec::new();
        for key in keys {
            let Some(mut rs) = self.load(&key) else {
                continue;
            };
            let matches = selector.matches(&crate::selector::labels_of(&rs));
            match controller_ref(&rs) {
                Some(r) if r.uid == uid => {
                    if matches {
                        owned.push((key, rs));
                    } else if manage {
                        super::gc::remove_owner_refs(&mut rs, core::slice::from_ref(&uid));
                        let _ = self.controller_update(now, &key, &mut rs);
                    }
                }
                None if matches && manage && !deleting(&rs) => {
                    if let Some(meta) = meta_mut(&mut rs) {
                        let refs = meta.entry("ownerReferences").or_insert_with(|| json!([]));
                        if let Some(list) = refs.as_array_mut() {
                            list.push(controller_ref_to(d, "apps/v1", "Deployment"));
                        }
                    }
                    if self.controller_update(now, &key, &mut rs).is_ok() {
                        owned.push((key, rs));
                    }
                }
                _ => {}
            }
        }
        owned
    }

    /// Rolls one Deployment toward its spec and writes its status.
    pub(crate) fn sync_deployment(&mut self, now: UnixTime, ns: &str, name: &str) {
        let key = ObjectKey::new(ResourceId::Deployments, ns, name);
        let Some(mut d) = self.load(&key) else {
            return;
        };
        let Some(selector) = workload_selector(&d).filter(|s| !s.is_empty()) else {
            return;
        };
        let manage = !deleting(&d);
        let all = self.claim_replicasets(now, &d, ns, &selector, manage);
        let template = without_hash(d.pointer("/spec/template").unwrap_or(&Value::Null));
        let new = all.iter().position(|(_, rs)| {
            without_hash(rs.pointer("/spec/template").unwrap_or(&Value::Null)) == template
        });
        let mut sets = Sets { all, new };
        let mut created_new = None;
        let mut failure = None;
        if manage {
            let paused = d.pointer("/spec/paused").and_then(Value::as_bool) == Some(true);
            let recreate = j::str_at(&d, "/spec/strategy/type") == "Recreate";
            if paused || is_scaling_event(&d, &sets) {
                // kube's `sync`: scale (proportionally across active sets), no rollout.
                self.scale_proportionally(now, &d, &mut sets);
            } else {
                if sets.new.is_none() && !recreate {
                    match self.create_new_rs(now, &d, &mut sets) {
                        Ok(name) => created_new = Some(name),
                        Err(e) => failure = Some(e.message()),
                    }
                } else if sets.new.is_some() {
                    self.sync_new_rs_annotations(now, &d, &mut sets);
                }
                if recreate {
                    match self.rollout_recreate(now, &d, &mut sets) {
                        Ok(Some(name)) => created_new = Some(name),
                        Ok(None) => {}
                        Err(e) => failure = Some(e.message()),
                    }
                } else {
                    self.rollout_rolling(now, &d, &mut sets);
                }
            }
            self.cleanup_old(now, &d, &sets);
            if let Some(rs) = sets.new_rs() {
                let revision = annotation(rs, REVISION).to_string();
                if !revision.is_empty() && annotation(&d, REVISION) != revision {
                    set_annotation(&mut d, REVISION, &revision);
                    let _ = self.controller_update(now, &key, &mut d);
                }
            }
        }
        self.write_deployment_status(now, &key, &d, &sets, created_new, failure);
    }

    /// Creates the ReplicaSet for the Deployment's current template.
    fn create_new_rs(
        &mut self,
        now: UnixTime,
        d: &Value,
        sets: &mut Sets,
    ) -> Result<String, Error> {
        let ns = j::string_at(d, "/metadata/namespace");
        let d_name = j::string_at(d, "/metadata/name");
        let collisions = int_at(d, "/status/collisionCount");
        let hash = template_hash(
            d.pointer("/spec/template").unwrap_or(&Value::Null),
            collisions,
        );
        let rs_name = alloc::format!("{d_name}-{hash}");
        let mut template = d.pointer("/spec/template").cloned().unwrap_or(json!({}));
        if let Some(meta) = meta_mut(&mut template) {
            let labels = meta.entry("labels").or_insert_with(|| json!({}));
            if let Some(map) = labels.as_object_mut() {
                map.insert(HASH_LABEL.into(), Value::from(hash.as_str()));
            }
        }
        let mut selector = d.pointer("/spec/selector").cloned().unwrap_or(json!({}));
        if let Some(map) = selector.as_object_mut() {
            let labels = map.entry("matchLabels").or_insert_with(|| json!({}));
            if let Some(labels) = labels.as_object_mut() {
                labels.insert(HASH_LABEL.into(), Value::from(hash.as_str()));
            }
        }
        let max_old = sets.old().map(|(_, rs)| revision_of(rs)).max().unwrap_or(0);
        let revision = max_old.saturating_add(1).to_string();
        let want = int_at(d, "/spec/replicas");
        let (surge, _) = surge_and_unavailable(d);
        let recreate = j::str_at(d, "/spec/strategy/type") == "Recreate";
        let replicas = if recreate {
            want
        } else {
            // kube's NewRSNewReplicas for a new set: what fits under replicas + maxSurge.
            let current = sets.sum(spec_replicas);
            (want.saturating_add(surge) - current).clamp(0, want)
        };
        let mut rs = json!({
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": rs_name,
                "labels": template.pointer("/metadata/labels").cloned().unwrap_or(json!({})),
                "ownerReferences": [controller_ref_to(d, "apps/v1", "Deployment")],
            },
            "spec": {
                "replicas": replicas,
                "minReadySeconds": int_at(d, "/spec/minReadySeconds"),
                "selector": selector,
                "template": template,
            },
        });
        copy_annotations(d, &mut rs);
        set_annotation(&mut rs, REVISION, &revision);
        set_annotation(&mut rs, DESIRED, &want.to_string());
        set_annotation(
            &mut rs,
            MAX_REPLICAS,
            &want.saturating_add(surge).to_string(),
        );
        match self.controller_create(now, ResourceId::ReplicaSets, &ns, &mut rs) {
            Ok(()) => {}
            Err(Error::AlreadyExists { .. } | Error::Internal(_)) => {
                // A ReplicaSet of that name with another template: a hash collision. kube
                // bumps `status.collisionCount` so the next hash differs.
                let key = ObjectKey::new(ResourceId::Deployments, &ns, &d_name);
                if let Some(mut current) = self.load(&key)
                    && let Some(map) = current.as_object_mut()
                {
                    let status = map.entry("status").or_insert_with(|| json!({}));
                    if let Some(status) = status.as_object_mut() {
                        status.insert("collisionCount".into(), Value::from(collisions + 1));
                    }
                    let _ = self.controller_update(now, &key, &mut current);
                }
                return Err(Error::Conflict {
                    resource: "replicasets.apps".into(),
                    name: rs_name,
                    detail: "hash collision".into(),
                });
            }
            Err(e) => return Err(e),
        }
        if replicas > 0 {
            self.record_event(
                now,
                &Involved::of(d),
                "Normal",
                "ScalingReplicaSet",
                &alloc::format!("Scaled up replica set {rs_name} from 0 to {replicas}"),
                COMPONENT,
            );
        }
        let key = ObjectKey::new(ResourceId::ReplicaSets, &ns, &rs_name);
        sets.all.push((key, rs));
        sets.new = Some(sets.all.len() - 1);
        Ok(rs_name)
    }

    /// Brings the new ReplicaSet's revision (and history) and copied annotations up to date.
    fn sync_new_rs_annotations(&mut self, now: UnixTime, d: &Value, sets: &mut Sets) {
        let Some(i) = sets.new else {
            return;
        };
        let max_old = sets.old().map(|(_, rs)| revision_of(rs)).max().unwrap_or(0);
        let Some((key, rs)) = sets.all.get_mut(i) else {
            return;
        };
        let mut next = rs.clone();
        copy_annotations(d, &mut next);
        let revision = revision_of(rs);
        let wanted = max_old.saturating_add(1);
        if revision < wanted {
            if revision > 0 {
                let history = annotation(rs, REVISION_HISTORY);
                let history = if history.is_empty() {
                    revision.to_string()
                } else {
                    alloc::format!("{history},{revision}")
                };
                set_annotation(&mut next, REVISION_HISTORY, &history);
            }
            set_annotation(&mut next, REVISION, &wanted.to_string());
        }
        if next != *rs {
            let key = key.clone();
            if self.controller_update(now, &key, &mut next).is_ok()
                && let Some((_, rs)) = sets.all.get_mut(i)
            {
                *rs = next;
            }
        }
    }

    /// Sets one ReplicaSet's replicas (and its desired/max annotations), with kube's event.
    fn scale_rs(&mut self, now: UnixTime, d: &Value, sets: &mut Sets, i: usize, to: i64) {
        let want = int_at(d, "/spec/replicas");
        let (surge, _) = surge_and_unavailable(d);
        let Some((key, rs)) = sets.all.get(i) else {
            return;
        };
        let from = spec_replicas(rs);
        let mut next = rs.clone();
        if let Some(spec) = next.get_mut("spec").and_then(Value::as_object_mut) {
            spec.insert("replicas".into(), Value::from(to));
        }
        set_annotation(&mut next, DESIRED, &want.to_string());
        set_annotation(
            &mut next,
            MAX_REPLICAS,
            &want.saturating_add(surge).to_string(),
        );
        if next == *rs {
            return;
        }
        let key = key.clone();
        if self.controller_update(now, &key, &mut next).is_err() {
            return;
        }
        if from != to {
            let direction = if to > from { "up" } else { "down" };
            self.record_event(
                now,
                &Involved::of(d),
                "Normal",
                "ScalingReplicaSet",
                &alloc::format!(
                    "Scaled {direction} replica set {} from {from} to {to}",
                    key.name
                ),
                COMPONENT,
            );
        }
        if let Some((_, rs)) = sets.all.get_mut(i) {
            *rs = next;
        }
    }

    /// kube's `scale`: one active set (or none: the newest) takes the whole count; a saturated
    /// new set sends the old ones to zero; otherwise a rolling Deployment's change in size is
    /// shared among active sets in proportion to their size, leftovers to the largest.
    fn scale_proportionally(&mut self, now: UnixTime, d: &Value, sets: &mut Sets) {
        let want = int_at(d, "/spec/replicas");
        let active: Vec<usize> = (0..sets.all.len())
            .filter(|i| {
                sets.all
                    .get(*i)
                    .is_some_and(|(_, rs)| spec_replicas(rs) > 0)
            })
            .collect();
        let single = match active.as_slice() {
            [] => sets.new.or_else(|| {
                (0..sets.all.len()).max_by(|a, b| {
                    let created = |i: &usize| {
                        sets.all
                            .get(*i)
                            .map(|(_, rs)| j::string_at(rs, "/metadata/creationTimestamp"))
                    };
                    created(a).cmp(&created(b))
                })
            }),
            [only] => Some(*only),
            _ => None,
        };
        if let Some(i) = single {
            // Also refreshes a stale desired-replicas annotation, which would otherwise keep
            // this a scaling event and hold the rollout.
            self.scale_rs(now, d, sets, i, want);
            return;
        }
        let saturated = sets.new_rs().is_some_and(|rs| {
            spec_replicas(rs) == want
                && annotation(rs, DESIRED) == want.to_string()
                && status_field(rs, "availableReplicas") == want
        });
        if saturated {
            let old: Vec<usize> = sets
                .old()
                .filter(|(_, rs)| spec_replicas(rs) > 0)
                .map(|(i, _)| i)
                .collect();
            for i in old {
                self.scale_rs(now, d, sets, i, 0);
            }
            return;
        }
        if j::str_at(d, "/spec/strategy/type") == "Recreate" {
            return;
        }
        let (surge, _) = surge_and_unavailable(d);
        let total: i64 = active
            .iter()
            .filter_map(|i| sets.all.get(*i))
            .map(|(_, rs)| spec_replicas(rs))
            .sum();
        let allowed = if want > 0 { want + surge } else { 0 };
        let to_add = allowed - total;
        let mut order: Vec<(usize, i64, String)> = active
            .iter()
            .filter_map(|i| {
                let (_, rs) = sets.all.get(*i)?;
                Some((
                    *i,
                    spec_replicas(rs),
                    j::string_at(rs, "/metadata/creationTimestamp"),
                ))
            })
            .collect();
        // Largest first; among equals the newest when growing, the oldest when shrinking.
        order.sort_by(|a, b| {
            b.1.cmp(&a.1).then(if to_add > 0 {
                b.2.cmp(&a.2)
            } else {
                a.2.cmp(&b.2)
            })
        });
        let mut added = 0i64;
        let mut sizes: Vec<(usize, i64)> = Vec::new();
        for (i, replicas, _) in &order {
            let proportion = if to_add == 0 || *replicas == 0 || to_add == added {
                0
            } else {
                let max = sets
                    .all
                    .get(*i)
                    .map(|(_, rs)| annotation(rs, MAX_REPLICAS).parse::<i64>().ok())
                    .unwrap_or_default()
                    .unwrap_or_else(|| int_at(d, "/status/replicas"))
                    .max(1);
                let fraction = if want == 0 {
                    -replicas
                } else {
                    // Rounded to nearest, halves away from zero (Go's math.Round).
                    let scaled = replicas.saturating_mul(want + surge);
                    let rounded = (2 * scaled + max).div_euclid(2 * max);
                    rounded - replicas
                };
                let allowed = to_add - added;
                if to_add > 0 {
                    fraction.min(allowed)
                } else {
                    fraction.max(allowed)
                }
            };
            added += proportion;
            sizes.push((*i, replicas + proportion));
        }
        if let Some(first) = sizes.first_mut() {
            first.1 = (first.1 + to_add - added).max(0);
        }
        for (i, size) in sizes {
            self.scale_rs(now, d, sets, i, size);
        }
    }

    /// One step of a rolling update (kube's `rolloutRolling`).
    fn rollout_rolling(&mut self, now: UnixTime, d: &Value, sets: &mut Sets) {
        let Some(new_i) = sets.new else {
            return;
        };
        let want = int_at(d, "/spec/replicas");
        let (surge, unavailable) = surge_and_unavailable(d);
        // Scale the new ReplicaSet up within maxSurge (or down to the spec).
        let new_replicas = sets.new_rs().map_or(0, spec_replicas);
        if new_replicas > want {
            self.scale_rs(now, d, sets, new_i, want);
        } else if new_replicas < want {
            let total = sets.sum(spec_replicas);
            let max_total = want.saturating_add(surge);
            if total < max_total {
                let up = (max_total - total).min(want - new_replicas);
                self.scale_rs(now, d, sets, new_i, new_replicas + up);
            }
        }
        // Scale old ReplicaSets down within maxUnavailable.
        let old_total: i64 = sets.old().map(|(_, rs)| spec_replicas(rs)).sum();
        if old_total == 0 {
            return;
        }
        let min_available = want - unavailable;
        let new_unavailable = sets.new_rs().map_or(0, |rs| {
            (spec_replicas(rs) - status_field(rs, "availableReplicas")).max(0)
        });
        let max_scaled_down = sets.sum(spec_replicas) - min_available - new_unavailable;
        if max_scaled_down <= 0 {
            return;
        }
        let mut old: Vec<(usize, String, i64, i64)> = sets
            .old()
            .map(|(i, rs)| {
                (
                    i,
                    j::string_at(rs, "/metadata/creationTimestamp"),
                    spec_replicas(rs),
                    status_field(rs, "availableReplicas"),
                )
            })
            .collect();
        old.sort_by(|a, b| a.1.cmp(&b.1));
        // First the unhealthy replicas of old sets, which cost no availability.
        let mut cleaned = 0;
        for (i, _, replicas, available) in &mut old {
            if cleaned >= max_scaled_down {
                break;
            }
            let unhealthy = *replicas - *available;
            if *replicas == 0 || unhealthy <= 0 {
                continue;
            }
            let down = (max_scaled_down - cleaned).min(unhealthy);
            self.scale_rs(now, d, sets, *i, *replicas - down);
            *replicas -= down;
            cleaned += down;
        }
        // Then available ones, as far as minAvailable allows.
        let available_total = sets.sum(|rs| status_field(rs, "availableReplicas"));
        if available_total <= min_available {
            return;
        }
        let total_down = available_total - min_available;
        let mut scaled = 0;
        for (i, _, replicas, _) in &old {
            if scaled >= total_down {
                break;
            }
            if *replicas == 0 {
                continue;
            }
            let down = (*replicas).min(total_down - scaled);
            self.scale_rs(now, d, sets, *i, *replicas - down);
            scaled += down;
        }
    }

    /// One step of a Recreate rollout: old sets to zero, wait for their pods, then the new set.
    fn rollout_recreate(
        &mut self,
        now: UnixTime,
        d: &Value,
        sets: &mut Sets,
    ) -> Result<Option<String>, Error> {
        let old: Vec<usize> = sets
            .old()
            .filter(|(_, rs)| spec_replicas(rs) > 0)
            .map(|(i, _)| i)
            .collect();
        if !old.is_empty() {
            for i in old {
                self.scale_rs(now, d, sets, i, 0);
            }
            return Ok(None);
        }
        // kube's `oldPodsRunning`: a pod of an old set that is not Succeeded or Failed still
        // runs, terminating or not.
        let old_pods: Vec<ObjectKey> = sets
            .old()
            .flat_map(|(_, rs)| {
                self.controllers
                    .graph
                    .dependents_of(j::str_at(rs, "/metadata/uid"))
            })
            .filter(|k| k.resource == ResourceId::Pods)
            .collect();
        let old_pods_remain = old_pods
            .iter()
            .any(|k| self.pod_view(k).is_some_and(|p| !p.terminal));
        if old_pods_remain {
            return Ok(None);
        }
        let mut created = None;
        if sets.new.is_none() {
            created = Some(self.create_new_rs(now, d, sets)?);
        } else {
            self.sync_new_rs_annotations(now, d, sets);
        }
        if let Some(i) = sets.new {
            let want = int_at(d, "/spec/replicas");
            self.scale_rs(now, d, sets, i, want);
        }
        Ok(created)
    }

    /// Deletes old, empty ReplicaSets beyond `revisionHistoryLimit`, oldest revision first.
    fn cleanup_old(&mut self, now: UnixTime, d: &Value, sets: &Sets) {
        let limit = d
            .pointer("/spec/revisionHistoryLimit")
            .and_then(Value::as_i64)
            .unwrap_or(10)
            .max(0);
        let mut empty: Vec<(u64, ObjectKey)> = sets
            .old()
            .filter(|(_, rs)| {
                spec_replicas(rs) == 0 && status_field(rs, "replicas") == 0 && !deleting(rs)
            })
            .filter_map(|(i, rs)| Some((revision_of(rs), sets.all.get(i)?.0.clone())))
            .collect();
        let excess =
            usize::try_from(i64::try_from(empty.len()).unwrap_or(i64::MAX) - limit).unwrap_or(0);
        if excess == 0 {
            return;
        }
        empty.sort();
        for (_, key) in empty.into_iter().take(excess) {
            if let Some(obj) = self.load(&key) {
                let background = DeleteOptions::with_propagation(Propagation::Background);
                let _ = self.controller_delete(now, &key, obj, &background);
            }
        }
    }

    /// kube's progress deadline: a rollout without progress for `progressDeadlineSeconds` gets
    /// `Progressing=False` with reason `ProgressDeadlineExceeded` (which ends `kubectl rollout
    /// status` with an error); until then a timer looks again when the deadline falls.
    fn check_progress_deadline(
        &mut self,
        now: UnixTime,
        key: &ObjectKey,
        d: &Value,
        new_name: &str,
        conditions: &mut Vec<Value>,
    ) {
        let Some(secs) = d
            .pointer("/spec/progressDeadlineSeconds")
            .and_then(Value::as_u64)
        else {
            return;
        };
        let Some(progressing) = conditions
            .iter()
            .find(|c| j::str_at(c, "/type") == "Progressing")
        else {
            return;
        };
        if j::str_at(progressing, "/status") != "True" {
            return;
        }
        let Some(since) = UnixTime::parse_rfc3339(j::str_at(progressing, "/lastUpdateTime")) else {
            return;
        };
        let due = since.plus_secs(secs);
        if due <= now {
            set_condition(
                conditions,
                now,
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                &alloc::format!("ReplicaSet \"{new_name}\" has timed out progressing."),
                true,
            );
        } else {
            self.controllers
                .requeue_at(due, super::Queue::Deployment, &key.namespace, &key.name);
        }
    }

    fn write_deployment_status(
        &mut self,
        now: UnixTime,
        key: &ObjectKey,
        d: &Value,
        sets: &Sets,
        created_new: Option<String>,
        failure: Option<String>,
    ) {
        let want = int_at(d, "/spec/replicas");
        let (_, max_unavailable) = surge_and_unavailable(d);
        let replicas = sets.sum(|rs| status_field(rs, "replicas"));
        let updated = sets.new_rs().map_or(0, |rs| status_field(rs, "replicas"));
        let ready = sets.sum(|rs| status_field(rs, "readyReplicas"));
        let available = sets.sum(|rs| status_field(rs, "availableReplicas"));
        let unavailable = (sets.sum(spec_replicas) - available).max(0);
        let old_status = d.get("status").cloned().unwrap_or(json!({}));
        let mut conditions: Vec<Value> = old_status
            .get("conditions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if available >= want - max_unavailable {
            set_condition(
                &mut conditions,
                now,
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
                true,
            );
        } else {
            set_condition(
                &mut conditions,
                now,
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
                true,
            );
        }
        let new_name = sets
            .new_rs()
            .map(|rs| j::string_at(rs, "/metadata/name"))
            .unwrap_or_default();
        let paused = d.pointer("/spec/paused").and_then(Value::as_bool) == Some(true);
        let complete =
            sets.new.is_some() && updated == want && replicas == want && available >= want;
        let progressed = int_at(&old_status, "/updatedReplicas") != updated
            || int_at(&old_status, "/readyReplicas") != ready
            || int_at(&old_status, "/availableReplicas") != available
            || int_at(&old_status, "/replicas") != replicas;
        let progressing_reason = conditions
            .iter()
            .find(|c| j::str_at(c, "/type") == "Progressing")
            .map(|c| j::string_at(c, "/reason"));
        let has_progressing = progressing_reason.is_some();
        if paused {
            set_condition(
                &mut conditions,
                now,
                "Progressing",
                "Unknown",
                "DeploymentPaused",
                "Deployment is paused",
                true,
            );
        } else if progressing_reason.as_deref() == Some("DeploymentPaused") {
            set_condition(
                &mut conditions,
                now,
                "Progressing",
                "Unknown",
                "DeploymentResumed",
                "Deployment is resumed",
                true,
            );
        } else if let Some(name) = &created_new {
            set_condition(
                &mut conditions,
                now,
                "Progressing",
                "True",
                "NewReplicaSetCreated",
                &alloc::format!("Created new replica set \"{name}\""),
                true,
            );
        } else if complete {
            set_condition(
                &mut conditions,
                now,
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                &alloc::format!("ReplicaSet \"{new_name}\" has successfully progressed."),
                true,
            );
        } else if !new_name.is_empty() && (progressed || !has_progressing) {
            let (reason, message) = if has_progressing {
                (
                    "ReplicaSetUpdated",
                    alloc::format!("ReplicaSet \"{new_name}\" is progressing."),
                )
            } else {
                (
                    "FoundNewReplicaSet",
                    alloc::format!("Found new replica set \"{new_name}\""),
                )
            };
            if !set_condition(
                &mut conditions,
                now,
                "Progressing",
                "True",
                reason,
                &message,
                true,
            ) {
                // Same words, new progress: kube moves lastUpdateTime, which the progress
                // deadline counts from.
                if let Some(c) = conditions
                    .iter_mut()
                    .find(|c| j::str_at(c, "/type") == "Progressing")
                    .and_then(Value::as_object_mut)
                {
                    c.insert("lastUpdateTime".into(), Value::from(now.rfc3339()));
                }
            }
        }
        if !paused && !complete {
            self.check_progress_deadline(now, key, d, &new_name, &mut conditions);
        }
        // A ReplicaSet that cannot create its pods shows on the Deployment too.
        let rs_failure = sets.all.iter().find_map(|(_, rs)| {
            rs.pointer("/status/conditions")
                .and_then(Value::as_array)?
                .iter()
                .find(|c| j::str_at(c, "/type") == "ReplicaFailure")
                .map(|c| (j::string_at(c, "/reason"), j::string_at(c, "/message")))
        });
        match (rs_failure, failure) {
            (Some((reason, message)), _) => {
                set_condition(
                    &mut conditions,
                    now,
                    "ReplicaFailure",
                    "True",
                    &reason,
                    &message,
                    true,
                );
            }
            (None, Some(message)) => {
                set_condition(
                    &mut conditions,
                    now,
                    "ReplicaFailure",
                    "True",
                    "FailedCreate",
                    &message,
                    true,
                );
            }
            (None, None) => {
                remove_condition(&mut conditions, "ReplicaFailure");
            }
        }
        let mut status = Map::new();
        status.insert(
            "observedGeneration".into(),
            Value::from(int_at(d, "/metadata/generation")),
        );
        for (field, value) in [
            ("replicas", replicas),
            ("updatedReplicas", updated),
            ("readyReplicas", ready),
            ("availableReplicas", available),
            ("unavailableReplicas", unavailable),
        ] {
            if value != 0 {
                status.insert(field.into(), Value::from(value));
            }
        }
        if let Some(c) = old_status.get("collisionCount") {
            status.insert("collisionCount".into(), c.clone());
        }
        if !conditions.is_empty() {
            status.insert("conditions".into(), Value::Array(conditions));
        }
        let status = Value::Object(status);
        let Some(mut current) = self.load(key) else {
            return;
        };
        if current.get("status") == Some(&status) {
            return;
        }
        if let Some(map) = current.as_object_mut() {
            map.insert("status".into(), status);
        }
        let _ = self.controller_update(now, key, &mut current);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fenceposts_round_like_kube() {
        // kube's ResolveFenceposts: surge rounds up, unavailable down; both 0 → unavailable 1.
        let cases = [
            (10, json!("25%"), json!("25%"), (3, 2)),
            (3, json!("25%"), json!("25%"), (1, 0)),
            (4, json!(0), json!(0), (0, 1)),
            (5, json!(2), json!("50%"), (2, 2)),
            (1, json!("100%"), json!("0%"), (1, 0)),
        ];
        for (replicas, surge, unavailable, want) in cases {
            let d = json!({"spec": {"replicas": replicas, "strategy": {"type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}}});
            assert_eq!(
                surge_and_unavailable(&d),
                want,
                "{replicas} {surge} {unavailable}"
            );
        }
        let recreate = json!({"spec": {"replicas": 3, "strategy": {"type": "Recreate"}}});
        assert_eq!(surge_and_unavailable(&recreate), (0, 0));
    }

    #[test]
    fn template_hash_is_stable_safe_and_ignores_its_label() {
        let t = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}});
        let h = template_hash(&t, 0);
        assert!(!h.is_empty() && h.len() <= 10);
        assert!(
            h.bytes()
                .all(|b| b"bcdfghjklmnpqrstvwxz2456789".contains(&b))
        );
        let mut labelled = t.clone();
        labelled["metadata"]["labels"][HASH_LABEL] = json!(h.clone());
        assert_eq!(template_hash(&labelled, 0), h);
        assert_ne!(template_hash(&t, 1), h, "collisionCount salts the hash");
        let mut other = t.clone();
        other["spec"]["containers"][0]["image"] = json!("nginx:1.27");
        assert_ne!(template_hash(&other, 0), h);
    }
}
