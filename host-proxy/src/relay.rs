//! The enclave's byte relay: the enclave's only way out. The enclave connects to an
//! enclave-facing endpoint (Unix socket in development, vsock in production), sends one line
//! `CONNECT host:port\n`, and gets `OK\n` and a raw byte pipe to that address, or
//! `DENIED reason\n` when the address is not allowed, or `FAILED reason\n` when it cannot be
//! reached. Allowed are the operator's exact addresses (`--sui-node`, `--kms-endpoint`) and, for
//! pods' kubelets, IP addresses in the operator's kubelet networks on the kubelet ports
//! (`--kubelet-network`, `--kubelet-ports`; dev: loopback on 10250): the enclave names only registered Nodes' addresses,
//! and this allowlist keeps a compromised enclave from reaching anything else. TLS ends inside
//! the enclave, so this side only ever carries ciphertext: it can delay or drop, never read or
//! forge. Replicas of one cluster reach each other the same way (`--replica-peer`, the other
//! proxies' `--replica-peer-listen`). It counts bytes per allowlisted node, and for kubelets together, in
//! [`RelayCounters`], which the metrics module can read.

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use crate::enclave_stream::EnclaveStream;

/// Longest request line accepted (`CONNECT ` + a DNS name of at most 253 bytes + `:65535`).
const MAX_REQUEST_LINE: usize = 300;
/// Deadline for the enclave to send its request line.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Deadline for the TCP connection to a full node.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Most relayed connections open at once; the enclave needs a handful.
const MAX_RELAY_CONNECTIONS: usize = 256;

/// One allowlisted full node, `host:port` as the operator wrote it (host lowercased).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NodeAddr {
    /// DNS name or IP literal (IPv6 without brackets).
    pub(crate) host: String,
    /// TCP port.
    pub(crate) port: u16,
}

impl fmt::Display for NodeAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl FromStr for NodeAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (host, port) = s
            .rsplit_once(':')
            .ok_or_else(|| format!("{s:?} is not HOST:PORT"))?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let valid_host = !host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'_'));
        if !valid_host {
            return Err(format!("{s:?}: bad host name"));
        }
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("{s:?}: bad port"))?;
        Ok(NodeAddr {
            host: host.to_ascii_lowercase(),
            port,
        })
    }
}

/// A network whose addresses may be kubelets (`--kubelet-network`): `ADDR/PREFIX`, or one
/// address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct KubeletNetwork {
    base: IpAddr,
    prefix: u8,
}

impl KubeletNetwork {
    /// Loopback, IPv4 and IPv6: what `dev` allows, its kubelets running on the same machine.
    pub(crate) fn loopback() -> [Self; 2] {
        [
            KubeletNetwork {
                base: IpAddr::from([127, 0, 0, 0]),
                prefix: 8,
            },
            KubeletNetwork {
                base: IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
                prefix: 128,
            },
        ]
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let (base, ip, bits): (u128, u128, u8) = match (self.base, ip) {
            (IpAddr::V4(b), IpAddr::V4(i)) => (u32::from(b).into(), u32::from(i).into(), 32),
            (IpAddr::V6(b), IpAddr::V6(i)) => (u128::from(b), u128::from(i), 128),
            _ => return false,
        };
        let host_bits = u32::from(bits.saturating_sub(self.prefix));
        let mask = if host_bits >= 128 {
            0
        } else {
            (u128::MAX << host_bits) & (u128::MAX >> (128 - u32::from(bits)))
        };
        base & mask == ip & mask
    }
}

impl fmt::Display for KubeletNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

impl FromStr for KubeletNetwork {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = s.split_once('/').map_or((s, None), |(a, p)| (a, Some(p)));
        let base: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?}: not an IP address or ADDR/PREFIX network"))?;
        let max = if base.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: bad prefix length"))?,
        };
        Ok(KubeletNetwork { base, prefix })
    }
}

/// Kubelet ports the relay reaches (`--kubelet-ports`): `PORT` or `LOW-HIGH`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PortRange {
    low: u16,
    high: u16,
}

impl PortRange {
    /// The kubelet's port, 10250 (kube-apiserver's `--kubelet-port` default).
    pub(crate) const KUBELET: PortRange = PortRange {
        low: 10250,
        high: 10250,
    };

    fn contains(self, port: u16) -> bool {
        (self.low..=self.high).contains(&port)
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.low == self.high {
            write!(f, "{}", self.low)
        } else {
            write!(f, "{}-{}", self.low, self.high)
        }
    }
}

