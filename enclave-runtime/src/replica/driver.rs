//! The leader's side of replication (design §1.3, §1.5): one task takes the records each core
//! call left in the journal, cuts them into [`Batch`]es and submits them to openraft in
//! journal order (`Raft::client_write_ff` from this one task, so entries keep that order);
//! the state machine publishes when they are committed. It also follows the role: once this
//! replica leads and has applied every entry of earlier terms, its core takes over (a new
//! writer epoch); when it stops leading, its core refuses writes again.

use std::sync::Arc;

use openraft::ServerState;
use openraft::raft::ClientWriteResult;
use tokio::sync::{mpsc, oneshot};

use super::entry::{Batch, WriterId};
use super::state_machine::{AppliedEntries, ReplicaCore};
use super::types::{Nautilus, NodeId, Raft};

/// Most batches submitted and not yet answered by openraft: past it the driver waits, and
/// records wait in core's journal, whose `max_pending_changes` then refuses writes with 429
/// (as `durable::persist`'s bound).
const MAX_IN_FLIGHT: usize = 1_024;

/// openraft's answer to one submitted batch.
type Answer = oneshot::Receiver<ClientWriteResult<Nautilus>>;

/// While this replica writes: who it writes as and where its batches continue from.
struct Writing {
    writer: WriterId,
    /// Journal entries taken from core so far (core's `journaled()` count).
    taken: u64,
    /// The store revision after the last record taken.
    revision: u64,
    /// Answers to await, in order (a task of this leadership reads them).
    answers: mpsc::Sender<Answer>,
}

/// Reads openraft's answers to one leadership's batches: a refusal means the leadership
/// ended (the role change is handled from the metrics).
async fn read_answers(mut answers: mpsc::Receiver<Answer>) {
    while let Some(answer) = answers.recv().await {
        match answer.await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::debug!(error = %e, "a submitted batch was refused"),
            Err(_) => tracing::debug!("openraft dropped a submitted batch"),
        }
    }
}

/// Runs until openraft stops: follows the role, and while leading submits core's journal.
/// A stopped replica's core refuses writes.
pub(crate) async fn run(
    raft: Raft,
    core: Arc<ReplicaCore>,
    node: NodeId,
    mut log: Box<dyn AppliedEntries>,
) {
    follow(&raft, &core, node, &mut *log).await;
    core.lock().cluster.step_down();
}

async fn follow(raft: &Raft, core: &ReplicaCore, node: NodeId, log: &mut dyn AppliedEntries) {
    let mut metrics = raft.metrics();
    let mut writing: Option<Writing> = None;
    loop {
        let (leads, caught_up, stopped) = {
            let m = metrics.borrow_and_update();
            let leads = m.state == ServerState::Leader;
            // The blank entry of this term applied: every entry of earlier terms is in core.
            let caught_up = m
                .last_applied
                .is_some_and(|applied| applied.leader_id.term == m.current_term);
            (leads, caught_up, m.running_state.is_err())
        };
        if stopped {
            return;
        }
        match (writing.is_some(), leads) {
            (false, true) if caught_up => {
                // Writes this core made as an earlier writer and never got committed (raft
                // dropped them, or they were never submitted) must not be served on: a
                // leader elected again without another writer in between would otherwise
                // take them over as if committed.
                match core.drop_uncommitted(log).await {
                    Ok(true) => tracing::warn!(
                        node,
                        "this replica leads again; the writes it never got committed were dropped (rebuilt from its log)"
                    ),
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "dropping uncommitted writes failed; trying again");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                }
                let writer = WriterId {
                    node,
                    epoch: getrandom::u64().unwrap_or_default(),
                };
                let term = raft.metrics().borrow().current_term;
                let (taken, revision) = core.lock().take_over(crate::server::now(), writer, term);
                tracing::info!(
                    node,
                    epoch = writer.epoch,
                    revision,
                    "this replica leads; its core takes over"
                );
                let (answers, reader) = mpsc::channel(MAX_IN_FLIGHT);
                tokio::spawn(read_answers(reader));
                writing = Some(Writing {
                    writer,
                    taken,
                    revision,
                    answers,
                });
            }
            (true, false) => {
                let mut state = core.lock();
                state.cluster.step_down();
                let dropped = state.cluster.take_records().len();
                if dropped > 0 {
                    // Never submitted: they can never commit, and the core holds them.
                    tracing::error!(
                        dropped,
                        "this replica stopped leading with records it never submitted; it rebuilds when the next writer's entry comes"
                    );
                }
                tracing::info!(node, "this replica stopped leading");
                writing = None;
            }
            _ => {}
        }
        if let Some(writing) = &mut writing
            && let Err(e) = submit(raft, core, writing).await
        {
            tracing::error!(error = %e, "replication stopped");
            return;
        }
        tokio::select! {
            changed = metrics.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            () = core.wake.notified() => {}
        }
    }
}

/// Takes the records core journaled since the last call and submits them, cut into batches.
async fn submit(raft: &Raft, core: &ReplicaCore, writing: &mut Writing) -> anyhow::Result<()> {
    let batches = {
        let mut state = core.lock();
        let records = state.cluster.take_records();
        if records.is_empty() {
            return Ok(());
        }
        let at = crate::server::now().nanos.max(state.last_at);
        let batches = Batch::cut(
            writing.writer,
            at,
            writing.taken,
            writing.revision,
            &records,
        )?;
        writing.taken = writing.taken.saturating_add(records.len() as u64);
        if let Some(last) = batches.last() {
            writing.revision = last.revision_last;
        }
        batches
    };
    for batch in batches {
        // Committed is learned from the state machine; the answer only tells of a refusal.
        let answer = raft.client_write_ff(batch).await?;
        writing
            .answers
            .send(answer)
            .await
            .map_err(|_| anyhow::anyhow!("the answer reader stopped"))?;
    }
    Ok(())
}
