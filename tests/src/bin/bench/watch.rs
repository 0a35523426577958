//! Watch streams for the fan-out figure: one TLS connection per watcher, the chunked body read
//! line by line, and the arrival time of each event that carries a `bench-seq` label.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::rt::TokioIo;
use nautilus_tests::client::Connection;
use rustls::pki_types::ServerName;

use crate::load::{BodyTemplate, auth};

/// An open watch: the response body still streaming.
pub(crate) struct WatchStream {
    // Kept so hyper does not wind the connection down while the body streams.
    _sender: hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    body: hyper::body::Incoming,
    buf: Vec<u8>,
}

/// Opens `path` (a `?watch=true` URL) and waits for the 200 header, so the watch is registered.
pub(crate) async fn open(
    port: u16,
    tls: Arc<rustls::ClientConfig>,
    token: &str,
    path: &str,
) -> Result<WatchStream, String> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    let name = ServerName::try_from("127.0.0.1").map_err(|e| e.to_string())?;
    let stream = tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let request = hyper::Request::builder()
        .method("GET")
        .uri(path)
        .header("host", "127.0.0.1")
        .header("authorization", format!("Bearer {token}"))
        .header("accept", "application/json")
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("request: {e}"))?;
    if response.status() != 200 {
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
            .unwrap_or_default();
        return Err(format!("watch answered {status}: {body}"));
    }
    Ok(WatchStream {
        _sender: sender,
        body: response.into_body(),
        buf: Vec::with_capacity(8192),
    })
}

impl WatchStream {
    /// The next event line and when it was read; `None` when the stream ends or, with `idle`,
    /// when nothing arrived for that long.
    async fn next_line(&mut self, idle: Option<Duration>) -> Option<(Vec<u8>, Instant)> {
        // Bytes of `buf` already searched for a newline: a long line that arrives in pieces is
        // scanned once, not once per piece (the client shares the two cores with the servers).
        let mut scanned = 0;
        loop {
            if let Some(end) = memchr::memchr(b'\n', &self.buf[scanned..]) {
                let end = scanned + end;
                let rest = self.buf.split_off(end + 1);
                let line = std::mem::replace(&mut self.buf, rest);
                return Some((line, Instant::now()));
            }
            scanned = self.buf.len();
            let frame = match idle {
                Some(idle) => tokio::time::timeout(idle, self.body.frame()).await.ok()?,
                None => self.body.frame().await,
            };
            if let Ok(data) = frame?.ok()?.into_data() {
                self.buf.extend_from_slice(&data);
            }
        }
    }

    /// Reads until `want` creations were seen or the stream ends; returns `(seq, arrival)` for
    /// each `ADDED` event line with a `bench-seq` label. Later events of the same objects (a
    /// scheduler marking them unschedulable, say) are not deliveries of the change measured.
    pub(crate) async fn collect(mut self, want: usize) -> Vec<(usize, Instant)> {
        const ADDED: &[u8] = b"{\"type\":\"ADDED\"";
        let mut seen = Vec::with_capacity(want);
        while seen.len() < want {
            let Some((line, at)) = self.next_line(None).await else {
                break;
            };
            if line.starts_with(ADDED)
                && let Some(seq) = seq_of(&line)
            {
                seen.push((seq, at));
            }
        }
        seen
    }

    /// Reads until `want` distinct objects were seen bound to a node (an event line with a
    /// `nodeName` and a `bench-seq` label) or nothing new arrived for `idle`; returns each
    /// object's `(seq, first time seen bound)`.
    pub(crate) async fn collect_bound(
        mut self,
        want: usize,
        idle: Duration,
    ) -> Vec<(usize, Instant)> {
        const BOUND: &[u8] = b"\"nodeName\":\"";
        let mut seen = std::collections::HashSet::with_capacity(want);
        let mut bound = Vec::with_capacity(want);
        while bound.len() < want {
            let Some((line, at)) = self.next_line(Some(idle)).await else {
                break;
            };
            if memchr::memmem::find(&line, BOUND).is_some()
                && let Some(seq) = seq_of(&line)
                && seen.insert(seq)
            {
                bound.push((seq, at));
            }
        }
        bound
    }
}

/// The value of the `bench-seq` label in an event line (`"bench-seq":"123"`).
fn seq_of(line: &[u8]) -> Option<usize> {
    const KEY: &[u8] = b"\"bench-seq\":\"";
    let start = memchr::memmem::find(line, KEY)? + KEY.len();
    let digits = line.get(start..)?;
    let len = digits.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(digits.get(..len)?).ok()?.parse().ok()
}

