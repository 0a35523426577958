//! The enclave's way to a pod's kubelet, for what core decided in a [`KubeletCall`]
//! (`kubectl logs`, `exec`, `attach`, `port-forward`): one pipe through the proxy's byte relay
//! to the registered node's address, TLS ending here. The kubelet's serving certificate must
//! chain to the cluster CA, be valid for the address dialled (as kube-apiserver checks it) and
//! name the pod's node (`system:node:NAME`, as a `kubelet-serving` certificate does); the
//! enclave presents a client certificate of the cluster CA, kubeadm's kubelet-client identity.
//! Logs stream back as the client reads them; an Upgrade (SPDY or WebSocket) is answered with the
//! kubelet's 101 and the bytes are then copied both ways, except the two WebSocket upgrades
//! kube-apiserver 1.32 handles itself: `v5.channel.k8s.io` exec and attach, translated to SPDY
//! ([`translator`]), and port-forward's SPDY tunnelled in WebSocket ([`tunnel`]). Each stream
//! holds one of `--kubelet-streams` permits for its life.

mod spdy;
mod translator;
mod tunnel;

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper_util::rt::TokioIo;
use nautilus_core::Error;
use nautilus_core::api::{ApiResponse, KubeletCall, KubeletCallKind};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::budget::Chunk;
use crate::http::ResponseBody;
use crate::sui::RelayAddr;

/// kubeadm's `apiserver-kubelet-client` certificate subject: what kube-apiserver presents to
/// kubelets (`--kubelet-client-certificate`).
const CLIENT_COMMON_NAME: &str = "kube-apiserver-kubelet-client";
const CLIENT_ORGANIZATION: &str = "kubeadm:cluster-admins";
/// Deadline for the relay, TLS and the kubelet's answer head (kube's kubelet dial timeout).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Most bytes of a kubelet's error answer passed on.
const MAX_ERROR_BODY: usize = 64 << 10;
/// Request headers never passed to the kubelet: the caller's credentials (kube's
/// authentication filter removes them), hop-by-hop framing, and the proxy's and signing headers.
const DROPPED_HEADERS: &[&str] = &[
    "authorization",
    "host",
    "content-length",
    "transfer-encoding",
    "x-seal-token",
    "x-nautilus-sign",
    "impersonate-user",
    "impersonate-group",
    "impersonate-uid",
    "proxy-authorization",
];

/// Reaching kubelets: how to dial one, and the stream budget.
pub(crate) struct Kubelets {
    dialer: Dialer,
    streams: Arc<Semaphore>,
}

/// How a kubelet is dialled: the relay, the TLS client (cluster CA roots, the enclave's client
/// certificate) and the bytes a stream buffers each way. Cheap to clone into a stream's task.
#[derive(Clone)]
struct Dialer {
    relay: Option<RelayAddr>,
    tls: Arc<rustls::ClientConfig>,
    buffer: usize,
}

