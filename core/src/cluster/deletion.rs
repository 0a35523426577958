//! Deleting one object as kube-apiserver's generic registry does (`Store.Delete` with
//! `rest.BeforeDelete` and the pod strategy's `CheckGracefulDelete`).
//!
//! A pod bound to a node and not terminal is deleted gracefully: it gets `deletionTimestamp` =
//! now + its grace period and `deletionGracePeriodSeconds`, and stays (watchers see MODIFIED)
//! until its kubelet confirms with grace 0 or someone force-deletes it; a later delete may only
//! shorten the period. Unbound and terminal pods, and grace 0, go at once (after a MODIFIED that
//! marks them, as kube writes it). Finalizers hold any object whatever its grace; the `orphan`
//! and `foregroundDeletion` finalizers follow the propagation policy.

use alloc::string::String;
use alloc::vec::Vec;
use serde_json::Value;

use super::{Cluster, WriteContext};
use crate::controllers::gc::{FOREGROUND, ORPHAN, Propagation, default_propagation, propagation};
use crate::controllers::{deleting, finalizers, meta_mut};
use crate::resource::ResourceId;
use crate::store::ObjectKey;
use crate::{Error, UnixTime, json as j};

/// The fields of kube's `metav1.DeleteOptions` that deletion reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DeleteOptions {
    /// `gracePeriodSeconds`; `None` leaves it to the object (a pod's
    /// `spec.terminationGracePeriodSeconds`). Negative means 1, as in kube.
    pub(crate) grace_period: Option<i64>,
    /// `propagationPolicy` (or the deprecated `orphanDependents`).
    pub(crate) propagation: Option<Propagation>,
    /// `orphanDependents` as given: `false` turns a pending deletion's answer into 202, as kube's
    /// handler does for old clients.
    pub(crate) orphan_dependents: Option<bool>,
    /// `preconditions.uid`.
    pub(crate) uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub(crate) resource_version: Option<String>,
    /// `dryRun: ["All"]` (or `?dryRun=All`): answer as if, change nothing.
    pub(crate) dry_run: bool,
}

impl DeleteOptions {
    /// Options that force deletion: grace 0 (PodGC, `kubectl delete --force --grace-period=0`).
    pub(crate) fn force() -> Self {
        Self {
            grace_period: Some(0),
            ..Self::default()
        }
    }

    /// Options with `policy` and nothing else, as kube's controllers send them.
    pub(crate) fn with_propagation(policy: Propagation) -> Self {
        Self {
            propagation: Some(policy),
            ..Self::default()
        }
    }

    /// The options a `DeleteOptions` body gives (`Null` when there is none), the query's
    /// values standing in where the body is empty, as kube's handler reads them. The body's
    /// `dryRun` values are checked here; `query.dry_run` was checked with the request.
    pub(crate) fn of_body(body: &Value, query: &DeleteQuery<'_>) -> Result<Self, Error> {
        let propagation = propagation(body, query.propagation)?;
        let grace_period = match body.get("gracePeriodSeconds") {
            Some(Value::Null) => None,
            Some(value) => Some(value.as_i64().ok_or_else(|| {
                Error::BadRequest(alloc::format!(
                    "DeleteOptions.gracePeriodSeconds must be an integer, not {value}"
                ))
            })?),
            None if body.is_null() => match query.grace_period {
                None | Some("") => None,
                Some(text) => Some(text.parse::<i64>().map_err(|_| {
                    Error::BadRequest(alloc::format!(
                        "invalid value for gracePeriodSeconds: {text:?}, expected an integer"
                    ))
                })?),
            },
            None => None,
        };
        // kube's ValidateDryRun on the body's values.
        let body_dry_run: Vec<&str> = body
            .get("dryRun")
            .and_then(Value::as_array)
            .map(|values| values.iter().map(|v| v.as_str().unwrap_or("")).collect())
            .unwrap_or_default();
        let dry_run =
            super::object::dry_run(body_dry_run.into_iter(), "DeleteOptions")? || query.dry_run;
        let text = |pointer: &str| {
            body.pointer(pointer)
                .and_then(Value::as_str)
                .map(String::from)
        };
        Ok(Self {
            grace_period,
            propagation,
            orphan_dependents: body.get("orphanDependents").and_then(Value::as_bool),
            uid: text("/preconditions/uid"),
            resource_version: text("/preconditions/resourceVersion"),
            dry_run,
        })
    }
}

/// What a DELETE request's query says about the deletion (`?propagationPolicy=`,
/// `?gracePeriodSeconds=`, `?dryRun=All`); none of it for a deletion the server decides.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct DeleteQuery<'a> {
    pub(crate) propagation: Option<&'a str>,
    pub(crate) grace_period: Option<&'a str>,
    pub(crate) dry_run: bool,
}

/// What one delete did.
#[derive(Debug)]
pub(crate) struct Deletion {
    /// The HTTP status: 200, or 202 for a pending deletion asked with `orphanDependents: false`.
    pub(crate) status: u16,
    /// The object as the deletion left it (its last state when it is gone).
    pub(crate) body: Vec<u8>,
    /// Whether the object left the store (or would have, under dry run).
    pub(crate) gone: bool,
}

