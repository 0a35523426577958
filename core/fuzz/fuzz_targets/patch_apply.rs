//! Patch application on its own: JSON merge patch, JSON patch (RFC 6902), strategic merge patch
//! and server-side apply (with the field manager's managedFields), and the field manager's
//! bookkeeping of an ordinary update, for each resource type's schema.
//!
//! Input: `control FF live object FF patch`, where `control` is [resource type or view,
//! operation, force, subresource]; objects and patches are JSON (the apply configuration may be YAML), parsed under the
//! server's default byte and depth budgets as request bodies are.
//!
//! Invariants: no panic, no unbounded allocation, and a refused JSON patch or strategic merge
//! patch leaves the object unchanged.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use nautilus_core::resource::{RESOURCES, VIEWS};
use nautilus_core::{Config, json, patch, yaml};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let parts = common::fields(data, 3);
    let control = common::field(&parts, 0);
    let byte = |i: usize| control.get(i).copied().unwrap_or(0);
    let config = Config::default();
    let parse = |bytes: &[u8]| -> Option<Value> {
        json::parse_body(bytes, config.max_body_bytes, config.max_json_depth)
            .ok()
            .or_else(|| yaml::to_json(bytes, config.max_body_bytes, config.max_json_depth).ok())
    };
    // A resource type, or a view served over one's storage (its writes record managedFields in
    // the view's version).
    let rows = RESOURCES.len() + VIEWS.len();
    let Some(row) = RESOURCES
        .iter()
        .chain(VIEWS)
        .nth(usize::from(byte(0)) % rows)
    else {
        return;
    };
    let (resource, view) = (row.id, row.view);
    let live = parse(common::field(&parts, 1));
    let Some(patch_value) = parse(common::field(&parts, 2)) else {
        return;
    };
    let mut target = live.clone().unwrap_or(Value::Null);
    match byte(1) % 5 {
        0 => patch::merge_patch(&mut target, &patch_value),
        1 => {
            let before = target.clone();
            if patch::json_patch(&mut target, &patch_value).is_err() {
                assert_eq!(target, before, "a refused JSON patch changed the object");
            }
        }
        2 => {
            let before = target.clone();
            if patch::strategic_merge(resource, &mut target, &patch_value).is_err() {
                assert_eq!(
                    target, before,
                    "a refused strategic merge patch changed the object"
                );
            }
        }
        3 => {
            let subresource = (byte(3) & 1 == 1).then_some("status");
            let _ = patch::server_side_apply(
                resource,
                view,
                subresource,
                live.as_ref(),
                &patch_value,
                "fuzz-manager",
                byte(2) & 1 == 1,
                common::NOW,
            );
        }
        _ => {
            let mut new = patch_value;
            patch::record_update(
                resource,
                view,
                live.as_ref(),
                &mut new,
                "fuzz-manager",
                None,
                common::NOW,
            );
        }
    }
});
