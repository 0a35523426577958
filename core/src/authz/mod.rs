//! Authorization: whether an authenticated caller may make a resource request, decided from the
//! request line alone (verb, resource, namespace, name, field selector) before its body is
//! used, and refused with kube-apiserver's Forbidden wording.
//!
//! The admin, the Relay and certificate users are decided here as before (there is no RBAC);
//! nodes go through [`node`], kube's Node authorizer with its static rules and the
//! [`references`] index standing in for its graph.

pub(crate) mod node;
pub(crate) mod references;

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::Error;
use crate::api::Method;
use crate::api::request::{Query, ResourcePath};
use crate::auth::Identity;
use crate::resource::ResourceType;
use crate::selector::FieldSelector;
use crate::store::Store;

/// What a resource request asks to do, as kube's `authorizer.Attributes` describes it.
#[derive(Debug)]
pub(crate) struct Attributes<'a> {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete` or `deletecollection`.
    pub(crate) verb: &'static str,
    /// The resource type of the path.
    pub(crate) resource: ResourceType<'a>,
    /// The subresource of the path, if any.
    pub(crate) subresource: Option<&'a str>,
    /// The namespace of the path, if any.
    pub(crate) namespace: Option<&'a str>,
    /// The object name of the path, if any.
    path_name: Option<&'a str>,
    /// The parsed field selector of a list or watch (`None` if absent or unparsable, which
    /// grants nothing a selector could grant).
    pub(crate) fields: Option<FieldSelector>,
}

impl<'a> Attributes<'a> {
    /// The attributes of `method` on `path`; `watch` and `field_selector` come from the query.
    pub(crate) fn of(
        method: Method,
        path: &'a ResourcePath<'a>,
        watch: bool,
        field_selector: Option<&str>,
    ) -> Self {
        let verb = match (method, path.name, watch) {
            (Method::Get | Method::Head, _, true) => "watch",
            (Method::Get | Method::Head, Some(_), false) => "get",
            (Method::Get | Method::Head, None, false) => "list",
            (Method::Post, _, _) => "create",
            (Method::Put, _, _) => "update",
            (Method::Patch, _, _) => "patch",
            (Method::Delete, Some(_), _) => "delete",
            _ => "deletecollection",
        };
        let fields = match verb {
            "list" | "watch" => field_selector.and_then(|text| {
                let rt = path.resource.rt();
                FieldSelector::parse_in(rt.id, rt.view, text).ok()
            }),
            _ => None,
        };
        Self {
            verb,
            resource: path.resource.rt(),
            subresource: path.subresource,
            namespace: path.namespace,
            path_name: path.name,
            fields,
        }
    }

    /// The object the request is about: the path's name, or for a list or watch without one,
    /// the name its field selector requires exactly (`metadata.name=x`), as kube's request info
    /// resolves it; a kubelet watches each Secret it needs that way.
    pub(crate) fn name(&self) -> Option<&str> {
        if self.path_name.is_some() {
            return self.path_name;
        }
        self.fields
            .as_ref()
            .and_then(|f| f.required_value("metadata.name"))
            .filter(|name| is_path_segment_name(name))
    }

    /// The value a plain `field=x` term of the field selector requires.
    pub(crate) fn required_field(&self, field: &str) -> Option<&str> {
        self.fields.as_ref().and_then(|f| f.required_value(field))
    }
}

/// kube's `path.IsValidPathSegmentName`.
fn is_path_segment_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '%'])
}

/// Decides `method` on `path` (with the raw `query`) by `identity`. Never reads a request body.
pub(crate) fn authorize(
    identity: &Identity,
    method: Method,
    path: &ResourcePath<'_>,
    query: &str,
    store: &Store,
    references: &references::ReferenceIndex,
) -> Result<(), Error> {
    match identity {
        Identity::Node(node) => {
            let query = Query::parse(query)?;
            let watch = path.watch_prefix || query.flag("watch")?;
            let attrs = Attributes::of(method, path, watch, query.get("fieldSelector"));
            node::authorize(&node.node_id, &attrs, store, references)
        }
        Identity::Relay => Err(Error::Forbidden {
            resource: String::new(),
            name: String::new(),
            message: "the relay credential may only push Sui events".into(),
            causes: Vec::new(),
        }),
        _ => Ok(()),
    }
}

/// kube-apiserver's answer to a denied request: `<resource> "<name>" is forbidden: User "<user>"
/// cannot <verb> resource "<resource[/sub]>" in API group "<group>" <scope>[: <reason>]`.
pub(crate) fn forbidden(user: &str, attrs: &Attributes<'_>, reason: &str) -> Error {
    let rt = attrs.resource;
    let name = attrs.name().unwrap_or("");
    let plural = crate::cluster::object::qualified(&rt);
    let resource = match attrs.subresource {
        Some(sub) => alloc::format!("{}/{sub}", rt.plural),
        None => rt.plural.to_string(),
    };
    let scope = match attrs.namespace {
        Some(ns) => alloc::format!("in the namespace \"{ns}\""),
        None => "at the cluster scope".to_string(),
    };
    let mut message = alloc::format!(
        "User \"{user}\" cannot {} resource \"{resource}\" in API group \"{}\" {scope}",
        attrs.verb,
        rt.group
    );
    if !reason.is_empty() {
        message.push_str(": ");
        message.push_str(reason);
    }
    forbidden_error(&plural, name, &message)
}

/// `apierrors.NewForbidden`: `<resource> "<name>" is forbidden: <message>`.
pub(crate) fn forbidden_error(plural: &str, name: &str, message: &str) -> Error {
    let subject = if name.is_empty() {
        alloc::format!("{plural} is forbidden: {message}")
    } else {
        alloc::format!("{plural} \"{name}\" is forbidden: {message}")
    };
    Error::Forbidden {
        resource: plural.into(),
        name: name.into(),
        message: subject,
        causes: Vec::new(),
    }
}
