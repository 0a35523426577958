//! A K3s agent joins with its staker's Seal token (issue 18): no k3s binary can be had here, so
//! a client replays, over real TLS to `nautilus-proxy dev` in enclave TLS mode, the requests a
//! k3s v1.32 agent sends, in its order, with `curl` (as Go's `net/http` sends them: basic auth,
//! DER request bodies, the `K3s-Node-*` headers). The sequence, from the k3s sources
//! (k3s-io/k3s, v1.32 line):
//!
//! 1. `clientaccess.ParseAndValidateToken` (`pkg/clientaccess/token.go`): the join token
//!    `K10<hash>::node:<password>` is split; `GET /cacerts` with the system roots (fails: the
//!    enclave's certificate is its own), again without verifying, again verifying against the
//!    bundle; the bundle's SHA-256 must be the token's hash.
//! 2. `getConfig`: `GET /v1-k3s/config`, basic auth `node:<password>` on this and every later
//!    request.
//! 3. `getHostFile`: `GET /v1-k3s/client-ca.crt`, `GET /v1-k3s/server-ca.crt`.
//! 4. `getKubeletServingCert`: the agent makes a P-256 key and `POST
//!    /v1-k3s/serving-kubelet.crt` with a PKCS#10 request (empty subject, DER) and the headers
//!    `K3s-Node-Name`, `K3s-Node-Password` (`/etc/rancher/node/password`, 32 hex digits) and
//!    `K3s-Node-IP`; the answer is the certificate and the CA, PEM (`splitCertKeyPEM`).
//! 5. `getKubeletClientCert`: the same to `/v1-k3s/client-kubelet.crt`; the agent writes
//!    `kubelet.kubeconfig` with `server-ca.crt` and this certificate and key.
//! 6. `getClientCert`: `POST /v1-k3s/client-kube-proxy.crt` and
//!    `/v1-k3s/client-k3s-controller.crt` (a request, basic auth, no node headers). The test
//!    then reads with each what kube-proxy and the agent's tunnel read, and is refused more.
//! 7. `tunnel.Setup` (`pkg/agent/tunnel/tunnel.go`): the token validated again (step 1), `GET
//!    /v1-k3s/apiservers`; then remotedialer's websocket `wss://<server>/v1-k3s/connect` with
//!    the kubelet client certificate (no token), which `Setup` waits for before the kubelet
//!    starts; remotedialer pings it every 5 s. The enclave holds it open and answers pings but
//!    never dials through it (it reaches kubelets through the proxy's relay; the config says
//!    egress-selector mode `disabled`).
//! 8. `KubeProxyDisabled`: `GET /v1-k3s/readyz`, then `GET /v1-k3s/config` again.
//!
//! Then the certificates are shown to work: a kubemark hollow kubelet (the kubelet's code over
//! a fake runtime) started with the `kubelet.kubeconfig` the agent would write (its client
//! certificate, no bootstrap, no token) registers its Node, which goes Ready carrying the
//! stake's annotations. And refusals over the wire: no credential, a Seal token for another
//! node, a join token pinning another CA.
//!
//! Skips, saying so, when kubemark is not built and Go is missing (as `kubemark_join` does).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use nautilus_core::k3s;
use nautilus_core::token::hex32;
use nautilus_tests::DevCluster;
use nautilus_tests::kubemark::{self, HollowKubelet, Workspace, wait_for, write_key_file};
use nautilus_tests::simulator::{DEFAULT_PACKAGE, SimConfig, Simulator, package_arg};
use serde_json::Value;

/// One request the agent sends, as curl sends it.
#[derive(Default)]
struct Req<'a> {
    method: &'a str,
    path: &'a str,
    /// `None`: verify with the system roots; `Some(None)`: do not verify; else this bundle.
    trust: Option<Option<&'a Path>>,
    basic: Option<(&'a str, &'a str)>,
    node: Option<(&'a str, &'a str, &'a str)>,
    body: Option<&'a Path>,
    /// A client certificate and its key.
    cert: Option<(&'a Path, &'a Path)>,
}

/// `GET /cacerts`, anonymous, trusting `trust`.
fn cacerts(trust: Option<Option<&Path>>) -> Req<'_> {
    Req {
        method: "GET",
        path: "/cacerts",
        trust,
        ..Req::default()
    }
}

