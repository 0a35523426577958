//! kube-apiserver's port-forward tunnel (`PortForwardWebsockets`, on by default since 1.31):
//! a WebSocket client asking for `SPDY/3.1+portforward.k8s.io` (kubectl 1.31+) gets the
//! kubelet's SPDY port-forward connection carried in binary messages, as kube's
//! `TunnelingHandler` does. As there, the SPDY upgrade (POST, the offered protocols without
//! their prefix) goes to the kubelet first and only its 101 completes the WebSocket
//! handshake, with the protocol the kubelet chose; a kubelet's refusal is answered as any
//! other. The SPDY bytes are not parsed: each read from the kubelet becomes one message, and
//! each message's payload is written to the kubelet as it comes.

use std::time::Duration;

use hyper::header::{CONNECTION, HeaderMap, HeaderValue, UPGRADE};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::Mutex;

use super::translator::PROTOCOL_VERSION;
use crate::http::ResponseBody;
use crate::websocket as ws;

/// kube's `WebsocketsSPDYTunnelingPrefix`.
const PREFIX: &str = "SPDY/3.1+";
/// kube's `KubernetesSuffix`: only Kubernetes' own SPDY protocols are tunnelled.
const SUFFIX: &str = ".k8s.io";
/// How long the client is given to answer our close once the kubelet has ended.
const CLOSE_GRACE: Duration = Duration::from_secs(10);
/// A tunnel that carries nothing either way for this long ends (kube's streaming idle timeout).
const IDLE: Duration = Duration::from_secs(4 * 3600);

/// kube's `IsWebSocketRequestWithTunnelingProtocol`.
pub(super) fn wants(headers: &HeaderMap) -> bool {
    ws::is_websocket_request(headers)
        && headers
            .get(hyper::header::SEC_WEBSOCKET_PROTOCOL)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|p| is_tunnelling(p.trim())))
}

fn is_tunnelling(protocol: &str) -> bool {
    protocol.starts_with(PREFIX) && protocol.ends_with(SUFFIX)
}

