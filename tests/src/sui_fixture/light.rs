//! A level-2 (`light-client`) fixture Sui full node: a scripted chain whose checkpoint summaries
//! are BLS-signed by a test validator committee (keys made here), with the package's
//! authenticated event stream folded into an on-chain `EventStreamHead` (the SDK's own MMR
//! fold), each checkpoint committing to its modified objects through the OCS Merkle tree, and
//! the SDK's generated `LedgerService` and v2alpha `ProofService` servers over TLS answering
//! what `sui_rpc::light_client::events::AuthenticatedEventsClient` asks — with fault injection
//! that forges what the client must refuse. The same chain is readable at level 1
//! (`GetCheckpoint` carries `transactions.digest`/`transactions.events` as in `super`).

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::StreamExt;
use sui_crypto::bls12381::{Bls12381PrivateKey, ValidatorCommitteeSignatureAggregator};
use sui_rpc::proto::sui::rpc::v2::ledger_service_server::{LedgerService, LedgerServiceServer};
use sui_rpc::proto::sui::rpc::v2::{
    Bcs, Checkpoint, Epoch, EventFilter, ExecutedTransaction, GetCheckpointRequest,
    GetCheckpointResponse, GetEpochRequest, GetEpochResponse, GetServiceInfoRequest,
    GetServiceInfoResponse, ListEventsRequest, ListEventsResponse, ListTransactionsRequest,
    ListTransactionsResponse, QueryEnd, QueryEndReason, QueryOptions, TransactionEvents,
    TransactionFilter, Watermark, event_literal, get_checkpoint_request, transaction_literal,
};
use sui_rpc::proto::sui::rpc::v2alpha::proof_service_server::{ProofService, ProofServiceServer};
use sui_rpc::proto::sui::rpc::v2alpha::{
    GetCheckpointObjectProofRequest, GetCheckpointObjectProofResponse,
    OcsInclusionProof as ProtoInclusion, OcsNonInclusionProof as ProtoNonInclusion,
    get_checkpoint_object_proof_response,
};
use sui_sdk_types::framework::{
    EventBatch, EventCommitment, EventStreamHead, apply_stream_updates,
    derive_event_stream_head_object_id,
};
use sui_sdk_types::hash::Hasher;
use sui_sdk_types::merkle::{MerkleNonInclusionProof, MerkleTree};
use sui_sdk_types::proof::{OcsInclusionProof, OcsNonInclusionProof};
use sui_sdk_types::{
    Address, CheckpointCommitment, CheckpointSummary, Digest, EndOfEpochData, GasCostSummary,
    MoveStruct, Object, ObjectData, ObjectReference, Owner, SignedCheckpointSummary, StructTag,
    ValidatorAggregatedSignature, ValidatorCommittee, ValidatorCommitteeMember,
};
use tonic::codegen::{BoxFuture, BoxStream, Service, http};
use tonic::{Request, Response, Status};

use super::{ChainEvent, Pki, event, pki, tx_digest};

/// Stake of every test validator (equal stake; Sui's total is 10,000 split among members).
const VALIDATOR_STAKE: u64 = 100;
/// Virtual time: checkpoint `n` is stamped `GENESIS_MS + n * CHECKPOINT_MS` (Sui makes about
/// four checkpoints a second).
pub const CHECKPOINT_MS: u64 = 250;
const GENESIS_MS: u64 = 1_767_225_600_000;
/// The v2 List API clamps pages to 1,000 items.
const MAX_PAGE: u32 = 1000;
const DEFAULT_PAGE: u32 = 50;

/// Fault injection, consulted on every call.
#[derive(Clone, Debug, Default)]
pub struct LightFaults {
    /// The next N calls (any RPC) answer `UNAVAILABLE`.
    pub errors: u32,
    /// Every call waits this long first.
    pub delay: Duration,
    /// Every call answers `UNAVAILABLE` (a Sui outage).
    pub down: bool,
    /// `ListEvents` streams are cut at the transport after this many frames: every open
    /// connection of the node is dropped (as when a relay between restarts mid-page).
    pub drop_after_frames: Option<u32>,
    /// `ListEvents` streams end with an `UNAVAILABLE` status after this many frames (a
    /// server-side abort, the connection stays up).
    pub unavailable_after_frames: Option<u32>,
    /// `ListEvents` sends every event twice.
    pub duplicate: bool,
    /// `ListEvents` swaps adjacent events of a page (the events trade places; the positions
    /// they are served at stay ascending, as the List API promises).
    pub reorder: bool,
    /// `ListEvents` sends adjacent event frames in swapped order (each keeps its own position,
    /// so positions go backwards inside a page).
    pub reorder_frames: bool,
    /// `ListEvents` serves deposits with a bigger amount than the chain committed to.
    pub forge_event: bool,
    /// `ListEvents` adds, after each transaction's stream events, an event of another package
    /// that is not in the stream head.
    pub foreign_in_stream: bool,
    /// Summaries (`GetCheckpoint` and proofs) are signed by keys outside the committee.
    pub non_member_signature: bool,
    /// End-of-epoch summaries name a committee of outsider keys and are signed by keys that
    /// are not the current committee; later epochs' summaries are signed by those outsiders.
    pub wrong_committee_transition: bool,
    /// `GetCheckpoint(latest)` and `GetServiceInfo` report this tip.
    pub tip_override: Option<u64>,
    /// Proofs of the stream head serve a head claiming one more event than the chain's, with
    /// an OCS tree rebuilt over it (a Merkle proof consistent with a root the signed summary
    /// does not commit to).
    pub forge_head_proof: bool,
    /// `ListEvents` and `ListTransactions` leave out this checkpoint's stream events and
    /// settlement (withheld: the range looks quiet).
    pub hide_checkpoint: Option<u64>,
}

/// One epoch's committee and its private keys.
struct EpochKeys {
    committee: ValidatorCommittee,
    keys: Vec<Bls12381PrivateKey>,
    first: u64,
    last: Option<u64>,
}

/// One stream event, precomputed at push time.
struct StreamEvent {
    checkpoint: u64,
    tx: u64,
    index: u32,
    source: ChainEvent,
}

