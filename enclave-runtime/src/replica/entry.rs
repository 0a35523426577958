//! The log entry's payload: a [`Batch`] of core's journal records (design §1.2), what the
//! leader's core wrote in one pass of the driver, in journal order. Followers replay the
//! records (`Cluster::replay_record`); the leader, which wrote them, skips its own.
//!
//! # Encoding (version 1)
//!
//! All integers little-endian.
//!
//! | bytes | field |
//! |-------|-------|
//! | 1 | version, `1` |
//! | 8 + 8 | writer: node id, epoch (random per take-over) |
//! | 8 | `journal_last`: the writer's `Cluster::journaled()` after the last record |
//! | 8 | `revision_last`: the store revision after the last record (or the one before the batch when none moved it) |
//! | 8 | `at`: the writer's clock when the batch was cut, nanoseconds since 1970 |
//! | 4 | record count, at most [`MAX_RECORDS`], then each: |
//! | 4 + n | the record as `Record::encode` wrote it |
//!
//! A whole batch is at most [`MAX_BATCH_BYTES`]: what one sealed log record holds. Decoding
//! checks every length against what is left before taking it, so hostile bytes cost at most
//! their own size and never panic.

use bytes::Bytes;
use nautilus_core::cluster::Record;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The encoding's version byte.
const VERSION: u8 = 1;
/// Bytes before the first record.
const HEADER_BYTES: usize = 1 + 8 * 5 + 4;
/// Most records in one batch (design §1.2: group commit without unbounded entries).
pub(crate) const MAX_RECORDS: usize = 512;
/// Most bytes of one encoded batch: one sealed log record (`durable::MAX_RECORD`) with
/// room for the log id and payload tag around it.
pub(crate) const MAX_BATCH_BYTES: usize = crate::durable::MAX_RECORD - 1024;
/// The size a batch is cut at: past it the next record starts a new batch (a single record
/// may be larger, up to [`MAX_BATCH_BYTES`]).
pub(crate) const CUT_BYTES: usize = 1 << 20;

/// Who wrote a batch: the node, and which of its leaderships (a random epoch per take-over),
/// so that a replica skips exactly the records its own core already holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct WriterId {
    /// The writer's node id.
    pub(crate) node: u64,
    /// Random per take-over.
    pub(crate) epoch: u64,
}

/// Records one writer's core journaled, in journal order (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Batch {
    /// Who wrote the records.
    pub(crate) writer: WriterId,
    /// The writer's journal count after the last record.
    pub(crate) journal_last: u64,
    /// The store revision after the last record.
    pub(crate) revision_last: u64,
    /// The writer's clock when the batch was cut (nanoseconds since 1970).
    pub(crate) at: u64,
    /// `Record::encode` of each record.
    pub(crate) records: Vec<Bytes>,
}

/// Why bytes are not a batch, or a batch cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EntryError {
    /// The bytes end before a field or a record they announce.
    Truncated,
    /// An unknown version byte.
    Version(u8),
    /// More records than [`MAX_RECORDS`].
    TooManyRecords(usize),
    /// More bytes than [`MAX_BATCH_BYTES`].
    TooLarge(usize),
    /// Bytes after the last record.
    Trailing(usize),
}

impl std::fmt::Display for EntryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Truncated => write!(f, "a replicated batch ends early"),
            Self::Version(v) => write!(f, "a replicated batch of unknown version {v}"),
            Self::TooManyRecords(n) => {
                write!(
                    f,
                    "a replicated batch of {n} records (at most {MAX_RECORDS})"
                )
            }
            Self::TooLarge(n) => {
                write!(
                    f,
                    "a replicated batch of {n} bytes (at most {MAX_BATCH_BYTES})"
                )
            }
            Self::Trailing(n) => write!(f, "{n} bytes after a replicated batch"),
        }
    }
}

impl std::error::Error for EntryError {}

impl Batch {
    /// Bytes the encoding takes.
    pub(crate) fn encoded_len(&self) -> usize {
        HEADER_BYTES + self.records.iter().map(|r| 4 + r.len()).sum::<usize>()
    }

