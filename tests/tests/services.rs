//! Service allocation end to end with the real kubectl and the Python client (issue 13, item 7):
//! explicit cluster IPs and node ports already in use, out of range or malformed are refused with
//! kube's words; values allocated on update are never handed out twice; type changes and deletes
//! release them; the service range is configurable.

use std::process::Command;

use nautilus_tests::DevCluster;
use serde_json::Value;

fn svc(c: &DevCluster, name: &str) -> Value {
    let out = c.kubectl_ok(&["get", "service", name, "-o", "json"]);
    serde_json::from_str(&out).expect("service JSON")
}

fn node_port(svc: &Value, i: usize) -> u64 {
    svc["spec"]["ports"][i]["nodePort"]
        .as_u64()
        .unwrap_or_else(|| panic!("no node port: {svc}"))
}

#[test]
fn explicit_node_ports_and_cluster_ips_are_checked_like_kube() {
    let c = DevCluster::start();
    c.kubectl_ok(&[
        "create",
        "service",
        "nodeport",
        "first",
        "--tcp=80:80",
        "--node-port=30000",
    ]);
    let err = c.kubectl_err(&[
        "create",
        "service",
        "nodeport",
        "second",
        "--tcp=80:80",
        "--node-port=30000",
    ]);
    assert!(
        err.contains(
            "spec.ports[0].nodePort: Invalid value: 30000: provided port is already allocated"
        ),
        "{err}"
    );
    let err = c.kubectl_err(&[
        "create",
        "service",
        "nodeport",
        "low",
        "--tcp=80:80",
        "--node-port=80",
    ]);
    assert!(
        err.contains(
            "provided port is not in the valid range. The range of valid ports is 30000-32767"
        ),
        "{err}"
    );
    let ip = svc(&c, "first")["spec"]["clusterIP"]
        .as_str()
        .unwrap()
        .to_string();
    let err = c.kubectl_err(&[
        "create",
        "service",
        "clusterip",
        "same-ip",
        "--tcp=80:80",
        &format!("--clusterip={ip}"),
    ]);
    assert!(
        err.contains(&format!(
            "spec.clusterIPs: Invalid value: []string{{\"{ip}\"}}: failed to allocate IP {ip}: provided IP is already allocated"
        )),
        "{err}"
    );
    let err = c.kubectl_err(&[
        "create",
        "service",
        "clusterip",
        "google",
        "--tcp=80:80",
        "--clusterip=8.8.8.8",
    ]);
    assert!(
        err.contains("the provided IP (8.8.8.8) is not in the valid range. The range of valid IPs is 10.43.0.0/16"),
        "{err}"
    );
    let err = c.kubectl_err(&[
        "create",
        "service",
        "clusterip",
        "garbage",
        "--tcp=80:80",
        "--clusterip=not-an-ip",
    ]);
    assert!(
        err.contains(
            "spec.clusterIPs[0]: Invalid value: \"not-an-ip\": must be a valid IP address"
        ),
        "{err}"
    );
    // Two ports of one Service sharing a node port.
    let manifest = r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"twice"},
        "spec":{"type":"NodePort","selector":{"app":"x"},"ports":[
          {"name":"a","port":80,"nodePort":30010},{"name":"b","port":81,"nodePort":30010}]}}"#;
    let out = c.kubectl_with_input(&["create", "-f", "-"], Some(manifest));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("spec.ports[1].nodePort: Duplicate value: 30010"),
        "{stderr}"
    );
    // None of the refused Services exists.
    let names = c.kubectl_ok(&["get", "services", "-o", "name"]);
    for refused in ["second", "low", "same-ip", "google", "garbage", "twice"] {
        assert!(!names.contains(&format!("service/{refused}\n")), "{names}");
    }
}

