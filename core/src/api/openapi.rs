//! `/openapi/v3`: enough for `kubectl create/apply` with default validation to hand field
//! validation to the server.

use serde_json::{Value, json};

/// `GET /openapi/v3`: the index of group-version documents.
pub fn v3_index() -> Value {
    json!({"paths": {}})
}

/// `GET /openapi/v3/{path}` for `api/v1` or `apis/{group}/{version}`.
pub fn v3_document(_group_version_path: &str) -> Option<Value> {
    None
}
