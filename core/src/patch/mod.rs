//! Patch formats kube-apiserver accepts: JSON merge (RFC 7386), JSON patch (RFC 6902), strategic
//! merge, and server-side apply with `managedFields`. Every function is atomic (on error the
//! target is unchanged), bounded by its input, and panic-free.
//!
//! Ownership is tracked per version as kube tracks it: a write through a view of a kind
//! ([`crate::resource::VIEWS`]) records its manager in the view's version and field paths, and
//! other managers are compared in their own versions (converted within one API group, dropped
//! across groups, as kube-apiserver cannot convert there either).
//!
//! Limitations (kube-apiserver does more): list and map semantics come from a static table of
//! the served types (`schema`), not from OpenAPI, and the managed fields of a custom resource's
//! other versions are dropped rather than converted.

mod fieldmanager;
mod fieldpath;
mod json_patch;
mod managed;
mod schema;
mod strategic;
mod typed;

use alloc::string::String;
use serde_json::{Map, Value};

use crate::resource::{ResourceId, View};
use crate::{Error, UnixTime};

pub use json_patch::{MAX_COPIED_BYTES, MAX_DEPTH, MAX_OPERATIONS};

/// kube-apiserver answers every failed JSON-patch operation (and the 422 strategic-merge errors)
/// with `NewGenericServerResponse(422, ...)`, which drops the detail from the answer.
pub(crate) fn unprocessable(detail: String) -> Error {
    Error::Unprocessable(detail)
}

/// Nesting depth of `v` (a scalar is 0), counted no further than `limit + 1`.
pub(crate) fn depth(v: &Value, limit: usize) -> usize {
    if limit == 0 {
        return usize::from(v.is_array() || v.is_object());
    }
    match v {
        Value::Array(items) => 1 + items.iter().map(|i| depth(i, limit - 1)).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(|i| depth(i, limit - 1)).max().unwrap_or(0),
        _ => 0,
    }
}

/// Applies an RFC 7386 merge patch in place (`null` removes a key).
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(map) = target {
        for (k, v) in patch {
            if v.is_null() {
                map.remove(k);
            } else {
                merge_patch(map.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

/// Applies an RFC 6902 JSON patch in place; a failing operation leaves `target` unchanged.
///
/// A body that is not an array of objects is 400 BadRequest; more than [`MAX_OPERATIONS`]
/// operations is 413; a failing operation (missing path, failed `test`, unknown `op`) is 422
/// Invalid, as kube-apiserver's `NewGenericServerResponse(422, ...)`.
pub fn json_patch(target: &mut Value, ops: &Value) -> Result<(), Error> {
    json_patch::apply(target, ops)
}

/// Applies a strategic merge patch for `resource` in place.
///
/// Lists merge by the Kubernetes `patchMergeKey` of their field, or are replaced when the field
/// has none; the directives `$patch`, `$setElementOrder/`, `$retainKeys` and
/// `$deleteFromPrimitiveList/` apply. A malformed directive is 400; `$retainKeys` not matching
/// the patch and lists of lists are 422, as in kube-apiserver.
pub fn strategic_merge(
    resource: ResourceId,
    target: &mut Value,
    patch: &Value,
) -> Result<(), Error> {
    let Some(patch) = patch.as_object() else {
        return Err(Error::BadRequest(
            "a strategic merge patch must be a JSON object".into(),
        ));
    };
    let empty = Map::new();
    let original = target.as_object().unwrap_or(&empty);
    let merged = strategic::merge_map(original, patch, schema::Ctx::Root(resource))?;
    *target = Value::Object(merged);
    Ok(())
}

/// Server-side apply: merges `applied` into `live` (or creates from it) as `manager`.
///
/// `live` and the answer are in the stored shape; `applied` is in the shape of `view` when the
/// request came through one (kube applies in the request's version), else the stored kind's.
///
/// Returns the new object with `metadata.managedFields` updated as kube-apiserver 1.32 does:
/// `manager`'s `Apply` entry owns exactly the fields `applied` names; fields it applied before,
/// omits now and nobody else owns are removed; changing a field another manager owns is 409
/// Conflict with kube's message and one `FieldManagerConflict` cause per field, unless `force`,
/// which takes the fields over. A configuration of another kind is 400, one that does not fit
/// its type (a keyed item without its key, a repeated key) kube's unclassified 500.
#[allow(clippy::too_many_arguments)]
pub fn server_side_apply(
    resource: ResourceId,
    view: Option<View>,
    subresource: Option<&str>,
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    now: UnixTime,
) -> Result<Value, Error> {
    let written = fieldmanager::Kind::new(resource, view);
    fieldmanager::apply(written, subresource, live, applied, manager, force, now)
}

pub(crate) use crate::gostr::is_printable;

/// Records a non-apply write by `manager` (create when `old` is `None`) in `new`'s
/// `managedFields`, as kube-apiserver's field manager does.
///
/// The fields the write added or changed become owned by (`manager`, `Update`, `subresource`)
/// and leave every other entry, as do the fields it removed; entries left empty go; at most ten
/// `Update` entries are kept (the oldest merge into `ancient-changes`). A client may replace the
/// list by sending one, clear it with `[]` or `[{}]`; an object without ownership is not tracked
/// again until it is applied to. On the `scale` subresource, a changed `spec.replicas` moves to
/// the writer's `scale` entry. `old` and `new` are in the stored shape; `view` is the view the
/// write came through, whose version and field paths the entry records.
pub fn record_update(
    resource: ResourceId,
    view: Option<View>,
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    subresource: Option<&str>,
    now: UnixTime,
) {
    let written = fieldmanager::Kind::new(resource, view);
    fieldmanager::record_update(written, old, new, manager, subresource, now);
}

#[cfg(test)]
mod fieldmanager_tests;
#[cfg(test)]
mod tests;