impl FromStr for PortRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let port = |p: &str| {
            p.parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("{s:?}: bad port"))
        };
        let (low, high) = match s.split_once('-') {
            Some((l, h)) => (port(l)?, port(h)?),
            None => (port(s)?, port(s)?),
        };
        if low > high {
            return Err(format!("{s:?}: empty port range"));
        }
        Ok(PortRange { low, high })
    }
}

/// Where kubelets may be reached: addresses in `networks` on `ports`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct KubeletAllow {
    /// Kubelet networks.
    pub(crate) networks: Vec<KubeletNetwork>,
    /// Kubelet ports.
    pub(crate) ports: Vec<PortRange>,
}

impl KubeletAllow {
    fn allows(&self, addr: &NodeAddr) -> bool {
        let Ok(ip) = addr.host.parse::<IpAddr>() else {
            return false;
        };
        self.networks.iter().any(|n| n.contains(ip))
            && self.ports.iter().any(|p| p.contains(addr.port))
    }
}

/// Where the relay listens for the enclave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RelayListen {
    /// A Unix stream socket (development).
    Unix(PathBuf),
    /// A vsock port on the host (production: the enclave connects to CID 3 and this port).
    Vsock {
        /// vsock port.
        port: u32,
    },
}

impl fmt::Display for RelayListen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RelayListen::Unix(path) => write!(f, "unix:{}", path.display()),
            RelayListen::Vsock { port } => write!(f, "vsock:{port}"),
        }
    }
}

impl FromStr for RelayListen {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(path) = s.strip_prefix("unix:").filter(|p| !p.is_empty()) {
            return Ok(RelayListen::Unix(PathBuf::from(path)));
        }
        if let Some(port) = s.strip_prefix("vsock:") {
            let port = port
                .parse::<u32>()
                .map_err(|e| format!("bad vsock port {port:?}: {e}"))?;
            return Ok(RelayListen::Vsock { port });
        }
        Err(format!(
            "unknown relay address {s:?}: use unix:/path/to/sock or vsock:PORT"
        ))
    }
}

/// Byte and connection counts of one allowlisted node.
#[derive(Debug)]
pub(crate) struct NodeCounters {
    /// The node.
    pub(crate) node: NodeAddr,
    /// Connections relayed to it.
    pub(crate) connections: AtomicU64,
    /// Bytes from the enclave to the node.
    pub(crate) to_node: AtomicU64,
    /// Bytes from the node to the enclave.
    pub(crate) from_node: AtomicU64,
}

/// The relay's counters, one entry per allowlisted node plus refusals.
#[derive(Debug)]
pub(crate) struct RelayCounters {
    /// Per node, in allowlist order.
    pub(crate) nodes: Vec<NodeCounters>,
    /// `CONNECT` lines refused (not allowlisted, or malformed).
    pub(crate) denied: AtomicU64,
    /// Allowlisted nodes that could not be reached.
    pub(crate) failed: AtomicU64,
    /// All kubelets together (their addresses are many and change).
    pub(crate) kubelets: NodeCounters,
}

impl RelayCounters {
    fn new(allow: &[NodeAddr]) -> Self {
        RelayCounters {
            nodes: allow
                .iter()
                .map(|node| NodeCounters {
                    node: node.clone(),
                    connections: AtomicU64::new(0),
                    to_node: AtomicU64::new(0),
                    from_node: AtomicU64::new(0),
                })
                .collect(),
            denied: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            kubelets: NodeCounters {
                node: NodeAddr {
                    host: "kubelets".into(),
                    port: 0,
                },
                connections: AtomicU64::new(0),
                to_node: AtomicU64::new(0),
                from_node: AtomicU64::new(0),
            },
        }
    }
}

/// The relay's configuration: where it listens and which nodes it reaches.
#[derive(Clone, Debug)]
pub(crate) struct RelayOptions {
    /// Enclave-facing endpoint.
    pub(crate) listen: RelayListen,
    /// The only addresses bytes are forwarded to, besides kubelets.
    pub(crate) allow: Vec<NodeAddr>,
    /// Where kubelets may be reached.
    pub(crate) kubelets: KubeletAllow,
}

/// A bound relay, ready to [`Relay::run`].
pub(crate) struct Relay {
    listener: Listener,
    allow: Arc<Allow>,
    counters: Arc<RelayCounters>,
}

enum Listener {
    Unix(tokio::net::UnixListener),
    Vsock(tokio_vsock::VsockListener),
}

impl Listener {
    async fn accept(&mut self) -> io::Result<EnclaveStream> {
        match self {
            Listener::Unix(l) => Ok(Box::new(l.accept().await?.0)),
            Listener::Vsock(l) => Ok(Box::new(l.accept().await?.0)),
        }
    }
}

