//! Patch formats kube-apiserver accepts: JSON merge (RFC 7386), JSON patch (RFC 6902), strategic
//! merge, and server-side apply with `managedFields`.

use serde_json::Value;

use crate::resource::ResourceId;
use crate::{Error, UnixTime};

/// Applies an RFC 7386 merge patch in place (`null` removes a key).
pub fn merge_patch(_target: &mut Value, _patch: &Value) {}

/// Applies an RFC 6902 JSON patch in place; a failing operation leaves `target` unchanged.
pub fn json_patch(_target: &mut Value, _ops: &Value) -> Result<(), Error> {
    Err(Error::BadRequest("json patch is not supported yet".into()))
}

/// Applies a strategic merge patch for `resource` in place.
pub fn strategic_merge(
    _resource: ResourceId,
    _target: &mut Value,
    _patch: &Value,
) -> Result<(), Error> {
    Err(Error::BadRequest(
        "strategic merge patch is not supported yet".into(),
    ))
}

/// Server-side apply: merges `applied` into `live` (or creates from it) as `manager`.
pub fn server_side_apply(
    _resource: ResourceId,
    _live: Option<&Value>,
    _applied: &Value,
    _manager: &str,
    _force: bool,
    _now: UnixTime,
) -> Result<Value, Error> {
    Err(Error::BadRequest(
        "server-side apply is not supported yet".into(),
    ))
}

/// Records a non-apply write by `manager` in `new`'s `managedFields`.
pub fn record_update(
    _resource: ResourceId,
    _old: Option<&Value>,
    _new: &mut Value,
    _manager: &str,
    _subresource: Option<&str>,
    _now: UnixTime,
) {
}
