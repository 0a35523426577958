//! Reads and writes of resource objects: [`Cluster::handle_resource`] routes a request on a
//! resource path to its verb. Each verb family lives in its own file below; this file keeps the
//! routing and the few answers every verb shares (not found, the stored bytes in the request's
//! version, dry run).

mod binding;
mod body;
mod bootstrap;
pub(crate) mod connect;
mod delete;
mod fields;
mod namespaces;
mod patching;
mod reads;
mod scale;
mod writes;

pub(crate) use namespaces::NamespacePass;

use alloc::vec::Vec;

use super::custom;
use super::request::{ApiRequest, ApiResponse, Method, Query, ResourcePath};
use super::{Cluster, Outcome};
use crate::auth::Identity;
use crate::cluster::WriteContext;
use crate::cluster::object::qualified;
use crate::resource::{ResourceId, ResourceType};
use crate::{Error, UnixTime, json as j, validation};
use fields::Ownership;

fn not_found(rt: &ResourceType<'_>, name: &str) -> Error {
    Error::NotFound {
        resource: qualified(rt),
        name: name.into(),
    }
}

impl Cluster {
    pub(super) fn handle_resource(
        &mut self,
        now: UnixTime,
        req: &ApiRequest<'_>,
        path: &ResourcePath<'_>,
        identity: &Identity,
    ) -> Result<Outcome, Error> {
        let query = Query::parse(req.query)?;
        let rt = &path.resource.rt();
        if let (Some(name), Some(sub), Some(ns)) = (path.name, path.subresource, path.namespace)
            && rt.id == ResourceId::Pods
            && connect::SUBRESOURCES.contains(&sub)
        {
            return self.connect(req, ns, name, sub, &query);
        }
        if let Some(sub) = path.subresource
            && !rt.has_subresource(sub)
        {
            return Err(Error::PathNotFound(req.path.into()));
        }
        if let Some(ns) = path.namespace
            && !validation::is_dns1123_label(ns)
        {
            return Err(Error::NotFound {
                resource: "namespaces".into(),
                name: ns.into(),
            });
        }
        let namespace = path.namespace.unwrap_or("");
        let watch = path.watch_prefix || query.flag("watch")?;
        if let Some(served) = rt.custom
            && served.definition.terminating
            && req.method == Method::Post
        {
            return Err(Error::MethodNotAllowed(
                "create not allowed while custom resource definition is terminating".into(),
            ));
        }
        match req.method {
            Method::Post => Self::check_field_manager(&query, "CreateOptions")?,
            Method::Put => Self::check_field_manager(&query, "UpdateOptions")?,
            Method::Patch => Self::check_field_manager(&query, "PatchOptions")?,
            _ => {}
        }
        if let Some(options) = write_options_kind(req.method) {
            query.dry_run(options)?;
        }
        match (req.method, path.name, path.subresource) {
            (Method::Get | Method::Head, None, None) if watch => {
                self.start_watch(now, req, rt, path.namespace, None, &query)
            }
            (Method::Get | Method::Head, Some(name), None) if watch => {
                self.start_watch(now, req, rt, path.namespace, Some(name), &query)
            }
            (Method::Get | Method::Head, None, None) => {
                self.list(now, req, rt, path.namespace, &query)
            }
            (Method::Get | Method::Head, Some(name), Some("scale")) => {
                self.get_scale(rt, namespace, name).map(Into::into)
            }
            (Method::Put, Some(name), Some("scale")) => {
                // client-go sends the Scale in protobuf when it speaks protobuf.
                let body = self.decode_body(req, "autoscaling/v1", "Scale")?;
                self.put_scale(now, req, identity, rt, namespace, name, body, &query)
                    .map(Into::into)
            }
            (Method::Patch, Some(name), Some("scale")) => self
                .patch_scale(now, req, identity, rt, namespace, name, &query)
                .map(Into::into),
            (Method::Get | Method::Head, Some(name), None | Some("status" | "approval")) => {
                self.get(now, req, rt, namespace, name, &query)
            }
            (Method::Post, None, None) => {
                let body = self.body(req, rt, namespace, None)?;
                let manager = Self::manager(req, &query);
                let ownership = Ownership::Update(&manager);
                self.create(
                    now, req, identity, ownership, rt, namespace, body.value, &query,
                )
                .map(Into::into)
            }
            (Method::Post, Some(name), Some("eviction")) if rt.id == ResourceId::Pods => {
                let body = if req
                    .content_type
                    .is_some_and(|t| t.starts_with(crate::protobuf::MEDIA_TYPE))
                {
                    crate::protobuf::decode(rt.id, req.body)?
                } else {
                    self.parse(req)?
                };
                let status = self.evict(now, namespace, name, &body, dry_run_requested(req))?;
                Ok(ApiResponse::json(201, j::to_vec(&status)).into())
            }
            (Method::Post, Some(name), Some("token")) if rt.id == ResourceId::ServiceAccounts => {
                self.create_token(now, req, identity, namespace, name)
                    .map(Into::into)
            }
            (Method::Post, Some(name), Some("binding")) if rt.id == ResourceId::Pods => {
                let body = self.parse(req)?;
                self.bind(
                    &WriteContext::for_identity(now, identity),
                    namespace,
                    name,
                    &body,
                    dry_run_requested(req),
                )
                .map(Into::into)
            }
            (Method::Put, Some(name), sub @ (None | Some("status" | "finalize" | "approval"))) => {
                let body = self.body(req, rt, namespace, Some(name))?;
                self.update(
                    now, req, identity, rt, namespace, name, sub, body.value, &query,
                )
                .map(Into::into)
            }
            (Method::Patch, Some(name), sub @ (None | Some("status" | "approval"))) => self
                .patch(now, req, identity, rt, namespace, name, sub, &query)
                .map(Into::into),
            (Method::Delete, Some(name), None) => self
                .delete(now, req, identity, rt, namespace, name, &query)
                .map(Into::into),
            (Method::Delete, None, None) => self
                .delete_collection(now, req, identity, rt, path.namespace, &query)
                .map(Into::into),
            _ => Err(Error::MethodNotAllowed(alloc::format!(
                "the server does not allow this method on the requested resource ({})",
                req.path
            ))),
        }
    }
}

/// Whether the request is a dry run (`dryRun=All`, checked when the request was routed). Read
/// from the request itself, so a write that runs another verb's path (apply creating the object)
/// keeps it.
fn dry_run_requested(req: &ApiRequest<'_>) -> bool {
    Query::parse(req.query).is_ok_and(|q| q.all("dryRun").any(|v| v == "All"))
}

/// The options type a write verb's query parameters decode into (named in kube's errors).
fn write_options_kind(method: Method) -> Option<&'static str> {
    match method {
        Method::Post => Some("CreateOptions"),
        Method::Put => Some("UpdateOptions"),
        Method::Patch => Some("PatchOptions"),
        Method::Delete => Some("DeleteOptions"),
        _ => None,
    }
}

/// Stored bytes as the request's version answers them (a custom resource's are stored in its
/// storage version).
fn answer(rt: &ResourceType<'_>, json: Vec<u8>) -> Vec<u8> {
    match (rt.custom, rt.view) {
        (Some(served), _) => custom::answer(served, json),
        (None, Some(view)) => view.answer(json),
        (None, None) => json,
    }
}
