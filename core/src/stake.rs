//! The stake registry: who has staked how much, learned from the configured Move package's
//! `staking::StakeDeposited|StakeWithdrawn|StakeSlashed` events in checkpoint order, each event
//! applied once. A push is validated whole before anything changes; every structure is bounded.
//!
//! Idempotency with bounded memory: checkpoints never go back. A push for a checkpoint below
//! the last applied one is ignored entirely (the relay is replaying); a push for the last
//! applied checkpoint applies only events whose `(txDigest, eventSeq)` is not yet in the
//! remembered set of that checkpoint; a push for a later checkpoint forgets that set and starts
//! a new one. So memory is bounded by the events of one checkpoint, not by history.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use hashbrown::{HashMap, HashSet};
use serde_json::{Value, json};

use crate::token::{SuiAddress, parse_hex32};
use crate::{Error, UnixTime};

/// How the registry learned a stake, recorded with it (ARCHITECTURE.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TrustLevel {
    /// Pushed by the relay through `POST /api/v1/sui-events`: trusts the host.
    RelayPushed,
    /// Read by the enclave from a Sui full node over TLS ending in the enclave: trusts the node.
    NodeRead,
    /// From the Sui light client's authenticated event stream: trusts the validator committee.
    LightClient,
}

impl TrustLevel {
    /// Stable text for annotations and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::RelayPushed => "relay-pushed",
            Self::NodeRead => "node-read",
            Self::LightClient => "light-client",
        }
    }

    /// The level named by [`Self::as_str`]'s text.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::RelayPushed, Self::NodeRead, Self::LightClient]
            .into_iter()
            .find(|level| level.as_str() == text)
    }
}

/// One stake object as the registry knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stake {
    /// The address that owns the stake (and signs its tokens).
    pub owner: SuiAddress,
    /// Current amount in MIST (deposits minus slashes).
    pub amount: u64,
    /// Total slashed, MIST.
    pub slashed: u64,
    /// Withdrawn: the stake no longer admits, whatever its amount.
    pub withdrawn: bool,
    /// The source of the last event applied to it.
    pub trust: TrustLevel,
    /// Registry-wide change counter at this stake's last change; a changed value tells a
    /// holder of an earlier view that the stake changed.
    pub generation: u64,
    /// Checkpoint of the last event applied to it.
    pub checkpoint: u64,
}

/// Budgets and the admission minimum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StakeLimits {
    /// Most stakes held. Default 100,000.
    pub max_stakes: usize,
    /// Smallest amount that admits a node (`--min-stake`), MIST. Default 1 SUI = 10^9 MIST.
    pub min_stake: u64,
    /// Most events in one push. Default 10,000.
    pub max_events_per_push: usize,
    /// Largest single event (estimated JSON size). Default 16 KiB: a staking event is a few
    /// hundred bytes.
    pub max_event_bytes: usize,
    /// Most `(txDigest, eventSeq)` remembered for the last applied checkpoint. Default 100,000.
    pub max_seen_events: usize,
}

impl Default for StakeLimits {
    fn default() -> Self {
        Self {
            max_stakes: 100_000,
            min_stake: 1_000_000_000,
            max_events_per_push: 10_000,
            max_event_bytes: 16 << 10,
            max_seen_events: 100_000,
        }
    }
}

/// A Sui event id: the transaction digest (base58) and the event's index in it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId {
    /// Transaction digest, base58 as Sui shows it.
    pub tx_digest: String,
    /// Index of the event in the transaction.
    pub event_seq: u64,
}

/// What a staking event does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StakeEventKind {
    /// `StakeDeposited {stake_id, owner, amount}`: creates the stake or adds to it.
    Deposited {
        /// Owner address.
        owner: SuiAddress,
        /// Deposited MIST.
        amount: u64,
    },
    /// `StakeWithdrawn {stake_id}`.
    Withdrawn,
    /// `StakeSlashed {stake_id, amount}`: the stake is reduced by `amount`.
    Slashed {
        /// Slashed MIST.
        amount: u64,
    },
}

/// One staking event of the configured package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StakeEvent {
    /// The event's id.
    pub id: EventId,
    /// The stake object it concerns.
    pub stake_id: [u8; 32],
    /// What it does.
    pub kind: StakeEventKind,
}

/// The events of one push, already filtered to the configured package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventBatch {
    /// Checkpoint sequence number the events are final in.
    pub checkpoint: u64,
    /// The staking events, in the pushed order.
    pub events: Vec<StakeEvent>,
    /// Events left out: other packages, other modules or event types of ours.
    pub foreign: usize,
}

/// The step that decides whether a batch really happened on Sui. Each implementation says in
/// its name what it trusts; its [`TrustLevel`] is recorded on every stake it changes.
pub trait EventVerifier {
    /// The trust level recorded on stakes changed by batches this verifier passed.
    fn trust_level(&self) -> TrustLevel;
    /// Accepts or refuses `batch`; a refusal leaves the registry unchanged.
    fn verify(&mut self, batch: &EventBatch) -> Result<(), Error>;
}

/// Verifies nothing: the relay (the host) is believed. This is what the seed's push endpoint
/// offers, and why its stakes are recorded as [`TrustLevel::RelayPushed`].
#[derive(Debug, Clone, Copy, Default)]
pub struct TrustTheRelay;

