//! `metadata.managedFields` entries as kube-apiserver reads and writes them: strict decoding,
//! manager identities, the order entries are written in, and the cap on `Update` entries.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use serde_json::{Map, Value};

use super::fieldpath::{FieldSet, go_json_string};
use crate::UnixTime;
use crate::gostr::go_quote;

/// kube-apiserver keeps at most this many `Update` entries (`DefaultMaxUpdateManagers`).
const MAX_UPDATE_MANAGERS: usize = 10;
/// The entry the oldest `Update` entries merge into beyond the cap.
const ANCIENT_CHANGES: &str = "ancient-changes";

/// `operation` of an entry; `Apply` sorts before `Update`, as the strings do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Operation {
    Apply,
    Update,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Self::Apply => "Apply",
            Self::Update => "Update",
        }
    }
}

/// One `metadata.managedFields` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) manager: String,
    pub(crate) operation: Operation,
    pub(crate) api_version: String,
    pub(crate) time: Option<UnixTime>,
    pub(crate) subresource: String,
    pub(crate) set: FieldSet,
}

impl Entry {
    pub(crate) fn new(
        manager: &str,
        operation: Operation,
        api_version: &str,
        subresource: &str,
        set: FieldSet,
    ) -> Self {
        Self {
            manager: manager.into(),
            operation,
            api_version: api_version.into(),
            time: None,
            subresource: subresource.into(),
            set,
        }
    }

    /// Whether both entries belong to one manager: the same name, operation and subresource,
    /// and for `Update` the same apiVersion (`BuildManagerIdentifier`).
    pub(crate) fn same_manager(&self, other: &Entry) -> bool {
        self.manager == other.manager
            && self.operation == other.operation
            && self.subresource == other.subresource
            && (self.operation == Operation::Apply || self.api_version == other.api_version)
    }

    /// kube's manager identifier, the JSON it keys managers by (and sorts them by).
    pub(crate) fn identifier(&self) -> String {
        let mut out = String::from("{");
        let mut field = |name: &str, value: &str| {
            if value.is_empty() {
                return;
            }
            if out.len() > 1 {
                out.push(',');
            }
            go_json_string(name, &mut out);
            out.push(':');
            go_json_string(value, &mut out);
        };
        field("manager", &self.manager);
        field("operation", self.operation.as_str());
        if self.operation == Operation::Update {
            field("apiVersion", &self.api_version);
        }
        field("subresource", &self.subresource);
        out.push('}');
        out
    }

    /// How conflict messages name the manager (`printManager`).
    pub(crate) fn describe(&self) -> String {
        let mut s = String::new();
        go_quote(&self.manager, &mut s);
        if !self.subresource.is_empty() {
            s.push_str(" with subresource ");
            go_quote(&self.subresource, &mut s);
        }
        if self.operation == Operation::Update {
            s.push_str(" using ");
            s.push_str(&self.api_version);
        }
        s
    }

    fn to_json(&self) -> Value {
        let mut map = Map::new();
        if !self.manager.is_empty() {
            map.insert("manager".into(), Value::String(self.manager.clone()));
        }
        map.insert(
            "operation".into(),
            Value::String(self.operation.as_str().into()),
        );
        map.insert("apiVersion".into(), Value::String(self.api_version.clone()));
        if let Some(t) = self.time {
            map.insert("time".into(), Value::String(t.rfc3339()));
        }
        map.insert("fieldsType".into(), Value::String("FieldsV1".into()));
        map.insert("fieldsV1".into(), self.set.to_v1());
        if !self.subresource.is_empty() {
            map.insert(
                "subresource".into(),
                Value::String(self.subresource.clone()),
            );
        }
        Value::Object(map)
    }

    fn secs(&self) -> u64 {
        self.time.map_or(0, UnixTime::secs)
    }
}

/// Why a `managedFields` list could not be read (`DecodeManagedFields`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DecodeError(pub(crate) String);

/// The object's `metadata.managedFields` as sent: absent or `null` is `None`.
pub(crate) fn raw(obj: &Value) -> Option<&Value> {
    obj.pointer("/metadata/managedFields")
        .filter(|v| !v.is_null())
}

