//! Level 2 (`light-client`): the staking package's authenticated event stream, read through the
//! proxy's relay (TLS ending here) and verified with the Sui SDK's light-client pieces: the
//! committee ratchet from the pinned anchor with BLS-verified checkpoint summaries and OCS
//! inclusion proofs (`LightClient::prove_object_at_checkpoint`), and the framework's MMR fold
//! (`apply_stream_updates`). Each round lists the stream's events and settlement transactions
//! over a range of checkpoints, folds the events into the verified head, proves the on-chain
//! head at the last settlement and compares; only then are the events applied. So the host and
//! the full node can delay or withhold events but not forge one. A failed check refuses the
//! node (reported, counted, next node); the verified (head, checkpoint) pair is kept across
//! sessions and nodes, so a relay restart or failover resumes exactly where verification
//! stands: nothing applied twice, nothing skipped.
//!
//! Why not the SDK's `AuthenticatedEventsClient` (sui-rpc 0.4): it cannot be seeded with a
//! verified head (it starts from an empty head or the tip), it ends on a transport cut (a relay
//! restart), and a head check that falls due after a page ending mid-checkpoint reports a
//! mismatch for an honest node. The same verification steps, driven here, have none of these.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use nautilus_core::stake::{EventBatch, EventId, StakeEvent, TrustTheCommittee};
use sui_rpc::light_client::{
    AuthenticatedEvent, CheckpointObjectProof, LightClient, LightClientError,
};
use sui_rpc::proto::sui::rpc::v2::filter::{
    event as event_filter, transaction as transaction_filter,
};
use sui_rpc::proto::sui::rpc::v2::{
    EventFilter, ListEventsRequest, ListEventsResponse, ListTransactionsRequest,
    ListTransactionsResponse, QueryEndReason, QueryOptions, TransactionFilter,
};
use sui_sdk_types::framework::{
    EventBatch as StreamBatch, EventCommitment, EventStreamHead, apply_stream_updates,
    derive_event_stream_head_object_id,
};
use sui_sdk_types::{Address, ValidatorCommittee};
use tonic::transport::Channel;

use super::events;
use super::node::{self, Failover, Failure};
use super::reader::{self, ReaderOptions};
use crate::server::{Shared, now};

/// Items per `ListEvents` / `ListTransactions` page (the v2 List API's maximum).
const PAGE: u32 = 1000;
/// Checkpoints verified per round at most (one head proof per round).
const WINDOW: u64 = 2_000;
/// Stream events held per round at most (about 200 bytes each); a round that reaches it ends
/// before the checkpoint it reached.
const MAX_ROUND_EVENTS: usize = 50_000;
/// Pause at the tip before asking again.
const POLL: Duration = Duration::from_millis(100);
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

