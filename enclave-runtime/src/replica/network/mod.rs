//! openraft's network over the attested mesh (design §3.3): [`Mesh`] is the
//! `RaftNetworkFactory`, [`PeerClient`] sends one request at a time over an admitted
//! [`Link`] and waits for its answer, and [`serve`] admits the peers that connect and hands
//! their requests to this replica's `Raft` (`append_entries`, `vote`, `install_full_snapshot`).
//!
//! Links are kept: a client holds its link while it lives and gives it back to the mesh's
//! idle set when dropped (openraft makes a client per election round), so attestation is paid
//! once per connection, not per request. A dial runs as its own task and parks the link when
//! the request that asked for it was cancelled (a vote's 150 ms), so a slow first handshake is
//! not thrown away. A broken connection is `Unreachable` (openraft backs off); a link used
//! before that fails is replaced once, as its peer may have restarted.

#[cfg(test)]
mod channel;
#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) use channel::ChannelNetwork;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use openraft::error::{
    Fatal, NetworkError, RPCError, RaftError, RemoteError, ReplicationClosed, StreamingError,
    Timeout, Unreachable,
};
use openraft::network::{RPCOption, RPCTypes};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{OptionalSend, RaftNetwork, RaftNetworkFactory, Snapshot, SnapshotMeta, Vote};
use serde::{Deserialize, Serialize};

use super::mesh::{Frame, FrameError, Kind, Link, MeshEndpoint, MeshError, decode, encode};
use super::types::{Member, Nautilus, NodeId, Raft, SnapshotHandle};
use crate::transport::{Listener, Stream};

/// Idle links kept per peer.
const IDLE_PER_PEER: usize = 4;
/// Bytes of snapshot per frame, well under the frame bound, so heartbeats on other links are
/// not starved behind one huge write.
const PIECE_BYTES: usize = 1024 * 1024;
/// Largest snapshot a replica accepts: a bound against a confused sender, far above any store
/// an enclave's memory holds.
const MAX_SNAPSHOT_BYTES: u64 = 64 * 1024 * 1024 * 1024;
/// Most chunks a snapshot may announce.
const MAX_SNAPSHOT_CHUNKS: usize = 1 << 20;
/// How long the sender waits for a snapshot to be installed (a rebuild of the whole cluster);
/// openraft's cancellation ends it sooner when replication moves on.
const INSTALL_ANSWER_WAIT: Duration = Duration::from_secs(120);

/// This replica's way to its peers.
#[derive(Clone)]
pub(crate) struct Mesh {
    inner: Arc<MeshInner>,
}

struct MeshInner {
    endpoint: Arc<MeshEndpoint>,
    /// The proxy's relay, for `relay:HOST:PORT` peer addresses.
    relay: Option<crate::sui::RelayAddr>,
    /// Each slot's address as this start was told (`--replica-peer`): it wins over the one
    /// a member was added with, so replicas may move (dev's peer ports change per run).
    addresses: Vec<String>,
    idle: Mutex<BTreeMap<NodeId, Vec<Link>>>,
}

impl Mesh {
    /// Peers reached as `endpoint` (tests: `unix:` addresses only).
    #[cfg(test)]
    pub(crate) fn new(endpoint: Arc<MeshEndpoint>) -> Self {
        Self::with_relay(endpoint, None, Vec::new())
    }

    /// Peers reached as `endpoint`, those named `relay:HOST:PORT` through the proxy's `relay`
    /// (production: the enclave's only way out; the host relays TLS ciphertext).
    pub(crate) fn with_relay(
        endpoint: Arc<MeshEndpoint>,
        relay: Option<crate::sui::RelayAddr>,
        addresses: Vec<String>,
    ) -> Self {
        Self {
            inner: Arc::new(MeshInner {
                endpoint,
                relay,
                addresses,
                idle: Mutex::new(BTreeMap::new()),
            }),
        }
    }
}

