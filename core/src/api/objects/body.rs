//! Request bodies of resource writes: JSON, YAML or protobuf decoded into the JSON tree every
//! verb works on, within the configured size and depth bounds, and checked against the path's
//! kind, namespace and name.

use alloc::string::String;
use alloc::vec::Vec;
use serde_json::Value;

use crate::api::Cluster;
use crate::api::request::ApiRequest;
use crate::cluster::object::set_meta;
use crate::resource::ResourceType;
use crate::{Error, json as j};

/// A body that must be an object of the path's kind.
pub(super) struct Body {
    pub(super) value: Value,
}

impl Cluster {
    /// Decodes a request body of `kind` in `api_version` that is no stored resource (the access
    /// reviews): JSON or protobuf.
    pub(in crate::api) fn decode_body(
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
        match req.media_type("application/json") {
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
    pub(super) fn parse_yaml_strict(
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

    pub(super) fn parse(&self, req: &ApiRequest<'_>) -> Result<Value, Error> {
        j::parse_body(
            req.body,
            self.config.max_body_bytes,
            self.config.max_json_depth,
        )
    }

    /// Parses a create/update body and checks it names the path's kind, namespace and name.
    pub(super) fn body(
        &self,
        req: &ApiRequest<'_>,
        rt: &ResourceType<'_>,
        namespace: &str,
        name: Option<&str>,
    ) -> Result<Body, Error> {
        let media = req.media_type("application/json");
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
        // Typed decoding: a value its Go field cannot hold fails the whole body, as in kube
        // (stored, a `"replicas": "3"` would break every client that decodes the kind).
        if let Some(e) = super::fields::mistyped(rt, &value) {
            return Err(Error::BadRequest(alloc::format!(
                "{kind} in version \"{version}\" cannot be handled as a {kind}: {e}",
                kind = rt.kind,
                version = rt.version,
            )));
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

/// Checks and fills namespace and name against the request path.
pub(super) fn check_path_identity(
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
