//! The proxy's own Prometheus metrics (connections, bytes, TLS handshakes, enclave connect
//! errors), served in the Prometheus text format on a separate plain-HTTP listener that may
//! only bind a loopback address: it is unauthenticated, and the host is untrusted anyway.
//! Hooks touch one pre-resolved atomic each; nothing allocates per connection or per read.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex, OnceLock};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// The path the listener answers.
const METRICS_PATH: &str = "/metrics";

type Labels = [(&'static str, &'static str); 1];

/// The process-wide proxy metrics; the label sets are resolved once.
struct Metrics {
    registry: Registry,
    open: Gauge,
    client_to_enclave: Counter,
    enclave_to_client: Counter,
    handshakes_ok: Counter,
    handshakes_failed: Counter,
    connect_errors: Counter,
    stream_errors: Counter,
    reconnects: Counter,
    log_streams: Counter,
    log_lines: Counter,
    refused_limit: Counter,
    refused_source_limit: Counter,
    evicted: Counter,
}

/// Set by a failed enclave connect, cleared (and counted as a reconnect) by the next success.
static ENCLAVE_DOWN: AtomicBool = AtomicBool::new(false);

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let mut registry = Registry::default();
    let open = Gauge::default();
    registry.register(
        "nautilus_proxy_open_connections",
        "Client connections open now (from accept to close)",
        open.clone(),
    );
    let bytes = Family::<Labels, Counter>::default();
    let client_to_enclave = bytes.get_or_create_owned(&[("direction", "client_to_enclave")]);
    let enclave_to_client = bytes.get_or_create_owned(&[("direction", "enclave_to_client")]);
    registry.register(
        "nautilus_proxy_bytes",
        "Bytes relayed between clients and the enclave (TLS-decrypted payload)",
        bytes,
    );
    let handshakes = Family::<Labels, Counter>::default();
    let handshakes_ok = handshakes.get_or_create_owned(&[("result", "ok")]);
    let handshakes_failed = handshakes.get_or_create_owned(&[("result", "failed")]);
    registry.register(
        "nautilus_proxy_tls_handshakes",
        "TLS handshakes with clients by result (a timeout is a failure)",
        handshakes,
    );
    let connect_errors = Counter::default();
    registry.register(
        "nautilus_proxy_enclave_connect_errors",
        "Enclave streams that could not be opened (the client got the fallback answer)",
        connect_errors.clone(),
    );
    let stream_errors = Counter::default();
    registry.register(
        "nautilus_proxy_enclave_stream_errors",
        "Enclave streams that failed with an I/O error after they were opened",
        stream_errors.clone(),
    );
    let reconnects = Counter::default();
    registry.register(
        "nautilus_proxy_enclave_reconnects",
        "Times the enclave became reachable again after a failed connect (a restart or outage ended)",
        reconnects.clone(),
    );
    let log_streams = Counter::default();
    registry.register(
        "nautilus_proxy_enclave_log_streams",
        "Log streams the enclave opened to the proxy (one per enclave start or reconnect)",
        log_streams.clone(),
    );
    let log_lines = Counter::default();
    registry.register(
        "nautilus_proxy_enclave_log_lines",
        "Enclave log lines relayed to the proxy's stderr",
        log_lines.clone(),
    );
    let refused = Family::<Labels, Counter>::default();
    let refused_limit = refused.get_or_create_owned(&[("reason", "limit")]);
    let refused_source_limit = refused.get_or_create_owned(&[("reason", "source_limit")]);
    registry.register(
        "nautilus_proxy_connections_refused",
        "Connections refused at accept (held unread for 10 s, then closed): every slot taken (limit) or their source at --max-connections-per-source (source_limit)",
        refused,
    );
    let evicted = Counter::default();
    registry.register(
        "nautilus_proxy_connections_evicted",
        "Waiting or idle connections of the source holding the most, closed to give a slot to another source",
        evicted.clone(),
    );
    Metrics {
        registry,
        refused_limit,
        refused_source_limit,
        evicted,
        stream_errors,
        reconnects,
        log_streams,
        log_lines,
        open,
        client_to_enclave,
        enclave_to_client,
        handshakes_ok,
        handshakes_failed,
        connect_errors,
    }
});

/// Counts one open connection until dropped.
pub(crate) struct OpenConnection(());

impl Drop for OpenConnection {
    fn drop(&mut self) {
        METRICS.open.dec();
    }
}

/// Marks a client connection open; it counts until the returned guard drops.
pub(crate) fn connection_opened() -> OpenConnection {
    METRICS.open.inc();
    OpenConnection(())
}

/// Counts `bytes` read from the client (`from_client`) or from the enclave.
pub(crate) fn relayed(from_client: bool, bytes: usize) {
    let counter = if from_client {
        &METRICS.client_to_enclave
    } else {
        &METRICS.enclave_to_client
    };
    counter.inc_by(u64::try_from(bytes).unwrap_or(u64::MAX));
}

