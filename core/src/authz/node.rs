//! kube-apiserver's Node authorizer (v1.32, `AuthorizeNodeWithSelectors` on, as it is by
//! default) for a Seal-token identity: the `system:node` rules, with reads of Secrets,
//! ConfigMaps and the like limited to the objects pods bound to the node use, Node reads to its
//! own Node, and pod lists to its own pods. What a node may *change* on the objects it reaches is
//! then decided by admission ([`crate::admission::node_restriction`]), as in kube.

use crate::Error;
use crate::resource::ResourceId;
use crate::store::{ObjectKey, Store};

use super::references::{RefKind, ReferenceIndex};
use super::{Attributes, forbidden};

/// The node lease namespace (`api.NamespaceNodeLease`).
pub(crate) const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

/// Decides `attrs` for the node `node`: `Ok` or kube's Forbidden with the authorizer's reason.
pub(crate) fn authorize(
    node: &str,
    attrs: &Attributes<'_>,
    store: &Store,
    references: &ReferenceIndex,
) -> Result<(), Error> {
    let decision = match attrs.resource.id {
        ResourceId::Secrets => read_namespaced(node, RefKind::Secret, attrs, references),
        ResourceId::ConfigMaps => read_namespaced(node, RefKind::ConfigMap, attrs, references),
        ResourceId::ServiceAccounts => create_token(node, attrs, references),
        ResourceId::Leases => lease(node, attrs),
        ResourceId::Nodes => own_node(node, attrs),
        ResourceId::Pods => pod(node, attrs, store),
        // Not subdivided: the static `system:node` rules.
        ResourceId::Services => rule(attrs, &["get", "list", "watch"]),
        // The kubelet's RuntimeClass informer (NodeRules: node.k8s.io runtimeclasses).
        ResourceId::RuntimeClasses => rule(attrs, &["get", "list", "watch"]),
        ResourceId::CSINodes => csi_node(node, attrs),
        // The kubelet's CSIDriver informer (NodeRules: storage.k8s.io csidrivers).
        ResourceId::CSIDrivers => rule(attrs, &["get", "list", "watch"]),
        ResourceId::VolumeAttachments => volume_attachment(node, attrs, store),
        ResourceId::Endpoints => rule(attrs, &["get"]),
        ResourceId::Events => rule(attrs, &["create", "update", "patch"]),
        // kube's system:node role: a kubelet asks for its certificates (TLS bootstrap and
        // rotation) and watches its requests; approving and signing are not a node's.
        ResourceId::CertificateSigningRequests if attrs.subresource.is_none() => {
            rule(attrs, &["create", "get", "list", "watch"])
        }
        _ => Err(Denied::Because("")),
    };
    decision.map_err(|denied| {
        let reason = match denied {
            Denied::Because(text) => alloc::borrow::Cow::Borrowed(text),
            Denied::NoRelationship => {
                alloc::format!("no relationship found between node '{node}' and this object").into()
            }
            Denied::AllNodes => {
                alloc::format!("node '{node}' cannot read all nodes, only its own Node object")
                    .into()
            }
            Denied::OtherNode(other) => {
                alloc::format!("node '{node}' cannot read '{other}', only its own Node object")
                    .into()
            }
        };
        forbidden(&user(node), attrs, &reason)
    })
}

/// `system:node:<name>`, the user kube-apiserver sees for a node's credential.
pub(crate) fn user(node: &str) -> alloc::string::String {
    alloc::format!("system:node:{node}")
}

/// Why the Node authorizer said no, worded by kube's reasons (empty: no reason given).
enum Denied<'a> {
    Because(&'static str),
    NoRelationship,
    AllNodes,
    OtherNode(&'a str),
}

type Decision<'a> = Result<(), Denied<'a>>;

/// A static `system:node` rule on the resource itself (no subresource) allowing `verbs`.
fn rule(attrs: &Attributes<'_>, verbs: &[&str]) -> Decision<'static> {
    if attrs.subresource.is_none() && verbs.contains(&attrs.verb) {
        Ok(())
    } else {
        Err(Denied::Because(""))
    }
}

/// `authorizeReadNamespacedObject`: get, list and watch of one named object a pod bound to the
/// node uses.
fn read_namespaced(
    node: &str,
    kind: RefKind,
    attrs: &Attributes<'_>,
    references: &ReferenceIndex,
) -> Decision<'static> {
    if !matches!(attrs.verb, "get" | "list" | "watch") {
        return Err(Denied::Because("can only read resources of this type"));
    }
    if attrs.subresource.is_some() {
        return Err(Denied::Because("cannot read subresource"));
    }
    let Some(namespace) = attrs.namespace else {
        return Err(Denied::Because(
            "can only read namespaced object of this type",
        ));
    };
    related(node, kind, namespace, attrs, references)
}

/// `authorizeCreateToken`: a token for a service account a pod bound to the node runs as.
fn create_token(
    node: &str,
    attrs: &Attributes<'_>,
    references: &ReferenceIndex,
) -> Decision<'static> {
    if attrs.verb != "create" || attrs.name().is_none() {
        return Err(Denied::Because(
            "can only create tokens for individual service accounts",
        ));
    }
    if attrs.subresource != Some("token") {
        return Err(Denied::Because(
            "can only create token subresource of serviceaccount",
        ));
    }
    related(
        node,
        RefKind::ServiceAccount,
        attrs.namespace.unwrap_or(""),
        attrs,
        references,
    )
}