/// One checkpoint, precomputed at push time (signature made on first use).
struct CheckpointData {
    summary: CheckpointSummary,
    signature: Option<ValidatorAggregatedSignature>,
    /// User transactions (each a list of events), as level 1 reads them.
    transactions: Vec<Vec<ChainEvent>>,
    /// Index of the settlement transaction (after the user transactions) if the checkpoint
    /// had stream events.
    settlement: Option<u64>,
    /// The objects this checkpoint modified, sorted by id: the OCS leaves.
    objects: Vec<Object>,
    refs: Vec<ObjectReference>,
    tree: MerkleTree,
}

/// One List page's window (see `LightChain::page`).
#[derive(Clone, Copy)]
struct Page {
    lo: usize,
    take: usize,
    hi: usize,
    cursor_bound: bool,
    start_cp: u64,
    end_cp: u64,
    tip: u64,
}

impl Page {
    /// Why the page ends and the checkpoint scanned through, `last` being the checkpoint of
    /// its last item; `requested_end` is the request's (exclusive) end checkpoint.
    fn end(&self, last: u64, requested_end: Option<u64>) -> (QueryEndReason, u64) {
        if self.lo + self.take < self.hi {
            (QueryEndReason::ItemLimit, last.saturating_sub(1))
        } else if self.cursor_bound {
            (QueryEndReason::CursorBound, last.saturating_sub(1))
        } else if requested_end.is_some_and(|e| e <= self.tip + 1) {
            (
                QueryEndReason::CheckpointBound,
                self.end_cp.saturating_sub(1),
            )
        } else {
            (QueryEndReason::LedgerTip, self.tip)
        }
    }

    /// The watermark cursor: the page's last position, or the one it started after.
    fn cursor(&self, options: &QueryOptions) -> Option<usize> {
        (self.take > 0)
            .then(|| self.lo + self.take - 1)
            .or_else(|| options.after.as_ref().and_then(|a| cursor_index(a).ok()))
    }
}

/// The scripted chain and its faults, shared with the test.
pub struct LightChain {
    /// Faults in force.
    pub faults: LightFaults,
    package: [u8; 32],
    stream_id: Address,
    head_id: Address,
    sender: Address,
    epochs: Vec<EpochKeys>,
    checkpoints: Vec<CheckpointData>,
    /// Every stream event, in (checkpoint, transaction, event) order.
    stream: Vec<StreamEvent>,
    /// Every settlement (checkpoint, transaction index), ascending.
    settlements: Vec<(u64, u64)>,
    head: EventStreamHead,
    network_transactions: u64,
    /// Keys outside every committee (the forger's).
    outsiders: Vec<Bls12381PrivateKey>,
    /// Calls served, by any RPC.
    served: u64,
    /// Parsed event types, by name.
    types: std::collections::HashMap<String, StructTag>,
    module: sui_sdk_types::Identifier,
}

impl std::fmt::Debug for LightChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LightChain")
            .field("faults", &self.faults)
            .field("tip", &self.tip())
            .field("epoch", &(self.epochs.len() - 1))
            .field("stream_events", &self.stream.len())
            .finish()
    }
}

/// A fresh BLS private key (random bytes reduced below the group order).
fn fresh_key() -> Bls12381PrivateKey {
    use std::hash::{BuildHasher, Hasher as _};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut seed = Vec::new();
    for _ in 0..4 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        seed.extend(h.finish().to_le_bytes());
    }
    let mut bytes = Hasher::digest(&seed).into_inner();
    // Big-endian scalar below r (0x73ed...) and not zero.
    bytes[0] &= 0x3f;
    bytes[31] |= 1;
    Bls12381PrivateKey::new(bytes).expect("bls key")
}

fn committee_of(epoch: u64, keys: &[Bls12381PrivateKey]) -> ValidatorCommittee {
    ValidatorCommittee {
        epoch,
        members: keys
            .iter()
            .map(|k| ValidatorCommitteeMember {
                public_key: k.public_key(),
                stake: VALIDATOR_STAKE,
            })
            .collect(),
    }
}

/// The committee's aggregate signature over `summary` by the smallest quorum of its members
/// (the rest are "offline"), made with the SDK's aggregator (which verifies each share).
fn quorum_sign(
    committee: &ValidatorCommittee,
    keys: &[Bls12381PrivateKey],
    summary: &CheckpointSummary,
) -> ValidatorAggregatedSignature {
    let total: u64 = committee.members.iter().map(|m| m.stake).sum();
    let threshold = ((total - 1) / 3) * 2 + 1;
    let mut aggregator =
        ValidatorCommitteeSignatureAggregator::new_checkpoint_summary(committee.clone(), summary)
            .expect("aggregator");
    let mut weight = 0;
    for (key, member) in keys.iter().zip(&committee.members) {
        if weight >= threshold {
            break;
        }
        aggregator
            .add_signature(key.sign_checkpoint_summary(summary))
            .expect("share");
        weight += member.stake;
    }
    aggregator.finish().expect("quorum")
}

fn hex_address(a: &Address) -> String {
    a.to_string()
}

fn object_with(type_: &str, id: Address, version: u64, tail: &[u8], owner: Owner) -> Object {
    let mut contents = id.as_bytes().to_vec();
    contents.extend_from_slice(tail);
    let tag = StructTag::from_str(type_).expect("struct tag");
    let data = MoveStruct::new(tag, false, version, contents).expect("move struct");
    Object::new(ObjectData::Struct(data), owner, Digest::new([9; 32]), 1_000)
}

const HEAD_TYPE: &str = "0x2::dynamic_field::Field<0x2::accumulator::Key<0x2::accumulator_settlement::EventStreamHead>, 0x2::accumulator_settlement::EventStreamHead>";

impl LightChain {
    /// Genesis: checkpoint 0 (no events) of epoch 0, committee of `validators` fresh BLS keys
    /// with equal stake.
    pub fn new(package: [u8; 32], validators: usize) -> Self {
        let keys: Vec<_> = (0..validators.max(1)).map(|_| fresh_key()).collect();
        let stream_id = Address::new(package);
        let mut chain = LightChain {
            faults: LightFaults::default(),
            package,
            stream_id,
            head_id: derive_event_stream_head_object_id(stream_id),
            sender: Address::new([0x5e; 32]),
            epochs: vec![EpochKeys {
                committee: committee_of(0, &keys),
                keys,
                first: 0,
                last: None,
            }],
            checkpoints: Vec::new(),
            stream: Vec::new(),
            settlements: Vec::new(),
            head: EventStreamHead::default(),
            network_transactions: 0,
            outsiders: (0..validators.max(1)).map(|_| fresh_key()).collect(),
            served: 0,
            types: Default::default(),
            module: sui_sdk_types::Identifier::from_static("staking"),
        };
        chain.append(Vec::new(), None);
        chain
    }

