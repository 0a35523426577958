//! The CustomResourceDefinition controller: apiextensions-apiserver's naming, establishing and
//! finalizing controllers in one sync per CRD.
//!
//! - Names: the spec's names are accepted unless another definition of the group already holds
//!   one of them (`NamesAccepted`, with `PluralConflict`, `KindConflict`, ... and kube's
//!   `"x" is already in use` message); accepted names go to `status.acceptedNames`.
//! - Established: as soon as the names are accepted (a single API server needs no wait).
//! - Deletion: a CRD marked for deletion holds the `customresourcecleanup` finalizer; its
//!   objects are deleted as a `DELETE` would (their own finalizers hold them), and once none is
//!   left the finalizer goes and so does the CRD, with `Terminating` telling each step.

use alloc::string::String;
use alloc::vec::Vec;
use serde_json::{Value, json};

use super::gc::Propagation;
use super::{deleting, finalizers, set_condition};
use crate::cluster::Cluster;
use crate::cluster::deletion::DeleteOptions;
use crate::crd::CLEANUP_FINALIZER;
use crate::resource::ResourceId;
use crate::store::ObjectKey;
use crate::{UnixTime, json as j};

/// The names other definitions of `group` hold: (plural, singular and short names; kinds and
/// list kinds).
fn names_in_use(server: &Cluster, group: &str, except: &str) -> (Vec<String>, Vec<String>) {
    let mut resources = Vec::new();
    let mut kinds = Vec::new();
    for d in server.crds.definitions() {
        if d.group != group || d.name == except || !d.names_accepted {
            continue;
        }
        resources.push(d.plural.clone());
        resources.push(d.singular.clone());
        resources.extend(d.short_names.iter().cloned());
        kinds.push(d.kind.clone());
        kinds.push(d.list_kind.clone());
    }
    (resources, kinds)
}

/// kube's `equalToAcceptedOrFresh`.
fn fresh(requested: &str, accepted: &str, used: &[String]) -> Result<(), String> {
    if requested == accepted || !used.iter().any(|u| u == requested) {
        Ok(())
    } else {
        Err(alloc::format!("\"{requested}\" is already in use"))
    }
}

impl Cluster {
    /// Brings the CRD `name` up to date: its names and conditions, or its deletion.
    pub(crate) fn sync_crd(&mut self, now: UnixTime, name: &str) {
        let key = ObjectKey::new(ResourceId::CustomResourceDefinitions, "", name);
        let Some(mut crd) = self.load(&key) else {
            return;
        };
        if deleting(&crd) {
            if finalizers(&crd).iter().any(|f| f == CLEANUP_FINALIZER) {
                self.finalize_crd(now, &key, crd);
            }
            return;
        }
        let before = crd.clone();
        self.accept_names(now, &mut crd);
        if crd != before {
            // A failed write (the store refuses) is retried on the next change.
            let _ = self.controller_write(now, &key, &mut crd);
        }
    }

