//! Kubelet TLS bootstrap with the Seal token (issue 18): in enclave TLS mode, two kubemark
//! hollow kubelets start with `--bootstrap-kubeconfig` (credential: `nautilus-seal
//! --exec-credential`) and a `--kubeconfig` they write themselves. Each asks for its client
//! certificate with a CSR, which the enclave approves (the requester is the node the request
//! names) and signs with the cluster CA, whose key never leaves the enclave; the kubelet then
//! runs on that certificate alone: its Node turns Ready with the kubelet's version and a
//! Deployment's pods run on the two nodes. The certificate authenticates the node and nothing
//! more (curl: its own Node yes, Secrets no); a certificate from another CA fails the handshake;
//! the CA is the one published as `client-ca-file`, and it issues the enclave's own serving
//! certificate. The cluster is durable: after a `kill -9` of the enclave the kubelets carry on
//! with the certificates they hold and the kubeconfigs they have (the CA comes back from the data
//! key; the new serving key is certified by it), and kubectl too, nothing re-pinned. Last, a
//! node's `kubernetes.io/kubelet-serving` CSR waits for `kubectl certificate approve`, is
//! issued, and a TLS server presenting it is trusted through the CA.
//!
//! Skips, saying so, when kubemark is not built and Go is missing (as `kubemark_join` does).

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use nautilus_tests::DevCluster;
use nautilus_tests::kubemark::{
    self, HollowKubelet, Workspace, condition, get, renews_since, wait_for, wait_nodes_ready,
    write_seal_kubeconfig,
};
use nautilus_tests::simulator::{DEFAULT_PACKAGE, SimConfig, Simulator, now_secs, package_arg};
use serde_json::json;

const NODES: usize = 2;
const REPLICAS: usize = 4;

/// `curl` to the enclave with a client certificate (a GET, or a POST of the JSON file `post`):
/// (HTTP status, body), or `Err` with curl's words when the handshake fails.
fn curl_cert(
    port: u16,
    ca: &std::path::Path,
    cert: &std::path::Path,
    key: &std::path::Path,
    path: &str,
    post: Option<&std::path::Path>,
) -> Result<(u16, String), String> {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--cacert"])
        .arg(ca)
        .arg("--cert")
        .arg(cert)
        .arg("--key")
        .arg(key)
        .args(["-w", "\n%{http_code}"]);
    if let Some(file) = post {
        cmd.args(["-H", "content-type: application/json", "--data-binary"])
            .arg(format!("@{}", file.display()));
    }
    let out = cmd
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

/// The token a hollow kubelet projected into pod `uid`'s volume `volume`: kubemark's kubelets
/// keep their root directories in the temp dir (`hollow-kubelet.*`), the projected volume's
/// files under `pods/UID/volumes/kubernetes.io~projected/VOLUME/`.
fn projected_token(uid: &str, volume: &str) -> Option<String> {
    std::fs::read_dir(std::env::temp_dir())
        .ok()?
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("hollow-kubelet.")
        })
        .find_map(|root| {
            let file = root
                .path()
                .join("pods")
                .join(uid)
                .join("volumes/kubernetes.io~projected")
                .join(volume)
                .join("token");
            std::fs::read_to_string(file).ok().filter(|t| !t.is_empty())
        })
}