impl Relay {
    /// Binds the enclave-facing endpoint. A stale Unix socket file is replaced.
    pub(crate) fn bind(options: &RelayOptions) -> Result<Self, String> {
        let listener = match &options.listen {
            RelayListen::Unix(path) => {
                let _ = std::fs::remove_file(path);
                tokio::net::UnixListener::bind(path)
                    .map(Listener::Unix)
                    .map_err(|e| format!("cannot listen on {}: {e}", options.listen))?
            }
            RelayListen::Vsock { port } => {
                let addr = tokio_vsock::VsockAddr::new(tokio_vsock::VMADDR_CID_ANY, *port);
                tokio_vsock::VsockListener::bind(addr)
                    .map(Listener::Vsock)
                    .map_err(|e| format!("cannot listen on {}: {e}", options.listen))?
            }
        };
        tracing::info!(
            listen = %options.listen,
            nodes = %options.allow.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
            kubelet_networks = %options.kubelets.networks.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
            kubelet_ports = %options.kubelets.ports.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
            "relay listening"
        );
        Ok(Relay {
            listener,
            counters: Arc::new(RelayCounters::new(&options.allow)),
            allow: Arc::new(Allow {
                nodes: options.allow.clone(),
                kubelets: options.kubelets.clone(),
            }),
        })
    }

    /// The counters, shared with whoever reports them.
    // Read by the tests today and by metrics.rs once it exports relay bytes (issue 7).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn counters(&self) -> Arc<RelayCounters> {
        Arc::clone(&self.counters)
    }

    /// Relays until `shutdown` completes; open pipes are then dropped.
    pub(crate) async fn run(mut self, shutdown: impl Future<Output = ()>) {
        let mut tasks = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                accepted = self.listener.accept() => match accepted {
                    Ok(stream) if tasks.len() < MAX_RELAY_CONNECTIONS => {
                        let allow = Arc::clone(&self.allow);
                        let counters = Arc::clone(&self.counters);
                        tasks.spawn(handle(stream, allow, counters));
                    }
                    Ok(stream) => {
                        tracing::warn!(max = MAX_RELAY_CONNECTIONS, "sui relay: too many connections; closing one");
                        drop(stream);
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "sui relay: accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
        tasks.shutdown().await;
    }
}

/// Reads the request line byte by byte so no payload byte is consumed with it.
async fn read_request_line(stream: &mut EnclaveStream) -> Result<String, &'static str> {
    let mut line = Vec::with_capacity(64);
    loop {
        let mut byte = [0u8; 1];
        match stream.read(&mut byte).await {
            Ok(0) | Err(_) => return Err("closed before the request line"),
            Ok(_) if byte == *b"\n" => break,
            Ok(_) if line.len() >= MAX_REQUEST_LINE => return Err("request line too long"),
            Ok(_) => line.extend_from_slice(&byte),
        }
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| "request line is not UTF-8")
}

/// Everything the relay may reach.
struct Allow {
    nodes: Vec<NodeAddr>,
    kubelets: KubeletAllow,
}

/// What a `CONNECT` line may reach.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    /// The allowlisted node at this index.
    Node(usize),
    /// A kubelet address.
    Kubelet(NodeAddr),
}

/// Why a `CONNECT` line is refused, or what it may reach.
fn decide(line: &str, allow: &Allow) -> Result<Target, String> {
    let target = line
        .strip_prefix("CONNECT ")
        .ok_or_else(|| "expected CONNECT host:port".to_string())?;
    let node: NodeAddr = target.trim().parse()?;
    if let Some(index) = allow.nodes.iter().position(|a| *a == node) {
        return Ok(Target::Node(index));
    }
    if allow.kubelets.allows(&node) {
        return Ok(Target::Kubelet(node));
    }
    Err(format!(
        "{node} is not an allowlisted Sui full node, KMS endpoint or kubelet address"
    ))
}

