//! The types openraft is instantiated with: a log entry carries a [`Batch`] of core's change
//! records, applying one answers the store revision it reached, a node is named by a random
//! 64-bit id and described by its [`Member`] slot and address, and a snapshot travels as a
//! [`SnapshotHandle`].

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::entry::Batch;

openraft::declare_raft_types!(
    /// The replicated cluster's type configuration.
    pub(crate) Nautilus:
        D = Batch,
        R = Applied,
        NodeId = u64,
        Node = Member,
        Entry = openraft::Entry<Nautilus>,
        SnapshotData = SnapshotHandle,
        AsyncRuntime = openraft::TokioRuntime,
);

/// The Raft handle of one replica.
pub(crate) type Raft = openraft::Raft<Nautilus>;

/// A replica's id: never reused (a restarted replica joins under a new one, design §2.3).
pub(crate) type NodeId = u64;

/// What a member of the configuration is, besides its id: which replica slot (the proxy's
/// routing label, one per parent instance) and where its peers reach it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Member {
    /// The replica's slot, `0..replicas`.
    pub(crate) slot: u8,
    /// The address the peer mesh dials (a label in process-local tests).
    pub(crate) peer_addr: String,
}

/// What applying one log entry reached: the store revision after it (the revision before
/// it for an entry that wrote nothing: blank, membership, a batch of stake records).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Applied {
    /// The store's revision after the entry.
    pub(crate) revision: u64,
}

/// A snapshot as openraft passes it around: the cluster at one revision, as core's snapshot
/// chunks (`Snapshot::into_chunks`). Held in memory for now; the sealed log makes it a handle
/// to sealed chunks the host keeps (design §1.6).
#[derive(Debug, Clone, Default)]
pub(crate) struct SnapshotHandle {
    /// The store revision the snapshot is of.
    pub(crate) revision: u64,
    /// Core's snapshot chunks, in order.
    pub(crate) chunks: Vec<Bytes>,
}

/// Timing from design §8.2: a heartbeat every 50 ms and elections after 150–300 ms of
/// silence, so a new leader is in place about half a second after the old one is gone.
pub(crate) fn raft_config() -> anyhow::Result<openraft::Config> {
    Ok(openraft::Config {
        cluster_name: "nautilus".into(),
        heartbeat_interval: 50,
        election_timeout_min: 150,
        election_timeout_max: 300,
        ..Default::default()
    }
    .validate()?)
}
