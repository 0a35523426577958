//! Kubernetes protobuf answers, from the same generated tables the decoder reads: the JSON form of
//! an object is written as gogo-protobuf marshals the Go struct (fields by ascending number;
//! non-pointer fields always, zero when absent; pointers only when set; map entries sorted by
//! key), inside the `k8s\0` + `runtime.Unknown` envelope, and watch events as kube's length-
//! delimited frames of raw `WatchEvent`s whose object is such an envelope.

use alloc::string::String;
use alloc::vec::Vec;
use base64::Engine as _;
use serde_json::Value;

use super::tables::{
    META_PARTIAL_OBJECT_METADATA, META_PARTIAL_OBJECT_METADATA_LIST, META_STATUS, META_WATCH_EVENT,
};
use super::{Field, INLINE, Kind, MAGIC, MAP, Msg, PTR, REP};
use crate::UnixTime;

/// `Content-Type` of a protobuf watch stream.
pub const WATCH_MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf;stream=watch";

/// A whole protobuf body: the magic, then `runtime.Unknown{typeMeta, raw, contentEncoding,
/// contentType}` (gogo writes the two empty strings too).
fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let mut type_meta = Vec::new();
    bytes_field(1, api_version.as_bytes(), &mut type_meta);
    bytes_field(2, kind.as_bytes(), &mut type_meta);
    let mut out = Vec::with_capacity(raw.len() + type_meta.len() + 24);
    out.extend_from_slice(MAGIC);
    bytes_field(1, &type_meta, &mut out);
    bytes_field(2, raw, &mut out);
    bytes_field(3, b"", &mut out);
    bytes_field(4, b"", &mut out);
    out
}

/// A `PartialObjectMetadata` (its JSON form: `metadata` read, the rest ignored) as a protobuf
/// body of `api_version` (`meta.k8s.io/v1` or `v1beta1`).
pub fn partial_object_metadata(api_version: &str, object: &Value) -> Vec<u8> {
    let mut raw = Vec::new();
    message(&META_PARTIAL_OBJECT_METADATA, object, &mut raw);
    envelope(api_version, "PartialObjectMetadata", &raw)
}

/// A `PartialObjectMetadataList` from its list metadata and items' JSON forms.
pub fn partial_object_metadata_list<'a>(
    api_version: &str,
    list_metadata: &Value,
    items: impl Iterator<Item = &'a Value>,
) -> Vec<u8> {
    let mut raw = Vec::new();
    let [meta_field, items_field] = [
        field(&META_PARTIAL_OBJECT_METADATA_LIST, "metadata"),
        field(&META_PARTIAL_OBJECT_METADATA_LIST, "items"),
    ];
    if let Some(f) = meta_field {
        single(f, list_metadata, &mut raw);
    }
    if let Some(f) = items_field {
        for item in items {
            single(f, item, &mut raw);
        }
    }
    envelope(api_version, "PartialObjectMetadataList", &raw)
}

/// Any whole object the tables know (`apiVersion`/`kind` as [`super::decode_as`] reads them) as
/// a protobuf body; `None` for a kind without a table.
pub fn object(api_version: &str, kind: &str, value: &Value) -> Option<Vec<u8>> {
    let (_, _, desc) = super::TOP_LEVEL
        .iter()
        .find(|(v, k, _)| *v == api_version && *k == kind)?;
    let mut raw = Vec::new();
    message(desc, value, &mut raw);
    Some(envelope(api_version, kind, &raw))
}

/// A `meta/v1` `Status` (an error event's object) as a protobuf body.
pub fn status(value: &Value) -> Vec<u8> {
    let mut raw = Vec::new();
    message(&META_STATUS, value, &mut raw);
    envelope("v1", "Status", &raw)
}

/// Appends one watch event frame: a 4-byte big-endian length, then a raw `WatchEvent{type,
/// object: RawExtension{raw: embedded}}`, `embedded` being a whole protobuf body.
pub fn watch_frame(event_type: &str, embedded: &[u8], out: &mut Vec<u8>) {
    let mut event = Vec::with_capacity(embedded.len() + 24);
    if let Some(f) = field(&META_WATCH_EVENT, "type") {
        bytes_field(f.num, event_type.as_bytes(), &mut event);
    }
    if let Some(f) = field(&META_WATCH_EVENT, "object") {
        let mut raw_extension = Vec::with_capacity(embedded.len() + 6);
        bytes_field(1, embedded, &mut raw_extension);
        bytes_field(f.num, &raw_extension, &mut event);
    }
    let len = u32::try_from(event.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&event);
}

