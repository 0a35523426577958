//! `storage.k8s.io/v1` CSINode and CSIDriver end to end with the real `kubectl`: an admin
//! creates a CSIDriver (defaulted as kube defaults it, printed with kube's columns, explained);
//! a staked worker, with its own Seal token as a kubelet holds it, creates and reads its own
//! CSINode, owned by its Node, and is refused every way of touching another node's, in kube's
//! words (the Node authorizer and NodeRestriction).

use std::time::Duration;

use nautilus_tests::DevCluster;
use nautilus_tests::kubectl_forbidden as refused;
use nautilus_tests::simulator::{DEFAULT_PACKAGE, SimConfig, Simulator, package_arg};
use serde_json::{Value, json};

fn csi_node(name: &str, node_uid: &str) -> String {
    json!({"apiVersion": "storage.k8s.io/v1", "kind": "CSINode",
        "metadata": {"name": name, "ownerReferences": [{"apiVersion": "v1", "kind": "Node",
            "name": name, "uid": node_uid}]},
        "spec": {"drivers": [{"name": "csi.example.com", "nodeID": name}]}})
    .to_string()
}

#[test]
fn a_worker_keeps_its_own_csinode_and_reads_csidrivers() {
    let c = DevCluster::start_with(&[&package_arg(&DEFAULT_PACKAGE), "--min-stake=1000000000"]);
    let config = SimConfig {
        workers: 2,
        interval: Duration::from_secs(2),
        connections: 2,
        ..SimConfig::default()
    };
    let sim = Simulator::start(&c, config).unwrap();
    let (me, other) = (sim.worker(0).node.clone(), sim.worker(1).node.clone());
    let token = sim.worker(0).token();
    let t = token.as_str();

    // The admin's CSIDriver, defaulted and printed as kube does.
    let out = c.kubectl_with_input(
        &["create", "-f", "-"],
        Some("apiVersion: storage.k8s.io/v1\nkind: CSIDriver\nmetadata:\n  name: csi.example.com\nspec:\n  podInfoOnMount: true\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let drivers = c.kubectl_ok(&["get", "csidrivers"]);
    let header: Vec<&str> = drivers.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "ATTACHREQUIRED",
            "PODINFOONMOUNT",
            "STORAGECAPACITY",
            "TOKENREQUESTS",
            "REQUIRESREPUBLISH",
            "MODES",
            "AGE"
        ],
        "{drivers}"
    );
    let row: Vec<&str> = drivers.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(
        &row[..7],
        [
            "csi.example.com",
            "true",
            "true",
            "false",
            "<unset>",
            "false",
            "Persistent"
        ],
        "{drivers}"
    );
    let explain = c.kubectl_ok(&["explain", "csinode.spec.drivers.nodeID"]);
    assert!(
        explain.contains("nodeID of the node from the driver point of view"),
        "{explain}"
    );

    // Its own CSINode, owned by its Node, as a kubelet writes it.
    let uid = |node: &str| c.kubectl_ok(&["get", "node", node, "-o", "jsonpath={.metadata.uid}"]);
    let (my_uid, other_uid) = (uid(&me), uid(&other));
    let mine = csi_node(&me, &my_uid);
    let mut args = vec!["--token", t, "create", "-f", "-"];
    let out = c.kubectl_with_input(&args, Some(&mine));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    args.truncate(2);
    args.extend(["get", "csinode", me.as_str(), "-o", "json"]);
    let got: Value = serde_json::from_str(&c.kubectl_ok(&args)).unwrap();
    assert_eq!(
        got["metadata"]["ownerReferences"][0]["uid"],
        my_uid.as_str()
    );
    assert_eq!(got["spec"]["drivers"][0]["nodeID"], me.as_str());
    let listed = c.kubectl_ok(&["--token", t, "get", "csidrivers", "-o", "name"]);
    assert_eq!(listed.trim(), "csidriver.storage.k8s.io/csi.example.com");

    // Another node's, by every verb kubectl has.
    let theirs = csi_node(&other, &other_uid);
    let out = c.kubectl_with_input(&["create", "-f", "-"], Some(&theirs));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let by_name = |verb: &str| {
        format!(
            "csinodes.storage.k8s.io \"{other}\" is forbidden: User \"system:node:{me}\" cannot {verb} resource \"csinodes\" in API group \"storage.k8s.io\" at the cluster scope: can only access CSINode with the same name as the requesting node"
        )
    };
    let stolen = csi_node(&other, &my_uid);
    refused(
        &c,
        t,
        &["create", "-f", "-"],
        Some(&csi_node("csi-squatter", &my_uid)),
        "error when creating \"STDIN\": csinodes.storage.k8s.io \"csi-squatter\" is forbidden: can only access CSINode with the same name as the requesting node",
    );
    refused(&c, t, &["get", "csinode", &other], None, &by_name("get"));
    refused(
        &c,
        t,
        &["delete", "csinode", &other],
        None,
        &by_name("delete"),
    );
    refused(
        &c,
        t,
        &[
            "patch",
            "csinode",
            &other,
            "--type=merge",
            "-p",
            r#"{"metadata":{"labels":{"x":"y"}}}"#,
        ],
        None,
        // kubectl reads the object before it patches.
        &by_name("get"),
    );
    refused(
        &c,
        t,
        &["apply", "--server-side", "--force-conflicts", "-f", "-"],
        Some(&stolen),
        &by_name("patch"),
    );
    refused(
        &c,
        t,
        &["replace", "-f", "-"],
        Some(&stolen),
        &format!("error when replacing \"STDIN\": {}", by_name("update")),
    );
    refused(
        &c,
        t,
        &["get", "csinodes"],
        None,
        &format!(
            "csinodes.storage.k8s.io is forbidden: User \"system:node:{me}\" cannot list resource \"csinodes\" in API group \"storage.k8s.io\" at the cluster scope: can only get, create, update, patch, or delete a CSINode"
        ),
    );
    refused(
        &c,
        t,
        &["delete", "csidriver", "csi.example.com"],
        None,
        &format!(
            "csidrivers.storage.k8s.io \"csi.example.com\" is forbidden: User \"system:node:{me}\" cannot delete resource \"csidrivers\" in API group \"storage.k8s.io\" at the cluster scope"
        ),
    );
    let after: Value =
        serde_json::from_str(&c.kubectl_ok(&["get", "csinode", &other, "-o", "json"])).unwrap();
    assert_eq!(
        after["metadata"]["ownerReferences"][0]["uid"],
        other_uid.as_str()
    );
    assert!(after["metadata"].get("labels").is_none(), "{after}");

    // The admin sees both, with kube's columns.
    let table = c.kubectl_ok(&["get", "csinodes"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "DRIVERS", "AGE"], "{table}");
    assert_eq!(table.lines().count(), 3, "{table}");
}
