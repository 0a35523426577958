//! Admission: what a caller may change with a write it is authorized to make, checked on the
//! object as the write would leave it (after the patch is applied, before subresource scoping,
//! defaulting and validation), so every path to the same change (update, each patch format,
//! apply, a status subresource) meets the same rule. A refused write stores nothing.
//!
//! Node identities are restricted ([`node_restriction`], kube's NodeRestriction plugin); every
//! caller meets [`priority`]'s one-global-default rule for PriorityClasses. Pod creation also
//! passes ServiceAccount, RuntimeClass and Priority admission ([`service_account`],
//! [`runtime_class`], [`priority`]), called where pods are created, in kube's plugin order.

pub(crate) mod node_restriction;
pub(crate) mod policy;
pub(crate) mod priority;
pub(crate) mod runtime_class;
pub(crate) mod service_account;
pub(crate) mod services;

use serde_json::Value;

use crate::Error;
use crate::auth::Identity;
use crate::resource::ResourceType;
use crate::store::Store;

/// The change a write makes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Operation<'a> {
    /// A new object.
    Create(&'a Value),
    /// The stored object `old` replaced by `new` (update, patch, apply, status).
    Update {
        /// As stored.
        old: &'a Value,
        /// As the write would leave it.
        new: &'a Value,
    },
    /// The stored object, deleted.
    Delete(&'a Value),
}

/// One write, as kube's `admission.Attributes` describes it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attempt<'a> {
    /// The resource of the path.
    pub(crate) resource: &'a ResourceType<'a>,
    /// The subresource of the path (`status`), if any.
    pub(crate) subresource: Option<&'a str>,
    /// The namespace (empty for cluster-scoped objects).
    pub(crate) namespace: &'a str,
    /// The object's name (from the path, or from the new object on create).
    pub(crate) name: &'a str,
    /// What it does.
    pub(crate) operation: Operation<'a>,
}

/// Admits `attempt` by `identity`, or refuses it with kube's Forbidden status.
pub(crate) fn admit(
    identity: &Identity,
    attempt: &Attempt<'_>,
    store: &Store,
) -> Result<(), Error> {
    if let Identity::Node(node) = identity {
        node_restriction::admit(&node.node_id, attempt)?;
    }
    if attempt.resource.id == crate::resource::ResourceId::PriorityClasses
        && attempt.subresource.is_none()
    {
        priority::validate_class(attempt, store)?;
    }
    Ok(())
}