fn field(desc: &'static Msg, json: &str) -> Option<&'static Field> {
    desc.fields.iter().find(|f| f.json == json)
}

fn varint(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn tag(num: u32, wire: u8, out: &mut Vec<u8>) {
    varint((u64::from(num) << 3) | u64::from(wire), out);
}

fn bytes_field(num: u32, bytes: &[u8], out: &mut Vec<u8>) {
    tag(num, 2, out);
    varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

/// Writes the fields of `desc` from the JSON object `value`.
fn message(desc: &'static Msg, value: &Value, out: &mut Vec<u8>) {
    for f in desc.fields {
        if f.flags & INLINE != 0 {
            // An embedded struct's fields sit in the parent's JSON object.
            single(f, value, out);
            continue;
        }
        let present = value.get(f.json).filter(|v| !v.is_null());
        if f.flags & REP != 0 {
            for item in present.and_then(Value::as_array).into_iter().flatten() {
                single(f, item, out);
            }
        } else if f.flags & MAP != 0 {
            let Some(map) = present.and_then(Value::as_object) else {
                continue;
            };
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable();
            for key in keys {
                let mut entry = Vec::new();
                bytes_field(1, key.as_bytes(), &mut entry);
                let value = map.get(key.as_str()).unwrap_or(&Value::Null);
                value_field(2, f.kind, value, &mut entry);
                bytes_field(f.num, &entry, out);
            }
        } else if f.flags & PTR != 0 {
            if let Some(v) = present {
                single(f, v, out);
            }
        } else {
            single(f, present.unwrap_or(&Value::Null), out);
        }
    }
}

/// One (non-map) value of `f`; `Null` stands for Go's zero value.
fn single(f: &Field, value: &Value, out: &mut Vec<u8>) {
    value_field(f.num, f.kind, value, out);
}

fn value_field(num: u32, kind: Kind, value: &Value, out: &mut Vec<u8>) {
    match kind {
        Kind::Str => bytes_field(num, value.as_str().unwrap_or("").as_bytes(), out),
        Kind::Bytes => {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(value.as_str().unwrap_or(""))
                .unwrap_or_default();
            bytes_field(num, &decoded, out);
        }
        Kind::Bool => {
            tag(num, 0, out);
            varint(u64::from(value.as_bool().unwrap_or(false)), out);
        }
        Kind::I32 | Kind::I64 => {
            tag(num, 0, out);
            // Negative numbers go out as ten-byte two's complement, as Go writes them.
            varint(value.as_i64().unwrap_or(0) as u64, out);
        }
        Kind::Message(inner) => {
            let mut nested = Vec::new();
            message(inner, value, &mut nested);
            bytes_field(num, &nested, out);
        }
        Kind::Time | Kind::MicroTime => {
            let mut nested = Vec::new();
            if let Some(at) = value.as_str().and_then(UnixTime::parse_rfc3339) {
                let nanos = if matches!(kind, Kind::MicroTime) {
                    (at.nanos % 1_000_000_000) / 1_000 * 1_000
                } else {
                    0
                };
                tag(1, 0, &mut nested);
                varint(at.secs(), &mut nested);
                tag(2, 0, &mut nested);
                varint(nanos, &mut nested);
            }
            bytes_field(num, &nested, out);
        }
        Kind::Quantity => {
            let mut nested = Vec::new();
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => alloc::format!("{n}"),
                _ => String::from("0"),
            };
            bytes_field(1, text.as_bytes(), &mut nested);
            bytes_field(num, &nested, out);
        }
        Kind::IntOrString => {
            let mut nested = Vec::new();
            let (kind, int, text) = match value {
                Value::String(s) => (1u64, 0i64, s.as_str()),
                other => (0, other.as_i64().unwrap_or(0), ""),
            };
            tag(1, 0, &mut nested);
            varint(kind, &mut nested);
            tag(2, 0, &mut nested);
            varint(int as u64, &mut nested);
            bytes_field(3, text.as_bytes(), &mut nested);
            bytes_field(num, &nested, out);
        }
        Kind::StrList => {
            let mut nested = Vec::new();
            for item in value.as_array().into_iter().flatten() {
                bytes_field(1, item.as_str().unwrap_or("").as_bytes(), &mut nested);
            }
            bytes_field(num, &nested, out);
        }
        Kind::F64 => {
            tag(num, 1, out);
            out.extend_from_slice(&value.as_f64().unwrap_or(0.0).to_bits().to_le_bytes());
        }
        Kind::SchemaOrArray(schema)
        | Kind::SchemaOrBool(schema)
        | Kind::SchemaOrStrings(schema) => {
            let mut nested = Vec::new();
            match (kind, value) {
                (_, Value::Object(_)) => {
                    let field = if matches!(kind, Kind::SchemaOrBool(_)) {
                        2
                    } else {
                        1
                    };
                    value_field(field, Kind::Message(schema), value, &mut nested);
                }
                (Kind::SchemaOrBool(_), other) => {
                    value_field(1, Kind::Bool, other, &mut nested);
                }
                (Kind::SchemaOrArray(_), other) => {
                    for item in other.as_array().into_iter().flatten() {
                        value_field(2, Kind::Message(schema), item, &mut nested);
                    }
                }
                (_, other) => {
                    for item in other.as_array().into_iter().flatten() {
                        value_field(2, Kind::Str, item, &mut nested);
                    }
                }
            }
            bytes_field(num, &nested, out);
        }
        Kind::RawJson => {
            let mut nested = Vec::new();
            if !value.is_null() {
                bytes_field(1, &crate::json::to_vec(value), &mut nested);
            }
            bytes_field(num, &nested, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The list of `list_items` (list metadata: resourceVersion 99, continue abc, 5 remaining)
    /// as apimachinery v0.32.13's `protobuf.NewSerializer(scheme, scheme).Encode` writes it,
    /// built from the same Go values by a throw-away program.
    const APIMACHINERY_LIST: &[u8] = include_bytes!("fixtures/partial_object_metadata_list.bin");

    fn list_items() -> [Value; 2] {
        [
            json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                "metadata": {
                    "name": "web", "namespace": "default",
                    "uid": "8d1a0c2e-6b3f-4a8e-9d2c-0f1e2d3c4b5a", "resourceVersion": "42",
                    "generation": 3, "creationTimestamp": "2025-06-15T14:13:20Z",
                    "deletionTimestamp": "2025-06-15T14:20:00Z", "deletionGracePeriodSeconds": 30,
                    "labels": {"tier": "front", "app": "web"},
                    "annotations": {"note": "x"},
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                        "name": "web-1", "uid": "11111111-2222-4333-8444-555555555555",
                        "controller": true, "blockOwnerDeletion": true}],
                    "finalizers": ["example.com/a", "example.com/b"],
                    "managedFields": [{"manager": "kubectl", "operation": "Apply",
                        "apiVersion": "v1", "time": "2025-06-15T14:13:20Z",
                        "fieldsType": "FieldsV1",
                        "fieldsV1": {"f:metadata": {"f:labels": {"f:app": {}}}}}]}}),
            json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                "metadata": {"name": "bare", "resourceVersion": "7"}}),
        ]
    }

    #[test]
    fn a_list_is_byte_for_byte_what_apimachinery_writes() {
        let items = list_items();
        let ours = partial_object_metadata_list(
            "meta.k8s.io/v1",
            &json!({"resourceVersion": "99", "continue": "abc", "remainingItemCount": 5}),
            items.iter(),
        );
        assert_eq!(ours, APIMACHINERY_LIST);
    }

    #[test]
    fn objects_and_events_decode_back() {
        let items = list_items();
        let body = partial_object_metadata("meta.k8s.io/v1", &items[0]);
        let envelope = super::super::Envelope::parse(&body).unwrap();
        assert_eq!(
            (envelope.api_version, envelope.kind),
            ("meta.k8s.io/v1", "PartialObjectMetadata")
        );
        let mut budget = super::super::Budget::for_body(body.len());
        let decoded =
            super::super::message(&META_PARTIAL_OBJECT_METADATA, envelope.raw, 1, &mut budget)
                .unwrap();
        assert_eq!(decoded.get("metadata"), items[0].get("metadata"));

        let mut frames = Vec::new();
        watch_frame("ADDED", &body, &mut frames);
        watch_frame("DELETED", &body, &mut frames);
        let len = u32::from_be_bytes(frames[..4].try_into().unwrap()) as usize;
        assert_eq!(frames.len(), 4 + len + 4 + len + 2);
        // WatchEvent{type: 1, object: 2 RawExtension{raw: 1 the whole body}}.
        let event = &frames[4..4 + len];
        assert_eq!(&event[..7], b"\x0a\x05ADDED");
        assert!(event.ends_with(&body));
    }
}