/// What one fan-out run measured.
pub(crate) struct FanOut {
    /// Time to open every watch (64 at a time).
    pub(crate) open_time: Duration,
    /// Every delivery's latency (creation sent → event line read), sorted.
    pub(crate) latencies: Vec<Duration>,
    /// Watchers that saw every change.
    pub(crate) complete: usize,
    /// The writer's create latencies, sorted.
    pub(crate) write_latency: Vec<Duration>,
    /// Per change, the time until the last watcher saw it, sorted.
    pub(crate) last_per_change: Vec<Duration>,
    /// CPU seconds the server's processes and this client used from the first creation to the
    /// last delivery: a figure the machine's noise moves less than latency.
    pub(crate) server_cpu: f64,
    pub(crate) client_cpu: f64,
}

/// CPU seconds used so far by `pids` together.
fn cpu_of(pids: &[u32]) -> f64 {
    pids.iter()
        .filter_map(|&pid| nautilus_tests::procfs::cpu_secs(pid))
        .sum()
}

/// Opens `watchers` watches of `watch_path` (one TLS connection each), then creates `changes`
/// pods from `template` in namespace `bench`, `gap` apart, and times every delivery and the CPU
/// that `server_pids` and this client used for them. The same client code runs against any
/// server (ours or kube-apiserver).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn fan_out(
    port: u16,
    tls: Arc<rustls::ClientConfig>,
    token: String,
    watch_path: String,
    template: Arc<BodyTemplate>,
    watchers: usize,
    changes: usize,
    gap: Duration,
    server_pids: &[u32],
) -> Result<FanOut, String> {
    let template = Arc::new(template.unscheduled());
    let opening = Instant::now();
    let gate = Arc::new(tokio::sync::Semaphore::new(64));
    let mut opens = Vec::with_capacity(watchers);
    for _ in 0..watchers {
        let (gate, tls, token, path) =
            (gate.clone(), tls.clone(), token.clone(), watch_path.clone());
        opens.push(tokio::spawn(async move {
            let _permit = gate.acquire().await.map_err(|e| e.to_string())?;
            open(port, tls, &token, &path).await
        }));
    }
    let mut streams = Vec::with_capacity(watchers);
    for opened in opens {
        streams.push(opened.await.map_err(|e| e.to_string())??);
    }
    let open_time = opening.elapsed();
    let deadline =
        Instant::now() + gap * u32::try_from(changes).unwrap_or(u32::MAX) + Duration::from_secs(15);
    let collectors: Vec<_> = streams
        .into_iter()
        .map(|s| {
            tokio::spawn(async move {
                tokio::time::timeout_at(deadline.into(), s.collect(changes))
                    .await
                    .unwrap_or_default()
            })
        })
        .collect();
    let mut writer = Connection::open(port, tls.clone()).await?;
    let headers = auth(&token);
    let cpu_before = (cpu_of(server_pids), cpu_of(&[std::process::id()]));
    let mut sent = Vec::with_capacity(changes);
    let mut write_latency = Vec::with_capacity(changes);
    for seq in 0..changes {
        let body = template.body(&format!("w-{seq:06}"), seq);
        let t = Instant::now();
        let reply = writer
            .send(
                "POST",
                "/api/v1/namespaces/bench/pods",
                Some(&body),
                &headers,
            )
            .await?;
        write_latency.push(t.elapsed());
        if reply.status != 201 {
            return Err(format!("create w-{seq}: {}", reply.status));
        }
        sent.push(t);
        tokio::time::sleep(gap).await;
    }
    let mut latencies = Vec::with_capacity(watchers * changes);
    let mut last_per_change = vec![Duration::ZERO; changes];
    let mut complete = 0usize;
    for c in collectors {
        let seen = c.await.map_err(|e| e.to_string())?;
        if seen.len() >= changes {
            complete += 1;
        }
        for (seq, at) in seen {
            if let (Some(t), Some(last)) = (sent.get(seq), last_per_change.get_mut(seq)) {
                let took = at.saturating_duration_since(*t);
                *last = (*last).max(took);
                latencies.push(took);
            }
        }
    }
    let server_cpu = cpu_of(server_pids) - cpu_before.0;
    let client_cpu = cpu_of(&[std::process::id()]) - cpu_before.1;
    write_latency.sort_unstable();
    latencies.sort_unstable();
    last_per_change.sort_unstable();
    Ok(FanOut {
        open_time,
        latencies,
        complete,
        write_latency,
        last_per_change,
        server_cpu,
        client_cpu,
    })
}
