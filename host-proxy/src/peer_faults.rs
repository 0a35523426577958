//! Dev only (`dev --replicas N --replica-faults`, issue 17): the hostile host's power over the
//! replicas' mesh, on command. Each replica dials its peers through its own relay here, in
//! front of dev's relay (same `CONNECT host:port` protocol, passed on): the relay knows the
//! dialer, the address names the peer, so each directed link (dialer i -> peer j) is gated by
//! its state: pass, cut (open connections closed, new ones refused until healed), delay
//! (every chunk held before it is forwarded, both ways, in order) or reset (open connections
//! closed once). The mesh is mutual TLS end to end, so delaying, cutting and resetting byte
//! streams is all a host can do; reordering happens across connections, never inside one.
//! Tests drive it through a Unix socket taking one line per connection (`cut I J`,
//! `delay I J MS`, `reset I J`, `heal I J`, `heal`, `isolate K`).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{
    AsyncBufReadExt as _, AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _,
};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::Instant;

/// The longest delay a command may set: longer is a cut.
const MAX_DELAY: Duration = Duration::from_secs(60);
/// Bytes read at once from one side of a spliced connection.
const CHUNK: usize = 16 * 1024;
/// Chunks held (delayed) per direction before the reader waits: bounds a slow link's memory.
const HELD_CHUNKS: usize = 256;
/// The longest command line read from the control socket.
const MAX_COMMAND: u64 = 256;
/// The longest `CONNECT` line (as dev's relay takes).
const MAX_REQUEST_LINE: usize = 300;
/// Deadline for the replica's `CONNECT` line and for dev's relay to take the connection.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections through one replica's relay at once (a few per peer are used).
const MAX_CONNECTIONS: usize = 64;

/// One directed link: `from` dials `to`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Link {
    pub(crate) from: usize,
    pub(crate) to: usize,
}

impl fmt::Display for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}->{}", self.from, self.to)
    }
}

/// What the host does to one link's bytes now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct LinkState {
    cut: bool,
    delay: Duration,
    /// Bumped by each reset: connections opened before it close.
    resets: u64,
}

/// A command of the control socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Command {
    Cut(Link),
    Delay(Link, Duration),
    Reset(Link),
    Heal(Link),
    HealAll,
    /// Cut every link from and to the replica.
    Isolate(usize),
}

/// Why a command was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum CommandError {
    /// Not one of the commands, or the wrong number of arguments.
    Unknown(String),
    /// An argument that is not a number.
    NotANumber(String),
    /// A slot beyond the replica set.
    NoSuchReplica(usize),
    /// A replica's link to itself is never faulted.
    SameReplica(usize),
    /// A delay beyond [`MAX_DELAY`].
    DelayTooLong(u64),
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown(line) => write!(
                f,
                "unknown command {line:?} (cut I J, delay I J MS, reset I J, heal I J, heal, isolate K)"
            ),
            Self::NotANumber(word) => write!(f, "{word:?} is not a number"),
            Self::NoSuchReplica(slot) => write!(f, "no replica in slot {slot}"),
            Self::SameReplica(slot) => write!(f, "{slot}->{slot} is not a link between replicas"),
            Self::DelayTooLong(ms) => write!(
                f,
                "a delay of {ms} ms is longer than {} ms (cut the link instead)",
                MAX_DELAY.as_millis()
            ),
        }
    }
}

impl FromStr for Command {
    type Err = CommandError;

    /// Parses the syntax only; [`LinkFaults::apply`] checks the slots.
    fn from_str(line: &str) -> Result<Self, Self::Err> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let number = |word: &str| {
            word.parse::<u64>()
                .map_err(|_| CommandError::NotANumber(word.to_string()))
        };
        let slot = |word: &str| {
            word.parse::<usize>()
                .map_err(|_| CommandError::NotANumber(word.to_string()))
        };
        let link = |from: &str, to: &str| {
            Ok::<_, CommandError>(Link {
                from: slot(from)?,
                to: slot(to)?,
            })
        };
        match words[..] {
            ["cut", i, j] => Ok(Self::Cut(link(i, j)?)),
            ["delay", i, j, ms] => {
                let ms = number(ms)?;
                let delay = Duration::from_millis(ms);
                if delay > MAX_DELAY {
                    return Err(CommandError::DelayTooLong(ms));
                }
                Ok(Self::Delay(link(i, j)?, delay))
            }
            ["reset", i, j] => Ok(Self::Reset(link(i, j)?)),
            ["heal", i, j] => Ok(Self::Heal(link(i, j)?)),
            ["heal"] => Ok(Self::HealAll),
            ["isolate", k] => Ok(Self::Isolate(slot(k)?)),
            _ => Err(CommandError::Unknown(line.trim().to_string())),
        }
    }
}

