//! Opens one byte stream into the enclave per client connection: a Unix socket in development
//! (or one of `dev --replicas`'s sockets), vsock in production. Callers see only
//! `AsyncRead + AsyncWrite`; nothing here reads payloads.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::str::FromStr;

use tokio::io::{AsyncRead, AsyncWrite};

/// A duplex byte stream to the enclave.
pub(crate) trait EnclaveIo: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> EnclaveIo for T {}

/// A boxed enclave stream; boxing keeps the splice code independent of the transport.
pub(crate) type EnclaveStream = Box<dyn EnclaveIo>;

/// Where the enclave listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum EnclaveConnector {
    /// A Unix stream socket (development).
    Unix(PathBuf),
    /// An AF_VSOCK address (production, Nitro enclave).
    Vsock {
        /// Context id of the enclave VM.
        cid: u32,
        /// vsock port the enclave listens on.
        port: u32,
    },
    /// `dev --replicas N`: the leader's socket when known, else any replica's that accepts.
    #[cfg(feature = "dev")]
    Replicas(crate::replica_route::ReplicaSet),
}

impl EnclaveConnector {
    /// Opens a fresh stream into the enclave.
    pub(crate) async fn connect(&self) -> io::Result<EnclaveStream> {
        match self {
            EnclaveConnector::Unix(path) => {
                let stream = tokio::net::UnixStream::connect(path).await?;
                Ok(Box::new(stream))
            }
            EnclaveConnector::Vsock { cid, port } => {
                let addr = tokio_vsock::VsockAddr::new(*cid, *port);
                let stream = tokio_vsock::VsockStream::connect(addr).await?;
                Ok(Box::new(stream))
            }
            #[cfg(feature = "dev")]
            EnclaveConnector::Replicas(set) => Ok(Box::new(set.connect().await?)),
        }
    }
}

/// The connection preamble the proxy writes first on every enclave stream in proxy-terminated
/// TLS mode (contract with `nautilus-enclave`'s `preamble` module):
/// `NAUTILUS/1 client-cert-cn=<pct> groups=<pct>,<pct>\n`, every byte outside
/// `A-Z a-z 0-9 - . _ ~` percent-encoded, empty values when the client showed no certificate.
/// Sent always, so the client's own first line can never be taken for one.
pub(crate) fn preamble(identity: Option<&(String, Vec<String>)>) -> Vec<u8> {
    match identity {
        Some((cn, groups)) => nautilus_wire::preamble::line(cn, groups),
        None => nautilus_wire::preamble::line("", &[]),
    }
    .into_bytes()
}

impl fmt::Display for EnclaveConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnclaveConnector::Unix(path) => write!(f, "unix:{}", path.display()),
            EnclaveConnector::Vsock { cid, port } => write!(f, "vsock:{cid}:{port}"),
            #[cfg(feature = "dev")]
            EnclaveConnector::Replicas(set) => fmt::Display::fmt(set, f),
        }
    }
}

impl FromStr for EnclaveConnector {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("unix: needs a socket path, e.g. unix:/run/nautilus.sock".into());
            }
            return Ok(EnclaveConnector::Unix(PathBuf::from(path)));
        }
        if let Some(rest) = s.strip_prefix("vsock:") {
            let (cid, port) = rest
                .split_once(':')
                .ok_or_else(|| "vsock address must be vsock:CID:PORT".to_string())?;
            let cid = cid
                .parse::<u32>()
                .map_err(|e| format!("bad vsock CID {cid:?}: {e}"))?;
            let port = port
                .parse::<u32>()
                .map_err(|e| format!("bad vsock port {port:?}: {e}"))?;
            return Ok(EnclaveConnector::Vsock { cid, port });
        }
        Err(format!(
            "unknown enclave address {s:?}: use unix:/path/to/sock or vsock:CID:PORT"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses() {
        let cases: &[(&str, Option<EnclaveConnector>)] = &[
            (
                "unix:/tmp/e.sock",
                Some(EnclaveConnector::Unix("/tmp/e.sock".into())),
            ),
            (
                "vsock:16:5000",
                Some(EnclaveConnector::Vsock {
                    cid: 16,
                    port: 5000,
                }),
            ),
            ("unix:", None),
            ("vsock:16", None),
            ("vsock:x:1", None),
            ("vsock:1:99999999999", None),
            ("tcp:127.0.0.1:1", None),
        ];
        for (input, want) in cases {
            assert_eq!(input.parse::<EnclaveConnector>().ok(), *want, "{input}");
        }
    }

    #[test]
    fn preamble_lines() {
        type Case<'a> = (Option<(&'a str, &'a [&'a str])>, &'a str);
        let cases: &[Case<'_>] = &[
            (None, "NAUTILUS/1 client-cert-cn= groups=\n"),
            (
                Some(("alice", &["dev", "ops"])),
                "NAUTILUS/1 client-cert-cn=alice groups=dev,ops\n",
            ),
            (
                Some(("a b\n", &["system:masters,x"])),
                "NAUTILUS/1 client-cert-cn=a%20b%0A groups=system%3Amasters%2Cx\n",
            ),
        ];
        for (identity, want) in cases {
            let identity = identity.map(|(cn, groups)| {
                (
                    cn.to_string(),
                    groups.iter().map(|g| g.to_string()).collect(),
                )
            });
            assert_eq!(preamble(identity.as_ref()), want.as_bytes());
        }
    }

    #[test]
    fn display_round_trips() {
        for s in ["unix:/run/n.sock", "vsock:3:7000"] {
            let parsed: EnclaveConnector = s.parse().unwrap();
            assert_eq!(parsed.to_string(), s);
        }
    }
}