impl Kubelets {
    /// A client of the kubelets whose serving certificates `ca` signs, with a fresh client
    /// certificate of `ca`. Without a relay every call answers kube's dial error.
    pub(crate) fn new(
        relay: Option<RelayAddr>,
        ca: &nautilus_core::csr::authority::ClusterCa,
        streams: usize,
        buffer: usize,
    ) -> anyhow::Result<Self> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, CLIENT_ORGANIZATION);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, CLIENT_COMMON_NAME);
        let csr = params.serialize_request(&key)?.pem()?;
        let request = nautilus_core::csr::authority::Request::parse(csr.as_bytes())
            .map_err(|e| anyhow::anyhow!("the kubelet client request: {e}"))?;
        let mut serial = [0u8; 16];
        getrandom::fill(&mut serial).map_err(|e| anyhow::anyhow!("random serial: {e}"))?;
        let cert_pem = ca
            .sign(
                &request,
                &["digital signature", "key encipherment", "client auth"],
                nautilus_core::csr::authority::DEFAULT_CERT_TTL_SECS,
                crate::server::now(),
                serial,
            )
            .map_err(|e| anyhow::anyhow!("signing the kubelet client certificate: {e}"))?;
        use rustls::pki_types::pem::PemObject;
        let cert = rustls::pki_types::CertificateDer::from_pem_slice(cert_pem.as_bytes())?;
        let key_der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der())
            .map_err(|e| anyhow::anyhow!("the kubelet client key: {e}"))?;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(rustls::pki_types::CertificateDer::from(
            ca.certificate_der().to_vec(),
        ))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_client_auth_cert(vec![cert], key_der)?;
        Ok(Self {
            dialer: Dialer {
                relay,
                tls: Arc::new(config),
                buffer,
            },
            streams: Arc::new(Semaphore::new(streams)),
        })
    }

    /// Makes `call` for the client request `parts` (whose upgrade, for exec, attach and
    /// port-forward, is `client_upgrade`): the kubelet's answer, streamed or upgraded, or
    /// kube's error.
    pub(crate) async fn serve(
        &self,
        call: &KubeletCall,
        parts: &hyper::http::request::Parts,
        client_upgrade: Option<hyper::upgrade::OnUpgrade>,
    ) -> hyper::Response<ResponseBody> {
        let Ok(permit) = Arc::clone(&self.streams).try_acquire_owned() else {
            crate::metrics::budget_refused();
            return crate::http::to_hyper(ApiResponse::error(&Error::TooManyRequests(
                "Too many requests, please try again later.".into(),
            )));
        };
        if let KubeletCallKind::RemoteCommand(options) = call.kind
            && translator::wants(&parts.headers)
        {
            return translator::accept(
                self.dialer.clone(),
                call.clone(),
                options,
                parts,
                client_upgrade,
                permit,
            );
        }
        let tunnel = if call.kind == KubeletCallKind::PortForward && tunnel::wants(&parts.headers) {
            match tunnel::Tunnel::prepare(parts) {
                Ok(tunnel) => Some(tunnel),
                Err(refused) => return refused.response(),
            }
        } else {
            None
        };
        let (method, headers) = match &tunnel {
            Some(tunnel) => (
                hyper::Method::POST,
                tunnel.kubelet_headers(relayed_headers(&parts.headers)),
            ),
            None if call.kind.is_upgrade() => (method_of(call), relayed_headers(&parts.headers)),
            None => (method_of(call), HeaderMap::new()),
        };
        let start = self.dialer.start(call, method.clone(), headers);
        match tokio::time::timeout(CONNECT_TIMEOUT, start).await {
            Ok(Ok(response)) => {
                self.answer(call, response, client_upgrade, permit, tunnel.as_ref())
                    .await
            }
            Ok(Err(message)) => {
                tracing::info!(node = %call.node, pod = %call.pod, %message, "kubelet unreachable");
                error_response(&Error::Unclassified(message))
            }
            Err(_) => error_response(&Error::Unclassified(format!(
                "{} {:?}: dial tcp {}: i/o timeout",
                method_word(&method),
                call.url(),
                address(call)
            ))),
        }
    }
}

/// The client's request headers passed to the kubelet with an upgrade.
fn relayed_headers(client: &HeaderMap) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in client {
        if !DROPPED_HEADERS.contains(&name.as_str()) {
            headers.append(name.clone(), value.clone());
        }
    }
    headers
}

/// The method core chose for the kubelet.
fn method_of(call: &KubeletCall) -> hyper::Method {
    match call.method {
        nautilus_core::api::Method::Post => hyper::Method::POST,
        _ => hyper::Method::GET,
    }
}

impl Dialer {
    /// Connects through the relay, checks the kubelet's certificate, sends the request and
    /// reads the answer's head. `Err` is kube's error text (`Get "https://...": ...`).
    async fn start(
        &self,
        call: &KubeletCall,
        method: hyper::Method,
        headers: HeaderMap,
    ) -> Result<hyper::Response<Incoming>, String> {
        let failed = |what: String| format!("{} {:?}: {what}", method_word(&method), call.url());
        let relay = self.relay.as_ref().ok_or_else(|| {
            failed(format!(
                "dial tcp {}: the enclave has no relay to kubelets",
                address(call)
            ))
        })?;
        let pipe = crate::sui::open_relay(relay, &address(call))
            .await
            .map_err(|e| failed(format!("dial tcp {}: {e}", address(call))))?;
        let name = rustls::pki_types::ServerName::try_from(call.host.clone())
            .map_err(|e| failed(format!("bad kubelet address: {e}")))?;
        let tls = tokio_rustls::TlsConnector::from(Arc::clone(&self.tls))
            .connect(name, pipe)
            .await
            .map_err(|e| failed(tls_error_text(&e, &call.host)))?;
        let leaf = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|certs| certs.first())
            .map(|c| c.as_ref().to_vec())
            .unwrap_or_default();
        check_names_node(&leaf, &call.node).map_err(&failed)?;
        let (mut sender, connection) = hyper::client::conn::http1::Builder::new()
            .max_buf_size(self.buffer)
            .handshake(TokioIo::new(tls))
            .await
            .map_err(|e| failed(e.to_string()))?;
        tokio::spawn(async move {
            if let Err(e) = connection.with_upgrades().await {
                tracing::debug!("kubelet connection ended: {e}");
            }
        });
        let mut request = hyper::Request::builder()
            .method(method.clone())
            .uri(call.path_and_query.as_str())
            .body(Empty::<Bytes>::new())
            .map_err(|e| failed(e.to_string()))?;
        *request.headers_mut() = headers;
        if let Ok(host) = HeaderValue::from_str(&address(call)) {
            request.headers_mut().insert(hyper::header::HOST, host);
        }
        sender
            .send_request(request)
            .await
            .map_err(|e| failed(e.to_string()))
    }
}

