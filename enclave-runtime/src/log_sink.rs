//! `--log-sink unix:PATH|vsock:CID:PORT`: the enclave has no console in production, so its
//! formatted log lines (the same tracing output, text or JSON) go over a stream to the host
//! proxy, which prints them marked as the enclave's. Logging never blocks a request: each line
//! is handed to a bounded queue with `try_send`; a full queue (the proxy slow or absent) drops
//! the line and counts it, and the next delivered line says how many were lost. A thread of
//! its own connects, writes, and reconnects with backoff.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncWrite, AsyncWriteExt as _};
use tokio::sync::mpsc;

/// Lines held while the proxy is slow or away (about 1 MiB at typical line lengths).
const QUEUE_LINES: usize = 4096;
/// Reconnect backoff: first step and cap.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Lines dropped because the queue was full or the stream broke mid-line.
static DROPPED: AtomicU64 = AtomicU64::new(0);
/// Lines queued, and lines finished (written or dropped after queueing), for `flush`.
static QUEUED: AtomicU64 = AtomicU64::new(0);
static FINISHED: AtomicU64 = AtomicU64::new(0);
/// Streams opened to the proxy (the first connect and every reconnect).
static CONNECTS: AtomicU64 = AtomicU64::new(0);
/// Set once the sink is running.
static RUNNING: OnceLock<()> = OnceLock::new();

/// Where the log stream goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkAddr {
    /// A Unix socket path (development; `nautilus-proxy dev` listens there).
    Unix(PathBuf),
    /// A vsock address (production: the parent instance is CID 3).
    Vsock {
        /// Context id of the host.
        cid: u32,
        /// Port the proxy's `--enclave-logs vsock:PORT` listens on.
        port: u32,
    },
}

impl std::fmt::Display for SinkAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SinkAddr::Unix(path) => write!(f, "unix:{}", path.display()),
            SinkAddr::Vsock { cid, port } => write!(f, "vsock:{cid}:{port}"),
        }
    }
}

/// Parses `--log-sink`.
pub(crate) fn parse_addr(text: &str) -> Result<SinkAddr, String> {
    if let Some(path) = text.strip_prefix("unix:") {
        if path.is_empty() {
            return Err("unix: needs a socket path, e.g. unix:/run/nautilus/logs.sock".into());
        }
        return Ok(SinkAddr::Unix(PathBuf::from(path)));
    }
    if let Some(rest) = text.strip_prefix("vsock:") {
        let parsed = rest
            .split_once(':')
            .and_then(|(cid, port)| Some((cid.parse().ok()?, port.parse().ok()?)));
        return parsed
            .map(|(cid, port)| SinkAddr::Vsock { cid, port })
            .ok_or_else(|| format!("vsock: needs CID:PORT, got {rest:?}"));
    }
    Err(format!(
        "expected unix:PATH or vsock:CID:PORT, got {text:?}"
    ))
}

/// Lines dropped so far.
pub(crate) fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// Streams opened to the proxy so far (1 + reconnects once connected).
pub(crate) fn connects() -> u64 {
    CONNECTS.load(Ordering::Relaxed)
}

/// The tracing writer: each event's formatted bytes become one queued line.
#[derive(Clone)]
pub(crate) struct SinkWriter {
    tx: mpsc::Sender<Vec<u8>>,
}

/// One event being formatted; queued when the formatter drops it.
pub(crate) struct LineWriter {
    tx: mpsc::Sender<Vec<u8>>,
    line: Vec<u8>,
}

impl std::io::Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.line.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if self.line.is_empty() {
            return;
        }
        let mut line = std::mem::take(&mut self.line);
        if line.last() != Some(&b'\n') {
            line.push(b'\n');
        }
        QUEUED.fetch_add(1, Ordering::Relaxed);
        if self.tx.try_send(line).is_err() {
            DROPPED.fetch_add(1, Ordering::Relaxed);
            FINISHED.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for SinkWriter {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter {
            tx: self.tx.clone(),
            line: Vec::new(),
        }
    }
}

/// Starts the sender thread for `addr` and returns the writer for the subscriber; `json` says
/// how to word the "lines dropped" notice.
pub(crate) fn start(addr: SinkAddr, json: bool) -> std::io::Result<SinkWriter> {
    let (tx, rx) = mpsc::channel(QUEUE_LINES);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("log-sink".into())
        .spawn(move || runtime.block_on(pump(addr, rx, json)))?;
    let _ = RUNNING.set(());
    Ok(SinkWriter { tx })
}

/// Installs the global subscriber writing to the sink at `addr` (stderr if the sender thread
/// cannot start).
pub(crate) fn init_logging(filter: tracing_subscriber::EnvFilter, addr: &SinkAddr, json: bool) {
    let writer = match start(addr.clone(), json) {
        Ok(writer) => writer,
        Err(err) => {
            eprintln!("error: cannot start the log sink {addr}: {err}; logging to stderr");
            let builder = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::io::stderr);
            let _ = if json {
                builder.json().try_init()
            } else {
                builder.try_init()
            };
            return;
        }
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Waits (up to `limit`) until every queued line was written or dropped, so the last lines
/// before exit reach the proxy.
pub(crate) fn flush(limit: Duration) {
    if RUNNING.get().is_none() {
        return;
    }
    let deadline = std::time::Instant::now() + limit;
    while FINISHED.load(Ordering::Relaxed) < QUEUED.load(Ordering::Relaxed)
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(5));
    }
}