impl MeshInner {
    fn address_of(&self, member: &Member) -> String {
        self.addresses
            .get(usize::from(member.slot))
            .cloned()
            .unwrap_or_else(|| member.peer_addr.clone())
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, BTreeMap<NodeId, Vec<Link>>> {
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn take_idle(&self, target: NodeId) -> Option<Link> {
        self.idle().get_mut(&target).and_then(Vec::pop)
    }

    /// Keeps `link` for the next client to its peer (closes it when enough are kept).
    fn put_idle(&self, link: Link) {
        let mut idle = self.idle();
        let links = idle.entry(link.peer()).or_default();
        if links.len() < IDLE_PER_PEER {
            links.push(link);
        }
    }

    /// A new link to `target` at `addr`, made by a task of its own.
    async fn dial(self: &Arc<Self>, target: NodeId, addr: String) -> Result<Link, MeshError> {
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let inner = self.clone();
        tokio::spawn(async move {
            let result = async {
                let stream = open(&addr, inner.relay.as_ref()).await?;
                inner.endpoint.connect(stream, target).await
            }
            .await;
            if let Err(Ok(link)) = sender.send(result) {
                inner.put_idle(link);
            }
        });
        receiver.await.unwrap_or(Err(MeshError::Closed))
    }
}

impl Mesh {
    /// This replica's side of the mesh.
    pub(crate) fn endpoint(&self) -> &Arc<MeshEndpoint> {
        &self.inner.endpoint
    }

    /// Where `member` is reached: its slot's address as this start was told, else the one
    /// it was added with.
    pub(crate) fn address_of(&self, member: &Member) -> String {
        self.inner.address_of(member)
    }

    /// One request to replica `target` at `addr` over a kept link (a new one when none is
    /// idle), and its answer's body, within `ttl`.
    pub(crate) async fn call(
        &self,
        target: NodeId,
        addr: &str,
        kind: Kind,
        body: &[u8],
        ttl: Duration,
    ) -> Result<Vec<u8>, MeshError> {
        let mut client = PeerClient {
            inner: self.inner.clone(),
            target,
            addr: addr.to_string(),
            link: Mutex::new(None),
            next_id: 1,
        };
        tokio::time::timeout(ttl, client.call(kind, body))
            .await
            .unwrap_or(Err(MeshError::Timeout("a request to a peer")))
    }

    /// The id of the replica that answers at `addr`, attested (a handshake only).
    pub(crate) async fn peer_at(&self, addr: &str, ttl: Duration) -> Result<NodeId, MeshError> {
        let greeted = async {
            let stream = open(addr, self.inner.relay.as_ref()).await?;
            let link = self.inner.endpoint.connect_any(stream).await?;
            Ok(link.peer())
        };
        tokio::time::timeout(ttl, greeted)
            .await
            .unwrap_or(Err(MeshError::Timeout("a peer's greeting")))
    }

    /// One request to whichever replica answers at `addr` (its id unknown: a replica
    /// joining), on a link of its own, within `ttl`.
    pub(crate) async fn call_address(
        &self,
        addr: &str,
        kind: Kind,
        body: &[u8],
        ttl: Duration,
    ) -> Result<Vec<u8>, MeshError> {
        let exchanged = async {
            let stream = open(addr, self.inner.relay.as_ref()).await?;
            let mut link = self.inner.endpoint.connect_any(stream).await?;
            exchange(&mut link, kind, 1, body).await
        };
        tokio::time::timeout(ttl, exchanged)
            .await
            .unwrap_or(Err(MeshError::Timeout("a request to a peer")))
    }
}

/// What a replica serves its peers beyond openraft's own requests (joins, forwarded client
/// requests, read indexes, the key blobs).
pub(crate) trait PeerRequests: Send + Sync + 'static {
    /// The answer's body to a request of `kind` from replica `peer`; `None` when this
    /// replica does not serve `kind`.
    fn answer(&self, peer: NodeId, kind: Kind, body: Vec<u8>) -> PeerAnswer<'_>;
}

/// A [`PeerRequests`] answer to come: `None` when the kind is not served.
pub(crate) type PeerAnswer<'a> =
    std::pin::Pin<Box<dyn Future<Output = Option<Result<Vec<u8>, FrameError>>> + Send + 'a>>;

/// A byte stream to a peer address: `relay:HOST:PORT` through the proxy's relay (production,
/// and dev's replicas), or `unix:PATH` (tests).
async fn open(
    addr: &str,
    relay: Option<&crate::sui::RelayAddr>,
) -> Result<Box<dyn Stream>, MeshError> {
    if let Some(target) = addr.strip_prefix("relay:") {
        let relay =
            relay.ok_or_else(|| MeshError::Address(format!("{addr} (no --replica-relay)")))?;
        let stream = crate::sui::open_relay(relay, target).await?;
        return Ok(Box::new(stream));
    }
    let path = addr
        .strip_prefix("unix:")
        .filter(|path| !path.is_empty())
        .ok_or_else(|| MeshError::Address(addr.to_string()))?;
    let stream = tokio::net::UnixStream::connect(path).await?;
    Ok(Box::new(stream))
}

impl RaftNetworkFactory<Nautilus> for Mesh {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &Member) -> PeerClient {
        PeerClient {
            inner: self.inner.clone(),
            target,
            addr: self.inner.address_of(node),
            link: Mutex::new(None),
            next_id: 1,
        }
    }
}

