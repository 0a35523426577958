//! What both Sui readers do with the full nodes: reach one through the proxy's relay with TLS
//! ending here, ask its tip (refusing an older tip than one already seen: a rollback attempt),
//! and fail over to the next node in order (each reader's loop: `for node in nodes.cycle()`)
//! with exponential backoff and jitter.

use std::time::Duration;

use hyper_util::rt::TokioIo;
use sui_rpc::proto::sui::rpc::v2::GetServiceInfoRequest;
use sui_rpc::proto::sui::rpc::v2::ledger_service_client::LedgerServiceClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use super::reader::ReaderOptions;
use super::relay;

/// Backoff bounds between failed sessions.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// Deadline of one RPC (a node that stalls is failed over).
const RPC_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a session with one node ended.
#[derive(Debug)]
pub(super) enum Failure {
    /// Transport or RPC failure: the next node, after a backoff.
    Transient(String),
    /// The node served something refused (rollback, malformed or unverifiable data):
    /// reported, the next node.
    Refused(String),
    /// This enclave no longer writes as the leadership the session began under (a replica
    /// that stopped leading, or leads again after what it wrote uncommitted may have been
    /// dropped): no fault of the node; the reader waits until it writes and starts over.
    NotWriting,
}

/// The state of failing over between nodes, kept across sessions: the backoff before the next
/// node (doubling up to 10 s, reset once a session makes progress) and the highest tip seen
/// (for the rollback check).
pub(super) struct Failover {
    level: &'static str,
    backoff: Duration,
    highest_tip: u64,
}

impl Failover {
    /// For the reader at trust level `level` (named in its logs).
    pub(super) fn new(level: &'static str) -> Self {
        Failover {
            level,
            backoff: BACKOFF_MIN,
            highest_tip: 0,
        }
    }

    /// The session made progress: the next failure starts the backoff afresh.
    pub(super) fn progressed(&mut self) {
        self.backoff = BACKOFF_MIN;
    }

    /// Logs why the session with `node` ended, then waits the jittered backoff.
    pub(super) async fn failed(&mut self, node: &str, failure: &Failure) {
        let level = self.level;
        match failure {
            Failure::NotWriting => {
                tracing::info!(node = %node, level, "sui reader: this replica stopped writing; the leader reads Sui");
                return;
            }
            Failure::Transient(why) => {
                tracing::warn!(node = %node, level, error = %why, "sui reader: node failed; trying the next");
            }
            Failure::Refused(why) => {
                tracing::error!(node = %node, level, reason = %why, "sui reader: refused the node's data");
            }
        }
        tokio::time::sleep(jittered(self.backoff)).await;
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
    }

    /// The node's tip (`GetServiceInfo`; unsigned, so only a position and a liveness probe),
    /// refused when older than the highest tip seen so far.
    pub(super) async fn tip(&mut self, channel: &Channel) -> Result<u64, Failure> {
        let info = LedgerServiceClient::new(channel.clone())
            .get_service_info(GetServiceInfoRequest::default())
            .await
            .map_err(|status| Failure::Transient(format!("GetServiceInfo: {status}")))?
            .into_inner();
        let tip = info
            .checkpoint_height
            .ok_or_else(|| Failure::Refused("GetServiceInfo has no checkpoint_height".into()))?;
        if tip < self.highest_tip {
            return Err(Failure::Refused(format!(
                "rollback attempt: the node's tip {tip} is older than checkpoint {} already seen",
                self.highest_tip
            )));
        }
        self.highest_tip = tip;
        Ok(tip)
    }
}

/// `d` plus up to 50 % random jitter, so several enclaves do not retry in step.
fn jittered(d: Duration) -> Duration {
    let mut byte = [0u8; 2];
    let _ = getrandom::fill(&mut byte);
    let frac = u64::from(u16::from_le_bytes(byte)) as f64 / f64::from(u16::MAX);
    d + d.mul_f64(frac / 2.0)
}

/// A channel to `node` whose connections are relay streams, made when first used (and again
/// after one breaks), with TLS ending here: the configured CA (or the WebPKI roots) and the
/// node's host name.
pub(super) fn channel(options: &ReaderOptions, node: &str) -> Result<Channel, Failure> {
    let host = node.rsplit_once(':').map_or(node, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let mut tls = ClientTlsConfig::new().domain_name(host.to_string());
    tls = match &options.ca_pem {
        Some(pem) => tls.ca_certificate(Certificate::from_pem(pem)),
        None => tls.with_webpki_roots(),
    };
    let endpoint = Endpoint::from_shared(format!("https://{node}"))
        .and_then(|e| e.tls_config(tls))
        .map_err(|e| Failure::Transient(format!("{node}: {e}")))?
        .connect_timeout(RPC_TIMEOUT)
        .timeout(RPC_TIMEOUT)
        // Streamed List pages are ~1,000 frames: HTTP/2's 64 KiB default window would stall
        // each page on window updates across the relay.
        .initial_stream_window_size(Some(4 << 20))
        .initial_connection_window_size(Some(8 << 20));
    let relay = options.relay.clone();
    let target = node.to_string();
    Ok(
        endpoint.connect_with_connector_lazy(tower::service_fn(move |_uri| {
            let relay = relay.clone();
            let target = target.clone();
            async move { relay::open(&relay, &target).await.map(TokioIo::new) }
        })),
    )
}
