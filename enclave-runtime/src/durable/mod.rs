//! Durable state (issue 16): the enclave has no disk, so it seals what must survive and the
//! host stores the ciphertext. [`seal`] is the format (XChaCha20-Poly1305, a hash chain of
//! records, chunked snapshots under a sealed manifest), [`channel`] the storage channel to the
//! proxy, [`log`] the durable log that verifies the host's copy at start and appends with
//! group commit afterwards.
//!
//! Records and snapshots are opaque bytes here; [`persist`] routes core's journal into the log
//! and answers requests once their entries are durable. Freshness is not
//! verified: a host that serves an older but valid copy (a rollback) cannot be caught by one
//! enclave alone; `/readyz?verbose` says `freshness: unverified` until a quorum of replicas
//! (issue 17) closes it.

mod channel;
pub(crate) mod debug;
mod log;
pub(crate) mod persist;
pub(crate) mod seal;
#[cfg(test)]
pub(crate) mod test_host;

use nautilus_wire::storage::ErrorKind;

pub(crate) use log::{DurableLog, MAX_RECORD, REPLICA_TAGS_KEPT};
pub(crate) use persist::Persistence;

/// A connection to the store for start-up requests (the KMS blob, the credentials).
pub(crate) async fn connect_for_blobs(
    addr: &crate::log_sink::SinkAddr,
) -> anyhow::Result<channel::Conn> {
    let stream = channel::connect(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach the store at {addr}: {e}"))?;
    Ok(channel::Conn::new(stream))
}

/// How fast a snapshot is written: at most so many bytes a second, or as fast as it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SnapshotPace {
    /// No pause between chunks.
    Unpaced,
    /// At most this many bytes a second.
    BytesPerSec(u64),
}

impl SnapshotPace {
    /// `mib` MiB a second; 0 is unpaced.
    pub(crate) fn mib_per_sec(mib: u64) -> Self {
        match mib {
            0 => Self::Unpaced,
            mib => Self::BytesPerSec(mib.saturating_mul(1 << 20)),
        }
    }

    /// How long after the snapshot's start `written` bytes may be written by, if paced.
    pub(crate) fn due(self, written: u64) -> Option<std::time::Duration> {
        match self {
            Self::Unpaced => None,
            Self::BytesPerSec(rate) => Some(std::time::Duration::from_secs_f64(
                written as f64 / rate.max(1) as f64,
            )),
        }
    }
}

/// Exit code when the host's copy does not verify (tampering, or another cluster's data).
pub(crate) const EXIT_TAMPERED: u8 = 3;

/// What the durable log reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DurableError {
    /// The host's copy does not verify: `file` and `position` say where.
    Tampered {
        /// The file on the host (relative to the storage directory).
        file: String,
        /// The log position (or snapshot id) that failed.
        position: u64,
        /// What is wrong.
        reason: String,
    },
    /// The host's disk is full: writes are refused, reads go on.
    DiskFull(String),
    /// The host could not write or sync (EIO): writes are refused until it recovers.
    Io(String),
    /// The store is unreachable, or answered out of protocol.
    Unavailable(String),
    /// A record over [`log::MAX_RECORD`] bytes.
    TooLarge(usize),
    /// A verified record or snapshot could not be applied to the cluster.
    Replay(String),
}

impl DurableError {
    fn tampered(file: &str, position: u64, reason: String) -> Self {
        Self::Tampered {
            file: file.to_string(),
            position,
            reason,
        }
    }

    fn from_host(kind: ErrorKind, message: String) -> Self {
        match kind {
            ErrorKind::DiskFull => Self::DiskFull(message),
            ErrorKind::Io | ErrorKind::Fenced => Self::Io(message),
            _ => Self::Unavailable(format!("{kind}: {message}")),
        }
    }

    /// The HTTP status a write that hit this error gets: 507 for a full disk (kube's
    /// Insufficient Storage), 503 while the host cannot write, 413 for an oversized record.
    pub(crate) fn http_status(&self) -> u16 {
        match self {
            Self::DiskFull(_) => 507,
            Self::TooLarge(_) => 413,
            Self::Tampered { .. } | Self::Io(_) | Self::Unavailable(_) | Self::Replay(_) => 503,
        }
    }
}

impl DurableError {
    /// The kube `Status` error a write gets while the host cannot store it: 507 for a full
    /// disk, 413 for an oversized record, 503 otherwise. `applied`: the write reached the
    /// cluster before the host failed; it is kept and persisted once the host recovers (or
    /// lost if the enclave stops first), as a kube write that timed out on etcd may still
    /// happen.
    pub(crate) fn refusal(&self, applied: bool) -> nautilus_core::Error {
        let message = if applied {
            format!(
                "the write was applied but is not durable yet, and is persisted once the host \
                 recovers: {self}"
            )
        } else {
            format!("writes are refused while the host cannot store them: {self}")
        };
        match self.http_status() {
            507 => nautilus_core::Error::InsufficientStorage(message),
            413 => nautilus_core::Error::TooLarge(message),
            _ => nautilus_core::Error::Unavailable(message),
        }
    }
}

impl std::fmt::Display for DurableError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Tampered {
                file,
                position,
                reason,
            } => write!(
                f,
                "the host's sealed state does not verify: {file} at position {position}: {reason}"
            ),
            Self::DiskFull(m) => write!(f, "the host's disk is full: {m}"),
            Self::Io(m) => write!(f, "the host could not write durably: {m}"),
            Self::Unavailable(m) => write!(f, "durable storage unavailable: {m}"),
            Self::TooLarge(n) => write!(f, "a record of {n} bytes is over {}", log::MAX_RECORD),
            Self::Replay(m) => write!(f, "replaying the durable log failed: {m}"),
        }
    }
}

