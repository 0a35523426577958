//! Metrics as an operator scrapes them: the enclave's `/metrics` through the proxy's TLS port
//! for the admin only, the proxy's own metrics on its loopback `--metrics-listen` port (for both
//! `serve` and `dev`), values that move with real kubectl traffic, and `promtool check metrics`
//! accepting both outputs.

use std::io::{Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nautilus_tests::{DevCluster, binary, client, free_port};

use nautilus_tests::promtool_check;

/// The value of the sample written exactly as `series` (name and labels), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(series)?;
        rest.strip_prefix(' ')?.trim().parse().ok()
    })
}

/// `apiserver_request_total` for one request class (core group unless `group` is given).
fn requests(text: &str, verb: &str, resource: &str, scope: &str, code: u16) -> f64 {
    let series = format!(
        "apiserver_request_total{{verb=\"{verb}\",group=\"\",version=\"v1\",resource=\"{resource}\",subresource=\"\",scope=\"{scope}\",code=\"{code}\"}}"
    );
    sample(text, &series).unwrap_or(0.0)
}

#[track_caller]
fn scrape_enclave(cluster: &DevCluster) -> String {
    let reply = cluster
        .request("GET", "/metrics", None, &[])
        .expect("scrape /metrics");
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    String::from_utf8(reply.body).expect("metrics are UTF-8")
}

/// One plain-HTTP GET to the proxy's metrics listener: (status, body).
fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw)?;
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// Waits until the metrics listener answers `/metrics` with 200; returns the body.
#[track_caller]
fn wait_metrics(port: u16, child: &mut Child) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok((200, body)) = http_get(port, "/metrics") {
            return body;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the proxy exited early ({status})");
        }
        assert!(Instant::now() < deadline, "metrics listener never answered");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A child process stopped with SIGTERM (then SIGKILL) when the test ends.