/// One replica's requests to another, one at a time.
pub(crate) struct PeerClient {
    inner: Arc<MeshInner>,
    target: NodeId,
    addr: String,
    /// Taken out for the length of a request, so a cancelled request drops its link. (In a
    /// mutex only because openraft wants clients `Sync`; `&mut self` reaches it without
    /// locking.)
    link: Mutex<Option<Link>>,
    next_id: u64,
}

impl Drop for PeerClient {
    fn drop(&mut self) {
        if let Some(link) = self.held().take() {
            self.inner.put_idle(link);
        }
    }
}

/// The beginning of a snapshot transfer; its chunks follow as pieces of at most
/// [`PIECE_BYTES`] (raw bytes, in order), then a `SnapshotEnd`.
#[derive(Debug, Serialize, Deserialize)]
struct SnapshotBegin {
    vote: Vote<NodeId>,
    meta: SnapshotMeta<NodeId, Member>,
    revision: u64,
    chunk_lens: Vec<u64>,
}

impl PeerClient {
    /// A link to the target (the one held, an idle one, or a new one) and whether it was
    /// used before.
    async fn link(&mut self) -> Result<(Link, bool), MeshError> {
        if let Some(link) = self
            .held()
            .take()
            .or_else(|| self.inner.take_idle(self.target))
        {
            return Ok((link, true));
        }
        Ok((
            self.inner.dial(self.target, self.addr.clone()).await?,
            false,
        ))
    }

    fn held(&mut self) -> &mut Option<Link> {
        self.link
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn request_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        id
    }

    /// One request and its answer's body.
    async fn call(&mut self, kind: Kind, body: &[u8]) -> Result<Vec<u8>, MeshError> {
        let (mut link, used) = self.link().await?;
        let id = self.request_id();
        match exchange(&mut link, kind, id, body).await {
            Ok(answer) => {
                *self.held() = Some(link);
                Ok(answer)
            }
            // Sent again on a new link only when doing it twice is harmless: a forwarded
            // client request may have reached the leader before the link broke (a create
            // would run twice: committed, then answered 409), so its client is told it may or
            // may not have been applied instead.
            Err(MeshError::Io(_) | MeshError::Closed) if used && kind != Kind::Forward => {
                drop(link);
                let mut link = self.inner.dial(self.target, self.addr.clone()).await?;
                let answer = exchange(&mut link, kind, id, body).await?;
                *self.held() = Some(link);
                Ok(answer)
            }
            Err(e) => Err(e),
        }
    }