    /// BCS of the epoch-0 `sui_sdk_types::ValidatorCommittee`: the trust anchor the enclave
    /// pins.
    pub fn trust_anchor_bcs(&self) -> Vec<u8> {
        bcs::to_bytes(&self.epochs[0].committee).expect("committee bcs")
    }

    /// The epoch-0 committee (the trust anchor, decoded).
    pub fn trust_anchor(&self) -> ValidatorCommittee {
        self.epochs[0].committee.clone()
    }

    /// Appends one checkpoint: one transaction per event list (our package's events go into
    /// the package's authenticated stream; `ChainEvent::Foreign` is an event of another
    /// package, not in the stream; `Malformed` is in the stream with contents that don't
    /// match the schema), then the settlement transaction that updates the stream head when
    /// the checkpoint had stream events. Returns its sequence number.
    pub fn push(&mut self, transactions: Vec<Vec<ChainEvent>>) -> u64 {
        self.append(transactions, None)
    }

    /// Appends `n` checkpoints without events (the chain keeps ticking).
    pub fn tick(&mut self, n: u64) -> u64 {
        for _ in 0..n {
            self.append(Vec::new(), None);
        }
        self.tip()
    }

    /// Ends the current epoch: its last checkpoint carries `end_of_epoch_data` with a new
    /// committee of `validators` fresh keys; returns that checkpoint's number.
    pub fn end_epoch(&mut self, validators: usize) -> u64 {
        let keys: Vec<_> = (0..validators.max(1)).map(|_| fresh_key()).collect();
        let next = committee_of(self.epochs.len() as u64, &keys);
        let last = self.append(
            Vec::new(),
            Some(EndOfEpochData {
                next_epoch_committee: next.members.clone(),
                next_epoch_protocol_version: 1,
                epoch_commitments: Vec::new(),
            }),
        );
        if let Some(current) = self.epochs.last_mut() {
            current.last = Some(last);
        }
        self.epochs.push(EpochKeys {
            committee: next,
            keys,
            first: last + 1,
            last: None,
        });
        last
    }

    /// Highest checkpoint.
    pub fn tip(&self) -> u64 {
        self.checkpoints.len() as u64 - 1
    }

    /// Number of stream events so far.
    pub fn stream_events(&self) -> u64 {
        self.stream.len() as u64
    }

    /// The current epoch.
    pub fn epoch(&self) -> u64 {
        self.epochs.len() as u64 - 1
    }

    /// The on-chain stream head after the latest settlement.
    pub fn head(&self) -> EventStreamHead {
        self.head.clone()
    }

    /// The object id of the package's `EventStreamHead` (a dynamic field of `0xacc`).
    pub fn head_object_id(&self) -> Address {
        self.head_id
    }

    /// RPC calls served so far (any method).
    pub fn served(&self) -> u64 {
        self.served
    }

    fn append(&mut self, transactions: Vec<Vec<ChainEvent>>, end: Option<EndOfEpochData>) -> u64 {
        let seq = self.checkpoints.len() as u64;
        let epoch = self.epoch();
        let mut commitments = Vec::new();
        for (t, events) in transactions.iter().enumerate() {
            for (i, e) in events.iter().enumerate() {
                if matches!(e, ChainEvent::Foreign) {
                    continue;
                }
                let sdk = self.sdk_event(e);
                commitments.push(EventCommitment {
                    checkpoint_seq: seq,
                    transaction_idx: t as u64,
                    event_idx: i as u64,
                    digest: sdk.digest(),
                });
                self.stream.push(StreamEvent {
                    checkpoint: seq,
                    tx: t as u64,
                    index: i as u32,
                    source: e.clone(),
                });
            }
        }
        // The objects this checkpoint modified: the clock (every checkpoint), one gas coin per
        // user transaction, and the stream head when a settlement folded events into it.
        let mut objects = vec![object_with(
            "0x2::clock::Clock",
            Address::from_static("0x6"),
            seq + 1,
            &(GENESIS_MS + seq * CHECKPOINT_MS).to_le_bytes(),
            Owner::Shared(1),
        )];
        for t in 0..transactions.len() {
            let mut seed = b"gas".to_vec();
            seed.extend(seq.to_le_bytes());
            seed.extend((t as u64).to_le_bytes());
            let id = Address::new(Hasher::digest(&seed).into_inner());
            objects.push(object_with(
                "0x2::coin::Coin<0x2::sui::SUI>",
                id,
                seq + 1,
                &1_000_000_000u64.to_le_bytes(),
                Owner::Address(self.sender),
            ));
        }
        let mut settlement = None;
        if !commitments.is_empty() {
            let tx = transactions.len() as u64;
            self.head = apply_stream_updates(
                self.head.clone(),
                &[EventBatch {
                    checkpoint_seq: seq,
                    commitments,
                }],
            )
            .expect("stream fold");
            let mut tail = self.stream_id.as_bytes().to_vec();
            tail.extend(bcs::to_bytes(&self.head).expect("head bcs"));
            objects.push(object_with(
                HEAD_TYPE,
                self.head_id,
                seq + 1,
                &tail,
                Owner::Object(Address::from_static("0xacc")),
            ));
            settlement = Some(tx);
            self.settlements.push((seq, tx));
        }
        objects.sort_by_key(|o| o.object_id());
        let refs: Vec<ObjectReference> = objects
            .iter()
            .map(|o| ObjectReference::new(o.object_id(), o.version(), o.digest()))
            .collect();
        let tree = MerkleTree::build_from_unserialized(refs.iter()).expect("ocs tree");
        let root = Digest::new(tree.root().bytes());
        let artifacts = Hasher::digest(bcs::to_bytes(&vec![root]).expect("artifacts bcs"));
        let tx_count = transactions.len() as u64 + u64::from(settlement.is_some());
        self.network_transactions += tx_count;
        let mut content = Vec::new();
        for t in 0..tx_count {
            content.extend(tx_digest(seq, t as usize).into_bytes());
        }
        let summary = CheckpointSummary {
            epoch,
            sequence_number: seq,
            network_total_transactions: self.network_transactions,
            content_digest: Hasher::digest(&content),
            previous_digest: self.checkpoints.last().map(|c| c.summary.digest()),
            epoch_rolling_gas_cost_summary: GasCostSummary::default(),
            timestamp_ms: GENESIS_MS + seq * CHECKPOINT_MS,
            checkpoint_commitments: vec![CheckpointCommitment::CheckpointArtifacts {
                digest: artifacts,
            }],
            end_of_epoch_data: end,
            version_specific_data: Vec::new(),
        };
        self.checkpoints.push(CheckpointData {
            summary,
            signature: None,
            transactions,
            settlement,
            objects,
            refs,
            tree,
        });
        seq
    }