/// How `rest.BeforeDelete` judged a delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grace {
    /// Graceful: mark with this deadline and period (0 deletes after the marking write).
    Period { deadline: UnixTime, seconds: i64 },
    /// Already being deleted gracefully, and not sooner: nothing changes.
    Pending,
    /// No graceful deletion (not a pod, or a pod already at grace 0).
    None,
}

/// kube's `BeforeDelete` for a pod (the only kind here with a graceful strategy): a first delete
/// starts the grace period (`CheckGracefulDelete`: the options' period, else the pod's
/// `terminationGracePeriodSeconds`, 0 for an unbound or terminal pod, 1 for a negative one); a
/// later one may only shorten it, keeping the same start.
fn before_delete(
    resource: ResourceId,
    obj: &Value,
    options: &DeleteOptions,
    now: UnixTime,
) -> Grace {
    if resource != ResourceId::Pods {
        return Grace::None;
    }
    let requested = options.grace_period.map(|g| if g < 0 { 1 } else { g });
    if deleting(obj) {
        let current = obj
            .pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_i64)
            .map(|g| if g < 0 { 1 } else { g });
        let Some(current) = current.filter(|g| *g != 0) else {
            return Grace::None;
        };
        return match requested {
            Some(period) if period < current => {
                let marked = UnixTime::parse_rfc3339(j::str_at(obj, "/metadata/deletionTimestamp"));
                let start = marked.map_or(now, |t| minus_secs(t, current));
                Grace::Period {
                    deadline: plus(start, period),
                    seconds: period,
                }
            }
            _ => Grace::Pending,
        };
    }
    let mut period = requested.unwrap_or_else(|| {
        obj.pointer("/spec/terminationGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(0)
    });
    if j::str_at(obj, "/spec/nodeName").is_empty()
        || matches!(j::str_at(obj, "/status/phase"), "Succeeded" | "Failed")
    {
        period = 0;
    }
    if period < 0 {
        period = 1;
    }
    Grace::Period {
        deadline: plus(now, period),
        seconds: period,
    }
}

fn plus(t: UnixTime, secs: i64) -> UnixTime {
    t.plus_secs(u64::try_from(secs).unwrap_or(0))
}

fn minus_secs(t: UnixTime, secs: i64) -> UnixTime {
    let nanos = u64::try_from(secs)
        .unwrap_or(0)
        .saturating_mul(1_000_000_000);
    UnixTime {
        nanos: t.nanos.saturating_sub(nanos),
    }
}

/// The finalizer list after kube's `deletionFinalizersForGarbageCollection`, or `None` when it
/// does not change: `orphan` and `foregroundDeletion` are dropped and added back as the options
/// (then the existing finalizers, then the resource's default policy) ask.
fn gc_finalizers(
    resource: ResourceId,
    obj: &Value,
    options: &DeleteOptions,
) -> Option<Vec<String>> {
    let existing = finalizers(obj);
    let explicit = |orphan: bool| match (options.orphan_dependents, options.propagation) {
        (Some(o), _) => Some(o == orphan),
        (None, Some(Propagation::Orphan)) => Some(orphan),
        (None, Some(Propagation::Foreground)) => Some(!orphan),
        (None, Some(Propagation::Background)) => Some(false),
        (None, None) => None,
    };
    let from_finalizers = |orphan: bool| {
        existing.iter().find_map(|f| match f.as_str() {
            ORPHAN => Some(orphan),
            FOREGROUND => Some(!orphan),
            _ => None,
        })
    };
    let orphan = explicit(true)
        .or_else(|| from_finalizers(true))
        .unwrap_or_else(|| default_propagation(resource) == Propagation::Orphan);
    let foreground = match (options.orphan_dependents, options.propagation) {
        (Some(_), _) => false,
        _ => explicit(false)
            .or_else(|| from_finalizers(false))
            .unwrap_or(false),
    };
    let mut list: Vec<String> = existing
        .iter()
        .filter(|f| *f != ORPHAN && *f != FOREGROUND)
        .cloned()
        .collect();
    if orphan {
        list.push(ORPHAN.into());
    }
    if foreground {
        list.push(FOREGROUND.into());
    }
    let same = list.len() == existing.len() && list.iter().all(|f| existing.contains(f));
    (!same).then_some(list)
}

/// Writes `list` as the finalizers of `obj` (none: the field goes).
pub(crate) fn set_finalizers(obj: &mut Value, list: &[String]) {
    if let Some(meta) = meta_mut(obj) {
        if list.is_empty() {
            meta.remove("finalizers");
        } else {
            meta.insert(
                "finalizers".into(),
                Value::Array(list.iter().map(|f| Value::from(f.as_str())).collect()),
            );
        }
    }
}

/// kube's `ShouldDeleteDuringUpdate`: a write that leaves no finalizers on an object whose
/// deletion was asked with no grace left (0 or unset) completes the deletion. A pod still in
/// its grace period stays for its kubelet.
pub(crate) fn completes_deletion(old: &Value, new: &Value) -> bool {
    deleting(old)
        && finalizers(new).is_empty()
        && old
            .pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_i64)
            .is_none_or(|g| g == 0)
}