trait SinkStream: AsyncWrite + Unpin + Send {}
impl<T: AsyncWrite + Unpin + Send> SinkStream for T {}

async fn connect(addr: &SinkAddr) -> std::io::Result<Box<dyn SinkStream>> {
    match addr {
        SinkAddr::Unix(path) => Ok(Box::new(tokio::net::UnixStream::connect(path).await?)),
        SinkAddr::Vsock { cid, port } => Ok(Box::new(
            tokio_vsock::VsockStream::connect(tokio_vsock::VsockAddr::new(*cid, *port)).await?,
        )),
    }
}

/// The "lines dropped" notice in the subscriber's format.
fn dropped_notice(count: u64, json: bool) -> Vec<u8> {
    let message = format!("{count} log lines dropped: the log sink was slow or unreachable");
    if json {
        format!(
            "{{\"level\":\"WARN\",\"fields\":{{\"message\":\"{message}\",\"dropped\":{count}}},\"target\":\"nautilus_enclave::log_sink\"}}\n"
        )
        .into_bytes()
    } else {
        format!("WARN nautilus_enclave::log_sink: {message}\n").into_bytes()
    }
}

/// Connects, drains the queue into the stream, and reconnects with backoff when it breaks.
async fn pump(addr: SinkAddr, mut rx: mpsc::Receiver<Vec<u8>>, json: bool) {
    let mut backoff = FIRST_BACKOFF;
    let mut reported = 0;
    loop {
        let mut stream = match connect(&addr).await {
            Ok(stream) => stream,
            Err(err) => {
                // Logging about the log sink would feed itself; the proxy sees the gap in the
                // "dropped" notice and in the metrics instead.
                if backoff == FIRST_BACKOFF {
                    let _ = writeln!(std::io::stderr(), "log sink {addr}: {err}");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        CONNECTS.fetch_add(1, Ordering::Relaxed);
        backoff = FIRST_BACKOFF;
        loop {
            let lost = DROPPED.load(Ordering::Relaxed);
            if lost > reported {
                if stream
                    .write_all(&dropped_notice(lost - reported, json))
                    .await
                    .is_err()
                {
                    break;
                }
                reported = lost;
            }
            let Some(line) = rx.recv().await else {
                let _ = stream.flush().await;
                return;
            };
            let written = stream.write_all(&line).await;
            if written.is_err() {
                DROPPED.fetch_add(1, Ordering::Relaxed);
            }
            FINISHED.fetch_add(1, Ordering::Relaxed);
            if written.is_err() {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncBufReadExt as _;

    #[test]
    fn parses_addresses() {
        assert_eq!(
            parse_addr("unix:/tmp/l.sock"),
            Ok(SinkAddr::Unix("/tmp/l.sock".into()))
        );
        assert_eq!(
            parse_addr("vsock:3:9001"),
            Ok(SinkAddr::Vsock { cid: 3, port: 9001 })
        );
        for bad in ["unix:", "vsock:3", "vsock:x:1", "tcp:1"] {
            assert!(parse_addr(bad).is_err(), "{bad}");
        }
        assert_eq!(SinkAddr::Vsock { cid: 3, port: 9 }.to_string(), "vsock:3:9");
    }

    #[test]
    fn a_full_queue_drops_and_counts_without_blocking() {
        let (tx, _rx) = mpsc::channel(2);
        let writer = SinkWriter { tx };
        let before = dropped();
        for n in 0..5 {
            let mut line = tracing_subscriber::fmt::MakeWriter::make_writer(&writer);
            write!(line, "line {n}").unwrap();
        }
        assert!(dropped() - before >= 3);
    }

    #[tokio::test]
    async fn lines_reach_the_listener_after_it_comes_up() {
        let dir = std::env::temp_dir().join(format!("nautilus-sink-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("logs.sock");
        let _ = std::fs::remove_file(&path);
        let writer = start(SinkAddr::Unix(path.clone()), false).unwrap();
        {
            let mut line = tracing_subscriber::fmt::MakeWriter::make_writer(&writer);
            write!(line, "before the proxy listens").unwrap();
        }
        // The pump retries with backoff until the listener exists.
        tokio::time::sleep(Duration::from_millis(150)).await;
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        {
            let mut line = tracing_subscriber::fmt::MakeWriter::make_writer(&writer);
            writeln!(line, "after").unwrap();
        }
        let mut lines = tokio::io::BufReader::new(stream).lines();
        let first = lines.next_line().await.unwrap().unwrap();
        let first = if first.contains("lines dropped") {
            lines.next_line().await.unwrap().unwrap()
        } else {
            first
        };
        assert_eq!(first, "before the proxy listens");
        assert_eq!(lines.next_line().await.unwrap().unwrap(), "after");
        let _ = std::fs::remove_file(&path);
    }
}