    /// The SDK event for a chain event, named as level 1 names it (`super::event`) plus the
    /// sender the v2 `Event` carries: the proto the node serves, converted as the SDK
    /// converts it (the type parse is cached: a backlog has 100,000 of these).
    fn sdk_event(&mut self, e: &ChainEvent) -> sui_sdk_types::Event {
        let mut proto = event(&self.package, e);
        let type_name = proto.event_type.take().unwrap_or_default();
        let type_ = match self.types.get(&type_name) {
            Some(t) => t.clone(),
            None => {
                let mut probe = proto.clone();
                probe.sender = Some(hex_address(&self.sender));
                probe.event_type = Some(type_name.clone());
                let full = sui_sdk_types::Event::try_from(&probe).expect("fixture event converts");
                self.types.insert(type_name, full.type_.clone());
                return full;
            }
        };
        sui_sdk_types::Event {
            package_id: Address::new(self.package),
            module: self.module.clone(),
            sender: self.sender,
            type_,
            contents: proto
                .contents
                .and_then(|c| c.value)
                .map(|v| v.to_vec())
                .unwrap_or_default(),
        }
    }

    fn epoch_of(&self, summary_epoch: u64) -> &EpochKeys {
        &self.epochs[summary_epoch as usize]
    }

    /// The summary and signature served for checkpoint `n` under the faults in force.
    fn served_summary(
        &mut self,
        n: u64,
    ) -> Option<(CheckpointSummary, ValidatorAggregatedSignature)> {
        let faults = self.faults.clone();
        let cp = self.checkpoints.get(n as usize)?;
        let mut summary = cp.summary.clone();
        let epoch = summary.epoch;
        let forged_transition =
            faults.wrong_committee_transition && (summary.end_of_epoch_data.is_some() || epoch > 0);
        if faults.wrong_committee_transition
            && let Some(end) = summary.end_of_epoch_data.as_mut()
        {
            end.next_epoch_committee = committee_of(epoch + 1, &self.outsiders).members;
        }
        if faults.non_member_signature || forged_transition {
            // The forger signs with its own keys, claiming the bitmap of a quorum.
            let signature = quorum_sign(
                &committee_of(epoch, &self.outsiders),
                &self.outsiders,
                &summary,
            );
            return Some((summary, signature));
        }
        if let Some(sig) = &cp.signature {
            return Some((summary, sig.clone()));
        }
        let keys = self.epoch_of(epoch);
        let sig = quorum_sign(&keys.committee, &keys.keys, &summary);
        self.checkpoints[n as usize].signature = Some(sig.clone());
        Some((summary, sig))
    }

    fn checkpoint_proto(&mut self, n: u64, mask: &Mask) -> Option<Checkpoint> {
        let mut out = Checkpoint::default();
        out.sequence_number = Some(n);
        if mask.wants("summary") || mask.wants("signature") || mask.wants("digest") {
            let (summary, signature) = self.served_summary(n)?;
            out.digest = Some(summary.digest().to_string());
            if mask.wants("summary") {
                let mut s = sui_rpc::proto::sui::rpc::v2::CheckpointSummary::default();
                s.bcs = Some(Bcs::serialize(&summary).expect("summary bcs"));
                s.digest = Some(summary.digest().to_string());
                s.epoch = Some(summary.epoch);
                s.sequence_number = Some(n);
                out.summary = Some(s);
            }
            if mask.wants("signature") {
                out.signature = Some(signature.into());
            }
        }
        let cp = self.checkpoints.get(n as usize)?;
        if mask.wants("transactions") {
            let mut txs: Vec<ExecutedTransaction> = cp
                .transactions
                .iter()
                .enumerate()
                .map(|(t, events)| {
                    let mut tx = ExecutedTransaction::default();
                    tx.digest = Some(tx_digest(n, t));
                    let mut te = TransactionEvents::default();
                    te.events = events.iter().map(|e| event(&self.package, e)).collect();
                    tx.events = Some(te);
                    tx.checkpoint = Some(n);
                    tx.transaction_index = Some(t as u64);
                    tx
                })
                .collect();
            if let Some(s) = cp.settlement {
                let mut tx = ExecutedTransaction::default();
                tx.digest = Some(tx_digest(n, s as usize));
                tx.events = Some(TransactionEvents::default());
                tx.checkpoint = Some(n);
                tx.transaction_index = Some(s);
                txs.push(tx);
            }
            out.transactions = txs;
        }
        Some(out)
    }

    /// The proto v2 `Event` served for stream event `i`, with its position.
    fn stream_event_proto(
        &self,
        e: &StreamEvent,
        source: &ChainEvent,
        index: u32,
    ) -> sui_rpc::proto::sui::rpc::v2::Event {
        let mut proto = event(&self.package, source);
        if matches!(source, ChainEvent::Foreign) {
            // Emitted by the module that defines its type, of another package.
            proto.package_id = Some("0x2".into());
            proto.module = Some("coin".into());
        }
        proto.sender = Some(hex_address(&self.sender));
        proto.checkpoint = Some(e.checkpoint);
        proto.transaction_digest = Some(tx_digest(e.checkpoint, e.tx as usize));
        proto.transaction_index = Some(e.tx);
        proto.event_index = Some(index);
        proto
    }

    /// First stream-event index at or after checkpoint `cp`.
    fn stream_index_at(&self, cp: u64) -> usize {
        self.stream.partition_point(|e| e.checkpoint < cp)
    }

