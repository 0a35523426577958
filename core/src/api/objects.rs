//! Reads and writes of resource objects: get, list (with snapshot pagination), create, update,
//! patch, delete, deletecollection, the pod binding subresource, and namespace lifecycle.

use alloc::borrow::ToOwned;
use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde_json::{Map, Value, json};

use super::custom;
use super::render::{ListFormat, ListRender};
use super::request::{self, ApiRequest, ApiResponse, Method, Query, Representation, ResourcePath};
use super::revision::{self, ReadAt};
use super::table::{self, IncludeObject};
use super::watch::{WatchFormat, Watcher};
use super::{Cluster, Outcome, defaults};
use crate::admission::{self, Attempt, Operation};
use crate::auth::Identity;
use crate::cluster::WriteContext;
use crate::cluster::deletion::{self, DeleteOptions, DeleteQuery};
use crate::cluster::object::qualified;
use crate::cluster::object::{parse_stored, remove_meta, set_meta};
use crate::controllers::gc::Propagation;
use crate::resource::{ResourceId, ResourceType};
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{ObjectKey, StoredObject};
use crate::{Error, UnixTime, json as j, patch, schema, validation};

/// How to treat unknown fields (`?fieldValidation=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldValidation {
    Ignore,
    Warn,
    Strict,
}

/// Longest `fieldManager` kube accepts (`FieldManagerMaxLength`), in bytes.
const MAX_FIELD_MANAGER: usize = 128;

/// The field manager of what kube-apiserver creates itself (default namespaces, the
/// `kubernetes` service).
const APISERVER: &str = "kube-apiserver";

/// How a write records field ownership in `managedFields`.
#[derive(Debug, Clone, Copy)]
pub(super) enum Ownership<'a> {
    /// A non-apply write by this field manager: it owns what it added or changed.
    Update(&'a str),
    /// Server-side apply, which has already written the object's `managedFields`.
    Applied,
}

fn is_protobuf(req: &ApiRequest<'_>) -> bool {
    req.content_type
        .is_some_and(|t| t.starts_with(crate::protobuf::MEDIA_TYPE))
}

fn not_found(rt: &ResourceType<'_>, name: &str) -> Error {
    Error::NotFound {
        resource: qualified(rt),
        name: name.into(),
    }
}

/// A body that must be an object of the path's kind.
struct Body {
    value: Value,
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