/// TokenRequests answered 201 (`serviceaccounts/token`), from the enclave's
/// `apiserver_request_total`.
fn token_requests_issued(metrics: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| {
            l.starts_with("apiserver_request_total{")
                && l.contains("resource=\"serviceaccounts\"")
                && l.contains("subresource=\"token\"")
                && l.contains("code=\"201\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// The serving certificate (PEM) the API server presents on `port`, as `openssl s_client`
/// shows it.
fn served_certificate(port: u16) -> String {
    // `timeout`: a server that never finishes the handshake fails the test, not hangs it.
    let out = Command::new("timeout")
        .args(["30", "openssl", "s_client", "-connect"])
        .arg(format!("127.0.0.1:{port}"))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl s_client");
    let text = String::from_utf8_lossy(&out.stdout);
    let begin = text
        .find("-----BEGIN CERTIFICATE-----")
        .unwrap_or_else(|| panic!("no certificate from the server: {text}"));
    let end = text[begin..].find("-----END CERTIFICATE-----").unwrap() + begin;
    text[begin..end].to_string()
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
    let mut c = DevCluster::start_opts(
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
    let mut cert_dirs = Vec::new();
    let kubelets: Vec<HollowKubelet> = sim
        .workers()
        .iter()
        .map(|w| {
            let bootstrap = workspace
                .path()
                .join(format!("{}.bootstrap-kubeconfig", w.node));
            write_seal_kubeconfig(
                &c,
                &workspace,
                w,
                Duration::from_secs(300),
                Duration::from_secs(60),
                &bootstrap,
            )
            .expect("bootstrap kubeconfig");
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
        || kubemark::context(&c, &kubelets, 25),
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
            || kubemark::context(&c, &kubelets, 25),
        );
        assert!(text.contains("client-certificate"), "{node}: {text}");
        assert!(!text.contains("exec"), "{node}: {text}");
    }

    // 2. On its certificate alone, each kubelet takes over its Node.
    wait_nodes_ready(&c, &kubelets, &version, Duration::from_secs(90));

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
        || kubemark::context(&c, &kubelets, 25),
    );

    // 3b. ServiceAccount admission: a pod made with `kubectl run` runs as `default` with the
    //     projected `kube-api-access-<five random characters>` volume mounted at kube's path; its kubelet asks
    //     TokenRequest (serviceaccounts/token) for the token it projects, bound to the pod, and
    //     writes it into the volume, where it authenticates as the pod's account.
    c.kubectl_ok(&[
        "run",
        "solo",
        "--image=registry.k8s.io/pause:3.10",
        "--restart=Never",
    ]);
    let solo = get(&c, "/api/v1/namespaces/default/pods/solo");
    assert_eq!(solo["spec"]["serviceAccountName"], "default", "{solo}");
    let volume = solo["spec"]["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| {
            v["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("kube-api-access-"))
        })
        .unwrap_or_else(|| panic!("no kube-api-access volume: {solo}"))
        .clone();
    assert_eq!(
        volume["projected"]["sources"][0]["serviceAccountToken"],
        json!({"expirationSeconds": 3607, "path": "token"}),
        "{volume}"
    );
    assert_eq!(
        solo["spec"]["containers"][0]["volumeMounts"],
        json!([{"name": volume["name"], "readOnly": true,
            "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}])
    );
    let uid = solo["metadata"]["uid"].as_str().unwrap().to_string();
    let token = wait_for(
        Duration::from_secs(90),
        "the pod Running, its token projected by its kubelet",
        || {
            let pod = get(&c, "/api/v1/namespaces/default/pods/solo");
            let running = pod["status"]["phase"] == "Running" && condition(&pod, "Ready") == "True";
            running
                .then(|| projected_token(&uid, volume["name"].as_str().unwrap()))
                .flatten()
        },
        || kubemark::context(&c, &kubelets, 25),
    );
    let metrics = c.request("GET", "/metrics", None, &[]).expect("metrics");
    let issued = token_requests_issued(&String::from_utf8_lossy(&metrics.body));
    assert!(
        issued > REPLICAS as u64,
        "a TokenRequest for each of the {} pods, {issued} counted",
        REPLICAS + 1
    );
    let review = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
        "spec": {"token": token}});
    let reply = c
        .request(
            "POST",
            "/apis/authentication.k8s.io/v1/tokenreviews",
            Some(review.to_string().as_bytes()),
            &[("content-type", "application/json")],
        )
        .expect("token review");
    let review: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    let status = &review["status"];
    assert_eq!(status["authenticated"], true, "{review}");
    assert_eq!(
        status["user"]["username"], "system:serviceaccount:default:default",
        "{review}"
    );
    assert_eq!(
        status["user"]["extra"]["authentication.kubernetes.io/pod-name"],
        json!(["solo"]),
        "{review}"
    );
    assert_eq!(
        status["user"]["extra"]["authentication.kubernetes.io/pod-uid"],
        json!([uid]),
        "{review}"
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
        None,
    )
    .expect("curl with the kubelet's certificate");
    assert_eq!(code, 200, "{body}");
    let (code, body) = curl_cert(
        c.port,
        &ca_file,
        &current,
        &current,
        "/api/v1/secrets",
        None,
    )
    .unwrap();
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
        None,
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

    // 5. The enclave crashes (`kill -9`) and dev restarts it on the same data directory: the
    //    cluster CA is derived from the data key again, so the client certificates the kubelets
    //    hold stay valid, and so does everyone's trust in the API server: the restarted enclave
    //    makes a new serving key (bound to its boot's attestation), but the cluster CA issues
    //    its certificate, as kube's serving certificate chains to the cluster CA. Nothing is
    //    re-pinned: dev's kubeconfig and the kubelets' own kubeconfigs stay byte for byte, the
    //    kubelets are not restarted, and they carry on without a new CSR (client-go reconnects):
    //    Leases renewed, Nodes Ready, kubectl answering.
    let csrs = |c: &DevCluster| {
        get(c, "/apis/certificates.k8s.io/v1/certificatesigningrequests")["items"]
            .as_array()
            .map_or(0, Vec::len)
    };
    let before = csrs(&c);
    let old_pin = base64::engine::general_purpose::STANDARD.encode(&c.ca_pem);
    let kubeconfigs: Vec<(std::path::PathBuf, Vec<u8>)> = cert_dirs
        .iter()
        .flat_map(|(node, kubeconfig, _)| {
            [
                workspace
                    .path()
                    .join(format!("{node}.bootstrap-kubeconfig")),
                kubeconfig.clone(),
            ]
        })
        .chain(std::iter::once(c.kubeconfig.clone()))
        .map(|file| {
            let bytes = std::fs::read(&file).expect("kubeconfig");
            (file, bytes)
        })
        .collect();
    for (file, bytes) in &kubeconfigs {
        let text = String::from_utf8_lossy(bytes);
        assert!(text.contains(&old_pin), "{}: {text}", file.display());
    }
    let serving_before = served_certificate(c.port);
    let restarted = now_secs();
    c.kill_enclave();
    assert_eq!(
        base64::engine::general_purpose::STANDARD.encode(&c.ca_pem),
        old_pin,
        "the same cluster CA in dev's kubeconfig"
    );
    assert_ne!(
        served_certificate(c.port),
        serving_before,
        "a new serving certificate (a new key) after the restart"
    );
    for (file, bytes) in &kubeconfigs {
        assert_eq!(
            &std::fs::read(file).expect("kubeconfig"),
            bytes,
            "{} was not rewritten",
            file.display()
        );
    }
    assert!(
        !c.logs().contains("kubeconfig re-pinned"),
        "dev did not re-pin:\n{}",
        c.logs()
    );
    let out = c.kubectl_ok(&["get", "nodes", "-o", "name"]);
    assert!(out.contains("node/"), "kubectl after the restart: {out}");
    wait_for(
        Duration::from_secs(60),
        "the kubelets to renew their Leases on the restarted enclave",
        || {
            for k in &kubelets {
                if let Some(status) = k.exited() {
                    panic!("{} exited ({status}):\n{}", k.node, k.tail(60));
                }
            }
            nodes
                .iter()
                .all(|n| renews_since(&c, n, restarted))
                .then_some(())
        },
        || kubemark::context(&c, &kubelets, 25),
    );
    assert_eq!(csrs(&c), before, "no kubelet asked for a new certificate");
    let (code, body) = curl_cert(
        c.port,
        &ca_file,
        &current,
        &current,
        &format!("/api/v1/nodes/{node}"),
        None,
    )
    .expect("the kubelet's certificate after the restart");
    assert_eq!(code, 200, "{body}");
    let cm = get(
        &c,
        "/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication",
    );
    assert_eq!(cm["data"]["client-ca-file"], ca_pem, "the same cluster CA");

    // 6. A kubelet serving certificate, as `--rotate-server-certificates` asks for one (the
    //    hollow kubelet has no such flag, so the node's request is made here with its client
    //    certificate): a `kubernetes.io/kubelet-serving` CSR for the node's name and address
    //    waits for the administrator, as in kube (only client certificates are approved
    //    automatically); `kubectl certificate approve` has the signer issue it, and a TLS
    //    server presenting it on the node's address is trusted through the cluster CA.
    let serving_key = workspace.path().join("serving.key");
    let serving_csr = workspace.path().join("serving.csr");
    let made = Command::new("openssl")
        .args([
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .args(["-subj", &format!("/O=system:nodes/CN=system:node:{node}")])
        .args([
            "-addext",
            &format!("subjectAltName=IP:127.0.0.1,DNS:{node}"),
        ])
        .arg("-keyout")
        .arg(&serving_key)
        .arg("-out")
        .arg(&serving_csr)
        .output()
        .expect("openssl req");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let request =
        base64::engine::general_purpose::STANDARD.encode(std::fs::read(&serving_csr).expect("csr"));
    let body = workspace.path().join("serving-csr.json");
    let csr_name = format!("serving-{node}");
    std::fs::write(
        &body,
        json!({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
            "metadata": {"name": csr_name},
            "spec": {"request": request, "signerName": "kubernetes.io/kubelet-serving",
                     "usages": ["digital signature", "server auth"]}})
        .to_string(),
    )
    .expect("csr body");
    let (code, created) = curl_cert(
        c.port,
        &ca_file,
        &current,
        &current,
        "/apis/certificates.k8s.io/v1/certificatesigningrequests",
        Some(&body),
    )
    .expect("the node files its serving CSR");
    assert_eq!(code, 201, "{created}");
    let path = format!("/apis/certificates.k8s.io/v1/certificatesigningrequests/{csr_name}");
    let csr = get(&c, &path);
    assert_eq!(
        csr["spec"]["username"],
        format!("system:node:{node}"),
        "{csr}"
    );
    std::thread::sleep(Duration::from_secs(1));
    let csr = get(&c, &path);
    assert!(
        csr["status"]["conditions"].is_null() && csr["status"]["certificate"].is_null(),
        "a serving CSR waits for the administrator: {csr}"
    );
    let out = c.kubectl_ok(&["certificate", "approve", &csr_name]);
    assert!(out.contains("approved"), "{out}");
    let issued = wait_for(
        Duration::from_secs(30),
        "the serving certificate issued",
        || {
            let csr = get(&c, &path);
            csr["status"]["certificate"].as_str().map(str::to_string)
        },
        || kubemark::context(&c, &kubelets, 25),
    );
    let serving_crt = workspace.path().join("serving.crt");
    std::fs::write(
        &serving_crt,
        base64::engine::general_purpose::STANDARD
            .decode(issued)
            .expect("certificate is base64"),
    )
    .expect("serving certificate");
    let verified = Command::new("openssl")
        .args(["verify", "-purpose", "sslserver", "-CAfile"])
        .arg(&ca_path)
        .arg(&serving_crt)
        .output()
        .expect("openssl verify");
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );
    let port = nautilus_tests::free_port();
    let mut server = Command::new("openssl")
        .args(["s_server", "-quiet", "-www", "-accept", &port.to_string()])
        .arg("-cert")
        .arg(&serving_crt)
        .arg("-key")
        .arg(&serving_key)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("openssl s_server");
    let served = wait_for(
        Duration::from_secs(10),
        "the serving certificate trusted through the cluster CA",
        || {
            let out = Command::new("curl")
                .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
                .arg(&ca_path)
                .arg(format!("https://127.0.0.1:{port}/"))
                .output()
                .ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
        },
        String::new,
    );
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(served, "200");
    drop(kubelets);
}