/// Whether a client's list asks to clear the field ownership: `[]` or `[{}]`.
pub(crate) fn is_reset(list: Option<&Value>) -> bool {
    match list.and_then(Value::as_array).map(Vec::as_slice) {
        Some([]) => true,
        Some([only]) => only.as_object().is_some_and(Map::is_empty),
        _ => false,
    }
}

/// Decodes a `managedFields` list as strictly as kube: every entry's operation is `Apply` or
/// `Update`, its apiVersion is set, its fieldsType is `FieldsV1` and its fields parse. Two
/// entries of one manager keep the later.
pub(crate) fn decode(list: Option<&Value>) -> Result<Vec<Entry>, DecodeError> {
    let Some(list) = list else {
        return Ok(Vec::new());
    };
    let Some(items) = list.as_array() else {
        return Err(DecodeError("managedFields must be a list".into()));
    };
    let mut out: Vec<Entry> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let entry = decode_entry(i, item)?;
        out.retain(|e| !e.same_manager(&entry));
        out.push(entry);
    }
    Ok(out)
}

fn decode_entry(i: usize, item: &Value) -> Result<Entry, DecodeError> {
    let text = |key: &str| -> Result<String, DecodeError> {
        match item.get(key) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(DecodeError(alloc::format!(
                "managed fields entry {i}: {key} must be a string"
            ))),
        }
    };
    let operation = match text("operation")?.as_str() {
        "Apply" => Operation::Apply,
        "Update" => Operation::Update,
        _ => return Err(DecodeError("operation must be `Apply` or `Update`".into())),
    };
    let api_version = text("apiVersion")?;
    if api_version.is_empty() {
        return Err(DecodeError("apiVersion must not be empty".into()));
    }
    match text("fieldsType")?.as_str() {
        "FieldsV1" => {}
        "" => {
            return Err(DecodeError(alloc::format!(
                "missing fieldsType in managed fields entry {i}"
            )));
        }
        other => {
            return Err(DecodeError(alloc::format!(
                "invalid fieldsType {other:?} in managed fields entry {i}"
            )));
        }
    }
    let set = match item.get("fieldsV1") {
        None | Some(Value::Null) => FieldSet::default(),
        Some(v) => FieldSet::from_v1(v)
            .map_err(|()| DecodeError(alloc::format!("error decoding set of entry {i}")))?,
    };
    let time = match text("time")?.as_str() {
        "" => None,
        t => Some(
            UnixTime::parse_rfc3339(t)
                .ok_or_else(|| DecodeError(alloc::format!("entry {i}: bad time {t:?}")))?,
        ),
    };
    Ok(Entry {
        manager: text("manager")?,
        operation,
        api_version,
        time,
        subresource: text("subresource")?,
        set,
    })
}

/// Writes `entries` as the object's `managedFields` in kube's order (operation, time, manager,
/// apiVersion, subresource); no entry left removes the field.
pub(crate) fn encode(obj: &mut Value, mut entries: Vec<Entry>) {
    entries.retain(|e| !e.set.is_empty());
    entries.sort_by(|p, q| {
        p.operation
            .cmp(&q.operation)
            .then_with(|| p.secs().cmp(&q.secs()))
            .then_with(|| p.manager.cmp(&q.manager))
            .then_with(|| p.api_version.cmp(&q.api_version))
            .then_with(|| p.subresource.cmp(&q.subresource))
    });
    let Some(meta) = obj.as_object_mut().and_then(|o| {
        o.entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
    }) else {
        return;
    };
    if entries.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert(
            "managedFields".into(),
            Value::Array(entries.iter().map(Entry::to_json).collect()),
        );
    }
}

/// Merges the oldest `Update` entries, per apiVersion, into an `ancient-changes` entry until at
/// most ten remain (`capUpdateManagers`, including its handling of an existing bucket).
pub(crate) fn cap_updates(entries: &mut Vec<Entry>) {
    cap_updates_at(entries, MAX_UPDATE_MANAGERS);
}

