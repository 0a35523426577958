//! Kubelet TLS bootstrap with the Seal token (issue 18): in enclave TLS mode, two kubemark
//! hollow kubelets start with `--bootstrap-kubeconfig` (credential: `nautilus-seal
//! --exec-credential`) and a `--kubeconfig` they write themselves. Each asks for its client
//! certificate with a CSR, which the enclave approves (the requester is the node the request
//! names) and signs with the cluster CA, whose key never leaves the enclave; the kubelet then
//! runs on that certificate alone: its Node turns Ready with the kubelet's version and a
//! Deployment's pods run on the two nodes. The certificate authenticates the node and nothing
//! more (curl: its own Node yes, Secrets no); a certificate from another CA fails the handshake;
//! the CA is the one published as `client-ca-file`.
//!
//! Skips, saying so, when kubemark is not built and Go is missing (as `kubemark_join` does).

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use nautilus_core::token::hex32;
use nautilus_tests::DevCluster;
use nautilus_tests::kubemark::{
    self, HollowKubelet, SealPlugin, Workspace, node_kubeconfig, wait_for, write_key_file,
};
use nautilus_tests::simulator::{DEFAULT_PACKAGE, SimConfig, Simulator, package_arg};
use serde_json::{Value, json};

const NODES: usize = 2;
const REPLICAS: usize = 4;

fn get(c: &DevCluster, path: &str) -> Value {
    let reply = c
        .request("GET", path, None, &[])
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    assert_eq!(
        reply.status,
        200,
        "GET {path}: {}",
        String::from_utf8_lossy(&reply.body)
    );
    reply.json()
}

fn condition<'a>(obj: &'a Value, kind: &str) -> &'a str {
    obj["status"]["conditions"]
        .as_array()
        .and_then(|l| l.iter().find(|c| c["type"] == kind))
        .and_then(|c| c["status"].as_str())
        .unwrap_or("")
}

/// `curl` to the enclave with a client certificate: (HTTP status, body), or `Err` with curl's
/// words when the handshake fails.
fn curl_cert(
    port: u16,
    ca: &std::path::Path,
    cert: &std::path::Path,
    key: &std::path::Path,
    path: &str,
) -> Result<(u16, String), String> {
    let out = Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(ca)
        .arg("--cert")
        .arg(cert)
        .arg("--key")
        .arg(key)
        .args(["-w", "\n%{http_code}"])
        .arg(format!("https://127.0.0.1:{port}{path}"))
        .output()
        .expect("curl");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", ""));
    Ok((code.trim().parse().unwrap_or(0), body.to_string()))
}

