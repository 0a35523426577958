//! `kubectl logs`, `logs -f`, `exec` and `port-forward` reach the pod's kubelet from the
//! enclave (issue 18, item 4), in proxy-TLS and enclave-TLS modes: the enclave finds the pod's
//! Node address, connects through the proxy's relay (dev allows loopback kubelets), checks the
//! kubelet's serving certificate against the cluster CA and the node, and presents its own
//! client certificate of that CA. The kubelet is a stand-in (`tests/peers/standin-kubelet`, the
//! kubelet's own SPDY/WebSocket streaming servers over TLS that requires a client certificate),
//! its serving certificate issued through a real `kubernetes.io/kubelet-serving` CSR the admin
//! approves. kubemark's hollow kubelet is not used: its fake CRI runtime answers exec, attach
//! and port-forward with an empty streaming URL and keeps no log files.
//!
//! kubectl's exec, attach and port-forward use WebSocket, which the enclave handles as
//! kube-apiserver 1.32 does: exec and attach (`v5.channel.k8s.io`) translated to SPDY to the
//! kubelet (the stand-in logs the SPDY upgrade with the translator's protocols, v5 then v4, where
//! kubectl's own SPDY would offer five; kubectl's `-v=4` log shows no fallback), exit codes and
//! errors carried on v5's status channel, `exec -it` on a terminal with its resizes reaching the
//! kubelet; port-forward's SPDY tunnelled in WebSocket (kubectl logs the tunnel's negotiated
//! protocol and no fallback). The official Python client's WebSocket exec is translated too (it
//! offers v5 first); offering only `v4.channel.k8s.io` it is relayed to the kubelet as is, as
//! kube relays it.
//!
//! Refused as kube refuses: an unknown container, an unscheduled pod, a kubelet that is not
//! running the container (its 400 passed on), a user without the verb (a ServiceAccount: no
//! RBAC grants it), a self-signed kubelet, a kubelet showing another node's certificate, and a
//! Node address outside the proxy's kubelet networks.
//!
//! Skips, saying so, when the stand-in is not built and Go is missing.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use nautilus_tests::{DevCluster, peers};
use serde_json::{Value, json};

/// The stand-in kubelet, built if Go is there; `None` (the test skips) otherwise.
fn standin_binary() -> Option<PathBuf> {
    if let Ok(path) = peers::binary("standin-kubelet")
        && Command::new("go").arg("version").output().is_err()
    {
        return Some(path);
    }
    if Command::new("go").arg("version").output().is_err() {
        eprintln!("SKIPPED: the stand-in kubelet is not built and Go is not on the PATH");
        return None;
    }
    peers::build(&["standin-kubelet"]).expect("build the stand-in kubelet");
    Some(peers::binary("standin-kubelet").expect("stand-in kubelet built"))
}

/// A running stand-in kubelet and what it logged.
struct Standin {
    child: Child,
    port: u16,
    log: Arc<Mutex<Vec<String>>>,
}

