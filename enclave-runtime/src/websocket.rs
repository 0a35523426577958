//! RFC 6455 framing as a server speaks it: the handshake's accept key, a frame-head parser for
//! the client's (masked) frames and the server's unmasked frames. Payloads are never collected
//! here: callers stream them in chunks they bound, so no frame is held whole, whatever length a
//! client announces. Used by the K3s agent tunnel and by the kubelet stream translator.

use std::io;

use base64::Engine as _;
use sha1::Digest as _;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

/// RFC 6455's key suffix for `Sec-WebSocket-Accept`.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

pub(crate) const CONTINUATION: u8 = 0x0;
pub(crate) const TEXT: u8 = 0x1;
pub(crate) const BINARY: u8 = 0x2;
pub(crate) const CLOSE: u8 = 0x8;
pub(crate) const PING: u8 = 0x9;
pub(crate) const PONG: u8 = 0xA;

/// Close code 1000: the normal end of a connection.
pub(crate) const NORMAL_CLOSURE: u16 = 1000;
/// Close code 1002: the peer broke the protocol.
pub(crate) const PROTOCOL_ERROR: u16 = 1002;
/// A control frame's payload limit (RFC 6455 §5.5).
pub(crate) const MAX_CONTROL_PAYLOAD: usize = 125;

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`.
pub(crate) fn accept_key(key: &str) -> String {
    let digest = sha1::Sha1::digest(format!("{}{GUID}", key.trim()).as_bytes());
    base64::engine::general_purpose::STANDARD.encode(digest)
}

/// kube's `wsstream.IsWebSocketRequest`: `Upgrade: websocket` and a `Connection` naming
/// `upgrade`.
pub(crate) fn is_websocket_request(headers: &hyper::HeaderMap) -> bool {
    let upgrade = headers
        .get(hyper::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let connection = headers
        .get_all(hyper::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("upgrade"));
    upgrade && connection
}

/// The subprotocols a client offers, in its order (every `Sec-WebSocket-Protocol` line, split at
/// commas, as gorilla/websocket's `Subprotocols` reads them).
pub(crate) fn offered_protocols(headers: &hyper::HeaderMap) -> Vec<String> {
    headers
        .get_all(hyper::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

/// The server's half of the opening handshake: the `Sec-WebSocket-Accept` for a valid request
/// (GET, version 13, a key of 16 base64 bytes, as gorilla's `Upgrader` checks), or why not.
pub(crate) fn handshake_accept(
    method: &hyper::Method,
    headers: &hyper::HeaderMap,
) -> Result<String, &'static str> {
    if method != hyper::Method::GET {
        return Err(
            "websocket: the client is not using the websocket protocol: request method is not GET",
        );
    }
    if !is_websocket_request(headers) {
        return Err(
            "websocket: the client is not using the websocket protocol: 'upgrade' token not found in 'Connection' header",
        );
    }
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    if header(hyper::header::SEC_WEBSOCKET_VERSION) != Some("13") {
        return Err(
            "websocket: unsupported version: 13 not found in 'Sec-Websocket-Version' header",
        );
    }
    let key = header(hyper::header::SEC_WEBSOCKET_KEY)
        .unwrap_or("")
        .trim();
    let decoded = base64::engine::general_purpose::STANDARD.decode(key);
    if !decoded.is_ok_and(|k| k.len() == 16) {
        return Err(
            "websocket: not a websocket handshake: 'Sec-WebSocket-Key' header must be Base64 encoded value of 16-byte length",
        );
    }
    Ok(accept_key(key))
}

/// A `101 Switching Protocols` completing the handshake, with `protocol` chosen if any.
pub(crate) fn switching_protocols(
    accept: &str,
    protocol: Option<&str>,
) -> hyper::Response<crate::http::ResponseBody> {
    use hyper::header::{CONNECTION, HeaderValue, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_PROTOCOL};
    let mut response = hyper::Response::new(crate::http::ResponseBody::Full(None));
    *response.status_mut() = hyper::StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(
        hyper::header::UPGRADE,
        HeaderValue::from_static("websocket"),
    );
    headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(accept) = HeaderValue::from_str(accept) {
        headers.insert(SEC_WEBSOCKET_ACCEPT, accept);
    }
    if let Some(protocol) = protocol.and_then(|p| HeaderValue::from_str(p).ok()) {
        headers.insert(SEC_WEBSOCKET_PROTOCOL, protocol);
    }
    response
}

/// Why a client's frame breaks the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameError {
    /// RSV1-3 set: no extension was negotiated.
    ReservedBits,
    /// An opcode RFC 6455 reserves.
    UnknownOpcode(u8),
    /// A control frame longer than 125 bytes or fragmented.
    BadControlFrame,
    /// A client's frame without a mask (§5.1: the server closes the connection).
    Unmasked,
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ReservedBits => f.write_str("reserved bits set"),
            Self::UnknownOpcode(op) => write!(f, "unknown opcode {op}"),
            Self::BadControlFrame => f.write_str("control frame too long or fragmented"),
            Self::Unmasked => f.write_str("unmasked client frame"),
        }
    }
}

/// A client frame's head; its payload (`len` bytes, masked with `mask`) follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head {
    pub(crate) fin: bool,
    pub(crate) opcode: u8,
    pub(crate) mask: [u8; 4],
    pub(crate) len: u64,
}

impl Head {
    /// How many bytes the head takes, known from its first two bytes.
    pub(crate) fn size(first_two: [u8; 2]) -> usize {
        let ext = match first_two[1] & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let mask = if first_two[1] & 0x80 != 0 { 4 } else { 0 };
        2 + ext + mask
    }

    /// Parses a whole head (`bytes.len() == Head::size(..)`); `None` when `bytes` is shorter.
    pub(crate) fn parse(bytes: &[u8]) -> Option<Result<Self, FrameError>> {
        let (&b0, &b1) = (bytes.first()?, bytes.get(1)?);
        let size = Self::size([b0, b1]);
        let head = bytes.get(..size)?;
        let opcode = b0 & 0x0f;
        let fin = b0 & 0x80 != 0;
        let ext = head.get(2..size.saturating_sub(if b1 & 0x80 != 0 { 4 } else { 0 }))?;
        let len = match ext.len() {
            2 => u64::from(u16::from_be_bytes([*ext.first()?, *ext.get(1)?])),
            8 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(ext);
                u64::from_be_bytes(b)
            }
            _ => u64::from(b1 & 0x7f),
        };
        let checked = || {
            if b0 & 0x70 != 0 {
                return Err(FrameError::ReservedBits);
            }
            if !matches!(opcode, CONTINUATION | TEXT | BINARY | CLOSE | PING | PONG) {
                return Err(FrameError::UnknownOpcode(opcode));
            }
            if opcode >= CLOSE && (!fin || len > MAX_CONTROL_PAYLOAD as u64) {
                return Err(FrameError::BadControlFrame);
            }
            if b1 & 0x80 == 0 {
                return Err(FrameError::Unmasked);
            }
            Ok(())
        };
        if let Err(e) = checked() {
            return Some(Err(e));
        }
        let mut mask = [0u8; 4];
        mask.copy_from_slice(head.get(size - 4..size)?);
        Some(Ok(Self {
            fin,
            opcode,
            mask,
            len,
        }))
    }

    /// Whether this is a control frame (close, ping, pong).
    pub(crate) fn is_control(&self) -> bool {
        self.opcode >= CLOSE
    }
}

/// Unmasks `bytes`, which start `offset` bytes into a payload masked with `mask`.
pub(crate) fn unmask(mask: [u8; 4], offset: u64, bytes: &mut [u8]) {
    let start = usize::try_from(offset % 4).unwrap_or(0);
    for (byte, key) in bytes.iter_mut().zip(mask.iter().cycle().skip(start)) {
        *byte ^= key;
    }
}

/// A server frame's head (FIN set, no mask) for a payload of `len` bytes.
pub(crate) fn server_head(opcode: u8, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(10);
    out.push(0x80 | opcode);
    match u16::try_from(len) {
        Ok(short) if short < 126 => out.push(u8::try_from(short).unwrap_or(125)),
        Ok(medium) => {
            out.push(126);
            out.extend_from_slice(&medium.to_be_bytes());
        }
        Err(_) => {
            out.push(127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    out
}

/// One server frame whose payload is the concatenation of `parts`.
pub(crate) fn server_frame(opcode: u8, parts: &[&[u8]]) -> Vec<u8> {
    let len = parts.iter().map(|p| p.len()).sum();
    let mut out = server_head(opcode, len);
    out.reserve(len);
    for part in parts {
        out.extend_from_slice(part);
    }
    out
}

/// A control frame (at most 125 bytes of `payload` are sent).
pub(crate) fn control_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    server_frame(
        opcode,
        &[payload.get(..MAX_CONTROL_PAYLOAD).unwrap_or(payload)],
    )
}

/// Reads one client frame head from `io`: `Ok(None)` at a clean end of the stream.
pub(crate) async fn read_head<R: AsyncRead + Unpin>(
    io: &mut R,
) -> io::Result<Option<Result<Head, FrameError>>> {
    let mut buf = [0u8; 14];
    let (first, rest) = buf.split_at_mut(2);
    match io.read_exact(first).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let size = Head::size([first[0], first[1]]);
    let more = rest
        .get_mut(..size - 2)
        .ok_or_else(|| io::Error::other("frame head size"))?;
    io.read_exact(more).await?;
    Head::parse(buf.get(..size).unwrap_or(&[]))
        .map(Some)
        .ok_or_else(|| io::Error::other("short frame head"))
}

/// The next client frame's head, waiting at most `idle`; `Err` says why the client side ended
/// (a malformed head is answered with a protocol-error close first).
pub(crate) async fn next_client_head<R, W>(
    client: &mut R,
    writer: &tokio::sync::Mutex<Writer<W>>,
    idle: std::time::Duration,
) -> Result<Head, &'static str>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    match tokio::time::timeout(idle, read_head(client)).await {
        Err(_) => Err("idle"),
        Ok(Err(_) | Ok(None)) => Err("the client ended"),
        Ok(Ok(Some(Err(_)))) => {
            let _ = writer.lock().await.close(PROTOCOL_ERROR).await;
            Err("a protocol error")
        }
        Ok(Ok(Some(Ok(head)))) => Ok(head),
    }
}

/// The next piece of `head`'s payload after the `*offset` bytes already read: at most
/// `buf.len()` bytes, unmasked; `offset` moves past it. `None` when the client ended.
pub(crate) async fn read_payload<'b, R: AsyncRead + Unpin>(
    client: &mut R,
    head: &Head,
    offset: &mut u64,
    buf: &'b mut [u8],
) -> Option<&'b mut [u8]> {
    let n = usize::try_from(head.len.saturating_sub(*offset))
        .unwrap_or(usize::MAX)
        .min(buf.len());
    let data = buf.get_mut(..n)?;
    client.read_exact(data).await.ok()?;
    unmask(head.mask, *offset, data);
    *offset += n as u64;
    Some(data)
}

/// The server's side of a connection's writes: frames go out whole, and at most one close.
pub(crate) struct Writer<W> {
    io: W,
    closed: bool,
}

impl<W: AsyncWrite + Unpin> Writer<W> {
    pub(crate) fn new(io: W) -> Self {
        Self { io, closed: false }
    }

    /// Sends one data or control frame (nothing once a close was sent).
    pub(crate) async fn send(&mut self, opcode: u8, parts: &[&[u8]]) -> io::Result<()> {
        if self.closed {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, "closed"));
        }
        self.io.write_all(&server_frame(opcode, parts)).await?;
        self.io.flush().await
    }

    /// Sends a close frame with `code` (once) and ends the write side.
    pub(crate) async fn close(&mut self, code: u16) -> io::Result<()> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        self.io
            .write_all(&control_frame(CLOSE, &code.to_be_bytes()))
            .await?;
        self.io.shutdown().await
    }
}

/// A client frame as gorilla/websocket sends it (masked), for tests.
#[cfg(test)]
pub(crate) fn masked(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37u8, 0xfa, 0x21, 0x3d];
    let mut out = server_head(opcode, payload.len());
    if !fin {
        out[0] &= 0x7f;
    }
    out[1] |= 0x80;
    out.extend_from_slice(&mask);
    out.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_key_is_rfc_6455s_example() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn heads_of_each_length_form_parse() {
        for len in [0usize, 5, 125, 126, 65535, 65536, 1 << 20] {
            let frame = masked(true, BINARY, &vec![7u8; len]);
            let size = Head::size([frame[0], frame[1]]);
            let head = Head::parse(&frame[..size]).unwrap().unwrap();
            assert_eq!(head.len, len as u64);
            assert_eq!(head.opcode, BINARY);
            assert!(head.fin);
            let mut payload = frame[size..].to_vec();
            // Unmasking in two uneven pieces gives the same bytes.
            let (a, b) = payload.split_at_mut(len / 3);
            unmask(head.mask, 0, a);
            unmask(head.mask, a.len() as u64, b);
            assert!(payload.iter().all(|b| *b == 7), "{len}");
        }
    }

    #[test]
    fn a_short_head_asks_for_more_and_bad_heads_are_refused() {
        let frame = masked(true, BINARY, &[1; 300]);
        assert_eq!(Head::parse(&frame[..3]), None);
        assert_eq!(Head::parse(&[]), None);
        // Unmasked (a server's frame).
        let unmasked = server_frame(BINARY, &[b"x"]);
        assert_eq!(Head::parse(&unmasked), Some(Err(FrameError::Unmasked)));
        // Reserved bits, unknown opcodes, long or fragmented control frames.
        let mut rsv = masked(true, BINARY, b"x");
        rsv[0] |= 0x40;
        assert_eq!(Head::parse(&rsv), Some(Err(FrameError::ReservedBits)));
        let odd = masked(true, 0x3, b"x");
        assert_eq!(Head::parse(&odd), Some(Err(FrameError::UnknownOpcode(3))));
        let long_ping = masked(true, PING, &[0; 126]);
        assert_eq!(
            Head::parse(&long_ping[..8]),
            Some(Err(FrameError::BadControlFrame))
        );
        let split_close = masked(false, CLOSE, b"");
        assert_eq!(
            Head::parse(&split_close),
            Some(Err(FrameError::BadControlFrame))
        );
    }

    #[test]
    fn server_frames_use_the_shortest_length() {
        assert_eq!(server_head(BINARY, 0), [0x82, 0]);
        assert_eq!(server_head(BINARY, 125), [0x82, 125]);
        assert_eq!(server_head(BINARY, 126), [0x82, 126, 0, 126]);
        assert_eq!(
            server_head(BINARY, 65536),
            [0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]
        );
        assert_eq!(
            server_frame(BINARY, &[&[1], b"ab"]),
            [0x82, 3, 1, b'a', b'b']
        );
        assert_eq!(control_frame(PONG, &[9; 200]).len(), 2 + 125);
    }

    #[tokio::test]
    async fn heads_are_read_from_a_stream_and_a_clean_end_is_none() {
        let (mut client, mut server) = tokio::io::duplex(1 << 16);
        let frame = masked(false, TEXT, &[3; 70_000]);
        client.write_all(&frame[..20]).await.unwrap();
        let head = read_head(&mut server).await.unwrap().unwrap().unwrap();
        assert_eq!((head.fin, head.opcode, head.len), (false, TEXT, 70_000));
        drop(client);
        let mut rest = Vec::new();
        server.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest.len(), 20 - 14);
        let (client, mut server) = tokio::io::duplex(64);
        drop(client);
        assert!(read_head(&mut server).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_writer_sends_one_close_and_nothing_after() {
        let (client, mut server) = tokio::io::duplex(64);
        let mut w = Writer::new(client);
        w.send(BINARY, &[&[1], b"hi"]).await.unwrap();
        w.close(NORMAL_CLOSURE).await.unwrap();
        w.close(NORMAL_CLOSURE).await.unwrap();
        assert!(w.send(BINARY, &[b"late"]).await.is_err());
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, [0x82, 3, 1, b'h', b'i', 0x88, 2, 0x03, 0xe8]);
    }
}
