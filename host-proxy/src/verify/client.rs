//! One HTTP/1.1 GET over TLS (or plaintext `http://` for test relays) that also reports the
//! certificate the server presented, so its SPKI can be checked against the attestation.

use std::sync::Arc;

use http_body_util::{BodyExt as _, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// Where to connect.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) tls: bool,
    pub(crate) host: String,
    pub(crate) port: u16,
    /// The URL as given, without a trailing slash (for the kubeconfig).
    pub(crate) base: String,
}

impl Target {
    /// `https://HOST[:PORT]` or `http://HOST[:PORT]`, no path.
    pub(crate) fn parse(url: &str) -> Result<Self, String> {
        let base = url.trim_end_matches('/').to_string();
        let (tls, rest) = if let Some(r) = base.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = base.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(format!(
                "{url}: the URL must start with https:// or http://"
            ));
        };
        if rest.contains('/') {
            return Err(format!("{url}: give the server URL without a path"));
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (
                h.to_string(),
                p.parse::<u16>().map_err(|_| format!("{url}: bad port"))?,
            ),
            _ => (rest.to_string(), if tls { 443 } else { 80 }),
        };
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        if host.is_empty() {
            return Err(format!("{url}: no host"));
        }
        Ok(Self {
            tls,
            host,
            port,
            base,
        })
    }
}

/// How the server's certificate is trusted.
#[derive(Debug, Clone)]
pub(crate) enum Trust {
    /// Certificates from a PEM file (an operator's CA, for proxy-terminated TLS).
    Ca(std::path::PathBuf),
    /// Any certificate whose key signs the handshake: trust comes from the attestation
    /// (enclave TLS binds the certificate's SPKI into `user_data`) or is waived by the user.
    Attested,
}

/// One answer.
pub(crate) struct Fetched {
    pub(crate) status: u16,
    pub(crate) headers: hyper::HeaderMap,
    pub(crate) body: Vec<u8>,
    /// The end-entity certificate the server presented (TLS only).
    pub(crate) peer_certificate: Option<Vec<u8>>,
    /// Every certificate the server presented, the end-entity first (TLS only).
    pub(crate) peer_chain: Vec<Vec<u8>>,
}

/// Largest answer read (an attestation document is < 16 KiB; API answers can be large).
const MAX_BODY: usize = 64 * 1024 * 1024;

pub(crate) async fn get(
    target: &Target,
    trust: &Trust,
    path_and_query: &str,
    headers: &[(&str, String)],
) -> Result<Fetched, String> {
    let tcp = tokio::net::TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|e| format!("connect to {}:{}: {e}", target.host, target.port))?;
    if !target.tls {
        return exchange(
            TokioIo::new(tcp),
            target,
            path_and_query,
            headers,
            Vec::new(),
        )
        .await;
    }
    let config = client_config(trust)?;
    let name = ServerName::try_from(target.host.clone())
        .map_err(|e| format!("{}: not a server name: {e}", target.host))?;
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS handshake with {}: {e}", target.base))?;
    let chain = tls
        .get_ref()
        .1
        .peer_certificates()
        .map(|chain| chain.iter().map(|c| c.as_ref().to_vec()).collect())
        .unwrap_or_default();
    exchange(TokioIo::new(tls), target, path_and_query, headers, chain).await
}

async fn exchange<S>(
    io: TokioIo<S>,
    target: &Target,
    path_and_query: &str,
    headers: &[(&str, String)],
    peer_chain: Vec<Vec<u8>>,
) -> Result<Fetched, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    tokio::spawn(conn);
    let mut req = hyper::Request::get(path_and_query)
        .header("host", format!("{}:{}", target.host, target.port))
        .header("user-agent", "nautilus-verify");
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let req = req
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("request: {e}"))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("GET {path_and_query}: {e}"))?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = http_body_util::Limited::new(resp.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| format!("reading the answer to GET {path_and_query}: {e}"))?
        .to_bytes()
        .to_vec();
    Ok(Fetched {
        status,
        headers,
        body,
        peer_certificate: peer_chain.first().cloned(),
        peer_chain,
    })
}