/// What came back: the HTTP status and body, or curl's error (a failed handshake).
fn send(port: u16, dir: &Path, req: &Req<'_>) -> Result<(u16, Vec<u8>), String> {
    let out_file = dir.join("answer");
    let _ = std::fs::remove_file(&out_file);
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-X", req.method, "-o"])
        .arg(&out_file)
        .args(["-w", "%{http_code}"]);
    match req.trust {
        None => {}
        Some(None) => {
            cmd.arg("-k");
        }
        Some(Some(bundle)) => {
            cmd.arg("--cacert").arg(bundle);
        }
    }
    if let Some((user, password)) = req.basic {
        cmd.arg("-u").arg(format!("{user}:{password}"));
    }
    if let Some((name, password, ip)) = req.node {
        cmd.arg("-H")
            .arg(format!("K3s-Node-Name: {name}"))
            .arg("-H")
            .arg(format!("K3s-Node-Password: {password}"))
            .arg("-H")
            .arg(format!("K3s-Node-IP: {ip}"));
    }
    if let Some((cert, key)) = req.cert {
        cmd.arg("--cert").arg(cert).arg("--key").arg(key);
    }
    if let Some(body) = req.body {
        cmd.arg("--data-binary").arg(format!("@{}", body.display()));
    }
    cmd.arg(format!("https://127.0.0.1:{port}{}", req.path));
    let out = cmd.output().expect("curl");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let code = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    Ok((code, std::fs::read(&out_file).unwrap_or_default()))
}

/// The agent's key and request for one certificate: `<name>.key` (PEM) and `<name>.csr` (DER,
/// empty subject), as `getCSRBytes` makes them.
fn agent_request(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("P-256 key");
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    let csr = params.serialize_request(&key).expect("request");
    let (key_path, csr_path) = (
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.csr")),
    );
    std::fs::write(&key_path, key.serialize_pem()).expect("key");
    std::fs::write(&csr_path, csr.der()).expect("request");
    (key_path, csr_path)
}

/// `splitCertKeyPEM`: the certificates of an answer (no key must be in it: the agent made it).
fn split_answer(body: &[u8]) -> Vec<String> {
    let text = String::from_utf8(body.to_vec()).expect("PEM text");
    assert!(!text.contains("PRIVATE KEY"), "the server sent a key");
    text.split_inclusive("-----END CERTIFICATE-----\n")
        .filter(|b| b.contains("BEGIN CERTIFICATE"))
        .map(str::to_string)
        .collect()
}

