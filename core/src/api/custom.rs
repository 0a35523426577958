//! Custom resources on the request path: the conversions between the version a request is
//! served in and the storage version (conversion `None`: only `apiVersion` changes), the
//! pruning and defaulting kube applies to objects read from storage, and the CRD-specific
//! steps of writes (the registry kept in step with stored CRD objects, the
//! `customresourcecleanup` finalizer on delete).

use alloc::borrow::Cow;
use alloc::vec::Vec;
use serde_json::{Value, json};

use super::Cluster;
use crate::crd::{self, Served};
use crate::store::{ObjectKey, StoredObject};
use crate::{Error, json as j};

/// Whether `stored` (an object of `served`'s definition) must be rewritten to be served in
/// `served`'s version: it predates the definition's current form (so it may hold fields now
/// pruned, or lack defaults now given), or it is stored in another version.
pub(crate) fn needs_view(served: &Served, stored: &StoredObject) -> bool {
    let d = &served.definition;
    stored.revision <= d.revision || !d.version(&served.version().name).is_some_and(|v| v.storage)
}

/// The object as served in `served`'s version: pruned and defaulted by the storage version's
/// schema when it predates the definition's form, with `apiVersion` of the served version.
pub(crate) fn view_value(served: &Served, mut obj: Value, fresh: bool) -> Value {
    let d = &served.definition;
    if !fresh && let Some(storage) = d.storage_version() {
        storage.schema.prune(&mut obj);
        storage.schema.default(&mut obj);
    }
    if let Some(map) = obj.as_object_mut() {
        map.insert("apiVersion".into(), Value::from(served.api_version()));
    }
    obj
}

/// The stored object's bytes as served in `served`'s version (its bytes as stored when
/// nothing changes).
pub(crate) fn view_bytes<'a>(served: &Served, stored: &'a StoredObject) -> Cow<'a, [u8]> {
    let json = stored.json.bytes();
    if !needs_view(served, stored) {
        return json;
    }
    match serde_json::from_slice::<Value>(&json) {
        Ok(obj) => {
            let fresh = stored.revision > served.definition.revision;
            Cow::Owned(j::to_vec(&view_value(served, obj, fresh)))
        }
        Err(_) => json,
    }
}

/// The stored object parsed and served in `served`'s version.
pub(crate) fn view(served: &Served, stored: &StoredObject) -> Result<Value, Error> {
    let obj: Value = serde_json::from_slice(&stored.json.bytes())
        .map_err(|e| Error::Internal(alloc::format!("stored object is not JSON: {e}")))?;
    let fresh = stored.revision > served.definition.revision;
    if !needs_view(served, stored) {
        return Ok(obj);
    }
    Ok(view_value(served, obj, fresh))
}

/// `obj` (in `served`'s version) as stored: in the storage version.
pub(crate) fn to_storage(served: &Served, obj: &mut Value) {
    let d = &served.definition;
    if let (Some(storage), Some(map)) = (d.storage_version(), obj.as_object_mut()) {
        map.insert(
            "apiVersion".into(),
            Value::from(d.api_version(&storage.name)),
        );
    }
}

/// Stored bytes (storage version) rewritten to `served`'s version, for write answers.
pub(crate) fn answer(served: &Served, json: Vec<u8>) -> Vec<u8> {
    let d = &served.definition;
    if d.storage_version()
        .is_some_and(|s| s.name == served.version().name)
    {
        return json;
    }
    match serde_json::from_slice::<Value>(&json) {
        Ok(mut obj) => {
            if let Some(map) = obj.as_object_mut() {
                map.insert("apiVersion".into(), Value::from(served.api_version()));
            }
            j::to_vec(&obj)
        }
        Err(_) => json,
    }
}

/// Whether an update of a custom resource changes its generation: anything but `metadata`
/// (and `status`, when it is a subresource) changed, as kube's CR strategy decides.
pub(crate) fn spec_changed(served: &Served, old: &Value, new: &Value) -> bool {
    let status_sub = served.version().status;
    let strip = |v: &Value| -> Value {
        let mut v = v.clone();
        if let Some(map) = v.as_object_mut() {
            map.remove("metadata");
            map.remove("apiVersion");
            if status_sub {
                map.remove("status");
            }
        }
        v
    };
    strip(old) != strip(new)
}

impl Cluster {
    /// Before a CRD object is stored: what installing it will be, its storage form dating from
    /// `revision` (refused when a budget is full, so the write changes nothing).
    pub(crate) fn prepare_crd(
        &self,
        key: &ObjectKey,
        obj: &Value,
        revision: u64,
    ) -> Result<Option<crd::Definition>, Error> {
        if key.resource != crate::resource::ResourceId::CustomResourceDefinitions {
            return Ok(None);
        }
        self.crds.prepare(obj, revision).map(Some)
    }

    /// The first `DELETE` of a CRD: it is marked, given the cleanup finalizer and the
    /// `Terminating` condition, and left for the CRD controller, which deletes its objects
    /// and then the finalizer (kube's CRD REST `Delete`).
    pub(super) fn begin_crd_deletion(
        &mut self,
        ctx: &crate::cluster::WriteContext,
        key: &ObjectKey,
        mut obj: Value,
    ) -> Result<(u16, Vec<u8>), Error> {
        let now = ctx.at;
        if obj
            .pointer("/metadata/deletionTimestamp")
            .is_some_and(|t| !t.is_null())
        {
            return Ok((200, j::to_vec(&obj)));
        }
        let Some(meta) = crate::controllers::meta_mut(&mut obj) else {
            return Err(Error::Internal(
                "a CustomResourceDefinition without metadata".into(),
            ));
        };
        meta.insert("deletionTimestamp".into(), Value::from(now.rfc3339()));
        let finalizers = meta
            .entry("finalizers")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Some(list) = finalizers.as_array_mut()
            && !list
                .iter()
                .any(|f| f.as_str() == Some(crd::CLEANUP_FINALIZER))
        {
            list.push(Value::from(crd::CLEANUP_FINALIZER));
        }
        let status = obj
            .as_object_mut()
            .map(|m| m.entry("status").or_insert_with(|| json!({})));
        if let Some(status) = status.and_then(Value::as_object_mut) {
            let conditions = status
                .entry("conditions")
                .or_insert_with(|| Value::Array(Vec::new()));
            if !conditions.is_array() {
                *conditions = Value::Array(Vec::new());
            }
            if let Some(list) = conditions.as_array_mut() {
                crate::controllers::set_condition(
                    list,
                    now,
                    "Terminating",
                    "True",
                    "InstanceDeletionPending",
                    "CustomResourceDefinition marked for deletion; CustomResource deletion will begin soon",
                    false,
                );
            }
        }
        let json = self.write_existing(ctx, key, &mut obj)?;
        Ok((200, json))
    }

    /// Names of the namespaced custom resources' store ids, for namespace deletion.
    pub(crate) fn namespaced_custom_ids(&self) -> Vec<crate::resource::ResourceId> {
        self.crds
            .definitions()
            .filter(|d| d.namespaced)
            .map(|d| crate::resource::ResourceId::Custom(d.id))
            .collect()
    }

    /// Every custom resource's store id.
    pub(crate) fn custom_ids(&self) -> Vec<crate::resource::ResourceId> {
        self.crds
            .definitions()
            .map(|d| crate::resource::ResourceId::Custom(d.id))
            .collect()
    }
}
