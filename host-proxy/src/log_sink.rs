//! The enclave's logs reach the operator through the proxy: in production the enclave has no
//! console, so it streams its formatted log lines (text or JSON, newline-terminated) to the
//! address given by `serve --enclave-logs` (`dev` wires a Unix socket itself). Each line is
//! printed on the proxy's stderr marked as the enclave's: JSON lines get a leading
//! `"source":"enclave"` field, text lines an `enclave: ` prefix. Lines are bounded in length
//! and stripped of control characters, so a stream cannot rewrite the operator's terminal.

use std::io::Write as _;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncBufReadExt as _, AsyncRead, BufReader};

/// Longest line kept; the rest of a longer line is dropped and the line marked `…`.
const MAX_LINE: usize = 16 * 1024;
/// Streams served at once (the enclave opens one; a reconnect may briefly overlap the old one).
const MAX_STREAMS: usize = 4;
/// The `vsock` CID that accepts from any peer.
const VMADDR_CID_ANY: u32 = u32::MAX;

/// Where the enclave's log stream is accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum SinkListen {
    /// A Unix socket path (development, and `dev`).
    Unix(PathBuf),
    /// A vsock port on this host (production: the enclave connects to the parent, CID 3).
    Vsock(u32),
}

impl FromStr for SinkListen {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Some(path) = text.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("unix: needs a socket path, e.g. unix:/run/nautilus/logs.sock".into());
            }
            return Ok(SinkListen::Unix(PathBuf::from(path)));
        }
        if let Some(port) = text.strip_prefix("vsock:") {
            return port
                .parse()
                .map(SinkListen::Vsock)
                .map_err(|_| format!("vsock: needs a port number, got {port:?}"));
        }
        Err(format!("expected unix:PATH or vsock:PORT, got {text:?}"))
    }
}

impl std::fmt::Display for SinkListen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SinkListen::Unix(path) => write!(f, "unix:{}", path.display()),
            SinkListen::Vsock(port) => write!(f, "vsock:{port}"),
        }
    }
}

/// Binds `addr` and relays every stream accepted there to stderr in the background; the error
/// is the one line the operator sees.
pub(crate) async fn start(addr: &SinkListen) -> Result<(), String> {
    let what = |e: std::io::Error| format!("error: cannot listen for enclave logs on {addr}: {e}");
    let active = Arc::new(AtomicUsize::new(0));
    match addr {
        SinkListen::Unix(path) => {
            // A socket left by an earlier run would make bind fail, so it goes; a live one (another
            // proxy listening) and anything that is not a socket stay, and bind reports them.
            let stale = std::fs::symlink_metadata(path)
                .is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()))
                && std::os::unix::net::UnixStream::connect(path).is_err();
            if stale {
                let _ = std::fs::remove_file(path);
            }
            let listener = tokio::net::UnixListener::bind(path).map_err(what)?;
            tokio::spawn(async move {
                loop {
                    match listener.accept().await {
                        Ok((stream, _)) => relay_bounded(stream, &active),
                        Err(err) => accept_failed(&err).await,
                    }
                }
            });
        }
        SinkListen::Vsock(port) => {
            let listener = tokio_vsock::VsockListener::bind(tokio_vsock::VsockAddr::new(
                VMADDR_CID_ANY,
                *port,
            ))
            .map_err(what)?;
            tokio::spawn(async move {
                loop {
                    match listener.accept().await {
                        Ok((stream, _)) => relay_bounded(stream, &active),
                        Err(err) => accept_failed(&err).await,
                    }
                }
            });
        }
    }
    tracing::info!(%addr, "accepting the enclave's log stream");
    Ok(())
}

async fn accept_failed(err: &std::io::Error) {
    tracing::debug!(error = %err, "enclave log accept failed");
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
}

fn relay_bounded<S: AsyncRead + Unpin + Send + 'static>(stream: S, active: &Arc<AtomicUsize>) {
    if active.fetch_add(1, Ordering::AcqRel) >= MAX_STREAMS {
        active.fetch_sub(1, Ordering::AcqRel);
        tracing::warn!("too many enclave log streams; closing the new one");
        return;
    }
    crate::metrics::enclave_log_stream();
    let active = Arc::clone(active);
    tokio::spawn(async move {
        if let Err(err) = relay(stream, |line| {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(line.as_bytes());
        })
        .await
        {
            tracing::debug!(error = %err, "enclave log stream ended");
        }
        active.fetch_sub(1, Ordering::AcqRel);
    });
}

