//! Dev only (`dev --replicas N --replica-faults`, issue 17): the hostile host's power over the
//! replicas' mesh, on command. Each directed link (dialer i -> peer j) has its own listener
//! whose splice consults the link's state here: pass, cut (open connections closed, new ones
//! refused until healed), delay (every chunk held before it is forwarded, both ways, in order)
//! or reset (open connections closed once). The mesh is mutual TLS end to end, so delaying,
//! cutting and resetting byte streams is all a host can do; reordering happens across
//! connections, never inside one. Tests drive it through a Unix socket taking one line per
//! connection (`cut I J`, `delay I J MS`, `reset I J`, `heal I J`, `heal`, `isolate K`).

use std::fmt;
use std::io;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{
    AsyncBufReadExt as _, AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _,
};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::Instant;

use crate::enclave_stream::EnclaveConnector;
use crate::peer_splice;

/// The longest delay a command may set: longer is a cut.
const MAX_DELAY: Duration = Duration::from_secs(60);
/// Bytes read at once from one side of a spliced connection.
const CHUNK: usize = 16 * 1024;
/// Chunks held (delayed) per direction before the reader waits: bounds a slow link's memory.
const HELD_CHUNKS: usize = 256;
/// The longest command line read from the control socket.
const MAX_COMMAND: u64 = 256;

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

/// Splices every connection `listener` accepts into `enclave` through `gate` until the task is
/// dropped (`peer_splice::run` with the link's faults).
pub(crate) async fn run_link(listener: TcpListener, enclave: EnclaveConnector, gate: Gate) {
    let permits = Arc::new(Semaphore::new(peer_splice::MAX_PEER_CONNECTIONS));
    loop {
        let Some((tcp, from, permit)) = peer_splice::accept(&listener, &permits).await else {
            continue;
        };
        let opened = gate.now();
        if opened.cut {
            tracing::debug!(link = %gate.link, %from, "replica peers: link cut; connection refused");
            continue;
        }
        let enclave = enclave.clone();
        let gate = gate.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let splice = async {
                let Some(inner) = peer_splice::connect_enclave(&enclave).await else {
                    return;
                };
                let (tcp_read, tcp_write) = tcp.into_split();
                let (inner_read, inner_write) = tokio::io::split(inner);
                let result = tokio::try_join!(
                    delayed_copy(tcp_read, inner_write, gate.clone()),
                    delayed_copy(inner_read, tcp_write, gate.clone()),
                );
                if let Err(e) = result {
                    tracing::debug!(error = %e, %from, "replica peers: connection ended");
                }
            };
            tokio::select! {
                () = splice => {}
                () = gate.clone().severed(opened) => {
                    tracing::debug!(link = %gate.link, %from, "replica peers: link cut or reset; connection closed");
                }
            }
        });
    }
}

/// Copies `from` to `to`, each chunk held for the link's delay at the time it was read, in
/// order; shuts `to` down at `from`'s end.
async fn delayed_copy(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    gate: Gate,
) -> io::Result<()> {
    let (held, mut due) = mpsc::channel::<(Instant, Vec<u8>)>(HELD_CHUNKS);
    let read = async move {
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = from.read(&mut buf).await?;
            if n == 0 {
                return Ok::<_, io::Error>(());
            }
            let at = Instant::now() + gate.now().delay;
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

    const LINK: Link = Link { from: 0, to: 1 };

    /// A gated link 0->1 into a Unix "enclave": (its TCP address, the enclave side).
    async fn gated_link(tag: &str, faults: &LinkFaults) -> (std::net::SocketAddr, UnixListener) {
        let path = test_dir(tag).join("peer.sock");
        let enclave_side = UnixListener::bind(&path).unwrap();
        let listener = peer_splice::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(run_link(
            listener,
            EnclaveConnector::Unix(path),
            faults.gate(LINK).unwrap(),
        ));
        (addr, enclave_side)
    }

    /// A connection through the link, spliced: (client end, enclave end).
    async fn open(
        addr: std::net::SocketAddr,
        enclave_side: &UnixListener,
    ) -> (tokio::net::TcpStream, tokio::net::UnixStream) {
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        client.write_all(b"x").await.unwrap();
        let (mut inner, _) = enclave_side.accept().await.unwrap();
        let mut byte = [0u8; 1];
        inner.read_exact(&mut byte).await.unwrap();
        (client, inner)
    }

    async fn closed(stream: &mut (impl AsyncRead + Unpin)) -> bool {
        let mut buf = [0u8; 16];
        matches!(
            tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await,
            Ok(Ok(0) | Err(_))
        )
    }

    /// A cut closes the open connection and refuses new ones; a heal lets them through again.
    #[tokio::test]
    async fn a_cut_link_closes_and_refuses_until_healed() {
        let faults = LinkFaults::new(2);
        let (addr, enclave_side) = gated_link("cut", &faults).await;
        let (mut client, mut inner) = open(addr, &enclave_side).await;

        faults.apply("cut 0 1".parse().unwrap()).unwrap();
        assert!(closed(&mut client).await, "the client's end is closed");
        assert!(closed(&mut inner).await, "the enclave's end is closed");
        let mut refused = tokio::net::TcpStream::connect(addr).await.unwrap();
        assert!(closed(&mut refused).await, "a new connection is refused");
        let accepted =
            tokio::time::timeout(Duration::from_millis(200), enclave_side.accept()).await;
        assert!(accepted.is_err(), "nothing reached the enclave");

        faults.apply("heal 0 1".parse().unwrap()).unwrap();
        let (mut client, mut inner) = open(addr, &enclave_side).await;
        inner.write_all(b"back").await.unwrap();
        let mut back = [0u8; 4];
        client.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"back");
    }

    /// A delayed link holds each chunk, both ways, and delivers in order.
    #[tokio::test]
    async fn a_delayed_link_delivers_in_order_after_the_delay() {
        let faults = LinkFaults::new(2);
        let (addr, enclave_side) = gated_link("delay", &faults).await;
        let (mut client, mut inner) = open(addr, &enclave_side).await;
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
        let (addr, enclave_side) = gated_link("reset", &faults).await;
        let (mut client, _inner) = open(addr, &enclave_side).await;
        faults.apply("reset 0 1".parse().unwrap()).unwrap();
        assert!(closed(&mut client).await);
        let (mut client, mut inner) = open(addr, &enclave_side).await;
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
