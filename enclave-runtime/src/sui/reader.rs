//! Level 1 (`node-read`): the enclave reads checkpoints from Sui full nodes itself, through the
//! proxy's relay, with TLS ending here. From the core's last applied checkpoint onward, each
//! checkpoint's staking events are applied whole, in order, as [`TrustTheFullNode`] batches, so
//! a restart of either process resumes where the core stands and nothing is applied twice or
//! skipped. Nodes fail over in order with exponential backoff and jitter; a node whose tip is
//! older than one already seen is a rollback attempt: refused, reported, and the next node tried.

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use nautilus_core::stake::{EventBatch, EventVerifier, PushOutcome, TrustTheFullNode};
use sui_rpc::proto::sui::rpc::v2::ledger_service_client::LedgerServiceClient;
use sui_rpc::proto::sui::rpc::v2::{
    Checkpoint, GetCheckpointRequest, GetServiceInfoRequest, get_checkpoint_request,
};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use super::events;
use super::relay::{self, RelayAddr};
use crate::server::{Shared, now};

/// Checkpoints read per round before the tip is asked again.
const PAGE: u64 = 100;
/// Checkpoint reads in flight at once.
const WINDOW: usize = 16;
/// Pause at the tip before asking again.
const POLL: Duration = Duration::from_millis(100);
/// Backoff bounds between failed attempts.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// Deadline of one RPC (a node that stalls is failed over).
const RPC_TIMEOUT: Duration = Duration::from_secs(10);

/// What the reader needs, from the enclave's configuration.
#[derive(Debug, Clone)]
pub(crate) struct ReaderOptions {
    /// The proxy's relay.
    pub(crate) relay: RelayAddr,
    /// Full nodes in failover order, `host:port`.
    pub(crate) nodes: Vec<String>,
    /// CA certificate(s) (PEM) for the nodes' TLS; `None`: the WebPKI roots.
    pub(crate) ca_pem: Option<Vec<u8>>,
    /// The staking package.
    pub(crate) package: [u8; 32],
    /// First checkpoint to read when the core has applied none.
    pub(crate) start: u64,
    /// The pinned epoch committee: when set, the reader is the level-2 light client.
    pub(crate) anchor: Option<sui_sdk_types::ValidatorCommittee>,
}

/// Starts the reader task.
pub(crate) fn spawn(shared: Arc<Shared>, options: ReaderOptions) {
    shared.lock().sui_reader_started(now());
    match options.anchor.clone() {
        Some(anchor) => tokio::spawn(super::light::run(shared, options, anchor)),
        None => tokio::spawn(run(shared, options)),
    };
}

/// A failure of one session with one node.
enum Failure {
    /// Transport or RPC failure: retried on the next node after a backoff.
    Transient(String),
    /// The node served something refused (rollback, malformed data): reported, next node.
    Refused(String),
}