    /// Decodes a request body of `kind` in `api_version` that is no stored resource (the access
    /// reviews): JSON or protobuf.
    pub(super) fn decode_body(
        &self,
        req: &ApiRequest<'_>,
        api_version: &str,
        kind: &str,
    ) -> Result<Value, Error> {
        if req.body.len() > self.config.max_body_bytes {
            return Err(Error::TooLarge(alloc::format!(
                "the request body is larger than the limit of {} bytes",
                self.config.max_body_bytes
            )));
        }
        let media = req.content_type.unwrap_or("application/json");
        match media.split(';').next().unwrap_or("").trim() {
            crate::protobuf::MEDIA_TYPE => crate::protobuf::decode_as(api_version, kind, req.body),
            "application/json" | "" | "*/*" => self.parse(req),
            "application/yaml" => self.parse_yaml(req, Some(kind)),
            media => Err(Error::UnsupportedMediaType(alloc::format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got {media})"
            ))),
        }
    }

    /// A YAML body as the JSON tree the JSON path takes, within the same size and depth bounds
    /// (and an alias-expansion budget). Errors are worded as kube-apiserver words them: for a
    /// typed object (`kind`) the decoder's, for an apply patch the field manager's.
    fn parse_yaml(&self, req: &ApiRequest<'_>, kind: Option<&str>) -> Result<Value, Error> {
        self.parse_yaml_strict(req, kind).map(|(value, _)| value)
    }

    /// [`Self::parse_yaml`], and the keys the body sets twice in one mapping (go-yaml's strict
    /// decoder's `line N: key "k" already set in map`).
    fn parse_yaml_strict(
        &self,
        req: &ApiRequest<'_>,
        kind: Option<&str>,
    ) -> Result<(Value, Vec<String>), Error> {
        if req.body.len() > self.config.max_body_bytes {
            return Err(Error::TooLarge(alloc::format!(
                "the request body is {} bytes, above the limit of {}",
                req.body.len(),
                self.config.max_body_bytes
            )));
        }
        crate::yaml::to_json_strict(
            req.body,
            self.config.max_body_bytes,
            self.config.max_json_depth,
        )
        .map_err(|e| {
            Error::BadRequest(match kind {
                _ if e.too_deep => e.message,
                Some(kind) => alloc::format!(
                    "the object provided is unrecognized (must be of type {kind}): {} ({})",
                    e.message,
                    summarize(req.body)
                ),
                None => alloc::format!("error decoding YAML: {}", e.message),
            })
        })
    }

    fn parse(&self, req: &ApiRequest<'_>) -> Result<Value, Error> {
        j::parse_body(
            req.body,
            self.config.max_body_bytes,
            self.config.max_json_depth,
        )
    }

    /// Parses a create/update body and checks it names the path's kind, namespace and name.
    fn body(
        &self,
        req: &ApiRequest<'_>,
        rt: &ResourceType<'_>,
        namespace: &str,
        name: Option<&str>,
    ) -> Result<Body, Error> {
        let media = req.content_type.unwrap_or("application/json");
        let media = media.split(';').next().unwrap_or("").trim();
        let mut value = match media {
            "application/json" | "" | "*/*" => self.parse(req)?,
            "application/yaml" => self.parse_yaml(req, Some(rt.kind))?,
            crate::protobuf::MEDIA_TYPE if rt.custom.is_none() => {
                if req.body.len() > self.config.max_body_bytes {
                    return Err(Error::TooLarge(alloc::format!(
                        "the request body is larger than the limit of {} bytes",
                        self.config.max_body_bytes
                    )));
                }
                crate::protobuf::decode_as(&rt.api_version(), rt.kind, req.body)?
            }
            _ if rt.custom.is_some() => {
                return Err(Error::UnsupportedMediaType(alloc::format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (got {media})"
                )));
            }
            _ => {
                return Err(Error::UnsupportedMediaType(alloc::format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got {media})"
                )));
            }
        };
        let Some(map) = value.as_object_mut() else {
            return Err(Error::BadRequest(alloc::format!(
                "the body of a {} must be a JSON object",
                rt.kind
            )));
        };
        match map.get("apiVersion").and_then(Value::as_str) {
            None => {
                map.insert("apiVersion".into(), Value::from(rt.api_version()));
            }
            Some(v) if v == rt.api_version() => {}
            Some(v) => {
                return Err(Error::BadRequest(alloc::format!(
                    "the API version in the data ({v}) does not match the expected API version ({})",
                    rt.api_version()
                )));
            }
        }
        match map.get("kind").and_then(Value::as_str) {
            None => {
                map.insert("kind".into(), Value::from(rt.kind));
            }
            Some(k) if k == rt.kind => {}
            Some(k) => {
                return Err(Error::BadRequest(alloc::format!(
                    "{k} in version \"{version}\" cannot be handled as a {kind}: the kind in the data ({k}) does not match the expected kind ({kind})",
                    version = rt.version,
                    kind = rt.kind,
                )));
            }
        }
        if map.get("metadata").is_some_and(|m| !m.is_object()) {
            return Err(Error::BadRequest("metadata must be an object".into()));
        }
        // Typed decoding parses every timestamp; a bad one fails the whole body, as in kube.
        crate::metatime::normalize(rt.id, &mut value).map_err(|e| {
            Error::BadRequest(alloc::format!(
                "{kind} in version \"{version}\" cannot be handled as a {kind}: {e}",
                kind = rt.kind,
                version = rt.version,
            ))
        })?;
        check_path_identity(&mut value, rt, namespace, name)?;
        Ok(Body { value })
    }

    fn field_validation(query: &Query) -> Result<FieldValidation, Error> {
        match query.get("fieldValidation") {
            None | Some("" | "Warn") => Ok(FieldValidation::Warn),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some(other) => Err(Error::BadRequest(alloc::format!(
                "fieldValidation parameter unsupported: {other:?}; expected one of Ignore, Warn, Strict"
            ))),
        }
    }

    /// Unknown and repeated fields: an error under Strict; otherwise unknown fields are dropped,
    /// as decoding into the typed object drops them in kube-apiserver, and a repeated key keeps
    /// its last value, with a warning each under Warn. `req`'s body is read for repeated keys
    /// (a parsed tree has lost them) when it is JSON.
    fn check_fields(
        rt: &ResourceType<'_>,
        req: &ApiRequest<'_>,
        obj: &mut Value,
        mode: FieldValidation,
    ) -> Result<Vec<String>, Error> {
        let unknown = match rt.custom {
            // A custom resource is pruned by its schema whatever the mode, as kube's CR
            // decoder prunes; the pruned paths are the unknown fields.
            Some(served) => served.version().schema.prune(obj),
            None => match rt.view {
                Some(view) => schema::unknown_view_fields(view, obj),
                None => schema::unknown_fields(rt.id, obj),
            },
        };
        let repeated = if mode == FieldValidation::Ignore || is_protobuf(req) {
            Vec::new()
        } else {
            j::duplicate_keys(req.body, schema::MAX_UNKNOWN_FIELDS)
        };
        if unknown.is_empty() && repeated.is_empty() {
            return Ok(Vec::new());
        }
        if mode != FieldValidation::Strict && rt.custom.is_none() {
            for path in &unknown {
                prune(obj, path);
            }
        }
        if mode == FieldValidation::Ignore {
            return Ok(Vec::new());
        }
        let messages: Vec<String> = unknown
            .iter()
            .map(|f| alloc::format!("unknown field \"{f}\""))
            .chain(
                repeated
                    .iter()
                    .map(|f| alloc::format!("duplicate field \"{f}\"")),
            )
            .collect();
        if mode == FieldValidation::Strict {
            return Err(Error::BadRequest(alloc::format!(
                "{kind} in version \"{version}\" cannot be handled as a {kind}: strict decoding error: {errors}",
                kind = rt.kind,
                version = rt.version,
                errors = messages.join(", ")
            )));
        }
        Ok(messages)
    }

    fn namespace_must_accept(
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
        if self.terminating.contains(namespace)
            || ns
                .index
                .fields
                .iter()
                .any(|(f, v)| *f == "status.phase" && v == "Terminating")
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

    /// `ValidateFieldManager` of the verb's options (`CreateOptions`, `UpdateOptions`,
    /// `PatchOptions`): at most 128 bytes, printable characters only.
    fn check_field_manager(query: &Query, options: &str) -> Result<(), Error> {
        let Some(manager) = query.get("fieldManager") else {
            return Ok(());
        };
        let mut causes = Vec::new();
        if manager.len() > MAX_FIELD_MANAGER {
            causes.push(crate::error::Cause {
                reason: "FieldValueTooLong",
                message: alloc::format!("Too long: may not be more than {MAX_FIELD_MANAGER} bytes"),
                field: "fieldManager".into(),
            });
        }
        for (at, c) in manager.char_indices() {
            if c != ' ' && (c.is_control() || c.is_whitespace()) {
                causes.push(crate::error::Cause {
                    reason: "FieldValueInvalid",
                    message: alloc::format!(
                        "Invalid value: {}: invalid character U+{:04X} (at position {at})",
                        crate::gostr::quote(manager),
                        u32::from(c)
                    ),
                    field: "fieldManager".into(),
                });
            }
        }
        if causes.is_empty() {
            return Ok(());
        }
        Err(Error::Invalid {
            kind: alloc::format!("{options}.meta.k8s.io"),
            name: String::new(),
            causes,
        })
    }

    /// The write's field manager (`managerOrUserAgent`): `fieldManager`, else the User-Agent
    /// up to its first `/`, printable characters only, at most 128 bytes (kube's
    /// `prefixFromUserAgent`; an empty one is recorded as `unknown`).
    fn manager(req: &ApiRequest<'_>, query: &Query) -> String {
        if let Some(m) = query.get("fieldManager").filter(|m| !m.is_empty()) {
            return m.into();
        }
        let mut manager = String::new();
        let agent = req.user_agent.unwrap_or("");
        for c in agent.split('/').next().unwrap_or("").chars() {
            if !patch::is_printable(c) {
                continue;
            }
            if manager.len() + c.len_utf8() > MAX_FIELD_MANAGER {
                break;
            }
            manager.push(c);
        }
        manager
    }

    /// The rest of `ValidatePatchOptions` (422 on `PatchOptions.meta.k8s.io`): apply requires
    /// `fieldManager`; `force` is for apply only.
    fn check_patch_options(query: &Query, apply: bool) -> Result<(), Error> {
        let cause = if apply && query.get("fieldManager").is_none_or(str::is_empty) {
            crate::error::Cause {
                reason: "FieldValueRequired",
                message: "Required value: is required for apply patch".into(),
                field: "fieldManager".into(),
            }
        } else if !apply && query.get("force").is_some() {
            crate::error::Cause::forbidden(
                "force",
                "Forbidden: may not be specified for non-apply patch",
            )
        } else {
            return Ok(());
        };
        Err(Error::Invalid {
            kind: "PatchOptions.meta.k8s.io".into(),
            name: String::new(),
            causes: alloc::vec![cause],
        })
    }

    fn get(
        &self,
        now: UnixTime,
        req: &ApiRequest<'_>,
        rt: &ResourceType<'_>,
        namespace: &str,
        name: &str,
        query: &Query,
    ) -> Result<Outcome, Error> {
        let representation = request::negotiate(req.accept)?;
        // A non-zero resourceVersion asks for a state at least that new (kube's watch cache).
        if let ReadAt::NotOlderThan(wanted) = revision::get_read(query)?
            && let Some(pending) = self.await_revision(now, req, wanted)?
        {
            return Ok(pending);
        }
        let key = ObjectKey::new(rt.id, namespace, name);
        let object = self.store.get(&key).ok_or_else(|| not_found(rt, name))?;
        // A custom resource's answer also depends on its definition's latest state.
        let shows_revision = rt.custom.is_none().then_some(object.revision);
        let shows = |outcome: Outcome| match outcome {
            Outcome::Response(response) => Outcome::Response(ApiResponse {
                shows_revision,
                ..response
            }),
            other => other,
        };
        match (representation, rt.custom) {
            (Representation::Table, custom) => {
                let value = match custom {
                    Some(served) => custom::view(served, object)?,
                    None => parse_stored(object)?,
                };
                let rv = object.revision.to_string();
                let include = include_object(query);
                let table = match custom {
                    Some(served) => {
                        let row = table::row(served.version(), &value, now, include);
                        table::table(served.version(), alloc::vec![row], &rv, None, None, true)
                    }
                    None => {
                        let row = table::viewed_row(rt.id, rt.view, &value, now, include);
                        table::table(rt.id, alloc::vec![row], &rv, None, None, true)
                    }
                };
                Ok(shows(table_response(&table).into()))
            }
            (Representation::Metadata(view), _) => {
                super::metadata::object_response(rt, view, &object.json)
                    .map(Outcome::from)
                    .map(shows)
            }
            (_, Some(served)) => {
                Ok(ApiResponse::json(200, custom::view_bytes(served, object).into_owned()).into())
            }
            (_, None) => {
                let json = match rt.view {
                    Some(view) => view.bytes_to_view(&object.json).into_owned(),
                    None => object.json.to_vec(),
                };
                Ok(shows(ApiResponse::json(200, json).into()))
            }
        }
    }

    fn list(
        &self,
        now: UnixTime,
        req: &ApiRequest<'_>,
        rt: &ResourceType<'_>,
        namespace: Option<&str>,
        query: &Query,
    ) -> Result<Outcome, Error> {
        let representation = request::negotiate(req.accept)?;
        let labels = LabelSelector::parse(query.get("labelSelector").unwrap_or(""))?;
        let fields =
            FieldSelector::parse_in(rt.id, rt.view, query.get("fieldSelector").unwrap_or(""))?;
        let limit = query
            .number("limit")?
            .map_or(self.config.max_list_page, |l| {
                if l == 0 {
                    self.config.max_list_page
                } else {
                    usize::try_from(l)
                        .unwrap_or(usize::MAX)
                        .min(self.config.max_list_page)
                }
            });
        let paged = query.number("limit")?.is_some_and(|l| l > 0);
        let read = revision::list_read(query, paged)?;
        let continue_token = query.get("continue").filter(|c| !c.is_empty());
        let current = self.store.revision();
        // Whether the read is of a revision the caller named (a continue token's snapshot, an
        // exact resourceVersion), which compaction can take, or of the latest state, which it
        // never takes (kube's compaction is itself a write: etcd's latest revision stays above
        // what it compacts).
        let mut named = true;
        let (snapshot, start, too_old) = match continue_token {
            Some(token) => {
                if query
                    .get("resourceVersion")
                    .is_some_and(|rv| !rv.is_empty() && rv != "0")
                {
                    return Err(Error::BadRequest(
                        "specifying resource version is not allowed when using continue".into(),
                    ));
                }
                let (rv, ns, name) = revision::decode_continue(&self.continue_key, rt.id, token)?;
                // A token handed out with an expired snapshot's 410 continues at the latest
                // revision.
                named = rv.is_some();
                (
                    rv.unwrap_or(current),
                    Some((ns, name)),
                    revision::CONTINUE_EXPIRED,
                )
            }
            None => match read {
                ReadAt::Latest | ReadAt::Any => {
                    named = false;
                    (current, None, revision::LIST_EXPIRED)
                }
                ReadAt::NotOlderThan(wanted) => {
                    if let Some(pending) = self.await_revision(now, req, wanted)? {
                        return Ok(pending);
                    }
                    named = false;
                    (current, None, revision::LIST_EXPIRED)
                }
                // A state in the future cannot be served exactly (etcd's ErrFutureRev: no wait).
                ReadAt::Exact(wanted) if wanted > current => {
                    return Err(Error::ResourceVersionTooLarge {
                        requested: wanted,
                        current,
                        retry_after_secs: 0,
                    });
                }
                ReadAt::Exact(wanted) => (wanted, None, revision::LIST_EXPIRED),
            },
        };
        let expired = |start: &Option<(String, String)>| {
            let (ns, name) = start.clone().unwrap_or_default();
            Error::ContinueExpired {
                continue_token: revision::encode_continue_latest(
                    &self.continue_key,
                    rt.id,
                    &ns,
                    &name,
                ),
            }
        };
        // Compacted away (kube's etcd compactor): a continue token gets a way to go on at the
        // latest revision; an exact read is simply too old.
        if named && snapshot < self.compactor.compacted() {
            return Err(if start.is_some() {
                expired(&start)
            } else {
                Error::Expired(too_old.into())
            });
        }
        let page = self
            .snapshot_page(
                rt.id,
                namespace,
                snapshot,
                start.as_ref().map(|(a, b)| (a.as_str(), b.as_str())),
                limit,
                &labels,
                &fields,
                too_old,
            )
            .map_err(|e| match e {
                Error::Expired(_) if start.is_some() => expired(&start),
                other => other,
            })?;
        let continue_token = page.next.as_ref().map(|(ns, name)| {
            revision::encode_continue(&self.continue_key, rt.id, snapshot, ns, name)
        });
        let format = match representation {
            Representation::Table => ListFormat::Table(include_object(query)),
            Representation::Metadata(view) if view.list => ListFormat::Metadata(view),
            Representation::Metadata(_) => return Err(super::metadata::not_an_object(rt)),
            _ => ListFormat::Json,
        };
        Ok(Outcome::List(alloc::boxed::Box::new(ListRender {
            resource: rt.id,
            custom: rt.custom.cloned(),
            view: rt.view,
            format,
            items: page.items,
            revision: snapshot,
            continue_token,
            remaining: page.remaining,
            now,
        })))
    }

    /// One page of the list as it was at revision `snapshot`, strictly after `start`.
    ///
    /// Objects changed since `snapshot` are rebuilt from the watch ring's `previous` versions, so
    /// every page of a paginated list shows one consistent revision, like etcd's MVCC; once the
    /// ring no longer covers `snapshot` (it left the ring, or an earlier run made it) the answer
    /// is 410 Expired with `too_old`.
    #[allow(clippy::too_many_arguments)]
    fn snapshot_page(
        &self,
        resource: ResourceId,
        namespace: Option<&str>,
        snapshot: u64,
        start: Option<(&str, &str)>,
        limit: usize,
        labels: &LabelSelector,
        fields: &FieldSelector,
        too_old: &str,
    ) -> Result<Page, Error> {
        let in_scope = |key: &ObjectKey| {
            key.resource == resource
                && namespace.is_none_or(|ns| &*key.namespace == ns)
                && start.is_none_or(|(ns, name)| (&*key.namespace, &*key.name) > (ns, name))
        };
        // For each key changed after the snapshot: its state at the snapshot (None = absent).
        let mut then: BTreeMap<ObjectKey, Option<StoredObject>> = BTreeMap::new();
        if snapshot < self.store.revision() {
            let mut events = Vec::new();
            self.store
                .ring()
                .read_after(snapshot, usize::MAX, &mut events)
                .map_err(|_| Error::Expired(too_old.into()))?;
            for event in events {
                if in_scope(&event.key) && !then.contains_key(&event.key) {
                    then.insert(event.key.clone(), event.previous.clone());
                }
            }
        }
        let selected = |k: &ObjectKey, o: &StoredObject| {
            labels.matches(&o.index.labels)
                && fields.matches_object(&k.namespace, &k.name, &o.index.fields)
        };
        let current = self
            .store
            .range(resource, namespace, start)
            .filter(|(k, _)| !then.contains_key(*k));
        let mut merged = MergeByKey {
            a: current.peekable(),
            b: then
                .iter()
                .filter_map(|(k, v)| v.as_ref().map(|o| (k, o)))
                .peekable(),
        };
        let mut items = Vec::new();
        let mut next = None;
        let mut remaining = 0u64;
        for (key, object) in &mut merged {
            if !selected(key, object) {
                continue;
            }
            if items.len() < limit {
                items.push(object.clone());
                if items.len() == limit {
                    next = Some((key.namespace.to_string(), key.name.to_string()));
                }
            } else {
                remaining += 1;
            }
        }
        if remaining == 0 {
            next = None;
        }
        Ok(Page {
            items,
            next,
            remaining: (remaining > 0).then_some(remaining),
        })
    }

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
            super::certificates::prepare_create(&mut obj, identity);
        }
        let attempt = Attempt {
            resource: rt,
            subresource: None,
            namespace,
            name: &name,
            operation: Operation::Create(&obj),
        };
        admission::admit(identity, &attempt, &self.store)?;
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
        let json = answer(rt, json);
        Ok(ApiResponse {
            warnings,
            ..ApiResponse::json(201, json)
        })
    }

    /// The ValidatingAdmissionPolicies bound to `attempt` (on the object as it would be
    /// stored); a `Warn` binding's failures join the response's warnings.
    fn admit_policies(
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
    fn update(
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
    fn write_update(
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
            super::certificates::prepare_update(sub, &mut obj, old, now);
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

    #[allow(clippy::too_many_arguments)]
    fn patch(
        &mut self,
        now: UnixTime,
        req: &ApiRequest<'_>,
        identity: &Identity,
        rt: &ResourceType<'_>,
        namespace: &str,
        name: &str,
        sub: Option<&str>,
        query: &Query,
    ) -> Result<ApiResponse, Error> {
        let media = req
            .content_type
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim();
        let kind = match media {
            "application/merge-patch+json" => PatchKind::Merge,
            "application/strategic-merge-patch+json" if rt.custom.is_some() => {
                // kube has no strategic merge patch for custom resources.
                return Err(Error::UnsupportedMediaType(alloc::format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {media:?})"
                )));
            }
            "application/strategic-merge-patch+json" => PatchKind::Strategic,
            "application/json-patch+json" => PatchKind::Json,
            "application/apply-patch+yaml" | "application/apply-patch+json" => PatchKind::Apply,
            _ => {
                return Err(Error::UnsupportedMediaType(alloc::format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {media:?})"
                )));
            }
        };
        // An apply patch may be YAML; JSON (which is YAML) stays on the JSON parser.
        let (body, yaml_duplicates) = match self.parse(req) {
            Err(Error::BadRequest(_)) if media == "application/apply-patch+yaml" => {
                self.parse_yaml_strict(req, None)?
            }
            parsed => (parsed?, Vec::new()),
        };
        let mode = Self::field_validation(query)?;
        let key = ObjectKey::new(rt.id, namespace, name);
        let current = match (self.store.get(&key), rt.custom) {
            (Some(stored), Some(served)) => Some(custom::view(served, stored)?),
            (stored, _) => stored.map(parse_stored).transpose()?,
        };
        Self::check_patch_options(query, kind == PatchKind::Apply)?;
        let manager = Self::manager(req, query);
        if kind == PatchKind::Apply {
            if !body.is_object() {
                return Err(Error::BadRequest(
                    "an apply patch must be a JSON or YAML object".into(),
                ));
            }
            let mut applied = body.clone();
            check_path_identity(&mut applied, rt, namespace, Some(name))?;
            if let Some(served) = rt.custom {
                // Applied configurations are typed against the schema before anything else;
                // a field it does not declare fails the conversion (kube's 500, whatever the
                // field validation).
                let unknown = served.version().schema.prune(&mut applied.clone());
                if !unknown.is_empty() {
                    let at: Vec<String> = unknown.iter().map(|p| alloc::format!(".{p}")).collect();
                    let detail = match at.as_slice() {
                        [one] => alloc::format!("{one}: field not declared in schema"),
                        many => {
                            let mut text = String::from("errors:");
                            for p in many {
                                text.push_str("\n  ");
                                text.push_str(p);
                                text.push_str(": field not declared in schema");
                            }
                            text
                        }
                    };
                    return Err(Error::Unclassified(alloc::format!(
                        "failed to create typed patch object ({namespace}/{name}; {}, Kind={}): {detail}",
                        rt.api_version(),
                        rt.kind
                    )));
                }
            }
            let warnings = Self::check_fields(rt, req, &mut applied, mode)?;
            // A view's configuration merges in the view's shape and its manager's fields are
            // recorded in the view's version, as kube's field manager works in the request's;
            // the merged object comes back in the stored shape.
            let force = query.flag("force")?;
            if sub.is_some() && current.is_none() {
                // A subresource never creates its object.
                return Err(not_found(rt, name));
            }
            let mut merged = patch::server_side_apply(
                rt.id,
                rt.view,
                sub,
                current.as_ref(),
                &applied,
                &manager,
                force,
                now,
            )?;
            if let Err(e) = crate::metatime::normalize(rt.id, &mut merged) {
                return Err(patch_invalid(&go_print(&body), &e));
            }
            // After the merge, as kube's apply patcher: the body read again strictly.
            let mut warnings = warnings;
            if !yaml_duplicates.is_empty() && mode != FieldValidation::Ignore {
                let error = alloc::format!(
                    "error converting YAML to JSON: yaml: unmarshal errors:\n  {}",
                    yaml_duplicates.join("\n  ")
                );
                if mode == FieldValidation::Strict {
                    return Err(Error::BadRequest(alloc::format!(
                        "error strict decoding YAML: {error}"
                    )));
                }
                // A header carries it: Go's HTTP server writes its newlines as spaces.
                warnings.push(error.replace('\n', " "));
            }
            // The apply wrote managedFields; the write records nothing more.
            let ownership = Ownership::Applied;
            let mut response = match current {
                None => self.create(
                    now,
                    req,
                    identity,
                    ownership,
                    rt,
                    namespace,
                    // create takes a body in the request's shape.
                    match rt.view {
                        Some(view) => view.to_view(merged),
                        None => merged,
                    },
                    &Query::parse("fieldValidation=Ignore")?,
                )?,
                Some(old) => {
                    let (status, json) = self.write_update(
                        now, req, identity, ownership, rt, &key, &old, merged, sub, mode,
                    )?;
                    ApiResponse::json(status, json)
                }
            };
            response.warnings = warnings;
            return Ok(response);
        }
        let Some(old) = current else {
            return Err(not_found(rt, name));
        };
        // A view's object is patched in the view's shape.
        let mut patched = match rt.view {
            Some(view) => view.to_view(old.clone()),
            None => old.clone(),
        };
        match kind {
            PatchKind::Merge => {
                if !body.is_object() {
                    return Err(Error::BadRequest(
                        "a merge patch must be a JSON object".into(),
                    ));
                }
                patch::merge_patch(&mut patched, &body);
            }
            PatchKind::Strategic => {
                if !body.is_object() {
                    return Err(Error::BadRequest(
                        "a strategic merge patch must be a JSON object".into(),
                    ));
                }
                patch::strategic_merge(rt.id, &mut patched, &body)?;
            }
            PatchKind::Json => patch::json_patch(&mut patched, &body)?,
            PatchKind::Apply => {}
        }
        if !patched.is_object() {
            return Err(Error::BadRequest(
                "the patch did not produce an object".into(),
            ));
        }
        if j::str_at(&patched, "/apiVersion") != rt.api_version()
            || j::str_at(&patched, "/kind") != rt.kind
        {
            return Err(Error::BadRequest(
                "a patch may not change apiVersion or kind".into(),
            ));
        }
        // The patched object is decoded as a typed one: a bad timestamp fails the patch (422).
        if let Err(e) = crate::metatime::normalize(rt.id, &mut patched) {
            let shown = match kind {
                PatchKind::Strategic => go_print(&body),
                _ => String::from_utf8_lossy(&j::to_vec(&patched)).into_owned(),
            };
            return Err(patch_invalid(&shown, &e));
        }
        match_request_namespace(rt, namespace, &mut patched)?;
        if j::str_at(&patched, "/metadata/name") != name {
            return Err(Error::BadRequest(alloc::format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                j::str_at(&patched, "/metadata/name")
            )));
        }
        let warnings = Self::check_fields(rt, req, &mut patched, mode)?;
        let mut patched = view_to_storage(rt, patched)?;
        // A resourceVersion in the patch is a precondition; otherwise patches apply to the latest.
        let patch_rv = body
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .map(ToOwned::to_owned);
        if patch_rv.is_none() {
            set_meta(
                &mut patched,
                "resourceVersion",
                old.pointer("/metadata/resourceVersion")
                    .cloned()
                    .unwrap_or(Value::Null),
            );
        }
        let ownership = Ownership::Update(&manager);
        let (status, json) = self.write_update(
            now, req, identity, ownership, rt, &key, &old, patched, sub, mode,
        )?;
        Ok(ApiResponse {
            warnings,
            ..ApiResponse::json(status, json)
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn delete(
        &mut self,
        now: UnixTime,
        req: &ApiRequest<'_>,
        identity: &Identity,
        rt: &ResourceType<'_>,
        namespace: &str,
        name: &str,
        query: &Query,
    ) -> Result<ApiResponse, Error> {
        let options = if req.body.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else if req
            .content_type
            .is_some_and(|t| t.starts_with(crate::protobuf::MEDIA_TYPE))
        {
            crate::protobuf::decode_delete_options(req.body)?
        } else {
            self.parse(req)?
        };
        let key = ObjectKey::new(rt.id, namespace, name);
        let current = self.store.get(&key).ok_or_else(|| not_found(rt, name))?;
        let obj = match rt.custom {
            Some(served) => custom::view(served, current)?,
            None => parse_stored(current)?,
        };
        let attempt = Attempt {
            resource: rt,
            subresource: None,
            namespace,
            name,
            operation: Operation::Delete(&obj),
        };
        admission::admit(identity, &attempt, &self.store)?;
        let options = DeleteOptions::of_body(
            &options,
            &DeleteQuery {
                propagation: query.get("propagationPolicy"),
                grace_period: query.get("gracePeriodSeconds"),
                dry_run: query.all("dryRun").any(|v| v == "All"),
            },
        )?;
        deletion::check_preconditions(&key, &obj, &options)?;
        self.admit_policies(identity, &attempt, options.dry_run)?;
        let ctx = WriteContext::for_identity(now, identity);
        if rt.id == ResourceId::Namespaces {
            return self.begin_namespace_deletion(&ctx, &key, obj, options.dry_run);
        }
        if rt.id == ResourceId::CustomResourceDefinitions && !options.dry_run {
            // The definition is marked; the CRD controller deletes its objects, then it.
            let (status, json) = self.begin_crd_deletion(&ctx, &key, obj)?;
            return Ok(ApiResponse::json(status, json));
        }
        let mut obj = obj;
        if let Some(served) = rt.custom {
            custom::to_storage(served, &mut obj);
        }
        let deletion = self.delete_object(&ctx, &key, obj, &options)?;
        Ok(ApiResponse::json(
            deletion.status,
            answer(rt, deletion.body),
        ))
    }

    fn delete_collection(
        &mut self,
        now: UnixTime,
        req: &ApiRequest<'_>,
        identity: &Identity,
        rt: &ResourceType<'_>,
        namespace: Option<&str>,
        query: &Query,
    ) -> Result<ApiResponse, Error> {
        if rt.id == ResourceId::Namespaces {
            return Err(Error::MethodNotAllowed(
                "the server does not allow this method on the requested resource (namespaces)"
                    .into(),
            ));
        }
        let labels = LabelSelector::parse(query.get("labelSelector").unwrap_or(""))?;
        let fields =
            FieldSelector::parse_in(rt.id, rt.view, query.get("fieldSelector").unwrap_or(""))?;
        let targets: Vec<(String, String)> = self
            .store
            .range(rt.id, namespace, None)
            .filter(|(k, o)| {
                labels.matches(&o.index.labels)
                    && fields.matches_object(&k.namespace, &k.name, &o.index.fields)
            })
            .map(|(k, _)| (k.namespace.to_string(), k.name.to_string()))
            .collect();
        let mut items = Vec::with_capacity(targets.len());
        for (ns, name) in targets {
            let response = self.delete(now, req, identity, rt, &ns, &name, query)?;
            items.push(response.body);
        }
        let list_kind = match rt.custom {
            Some(served) => served.definition.list_kind.clone(),
            None => alloc::format!("{}List", rt.kind),
        };
        let mut body = alloc::format!(
            "{{\"kind\":\"{list_kind}\",\"apiVersion\":\"{}\",\"metadata\":{{\"resourceVersion\":\"{}\"}},\"items\":[",
            rt.api_version(),
            self.store.revision()
        )
        .into_bytes();
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(item);
        }
        body.extend_from_slice(b"]}");
        Ok(ApiResponse::json(200, body))
    }

    /// `POST pods/{name}/binding`: sets `spec.nodeName` once and `PodScheduled=True`, as
    /// kube-apiserver's binding does; the scheduler binds through here too.
    pub(crate) fn bind(
        &mut self,
        ctx: &WriteContext,
        namespace: &str,
        name: &str,
        body: &Value,
        dry_run: bool,
    ) -> Result<ApiResponse, Error> {
        let rt = ResourceId::Pods.info();
        let target = body
            .pointer("/target/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        if target.is_empty() {
            return Err(Error::Invalid {
                kind: "Binding".into(),
                name: name.into(),
                causes: alloc::vec![crate::error::Cause::required("target.name")],
            });
        }
        let key = ObjectKey::new(ResourceId::Pods, namespace, name);
        let current = self.store.get(&key).ok_or_else(|| not_found(rt, name))?;
        let mut pod = parse_stored(current)?;
        if dry_run {
            already_bound(&pod, name)?;
        } else {
            self.bind_pod(ctx, &key, &mut pod, target)?;
        }
        Ok(ApiResponse::json(
            201,
            j::to_vec(
                &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
            ),
        ))
    }

    /// The binding itself, on `pod` as currently stored under `key` (the scheduler passes the
    /// version it just read rather than parsing it again).
    pub(crate) fn bind_pod(
        &mut self,
        ctx: &WriteContext,
        key: &ObjectKey,
        pod: &mut Value,
        target: &str,
    ) -> Result<(), Error> {
        already_bound(pod, &key.name)?;
        if let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) {
            spec.insert("nodeName".into(), Value::from(target));
        }
        crate::scheduler::set_condition(
            pod,
            json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null,
                "lastTransitionTime": ctx.at.rfc3339()}),
        );
        self.write_existing(ctx, key, pod)?;
        Ok(())
    }

    fn start_watch(
        &mut self,
        now: UnixTime,
        req: &ApiRequest<'_>,
        rt: &ResourceType<'_>,
        namespace: Option<&str>,
        name: Option<&str>,
        query: &Query,
    ) -> Result<Outcome, Error> {
        let format = match request::negotiate(req.accept)? {
            Representation::Table => WatchFormat::Table {
                include: include_object(query),
                columns_sent: false,
            },
            // A list form on a watch is not transformed (kube sends the objects whole).
            Representation::Metadata(view) if !view.list => WatchFormat::Metadata(view),
            _ => WatchFormat::Json,
        };
        let labels = LabelSelector::parse(query.get("labelSelector").unwrap_or(""))?;
        let fields =
            FieldSelector::parse_in(rt.id, rt.view, query.get("fieldSelector").unwrap_or(""))?;
        let bookmarks = query.flag("allowWatchBookmarks")?;
        let send_initial = query.flag("sendInitialEvents")?;
        let rv_text = query.get("resourceVersion").unwrap_or("");
        if send_initial {
            if query.get("resourceVersionMatch") != Some("NotOlderThan") {
                return Err(Error::Invalid {
                    kind: "ListOptions.meta.k8s.io".into(),
                    name: String::new(),
                    causes: alloc::vec![crate::error::Cause::forbidden(
                        "resourceVersionMatch",
                        "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"
                    )],
                });
            }
            if !bookmarks {
                return Err(Error::Invalid {
                    kind: "ListOptions.meta.k8s.io".into(),
                    name: String::new(),
                    causes: alloc::vec![crate::error::Cause::forbidden(
                        "allowWatchBookmarks",
                        "Forbidden: sendInitialEvents requires setting allowWatchBookmarks to true"
                    )],
                });
            }
        }
        let requested = Some(revision::parse_resource_version(rv_text)?).filter(|rv| *rv > 0);
        let timeout = query.number("timeoutSeconds")?;
        // A revision the store has not reached: wait for it, then kube's 504 as the stream's
        // ERROR event (after the revision parsed, watch errors travel in the stream).
        let failed = match requested.map(|rv| self.await_revision(now, req, rv)) {
            Some(Ok(Some(pending))) => return Ok(pending),
            Some(Err(error)) => Some(error),
            _ => None,
        };
        let revision = self.store.revision();
        let slot = self.watch_slots.take()?;
        let mut watcher = Watcher::new(
            rt.id,
            rt.custom.cloned(),
            namespace.map(Into::into),
            name.map(Into::into),
            labels,
            fields,
            format,
            bookmarks,
        )
        .with_view(rt.view)
        .holding(slot);
        watcher.deadline = timeout.map(|t| now.plus_secs(t));
        if let Some(error) = failed {
            watcher.fail(error);
            return Ok(Outcome::Watch(alloc::boxed::Box::new(watcher)));
        }
        match requested {
            Some(rv) if !send_initial => watcher.cursor = rv,
            _ => {
                // Current state as ADDED events, then changes after this revision.
                let initial = self
                    .store
                    .range(rt.id, namespace, None)
                    .filter(|(k, _)| name.is_none_or(|n| &*k.name == n))
                    .map(|(k, o)| (k.clone(), o.clone()))
                    .collect();
                watcher.set_initial(initial, revision, send_initial);
            }
        }
        Ok(Outcome::Watch(alloc::boxed::Box::new(watcher)))
    }

    fn begin_namespace_deletion(
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

    /// What kube-apiserver creates at start: the default namespaces, the `kubernetes`
    /// Service and the mandatory flow-control objects.
    pub(crate) fn bootstrap(&mut self, now: UnixTime) {
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let mut obj =
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            let _ = self.create_internal(
                &WriteContext::server(now),
                ResourceId::Namespaces,
                "",
                &mut obj,
                APISERVER,
            );
        }
        let mut service = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}],
                // The range's first address, as kube's bootstrap controller gives it.
                "clusterIP": alloc::format!("{}", services_first_ip(self.config.service_cidr))}
        });
        let _ = self.create_internal(
            &WriteContext::server(now),
            ResourceId::Services,
            "default",
            &mut service,
            APISERVER,
        );
        self.reconcile_apiserver_endpoints(now);
        // The scheduling post-start hook's system PriorityClasses.
        for mut class in admission::priority::system_classes() {
            let _ = self.create_internal(
                &WriteContext::server(now),
                ResourceId::PriorityClasses,
                "",
                &mut class,
                APISERVER,
            );
        }
        self.ensure_apf_configuration(now, false);
    }

    /// Creates an object on the server's own behalf (bootstrap, controllers), owned by
    /// `manager`, the component kube would create it from (`kube-controller-manager`,
    /// `kubelet`, ...), so that later writes keep tracking its fields.
    pub(crate) fn create_internal(
        &mut self,
        ctx: &WriteContext,
        resource: ResourceId,
        namespace: &str,
        obj: &mut Value,
        manager: &str,
    ) -> Result<Vec<u8>, Error> {
        let now = ctx.at;
        if resource == ResourceId::Pods {
            // Controllers' pods meet Priority admission as any client's.
            admission::priority::admit_pod(&self.store, obj)?;
        }
        set_meta(obj, "uid", Value::from(self.ids.uuid()));
        defaults::apply(resource, obj, None, now)?;
        validation::validate(resource, obj, None)?;
        let name = j::string_at(obj, "/metadata/name");
        if resource == ResourceId::Services {
            let key = ObjectKey::new(resource, namespace, &name);
            self.allocate_service(&key, obj, None)?;
        }
        set_meta(obj, "creationTimestamp", Value::from(now.rfc3339()));
        if has_generation(resource) {
            set_meta(obj, "generation", Value::from(1));
        }
        patch::record_update(resource, None, None, obj, manager, None, now);
        let key = ObjectKey::new(resource, namespace, &name);
        self.write_new(&ctx.as_server_share(), key, obj)
    }
}

