//! Create and update of resource objects, and the tail update and patch share
//! (`write_update`): admission, server-owned metadata, subresource scoping, defaults, validation,
//! generation, no-op detection, then the one write.

use alloc::string::ToString;
use alloc::vec::Vec;
use serde_json::Value;

use super::fields::{FieldValidation, Ownership};
use super::{answer, dry_run_requested, not_found};
use crate::admission::{self, Attempt, Operation};
use crate::api::custom;
use crate::api::request::{ApiRequest, ApiResponse, Query};
use crate::api::{Cluster, defaults};
use crate::auth::Identity;
use crate::cluster::WriteContext;
use crate::cluster::deletion;
use crate::cluster::object::qualified;
use crate::cluster::object::{parse_stored, remove_meta, set_meta};
use crate::resource::{ResourceId, ResourceType};
use crate::store::ObjectKey;
use crate::{Error, UnixTime, json as j, patch, validation};

impl Cluster {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn create(
        &mut self,
        now: UnixTime,
        req: &ApiRequest<'_>,
        identity: &Identity,
        ownership: Ownership<'_>,
        rt: &ResourceType<'_>,
        namespace: &str,
        mut obj: Value,
        query: &Query,
    ) -> Result<ApiResponse, Error> {
        let mode = Self::field_validation(query)?;
        let warnings = Self::check_fields(rt, req, &mut obj, mode)?;
        let mut obj = view_to_storage(rt, obj)?;
        // generateName
        if j::str_at(&obj, "/metadata/name").is_empty() {
            let prefix = j::string_at(&obj, "/metadata/generateName");
            if !prefix.is_empty() {
                let name = alloc::format!("{prefix}{}", self.ids.name_suffix());
                set_meta(&mut obj, "name", Value::from(name));
            }
        }
        let name = j::string_at(&obj, "/metadata/name");
        if rt.namespaced {
            set_meta(&mut obj, "namespace", Value::from(namespace));
        }
        strip_server_fields(&mut obj);
        if rt.id == ResourceId::CertificateSigningRequests {
            crate::api::certificates::prepare_create(&mut obj, identity);
        }
        let attempt = Attempt {
            resource: rt,
            subresource: None,
            namespace,
            name: &name,
            operation: Operation::Create(&obj),
        };
        admission::admit(identity, &attempt, &self.store)?;
        // A kubelet registering its own Node (NodeRestriction let only its own name through):
        // held to its stake and stamped as register-worker does. A Node that exists answers
        // kube's 409 below, whatever the stake, as a kubelet expects.
        let registering = match identity {
            Identity::Node(node)
                if rt.id == ResourceId::Nodes
                    && self
                        .store
                        .get(&ObjectKey::new(ResourceId::Nodes, "", &name))
                        .is_none() =>
            {
                Some(node.clone())
            }
            _ => None,
        };
        if let Some(node) = &registering {
            self.stamp_self_registration(now, node, &mut obj)?;
        }
        if rt.id == ResourceId::Pods {
            admission::runtime_class::admit(&self.store, &mut obj)?;
            admission::priority::admit_pod(&self.store, &mut obj)?;
        }
        // Before defaults, as kube fills system metadata before the strategy runs: a Job's
        // generated selector names its uid.
        set_meta(&mut obj, "uid", Value::from(self.ids.uuid()));
        defaults::apply(rt.id, &mut obj, None, now)?;
        if let Some(served) = rt.custom {
            served.version().schema.default(&mut obj);
        }
        validate_object(rt, None, &obj, None)?;
        self.namespace_must_accept(rt, namespace, &name)?;
        self.admit_policies(
            identity,
            &Attempt {
                resource: rt,
                subresource: None,
                namespace,
                name: &name,
                operation: Operation::Create(&obj),
            },
            dry_run_requested(req),
        )?;
        let key = ObjectKey::new(rt.id, namespace, &name);
        if self.store.get(&key).is_some() {
            return Err(Error::AlreadyExists {
                resource: qualified(rt),
                name,
            });
        }
        let charges = self.admit_quota(now, rt.id, namespace, &name, &obj, None)?;
        if rt.id == ResourceId::Services {
            self.allocate_service(&key, &mut obj, None)?;
        }
        set_meta(&mut obj, "creationTimestamp", Value::from(now.rfc3339()));
        if has_generation(rt.id) {
            set_meta(&mut obj, "generation", Value::from(1));
        }
        if let Ownership::Update(manager) = ownership {
            patch::record_update(rt.id, rt.view, None, &mut obj, manager, None, now);
        }
        if let Some(served) = rt.custom {
            custom::to_storage(served, &mut obj);
        }
        if dry_run_requested(req) {
            // What the write would store, without a resourceVersion (kube's storage answers a
            // dry-run create with revision 0); nothing is kept, allocated or announced.
            return Ok(ApiResponse {
                warnings,
                ..ApiResponse::json(201, answer(rt, j::to_vec(&obj)))
            });
        }
        let json = self.write_new(&WriteContext::for_identity(now, identity), key, &mut obj)?;
        self.charge_quotas(now, charges);
        if let Some(node) = &registering {
            self.finish_registration(now, node, &obj)?;
        }
        let json = answer(rt, json);
        Ok(ApiResponse {
            warnings,
            ..ApiResponse::json(201, json)
        })
    }

