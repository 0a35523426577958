//! Metadata-only reads (`Accept: ...;as=PartialObjectMetadata[List];g=meta.k8s.io;v=v1`), as
//! kube-apiserver serves them to controllers that watch owned kinds and to garbage collectors:
//! each object reduced to `kind: PartialObjectMetadata` with only its `metadata`, lists as
//! `PartialObjectMetadataList` with the list's metadata, in JSON or Kubernetes protobuf.

use alloc::string::String;
use alloc::vec::Vec;
use serde_json::{Map, Value};

use super::request::{ApiResponse, MetadataView};
use crate::Error;
use crate::resource::ResourceType;

/// Only the `metadata` of a stored object; the rest is skipped without building a tree.
#[derive(serde::Deserialize)]
struct OnlyMetadata {
    #[serde(default)]
    metadata: Value,
}

/// The `PartialObjectMetadata` of one stored object (its JSON bytes).
pub(crate) fn partial(api_version: &str, json: &[u8]) -> Value {
    let metadata = serde_json::from_slice::<OnlyMetadata>(json)
        .map(|m| m.metadata)
        .unwrap_or(Value::Null);
    partial_of(api_version, metadata)
}

/// A `PartialObjectMetadata` carrying `metadata`.
pub(crate) fn partial_of(api_version: &str, metadata: Value) -> Value {
    let mut object = Map::new();
    object.insert("kind".into(), "PartialObjectMetadata".into());
    object.insert("apiVersion".into(), api_version.into());
    object.insert(
        "metadata".into(),
        if metadata.is_object() {
            metadata
        } else {
            Value::Object(Map::new())
        },
    );
    Value::Object(object)
}

/// The answer to a GET of one object in `view`; a list form is kube's 406.
pub(crate) fn object_response(
    rt: &ResourceType,
    view: MetadataView,
    json: &[u8],
) -> Result<ApiResponse, Error> {
    if view.list {
        return Err(Error::NotAcceptable(alloc::format!(
            "you requested PartialObjectMetadataList, but the requested object is not a list ({})",
            go_type(rt, false)
        )));
    }
    let object = partial(view.api_version, json);
    let body = if view.protobuf {
        crate::protobuf::encode::partial_object_metadata(view.api_version, &object)
    } else {
        crate::json::to_vec(&object)
    };
    Ok(ApiResponse {
        content_type: view.content_type(),
        ..ApiResponse::json(200, body)
    })
}

/// kube's 406 for a LIST that asked for the single-object form.
pub(crate) fn not_an_object(rt: &ResourceType) -> Error {
    Error::NotAcceptable(alloc::format!(
        "you requested PartialObjectMetadata, but the requested object is a list ({})",
        go_type(rt, true)
    ))
}

/// A `PartialObjectMetadataList` body of `items` (stored JSON) under `list_metadata`.
pub(crate) fn list_body<'a>(
    view: MetadataView,
    list_metadata: &Value,
    items: impl Iterator<Item = alloc::borrow::Cow<'a, [u8]>>,
) -> Vec<u8> {
    let items: Vec<Value> = items.map(|json| partial(view.api_version, &json)).collect();
    if view.protobuf {
        return crate::protobuf::encode::partial_object_metadata_list(
            view.api_version,
            list_metadata,
            items.iter(),
        );
    }
    let mut list = Map::new();
    list.insert("kind".into(), "PartialObjectMetadataList".into());
    list.insert("apiVersion".into(), view.api_version.into());
    list.insert("metadata".into(), list_metadata.clone());
    list.insert("items".into(), Value::Array(items));
    crate::json::to_vec(&Value::Object(list))
}

/// The Go type kube-apiserver names in its 406 (`*core.Pod`, `*apps.DeploymentList`): the
/// internal type of the resource.
fn go_type(rt: &ResourceType, list: bool) -> String {
    let package = match rt.group.split('.').next() {
        Some("") | None => "core",
        Some(first) => first,
    };
    alloc::format!("*{package}.{}{}", rt.kind, if list { "List" } else { "" })
}