    /// The window of one List page over items sorted by checkpoint (`before(cp)`: how many
    /// lie before checkpoint `cp`), per the v2 contract: the checkpoint range (end exclusive,
    /// clamped to the tip), the `after`/`before` cursors, and the limit (default 50, at most
    /// 1,000).
    fn page(
        &self,
        start: Option<u64>,
        end: Option<u64>,
        options: &QueryOptions,
        before: impl Fn(u64) -> usize,
    ) -> Result<Page, Status> {
        let tip = self.tip();
        let start_cp = start.unwrap_or(0);
        let end_cp = end.map_or(tip + 1, |e| e.min(tip + 1));
        let mut lo = before(start_cp);
        if let Some(after) = options.after.as_ref() {
            lo = lo.max(cursor_index(after)? + 1);
        }
        let mut hi = before(end_cp);
        let mut cursor_bound = false;
        if let Some(cursor) = options.before.as_ref() {
            let b = cursor_index(cursor)?;
            if b < hi {
                hi = b;
                cursor_bound = true;
            }
        }
        let limit = options.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE) as usize;
        Ok(Page {
            lo,
            take: hi.saturating_sub(lo).min(limit),
            hi,
            cursor_bound,
            start_cp,
            end_cp,
            tip,
        })
    }

    fn list_events(&self, request: &ListEventsRequest) -> Result<Vec<ListEventsResponse>, Status> {
        let options = request.options.clone().unwrap_or_default();
        check_ascending(&options)?;
        let ours = match request.filter.as_ref() {
            None => {
                return Err(Status::unimplemented(
                    "fixture: ListEvents needs a stream filter",
                ));
            }
            Some(filter) => self.event_filter_is_our_stream(filter)?,
        };
        let all: &[StreamEvent] = if ours { &self.stream } else { &[] };
        let page = self.page(
            request.start_checkpoint,
            request.end_checkpoint,
            &options,
            |cp| all.partition_point(|e| e.checkpoint < cp),
        )?;
        let Page {
            lo, take, start_cp, ..
        } = page;
        let faults = &self.faults;
        let items: Vec<usize> = (lo..lo + take)
            .filter(|&i| faults.hide_checkpoint != Some(all[i].checkpoint))
            .collect();
        // The payload served at each position (reorder swaps neighbours' payloads).
        let mut payload: Vec<usize> = items.clone();
        if faults.reorder {
            for pair in payload.chunks_mut(2) {
                pair.reverse();
            }
        }
        let mut order: Vec<usize> = (0..items.len()).collect();
        if faults.reorder_frames {
            for pair in order.chunks_mut(2) {
                pair.reverse();
            }
        }
        let mut frames = Vec::new();
        for k in order {
            let i = items[k];
            let e = &all[i];
            let mut source = all[payload[k]].source.clone();
            if faults.forge_event
                && let ChainEvent::Deposit { amount, .. } = &mut source
            {
                *amount = amount.saturating_add(1_000_000_000);
            }
            let frame = event_frame(
                self.stream_event_proto(e, &source, e.index),
                i,
                e.checkpoint,
            );
            frames.push(frame.clone());
            if faults.duplicate {
                frames.push(frame);
            }
            let last_of_tx = all
                .get(i + 1)
                .is_none_or(|n| (n.checkpoint, n.tx) != (e.checkpoint, e.tx));
            if faults.foreign_in_stream && last_of_tx {
                let cp = &self.checkpoints[e.checkpoint as usize];
                let after_last = cp.transactions[e.tx as usize].len() as u32;
                let foreign = self.stream_event_proto(e, &ChainEvent::Foreign, after_last);
                frames.push(event_frame(foreign, i, e.checkpoint));
            }
        }
        let last = items.last().map_or(start_cp, |&i| all[i].checkpoint);
        let (reason, scanned) = page.end(last, request.end_checkpoint);
        // Past the page scanned, hidden events included (a cursor never goes back).
        let cursor = page.cursor(&options);
        let mut end = ListEventsResponse::default();
        end.watermark = Some(watermark(cursor, scanned));
        end.end = Some(query_end(reason));
        frames.push(end);
        Ok(frames)
    }

    fn event_filter_is_our_stream(&self, filter: &EventFilter) -> Result<bool, Status> {
        let [term] = filter.terms.as_slice() else {
            return Err(Status::unimplemented("fixture: one filter term only"));
        };
        let [literal] = term.literals.as_slice() else {
            return Err(Status::unimplemented("fixture: one filter literal only"));
        };
        match &literal.predicate {
            Some(event_literal::Predicate::EventStreamHead(f)) if !literal.negated => {
                let id = parse_address(f.stream_id.as_deref())?;
                Ok(id == self.stream_id)
            }
            _ => Err(Status::unimplemented(
                "fixture: event_stream_head filter only",
            )),
        }
    }

    fn list_transactions(
        &self,
        request: &ListTransactionsRequest,
    ) -> Result<Vec<ListTransactionsResponse>, Status> {
        let options = request.options.clone().unwrap_or_default();
        check_ascending(&options)?;
        let ours = match request.filter.as_ref() {
            None => {
                return Err(Status::unimplemented(
                    "fixture: ListTransactions needs an affected_object filter",
                ));
            }
            Some(filter) => self.tx_filter_is_our_head(filter)?,
        };
        let all: &[(u64, u64)] = if ours { &self.settlements } else { &[] };
        let page = self.page(
            request.start_checkpoint,
            request.end_checkpoint,
            &options,
            |cp| all.partition_point(|s| s.0 < cp),
        )?;
        let Page {
            lo, take, start_cp, ..
        } = page;
        let mut frames = Vec::new();
        for (i, &(cp, t)) in all.iter().enumerate().skip(lo).take(take) {
            if self.faults.hide_checkpoint == Some(cp) {
                continue;
            }
            let mut tx = ExecutedTransaction::default();
            tx.digest = Some(tx_digest(cp, t as usize));
            tx.checkpoint = Some(cp);
            tx.transaction_index = Some(t);
            let mut frame = ListTransactionsResponse::default();
            frame.transaction = Some(tx);
            frame.watermark = Some(watermark(Some(i), cp.saturating_sub(1)));
            frames.push(frame);
        }
        let last_cp = if take > 0 {
            all[lo + take - 1].0
        } else {
            start_cp
        };
        let (reason, scanned) = page.end(last_cp, request.end_checkpoint);
        let cursor = page.cursor(&options);
        let mut end = ListTransactionsResponse::default();
        end.watermark = Some(watermark(cursor, scanned));
        end.end = Some(query_end(reason));
        frames.push(end);
        Ok(frames)
    }

    fn tx_filter_is_our_head(&self, filter: &TransactionFilter) -> Result<bool, Status> {
        let [term] = filter.terms.as_slice() else {
            return Err(Status::unimplemented("fixture: one filter term only"));
        };
        let [literal] = term.literals.as_slice() else {
            return Err(Status::unimplemented("fixture: one filter literal only"));
        };
        match &literal.predicate {
            Some(transaction_literal::Predicate::AffectedObject(f)) if !literal.negated => {
                let id = parse_address(f.object_id.as_deref())?;
                Ok(id == self.head_id)
            }
            _ => Err(Status::unimplemented(
                "fixture: affected_object filter only",
            )),
        }
    }

    /// The stream head object `real` with one more event claimed.
    fn forged_head(&self, real: &Object) -> Object {
        let contents = real.as_struct().expect("head is a struct").contents();
        let mut head: EventStreamHead = bcs::from_bytes(&contents[64..]).expect("head bcs");
        head.num_events += 1;
        let mut tail = self.stream_id.as_bytes().to_vec();
        tail.extend(bcs::to_bytes(&head).expect("head bcs"));
        object_with(
            HEAD_TYPE,
            self.head_id,
            real.version(),
            &tail,
            Owner::Object(Address::from_static("0xacc")),
        )
    }

    fn object_proof(
        &mut self,
        object_id: Address,
        n: u64,
    ) -> Result<GetCheckpointObjectProofResponse, Status> {
        let (summary, signature) = self
            .served_summary(n)
            .ok_or_else(|| Status::not_found(format!("checkpoint {n} not found")))?;
        let cp = &self.checkpoints[n as usize];
        let tree_root = Digest::new(cp.tree.root().bytes());
        let position = cp.refs.partition_point(|r| r.object_id() < &object_id);
        let proof = match cp.refs.get(position) {
            Some(r) if r.object_id() == &object_id => {
                let mut object = cp.objects[position].clone();
                let mut object_ref = r.clone();
                let mut sdk = OcsInclusionProof {
                    merkle_proof: cp.tree.get_proof(position).expect("leaf proof"),
                    leaf_index: position as u64,
                    tree_root,
                };
                if self.faults.forge_head_proof && object_id == self.head_id {
                    object = self.forged_head(&object);
                    let mut refs = cp.refs.clone();
                    object_ref =
                        ObjectReference::new(object.object_id(), object.version(), object.digest());
                    refs[position] = object_ref.clone();
                    let tree = MerkleTree::build_from_unserialized(refs.iter()).expect("ocs tree");
                    sdk = OcsInclusionProof {
                        merkle_proof: tree.get_proof(position).expect("leaf proof"),
                        leaf_index: position as u64,
                        tree_root: Digest::new(tree.root().bytes()),
                    };
                }
                let mut proto = ProtoInclusion::from(&sdk);
                proto.object_ref = Some(object_ref.into());
                proto.object_data = Some(bcs::to_bytes(&object).expect("object bcs").into());
                get_checkpoint_object_proof_response::Proof::Inclusion(proto)
            }
            _ => {
                let neighbour = |i: usize| {
                    cp.refs
                        .get(i)
                        .map(|r| (r.clone(), cp.tree.get_proof(i).expect("leaf proof")))
                };
                let left = position.checked_sub(1).and_then(neighbour);
                let sdk = OcsNonInclusionProof {
                    non_inclusion_proof: MerkleNonInclusionProof::new(
                        position,
                        left,
                        neighbour(position),
                    ),
                    tree_root,
                };
                get_checkpoint_object_proof_response::Proof::NonInclusion(ProtoNonInclusion::from(
                    &sdk,
                ))
            }
        };
        let signed = SignedCheckpointSummary {
            checkpoint: summary,
            signature,
        };
        let mut out = GetCheckpointObjectProofResponse::default();
        out.checkpoint_summary = Some(bcs::to_bytes(&signed).expect("signed summary bcs").into());
        out.proof = Some(proof);
        Ok(out)
    }
}