    /// The batch's bytes (see the module documentation); refused when over the bounds the
    /// decoder enforces, so nothing is written that a replica cannot read.
    pub(crate) fn encode(&self) -> Result<Vec<u8>, EntryError> {
        if self.records.len() > MAX_RECORDS {
            return Err(EntryError::TooManyRecords(self.records.len()));
        }
        let len = self.encoded_len();
        if len > MAX_BATCH_BYTES {
            return Err(EntryError::TooLarge(len));
        }
        let mut out = Vec::with_capacity(len);
        out.push(VERSION);
        for n in [
            self.writer.node,
            self.writer.epoch,
            self.journal_last,
            self.revision_last,
            self.at,
        ] {
            out.extend_from_slice(&n.to_le_bytes());
        }
        // Both bounded above, far below u32::MAX.
        out.extend_from_slice(&(self.records.len() as u32).to_le_bytes());
        for record in &self.records {
            out.extend_from_slice(&(record.len() as u32).to_le_bytes());
            out.extend_from_slice(record);
        }
        Ok(out)
    }

    /// Reads what [`Batch::encode`] wrote; the records stay opaque (core decodes each at
    /// replay).
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, EntryError> {
        if bytes.len() > MAX_BATCH_BYTES {
            return Err(EntryError::TooLarge(bytes.len()));
        }
        let mut r = Reader(bytes);
        let version = r.u8()?;
        if version != VERSION {
            return Err(EntryError::Version(version));
        }
        let writer = WriterId {
            node: r.u64()?,
            epoch: r.u64()?,
        };
        let journal_last = r.u64()?;
        let revision_last = r.u64()?;
        let at = r.u64()?;
        let count = r.u32()? as usize;
        if count > MAX_RECORDS {
            return Err(EntryError::TooManyRecords(count));
        }
        // Each record takes at least its 4-byte length: no more than the bytes left allow.
        let mut records = Vec::with_capacity(count.min(r.0.len() / 4));
        for _ in 0..count {
            let len = r.u32()? as usize;
            records.push(Bytes::copy_from_slice(r.take(len)?));
        }
        if !r.0.is_empty() {
            return Err(EntryError::Trailing(r.0.len()));
        }
        Ok(Self {
            writer,
            journal_last,
            revision_last,
            at,
            records,
        })
    }

    /// Cuts `records` (taken from the writer's core in journal order; the first is journal
    /// entry `journal_before + 1`) into batches of at most [`MAX_RECORDS`] records and about
    /// [`CUT_BYTES`] each. `revision_before` is the store revision before the first record.
    /// Refused when one record alone is over [`MAX_BATCH_BYTES`].
    pub(crate) fn cut(
        writer: WriterId,
        at: u64,
        journal_before: u64,
        revision_before: u64,
        records: &[Record],
    ) -> Result<Vec<Batch>, EntryError> {
        let mut batches = Vec::new();
        let mut journal = journal_before;
        let mut revision = revision_before;
        let mut current: Option<Batch> = None;
        for record in records {
            let bytes = Bytes::from(record.encode());
            if HEADER_BYTES + 4 + bytes.len() > MAX_BATCH_BYTES {
                return Err(EntryError::TooLarge(HEADER_BYTES + 4 + bytes.len()));
            }
            let full = current.as_ref().is_some_and(|b| {
                b.records.len() >= MAX_RECORDS || b.encoded_len() + 4 + bytes.len() > CUT_BYTES
            });
            if full {
                batches.extend(current.take());
            }
            journal = journal.saturating_add(1);
            revision = record.revision().unwrap_or(revision);
            let batch = current.get_or_insert_with(|| Batch {
                writer,
                journal_last: journal,
                revision_last: revision,
                at,
                records: Vec::new(),
            });
            batch.journal_last = journal;
            batch.revision_last = revision;
            batch.records.push(bytes);
        }
        batches.extend(current);
        Ok(batches)
    }
}

/// Takes fields off the front of the bytes, each checked against what is left.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], EntryError> {
        if n > self.0.len() {
            return Err(EntryError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, EntryError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, EntryError> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(b))
    }

    fn u64(&mut self) -> Result<u64, EntryError> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(b))
    }
}

/// Inside openraft's entries (and so its RPCs) a batch is its encoding as one byte string:
/// the bounded decoder above is the only reader.
impl Serialize for Batch {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let bytes = self.encode().map_err(serde::ser::Error::custom)?;
        serializer.serialize_bytes(&bytes)
    }
}

