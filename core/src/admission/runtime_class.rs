//! RuntimeClass admission (kube's `RuntimeClass` plugin) on pod creation: a pod naming a
//! RuntimeClass that does not exist is refused; the class's `overhead.podFixed` becomes the
//! pod's `spec.overhead` and its `scheduling` merges into the pod's node selector and
//! tolerations. A pod that sets an overhead the class does not define is refused.

use alloc::format;
use serde_json::{Map, Value};

use crate::resource::ResourceId;
use crate::store::{ObjectKey, Store};
use crate::{Error, json as j};

fn forbidden(name: &str, detail: &str) -> Error {
    Error::Forbidden {
        resource: "pods".into(),
        name: name.into(),
        message: format!("pods \"{name}\" is forbidden: {detail}"),
        causes: alloc::vec::Vec::new(),
    }
}

/// Whether two resource lists hold the same quantities (`apiequality.Semantic`).
fn same_quantities(a: &Value, b: &Value) -> bool {
    let list = |v: &Value| crate::quota::list_from_json(Some(v));
    let (a, b) = (list(a), list(b));
    a.len() == b.len() && a.iter().all(|(k, q)| b.get(k) == Some(q))
}

/// Admits and mutates a pod being created (`Admit` then `Validate`).
pub(crate) fn admit(store: &Store, pod: &mut Value) -> Result<(), Error> {
    let name = j::string_at(pod, "/metadata/name");
    let class_name = j::string_at(pod, "/spec/runtimeClassName");
    let class = if class_name.is_empty() {
        None
    } else {
        let key = ObjectKey::new(ResourceId::RuntimeClasses, "", &class_name);
        let object = store.get(&key).ok_or_else(|| {
            forbidden(
                &name,
                &format!(
                    "pod rejected: RuntimeClass {} not found",
                    crate::gostr::quote(&class_name)
                ),
            )
        })?;
        Some(
            serde_json::from_slice::<Value>(&object.json.bytes())
                .map_err(|e| Error::Internal(format!("stored object is not JSON: {e}")))?,
        )
    };
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    let fixed = class
        .as_ref()
        .and_then(|c| c.pointer("/overhead/podFixed"))
        .filter(|v| !v.is_null());
    let pod_overhead = spec.get("overhead").filter(|v| !v.is_null());
    match (fixed, pod_overhead) {
        (Some(fixed), Some(given))
            if given.as_object().is_some_and(|m| !m.is_empty())
                && !same_quantities(fixed, given) =>
        {
            return Err(forbidden(
                &name,
                "pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead",
            ));
        }
        (Some(fixed), _) => {
            spec.insert("overhead".into(), fixed.clone());
        }
        (None, Some(_)) => {
            return Err(forbidden(
                &name,
                "pod rejected: Pod Overhead set without corresponding RuntimeClass defined Overhead",
            ));
        }
        (None, None) => {}
    }
    let Some(scheduling) = class
        .as_ref()
        .and_then(|c| c.get("scheduling"))
        .filter(|v| !v.is_null())
    else {
        return Ok(());
    };
    if let Some(wanted) = scheduling.get("nodeSelector").and_then(Value::as_object) {
        let selector = spec
            .entry("nodeSelector")
            .or_insert_with(|| Value::Object(Map::new()));
        if selector.is_null() {
            *selector = Value::Object(Map::new());
        }
        if let Some(selector) = selector.as_object_mut() {
            for (key, value) in wanted {
                if let Some(existing) = selector.get(key)
                    && existing != value
                {
                    return Err(forbidden(
                        &name,
                        &format!(
                            "conflict: runtimeClass.scheduling.nodeSelector[{key}] = {}; pod.spec.nodeSelector[{key}] = {}",
                            value.as_str().unwrap_or(""),
                            existing.as_str().unwrap_or("")
                        ),
                    ));
                }
                selector.insert(key.clone(), value.clone());
            }
        }
    }
    let extra = j::array_at(scheduling, "/tolerations");
    if !extra.is_empty() {
        let list = spec
            .entry("tolerations")
            .or_insert_with(|| Value::Array(alloc::vec::Vec::new()));
        if list.is_null() {
            *list = Value::Array(alloc::vec::Vec::new());
        }
        if let Some(list) = list.as_array_mut() {
            // `MergeTolerations`: add those not already present.
            for t in extra {
                if !list.contains(t) {
                    list.push(t.clone());
                }
            }
        }
    }
    Ok(())
}