    /// The naming and establishing controllers' status for `crd`.
    fn accept_names(&self, now: UnixTime, crd: &mut Value) {
        let name = j::string_at(crd, "/metadata/name");
        let group = j::string_at(crd, "/spec/group");
        let (resources, kinds) = names_in_use(self, &group, &name);
        let requested = crd.pointer("/spec/names").cloned().unwrap_or(Value::Null);
        let accepted = crd
            .pointer("/status/acceptedNames")
            .cloned()
            .unwrap_or(Value::Null);
        let mut names = match accepted.as_object() {
            Some(map) => map.clone(),
            None => serde_json::Map::new(),
        };
        let mut failure: Option<(&'static str, String)> = None;
        let check = |names: &mut serde_json::Map<String, Value>,
                     field: &str,
                     used: &[String],
                     reason: &'static str,
                     failure: &mut Option<(&'static str, String)>| {
            let want = j::str_at(&requested, &alloc::format!("/{field}"));
            let have = j::str_at(&accepted, &alloc::format!("/{field}"));
            match fresh(want, have, used) {
                Ok(()) => {
                    names.insert(field.into(), Value::from(want));
                }
                Err(message) => *failure = Some((reason, message)),
            }
        };
        check(
            &mut names,
            "plural",
            &resources,
            "PluralConflict",
            &mut failure,
        );
        check(
            &mut names,
            "singular",
            &resources,
            "SingularConflict",
            &mut failure,
        );
        let short: Vec<&str> = requested
            .get("shortNames")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let held: Vec<&str> = accepted
            .get("shortNames")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if short != held {
            let clashes: Vec<String> = short
                .iter()
                .filter(|s| !held.contains(s))
                .filter_map(|s| fresh(s, "", &resources).err())
                .collect();
            if clashes.is_empty() {
                if short.is_empty() {
                    names.remove("shortNames");
                } else {
                    names.insert("shortNames".into(), json!(short));
                }
            } else {
                failure = Some(("ShortNamesConflict", clashes.join(", ")));
            }
        }
        check(&mut names, "kind", &kinds, "KindConflict", &mut failure);
        check(
            &mut names,
            "listKind",
            &kinds,
            "ListKindConflict",
            &mut failure,
        );
        match requested.get("categories") {
            Some(c) if c.as_array().is_some_and(|a| !a.is_empty()) => {
                names.insert("categories".into(), c.clone());
            }
            _ => {
                names.remove("categories");
            }
        }
        let accepted_ok = failure.is_none();
        let (status, reason, message) = match &failure {
            None => ("True", "NoConflicts", String::from("no conflicts found")),
            Some((reason, message)) => ("False", *reason, message.clone()),
        };
        let Some(map) = crd.as_object_mut() else {
            return;
        };
        let status_value = map.entry("status").or_insert_with(|| json!({}));
        let Some(status_map) = status_value.as_object_mut() else {
            return;
        };
        status_map.insert("acceptedNames".into(), Value::Object(names));
        let conditions = status_map
            .entry("conditions")
            .or_insert_with(|| Value::Array(Vec::new()));
        if !conditions.is_array() {
            *conditions = Value::Array(Vec::new());
        }
        let Some(list) = conditions.as_array_mut() else {
            return;
        };
        set_condition(list, now, "NamesAccepted", status, reason, &message, false);
        let established = list
            .iter()
            .any(|c| j::str_at(c, "/type") == "Established" && j::str_at(c, "/status") == "True");
        if accepted_ok {
            set_condition(
                list,
                now,
                "Established",
                "True",
                "InitialNamesAccepted",
                "the initial names have been accepted",
                false,
            );
        } else if !established {
            set_condition(
                list,
                now,
                "Established",
                "False",
                "NotAccepted",
                "not all names are accepted",
                false,
            );
        }
    }

    /// The finalizer's work for a CRD being deleted.
    fn finalize_crd(&mut self, now: UnixTime, key: &ObjectKey, mut crd: Value) {
        let established = self.crds.get(&key.name).is_some_and(|d| d.established);
        let id = self.crds.get(&key.name).map(|d| d.id);
        let progress = |crd: &mut Value, status: &str, reason: &str, message: &str| {
            if let Some(list) = crd
                .pointer_mut("/status/conditions")
                .and_then(Value::as_array_mut)
            {
                set_condition(list, now, "Terminating", status, reason, message, false);
            } else if let Some(status_map) = crd.get_mut("status").and_then(Value::as_object_mut) {
                let mut list = Vec::new();
                set_condition(
                    &mut list,
                    now,
                    "Terminating",
                    status,
                    reason,
                    message,
                    false,
                );
                status_map.insert("conditions".into(), Value::Array(list));
            }
        };
        let mut remaining = 0usize;
        if let (true, Some(id)) = (established, id) {
            let keys: Vec<ObjectKey> = self
                .store
                .range(ResourceId::Custom(id), None, None)
                .map(|(k, _)| k.clone())
                .collect();
            for object_key in keys {
                let Some(obj) = self.load(&object_key) else {
                    continue;
                };
                let marked = deleting(&obj);
                let background = DeleteOptions::with_propagation(Propagation::Background);
                match self.controller_delete(now, &object_key, obj, &background) {
                    Ok(d) if !d.gone => remaining += 1,
                    Ok(_) => {}
                    Err(_) if marked => remaining += 1,
                    Err(_) => remaining += 1,
                }
            }
        }
        if remaining > 0 {
            let before = crd.clone();
            progress(
                &mut crd,
                "True",
                "InstanceDeletionInProgress",
                "CustomResource deletion is in progress",
            );
            if crd != before {
                let _ = self.controller_write(now, key, &mut crd);
            }
            return;
        }
        if established {
            progress(
                &mut crd,
                "False",
                "InstanceDeletionCompleted",
                "removed all instances",
            );
        } else {
            progress(
                &mut crd,
                "False",
                "NeverEstablished",
                "resource was never established",
            );
        }
        if let Some(list) = crd
            .pointer_mut("/metadata/finalizers")
            .and_then(Value::as_array_mut)
        {
            list.retain(|f| f.as_str() != Some(CLEANUP_FINALIZER));
        }
        let done = finalizers(&crd).is_empty();
        let _ = if done {
            self.controller_remove(now, key, &mut crd)
        } else {
            self.controller_write(now, key, &mut crd)
        };
    }
}