impl EventVerifier for TrustTheRelay {
    fn trust_level(&self) -> TrustLevel {
        TrustLevel::RelayPushed
    }

    fn verify(&mut self, _batch: &EventBatch) -> Result<(), Error> {
        Ok(())
    }
}

/// Believes the Sui full node the enclave read the batch from, over TLS that ends in the
/// enclave: the host can delay or drop the bytes but not forge them, so its stakes are
/// recorded as [`TrustLevel::NodeRead`]. The full node itself is trusted.
#[derive(Debug, Clone, Copy, Default)]
pub struct TrustTheFullNode;

impl EventVerifier for TrustTheFullNode {
    fn trust_level(&self) -> TrustLevel {
        TrustLevel::NodeRead
    }

    fn verify(&mut self, _batch: &EventBatch) -> Result<(), Error> {
        Ok(())
    }
}

/// Believes only the Sui validator committee: the runtime hands over a batch after the light
/// client yielded its events, i.e. after it reconciled them against the stream head proven
/// in a checkpoint whose BLS signature verified against a committee ratcheted from the pinned
/// anchor. The cryptography runs in the runtime (the SDK's verifier), before this step; its
/// stakes are recorded as [`TrustLevel::LightClient`].
#[derive(Debug, Clone, Copy, Default)]
pub struct TrustTheCommittee;

impl EventVerifier for TrustTheCommittee {
    fn trust_level(&self) -> TrustLevel {
        TrustLevel::LightClient
    }

    fn verify(&mut self, _batch: &EventBatch) -> Result<(), Error> {
        Ok(())
    }
}

/// Why a stake stopped admitting during a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationReason {
    /// A `StakeWithdrawn` event.
    Withdrawn,
    /// A slash took it below the minimum.
    SlashedBelowMinimum,
}

/// A stake that admitted before a push and no longer does: the caller cordons and taints its
/// nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    /// The stake.
    pub stake_id: [u8; 32],
    /// Its owner.
    pub owner: SuiAddress,
    /// Why.
    pub reason: RevocationReason,
}

/// The result of one push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushOutcome {
    /// Events that changed the registry.
    pub applied: usize,
    /// Events left out: other packages or types, duplicates, a stale checkpoint, events on
    /// unknown or withdrawn stakes.
    pub ignored: usize,
    /// Last applied checkpoint after the push.
    pub checkpoint: u64,
    /// The whole push was for a checkpoint below the last applied one.
    pub stale: bool,
    /// Stakes that stopped admitting.
    pub revoked: Vec<Revocation>,
}

impl PushOutcome {
    /// The answer body: `{"status":"accepted","applied":N,"ignored":M,"checkpoint":C}`.
    pub fn to_json(&self) -> Value {
        json!({
            "status": "accepted",
            "applied": self.applied,
            "ignored": self.ignored,
            "checkpoint": self.checkpoint,
        })
    }
}

/// Stakes by object id, built from events.
#[derive(Debug)]
pub struct StakeRegistry {
    limits: StakeLimits,
    pub(crate) stakes: HashMap<[u8; 32], Stake>,
    pub(crate) last_checkpoint: Option<u64>,
    /// Event ids applied (or seen) at `last_checkpoint`.
    pub(crate) seen: HashSet<EventId>,
    pub(crate) generation: u64,
    pub(crate) last_update: Option<UnixTime>,
}

impl StakeRegistry {
    /// An empty registry.
    pub fn new(limits: StakeLimits) -> Self {
        Self {
            limits,
            stakes: HashMap::new(),
            last_checkpoint: None,
            seen: HashSet::new(),
            generation: 0,
            last_update: None,
        }
    }

    /// The budgets and minimum.
    pub fn limits(&self) -> &StakeLimits {
        &self.limits
    }

    /// Smallest amount that admits, MIST.
    pub fn min_stake(&self) -> u64 {
        self.limits.min_stake
    }

    /// A stake by object id.
    pub fn get(&self, stake_id: &[u8; 32]) -> Option<&Stake> {
        self.stakes.get(stake_id)
    }