/// `authorize`: the named object is used by a pod bound to the node.
fn related(
    node: &str,
    kind: RefKind,
    namespace: &str,
    attrs: &Attributes<'_>,
    references: &ReferenceIndex,
) -> Decision<'static> {
    let Some(name) = attrs.name() else {
        return Err(Denied::Because("No Object name found"));
    };
    if references.uses(kind, namespace, name, node) {
        Ok(())
    } else {
        Err(Denied::NoRelationship)
    }
}

/// `authorizeLease`: the node's own Lease in `kube-node-lease` (create is checked by admission,
/// which sees the name).
fn lease(node: &str, attrs: &Attributes<'_>) -> Decision<'static> {
    if !matches!(attrs.verb, "get" | "create" | "update" | "patch" | "delete") {
        return Err(Denied::Because(
            "can only get, create, update, patch, or delete a node lease",
        ));
    }
    if attrs.namespace != Some(NODE_LEASE_NAMESPACE) {
        return Err(Denied::Because(
            "can only access leases in the \"kube-node-lease\" system namespace",
        ));
    }
    if attrs.verb != "create" && attrs.name() != Some(node) {
        return Err(Denied::Because(
            "can only access node lease with the same name as the requesting node",
        ));
    }
    Ok(())
}

/// `authorizeCSINode`: its own CSINode (create is checked by admission, which sees the name).
fn csi_node(node: &str, attrs: &Attributes<'_>) -> Decision<'static> {
    if !matches!(attrs.verb, "get" | "create" | "update" | "patch" | "delete") {
        return Err(Denied::Because(
            "can only get, create, update, patch, or delete a CSINode",
        ));
    }
    if attrs.subresource.is_some() {
        return Err(Denied::Because("cannot authorize CSINode subresources"));
    }
    if attrs.verb != "create" && attrs.name() != Some(node) {
        return Err(Denied::Because(
            "can only access CSINode with the same name as the requesting node",
        ));
    }
    Ok(())
}

/// `authorizeGet` of a VolumeAttachment: one attached to the node (`spec.nodeName`, the graph's
/// edge from the attachment to its node).
fn volume_attachment(node: &str, attrs: &Attributes<'_>, store: &Store) -> Decision<'static> {
    if attrs.verb != "get" {
        return Err(Denied::Because(
            "can only get individual resources of this type",
        ));
    }
    if attrs.subresource.is_some() {
        return Err(Denied::Because("cannot get subresource"));
    }
    let Some(name) = attrs.name() else {
        return Err(Denied::Because("No Object name found"));
    };
    let attached = store
        .get(&ObjectKey::new(ResourceId::VolumeAttachments, "", name))
        .and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.json.bytes()).ok())
        .is_some_and(|va| crate::json::str_at(&va, "/spec/nodeName") == node);
    if attached {
        Ok(())
    } else {
        Err(Denied::NoRelationship)
    }
}

/// `authorizeNode`: reads of its own Node only; writes go on to admission.
fn own_node<'a>(node: &str, attrs: &'a Attributes<'_>) -> Decision<'a> {
    match (attrs.subresource, attrs.verb) {
        (None, "create" | "update" | "patch") | (Some("status"), "update" | "patch") => Ok(()),
        (None, "get" | "list" | "watch") => match attrs.name() {
            Some(name) if name == node => Ok(()),
            None => Err(Denied::AllNodes),
            Some(other) => Err(Denied::OtherNode(other)),
        },
        _ => Err(Denied::Because("")),
    }
}

/// `authorizePod`: its own pods by name or by `spec.nodeName` selector; create and delete go on
/// to admission (mirror pods, own pods), as do status updates and evictions.
fn pod(node: &str, attrs: &Attributes<'_>, store: &Store) -> Decision<'static> {
    let bound = |name: &str| {
        store
            .get(&ObjectKey::new(
                ResourceId::Pods,
                attrs.namespace.unwrap_or(""),
                name,
            ))
            .is_some_and(|o| o.index.field_is("spec.nodeName", node))
    };
    match (attrs.subresource, attrs.verb) {
        (None, "get") => match attrs.name() {
            Some(name) if bound(name) => Ok(()),
            Some(_) => Err(Denied::NoRelationship),
            None => Err(Denied::Because("No Object name found")),
        },
        (None, "list" | "watch") => {
            if attrs.required_field("spec.nodeName") == Some(node) {
                return Ok(());
            }
            match attrs.name() {
                Some(name) if bound(name) => Ok(()),
                Some(_) => Err(Denied::NoRelationship),
                None => Err(Denied::Because(
                    "can only list/watch pods with spec.nodeName field selector",
                )),
            }
        }
        (None, "create" | "delete") | (Some("status"), "update" | "patch") => Ok(()),
        (Some("eviction"), "create") => Ok(()),
        _ => Err(Denied::Because("")),
    }
}
