//! Routes client streams across `dev`'s enclave replicas: to the leader when known (a follower
//! would forward a write to it, one hop more), else to the first replica that accepts, in slot
//! order. The leader is learned by polling each replica's `/readyz?verbose`; a stale hint only
//! costs a refused connect, never a failed client connection while another replica is up.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::UnixStream;

/// How often the poller asks every replica for its role.
const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// How long one `/readyz?verbose` exchange may take (connect, request, answer).
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// The most of a `/readyz?verbose` answer read; the replica line is near its top.
const PROBE_LIMIT: usize = 64 * 1024;
/// `LeaderHint`'s value when no leader is known.
const NO_LEADER: usize = usize::MAX;

/// The replicas' API sockets in slot order, and the slot of the leader when known. Clones share
/// the hint.
#[derive(Clone)]
pub(crate) struct ReplicaSet {
    sockets: Arc<[PathBuf]>,
    leader: Arc<AtomicUsize>,
    /// In enclave TLS mode, how the poller's probes speak TLS to the replicas (whose streams
    /// carry the clients' TLS, without a preamble); `None`: proxy TLS mode.
    probe_tls: Option<tokio_rustls::TlsConnector>,
}

impl ReplicaSet {
    /// The replicas listening on `sockets` (index = slot); no leader known yet.
    pub(crate) fn new(sockets: Vec<PathBuf>) -> Self {
        ReplicaSet {
            sockets: sockets.into(),
            leader: Arc::new(AtomicUsize::new(NO_LEADER)),
            probe_tls: None,
        }
    }

    /// The replicas of an enclave TLS cluster: the poller's probes handshake with `tls` (the
    /// answer is only a routing hint, as in proxy TLS mode).
    pub(crate) fn with_probe_tls(mut self, tls: Arc<rustls::ClientConfig>) -> Self {
        self.probe_tls = Some(tokio_rustls::TlsConnector::from(tls));
        self
    }

    /// The leader's slot, when the last poll found one.
    pub(crate) fn leader(&self) -> Option<usize> {
        let slot = self.leader.load(Ordering::Relaxed);
        (slot < self.sockets.len()).then_some(slot)
    }

    fn set_leader(&self, slot: Option<usize>) {
        let value = slot.filter(|s| *s < self.sockets.len());
        self.leader
            .store(value.unwrap_or(NO_LEADER), Ordering::Relaxed);
    }

    /// The slots in the order `connect` tries them: the hinted leader, then the others in slot
    /// order.
    fn order(&self) -> impl Iterator<Item = usize> + '_ {
        let leader = self.leader();
        leader
            .into_iter()
            .chain((0..self.sockets.len()).filter(move |slot| Some(*slot) != leader))
    }

    /// Opens a stream to the hinted leader, else to the first replica that accepts; an error
    /// only when none does (it names every attempt).
    pub(crate) async fn connect(&self) -> io::Result<UnixStream> {
        let mut failures = Vec::new();
        let mut kind = io::ErrorKind::NotFound;
        for slot in self.order() {
            let Some(socket) = self.sockets.get(slot) else {
                continue;
            };
            match UnixStream::connect(socket).await {
                Ok(stream) => return Ok(stream),
                Err(err) => {
                    kind = err.kind();
                    failures.push(format!("slot {slot} ({}): {err}", socket.display()));
                }
            }
        }
        Err(io::Error::new(
            kind,
            format!(
                "no enclave replica accepts connections: {}",
                failures.join("; ")
            ),
        ))
    }

    /// Every `POLL_INTERVAL`, asks each replica for its role and keeps the leader's slot as
    /// the hint (none when no replica says it leads); returns when `stop` completes.
    pub(crate) async fn track_leader(self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        let mut interval = tokio::time::interval(POLL_INTERVAL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                () = &mut stop => return,
            }
            let before = self.leader();
            let now = self.poll_once().await;
            self.set_leader(now);
            if now != before {
                match now {
                    Some(slot) => tracing::info!(slot, "enclave replica leader"),
                    None => tracing::info!("no enclave replica leader known"),
                }
            }
        }
    }

    /// Asks every replica at once; the leader with the highest term (a deposed leader that has
    /// not noticed yet reports an older one).
    async fn poll_once(&self) -> Option<usize> {
        let mut probes = tokio::task::JoinSet::new();
        for (slot, socket) in self.sockets.iter().enumerate() {
            let socket = socket.clone();
            let tls = self.probe_tls.clone();
            probes.spawn(async move { (slot, probe(&socket, tls.as_ref()).await) });
        }
        let mut best: Option<ReplicaStatus> = None;
        while let Some(joined) = probes.join_next().await {
            let Ok((slot, answer)) = joined else { continue };
            let status = match answer {
                Ok(answer) => parse_readyz(&answer),
                Err(err) => {
                    tracing::trace!(slot, error = %err, "replica readyz probe failed");
                    None
                }
            };
            let Some(status) = status else { continue };
            if status.slot != slot {
                tracing::debug!(
                    slot,
                    reported = status.slot,
                    "a replica reports another slot; ignored"
                );
                continue;
            }
            if status.role == Role::Leader && best.is_none_or(|b| status.term > b.term) {
                best = Some(status);
            }
        }
        best.map(|status| status.slot)
    }
}