#[test]
fn hollow_kubelets_bootstrap_client_certificates_with_seal_tokens() {
    let kubemark = match kubemark::kubemark_binary() {
        Ok(Some(path)) => path,
        Ok(None) => {
            println!(
                "kubelet_bootstrap: SKIPPED: kubemark is not built and `go` is not on the PATH"
            );
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let version = kubemark::version(&kubemark).expect("kubemark --version");
    let c = DevCluster::start_opts(
        &["--enclave-tls"],
        &[&package_arg(&DEFAULT_PACKAGE), "--min-stake=1000000000"],
    );
    let sim = Simulator::new(
        c.port,
        &c.ca_pem,
        &c.token,
        SimConfig {
            workers: NODES,
            prefix: "boot".into(),
            connections: 2,
            ..SimConfig::default()
        },
    )
    .expect("simulator");
    sim.stake_all().expect("stake");
    sim.register_all().expect("register");

    let workspace = Workspace::new().expect("kubemark workspace");
    let seal = nautilus_tests::binary("nautilus-seal");
    let server = format!("https://127.0.0.1:{}", c.port);
    let mut cert_dirs = Vec::new();
    let kubelets: Vec<HollowKubelet> = sim
        .workers()
        .iter()
        .map(|w| {
            let key_file = workspace.path().join(format!("{}.key", w.node));
            write_key_file(&key_file, &w.secret).expect("key file");
            let stake_id = hex32(&w.stake_id);
            let bootstrap = workspace
                .path()
                .join(format!("{}.bootstrap-kubeconfig", w.node));
            let text = node_kubeconfig(
                &server,
                &c.ca_pem,
                &SealPlugin {
                    seal: &seal,
                    key_file: &key_file,
                    node: &w.node,
                    stake_id: &stake_id,
                    ttl: "300s",
                    refresh_before: "60s",
                },
            );
            std::fs::write(&bootstrap, text).expect("bootstrap kubeconfig");
            let kubeconfig = workspace.path().join(format!("{}.kubeconfig", w.node));
            let cert_dir = workspace.path().join(format!("{}-pki", w.node));
            std::fs::create_dir_all(&cert_dir).expect("cert dir");
            cert_dirs.push((w.node.clone(), kubeconfig.clone(), cert_dir.clone()));
            HollowKubelet::start_bootstrapping(
                &kubemark,
                &workspace,
                &w.node,
                &bootstrap,
                &kubeconfig,
                &cert_dir,
            )
            .expect("start kubemark")
        })
        .collect();
    let nodes: BTreeSet<String> = kubelets.iter().map(|k| k.node.clone()).collect();
    let context = |kubelets: &[HollowKubelet]| {
        let mut out = String::new();
        for k in kubelets {
            out.push_str(&format!("--- {} ---\n{}\n", k.node, k.tail(25)));
        }
        let logs = c.logs();
        let lines: Vec<&str> = logs.lines().collect();
        out.push_str(&lines[lines.len().saturating_sub(30)..].join("\n"));
        out
    };

    // 1. Each kubelet's CSR is approved by the enclave and issued; the kubelet writes its
    //    kubeconfig, which holds a certificate and no credential plugin.
    wait_for(
        Duration::from_secs(60),
        "both CSRs issued",
        || {
            let list = get(
                &c,
                "/apis/certificates.k8s.io/v1/certificatesigningrequests",
            );
            let issued: BTreeSet<String> = list["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|csr| csr["status"]["certificate"].is_string())
                .map(|csr| csr["spec"]["username"].as_str().unwrap_or("").to_string())
                .collect();
            (issued.len() == NODES).then_some(issued)
        },
        || context(&kubelets),
    );
    let list = get(
        &c,
        "/apis/certificates.k8s.io/v1/certificatesigningrequests",
    );
    for csr in list["items"].as_array().unwrap() {
        assert_eq!(
            csr["spec"]["signerName"],
            "kubernetes.io/kube-apiserver-client-kubelet"
        );
        let approved = &csr["status"]["conditions"][0];
        assert_eq!(approved["type"], "Approved", "{csr}");
        assert_eq!(approved["reason"], "AutoApproved", "{csr}");
        let name = csr["spec"]["username"]
            .as_str()
            .unwrap()
            .trim_start_matches("system:node:");
        assert!(nodes.contains(name), "{csr}");
    }
    for (node, kubeconfig, _) in &cert_dirs {
        let text = wait_for(
            Duration::from_secs(30),
            "the kubelet's own kubeconfig",
            || std::fs::read_to_string(kubeconfig).ok(),
            || context(&kubelets),
        );
        assert!(text.contains("client-certificate"), "{node}: {text}");
        assert!(!text.contains("exec"), "{node}: {text}");
    }

    // 2. On its certificate alone, each kubelet takes over its Node.
    wait_for(
        Duration::from_secs(90),
        "Nodes Ready, reported by their kubelets",
        || {
            for k in &kubelets {
                if let Some(status) = k.exited() {
                    panic!("{} exited ({status}):\n{}", k.node, k.tail(60));
                }
            }
            let ready = nodes
                .iter()
                .filter(|n| {
                    let node = get(&c, &format!("/api/v1/nodes/{n}"));
                    condition(&node, "Ready") == "True"
                        && node["status"]["nodeInfo"]["kubeletVersion"] == version.as_str()
                })
                .count();
            (ready == NODES).then_some(())
        },
        || context(&kubelets),
    );

    // 3. Pods run on them.
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": REPLICAS, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "registry.k8s.io/pause:3.10",
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}}});
    let reply = c
        .request(
            "POST",
            "/apis/apps/v1/namespaces/default/deployments",
            Some(deployment.to_string().as_bytes()),
            &[("content-type", "application/json")],
        )
        .expect("create deployment");
    assert_eq!(
        reply.status,
        201,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    wait_for(
        Duration::from_secs(90),
        "the pods Running and Ready on the bootstrapped nodes",
        || {
            let pods = get(&c, "/api/v1/namespaces/default/pods");
            let running = pods["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| {
                    p["status"]["phase"] == "Running"
                        && condition(p, "Ready") == "True"
                        && nodes.contains(p["spec"]["nodeName"].as_str().unwrap_or(""))
                })
                .count();
            (running == REPLICAS).then_some(())
        },
        || context(&kubelets),
    );

    // 4. The certificate is the node's and no more; another CA's is refused in the handshake.
    let ca_file = workspace.path().join("enclave-ca.pem");
    std::fs::write(&ca_file, &c.ca_pem).expect("ca file");
    let (node, _, cert_dir) = &cert_dirs[0];
    let current = cert_dir.join("kubelet-client-current.pem");
    let (code, body) = curl_cert(
        c.port,
        &ca_file,
        &current,
        &current,
        &format!("/api/v1/nodes/{node}"),
    )
    .expect("curl with the kubelet's certificate");
    assert_eq!(code, 200, "{body}");
    let (code, body) = curl_cert(c.port, &ca_file, &current, &current, "/api/v1/secrets").unwrap();
    assert_eq!(code, 403, "{body}");
    assert!(body.contains(&format!("system:node:{node}")), "{body}");
    let other_key = workspace.path().join("other.key");
    let other_crt = workspace.path().join("other.crt");
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "1",
        ])
        .args(["-subj", &format!("/O=system:nodes/CN=system:node:{node}")])
        .arg("-keyout")
        .arg(&other_key)
        .arg("-out")
        .arg(&other_crt)
        .output()
        .expect("openssl");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let refused = curl_cert(
        c.port,
        &ca_file,
        &other_crt,
        &other_key,
        &format!("/api/v1/nodes/{node}"),
    );
    assert!(
        refused.is_err(),
        "a self-made certificate for {node}: {refused:?}"
    );
    // The CA the enclave verifies with is the one it publishes.
    let cm = get(
        &c,
        "/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication",
    );
    let ca_pem = cm["data"]["client-ca-file"]
        .as_str()
        .expect("client-ca-file");
    let ca_path = workspace.path().join("client-ca.pem");
    std::fs::write(&ca_path, ca_pem).unwrap();
    let verified = Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(&ca_path)
        .arg(&current)
        .output()
        .expect("openssl verify");
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );
    drop(kubelets);
}
