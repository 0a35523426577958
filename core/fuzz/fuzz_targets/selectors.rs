//! Label and field selector parsing (the `labelSelector` / `fieldSelector` query parameters and
//! the JSON `LabelSelector` of objects), matching what parsed against an object's labels and
//! selectable fields, and printing the JSON `LabelSelector` as Go's `Selector.String()` does.
//!
//! Input: `control FF selector text FF object JSON`, where `control` is [resource type].
//!
//! Invariants: no panic, no unbounded allocation.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use nautilus_core::resource::RESOURCES;
use nautilus_core::selector::{self, FieldSelector, LabelSelector};

fuzz_target!(|data: &[u8]| {
    let parts = common::fields(data, 3);
    let control = common::field(&parts, 0);
    let resource =
        RESOURCES[usize::from(control.first().copied().unwrap_or(0)) % RESOURCES.len()].id;
    let text = common::text(&parts, 1);
    let object: serde_json::Value =
        serde_json::from_slice(common::field(&parts, 2)).unwrap_or(serde_json::Value::Null);
    let labels = selector::labels_of(&object);
    let fields = selector::selectable_fields(resource, &object);
    if let Ok(parsed) = LabelSelector::parse(&text) {
        let _ = parsed.matches(&labels);
        let _ = parsed.requirements();
    }
    if let Ok(parsed) = FieldSelector::parse(resource, &text) {
        let _ = parsed.matches(&fields);
        let _ = parsed.required_value("metadata.name");
    }
    if let Ok(parsed) = LabelSelector::from_json(&object) {
        let _ = parsed.matches(&labels);
    }
    let _ = selector::label_selector_string(Some(&object));
});