    /// All stakes (arbitrary order).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8; 32], &Stake)> {
        self.stakes.iter()
    }

    /// Stakes held.
    pub fn len(&self) -> usize {
        self.stakes.len()
    }

    /// No stakes held.
    pub fn is_empty(&self) -> bool {
        self.stakes.is_empty()
    }

    /// The last applied checkpoint, from which a relay resumes.
    pub fn last_checkpoint(&self) -> Option<u64> {
        self.last_checkpoint
    }

    /// When the last accepted (non-stale) push arrived, for staleness reporting.
    pub fn last_update(&self) -> Option<UnixTime> {
        self.last_update
    }

    /// Records that a Sui source was seen up to date at `now` with nothing new to apply (the
    /// reader reached the chain's tip), so staleness counts from here.
    pub fn mark_synced(&mut self, now: UnixTime) {
        if self.last_update.is_none_or(|t| t < now) {
            self.last_update = Some(now);
        }
    }

    /// Seconds since the last Sui progress (applied batch or [`Self::mark_synced`]); `None`
    /// before any.
    pub fn staleness_secs(&self, now: UnixTime) -> Option<u64> {
        // Whole seconds elapsed (not a difference of truncated seconds, which overstates by
        // up to one).
        self.last_update
            .map(|t| now.nanos.saturating_sub(t.nanos) / 1_000_000_000)
    }

    /// Registry-wide change counter.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether `stake` admits a node now: not withdrawn and at least the minimum.
    pub fn admits(&self, stake: &Stake) -> bool {
        !stake.withdrawn && stake.amount >= self.limits.min_stake
    }

    /// Applies a `POST /api/v1/sui-events` body, believing the relay ([`TrustTheRelay`]).
    /// The caller has checked the body against the core body limit.
    pub fn apply_push(
        &mut self,
        body: &[u8],
        package: &[u8; 32],
        now: UnixTime,
    ) -> Result<PushOutcome, Error> {
        self.apply_push_with(body, package, &mut TrustTheRelay, now)
    }

    /// Parses a `POST /api/v1/sui-events` body into the batch [`Self::apply_push`] would
    /// apply (the same checks, nothing applied).
    pub fn parse_push(&self, body: &[u8], package: &[u8; 32]) -> Result<EventBatch, Error> {
        parse_push(body, package, &self.limits)
    }

    /// As [`Self::apply_push`], with the given verifier.
    pub fn apply_push_with(
        &mut self,
        body: &[u8],
        package: &[u8; 32],
        verifier: &mut dyn EventVerifier,
        now: UnixTime,
    ) -> Result<PushOutcome, Error> {
        let batch = parse_push(body, package, &self.limits)?;
        self.apply_batch(&batch, verifier, now)
    }

    /// Applies a parsed batch after `verifier` accepts it. All or nothing: on any error the
    /// registry is unchanged.
    pub fn apply_batch(
        &mut self,
        batch: &EventBatch,
        verifier: &mut dyn EventVerifier,
        now: UnixTime,
    ) -> Result<PushOutcome, Error> {
        if batch.events.len() > self.limits.max_events_per_push {
            return Err(too_many_events(batch.events.len(), &self.limits));
        }
        verifier.verify(batch)?;
        let trust = verifier.trust_level();
        if let Some(last) = self.last_checkpoint
            && batch.checkpoint < last
        {
            return Ok(PushOutcome {
                applied: 0,
                ignored: batch.events.len().saturating_add(batch.foreign),
                checkpoint: last,
                stale: true,
                revoked: Vec::new(),
            });
        }
        let same_checkpoint = self.last_checkpoint == Some(batch.checkpoint);

        // Pass 1: compute every change into an overlay; nothing in `self` changes.
        let mut overlay: BTreeMap<[u8; 32], Stake> = BTreeMap::new();
        let mut batch_seen: HashSet<&EventId> = HashSet::new();
        batch_seen
            .try_reserve(batch.events.len())
            .map_err(|_| out_of_memory())?;
        let mut applied = 0usize;
        let mut ignored = batch.foreign;
        let mut new_stakes = 0usize;
        for event in &batch.events {
            let duplicate =
                (same_checkpoint && self.seen.contains(&event.id)) || !batch_seen.insert(&event.id);
            if duplicate {
                ignored += 1;
                continue;
            }
            let current = overlay
                .get(&event.stake_id)
                .or_else(|| self.stakes.get(&event.stake_id));
            let next = match (&event.kind, current) {
                (StakeEventKind::Deposited { owner, amount }, None) => {
                    new_stakes += 1;
                    Some(Stake {
                        owner: *owner,
                        amount: *amount,
                        slashed: 0,
                        withdrawn: false,
                        trust,
                        generation: 0,
                        checkpoint: batch.checkpoint,
                    })
                }
                // Sui never reuses object ids, so a deposit on a withdrawn stake is not a
                // real top-up; it is ignored.
                (StakeEventKind::Deposited { .. }, Some(s)) if s.withdrawn => None,
                (StakeEventKind::Deposited { owner, amount }, Some(s)) => {
                    let total = s.amount.checked_add(*amount).ok_or_else(|| {
                        Error::BadRequest(format!(
                            "sui-events: event {}/{}: deposit overflows the stake amount",
                            event.id.tx_digest, event.id.event_seq
                        ))
                    })?;
                    Some(Stake {
                        owner: *owner,
                        amount: total,
                        ..s.clone()
                    })
                }
                (StakeEventKind::Withdrawn, Some(s)) if !s.withdrawn => Some(Stake {
                    withdrawn: true,
                    ..s.clone()
                }),
                (StakeEventKind::Slashed { amount }, Some(s)) if !s.withdrawn => Some(Stake {
                    amount: s.amount.saturating_sub(*amount),
                    slashed: s.slashed.saturating_add(*amount),
                    ..s.clone()
                }),
                // Withdraw or slash of an unknown or withdrawn stake: nothing to change.
                _ => None,
            };
            match next {
                Some(mut stake) => {
                    stake.trust = trust;
                    stake.checkpoint = batch.checkpoint;
                    overlay.insert(event.stake_id, stake);
                    applied += 1;
                }
                None => ignored += 1,
            }
        }
        if self.stakes.len().saturating_add(new_stakes) > self.limits.max_stakes {
            return Err(Error::InsufficientStorage(format!(
                "the stake registry is full ({} stakes)",
                self.limits.max_stakes
            )));
        }
        let seen_before = if same_checkpoint { self.seen.len() } else { 0 };
        if seen_before.saturating_add(batch_seen.len()) > self.limits.max_seen_events {
            return Err(Error::InsufficientStorage(format!(
                "more than {} events pushed for checkpoint {}",
                self.limits.max_seen_events, batch.checkpoint
            )));
        }
        self.stakes
            .try_reserve(new_stakes)
            .map_err(|_| out_of_memory())?;
        if same_checkpoint {
            self.seen
                .try_reserve(batch_seen.len())
                .map_err(|_| out_of_memory())?;
        }
        let mut fresh_seen: HashSet<EventId> = HashSet::new();
        if !same_checkpoint {
            fresh_seen
                .try_reserve(batch_seen.len())
                .map_err(|_| out_of_memory())?;
        }
        let mut revoked = Vec::new();
        revoked
            .try_reserve(overlay.len())
            .map_err(|_| out_of_memory())?;

        // Pass 2: commit. Only infallible steps from here on.
        let target = if same_checkpoint {
            &mut self.seen
        } else {
            &mut fresh_seen
        };
        for id in batch_seen {
            target.insert(id.clone());
        }
        if !same_checkpoint {
            self.seen = fresh_seen;
        }
        for (stake_id, mut stake) in overlay {
            let before = self.stakes.get(&stake_id).map(|s| self.admits(s));
            let after = self.admits(&stake);
            if before == Some(true) && !after {
                revoked.push(Revocation {
                    stake_id,
                    owner: stake.owner,
                    reason: if stake.withdrawn {
                        RevocationReason::Withdrawn
                    } else {
                        RevocationReason::SlashedBelowMinimum
                    },
                });
            }
            self.generation = self.generation.saturating_add(1);
            stake.generation = self.generation;
            self.stakes.insert(stake_id, stake);
        }
        self.last_checkpoint = Some(batch.checkpoint);
        self.last_update = Some(now);
        Ok(PushOutcome {
            applied,
            ignored,
            checkpoint: batch.checkpoint,
            stale: false,
            revoked,
        })
    }
}

