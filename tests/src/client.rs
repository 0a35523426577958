//! A small HTTPS client (hyper over tokio-rustls, TLS 1.3, keep-alive) that trusts only the
//! cluster's CA: used by the tests for raw requests and by the benchmark.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};

/// A complete answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Headers, lower-case names.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// The first header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A rustls client config that trusts `ca_pem` only.
pub fn tls_config(ca_pem: &[u8]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        roots
            .add(cert.expect("CA PEM parses"))
            .expect("CA is a valid certificate");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3 is supported")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// One keep-alive HTTPS connection.
pub struct Connection {
    sender: SendRequest<Full<Bytes>>,
}

/// A TCP connection to 127.0.0.1:`port` from the loopback address `source` (e.g. 127.0.0.2,
/// to stand for a second client machine), or from the default address.
pub async fn tcp_from(
    source: Option<std::net::Ipv4Addr>,
    port: u16,
) -> Result<tokio::net::TcpStream, String> {
    let socket = tokio::net::TcpSocket::new_v4().map_err(|e| format!("socket: {e}"))?;
    if let Some(ip) = source {
        socket
            .bind((ip, 0).into())
            .map_err(|e| format!("bind {ip}: {e}"))?;
    }
    let tcp = socket
        .connect((std::net::Ipv4Addr::LOCALHOST, port).into())
        .await
        .map_err(|e| format!("connect: {e}"))?;
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    Ok(tcp)
}

/// A TLS stream to 127.0.0.1:`port` (from `source`, see [`tcp_from`]), for tests that write
/// raw HTTP: stalled bodies, watches that are never read.
pub async fn tls_from(
    source: Option<std::net::Ipv4Addr>,
    port: u16,
    tls: Arc<rustls::ClientConfig>,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, String> {
    let tcp = tcp_from(source, port).await?;
    let connector = tokio_rustls::TlsConnector::from(tls);
    let name = ServerName::try_from("127.0.0.1").map_err(|e| e.to_string())?;
    connector
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS: {e}"))
}

impl Connection {
    /// Connects to 127.0.0.1:`port` and completes the TLS handshake.
    pub async fn open(port: u16, tls: Arc<rustls::ClientConfig>) -> Result<Self, String> {
        Self::open_from(None, port, tls).await
    }

    /// Like [`Connection::open`], from the loopback address `source`.
    pub async fn open_from(
        source: Option<std::net::Ipv4Addr>,
        port: u16,
        tls: Arc<rustls::ClientConfig>,
    ) -> Result<Self, String> {
        let stream = tls_from(source, port, tls).await?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("HTTP: {e}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Self { sender })
    }

    /// Sends one request and reads the whole answer.
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        headers: &[(String, String)],
    ) -> Result<Reply, String> {
        let mut builder = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "127.0.0.1");
        for (k, v) in headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        if body.is_some()
            && !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        {
            builder = builder.header("content-type", "application/json");
        }
        let request = builder
            .body(Full::new(Bytes::copy_from_slice(body.unwrap_or_default())))
            .map_err(|e| e.to_string())?;
        self.sender
            .ready()
            .await
            .map_err(|e| format!("connection: {e}"))?;
        let response = self
            .sender
            .send_request(request)
            .await
            .map_err(|e| format!("request: {e}"))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?
            .to_bytes()
            .to_vec();
        Ok(Reply {
            status,
            headers,
            body,
        })
    }
}

/// One request on a fresh connection, from synchronous test code.
pub fn blocking_request(
    port: u16,
    ca_pem: &[u8],
    method: &str,
    path: &str,
    body: Option<&[u8]>,
    headers: &[(String, String)],
) -> Result<Reply, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let mut conn = Connection::open(port, tls_config(ca_pem)).await?;
        tokio::time::timeout(
            std::time::Duration::from_secs(30),
            conn.send(method, path, body, headers),
        )
        .await
        .map_err(|_| "timed out".to_string())?
    })
}
