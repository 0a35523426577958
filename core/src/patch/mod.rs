//! Patch formats kube-apiserver accepts: JSON merge (RFC 7386), JSON patch (RFC 6902), strategic
//! merge, and server-side apply with `managedFields`. Every function is atomic (on error the
//! target is unchanged), bounded by its input, and panic-free.
//!
//! Limitations (kube-apiserver does more): list semantics come from a static table of the served
//! types (`schema`), not from OpenAPI; apply knows one API version per type, so no conversion of
//! managed fields; no `before-first-apply` manager for objects that never had managedFields; no
//! migration of `kubectl-client-side-apply` ownership on the first server-side apply.

mod fields;
mod json_patch;
mod schema;
mod strategic;

use alloc::string::String;
use serde_json::{Map, Value};

use crate::resource::ResourceId;
use crate::{Error, UnixTime};

pub use json_patch::{MAX_COPIED_BYTES, MAX_DEPTH, MAX_OPERATIONS};

/// kube-apiserver answers every failed JSON-patch operation (and the 422 strategic-merge errors)
/// with `NewGenericServerResponse(422, ...)`, whose message drops the detail. `Error` has no
/// variant with a free message and code 422, so the detail travels as one cause of `Invalid`.
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
/// Returns the new object with `metadata.managedFields` updated: `manager`'s `Apply` entry owns
/// exactly the fields `applied` names; fields it applied before and omits now are removed unless
/// another manager owns them. Changing a field another manager owns is 409 Conflict (message in
/// `detail`, worded as kube-apiserver words it) unless `force`, which takes the ownership over.
pub fn server_side_apply(
    resource: ResourceId,
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    now: UnixTime,
) -> Result<Value, Error> {
    fields::apply(resource, live, applied, manager, force, now)
}

/// Records a non-apply write by `manager` in `new`'s `managedFields`.
///
/// The fields that differ from `old` (all of them on create) become owned by
/// (`manager`, `Update`, `subresource`) and leave every other entry; entries left empty are
/// dropped; at most ten `Update` entries are kept (older ones merge into `ancient-changes`).
pub fn record_update(
    resource: ResourceId,
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    subresource: Option<&str>,
    now: UnixTime,
) {
    fields::record_update(resource, old, new, manager, subresource, now);
}

#[cfg(test)]
mod tests;