fn client_config(trust: &Trust) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| format!("TLS config: {e}"))?;
    let config = match trust {
        Trust::Ca(path) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("{}: {e}", path.display()))?
            {
                let cert = cert.map_err(|e| format!("{}: {e}", path.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        Trust::Attested => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(HandshakeOnly(provider)))
            .with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// Checks `cert_der` as kubectl will with a kubeconfig that names it as the only CA: its own
/// trust anchor, valid now, and naming `host` (a DNS name or IP address in its SANs).
#[cfg(test)]
pub(crate) fn pinned_certificate_names(cert_der: &[u8], host: &str) -> Result<(), String> {
    issued_for(cert_der, cert_der, host)
}

/// Whether the server certificate `cert_der` is issued by the CA certificate `ca_der`: its
/// signature, both validities now and the server-auth usage, as a TLS client checks a chain
/// (the host name aside).
pub(crate) fn issued_by(cert_der: &[u8], ca_der: &[u8]) -> Result<(), String> {
    let provider = rustls::crypto::ring::default_provider();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(ca_der.to_vec()))
        .map_err(|e| format!("the CA certificate: {e}"))?;
    let cert = CertificateDer::from(cert_der.to_vec());
    let parsed = rustls::server::ParsedCertificate::try_from(&cert).map_err(|e| e.to_string())?;
    rustls::client::verify_server_cert_signed_by_trust_anchor(
        &parsed,
        &roots,
        &[],
        UnixTime::now(),
        provider.signature_verification_algorithms.all,
    )
    .map_err(|e| e.to_string())
}

/// Checks the server certificate `cert_der` as kubectl will with a kubeconfig whose only CA is
/// `ca_der`: issued by it (signature, validity now, server auth) and naming `host` (a DNS name
/// or IP address in its SANs).
pub(crate) fn issued_for(cert_der: &[u8], ca_der: &[u8], host: &str) -> Result<(), String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cert = CertificateDer::from(cert_der.to_vec());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(ca_der.to_vec()))
        .map_err(|e| e.to_string())?;
    let verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| e.to_string())?;
    let name = ServerName::try_from(host.to_string()).map_err(|e| e.to_string())?;
    verifier
        .verify_server_cert(&cert, &[], &name, &[], UnixTime::now())
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Accepts any certificate but still checks the handshake signature, so the server proves it
/// holds the key of the certificate it presented (the one whose SPKI the attestation binds).
#[derive(Debug)]
struct HandshakeOnly(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for HandshakeOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // The config allows TLS 1.3 only.
        Err(rustls::Error::General("TLS 1.2 is not offered".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An enclave certificate as `nautilus-enclave --tls enclave` makes it (SANs `localhost`,
    /// `127.0.0.1`; valid 1975 to 4096).
    const ENCLAVE_CERT: &str = "-----BEGIN CERTIFICATE-----
MIIB6zCCAXGgAwIBAgIUNNupjioZEPfXHJFqTOUKwSfJGTYwCgYIKoZIzj0EAwMw
GzEZMBcGA1UEAwwQbmF1dGlsdXMtZW5jbGF2ZTAgFw03NTAxMDEwMDAwMDBaGA80
MDk2MDEwMTAwMDAwMFowGzEZMBcGA1UEAwwQbmF1dGlsdXMtZW5jbGF2ZTB2MBAG
ByqGSM49AgEGBSuBBAAiA2IABLolImvX3VRzdCQ/G1nbszGyAqVw6oGzjVv4L7Il
I6GJV/1eYeDwCPeUKRTt0X2VwEMBb/nt9Uc1xzM8vMeJFMzYKm/D3op7+yL2apT0
Xq+hhzERhZ5PNENSwGwqOdvOqKN0MHIwGgYDVR0RBBMwEYIJbG9jYWxob3N0hwR/
AAABMA8GA1UdDwEB/wQFAwMHgAAwEwYDVR0lBAwwCgYIKwYBBQUHAwEwHQYDVR0O
BBYEFPuo5EC+xk0vUjZsHF2l+VH8RT38MA8GA1UdEwEB/wQFMAMBAQAwCgYIKoZI
zj0EAwMDaAAwZQIxAJIz2X7Ds+W5AH9uENHObio1RXyjLEHHnXAu6WmHe3UPvm60
wV/oXgKF2vV+Bho4cgIwfxlTpXEYXDEOXt4K3Gb2AG7uIvX1OV3U0X1LTmgPZORl
wULxTIkVHVh8fTbQHW6E
-----END CERTIFICATE-----
";

    #[test]
    fn a_pinned_certificate_must_name_the_host_kubectl_connects_to() {
        let der = CertificateDer::from_pem_slice(ENCLAVE_CERT.as_bytes()).unwrap();
        for (host, ok) in [
            ("localhost", true),
            ("127.0.0.1", true),
            ("api.example.com", false),
            ("10.0.0.1", false),
        ] {
            let got = pinned_certificate_names(&der, host);
            assert_eq!(got.is_ok(), ok, "{host}: {got:?}");
        }
        assert!(pinned_certificate_names(b"not a certificate", "localhost").is_err());
    }

    #[test]
    fn urls_name_a_scheme_host_and_port_only() {
        let t = Target::parse("https://127.0.0.1:6443/").unwrap();
        assert!(t.tls);
        assert_eq!((t.host.as_str(), t.port), ("127.0.0.1", 6443));
        assert_eq!(t.base, "https://127.0.0.1:6443");
        let t = Target::parse("https://example.com").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("example.com", 443));
        let t = Target::parse("http://[::1]:8080").unwrap();
        assert!(!t.tls);
        assert_eq!((t.host.as_str(), t.port), ("::1", 8080));
        for bad in [
            "ftp://x",
            "https://",
            "https://h:port",
            "https://h:1/api",
            "h:1",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }
}
