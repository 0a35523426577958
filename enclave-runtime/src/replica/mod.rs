//! Replication (issue 17): several enclave replicas keep one cluster through openraft, the
//! consensus engine; core's `Cluster` is the state machine (design /work/notes/raft-design.md).
//!
//! The contract:
//! - a log entry is a [`entry::Batch`] of core's journal records as the leader's core wrote
//!   them (the leader alone decides everything random or time-based; the records carry it);
//! - the leader's core executes requests at once and its journal feeds the [`driver`], which
//!   submits batches in journal order; a write is acknowledged once the state machine applied
//!   its batch, i.e. once a majority holds it ([`state_machine::ReplicaCore::wait_committed`]);
//!   reads and watches show only applied revisions;
//! - every other replica replays the batches (`Cluster::replay_record`) and refuses writes
//!   (`Error::NotLeader`); a replica that becomes leader takes over (`Cluster::take_over`)
//!   once every entry of earlier terms is applied, and revisions jump past anything an earlier
//!   leader may have handed out;
//! - a snapshot is core's snapshot chunks at an applied entry; installing one rebuilds the
//!   cluster (`Recovery`) as a follower.
//!
//! The log is [`log_store::SealedLog`], openraft's log and vote on the sealed durable log.
//! A former leader whose uncommitted writes were dropped rebuilds its cluster from its
//! snapshot and log. Replicas reach each other over the attested [`mesh`] (mutual TLS 1.3
//! whose sessions both sides' NSM documents are bound to), which [`network::Mesh`] makes
//! openraft's network; [`serving`] is how the serving code starts and uses a replica.

pub(crate) mod driver;
pub(crate) mod entry;
pub(crate) mod log_store;
pub(crate) mod mesh;
pub(crate) mod network;
pub(crate) mod read_index;
pub(crate) mod serving;
pub(crate) mod state_machine;
pub(crate) mod types;

#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use openraft::RaftNetworkFactory;
use openraft::storage::RaftLogStorage;

use state_machine::{ClusterMachine, ReplicaCore};
use types::{Nautilus, NodeId, Raft};

/// One running replica: its openraft handle, its core, and the driver task.
pub(crate) struct Replica {
    /// The openraft handle.
    pub(crate) raft: Raft,
    /// The cluster it serves.
    pub(crate) core: Arc<ReplicaCore>,
    driver: tokio::task::JoinHandle<()>,
}

impl Replica {
    /// Starts replica `id` over `log` and `network`, serving `core`.
    #[cfg(test)]
    pub(crate) async fn start<L, N>(
        id: NodeId,
        log: L,
        network: N,
        core: Arc<ReplicaCore>,
    ) -> anyhow::Result<Self>
    where
        L: RaftLogStorage<Nautilus>,
        N: RaftNetworkFactory<Nautilus>,
    {
        Self::start_with(id, types::raft_config()?, log, network, core).await
    }

    /// Starts replica `id` with openraft's `config` over `log` and `network`, serving `core`.
    pub(crate) async fn start_with<L, N>(
        id: NodeId,
        config: openraft::Config,
        log: L,
        network: N,
        core: Arc<ReplicaCore>,
    ) -> anyhow::Result<Self>
    where
        L: RaftLogStorage<Nautilus>,
        N: RaftNetworkFactory<Nautilus>,
    {
        let config = Arc::new(config);
        let mut log = log;
        let reader = log.get_log_reader().await;
        let driver_log = log.get_log_reader().await;
        let machine = ClusterMachine::new(core.clone(), Box::new(reader));
        let raft = Raft::new(id, config, network, log, machine).await?;
        let driver = tokio::spawn(driver::run(
            raft.clone(),
            core.clone(),
            id,
            Box::new(driver_log),
        ));
        Ok(Self { raft, core, driver })
    }

    /// Whether this replica is a voter and the change that made it one is complete: a
    /// uniform configuration. A change cut short by a change of leader leaves a joint one
    /// (the old voters and the new), whose voters include the joining replica; it asks again
    /// until the change is finished, or the slot's old voter would stay a voter for good.
    pub(crate) fn joined(&self) -> bool {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        let membership = metrics.membership_config.membership();
        membership.get_joint_config().len() == 1 && membership.voter_ids().any(|v| v == metrics.id)
    }

    /// Stops openraft and the driver.
    pub(crate) async fn shutdown(&self) -> anyhow::Result<()> {
        self.raft.shutdown().await?;
        self.driver.abort();
        Ok(())
    }
}
