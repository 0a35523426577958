//! For tests only: replicas in one process reach each other through [`ChannelNetwork`], a
//! table of their `Raft` handles, standing in for the attested mesh ([`super::Mesh`]) where a
//! test needs to cut links. Every request and answer is postcard-encoded and decoded on the
//! way, as the mesh's frames are; a replica removed from the table, or one whose links are
//! cut, is unreachable.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex};

use openraft::error::{
    Fatal, NetworkError, RPCError, RaftError, RemoteError, ReplicationClosed, StreamingError,
    Unreachable,
};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{OptionalSend, RaftNetwork, RaftNetworkFactory, Snapshot, Vote};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::super::types::{Member, Nautilus, NodeId, Raft};

#[derive(Default)]
struct Table {
    rafts: BTreeMap<NodeId, Raft>,
    /// Links that drop everything, as (from, to).
    cut: BTreeSet<(NodeId, NodeId)>,
    /// Links that deliver requests but lose the answers, as (from, to).
    mute: BTreeSet<(NodeId, NodeId)>,
}

/// The replicas reachable in this process, as seen from one of them (`from`).
#[derive(Clone, Default)]
pub(crate) struct ChannelNetwork {
    table: Arc<Mutex<Table>>,
    from: NodeId,
}

impl ChannelNetwork {
    /// The same network, for replica `id` to reach the others through.
    pub(crate) fn from(&self, id: NodeId) -> Self {
        Self {
            table: self.table.clone(),
            from: id,
        }
    }

    /// Makes `raft` reachable as `id`.
    pub(crate) fn insert(&self, id: NodeId, raft: Raft) {
        self.table().rafts.insert(id, raft);
    }

    /// Makes `id` unreachable (as a killed replica).
    pub(crate) fn remove(&self, id: NodeId) {
        self.table().rafts.remove(&id);
    }

    /// Cuts every link to and from `id` (a partition of one).
    pub(crate) fn isolate(&self, id: NodeId) {
        let mut table = self.table();
        let others: Vec<NodeId> = table.rafts.keys().copied().filter(|&o| o != id).collect();
        for other in others {
            table.cut.insert((id, other));
            table.cut.insert((other, id));
        }
    }

    /// `from`'s requests still reach `to`, but the answers are lost.
    pub(crate) fn lose_answers(&self, from: NodeId, to: NodeId) {
        self.table().mute.insert((from, to));
    }

    /// Mends every link.
    pub(crate) fn heal(&self) {
        let mut table = self.table();
        table.cut.clear();
        table.mute.clear();
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// One replica's way to another.
pub(crate) struct Channel {
    network: ChannelNetwork,
    target: NodeId,
}

impl RaftNetworkFactory<Nautilus> for ChannelNetwork {
    type Network = Channel;

    async fn new_client(&mut self, target: NodeId, _node: &Member) -> Channel {
        Channel {
            network: self.clone(),
            target,
        }
    }
}

/// Through the wire form and back.
fn wire<T: Serialize + DeserializeOwned>(value: &T) -> Result<T, NetworkError> {
    let bytes = postcard::to_allocvec(value).map_err(|e| NetworkError::new(&e))?;
    postcard::from_bytes(&bytes).map_err(|e| NetworkError::new(&e))
}

impl Channel {
    fn target(&self) -> Result<Raft, Unreachable> {
        let table = self.network.table();
        if table.cut.contains(&(self.network.from, self.target)) {
            return Err(Unreachable::new(&std::io::Error::other("the link is cut")));
        }
        table
            .rafts
            .get(&self.target)
            .cloned()
            .ok_or_else(|| Unreachable::new(&std::io::Error::other("replica is down")))
    }

    /// The answer, unless this link loses answers.
    fn answer<T>(&self, answer: T) -> Result<T, Unreachable> {
        let table = self.network.table();
        if table.mute.contains(&(self.network.from, self.target)) {
            return Err(Unreachable::new(&std::io::Error::other(
                "the answer was lost",
            )));
        }
        Ok(answer)
    }
}

impl RaftNetwork<Nautilus> for Channel {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<Nautilus>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, Member, RaftError<NodeId>>> {
        let raft = self.target().map_err(RPCError::Unreachable)?;
        let rpc = wire(&rpc).map_err(RPCError::Network)?;
        let answer = raft
            .append_entries(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))?;
        let answer = self.answer(answer).map_err(RPCError::Unreachable)?;
        wire(&answer).map_err(RPCError::Network)
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, Member, RaftError<NodeId>>> {
        let raft = self.target().map_err(RPCError::Unreachable)?;
        let rpc = wire(&rpc).map_err(RPCError::Network)?;
        let answer = raft
            .vote(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))?;
        let answer = self.answer(answer).map_err(RPCError::Unreachable)?;
        wire(&answer).map_err(RPCError::Network)
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote<NodeId>,
        snapshot: Snapshot<Nautilus>,
        _cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<NodeId>, StreamingError<Nautilus, Fatal<NodeId>>> {
        let raft = self.target().map_err(StreamingError::Unreachable)?;
        let vote = wire(&vote).map_err(StreamingError::Network)?;
        let meta = wire(&snapshot.meta).map_err(StreamingError::Network)?;
        let snapshot = Snapshot {
            meta,
            snapshot: snapshot.snapshot,
        };
        let answer = raft
            .install_full_snapshot(vote, snapshot)
            .await
            .map_err(|e| StreamingError::RemoteError(RemoteError::new(self.target, e)))?;
        let answer = self.answer(answer).map_err(StreamingError::Unreachable)?;
        wire(&answer).map_err(StreamingError::Network)
    }
}