fn cap_updates_at(entries: &mut Vec<Entry>, max: usize) {
    let mut updaters: Vec<Entry> = entries
        .iter()
        .filter(|e| e.operation == Operation::Update)
        .cloned()
        .collect();
    if updaters.len() <= max {
        return;
    }
    updaters.sort_by(|a, b| {
        a.secs()
            .cmp(&b.secs())
            .then_with(|| a.identifier().cmp(&b.identifier()))
    });
    let mut first_of_version: BTreeMap<String, Entry> = BTreeMap::new();
    let mut length = updaters.len();
    for updater in updaters {
        if length <= max {
            break;
        }
        let Some(current) = entries.iter().find(|e| e.same_manager(&updater)).cloned() else {
            continue;
        };
        let version = current.api_version.clone();
        let bucket = Entry::new(
            ANCIENT_CHANGES,
            Operation::Update,
            &version,
            "",
            FieldSet::default(),
        );
        let Some(first) = first_of_version.get(&version) else {
            first_of_version.insert(version, current);
            continue;
        };
        if !entries.iter().any(|e| e.same_manager(&bucket)) {
            // The first entry of this version becomes the bucket.
            if let Some(e) = entries.iter_mut().find(|e| e.same_manager(first)) {
                e.manager = ANCIENT_CHANGES.into();
                e.subresource = String::new();
            } else {
                entries.push(bucket.clone());
            }
        }
        if let Some(b) = entries.iter_mut().find(|e| e.same_manager(&bucket)) {
            b.set.union_with(&current.set);
            b.time = current.time;
        }
        entries.retain(|e| !e.same_manager(&current));
        length -= 1;
    }
}

/// Drops the entries of other API versions: kube cannot convert to a version it does not serve
/// and forgets those managers on the next write.
pub(crate) fn keep_version(entries: &mut Vec<Entry>, api_version: &str) {
    entries.retain(|e| e.api_version == api_version);
}

