//! Authorization: whether an authenticated caller may make a resource request, decided from the
//! request line alone (verb, resource, namespace, name, field selector) before its body is
//! used, and refused with kube-apiserver's Forbidden wording.
//!
//! The admin, the Relay, certificate users, ServiceAccounts and K3s agent components are
//! decided here (there is no RBAC: ServiceAccounts get no resource, components read what their
//! role in kube or k3s lets them read); nodes go through [`node`], kube's Node authorizer
//! with its static rules and the [`references`] index standing in for its graph.

pub(crate) mod node;
pub(crate) mod references;

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::Error;
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
    /// `verb` on a resource path's parts; the field selector counts only for a list or a watch.
    pub(crate) fn new(
        verb: &'static str,
        resource: ResourceType<'a>,
        namespace: Option<&'a str>,
        name: Option<&'a str>,
        subresource: Option<&'a str>,
        field_selector: Option<&str>,
    ) -> Self {
        let fields = match verb {
            "list" | "watch" => field_selector
                .and_then(|text| FieldSelector::parse_in(resource.id, resource.view, text).ok()),
            _ => None,
        };
        Self {
            verb,
            resource,
            subresource,
            namespace,
            path_name: name,
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

/// Decides a request by `identity`; its `attributes` are worked out (the query parsed) only for
/// the identities whose answer depends on them. Never reads a request body.
pub(crate) fn authorize<'a>(
    identity: &Identity,
    attributes: impl FnOnce() -> Result<Attributes<'a>, Error>,
    store: &Store,
    references: &references::ReferenceIndex,
) -> Result<(), Error> {
    match identity {
        Identity::Node(node) => node::authorize(&node.node_id, &attributes()?, store, references),
        // kube's RBAC decides for ServiceAccounts; until it is enforced here they are granted
        // no resource (RBAC's denial gives no reason). Reviews about themselves, discovery and
        // the issuer's documents are no resource requests.
        Identity::ServiceAccount(_) => Err(forbidden(&identity.username(), &attributes()?, "")),
        Identity::Component(component) => {
            let attrs = attributes()?;
            let reads = matches!(attrs.verb, "get" | "list" | "watch");
            let listed = component.readable().iter().any(|&(group, plural)| {
                attrs.resource.group == group && attrs.resource.plural == plural
            });
            if reads && listed && attrs.subresource.is_none() {
                Ok(())
            } else {
                Err(forbidden(&identity.username(), &attrs, ""))
            }
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