    /// `call` bounded by `ttl`, its answer decoded, errors as openraft's.
    async fn rpc<A, E>(
        &mut self,
        action: RPCTypes,
        kind: Kind,
        request: &impl Serialize,
        ttl: Duration,
    ) -> Result<A, RPCError<NodeId, Member, RaftError<NodeId, E>>>
    where
        A: for<'de> Deserialize<'de>,
        E: std::error::Error + for<'de> Deserialize<'de>,
    {
        let body = encode(request).map_err(|e| rpc_error(MeshError::Frame(e)))?;
        let answer = tokio::time::timeout(ttl, self.call(kind, &body))
            .await
            .map_err(|_| {
                RPCError::Timeout(Timeout {
                    action,
                    id: self.inner.endpoint.node_id(),
                    target: self.target,
                    timeout: ttl,
                })
            })?
            .map_err(rpc_error)?;
        let answer: Result<A, RaftError<NodeId, E>> =
            decode(&answer).map_err(|e| rpc_error(MeshError::Frame(e)))?;
        answer.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }

    /// Sends `snapshot` as frames and waits for it to be installed.
    async fn send_snapshot(
        &mut self,
        vote: Vote<NodeId>,
        snapshot: Snapshot<Nautilus>,
        ttl: Duration,
    ) -> Result<SnapshotResponse<NodeId>, StreamingError<Nautilus, Fatal<NodeId>>> {
        let timeout = |node_id, target| {
            StreamingError::Timeout(Timeout {
                action: RPCTypes::InstallSnapshot,
                id: node_id,
                target,
                timeout: ttl,
            })
        };
        let (node_id, target) = (self.inner.endpoint.node_id(), self.target);
        let (mut link, _) = self.link().await.map_err(streaming_error)?;
        let id = self.request_id();
        let Snapshot { meta, snapshot } = snapshot;
        let begin = SnapshotBegin {
            vote,
            meta,
            revision: snapshot.revision,
            chunk_lens: snapshot.chunks.iter().map(|c| c.len() as u64).collect(),
        };
        let begin = encode(&begin).map_err(|e| streaming_error(MeshError::Frame(e)))?;
        let frames = std::iter::once((Kind::SnapshotBegin, begin.as_slice()))
            .chain(
                snapshot
                    .chunks
                    .iter()
                    .flat_map(|chunk| chunk.chunks(PIECE_BYTES))
                    .map(|piece| (Kind::SnapshotPiece, piece)),
            )
            .chain(std::iter::once((Kind::SnapshotEnd, &[][..])));
        for (kind, body) in frames {
            tokio::time::timeout(ttl, link.send(kind, id, body))
                .await
                .map_err(|_| timeout(node_id, target))?
                .map_err(streaming_error)?;
        }
        let answer = tokio::time::timeout(INSTALL_ANSWER_WAIT, answer(&mut link, id))
            .await
            .map_err(|_| timeout(node_id, target))?
            .map_err(streaming_error)?;
        *self.held() = Some(link);
        let answer: Result<SnapshotResponse<NodeId>, Fatal<NodeId>> =
            decode(&answer).map_err(|e| streaming_error(MeshError::Frame(e)))?;
        answer.map_err(|e| StreamingError::RemoteError(RemoteError::new(target, e)))
    }
}

/// Sends a request and reads its answer.
async fn exchange(link: &mut Link, kind: Kind, id: u64, body: &[u8]) -> Result<Vec<u8>, MeshError> {
    link.send(kind, id, body).await?;
    answer(link, id).await
}

/// The answer to request `id`, the next frame.
async fn answer(link: &mut Link, id: u64) -> Result<Vec<u8>, MeshError> {
    let frame = link.receive().await?.ok_or(MeshError::Closed)?;
    if frame.id != id {
        return Err(FrameError::WrongAnswer {
            expected: id,
            got: frame.id,
        }
        .into());
    }
    match frame.kind {
        Kind::Answer => Ok(frame.body),
        Kind::Error => Err(MeshError::Remote(
            decode::<String>(&frame.body).unwrap_or_else(|e| e.to_string()),
        )),
        other => Err(FrameError::Unexpected(other).into()),
    }
}