struct Stopped(Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        nautilus_tests::signal(self.0.id(), libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A CA (PEM) and a certificate chain + key (PEM files in `dir`) for 127.0.0.1.
fn write_pki(dir: &Path) -> (Vec<u8>, std::path::PathBuf, std::path::PathBuf) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose, SanType,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "metrics test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    let cert_path = dir.join("tls.crt");
    let key_path = dir.join("tls.key");
    std::fs::write(&cert_path, format!("{}{}", cert.pem(), ca.pem())).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (ca.pem().into_bytes(), cert_path, key_path)
}

/// `nautilus-proxy serve` in front of `enclave` with a metrics listener: (process, TLS port,
/// metrics port).
fn start_serve(dir: &Path, enclave: &str) -> (Stopped, u16, u16, Vec<u8>) {
    let (ca_pem, cert, key) = write_pki(dir);
    let port = free_port();
    let metrics_port = free_port();
    let child = Command::new(binary("nautilus-proxy"))
        .arg("serve")
        .arg(format!("--listen=127.0.0.1:{port}"))
        .arg(format!("--enclave={enclave}"))
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .arg(format!("--metrics-listen=127.0.0.1:{metrics_port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nautilus-proxy serve");
    let mut child = Stopped(child);
    wait_metrics(metrics_port, &mut child.0);
    (child, port, metrics_port, ca_pem)
}

#[test]
fn enclave_metrics_follow_kubectl_traffic_for_the_admin_only() {
    // Fail fast (with the install hint) before starting anything.
    promtool_check("empty", "");
    let cluster = DevCluster::start();
    let before = scrape_enclave(&cluster);
    for family in [
        "# TYPE apiserver_request_duration_seconds histogram",
        "# TYPE apiserver_request_total counter",
        "# TYPE apiserver_current_inflight_requests gauge",
        "# TYPE apiserver_registered_watchers gauge",
        "# TYPE apiserver_watch_events_total counter",
        "# TYPE nautilus_watchers_expired_total counter",
        "# TYPE apiserver_storage_objects gauge",
        "# TYPE nautilus_store_bytes gauge",
        "# TYPE nautilus_store_bytes_budget gauge",
        "# TYPE nautilus_store_objects_budget gauge",
        "# TYPE nautilus_store_revision gauge",
        "# TYPE nautilus_watch_ring_events gauge",
        "# TYPE nautilus_watch_ring_capacity gauge",
        "# TYPE nautilus_watch_ring_evictions_total counter",
    ] {
        assert!(before.contains(family), "{family} missing:\n{before}");
    }
    // The defaults of --max-objects, --max-store-bytes and --watch-ring.
    assert_eq!(
        sample(&before, "nautilus_store_objects_budget"),
        Some(250_000.0)
    );
    assert_eq!(
        sample(&before, "nautilus_store_bytes_budget"),
        Some(1_073_741_824.0)
    );
    assert_eq!(
        sample(&before, "nautilus_watch_ring_capacity"),
        Some(10_000.0)
    );
    assert_eq!(sample(&before, "apiserver_registered_watchers"), Some(0.0));
    assert_eq!(
        sample(&before, "apiserver_storage_objects{resource=\"pods\"}"),
        Some(0.0)
    );

    cluster.kubectl_ok(&["create", "namespace", "m"]);
    for pod in ["p1", "p2", "p3"] {
        cluster.kubectl_ok(&["run", pod, "-n", "m", "--image=nginx"]);
    }
    cluster.kubectl_ok(&["get", "pods", "-n", "m"]);
    cluster.kubectl_ok(&["get", "pod", "p1", "-n", "m"]);
    // No replicas: its controller-made pods would race with the counts below.
    cluster.kubectl_ok(&[
        "create",
        "deployment",
        "web",
        "-n",
        "m",
        "--image=nginx",
        "--replicas=0",
    ]);

    // A watch that sees one ADDED event while it is open.
    let mut watch = cluster
        .kubectl_command(&["get", "pods", "-n", "m", "--watch-only", "-o", "name"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start kubectl watch");
    let deadline = Instant::now() + Duration::from_secs(30);
    let during = loop {
        let text = scrape_enclave(&cluster);
        if sample(&text, "apiserver_registered_watchers") == Some(1.0)
            && requests(&text, "WATCH", "pods", "namespace", 200) == 1.0
        {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "the watch never registered:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        sample(&during, "apiserver_storage_objects{resource=\"pods\"}"),
        Some(3.0)
    );
    cluster.kubectl_ok(&["run", "p4", "-n", "m", "--image=nginx"]);
    let mut seen = String::new();
    let mut stdout = watch.stdout.take().expect("watch stdout");
    let mut byte = [0u8; 1];
    while !seen.contains("pod/p4") && stdout.read(&mut byte).unwrap_or(0) == 1 {
        seen.push(char::from(byte[0]));
    }
    assert!(seen.contains("pod/p4"), "the watch printed {seen:?}");
    let _ = watch.kill();
    let _ = watch.wait();

    let after = scrape_enclave(&cluster);
    assert!(
        requests(&after, "LIST", "pods", "namespace", 200)
            >= requests(&before, "LIST", "pods", "namespace", 200) + 1.0,
        "LIST pods did not count:\n{after}"
    );
    // A create is scoped to the object it creates, as kube-apiserver scopes it.
    assert_eq!(requests(&after, "POST", "pods", "resource", 201), 4.0);
    assert!(requests(&after, "GET", "pods", "resource", 200) >= 1.0);
    assert_eq!(requests(&after, "POST", "namespaces", "resource", 201), 1.0);
    let list_pods = "verb=\"LIST\",group=\"\",version=\"v1\",resource=\"pods\",subresource=\"\",scope=\"namespace\",code=\"200\"";
    assert!(
        sample(
            &after,
            &format!("apiserver_request_duration_seconds_count{{{list_pods}}}")
        )
        .is_some_and(|n| n >= 1.0)
    );
    assert!(
        sample(
            &after,
            &format!("apiserver_request_duration_seconds_bucket{{{list_pods},le=\"+Inf\"}}")
        )
        .is_some_and(|n| n >= 1.0)
    );
    assert!(
        after.contains(
            "apiserver_request_total{verb=\"POST\",group=\"apps\",version=\"v1\",resource=\"deployments\",subresource=\"\",scope=\"resource\",code=\"201\"} 1"
        ),
        "{after}"
    );
    // What was created, counted from the store.
    assert_eq!(
        sample(&after, "apiserver_storage_objects{resource=\"pods\"}"),
        Some(4.0)
    );
    assert_eq!(
        sample(
            &after,
            "apiserver_storage_objects{resource=\"deployments.apps\"}"
        ),
        Some(1.0)
    );
    assert!(sample(&after, "apiserver_watch_events_total").is_some_and(|n| n >= 1.0));
    assert!(sample(&after, "nautilus_store_revision") > sample(&before, "nautilus_store_revision"));
    assert!(sample(&after, "nautilus_store_bytes") > sample(&before, "nautilus_store_bytes"));
    assert!(
        sample(&after, "nautilus_watch_ring_events")
            > sample(&before, "nautilus_watch_ring_events")
    );
    // This scrape is the one read-only request in flight.
    assert_eq!(
        sample(
            &after,
            "apiserver_current_inflight_requests{request_kind=\"readOnly\"}"
        ),
        Some(1.0)
    );
    promtool_check("enclave", &after);

    // The admin only: no credential is 401, a wrong token is 401, an `X-Seal-Token` header is no
    // credential here (only the seed's endpoints read it) so 401 too, each a Status like every
    // other refusal; a worker's valid Seal token as bearer is 403 (tests/hostile.rs).
    let anonymous = cluster.anonymous("GET", "/metrics").unwrap();
    assert_eq!(anonymous.status, 401);
    assert_eq!(anonymous.json()["kind"], "Status");
    assert_eq!(anonymous.json()["reason"], "Unauthorized");
    let wrong = client::blocking_request(
        cluster.port,
        &cluster.ca_pem,
        "GET",
        "/metrics",
        None,
        &[("authorization".into(), "Bearer not-the-token".into())],
    )
    .unwrap();
    assert_eq!(wrong.status, 401);
    let node = client::blocking_request(
        cluster.port,
        &cluster.ca_pem,
        "GET",
        "/metrics",
        None,
        &[("x-seal-token".into(), "some-node-token".into())],
    )
    .unwrap();
    assert_eq!(node.status, 401, "{}", String::from_utf8_lossy(&node.body));
    assert_eq!(node.json()["reason"], "Unauthorized");
    // Refusals are counted too.
    let refused = scrape_enclave(&cluster);
    assert!(
        refused.contains(
            "apiserver_request_total{verb=\"GET\",group=\"\",version=\"\",resource=\"\",subresource=\"\",scope=\"\",code=\"401\"}"
        ),
        "{refused}"
    );
}

#[test]
fn proxy_metrics_listener_counts_connections_bytes_and_handshakes() {
    promtool_check("empty", "");
    let cluster = DevCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let socket = format!("unix:{}", cluster.dir.path().join("enclave.sock").display());
    let (_proxy, port, metrics_port, ca_pem) = start_serve(dir.path(), &socket);
    let admin = [(
        "authorization".to_string(),
        format!("Bearer {}", cluster.token),
    )];
    for _ in 0..2 {
        let reply =
            client::blocking_request(port, &ca_pem, "GET", "/api/v1/namespaces", None, &admin)
                .unwrap();
        assert_eq!(reply.status, 200);
    }
    // A client that is not speaking TLS: one failed handshake.
    {
        let mut junk = TcpStream::connect(("127.0.0.1", port)).unwrap();
        junk.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        junk.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut rest = Vec::new();
        let _ = junk.read_to_end(&mut rest);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let (status, text) = http_get(metrics_port, "/metrics").unwrap();
        assert_eq!(status, 200);
        let settled = sample(
            &text,
            "nautilus_proxy_tls_handshakes_total{result=\"failed\"}",
        ) == Some(1.0)
            && sample(&text, "nautilus_proxy_open_connections") == Some(0.0);
        if settled || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        sample(&text, "nautilus_proxy_tls_handshakes_total{result=\"ok\"}"),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "nautilus_proxy_tls_handshakes_total{result=\"failed\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(sample(&text, "nautilus_proxy_open_connections"), Some(0.0));
    // Two requests up, two responses (a NamespaceList each) down.
    let up = sample(
        &text,
        "nautilus_proxy_bytes_total{direction=\"client_to_enclave\"}",
    );
    let down = sample(
        &text,
        "nautilus_proxy_bytes_total{direction=\"enclave_to_client\"}",
    );
    assert!(up.is_some_and(|n| n > 100.0), "{text}");
    assert!(down.is_some_and(|n| n > 200.0 && Some(n) > up), "{text}");
    assert_eq!(
        sample(&text, "nautilus_proxy_enclave_connect_errors_total"),
        Some(0.0)
    );
    promtool_check("proxy", &text);
    assert_eq!(http_get(metrics_port, "/other").unwrap().0, 404);

    // An enclave that is not there: the client gets the fallback and the error is counted.
    let dir2 = tempfile::tempdir().unwrap();
    let missing = format!("unix:{}", dir2.path().join("none.sock").display());
    let (_lonely, port2, metrics2, ca2) = start_serve(dir2.path(), &missing);
    let reply = client::blocking_request(port2, &ca2, "GET", "/readyz", None, &[]).unwrap();
    assert_ne!(reply.status, 200);
    let (_, text2) = http_get(metrics2, "/metrics").unwrap();
    assert_eq!(
        sample(&text2, "nautilus_proxy_enclave_connect_errors_total"),
        Some(1.0),
        "{text2}"
    );
    assert_eq!(
        sample(&text2, "nautilus_proxy_enclave_reconnects_total"),
        Some(0.0),
        "{text2}"
    );
    // The enclave comes up: the next connection reaches it, and that is one reconnect.
    let enclave = Command::new(binary("nautilus-proxy"))
        .arg("__enclave")
        .arg(format!("--listen={missing}"))
        .arg("--simulated-nsm")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the enclave");
    let _enclave = Stopped(enclave);
    let deadline = Instant::now() + Duration::from_secs(30);
    while client::blocking_request(port2, &ca2, "GET", "/readyz", None, &[]).map(|r| r.status)
        != Ok(200)
    {
        assert!(Instant::now() < deadline, "the enclave never answered");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_, text3) = http_get(metrics2, "/metrics").unwrap();
    assert_eq!(
        sample(&text3, "nautilus_proxy_enclave_reconnects_total"),
        Some(1.0),
        "{text3}"
    );
    assert_eq!(
        sample(&text3, "nautilus_proxy_enclave_stream_errors_total"),
        Some(0.0),
        "{text3}"
    );
    promtool_check("proxy after a reconnect", &text3);
}

#[test]
fn token_node_and_log_sink_families_follow_workers() {
    use nautilus_tests::simulator::{DEFAULT_PACKAGE, SimConfig, Simulator, package_arg};
    let cluster = DevCluster::start_with(&[&package_arg(&DEFAULT_PACKAGE)]);
    let before = scrape_enclave(&cluster);
    assert_eq!(
        sample(&before, "nautilus_nodes_registered"),
        Some(0.0),
        "{before}"
    );
    assert_eq!(
        sample(
            &before,
            "nautilus_token_validations_total{result=\"accepted\",reason=\"\"}"
        ),
        Some(0.0),
        "{before}"
    );
    let sim = Simulator::start(
        &cluster,
        SimConfig {
            workers: 2,
            interval: Duration::from_millis(300),
            connections: 2,
            ..SimConfig::default()
        },
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while sim.workers().iter().any(|w| w.ok_heartbeats() < 2) {
        assert!(Instant::now() < deadline, "no heartbeats");
        std::thread::sleep(Duration::from_millis(50));
    }
    // A forged Seal token on a heartbeat: refused, and counted with its reason.
    let worker = sim.worker(0);
    let mut forged = worker.token();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let body = nautilus_tests::simulator::heartbeat_body(
        &worker.node,
        &forged,
        nautilus_tests::simulator::now_secs(),
    );
    // The seed's wire format: the same token in the X-Seal-Token header and the body.
    let refused = cluster
        .request(
            "POST",
            "/api/v1/heartbeat",
            Some(&body),
            &[
                ("content-type", "application/json"),
                ("x-seal-token", &forged),
            ],
        )
        .unwrap();
    assert_eq!(
        refused.status,
        401,
        "{}",
        String::from_utf8_lossy(&refused.body)
    );
    let text = scrape_enclave(&cluster);
    drop(sim);
    assert_eq!(
        sample(&text, "nautilus_nodes_registered"),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "nautilus_nodes{condition=\"Ready\"}"),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "nautilus_nodes{condition=\"NotReady\"}"),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "nautilus_nodes_unreachable"),
        Some(0.0),
        "{text}"
    );
    let accepted = sample(
        &text,
        "nautilus_token_validations_total{result=\"accepted\",reason=\"\"}",
    );
    let cached = sample(
        &text,
        "nautilus_token_validations_total{result=\"cached\",reason=\"\"}",
    );
    // Each worker's token is verified once, then served from the cache.
    assert!(accepted.is_some_and(|n| n >= 2.0), "{text}");
    assert!(cached.is_some_and(|n| n >= 2.0), "{text}");
    {
        let rejected: f64 = text
            .lines()
            .filter(|l| l.starts_with("nautilus_token_validations_total{result=\"rejected\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        assert!(rejected >= 1.0, "{text}");
    }
    // dev routes the enclave's logs through the proxy: one sink connection, nothing dropped.
    assert_eq!(
        sample(&text, "nautilus_log_sink_connects_total"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "nautilus_log_lines_dropped_total"),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "nautilus_request_metrics_enabled"),
        Some(1.0),
        "{text}"
    );
    promtool_check("enclave with workers", &text);
}

#[test]
fn metrics_false_turns_the_request_families_off() {
    let cluster = DevCluster::start_with(&["--metrics=false"]);
    for _ in 0..3 {
        cluster.kubectl_ok(&["get", "pods"]);
    }
    let text = scrape_enclave(&cluster);
    assert_eq!(
        sample(&text, "nautilus_request_metrics_enabled"),
        Some(0.0),
        "{text}"
    );
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with("apiserver_request_total{")
                || l.starts_with("apiserver_request_duration_seconds_count{")),
        "no request samples with --metrics=false:\n{text}"
    );
    // The store figures are still there.
    assert!(
        sample(&text, "nautilus_store_objects").is_some_and(|n| n > 0.0),
        "{text}"
    );
    promtool_check("enclave with --metrics=false", &text);
}

#[test]
fn dev_serves_proxy_metrics_on_loopback_and_refuses_other_addresses() {
    promtool_check("empty", "");
    for command in ["dev", "serve"] {
        let out = Command::new(binary("nautilus-proxy"))
            .args([command, "--metrics-listen", "0.0.0.0:9100"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{command}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("--metrics-listen") && stderr.contains("not a loopback address"),
            "{command}: {stderr}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let metrics_port = free_port();
    let child = Command::new(binary("nautilus-proxy"))
        .arg("dev")
        .arg(format!("--listen=127.0.0.1:{}", free_port()))
        .arg("--data-dir")
        .arg(dir.path())
        .arg(format!("--metrics-listen=127.0.0.1:{metrics_port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nautilus-proxy dev");
    let mut child = Stopped(child);
    let text = wait_metrics(metrics_port, &mut child.0);
    assert!(
        text.contains("# TYPE nautilus_proxy_open_connections gauge"),
        "{text}"
    );
    promtool_check("dev proxy", &text);
}

#[test]
fn scheduler_families_count_bound_and_unschedulable_pods() {
    use nautilus_tests::simulator::{DEFAULT_PACKAGE, SimConfig, Simulator, package_arg};
    let cluster = DevCluster::start_with(&[&package_arg(&DEFAULT_PACKAGE)]);
    let before = scrape_enclave(&cluster);
    for result in ["scheduled", "unschedulable", "error"] {
        let series = format!(
            "scheduler_schedule_attempts_total{{result=\"{result}\",profile=\"default-scheduler\"}}"
        );
        assert_eq!(sample(&before, &series), Some(0.0), "{series}\n{before}");
    }
    assert_eq!(
        sample(
            &before,
            "scheduler_pod_scheduling_sli_duration_seconds_bucket{le=\"+Inf\"}"
        ),
        Some(0.0),
        "{before}"
    );
    let sim = Simulator::start(
        &cluster,
        SimConfig {
            workers: 2,
            interval: Duration::from_millis(500),
            connections: 2,
            ..SimConfig::default()
        },
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while sim.workers().iter().any(|w| w.ok_heartbeats() < 1) {
        assert!(Instant::now() < deadline, "no heartbeats");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Three pods that fit, and one whose nodeSelector matches no node.
    for i in 0..3 {
        cluster.kubectl_ok(&["run", &format!("fits-{i}"), "--image=nginx"]);
    }
    cluster.kubectl_ok(&[
        "run",
        "nowhere",
        "--image=nginx",
        "--overrides={\"spec\":{\"nodeSelector\":{\"disk\":\"none\"}}}",
    ]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let text = loop {
        let text = scrape_enclave(&cluster);
        let settled = sample(&text, "scheduler_pending_pods{queue=\"active\"}") == Some(0.0)
            && sample(&text, "scheduler_pending_pods{queue=\"unschedulable\"}") == Some(1.0)
            && sample(
                &text,
                "scheduler_schedule_attempts_total{result=\"scheduled\",profile=\"default-scheduler\"}",
            ) == Some(3.0);
        if settled {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "scheduler did not settle:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    drop(sim);
    let bound = cluster.kubectl_ok(&[
        "get",
        "pods",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name}={.spec.nodeName} {end}",
    ]);
    assert_eq!(
        bound
            .split_whitespace()
            .filter(|p| p.starts_with("fits-") && !p.ends_with('='))
            .count(),
        3,
        "{bound}"
    );
    // Retries after node heartbeats may add attempts, but at least the first one failed.
    assert!(
        sample(
            &text,
            "scheduler_schedule_attempts_total{result=\"unschedulable\",profile=\"default-scheduler\"}"
        )
        .is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "scheduler_schedule_attempts_total{result=\"error\",profile=\"default-scheduler\"}"
        ),
        Some(0.0),
        "{text}"
    );
    // The latency histogram saw the three binds: cumulative buckets end at the count.
    assert_eq!(
        sample(&text, "scheduler_pod_scheduling_sli_duration_seconds_count"),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "scheduler_pod_scheduling_sli_duration_seconds_bucket{le=\"+Inf\"}"
        ),
        Some(3.0),
        "{text}"
    );
    let buckets: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with("scheduler_pod_scheduling_sli_duration_seconds_bucket{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    assert_eq!(buckets.len(), 11, "{text}");
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{text}");
    // Binding follows the create within the same timer call: well under a minute each.
    assert_eq!(
        sample(
            &text,
            "scheduler_pod_scheduling_sli_duration_seconds_bucket{le=\"60\"}"
        ),
        Some(3.0),
        "{text}"
    );
    assert!(
        sample(&text, "scheduler_pod_scheduling_sli_duration_seconds_sum")
            .is_some_and(|s| (0.0..180.0).contains(&s)),
        "{text}"
    );
    assert_eq!(
        sample(&text, "nautilus_scheduler_nodes"),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "nautilus_scheduler_queue_overflowed"),
        Some(0.0),
        "{text}"
    );
    promtool_check("enclave with scheduled pods", &text);
}