/// Reads the stream from the nodes in turn, forever, keeping what verification established.
pub(super) async fn run(shared: Arc<Shared>, options: ReaderOptions, anchor: ValidatorCommittee) {
    let fresh = || Verified {
        head: EventStreamHead::default(),
        next: options.start,
        committee: anchor.clone(),
    };
    let mut verified = fresh();
    let mut leadership = None;
    let mut failover = Failover::new("light-client");
    for node in options.nodes.iter().cycle() {
        let epoch = reader::until_writing(&shared).await;
        if leadership
            .replace(epoch)
            .is_some_and(|before| before != epoch)
        {
            // A replica that leads again: what it applied under its earlier leadership may
            // have been dropped uncommitted, so it verifies from the start again, as a
            // restart does (the core ignores the checkpoints it holds).
            verified = fresh();
        }
        let failure = session(&shared, &options, &mut verified, node, epoch, &mut failover).await;
        if let Failure::Refused(_) = failure {
            // Checkpoints passed as quiet since the last proven head were the refused node's
            // word only (it may have withheld a settlement): read them again.
            verified.next = verified.proven_next(options.start);
            crate::metrics::sui_light_client_refused();
        }
        failover.failed(node, &failure).await;
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

/// A verification failure refuses the node; an RPC failure is transient.
fn classify(error: LightClientError) -> Failure {
    match error {
        LightClientError::Rpc(status) => Failure::Transient(format!("rpc: {status}")),
        other => Failure::Refused(format!("verification failed: {other}")),
    }
}

/// What verification has established, kept across sessions and nodes.
struct Verified {
    /// The stream head after the last verified round (empty before the first event).
    head: EventStreamHead,
    /// The first checkpoint not yet verified.
    next: u64,
    /// The newest committee ratcheted to (seeds the next session's light client).
    committee: ValidatorCommittee,
}

impl Verified {
    /// The first checkpoint after the last proven head (`start` before any): ranges past it
    /// were taken as quiet on a node's word (a hidden settlement shows up as a mismatch at the
    /// next proof, and is then re-read from here).
    fn proven_next(&self, start: u64) -> u64 {
        if self.head.num_events == 0 {
            start
        } else {
            self.head.checkpoint_seq.saturating_add(1).max(start)
        }
    }
}

/// Reads from one node until it fails; returns why.
async fn session(
    shared: &Shared,
    options: &ReaderOptions,
    verified: &mut Verified,
    node: &str,
    epoch: u64,
    failover: &mut Failover,
) -> Failure {
    let channel = match node::channel(options, node) {
        Ok(c) => c,
        Err(failure) => return failure,
    };
    let client = match sdk_client(channel.clone()) {
        Ok(c) => c,
        Err(e) => return Failure::Transient(e),
    };
    let stream_id = Address::new(options.package);
    let head_id = derive_event_stream_head_object_id(stream_id);
    let mut light = LightClient::new(client, verified.committee.clone());
    loop {
        if let Err(failure) = reader::still_writing(shared, epoch) {
            return failure;
        }
        let tip = match failover.tip(&channel).await {
            Ok(t) => t,
            Err(failure) => return failure,
        };
        if verified.next > tip {
            shared.lock().sui_synced(now());
            failover.progressed();
            tokio::time::sleep(POLL).await;
            continue;
        }
        let last = tip.min(verified.next.saturating_add(WINDOW - 1));
        let (events, last) = match list_events(&mut light, stream_id, verified.next, last).await {
            Ok(listed) => listed,
            Err(failure) => return failure,
        };
        let settlements = match list_settlements(&mut light, head_id, verified.next, last).await {
            Ok(s) => s,
            Err(failure) => return failure,
        };
        match verify_round(&mut light, &verified.head, head_id, &events, &settlements).await {
            Ok(new_head) => {
                if let Err(failure) = apply(shared, options, epoch, &events) {
                    return failure;
                }
                if let Some(head) = new_head {
                    verified.head = head;
                }
                verified.next = last.saturating_add(1);
                verified.committee = light.epoch_cache().current_committee().clone();
            }
            Err(failure) => return failure,
        }
        failover.progressed();
        if last == tip {
            shared.lock().sui_synced(now());
        }
    }
}

/// Checks one round: the events are in ascending ledger order inside the range; each lies at
/// or before a settlement of its own checkpoint; folded (per settlement, as the framework
/// folds them) into the verified head they give exactly the head proven at the last
/// settlement. Returns that head (`None`: no settlement in the range, so no events either).
async fn verify_round(
    light: &mut LightClient,
    head: &EventStreamHead,
    head_id: Address,
    events: &[AuthenticatedEvent],
    settlements: &[(u64, u64)],
) -> Result<Option<EventStreamHead>, Failure> {
    let position = |e: &AuthenticatedEvent| (e.checkpoint, e.transaction_index, e.event_index);
    if let Some(pair) = events
        .windows(2)
        .find(|w| position(&w[0]) >= position(&w[1]))
    {
        return Err(Failure::Refused(format!(
            "stream events out of ledger order: {:?} then {:?}",
            position(&pair[0]),
            position(&pair[1])
        )));
    }
    if settlements.windows(2).any(|w| w[0] >= w[1]) {
        return Err(Failure::Refused("settlements out of ledger order".into()));
    }
    let Some(&(reconcile, _)) = settlements.last() else {
        if let Some(event) = events.first() {
            return Err(Failure::Refused(format!(
                "stream events in checkpoint {} but no settlement transaction",
                event.checkpoint
            )));
        }
        return Ok(None);
    };
    let batches = bucket(events, settlements)?;
    let folded = apply_stream_updates(head.clone(), &batches)
        .map_err(|e| Failure::Refused(format!("verification failed: {e}")))?;
    let proven = match light.prove_object_at_checkpoint(&head_id, reconcile).await {
        Ok(CheckpointObjectProof::Inclusion {
            object: Some(object),
            ..
        }) => stream_head(&object)?,
        Ok(_) => {
            return Err(Failure::Refused(format!(
                "verification failed: a settlement is listed at checkpoint {reconcile} but the \
                 proof says the stream head was not modified (or was deleted) there"
            )));
        }
        Err(e) => return Err(classify(e)),
    };
    if proven != folded {
        return Err(Failure::Refused(format!(
            "verification failed: the events listed do not fold into the stream head proven at \
             checkpoint {reconcile} (proven {} events, listed {})",
            proven.num_events, folded.num_events
        )));
    }
    Ok(Some(proven))
}

/// Groups events by the settlement that folded them: the first settlement of the event's own
/// checkpoint at or after its transaction (the framework settles each stream once per
/// consensus commit, after the commit's transactions).
fn bucket(
    events: &[AuthenticatedEvent],
    settlements: &[(u64, u64)],
) -> Result<Vec<StreamBatch>, Failure> {
    let mut batches: Vec<StreamBatch> = Vec::new();
    let mut current: Option<(u64, u64)> = None;
    let mut at = 0usize;
    for event in events {
        while settlements.get(at).is_some_and(|&(cp, tx)| {
            cp < event.checkpoint || (cp == event.checkpoint && tx < event.transaction_index)
        }) {
            at += 1;
        }
        let Some(&settlement) = settlements
            .get(at)
            .filter(|(cp, _)| *cp == event.checkpoint)
        else {
            return Err(Failure::Refused(format!(
                "verification failed: no settlement covers the stream event at checkpoint {} \
                 transaction {}",
                event.checkpoint, event.transaction_index
            )));
        };
        let commitment = EventCommitment {
            checkpoint_seq: event.checkpoint,
            transaction_idx: event.transaction_index,
            event_idx: u64::from(event.event_index),
            digest: event.event.digest(),
        };
        match batches.last_mut() {
            Some(batch) if current == Some(settlement) => batch.commitments.push(commitment),
            _ => {
                batches.push(StreamBatch {
                    checkpoint_seq: event.checkpoint,
                    commitments: vec![commitment],
                });
                current = Some(settlement);
            }
        }
    }
    Ok(batches)
}

/// The `EventStreamHead` inside its dynamic-field object: `Field { id: UID, name: Key {
/// owner: address }, value: EventStreamHead }`, so the head's BCS starts after two addresses.
fn stream_head(object: &sui_sdk_types::Object) -> Result<EventStreamHead, Failure> {
    let refuse = |why: String| Failure::Refused(format!("verification failed: {why}"));
    let contents = object
        .as_struct()
        .ok_or_else(|| refuse("the stream head object is not a Move struct".into()))?
        .contents();
    let bytes = contents
        .get(64..)
        .ok_or_else(|| refuse("the stream head object is too short".into()))?;
    bcs::from_bytes(bytes).map_err(|e| refuse(format!("the stream head does not decode: {e}")))
}

/// The package's stream events in checkpoints `first..=last`, in the server's order, and the
/// last checkpoint they cover whole: `last`, or less when [`MAX_ROUND_EVENTS`] was reached
/// (the round then ends before the checkpoint that reached it).
async fn list_events(
    light: &mut LightClient,
    stream_id: Address,
    first: u64,
    last: u64,
) -> Result<(Vec<AuthenticatedEvent>, u64), Failure> {
    let mut events: Vec<AuthenticatedEvent> = Vec::new();
    let mut reached = None;
    let mut cursor = None;
    loop {
        let mut request = ListEventsRequest::default();
        request.start_checkpoint = Some(first);
        request.end_checkpoint = Some(last.saturating_add(1));
        request.filter = Some(EventFilter::matching(event_filter::event_stream_head(
            stream_id,
        )));
        request.options = Some(query(cursor.clone()));
        let stream = light.rpc().ledger_client().list_events(request).await;
        let more = read_page(stream, "ListEvents", &mut cursor, |frame| {
            if frame.event.is_none() {
                return Ok(ControlFlow::Continue(()));
            }
            let event = AuthenticatedEvent::try_from(frame)
                .map_err(|e| Failure::Refused(format!("malformed ListEvents frame: {e}")))?;
            in_range("ListEvents", first, last, event.checkpoint)?;
            if events.len() >= MAX_ROUND_EVENTS {
                reached = Some(event.checkpoint);
                return Ok(ControlFlow::Break(()));
            }
            events.push(event);
            Ok(ControlFlow::Continue(()))
        })
        .await?;
        if let Some(reached) = reached {
            if reached <= first {
                return Err(Failure::Refused(format!(
                    "more than {MAX_ROUND_EVENTS} stream events in checkpoint {first}"
                )));
            }
            events.retain(|e| e.checkpoint < reached);
            return Ok((events, reached - 1));
        }
        if !more {
            return Ok((events, last));
        }
    }
}

/// The settlement transactions (checkpoint, index) of the stream head in `first..=last`.
async fn list_settlements(
    light: &mut LightClient,
    head_id: Address,
    first: u64,
    last: u64,
) -> Result<Vec<(u64, u64)>, Failure> {
    let mut settlements = Vec::new();
    let mut cursor = None;
    loop {
        let mut request = ListTransactionsRequest::default();
        request.start_checkpoint = Some(first);
        request.end_checkpoint = Some(last.saturating_add(1));
        request.filter = Some(TransactionFilter::matching(
            transaction_filter::affected_object(head_id),
        ));
        request.options = Some(query(cursor.clone()));
        let stream = light.rpc().ledger_client().list_transactions(request).await;
        let more = read_page(stream, "ListTransactions", &mut cursor, |frame| {
            let Some(tx) = frame.transaction.as_ref() else {
                return Ok(ControlFlow::Continue(()));
            };
            let (Some(cp), Some(index)) = (tx.checkpoint, tx.transaction_index) else {
                return Err(Failure::Refused(
                    "a settlement transaction without checkpoint or index".into(),
                ));
            };
            in_range("ListTransactions", first, last, cp)?;
            if settlements.len() >= MAX_ROUND_EVENTS {
                return Err(Failure::Refused("too many settlement transactions".into()));
            }
            settlements.push((cp, index));
            Ok(ControlFlow::Continue(()))
        })
        .await?;
        if !more {
            return Ok(settlements);
        }
    }
}

fn in_range(rpc: &str, first: u64, last: u64, checkpoint: u64) -> Result<(), Failure> {
    if (first..=last).contains(&checkpoint) {
        return Ok(());
    }
    Err(Failure::Refused(format!(
        "{rpc} for checkpoints {first}..={last} returned checkpoint {checkpoint}"
    )))
}

/// A frame of a v2 List stream: every frame carries a watermark cursor, the last an end.
trait ListFrame {
    fn cursor(&self) -> Option<&bytes::Bytes>;
    fn end(&self) -> Option<Option<QueryEndReason>>;
}

impl ListFrame for ListEventsResponse {
    fn cursor(&self) -> Option<&bytes::Bytes> {
        self.watermark.as_ref()?.cursor.as_ref()
    }
    fn end(&self) -> Option<Option<QueryEndReason>> {
        let end = self.end.as_ref()?;
        Some(end.reason.and_then(|r| QueryEndReason::try_from(r).ok()))
    }
}

impl ListFrame for ListTransactionsResponse {
    fn cursor(&self) -> Option<&bytes::Bytes> {
        self.watermark.as_ref()?.cursor.as_ref()
    }
    fn end(&self) -> Option<Option<QueryEndReason>> {
        let end = self.end.as_ref()?;
        Some(end.reason.and_then(|r| QueryEndReason::try_from(r).ok()))
    }
}

/// Reads one page of a List stream, keeping the latest cursor and handing each frame to
/// `item` (which may stop early); true when more pages follow (see [`page_continues`]).
async fn read_page<F: ListFrame>(
    stream: Result<tonic::Response<tonic::Streaming<F>>, tonic::Status>,
    rpc: &str,
    cursor: &mut Option<bytes::Bytes>,
    mut item: impl FnMut(&F) -> Result<ControlFlow<()>, Failure>,
) -> Result<bool, Failure> {
    let transient = |status: tonic::Status| Failure::Transient(format!("{rpc}: {status}"));
    let mut stream = stream.map_err(transient)?.into_inner();
    let mut end = None;
    while let Some(frame) = stream.message().await.map_err(transient)? {
        if let Some(c) = frame.cursor() {
            *cursor = Some(c.clone());
        }
        if item(&frame)?.is_break() {
            return Ok(false);
        }
        if let Some(reason) = frame.end() {
            end = Some(reason);
            break;
        }
    }
    page_continues(end, cursor)
}

fn query(after: Option<bytes::Bytes>) -> QueryOptions {
    let mut options = QueryOptions::default();
    options.limit = Some(PAGE);
    options.after = after;
    options
}

/// Whether a List stream that ended with `end` has more pages: a page cut by a limit goes on
/// from its cursor; one without an end frame was cut short (retried); any other end reason
/// means the range was scanned whole.
fn page_continues(
    end: Option<Option<QueryEndReason>>,
    cursor: &Option<bytes::Bytes>,
) -> Result<bool, Failure> {
    match end {
        None => Err(Failure::Transient(
            "a List stream ended without its end frame".into(),
        )),
        Some(Some(QueryEndReason::ItemLimit | QueryEndReason::ScanLimit)) if cursor.is_some() => {
            Ok(true)
        }
        Some(Some(QueryEndReason::ItemLimit | QueryEndReason::ScanLimit)) => Err(Failure::Refused(
            "a List page was cut by a limit but gave no cursor".into(),
        )),
        Some(_) => Ok(false),
    }
}

/// Hands verified events to the core, one batch per checkpoint, in order (a round covers whole
/// checkpoints).
fn apply(
    shared: &Shared,
    options: &ReaderOptions,
    epoch: u64,
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
        reader::hand_to_core(shared, epoch, &batch, &mut TrustTheCommittee)?;
        crate::metrics::sui_light_client_events(batch.events.len());
        start = end;
    }
    Ok(())
}

/// The core's batch for `events` (all of `checkpoint`): the package's staking events decoded
/// from BCS, named by their verified position (`checkpoint:transaction`, index in the
/// transaction): the transaction digest a `ListEvents` frame carries is not authenticated.
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
        let digest = format!("{checkpoint}:{}", event.transaction_index);
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
    fn verified_events_become_the_cores_batch_named_by_their_verified_position() {
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
        // Not the frame's transaction digest ([4; 32]), which nothing authenticates.
        assert_eq!(first.id.tx_digest, "9:2");
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

    fn at(checkpoint: u64, tx: u64, index: u32) -> AuthenticatedEvent {
        let mut e = event([1; 32], "staking", "StakeWithdrawn", vec![1; 32], index);
        e.checkpoint = checkpoint;
        e.transaction_index = tx;
        e
    }

    fn refusal<T>(result: Result<T, Failure>) -> String {
        match result {
            Err(Failure::Refused(why)) => why,
            Err(Failure::Transient(why)) => panic!("transient, not refused: {why}"),
            Err(Failure::NotWriting) => panic!("not writing, not refused"),
            Ok(_) => panic!("accepted"),
        }
    }

    #[test]
    fn events_go_to_the_first_settlement_of_their_checkpoint_at_or_after_their_transaction() {
        // Two settlements in checkpoint 5 (after tx 2 and after tx 6), one in checkpoint 7.
        let settlements = [(5, 3), (5, 7), (7, 1)];
        let events = [
            at(5, 0, 0),
            at(5, 2, 0),
            at(5, 2, 1),
            at(5, 4, 0),
            at(7, 0, 0),
        ];
        let batches = bucket(&events, &settlements).unwrap();
        let shape: Vec<(u64, usize)> = batches
            .iter()
            .map(|b| (b.checkpoint_seq, b.commitments.len()))
            .collect();
        assert_eq!(shape, vec![(5, 3), (5, 1), (7, 1)]);
        assert_eq!(batches[0].commitments[2].event_idx, 1);
        assert_eq!(batches[0].commitments[0].digest, events[0].event.digest());

        // An event after the last settlement of its checkpoint, or in a checkpoint without one.
        for (events, settlements) in [
            (vec![at(5, 8, 0)], vec![(5, 7)]),
            (vec![at(6, 0, 0)], vec![(5, 7), (7, 0)]),
        ] {
            let why = refusal(bucket(&events, &settlements));
            assert!(why.contains("no settlement covers"), "{why}");
        }
    }

    #[tokio::test]
    async fn a_round_out_of_ledger_order_or_without_settlement_is_refused_before_any_proof() {
        // The client is never dialled: every case is refused before a proof is asked for.
        let client = sdk_client(
            tonic::transport::Endpoint::from_static("http://127.0.0.1:9").connect_lazy(),
        )
        .unwrap();
        let verified = Verified {
            head: EventStreamHead::default(),
            next: 1,
            committee: ValidatorCommittee {
                epoch: 0,
                members: vec![member(1, 1)],
            },
        };
        let mut light = LightClient::new(client, verified.committee.clone());
        let head = Address::TWO;
        type Case = (Vec<AuthenticatedEvent>, Vec<(u64, u64)>, &'static str);
        let cases: Vec<Case> = vec![
            (
                vec![at(5, 1, 0), at(5, 0, 0)],
                vec![(5, 3)],
                "out of ledger order",
            ),
            (
                vec![at(5, 1, 0), at(5, 1, 0)],
                vec![(5, 3)],
                "out of ledger order",
            ),
            (
                vec![at(5, 1, 0)],
                vec![(5, 3), (5, 3)],
                "settlements out of ledger order",
            ),
            (vec![at(5, 1, 0)], vec![], "no settlement transaction"),
        ];
        for (events, settlements, want) in cases {
            let why = refusal(
                verify_round(&mut light, &verified.head, head, &events, &settlements).await,
            );
            assert!(why.contains(want), "{want}: {why}");
        }
        // A quiet range: nothing to prove, nothing to apply.
        assert!(matches!(
            verify_round(&mut light, &verified.head, head, &[], &[]).await,
            Ok(None)
        ));
    }

    #[test]
    fn after_a_refusal_reading_resumes_after_the_last_proven_head() {
        let mut verified = Verified {
            head: EventStreamHead::default(),
            next: 900,
            committee: ValidatorCommittee {
                epoch: 0,
                members: vec![member(1, 1)],
            },
        };
        assert_eq!(verified.proven_next(10), 10, "no head yet: from the start");
        verified.head.num_events = 3;
        verified.head.checkpoint_seq = 41;
        assert_eq!(verified.proven_next(10), 42);
    }

    #[test]
    fn list_pages_continue_only_from_a_cursor_after_a_limit() {
        let cursor = Some(bytes::Bytes::from_static(b"c"));
        assert!(page_continues(Some(Some(QueryEndReason::ItemLimit)), &cursor).unwrap());
        assert!(!page_continues(Some(Some(QueryEndReason::CheckpointBound)), &cursor).unwrap());
        assert!(!page_continues(Some(None), &None).unwrap());
        assert!(matches!(
            page_continues(None, &cursor),
            Err(Failure::Transient(_))
        ));
        assert!(matches!(
            page_continues(Some(Some(QueryEndReason::ScanLimit)), &None),
            Err(Failure::Refused(_))
        ));
    }

    fn batch_error(events: &[AuthenticatedEvent], package: &[u8; 32]) -> String {
        batch(9, events, package).unwrap_err()
    }
}