impl fmt::Debug for ReplicaSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplicaSet")
            .field("sockets", &self.sockets)
            .field("leader", &self.leader())
            .finish()
    }
}

/// Two sets are the same when they route to the same sockets; the hint is a moment's view.
impl PartialEq for ReplicaSet {
    fn eq(&self, other: &Self) -> bool {
        self.sockets == other.sockets
    }
}

impl Eq for ReplicaSet {}

impl fmt::Display for ReplicaSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "replicas:")?;
        for (slot, socket) in self.sockets.iter().enumerate() {
            let sep = if slot == 0 { "" } else { "," };
            write!(f, "{sep}unix:{}", socket.display())?;
        }
        Ok(())
    }
}

/// The probe's request.
const PROBE_REQUEST: &[u8] =
    b"GET /readyz?verbose HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";

/// One `GET /readyz?verbose` over `socket`, as a client stream carries it: in proxy TLS mode
/// the preamble first (no client identity), in enclave TLS mode (`tls`) inside a TLS session
/// with the replica. The answer up to `PROBE_LIMIT` bytes, cut after its last complete line
/// unless the replica closed the stream.
async fn probe(socket: &Path, tls: Option<&tokio_rustls::TlsConnector>) -> io::Result<Vec<u8>> {
    let mut answer = Vec::new();
    let exchange = async {
        let stream = UnixStream::connect(socket).await?;
        match tls {
            None => {
                let mut request = crate::enclave_stream::preamble(None);
                request.extend_from_slice(PROBE_REQUEST);
                ask(stream, &request, &mut answer).await
            }
            Some(tls) => {
                let name = rustls::pki_types::ServerName::try_from("localhost")
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                let stream = tls.connect(name, stream).await?;
                ask(stream, PROBE_REQUEST, &mut answer).await
            }
        }
    };
    let closed = match tokio::time::timeout(PROBE_TIMEOUT, exchange).await {
        Ok(Ok(_)) => answer.len() < PROBE_LIMIT,
        Ok(Err(err)) if answer.is_empty() => return Err(err),
        Ok(Err(_)) | Err(_) => false,
    };
    if !closed {
        let complete = answer
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1);
        answer.truncate(complete);
    }
    Ok(answer)
}

/// Writes `request` on `stream` and reads the answer into `answer`, up to `PROBE_LIMIT` bytes.
async fn ask(
    mut stream: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    request: &[u8],
    answer: &mut Vec<u8>,
) -> io::Result<usize> {
    stream.write_all(request).await?;
    stream.take(PROBE_LIMIT as u64).read_to_end(answer).await
}

/// A replica's role as its `/readyz?verbose` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Leader,
    Follower,
    Learner,
    Candidate,
}

/// What a replica's `[+]replica ok: slot=<i> role=<role> term=<t> ...` line says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ReplicaStatus {
    pub(crate) slot: usize,
    pub(crate) role: Role,
    /// Absent when the line does not carry it.
    pub(crate) term: Option<u64>,
}