fn out_of_memory() -> Error {
    Error::InsufficientStorage("sui-events: out of memory".to_string())
}

fn too_many_events(n: usize, limits: &StakeLimits) -> Error {
    Error::TooLarge(format!(
        "sui-events: the push has {n} events, above the limit of {}",
        limits.max_events_per_push
    ))
}

fn bad(what: String) -> Error {
    Error::BadRequest(format!("sui-events: {what}"))
}

/// Parses a push body `{"checkpoint": <u64>, "events": [<Sui event>...]}` and keeps the
/// staking events of `package`. Sizes: the caller bounds the body; here nesting is bounded to
/// 64, events per push and bytes per event to `limits`.
pub fn parse_push(
    body: &[u8],
    package: &[u8; 32],
    limits: &StakeLimits,
) -> Result<EventBatch, Error> {
    crate::json::check_depth(body, 64)?;
    let root: Value = serde_json::from_slice(body)
        .map_err(|e| bad(format!("the body is not valid JSON: {e}")))?;
    let root = root
        .as_object()
        .ok_or_else(|| bad("the body must be a JSON object".to_string()))?;
    let checkpoint = root
        .get("checkpoint")
        .and_then(as_u64)
        .ok_or_else(|| bad("checkpoint must be a u64".to_string()))?;
    let events = root
        .get("events")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("events must be an array".to_string()))?;
    if events.len() > limits.max_events_per_push {
        return Err(too_many_events(events.len(), limits));
    }
    let mut out = Vec::new();
    out.try_reserve(events.len()).map_err(|_| out_of_memory())?;
    let mut foreign = 0usize;
    for (i, event) in events.iter().enumerate() {
        if json_size(event, limits.max_event_bytes, 0).is_none() {
            return Err(Error::TooLarge(format!(
                "sui-events: events[{i}] is larger than {} bytes",
                limits.max_event_bytes
            )));
        }
        match parse_event(event, package).map_err(|what| bad(format!("events[{i}].{what}")))? {
            Some(e) => out.push(e),
            None => foreign += 1,
        }
    }
    Ok(EventBatch {
        checkpoint,
        events: out,
        foreign,
    })
}