/// kube's plain-text refusal of a tunnel (Go's `http.Error`): the status and the text.
#[derive(Debug)]
pub(super) struct Refused(pub(super) hyper::StatusCode, pub(super) &'static str);

impl Refused {
    pub(super) fn response(&self) -> hyper::Response<ResponseBody> {
        super::plain_error(self.0, self.1)
    }
}

/// A checked tunnel request: its accept key and the SPDY protocols it offers.
pub(super) struct Tunnel {
    accept: String,
    spdy_protocols: Vec<String>,
}

impl Tunnel {
    /// Checks the client's handshake, or answers kube's 400.
    pub(super) fn prepare(parts: &hyper::http::request::Parts) -> Result<Self, Refused> {
        let spdy_protocols: Vec<String> = ws::offered_protocols(&parts.headers)
            .into_iter()
            .filter(|p| is_tunnelling(p))
            .map(|p| p.trim_start_matches(PREFIX).to_string())
            .collect();
        if spdy_protocols.is_empty() {
            return Err(Refused(
                hyper::StatusCode::BAD_REQUEST,
                "unable to upgrade: no tunneling spdy protocols provided",
            ));
        }
        let accept = ws::handshake_accept(&parts.method, &parts.headers)
            .map_err(|why| Refused(hyper::StatusCode::BAD_REQUEST, why))?;
        Ok(Self {
            accept,
            spdy_protocols,
        })
    }

    /// kube's `createSPDYRequest`: the client's headers without the WebSocket ones, an SPDY
    /// upgrade offering the tunnelled protocols.
    pub(super) fn kubelet_headers(&self, mut headers: HeaderMap) -> HeaderMap {
        for name in [
            "sec-websocket-protocol",
            "sec-websocket-key",
            "sec-websocket-version",
            "sec-websocket-extensions",
            "upgrade",
            PROTOCOL_VERSION,
        ] {
            headers.remove(name);
        }
        headers.insert(UPGRADE, HeaderValue::from_static("SPDY/3.1"));
        headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
        for protocol in &self.spdy_protocols {
            if let Ok(value) = HeaderValue::from_str(protocol) {
                headers.append(PROTOCOL_VERSION, value);
            }
        }
        headers
    }

    /// The client's 101 for the kubelet's, or kube's 500 when the kubelet's answer is no SPDY
    /// upgrade.
    pub(super) fn switching_protocols(
        &self,
        kubelet: &HeaderMap,
    ) -> Result<hyper::Response<ResponseBody>, Refused> {
        let header = |name: &str| {
            kubelet
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .trim()
                .to_string()
        };
        if !header("connection")
            .to_ascii_lowercase()
            .contains("upgrade")
            || !header("upgrade").to_ascii_lowercase().contains("spdy/3.1")
        {
            return Err(Refused(
                hyper::StatusCode::INTERNAL_SERVER_ERROR,
                "unable to upgrade: missing upgrade headers in response",
            ));
        }
        // gorilla's Upgrader picks the server's protocol only when the client offered it.
        let chosen = Some(header(PROTOCOL_VERSION))
            .filter(|p| !p.is_empty() && self.spdy_protocols.contains(p))
            .map(|p| format!("{PREFIX}{p}"));
        Ok(ws::switching_protocols(&self.accept, chosen.as_deref()))
    }
}

/// Carries the kubelet's SPDY bytes in the client's WebSocket until either side ends.
pub(super) async fn bridge<C, K>(client: C, kubelet: K, buffer: usize) -> &'static str
where
    C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    K: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (client_read, client_write) = tokio::io::split(client);
    let (mut kubelet_read, kubelet_write) = tokio::io::split(kubelet);
    let client_write = std::sync::Arc::new(Mutex::new(ws::Writer::new(client_write)));
    let mut upstream = tokio::spawn(client_to_kubelet(
        client_read,
        std::sync::Arc::clone(&client_write),
        kubelet_write,
        buffer,
    ));
    let mut chunk = vec![0u8; buffer.max(1)];
    let downstream = async {
        loop {
            let n = match tokio::time::timeout(IDLE, kubelet_read.read(&mut chunk)).await {
                Ok(Ok(0) | Err(_)) => return "the kubelet ended",
                Err(_) => return "idle",
                Ok(Ok(n)) => n,
            };
            let data = chunk.get(..n).unwrap_or_default();
            if client_write
                .lock()
                .await
                .send(ws::BINARY, &[data])
                .await
                .is_err()
            {
                return "the client ended";
            }
        }
    };
    tokio::select! {
        ended = downstream => {
            let _ = client_write.lock().await.close(ws::NORMAL_CLOSURE).await;
            let _ = tokio::time::timeout(CLOSE_GRACE, &mut upstream).await;
            upstream.abort();
            ended
        }
        ended = &mut upstream => ended.unwrap_or("the client side failed"),
    }
}