impl Cluster {
    /// `GET .../{name}/scale`: the autoscaling/v1 Scale of a Deployment or ReplicaSet.
    fn get_scale(
        &self,
        rt: &ResourceType<'_>,
        namespace: &str,
        name: &str,
    ) -> Result<ApiResponse, Error> {
        let key = ObjectKey::new(rt.id, namespace, name);
        let object = self.store.get(&key).ok_or_else(|| not_found(rt, name))?;
        let obj = match rt.custom {
            Some(served) => custom::view(served, object)?,
            None => parse_stored(object)?,
        };
        Ok(ApiResponse::json(200, j::to_vec(&scale_of(rt, &obj))))
    }

    /// `PUT .../{name}/scale`: sets `spec.replicas` from a Scale (its resourceVersion, if
    /// given, is a precondition).
    #[allow(clippy::too_many_arguments)]
    fn put_scale(
        &mut self,
        now: UnixTime,
        req: &ApiRequest<'_>,
        identity: &Identity,
        rt: &ResourceType<'_>,
        namespace: &str,
        name: &str,
        scale: Value,
        query: &Query,
    ) -> Result<ApiResponse, Error> {
        let key = ObjectKey::new(rt.id, namespace, name);
        let object = self.store.get(&key).ok_or_else(|| not_found(rt, name))?;
        let old = match rt.custom {
            Some(served) => custom::view(served, object)?,
            None => parse_stored(object)?,
        };
        let replicas = match scale.pointer("/spec/replicas") {
            None | Some(Value::Null) => 0,
            Some(v) => v
                .as_i64()
                .filter(|r| *r >= 0 && *r <= i64::from(i32::MAX))
                .ok_or_else(|| Error::Invalid {
                    kind: "Scale.autoscaling".into(),
                    name: name.into(),
                    causes: alloc::vec![crate::error::Cause::invalid(
                        "spec.replicas",
                        &v.to_string(),
                        "must be greater than or equal to 0"
                    )],
                })?,
        };
        let mut next = old.clone();
        let rv = j::string_at(&scale, "/metadata/resourceVersion");
        set_meta(
            &mut next,
            "resourceVersion",
            Value::from(if rv.is_empty() {
                j::string_at(&old, "/metadata/resourceVersion")
            } else {
                rv
            }),
        );
        set_path(&mut next, &scale_paths(rt).0, Value::from(replicas));
        let manager = Self::manager(req, query);
        let (status, json) = self.write_update(
            now,
            req,
            identity,
            Ownership::Update(&manager),
            rt,
            &key,
            &old,
            next,
            Some("scale"),
            FieldValidation::Ignore,
        )?;
        let stored: Value = serde_json::from_slice(&json)
            .map_err(|e| Error::Internal(alloc::format!("stored object is not JSON: {e}")))?;
        Ok(ApiResponse::json(status, j::to_vec(&scale_of(rt, &stored))))
    }

