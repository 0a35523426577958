//! Validation of ConfigMaps and Secrets as kube 1.32's `pkg/apis/core/validation` does it: data
//! keys, the 1 MiB size limit, the keys each Secret type requires, and immutability.

use alloc::format;
use alloc::string::String;
use serde_json::{Map, Value};

use super::causes::{Bad, Errs, FIELD_IMMUTABLE, s};
use super::names::config_map_key_errors;

const IMMUTABLE_SET: &str = "field is immutable when `immutable` is set";

/// kube's `core.MaxSecretSize` (also the ConfigMap limit).
pub(super) const MAX_SECRET_SIZE: usize = 1024 * 1024;

/// Decoded length of base64 `data` (what kube counts against the 1 MiB limit).
fn b64_len(v: &str) -> usize {
    let pad = v.bytes().rev().take_while(|&b| b == b'=').count();
    (v.len() / 4).saturating_mul(3).saturating_sub(pad)
        + match v.len() % 4 {
            2 => 1,
            3 => 2,
            _ => 0,
        }
}

fn validate_data_keys(e: &mut Errs, data: Option<&Map<String, Value>>, path: &str) {
    for k in data.into_iter().flat_map(|m| m.keys()) {
        e.invalid_each(&format!("{path}[{k}]"), k, config_map_key_errors(k));
    }
}

fn immutable_update(e: &mut Errs, obj: &Value, old: &Value, fields: &[&str]) {
    if old.get("immutable").and_then(Value::as_bool) != Some(true) {
        return;
    }
    if obj.get("immutable").and_then(Value::as_bool) != Some(true) {
        e.forbidden("immutable", IMMUTABLE_SET);
    }
    for f in fields {
        let n = obj
            .get(*f)
            .filter(|v| !v.is_null() && v.as_object().is_none_or(|m| !m.is_empty()));
        let o = old
            .get(*f)
            .filter(|v| !v.is_null() && v.as_object().is_none_or(|m| !m.is_empty()));
        if n != o {
            e.forbidden(f, IMMUTABLE_SET);
        }
    }
}

pub(super) fn validate_config_map(e: &mut Errs, obj: &Value, old: Option<&Value>) {
    let data = obj.get("data").and_then(Value::as_object);
    let binary = obj.get("binaryData").and_then(Value::as_object);
    let mut total: usize = 0;
    for (k, v) in data.into_iter().flatten() {
        let p = format!("data[{k}]");
        e.invalid_each(&p, k, config_map_key_errors(k));
        if binary.is_some_and(|b| b.contains_key(k)) {
            e.invalid(&p, Bad::Str(k), "duplicate of key present in binaryData");
        }
        total = total.saturating_add(v.as_str().map_or(0, str::len));
    }
    for (k, v) in binary.into_iter().flatten() {
        let p = format!("binaryData[{k}]");
        e.invalid_each(&p, k, config_map_key_errors(k));
        if data.is_some_and(|d| d.contains_key(k)) {
            e.invalid(&p, Bad::Str(k), "duplicate of key present in data");
        }
        total = total.saturating_add(v.as_str().map_or(0, b64_len));
    }
    if total > MAX_SECRET_SIZE {
        e.too_long("", MAX_SECRET_SIZE);
    }
    if let Some(old) = old {
        immutable_update(e, obj, old, &["data", "binaryData"]);
    }
}

pub(super) fn validate_secret(e: &mut Errs, obj: &Value, old: Option<&Value>) {
    let data = obj.get("data").and_then(Value::as_object);
    let string_data = obj.get("stringData").and_then(Value::as_object);
    validate_data_keys(e, data, "data");
    validate_data_keys(e, string_data, "data");
    let mut total: usize = 0;
    for v in data.into_iter().flat_map(|m| m.values()) {
        total = total.saturating_add(v.as_str().map_or(0, b64_len));
    }
    for v in string_data.into_iter().flat_map(|m| m.values()) {
        total = total.saturating_add(v.as_str().map_or(0, str::len));
    }
    if total > MAX_SECRET_SIZE {
        e.too_long("data", MAX_SECRET_SIZE);
    }
    // A key with a value (kube checks `len(secret.Data[k]) == 0` for these)...
    let has = |k: &str| {
        data.is_some_and(|m| {
            m.get(k)
                .and_then(Value::as_str)
                .is_some_and(|v| !v.is_empty())
        }) || string_data.is_some_and(|m| m.contains_key(k))
    };
    // ... or only the key (kube's `_, exists := secret.Data[k]` for TLS and basic auth).
    let exists = |k: &str| {
        data.is_some_and(|m| m.contains_key(k)) || string_data.is_some_and(|m| m.contains_key(k))
    };
    match s(obj, "type") {
        "kubernetes.io/service-account-token" => {
            let name = obj
                .pointer("/metadata/annotations/kubernetes.io~1service-account.name")
                .and_then(Value::as_str)
                .unwrap_or("");
            if name.is_empty() {
                e.required(
                    "metadata.annotations[kubernetes.io/service-account.name]",
                    "",
                );
            }
        }
        "kubernetes.io/basic-auth" if !exists("username") && !exists("password") => {
            e.required("data[username]", "");
            e.required("data[password]", "");
        }
        t => {
            let needed: &[&str] = match t {
                "kubernetes.io/dockercfg" => &[".dockercfg"],
                "kubernetes.io/dockerconfigjson" => &[".dockerconfigjson"],
                "kubernetes.io/ssh-auth" => &["ssh-privatekey"],
                "kubernetes.io/tls" => &["tls.crt", "tls.key"],
                _ => &[],
            };
            let present = |k: &str| {
                if t == "kubernetes.io/tls" {
                    exists(k)
                } else {
                    has(k)
                }
            };
            for k in needed.iter().filter(|k| !present(k)) {
                e.required(&format!("data[{k}]"), "");
            }
        }
    }
    if let Some(old) = old {
        let (new_t, old_t) = (s(obj, "type"), s(old, "type"));
        // An omitted type is defaulted to Opaque; only a stated change is an error.
        if !new_t.is_empty() && !old_t.is_empty() && new_t != old_t {
            e.invalid("type", Bad::Str(new_t), FIELD_IMMUTABLE);
        }
        immutable_update(e, obj, old, &["data"]);
    }
}