/// The first well-formed `[+]replica ok:` line of a `/readyz?verbose` answer (headers and
/// other checks ignored); none for a failed check (`[-]replica failed: ...`), an unknown role,
/// or anything unreadable.
pub(crate) fn parse_readyz(answer: &[u8]) -> Option<ReplicaStatus> {
    let text = String::from_utf8_lossy(answer);
    text.lines().find_map(parse_replica_line)
}

fn parse_replica_line(line: &str) -> Option<ReplicaStatus> {
    let rest = line.trim().strip_prefix("[+]replica ok")?;
    let rest = rest.strip_prefix(':').unwrap_or(rest);
    if !rest.is_empty() && !rest.starts_with(char::is_whitespace) {
        return None;
    }
    let (mut slot, mut role, mut term) = (None, None, None);
    for field in rest.split_whitespace() {
        let Some((key, value)) = field.split_once('=') else {
            continue;
        };
        match key {
            "slot" => slot = Some(value.parse::<usize>().ok()?),
            "role" => {
                role = Some(match value {
                    "leader" => Role::Leader,
                    "follower" => Role::Follower,
                    "learner" => Role::Learner,
                    "candidate" => Role::Candidate,
                    _ => return None,
                });
            }
            "term" => term = value.parse::<u64>().ok(),
            _ => {}
        }
    }
    Some(ReplicaStatus {
        slot: slot?,
        role: role?,
        term,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_leader_line_and_its_slot() {
        let answer = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n\
            [+]ping ok\n\
            [+]etcd ok\n\
            [+]replica ok: slot=2 role=leader term=7 commit=40 applied=40 lag=0\n\
            readyz check passed\n";
        assert_eq!(
            parse_readyz(answer),
            Some(ReplicaStatus {
                slot: 2,
                role: Role::Leader,
                term: Some(7)
            })
        );
        let follower = b"[+]replica ok: slot=1 role=follower\n";
        assert_eq!(
            parse_readyz(follower),
            Some(ReplicaStatus {
                slot: 1,
                role: Role::Follower,
                term: None
            })
        );
        for (role, want) in [("learner", Role::Learner), ("candidate", Role::Candidate)] {
            let line = format!("[+]replica ok: slot=0 role={role} term=1\n");
            assert_eq!(parse_readyz(line.as_bytes()).map(|s| s.role), Some(want));
        }
    }

    #[test]
    fn failed_checks_garbage_and_truncation_give_no_status() {
        let cases: &[&[u8]] = &[
            b"",
            b"HTTP/1.1 500 Internal Server Error\r\n\r\n[-]replica failed: no leader\nreadyz check failed\n",
            b"[-]replica failed: slot=0 role=leader\n",
            b"[+]replica ok: slot=0 role=lea",
            b"[+]replica ok: slot=0 ro",
            b"[+]replica ok: slot=",
            b"[+]replica ok: slot=x role=leader\n",
            b"[+]replica ok: slot=-1 role=leader\n",
            b"[+]replica ok: slot=99999999999999999999999 role=leader\n",
            b"[+]replica ok: role=leader\n",
            b"[+]replica ok: slot=1\n",
            b"[+]replica ok: slot=1 role=king\n",
            b"[+]replicas ok: slot=1 role=leader\n",
            b"\xff\xfe[+]replica\x00 ok: slot=1 role=leader\n",
            b"[+]replica okslot=1 role=leader\n",
        ];
        for answer in cases {
            assert_eq!(
                parse_readyz(answer),
                None,
                "{:?}",
                String::from_utf8_lossy(answer)
            );
        }
        // Every prefix of a valid answer parses without panicking.
        let full = b"HTTP/1.1 200 OK\r\n\r\n[+]replica ok: slot=3 role=leader term=2\nok\n";
        for end in 0..=full.len() {
            let _ = parse_readyz(full.get(..end).unwrap());
        }
    }

    #[test]
    fn a_failed_line_does_not_hide_a_later_good_one() {
        let answer = b"[-]replica failed: catching up\n[+]replica ok: slot=1 role=leader\n";
        assert_eq!(
            parse_readyz(answer).map(|s| (s.slot, s.role)),
            Some((1, Role::Leader))
        );
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "nautilus-proxy-route-{tag}-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Slot 0 missing (no socket file), slot 1 refusing (a socket file nobody listens on),
    /// slot 2 live.
    fn missing_refusing_live(dir: &Path) -> (ReplicaSet, tokio::net::UnixListener) {
        let sockets: Vec<PathBuf> = (0..3).map(|i| dir.join(format!("r{i}.sock"))).collect();
        drop(std::os::unix::net::UnixListener::bind(&sockets[1]).unwrap());
        let live = tokio::net::UnixListener::bind(&sockets[2]).unwrap();
        (ReplicaSet::new(sockets), live)
    }

    fn peer(stream: &UnixStream) -> PathBuf {
        stream
            .peer_addr()
            .unwrap()
            .as_pathname()
            .unwrap()
            .to_path_buf()
    }

    #[tokio::test]
    async fn connect_skips_a_dead_hinted_leader() {
        let dir = temp_dir("hint");
        let (set, _live) = missing_refusing_live(&dir);
        for hint in [0, 1] {
            set.set_leader(Some(hint));
            let stream = set.connect().await.unwrap();
            assert_eq!(peer(&stream), dir.join("r2.sock"), "hint {hint}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn connect_prefers_the_hint_else_slot_order() {
        let dir = temp_dir("order");
        let sockets: Vec<PathBuf> = (0..3).map(|i| dir.join(format!("r{i}.sock"))).collect();
        let _listeners: Vec<_> = sockets
            .iter()
            .map(|s| tokio::net::UnixListener::bind(s).unwrap())
            .collect();
        let set = ReplicaSet::new(sockets.clone());
        assert_eq!(set.leader(), None);
        assert_eq!(peer(&set.connect().await.unwrap()), sockets[0]);
        set.set_leader(Some(2));
        assert_eq!(set.order().collect::<Vec<_>>(), [2, 0, 1]);
        assert_eq!(peer(&set.connect().await.unwrap()), sockets[2]);
        // A hint past the last slot is no hint.
        set.set_leader(Some(3));
        assert_eq!(set.leader(), None);
        assert_eq!(set.order().collect::<Vec<_>>(), [0, 1, 2]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn connect_without_a_hint_takes_the_first_live_replica() {
        let dir = temp_dir("nohint");
        let (set, _live) = missing_refusing_live(&dir);
        assert_eq!(peer(&set.connect().await.unwrap()), dir.join("r2.sock"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn connect_fails_only_when_no_replica_accepts() {
        let dir = temp_dir("none");
        let (set, live) = missing_refusing_live(&dir);
        drop(live);
        set.set_leader(Some(2));
        let err = set.connect().await.unwrap_err();
        let message = err.to_string();
        for slot in ["slot 0", "slot 1", "slot 2"] {
            assert!(message.contains(slot), "{message}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A fake replica answering one `/readyz?verbose` with `body`, checking the request.
    async fn fake_replica(listener: tokio::net::UnixListener, body: &'static str) {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        while !request.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            stream.read_exact(&mut byte).await.unwrap();
            request.push(byte[0]);
        }
        let mut want = crate::enclave_stream::preamble(None);
        want.extend_from_slice(
            b"GET /readyz?verbose HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(request, want);
        let answer = format!("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{body}");
        stream.write_all(answer.as_bytes()).await.unwrap();
    }

    #[tokio::test]
    async fn the_poll_finds_the_leader_by_its_readyz() {
        let dir = temp_dir("poll");
        let sockets: Vec<PathBuf> = (0..3).map(|i| dir.join(format!("r{i}.sock"))).collect();
        let bodies = [
            "[+]replica ok: slot=0 role=follower term=4\nreadyz check passed\n",
            "[+]replica ok: slot=1 role=leader term=4\nreadyz check passed\n",
        ];
        let mut fakes = Vec::new();
        for (socket, body) in sockets.iter().zip(bodies) {
            let listener = tokio::net::UnixListener::bind(socket).unwrap();
            fakes.push(tokio::spawn(fake_replica(listener, body)));
        }
        let set = ReplicaSet::new(sockets);
        assert_eq!(set.poll_once().await, Some(1));
        for fake in fakes {
            fake.await.unwrap();
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