    /// `PATCH .../{name}/scale` (merge, strategic or JSON patch of the Scale), as `kubectl
    /// scale` sends it.
    #[allow(clippy::too_many_arguments)]
    fn patch_scale(
        &mut self,
        now: UnixTime,
        req: &ApiRequest<'_>,
        identity: &Identity,
        rt: &ResourceType<'_>,
        namespace: &str,
        name: &str,
        query: &Query,
    ) -> Result<ApiResponse, Error> {
        let media = req
            .content_type
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim();
        let body = self.parse(req)?;
        let key = ObjectKey::new(rt.id, namespace, name);
        let object = self.store.get(&key).ok_or_else(|| not_found(rt, name))?;
        let current = match rt.custom {
            Some(served) => custom::view(served, object)?,
            None => parse_stored(object)?,
        };
        let mut scale = scale_of(rt, &current);
        match media {
            "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
                if !body.is_object() {
                    return Err(Error::BadRequest(
                        "a merge patch must be a JSON object".into(),
                    ));
                }
                patch::merge_patch(&mut scale, &body);
            }
            "application/json-patch+json" => patch::json_patch(&mut scale, &body)?,
            _ => {
                return Err(Error::UnsupportedMediaType(alloc::format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got {media:?})"
                )));
            }
        }
        if body.pointer("/metadata/resourceVersion").is_none() {
            set_meta(&mut scale, "resourceVersion", Value::from(""));
        }
        self.put_scale(now, req, identity, rt, namespace, name, scale, query)
    }
}