/// Every directed link's state among `replicas` replicas; clones share it.
#[derive(Clone)]
pub(crate) struct LinkFaults {
    replicas: usize,
    /// Index `from * replicas + to`; a replica's link to itself is there, always passing.
    links: Arc<[watch::Sender<LinkState>]>,
}

impl LinkFaults {
    /// Every link among `replicas` replicas passing.
    pub(crate) fn new(replicas: usize) -> Self {
        let links = (0..replicas * replicas)
            .map(|_| watch::Sender::new(LinkState::default()))
            .collect();
        Self { replicas, links }
    }

    fn sender(&self, link: Link) -> Option<&watch::Sender<LinkState>> {
        if link.from >= self.replicas || link.to >= self.replicas {
            return None;
        }
        self.links.get(link.from * self.replicas + link.to)
    }

    /// What `link`'s splice consults.
    pub(crate) fn gate(&self, link: Link) -> Option<Gate> {
        Some(Gate {
            link,
            state: self.sender(link)?.subscribe(),
        })
    }

    fn check(&self, link: Link) -> Result<&watch::Sender<LinkState>, CommandError> {
        for slot in [link.from, link.to] {
            if slot >= self.replicas {
                return Err(CommandError::NoSuchReplica(slot));
            }
        }
        if link.from == link.to {
            return Err(CommandError::SameReplica(link.from));
        }
        self.sender(link)
            .ok_or(CommandError::NoSuchReplica(link.from))
    }

    /// Every link between two different replicas.
    fn all_links(&self) -> impl Iterator<Item = Link> + '_ {
        (0..self.replicas).flat_map(move |from| {
            (0..self.replicas)
                .filter(move |&to| to != from)
                .map(move |to| Link { from, to })
        })
    }

    /// Applies `command` (all of it or, when a slot is wrong, none of it) and logs each change.
    pub(crate) fn apply(&self, command: Command) -> Result<(), CommandError> {
        match command {
            Command::Cut(link) => {
                self.check(link)?.send_modify(|s| s.cut = true);
                tracing::info!("peer link {link} cut");
            }
            Command::Delay(link, delay) => {
                self.check(link)?.send_modify(|s| s.delay = delay);
                tracing::info!("peer link {link} delayed {} ms", delay.as_millis());
            }
            Command::Reset(link) => {
                self.check(link)?.send_modify(|s| s.resets += 1);
                tracing::info!("peer link {link} reset");
            }
            Command::Heal(link) => {
                self.check(link)?.send_modify(|s| {
                    s.cut = false;
                    s.delay = Duration::ZERO;
                });
                tracing::info!("peer link {link} healed");
            }
            Command::HealAll => {
                for link in self.all_links() {
                    self.check(link)?.send_if_modified(|s| {
                        let faulty = s.cut || !s.delay.is_zero();
                        s.cut = false;
                        s.delay = Duration::ZERO;
                        faulty
                    });
                }
                tracing::info!("peer links all healed");
            }
            Command::Isolate(slot) => {
                if slot >= self.replicas {
                    return Err(CommandError::NoSuchReplica(slot));
                }
                let touching: Vec<Link> = self
                    .all_links()
                    .filter(|l| l.from == slot || l.to == slot)
                    .collect();
                for link in touching {
                    self.check(link)?.send_modify(|s| s.cut = true);
                    tracing::info!("peer link {link} cut");
                }
            }
        }
        Ok(())
    }
}

/// One link's state, as its splice sees it.
#[derive(Clone)]
pub(crate) struct Gate {
    link: Link,
    state: watch::Receiver<LinkState>,
}

impl Gate {
    fn now(&self) -> LinkState {
        *self.state.borrow()
    }

    /// Resolves when a connection opened at `opened` must close: the link is cut or reset.
    async fn severed(mut self, opened: LinkState) {
        loop {
            let state = *self.state.borrow_and_update();
            if state.cut || state.resets != opened.resets {
                return;
            }
            if self.state.changed().await.is_err() {
                // The table is gone (dev stops): nothing severs any more.
                std::future::pending::<()>().await;
            }
        }
    }
}