impl Standin {
    fn start(bin: &Path, port: u16, cert: &Path, key: &Path, client_ca: &Path) -> Self {
        let mut child = Command::new(bin)
            .arg(format!("--listen=127.0.0.1:{port}"))
            .arg("--cert")
            .arg(cert)
            .arg("--key")
            .arg(key)
            .arg("--client-ca")
            .arg(client_ca)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the stand-in kubelet");
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr");
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let mut first = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut first)
            .expect("the stand-in's address");
        let port = first
            .trim()
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .unwrap_or_else(|| panic!("stand-in said {first:?}"));
        Standin { child, port, log }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Waits for a logged line that starts with `start` and contains `has`; returns it.
    fn wait_for_line(&self, start: &str, has: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let found = self
                .log
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.starts_with(start) && l.contains(has))
                .cloned();
            if let Some(line) = found {
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "the stand-in never logged a line {start:?}...{has:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_for_log(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.log().contains(text) {
            assert!(
                Instant::now() < deadline,
                "the stand-in never logged {text:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Standin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A P-256 key and a certificate request for `node`'s kubelet serving certificate (IP SAN
/// 127.0.0.1), as a kubelet makes it.
fn serving_request(node: &str) -> (rcgen::KeyPair, String) {
    use rcgen::{CertificateParams, DnType, KeyPair, SanType};
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params
        .distinguished_name
        .push(DnType::CommonName, format!("system:node:{node}"));
    params
        .distinguished_name
        .push(DnType::OrganizationName, "system:nodes");
    params.subject_alt_names = vec![SanType::IpAddress([127, 0, 0, 1].into())];
    let pem = params
        .serialize_request(&key)
        .expect("csr")
        .pem()
        .expect("pem");
    (key, pem)
}

/// `node`'s serving certificate through a `kubernetes.io/kubelet-serving` CSR the admin
/// approves and the enclave signs: (certificate, key) files in `dir`.
fn serving_certificate(c: &DevCluster, dir: &Path, node: &str) -> (PathBuf, PathBuf) {
    let (key, pem) = serving_request(node);
    let name = format!("serving-{node}");
    let csr = json!({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"name": name},
        "spec": {"request": base64::engine::general_purpose::STANDARD.encode(pem),
            "signerName": "kubernetes.io/kubelet-serving",
            "usages": ["digital signature", "server auth"]}});
    c.kubectl_with_input(&["create", "-f", "-"], Some(&csr.to_string()));
    c.kubectl_ok(&["certificate", "approve", &name]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let cert = loop {
        let got: Value = serde_json::from_str(&c.kubectl_ok(&["get", "csr", &name, "-o", "json"]))
            .expect("csr json");
        if let Some(cert) = got["status"]["certificate"]
            .as_str()
            .filter(|s| !s.is_empty())
        {
            break base64::engine::general_purpose::STANDARD
                .decode(cert)
                .expect("base64 certificate");
        }
        assert!(Instant::now() < deadline, "never signed: {got}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let cert_path = dir.join(format!("{node}.crt"));
    let key_path = dir.join(format!("{node}.key"));
    std::fs::write(&cert_path, cert).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (cert_path, key_path)
}

/// A self-signed certificate for `node` (what a kubelet without TLS bootstrap makes itself).
fn self_signed(dir: &Path, node: &str) -> (PathBuf, PathBuf) {
    use rcgen::{CertificateParams, DnType, KeyPair, SanType};
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params
        .distinguished_name
        .push(DnType::CommonName, format!("system:node:{node}"));
    params
        .distinguished_name
        .push(DnType::OrganizationName, "system:nodes");
    params.subject_alt_names = vec![SanType::IpAddress([127, 0, 0, 1].into())];
    let cert = params.self_signed(&key).expect("self-signed");
    let cert_path = dir.join(format!("{node}-self.crt"));
    let key_path = dir.join(format!("{node}-self.key"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (cert_path, key_path)
}

/// Registers Node `name` with its kubelet at `address:port` (as a kubelet's status says).
fn register_node(c: &DevCluster, name: &str, address: &str, port: u16) {
    let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}});
    let out = c.kubectl_with_input(&["create", "-f", "-"], Some(&node.to_string()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = json!({"status": {
        "addresses": [{"type": "Hostname", "address": name}, {"type": "InternalIP", "address": address}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}});
    c.kubectl_ok(&[
        "patch",
        "node",
        name,
        "--subresource=status",
        "--type=merge",
        "-p",
        &status.to_string(),
    ]);
}

/// Creates pod `name` bound to `node` (or unscheduled) with `containers`.
fn create_pod(c: &DevCluster, name: &str, node: Option<&str>, containers: &[&str]) {
    // Tolerating everything: these Nodes post no heartbeat, and their pods must outlive the
    // node lifecycle controller's verdict for the test's length.
    let mut spec = json!({"containers": containers.iter()
        .map(|n| json!({"name": n, "image": "busybox"})).collect::<Vec<_>>(),
        "tolerations": [{"operator": "Exists"}]});
    if let Some(node) = node {
        spec["nodeName"] = json!(node);
    }
    // Unscheduled pods stay so: no node tolerates them (the scheduler would bind them).
    if node.is_none() {
        spec["nodeSelector"] = json!({"no-such-label": "x"});
    }
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec});
    let out = c.kubectl_with_input(&["create", "-f", "-"], Some(&pod.to_string()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// How the stand-in logs the translator's SPDY upgrade (kubectl's own SPDY executor offers
/// v5, v4, v3, v2 and channel.k8s.io).
const TRANSLATED: &str = "upgrade=SPDY/3.1 protocols=v5.channel.k8s.io,v4.channel.k8s.io";

/// kubectl (run with `-v=4`) used WebSocket v5 and did not fall back to SPDY.
#[track_caller]
fn assert_translated(out: &std::process::Output) {
    let said = stderr_of(out);
    assert!(
        said.contains("The subprotocol is v5.channel.k8s.io"),
        "{said}"
    );
    assert!(!said.contains("fallback"), "{said}");
}

/// A TCP echo server on loopback: its port.
fn echo_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().map_while(Result::ok) {
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0 || conn.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

fn scenario(proxy_args: &[&str], bin: &Path) {
    // The stand-ins' ports, chosen first: the proxy's relay reaches only the kubelet ports it
    // is given (dev: loopback, 10250 by default).
    let ports: Vec<u16> = (0..3).map(|_| nautilus_tests::free_port()).collect();
    let kubelet_ports = format!(
        "--kubelet-ports={}",
        ports
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    );
    let mut args = proxy_args.to_vec();
    args.push(&kubelet_ports);
    let c = DevCluster::start_opts(&args, &[]);
    let dir = tempfile::tempdir().unwrap();
    // The cluster CA: what kubelets verify the enclave's client certificate with.
    let cm: Value = serde_json::from_str(&c.kubectl_ok(&[
        "get",
        "configmap",
        "-n",
        "kube-system",
        "extension-apiserver-authentication",
        "-o",
        "json",
    ]))
    .unwrap();
    let ca_path = dir.path().join("cluster-ca.pem");
    std::fs::write(&ca_path, cm["data"]["client-ca-file"].as_str().unwrap()).unwrap();

    let (cert, key) = serving_certificate(&c, dir.path(), "kubelet-1");
    let kubelet = Standin::start(bin, ports[0], &cert, &key, &ca_path);
    register_node(&c, "kubelet-1", "127.0.0.1", kubelet.port);
    create_pod(&c, "web", Some("kubelet-1"), &["app"]);
    // kubectl port-forward asks for a Running pod (the stand-in posts no status).
    c.kubectl_ok(&[
        "patch",
        "pod",
        "web",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"phase":"Running"}}"#,
    ]);

    // logs: the kubelet's answer, asked as kube-apiserver asks, with the enclave's client
    // certificate.
    let logs = c.kubectl_ok(&["logs", "web"]);
    assert_eq!(
        logs,
        (1..=5)
            .map(|i| format!("line {i} of default/web/app\n"))
            .collect::<String>()
    );
    kubelet.wait_for_log(
        "request GET /containerLogs/default/web/app cn=kube-apiserver-kubelet-client o=kubeadm:cluster-admins",
    );
    let tail = c.kubectl_ok(&[
        "logs",
        "web",
        "--tail=2",
        "--timestamps",
        "--limit-bytes=1000",
    ]);
    assert_eq!(
        tail,
        "2026-01-01T00:00:00.000000000Z line 4 of default/web/app\n\
         2026-01-01T00:00:00.000000000Z line 5 of default/web/app\n"
    );
    kubelet.wait_for_log(
        "request GET /containerLogs/default/web/app?limitBytes=1000&tailLines=2&timestamps=true",
    );

    // logs -f: lines arrive as the kubelet writes them; the kubelet's stream ends when the
    // client goes.
    let mut follow = c
        .kubectl_command(&["logs", "-f", "web"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(follow.stdout.take().unwrap()).lines();
    let started = Instant::now();
    let mut seen = Vec::new();
    while !seen.iter().any(|l: &String| l == "follow 5") {
        let line = lines.next().expect("logs -f ended early").unwrap();
        seen.push(line);
    }
    assert!(started.elapsed() >= Duration::from_millis(400), "{seen:?}");
    assert_eq!(
        seen.first().map(String::as_str),
        Some("line 1 of default/web/app")
    );
    follow.kill().unwrap();
    let _ = follow.wait();
    kubelet.wait_for_log("follow ended after");

    // exec: WebSocket v5 from kubectl, translated to SPDY to the kubelet; no fallback.
    let out = c.kubectl(&[
        "exec",
        "-v=4",
        "web",
        "--",
        "sh",
        "-c",
        "echo hello from $CONTAINER",
    ]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from app\n");
    assert_translated(&out);
    let line = kubelet.wait_for_line(
        "request POST /exec/default/web/app?command=sh",
        "hello+from",
    );
    assert!(line.ends_with(TRANSLATED), "{line}");
    // stdin, ended by v5's CLOSE of channel 0.
    let out = c.kubectl_with_input(
        &["exec", "-v=4", "-i", "web", "--", "cat"],
        Some("ping\npong\n"),
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ping\npong\n");
    assert_translated(&out);
    let line = kubelet.wait_for_line("request POST /exec/default/web/app?command=cat", "input=1");
    assert!(line.ends_with(TRANSLATED), "{line}");
    // An exit code and stderr, over v5's status and stderr channels.
    let out = c.kubectl(&[
        "exec",
        "-v=4",
        "web",
        "--",
        "sh",
        "-c",
        "echo oops >&2; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("oops"), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("command terminated with exit code 3"),
        "{}",
        stderr_of(&out)
    );
    assert_translated(&out);
    // The kubelet's own failure (no such command), on the status channel as kube's translator
    // words it (an InternalError wrapping the kubelet's).
    let out = c.kubectl(&["exec", "-v=4", "web", "--", "no-such-command"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains(
            "Internal error occurred: Internal error occurred: error executing command in container: exec: \"no-such-command\""
        ),
        "{}",
        stderr_of(&out)
    );
    assert_translated(&out);
    // exec -it on a terminal: the TTY, its first size and a resize reach the kubelet, the
    // exit code comes back.
    let out = Command::new("python3")
        .arg(nautilus_tests::workspace_dir().join("tests/python/exec_tty.py"))
        .arg(&c.kubeconfig)
        .arg("web")
        .arg("echo ready TTY=$TTY; read line; echo got:$line; exit 7")
        .output()
        .expect("python3");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.starts_with("output=ready TTY=true|got:hello") && said.ends_with("\ncode=7\n"),
        "{said}{}\nkubelet:\n{}",
        stderr_of(&out),
        kubelet.log()
    );
    let line = kubelet.wait_for_line("request POST /exec/default/web/app?command=sh", "tty=1");
    assert!(line.ends_with(TRANSLATED), "{line}");
    kubelet.wait_for_log("resize 100x40");
    kubelet.wait_for_log("resize 120x50");
    // The official Python client's WebSocket exec: it offers v5 first (translated), and with
    // only `v4.channel.k8s.io` offered it is relayed to the kubelet's WebSocket server as is.
    for (protocols, line_start, upgrade) in [
        (
            None,
            "request POST /exec/default/web/app?command=sh",
            TRANSLATED,
        ),
        (
            Some("v4.channel.k8s.io"),
            "request GET /exec/default/web/app?command=sh",
            "upgrade=websocket protocols=v4.channel.k8s.io",
        ),
    ] {
        let out = Command::new("python3")
            .arg(nautilus_tests::workspace_dir().join("tests/python/exec_websocket.py"))
            .arg(&c.kubeconfig)
            .arg("web")
            .args(protocols)
            .output()
            .expect("python3");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "stdout=websocket app\nstderr=err\ncode=0\n",
            "{}",
            stderr_of(&out)
        );
        let line = kubelet.wait_for_line(line_start, "websocket+");
        assert!(line.ends_with(upgrade), "{line}");
    }

    // attach: the stand-in's container echoes what it is sent.
    let out = c.kubectl_with_input(
        &["attach", "-v=4", "-i", "web", "-c", "app"],
        Some("hi there\n"),
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "attached to web/app\nhi there\n"
    );
    assert_translated(&out);
    let line = kubelet.wait_for_line("request POST /attach/default/web/app?", "input=1");
    assert!(line.ends_with(TRANSLATED), "{line}");

    // port-forward: a TCP round trip through kubectl, the enclave and the kubelet.
    let target = echo_server();
    let local = nautilus_tests::free_port();
    let mut forward = c
        .kubectl_command(&[
            "port-forward",
            "-v=4",
            "pod/web",
            &format!("{local}:{target}"),
        ])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.path().join("port-forward.log")).unwrap())
        .spawn()
        .unwrap();
    // kubectl prints a line per connection: its stdout is read to the end (a closed pipe
    // would kill it with SIGPIPE).
    let mut stdout = BufReader::new(forward.stdout.take().unwrap());
    let mut said = String::new();
    stdout.read_line(&mut said).unwrap();
    assert!(said.contains("Forwarding from 127.0.0.1"), "{said}");
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let mut conn = TcpStream::connect(("127.0.0.1", local)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let payload: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    let mut back = vec![0u8; payload.len()];
    if let Err(e) = conn
        .write_all(&payload)
        .and_then(|()| conn.read_exact(&mut back))
    {
        std::thread::sleep(Duration::from_secs(1));
        let _ = forward.kill();
        let said = std::fs::read_to_string(dir.path().join("port-forward.log")).unwrap();
        panic!(
            "port-forward round trip: {e}\nkubectl: {said}\nkubelet:\n{}",
            kubelet.log()
        );
    }
    assert_eq!(back, payload);
    drop(conn);
    forward.kill().unwrap();
    let _ = forward.wait();
    let line = kubelet.wait_for_line("request POST /portForward/default/web", "");
    assert!(
        line.ends_with("upgrade=SPDY/3.1 protocols=portforward.k8s.io"),
        "{line}"
    );
    // Tunnelled in WebSocket: kubectl's tunnelling dialer negotiated, and never fell back.
    let said = std::fs::read_to_string(dir.path().join("port-forward.log")).unwrap();
    assert!(
        said.contains("negotiated protocol: portforward.k8s.io"),
        "{said}"
    );
    assert!(!said.contains("fallback"), "{said}");

    // Refusals before any connection, as kube words them.
    // kubectl checks its flags and the container itself; a client that does not is answered
    // as kube answers.
    let reply = c
        .request(
            "GET",
            "/api/v1/namespaces/default/pods/web/log?container=nope",
            None,
            &[],
        )
        .unwrap();
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.json()["message"],
        "container nope is not valid for pod web"
    );
    let reply = c
        .request(
            "GET",
            "/api/v1/namespaces/default/pods/web/log?tailLines=-1",
            None,
            &[],
        )
        .unwrap();
    assert_eq!(reply.status, 422);
    assert_eq!(
        reply.json()["message"],
        "PodLogOptions \"web\" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0"
    );
    create_pod(&c, "pending", None, &["app"]);
    assert_eq!(c.kubectl_ok(&["logs", "pending"]), "");
    let err = c.kubectl_err(&["exec", "pending", "--", "true"]);
    assert!(
        err.contains("pod pending does not have a host assigned"),
        "{err}"
    );
    let err = c.kubectl_err(&["logs", "nosuchpod"]);
    assert!(
        err.contains("(NotFound): pods \"nosuchpod\" not found"),
        "{err}"
    );
    // The kubelet's own refusal is passed on.
    create_pod(&c, "starting", Some("kubelet-1"), &["waiting"]);
    let err = c.kubectl_err(&["logs", "starting"]);
    assert!(
        err.contains(
            "Error from server (BadRequest): container \"waiting\" in pod \"starting\" is waiting to start: ContainerCreating"
        ),
        "{err}"
    );
    // A caller without the verb: a ServiceAccount (no RBAC grants it pods/log or pods/exec).
    let token = c
        .kubectl_ok(&["create", "token", "default"])
        .trim()
        .to_string();
    // kubectl reads the pod first (refused too); the subresources themselves are refused as
    // kube's RBAC refuses them.
    for (method, path, verb, sub) in [
        (
            "GET",
            "/api/v1/namespaces/default/pods/web/log",
            "get",
            "pods/log",
        ),
        (
            "POST",
            "/api/v1/namespaces/default/pods/web/exec?command=true&stdout=1",
            "create",
            "pods/exec",
        ),
        (
            "POST",
            "/api/v1/namespaces/default/pods/web/portforward",
            "create",
            "pods/portforward",
        ),
    ] {
        let reply = nautilus_tests::client::blocking_request(
            c.port,
            &c.ca_pem,
            method,
            path,
            None,
            &[("authorization".into(), format!("Bearer {token}"))],
        )
        .unwrap();
        assert_eq!(reply.status, 403, "{path}");
        assert_eq!(
            reply.json()["message"],
            format!(
                "pods \"web\" is forbidden: User \"system:serviceaccount:default:default\" cannot {verb} resource \"{sub}\" in API group \"\" in the namespace \"default\""
            ),
            "{path}"
        );
    }

    // A self-signed kubelet: its certificate does not chain to the cluster CA.
    let (cert, key) = self_signed(dir.path(), "kubelet-2");
    let rogue = Standin::start(bin, ports[1], &cert, &key, &ca_path);
    register_node(&c, "kubelet-2", "127.0.0.1", rogue.port);
    create_pod(&c, "on-self-signed", Some("kubelet-2"), &["app"]);
    let err = c.kubectl_err(&["logs", "on-self-signed"]);
    assert!(
        err.contains("x509: certificate signed by unknown authority"),
        "{err}"
    );
    assert!(!rogue.log().contains("request "), "{}", rogue.log());
    let err = c.kubectl_err(&["exec", "on-self-signed", "--", "true"]);
    assert!(
        err.contains("certificate signed by unknown authority"),
        "{err}"
    );

    // A kubelet showing another node's (valid) certificate.
    let (cert1, key1) = (
        dir.path().join("kubelet-1.crt"),
        dir.path().join("kubelet-1.key"),
    );
    let impostor = Standin::start(bin, ports[2], &cert1, &key1, &ca_path);
    register_node(&c, "kubelet-3", "127.0.0.1", impostor.port);
    create_pod(&c, "on-impostor", Some("kubelet-3"), &["app"]);
    let err = c.kubectl_err(&["logs", "on-impostor"]);
    assert!(
        err.contains("not the kubelet of node \"kubelet-3\""),
        "{err}"
    );
    assert!(!impostor.log().contains("request "), "{}", impostor.log());

    // A Node address outside the proxy's kubelet networks (dev allows loopback only).
    register_node(&c, "kubelet-4", "192.0.2.10", 10250);
    create_pod(&c, "far-away", Some("kubelet-4"), &["app"]);
    let err = c.kubectl_err(&["logs", "far-away"]);
    assert!(
        err.contains("192.0.2.10:10250 is not an allowlisted"),
        "{err}"
    );
    // ... and a loopback port that is not a kubelet port (the proxy allows only the ports it
    // is given: here nothing on this machine but the stand-ins).
    register_node(&c, "kubelet-5", "127.0.0.1", 22);
    create_pod(&c, "on-ssh", Some("kubelet-5"), &["app"]);
    let err = c.kubectl_err(&["logs", "on-ssh"]);
    assert!(err.contains("127.0.0.1:22 is not an allowlisted"), "{err}");
    drop(kubelet);
    let _ = c.stop();
}

#[test]
fn kubectl_reaches_kubelets_through_the_relay_in_proxy_tls_mode() {
    let Some(bin) = standin_binary() else { return };
    scenario(&[], &bin);
}

#[test]
fn kubectl_reaches_kubelets_through_the_relay_in_enclave_tls_mode() {
    let Some(bin) = standin_binary() else { return };
    scenario(&["--enclave-tls"], &bin);
}

/// `--kubelet-streams` bounds the streams open at once: a followed log holds one, the next call
/// is kube's 429 until it ends, and its end gives the slot back.
#[test]
fn kubelet_streams_are_bounded() {
    let Some(bin) = standin_binary() else { return };
    let port = nautilus_tests::free_port();
    let c = DevCluster::start_opts(
        &[&format!("--kubelet-ports={port}")],
        &["--kubelet-streams=1"],
    );
    let dir = tempfile::tempdir().unwrap();
    let cm: Value = serde_json::from_str(&c.kubectl_ok(&[
        "get",
        "configmap",
        "-n",
        "kube-system",
        "extension-apiserver-authentication",
        "-o",
        "json",
    ]))
    .unwrap();
    let ca_path = dir.path().join("cluster-ca.pem");
    std::fs::write(&ca_path, cm["data"]["client-ca-file"].as_str().unwrap()).unwrap();
    let (cert, key) = serving_certificate(&c, dir.path(), "kubelet-1");
    let kubelet = Standin::start(&bin, port, &cert, &key, &ca_path);
    register_node(&c, "kubelet-1", "127.0.0.1", kubelet.port);
    create_pod(&c, "web", Some("kubelet-1"), &["app"]);

    let mut follow = c
        .kubectl_command(&["logs", "-f", "web"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(follow.stdout.take().unwrap()).lines();
    while lines.next().expect("logs -f ended early").unwrap() != "follow 1" {}
    let err = c.kubectl_err(&["logs", "web"]);
    assert!(
        err.contains(
            "Error from server (TooManyRequests): Too many requests, please try again later."
        ),
        "{err}"
    );
    follow.kill().unwrap();
    let _ = follow.wait();
    kubelet.wait_for_log("follow ended after");
    slot_comes_back(&c);

    // A translated exec session (its WebSocket answered by the enclave) holds one too, until
    // its stdin ends and the kubelet's command with it.
    let mut exec = c
        .kubectl_command(&["exec", "-i", "web", "--", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = exec.stdin.take().unwrap();
    stdin.write_all(b"first\n").unwrap();
    let mut lines = BufReader::new(exec.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().expect("exec ended early").unwrap(), "first");
    let err = c.kubectl_err(&["logs", "web"]);
    assert!(
        err.contains(
            "Error from server (TooManyRequests): Too many requests, please try again later."
        ),
        "{err}"
    );
    drop(stdin);
    assert!(exec.wait().unwrap().success());
    slot_comes_back(&c);
    let _ = c.stop();
}

/// The stream slot is given back: a log can be read again (within 10 s).
fn slot_comes_back(c: &DevCluster) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = c.kubectl(&["logs", "web", "--tail=1"]);
        if out.status.success() {
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                "line 5 of default/web/app\n"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the slot never came back: {}",
            stderr_of(&out)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