impl Kubelets {
    /// The client's answer for the kubelet's `response` (tunnelled in WebSocket when `tunnel`).
    async fn answer(
        &self,
        call: &KubeletCall,
        mut response: hyper::Response<Incoming>,
        client_upgrade: Option<hyper::upgrade::OnUpgrade>,
        permit: OwnedSemaphorePermit,
        tunnel: Option<&tunnel::Tunnel>,
    ) -> hyper::Response<ResponseBody> {
        let status = response.status();
        if call.kind.is_upgrade() && status == hyper::StatusCode::SWITCHING_PROTOCOLS {
            let Some(client_upgrade) = client_upgrade else {
                return error_response(&Error::BadRequest("Upgrade request required".into()));
            };
            let buffer = self.dialer.buffer;
            if let Some(tunnel) = tunnel {
                let upgraded = match tunnel.switching_protocols(response.headers()) {
                    Ok(upgraded) => upgraded,
                    Err(refused) => return refused.response(),
                };
                let kubelet_upgrade = hyper::upgrade::on(&mut response);
                let (node, pod) = (call.node.clone(), call.pod.clone());
                tokio::spawn(async move {
                    let _permit = permit;
                    let (client, kubelet) = tokio::join!(client_upgrade, kubelet_upgrade);
                    let (Ok(client), Ok(kubelet)) = (client, kubelet) else {
                        tracing::debug!("a tunnelled kubelet stream did not start");
                        return;
                    };
                    let ended =
                        tunnel::bridge(TokioIo::new(client), TokioIo::new(kubelet), buffer).await;
                    tracing::debug!(%node, %pod, ended, "tunnelled kubelet stream ended");
                });
                return upgraded;
            }
            let kubelet_upgrade = hyper::upgrade::on(&mut response);
            tokio::spawn(async move {
                let _permit = permit;
                let (client, kubelet) = tokio::join!(client_upgrade, kubelet_upgrade);
                let (Ok(client), Ok(kubelet)) = (client, kubelet) else {
                    tracing::debug!("an upgraded kubelet stream did not start");
                    return;
                };
                let mut client = TokioIo::new(client);
                let mut kubelet = TokioIo::new(kubelet);
                let copied = tokio::io::copy_bidirectional_with_sizes(
                    &mut client,
                    &mut kubelet,
                    buffer,
                    buffer,
                )
                .await;
                tracing::debug!(?copied, "kubelet stream ended");
            });
            let mut upgraded = hyper::Response::new(ResponseBody::full(Bytes::new()));
            *upgraded.status_mut() = status;
            *upgraded.headers_mut() = response.headers().clone();
            return upgraded;
        }
        if !status.is_success() {
            // kube passes the kubelet's refusal on with its text (`container "x" in pod "y" is
            // waiting to start`), as its generic response checker does.
            let body = Limited::new(response.into_body(), MAX_ERROR_BODY)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let text = String::from_utf8_lossy(&body).trim().to_string();
            let error = match status.as_u16() {
                400 => Error::BadRequest(text),
                401 => Error::Unauthorized(text),
                403 => Error::Forbidden {
                    resource: "pods".into(),
                    name: call.pod.clone(),
                    message: text,
                    causes: Vec::new(),
                },
                _ => Error::Unclassified(text),
            };
            return error_response(&error);
        }
        let mut out = hyper::Response::new(ResponseBody::Kubelet(Box::new(KubeletBody {
            inner: response.into_body(),
            _permit: permit,
        })));
        // kube's `LocationStreamer` answers `text/plain`, for logs and upgrades alike.
        out.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain"),
        );
        out.headers_mut().insert(
            HeaderName::from_static("cache-control"),
            HeaderValue::from_static("no-cache, private"),
        );
        out
    }
}

