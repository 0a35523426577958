//! kube's Priority admission plugin (v1.32): a pod being created gets the priority and
//! preemption policy of its `priorityClassName`, or of the global default PriorityClass when it
//! names none (priority 0 and `PreemptLowerPriority` when there is no default); a class that
//! does not exist, or a priority or policy the pod sets that differs from the class's, is
//! refused in kube's words. An update keeps the priority the pod was created with. At most one
//! PriorityClass is the global default. Also the system classes kube-apiserver creates at start.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use serde_json::{Value, json};

use super::{Attempt, Operation};
use crate::resource::ResourceId;
use crate::store::Store;
use crate::{Error, json as j};

/// `scheduling.SystemPriorityClassPrefix`.
pub(crate) const SYSTEM_PREFIX: &str = "system-";
/// `scheduling.HighestUserDefinablePriority`.
pub(crate) const HIGHEST_USER_DEFINABLE: i64 = 1_000_000_000;
/// `scheduling.SystemCriticalPriority`.
const SYSTEM_CRITICAL: i64 = 2 * HIGHEST_USER_DEFINABLE;
/// `PreemptLowerPriority`, the default preemption policy.
const PREEMPT_LOWER: &str = "PreemptLowerPriority";

/// kube's `SystemPriorityClasses()`: (name, value, description), none a global default.
pub(crate) const SYSTEM_CLASSES: &[(&str, i64, &str)] = &[
    (
        "system-node-critical",
        SYSTEM_CRITICAL + 1000,
        "Used for system critical pods that must not be moved from their current node.",
    ),
    (
        "system-cluster-critical",
        SYSTEM_CRITICAL,
        "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.",
    ),
];

/// The system classes as kube-apiserver's post-start hook creates them.
pub(crate) fn system_classes() -> Vec<Value> {
    SYSTEM_CLASSES
        .iter()
        .map(|(name, value, description)| {
            json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                "metadata": {"name": name}, "value": value, "description": description})
        })
        .collect()
}

/// `IsKnownSystemPriorityClass`: `Ok` for a system class as kube defines it, else kube's error.
pub(crate) fn known_system_class(
    name: &str,
    value: i64,
    global_default: bool,
) -> Result<(), String> {
    match SYSTEM_CLASSES.iter().find(|(n, ..)| *n == name) {
        None => Err(format!("{name} is not a known system priority class")),
        Some((_, want, _)) if *want != value => {
            Err(format!("value of {name} PriorityClass must be {want}"))
        }
        Some(_) if global_default => Err(format!(
            "globalDefault of {name} PriorityClass must be false"
        )),
        Some(_) => Ok(()),
    }
}

fn forbidden(resource: &str, name: &str, detail: &str) -> Error {
    Error::Forbidden {
        resource: resource.into(),
        name: name.into(),
        message: format!("{resource} \"{name}\" is forbidden: {detail}"),
        causes: Vec::new(),
    }
}

/// The stored PriorityClasses, parsed.
fn classes(store: &Store) -> impl Iterator<Item = Value> + '_ {
    store
        .range(ResourceId::PriorityClasses, None, None)
        .filter_map(|(_, o)| serde_json::from_slice::<Value>(&o.json.bytes()).ok())
}

/// `getDefaultPriorityClass`: of the global defaults, the one with the lowest value.
fn default_class(store: &Store) -> Option<Value> {
    classes(store)
        .filter(|c| c.get("globalDefault").and_then(Value::as_bool) == Some(true))
        .min_by_key(|c| c.get("value").and_then(Value::as_i64).unwrap_or(0))
}

/// `admitPod` on create: resolves the pod's priority class into `spec.priority` and
/// `spec.preemptionPolicy`.
pub(crate) fn admit_pod(store: &Store, pod: &mut Value) -> Result<(), Error> {
    let name = j::string_at(pod, "/metadata/name");
    let class_name = j::string_at(pod, "/spec/priorityClassName");
    let (class_name, priority, policy) = if class_name.is_empty() {
        match default_class(store) {
            Some(class) => (
                j::string_at(&class, "/metadata/name"),
                class.get("value").and_then(Value::as_i64).unwrap_or(0),
                class.get("preemptionPolicy").cloned(),
            ),
            None => (String::new(), 0, Some(Value::from(PREEMPT_LOWER))),
        }
    } else {
        let key = crate::store::ObjectKey::new(ResourceId::PriorityClasses, "", &class_name);
        let class: Value = store
            .get(&key)
            .and_then(|o| serde_json::from_slice(&o.json.bytes()).ok())
            .ok_or_else(|| {
                forbidden(
                    "pods",
                    &name,
                    &format!("no PriorityClass with name {class_name} was found"),
                )
            })?;
        (
            class_name,
            class.get("value").and_then(Value::as_i64).unwrap_or(0),
            class.get("preemptionPolicy").cloned(),
        )
    };
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    if let Some(given) = spec.get("priority").and_then(Value::as_i64)
        && given != priority
    {
        return Err(forbidden(
            "pods",
            &name,
            &format!(
                "the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {priority} from the given PriorityClass name"
            ),
        ));
    }
    if let Some(policy) = policy.as_ref().and_then(Value::as_str) {
        if let Some(given) = spec.get("preemptionPolicy").and_then(Value::as_str)
            && given != policy
        {
            return Err(forbidden(
                "pods",
                &name,
                &format!(
                    "the string value of PreemptionPolicy ({given}) must not be provided in pod spec; priority admission controller computed {policy} from the given PriorityClass name"
                ),
            ));
        }
        spec.insert("preemptionPolicy".into(), Value::from(policy));
    }
    if !class_name.is_empty() {
        spec.insert("priorityClassName".into(), Value::from(class_name));
    }
    spec.insert("priority".into(), Value::from(priority));
    Ok(())
}

/// `admitPod` on update: a pod written without its priority or preemption policy keeps the
/// stored ones (they cannot change).
pub(crate) fn keep_pod_priority(pod: &mut Value, old: &Value) {
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    for field in ["priority", "preemptionPolicy"] {
        let missing = spec.get(field).is_none_or(Value::is_null);
        if let Some(stored) = old
            .pointer(&format!("/spec/{field}"))
            .filter(|v| !v.is_null())
            && missing
        {
            spec.insert(field.into(), stored.clone());
        }
    }
}

/// `validatePriorityClass`: a second global default is refused.
pub(crate) fn validate_class(attempt: &Attempt<'_>, store: &Store) -> Result<(), Error> {
    let new = match attempt.operation {
        Operation::Create(new) | Operation::Update { new, .. } => new,
        Operation::Delete(_) => return Ok(()),
    };
    if new.get("globalDefault").and_then(Value::as_bool) != Some(true) {
        return Ok(());
    }
    let Some(current) = default_class(store) else {
        return Ok(());
    };
    let current = j::string_at(&current, "/metadata/name");
    let update = matches!(attempt.operation, Operation::Update { .. });
    if !update || current != attempt.name {
        return Err(forbidden(
            "priorityclasses.scheduling.k8s.io",
            attempt.name,
            &format!(
                "PriorityClass {current} is already marked as default. Only one default can exist"
            ),
        ));
    }
    Ok(())
}