    /// The ValidatingAdmissionPolicies bound to `attempt` (on the object as it would be
    /// stored); a `Warn` binding's failures join the response's warnings.
    pub(super) fn admit_policies(
        &mut self,
        identity: &Identity,
        attempt: &Attempt<'_>,
        dry_run: bool,
    ) -> Result<(), Error> {
        let outcome = admission::policy::validate(
            &self.store,
            identity,
            attempt,
            dry_run,
            self.config.admission_policy_cost_budget,
        )?;
        self.call.warnings.extend(outcome.warnings);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn update(
        &mut self,
        now: UnixTime,
        req: &ApiRequest<'_>,
        identity: &Identity,
        rt: &ResourceType<'_>,
        namespace: &str,
        name: &str,
        sub: Option<&str>,
        mut obj: Value,
        query: &Query,
    ) -> Result<ApiResponse, Error> {
        let mode = Self::field_validation(query)?;
        let warnings = Self::check_fields(rt, req, &mut obj, mode)?;
        let manager = Self::manager(req, query);
        let ownership = Ownership::Update(&manager);
        let key = ObjectKey::new(rt.id, namespace, name);
        let Some(current) = self.store.get(&key) else {
            if sub.is_none() && creates_on_update(rt.id) {
                return self.create(now, req, identity, ownership, rt, namespace, obj, query);
            }
            return Err(not_found(rt, name));
        };
        let old = match rt.custom {
            Some(served) => custom::view(served, current)?,
            None => parse_stored(current)?,
        };
        let obj = view_to_storage(rt, obj)?;
        let (status, json) = self.write_update(
            now, req, identity, ownership, rt, &key, &old, obj, sub, mode,
        )?;
        Ok(ApiResponse {
            warnings,
            ..ApiResponse::json(status, json)
        })
    }

    /// The shared tail of update and patch: preconditions, server-owned fields, subresource
    /// scoping, defaults, validation, no-op detection and the write itself.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn write_update(
        &mut self,
        now: UnixTime,
        req: &ApiRequest<'_>,
        identity: &Identity,
        ownership: Ownership<'_>,
        rt: &ResourceType<'_>,
        key: &ObjectKey,
        old: &Value,
        mut obj: Value,
        sub: Option<&str>,
        _mode: FieldValidation,
    ) -> Result<(u16, Vec<u8>), Error> {
        let attempt = Attempt {
            resource: rt,
            subresource: sub,
            namespace: &key.namespace,
            name: &key.name,
            operation: Operation::Update { old, new: &obj },
        };
        admission::admit(identity, &attempt, &self.store)?;
        let current_rv = j::string_at(old, "/metadata/resourceVersion");
        let given_rv = j::string_at(&obj, "/metadata/resourceVersion");
        if !given_rv.is_empty() && given_rv != current_rv {
            return Err(Error::Conflict {
                resource: qualified(rt),
                name: key.name.to_string(),
                detail: "the object has been modified; please apply your changes to the latest version and try again".into(),
            });
        }
        let given_uid = j::str_at(&obj, "/metadata/uid");
        if !given_uid.is_empty() && given_uid != j::str_at(old, "/metadata/uid") {
            return Err(Error::Conflict {
                resource: qualified(rt),
                name: key.name.to_string(),
                detail: alloc::format!(
                    "Precondition failed: UID in precondition: {given_uid}, UID in object meta: {}",
                    j::str_at(old, "/metadata/uid")
                ),
            });
        }
        if rt.namespaced {
            set_meta(&mut obj, "namespace", Value::from(&*key.namespace));
        }
        // Server-owned metadata always comes from the stored object.
        for field in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ] {
            match old.pointer(&alloc::format!("/metadata/{field}")) {
                Some(v) => set_meta(&mut obj, field, v.clone()),
                None => remove_meta(&mut obj, field),
            }
        }
        scope_to_subresource(rt, sub, old, &mut obj);
        if rt.id == ResourceId::CertificateSigningRequests {
            crate::api::certificates::prepare_update(sub, &mut obj, old, now);
        }
        if rt.id == ResourceId::Pods {
            admission::priority::keep_pod_priority(&mut obj, old);
        }
        defaults::apply(rt.id, &mut obj, Some(old), now)?;
        if let Some(served) = rt.custom {
            served.version().schema.default(&mut obj);
        }
        validate_object(rt, sub, &obj, Some(old))?;
        self.admit_policies(
            identity,
            &Attempt {
                resource: rt,
                subresource: sub,
                namespace: &key.namespace,
                name: &key.name,
                operation: Operation::Update { old, new: &obj },
            },
            dry_run_requested(req),
        )?;
        if rt.id == ResourceId::Services {
            self.allocate_service(key, &mut obj, Some(old))?;
        }
        let changed = match rt.custom {
            Some(served) => custom::spec_changed(served, old, &obj),
            None if rt.id == ResourceId::EndpointSlices => {
                validation::endpoint_slice_changed(old, &obj)
            }
            None => {
                let desired = desired_state_field(rt.id);
                old.get(desired) != obj.get(desired)
            }
        };
        if has_generation(rt.id) && changed {
            let generation = old
                .pointer("/metadata/generation")
                .and_then(Value::as_u64)
                .unwrap_or(0)
                .saturating_add(1);
            set_meta(&mut obj, "generation", Value::from(generation));
        }
        if let Ownership::Update(manager) = ownership {
            patch::record_update(rt.id, rt.view, Some(old), &mut obj, manager, sub, now);
        }
        set_meta(
            &mut obj,
            "resourceVersion",
            Value::from(current_rv.as_str()),
        );
        if same_ignoring_managed_time(old, &obj) {
            // A no-op write keeps the revision, as kube-apiserver does.
            return Ok((200, answer(rt, j::to_vec(old))));
        }
        let charges = if rt.id == ResourceId::Services && sub.is_none() {
            self.admit_quota(now, rt.id, &key.namespace, &key.name, &obj, Some(old))?
        } else {
            Vec::new()
        };
        if dry_run_requested(req) {
            // kube's storage answers a dry-run update with the stored revision.
            return Ok((200, answer(rt, j::to_vec(&obj))));
        }
        if let Some(served) = rt.custom {
            custom::to_storage(served, &mut obj);
        }
        // Removing the last finalizer of an object being deleted with no grace left completes
        // the deletion.
        let ctx = WriteContext::for_identity(now, identity);
        if rt.id != ResourceId::Namespaces && deletion::completes_deletion(old, &obj) {
            let json = self.write_delete(&ctx, key, &mut obj)?;
            return Ok((200, answer(rt, json)));
        }
        let json = self.write_existing(&ctx, key, &mut obj)?;
        self.charge_quotas(now, charges);
        Ok((200, answer(rt, json)))
    }
}