/// A malformed exchange is a network error; anything else leaves the peer unreachable.
fn rpc_error<E: std::error::Error>(e: MeshError) -> RPCError<NodeId, Member, E> {
    match e {
        MeshError::Frame(_) | MeshError::Remote(_) => RPCError::Network(NetworkError::new(&e)),
        _ => RPCError::Unreachable(Unreachable::new(&e)),
    }
}

fn streaming_error(e: MeshError) -> StreamingError<Nautilus, Fatal<NodeId>> {
    match e {
        MeshError::Frame(_) | MeshError::Remote(_) => {
            StreamingError::Network(NetworkError::new(&e))
        }
        _ => StreamingError::Unreachable(Unreachable::new(&e)),
    }
}

impl RaftNetwork<Nautilus> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<Nautilus>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, Member, RaftError<NodeId>>> {
        self.rpc(
            RPCTypes::AppendEntries,
            Kind::AppendEntries,
            &rpc,
            option.hard_ttl(),
        )
        .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, Member, RaftError<NodeId>>> {
        self.rpc(RPCTypes::Vote, Kind::Vote, &rpc, option.hard_ttl())
            .await
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote<NodeId>,
        snapshot: Snapshot<Nautilus>,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<NodeId>, StreamingError<Nautilus, Fatal<NodeId>>> {
        let ttl = option.hard_ttl();
        tokio::select! {
            result = self.send_snapshot(vote, snapshot, ttl) => result,
            closed = cancel => Err(StreamingError::Closed(closed)),
        }
    }
}

/// Admits the peers that connect on `listener` and serves each to `raft`; runs until
/// aborted.
pub(crate) async fn serve(
    endpoint: Arc<MeshEndpoint>,
    listener: Listener,
    raft: Raft,
    requests: Option<Arc<dyn PeerRequests>>,
) {
    loop {
        let stream = match listener.accept().await {
            Ok(stream) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "replica mesh: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let endpoint = endpoint.clone();
        let raft = raft.clone();
        let requests = requests.clone();
        tokio::spawn(async move {
            match endpoint.accept(stream).await {
                Ok(link) => {
                    let peer = link.peer();
                    if let Err(e) = serve_link(link, &raft, requests.as_deref()).await {
                        tracing::debug!(peer, error = %e, "replica mesh: peer connection ended");
                    }
                }
                // Logged and counted by the endpoint.
                Err(MeshError::Refused(_)) => {}
                Err(e) => tracing::debug!(error = %e, "replica mesh: handshake failed"),
            }
        });
    }
}

/// Answers an admitted peer's requests, in order, until it closes; a frame that does not
/// belong ends the connection (after an `Error` frame saying why).
pub(crate) async fn serve_link(
    mut link: Link,
    raft: &Raft,
    requests: Option<&dyn PeerRequests>,
) -> Result<(), MeshError> {
    let mut incoming = None;
    let peer = link.peer();
    while let Some(frame) = link.receive().await? {
        let id = frame.id;
        match handle(&mut incoming, frame, raft, peer, requests).await {
            Ok(Some(answer)) => link.send(Kind::Answer, id, &answer).await?,
            Ok(None) => {}
            Err(e) => {
                let why = encode(&e.to_string()).unwrap_or_default();
                // The connection ends either way; the reason is a courtesy.
                let _ = link.send(Kind::Error, id, &why).await;
                return Err(e.into());
            }
        }
    }
    Ok(())
}

/// One request frame: its answer's body, if it is complete.
async fn handle(
    incoming: &mut Option<IncomingSnapshot>,
    frame: Frame,
    raft: &Raft,
    peer: NodeId,
    requests: Option<&dyn PeerRequests>,
) -> Result<Option<Vec<u8>>, FrameError> {
    match frame.kind {
        Kind::AppendEntries => {
            let rpc = decode(&frame.body)?;
            Ok(Some(encode(&raft.append_entries(rpc).await)?))
        }
        Kind::Vote => {
            let rpc = decode(&frame.body)?;
            Ok(Some(encode(&raft.vote(rpc).await)?))
        }
        Kind::SnapshotBegin => {
            *incoming = Some(IncomingSnapshot::begin(frame.id, decode(&frame.body)?)?);
            Ok(None)
        }
        Kind::SnapshotPiece => {
            incoming
                .as_mut()
                .filter(|s| s.id == frame.id)
                .ok_or(FrameError::Unexpected(Kind::SnapshotPiece))?
                .push(&frame.body)?;
            Ok(None)
        }
        Kind::SnapshotEnd => {
            let (vote, snapshot) = incoming
                .take()
                .filter(|s| s.id == frame.id)
                .ok_or(FrameError::Unexpected(Kind::SnapshotEnd))?
                .finish()?;
            Ok(Some(encode(
                &raft.install_full_snapshot(vote, snapshot).await,
            )?))
        }
        other => match requests {
            Some(requests) => match requests.answer(peer, other, frame.body).await {
                Some(answer) => answer.map(Some),
                None => Err(FrameError::Unexpected(other)),
            },
            None => Err(FrameError::Unexpected(other)),
        },
    }
}

/// A snapshot being received: the announced chunk sizes and what arrived.
struct IncomingSnapshot {
    id: u64,
    vote: Vote<NodeId>,
    meta: SnapshotMeta<NodeId, Member>,
    revision: u64,
    expected: Vec<u64>,
    chunks: Vec<Bytes>,
    current: Vec<u8>,
}

impl IncomingSnapshot {
    fn begin(id: u64, begin: SnapshotBegin) -> Result<Self, FrameError> {
        if begin.chunk_lens.len() > MAX_SNAPSHOT_CHUNKS {
            return Err(FrameError::Snapshot("too many chunks"));
        }
        let total = begin
            .chunk_lens
            .iter()
            .try_fold(0u64, |sum, &len| sum.checked_add(len));
        if total.is_none_or(|total| total > MAX_SNAPSHOT_BYTES) {
            return Err(FrameError::Snapshot("larger than a replica receives"));
        }
        let mut snapshot = Self {
            id,
            vote: begin.vote,
            meta: begin.meta,
            revision: begin.revision,
            expected: begin.chunk_lens,
            chunks: Vec::new(),
            current: Vec::new(),
        };
        snapshot.settle();
        Ok(snapshot)
    }

    /// Closes every chunk that is complete (empty ones included).
    fn settle(&mut self) {
        while let Some(&want) = self.expected.get(self.chunks.len()) {
            if self.current.len() as u64 != want {
                break;
            }
            self.chunks
                .push(Bytes::from(std::mem::take(&mut self.current)));
        }
    }

    fn push(&mut self, piece: &[u8]) -> Result<(), FrameError> {
        let want = *self
            .expected
            .get(self.chunks.len())
            .ok_or(FrameError::Snapshot("more bytes than announced"))?;
        let len = (self.current.len() as u64).saturating_add(piece.len() as u64);
        if piece.is_empty() || len > want {
            return Err(FrameError::Snapshot("a piece crosses a chunk's end"));
        }
        self.current.extend_from_slice(piece);
        self.settle();
        Ok(())
    }

    fn finish(self) -> Result<(Vote<NodeId>, Snapshot<Nautilus>), FrameError> {
        if self.chunks.len() != self.expected.len() {
            return Err(FrameError::Snapshot("fewer bytes than announced"));
        }
        Ok((
            self.vote,
            Snapshot {
                meta: self.meta,
                snapshot: Box::new(SnapshotHandle {
                    revision: self.revision,
                    chunks: self.chunks,
                }),
            },
        ))
    }
}
