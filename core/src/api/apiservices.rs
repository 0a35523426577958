//! `apiregistration.k8s.io/v1` `APIService`s as kube-apiserver shows them when nothing is
//! aggregated: one `Local` APIService per served group-version (`v1.` for the core group, the
//! built-in groups with kube's priorities, each custom resource group-version with the priority
//! the CRD registration controller gives it), always `Available`. They are derived from what is
//! served, as kube-aggregator's autoregister controller keeps them in step, so they cannot
//! disagree with discovery; nothing is stored, and they are read-only (no aggregated servers).

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::Cluster;
use super::request::{self, ApiRequest, ApiResponse, Method, Query, Representation};
use crate::auth::Identity;
use crate::resource::ResourceId;
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::ObjectKey;
use crate::{Error, UnixTime, json as j};

/// The group APIServices are served in.
pub const GROUP: &str = "apiregistration.k8s.io";
/// The version APIServices are served in.
pub const VERSION: &str = "v1";
/// The plural in the path.
pub const PLURAL: &str = "apiservices";
/// The singular in discovery.
pub const SINGULAR: &str = "apiservice";
/// The kind of one object.
pub const KIND: &str = "APIService";
/// What may be done with them: they are read-only here.
pub const VERBS: &[&str] = &["get", "list"];

/// The label kube-aggregator's autoregister controller puts on the APIServices it manages.
const AUTOMANAGED: &str = "kube-aggregator.kubernetes.io/automanaged";

/// kube-apiserver 1.32's `(groupPriorityMinimum, versionPriority)` of the built-in group
/// versions served here (`DefaultGenericAPIServicePriorities` and kube-apiserver's own
/// additions); a group version without one gets no APIService, as upstream.
fn builtin_priority(group: &str, version: &str) -> Option<(i64, i64)> {
    let priority = match (group, version) {
        ("", "v1") => (18000, 1),
        ("apps", "v1") => (17800, 15),
        ("events.k8s.io", "v1") => (17750, 15),
        ("authentication.k8s.io", "v1") => (17700, 15),
        ("authorization.k8s.io", "v1") => (17600, 15),
        ("autoscaling", "v1") => (17500, 15),
        ("autoscaling", "v2") => (17500, 30),
        ("batch", "v1") => (17400, 15),
        ("certificates.k8s.io", "v1") => (17300, 15),
        ("networking.k8s.io", "v1") => (17200, 15),
        ("policy", "v1") => (17100, 15),
        ("rbac.authorization.k8s.io", "v1") => (17000, 15),
        ("storage.k8s.io", "v1") => (16800, 15),
        ("scheduling.k8s.io", "v1") => (16600, 15),
        ("apiextensions.k8s.io" | "admissionregistration.k8s.io", "v1") => (16700, 15),
        ("coordination.k8s.io", "v1") => (16500, 15),
        ("node.k8s.io", "v1") => (16300, 15),
        ("discovery.k8s.io", "v1") => (16200, 15),
        ("flowcontrol.apiserver.k8s.io", "v1") => (16100, 21),
        _ => return None,
    };
    Some(priority)
}

/// The CRD registration controller's priorities for a custom resource group version.
const CUSTOM_PRIORITY: (i64, i64) = (1000, 100);

/// `version.group`, the name kube requires of an APIService (`v1.` for the core group).
fn name_of(group: &str, version: &str) -> String {
    alloc::format!("{version}.{group}")
}

/// A stable uid per cluster and name: the bootstrap namespace's uid hashed with the name.
fn uid_of(cluster: &str, name: &str) -> String {
    let digest = Sha256::new()
        .chain_update(cluster.as_bytes())
        .chain_update(b"/apiservices/")
        .chain_update(name.as_bytes())
        .finalize();
    let hex: String = digest
        .iter()
        .take(16)
        .map(|b| alloc::format!("{b:02x}"))
        .collect();
    let part = |from: usize, to: usize| hex.get(from..to).unwrap_or("");
    alloc::format!(
        "{}-{}-{}-{}-{}",
        part(0, 8),
        part(8, 12),
        part(12, 16),
        part(16, 20),
        part(20, 32)
    )
}

