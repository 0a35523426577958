//! Label and field selectors (`?labelSelector=`, `?fieldSelector=`), and the per-object label and
//! field index they are matched against.

use alloc::string::String;
use alloc::vec::Vec;
use serde_json::Value;

use crate::Error;
use crate::resource::ResourceId;

/// A parsed label selector.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {}

impl LabelSelector {
    /// Parses the query-string form (`a=b,c!=d,e in (f,g),!h`).
    pub fn parse(text: &str) -> Result<Self, Error> {
        if text.trim().is_empty() {
            return Ok(Self {});
        }
        Err(Error::BadRequest(
            "label selectors are not supported yet".into(),
        ))
    }

    /// Builds a selector from a `metav1.LabelSelector` object (`matchLabels`, `matchExpressions`).
    pub fn from_json(_value: &Value) -> Result<Self, String> {
        Err("label selectors are not supported yet".into())
    }

    /// Whether this selector selects everything.
    pub fn is_empty(&self) -> bool {
        true
    }

    /// Whether an object with `labels` is selected.
    pub fn matches(&self, _labels: &[(String, String)]) -> bool {
        true
    }
}

/// A parsed field selector for one resource type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {}

impl FieldSelector {
    /// Parses `a=b,c!=d` for `resource`; unsupported fields are 400 as kube-apiserver says.
    pub fn parse(_resource: ResourceId, text: &str) -> Result<Self, Error> {
        if text.trim().is_empty() {
            return Ok(Self {});
        }
        Err(Error::BadRequest(
            "field selectors are not supported yet".into(),
        ))
    }

    /// Whether this selector selects everything.
    pub fn is_empty(&self) -> bool {
        true
    }

    /// Whether an object with these selectable `fields` is selected.
    pub fn matches(&self, _fields: &[(&'static str, String)]) -> bool {
        true
    }
}

/// The object's `metadata.labels` as pairs.
pub fn labels_of(_obj: &Value) -> Vec<(String, String)> {
    Vec::new()
}

/// The field-selector fields of `obj` for its resource type, e.g. `spec.nodeName` for pods.
pub fn selectable_fields(_resource: ResourceId, _obj: &Value) -> Vec<(&'static str, String)> {
    Vec::new()
}