fn openssl_text(pem: &str) -> String {
    let mut child = Command::new("openssl")
        .args([
            "x509",
            "-noout",
            "-subject",
            "-ext",
            "subjectAltName,extendedKeyUsage",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("openssl");
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(pem.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// remotedialer's client: the websocket handshake over TLS with the kubelet's certificate, a
/// ping answered with its pong, a close answered with a close.
fn tunnel(port: u16, server_ca: &Path, cert: &Path, key: &Path) {
    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use std::io::{Read as _, Write as _};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(server_ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_client_auth_cert(chain, PrivateKeyDer::from_pem_file(key).unwrap())
    .unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    // The key of RFC 6455's example, whose accept value the RFC gives.
    let request = format!(
        "GET /v1-k3s/connect HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    );
    tls.write_all(request.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tls.read_exact(&mut byte).expect("the tunnel's answer");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(
        head.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{head}"
    );
    let masked = |opcode: u8, payload: &[u8]| {
        let mask = [9u8, 8, 7, 6];
        let mut out = vec![0x80 | opcode, 0x80 | payload.len() as u8];
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    };
    tls.write_all(&masked(0x9, b"ping")).unwrap();
    let mut pong = [0u8; 6];
    tls.read_exact(&mut pong).expect("pong");
    assert_eq!(pong, [0x8A, 4, b'p', b'i', b'n', b'g']);
    tls.write_all(&masked(0x8, &1000u16.to_be_bytes())).unwrap();
    let mut close = [0u8; 4];
    tls.read_exact(&mut close).expect("close");
    assert_eq!(close, [0x88, 2, 0x03, 0xe8]);
}

fn get(c: &DevCluster, path: &str) -> (u16, Value) {
    let reply = c
        .request("GET", path, None, &[])
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let body = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
    (reply.status, body)
}

fn condition<'a>(obj: &'a Value, kind: &str) -> &'a str {
    obj["status"]["conditions"]
        .as_array()
        .and_then(|l| l.iter().find(|c| c["type"] == kind))
        .and_then(|c| c["status"].as_str())
        .unwrap_or("")
}

#[test]
fn a_k3s_agent_joins_with_its_seal_token() {
    let kubemark = match kubemark::kubemark_binary() {
        Ok(Some(path)) => path,
        Ok(None) => {
            println!("k3s_agent_join: SKIPPED: kubemark is not built and `go` is not on the PATH");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let c = DevCluster::start_opts(
        &["--enclave-tls"],
        &[&package_arg(&DEFAULT_PACKAGE), "--min-stake=1000000000"],
    );
    let sim = Simulator::new(
        c.port,
        &c.ca_pem,
        &c.token,
        SimConfig {
            workers: 2,
            prefix: "k3s".into(),
            connections: 1,
            ..SimConfig::default()
        },
    )
    .expect("simulator");
    // Staked, never registered: the agent's requests are the node's first contact.
    sim.stake_all().expect("stake");
    let (worker, other) = (sim.worker(0), sim.worker(1));
    let node = worker.node.as_str();
    let workspace = Workspace::new().expect("workspace");
    let dir = workspace.path().to_path_buf();
    let port = c.port;

    // The staker's join token: nautilus-seal pins the CA it got from the attested channel (the
    // dev kubeconfig's, here).
    let key_file = dir.join("staker.key");
    write_key_file(&key_file, &worker.secret).expect("key file");
    let attested_ca = dir.join("attested-ca.crt");
    std::fs::write(&attested_ca, &c.ca_pem).expect("ca");
    let seal = |node: &str, ca: &Path| {
        let out = Command::new(nautilus_tests::binary("nautilus-seal"))
            .arg("--key-file")
            .arg(&key_file)
            .args([
                "--node-id",
                node,
                "--stake-id",
                &hex32(&worker.stake_id),
                "--ttl",
                "1h",
            ])
            .arg("--k3s-token")
            .arg(ca)
            .output()
            .expect("nautilus-seal");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let join = seal(node, &attested_ca);
    let token = k3s::parse_join_token(&join).expect("join token");
    assert_eq!(token.user, "node");
    let auth = Some((token.user.as_str(), token.password.as_str()));
    let password = "5f1b3c0e9d2a47e68c1f0b2d3a4e5f60";
    let node_headers = Some((node, password, "127.0.0.1"));

    // 1. /cacerts: the system roots refuse the enclave's certificate; unverified, then
    //    verified against itself, it hashes to the token's pin.
    let validate = || {
        let refused = send(port, &dir, &cacerts(None));
        assert!(
            refused.is_err(),
            "system roots trusted the enclave: {refused:?}"
        );
        let (code, bundle) = send(port, &dir, &cacerts(Some(None))).expect("insecure /cacerts");
        assert_eq!(code, 200);
        let bundle_file = dir.join("server-ca-from-cacerts.crt");
        std::fs::write(&bundle_file, &bundle).unwrap();
        let (code, again) =
            send(port, &dir, &cacerts(Some(Some(&bundle_file)))).expect("verified /cacerts");
        assert_eq!((code, &again), (200, &bundle));
        assert_eq!(
            k3s::ca_hash(&bundle),
            token.ca_hash,
            "the token pins the served bundle"
        );
        bundle_file
    };
    let bundle = validate();
    let trust = Some(Some(bundle.as_path()));
    let authed = |method, path, body: Option<&Path>, named: bool| {
        let req = Req {
            method,
            path,
            trust,
            basic: auth,
            node: if named { node_headers } else { None },
            body,
            cert: None,
        };
        send(port, &dir, &req).unwrap_or_else(|e| panic!("{path}: {e}"))
    };

    // 2. config.
    let (code, body) = authed("GET", "/v1-k3s/config", None, false);
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    let config: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(config["ClusterIPRange"]["IP"], "10.42.0.0");
    assert_eq!(config["ServiceIPRange"]["IP"], "10.43.0.0");
    assert_eq!(config["ClusterDNS"], "10.43.0.10");

    // 3. client-ca.crt and server-ca.crt: both the cluster CA, which issues the enclave's
    //    serving certificate too.
    let (code, client_ca) = authed("GET", "/v1-k3s/client-ca.crt", None, false);
    assert_eq!(code, 200);
    let client_ca_file = dir.join("client-ca.crt");
    std::fs::write(&client_ca_file, &client_ca).unwrap();
    let (code, server_ca) = authed("GET", "/v1-k3s/server-ca.crt", None, false);
    assert_eq!((code, &server_ca), (200, &std::fs::read(&bundle).unwrap()));
    assert_eq!(server_ca, client_ca);

    // 4. serving-kubelet.crt.
    let (_, serving_csr) = agent_request(&dir, "serving-kubelet");
    let (code, body) = authed(
        "POST",
        "/v1-k3s/serving-kubelet.crt",
        Some(&serving_csr),
        true,
    );
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    let serving = split_answer(&body);
    assert_eq!(serving.len(), 2);
    assert_eq!(
        serving[1].as_bytes(),
        client_ca.as_slice(),
        "the cluster CA follows"
    );
    let text = openssl_text(&serving[0]);
    assert!(text.contains(&format!("CN = {node}")), "{text}");
    assert!(
        text.contains(&format!("DNS:{node}, DNS:localhost, IP Address:127.0.0.1")),
        "{text}"
    );
    assert!(text.contains("TLS Web Server Authentication"), "{text}");

    // 5. client-kubelet.crt, and the kubeconfig the agent writes with it.
    let (client_key, client_csr) = agent_request(&dir, "client-kubelet");
    let (code, body) = authed(
        "POST",
        "/v1-k3s/client-kubelet.crt",
        Some(&client_csr),
        true,
    );
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    let client = split_answer(&body);
    let client_cert = dir.join("client-kubelet.crt");
    std::fs::write(&client_cert, client.concat()).unwrap();
    let text = openssl_text(&client[0]);
    assert!(
        text.contains(&format!("O = system:nodes, CN = system:node:{node}")),
        "{text}"
    );
    let verified = Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(&client_ca_file)
        .arg(dir.join("client-kubelet.crt"))
        .output()
        .expect("openssl verify");
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );

    // 6. kube-proxy and the agent controller.
    let mut components = Vec::new();
    for (path, cn) in [
        ("/v1-k3s/client-kube-proxy.crt", "system:kube-proxy"),
        ("/v1-k3s/client-k3s-controller.crt", "system:k3s-controller"),
    ] {
        // No ':' in the file names: curl reads `--cert a:b` as a certificate and passphrase.
        let file = cn.replace(':', "-");
        let (key, csr) = agent_request(&dir, &file);
        let (code, body) = authed("POST", path, Some(&csr), false);
        assert_eq!(code, 200, "{path}: {}", String::from_utf8_lossy(&body));
        let text = openssl_text(&split_answer(&body)[0]);
        assert!(text.contains(&format!("CN = {cn}")), "{text}");
        let cert = dir.join(format!("{file}.crt"));
        std::fs::write(&cert, &body).unwrap();
        components.push((cn, cert, key));
    }
    // What each component reads with its certificate, and nothing more.
    for (cn, cert, key) in &components {
        let read = |path: &str| {
            let req = Req {
                method: "GET",
                path,
                trust,
                cert: Some((cert.as_path(), key.as_path())),
                ..Req::default()
            };
            send(port, &dir, &req)
                .unwrap_or_else(|e| panic!("{cn} {path}: {e}"))
                .0
        };
        assert_eq!(read("/api/v1/nodes"), 200, "{cn}");
        assert_eq!(read("/api/v1/namespaces/default/endpoints"), 200, "{cn}");
        assert_eq!(read("/api/v1/secrets"), 403, "{cn}");
        assert_eq!(read("/api/v1/pods"), 403, "{cn}");
        let services = if *cn == "system:kube-proxy" { 200 } else { 403 };
        assert_eq!(read("/api/v1/services"), services, "{cn}");
    }

    // 7. Token validated again; apiservers: dev listens on loopback and advertises no address,
    //    so the agent hears an error and keeps its --server address. connect: the tunnel, for
    //    the kubelet's certificate, not the token.
    validate();
    let (code, _) = authed("GET", "/v1-k3s/apiservers", None, false);
    assert_eq!(code, 503);
    let (code, body) = authed("GET", "/v1-k3s/connect", None, false);
    assert_eq!(
        code, 403,
        "the tunnel wants the node's certificate: {body:?}"
    );
    tunnel(port, &bundle, &client_cert, &client_key);

    // 8. readyz, then config again.
    let (code, body) = authed("GET", "/v1-k3s/readyz", None, false);
    assert_eq!((code, body.as_slice()), (200, &b"ok"[..]));
    assert_eq!(authed("GET", "/v1-k3s/config", None, false).0, 200);

    // Refusals: no credential (k3s' 403), a token for another node (403), a join token that
    // pins another CA (the agent stops before sending any credential).
    let (_, csr) = agent_request(&dir, "refused");
    let no_credential = Req {
        method: "POST",
        path: "/v1-k3s/client-kubelet.crt",
        trust,
        node: node_headers,
        body: Some(&csr),
        ..Req::default()
    };
    let (code, body) = send(port, &dir, &no_credential).unwrap();
    assert_eq!(code, 403, "{}", String::from_utf8_lossy(&body));
    let for_other = k3s::parse_join_token(&seal(&other.node, &attested_ca)).unwrap();
    let wrong_node = Req {
        basic: Some(("node", for_other.password.as_str())),
        ..no_credential
    };
    let (code, body) = send(port, &dir, &wrong_node).unwrap();
    assert_eq!(code, 403, "{}", String::from_utf8_lossy(&body));
    let other_ca = dir.join("other-ca.crt");
    std::fs::write(&other_ca, nautilus_tests::pki::pki().ca_pem).unwrap();
    let pinned_elsewhere = k3s::parse_join_token(&seal(node, &other_ca)).unwrap();
    assert_ne!(
        pinned_elsewhere.ca_hash,
        k3s::ca_hash(&std::fs::read(&bundle).unwrap())
    );
    let (code, issued) = get(
        &c,
        "/apis/certificates.k8s.io/v1/certificatesigningrequests",
    );
    assert_eq!(code, 200);
    let issued = issued["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        issued.len(),
        1,
        "one kubelet client certificate recorded: {issued:?}"
    );
    assert_eq!(issued[0]["spec"]["username"], format!("system:node:{node}"));
    assert_eq!(
        issued[0]["spec"]["extra"]["nautilus.io/stake-id"][0],
        hex32(&worker.stake_id)
    );

    // The certificate works: a hollow kubelet on the agent's kubelet.kubeconfig alone.
    let names = nautilus_wire::kubeconfig::Names {
        cluster: "local",
        user: "user",
        context: "default",
    };
    let kubeconfig_text = nautilus_wire::kubeconfig::kubeconfig(
        &names,
        &format!("https://127.0.0.1:{port}"),
        &std::fs::read(&bundle).unwrap(),
        None,
    )
    .replacen(
        "  user: {}\n",
        &format!(
            "  user:\n    client-certificate: {:?}\n    client-key: {:?}\n",
            client_cert.display().to_string(),
            client_key.display().to_string()
        ),
        1,
    );
    assert!(kubeconfig_text.contains("client-key"));
    let kubeconfig = dir.join("kubelet.kubeconfig");
    std::fs::write(&kubeconfig, kubeconfig_text).unwrap();
    let kubelet = HollowKubelet::start(&kubemark, &workspace, node, &kubeconfig).expect("kubemark");
    let context = || {
        let logs = c.logs();
        let lines: Vec<&str> = logs.lines().collect();
        format!(
            "--- {node} ---\n{}\n{}",
            kubelet.tail(40),
            lines[lines.len().saturating_sub(30)..].join("\n")
        )
    };
    let ready = wait_for(
        Duration::from_secs(90),
        "the agent's node Ready, registered by its kubelet",
        || {
            if let Some(status) = kubelet.exited() {
                panic!("{node} exited ({status}):\n{}", kubelet.tail(60));
            }
            let (code, obj) = get(&c, &format!("/api/v1/nodes/{node}"));
            (code == 200 && condition(&obj, "Ready") == "True").then_some(obj)
        },
        context,
    );
    let annotations = &ready["metadata"]["annotations"];
    assert_eq!(
        annotations["nautilus.io/stake-id"],
        hex32(&worker.stake_id),
        "{ready}"
    );
    assert_eq!(
        annotations["nautilus.io/staker-address"]
            .as_str()
            .map(str::len),
        Some(66),
        "{ready}"
    );
    assert!(
        annotations["nautilus.io/stake-trust-level"].is_string(),
        "{ready}"
    );
    // Registered by the kubelet itself, with its certificate: no token was ever sent there.
    assert!(
        ready["status"]["nodeInfo"]["kubeletVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("v1.32")),
        "{ready}"
    );
}