/// Counts one connection closed at accept (`limit` or `source_limit`).
pub(crate) fn connection_refused(reason: &str) {
    if reason == "source_limit" {
        METRICS.refused_source_limit.inc();
    } else {
        METRICS.refused_limit.inc();
    }
}

/// Counts one connection evicted to make room for another source.
pub(crate) fn connection_evicted() {
    METRICS.evicted.inc();
}

/// Counts one finished TLS handshake.
pub(crate) fn handshake(ok: bool) {
    if ok {
        METRICS.handshakes_ok.inc();
    } else {
        METRICS.handshakes_failed.inc();
    }
}

/// Counts one enclave stream that could not be opened.
pub(crate) fn enclave_connect_error() {
    METRICS.connect_errors.inc();
    ENCLAVE_DOWN.store(true, Ordering::Relaxed);
}

/// Notes an enclave stream opened; the first after a failure counts as a reconnect.
pub(crate) fn enclave_connected() {
    // A load first keeps the common case (never down) to one shared read, no cache-line write.
    if ENCLAVE_DOWN.load(Ordering::Relaxed) && ENCLAVE_DOWN.swap(false, Ordering::Relaxed) {
        METRICS.reconnects.inc();
    }
}

/// Notes how a spliced connection ended; an enclave-side I/O error is a stream error.
pub(crate) fn connection_ended(outcome: &str) {
    if outcome == "enclave error" {
        METRICS.stream_errors.inc();
    }
}

/// Counts one log stream opened by the enclave.
pub(crate) fn enclave_log_stream() {
    METRICS.log_streams.inc();
}

/// Counts one enclave log line relayed.
pub(crate) fn enclave_log_line() {
    METRICS.log_lines.inc();
}