async fn handle(mut enclave: EnclaveStream, allow: Arc<Allow>, counters: Arc<RelayCounters>) {
    let line = match tokio::time::timeout(REQUEST_TIMEOUT, read_request_line(&mut enclave)).await {
        Ok(Ok(line)) => line,
        Ok(Err(why)) => {
            counters.denied.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(reason = why, "sui relay: refused a connection");
            let _ = enclave
                .write_all(format!("DENIED {why}\n").as_bytes())
                .await;
            return;
        }
        Err(_) => {
            counters.denied.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("sui relay: refused a connection: no request line in time");
            return;
        }
    };
    let target = match decide(&line, &allow) {
        Ok(target) => target,
        Err(reason) => {
            counters.denied.fetch_add(1, Ordering::Relaxed);
            // The line is the enclave's, bounded and UTF-8; it names no secret.
            tracing::warn!(request = %line.escape_debug(), %reason, "sui relay: refused a connection");
            let _ = enclave
                .write_all(format!("DENIED {reason}\n").as_bytes())
                .await;
            return;
        }
    };
    let (node, addr) = match &target {
        Target::Node(index) => {
            let Some(node) = counters.nodes.get(*index) else {
                return;
            };
            (node, &node.node)
        }
        Target::Kubelet(addr) => (&counters.kubelets, addr),
    };
    let target = (addr.host.as_str(), addr.port);
    let tcp = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target)).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(err)) => {
            counters.failed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(node = %addr, error = %err, "relay: address unreachable");
            let _ = enclave
                .write_all(format!("FAILED {err}\n").as_bytes())
                .await;
            return;
        }
        Err(_) => {
            counters.failed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(node = %addr, "relay: connect timed out");
            let _ = enclave.write_all(b"FAILED connect timed out\n").await;
            return;
        }
    };
    let _ = tcp.set_nodelay(true);
    if enclave.write_all(b"OK\n").await.is_err() {
        return;
    }
    node.connections.fetch_add(1, Ordering::Relaxed);
    tracing::debug!(node = %addr, "relay: connected");
    let mut counted = Counted { inner: tcp, node };
    let _ = tokio::io::copy_bidirectional(&mut enclave, &mut counted).await;
}

/// The node side of a pipe, counting bytes in each direction.
struct Counted<'a> {
    inner: TcpStream,
    node: &'a NodeCounters,
}

