//! PATCH of resource objects: merge, strategic merge, JSON patch and server-side apply, each
//! ending in the update path. The patch algorithms themselves are [`crate::patch`]'s.

use alloc::borrow::ToOwned;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde_json::Value;

use super::body::check_path_identity;
use super::fields::{FieldValidation, Ownership};
use super::not_found;
use super::writes::view_to_storage;
use crate::api::Cluster;
use crate::api::custom;
use crate::api::request::{ApiRequest, ApiResponse, Query};
use crate::auth::Identity;
use crate::cluster::object::{parse_stored, remove_meta, set_meta};
use crate::resource::ResourceType;
use crate::store::ObjectKey;
use crate::{Error, UnixTime, json as j, patch};

impl Cluster {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn patch(
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
        let media = req.media_type("");
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
            // An applied configuration is typed against the schema first: a value its field
            // cannot hold fails the conversion (kube's 500 `failed to create typed patch
            // object`; structured-merge-diff words the value, here the decoder does).
            if let Some(e) = super::fields::mistyped(rt, &applied) {
                return Err(Error::Unclassified(alloc::format!(
                    "failed to create typed patch object ({namespace}/{name}; {}, Kind={}): {e}",
                    rt.api_version(),
                    rt.kind
                )));
            }
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
        // The patched object is decoded as a typed one: a value its Go field cannot hold or
        // a bad timestamp fails the patch (422). (For a strategic merge patch kube's message
        // comes from its typed conversion, in other words.)
        let undecodable = match super::fields::mistyped(rt, &patched) {
            Some(e) => Some(e),
            None => crate::metatime::normalize(rt.id, &mut patched).err(),
        };
        if let Some(e) = undecodable {
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PatchKind {
    Merge,
    Strategic,
    Json,
    Apply,
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
