//! The request-body decoders on their own: protobuf (each served type's envelope and message,
//! and DeleteOptions), YAML (kube's scalar rules, with the byte and depth budgets) and JSON (the
//! depth check, parsing and duplicate-key detection).
//!
//! Input: one byte choosing the protobuf resource type, then the body.
//!
//! Invariants: no panic, no unbounded allocation, also when what decoded is encoded again.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use nautilus_core::resource::RESOURCES;
use nautilus_core::{Config, json, protobuf, yaml};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let config = Config::default();
    let resource = RESOURCES[usize::from(pick) % RESOURCES.len()].id;
    if let Ok(value) = protobuf::decode(resource, body) {
        // What decodes can be encoded again (responses in protobuf take this path).
        let api_version = value
            .get("apiVersion")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        let kind = value
            .get("kind")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        if let Some(encoded) = protobuf::encode::object(api_version, kind, &value) {
            let _ = protobuf::decode(resource, &encoded);
        }
    }
    let _ = protobuf::decode_delete_options(body);
    let _ = yaml::to_json(body, config.max_body_bytes, config.max_json_depth);
    let _ = json::parse_body(body, config.max_body_bytes, config.max_json_depth);
    let _ = json::duplicate_keys(body, 16);
});
