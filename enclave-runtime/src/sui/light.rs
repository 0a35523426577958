//! Level 2 (`light-client`): the staking package's authenticated event stream, read with the
//! Sui SDK's `AuthenticatedEventsClient` through the proxy's relay (TLS ending here). An event
//! reaches the core only after the SDK reconciled it against the stream head proven (OCS
//! inclusion proof) in a checkpoint whose BLS signature verified against a committee ratcheted
//! from the pinned trust anchor; so the host and the full node can delay or withhold events
//! but not forge one. Anything that fails verification refuses the node: reported, next node.
//!
//! Resuming: SDK 0.4's stream starts either from the stream's beginning (empty head) or from
//! the tip; it cannot be seeded with a verified (checkpoint, head) pair. Transient errors are
//! retried inside the stream, which keeps its position; after a stream ends (failover,
//! refusal), the next session replays from the configured start checkpoint and the core drops
//! what it already applied (checkpoints below its last are stale, its last one deduplicates by
//! event id), so nothing is applied twice or skipped.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{FutureExt as _, StreamExt as _};
use nautilus_core::stake::{EventBatch, EventId, StakeEvent, TrustTheCommittee};
use sui_rpc::light_client::events::{AuthenticatedEventsClient, AuthenticatedEventsConfig};
use sui_rpc::light_client::{
    AuthenticatedEvent, CheckpointObjectProof, LightClient, LightClientError,
};
use sui_rpc::proto::sui::rpc::v2::GetServiceInfoRequest;
use sui_rpc::proto::sui::rpc::v2::ledger_service_client::LedgerServiceClient;
use sui_sdk_types::framework::derive_event_stream_head_object_id;
use sui_sdk_types::{Address, ValidatorCommittee};
use tonic::transport::Channel;

use super::events;
use super::reader::{self, ReaderOptions};
use crate::server::{Shared, now};

/// Events per `ListEvents` page (the server's maximum).
const PAGE: u32 = 1000;
/// Released events buffered between the SDK's task and the core.
const CHANNEL: usize = 4096;
/// Transient RPC failures the SDK retries in place (keeping its position) before the stream
/// ends and the next node is tried.
const IN_STREAM_RETRIES: u32 = 8;
/// The SDK's pause at the tip and base retry backoff: the latency from a settled checkpoint to
/// its events reaching the core.
const STREAM_POLL: Duration = Duration::from_millis(100);
/// How often the tip is probed while the stream runs (rollback check and liveness).
const PROBE: Duration = Duration::from_secs(1);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// The SDK's `Client` is only built on a TCP endpoint; this one is never dialled (see
/// [`ThroughRelay`]). `.invalid` cannot resolve (RFC 6761), so a dial would fail loudly.
const UNDIALLED: &str = "https://sui-full-node-through-relay.invalid";

/// The pinned trust anchor: an epoch's validator committee, given in the measured
/// configuration as the base64 of its BCS (`sui_sdk_types::ValidatorCommittee`).
#[derive(Clone, Debug)]
pub(crate) struct TrustAnchor {
    /// The configured text, echoed verbatim in the effective (attested) configuration.
    pub(crate) text: String,
    /// The decoded committee.
    pub(crate) committee: ValidatorCommittee,
}

/// Parses `--sui-trust-anchor`: base64 of the committee's BCS, every byte used, at least one
/// member, every key a valid BLS12-381 public key and a nonzero total stake.
pub(crate) fn parse_trust_anchor(text: &str) -> Result<TrustAnchor, String> {
    use base64::Engine as _;
    let text = text.trim();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| format!("not base64: {e}"))?;
    let committee: ValidatorCommittee = bcs::from_bytes(&bytes)
        .map_err(|e| format!("not the BCS of a validator committee: {e}"))?;
    if committee.members.is_empty() {
        return Err("the committee has no members".into());
    }
    if committee.members.iter().all(|m| m.stake == 0) {
        return Err("the committee's total stake is zero".into());
    }
    sui_crypto::bls12381::ValidatorCommitteeSignatureVerifier::new(committee.clone())
        .map_err(|e| format!("the committee does not verify signatures: {e}"))?;
    Ok(TrustAnchor {
        text: text.to_string(),
        committee,
    })
}

/// A failure of one session with one node.
enum Failure {
    /// Transport or RPC failure: next node after a backoff.
    Transient(String),
    /// The node served something that failed verification or the schema: reported, next node.
    Refused(String),
}