impl<'de> Deserialize<'de> for Batch {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = Batch;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an encoded replicated batch")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Batch, E> {
                Batch::decode(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_bytes(Visit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nautilus_core::UnixTime;
    use nautilus_core::cluster::CompactionMark;

    fn mark(revision: u64) -> Record {
        Record::Compaction(CompactionMark {
            revision,
            at: UnixTime::from_secs(1_750_000_000),
        })
    }

    fn sample() -> Batch {
        Batch {
            writer: WriterId {
                node: 0x0100_0000_0000_0007,
                epoch: 0xdead_beef,
            },
            journal_last: 42,
            revision_last: 1_750_000_000_000_123,
            at: 1_750_000_000_000_000_000,
            records: vec![
                Bytes::from(mark(5).encode()),
                Bytes::new(),
                Bytes::from(vec![7u8; 300]),
            ],
        }
    }

    #[test]
    fn a_batch_round_trips_alone_and_inside_an_openraft_entry() {
        let batch = sample();
        let bytes = batch.encode().unwrap();
        assert_eq!(bytes.len(), batch.encoded_len());
        assert_eq!(Batch::decode(&bytes).unwrap(), batch);
        let entry = openraft::Entry::<super::super::types::Nautilus> {
            log_id: openraft::LogId::new(openraft::CommittedLeaderId::new(3, 1), 17),
            payload: openraft::EntryPayload::Normal(batch.clone()),
        };
        let wire = postcard::to_allocvec(&entry).unwrap();
        let back: openraft::Entry<super::super::types::Nautilus> =
            postcard::from_bytes(&wire).unwrap();
        assert_eq!(back.log_id, entry.log_id);
        match back.payload {
            openraft::EntryPayload::Normal(b) => assert_eq!(b, batch),
            other => panic!("not a normal entry: {other:?}"),
        }
    }

    #[test]
    fn hostile_bytes_are_refused_with_a_typed_error_never_a_panic() {
        let bytes = sample().encode().unwrap();
        // Every truncation.
        for n in 0..bytes.len() {
            assert_eq!(
                Batch::decode(&bytes[..n]),
                Err(EntryError::Truncated),
                "{n}"
            );
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(Batch::decode(&trailing), Err(EntryError::Trailing(1)));
        let mut version = bytes.clone();
        version[0] = 9;
        assert_eq!(Batch::decode(&version), Err(EntryError::Version(9)));
        // A count past the limit is refused before anything is reserved.
        let mut count = bytes.clone();
        count[HEADER_BYTES - 4..HEADER_BYTES].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            Batch::decode(&count),
            Err(EntryError::TooManyRecords(u32::MAX as usize))
        );
        // A record length past the end.
        let mut length = bytes.clone();
        length[HEADER_BYTES..HEADER_BYTES + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(Batch::decode(&length), Err(EntryError::Truncated));
        // More bytes than a sealed record holds.
        assert_eq!(
            Batch::decode(&vec![VERSION; MAX_BATCH_BYTES + 1]),
            Err(EntryError::TooLarge(MAX_BATCH_BYTES + 1))
        );
        // Pseudo-random bytes, and random flips of a valid batch: an answer, never a panic.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..2_000 {
            let mut flipped = bytes.clone();
            let at = (next() as usize) % flipped.len();
            flipped[at] ^= next() as u8 | 1;
            let _ = Batch::decode(&flipped);
            let noise: Vec<u8> = (0..(next() % 200)).map(|_| next() as u8).collect();
            let _ = Batch::decode(&noise);
        }
        // Through serde too: an error, not a panic.
        assert!(postcard::from_bytes::<Batch>(&[3, 1, 2, 3]).is_err());
    }

    #[test]
    fn an_oversized_batch_is_not_encoded() {
        let mut batch = sample();
        batch.records = vec![Bytes::new(); MAX_RECORDS + 1];
        assert_eq!(
            batch.encode(),
            Err(EntryError::TooManyRecords(MAX_RECORDS + 1))
        );
        batch.records = vec![Bytes::from(vec![0u8; MAX_BATCH_BYTES])];
        assert!(matches!(batch.encode(), Err(EntryError::TooLarge(_))));
    }

    #[test]
    fn records_are_cut_by_count_and_size_in_journal_order() {
        let writer = WriterId { node: 1, epoch: 2 };
        let records: Vec<Record> = (1..=1_200).map(|i| mark(1_000 + i)).collect();
        let batches = Batch::cut(writer, 9, 10, 1_000, &records).unwrap();
        assert_eq!(
            batches.iter().map(|b| b.records.len()).collect::<Vec<_>>(),
            [512, 512, 176]
        );
        assert_eq!(
            batches
                .iter()
                .map(|b| (b.journal_last, b.revision_last))
                .collect::<Vec<_>>(),
            [(522, 1_512), (1_034, 2_024), (1_210, 2_200)]
        );
        let flat: Vec<Bytes> = batches.iter().flat_map(|b| b.records.clone()).collect();
        assert_eq!(
            flat,
            records
                .iter()
                .map(|r| Bytes::from(r.encode()))
                .collect::<Vec<_>>()
        );
        assert!(Batch::cut(writer, 9, 10, 1_000, &[]).unwrap().is_empty());
    }
}
