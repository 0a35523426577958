//! Linearizable reads share their confirmations (design §4). A read needs a read index: the
//! leader's commit index at a moment after the read arrived, confirmed by a majority still
//! following that leader. One confirmation serves every read that arrived before it began, so
//! concurrent reads cost one round, not one each (a round per read on two cores made the
//! heartbeats late and the followers elect).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, watch};

/// The latest round's outcome: the arrivals it covers (every read numbered up to `covers`
/// arrived before it began) and the read index, or why there is none.
#[derive(Debug, Clone)]
struct Round {
    covers: u64,
    result: Result<u64, String>,
}

/// One confirmation round: the read index, or why there is none.
pub(crate) type Confirm =
    Box<dyn Fn() -> Pin<Box<dyn Future<Output = Result<u64, String>> + Send>> + Send + Sync>;

/// Reads waiting for a read index, and the task that gets one for all of them.
pub(crate) struct ReadRounds {
    /// Reads numbered so far.
    arrived: AtomicU64,
    /// Rounds started (what [`ReadRounds::rounds`] reports).
    rounds: AtomicU64,
    wake: Notify,
    done: watch::Sender<Round>,
}

impl ReadRounds {
    /// Rounds run by `confirm`, started by the reads that wait for them.
    pub(crate) fn start(confirm: Confirm) -> Arc<Self> {
        let this = Arc::new(Self {
            arrived: AtomicU64::new(0),
            rounds: AtomicU64::new(0),
            wake: Notify::new(),
            done: watch::channel(Round {
                covers: 0,
                result: Err("no read index yet".into()),
            })
            .0,
        });
        // The task lives as long as the process (one per replica).
        tokio::spawn(run(this.clone(), confirm));
        this
    }

    /// The read index for a read arriving now: from the first round that begins after it.
    pub(crate) async fn index(&self) -> Result<u64, String> {
        let mine = self.arrived.fetch_add(1, Ordering::SeqCst) + 1;
        let mut done = self.done.subscribe();
        self.wake.notify_one();
        let round = done
            .wait_for(|round| round.covers >= mine)
            .await
            .map_err(|_| "the read rounds stopped".to_string())?;
        round.result.clone()
    }

    /// Waits until `raft` applied everything committed when the read arrived: a read index
    /// (within `wait`), then that index applied (within `wait` again).
    pub(crate) async fn barrier(
        &self,
        raft: &super::types::Raft,
        wait: Duration,
    ) -> Result<(), String> {
        let index = tokio::time::timeout(wait, self.index())
            .await
            .map_err(|_| "no read index in time: is a leader elected?".to_string())?
            .map_err(|e| format!("no read index: {e}"))?;
        raft.wait(Some(wait))
            .applied_index_at_least(Some(index), "read index")
            .await
            .map_err(|e| format!("this replica did not catch up: {e}"))?;
        Ok(())
    }

    /// Confirmation rounds run so far.
    pub(crate) fn rounds(&self) -> u64 {
        self.rounds.load(Ordering::Relaxed)
    }
}

async fn run(rounds: Arc<ReadRounds>, confirm: Confirm) {
    loop {
        // Woken by a read that is not covered yet (the permit waits if none is waiting).
        rounds.wake.notified().await;
        loop {
            // Every read numbered up to here arrived before this round began.
            let covers = rounds.arrived.load(Ordering::SeqCst);
            if covers <= rounds.done.borrow().covers {
                break;
            }
            rounds.rounds.fetch_add(1, Ordering::Relaxed);
            let result = confirm().await;
            rounds.done.send_replace(Round { covers, result });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A confirmation that takes 20 ms and counts itself: many reads at once share a few
    /// rounds, and each read's round began after the read arrived.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_reads_share_rounds_that_begin_after_they_arrive() {
        let started = Arc::new(AtomicU64::new(0));
        let counter = started.clone();
        let confirm: Confirm = Box::new(move || {
            let counter = counter.clone();
            Box::pin(async move {
                let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok(n)
            })
        });
        let rounds = ReadRounds::start(confirm);
        let mut reads = Vec::new();
        for _ in 0..200 {
            let rounds = rounds.clone();
            let started = started.clone();
            reads.push(tokio::spawn(async move {
                let before = started.load(Ordering::SeqCst);
                let index = rounds.index().await.unwrap();
                // The round that answered began after this read arrived.
                assert!(
                    index > before,
                    "round {index} began before the read ({before})"
                );
            }));
        }
        for read in reads {
            read.await.unwrap();
        }
        let ran = rounds.rounds();
        assert!(
            (1..=20).contains(&ran),
            "200 reads at once took {ran} rounds"
        );
        // A read alone gets a round of its own.
        let before = started.load(Ordering::SeqCst);
        assert_eq!(rounds.index().await.unwrap(), before + 1);
    }

    /// A failed confirmation fails the reads it covers; the next read gets a new round.
    #[tokio::test]
    async fn a_failed_round_fails_its_reads_only() {
        let calls = Arc::new(AtomicU64::new(0));
        let counter = calls.clone();
        let confirm: Confirm = Box::new(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                if n == 0 {
                    Err("not the leader".to_string())
                } else {
                    Ok(7)
                }
            })
        });
        let rounds = ReadRounds::start(confirm);
        assert_eq!(rounds.index().await, Err("not the leader".to_string()));
        assert_eq!(rounds.index().await, Ok(7));
    }
}