fn check_ascending(options: &QueryOptions) -> Result<(), Status> {
    match options.ordering {
        None | Some(0) | Some(1) => Ok(()),
        Some(_) => Err(Status::unimplemented("fixture: ascending order only")),
    }
}

fn parse_address(s: Option<&str>) -> Result<Address, Status> {
    let s = s.ok_or_else(|| Status::invalid_argument("missing address"))?;
    Address::from_str(s).map_err(|e| Status::invalid_argument(format!("bad address {s}: {e}")))
}

fn cursor_index(bytes: &[u8]) -> Result<usize, Status> {
    let b: [u8; 8] = bytes
        .try_into()
        .map_err(|_| Status::invalid_argument("bad cursor"))?;
    Ok(u64::from_be_bytes(b) as usize)
}

fn watermark(cursor: Option<usize>, checkpoint: u64) -> Watermark {
    let mut w = Watermark::default();
    w.cursor = cursor.map(|c| bytes::Bytes::copy_from_slice(&(c as u64).to_be_bytes()));
    w.checkpoint = Some(checkpoint);
    w
}

fn query_end(reason: QueryEndReason) -> QueryEnd {
    let mut end = QueryEnd::default();
    end.reason = Some(reason as i32);
    end
}

fn event_frame(
    e: sui_rpc::proto::sui::rpc::v2::Event,
    index: usize,
    checkpoint: u64,
) -> ListEventsResponse {
    let mut frame = ListEventsResponse::default();
    frame.event = Some(e);
    // An event frame's watermark: scanned fully through the previous checkpoint.
    frame.watermark = Some(watermark(Some(index), checkpoint.saturating_sub(1)));
    frame
}

/// The request's read mask (absent = every field).
struct Mask(Option<Vec<String>>);

impl Mask {
    fn wants(&self, field: &str) -> bool {
        match &self.0 {
            None => true,
            Some(paths) => paths.iter().any(|p| {
                p == field
                    || p.strip_prefix(field).is_some_and(|r| r.starts_with('.'))
                    || field
                        .strip_prefix(p.as_str())
                        .is_some_and(|r| r.starts_with('.'))
            }),
        }
    }
}

