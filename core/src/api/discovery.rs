//! Discovery documents: `/version`, `/api`, `/apis`, per-group and per-version resource lists,
//! and the aggregated `APIGroupDiscoveryList` form that saves kubectl every further call.

use serde_json::{Value, json};

/// `GET /version`, reporting a 1.32-compatible server.
pub fn version() -> Value {
    json!({"major": "1", "minor": "32", "gitVersion": "v1.32.0-nautilus"})
}

/// `GET /api` (`APIVersions`).
pub fn core_api_versions() -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})
}

/// `GET /apis` (`APIGroupList`).
pub fn api_group_list() -> Value {
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": []})
}

/// `GET /apis/{group}` (`APIGroup`).
pub fn api_group(_group: &str) -> Option<Value> {
    None
}

/// `GET /api/v1` or `/apis/{group}/{version}` (`APIResourceList`).
pub fn api_resource_list(_group: &str, _version: &str) -> Option<Value> {
    None
}

/// Aggregated discovery for `/api` (`core_group`) or `/apis`.
pub fn aggregated(_core_group: bool) -> Value {
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": []})
}
