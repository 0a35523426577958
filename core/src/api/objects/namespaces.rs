//! Namespace lifecycle: no new content in a terminating namespace, the start of a namespace's
//! deletion, and the passes that empty it before it goes.

use alloc::string::ToString;
use alloc::vec::Vec;
use serde_json::{Value, json};

use crate::api::Cluster;
use crate::api::request::ApiResponse;
use crate::cluster::WriteContext;
use crate::cluster::deletion::DeleteOptions;
use crate::cluster::object::qualified;
use crate::cluster::object::{parse_stored, set_meta};
use crate::controllers::gc::Propagation;
use crate::resource::{ResourceId, ResourceType};
use crate::store::ObjectKey;
use crate::{Error, UnixTime, json as j};

impl Cluster {
    pub(super) fn namespace_must_accept(
        &self,
        rt: &ResourceType<'_>,
        namespace: &str,
        name: &str,
    ) -> Result<(), Error> {
        if !rt.namespaced {
            return Ok(());
        }
        let key = ObjectKey::new(ResourceId::Namespaces, "", namespace);
        let Some(ns) = self.store.get(&key) else {
            return Err(Error::NotFound {
                resource: "namespaces".into(),
                name: namespace.into(),
            });
        };
        if self.terminating.contains(namespace) || ns.index.field_is("status.phase", "Terminating")
        {
            return Err(Error::Forbidden {
                resource: qualified(rt),
                name: name.into(),
                message: alloc::format!(
                    "{} \"{name}\" is forbidden: unable to create new content in namespace {namespace} because it is being terminated",
                    qualified(rt)
                ),
                causes: alloc::vec![crate::error::Cause {
                    reason: "NamespaceTerminating",
                    message: alloc::format!("namespace {namespace} is being terminated"),
                    field: "metadata.namespace".into(),
                }],
            });
        }
        Ok(())
    }

    pub(super) fn begin_namespace_deletion(
        &mut self,
        ctx: &WriteContext,
        key: &ObjectKey,
        mut obj: Value,
        dry_run: bool,
    ) -> Result<ApiResponse, Error> {
        if matches!(&*key.name, "default" | "kube-system" | "kube-public") {
            return Err(Error::Forbidden {
                resource: "namespaces".into(),
                name: key.name.to_string(),
                message: alloc::format!(
                    "namespaces \"{}\" is forbidden: this namespace may not be deleted",
                    key.name
                ),
                causes: Vec::new(),
            });
        }
        if obj.pointer("/metadata/deletionTimestamp").is_none() {
            set_meta(&mut obj, "deletionTimestamp", Value::from(ctx.at.rfc3339()));
            if let Some(map) = obj.as_object_mut() {
                map.insert("status".into(), json!({"phase": "Terminating"}));
            }
            if dry_run {
                return Ok(ApiResponse::json(200, j::to_vec(&obj)));
            }
            let json = self.write_existing(ctx, key, &mut obj)?;
            self.terminating.insert(key.name.to_string());
            self.namespaces_due.insert(key.name.to_string());
            return Ok(ApiResponse::json(200, json));
        }
        if !dry_run {
            self.terminating.insert(key.name.to_string());
            self.namespaces_due.insert(key.name.to_string());
        }
        Ok(ApiResponse::json(200, j::to_vec(&obj)))
    }

    /// Deletes what is left in a terminating namespace (custom resources included), then the
    /// namespace.
    pub(crate) fn finish_namespace_deletion(
        &mut self,
        now: UnixTime,
        namespace: &str,
    ) -> NamespacePass {
        let mut pass = NamespacePass::Done;
        let mut resources: Vec<ResourceId> = crate::resource::RESOURCES
            .iter()
            .filter(|r| r.namespaced)
            .map(|r| r.id)
            .collect();
        resources.extend(self.namespaced_custom_ids());
        for resource in resources {
            let keys: Vec<ObjectKey> = self
                .store
                .range(resource, Some(namespace), None)
                .map(|(k, _)| k.clone())
                .collect();
            for key in keys {
                let Some(obj) = self.load(&key) else {
                    continue;
                };
                // kube's namespace controller deletes each resource with Background
                // propagation: pods gracefully, and whatever a grace period or a finalizer
                // holds keeps the namespace until it goes.
                let background = DeleteOptions::with_propagation(Propagation::Background);
                match self.delete_object(&WriteContext::server(now), &key, obj, &background) {
                    Ok(d) if d.gone => {}
                    Ok(_) if pass == NamespacePass::Done => pass = NamespacePass::Held,
                    Ok(_) => {}
                    Err(_) => pass = NamespacePass::Retry,
                }
            }
        }
        if pass != NamespacePass::Done {
            return pass;
        }
        let key = ObjectKey::new(ResourceId::Namespaces, "", namespace);
        if let Some(object) = self.store.get(&key)
            && let Ok(mut obj) = parse_stored(object)
        {
            let _ = self.write_delete(&WriteContext::server(now), &key, &mut obj);
        }
        NamespacePass::Done
    }
}

/// How one pass over a terminating namespace ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NamespacePass {
    /// Its contents and the namespace are gone.
    Done,
    /// A grace period or a finalizer holds some of its contents: look again when one changes.
    Held,
    /// A write was refused: try again soon.
    Retry,
}
