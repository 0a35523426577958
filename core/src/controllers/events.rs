//! Recording core/v1 `Event` objects for what controllers do, so `kubectl describe` shows it.
//! Events are best-effort: a full store drops them rather than failing the action they describe.

use serde_json::{Value, json};

use crate::cluster::Cluster;
use crate::cluster::WriteContext;
use crate::resource::ResourceId;
use crate::{UnixTime, json as j};

/// The object an event is about.
pub(crate) struct Involved<'a> {
    pub(crate) kind: &'a str,
    pub(crate) api_version: &'a str,
    pub(crate) namespace: &'a str,
    pub(crate) name: &'a str,
    pub(crate) uid: &'a str,
}

impl<'a> Involved<'a> {
    /// The involved-object reference of a stored object.
    pub(crate) fn of(obj: &'a Value) -> Self {
        Self {
            kind: j::str_at(obj, "/kind"),
            api_version: j::str_at(obj, "/apiVersion"),
            namespace: j::str_at(obj, "/metadata/namespace"),
            name: j::str_at(obj, "/metadata/name"),
            uid: j::str_at(obj, "/metadata/uid"),
        }
    }
}

impl Cluster {
    /// Records an event from `component` about `involved`.
    pub(crate) fn record_event(
        &mut self,
        now: UnixTime,
        involved: &Involved<'_>,
        kind: &str,
        reason: &str,
        message: &str,
        component: &str,
    ) {
        // Cluster-scoped objects (nodes) get their events in `default`, as kube-apiserver does.
        let namespace = if involved.namespace.is_empty() {
            "default"
        } else {
            involved.namespace
        };
        let name = alloc::format!("{}.{:x}", involved.name, now.nanos ^ self.store.revision());
        let mut event = json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": {
                "kind": involved.kind,
                "apiVersion": involved.api_version,
                "name": involved.name,
                "uid": involved.uid,
            },
            "reason": reason,
            "message": message,
            "type": kind,
            "source": {"component": component},
            "reportingComponent": component,
            "reportingInstance": "",
            "firstTimestamp": now.rfc3339(),
            "lastTimestamp": now.rfc3339(),
            "count": 1,
        });
        if !involved.namespace.is_empty()
            && let Some(obj) = event
                .get_mut("involvedObject")
                .and_then(Value::as_object_mut)
        {
            obj.insert("namespace".into(), Value::from(involved.namespace));
        }
        // The component's process records the event under its own field manager.
        let manager = match component {
            "default-scheduler" => "kube-scheduler",
            c if c.ends_with("-controller") => "kube-controller-manager",
            other => other,
        };
        let _ = self.create_internal(
            &WriteContext::server(now),
            ResourceId::Events,
            namespace,
            &mut event,
            manager,
        );
    }
}
