//! Small facts about stored objects that every writer needs (the API, controllers, the
//! scheduler): their index, their metadata, and how resources are named in messages.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde_json::{Map, Value};

use crate::Error;
use crate::resource::{ResourceId, ResourceType};
use crate::selector;
use crate::store::{ObjectIndex, StoredObject};

/// Group-qualified plural for messages (`pods`, `deployments.apps`).
pub(crate) fn qualified(rt: &ResourceType<'_>) -> String {
    if rt.group.is_empty() {
        rt.plural.to_string()
    } else {
        alloc::format!("{}.{}", rt.plural, rt.group)
    }
}

/// The index of one object version (the name and namespace are in its key).
pub(crate) fn index_of(resource: ResourceId, obj: &Value) -> ObjectIndex {
    let labels = selector::labels_of(obj);
    let fields = selector::selectable_fields(resource, obj);
    ObjectIndex::new(
        labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        fields
            .iter()
            .filter(|(f, _)| *f != "metadata.name" && *f != "metadata.namespace")
            .map(|(f, v)| (*f, v.as_str())),
    )
}

/// The `metadata` map of `obj`, made an empty map first if it is missing or not a map.
pub(crate) fn metadata_mut(obj: &mut Value) -> Option<&mut Map<String, Value>> {
    let map = obj.as_object_mut()?;
    if !map.get("metadata").is_some_and(Value::is_object) {
        map.insert("metadata".into(), Value::Object(Map::new()));
    }
    map.get_mut("metadata").and_then(Value::as_object_mut)
}

/// Sets `metadata.<key>`.
pub(crate) fn set_meta(obj: &mut Value, key: &str, value: Value) {
    if let Some(meta) = metadata_mut(obj) {
        meta.insert(key.into(), value);
    }
}

/// Removes `metadata.<key>`.
pub(crate) fn remove_meta(obj: &mut Value, key: &str) {
    if let Some(meta) = metadata_mut(obj) {
        meta.remove(key);
    }
}

/// A stored version, parsed.
pub(crate) fn parse_stored(object: &StoredObject) -> Result<Value, Error> {
    parse_json(&object.json.bytes())
}

/// Stored bytes, parsed (500 if they are not JSON: the store only holds what core wrote).
pub(crate) fn parse_json(json: &[u8]) -> Result<Value, Error> {
    serde_json::from_slice(json)
        .map_err(|e| Error::Internal(alloc::format!("stored object is not JSON: {e}")))
}

/// Checks `dryRun` values as kube's `ValidateDryRun` does: `All` is the only one, and any other
/// is a 422 naming the request's options type. True when a dry run was asked for.
pub fn dry_run<'v>(
    values: impl Iterator<Item = &'v str>,
    options_kind: &str,
) -> Result<bool, Error> {
    let values: Vec<&str> = values.collect();
    if values.iter().all(|v| *v == "All") {
        return Ok(!values.is_empty());
    }
    // Go's field error shows a list value as its JSON.
    let shown = crate::json::to_vec(&serde_json::Value::from(values));
    Err(Error::Invalid {
        kind: alloc::format!("{options_kind}.meta.k8s.io"),
        name: String::new(),
        causes: alloc::vec![crate::error::Cause::not_supported(
            "dryRun",
            alloc::format!(
                "Unsupported value: {}: supported values: \"All\"",
                String::from_utf8_lossy(&shown)
            ),
        )],
    })
}
