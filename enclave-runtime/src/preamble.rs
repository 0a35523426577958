//! The connection preamble: one line the host proxy writes on every enclave stream before the
//! first byte of the client's traffic, carrying the client-certificate identity the proxy
//! verified (empty when there is none):
//!
//! ```text
//! NAUTILUS/1 client-cert-cn=<pct> groups=<pct>,<pct>,...\n
//! ```
//!
//! Values are percent-encoded (every byte outside `A-Z a-z 0-9 - . _ ~` as `%XX`), so neither a
//! space, a comma nor a newline can appear inside one. The proxy always sends the line in
//! proxy-terminated mode, so a client's own bytes come after it and can never be read as one.
//! The line is at most [`MAX_LINE`] bytes; anything longer or malformed closes the connection.
//! Whether the identity counts is the runtime's decision (`--trust-proxy-client-cert`).

use std::pin::Pin;
use std::task::{Context, Poll};

use nautilus_core::auth::CertUser;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, ReadBuf};

/// What every preamble line starts with.
pub(crate) const MAGIC: &[u8] = b"NAUTILUS/1 ";
/// Longest accepted preamble line, newline included.
pub(crate) const MAX_LINE: usize = 4096;
/// Most groups one line may carry.
const MAX_GROUPS: usize = 64;

/// Why a preamble was refused (the connection is then closed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PreambleError {
    /// No newline within [`MAX_LINE`] bytes.
    TooLong,
    /// The stream ended inside the line.
    Truncated,
    /// The line is not `NAUTILUS/1 client-cert-cn=... groups=...`.
    Malformed(&'static str),
    /// Reading failed.
    Io(String),
}

impl std::fmt::Display for PreambleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooLong => write!(f, "preamble longer than {MAX_LINE} bytes"),
            Self::Truncated => write!(f, "stream ended inside the preamble"),
            Self::Malformed(why) => write!(f, "malformed preamble: {why}"),
            Self::Io(e) => write!(f, "reading the preamble failed: {e}"),
        }
    }
}

#[cfg(test)]
use nautilus_wire::preamble::{line, percent_encode as encode};

fn decode(text: &str) -> Result<String, PreambleError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .ok_or(PreambleError::Malformed("truncated percent escape"))?;
            let hex = std::str::from_utf8(hex)
                .map_err(|_| PreambleError::Malformed("bad percent escape"))?;
            let value = u8::from_str_radix(hex, 16)
                .map_err(|_| PreambleError::Malformed("bad percent escape"))?;
            out.push(value);
            i += 3;
        } else if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b);
            i += 1;
        } else {
            return Err(PreambleError::Malformed("unescaped byte in a value"));
        }
    }
    String::from_utf8(out).map_err(|_| PreambleError::Malformed("value is not UTF-8"))
}

/// Parses one preamble line (without its newline): the identity, or `None` when empty.
pub(crate) fn parse(line: &[u8]) -> Result<Option<CertUser>, PreambleError> {
    let rest = line
        .strip_prefix(MAGIC)
        .ok_or(PreambleError::Malformed("missing NAUTILUS/1"))?;
    let rest = std::str::from_utf8(rest).map_err(|_| PreambleError::Malformed("not ASCII"))?;
    let (cn_field, groups_field) = rest
        .split_once(' ')
        .ok_or(PreambleError::Malformed("expected two fields"))?;
    let cn = cn_field
        .strip_prefix("client-cert-cn=")
        .ok_or(PreambleError::Malformed("expected client-cert-cn="))?;
    let groups = groups_field
        .strip_prefix("groups=")
        .ok_or(PreambleError::Malformed("expected groups="))?;
    let name = decode(cn)?;
    let groups: Vec<String> = if groups.is_empty() {
        Vec::new()
    } else {
        groups
            .split(',')
            .take(MAX_GROUPS.saturating_add(1))
            .map(decode)
            .collect::<Result<_, _>>()?
    };
    if groups.len() > MAX_GROUPS {
        return Err(PreambleError::Malformed("too many groups"));
    }
    if name.is_empty() {
        if !groups.is_empty() {
            return Err(PreambleError::Malformed("groups without a name"));
        }
        return Ok(None);
    }
    Ok(Some(CertUser {
        name,
        groups,
        cluster_ca: false,
    }))
}