async fn run(shared: Arc<Shared>, options: ReaderOptions) {
    let mut highest_tip = 0u64;
    let mut backoff = BACKOFF_MIN;
    let mut index = 0usize;
    loop {
        let Some(node) = options.nodes.get(index % options.nodes.len().max(1)) else {
            return;
        };
        match session(&shared, &options, node, &mut highest_tip, &mut backoff).await {
            Failure::Transient(why) => {
                tracing::warn!(node = %node, error = %why, "sui reader: node failed; trying the next");
            }
            Failure::Refused(why) => {
                tracing::error!(node = %node, reason = %why, "sui reader: refused the node's data");
            }
        }
        index = index.wrapping_add(1);
        tokio::time::sleep(jittered(backoff)).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// `d` plus up to 50 % random jitter, so several enclaves do not retry in step.
pub(super) fn jittered(d: Duration) -> Duration {
    let mut byte = [0u8; 2];
    let _ = getrandom::fill(&mut byte);
    let frac = u64::from(u16::from_le_bytes(byte)) as f64 / f64::from(u16::MAX);
    d + d.mul_f64(frac / 2.0)
}

/// The tonic endpoint for `node` with TLS ending here: the configured CA (or the WebPKI
/// roots) and the node's host name; the bytes go through the relay (see [`relay_connector`]).
pub(super) fn endpoint(options: &ReaderOptions, node: &str) -> Result<Endpoint, String> {
    let host = node.rsplit_once(':').map_or(node, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let mut tls = ClientTlsConfig::new().domain_name(host.to_string());
    tls = match &options.ca_pem {
        Some(pem) => tls.ca_certificate(Certificate::from_pem(pem)),
        None => tls.with_webpki_roots(),
    };
    Ok(Endpoint::from_shared(format!("https://{node}"))
        .map_err(|e| e.to_string())?
        .tls_config(tls)
        .map_err(|e| e.to_string())?
        .connect_timeout(RPC_TIMEOUT)
        .timeout(RPC_TIMEOUT)
        // Streamed List pages are ~1,000 frames: HTTP/2's 64 KiB default window would stall
        // each page on window updates across the relay.
        .initial_stream_window_size(Some(4 << 20))
        .initial_connection_window_size(Some(8 << 20)))
}

/// A tonic connector whose every connection is a fresh relay stream to `node`.
pub(super) fn relay_connector(
    options: &ReaderOptions,
    node: &str,
) -> impl tower::Service<
    tonic::codegen::http::Uri,
    Response = TokioIo<Box<dyn relay::RelayIo>>,
    Error = std::io::Error,
    Future = impl Send,
> + Clone
+ Send
+ 'static {
    let relay = options.relay.clone();
    let target = node.to_string();
    tower::service_fn(move |_uri| {
        let relay = relay.clone();
        let target = target.clone();
        async move { relay::open(&relay, &target).await.map(TokioIo::new) }
    })
}

async fn connect(options: &ReaderOptions, node: &str) -> Result<Channel, String> {
    endpoint(options, node)?
        .connect_with_connector(relay_connector(options, node))
        .await
        .map_err(|e| format!("{e}: {}", source_chain(&e)))
}

pub(super) fn source_chain(e: &dyn std::error::Error) -> String {
    let mut out = String::new();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(&s.to_string());
        out.push_str("; ");
        cur = s.source();
    }
    out
}

/// Abandons reads still in flight.
fn abort_all(in_flight: &mut std::collections::VecDeque<tokio::task::JoinHandle<FetchResult>>) {
    for handle in in_flight.drain(..) {
        handle.abort();
    }
}

type FetchResult = Result<Option<Checkpoint>, tonic::Status>;

/// One `GetCheckpoint` with the fields the reader uses.
async fn fetch(mut client: LedgerServiceClient<Channel>, sequence: u64) -> FetchResult {
    let mut request = GetCheckpointRequest::default();
    request.checkpoint_id = Some(get_checkpoint_request::CheckpointId::SequenceNumber(
        sequence,
    ));
    request.read_mask = Some(prost_types::FieldMask {
        paths: vec![
            "sequence_number".into(),
            "transactions.digest".into(),
            "transactions.events".into(),
        ],
    });
    Ok(client
        .get_checkpoint(request)
        .await?
        .into_inner()
        .checkpoint)
}

/// Applies one checkpoint's batch in the core (stakes recorded at `verifier`'s trust level),
/// wakes the watchers of what changed and logs what it did; `Err` says why the core refused.
pub(super) fn hand_to_core(
    shared: &Shared,
    batch: &EventBatch,
    verifier: &mut dyn EventVerifier,
) -> Result<PushOutcome, String> {
    let (outcome, revision) = {
        let mut core = shared.lock();
        let outcome = core.apply_sui_batch(now(), batch, verifier);
        (outcome, core.store().revision())
    };
    shared
        .revision
        .send_if_modified(|r| std::mem::replace(r, revision) != revision);
    let outcome =
        outcome.map_err(|e| format!("checkpoint {}: {}", batch.checkpoint, e.message()))?;
    if outcome.applied > 0 || !outcome.revoked.is_empty() {
        tracing::info!(
            checkpoint = batch.checkpoint,
            applied = outcome.applied,
            ignored = outcome.ignored,
            revoked = outcome.revoked.len(),
            trust = verifier.trust_level().as_str(),
            "sui reader: applied staking events"
        );
    }
    Ok(outcome)
}

/// Reads from one node until it fails; returns why.
async fn session(
    shared: &Shared,
    options: &ReaderOptions,
    node: &str,
    highest_tip: &mut u64,
    backoff: &mut Duration,
) -> Failure {
    let channel = match connect(options, node).await {
        Ok(c) => c,
        Err(e) => return Failure::Transient(e),
    };
    let mut client = LedgerServiceClient::new(channel);
    loop {
        let info = match client
            .get_service_info(GetServiceInfoRequest::default())
            .await
        {
            Ok(r) => r.into_inner(),
            Err(status) => return Failure::Transient(format!("GetServiceInfo: {status}")),
        };
        let Some(tip) = info.checkpoint_height else {
            return Failure::Refused("GetServiceInfo has no checkpoint_height".into());
        };
        if tip < *highest_tip {
            return Failure::Refused(format!(
                "rollback attempt: the node's tip {tip} is older than checkpoint {} already seen",
                *highest_tip
            ));
        }
        *highest_tip = tip;
        let next = {
            let core = shared.lock();
            core.stakes()
                .last_checkpoint()
                .map_or(options.start, |c| c.saturating_add(1))
        };
        if next > tip {
            shared.lock().sui_synced(now());
            *backoff = BACKOFF_MIN;
            tokio::time::sleep(POLL).await;
            continue;
        }
        let last = tip.min(next.saturating_add(PAGE - 1));
        // Up to WINDOW reads in flight on the one HTTP/2 connection, applied strictly in
        // order; on any failure the rest are abandoned and the page resumes from the core.
        let mut in_flight = std::collections::VecDeque::new();
        let mut to_fetch = next;
        for sequence in next..=last {
            while to_fetch <= last && in_flight.len() < WINDOW {
                in_flight.push_back(tokio::spawn(fetch(client.clone(), to_fetch)));
                to_fetch += 1;
            }
            let Some(handle) = in_flight.pop_front() else {
                break;
            };
            let answer = handle.await;
            let checkpoint = match answer {
                Ok(Ok(checkpoint)) => checkpoint,
                Ok(Err(status)) => {
                    abort_all(&mut in_flight);
                    return Failure::Transient(format!("GetCheckpoint {sequence}: {status}"));
                }
                Err(join) => {
                    abort_all(&mut in_flight);
                    return Failure::Transient(format!("GetCheckpoint {sequence}: {join}"));
                }
            };
            let Some(checkpoint) = checkpoint else {
                abort_all(&mut in_flight);
                return Failure::Refused(format!("GetCheckpoint {sequence}: empty answer"));
            };
            let batch = match events::extract(&checkpoint, sequence, &options.package) {
                Ok(b) => b,
                Err(why) => {
                    abort_all(&mut in_flight);
                    return Failure::Refused(format!("checkpoint {sequence}: {why}"));
                }
            };
            match hand_to_core(shared, &batch, &mut TrustTheFullNode) {
                Ok(_) => {}
                Err(why) => {
                    abort_all(&mut in_flight);
                    return Failure::Refused(why);
                }
            }
            *backoff = BACKOFF_MIN;
        }
        if last == tip {
            shared.lock().sui_synced(now());
        }
    }
}