#[derive(Clone)]
struct LightService {
    chain: Arc<Mutex<LightChain>>,
    connections: Connections,
}

/// The node's open connections, so that a fault (or the test) can cut them at the transport.
#[derive(Clone, Default)]
struct Connections(Arc<Mutex<Vec<std::sync::Weak<CutSwitch>>>>);

#[derive(Default)]
struct CutSwitch {
    cut: std::sync::atomic::AtomicBool,
    /// The read and the write waker, woken when the connection is cut.
    wakers: Mutex<[Option<std::task::Waker>; 2]>,
}

impl Connections {
    fn track(&self, io: tokio::net::TcpStream) -> Severable {
        let switch = Arc::new(CutSwitch::default());
        let mut all = self.0.lock().expect("connections lock");
        all.retain(|w| w.strong_count() > 0);
        all.push(Arc::downgrade(&switch));
        Severable { io, switch }
    }

    fn cut_all(&self) {
        let all = std::mem::take(&mut *self.0.lock().expect("connections lock"));
        for switch in all.iter().filter_map(std::sync::Weak::upgrade) {
            switch.cut.store(true, std::sync::atomic::Ordering::SeqCst);
            let wakers = std::mem::take(&mut *switch.wakers.lock().expect("wakers lock"));
            for waker in wakers.into_iter().flatten() {
                waker.wake();
            }
        }
    }
}

/// A TCP connection that fails every read and write once cut (hyper then drops it, and the
/// client sees the connection close mid-stream).
struct Severable {
    io: tokio::net::TcpStream,
    switch: Arc<CutSwitch>,
}

impl Severable {
    fn check(&self, cx: &Context<'_>, slot: usize) -> Result<(), std::io::Error> {
        self.switch.wakers.lock().expect("wakers lock")[slot] = Some(cx.waker().clone());
        if self.switch.cut.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "fixture: connection cut",
            ));
        }
        Ok(())
    }
}

