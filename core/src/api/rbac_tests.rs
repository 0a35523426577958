//! RBAC kinds against the core alone: stored, defaulted and validated as kube does, printed
//! with kube's columns, and in discovery.

use alloc::string::String;
use alloc::vec::Vec;
use serde_json::{Value, json};

use super::Method;
use crate::cluster::test_harness::{call, causes, column_names, server};

const RBAC: &str = "/apis/rbac.authorization.k8s.io/v1";

#[test]
fn roles_and_bindings_are_stored_defaulted_and_printed() {
    let mut s = server();
    let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "system:reader"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]});
    let (status, created) = call(
        &mut s,
        Method::Post,
        &alloc::format!("{RBAC}/namespaces/default/roles"),
        None,
        &role,
    );
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["rules"][0]["verbs"], json!(["get", "list"]));
    assert!(created["metadata"].get("generation").is_none(), "{created}");
    let binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "read-pods"},
        "roleRef": {"kind": "Role", "name": "system:reader"},
        "subjects": [{"kind": "User", "name": "jane"}, {"kind": "Group", "name": "devs"},
            {"kind": "ServiceAccount", "name": "bot", "namespace": "default"}]});
    let (status, created) = call(
        &mut s,
        Method::Post,
        &alloc::format!("{RBAC}/namespaces/default/rolebindings"),
        None,
        &binding,
    );
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["roleRef"]["apiGroup"], "rbac.authorization.k8s.io");
    assert_eq!(
        created["subjects"][0]["apiGroup"],
        "rbac.authorization.k8s.io"
    );
    assert_eq!(
        created["subjects"][1]["apiGroup"],
        "rbac.authorization.k8s.io"
    );
    assert!(
        created["subjects"][2].get("apiGroup").is_none(),
        "{created}"
    );

    let (status, table) = call(
        &mut s,
        Method::Get,
        &alloc::format!("{RBAC}/namespaces/default/rolebindings"),
        Some("application/json;as=Table;v=v1;g=meta.k8s.io"),
        &Value::Null,
    );
    assert_eq!(status, 200, "{table}");
    let columns = column_names(&table);
    assert_eq!(
        columns,
        ["Name", "Role", "Age", "Users", "Groups", "ServiceAccounts"]
    );
    assert_eq!(
        table["rows"][0]["cells"],
        json!([
            "read-pods",
            "Role/system:reader",
            "0s",
            "jane",
            "devs",
            "default/bot"
        ])
    );
    let (_, roles) = call(
        &mut s,
        Method::Get,
        &alloc::format!("{RBAC}/namespaces/default/roles"),
        Some("application/json;as=Table;v=v1;g=meta.k8s.io"),
        &Value::Null,
    );
    assert_eq!(roles["columnDefinitions"][1]["name"], "Created At");
    assert_eq!(roles["rows"][0]["cells"][0], "system:reader");

    let (status, list) = call(&mut s, Method::Get, RBAC, None, &Value::Null);
    assert_eq!(status, 200, "{list}");
    let names: Vec<&str> = list["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "clusterrolebindings",
            "clusterroles",
            "rolebindings",
            "roles"
        ]
    );
}

#[test]
fn bad_rbac_objects_are_refused_with_kubes_wording() {
    let mut s = server();
    let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "r"},
        "rules": [{"resources": ["pods"]}, {"nonResourceURLs": ["/healthz"], "verbs": ["get"]}]});
    let (status, answer) = call(
        &mut s,
        Method::Post,
        &alloc::format!("{RBAC}/namespaces/default/roles"),
        None,
        &role,
    );
    assert_eq!(status, 422, "{answer}");
    assert_eq!(
        causes(&answer),
        [
            (
                String::from("rules[0].verbs"),
                String::from("Required value: verbs must contain at least one value")
            ),
            (
                String::from("rules[0].apiGroups"),
                String::from("Required value: resource rules must supply at least one api group")
            ),
            (
                String::from("rules[1].nonResourceURLs"),
                String::from(
                    "Invalid value: []string{\"/healthz\"}: namespaced rules cannot apply to non-resource URLs"
                )
            ),
        ]
    );
    let cluster_role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "health"},
        "rules": [{"nonResourceURLs": ["/healthz"], "verbs": ["get"]}]});
    let (status, answer) = call(
        &mut s,
        Method::Post,
        &alloc::format!("{RBAC}/clusterroles"),
        None,
        &cluster_role,
    );
    assert_eq!(status, 201, "{answer}");

    let binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "b"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "x"},
        "subjects": [{"kind": "ServiceAccount", "name": "bot"}, {"kind": "Robot", "name": "r2"}]});
    let (status, answer) = call(
        &mut s,
        Method::Post,
        &alloc::format!("{RBAC}/clusterrolebindings"),
        None,
        &binding,
    );
    assert_eq!(status, 422, "{answer}");
    assert_eq!(
        causes(&answer),
        [
            (
                String::from("roleRef.kind"),
                String::from("Unsupported value: \"Role\": supported values: \"ClusterRole\"")
            ),
            (
                String::from("subjects[0].namespace"),
                String::from("Required value")
            ),
            (
                String::from("subjects[1].kind"),
                String::from(
                    "Unsupported value: \"Robot\": supported values: \"ServiceAccount\", \"User\", \"Group\""
                )
            ),
        ]
    );

    let good = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "b"},
        "roleRef": {"kind": "ClusterRole", "name": "health"}, "subjects": [{"kind": "Group", "name": "system:authenticated"}]});
    let (status, answer) = call(
        &mut s,
        Method::Post,
        &alloc::format!("{RBAC}/clusterrolebindings"),
        None,
        &good,
    );
    assert_eq!(status, 201, "{answer}");
    let (status, answer) = call(
        &mut s,
        Method::Patch,
        &alloc::format!("{RBAC}/clusterrolebindings/b"),
        None,
        &json!({"roleRef": {"name": "other"}}),
    );
    assert_eq!(status, 422, "{answer}");
    assert_eq!(
        causes(&answer),
        [(
            String::from("roleRef"),
            String::from(
                "Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"ClusterRole\", Name:\"other\"}: cannot change roleRef"
            )
        )]
    );
    let (status, answer) = call(
        &mut s,
        Method::Post,
        &alloc::format!("{RBAC}/clusterroles"),
        None,
        &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "a/b"}}),
    );
    assert_eq!(status, 422, "{answer}");
    assert_eq!(
        causes(&answer),
        [(
            String::from("metadata.name"),
            String::from("Invalid value: \"a/b\": may not contain '/'")
        )]
    );
}
