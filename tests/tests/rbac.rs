//! The RBAC kinds end to end with the real `kubectl`: `create role/clusterrole/rolebinding/
//! clusterrolebinding` (kubectl's own generators), `get -o wide` with kube's binding columns,
//! `explain` of their nested fields, kube's refusals (an unchangeable roleRef, a rule without
//! verbs), and a namespace's Roles going with it. They are stored and validated, not enforced:
//! the admin and certificate users are authorised as before, nodes by the Node authorizer.

use nautilus_tests::DevCluster;

#[test]
fn kubectl_creates_lists_explains_and_is_refused_like_kube() {
    let c = DevCluster::start();
    c.kubectl_ok(&["create", "namespace", "team"]);
    c.kubectl_ok(&[
        "create",
        "role",
        "pod-reader",
        "-n",
        "team",
        "--verb=get,list,watch",
        "--resource=pods",
    ]);
    c.kubectl_ok(&[
        "create",
        "rolebinding",
        "read-pods",
        "-n",
        "team",
        "--role=pod-reader",
        "--user=jane",
        "--group=devs",
        "--serviceaccount=team:bot",
    ]);
    c.kubectl_ok(&[
        "create",
        "clusterrole",
        "health",
        "--verb=get",
        "--non-resource-url=/healthz",
    ]);
    c.kubectl_ok(&[
        "create",
        "clusterrolebinding",
        "health-all",
        "--clusterrole=health",
        "--group=system:authenticated",
    ]);

    let wide = c.kubectl_ok(&["get", "rolebindings", "-n", "team", "-o", "wide"]);
    let header: Vec<&str> = wide.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "ROLE", "AGE", "USERS", "GROUPS", "SERVICEACCOUNTS"],
        "{wide}"
    );
    let row: Vec<&str> = wide.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(
        (row[0], row[1], row[3], row[4], row[5]),
        ("read-pods", "Role/pod-reader", "jane", "devs", "team/bot"),
        "{wide}"
    );
    let rules = c.kubectl_ok(&[
        "get",
        "role",
        "pod-reader",
        "-n",
        "team",
        "-o",
        "jsonpath={.rules[0].verbs}",
    ]);
    assert_eq!(rules, r#"["get","list","watch"]"#);
    let subject_group = c.kubectl_ok(&[
        "get",
        "clusterrolebinding",
        "health-all",
        "-o",
        "jsonpath={.subjects[0].apiGroup} {.roleRef.kind}/{.roleRef.name}",
    ]);
    assert_eq!(
        subject_group,
        "rbac.authorization.k8s.io ClusterRole/health"
    );
    let explain = c.kubectl_ok(&["explain", "rolebinding.roleRef.kind"]);
    assert!(
        explain.contains("Kind is the type of resource being referenced"),
        "{explain}"
    );

    // roleRef never changes, as kube's validation says.
    let patch = c.kubectl(&[
        "patch",
        "rolebinding",
        "read-pods",
        "-n",
        "team",
        "--type=merge",
        "-p",
        r#"{"roleRef":{"name":"other"}}"#,
    ]);
    let stderr = String::from_utf8_lossy(&patch.stderr);
    assert!(!patch.status.success());
    assert!(
        stderr.contains("roleRef: Invalid value") && stderr.contains("cannot change roleRef"),
        "{stderr}"
    );
    // A rule needs verbs.
    let bad = c.kubectl_with_input(
        &["create", "-f", "-"],
        Some("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: noverbs\nrules:\n- apiGroups: [\"\"]\n  resources: [pods]\n"),
    );
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("rules[0].verbs: Required value: verbs must contain at least one value"),
        "{stderr}"
    );
    assert!(
        !c.kubectl(&["get", "clusterrole", "noverbs"])
            .status
            .success()
    );

    // A namespace's Roles and RoleBindings go with it.
    c.kubectl_ok(&[
        "delete",
        "namespace",
        "team",
        "--wait=true",
        "--timeout=60s",
    ]);
    let left = c.kubectl_ok(&["get", "roles,rolebindings", "-A", "-o", "name"]);
    assert!(
        !left.contains("pod-reader") && !left.contains("read-pods"),
        "{left}"
    );
}