/// Go's `http.Client` error prefix: the method as Go writes it.
fn method_word(method: &hyper::Method) -> &'static str {
    if method == hyper::Method::POST {
        "Post"
    } else {
        "Get"
    }
}

/// `host:port` as the relay and Go's dialer write it.
fn address(call: &KubeletCall) -> String {
    if call.host.contains(':') {
        format!("[{}]:{}", call.host, call.port)
    } else {
        format!("{}:{}", call.host, call.port)
    }
}

/// kube's error for a refused request, as a hyper response.
fn error_response(error: &Error) -> hyper::Response<ResponseBody> {
    crate::http::to_hyper(ApiResponse::error(error))
}

/// A plain-text refusal, as Go's `http.Error` writes one (kube's WebSocket handlers answer so).
fn plain_error(status: hyper::StatusCode, text: &str) -> hyper::Response<ResponseBody> {
    let mut response = hyper::Response::new(ResponseBody::full(format!("{text}\n")));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Go-style words for core's refusal of a kubelet certificate that does not name its node.
fn check_names_node(leaf_der: &[u8], node: &str) -> Result<(), String> {
    nautilus_core::csr::authority::serving_certificate_names_node(leaf_der, node).map_err(
        |found| match found {
            Some(cn) => format!(
                "tls: failed to verify certificate: x509: certificate is for {cn:?}, not the kubelet of node {node:?} (\"system:node:{node}\", O=system:nodes)"
            ),
            None => "tls: failed to verify certificate: x509: malformed certificate".into(),
        },
    )
}

/// Go's words for a failed TLS handshake, for the errors rustls gives.
fn tls_error_text(error: &io::Error, host: &str) -> String {
    use rustls::CertificateError as C;
    let rustls_error = error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>());
    match rustls_error {
        Some(rustls::Error::InvalidCertificate(C::UnknownIssuer | C::BadSignature)) => {
            "tls: failed to verify certificate: x509: certificate signed by unknown authority"
                .into()
        }
        Some(rustls::Error::InvalidCertificate(
            C::NotValidForName | C::NotValidForNameContext { .. },
        )) => {
            format!("tls: failed to verify certificate: x509: certificate is not valid for {host}")
        }
        Some(rustls::Error::InvalidCertificate(
            C::Expired | C::ExpiredContext { .. } | C::NotValidYet | C::NotValidYetContext { .. },
        )) => {
            "tls: failed to verify certificate: x509: certificate has expired or is not yet valid"
                .into()
        }
        Some(other) => format!("tls: {other}"),
        None => format!("tls: {error}"),
    }
}

/// A kubelet's streamed answer (a log), read only as fast as hyper writes it to the client;
/// holds its stream permit until it ends.
pub(crate) struct KubeletBody {
    inner: Incoming,
    _permit: OwnedSemaphorePermit,
}

impl KubeletBody {
    pub(crate) fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Chunk>, std::convert::Infallible>>> {
        loop {
            return match Pin::new(&mut self.inner).poll_frame(cx) {
                Poll::Pending => Poll::Pending,
                // A broken kubelet stream ends the client's (kube's streamer stops copying).
                Poll::Ready(None | Some(Err(_))) => Poll::Ready(None),
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => Poll::Ready(Some(Ok(Frame::data(Chunk::from(data))))),
                    Err(_) => continue,
                },
            };
        }
    }

    pub(crate) fn size_hint(&self) -> SizeHint {
        let _ = self.inner.size_hint();
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_certificate_naming_the_node_passes() {
        let ca = nautilus_core::csr::authority::ClusterCa::from_secret(&[7; 32]).unwrap();
        // The CA's own certificate names no node.
        let err = check_names_node(ca.certificate_der(), "worker-1").unwrap_err();
        assert!(
            err.contains("not the kubelet of node \"worker-1\""),
            "{err}"
        );
    }
}
