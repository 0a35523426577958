//! For tests only: an in-memory raft log ([`MemLog`]) standing where the sealed log
//! (`SealedLog` over `durable::DurableLog`, design §2.1) will go. Every append is "flushed" at
//! once; the vote and committed index are kept beside the entries.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::RangeBounds;
use std::sync::{Arc, Mutex};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{Entry, LogId, LogState, OptionalSend, RaftLogReader, StorageError, Vote};

use super::types::{Nautilus, NodeId};

#[derive(Debug, Default)]
struct Log {
    entries: BTreeMap<u64, Entry<Nautilus>>,
    last_purged: Option<LogId<NodeId>>,
    vote: Option<Vote<NodeId>>,
    committed: Option<LogId<NodeId>>,
}

/// An in-memory raft log; clones share it (the reader openraft asks for is one).
#[derive(Debug, Clone, Default)]
pub(crate) struct MemLog(Arc<Mutex<Log>>);

impl MemLog {
    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl RaftLogReader<Nautilus> for MemLog {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<Nautilus>>, StorageError<NodeId>> {
        Ok(self
            .log()
            .entries
            .range(range)
            .map(|(_, entry)| entry.clone())
            .collect())
    }
}

impl RaftLogStorage<Nautilus> for MemLog {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<Nautilus>, StorageError<NodeId>> {
        let log = self.log();
        let last = log.entries.values().next_back().map(|e| e.log_id);
        Ok(LogState {
            last_purged_log_id: log.last_purged,
            last_log_id: last.or(log.last_purged),
        })
    }

    async fn get_log_reader(&mut self) -> Self {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.log().vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        Ok(self.log().vote)
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError<NodeId>> {
        self.log().committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        Ok(self.log().committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<Nautilus>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<Nautilus>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        {
            let mut log = self.log();
            for entry in entries {
                log.entries.insert(entry.log_id.index, entry);
            }
        }
        callback.log_io_completed(Ok(()));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.log().entries.retain(|&index, _| index < log_id.index);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut log = self.log();
        log.entries.retain(|&index, _| index > log_id.index);
        log.last_purged = Some(log_id);
        Ok(())
    }
}
