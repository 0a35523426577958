//! Hostile clients cannot hurt the cluster (issue 13: memory before authentication, slow
//! watchers, connection lockout, `/metrics` for workers), end to end over real sockets against
//! dev mode: stalled anonymous bodies are answered 401 before a byte of them is read, a body
//! declared over the limit is 413 at once, the in-flight byte budget answers 429 with
//! `Retry-After`, a watch whose client stops reading is closed while the others keep flowing,
//! and a flood of silent connections from one source does not lock out another. The loads are
//! small (a 2-core CI machine); the bounds are on bytes and counts, never on time.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use nautilus_tests::DevCluster;
use nautilus_tests::client::{Connection, tcp_from, tls_config, tls_from};
use nautilus_tests::simulator::{DEFAULT_PACKAGE, SimConfig, Simulator, package_arg};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

const MIB: usize = 1 << 20;
/// How long a test waits for something that must happen (a failure guard, not a figure).
const PATIENCE: Duration = Duration::from_secs(60);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// `VmRSS` or `VmHWM` of `pid`, in bytes.
fn memory(pid: u32, field: &str) -> usize {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: usize = text
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"));
    kb * 1024
}

/// One HTTP/1.1 response read from a raw stream: status, head (lower-case), body (by
/// `Content-Length`).
async fn read_response<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<(u16, String, Vec<u8>), String> {
    let mut data = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(format!(
                "closed before an answer: {}",
                String::from_utf8_lossy(&data)
            ));
        }
        data.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status line: {head}"))?;
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while data.len() < head_end + length {
        let n = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        data.extend_from_slice(&chunk[..n]);
    }
    Ok((status, head, data[head_end..].to_vec()))
}