impl AsyncRead for Counted<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        let n = buf.filled().len().saturating_sub(before);
        self.node.from_node.fetch_add(n as u64, Ordering::Relaxed);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Counted<'_> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let n = ready!(Pin::new(&mut self.inner).poll_write(cx, buf))?;
        self.node.to_node.fetch_add(n as u64, Ordering::Relaxed);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, BufReader};

    fn node(s: &str) -> NodeAddr {
        s.parse().unwrap()
    }

    #[test]
    fn node_addresses_parse() {
        let cases: &[(&str, Option<(&str, u16)>)] = &[
            (
                "fullnode.mainnet.sui.io:443",
                Some(("fullnode.mainnet.sui.io", 443)),
            ),
            ("Node.Example:9000", Some(("node.example", 9000))),
            ("127.0.0.1:9000", Some(("127.0.0.1", 9000))),
            ("[::1]:443", Some(("::1", 443))),
            ("host", None),
            ("host:0", None),
            ("host:70000", None),
            (":443", None),
            ("a b:443", None),
            ("evil/path:443", None),
        ];
        for (input, want) in cases {
            let got = input.parse::<NodeAddr>().ok();
            assert_eq!(
                got.as_ref().map(|n| (n.host.as_str(), n.port)),
                *want,
                "{input}"
            );
        }
        assert_eq!(node("[::1]:443").to_string(), "[::1]:443");
    }

    #[test]
    fn only_allowlisted_targets_pass() {
        let allow = Allow {
            nodes: vec![node("a.example:443"), node("127.0.0.1:9000")],
            kubelets: KubeletAllow {
                networks: vec!["10.1.0.0/16".parse().unwrap(), "fd00::/8".parse().unwrap()],
                ports: vec!["10250".parse().unwrap(), "11000-11002".parse().unwrap()],
            },
        };
        assert_eq!(decide("CONNECT a.example:443", &allow), Ok(Target::Node(0)));
        assert_eq!(decide("CONNECT A.EXAMPLE:443", &allow), Ok(Target::Node(0)));
        assert_eq!(
            decide("CONNECT 127.0.0.1:9000", &allow),
            Ok(Target::Node(1))
        );
        for kubelet in ["10.1.0.5:10250", "10.1.255.255:11002", "[fd12::1]:10250"] {
            assert_eq!(
                decide(&format!("CONNECT {kubelet}"), &allow),
                Ok(Target::Kubelet(node(kubelet))),
                "{kubelet}"
            );
        }
        for refused in [
            "CONNECT a.example:444",
            "CONNECT b.example:443",
            "CONNECT 127.0.0.1:22",
            "CONNECT 10.2.0.5:10250",
            "CONNECT 10.1.0.5:22",
            "CONNECT 10.1.0.5:11003",
            "CONNECT [fe80::1]:10250",
            "CONNECT kubelet.example:10250",
            "GET / HTTP/1.1",
            "CONNECT",
            "connect a.example:443",
        ] {
            assert!(decide(refused, &allow).is_err(), "{refused}");
        }
    }

    #[test]
    fn kubelet_networks_and_ports_parse() {
        let net = |s: &str| s.parse::<KubeletNetwork>();
        assert!(
            net("10.0.0.0/8")
                .unwrap()
                .contains("10.9.8.7".parse().unwrap())
        );
        assert!(
            !net("10.0.0.0/8")
                .unwrap()
                .contains("11.0.0.1".parse().unwrap())
        );
        assert!(
            net("0.0.0.0/0")
                .unwrap()
                .contains("1.2.3.4".parse().unwrap())
        );
        assert!(!net("0.0.0.0/0").unwrap().contains("::1".parse().unwrap()));
        assert!(
            net("192.168.1.7")
                .unwrap()
                .contains("192.168.1.7".parse().unwrap())
        );
        assert!(
            !net("192.168.1.7")
                .unwrap()
                .contains("192.168.1.8".parse().unwrap())
        );
        assert!(net("::/0").unwrap().contains("fe80::1".parse().unwrap()));
        for bad in ["10.0.0.0/33", "::/129", "host/8", "10.0.0.0/x", ""] {
            assert!(net(bad).is_err(), "{bad}");
        }
        assert_eq!(net("10.0.0.0/8").unwrap().to_string(), "10.0.0.0/8");
        let range = |s: &str| s.parse::<PortRange>();
        assert!(range("10250").unwrap().contains(10250));
        assert!(!range("10250").unwrap().contains(10251));
        assert!(range("1-65535").unwrap().contains(443));
        for bad in ["0", "2-1", "x", "1-70000", ""] {
            assert!(range(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn listen_addresses_parse() {
        assert_eq!(
            "unix:/tmp/r.sock".parse::<RelayListen>(),
            Ok(RelayListen::Unix("/tmp/r.sock".into()))
        );
        assert_eq!(
            "vsock:7001".parse::<RelayListen>(),
            Ok(RelayListen::Vsock { port: 7001 })
        );
        assert!("unix:".parse::<RelayListen>().is_err());
        assert!("tcp:1".parse::<RelayListen>().is_err());
    }

    /// A real relay over a Unix socket: a refused target gets DENIED and no connection; an
    /// allowlisted one gets a byte-exact pipe both ways, counted.
    #[tokio::test]
    async fn relays_allowlisted_bytes_and_refuses_others() {
        let dir = std::env::temp_dir().join(format!("relay-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("relay.sock");
        let echo = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let echo_addr = echo.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut tcp, _)) = echo.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = tcp.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        let relay = Relay::bind(&RelayOptions {
            listen: RelayListen::Unix(sock.clone()),
            allow: vec![node(&echo_addr.to_string())],
            kubelets: KubeletAllow::default(),
        })
        .unwrap();
        let counters = relay.counters();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(relay.run(async {
            let _ = stopped.await;
        }));

        let mut refused = tokio::net::UnixStream::connect(&sock).await.unwrap();
        refused.write_all(b"CONNECT 127.0.0.1:1\n").await.unwrap();
        let mut answer = String::new();
        BufReader::new(&mut refused)
            .read_line(&mut answer)
            .await
            .unwrap();
        assert!(answer.starts_with("DENIED "), "{answer}");
        assert!(answer.contains("not an allowlisted"), "{answer}");

        let mut ok = tokio::net::UnixStream::connect(&sock).await.unwrap();
        ok.write_all(format!("CONNECT {echo_addr}\n").as_bytes())
            .await
            .unwrap();
        let mut answer = [0u8; 3];
        ok.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer, b"OK\n");
        let payload: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        let (mut r, mut w) = ok.into_split();
        let sent = payload.clone();
        let writer = tokio::spawn(async move { w.write_all(&sent).await.unwrap() });
        let mut back = vec![0u8; payload.len()];
        r.read_exact(&mut back).await.unwrap();
        writer.await.unwrap();
        assert_eq!(back, payload);

        let n = counters.nodes.first().unwrap();
        assert_eq!(n.connections.load(Ordering::Relaxed), 1);
        assert_eq!(n.to_node.load(Ordering::Relaxed), 100_000);
        assert_eq!(n.from_node.load(Ordering::Relaxed), 100_000);
        assert_eq!(counters.denied.load(Ordering::Relaxed), 1);
        let _ = stop.send(());
        running.await.unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