impl Cluster {
    /// Every APIService, sorted by name. Each carries the bootstrap `default` Namespace's
    /// creation time and resourceVersion: they are registered when the server starts (the
    /// custom resources' ones when their definition is established, which the registry does not
    /// date; they show the same time).
    pub(crate) fn api_services(&self) -> Vec<Value> {
        let bootstrap = self
            .load(&ObjectKey::new(ResourceId::Namespaces, "", "default"))
            .unwrap_or(Value::Null);
        let created = j::str_at(&bootstrap, "/metadata/creationTimestamp");
        let revision = j::str_at(&bootstrap, "/metadata/resourceVersion");
        let cluster = j::str_at(&bootstrap, "/metadata/uid");
        let mut out: Vec<(String, Value)> = Vec::new();
        let mut add = |group: &str, version: &str, priority: (i64, i64), managed: &str| {
            let name = name_of(group, version);
            if out.iter().any(|(n, _)| *n == name) {
                return;
            }
            let mut spec = Map::new();
            if !group.is_empty() {
                spec.insert("group".into(), group.into());
            }
            spec.insert("version".into(), version.into());
            spec.insert("groupPriorityMinimum".into(), priority.0.into());
            spec.insert("versionPriority".into(), priority.1.into());
            let object = json!({
                "kind": KIND,
                "apiVersion": alloc::format!("{GROUP}/{VERSION}"),
                "metadata": {
                    "name": name,
                    "uid": uid_of(cluster, &name),
                    "resourceVersion": revision,
                    "creationTimestamp": created,
                    "labels": {AUTOMANAGED: managed},
                },
                "spec": spec,
                "status": {"conditions": [{
                    "type": "Available",
                    "status": "True",
                    "lastTransitionTime": created,
                    "reason": "Local",
                    "message": "Local APIServices are always available",
                }]},
            });
            out.push((name, object));
        };
        add("", "v1", (18000, 1), "onstart");
        for (group, versions) in super::discovery::all_groups(&self.crds) {
            for version in versions {
                match builtin_priority(&group, &version) {
                    Some(priority) => add(&group, &version, priority, "onstart"),
                    None if !self.crds.served_in(&group, &version).is_empty() => {
                        add(&group, &version, CUSTOM_PRIORITY, "true");
                    }
                    None => {}
                }
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out.into_iter().map(|(_, o)| o).collect()
    }

    /// `GET` of `/apis/apiregistration.k8s.io/v1/apiservices[/{name}]`: one APIService or the
    /// list, as JSON, a Table or metadata only. Writes are refused (nothing is aggregated) and
    /// watches too (the set only changes with the CRDs installed).
    pub(super) fn handle_api_services(
        &self,
        now: UnixTime,
        req: &ApiRequest<'_>,
        identity: &Identity,
        name: Option<&str>,
    ) -> Result<ApiResponse, Error> {
        let verb = match (req.method, name) {
            (Method::Get | Method::Head, Some(_)) => "get",
            (Method::Get | Method::Head, None) => "list",
            _ => {
                return Err(Error::MethodNotAllowed(alloc::format!(
                    "the server does not allow this method on the requested resource ({})",
                    req.path
                )));
            }
        };
        if matches!(
            identity,
            Identity::Node(_)
                | Identity::Relay
                | Identity::ServiceAccount(_)
                | Identity::Component(_)
        ) {
            return Err(crate::authz::forbidden_error(
                &alloc::format!("{PLURAL}.{GROUP}"),
                name.unwrap_or(""),
                &alloc::format!(
                    "User \"{}\" cannot {verb} resource \"{PLURAL}\" in API group \"{GROUP}\" at the cluster scope",
                    identity.username()
                ),
            ));
        }
        let query = Query::parse(req.query)?;
        if query.flag("watch")? {
            return Err(Error::MethodNotAllowed(alloc::format!(
                "the server does not allow this method on the requested resource ({})",
                req.path
            )));
        }
        let representation = request::negotiate(req.accept)?;
        let all = self.api_services();
        if let Some(name) = name {
            let object = all
                .into_iter()
                .find(|o| j::str_at(o, "/metadata/name") == name)
                .ok_or_else(|| Error::NotFound {
                    resource: alloc::format!("{PLURAL}.{GROUP}"),
                    name: name.into(),
                })?;
            return match representation {
                Representation::Table => Ok(table_response(&[object], now)),
                Representation::Metadata(view) if !view.list && !view.protobuf => {
                    let partial =
                        super::metadata::partial(view.api_version, &crate::json::to_vec(&object));
                    Ok(ApiResponse::json(200, crate::json::to_vec(&partial)))
                }
                Representation::Metadata(_) => Err(not_acceptable()),
                _ => Ok(ApiResponse::json(200, crate::json::to_vec(&object))),
            };
        }
        let labels = LabelSelector::parse(query.get("labelSelector").unwrap_or(""))?;
        // Only the metadata fields, as for every kind without its own selectable fields.
        let fields = FieldSelector::parse(
            ResourceId::Custom(u32::MAX),
            query.get("fieldSelector").unwrap_or(""),
        )?;
        let items: Vec<Value> = all
            .into_iter()
            .filter(|o| {
                labels.matches(&crate::selector::labels_of(o))
                    && fields.matches_object::<[(&str, &str)]>(
                        "",
                        j::str_at(o, "/metadata/name"),
                        &[],
                    )
            })
            .collect();
        let list_metadata = json!({"resourceVersion": self.store.revision().to_string()});
        match representation {
            Representation::Table => Ok(table_response(&items, now)),
            Representation::Metadata(view) if view.list && !view.protobuf => {
                let bodies: Vec<Vec<u8>> = items.iter().map(crate::json::to_vec).collect();
                Ok(ApiResponse::json(
                    200,
                    super::metadata::list_body(
                        view,
                        &list_metadata,
                        bodies
                            .iter()
                            .map(|b| alloc::borrow::Cow::Borrowed(b.as_slice())),
                    ),
                ))
            }
            Representation::Metadata(_) => Err(not_acceptable()),
            _ => Ok(ApiResponse::json(
                200,
                crate::json::to_vec(&json!({
                    "kind": "APIServiceList",
                    "apiVersion": alloc::format!("{GROUP}/{VERSION}"),
                    "metadata": list_metadata,
                    "items": items,
                })),
            )),
        }
    }
}

fn not_acceptable() -> Error {
    Error::NotAcceptable(
        "only the following media types are accepted: application/json, application/yaml".into(),
    )
}

/// kube's APIService columns: Name, Service (`Local` or `namespace/name`), Available
/// (`True`, or `False (reason)`), Age.
fn table_response(objects: &[Value], now: UnixTime) -> ApiResponse {
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let age = super::table::age(o.pointer("/metadata/creationTimestamp"), now);
            json!({
                "cells": [j::str_at(o, "/metadata/name"), "Local", "True", age],
                "object": super::metadata::partial("meta.k8s.io/v1", &crate::json::to_vec(o)),
            })
        })
        .collect();
    let column = |name: &str, format: &str, description: &str| json!({"name": name, "type": "string", "format": format, "description": description, "priority": 0});
    let table = json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {},
        "columnDefinitions": [
            column("Name", "name", "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"),
            column("Service", "", "The reference to the service that hosts this API endpoint."),
            column("Available", "", "Whether this service is available."),
            column("Age", "", "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"),
        ],
        "rows": rows,
    });
    ApiResponse {
        content_type: request::TABLE,
        ..ApiResponse::json(200, crate::json::to_vec(&table))
    }
}