/// kube's short form of a body in decode errors: the first 30 bytes.
fn summarize(body: &[u8]) -> String {
    match body {
        [] => "<empty>".into(),
        [0, ..] => alloc::format!("<binary> len {}", body.len()),
        _ if body.len() > 30 => alloc::format!(
            "{} ...",
            String::from_utf8_lossy(body.get(..30).unwrap_or(body))
        ),
        _ => String::from_utf8_lossy(body).into_owned(),
    }
}

/// A pod may be bound once: a second binding is kube's 409.
fn already_bound(pod: &Value, name: &str) -> Result<(), Error> {
    let node = j::str_at(pod, "/spec/nodeName");
    if node.is_empty() {
        return Ok(());
    }
    Err(Error::Conflict {
        resource: "pods".into(),
        name: name.into(),
        detail: alloc::format!("pod {name} is already assigned to node \"{node}\""),
    })
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

/// Where the replicas live: `(spec path, status path, selector path)` as JSON field names
/// (`spec.replicas` for the built-in kinds, the definition's paths for a custom resource).
fn scale_paths(rt: &ResourceType<'_>) -> (Vec<String>, Vec<String>, Option<Vec<String>>) {
    let split = |path: &str| -> Vec<String> {
        path.trim_start_matches('.')
            .split('.')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    };
    match rt.custom.and_then(|s| s.version().scale.as_ref()) {
        Some(scale) => (
            split(&scale.spec_replicas_path),
            split(&scale.status_replicas_path),
            scale.label_selector_path.as_deref().map(split),
        ),
        None => (split("spec.replicas"), split("status.replicas"), None),
    }
}

fn value_at<'v>(obj: &'v Value, path: &[String]) -> Option<&'v Value> {
    path.iter().try_fold(obj, |v, step| v.get(step.as_str()))
}

