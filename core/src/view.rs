//! Built-in kinds served in a second group-version over another row's storage
//! ([`crate::resource::VIEWS`]): the conversions between the shape a request uses and the shape
//! stored, as kube converts both versions through its internal type. Reads convert the stored
//! object into the view's shape; writes convert the body into the stored shape before
//! defaults, validation (which may still depend on the view, [`crate::validation::validate_as`])
//! and the store, and convert the answer back. Field ownership is the exception that works in
//! the view's shape ([`crate::patch`]): kube records a manager in the version it wrote with and
//! applies a configuration in the request's version. Everything else — resource versions, watches,
//! selectors, TTLs, rate limits, Table columns (kube prints the internal type) — is the stored
//! kind's.

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;
use serde_json::{Map, Value};

use crate::json as j;
use crate::resource::View;

mod hpa;

/// `events.k8s.io/v1` Event fields and the core `v1` fields they are stored as
/// (`pkg/apis/events/v1` conversion). The fields not listed have the same name in both.
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

impl View {
    /// `apiVersion` of the stored shape.
    fn storage_api_version(self) -> &'static str {
        match self {
            View::EventsV1 => "v1",
            View::AutoscalingV1 => "autoscaling/v2",
        }
    }

    /// `apiVersion` of the view's shape.
    fn api_version(self) -> &'static str {
        match self {
            View::EventsV1 => "events.k8s.io/v1",
            View::AutoscalingV1 => "autoscaling/v1",
        }
    }

    /// The stored object in the view's shape, as kube's typed encoder writes it.
    pub fn to_view(self, stored: Value) -> Value {
        let Value::Object(mut map) = stored else {
            return stored;
        };
        match self {
            View::EventsV1 => {
                rename(&mut map, EVENT_FIELDS, false);
                // events.k8s.io/v1 omits empty strings and zero counts and times; its
                // `regarding`, `deprecatedSource` and `eventTime` are always written.
                for key in [
                    "reportingController",
                    "reportingInstance",
                    "action",
                    "reason",
                    "note",
                    "type",
                ] {
                    if map.get(key).is_some_and(|v| v.as_str() == Some("")) {
                        map.remove(key);
                    }
                }
                for key in ["deprecatedFirstTimestamp", "deprecatedLastTimestamp"] {
                    if map.get(key).is_some_and(Value::is_null) {
                        map.remove(key);
                    }
                }
                if map.get("deprecatedCount").and_then(Value::as_i64) == Some(0) {
                    map.remove("deprecatedCount");
                }
                for key in ["regarding", "deprecatedSource"] {
                    map.entry(key).or_insert_with(|| Value::Object(Map::new()));
                }
                map.entry("eventTime").or_insert(Value::Null);
            }
            View::AutoscalingV1 => hpa::to_v1(&mut map),
        }
        map.insert("apiVersion".into(), Value::from(self.api_version()));
        Value::Object(map)
    }

    /// A body (a whole object, or a partial one such as an applied configuration) in the view's
    /// shape, in the stored shape: only the fields present are converted, nothing is added.
    pub fn to_storage(self, body: Value) -> Value {
        let Value::Object(mut map) = body else {
            return body;
        };
        match self {
            View::EventsV1 => rename(&mut map, EVENT_FIELDS, true),
            View::AutoscalingV1 => hpa::to_v2(&mut map),
        }
        if map.contains_key("apiVersion") {
            map.insert("apiVersion".into(), Value::from(self.storage_api_version()));
        }
        Value::Object(map)
    }

    /// Stored bytes in the view's shape (for answers and reads); the bytes as they are when
    /// they are not a JSON object.
    pub fn bytes_to_view(self, stored: &[u8]) -> Cow<'_, [u8]> {
        match serde_json::from_slice::<Value>(stored) {
            Ok(obj @ Value::Object(_)) => Cow::Owned(j::to_vec(&self.to_view(obj))),
            _ => Cow::Borrowed(stored),
        }
    }

    /// [`Self::bytes_to_view`] of an owned answer.
    pub fn answer(self, json: Vec<u8>) -> Vec<u8> {
        match self.bytes_to_view(&json) {
            Cow::Owned(converted) => converted,
            Cow::Borrowed(_) => json,
        }
    }
}

/// Renames the top-level fields of `map` by `pairs` (view name, stored name): view to stored
/// when `to_storage`, stored to view otherwise. A stored name in a view's body is no field of
/// the view: kube's decoder drops it (the unknown-field check has reported it already), so it
/// cannot take the place of the field it names.
fn rename(map: &mut Map<String, Value>, pairs: &[(&str, &str)], to_storage: bool) {
    if to_storage {
        for &(_, stored) in pairs {
            map.remove(stored);
        }
    }
    for &(view, stored) in pairs {
        let (from, to) = if to_storage {
            (view, stored)
        } else {
            (stored, view)
        };
        if let Some(value) = map.remove(from) {
            map.insert(to.into(), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_event_round_trips_through_both_shapes() {
        let view = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "e", "namespace": "default"},
            "eventTime": "2026-01-01T00:00:00.000000Z", "reportingController": "c.example/x",
            "reportingInstance": "i", "action": "A", "reason": "R", "note": "n", "type": "Normal",
            "regarding": {"kind": "Pod", "name": "p"}, "related": {"kind": "Node", "name": "n"},
            "series": {"count": 2, "lastObservedTime": "2026-01-01T00:00:01.000000Z"},
            "deprecatedSource": {"component": "c"}, "deprecatedCount": 3,
            "deprecatedFirstTimestamp": "2026-01-01T00:00:00Z",
            "deprecatedLastTimestamp": "2026-01-01T00:00:02Z"});
        let stored = View::EventsV1.to_storage(view.clone());
        assert_eq!(
            stored,
            json!({"apiVersion": "v1", "kind": "Event",
                "metadata": {"name": "e", "namespace": "default"},
                "eventTime": "2026-01-01T00:00:00.000000Z", "reportingComponent": "c.example/x",
                "reportingInstance": "i", "action": "A", "reason": "R", "message": "n",
                "type": "Normal", "involvedObject": {"kind": "Pod", "name": "p"},
                "related": {"kind": "Node", "name": "n"},
                "series": {"count": 2, "lastObservedTime": "2026-01-01T00:00:01.000000Z"},
                "source": {"component": "c"}, "count": 3,
                "firstTimestamp": "2026-01-01T00:00:00Z",
                "lastTimestamp": "2026-01-01T00:00:02Z"})
        );
        assert_eq!(View::EventsV1.to_view(stored), view);
    }

    #[test]
    fn a_core_event_reads_as_kube_writes_events_v1() {
        let core = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"},
            "involvedObject": {"kind": "Node", "name": "a"}, "reason": "R", "message": "m",
            "source": {}, "count": 0, "firstTimestamp": null, "lastTimestamp": null,
            "reportingComponent": "", "reportingInstance": ""});
        assert_eq!(
            View::EventsV1.to_view(core),
            json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"},
                "regarding": {"kind": "Node", "name": "a"}, "reason": "R", "note": "m",
                "deprecatedSource": {}, "eventTime": null})
        );
    }

    #[test]
    fn a_stored_name_in_a_view_body_stays_unknown() {
        let stored = View::EventsV1.to_storage(json!({"message": "m", "note": "n"}));
        assert_eq!(stored, json!({"message": "n"}));
    }
}
