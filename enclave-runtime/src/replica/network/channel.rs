//! For tests only: replicas in one process reach each other through [`ChannelNetwork`], a
//! table of their `Raft` handles, standing in for the attested mesh ([`super::Mesh`]) where a
//! test needs to cut links. Every request and answer is postcard-encoded and decoded on the
//! way, as the mesh's frames are; a replica removed from the table, or one whose links are
//! cut, is unreachable. A link may also be slow (each message waits a delay drawn from the
//! link's range, in tokio's time, so a paused clock makes it free) or lossy (each message is
//! lost with the link's probability): the simulation's faults (`super::super::sim`). A message
//! is judged when it arrives, after its delay: a link cut meanwhile drops it.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
    /// Links whose every message waits a delay drawn from (shortest, longest), as (from, to).
    delay: BTreeMap<(NodeId, NodeId), (Duration, Duration)>,
    /// Links that lose each message with this probability, in thousandths, as (from, to).
    loss: BTreeMap<(NodeId, NodeId), u32>,
    /// The state of the draws (splitmix64): a seeded network draws the same sequence.
    draws: u64,
}

impl Table {
    fn draw(&mut self) -> u64 {
        self.draws = self.draws.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.draws;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// How long the next message on `link` travels.
    fn travel(&mut self, link: (NodeId, NodeId)) -> Duration {
        let Some(&(shortest, longest)) = self.delay.get(&link) else {
            return Duration::ZERO;
        };
        let spread = longest.saturating_sub(shortest).as_micros() as u64;
        shortest + Duration::from_micros(self.draw() % (spread + 1))
    }

    /// Whether the next message on `link` is lost.
    fn lost(&mut self, link: (NodeId, NodeId)) -> bool {
        match self.loss.get(&link).copied() {
            Some(per_mille) if per_mille > 0 => self.draw() % 1000 < u64::from(per_mille),
            _ => false,
        }
    }
}

/// The replicas reachable in this process, as seen from one of them (`from`).
#[derive(Clone, Default)]
pub(crate) struct ChannelNetwork {
    table: Arc<Mutex<Table>>,
    from: NodeId,
}

impl ChannelNetwork {
    /// A network whose delays and losses are drawn from `seed`.
    pub(crate) fn seeded(seed: u64) -> Self {
        let network = Self::default();
        network.table().draws = seed;
        network
    }

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

    /// Drops everything `from` sends to `to` (one direction: `to`'s requests still reach
    /// `from`, whose answers are lost).
    pub(crate) fn cut(&self, from: NodeId, to: NodeId) {
        self.table().cut.insert((from, to));
    }

    /// Every message from `from` to `to` waits between `shortest` and `longest`.
    pub(crate) fn slow(&self, from: NodeId, to: NodeId, shortest: Duration, longest: Duration) {
        self.table()
            .delay
            .insert((from, to), (shortest, longest.max(shortest)));
    }

    /// Each message from `from` to `to` is lost with probability `per_mille` / 1000.
    pub(crate) fn lossy(&self, from: NodeId, to: NodeId, per_mille: u32) {
        self.table().loss.insert((from, to), per_mille.min(1000));
    }

    /// Mends every link: no cut, muted, slow or lossy link is left.
    pub(crate) fn heal(&self) {
        let mut table = self.table();
        table.cut.clear();
        table.mute.clear();
        table.delay.clear();
        table.loss.clear();
    }

    /// Carries one request from this replica to `to`: it travels the link's delay, then is
    /// dropped if the link is cut or loses it, or if `to` is down.
    pub(crate) async fn send(&self, to: NodeId) -> Result<(), Unreachable> {
        let link = (self.from, to);
        let travel = self.table().travel(link);
        if !travel.is_zero() {
            tokio::time::sleep(travel).await;
        }
        let mut table = self.table();
        if table.cut.contains(&link) {
            return Err(Unreachable::new(&std::io::Error::other("the link is cut")));
        }
        if table.lost(link) {
            return Err(Unreachable::new(&std::io::Error::other(
                "the request was lost",
            )));
        }
        if !table.rafts.contains_key(&to) {
            return Err(Unreachable::new(&std::io::Error::other("replica is down")));
        }
        Ok(())
    }

    /// Carries the answer to a request this replica sent `to` back: it travels the way back's
    /// delay, then is lost if this link loses answers, or the way back is cut or loses it.
    pub(crate) async fn reply(&self, to: NodeId) -> Result<(), Unreachable> {
        let back = (to, self.from);
        let travel = self.table().travel(back);
        if !travel.is_zero() {
            tokio::time::sleep(travel).await;
        }
        let mut table = self.table();
        if table.mute.contains(&(self.from, to)) || table.cut.contains(&back) || table.lost(back) {
            return Err(Unreachable::new(&std::io::Error::other(
                "the answer was lost",
            )));
        }
        Ok(())
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
    /// The target, once a request reached it.
    async fn target(&self) -> Result<Raft, Unreachable> {
        self.network.send(self.target).await?;
        self.network
            .table()
            .rafts
            .get(&self.target)
            .cloned()
            .ok_or_else(|| Unreachable::new(&std::io::Error::other("replica is down")))
    }

    /// The answer, once it came back.
    async fn answer<T>(&self, answer: T) -> Result<T, Unreachable> {
        self.network.reply(self.target).await?;
        Ok(answer)
    }
}

impl RaftNetwork<Nautilus> for Channel {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<Nautilus>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, Member, RaftError<NodeId>>> {
        let raft = self.target().await.map_err(RPCError::Unreachable)?;
        let rpc = wire(&rpc).map_err(RPCError::Network)?;
        let answer = raft
            .append_entries(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))?;
        let answer = self.answer(answer).await.map_err(RPCError::Unreachable)?;
        wire(&answer).map_err(RPCError::Network)
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, Member, RaftError<NodeId>>> {
        let raft = self.target().await.map_err(RPCError::Unreachable)?;
        let rpc = wire(&rpc).map_err(RPCError::Network)?;
        let answer = raft
            .vote(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))?;
        let answer = self.answer(answer).await.map_err(RPCError::Unreachable)?;
        wire(&answer).map_err(RPCError::Network)
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote<NodeId>,
        snapshot: Snapshot<Nautilus>,
        _cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<NodeId>, StreamingError<Nautilus, Fatal<NodeId>>> {
        let raft = self.target().await.map_err(StreamingError::Unreachable)?;
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
        let answer = self
            .answer(answer)
            .await
            .map_err(StreamingError::Unreachable)?;
        wire(&answer).map_err(StreamingError::Network)
    }
}