/// Fields a client may not set on create.
fn strip_server_fields(obj: &mut Value) {
    for field in [
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
        "selfLink",
    ] {
        remove_meta(obj, field);
    }
}

/// On the main resource, status is kept from the stored object; on `/status`, only status changes.
fn scope_to_subresource(rt: &ResourceType<'_>, sub: Option<&str>, old: &Value, obj: &mut Value) {
    let has_status = rt.has_subresource("status");
    match sub {
        None if has_status && rt.id != ResourceId::Namespaces => {
            if let Some(map) = obj.as_object_mut() {
                match old.get("status") {
                    Some(status) => map.insert("status".into(), status.clone()),
                    None => map.remove("status"),
                };
            }
        }
        Some("status") => {
            let status = obj.get("status").cloned();
            let mut next = old.clone();
            if let Some(map) = next.as_object_mut() {
                match status {
                    Some(status) => map.insert("status".into(), status),
                    None => map.remove("status"),
                };
            }
            // Labels and annotations may change through status too (kube allows metadata edits).
            for field in ["labels", "annotations", "resourceVersion", "managedFields"] {
                match obj.pointer(&alloc::format!("/metadata/{field}")) {
                    Some(v) => set_meta(&mut next, field, v.clone()),
                    None if field == "resourceVersion" => {}
                    None => remove_meta(&mut next, field),
                }
            }
            *obj = next;
        }
        _ => {}
    }
}