/// A stream that first yields bytes already read from it.
pub(crate) struct Rewind<S> {
    prefix: Vec<u8>,
    offset: usize,
    inner: S,
}

impl<S> Rewind<S> {
    fn new(prefix: Vec<u8>, inner: S) -> Self {
        Self {
            prefix,
            offset: 0,
            inner,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewind<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if let Some(rest) = this.prefix.get(this.offset..)
            && !rest.is_empty()
        {
            let n = rest.len().min(buf.remaining());
            buf.put_slice(rest.get(..n).unwrap_or_default());
            this.offset += n;
            if this.offset >= this.prefix.len() {
                this.prefix = Vec::new();
                this.offset = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewind<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    // Vectored writes pass through, so hyper queues response chunks (and the budget shares they
    // hold) until they are written instead of copying them into a buffer of its own.
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Reads the preamble if the stream starts with one. `required`: a stream without one is
/// refused (the runtime trusts preamble identities, so a proxy that does not send the line is
/// misconfigured). Returns the identity (if any) and the stream rewound to the first byte after
/// the line (or to its start when there was no line).
pub(crate) async fn read<S: AsyncRead + Unpin>(
    mut stream: S,
    required: bool,
) -> Result<(Option<CertUser>, Rewind<S>), PreambleError> {
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 512];
    loop {
        // Not a preamble: hand everything read so far back (HTTP starts with a method, TLS
        // with 0x16; neither matches the magic's first bytes).
        let compared = buf.len().min(MAGIC.len());
        if buf.get(..compared) != MAGIC.get(..compared) {
            if required {
                return Err(PreambleError::Malformed("missing NAUTILUS/1"));
            }
            return Ok((None, Rewind::new(buf, stream)));
        }
        if let Some(newline) = buf.iter().position(|&b| b == b'\n') {
            let rest = buf.split_off(newline.saturating_add(1));
            buf.truncate(newline);
            let identity = parse(&buf)?;
            return Ok((identity, Rewind::new(rest, stream)));
        }
        if buf.len() >= MAX_LINE {
            return Err(PreambleError::TooLong);
        }
        // Read no further than the line limit, so the buffer stays bounded.
        let want = MAX_LINE.saturating_sub(buf.len()).clamp(1, chunk.len());
        let n = stream
            .read(chunk.get_mut(..want).unwrap_or_default())
            .await
            .map_err(|e| PreambleError::Io(e.to_string()))?;
        if n == 0 {
            if buf.is_empty() && !required {
                return Ok((None, Rewind::new(buf, stream)));
            }
            return Err(PreambleError::Truncated);
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt as _;

    async fn feed(
        input: &[u8],
        required: bool,
    ) -> Result<(Option<CertUser>, Vec<u8>), PreambleError> {
        let (mut tx, rx) = tokio::io::duplex(MAX_LINE * 4);
        tx.write_all(input).await.unwrap();
        drop(tx);
        let (identity, mut rest) = read(rx, required).await?;
        let mut tail = Vec::new();
        rest.read_to_end(&mut tail).await.unwrap();
        Ok((identity, tail))
    }

    fn user(name: &str, groups: &[&str]) -> Option<CertUser> {
        Some(CertUser {
            name: name.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            cluster_ca: false,
        })
    }

    #[tokio::test]
    async fn table() {
        let long = format!(
            "NAUTILUS/1 client-cert-cn={} groups=\n",
            "a".repeat(MAX_LINE)
        );
        type Case<'a> = (
            &'a [u8],
            bool,
            Result<(Option<CertUser>, &'a [u8]), PreambleError>,
        );
        let cases: Vec<Case<'_>> = vec![
            (
                b"NAUTILUS/1 client-cert-cn= groups=\nGET / HTTP/1.1\r\n",
                true,
                Ok((None, b"GET / HTTP/1.1\r\n")),
            ),
            (
                b"NAUTILUS/1 client-cert-cn=alice groups=dev,ops\nX",
                true,
                Ok((user("alice", &["dev", "ops"]), b"X")),
            ),
            (
                b"NAUTILUS/1 client-cert-cn=a%20b%0A groups=system%3Amasters%2Cx\n",
                true,
                Ok((user("a b\n", &["system:masters,x"]), b"")),
            ),
            (
                b"NAUTILUS/1 client-cert-cn=bob groups=\n",
                false,
                Ok((user("bob", &[]), b"")),
            ),
            // No preamble and not required: the bytes are handed on untouched.
            (
                b"GET /api HTTP/1.1\r\n",
                false,
                Ok((None, b"GET /api HTTP/1.1\r\n")),
            ),
            (
                b"\x16\x03\x01\x00\x05hello",
                false,
                Ok((None, b"\x16\x03\x01\x00\x05hello")),
            ),
            (b"", false, Ok((None, b""))),
            (b"NAUT", false, Err(PreambleError::Truncated)),
            (
                b"GET /api HTTP/1.1\r\n",
                true,
                Err(PreambleError::Malformed("missing NAUTILUS/1")),
            ),
            (b"", true, Err(PreambleError::Truncated)),
            (
                b"NAUTILUS/1 client-cert-cn=alice",
                true,
                Err(PreambleError::Truncated),
            ),
            (long.as_bytes(), true, Err(PreambleError::TooLong)),
            (
                b"NAUTILUS/1 client-cert-cn=a b groups=\n",
                true,
                Err(PreambleError::Malformed("expected groups=")),
            ),
            (
                b"NAUTILUS/1 client-cert-cn=a\n",
                true,
                Err(PreambleError::Malformed("expected two fields")),
            ),
            (
                b"NAUTILUS/1 cn=a groups=\n",
                true,
                Err(PreambleError::Malformed("expected client-cert-cn=")),
            ),
            (
                b"NAUTILUS/1 client-cert-cn=a%2 groups=\n",
                true,
                Err(PreambleError::Malformed("truncated percent escape")),
            ),
            (
                b"NAUTILUS/1 client-cert-cn=a%zz groups=\n",
                true,
                Err(PreambleError::Malformed("bad percent escape")),
            ),
            (
                b"NAUTILUS/1 client-cert-cn=%FF groups=\n",
                true,
                Err(PreambleError::Malformed("value is not UTF-8")),
            ),
            (
                b"NAUTILUS/1 client-cert-cn=a\r groups=\n",
                true,
                Err(PreambleError::Malformed("unescaped byte in a value")),
            ),
            (
                b"NAUTILUS/1 client-cert-cn= groups=admins\n",
                true,
                Err(PreambleError::Malformed("groups without a name")),
            ),
            (
                b"NAUTILUS/1 client-cert-cn=\xff groups=\n",
                true,
                Err(PreambleError::Malformed("not ASCII")),
            ),
        ];
        for (input, required, want) in cases {
            let got = feed(input, required).await;
            let want = want.map(|(id, rest)| (id, rest.to_vec()));
            assert_eq!(got, want, "{:?}", String::from_utf8_lossy(input));
        }
    }

    #[tokio::test]
    async fn too_many_groups_are_refused() {
        let groups = vec!["g".to_string(); MAX_GROUPS + 1];
        let text = line("u", &groups);
        assert_eq!(
            feed(text.as_bytes(), true).await,
            Err(PreambleError::Malformed("too many groups"))
        );
        let ok = line("u", groups.get(..MAX_GROUPS).unwrap());
        assert!(feed(ok.as_bytes(), true).await.is_ok());
    }

    #[test]
    fn encoding_round_trips_any_text() {
        for text in [
            "",
            "alice",
            "CN with spaces, commas\nand ünïcode",
            "%41",
            "a=b c",
        ] {
            let encoded = encode(text);
            assert!(
                encoded
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && b != b',' && b != b'=')
            );
            assert_eq!(decode(&encoded).unwrap(), text);
        }
    }

    #[tokio::test]
    async fn a_slow_writer_is_read_byte_by_byte() {
        let (mut tx, rx) = tokio::io::duplex(1);
        let writer = tokio::spawn(async move {
            tx.write_all(b"NAUTILUS/1 client-cert-cn=z groups=\nrest")
                .await
                .unwrap();
        });
        let (identity, mut rest) = read(rx, true).await.unwrap();
        let mut tail = Vec::new();
        rest.read_to_end(&mut tail).await.unwrap();
        writer.await.unwrap();
        assert_eq!(identity, user("z", &[]));
        assert_eq!(tail, b"rest");
    }
}
