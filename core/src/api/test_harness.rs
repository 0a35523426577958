//! The harness of the API tests that drive one cluster as the administrator: the cluster,
//! one request, and the causes of a refusal.

use alloc::string::String;
use alloc::vec::Vec;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{ApiRequest, Cluster, Method};
use crate::{Config, UnixTime};

/// The administrator's bearer token.
pub(crate) const ADMIN: &str = "admin";
/// The time of every call.
pub(crate) const NOW: UnixTime = UnixTime::from_secs(1_750_000_000);
/// What kubectl asks for a table.
pub(crate) const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";

/// A new cluster that knows the administrator's token.
pub(crate) fn server() -> Cluster {
    let config = Config {
        admin_token_sha256: Some(Sha256::digest(ADMIN.as_bytes()).into()),
        ..Config::default()
    };
    Cluster::new(config, [3; 32], NOW)
}

/// One request as the administrator at [`NOW`] (a PATCH as a merge patch): status and body.
pub(crate) fn call(
    s: &mut Cluster,
    method: Method,
    path: &str,
    accept: Option<&str>,
    body: &Value,
) -> (u16, Value) {
    let auth = alloc::format!("Bearer {ADMIN}");
    let bytes = serde_json::to_vec(body).unwrap();
    let mut req = ApiRequest::new(method, path);
    req.authorization = Some(&auth);
    req.accept = accept;
    req.content_type = Some(if method == Method::Patch {
        "application/merge-patch+json"
    } else {
        "application/json"
    });
    if !body.is_null() {
        req.body = &bytes;
    }
    let r = s.handle_request(NOW, &req).into_response().unwrap();
    (
        r.status,
        serde_json::from_slice(&r.body).unwrap_or(Value::Null),
    )
}

/// A refusal's causes as (field, message).
pub(crate) fn causes(answer: &Value) -> Vec<(String, String)> {
    answer["details"]["causes"]
        .as_array()
        .map(|c| {
            c.iter()
                .map(|c| {
                    (
                        String::from(c["field"].as_str().unwrap_or("")),
                        String::from(c["message"].as_str().unwrap_or("")),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}
