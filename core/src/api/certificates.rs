//! The CertificateSigningRequest strategy of kube-apiserver 1.32
//! (`pkg/registry/certificates/certificates/strategy.go`): who asked is the server's to say, the
//! main resource changes only metadata, `status` changes the status but never the Approved and
//! Denied conditions it already has, `approval` changes only the conditions, and condition
//! timestamps are filled in. Signing is a signer controller's: it writes `status.certificate`
//! through `status` of an Approved request (none runs here yet).

use alloc::vec::Vec;
use serde_json::{Map, Value, json};

use crate::UnixTime;
use crate::auth::Identity;

/// `PrepareForCreate`: `spec.username`, `uid`, `groups` and `extra` are the requester's, never
/// the body's, and status starts empty.
pub(crate) fn prepare_create(obj: &mut Value, identity: &Identity) {
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    if let Some(spec) = map.get_mut("spec").and_then(Value::as_object_mut) {
        for key in ["username", "uid", "groups", "extra"] {
            spec.remove(key);
        }
        spec.insert("username".into(), Value::from(identity.username()));
        spec.insert("groups".into(), Value::from(identity.groups()));
        // A node's stake, as an authenticator's extra user information: a certificate issued
        // for this request authenticates the node against this stake until it registers.
        if let Identity::Node(node) = identity {
            spec.insert(
                "extra".into(),
                json!({"nautilus.io/stake-id": [crate::token::hex32(&node.stake_id)]}),
            );
        }
    }
    map.insert("status".into(), json!({}));
}

fn conditions(obj: &Value) -> Vec<Value> {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn set_conditions(obj: &mut Value, list: Vec<Value>) {
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    let status = map
        .entry("status")
        .or_insert_with(|| Value::Object(Map::new()));
    if !status.is_object() {
        *status = Value::Object(Map::new());
    }
    if let Some(status) = status.as_object_mut() {
        if list.is_empty() {
            status.remove("conditions");
        } else {
            status.insert("conditions".into(), Value::Array(list));
        }
    }
}

/// `populateConditionTimestamps`: a condition without `lastUpdateTime` gets now; without
/// `lastTransitionTime`, the old one of the same type and status, or now.
fn populate_timestamps(list: &mut [Value], old: &[Value], now: UnixTime) {
    let unset = |c: &Value, key: &str| c.get(key).is_none_or(|t| t.is_null() || t == "");
    for c in list.iter_mut() {
        let transition = old
            .iter()
            .find(|o| {
                o.get("type") == c.get("type")
                    && o.get("status") == c.get("status")
                    && !unset(o, "lastTransitionTime")
            })
            .and_then(|o| o.get("lastTransitionTime").cloned())
            .unwrap_or_else(|| Value::from(now.rfc3339()));
        let update = unset(c, "lastUpdateTime");
        let transitioned = unset(c, "lastTransitionTime");
        if let Some(map) = c.as_object_mut() {
            if update {
                map.insert("lastUpdateTime".into(), Value::from(now.rfc3339()));
            }
            if transitioned {
                map.insert("lastTransitionTime".into(), transition);
            }
        }
    }
}

/// `preserveConditionInstances`: when a status write keeps as many conditions of `kind` as
/// there were, the old ones stay exactly as they were.
fn preserve(list: &mut [Value], old: &[Value], kind: &str) {
    let of = |l: &[Value]| -> Vec<usize> {
        l.iter()
            .enumerate()
            .filter(|(_, c)| c.get("type").and_then(Value::as_str) == Some(kind))
            .map(|(i, _)| i)
            .collect()
    };
    let (old_at, new_at) = (of(old), of(list));
    if old_at.len() != new_at.len() {
        return;
    }
    for (o, n) in old_at.into_iter().zip(new_at) {
        if let (Some(was), Some(slot)) = (old.get(o), list.get_mut(n)) {
            *slot = was.clone();
        }
    }
}

/// `PrepareForUpdate` of the main resource, `status` and `approval`.
pub(crate) fn prepare_update(sub: Option<&str>, obj: &mut Value, old: &Value, now: UnixTime) {
    let old_conditions = conditions(old);
    let keep = |obj: &mut Value, key: &str| {
        if let Some(map) = obj.as_object_mut() {
            match old.get(key) {
                Some(v) => map.insert(key.into(), v.clone()),
                None => map.remove(key),
            };
        }
    };
    match sub {
        None => {
            keep(obj, "spec");
            keep(obj, "status");
        }
        Some("status") => {
            keep(obj, "spec");
            let mut list = conditions(obj);
            preserve(&mut list, &old_conditions, "Approved");
            preserve(&mut list, &old_conditions, "Denied");
            populate_timestamps(&mut list, &old_conditions, now);
            set_conditions(obj, list);
        }
        Some("approval") => {
            let mut list = conditions(obj);
            populate_timestamps(&mut list, &old_conditions, now);
            keep(obj, "spec");
            keep(obj, "status");
            set_conditions(obj, list);
        }
        Some(_) => {}
    }
}