/// Sets the value at `path`, creating the objects on the way.
fn set_path(obj: &mut Value, path: &[String], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut node = obj;
    for step in parents {
        let Some(map) = node.as_object_mut() else {
            return;
        };
        node = map
            .entry(step.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    if let Some(map) = node.as_object_mut() {
        map.insert(last.clone(), value);
    }
}

/// The autoscaling/v1 Scale view of a Deployment, ReplicaSet, ReplicationController or scalable
/// custom resource.
fn scale_of(rt: &ResourceType<'_>, obj: &Value) -> Value {
    if rt.custom.is_some() {
        let (spec, status, selector) = scale_paths(rt);
        let mut metadata = Map::new();
        for field in [
            "name",
            "namespace",
            "uid",
            "resourceVersion",
            "creationTimestamp",
        ] {
            if let Some(v) = obj.pointer(&alloc::format!("/metadata/{field}")) {
                metadata.insert(field.into(), v.clone());
            }
        }
        let int = |path: &[String]| value_at(obj, path).and_then(Value::as_i64).unwrap_or(0);
        let mut status_map = Map::new();
        status_map.insert("replicas".into(), Value::from(int(&status)));
        if let Some(selector) = selector
            .as_deref()
            .and_then(|p| value_at(obj, p))
            .and_then(Value::as_str)
        {
            status_map.insert("selector".into(), Value::from(selector));
        }
        return json!({
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": metadata,
            "spec": {"replicas": int(&spec)},
            "status": status_map,
        });
    }
    let mut metadata = Map::new();
    for field in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = obj.pointer(&alloc::format!("/metadata/{field}")) {
            metadata.insert(field.into(), v.clone());
        }
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": metadata,
        "spec": {"replicas": obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(0)},
        "status": {
            "replicas": obj.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0),
            "selector": selector_string(&scale_selector(obj)),
        },
    })
}