/// Reads the stream from the nodes in turn, forever.
pub(super) async fn run(shared: Arc<Shared>, options: ReaderOptions, anchor: ValidatorCommittee) {
    let mut highest_tip = 0u64;
    let mut backoff = BACKOFF_MIN;
    let mut index = 0usize;
    loop {
        let Some(node) = options.nodes.get(index % options.nodes.len().max(1)) else {
            return;
        };
        match session(
            &shared,
            &options,
            &anchor,
            node,
            &mut highest_tip,
            &mut backoff,
        )
        .await
        {
            Failure::Transient(why) => {
                tracing::warn!(node = %node, error = %why, "sui light client: node failed; trying the next");
            }
            Failure::Refused(why) => {
                crate::metrics::sui_light_client_refused();
                tracing::error!(node = %node, reason = %why, "sui light client: refused the node's data");
            }
        }
        index = index.wrapping_add(1);
        tokio::time::sleep(reader::jittered(backoff)).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Hands the SDK's `Client` our relay channel: the layer drops the client's own transport (a
/// lazy TCP channel that is then never dialled) and sends every request through `Channel`,
/// whose connections are relay streams with TLS ending in the enclave.
#[derive(Clone)]
struct ThroughRelay(Channel);

impl<S> tower::Layer<S> for ThroughRelay {
    type Service = Channel;

    fn layer(&self, _sdk_transport: S) -> Channel {
        self.0.clone()
    }
}

fn sdk_client(channel: Channel) -> Result<sui_rpc::Client, String> {
    Ok(sui_rpc::Client::new(UNDIALLED)
        .map_err(|e| e.to_string())?
        .request_layer(ThroughRelay(channel)))
}

/// The node's tip (unsigned: used for the rollback check and as a liveness probe).
async fn tip(channel: &Channel) -> Result<u64, Failure> {
    let info = LedgerServiceClient::new(channel.clone())
        .get_service_info(GetServiceInfoRequest::default())
        .await
        .map_err(|status| Failure::Transient(format!("GetServiceInfo: {status}")))?
        .into_inner();
    info.checkpoint_height
        .ok_or_else(|| Failure::Refused("GetServiceInfo has no checkpoint_height".into()))
}

fn check_rollback(tip: u64, highest_tip: &mut u64) -> Result<(), Failure> {
    if tip < *highest_tip {
        return Err(Failure::Refused(format!(
            "rollback attempt: the node's tip {tip} is older than checkpoint {} already seen",
            *highest_tip
        )));
    }
    *highest_tip = tip;
    Ok(())
}

/// A verification failure refuses the node; an RPC failure is transient.
fn classify(error: LightClientError) -> Failure {
    match error {
        LightClientError::Rpc(status) => Failure::Transient(format!("rpc: {status}")),
        other => Failure::Refused(format!("verification failed: {other}")),
    }
}

/// Reads from one node until it fails; returns why.
async fn session(
    shared: &Shared,
    options: &ReaderOptions,
    anchor: &ValidatorCommittee,
    node: &str,
    highest_tip: &mut u64,
    backoff: &mut Duration,
) -> Failure {
    let channel = match reader::endpoint(options, node) {
        Ok(endpoint) => {
            endpoint.connect_with_connector_lazy(reader::relay_connector(options, node))
        }
        Err(e) => return Failure::Transient(e),
    };
    let client = match sdk_client(channel.clone()) {
        Ok(c) => c,
        Err(e) => return Failure::Transient(e),
    };
    let stream_id = Address::new(options.package);
    let mut light = LightClient::new(client, anchor.clone());
    if let Err(failure) = wait_for_quiet_tip(&mut light, &channel, stream_id, highest_tip).await {
        return failure;
    }
    let mut config = AuthenticatedEventsConfig::new(stream_id);
    // The SDK's start is the last checkpoint already folded: events are read after it.
    config.start_checkpoint = Some(options.start.saturating_sub(1));
    config.page_size = PAGE;
    config.channel_capacity = CHANNEL;
    config.max_connect_retries = IN_STREAM_RETRIES;
    config.retry_backoff = STREAM_POLL;
    config.retry_jitter = STREAM_POLL;
    config.head_check_interval = STREAM_POLL;
    let stream = AuthenticatedEventsClient::new(light, config).stream();
    let mut stream = std::pin::pin!(stream);
    let mut probe = tokio::time::interval(PROBE);
    loop {
        tokio::select! {
            item = stream.next() => {
                let mut released = Vec::new();
                let mut next = item;
                // Take every event already released (a reconciliation releases a burst).
                loop {
                    match next {
                        None => {
                            if let Err(f) = apply(shared, options, &released) { return f; }
                            return Failure::Transient("the authenticated event stream ended".into());
                        }
                        Some(Err(e)) => {
                            if let Err(f) = apply(shared, options, &released) { return f; }
                            return classify(e);
                        }
                        Some(Ok(event)) => released.push(event),
                    }
                    match stream.next().now_or_never() {
                        Some(item) => next = item,
                        None => break,
                    }
                }
                if let Err(f) = apply(shared, options, &released) {
                    return f;
                }
                *backoff = BACKOFF_MIN;
            }
            _ = probe.tick() => {
                match tip(&channel).await.and_then(|t| check_rollback(t, highest_tip)) {
                    Ok(()) => shared.lock().sui_synced(now()),
                    Err(failure) => return failure,
                }
            }
        }
    }
}

/// The SDK's stream reads the head at the tip when it starts and, when the head changed in
/// that very checkpoint, starts from it rather than from our start; waiting for a tip that
/// did not settle the stream keeps the replay exact. (The tip is checked, not trusted: the
/// stream re-proves every head it folds against.)
async fn wait_for_quiet_tip(
    light: &mut LightClient,
    channel: &Channel,
    stream_id: Address,
    highest_tip: &mut u64,
) -> Result<(), Failure> {
    let head = derive_event_stream_head_object_id(stream_id);
    loop {
        let tip = tip(channel).await?;
        check_rollback(tip, highest_tip)?;
        match light.prove_object_at_checkpoint(&head, tip).await {
            Ok(CheckpointObjectProof::NonInclusion) => return Ok(()),
            Ok(_) => tokio::time::sleep(STREAM_POLL).await,
            Err(e) => return Err(classify(e)),
        }
    }
}

/// Hands released events to the core, one batch per checkpoint, in order. A checkpoint split
/// across two releases is fine: the core deduplicates its last checkpoint by event id.
fn apply(
    shared: &Shared,
    options: &ReaderOptions,
    released: &[AuthenticatedEvent],
) -> Result<(), Failure> {
    let mut start = 0;
    while let Some(first) = released.get(start) {
        let end = released[start..]
            .iter()
            .position(|e| e.checkpoint != first.checkpoint)
            .map_or(released.len(), |n| start + n);
        let batch = batch(first.checkpoint, &released[start..end], &options.package)
            .map_err(Failure::Refused)?;
        let (outcome, revision) = {
            let mut core = shared.lock();
            let outcome = core.apply_sui_batch(now(), &batch, &mut TrustTheCommittee);
            (outcome, core.store().revision())
        };
        shared
            .revision
            .send_if_modified(|r| std::mem::replace(r, revision) != revision);
        match outcome {
            Ok(o) => {
                crate::metrics::sui_light_client_events(batch.events.len());
                if o.applied > 0 || !o.revoked.is_empty() {
                    tracing::info!(
                        checkpoint = batch.checkpoint,
                        applied = o.applied,
                        ignored = o.ignored,
                        revoked = o.revoked.len(),
                        "sui light client: applied verified staking events"
                    );
                }
            }
            Err(e) => {
                return Err(Failure::Refused(format!(
                    "checkpoint {}: {}",
                    batch.checkpoint,
                    e.message()
                )));
            }
        }
        start = end;
    }
    Ok(())
}

/// The core's batch for `events` (all of `checkpoint`): the package's staking events decoded
/// from BCS, named as level 1 names them (transaction digest, index in the transaction), so
/// switching levels deduplicates.
fn batch(
    checkpoint: u64,
    events: &[AuthenticatedEvent],
    package: &[u8; 32],
) -> Result<EventBatch, String> {
    let mut out = Vec::with_capacity(events.len());
    let mut foreign = 0usize;
    for event in events {
        let ty = &event.event.type_;
        let name = ty.name().as_str();
        let ours = ty.address().into_inner() == *package
            && ty.module().as_str() == "staking"
            && matches!(name, "StakeDeposited" | "StakeWithdrawn" | "StakeSlashed");
        if !ours {
            foreign += 1;
            continue;
        }
        let digest = event.transaction_digest.to_string();
        let (stake_id, kind) = events::decode(name, &event.event.contents).ok_or_else(|| {
            format!(
                "checkpoint {checkpoint}: event {digest}/{} ({name}) does not match the schema",
                event.event_index
            )
        })?;
        out.push(StakeEvent {
            id: EventId {
                tx_digest: digest,
                event_seq: u64::from(event.event_index),
            },
            stake_id,
            kind,
        });
    }
    Ok(EventBatch {
        checkpoint,
        events: out,
        foreign,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use nautilus_core::stake::StakeEventKind;
    use nautilus_core::token::SuiAddress;
    use sui_crypto::bls12381::Bls12381PrivateKey;
    use sui_sdk_types::{
        Bls12381PublicKey, Digest, Event, Identifier, StructTag, ValidatorCommitteeMember,
    };

    fn member(seed: u8, stake: u64) -> ValidatorCommitteeMember {
        let mut bytes = [0u8; 32];
        bytes[31] = seed;
        let key = Bls12381PrivateKey::new(bytes).unwrap();
        ValidatorCommitteeMember {
            public_key: key.public_key(),
            stake,
        }
    }

    fn encode(committee: &ValidatorCommittee) -> String {
        base64::engine::general_purpose::STANDARD.encode(bcs::to_bytes(committee).unwrap())
    }

    #[test]
    fn a_committee_round_trips_and_bad_anchors_are_refused() {
        let committee = ValidatorCommittee {
            epoch: 7,
            members: vec![member(1, 10), member(2, 20)],
        };
        let text = encode(&committee);
        let anchor = parse_trust_anchor(&format!(" {text}\n")).unwrap();
        assert_eq!(anchor.committee, committee);
        assert_eq!(
            anchor.text, text,
            "echoed verbatim (trimmed) in the attested config"
        );

        let bytes = bcs::to_bytes(&committee).unwrap();
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let mut trailing = bytes.clone();
        trailing.push(0);
        let mut bad_key = committee.clone();
        bad_key.members[1].public_key = Bls12381PublicKey::new([0xff; 96]);
        let cases: Vec<(String, &str)> = vec![
            ("not base64!".into(), "not base64"),
            (b64(&bytes[..bytes.len() - 1]), "not the BCS"),
            (b64(&trailing), "not the BCS"),
            (
                encode(&ValidatorCommittee {
                    epoch: 1,
                    members: vec![],
                }),
                "no members",
            ),
            (
                encode(&ValidatorCommittee {
                    epoch: 1,
                    members: vec![member(1, 0), member(2, 0)],
                }),
                "total stake is zero",
            ),
            (encode(&bad_key), "does not verify signatures"),
        ];
        for (text, why) in cases {
            let error = parse_trust_anchor(&text).unwrap_err();
            assert!(error.contains(why), "{text}: {error}");
        }
    }

    fn event(
        package: [u8; 32],
        module: &str,
        name: &str,
        contents: Vec<u8>,
        index: u32,
    ) -> AuthenticatedEvent {
        let package = Address::new(package);
        AuthenticatedEvent {
            checkpoint: 9,
            transaction_index: 2,
            event_index: index,
            transaction_digest: Digest::new([4; 32]),
            event: Event {
                package_id: package,
                module: Identifier::new(module).unwrap(),
                sender: Address::TWO,
                type_: StructTag::new(
                    package,
                    Identifier::new(module).unwrap(),
                    Identifier::new(name).unwrap(),
                    vec![],
                ),
                contents,
            },
        }
    }

    #[test]
    fn released_events_become_the_cores_batch_named_as_level_one_names_them() {
        let pkg = [0xab; 32];
        let mut deposit = vec![1u8; 32];
        deposit.extend([2u8; 32]);
        deposit.extend(5u64.to_le_bytes());
        let events = vec![
            event(pkg, "staking", "StakeDeposited", deposit, 0),
            event([0xcd; 32], "staking", "StakeDeposited", vec![], 1),
            event(pkg, "other", "StakeDeposited", vec![], 2),
            event(pkg, "staking", "Rewarded", vec![], 3),
            event(pkg, "staking", "StakeWithdrawn", vec![1; 32], 4),
        ];
        let batch = batch(9, &events, &pkg).unwrap();
        assert_eq!(batch.checkpoint, 9);
        assert_eq!(batch.foreign, 3);
        assert_eq!(batch.events.len(), 2);
        let first = &batch.events[0];
        assert_eq!(first.id.tx_digest, Digest::new([4; 32]).to_string());
        assert_eq!(first.id.event_seq, 0);
        assert_eq!(
            first.kind,
            StakeEventKind::Deposited {
                owner: SuiAddress([2; 32]),
                amount: 5
            }
        );
        assert_eq!(batch.events[1].id.event_seq, 4);
        assert_eq!(batch.events[1].kind, StakeEventKind::Withdrawn);

        let malformed = vec![event(pkg, "staking", "StakeDeposited", vec![0; 5], 0)];
        let error = batch_error(&malformed, &pkg);
        assert!(error.contains("does not match the schema"), "{error}");
    }

    fn batch_error(events: &[AuthenticatedEvent], package: &[u8; 32]) -> String {
        batch(9, events, package).unwrap_err()
    }
}
