//! DELETE of one object (its options from the body or the query) and of a collection selected
//! by label and field selectors.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde_json::Value;

use super::{answer, not_found};
use crate::admission::{self, Attempt, Operation};
use crate::api::Cluster;
use crate::api::custom;
use crate::api::request::{ApiRequest, ApiResponse, Query};
use crate::auth::Identity;
use crate::cluster::WriteContext;
use crate::cluster::deletion::{self, DeleteOptions, DeleteQuery};
use crate::cluster::object::parse_stored;
use crate::resource::{ResourceId, ResourceType};
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::ObjectKey;
use crate::{Error, UnixTime};

impl Cluster {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn delete(
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

    pub(super) fn delete_collection(
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
                labels.matches(&*o.index) && fields.matches_object(&k.namespace, &k.name, &*o.index)
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
}