/// The selector a Scale reports: a ReplicationController's is a plain label map.
fn scale_selector(obj: &Value) -> Value {
    let selector = obj
        .pointer("/spec/selector")
        .cloned()
        .unwrap_or(Value::Null);
    if j::str_at(obj, "/kind") == "ReplicationController" {
        return json!({ "matchLabels": selector });
    }
    selector
}

/// A `metav1.LabelSelector` in the query-string form (`app=web,tier in (a,b)`).
fn selector_string(selector: &Value) -> String {
    let mut parts: Vec<(String, String)> = Vec::new();
    if let Some(labels) = selector.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in labels {
            parts.push((
                k.clone(),
                alloc::format!("{k}={}", v.as_str().unwrap_or("")),
            ));
        }
    }
    for expr in selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = j::str_at(expr, "/key");
        let values: Vec<&str> = expr
            .get("values")
            .and_then(Value::as_array)
            .map(|v| v.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let text = match j::str_at(expr, "/operator") {
            "In" => alloc::format!("{key} in ({})", values.join(",")),
            "NotIn" => alloc::format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_string(),
            "DoesNotExist" => alloc::format!("!{key}"),
            _ => continue,
        };
        parts.push((key.to_string(), text));
    }
    parts.sort();
    parts
        .into_iter()
        .map(|(_, t)| t)
        .collect::<Vec<_>>()
        .join(",")
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PatchKind {
    Merge,
    Strategic,
    Json,
    Apply,
}