impl tokio::io::AsyncRead for Severable {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        self.check(cx, 0)?;
        std::pin::Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Severable {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.check(cx, 1)?;
        std::pin::Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        self.check(cx, 1)?;
        std::pin::Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

impl tonic::transport::server::Connected for Severable {
    type ConnectInfo = ();

    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl LightService {
    /// The fault gate every call passes: counts the call, consumes an injected error, waits
    /// the delay, then fails if the node is down or an error was due.
    async fn gate(&self) -> Result<LightFaults, Status> {
        let faults = {
            let mut chain = self.chain.lock().expect("chain lock");
            chain.served += 1;
            let f = chain.faults.clone();
            if chain.faults.errors > 0 {
                chain.faults.errors -= 1;
            }
            f
        };
        tokio::time::sleep(faults.delay).await;
        if faults.errors > 0 || faults.down {
            return Err(Status::unavailable("fixture: injected error"));
        }
        Ok(faults)
    }
}

#[tonic::async_trait]
impl LedgerService for LightService {
    async fn get_service_info(
        &self,
        _request: Request<GetServiceInfoRequest>,
    ) -> Result<Response<GetServiceInfoResponse>, Status> {
        let faults = self.gate().await?;
        let chain = self.chain.lock().expect("chain lock");
        let mut info = GetServiceInfoResponse::default();
        info.chain = Some("nautilus-fixture".into());
        info.epoch = Some(chain.epoch());
        info.checkpoint_height = Some(faults.tip_override.unwrap_or(chain.tip()));
        info.lowest_available_checkpoint = Some(0);
        info.lowest_available_checkpoint_objects = Some(0);
        Ok(Response::new(info))
    }

    async fn get_checkpoint(
        &self,
        request: Request<GetCheckpointRequest>,
    ) -> Result<Response<GetCheckpointResponse>, Status> {
        let faults = self.gate().await?;
        let request = request.into_inner();
        let mask = Mask(request.read_mask.map(|m| m.paths));
        let mut chain = self.chain.lock().expect("chain lock");
        let n = match request.checkpoint_id {
            None => faults.tip_override.unwrap_or(chain.tip()),
            Some(get_checkpoint_request::CheckpointId::SequenceNumber(n)) => n,
            Some(get_checkpoint_request::CheckpointId::Digest(d)) => {
                let digest = Digest::from_str(&d)
                    .map_err(|e| Status::invalid_argument(format!("bad digest: {e}")))?;
                chain
                    .checkpoints
                    .iter()
                    .position(|c| c.summary.digest() == digest)
                    .ok_or_else(|| Status::not_found(format!("checkpoint {d} not found")))?
                    as u64
            }
            Some(_) => return Err(Status::invalid_argument("unknown checkpoint id")),
        };
        let cp = chain
            .checkpoint_proto(n, &mask)
            .ok_or_else(|| Status::not_found(format!("checkpoint {n} not found")))?;
        let mut answer = GetCheckpointResponse::default();
        answer.checkpoint = Some(cp);
        Ok(Response::new(answer))
    }

    async fn get_epoch(
        &self,
        request: Request<GetEpochRequest>,
    ) -> Result<Response<GetEpochResponse>, Status> {
        self.gate().await?;
        let chain = self.chain.lock().expect("chain lock");
        let e = request.into_inner().epoch.unwrap_or(chain.epoch());
        let keys = chain
            .epochs
            .get(e as usize)
            .ok_or_else(|| Status::not_found(format!("epoch {e} not found")))?;
        let mut epoch = Epoch::default();
        epoch.epoch = Some(e);
        epoch.first_checkpoint = Some(keys.first);
        // A forged transition is forged in the signed summaries; the epoch boundary the node
        // reports (unauthenticated, used to find them) stays the chain's.
        epoch.last_checkpoint = keys.last;
        let mut answer = GetEpochResponse::default();
        answer.epoch = Some(epoch);
        Ok(Response::new(answer))
    }

    async fn list_transactions(
        &self,
        request: Request<ListTransactionsRequest>,
    ) -> Result<Response<BoxStream<ListTransactionsResponse>>, Status> {
        self.gate().await?;
        let frames = self
            .chain
            .lock()
            .expect("chain lock")
            .list_transactions(request.get_ref())?;
        let stream = futures::stream::iter(frames.into_iter().map(Ok));
        Ok(Response::new(Box::pin(stream)))
    }

    async fn list_events(
        &self,
        request: Request<ListEventsRequest>,
    ) -> Result<Response<BoxStream<ListEventsResponse>>, Status> {
        let faults = self.gate().await?;
        let mut frames: Vec<Result<ListEventsResponse, Status>> = self
            .chain
            .lock()
            .expect("chain lock")
            .list_events(request.get_ref())?
            .into_iter()
            .map(Ok)
            .collect();
        if let Some(n) = faults.unavailable_after_frames
            && (n as usize) < frames.len()
        {
            frames.truncate(n as usize);
            frames.push(Err(Status::unavailable("fixture: stream aborted")));
        }
        if let Some(n) = faults.drop_after_frames
            && (n as usize) < frames.len()
        {
            frames.truncate(n as usize);
            let connections = self.connections.clone();
            // Let the frames before the cut reach the client, then drop every connection.
            let cut = futures::stream::once(async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                connections.cut_all();
                std::future::pending::<Result<ListEventsResponse, Status>>().await
            });
            let stream = futures::stream::iter(frames).chain(cut);
            return Ok(Response::new(Box::pin(stream)));
        }
        Ok(Response::new(Box::pin(futures::stream::iter(frames))))
    }
}

#[tonic::async_trait]
impl ProofService for LightService {
    async fn get_checkpoint_object_proof(
        &self,
        request: Request<GetCheckpointObjectProofRequest>,
    ) -> Result<Response<GetCheckpointObjectProofResponse>, Status> {
        self.gate().await?;
        let request = request.into_inner();
        let id = parse_address(request.object_id.as_deref())?;
        let n = request
            .checkpoint
            .ok_or_else(|| Status::invalid_argument("missing checkpoint"))?;
        let answer = self.chain.lock().expect("chain lock").object_proof(id, n)?;
        Ok(Response::new(answer))
    }
}

/// Routes the two gRPC services of one node (tonic's router is not compiled in here).
#[derive(Clone)]
struct Routes {
    ledger: LedgerServiceServer<LightService>,
    proof: ProofServiceServer<LightService>,
}

impl Service<http::Request<tonic::body::Body>> for Routes {
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        if request
            .uri()
            .path()
            .starts_with("/sui.rpc.v2alpha.ProofService/")
        {
            let mut proof = self.proof.clone();
            Box::pin(async move { proof.call(request).await })
        } else {
            let mut ledger = self.ledger.clone();
            Box::pin(async move { ledger.call(request).await })
        }
    }
}

/// A running level-2 fixture node (stops on drop).
pub struct LightNode {
    /// Where it listens (TLS, gRPC).
    pub addr: SocketAddr,
    /// The test CA that signed its certificate (PEM).
    pub ca_pem: String,
    /// The chain, editable while it runs.
    pub chain: Arc<Mutex<LightChain>>,
    pki: Pki,
    connections: Connections,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl LightNode {
    /// Cuts every open connection at the transport (the node keeps listening).
    pub fn cut_connections(&self) {
        self.connections.cut_all();
    }

    /// `https://127.0.0.1:PORT`, for a tonic `Endpoint`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Stops this node and starts it again on the same port with the same certificate (so a
    /// client pinning `ca_pem` reconnects), serving the same chain.
    pub fn restart(mut self, rt: &tokio::runtime::Handle) -> LightNode {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        serve(rt, self.chain.clone(), self.addr, self.pki.clone())
    }
}

impl Drop for LightNode {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Starts a level-2 fixture node on 127.0.0.1 (a fresh port) with its own test CA.
pub fn start_light(rt: &tokio::runtime::Handle, chain: Arc<Mutex<LightChain>>) -> LightNode {
    start_light_on(rt, chain, "127.0.0.1:0".parse().expect("addr"))
}

/// Another node certified by the same test CA as `other` (one CA file trusts both).
pub fn start_light_sharing_ca(
    rt: &tokio::runtime::Handle,
    chain: Arc<Mutex<LightChain>>,
    other: &LightNode,
) -> LightNode {
    serve(
        rt,
        chain,
        "127.0.0.1:0".parse().expect("addr"),
        other.pki.clone(),
    )
}

/// As [`start_light`], on `addr` (to restart a node on the same port).
pub fn start_light_on(
    rt: &tokio::runtime::Handle,
    chain: Arc<Mutex<LightChain>>,
    addr: SocketAddr,
) -> LightNode {
    serve(rt, chain, addr, pki())
}

fn serve(
    rt: &tokio::runtime::Handle,
    chain: Arc<Mutex<LightChain>>,
    addr: SocketAddr,
    pki: Pki,
) -> LightNode {
    // A node stopped on the same port a moment ago may still be closing its listener.
    let listener = rt.block_on(async {
        let mut tries = 0;
        loop {
            match tokio::net::TcpListener::bind(addr).await {
                Ok(listener) => break listener,
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && tries < 100 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("bind light fixture node on {addr}: {e}"),
            }
        }
    });
    let addr = listener.local_addr().expect("local addr");
    let identity = tonic::transport::Identity::from_pem(pki.cert_pem.clone(), pki.key_pem.clone());
    let connections = Connections::default();
    let node_connections = connections.clone();
    let service = LightService {
        chain: chain.clone(),
        connections: connections.clone(),
    };
    let routes = Routes {
        ledger: LedgerServiceServer::new(service.clone()),
        proof: ProofServiceServer::new(service),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    rt.spawn(async move {
        let tracker = connections.clone();
        let incoming = futures::stream::unfold(listener, move |listener| {
            let tracker = tracker.clone();
            async move {
                // TCP_NODELAY as real full nodes serve: small answers must not wait on
                // delayed ACKs.
                let accepted = listener.accept().await.map(|(io, _)| {
                    let _ = io.set_nodelay(true);
                    tracker.track(io)
                });
                Some((accepted, listener))
            }
        });
        let result = tonic::transport::Server::builder()
            .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
            .expect("fixture tls")
            .serve_with_incoming_shutdown(routes, incoming, async {
                let _ = stopped.await;
            })
            .await;
        if let Err(e) = result {
            eprintln!("light fixture node stopped: {e}");
        }
    });
    LightNode {
        addr,
        ca_pem: pki.ca_pem.clone(),
        chain,
        pki,
        connections: node_connections,
        stop: Some(stop),
    }
}
