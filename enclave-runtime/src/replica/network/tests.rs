//! [`PeerClient`] against a scripted peer (an admitted link answering as told): links are
//! kept and reused, a link whose peer went away is replaced once, and each failure reaches
//! openraft as the error it backs off or retries on.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};

use openraft::LogId;

use super::*;
use crate::cli::ListenAddr;
use crate::replica::mesh::tests::{endpoint, endpoint_with};

/// What the scripted peer does with the next request.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// Grants the vote.
    Grant,
    /// Drops the connection without answering.
    Hang,
    /// Answers another request id.
    WrongId,
    /// Answers an `Error` frame.
    Refuse,
    /// Never answers.
    Silent,
}

struct Peer {
    member: Member,
    accepted: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

/// Replica 2 on a socket in `dir`, following `steps` over whatever connections arrive.
fn scripted(dir: &std::path::Path, steps: &[Step]) -> Peer {
    let path = dir.join("peer.sock");
    let listener = Listener::bind(&ListenAddr::Unix(path.clone())).unwrap();
    let steps = Arc::new(Mutex::new(steps.iter().copied().collect::<VecDeque<_>>()));
    let accepted = Arc::new(AtomicUsize::new(0));
    let endpoint = endpoint(2);
    let counter = accepted.clone();
    let task = tokio::spawn(async move {
        loop {
            let stream = listener.accept().await.unwrap();
            let Ok(mut link) = endpoint.accept(stream).await else {
                continue;
            };
            counter.fetch_add(1, Ordering::SeqCst);
            let steps = steps.clone();
            tokio::spawn(async move {
                while let Ok(Some(frame)) = link.receive().await {
                    let request: VoteRequest<NodeId> = decode(&frame.body).unwrap();
                    let step = steps.lock().unwrap().pop_front().unwrap_or(Step::Grant);
                    let granted: Result<VoteResponse<NodeId>, RaftError<NodeId>> =
                        Ok(VoteResponse {
                            vote: request.vote,
                            vote_granted: true,
                            last_log_id: None,
                        });
                    let granted = encode(&granted).unwrap();
                    let sent = match step {
                        Step::Grant => link.send(Kind::Answer, frame.id, &granted).await,
                        Step::Hang => return,
                        Step::WrongId => link.send(Kind::Answer, frame.id + 1, &granted).await,
                        Step::Refuse => {
                            let why = encode(&"no".to_string()).unwrap();
                            link.send(Kind::Error, frame.id, &why).await
                        }
                        Step::Silent => Ok(()),
                    };
                    sent.unwrap();
                }
            });
        }
    });
    Peer {
        member: Member {
            slot: 1,
            peer_addr: format!("unix:{}", path.display()),
        },
        accepted,
        task,
    }
}

fn socket_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("nautilus-peer-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn vote() -> VoteRequest<NodeId> {
    VoteRequest {
        vote: Vote::new(3, 1),
        last_log_id: Some(LogId::new(openraft::CommittedLeaderId::new(2, 1), 7)),
    }
}

fn option() -> RPCOption {
    RPCOption::new(Duration::from_secs(10))
}

#[tokio::test]
async fn links_are_kept_reused_and_replaced_once_when_their_peer_went_away() {
    let dir = socket_dir("reuse");
    let peer = scripted(&dir, &[Step::Grant, Step::Grant, Step::Grant, Step::Hang]);
    let mut mesh = Mesh::new(endpoint(1));
    let mut client = mesh.new_client(2, &peer.member).await;
    for _ in 0..2 {
        let answer = client.vote(vote(), option()).await.unwrap();
        assert!(answer.vote_granted);
        assert_eq!(answer.vote, vote().vote);
    }
    drop(client);
    // The next client (openraft makes one per election round) takes the parked link.
    let mut client = mesh.new_client(2, &peer.member).await;
    client.vote(vote(), option()).await.unwrap();
    assert_eq!(
        peer.accepted.load(Ordering::SeqCst),
        1,
        "one connection so far"
    );
    // The peer drops the connection on the next request: the client dials again, once.
    client.vote(vote(), option()).await.unwrap();
    assert_eq!(peer.accepted.load(Ordering::SeqCst), 2);
    peer.task.abort();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn failures_reach_openraft_as_network_timeout_or_unreachable() {
    let dir = socket_dir("errors");
    let peer = scripted(&dir, &[Step::WrongId, Step::Refuse, Step::Silent]);
    let mut mesh = Mesh::new(endpoint(1));
    let mut client = mesh.new_client(2, &peer.member).await;
    // An answer to another request, then an Error frame: the exchange is malformed.
    for _ in 0..2 {
        let error = client.vote(vote(), option()).await.unwrap_err();
        assert!(matches!(error, RPCError::Network(_)), "{error:?}");
    }
    // No answer within the hard TTL.
    let mut client = mesh.new_client(2, &peer.member).await;
    let ttl = Duration::from_millis(300);
    let error = client.vote(vote(), RPCOption::new(ttl)).await.unwrap_err();
    assert!(
        matches!(&error, RPCError::Timeout(t) if t.target == 2 && t.id == 1 && t.timeout == ttl),
        "{error:?}"
    );
    peer.task.abort();
    // Nobody listening, an address the mesh cannot dial, a peer of another cluster.
    let _ = std::fs::remove_file(dir.join("peer.sock"));
    let gone = mesh
        .new_client(2, &peer.member)
        .await
        .vote(vote(), option())
        .await;
    assert!(matches!(gone, Err(RPCError::Unreachable(_))), "{gone:?}");
    let elsewhere = Member {
        slot: 1,
        peer_addr: "tcp:10.0.0.2:7443".into(),
    };
    let odd = mesh
        .new_client(2, &elsewhere)
        .await
        .vote(vote(), option())
        .await;
    assert!(matches!(odd, Err(RPCError::Unreachable(_))), "{odd:?}");
    let stranger = endpoint_with(
        2,
        crate::nsm::simulated::SimulatedNsm::new().unwrap(),
        "cluster-b",
        |_| {},
    );
    let listener = Listener::bind(&ListenAddr::Unix(dir.join("stranger.sock"))).unwrap();
    let serving = tokio::spawn(async move {
        let stream = listener.accept().await.unwrap();
        let _ = stranger.accept(stream).await;
    });
    let member = Member {
        slot: 1,
        peer_addr: format!("unix:{}", dir.join("stranger.sock").display()),
    };
    let refused = mesh
        .new_client(2, &member)
        .await
        .vote(vote(), option())
        .await;
    assert!(
        matches!(refused, Err(RPCError::Unreachable(_))),
        "{refused:?}"
    );
    serving.abort();
    let _ = std::fs::remove_dir_all(&dir);
}

fn begin(chunk_lens: &[u64]) -> Result<IncomingSnapshot, FrameError> {
    IncomingSnapshot::begin(
        9,
        SnapshotBegin {
            vote: Vote::new(3, 1),
            meta: SnapshotMeta::default(),
            revision: 40,
            chunk_lens: chunk_lens.to_vec(),
        },
    )
}

#[test]
fn a_received_snapshot_must_add_up_to_what_its_beginning_announced() {
    // Pieces fill the announced chunks in order; an empty chunk needs no piece.
    let mut snapshot = begin(&[3, 0, 2]).unwrap();
    for piece in [&b"ab"[..], b"c", b"de"] {
        snapshot.push(piece).unwrap();
    }
    let (vote, snapshot) = snapshot.finish().unwrap();
    assert_eq!(vote, Vote::new(3, 1));
    assert_eq!(snapshot.snapshot.revision, 40);
    assert_eq!(
        snapshot.snapshot.chunks,
        vec![
            Bytes::from_static(b"abc"),
            Bytes::new(),
            Bytes::from_static(b"de")
        ]
    );
    // A piece across a chunk's end, bytes beyond the last chunk, an empty piece.
    let mut across = begin(&[3, 2]).unwrap();
    across.push(b"ab").unwrap();
    assert_eq!(
        across.push(b"cd"),
        Err(FrameError::Snapshot("a piece crosses a chunk's end"))
    );
    let mut over = begin(&[1]).unwrap();
    over.push(b"a").unwrap();
    assert_eq!(
        over.push(b"b"),
        Err(FrameError::Snapshot("more bytes than announced"))
    );
    assert!(begin(&[1]).unwrap().push(b"").is_err());
    // Ended early.
    let mut short = begin(&[2, 2]).unwrap();
    short.push(b"ab").unwrap();
    assert!(matches!(
        short.finish(),
        Err(FrameError::Snapshot("fewer bytes than announced"))
    ));
    // Announcements past the bounds, or overflowing.
    assert!(begin(&[MAX_SNAPSHOT_BYTES + 1]).is_err());
    assert!(begin(&[u64::MAX, 2]).is_err());
    assert!(begin(&vec![0; MAX_SNAPSHOT_CHUNKS + 1]).is_err());
    assert!(begin(&[MAX_SNAPSHOT_BYTES]).is_ok());
}

/// A forwarded client request is never sent twice: when the link breaks after the leader read
/// it (it may have run it), the caller gets the failure, not a second execution on a new link
/// (a create would run twice: committed, then answered 409). Requests that may repeat are
/// sent again once (the test above).
#[tokio::test]
async fn a_forwarded_request_is_not_sent_again_when_its_link_breaks() {
    let dir = socket_dir("forward");
    let path = dir.join("peer.sock");
    let listener = Listener::bind(&ListenAddr::Unix(path.clone())).unwrap();
    let leader = endpoint(2);
    let received = Arc::new(AtomicUsize::new(0));
    let accepted = Arc::new(AtomicUsize::new(0));
    let (seen, connections) = (received.clone(), accepted.clone());
    let task = tokio::spawn(async move {
        loop {
            let stream = listener.accept().await.unwrap();
            let Ok(mut link) = leader.accept(stream).await else {
                continue;
            };
            connections.fetch_add(1, Ordering::SeqCst);
            let seen = seen.clone();
            tokio::spawn(async move {
                while let Ok(Some(frame)) = link.receive().await {
                    assert_eq!(frame.kind, Kind::Forward);
                    // The first is answered; the second is read, then the link drops.
                    if seen.fetch_add(1, Ordering::SeqCst) > 0 {
                        return;
                    }
                    link.send(Kind::Answer, frame.id, b"done").await.unwrap();
                }
            });
        }
    });
    let mesh = Mesh::new(endpoint(1));
    let addr = format!("unix:{}", path.display());
    let wait = Duration::from_secs(10);
    let answer = mesh.call(2, &addr, Kind::Forward, b"create", wait).await;
    assert_eq!(answer.unwrap(), b"done");
    let broken = mesh.call(2, &addr, Kind::Forward, b"create", wait).await;
    assert!(broken.is_err(), "the caller hears of the broken link");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(received.load(Ordering::SeqCst), 2, "sent once per call");
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "no second link was dialed"
    );
    task.abort();
    let _ = std::fs::remove_dir_all(&dir);
}