/// Whether the server closed `stream` (EOF or an error) before `PATIENCE` ran out.
async fn closed_by_server<S: AsyncRead + Unpin>(stream: &mut S) -> bool {
    let mut sink = vec![0u8; 64 * 1024];
    tokio::time::timeout(PATIENCE, async {
        loop {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

fn post_head(path: &str, length: usize, token: Option<&str>) -> String {
    let auth = token.map_or_else(String::new, |t| format!("authorization: Bearer {t}\r\n"));
    format!(
        "POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n{auth}content-type: application/json\r\ncontent-length: {length}\r\n\r\n"
    )
}

fn status_of(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not a Status ({e}): {}", String::from_utf8_lossy(body)))
}

/// Finding 1: 40 anonymous connections each declare a 3 MiB body and send most of it; each is
/// answered 401 after its head alone, its connection is closed, and the enclave's memory does not
/// grow by what they sent (on the old runtime each body was buffered and no answer came).
#[test]
fn stalled_anonymous_bodies_are_refused_on_their_head_and_never_buffered() {
    const CONNECTIONS: usize = 40;
    const BODY: usize = 3 * MIB;
    let cluster = DevCluster::start();
    let pid = cluster.enclave_pid().expect("enclave pid");
    let rss_before = memory(pid, "VmRSS:");
    let tls = tls_config(&cluster.ca_pem);
    let rt = runtime();
    rt.block_on(async {
        let mut writers = Vec::new();
        let mut readers = Vec::new();
        for _ in 0..CONNECTIONS {
            let stream = tls_from(None, cluster.port, tls.clone()).await.unwrap();
            let (mut reader, mut writer) = tokio::io::split(stream);
            writer
                .write_all(
                    post_head("/api/v1/namespaces/default/configmaps", BODY, None).as_bytes(),
                )
                .await
                .unwrap();
            // The answer must come while no body byte has been sent.
            let (status, _, body) = tokio::time::timeout(PATIENCE, read_response(&mut reader))
                .await
                .expect("no answer before the body: the body is read before authentication")
                .unwrap();
            assert_eq!(status, 401, "{}", String::from_utf8_lossy(&body));
            let status = status_of(&body);
            assert_eq!(
                (status["kind"].as_str(), status["reason"].as_str()),
                (Some("Status"), Some("Unauthorized"))
            );
            // Now the attack proper: all but one byte of the body, then a stall.
            writers.push(tokio::spawn(async move {
                let chunk = vec![b' '; 64 * 1024];
                let mut sent = 0;
                while sent + chunk.len() < BODY {
                    if writer.write_all(&chunk).await.is_err() {
                        break;
                    }
                    sent += chunk.len();
                }
                writer
            }));
            readers.push(reader);
        }
        // The enclave closed every one of them: none holds a body.
        for reader in &mut readers {
            assert!(
                closed_by_server(reader).await,
                "the refused connection stays open"
            );
        }
        for writer in writers {
            writer.abort();
        }
    });
    let rss_after = memory(pid, "VmRSS:");
    let peak = memory(pid, "VmHWM:");
    let sent = CONNECTIONS * BODY;
    assert!(
        rss_after.saturating_sub(rss_before) < 16 * MIB
            && peak.saturating_sub(rss_before) < 32 * MIB,
        "enclave RSS {rss_before} -> {rss_after} (peak {peak}) bytes while {sent} body bytes were offered"
    );
    // The cluster still serves.
    assert_eq!(
        cluster
            .request("GET", "/api/v1/namespaces", None, &[])
            .unwrap()
            .status,
        200
    );
}

/// A body declared larger than `--max-body-bytes` is refused 413 on its head (after
/// authentication: an anonymous one is 401), before any of it is sent.
#[test]
fn a_declared_body_over_the_limit_is_refused_at_once() {
    let cluster = DevCluster::start();
    let tls = tls_config(&cluster.ca_pem);
    runtime().block_on(async {
        let path = "/api/v1/namespaces/default/configmaps";
        for (token, expected, reason) in [
            (Some(cluster.token.as_str()), 413, "RequestEntityTooLarge"),
            (None, 401, "Unauthorized"),
        ] {
            let mut stream = tls_from(None, cluster.port, tls.clone()).await.unwrap();
            stream
                .write_all(post_head(path, 4 * MIB, token).as_bytes())
                .await
                .unwrap();
            let (status, _, body) = tokio::time::timeout(PATIENCE, read_response(&mut stream))
                .await
                .expect("no answer before the body")
                .unwrap();
            assert_eq!(status, expected, "{}", String::from_utf8_lossy(&body));
            assert_eq!(status_of(&body)["reason"], reason);
            assert!(closed_by_server(&mut stream).await);
        }
        // The seed's endpoints answer in their own shape.
        let mut stream = tls_from(None, cluster.port, tls.clone()).await.unwrap();
        stream
            .write_all(post_head("/api/v1/register-worker", 4 * MIB, None).as_bytes())
            .await
            .unwrap();
        let (status, _, body) = read_response(&mut stream).await.unwrap();
        assert_eq!(status, 401);
        assert_eq!(status_of(&body)["status"], "error");
    });
}

/// The in-flight byte budget: with 3.5 MiB, one admin's stalled 3 MiB body leaves no room for a
/// second body of 1 MB, which gets 429 `TooManyRequests` with `Retry-After: 1` (kube's
/// max-in-flight answer) and changes nothing; once the first connection goes, its bytes come
/// back and writes succeed.
#[test]
fn the_in_flight_budget_answers_429_with_retry_after_and_frees_its_bytes() {
    let cluster = DevCluster::start_with(&["--inflight-bytes=3670016"]);
    let tls = tls_config(&cluster.ca_pem);
    let token = cluster.token.clone();
    let path = "/api/v1/namespaces/default/configmaps";
    runtime().block_on(async {
        let mut holder = tls_from(None, cluster.port, tls.clone()).await.unwrap();
        holder
            .write_all(post_head(path, 3 * MIB, Some(&token)).as_bytes())
            .await
            .unwrap();
        holder.write_all(&[b' '; 1024]).await.unwrap();
        // The holder's 3 MiB are taken once its head is admitted; a second body waits its turn.
        let second_body = format!(
            "{{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{{\"name\":\"squeezed\"}},\"data\":{{\"k\":\"{}\"}}}}",
            "x".repeat(1_000_000)
        );
        let refused = loop {
            let mut stream = tls_from(None, cluster.port, tls.clone()).await.unwrap();
            stream
                .write_all(post_head(path, second_body.len(), Some(&token)).as_bytes())
                .await
                .unwrap();
            let (status, head, body) = tokio::time::timeout(PATIENCE, read_response(&mut stream))
                .await
                .expect("an answer")
                .unwrap();
            if status == 429 {
                break (head, body);
            }
            // Only possible while the holder's head is still on its way.
            assert!(status == 201 || status == 400, "{status}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let (head, body) = refused;
        assert!(head.contains("retry-after: 1\r\n"), "{head}");
        let status = status_of(&body);
        assert_eq!(status["reason"], "TooManyRequests", "{status}");
        assert_eq!(status["code"], 429);
        assert_eq!(status["details"]["retryAfterSeconds"], 1);
        drop(holder);
        // The holder's bytes come back when its connection ends.
        let deadline = Instant::now() + PATIENCE;
        let auth = vec![("authorization".to_string(), format!("Bearer {token}"))];
        loop {
            // A fresh connection each try: a refused body is not read, so its connection ends
            // after the 429.
            let mut conn = Connection::open(cluster.port, tls.clone()).await.unwrap();
            let reply = conn
                .send("POST", path, Some(second_body.as_bytes()), &auth)
                .await
                .unwrap();
            if reply.status == 201 {
                break;
            }
            assert_eq!(reply.status, 429, "{}", String::from_utf8_lossy(&reply.body));
            assert!(Instant::now() < deadline, "the budget never came back");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let metrics = cluster.request("GET", "/metrics", None, &[]).unwrap();
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(
        text.contains("nautilus_inflight_bytes_budget 3670016"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("nautilus_inflight_refusals_total ") && !l.ends_with(" 0")),
        "{text}"
    );
}

const ADDED: &[u8] = b"{\"type\":\"ADDED\"";

/// Counts `{"type":"ADDED"` in a chunked watch stream as it arrives, without keeping it.
#[derive(Default)]
struct AddedCounter {
    count: usize,
    /// The last bytes seen, shorter than the marker, for a marker split across reads.
    tail: Vec<u8>,
}

impl AddedCounter {
    fn feed(&mut self, bytes: &[u8]) {
        let mut joined = std::mem::take(&mut self.tail);
        joined.extend_from_slice(bytes);
        self.count += joined.windows(ADDED.len()).filter(|w| *w == ADDED).count();
        let keep = joined.len().min(ADDED.len() - 1);
        self.tail = joined.split_off(joined.len() - keep);
    }
}

fn watch_request(token: &str, rv: &str) -> String {
    format!(
        "GET /api/v1/namespaces/default/configmaps?watch=true&resourceVersion={rv} HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {token}\r\n\r\n"
    )
}

/// Finding 2: a watch whose client stops reading fills its own bounded buffer and is closed
/// (`apiserver_terminated_watchers_total`), while a reading watch on the same resource gets every
/// event.
#[test]
fn a_watch_that_stops_reading_is_closed_while_others_keep_flowing() {
    // 48 ConfigMaps of 700 KB: 34 MB, far more than the socket buffers on the stalled path hold
    // (the proxy's TCP send buffer to the client, which Linux grows to `tcp_wmem`'s 4 MB, and
    // the Unix socket to the enclave), so the enclave's own stream buffer fills.
    const CONFIGMAPS: usize = 48;
    let cluster = DevCluster::start_with(&["--watch-buffer-bytes=16384"]);
    let tls = tls_config(&cluster.ca_pem);
    let token = cluster.token.clone();
    let list = cluster
        .request("GET", "/api/v1/namespaces/default/configmaps", None, &[])
        .unwrap()
        .json();
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let rt = runtime();
    rt.block_on(async {
        // The stalled client: a small receive window, reads the answer's head, then nothing.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let tcp = socket
            .connect((Ipv4Addr::LOCALHOST, cluster.port).into())
            .await
            .unwrap();
        let connector = tokio_rustls::TlsConnector::from(tls.clone());
        let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let mut stalled = connector.connect(name, tcp).await.unwrap();
        stalled
            .write_all(watch_request(&token, &rv).as_bytes())
            .await
            .unwrap();
        let mut head = [0u8; 512];
        let n = stalled.read(&mut head).await.unwrap();
        assert!(head[..n].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&head[..n]));

        // The healthy client reads everything.
        let mut reading = tls_from(None, cluster.port, tls.clone()).await.unwrap();
        reading
            .write_all(watch_request(&token, &rv).as_bytes())
            .await
            .unwrap();
        let reader = tokio::spawn(async move {
            let mut seen = AddedCounter::default();
            let mut chunk = vec![0u8; 256 * 1024];
            let deadline = Instant::now() + PATIENCE * 3;
            while seen.count < CONFIGMAPS && Instant::now() < deadline {
                match tokio::time::timeout(PATIENCE, reading.read(&mut chunk)).await {
                    Ok(Ok(n)) if n > 0 => seen.feed(&chunk[..n]),
                    _ => break,
                }
            }
            seen.count
        });

        let mut conn = Connection::open(cluster.port, tls.clone()).await.unwrap();
        let auth = vec![("authorization".to_string(), format!("Bearer {token}"))];
        let data = "x".repeat(700_000);
        for i in 0..CONFIGMAPS {
            let body = format!(
                "{{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{{\"name\":\"cm-{i}\"}},\"data\":{{\"k\":\"{data}\"}}}}"
            );
            let reply = conn
                .send("POST", "/api/v1/namespaces/default/configmaps", Some(body.as_bytes()), &auth)
                .await
                .unwrap();
            assert_eq!(reply.status, 201);
        }
        assert_eq!(reader.await.unwrap(), CONFIGMAPS, "the reading watch missed events");
        // The stalled client reads nothing until the enclave has counted its watch as
        // terminated: reading earlier would drain the buffer before its grace ran out.
        let terminated = "apiserver_terminated_watchers_total{resource=\"configmaps\"} 1";
        let deadline = Instant::now() + PATIENCE;
        let mut text = String::new();
        while Instant::now() < deadline {
            let metrics = conn.send("GET", "/metrics", None, &auth).await.unwrap();
            text = String::from_utf8_lossy(&metrics.body).into_owned();
            if text.contains(terminated) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(text.contains(terminated), "{text}\n{}", cluster.logs());
        // Its connection ends, short of the events.
        let read_all = tokio::time::timeout(PATIENCE, async {
            let mut seen = AddedCounter::default();
            let mut chunk = vec![0u8; 256 * 1024];
            while let Ok(n) = stalled.read(&mut chunk).await {
                if n == 0 {
                    break;
                }
                seen.feed(&chunk[..n]);
            }
            seen.count
        })
        .await;
        let Ok(got) = read_all else {
            panic!("the stalled watch's connection never ended:\n{}", cluster.logs());
        };
        assert!(got < CONFIGMAPS, "the stalled watch got everything");
    });
}

/// Finding 3: one source floods the proxy with connections that never speak (TCP connects with
/// no ClientHello, and TLS connections with no request), then a second flooding source joins;
/// a third source still gets its GET through (its slot is taken from the biggest flood), and the
/// floods never hold more than their per-source share.
#[test]
fn floods_of_silent_connections_do_not_lock_out_another_source() {
    let metrics_port = nautilus_tests::free_port();
    let cluster = DevCluster::start_opts(
        &[
            "--max-connections=48",
            "--max-connections-per-source=32",
            "--handshake-timeout-secs=120",
            "--first-request-timeout-secs=120",
            &format!("--metrics-listen=127.0.0.1:{metrics_port}"),
        ],
        &[],
    );
    let tls = tls_config(&cluster.ca_pem);
    let port = cluster.port;
    let token = cluster.token.clone();
    let first = Ipv4Addr::new(127, 0, 0, 1);
    let second = Ipv4Addr::new(127, 0, 0, 3);
    let third = Ipv4Addr::new(127, 0, 0, 2);
    runtime().block_on(async {
        let mut held = Vec::new();
        // TLS connections that never send a request, then bare TCP connects.
        let mut silent_tls = Vec::new();
        for _ in 0..8 {
            silent_tls.push(tls_from(Some(first), port, tls.clone()).await.unwrap());
        }
        for source in [first, second] {
            for _ in 0..100 {
                held.push(tcp_from(Some(source), port).await.unwrap());
            }
        }
        // A connection over its source's limit is held unread, not closed at once (closed at
        // once, a flood reconnects at once): it sees no EOF for a while.
        let mut refused = held.pop().unwrap();
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(2), refused.read(&mut byte)).await;
        assert!(
            read.is_err(),
            "a connection over the per-source limit was closed at once: {read:?}"
        );
        let mut conn = tokio::time::timeout(
            PATIENCE,
            Connection::open_from(Some(third), port, tls.clone()),
        )
        .await
        .expect("the third source's handshake never completed")
        .expect("the third source was refused");
        let auth = vec![("authorization".to_string(), format!("Bearer {token}"))];
        let reply = conn
            .send("GET", "/api/v1/namespaces", None, &auth)
            .await
            .unwrap();
        assert_eq!(reply.status, 200);
        let text = proxy_metrics(metrics_port);
        assert!(
            sample(&text, "nautilus_proxy_open_connections") <= 48.0,
            "{text}"
        );
        assert!(
            sample(
                &text,
                "nautilus_proxy_connections_refused_total{reason=\"source_limit\"}"
            ) > 0.0,
            "{text}"
        );
        assert!(
            sample(&text, "nautilus_proxy_connections_evicted_total") > 0.0,
            "{text}"
        );
        drop(held);
        drop(silent_tls);
    });
}

/// The proxy's own metrics from its plain-HTTP loopback listener.
fn proxy_metrics(port: u16) -> String {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text
}

/// The value of the sample line starting with `name ` (0 when absent).
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// A TLS connection that completes its handshake and then says nothing is closed by the proxy
/// after `--first-request-timeout-secs`, and no enclave stream is opened for it.
#[test]
fn a_silent_tls_connection_is_closed_after_the_first_request_deadline() {
    let cluster = DevCluster::start_opts(
        &[
            "--first-request-timeout-secs=1",
            "--log-level=info,nautilus_proxy=debug",
        ],
        &[],
    );
    let tls = tls_config(&cluster.ca_pem);
    runtime().block_on(async {
        let mut silent = tls_from(None, cluster.port, tls).await.unwrap();
        assert!(closed_by_server(&mut silent).await);
    });
    let deadline = Instant::now() + PATIENCE;
    while !cluster.logs().contains("no request in time") {
        assert!(Instant::now() < deadline, "{}", cluster.logs());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Item 8: `/metrics` is the administrator's: a worker's valid Seal token is 403 in kube's
/// words, no credential 401.
#[test]
fn metrics_are_forbidden_to_a_worker() {
    let cluster =
        DevCluster::start_with(&[&package_arg(&DEFAULT_PACKAGE), "--min-stake=1000000000"]);
    let sim = Simulator::new(
        cluster.port,
        &cluster.ca_pem,
        &cluster.token,
        SimConfig {
            workers: 1,
            ..SimConfig::default()
        },
    )
    .unwrap();
    sim.stake_all().unwrap();
    sim.register_all().unwrap();
    let reply = sim.request_as(0, "GET", "/metrics", None, &[]).unwrap();
    assert_eq!(
        reply.status,
        403,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let status = reply.json();
    assert_eq!(status["reason"], "Forbidden");
    assert_eq!(
        status["message"],
        format!(
            "forbidden: User \"system:node:{}\" cannot get path \"/metrics\"",
            sim.worker(0).node
        )
    );
    assert_eq!(cluster.anonymous("GET", "/metrics").unwrap().status, 401);
    assert_eq!(
        cluster
            .request("GET", "/metrics", None, &[])
            .unwrap()
            .status,
        200
    );
}

/// Item 8: `dev --log-level` reaches the enclave too (its request lines are at debug).
#[test]
fn dev_log_level_reaches_the_enclave() {
    let cluster = DevCluster::start_opts(&["--log-level=debug"], &[]);
    assert_eq!(
        cluster
            .request("GET", "/api/v1/namespaces/default", None, &[])
            .unwrap()
            .status,
        200
    );
    let deadline = Instant::now() + PATIENCE;
    loop {
        let logs = cluster.logs();
        if logs.lines().any(|l| {
            l.contains("enclave") && l.contains("DEBUG") && l.contains("/api/v1/namespaces/default")
        }) {
            break;
        }
        assert!(Instant::now() < deadline, "no enclave debug line:\n{logs}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Item 8: kubectl (Go) and other clients end connections without a TLS close_notify; the proxy
/// logs that as a close, not as a client error.
#[test]
fn a_normal_close_is_not_logged_as_a_client_error() {
    let cluster = DevCluster::start_opts(&["--log-level=info,nautilus_proxy=debug"], &[]);
    cluster.kubectl_ok(&["get", "namespaces"]);
    let deadline = Instant::now() + PATIENCE;
    while !cluster.logs().contains("outcome=\"closed\"") {
        assert!(Instant::now() < deadline, "{}", cluster.logs());
        std::thread::sleep(Duration::from_millis(100));
    }
    let logs = cluster.logs();
    assert!(!logs.contains("client error"), "{logs}");
}