impl std::error::Error for DurableError {}

/// A verified snapshot read at start.
#[derive(Debug, Clone)]
pub(crate) struct RecoveredSnapshot {
    /// Its id on the host.
    pub(crate) id: u64,
    /// The state's revision.
    pub(crate) revision: u64,
    /// The last log position it covers.
    pub(crate) position: u64,
    tag: [u8; seal::TAG],
    /// The chunks, in order, opened.
    pub(crate) chunks: Vec<Vec<u8>>,
}

/// A verified record read at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RecoveredRecord {
    /// Log position.
    pub(crate) position: u64,
    /// The revision the caller gave with it.
    pub(crate) revision: u64,
    /// The record, opened.
    pub(crate) payload: Vec<u8>,
}

/// Where [`DurableLog::open`] hands what it verifies, as it verifies it: the snapshot first,
/// then each record in order. Nothing holds the whole log: the cluster replays each record as
/// it comes (a log of 100,000 records is hundreds of megabytes, and an enclave's memory is
/// fixed). With `--recover-to-last-valid`, what was handed over is the valid prefix kept;
/// without it, a record that does not verify fails the start, so nothing handed over is used.
pub(crate) trait Replay: Send {
    /// The snapshot the state starts from (`None`: the log starts at the beginning), once,
    /// before any record.
    fn snapshot(&mut self, snapshot: Option<RecoveredSnapshot>) -> Result<(), String>;
    /// The next verified record.
    fn record(&mut self, record: RecoveredRecord) -> Result<(), String>;
}

/// A [`Replay`] that keeps everything it is handed (the hidden test record stream, tests).
#[derive(Debug, Clone, Default)]
pub(crate) struct Kept {
    /// The snapshot, if any.
    pub(crate) snapshot: Option<RecoveredSnapshot>,
    /// The records after it, in order.
    pub(crate) records: Vec<RecoveredRecord>,
}

impl Replay for Kept {
    fn snapshot(&mut self, snapshot: Option<RecoveredSnapshot>) -> Result<(), String> {
        self.snapshot = snapshot;
        Ok(())
    }

    fn record(&mut self, record: RecoveredRecord) -> Result<(), String> {
        self.records.push(record);
        Ok(())
    }
}

/// Where a recovered snapshot stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SnapshotAt {
    /// Its id on the host.
    pub(crate) id: u64,
    /// The state's revision.
    pub(crate) revision: u64,
    /// The last log position it covers.
    pub(crate) position: u64,
}

/// What [`DurableLog::open`] found (the state itself went to its [`Replay`]).
#[derive(Debug, Clone)]
pub(crate) struct Recovered {
    /// The snapshot the state starts from, if any.
    pub(crate) snapshot: Option<SnapshotAt>,
    /// How many records after it were verified and handed over.
    pub(crate) records: u64,
    /// The last verified position and its tag (where appends continue).
    tail: (u64, [u8; seal::TAG]),
    /// The tags of the last verified positions (at most `log::TAGS_KEPT`), oldest first.
    tags: std::collections::VecDeque<(u64, [u8; seal::TAG])>,
    /// Where the log verifies from: the snapshot's point, or genesis.
    anchor: (u64, [u8; seal::TAG]),
    /// What `--recover-to-last-valid` dropped, if anything.
    pub(crate) dropped: Option<String>,
}

/// The log's state, for `/readyz?verbose` and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Status {
    /// The storage channel is up.
    pub(crate) connected: bool,
    /// Last position the host synced.
    pub(crate) durable: u64,
    /// Last position sealed (sent or about to be).
    pub(crate) sealed: u64,
    /// The newest snapshot's revision and position.
    pub(crate) snapshot: Option<(u64, u64)>,
    /// Records verified at start.
    pub(crate) records_recovered: u64,
    /// What `--recover-to-last-valid` dropped at start.
    pub(crate) dropped: Option<String>,
    /// Appends the host refused since start.
    pub(crate) failed_appends: u64,
    /// The last refusal, until an append succeeds again.
    pub(crate) last_error: Option<String>,
    /// Reconnections of the storage channel.
    pub(crate) reconnects: u64,
}

impl Status {
    /// `/readyz?verbose`'s line. Freshness is always `unverified`: one enclave cannot tell a
    /// rolled-back (older but valid) host copy from the latest.
    pub(crate) fn check_line(&self) -> (String, bool) {
        let snapshot = self.snapshot.map_or_else(
            || "none".to_string(),
            |(revision, position)| format!("revision {revision} at position {position}"),
        );
        let detail = format!(
            "durable position {}, snapshot {snapshot}, freshness: unverified (a rolled-back host copy \
             cannot be detected by one enclave)",
            self.durable
        );
        match (&self.last_error, self.connected) {
            (Some(error), _) => (
                format!("[-]durable-log failed: {detail}; writes refused: {error}"),
                false,
            ),
            (None, false) => (
                format!("[-]durable-log failed: {detail}; storage channel down"),
                false,
            ),
            (None, true) => (format!("[+]durable-log ok: {detail}"), true),
        }
    }
}

#[cfg(test)]
mod pace_tests {
    use super::SnapshotPace;
    use std::time::Duration;

    #[test]
    fn a_paced_snapshot_is_due_at_its_rate_and_zero_is_unpaced() {
        let pace = SnapshotPace::mib_per_sec(32);
        assert_eq!(pace.due(32 << 20), Some(Duration::from_secs(1)));
        assert_eq!(pace.due(8 << 20), Some(Duration::from_millis(250)));
        assert_eq!(SnapshotPace::mib_per_sec(0), SnapshotPace::Unpaced);
        assert_eq!(SnapshotPace::Unpaced.due(u64::MAX), None);
    }
}
