//! Watch streams for the fan-out figure: one TLS connection per watcher, the chunked body read
//! line by line, and the arrival time of each event that carries a `bench-seq` label.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;

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
    /// Reads until `want` distinct `bench-seq` values were seen or the stream ends; returns
    /// `(seq, arrival)` for each event line that carries one.
    pub(crate) async fn collect(mut self, want: usize) -> Vec<(usize, Instant)> {
        let mut seen = Vec::with_capacity(want);
        while seen.len() < want {
            let Some(Ok(frame)) = self.body.frame().await else {
                break;
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            self.buf.extend_from_slice(&data);
            while let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
                let at = Instant::now();
                let line: Vec<u8> = self.buf.drain(..=end).collect();
                if let Some(seq) = seq_of(&line) {
                    seen.push((seq, at));
                }
            }
        }
        seen
    }
}

/// The value of the `bench-seq` label in an event line (`"bench-seq":"123"`).
fn seq_of(line: &[u8]) -> Option<usize> {
    const KEY: &[u8] = b"\"bench-seq\":\"";
    let start = line.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let digits = line.get(start..)?;
    let len = digits.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(digits.get(..len)?).ok()?.parse().ok()
}