#[test]
fn ports_allocated_on_update_are_never_handed_out_again_and_type_changes_release() {
    let c = DevCluster::start();
    c.kubectl_ok(&["create", "service", "clusterip", "grows", "--tcp=80:80"]);
    c.kubectl_ok(&[
        "patch",
        "service",
        "grows",
        "-p",
        r#"{"spec":{"type":"NodePort"}}"#,
    ]);
    let port = node_port(&svc(&c, "grows"), 0);
    for i in 0..3 {
        c.kubectl_ok(&[
            "create",
            "service",
            "nodeport",
            &format!("n{i}"),
            "--tcp=80:80",
        ]);
        assert_ne!(node_port(&svc(&c, &format!("n{i}")), 0), port);
    }
    let err = c.kubectl_err(&[
        "create",
        "service",
        "nodeport",
        "thief",
        "--tcp=80:80",
        &format!("--node-port={port}"),
    ]);
    assert!(err.contains("provided port is already allocated"), "{err}");
    // Back to ClusterIP: the port is released and anyone may ask for it.
    c.kubectl_ok(&[
        "patch",
        "service",
        "grows",
        "-p",
        r#"{"spec":{"type":"ClusterIP"}}"#,
    ]);
    assert!(
        svc(&c, "grows")["spec"]["ports"][0]
            .get("nodePort")
            .is_none()
    );
    c.kubectl_ok(&[
        "create",
        "service",
        "nodeport",
        "thief",
        "--tcp=80:80",
        &format!("--node-port={port}"),
    ]);
    // ExternalName gives the IP back; deleting gives everything back.
    let ip = svc(&c, "grows")["spec"]["clusterIP"]
        .as_str()
        .unwrap()
        .to_string();
    c.kubectl_ok(&[
        "patch",
        "service",
        "grows",
        "-p",
        r#"{"spec":{"type":"ExternalName","externalName":"example.com"}}"#,
    ]);
    assert!(svc(&c, "grows")["spec"].get("clusterIP").is_none());
    c.kubectl_ok(&[
        "create",
        "service",
        "clusterip",
        "takes-ip",
        "--tcp=80:80",
        &format!("--clusterip={ip}"),
    ]);
    c.kubectl_ok(&["delete", "service", "takes-ip", "thief"]);
    c.kubectl_ok(&[
        "create",
        "service",
        "clusterip",
        "again-ip",
        "--tcp=80:80",
        &format!("--clusterip={ip}"),
    ]);
    c.kubectl_ok(&[
        "create",
        "service",
        "nodeport",
        "again",
        "--tcp=80:80",
        &format!("--node-port={port}"),
    ]);
    // Server-side apply allocates on the same path.
    let applied = r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"applied"},
        "spec":{"type":"NodePort","selector":{"app":"x"},"ports":[{"port":80}]}}"#;
    let out = c.kubectl_with_input(&["apply", "--server-side", "-f", "-"], Some(applied));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let applied = svc(&c, "applied");
    assert_ne!(node_port(&applied, 0), port);
    assert!(
        applied["spec"]["clusterIP"]
            .as_str()
            .unwrap()
            .starts_with("10.43.")
    );
}

#[test]
fn the_service_range_is_configurable_and_the_python_client_sees_kube_s_refusal() {
    let c = DevCluster::start_with(&[
        "--service-cidr=10.96.0.0/16",
        "--service-node-port-range=31000-31999",
    ]);
    assert_eq!(svc(&c, "kubernetes")["spec"]["clusterIP"], "10.96.0.1");
    c.kubectl_ok(&["create", "service", "nodeport", "web", "--tcp=80:80"]);
    let web = svc(&c, "web");
    assert!(
        web["spec"]["clusterIP"]
            .as_str()
            .unwrap()
            .starts_with("10.96.")
    );
    let port = node_port(&web, 0);
    assert!((31000..=31999).contains(&port), "{port}");
    let script = format!(
        r#"
import sys
from kubernetes import client, config
config.load_kube_config(sys.argv[1])
api = client.CoreV1Api()
body = client.V1Service(
    metadata=client.V1ObjectMeta(name="py"),
    spec=client.V1ServiceSpec(type="NodePort", selector={{"app": "py"}},
        ports=[client.V1ServicePort(port=80, node_port={port})]))
try:
    api.create_namespaced_service("default", body)
    print("created")
except client.exceptions.ApiException as e:
    print("refused", e.status, e.reason)
    print(e.body)
"#
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .arg(&c.kubeconfig)
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("refused 422"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "spec.ports[0].nodePort: Invalid value: {port}: provided port is already allocated"
        )),
        "{stdout}"
    );
    let err = c.kubectl_err(&[
        "create",
        "service",
        "nodeport",
        "old-range",
        "--tcp=80:80",
        "--node-port=30000",
    ]);
    assert!(
        err.contains("The range of valid ports is 31000-31999"),
        "{err}"
    );
}