/// One Sui event; `Ok(None)` when it is not a staking event of `package`.
fn parse_event(event: &Value, package: &[u8; 32]) -> Result<Option<StakeEvent>, String> {
    let obj = event
        .as_object()
        .ok_or_else(|| "must be an object".to_string())?;
    let id = obj.get("id").ok_or_else(|| "id is required".to_string())?;
    let tx_digest = id
        .get("txDigest")
        .and_then(Value::as_str)
        .filter(|d| is_digest(d))
        .ok_or_else(|| "id.txDigest must be a base58 transaction digest".to_string())?;
    let event_seq = id
        .get("eventSeq")
        .and_then(as_u64)
        .ok_or_else(|| "id.eventSeq must be a u64".to_string())?;
    let ty = obj
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| "type must be a string".to_string())?;
    // `<address>::<module>::<name>`; the address in the type is where the event struct was
    // defined, so it is the package identity (packageId names the called package).
    let mut parts = ty.splitn(3, "::");
    let (Some(addr), Some(module), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("type must be <package>::<module>::<name>".to_string());
    };
    let addr = parse_address_lenient(addr)
        .ok_or_else(|| "type must start with a 0x package address".to_string())?;
    if &addr != package || module != "staking" {
        return Ok(None);
    }
    let kind_name = match name {
        "StakeDeposited" | "StakeWithdrawn" | "StakeSlashed" => name,
        _ => return Ok(None),
    };
    let fields = obj
        .get("parsedJson")
        .and_then(Value::as_object)
        .ok_or_else(|| "parsedJson must be an object".to_string())?;
    let stake_id = fields
        .get("stake_id")
        .and_then(Value::as_str)
        .and_then(parse_hex32)
        .ok_or_else(|| "parsedJson.stake_id must be 0x and 64 hex digits".to_string())?;
    let amount = || {
        fields
            .get("amount")
            .and_then(as_u64)
            .ok_or_else(|| "parsedJson.amount must be a u64 decimal string (MIST)".to_string())
    };
    let kind = match kind_name {
        "StakeDeposited" => {
            let owner = fields
                .get("owner")
                .and_then(Value::as_str)
                .and_then(parse_hex32)
                .ok_or_else(|| "parsedJson.owner must be 0x and 64 hex digits".to_string())?;
            StakeEventKind::Deposited {
                owner: SuiAddress(owner),
                amount: amount()?,
            }
        }
        "StakeWithdrawn" => StakeEventKind::Withdrawn,
        _ => StakeEventKind::Slashed { amount: amount()? },
    };
    Ok(Some(StakeEvent {
        id: EventId {
            tx_digest: tx_digest.to_string(),
            event_seq,
        },
        stake_id,
        kind,
    }))
}

/// A u64 given as a JSON number or, as Sui's JSON shows u64 values, a decimal string.
fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s)
            if !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()) =>
        {
            s.parse().ok()
        }
        _ => None,
    }
}

/// A transaction digest: base58 of 32 bytes is 32 to 44 characters.
fn is_digest(d: &str) -> bool {
    (32..=44).contains(&d.len())
        && d.bytes()
            .all(|b| b.is_ascii_alphanumeric() && !matches!(b, b'0' | b'O' | b'I' | b'l'))
}

/// `0x` + 1 to 64 hex digits, left-padded (type strings may use the short form, e.g. `0x2`).
fn parse_address_lenient(text: &str) -> Option<[u8; 32]> {
    let digits = text.strip_prefix("0x")?;
    if digits.is_empty() || digits.len() > 64 {
        return None;
    }
    let mut full = String::with_capacity(66);
    full.push_str("0x");
    for _ in digits.len()..64 {
        full.push('0');
    }
    full.push_str(digits);
    parse_hex32(&full)
}