impl core::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patch::fieldpath::PathElement;

    fn entry(manager: &str, version: &str, hour: u64, fields: &[&str]) -> Entry {
        let mut set = FieldSet::default();
        for f in fields {
            set.insert(&[PathElement::field(f)]);
        }
        let mut e = Entry::new(manager, Operation::Update, version, "", set);
        e.time = Some(UnixTime::from_secs(hour * 3600));
        e
    }

    fn sorted(mut entries: Vec<Entry>) -> Vec<Value> {
        let mut obj = serde_json::json!({});
        encode(&mut obj, core::mem::take(&mut entries));
        obj["metadata"]["managedFields"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    #[test]
    fn caps_update_entries_like_kube() {
        // capmanagers_test.go TestCapUpdateManagers, with a cap of three.
        let cases: Vec<(Vec<Entry>, Vec<Entry>)> = alloc::vec![
            (
                alloc::vec![
                    entry("update-manager1", "v1", 1, &["a"]),
                    entry("update-manager2", "v1", 2, &["b"]),
                    entry("update-manager3", "v1", 3, &["c"]),
                    entry("update-manager4", "v1", 4, &["d"]),
                ],
                alloc::vec![
                    entry("ancient-changes", "v1", 2, &["a", "b"]),
                    entry("update-manager3", "v1", 3, &["c"]),
                    entry("update-manager4", "v1", 4, &["d"]),
                ],
            ),
            (
                alloc::vec![
                    entry("ancient-changes", "v1", 2, &["a", "b"]),
                    entry("update-manager3", "v1", 3, &["c"]),
                    entry("update-manager4", "v1", 4, &["d"]),
                    entry("update-manager5", "v1", 5, &["e"]),
                ],
                alloc::vec![
                    entry("ancient-changes", "v1", 3, &["a", "b", "c"]),
                    entry("update-manager4", "v1", 4, &["d"]),
                    entry("update-manager5", "v1", 5, &["e"]),
                ],
            ),
            (
                alloc::vec![
                    entry("update-manager1", "v1", 1, &["a"]),
                    entry("update-manager2", "v2", 2, &["b"]),
                    entry("update-manager3", "v1", 3, &["c"]),
                    entry("update-manager4", "v1", 4, &["d"]),
                    entry("update-manager5", "v1", 5, &["e"]),
                ],
                alloc::vec![
                    entry("update-manager2", "v2", 2, &["b"]),
                    entry("ancient-changes", "v1", 4, &["a", "c", "d"]),
                    entry("update-manager5", "v1", 5, &["e"]),
                ],
            ),
            (
                alloc::vec![
                    entry("update-manager2", "v2", 2, &["b"]),
                    entry("ancient-changes", "v1", 4, &["a", "c", "d"]),
                    entry("update-manager5", "v1", 5, &["e"]),
                    entry("update-manager6", "v3", 6, &["f"]),
                    entry("update-manager7", "v2", 7, &["g"]),
                ],
                alloc::vec![
                    entry("ancient-changes", "v1", 5, &["a", "c", "d", "e"]),
                    entry("update-manager6", "v3", 6, &["f"]),
                    entry("ancient-changes", "v2", 7, &["b", "g"]),
                ],
            ),
            (
                alloc::vec![
                    entry("ancient-changes", "v1", 5, &["a", "c", "d", "e"]),
                    entry("update-manager6", "v3", 6, &["f"]),
                    entry("ancient-changes", "v2", 7, &["b", "g"]),
                    entry("update-manager8", "v3", 8, &["h"]),
                ],
                alloc::vec![
                    entry("ancient-changes", "v1", 5, &["a", "c", "d", "e"]),
                    entry("ancient-changes", "v2", 7, &["b", "g"]),
                    entry("ancient-changes", "v3", 8, &["f", "h"]),
                ],
            ),
            (
                alloc::vec![
                    entry("ancient-changes", "v1", 5, &["a", "c", "d", "e"]),
                    entry("update-manager6", "v3", 6, &["f"]),
                    entry("ancient-changes", "v2", 7, &["b", "g"]),
                    entry("update-manager8", "v4", 8, &["h"]),
                ],
                alloc::vec![
                    entry("ancient-changes", "v1", 5, &["a", "c", "d", "e"]),
                    entry("update-manager6", "v3", 6, &["f"]),
                    entry("ancient-changes", "v2", 7, &["b", "g"]),
                    entry("update-manager8", "v4", 8, &["h"]),
                ],
            ),
        ];
        for (i, (mut input, want)) in cases.into_iter().enumerate() {
            cap_updates_at(&mut input, 3);
            assert_eq!(sorted(input.clone()), sorted(want), "case {i}");
            // Capping again changes nothing.
            let before = input.clone();
            cap_updates_at(&mut input, 3);
            assert_eq!(input, before, "case {i} is not idempotent");
        }
    }

    #[test]
    fn identities_and_decoding_follow_kube() {
        let apply = Entry::new("m", Operation::Apply, "v1", "", FieldSet::default());
        let update = Entry::new("m", Operation::Update, "v1", "status", FieldSet::default());
        assert_eq!(apply.identifier(), r#"{"manager":"m","operation":"Apply"}"#);
        assert_eq!(
            update.identifier(),
            r#"{"manager":"m","operation":"Update","apiVersion":"v1","subresource":"status"}"#
        );
        assert_eq!(
            update.describe(),
            r#""m" with subresource "status" using v1"#
        );
        assert!(is_reset(Some(&serde_json::json!([]))));
        assert!(is_reset(Some(&serde_json::json!([{}]))));
        assert!(!is_reset(Some(&serde_json::json!([{}, {}]))));
        assert!(!is_reset(None));
        // A later entry of the same manager replaces an earlier one; times normalise to UTC.
        let list = serde_json::json!([
            {"manager": "m", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:a": {}}, "time": "2024-11-15T01:46:29+02:00"},
            {"manager": "m", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:b": {}}, "time": "2024-11-15T01:46:29+02:00"}]);
        let entries = decode(Some(&list)).unwrap();
        assert_eq!(entries.len(), 1);
        let mut obj = serde_json::json!({});
        encode(&mut obj, entries);
        assert_eq!(
            obj["metadata"]["managedFields"][0]["fieldsV1"],
            serde_json::json!({"f:b": {}})
        );
        assert_eq!(
            obj["metadata"]["managedFields"][0]["time"],
            "2024-11-14T23:46:29Z"
        );
    }
}
