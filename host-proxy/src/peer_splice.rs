//! The replicas' mesh through the hosts (issue 17): a TCP listener whose connections are
//! spliced, byte for byte, into the enclave's peer listener (vsock in production, a Unix socket
//! in dev). The other replicas' enclaves reach it through their own proxies' relays
//! (`CONNECT host:port`). Peers attest each other inside mutual TLS that ends in the enclaves:
//! this side only moves ciphertext and decides nothing; it can delay or drop, never read or
//! forge.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::enclave_stream::EnclaveConnector;

/// Peer connections spliced at once: a few per replica are used (replication, votes,
/// forwarded requests); more are someone else's.
const MAX_PEER_CONNECTIONS: usize = 64;
/// Deadline for the enclave's peer listener to take a connection.
const ENCLAVE_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Binds the peer listener.
pub(crate) async fn bind(listen: SocketAddr) -> Result<TcpListener, String> {
    TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen for replica peers on {listen}: {e}"))
}

/// Splices every connection `listener` accepts into `enclave` until the task is dropped.
pub(crate) async fn run(listener: TcpListener, enclave: EnclaveConnector) {
    let permits = Arc::new(Semaphore::new(MAX_PEER_CONNECTIONS));
    loop {
        let (mut tcp, from) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "replica peers: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(%from, "replica peers: too many connections; closed");
            continue;
        };
        // Heartbeats are small and latency-bound.
        let _ = tcp.set_nodelay(true);
        let enclave = enclave.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let mut inner = match tokio::time::timeout(ENCLAVE_CONNECT_TIMEOUT, enclave.connect())
                .await
            {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, %enclave, "replica peers: the enclave's peer listener refused");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%enclave, "replica peers: the enclave's peer listener did not answer");
                    return;
                }
            };
            if let Err(e) = tokio::io::copy_bidirectional(&mut tcp, &mut inner).await {
                tracing::debug!(error = %e, %from, "replica peers: connection ended");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    fn test_dir(tag: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("nautilus-peer-splice-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Bytes go both ways unchanged between a TCP client and the enclave's Unix socket.
    #[tokio::test]
    async fn splices_tcp_to_the_enclave_socket_both_ways() {
        let dir = test_dir("both-ways");
        let path = dir.join("peer.sock");
        let enclave_side = tokio::net::UnixListener::bind(&path).unwrap();
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(run(listener, EnclaveConnector::Unix(path)));
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        client.write_all(b"hello enclave").await.unwrap();
        let (mut inner, _) = enclave_side.accept().await.unwrap();
        let mut got = [0u8; 13];
        inner.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello enclave");
        inner.write_all(b"hello peer").await.unwrap();
        let mut back = [0u8; 10];
        client.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"hello peer");
    }

    /// A peer connection while the enclave is down is closed, and the listener goes on.
    #[tokio::test]
    async fn closes_a_connection_the_enclave_cannot_take() {
        let dir = test_dir("refused");
        let path = dir.join("absent.sock");
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(run(listener, EnclaveConnector::Unix(path.clone())));
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut buf = [0u8; 1];
        assert_eq!(client.read(&mut buf).await.unwrap(), 0, "closed");
        // The enclave comes up: the next connection is spliced.
        let enclave_side = tokio::net::UnixListener::bind(&path).unwrap();
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        client.write_all(b"x").await.unwrap();
        let (mut inner, _) = enclave_side.accept().await.unwrap();
        inner.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"x");
    }
}
