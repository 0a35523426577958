//! What a Table row is made from, read from a stored object's bytes in one pass: the object as a
//! tree for the cells, without `metadata.managedFields` (no printer reads them, and they are the
//! most nodes of a typical object's tree), and the metadata's own bytes, written into the row's
//! `PartialObjectMetadata` as they are. A LIST of 10,000 pods builds 10,000 of these.
//!
//! A pod's tree keeps only what its printer reads ([`POD_ROW`]): its containers' specs, volumes,
//! tolerations and the rest of its spec are skipped unparsed, which is most of a pod's bytes and
//! most of the time a row took.

use alloc::string::String;
use core::fmt;

use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::resource::ResourceId;

/// One stored object, read for its row.
pub(crate) struct RowSource<'a> {
    /// The object without `metadata.managedFields`.
    pub(crate) object: Value,
    /// The metadata's bytes as stored (managedFields included).
    pub(crate) metadata: Option<&'a [u8]>,
}

/// Reads `json` (a stored object: a JSON object) for its row; `None` when it is not one.
pub(crate) fn read(json: &[u8]) -> Option<RowSource<'_>> {
    read_keeping(json, None)
}

/// Like [`read`], keeping in the tree only what `resource`'s printer reads, where that is known.
pub(crate) fn read_for(resource: ResourceId, json: &[u8]) -> Option<RowSource<'_>> {
    match resource {
        ResourceId::Pods => read_keeping(json, Some(POD_ROW)),
        _ => read(json),
    }
}

fn read_keeping<'a>(json: &'a [u8], keep: Option<&'static [Field]>) -> Option<RowSource<'a>> {
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let source = TopLevel(keep).deserialize(&mut deserializer).ok()?;
    deserializer.end().ok()?;
    Some(source)
}

/// What of a value a row's tree keeps.
#[derive(Clone, Copy)]
pub(crate) enum Keep {
    /// The whole value.
    All,
    /// Of an object, these fields (the others skipped unparsed); anything else as it is.
    Fields(&'static [Field]),
    /// Of an array, each item as given; anything else as it is.
    Items(&'static Keep),
    /// Nothing but its place: `null` (an array of these keeps its length).
    Place,
}

/// A field an object keeps, and what of it.
pub(crate) type Field = (&'static str, Keep);

/// What `pod_cells` and the common columns read of a pod (table.rs): keep it in step with them.
pub(crate) const POD_ROW: &[Field] = &[
    (
        "metadata",
        Keep::Fields(&[
            ("name", Keep::All),
            ("creationTimestamp", Keep::All),
            ("deletionTimestamp", Keep::All),
        ]),
    ),
    (
        "spec",
        Keep::Fields(&[
            (
                "initContainers",
                Keep::Items(&Keep::Fields(&[
                    ("name", Keep::All),
                    ("restartPolicy", Keep::All),
                ])),
            ),
            ("containers", Keep::Items(&Keep::Place)),
            ("readinessGates", Keep::All),
            ("nodeName", Keep::All),
        ]),
    ),
    ("status", Keep::All),
];

impl<'de> DeserializeSeed<'de> for Keep {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        match self {
            Keep::All => Value::deserialize(deserializer),
            Keep::Place => deserializer
                .deserialize_ignored_any(IgnoredAny)
                .map(|_| Value::Null),
            Keep::Fields(_) | Keep::Items(_) => deserializer.deserialize_any(self),
        }
    }
}

impl<'de> Visitor<'de> for Keep {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let kept = match self {
                Keep::Fields(fields) => fields.iter().find(|(f, _)| *f == key).map(|(_, k)| *k),
                _ => Some(Keep::All),
            };
            match kept {
                Some(keep) => {
                    object.insert(key, map.next_value_seed(keep)?);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Object(object))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let item = match self {
            Keep::Items(item) => *item,
            _ => Keep::All,
        };
        let mut items = alloc::vec::Vec::new();
        while let Some(value) = seq.next_element_seed(item)? {
            items.push(value);
        }
        Ok(Value::Array(items))
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(String::from(v)))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
}

/// The top level of a stored object, keeping what `.0` says (everything when `None`).
struct TopLevel(Option<&'static [Field]>);

impl<'de> DeserializeSeed<'de> for TopLevel {
    type Value = RowSource<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TopLevel {
    type Value = RowSource<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut object = Map::new();
        let mut metadata = None;
        while let Some(key) = map.next_key::<String>()? {
            let keep = match self.0 {
                Some(fields) => fields.iter().find(|(f, _)| *f == key).map(|(_, k)| *k),
                None => Some(Keep::All),
            };
            if key == "metadata" {
                let raw: &'de RawValue = map.next_value()?;
                let mut inner = serde_json::Deserializer::from_str(raw.get());
                let value = match keep {
                    Some(Keep::All) => WithoutManagedFields.deserialize(&mut inner),
                    Some(keep) => keep.deserialize(&mut inner),
                    None => Ok(Value::Null),
                }
                .map_err(serde::de::Error::custom)?;
                metadata = Some(raw.get().as_bytes());
                if keep.is_some() {
                    object.insert(key, value);
                }
            } else {
                match keep {
                    Some(keep) => {
                        object.insert(key, map.next_value_seed(keep)?);
                    }
                    None => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
        }
        Ok(RowSource {
            object: Value::Object(object),
            metadata,
        })
    }
}

/// A metadata object read into a tree, its `managedFields` skipped.
struct WithoutManagedFields;

impl<'de> DeserializeSeed<'de> for WithoutManagedFields {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for WithoutManagedFields {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if key == "managedFields" {
                map.next_value::<IgnoredAny>()?;
            } else {
                object.insert(key, map.next_value()?);
            }
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_tree_lacks_only_managed_fields_and_the_metadata_bytes_are_whole() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "labels": {"a": "b"},
                "managedFields": [{"manager": "m", "fieldsV1": {"f:spec": {}}}]},
            "spec": {"containers": [{"name": "c"}]}});
        let bytes = crate::json::to_vec(&pod);
        let source = read(&bytes).unwrap();
        let mut expected = pod.clone();
        expected["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("managedFields");
        assert_eq!(source.object, expected);
        let metadata: Value = serde_json::from_slice(source.metadata.unwrap()).unwrap();
        assert_eq!(metadata, pod["metadata"]);
    }

    #[test]
    fn what_is_not_an_object_is_refused() {
        for bad in [&b"[1]"[..], b"3", b"{\"metadata\": 3}", b"{} x", b"{\"a\":"] {
            assert!(read(bad).is_none(), "{}", String::from_utf8_lossy(bad));
        }
        assert!(read(b"{\"kind\":\"X\"}").unwrap().metadata.is_none());
    }
}
