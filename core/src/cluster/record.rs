//! The journal's entries: what the durable log persists, in the order they happened. Most are
//! object [`Change`]s; the others are the stake batches the registry applied, which change no
//! object themselves (the cordons and evictions a revocation causes follow as changes of their
//! own), so a replay learns every stake, its trust level and the Sui position from them.
//!
//! # Encoding of a stake batch (format version 2, kind `3`)
//!
//! # Encoding of a compaction mark (format version 2, kind `4`)
//!
//! | bytes | field |
//! |-------|-------|
//! | 1     | format version, `2` |
//! | 1     | kind, `4` |
//! | 8     | revision (`u64`): the store's revision after the mark |
//! | 8     | `at`: nanoseconds since 1970 (`u64`), the compactor's tick |
//!
//! # Encoding of a stake batch
//!
//! All integers little-endian; lengths count bytes. A [`Change`]'s encoding is in
//! [`super::change`]; both start with the format version and the kind, so one reader tells them
//! apart.
//!
//! | bytes | field |
//! |-------|-------|
//! | 1     | format version, `2` |
//! | 1     | kind, `3` |
//! | 8     | `at`: nanoseconds since 1970 (`u64`), when the registry applied the batch |
//! | 1     | trust: `0` relay-pushed, `1` node-read, `2` light-client |
//! | 8     | checkpoint (`u64`) |
//! | 4     | events left out as foreign (`u32`) |
//! | 4     | event count (`u32`), then each event: |
//! | 2 + n | transaction digest (`u16` length, UTF-8) |
//! | 8     | event index in the transaction (`u64`) |
//! | 32    | stake object id |
//! | 1     | `0` deposited (then 32 owner, 8 amount), `1` withdrawn, `2` slashed (then 8 amount) |

use alloc::vec::Vec;

use super::change::{Change, FORMAT_VERSION, Reader, malformed, put_short, put_u32};
use crate::stake::{EventBatch, EventId, StakeEvent, StakeEventKind, TrustLevel};
use crate::token::SuiAddress;
use crate::{Error, UnixTime};

/// The kind byte of a stake batch record.
const STAKES: u8 = 3;
/// The kind byte of a compaction mark.
const COMPACTION: u8 = 4;
/// The fewest bytes one encoded event takes (empty digest, withdrawn).
const MIN_EVENT_BYTES: usize = 2 + 8 + 32 + 1;

/// One journal entry.
#[derive(Debug, Clone)]
pub enum Record {
    /// An object's change.
    Change(Change),
    /// A batch of stake events the registry applied.
    Stakes(StakeRecord),
    /// The compactor's tick: the store's revision moves by one with no object changed, as
    /// kube's compaction (itself an etcd write) moves etcd's, so a LIST after a compaction is
    /// at a newer revision than every token the compaction expired.
    Compaction(CompactionMark),
}

/// A compaction tick's revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactionMark {
    /// The store's revision after the mark.
    pub revision: u64,
    /// When the compactor ticked.
    pub at: UnixTime,
}

impl CompactionMark {
    /// The mark's bytes (see the module documentation).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(18);
        out.push(FORMAT_VERSION);
        out.push(COMPACTION);
        out.extend_from_slice(&self.revision.to_le_bytes());
        out.extend_from_slice(&self.at.nanos.to_le_bytes());
        out
    }

    /// Reads a mark [`CompactionMark::encode`] wrote.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader { bytes };
        if r.u8()? != FORMAT_VERSION {
            return Err(malformed("unknown format version"));
        }
        if r.u8()? != COMPACTION {
            return Err(malformed("not a compaction mark"));
        }
        let revision = r.u64()?;
        let at = UnixTime { nanos: r.u64()? };
        if !r.bytes.is_empty() {
            return Err(malformed("trailing bytes"));
        }
        Ok(Self { revision, at })
    }
}

