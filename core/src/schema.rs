//! Known fields of the served types, for `fieldValidation=Strict|Warn`.

use alloc::string::String;
use alloc::vec::Vec;
use serde_json::Value;

use crate::resource::ResourceId;

/// Paths (e.g. `spec.foo`) of fields in `obj` that its type does not define.
pub fn unknown_fields(_resource: ResourceId, _obj: &Value) -> Vec<String> {
    Vec::new()
}
