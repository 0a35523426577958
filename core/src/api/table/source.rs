//! What a Table row is made from, read from a stored object's bytes in one pass: the object as a
//! tree for the cells, without `metadata.managedFields` (no printer reads them, and they are the
//! most nodes of a typical object's tree), and the metadata's own bytes, written into the row's
//! `PartialObjectMetadata` as they are. A LIST of 10,000 pods builds 10,000 of these.

use alloc::string::String;
use core::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// One stored object, read for its row.
pub(crate) struct RowSource<'a> {
    /// The object without `metadata.managedFields`.
    pub(crate) object: Value,
    /// The metadata's bytes as stored (managedFields included).
    pub(crate) metadata: Option<&'a [u8]>,
}

/// Reads `json` (a stored object: a JSON object) for its row; `None` when it is not one.
pub(crate) fn read(json: &[u8]) -> Option<RowSource<'_>> {
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let source = TopLevel.deserialize(&mut deserializer).ok()?;
    deserializer.end().ok()?;
    Some(source)
}

struct TopLevel;

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
            if key == "metadata" {
                let raw: &'de RawValue = map.next_value()?;
                let mut inner = serde_json::Deserializer::from_str(raw.get());
                let value = WithoutManagedFields
                    .deserialize(&mut inner)
                    .map_err(serde::de::Error::custom)?;
                metadata = Some(raw.get().as_bytes());
                object.insert(key, value);
            } else {
                object.insert(key, map.next_value()?);
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