/// A stake batch as the registry applied it: replaying it applies the same events at the same
/// trust level, believing the record (it was verified before it was written, and the durable
/// log authenticates it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StakeRecord {
    /// When it was applied.
    pub at: UnixTime,
    /// The trust level its verifier gave.
    pub trust: TrustLevel,
    /// The events.
    pub batch: EventBatch,
}

impl Record {
    /// The store's revision after this entry, for a change or a compaction mark; `None` for a
    /// stake batch (it moves no revision).
    pub fn revision(&self) -> Option<u64> {
        match self {
            Self::Change(change) => Some(change.revision()),
            Self::Stakes(_) => None,
            Self::Compaction(mark) => Some(mark.revision),
        }
    }

    /// The entry's bytes.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Self::Change(change) => change.encode(),
            Self::Stakes(stakes) => stakes.encode(),
            Self::Compaction(mark) => mark.encode(),
        }
    }

    /// Reads an entry [`Record::encode`] wrote.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        match bytes.get(1) {
            Some(&STAKES) => StakeRecord::decode(bytes).map(Self::Stakes),
            Some(&COMPACTION) => CompactionMark::decode(bytes).map(Self::Compaction),
            _ => Change::decode(bytes).map(Self::Change),
        }
    }
}

/// Reads what [`trust_tag`] wrote.
pub(super) fn read_trust(r: &mut Reader<'_>) -> Result<TrustLevel, Error> {
    match r.u8()? {
        0 => Ok(TrustLevel::RelayPushed),
        1 => Ok(TrustLevel::NodeRead),
        2 => Ok(TrustLevel::LightClient),
        _ => Err(malformed("unknown trust level")),
    }
}

pub(super) fn trust_tag(trust: TrustLevel) -> u8 {
    match trust {
        TrustLevel::RelayPushed => 0,
        TrustLevel::NodeRead => 1,
        TrustLevel::LightClient => 2,
    }
}

impl StakeRecord {
    /// The record's bytes (see the module documentation).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(30 + self.batch.events.len() * 96);
        out.push(FORMAT_VERSION);
        out.push(STAKES);
        out.extend_from_slice(&self.at.nanos.to_le_bytes());
        out.push(trust_tag(self.trust));
        out.extend_from_slice(&self.batch.checkpoint.to_le_bytes());
        put_u32(&mut out, self.batch.foreign);
        put_u32(&mut out, self.batch.events.len());
        for event in self.batch.events.iter().take(u32::MAX as usize) {
            put_short(&mut out, event.id.tx_digest.as_bytes());
            out.extend_from_slice(&event.id.event_seq.to_le_bytes());
            out.extend_from_slice(&event.stake_id);
            match &event.kind {
                StakeEventKind::Deposited { owner, amount } => {
                    out.push(0);
                    out.extend_from_slice(&owner.0);
                    out.extend_from_slice(&amount.to_le_bytes());
                }
                StakeEventKind::Withdrawn => out.push(1),
                StakeEventKind::Slashed { amount } => {
                    out.push(2);
                    out.extend_from_slice(&amount.to_le_bytes());
                }
            }
        }
        out
    }

    /// Reads a record [`StakeRecord::encode`] wrote.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader { bytes };
        if r.u8()? != FORMAT_VERSION {
            return Err(malformed("unknown format version"));
        }
        if r.u8()? != STAKES {
            return Err(malformed("not a stake batch"));
        }
        let at = UnixTime { nanos: r.u64()? };
        let trust = read_trust(&mut r)?;
        let checkpoint = r.u64()?;
        let foreign = r.u32()? as usize;
        let count = r.u32()? as usize;
        // Never reserve more than the bytes left could hold.
        let mut events = Vec::with_capacity(count.min(r.bytes.len() / MIN_EVENT_BYTES));
        for _ in 0..count {
            let tx_digest = r.text()?;
            let event_seq = r.u64()?;
            let stake_id = r.array::<32>()?;
            let kind = match r.u8()? {
                0 => StakeEventKind::Deposited {
                    owner: SuiAddress(r.array::<32>()?),
                    amount: r.u64()?,
                },
                1 => StakeEventKind::Withdrawn,
                2 => StakeEventKind::Slashed { amount: r.u64()? },
                _ => return Err(malformed("unknown stake event")),
            };
            events.push(StakeEvent {
                id: EventId {
                    tx_digest,
                    event_seq,
                },
                stake_id,
                kind,
            });
        }
        if !r.bytes.is_empty() {
            return Err(malformed("trailing bytes"));
        }
        Ok(Self {
            at,
            trust,
            batch: EventBatch {
                checkpoint,
                events,
                foreign,
            },
        })
    }
}

