//! The `scale` subresource: the autoscaling/v1 Scale view of a Deployment, ReplicaSet,
//! ReplicationController or scalable custom resource, and writes of its replicas through it.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde_json::{Map, Value, json};

use super::fields::{FieldValidation, Ownership};
use super::not_found;
use crate::api::Cluster;
use crate::api::custom;
use crate::api::request::{ApiRequest, ApiResponse, Query};
use crate::auth::Identity;
use crate::cluster::object::{parse_stored, set_meta};
use crate::resource::ResourceType;
use crate::selector::label_selector_string;
use crate::store::ObjectKey;
use crate::{Error, UnixTime, json as j, patch};

impl Cluster {
    /// `GET .../{name}/scale`: the autoscaling/v1 Scale of a Deployment or ReplicaSet.
    pub(super) fn get_scale(
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
    pub(super) fn put_scale(
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
    pub(super) fn patch_scale(
        &mut self,
        now: UnixTime,
        req: &ApiRequest<'_>,
        identity: &Identity,
        rt: &ResourceType<'_>,
        namespace: &str,
        name: &str,
        query: &Query,
    ) -> Result<ApiResponse, Error> {
        let media = req.media_type("");
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
            // kube's `scaleFromDeployment` fails the request on a selector
            // `LabelSelectorAsSelector` refuses; validation refuses such a selector before it is
            // stored, so one cannot reach here, and it would show as no selector.
            "selector": label_selector_string(Some(&scale_selector(obj))).unwrap_or_default(),
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