/// Reads newline-terminated lines from `stream` until it ends, handing each marked line
/// (newline included) to `emit`.
async fn relay<S: AsyncRead + Unpin>(stream: S, mut emit: impl FnMut(&str)) -> std::io::Result<()> {
    let mut reader = BufReader::with_capacity(64 * 1024, stream);
    let mut line: Vec<u8> = Vec::with_capacity(1024);
    let mut truncated = false;
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            if !line.is_empty() {
                emit(&mark(&line, truncated));
            }
            return Ok(());
        }
        let (chunk, ends_line) = match buf.iter().position(|b| *b == b'\n') {
            Some(at) => (buf.get(..at).unwrap_or_default(), Some(at + 1)),
            None => (buf, None),
        };
        let room = MAX_LINE.saturating_sub(line.len());
        if chunk.len() > room {
            truncated = true;
        }
        line.extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or_default());
        let used = ends_line.unwrap_or(buf.len());
        reader.consume(used);
        if ends_line.is_some() {
            crate::metrics::enclave_log_line();
            emit(&mark(&line, truncated));
            line.clear();
            truncated = false;
        }
    }
}

/// The line as the operator sees it: marked as the enclave's, control characters replaced.
fn mark(line: &[u8], truncated: bool) -> String {
    let text = String::from_utf8_lossy(line);
    let clean: String = text
        .trim_end_matches('\r')
        .chars()
        .map(|c| if c.is_control() && c != '\t' { '?' } else { c })
        .collect();
    let tail = if truncated { "…" } else { "" };
    match clean.strip_prefix('{') {
        // A JSON line stays one JSON object; a truncated one is no longer JSON, so it is
        // printed as text.
        Some(rest) if !truncated => format!("{{\"source\":\"enclave\",{rest}\n"),
        _ => format!("enclave: {clean}{tail}\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses() {
        assert_eq!(
            "unix:/tmp/l.sock".parse::<SinkListen>(),
            Ok(SinkListen::Unix("/tmp/l.sock".into()))
        );
        assert_eq!(
            "vsock:9001".parse::<SinkListen>(),
            Ok(SinkListen::Vsock(9001))
        );
        for bad in ["unix:", "vsock:x", "tcp:1", ""] {
            assert!(bad.parse::<SinkListen>().is_err(), "{bad}");
        }
    }

    #[test]
    fn lines_are_marked_and_cleaned() {
        assert_eq!(
            mark(b"2026-01-01T00:00:00Z DEBUG request method=GET", false),
            "enclave: 2026-01-01T00:00:00Z DEBUG request method=GET\n"
        );
        assert_eq!(
            mark(br#"{"level":"INFO","fields":{}}"#, false),
            "{\"source\":\"enclave\",\"level\":\"INFO\",\"fields\":{}}\n"
        );
        assert_eq!(mark(b"a\x1b[2Jb\r", false), "enclave: a?[2Jb\n");
        assert_eq!(mark(b"{\"cut", true), "enclave: {\"cut…\n");
    }

    #[tokio::test]
    async fn a_live_socket_is_not_taken_over() {
        let dir = std::env::temp_dir().join(format!("nautilus-proxy-sink-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("logs.sock");
        let _ = std::fs::remove_file(&path);
        let addr = SinkListen::Unix(path.clone());
        start(&addr).await.unwrap();
        let err = start(&addr).await.unwrap_err();
        assert!(err.contains("cannot listen for enclave logs"), "{err}");
        assert!(std::os::unix::net::UnixStream::connect(&path).is_ok());
        let _ = std::fs::remove_file(&path);
    }

    #[tokio::test]
    async fn relays_whole_lines_and_bounds_long_ones() {
        let mut input = b"one\ntwo\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', MAX_LINE + 10));
        input.extend(b"\nlast");
        let mut lines = Vec::new();
        relay(&input[..], |l| lines.push(l.to_string()))
            .await
            .unwrap();
        assert_eq!(lines.len(), 4, "{lines:?}");
        assert_eq!(lines.first().map(String::as_str), Some("enclave: one\n"));
        let long = lines.get(2).unwrap();
        assert_eq!(long.len(), "enclave: ".len() + MAX_LINE + "…\n".len());
        assert_eq!(lines.get(3).map(String::as_str), Some("enclave: last\n"));
    }
}
