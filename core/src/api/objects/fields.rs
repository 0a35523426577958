//! What a write says about its fields: `?fieldValidation=` (unknown and repeated fields), and the
//! field manager that `managedFields` records (`?fieldManager=`, else the User-Agent), with
//! kube's checks of both.

use alloc::string::String;
use alloc::vec::Vec;
use serde_json::Value;

use crate::api::Cluster;
use crate::api::request::{ApiRequest, Query};
use crate::resource::ResourceType;
use crate::{Error, json as j, patch, schema};

/// How to treat unknown fields (`?fieldValidation=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FieldValidation {
    Ignore,
    Warn,
    Strict,
}

/// Longest `fieldManager` kube accepts (`FieldManagerMaxLength`), in bytes.
const MAX_FIELD_MANAGER: usize = 128;

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

impl Cluster {
    pub(super) fn field_validation(query: &Query) -> Result<FieldValidation, Error> {
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
    pub(super) fn check_fields(
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

    /// `ValidateFieldManager` of the verb's options (`CreateOptions`, `UpdateOptions`,
    /// `PatchOptions`): at most 128 bytes, printable characters only.
    pub(super) fn check_field_manager(query: &Query, options: &str) -> Result<(), Error> {
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
    pub(super) fn manager(req: &ApiRequest<'_>, query: &Query) -> String {
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
    pub(super) fn check_patch_options(query: &Query, apply: bool) -> Result<(), Error> {
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

/// What kube's decoder says of a value in `obj` (a built-in kind's object in `rt`'s shape)
/// that its Go field cannot hold ([`crate::schema::type_error`]); custom resources are pruned
/// by their own schema instead (as in [`Cluster::check_fields`]).
pub(super) fn mistyped(rt: &ResourceType<'_>, obj: &Value) -> Option<String> {
    match (rt.custom, rt.view) {
        (Some(_), _) => None,
        (None, Some(view)) => schema::view_type_error(view, obj),
        (None, None) => schema::type_error(rt.id, obj),
    }
}
