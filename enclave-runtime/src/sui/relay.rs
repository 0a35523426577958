//! The enclave's way out to a Sui full node: one stream to the proxy's relay, one
//! `CONNECT host:port` line, then raw bytes. TLS runs on top, inside the enclave, so the proxy
//! relays ciphertext only.

use std::io;
use std::path::PathBuf;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A duplex byte stream through the relay.
pub(crate) trait RelayIo: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> RelayIo for T {}

/// Where the proxy's relay listens, as the enclave reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RelayAddr {
    /// A Unix socket (development).
    Unix(PathBuf),
    /// vsock (production; the host is CID 3).
    Vsock {
        /// Context id of the host.
        cid: u32,
        /// The relay's port.
        port: u32,
    },
}

impl std::str::FromStr for RelayAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(path) = s.strip_prefix("unix:").filter(|p| !p.is_empty()) {
            return Ok(RelayAddr::Unix(PathBuf::from(path)));
        }
        if let Some((cid, port)) = s.strip_prefix("vsock:").and_then(|r| r.split_once(':')) {
            let cid = cid.parse().map_err(|_| format!("bad vsock CID in {s:?}"))?;
            let port = port
                .parse()
                .map_err(|_| format!("bad vsock port in {s:?}"))?;
            return Ok(RelayAddr::Vsock { cid, port });
        }
        Err(format!(
            "--sui-relay must be unix:PATH or vsock:CID:PORT, got {s:?}"
        ))
    }
}

/// Longest relay answer line read.
const MAX_ANSWER: usize = 512;

/// Opens a byte pipe to `node` (`host:port`) through the relay at `relay`.
pub(crate) async fn open(relay: &RelayAddr, node: &str) -> io::Result<Box<dyn RelayIo>> {
    let mut stream: Box<dyn RelayIo> = match relay {
        RelayAddr::Unix(path) => Box::new(tokio::net::UnixStream::connect(path).await?),
        RelayAddr::Vsock { cid, port } => Box::new(
            tokio_vsock::VsockStream::connect(tokio_vsock::VsockAddr::new(*cid, *port)).await?,
        ),
    };
    stream
        .write_all(format!("CONNECT {node}\n").as_bytes())
        .await?;
    // Byte by byte so no TLS byte after the answer is consumed with it.
    let mut line = Vec::with_capacity(16);
    loop {
        let byte = stream.read_u8().await?;
        if byte == b'\n' {
            break;
        }
        if line.len() >= MAX_ANSWER {
            return Err(io::Error::other("the relay's answer is too long"));
        }
        line.push(byte);
    }
    if line == b"OK" {
        return Ok(stream);
    }
    let answer = String::from_utf8_lossy(&line).into_owned();
    let kind = if answer.starts_with("DENIED") {
        io::ErrorKind::PermissionDenied
    } else {
        io::ErrorKind::ConnectionRefused
    };
    Err(io::Error::new(
        kind,
        format!("relay refused {node}: {answer}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_addresses_parse() {
        assert_eq!(
            "unix:/d/sui-relay.sock".parse::<RelayAddr>(),
            Ok(RelayAddr::Unix("/d/sui-relay.sock".into()))
        );
        assert_eq!(
            "vsock:3:7001".parse::<RelayAddr>(),
            Ok(RelayAddr::Vsock { cid: 3, port: 7001 })
        );
        for bad in ["unix:", "vsock:3", "tcp:1.2.3.4:5"] {
            assert!(bad.parse::<RelayAddr>().is_err(), "{bad}");
        }
    }
}