/// Believes a recorded batch at the trust level it was applied with.
pub(crate) struct Recorded(pub(crate) TrustLevel);

impl crate::stake::EventVerifier for Recorded {
    fn trust_level(&self) -> TrustLevel {
        self.0
    }

    fn verify(&mut self, _batch: &EventBatch) -> Result<(), Error> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    fn record() -> StakeRecord {
        StakeRecord {
            at: UnixTime::from_secs(1_700_000_000),
            trust: TrustLevel::LightClient,
            batch: EventBatch {
                checkpoint: 42,
                foreign: 3,
                events: vec![
                    StakeEvent {
                        id: EventId {
                            tx_digest: "5qHf3bsvYQrCLi6Nr1fLvQhdZRkA".to_string(),
                            event_seq: 0,
                        },
                        stake_id: [7; 32],
                        kind: StakeEventKind::Deposited {
                            owner: SuiAddress([9; 32]),
                            amount: 5_000_000_000,
                        },
                    },
                    StakeEvent {
                        id: EventId {
                            tx_digest: "5qHf3bsvYQrCLi6Nr1fLvQhdZRkA".to_string(),
                            event_seq: 1,
                        },
                        stake_id: [7; 32],
                        kind: StakeEventKind::Slashed { amount: 1 },
                    },
                    StakeEvent {
                        id: EventId {
                            tx_digest: "other".to_string(),
                            event_seq: 2,
                        },
                        stake_id: [8; 32],
                        kind: StakeEventKind::Withdrawn,
                    },
                ],
            },
        }
    }

    #[test]
    fn stake_batches_round_trip_and_are_told_from_changes() {
        let bytes = Record::Stakes(record()).encode();
        match Record::decode(&bytes).unwrap() {
            Record::Stakes(decoded) => assert_eq!(decoded, record()),
            other => panic!("a stake batch decoded as {other:?}"),
        }
    }

    #[test]
    fn compaction_marks_round_trip_and_refuse_truncation() {
        let mark = CompactionMark {
            revision: 1_234_567,
            at: UnixTime::from_secs(1_700_000_300),
        };
        let bytes = Record::Compaction(mark).encode();
        match Record::decode(&bytes).unwrap() {
            Record::Compaction(decoded) => assert_eq!(decoded, mark),
            other => panic!("a compaction mark decoded as {other:?}"),
        }
        assert_eq!(Record::Compaction(mark).revision(), Some(1_234_567));
        for len in 0..bytes.len() {
            assert!(Record::decode(&bytes[..len]).is_err(), "truncated at {len}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Record::decode(&longer).is_err());
    }

    #[test]
    fn every_truncation_and_a_trailing_byte_are_refused() {
        let bytes = record().encode();
        for len in 0..bytes.len() {
            assert!(
                StakeRecord::decode(&bytes[..len]).is_err(),
                "truncated at {len}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(StakeRecord::decode(&longer).is_err());
    }

    #[test]
    fn a_huge_event_count_reserves_nothing_it_cannot_fill() {
        let mut bytes = record().encode();
        // The count sits after version, kind, at, trust, checkpoint and foreign.
        bytes[2 + 8 + 1 + 8 + 4..2 + 8 + 1 + 8 + 4 + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(StakeRecord::decode(&bytes).is_err());
    }
}