struct Page {
    items: Vec<StoredObject>,
    next: Option<(String, String)>,
    remaining: Option<u64>,
}

/// Merges two key-ordered streams (current objects, and rebuilt snapshot versions).
struct MergeByKey<A: Iterator, B: Iterator> {
    a: core::iter::Peekable<A>,
    b: core::iter::Peekable<B>,
}

impl<'a, A, B> Iterator for MergeByKey<A, B>
where
    A: Iterator<Item = (&'a ObjectKey, &'a StoredObject)>,
    B: Iterator<Item = (&'a ObjectKey, &'a StoredObject)>,
{
    type Item = (&'a ObjectKey, &'a StoredObject);

    fn next(&mut self) -> Option<Self::Item> {
        match (self.a.peek(), self.b.peek()) {
            (Some((ka, _)), Some((kb, _))) => {
                if ka <= kb {
                    self.a.next()
                } else {
                    self.b.next()
                }
            }
            (Some(_), None) => self.a.next(),
            (None, _) => self.b.next(),
        }
    }
}

fn include_object(query: &Query) -> IncludeObject {
    match query.get("includeObject") {
        Some("None") => IncludeObject::None,
        Some("Object") => IncludeObject::Object,
        _ => IncludeObject::Metadata,
    }
}

fn table_response(value: &Value) -> ApiResponse {
    ApiResponse {
        content_type: request::TABLE,
        ..ApiResponse::json(200, j::to_vec(value))
    }
}

/// kube's `EnsureObjectNamespaceMatchesRequestNamespace` for a patched object: an unset
/// namespace takes the request's, a cluster-scoped object has none, any other is a 400.
fn match_request_namespace(
    rt: &ResourceType,
    namespace: &str,
    obj: &mut Value,
) -> Result<(), Error> {
    let found = j::str_at(obj, "/metadata/namespace");
    if !rt.namespaced {
        remove_meta(obj, "namespace");
    } else if found.is_empty() {
        set_meta(obj, "namespace", Value::from(namespace));
    } else if found != namespace {
        return Err(Error::BadRequest(
            "the namespace of the provided object does not match the namespace sent on the request"
                .into(),
        ));
    }
    Ok(())
}

/// kube's answer to a patch whose result does not decode: 422 with one `patch` cause.
fn patch_invalid(shown: &str, detail: &str) -> Error {
    Error::Invalid {
        kind: String::new(),
        name: String::new(),
        causes: alloc::vec![crate::error::Cause {
            reason: "FieldValueInvalid",
            message: alloc::format!("Invalid value: {}: {detail}", crate::gostr::quote(shown)),
            field: "patch".into(),
        }],
    }
}

/// Go's `fmt.Sprintf("%+v", v)` of a decoded JSON value (`map[k:v]`, `[a b]`, `<nil>`), as kube
/// shows a strategic merge patch in its errors.
fn go_print(value: &Value) -> String {
    fn walk(value: &Value, out: &mut String) {
        match value {
            Value::Null => out.push_str("<nil>"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Number(n) => out.push_str(&n.to_string()),
            Value::String(s) => out.push_str(s),
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    walk(item, out);
                }
                out.push(']');
            }
            Value::Object(map) => {
                out.push_str("map[");
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                for (i, key) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    out.push_str(key);
                    out.push(':');
                    if let Some(v) = map.get(key) {
                        walk(v, out);
                    }
                }
                out.push(']');
            }
        }
    }
    let mut out = String::new();
    walk(value, &mut out);
    out
}

/// Checks and fills namespace and name against the request path.
fn check_path_identity(
    value: &mut Value,
    rt: &ResourceType<'_>,
    namespace: &str,
    name: Option<&str>,
) -> Result<(), Error> {
    let body_ns = j::string_at(value, "/metadata/namespace");
    if rt.namespaced && !body_ns.is_empty() && body_ns != namespace {
        return Err(Error::BadRequest(
            "the namespace of the provided object does not match the namespace sent on the request"
                .into(),
        ));
    }
    if let Some(name) = name {
        let body_name = j::string_at(value, "/metadata/name");
        if body_name.is_empty() {
            set_meta(value, "name", Value::from(name));
        } else if body_name != name {
            return Err(Error::BadRequest(alloc::format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
    }
    Ok(())
}

/// Removes the field at `path` (`spec.containers[0].foo`, as `schema::unknown_fields` names it).
fn prune(obj: &mut Value, path: &str) {
    let mut steps: Vec<Result<&str, usize>> = Vec::new();
    for segment in path.split('.') {
        let (key, indexes) = segment
            .split_once('[')
            .map_or((segment, ""), |(k, rest)| (k, rest));
        steps.push(Ok(key));
        for index in indexes.split('[').filter(|i| !i.is_empty()) {
            match index.trim_end_matches(']').parse::<usize>() {
                Ok(i) => steps.push(Err(i)),
                Err(_) => return,
            }
        }
    }
    let Some((last, parents)) = steps.split_last() else {
        return;
    };
    let mut node = obj;
    for step in parents {
        let next = match step {
            Ok(key) => node.get_mut(*key),
            Err(i) => node.get_mut(*i),
        };
        let Some(next) = next else { return };
        node = next;
    }
    if let (Ok(key), Some(map)) = (last, node.as_object_mut()) {
        map.remove(*key);
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

fn has_generation(resource: ResourceId) -> bool {
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

/// Stored bytes as the request's version answers them (a custom resource's are stored in its
/// storage version).
fn answer(rt: &ResourceType<'_>, json: Vec<u8>) -> Vec<u8> {
    match (rt.custom, rt.view) {
        (Some(served), _) => custom::answer(served, json),
        (None, Some(view)) => view.answer(json),
        (None, None) => json,
    }
}

/// A body in the shape of `rt`'s view, in the stored shape, its times parsed as the stored
/// kind's typed decoder parses them (fields the view names differently included); the body as
/// it is for any other resource.
fn view_to_storage(rt: &ResourceType<'_>, obj: Value) -> Result<Value, Error> {
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
pub(crate) fn desired_state_field(resource: ResourceId) -> &'static str {
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

/// The `kubernetes` Service's address: the service range's first.
fn services_first_ip(cidr: crate::net::ServiceCidr) -> String {
    let [a, b, c, d] = cidr.first().to_be_bytes();
    alloc::format!("{a}.{b}.{c}.{d}")
}
