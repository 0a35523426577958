//! Table columns of the RBAC kinds, as kube-apiserver 1.32 prints them: Roles and ClusterRoles
//! have no printer (kube's default Name and Created At), bindings show their role reference and,
//! wide, their subjects.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use serde_json::Value;

use super::{AGE, Column, NAME, col, text, wide};

pub(super) const ROLE_BINDING: &[Column] = &[
    NAME,
    col(
        "Role",
        "string",
        "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error.",
    ),
    AGE,
    wide("Users", "string", "Users in the roleBinding"),
    wide("Groups", "string", "Groups in the roleBinding"),
    wide(
        "ServiceAccounts",
        "string",
        "ServiceAccounts in the roleBinding",
    ),
];

pub(super) const CLUSTER_ROLE_BINDING: &[Column] = &[
    NAME,
    col(
        "Role",
        "string",
        "RoleRef can only reference a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error.",
    ),
    AGE,
    wide("Users", "string", "Users in the clusterRoleBinding"),
    wide("Groups", "string", "Groups in the clusterRoleBinding"),
    wide(
        "ServiceAccounts",
        "string",
        "ServiceAccounts in the clusterRoleBinding",
    ),
];

/// A binding's row: `Kind/name` of its role, and its users, groups and service accounts
/// (`namespace/name`) joined by `, ` (kube's `rbac.SubjectsStrings`).
pub(super) fn binding_cells(obj: &Value, name: Value, created: String) -> Vec<Value> {
    let role = format!(
        "{}/{}",
        text(obj, "/roleRef/kind"),
        text(obj, "/roleRef/name")
    );
    let (mut users, mut groups, mut accounts) = (Vec::new(), Vec::new(), Vec::new());
    for subject in obj
        .get("subjects")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let name = text(subject, "/name");
        match text(subject, "/kind") {
            "ServiceAccount" => {
                accounts.push(format!("{}/{name}", text(subject, "/namespace")));
            }
            "User" => users.push(String::from(name)),
            "Group" => groups.push(String::from(name)),
            _ => {}
        }
    }
    vec![
        name,
        role.into(),
        created.into(),
        users.join(", ").into(),
        groups.join(", ").into(),
        accounts.join(", ").into(),
    ]
}