/// Serves replica `from`'s peer relay at `path` until dev stops: each connection's
/// `CONNECT host:port` line names the peer by its address in `peers` (slot order), and is
/// passed on to dev's relay at `relay` through that link's gate. An address that names no peer
/// passes ungated (dev's relay decides).
pub(crate) fn start_front(
    path: &Path,
    from: usize,
    peers: Vec<String>,
    relay: PathBuf,
    faults: &LinkFaults,
) -> Result<(), String> {
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)
        .map_err(|e| format!("cannot listen on {}: {e}", path.display()))?;
    let gates: Vec<Option<Gate>> = (0..peers.len())
        .map(|to| {
            (to != from)
                .then(|| faults.gate(Link { from, to }))
                .flatten()
        })
        .collect();
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                tracing::warn!(
                    from,
                    "replica peers: too many connections through the fault relay; closed"
                );
                continue;
            };
            let (peers, gates, relay) = (peers.clone(), gates.clone(), relay.clone());
            tokio::spawn(async move {
                let _permit = permit;
                front_one(stream, &peers, &gates, &relay).await;
            });
        }
    });
    Ok(())
}

/// One connection through a replica's relay: the `CONNECT` line, the link's gate, dev's relay.
async fn front_one(
    mut replica: UnixStream,
    peers: &[String],
    gates: &[Option<Gate>],
    relay: &Path,
) {
    let Ok(Ok(line)) = tokio::time::timeout(REQUEST_TIMEOUT, read_line(&mut replica)).await else {
        return;
    };
    let gate = line
        .strip_prefix("CONNECT ")
        .and_then(|target| peers.iter().position(|p| p == target.trim()))
        .and_then(|to| gates.get(to).cloned().flatten());
    let opened = gate.as_ref().map(Gate::now).unwrap_or_default();
    if let Some(gate) = gate.as_ref().filter(|_| opened.cut) {
        tracing::debug!(link = %gate.link, "replica peers: link cut; connection refused");
        let _ = replica
            .write_all(format!("FAILED peer link {} cut (injected)\n", gate.link).as_bytes())
            .await;
        return;
    }
    let splice = async {
        let upstream = tokio::time::timeout(REQUEST_TIMEOUT, UnixStream::connect(relay)).await;
        let Ok(Ok(mut upstream)) = upstream else {
            let _ = replica
                .write_all(b"FAILED dev's relay did not answer\n")
                .await;
            return;
        };
        if upstream
            .write_all(format!("{line}\n").as_bytes())
            .await
            .is_err()
        {
            return;
        }
        let (replica_read, replica_write) = replica.into_split();
        let (upstream_read, upstream_write) = upstream.into_split();
        let result = tokio::try_join!(
            delayed_copy(replica_read, upstream_write, gate.clone()),
            delayed_copy(upstream_read, replica_write, gate.clone()),
        );
        if let Err(e) = result {
            tracing::debug!(error = %e, "replica peers: connection ended");
        }
    };
    match gate.clone() {
        Some(gate) => {
            let link = gate.link;
            tokio::select! {
                () = splice => {}
                () = gate.severed(opened) => {
                    tracing::debug!(%link, "replica peers: link cut or reset; connection closed");
                }
            }
        }
        None => splice.await,
    }
}

/// Reads the `CONNECT` line byte by byte, so that no byte after it is taken with it.
async fn read_line(stream: &mut UnixStream) -> io::Result<String> {
    let mut line = Vec::with_capacity(64);
    loop {
        let mut byte = [0u8; 1];
        if stream.read(&mut byte).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        match byte {
            [b'\n'] => break,
            _ if line.len() >= MAX_REQUEST_LINE => return Err(io::ErrorKind::InvalidData.into()),
            _ => line.extend_from_slice(&byte),
        }
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| io::ErrorKind::InvalidData.into())
}

/// Copies `from` to `to`, each chunk held for the link's delay (none without a gate) at the
/// time it was read, in order; shuts `to` down at `from`'s end.
async fn delayed_copy(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    gate: Option<Gate>,
) -> io::Result<()> {
    let (held, mut due) = mpsc::channel::<(Instant, Vec<u8>)>(HELD_CHUNKS);
    let read = async move {
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = from.read(&mut buf).await?;
            if n == 0 {
                return Ok::<_, io::Error>(());
            }
            let delay = gate.as_ref().map_or(Duration::ZERO, |g| g.now().delay);
            let at = Instant::now() + delay;
            let chunk = buf.get(..n).unwrap_or_default().to_vec();
            if held.send((at, chunk)).await.is_err() {
                return Ok(());
            }
        }
    };
    let write = async move {
        while let Some((at, chunk)) = due.recv().await {
            tokio::time::sleep_until(at).await;
            to.write_all(&chunk).await?;
        }
        to.shutdown().await
    };
    tokio::try_join!(read, write).map(|_| ())
}