/// kube's `markAsDeleting` for an object finalizers hold: `deletionTimestamp` now (unless it is
/// already earlier), `deletionGracePeriodSeconds` 0, and a generation bump the first time.
fn mark_as_deleting(obj: &mut Value, now: UnixTime) {
    let first = !deleting(obj);
    let generation = obj
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let later = UnixTime::parse_rfc3339(j::str_at(obj, "/metadata/deletionTimestamp"))
        .is_some_and(|t| t > now);
    let Some(meta) = meta_mut(obj) else {
        return;
    };
    if first && generation > 0 {
        meta.insert(
            "generation".into(),
            Value::from(generation.saturating_add(1)),
        );
    }
    if first || later {
        meta.insert("deletionTimestamp".into(), Value::from(now.rfc3339()));
    }
    meta.insert("deletionGracePeriodSeconds".into(), Value::from(0));
}

/// The kind-qualified name kube's `BeforeDelete` puts in its precondition conflicts
/// (`Pod`, `Deployment.apps`).
fn kind_qualified(resource: ResourceId) -> String {
    let rt = resource.info();
    if rt.group.is_empty() {
        String::from(rt.kind)
    } else {
        alloc::format!("{}.{}", rt.kind, rt.group)
    }
}

/// kube's precondition check on delete (`BeforeDelete`), with its wording.
pub(crate) fn check_preconditions(
    key: &ObjectKey,
    obj: &Value,
    options: &DeleteOptions,
) -> Result<(), Error> {
    let conflict = |detail: String| Error::Conflict {
        resource: kind_qualified(key.resource),
        name: String::from(&*key.name),
        detail,
    };
    let uid = j::str_at(obj, "/metadata/uid");
    if let Some(given) = options.uid.as_deref().filter(|u| *u != uid) {
        return Err(conflict(alloc::format!(
            "the UID in the precondition ({given}) does not match the UID in record ({uid}). The object might have been deleted and then recreated"
        )));
    }
    let rv = j::str_at(obj, "/metadata/resourceVersion");
    if let Some(given) = options.resource_version.as_deref().filter(|r| *r != rv) {
        return Err(conflict(alloc::format!(
            "the ResourceVersion in the precondition ({given}) does not match the ResourceVersion in record ({rv}). The object might have been modified"
        )));
    }
    Ok(())
}

impl Cluster {
    /// Deletes the object stored at `key` (its current state `obj`) with `options`, as
    /// kube-apiserver's registry does: checks the preconditions, starts or shortens a pod's
    /// graceful deletion, updates the garbage-collection finalizers, and removes the object
    /// unless a grace period or a finalizer holds it.
    pub(crate) fn delete_object(
        &mut self,
        ctx: &WriteContext,
        key: &ObjectKey,
        obj: Value,
        options: &DeleteOptions,
    ) -> Result<Deletion, Error> {
        let now = ctx.at;
        check_preconditions(key, &obj, options)?;
        let grace = before_delete(key.resource, &obj, options, now);
        let pending = |body: Vec<u8>| Deletion {
            status: if options.orphan_dependents == Some(false) {
                202
            } else {
                200
            },
            body,
            gone: false,
        };
        if grace == Grace::Pending {
            // kube: finalizers cannot change through DeleteOptions once a deletion is pending.
            return Ok(pending(j::to_vec(&obj)));
        }
        let changed_finalizers = gc_finalizers(key.resource, &obj, options);
        let held = match &changed_finalizers {
            Some(list) => !list.is_empty(),
            None => !finalizers(&obj).is_empty(),
        };
        let mut next = obj.clone();
        if let Some(list) = &changed_finalizers {
            set_finalizers(&mut next, list);
        }
        match grace {
            Grace::Period { deadline, seconds } => {
                if let Some(meta) = meta_mut(&mut next) {
                    meta.insert("deletionTimestamp".into(), Value::from(deadline.rfc3339()));
                    meta.insert("deletionGracePeriodSeconds".into(), Value::from(seconds));
                }
                let goes = !held && seconds == 0;
                if options.dry_run {
                    return Ok(Deletion {
                        status: 200,
                        body: j::to_vec(&next),
                        gone: goes,
                    });
                }
                let marked = self.write_existing(ctx, key, &mut next)?;
                if !goes {
                    return Ok(pending(marked));
                }
                let body = self.write_delete(ctx, key, &mut next)?;
                Ok(Deletion {
                    status: 200,
                    body,
                    gone: true,
                })
            }
            Grace::None | Grace::Pending if held => {
                mark_as_deleting(&mut next, now);
                if options.dry_run || next == obj {
                    return Ok(pending(j::to_vec(&next)));
                }
                let body = self.write_existing(ctx, key, &mut next)?;
                Ok(pending(body))
            }
            Grace::None | Grace::Pending => {
                let mut last = obj;
                let body = if options.dry_run {
                    j::to_vec(&last)
                } else {
                    self.write_delete(ctx, key, &mut last)?
                };
                Ok(Deletion {
                    status: 200,
                    body,
                    gone: true,
                })
            }
        }
    }
}
