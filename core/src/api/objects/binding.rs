//! The pod `binding` subresource: a pod is bound to a node once, through the API or by the
//! scheduler.

use serde_json::{Value, json};

use super::not_found;
use crate::api::Cluster;
use crate::api::request::ApiResponse;
use crate::cluster::WriteContext;
use crate::cluster::object::parse_stored;
use crate::resource::ResourceId;
use crate::store::ObjectKey;
use crate::{Error, json as j};

impl Cluster {
    /// `POST pods/{name}/binding`: sets `spec.nodeName` once and `PodScheduled=True`, as
    /// kube-apiserver's binding does; the scheduler binds through here too.
    pub(super) fn bind(
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