pub(super) fn has_generation(resource: ResourceId) -> bool {
    matches!(
        resource,
        ResourceId::Deployments
            | ResourceId::ReplicaSets
            | ResourceId::PodDisruptionBudgets
            | ResourceId::FlowSchemas
            | ResourceId::PriorityLevelConfigurations
            | ResourceId::ValidatingWebhookConfigurations
            | ResourceId::MutatingWebhookConfigurations
            | ResourceId::ValidatingAdmissionPolicies
            | ResourceId::ValidatingAdmissionPolicyBindings
            | ResourceId::ReplicationControllers
            | ResourceId::Jobs
            | ResourceId::CronJobs
            | ResourceId::PodTemplates
            | ResourceId::CustomResourceDefinitions
            | ResourceId::EndpointSlices
            | ResourceId::Custom(_)
    )
}

/// A body in the shape of `rt`'s view, in the stored shape, its times parsed as the stored
/// kind's typed decoder parses them (fields the view names differently included); the body as
/// it is for any other resource.
pub(super) fn view_to_storage(rt: &ResourceType<'_>, obj: Value) -> Result<Value, Error> {
    let Some(view) = rt.view else {
        return Ok(obj);
    };
    let mut obj = view.to_storage(obj);
    crate::metatime::normalize(rt.id, &mut obj).map_err(|e| {
        Error::BadRequest(alloc::format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: {e}",
            kind = rt.kind,
            version = rt.version,
        ))
    })?;
    Ok(obj)
}

/// Validates an object about to be written: a built-in kind's rules, or a custom resource's
/// metadata and schema.
fn validate_object(
    rt: &ResourceType<'_>,
    sub: Option<&str>,
    obj: &Value,
    old: Option<&Value>,
) -> Result<(), Error> {
    match rt.custom {
        Some(served) => {
            let causes = served.version().schema.validate(obj);
            validation::validate_custom(&crate::resource::group_kind(rt), obj, old, causes)
        }
        None => validation::validate_as(rt, sub, obj, old),
    }
}

/// The field whose change bumps `metadata.generation` (a PodTemplate has no `spec`, the webhook
/// configurations neither: their `webhooks` are their desired state).
fn desired_state_field(resource: ResourceId) -> &'static str {
    match resource {
        ResourceId::PodTemplates => "template",
        ResourceId::ValidatingWebhookConfigurations | ResourceId::MutatingWebhookConfigurations => {
            "webhooks"
        }
        _ => "spec",
    }
}

fn creates_on_update(resource: ResourceId) -> bool {
    matches!(
        resource,
        ResourceId::Leases | ResourceId::Endpoints | ResourceId::Events
    )
}

/// Whether an update changes nothing but the timestamps of managedFields entries.
fn same_ignoring_managed_time(old: &Value, new: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(entries) = v
            .pointer_mut("/metadata/managedFields")
            .and_then(Value::as_array_mut)
        {
            for entry in entries {
                if let Some(map) = entry.as_object_mut() {
                    map.remove("time");
                }
            }
        }
        v
    };
    old == new || strip(old) == strip(new)
}
