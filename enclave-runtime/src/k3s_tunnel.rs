//! The K3s agent's tunnel (`/v1-k3s/connect`), once core has admitted it (101): the websocket
//! handshake of RFC 6455 and a connection held open that answers pings and closes, and
//! carries nothing else. The agent's `tunnel.Setup` waits for this connection before it starts
//! the kubelet, and remotedialer's client pings every few seconds and gives up on a silent
//! server; the enclave never asks the agent to dial (it reaches kubelets through the proxy's
//! relay), so no other frame is ever sent.

use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::{CONNECTION, HeaderValue, UPGRADE};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::http::ResponseBody;
use crate::websocket::{CLOSE, PING, PONG, accept_key, control_frame as frame};
/// The largest frame payload read; a bigger one ends the tunnel (nothing legitimate sends one:
/// pings carry at most 125 bytes).
const MAX_PAYLOAD: u64 = 64 * 1024;
/// A tunnel that sends nothing (not even remotedialer's pings, every 5 s) for this long ends.
const IDLE: Duration = Duration::from_secs(120);

/// The open tunnel of each node (its task, to end it when the node opens another).
static OPEN: std::sync::LazyLock<
    std::sync::Mutex<std::collections::HashMap<String, tokio::task::AbortHandle>>,
> = std::sync::LazyLock::new(Default::default);

fn bad_request(message: &str) -> hyper::Response<ResponseBody> {
    let mut response = hyper::Response::new(ResponseBody::full(message.to_string()));
    *response.status_mut() = hyper::StatusCode::BAD_REQUEST;
    response
}

/// Answers an admitted tunnel request: 101 and the upgraded connection held open, or 400 when
/// it is no websocket handshake.
pub(crate) fn accept(req: hyper::Request<Incoming>) -> hyper::Response<ResponseBody> {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let upgrade = header("upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let version = header("sec-websocket-version") == Some("13");
    let Some(key) = header("sec-websocket-key").filter(|_| upgrade && version) else {
        return bad_request("a websocket handshake (version 13) is required");
    };
    let Ok(accept) = HeaderValue::from_str(&accept_key(key)) else {
        return bad_request("bad Sec-WebSocket-Key");
    };
    let node = req
        .extensions()
        .get::<std::sync::Arc<nautilus_core::auth::CertUser>>()
        .map(|u| u.name.clone())
        .unwrap_or_default();
    let task = tokio::spawn({
        let node = node.clone();
        async move {
            match hyper::upgrade::on(req).await {
                Ok(upgraded) => {
                    tracing::info!(%node, "K3s agent tunnel open");
                    let reason = hold(TokioIo::new(upgraded)).await;
                    tracing::info!(%node, reason, "K3s agent tunnel closed");
                }
                Err(e) => tracing::debug!("K3s agent tunnel upgrade failed: {e}"),
            }
            let mut open = OPEN
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if open
                .get(&node)
                .is_some_and(|task| task.id() == tokio::task::id())
            {
                open.remove(&node);
            }
        }
    });
    // One tunnel per node: an upgraded connection no longer counts against the connection
    // budget, so a node's newer tunnel (an agent that reconnected) ends its older one, and the
    // tunnels held are bounded by the nodes.
    let older = OPEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(node, task.abort_handle());
    if let Some(older) = older {
        older.abort();
    }
    let mut response = hyper::Response::new(ResponseBody::Full(None));
    *response.status_mut() = hyper::StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert("sec-websocket-accept", accept);
    response
}

/// Reads the client's frames until it closes, goes quiet or misbehaves; answers pings with
/// pongs and a close with a close. Returns why it ended.
async fn hold<S>(mut io: S) -> &'static str
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        let mut head = [0u8; 2];
        match tokio::time::timeout(IDLE, io.read_exact(&mut head)).await {
            Err(_) => return "idle",
            Ok(Err(_)) => return "ended",
            Ok(Ok(_)) => {}
        }
        let opcode = head[0] & 0x0f;
        let masked = head[1] & 0x80 != 0;
        let mut len = u64::from(head[1] & 0x7f);
        if len == 126 {
            let mut ext = [0u8; 2];
            if io.read_exact(&mut ext).await.is_err() {
                return "ended";
            }
            len = u64::from(u16::from_be_bytes(ext));
        } else if len == 127 {
            let mut ext = [0u8; 8];
            if io.read_exact(&mut ext).await.is_err() {
                return "ended";
            }
            len = u64::from_be_bytes(ext);
        }
        // RFC 6455 §5.1: a client's frames are masked; the server closes otherwise.
        if !masked || len > MAX_PAYLOAD {
            let _ = io.write_all(&frame(CLOSE, &1002u16.to_be_bytes())).await;
            return "protocol error";
        }
        let mut mask = [0u8; 4];
        if io.read_exact(&mut mask).await.is_err() {
            return "ended";
        }
        let mut payload = vec![0u8; usize::try_from(len).unwrap_or(0)];
        if io.read_exact(&mut payload).await.is_err() {
            return "ended";
        }
        for (i, byte) in payload.iter_mut().enumerate() {
            *byte ^= mask[i % 4];
        }
        let reply = match opcode {
            PING => frame(PONG, &payload),
            CLOSE => {
                let _ = io.write_all(&frame(CLOSE, &payload)).await;
                let _ = io.shutdown().await;
                return "closed by the agent";
            }
            _ => continue,
        };
        if io.write_all(&reply).await.is_err() {
            return "ended";
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [1u8, 2, 3, 4];
        let mut out = vec![0x80 | opcode, 0x80 | payload.len() as u8];
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    #[tokio::test]
    async fn pings_are_answered_data_ignored_and_a_close_ends_it() {
        let (mut client, server) = tokio::io::duplex(1024);
        let held = tokio::spawn(hold(server));
        client.write_all(&masked(0x2, b"dial?")).await.unwrap();
        client.write_all(&masked(PING, b"hi")).await.unwrap();
        let mut pong = [0u8; 4];
        client.read_exact(&mut pong).await.unwrap();
        assert_eq!(pong, [0x80 | PONG, 2, b'h', b'i']);
        client
            .write_all(&masked(CLOSE, &1000u16.to_be_bytes()))
            .await
            .unwrap();
        let mut close = [0u8; 4];
        client.read_exact(&mut close).await.unwrap();
        assert_eq!(close, [0x80 | CLOSE, 2, 0x03, 0xe8]);
        assert_eq!(held.await.unwrap(), "closed by the agent");
    }

    #[tokio::test]
    async fn an_unmasked_or_oversized_frame_ends_it() {
        let (mut client, server) = tokio::io::duplex(1024);
        let held = tokio::spawn(hold(server));
        client.write_all(&[0x80 | PING, 0]).await.unwrap();
        assert_eq!(held.await.unwrap(), "protocol error");
        let (mut client, server) = tokio::io::duplex(1024);
        let held = tokio::spawn(hold(server));
        let mut big = vec![0x82, 0x80 | 127];
        big.extend_from_slice(&(MAX_PAYLOAD + 1).to_be_bytes());
        client.write_all(&big).await.unwrap();
        assert_eq!(held.await.unwrap(), "protocol error");
    }
}
