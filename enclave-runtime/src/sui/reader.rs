//! Level 1 (`node-read`): the enclave reads checkpoints from Sui full nodes itself, through the
//! proxy's relay, with TLS ending here. From the core's last applied checkpoint onward, each
//! checkpoint's staking events are applied whole, in order, as [`TrustTheFullNode`] batches, so
//! a restart of either process resumes where the core stands and nothing is applied twice or
//! skipped. Nodes fail over in order with exponential backoff and jitter; a node whose tip is
//! older than one already seen is a rollback attempt: refused, reported, and the next node tried.

use std::sync::Arc;
use std::time::Duration;

use nautilus_core::stake::{EventBatch, EventVerifier, PushOutcome, TrustTheFullNode};
use sui_rpc::proto::sui::rpc::v2::ledger_service_client::LedgerServiceClient;
use sui_rpc::proto::sui::rpc::v2::{Checkpoint, GetCheckpointRequest, get_checkpoint_request};
use tonic::transport::Channel;

use super::events;
use super::node::{self, Failover, Failure};
use super::relay::RelayAddr;
use crate::server::{Shared, now};

/// Checkpoints read per round before the tip is asked again.
const PAGE: u64 = 100;
/// Checkpoint reads in flight at once.
const WINDOW: usize = 16;
/// Pause at the tip before asking again.
const POLL: Duration = Duration::from_millis(100);

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

/// Starts the reader task. On replicas every replica runs it, and it reads only while its
/// replica writes (see [`until_writing`]).
pub(crate) fn spawn(shared: Arc<Shared>, options: ReaderOptions) {
    match options.anchor.clone() {
        Some(anchor) => tokio::spawn(super::light::run(shared, options, anchor)),
        None => tokio::spawn(run(shared, options)),
    };
}

async fn run(shared: Arc<Shared>, options: ReaderOptions) {
    let mut failover = Failover::new("node-read");
    for node in options.nodes.iter().cycle() {
        let epoch = until_writing(&shared).await;
        let failure = session(&shared, &options, node, epoch, &mut failover).await;
        failover.failed(node, &failure).await;
    }
}

/// Waits until this enclave writes and returns as which leadership
/// ([`Shared::writing_epoch`]): one enclave alone at once; a replica while it leads, since
/// only the writer reads Sui (its batches reach the other replicas as log entries, and
/// a follower's core refuses them). From then on the reader counts as started: silence is
/// reported as staleness.
pub(super) async fn until_writing(shared: &Shared) -> u64 {
    loop {
        if let Some(epoch) = shared.writing_epoch() {
            shared.lock().sui_reader_started(now());
            return epoch;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// `Err(NotWriting)` once this enclave no longer writes as the leadership `epoch`.
pub(super) fn still_writing(shared: &Shared, epoch: u64) -> Result<(), Failure> {
    if shared.writing_epoch() == Some(epoch) {
        Ok(())
    } else {
        Err(Failure::NotWriting)
    }
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
/// wakes the watchers of what changed and logs what it did, while this enclave still writes
/// as the leadership `epoch`; `Err` says why the core refused.
pub(super) fn hand_to_core(
    shared: &Shared,
    epoch: u64,
    batch: &EventBatch,
    verifier: &mut dyn EventVerifier,
) -> Result<PushOutcome, Failure> {
    still_writing(shared, epoch)?;
    let (outcome, revision) = {
        let mut core = shared.lock();
        let outcome = core.apply_sui_batch(now(), batch, verifier);
        (outcome, core.store().revision())
    };
    shared.written(revision);
    let outcome = outcome.map_err(|e| match e {
        // Deposed between the check and the lock.
        nautilus_core::Error::NotLeader => Failure::NotWriting,
        e => Failure::Refused(format!("checkpoint {}: {}", batch.checkpoint, e.message())),
    })?;
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
    epoch: u64,
    failover: &mut Failover,
) -> Failure {
    let channel = match node::channel(options, node) {
        Ok(c) => c,
        Err(failure) => return failure,
    };
    let client = LedgerServiceClient::new(channel.clone());
    loop {
        if let Err(failure) = still_writing(shared, epoch) {
            return failure;
        }
        let tip = match failover.tip(&channel).await {
            Ok(tip) => tip,
            Err(failure) => return failure,
        };
        let next = {
            let core = shared.lock();
            core.stakes()
                .last_checkpoint()
                .map_or(options.start, |c| c.saturating_add(1))
        };
        if next > tip {
            shared.lock().sui_synced(now());
            failover.progressed();
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
            if let Err(failure) = hand_to_core(shared, epoch, &batch, &mut TrustTheFullNode) {
                abort_all(&mut in_flight);
                return failure;
            }
            failover.progressed();
        }
        if last == tip {
            shared.lock().sui_synced(now());
        }
    }
}