/// Estimated serialized size of `v`, or `None` once it passes `budget`. Depth is bounded by
/// the 64-level check on the body.
fn json_size(v: &Value, budget: usize, depth: usize) -> Option<usize> {
    if depth > 64 {
        return None;
    }
    let size = match v {
        Value::Null | Value::Bool(_) => 5,
        Value::Number(_) => 24,
        Value::String(s) => s.len().saturating_add(2),
        Value::Array(items) => {
            let mut total = 2usize;
            for item in items {
                total = total
                    .saturating_add(json_size(item, budget.checked_sub(total)?, depth + 1)? + 1);
                if total > budget {
                    return None;
                }
            }
            total
        }
        Value::Object(map) => {
            let mut total = 2usize;
            for (key, item) in map {
                total = total.saturating_add(key.len() + 4);
                if total > budget {
                    return None;
                }
                total = total.saturating_add(json_size(item, budget - total, depth + 1)?);
                if total > budget {
                    return None;
                }
            }
            total
        }
    };
    (size <= budget).then_some(size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::hex32;

    const PKG: [u8; 32] = [0x11; 32];
    const OTHER_PKG: [u8; 32] = [0x22; 32];
    const OWNER: SuiAddress = SuiAddress([0x33; 32]);
    const MIN: u64 = 1_000_000_000;
    const NOW: UnixTime = UnixTime::from_secs(1_767_225_600);

    fn digest(n: u64) -> String {
        let tail: String = n
            .to_string()
            .bytes()
            .map(|b| char::from(b'a' + (b - b'0')))
            .collect();
        format!("{tail:G>40}")
    }

    fn sid(n: u8) -> [u8; 32] {
        [n; 32]
    }

    fn event_in(pkg: &[u8; 32], tx: u64, seq: u64, ty: &str, fields: &str) -> String {
        format!(
            r#"{{"id":{{"txDigest":"{}","eventSeq":"{seq}"}},"packageId":"{p}","transactionModule":"staking","sender":"{o}","type":"{p}::{ty}","parsedJson":{fields},"timestampMs":"1767225600000"}}"#,
            digest(tx),
            p = hex32(pkg),
            o = OWNER,
        )
    }

    fn deposit(tx: u64, stake: u8, amount: u64) -> String {
        event_in(
            &PKG,
            tx,
            0,
            "staking::StakeDeposited",
            &format!(
                r#"{{"stake_id":"{}","owner":"{OWNER}","amount":"{amount}"}}"#,
                hex32(&sid(stake))
            ),
        )
    }

    fn withdraw(tx: u64, stake: u8) -> String {
        event_in(
            &PKG,
            tx,
            0,
            "staking::StakeWithdrawn",
            &format!(r#"{{"stake_id":"{}"}}"#, hex32(&sid(stake))),
        )
    }

    fn slash(tx: u64, stake: u8, amount: u64) -> String {
        event_in(
            &PKG,
            tx,
            0,
            "staking::StakeSlashed",
            &format!(
                r#"{{"stake_id":"{}","amount":"{amount}"}}"#,
                hex32(&sid(stake))
            ),
        )
    }

    fn body(checkpoint: u64, events: &[String]) -> Vec<u8> {
        format!(
            r#"{{"checkpoint":{checkpoint},"events":[{}]}}"#,
            events.join(",")
        )
        .into_bytes()
    }

    fn apply(
        r: &mut StakeRegistry,
        checkpoint: u64,
        events: &[String],
    ) -> Result<PushOutcome, Error> {
        r.apply_push(&body(checkpoint, events), &PKG, NOW)
    }

    fn new() -> StakeRegistry {
        StakeRegistry::new(StakeLimits::default())
    }

    /// Registry state that must not change on a refused push.
    type Snapshot = (Vec<([u8; 32], Stake)>, Option<u64>, u64, usize);

    fn snapshot(r: &StakeRegistry) -> Snapshot {
        let mut stakes: Vec<_> = r.iter().map(|(k, v)| (*k, v.clone())).collect();
        stakes.sort_by_key(|(k, _)| *k);
        (stakes, r.last_checkpoint(), r.generation(), r.seen.len())
    }

    #[test]
    fn deposit_withdraw_slash_and_the_answer() {
        let mut r = new();
        let out = apply(
            &mut r,
            10,
            &[
                deposit(1, 1, MIN),
                deposit(2, 2, 3 * MIN),
                deposit(3, 1, MIN),
            ],
        )
        .unwrap();
        assert_eq!((out.applied, out.ignored, out.checkpoint), (3, 0, 10));
        assert_eq!(
            out.to_json(),
            json!({"status":"accepted","applied":3,"ignored":0,"checkpoint":10})
        );
        let s = r.get(&sid(1)).unwrap();
        assert_eq!((s.owner, s.amount, s.withdrawn), (OWNER, 2 * MIN, false));
        assert_eq!(s.trust, TrustLevel::RelayPushed);
        assert_eq!(s.checkpoint, 10);
        assert_eq!(r.last_checkpoint(), Some(10));
        assert_eq!(r.last_update(), Some(NOW));

        let out = apply(
            &mut r,
            11,
            &[withdraw(4, 1), slash(5, 2, 2 * MIN + 1), slash(6, 9, 1)],
        )
        .unwrap();
        assert_eq!(
            (out.applied, out.ignored),
            (2, 1),
            "slash of an unknown stake is ignored"
        );
        assert_eq!(
            out.revoked,
            alloc::vec![
                Revocation {
                    stake_id: sid(1),
                    owner: OWNER,
                    reason: RevocationReason::Withdrawn
                },
                Revocation {
                    stake_id: sid(2),
                    owner: OWNER,
                    reason: RevocationReason::SlashedBelowMinimum
                },
            ]
        );
        assert!(r.get(&sid(1)).unwrap().withdrawn);
        let s2 = r.get(&sid(2)).unwrap();
        assert_eq!((s2.amount, s2.slashed), (MIN - 1, 2 * MIN + 1));
        assert!(!r.admits(s2));
        // Withdrawal is final: later deposits and slashes on it are ignored.
        let out = apply(&mut r, 12, &[deposit(7, 1, MIN), slash(8, 1, 1)]).unwrap();
        assert_eq!((out.applied, out.ignored), (0, 2));
        // Slashing more than the stake holds leaves zero; a stake already below the minimum
        // is not reported again.
        let out = apply(&mut r, 13, &[slash(9, 2, u64::MAX)]).unwrap();
        assert_eq!(r.get(&sid(2)).unwrap().amount, 0);
        assert!(out.revoked.is_empty());
    }

    #[test]
    fn events_apply_once_and_in_checkpoint_order() {
        let mut r = new();
        apply(&mut r, 5, &[deposit(1, 1, MIN)]).unwrap();
        // The same push again: every event is a duplicate.
        let out = apply(&mut r, 5, &[deposit(1, 1, MIN)]).unwrap();
        assert_eq!((out.applied, out.ignored, out.checkpoint), (0, 1, 5));
        assert_eq!(r.get(&sid(1)).unwrap().amount, MIN);
        // Same checkpoint, one old and one new event: only the new applies.
        let out = apply(&mut r, 5, &[deposit(1, 1, MIN), deposit(2, 1, MIN)]).unwrap();
        assert_eq!((out.applied, out.ignored), (1, 1));
        assert_eq!(r.get(&sid(1)).unwrap().amount, 2 * MIN);
        // A duplicate inside one push.
        let out = apply(&mut r, 6, &[deposit(3, 1, MIN), deposit(3, 1, MIN)]).unwrap();
        assert_eq!((out.applied, out.ignored), (1, 1));
        // Same tx digest, another eventSeq: a different event.
        let seq1 = event_in(
            &PKG,
            3,
            1,
            "staking::StakeDeposited",
            &format!(
                r#"{{"stake_id":"{}","owner":"{OWNER}","amount":"5"}}"#,
                hex32(&sid(1))
            ),
        );
        assert_eq!(apply(&mut r, 6, &[seq1]).unwrap().applied, 1);
        let before = snapshot(&r);
        // An out-of-order (older) checkpoint is ignored whole and the answer names the last.
        let out = apply(&mut r, 4, &[deposit(50, 7, MIN), withdraw(51, 1)]).unwrap();
        assert_eq!(
            (out.applied, out.ignored, out.checkpoint, out.stale),
            (0, 2, 6, true)
        );
        assert_eq!(snapshot(&r), before);
        // An empty push advances the checkpoint (relay progress).
        let out = apply(&mut r, 9, &[]).unwrap();
        assert_eq!((out.applied, out.ignored, out.checkpoint), (0, 0, 9));
        assert_eq!(r.last_checkpoint(), Some(9));
    }

    #[test]
    fn other_packages_modules_and_types_are_ignored() {
        let mut r = new();
        let fields = format!(
            r#"{{"stake_id":"{}","owner":"{OWNER}","amount":"{MIN}"}}"#,
            hex32(&sid(1))
        );
        let events = [
            event_in(&OTHER_PKG, 1, 0, "staking::StakeDeposited", &fields),
            event_in(&PKG, 2, 0, "other::StakeDeposited", &fields),
            event_in(&PKG, 3, 0, "staking::StakeMoved", &fields),
            event_in(&PKG, 4, 0, "staking::StakeDeposited<0x2::sui::SUI>", &fields),
            // Other packages' events have any shape.
            event_in(&OTHER_PKG, 5, 0, "dex::Swap", r#"{"pool":[1,2,3],"x":{"y":null}}"#),
            r#"{"id":{"txDigest":"GGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGG","eventSeq":"0"},"type":"0x2::coin::Minted","parsedJson":7}"#.into(),
        ];
        let out = apply(&mut r, 1, &events).unwrap();
        assert_eq!((out.applied, out.ignored), (0, 6));
        assert!(r.is_empty());
        // The package may be written in short form in the type.
        let mut one = [0u8; 32];
        one[31] = 1;
        let short = format!(
            r#"{{"id":{{"txDigest":"{}","eventSeq":0}},"type":"0x1::staking::StakeDeposited","parsedJson":{fields}}}"#,
            digest(9)
        );
        let out = r.apply_push(&body(2, &[short]), &one, NOW).unwrap();
        assert_eq!(out.applied, 1);
    }

    #[test]
    fn bad_pushes_are_refused_whole_with_a_clear_message() {
        let mut r = new();
        apply(&mut r, 3, &[deposit(1, 1, MIN)]).unwrap();
        let before = snapshot(&r);
        let good = deposit(2, 2, MIN);
        let no_owner = event_in(
            &PKG,
            3,
            0,
            "staking::StakeDeposited",
            &format!(r#"{{"stake_id":"{}","amount":"1"}}"#, hex32(&sid(3))),
        );
        let bad_amount = event_in(
            &PKG,
            3,
            0,
            "staking::StakeSlashed",
            &format!(r#"{{"stake_id":"{}","amount":"-1"}}"#, hex32(&sid(1))),
        );
        let big_amount = event_in(
            &PKG,
            3,
            0,
            "staking::StakeSlashed",
            &format!(
                r#"{{"stake_id":"{}","amount":"18446744073709551616"}}"#,
                hex32(&sid(1))
            ),
        );
        let short_stake = event_in(
            &PKG,
            3,
            0,
            "staking::StakeWithdrawn",
            r#"{"stake_id":"0x1"}"#,
        );
        let bad_digest = good.replace(&digest(2), "0OIl0OIl0OIl0OIl0OIl0OIl0OIl0OIl");
        let overflow = deposit(4, 1, u64::MAX);
        let cases: [(&[u8], u16, &str); 12] = [
            (b"not json", 400, "sui-events: the body is not valid JSON"),
            (b"[]", 400, "sui-events: the body must be a JSON object"),
            (br#"{"events":[]}"#, 400, "sui-events: checkpoint must be a u64"),
            (br#"{"checkpoint":-1,"events":[]}"#, 400, "sui-events: checkpoint must be a u64"),
            (br#"{"checkpoint":4}"#, 400, "sui-events: events must be an array"),
            (&body(4, &[good.clone(), no_owner]), 400, "sui-events: events[1].parsedJson.owner must be 0x and 64 hex digits"),
            (&body(4, &[good.clone(), bad_amount]), 400, "sui-events: events[1].parsedJson.amount must be a u64 decimal string (MIST)"),
            (&body(4, &[good.clone(), big_amount]), 400, "sui-events: events[1].parsedJson.amount must be a u64 decimal string (MIST)"),
            (&body(4, &[good.clone(), short_stake]), 400, "sui-events: events[1].parsedJson.stake_id must be 0x and 64 hex digits"),
            (&body(4, &[bad_digest]), 400, "sui-events: events[0].id.txDigest must be a base58 transaction digest"),
            (&body(4, &[good.clone(), r#"{"id":{"txDigest":"GGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGG","eventSeq":"0"},"type":"staking"}"#.into()]), 400, "sui-events: events[1].type must be <package>::<module>::<name>"),
            (&body(4, &[good.clone(), overflow]), 400, "sui-events: event"),
        ];
        for (input, code, message) in cases {
            let err = r.apply_push(input, &PKG, NOW).unwrap_err();
            assert_eq!(err.code(), code, "{message}");
            assert!(
                err.message().starts_with(message),
                "{} vs {message}",
                err.message()
            );
            assert_eq!(snapshot(&r), before, "{message}");
        }
    }

    #[test]
    fn huge_payloads_and_budgets() {
        let mut r = StakeRegistry::new(StakeLimits {
            max_stakes: 2,
            max_events_per_push: 5,
            max_seen_events: 6,
            ..StakeLimits::default()
        });
        apply(&mut r, 1, &[deposit(1, 1, MIN)]).unwrap();
        let before = snapshot(&r);
        // A huge parsedJson (even in an event we would ignore) is 413 with the event's index.
        let huge = event_in(
            &OTHER_PKG,
            2,
            0,
            "x::Y",
            &format!(r#"{{"blob":"{}"}}"#, "a".repeat(20_000)),
        );
        let err = apply(&mut r, 2, &[deposit(2, 2, MIN), huge]).unwrap_err();
        assert_eq!(err.code(), 413);
        assert_eq!(
            err.message(),
            "sui-events: events[1] is larger than 16384 bytes"
        );
        let wide = event_in(
            &OTHER_PKG,
            2,
            0,
            "x::Y",
            &format!("[{}]", alloc::vec!["1"; 1000].join(",")),
        );
        assert_eq!(apply(&mut r, 2, &[wide]).unwrap_err().code(), 413);
        // Too many events in one push.
        let many: Vec<String> = (10..16).map(|i| deposit(i, 1, 1)).collect();
        let err = apply(&mut r, 2, &many).unwrap_err();
        assert_eq!(err.code(), 413);
        assert_eq!(
            err.message(),
            "sui-events: the push has 6 events, above the limit of 5"
        );
        // Nesting deeper than 64 is refused before parsing.
        let deep = format!(
            r#"{{"checkpoint":2,"events":[{}1{}]}}"#,
            "[".repeat(100),
            "]".repeat(100)
        );
        assert_eq!(
            r.apply_push(deep.as_bytes(), &PKG, NOW).unwrap_err().code(),
            400
        );
        // Stake budget: a push that would exceed it changes nothing (507).
        let err = apply(&mut r, 2, &[deposit(20, 2, MIN), deposit(21, 3, MIN)]).unwrap_err();
        assert_eq!(err.code(), 507);
        assert_eq!(snapshot(&r), before);
        // Seen-event budget of one checkpoint.
        apply(
            &mut r,
            1,
            &[
                deposit(30, 1, 1),
                deposit(31, 1, 1),
                deposit(32, 1, 1),
                deposit(33, 1, 1),
            ],
        )
        .unwrap();
        let err = apply(&mut r, 1, &[deposit(34, 1, 1), deposit(35, 1, 1)]).unwrap_err();
        assert_eq!(err.code(), 507);
        // A new checkpoint starts a new seen set.
        assert_eq!(
            apply(&mut r, 2, &[deposit(34, 1, 1), deposit(35, 1, 1)])
                .unwrap()
                .applied,
            2
        );
    }

    #[test]
    fn the_verifier_decides_and_names_the_trust() {
        struct Refuse;
        impl EventVerifier for Refuse {
            fn trust_level(&self) -> TrustLevel {
                TrustLevel::LightClient
            }
            fn verify(&mut self, _: &EventBatch) -> Result<(), Error> {
                Err(Error::Unavailable("no proof".into()))
            }
        }
        struct Committee;
        impl EventVerifier for Committee {
            fn trust_level(&self) -> TrustLevel {
                TrustLevel::LightClient
            }
            fn verify(&mut self, _: &EventBatch) -> Result<(), Error> {
                Ok(())
            }
        }
        let mut r = new();
        let b = body(1, &[deposit(1, 1, MIN)]);
        assert_eq!(
            r.apply_push_with(&b, &PKG, &mut Refuse, NOW)
                .unwrap_err()
                .code(),
            503
        );
        assert!(r.is_empty() && r.last_checkpoint().is_none());
        r.apply_push_with(&b, &PKG, &mut Committee, NOW).unwrap();
        assert_eq!(r.get(&sid(1)).unwrap().trust, TrustLevel::LightClient);
        assert_eq!(TrustLevel::RelayPushed.as_str(), "relay-pushed");
        assert_eq!(TrustLevel::NodeRead.as_str(), "node-read");
        assert_eq!(TrustLevel::LightClient.as_str(), "light-client");
    }
}