/// Answers the control socket at `path` (dev's data directory, private) until the task is
/// dropped: one command line per connection, `ok\n` or `error: ...\n`.
pub(crate) fn serve_control(path: &Path, faults: LinkFaults) -> Result<(), String> {
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)
        .map_err(|e| format!("cannot listen on {}: {e}", path.display()))?;
    tracing::warn!(socket = %path.display(), "TESTS ONLY: replica peer links take faults from this socket");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let faults = faults.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut line = String::new();
                let mut reader = tokio::io::BufReader::new(read.take(MAX_COMMAND));
                if reader.read_line(&mut line).await.is_err() {
                    return;
                }
                let answer = match line.parse().and_then(|command| faults.apply(command)) {
                    Ok(()) => "ok\n".to_string(),
                    Err(e) => format!("error: {e}\n"),
                };
                let _ = write.write_all(answer.as_bytes()).await;
            });
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_dir(tag: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("nautilus-peer-faults-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    const PEERS: [&str; 2] = ["127.0.0.1:7000", "127.0.0.1:7001"];

    /// Replica 0's relay in front of a fake dev relay that takes every `CONNECT`: (the front's
    /// socket, the fake relay's listener).
    async fn front(tag: &str, faults: &LinkFaults) -> (PathBuf, UnixListener) {
        let dir = test_dir(tag);
        let relay = dir.join("dev-relay.sock");
        let upstream = UnixListener::bind(&relay).unwrap();
        let path = dir.join("relay.sock");
        let peers = PEERS.iter().map(ToString::to_string).collect();
        start_front(&path, 0, peers, relay, faults).unwrap();
        (path, upstream)
    }

    /// Replica 0 dials peer 1 through its relay: (its end, dev's relay's end, after the
    /// `CONNECT` line and an `OK`).
    async fn open(path: &Path, upstream: &UnixListener) -> (UnixStream, UnixStream) {
        let mut replica = UnixStream::connect(path).await.unwrap();
        replica
            .write_all(format!("CONNECT {}\n", PEERS[1]).as_bytes())
            .await
            .unwrap();
        let (mut relay, _) = upstream.accept().await.unwrap();
        let expected = format!("CONNECT {}\n", PEERS[1]);
        let mut line = vec![0u8; expected.len()];
        relay.read_exact(&mut line).await.unwrap();
        assert_eq!(line, expected.as_bytes());
        relay.write_all(b"OK\n").await.unwrap();
        let mut ok = [0u8; 3];
        replica.read_exact(&mut ok).await.unwrap();
        assert_eq!(&ok, b"OK\n");
        (replica, relay)
    }

    async fn closed(stream: &mut (impl AsyncRead + Unpin)) -> bool {
        let mut buf = [0u8; 64];
        loop {
            match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
                Ok(Ok(0) | Err(_)) => return true,
                Ok(Ok(_)) => {}
                Err(_) => return false,
            }
        }
    }

    /// A cut closes the open connection and refuses new ones; a heal lets them through again.
    #[tokio::test]
    async fn a_cut_link_closes_and_refuses_until_healed() {
        let faults = LinkFaults::new(2);
        let (path, upstream) = front("cut", &faults).await;
        let (mut client, mut inner) = open(&path, &upstream).await;

        faults.apply("cut 0 1".parse().unwrap()).unwrap();
        assert!(closed(&mut client).await, "the replica's end is closed");
        assert!(closed(&mut inner).await, "the relay's end is closed");
        let mut refused = UnixStream::connect(&path).await.unwrap();
        refused
            .write_all(b"CONNECT 127.0.0.1:7001\n")
            .await
            .unwrap();
        let mut answer = String::new();
        refused.read_to_string(&mut answer).await.unwrap();
        assert_eq!(answer, "FAILED peer link 0->1 cut (injected)\n");
        let accepted = tokio::time::timeout(Duration::from_millis(200), upstream.accept()).await;
        assert!(accepted.is_err(), "nothing reached dev's relay");

        faults.apply("heal 0 1".parse().unwrap()).unwrap();
        let (mut client, mut inner) = open(&path, &upstream).await;
        inner.write_all(b"back").await.unwrap();
        let mut back = [0u8; 4];
        client.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"back");
    }

    /// A delayed link holds each chunk, both ways, and delivers in order.
    #[tokio::test]
    async fn a_delayed_link_delivers_in_order_after_the_delay() {
        let faults = LinkFaults::new(2);
        let (path, upstream) = front("delay", &faults).await;
        let (mut client, mut inner) = open(&path, &upstream).await;
        faults.apply("delay 0 1 150".parse().unwrap()).unwrap();

        let sent = Instant::now();
        for part in [&b"one "[..], b"two ", b"three"] {
            client.write_all(part).await.unwrap();
        }
        let mut got = [0u8; 13];
        inner.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"one two three");
        assert!(sent.elapsed() >= Duration::from_millis(150), "held");

        let sent = Instant::now();
        inner.write_all(b"answer").await.unwrap();
        let mut back = [0u8; 6];
        client.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"answer");
        assert!(
            sent.elapsed() >= Duration::from_millis(150),
            "held both ways"
        );

        faults.apply("heal".parse().unwrap()).unwrap();
        let sent = Instant::now();
        client.write_all(b"fast").await.unwrap();
        let mut got = [0u8; 4];
        inner.read_exact(&mut got).await.unwrap();
        assert!(sent.elapsed() < Duration::from_millis(150), "healed");
    }

    /// A reset closes the open connection once; the next one passes.
    #[tokio::test]
    async fn a_reset_closes_open_connections_once() {
        let faults = LinkFaults::new(2);
        let (path, upstream) = front("reset", &faults).await;
        let (mut client, _inner) = open(&path, &upstream).await;
        faults.apply("reset 0 1".parse().unwrap()).unwrap();
        assert!(closed(&mut client).await);
        let (mut client, mut inner) = open(&path, &upstream).await;
        inner.write_all(b"ok").await.unwrap();
        let mut back = [0u8; 2];
        client.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"ok");
    }

    /// `isolate K` cuts K's links both ways and no other; slots are checked.
    #[test]
    fn isolate_cuts_both_ways_and_commands_are_checked() {
        let faults = LinkFaults::new(3);
        faults.apply("isolate 1".parse().unwrap()).unwrap();
        let cut = |from, to| faults.gate(Link { from, to }).unwrap().now().cut;
        assert!(cut(0, 1) && cut(1, 0) && cut(1, 2) && cut(2, 1));
        assert!(!cut(0, 2) && !cut(2, 0));
        faults.apply(Command::HealAll).unwrap();
        assert!(!cut(0, 1) && !cut(2, 1));

        assert_eq!(
            faults.apply("cut 0 3".parse().unwrap()),
            Err(CommandError::NoSuchReplica(3))
        );
        assert_eq!(
            faults.apply("cut 2 2".parse().unwrap()),
            Err(CommandError::SameReplica(2))
        );
        assert!(matches!(
            "cut 0".parse::<Command>(),
            Err(CommandError::Unknown(_))
        ));
        assert!(matches!(
            "delay 0 1 x".parse::<Command>(),
            Err(CommandError::NotANumber(_))
        ));
        assert_eq!(
            "delay 0 1 60001".parse::<Command>(),
            Err(CommandError::DelayTooLong(60001))
        );
    }

    /// The control socket answers `ok` or the error, one command per connection.
    #[tokio::test]
    async fn the_control_socket_answers_each_command() {
        let path = test_dir("control").join("replica-faults.sock");
        let faults = LinkFaults::new(3);
        serve_control(&path, faults.clone()).unwrap();
        let ask = |line: &'static str| {
            let path = path.clone();
            async move {
                let mut stream = tokio::net::UnixStream::connect(&path).await.unwrap();
                stream.write_all(line.as_bytes()).await.unwrap();
                let mut answer = String::new();
                stream.read_to_string(&mut answer).await.unwrap();
                answer
            }
        };
        assert_eq!(ask("cut 0 2\n").await, "ok\n");
        assert!(faults.gate(Link { from: 0, to: 2 }).unwrap().now().cut);
        assert!(
            ask("cut 0 9\n")
                .await
                .starts_with("error: no replica in slot 9")
        );
        assert!(
            ask("drop 0 1\n")
                .await
                .starts_with("error: unknown command")
        );
    }
}