/// Labels of the Sui relay families: the node, and a direction or a refusal reason.
type RelayLabels = Vec<(&'static str, String)>;

/// The Sui relay's families, filled from the relay's own atomics at scrape time (the relay
/// counts on its hot path; the scrape copies).
struct RelayMetrics {
    counters: Arc<crate::relay::RelayCounters>,
    bytes: Family<RelayLabels, Counter>,
    connections: Family<RelayLabels, Counter>,
    refused: Family<RelayLabels, Counter>,
}

static RELAY: OnceLock<RelayMetrics> = OnceLock::new();
/// Serialises scrapes, so two at once never add the same delta twice.
static RELAY_SYNC: Mutex<()> = Mutex::new(());

/// Exports the relay's per-node counters (called once, when the relay starts).
pub(crate) fn set_relay(counters: Arc<crate::relay::RelayCounters>) {
    let _ = RELAY.set(RelayMetrics {
        counters,
        bytes: Family::default(),
        connections: Family::default(),
        refused: Family::default(),
    });
}

/// Raises `counter` to `value` (counters only grow).
fn catch_up(counter: &Counter, value: u64) {
    let seen = counter.get();
    if value > seen {
        counter.inc_by(value - seen);
    }
}

/// Copies the relay's atomics into its families and encodes them.
fn render_relay(text: &mut String) -> Result<(), std::fmt::Error> {
    let Some(relay) = RELAY.get() else {
        return Ok(());
    };
    let _guard = RELAY_SYNC
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for node in &relay.counters.nodes {
        let name = node.node.to_string();
        for (direction, value) in [
            ("to_node", node.to_node.load(Ordering::Relaxed)),
            ("from_node", node.from_node.load(Ordering::Relaxed)),
        ] {
            let labels = vec![("node", name.clone()), ("direction", direction.to_string())];
            catch_up(&relay.bytes.get_or_create(&labels), value);
        }
        let labels = vec![("node", name)];
        catch_up(
            &relay.connections.get_or_create(&labels),
            node.connections.load(Ordering::Relaxed),
        );
    }
    for (reason, value) in [
        ("denied", relay.counters.denied.load(Ordering::Relaxed)),
        ("unreachable", relay.counters.failed.load(Ordering::Relaxed)),
    ] {
        let labels = vec![("reason", reason.to_string())];
        catch_up(&relay.refused.get_or_create(&labels), value);
    }
    let mut registry = Registry::default();
    registry.register(
        "nautilus_proxy_sui_relay_bytes",
        "Bytes relayed between the enclave and each allowlisted Sui full node (TLS ciphertext)",
        relay.bytes.clone(),
    );
    registry.register(
        "nautilus_proxy_sui_relay_connections",
        "Enclave connections relayed to each allowlisted Sui full node",
        relay.connections.clone(),
    );
    registry.register(
        "nautilus_proxy_sui_relay_refused",
        "Relay requests refused: a target not on the allowlist (denied) or not reachable",
        relay.refused.clone(),
    );
    prometheus_client::encoding::prometheus_text::encode(text, &registry)
}

/// The metrics in the Prometheus text format (0.0.4).
fn render() -> Result<String, std::fmt::Error> {
    let mut text = String::with_capacity(2048);
    render_relay(&mut text)?;
    prometheus_client::encoding::prometheus_text::encode(&mut text, &METRICS.registry)?;
    Ok(text)
}

/// Parses `--metrics-listen`: a socket address on a loopback interface only.
pub(crate) fn parse_listen(value: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = value
        .parse()
        .map_err(|e| format!("{e} (expected IP:PORT, e.g. 127.0.0.1:9090)"))?;
    if !addr.ip().is_loopback() {
        return Err(format!(
            "{addr} is not a loopback address: the metrics listener is unauthenticated, so it \
             binds only 127.0.0.0/8 or [::1]"
        ));
    }
    Ok(addr)
}

/// Binds the metrics listener when `addr` is set and serves it in the background; the error is
/// the one-line message the operator sees.
pub(crate) async fn start(addr: Option<SocketAddr>) -> Result<(), String> {
    let Some(addr) = addr else {
        return Ok(());
    };
    let listener = crate::serve::bind(addr, "metrics listener").await?;
    tracing::info!(%addr, "metrics listening (plain HTTP, GET {METRICS_PATH})");
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(serve_one(stream));
                }
                Err(err) => {
                    tracing::debug!(error = %err, "metrics accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    });
    Ok(())
}

async fn serve_one(stream: tokio::net::TcpStream) {
    let service = service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
        Ok::<_, Infallible>(answer(req.method(), req.uri().path()))
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(std::time::Duration::from_secs(10));
    if let Err(err) = builder
        .serve_connection(TokioIo::new(stream), service)
        .await
    {
        tracing::debug!(error = %err, "metrics connection ended");
    }
}

fn answer(method: &hyper::Method, path: &str) -> hyper::Response<Full<Bytes>> {
    let (status, content_type, body) = if path != METRICS_PATH {
        (404, "text/plain; charset=utf-8", "not found\n".to_owned())
    } else if method != hyper::Method::GET && method != hyper::Method::HEAD {
        (
            405,
            "text/plain; charset=utf-8",
            "method not allowed\n".to_owned(),
        )
    } else {
        match render() {
            Ok(text) => (
                200,
                prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
                text,
            ),
            Err(_) => (
                500,
                "text/plain; charset=utf-8",
                "encoding failed\n".to_owned(),
            ),
        }
    };
    let mut response = hyper::Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_listen_refuses_non_loopback() {
        assert_eq!(
            parse_listen("127.0.0.1:9090").unwrap(),
            "127.0.0.1:9090".parse::<SocketAddr>().unwrap()
        );
        assert!(parse_listen("[::1]:9090").is_ok());
        assert!(parse_listen("127.0.0.2:9090").is_ok());
        for bad in ["0.0.0.0:9090", "10.0.0.1:9090", "[::]:9090"] {
            let err = parse_listen(bad).unwrap_err();
            assert!(err.contains("not a loopback address"), "{bad}: {err}");
        }
        assert!(
            parse_listen("localhost:9090")
                .unwrap_err()
                .contains("IP:PORT")
        );
    }

    #[test]
    fn hooks_move_the_families() {
        let _open = connection_opened();
        relayed(true, 10);
        relayed(false, 20);
        handshake(true);
        handshake(false);
        enclave_connect_error();
        enclave_connected();
        connection_ended("enclave error");
        connection_ended("closed");
        enclave_log_stream();
        enclave_log_line();
        let text = render().unwrap();
        for family in [
            "# TYPE nautilus_proxy_open_connections gauge",
            "nautilus_proxy_bytes_total{direction=\"client_to_enclave\"}",
            "nautilus_proxy_bytes_total{direction=\"enclave_to_client\"}",
            "nautilus_proxy_tls_handshakes_total{result=\"ok\"}",
            "nautilus_proxy_tls_handshakes_total{result=\"failed\"}",
            "# TYPE nautilus_proxy_enclave_connect_errors_total counter",
            "nautilus_proxy_enclave_stream_errors_total",
            "nautilus_proxy_enclave_reconnects_total",
            "nautilus_proxy_enclave_log_streams_total",
            "nautilus_proxy_enclave_log_lines_total",
        ] {
            assert!(text.contains(family), "{family} missing:\n{text}");
        }
        assert_eq!(answer(&hyper::Method::GET, "/other").status(), 404);
        assert_eq!(answer(&hyper::Method::POST, METRICS_PATH).status(), 405);
        assert_eq!(answer(&hyper::Method::GET, METRICS_PATH).status(), 200);
    }
}