/// The client's messages to the kubelet; pings answered, a close answered and passed on as the
/// end of the kubelet connection's write side.
async fn client_to_kubelet<R, W, K>(
    mut client: R,
    client_write: std::sync::Arc<Mutex<ws::Writer<W>>>,
    mut kubelet: K,
    buffer: usize,
) -> &'static str
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
    K: AsyncWrite + Unpin,
{
    let mut chunk = vec![0u8; buffer.max(ws::MAX_CONTROL_PAYLOAD)];
    let ended = 'frames: loop {
        let head = match ws::next_client_head(&mut client, &client_write, IDLE).await {
            Ok(head) => head,
            Err(ended) => break ended,
        };
        let mut offset = 0u64;
        while offset < head.len || (head.is_control() && offset == 0) {
            let Some(data) = ws::read_payload(&mut client, &head, &mut offset, &mut chunk).await
            else {
                break 'frames "the client ended";
            };
            match head.opcode {
                ws::PING => {
                    let _ = client_write.lock().await.send(ws::PONG, &[data]).await;
                }
                ws::CLOSE => {
                    let _ = client_write.lock().await.close(ws::NORMAL_CLOSURE).await;
                    break 'frames "closed by the client";
                }
                ws::PONG => {}
                _ => {
                    if kubelet.write_all(data).await.is_err() {
                        break 'frames "the kubelet ended";
                    }
                }
            }
            if head.is_control() {
                break;
            }
        }
    };
    let _ = kubelet.shutdown().await;
    ended
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::websocket::masked;

    fn parts(protocols: &str) -> hyper::http::request::Parts {
        let (parts, ()) = hyper::Request::get("/api/v1/namespaces/d/pods/p/portforward")
            .header("upgrade", "websocket")
            .header("connection", "Upgrade")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .header("sec-websocket-protocol", protocols)
            .header("user-agent", "kubectl")
            .body(())
            .unwrap()
            .into_parts();
        parts
    }

    #[test]
    fn the_spdy_request_and_the_101_are_kubes() {
        let p = parts("SPDY/3.1+portforward.k8s.io, v4.channel.k8s.io, SPDY/3.1+other.example");
        assert!(wants(&p.headers));
        let tunnel = Tunnel::prepare(&p).unwrap_or_else(|_| panic!("refused"));
        let headers = tunnel.kubelet_headers(p.headers.clone());
        assert_eq!(headers["upgrade"], "SPDY/3.1");
        assert_eq!(headers["user-agent"], "kubectl");
        assert!(headers.get("sec-websocket-key").is_none());
        let offered: Vec<_> = headers.get_all(PROTOCOL_VERSION).iter().collect();
        assert_eq!(offered, ["portforward.k8s.io"]);
        let mut kubelet = HeaderMap::new();
        kubelet.insert("connection", HeaderValue::from_static("Upgrade"));
        kubelet.insert("upgrade", HeaderValue::from_static("SPDY/3.1"));
        kubelet.insert(
            PROTOCOL_VERSION,
            HeaderValue::from_static("portforward.k8s.io"),
        );
        let ok = tunnel
            .switching_protocols(&kubelet)
            .unwrap_or_else(|_| panic!("refused"));
        assert_eq!(ok.status(), 101);
        assert_eq!(
            ok.headers()["sec-websocket-protocol"],
            "SPDY/3.1+portforward.k8s.io"
        );
        assert_eq!(
            ok.headers()["sec-websocket-accept"],
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        kubelet.remove("upgrade");
        let refused = tunnel.switching_protocols(&kubelet).err().unwrap();
        assert_eq!(refused.response().status(), 500);
        // Without a tunnelling protocol: not ours, and kube's 400 if asked.
        let plain = parts("v4.channel.k8s.io");
        assert!(!wants(&plain.headers));
        assert_eq!(
            Tunnel::prepare(&plain).err().unwrap().response().status(),
            400
        );
    }

    #[tokio::test]
    async fn bytes_cross_both_ways_and_a_kubelet_end_closes_the_websocket() {
        let (client, peer) = tokio::io::duplex(1 << 16);
        let (kubelet, mut kubelet_peer) = tokio::io::duplex(1 << 16);
        let bridged = tokio::spawn(bridge(client, kubelet, 4));
        let (mut peer_read, mut peer_write) = tokio::io::split(peer);
        peer_write
            .write_all(&masked(false, ws::BINARY, b"spdy"))
            .await
            .unwrap();
        peer_write
            .write_all(&masked(true, ws::PING, b"hb"))
            .await
            .unwrap();
        peer_write
            .write_all(&masked(true, ws::CONTINUATION, b"-bytes"))
            .await
            .unwrap();
        let mut got = [0u8; 10];
        kubelet_peer.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"spdy-bytes");
        kubelet_peer.write_all(b"reply").await.unwrap();
        drop(kubelet_peer);
        // The client answers the close by ending its side.
        peer_write.shutdown().await.unwrap();
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(20), bridged)
                .await
                .unwrap()
                .unwrap(),
            "the kubelet ended"
        );
        let mut seen = Vec::new();
        peer_read.read_to_end(&mut seen).await.unwrap();
        // The pong, the kubelet's bytes (in messages of at most 4 bytes), then a close.
        assert!(seen.starts_with(&[0x8a, 2, b'h', b'b']), "{seen:?}");
        assert!(
            seen.windows(6)
                .any(|w| w == [0x82, 4, b'r', b'e', b'p', b'l']),
            "{seen:?}"
        );
        assert!(seen.ends_with(&[0x88, 2, 0x03, 0xe8]), "{seen:?}");
    }
}
