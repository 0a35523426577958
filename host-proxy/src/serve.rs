//! The listener: accepts TCP, completes a TLS 1.3 handshake under a deadline, then splices the
//! decrypted bytes into one fresh enclave stream per connection, after the connection preamble
//! naming the verified client certificate, if any (or answers with the fallback when the
//! enclave is unreachable). In passthrough mode (enclave TLS) it holds no key and splices the
//! client's TCP bytes untouched; an unreachable enclave then closes the connection, since no
//! answer (not even `/readyz`) can be given without the enclave's key. Bounded by connection
//! slots (a total, a per-source limit, eviction for new sources: `slots`), a handshake deadline,
//! a deadline for the first request bytes (no enclave stream is opened before they arrive) and
//! an idle timeout; never looks at or logs the bytes it carries.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use crate::enclave_stream::EnclaveConnector;
use crate::fallback;
use crate::slots::{Slot, Slots, Stage, Traffic};

/// Copy buffer per direction; large enough for a LIST page chunk, small enough for 4096 conns.
const SPLICE_BUF: usize = 16 * 1024;
/// Bytes a client socket may hold that the client's window has not yet let out. Without it the
/// kernel grows the send buffer to megabytes for a client that stopped reading (a watch that
/// never reads), and moving those megabytes is what 3,000 such clients cost; data in flight
/// is not limited, so a LIST over a long path keeps its throughput.
const NOTSENT_LOWAT: u32 = 128 * 1024;

/// How the listener behaves; every limit has a CLI flag.
#[derive(Clone, Debug)]
pub(crate) struct ServeOptions {
    /// Where to open the per-connection enclave stream.
    pub(crate) enclave: EnclaveConnector,
    /// Connections beyond this are closed as soon as they are accepted, unless a source
    /// holding more connections gives one up (see `slots`).
    pub(crate) max_connections: usize,
    /// Connections one source address may hold.
    pub(crate) max_connections_per_source: usize,
    /// Deadline for the TLS handshake (closes slowloris clients).
    pub(crate) handshake_timeout: Duration,
    /// Deadline for the first request bytes once the connection is up (after the handshake; in
    /// passthrough mode from the accept).
    pub(crate) first_request_timeout: Duration,
    /// A connection with no byte in either direction for this long is closed.
    pub(crate) idle_timeout: Duration,
    /// Deadline for opening the enclave stream before the fallback answers.
    pub(crate) enclave_connect_timeout: Duration,
    /// After shutdown starts, open connections get this long to finish.
    pub(crate) shutdown_grace: Duration,
}

/// Binds the TCP listener; the error is the one-line message the operator sees.
///
/// The accept queue is as long as the kernel allows (`net.core.somaxconn`), as Go's listeners
/// (kube-apiserver's) make it: with tokio's fixed 1,024, a flood of connects from one source
/// filled the queue faster than the slots could refuse them, and other sources' SYNs were
/// dropped and retried a second later.
pub(crate) async fn bind(addr: SocketAddr, who: &str) -> Result<TcpListener, String> {
    let listen = || -> io::Result<TcpListener> {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        socket.listen(accept_backlog())
    };
    listen().map_err(|err| {
        let reason = if err.kind() == io::ErrorKind::AddrInUse {
            format!("address already in use (is another {who} running?)")
        } else {
            err.to_string()
        };
        format!("error: cannot listen on {addr}: {reason}")
    })
}

/// Completes at `deadline`; never without one.
async fn sleep_until_some(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// `net.core.somaxconn` (the kernel caps any backlog there), 4,096 when it can't be read.
fn accept_backlog() -> u32 {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(4096)
}

/// Completes when SIGTERM or Ctrl-C arrives.
pub(crate) async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let term = async {
        match signal(SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot watch SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = term => tracing::info!("SIGTERM received"),
        () = interrupt => tracing::info!("interrupt received"),
    }
}

/// Logs at most once per `every`, counting the events it swallowed in between.
struct RateLimit {
    every: Duration,
    last: Option<Instant>,
    count: u64,
}

impl RateLimit {
    const fn new(every: Duration) -> Self {
        RateLimit {
            every,
            last: None,
            count: 0,
        }
    }

    /// Records one event; returns how many events to report if a log line is due now.
    fn hit(&mut self) -> Option<u64> {
        self.count = self.count.saturating_add(1);
        let now = Instant::now();
        let due = self
            .last
            .is_none_or(|last| now.saturating_duration_since(last) >= self.every);
        if !due {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.count))
    }
}

/// State shared by all connection tasks.
struct Shared {
    /// `None`: passthrough (the enclave terminates TLS).
    acceptor: Option<TlsAcceptor>,
    options: ServeOptions,
    active: AtomicUsize,
    unreachable: Mutex<RateLimit>,
}

/// Serves until `shutdown` completes, then drains open connections for the grace period.
/// `tls`: the proxy terminates TLS with it; `None`: passthrough, bytes go to the enclave as they
/// came.
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Option<Arc<ServerConfig>>,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) {
    match listener.local_addr() {
        Ok(addr) => tracing::info!(
            %addr,
            enclave = %options.enclave,
            tls = if tls.is_some() { "proxy" } else { "passthrough (enclave TLS)" },
            "listening"
        ),
        Err(err) => tracing::warn!(error = %err, "listening on an unknown address"),
    }
    let max = options.max_connections;
    let per_source = options.max_connections_per_source;
    let grace = options.shutdown_grace;
    let shared = Arc::new(Shared {
        acceptor: tls.map(TlsAcceptor::from),
        options,
        active: AtomicUsize::new(0),
        unreachable: Mutex::new(RateLimit::new(Duration::from_secs(10))),
    });
    let slots = Slots::new(max, per_source);
    let mut tasks = JoinSet::new();
    let mut penalty = crate::penalty::PenaltyBox::new(crate::penalty::capacity());
    let mut over_limit = RateLimit::new(Duration::from_secs(10));
    let mut accept_errors = RateLimit::new(Duration::from_secs(10));
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            () = sleep_until_some(penalty.next_release()) => {
                penalty.release_due(tokio::time::Instant::now());
            }
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let slot = match slots.admit(peer.ip()) {
                        Ok(slot) => slot,
                        Err(refusal) => {
                            // Held, not closed: a flood reconnects once per hold, not at once.
                            if let Ok(tcp) = tcp.into_std() {
                                penalty.hold(tokio::time::Instant::now(), tcp);
                            }
                            crate::metrics::connection_refused(refusal.as_str());
                            if let Some(closed) = over_limit.hit() {
                                tracing::warn!(max_connections = max, max_connections_per_source = per_source, closed, held = penalty.len(), source = %peer.ip(), reason = refusal.as_str(), "connection limit reached; holding new connections unread, then closing them");
                            }
                            continue;
                        }
                    };
                    let shared = Arc::clone(&shared);
                    tasks.spawn(connection(shared, tcp, peer, slot));
                }
                Err(err) => {
                    // EMFILE and friends: pause so the loop does not spin.
                    if let Some(count) = accept_errors.hit() {
                        tracing::warn!(error = %err, count, "accept failed");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    drop(listener);
    tracing::info!(
        open = tasks.len(),
        grace_secs = grace.as_secs(),
        "shutting down: no longer accepting"
    );
    let drained = tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} })
        .await
        .is_ok();
    if !drained {
        tracing::warn!(
            open = tasks.len(),
            "grace period over; closing remaining connections"
        );
        tasks.shutdown().await;
    }
    tracing::info!("stopped");
}

/// Completes once no byte moved for `limit`.
async fn idle(traffic: &Traffic, limit: Duration) {
    loop {
        let deadline = traffic.last_activity() + limit;
        if Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep_until(deadline).await;
    }
}

#[derive(Copy, Clone, Debug)]
enum Side {
    Client,
    Enclave,
}

/// Counts bytes read from the wrapped stream; writes pass through.
struct Metered<S> {
    inner: S,
    traffic: Arc<Traffic>,
    side: Side,
}

impl<S: AsyncRead + Unpin> AsyncRead for Metered<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        let read = buf.filled().len().saturating_sub(before);
        if read > 0 {
            self.traffic.record(matches!(self.side, Side::Client), read);
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Metered<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Counts the connection as active and logs its close (also when the task is aborted).
struct ConnectionLog<'a> {
    shared: &'a Shared,
    peer: SocketAddr,
    traffic: &'a Traffic,
    outcome: &'static str,
}

impl Drop for ConnectionLog<'_> {
    fn drop(&mut self) {
        let active = self
            .shared
            .active
            .fetch_sub(1, Ordering::AcqRel)
            .saturating_sub(1);
        tracing::debug!(
            peer = %self.peer,
            outcome = self.outcome,
            client_bytes = self.traffic.from_client.load(Ordering::Relaxed),
            enclave_bytes = self.traffic.from_enclave.load(Ordering::Relaxed),
            active,
            "connection closed"
        );
    }
}

/// Serves one accepted connection in its slot until it ends or the slot table evicts it.
async fn connection(shared: Arc<Shared>, tcp: TcpStream, peer: SocketAddr, slot: Slot) {
    let state = Arc::clone(&slot.state);
    tokio::select! {
        () = serve_client(&shared, tcp, peer, &state) => {}
        () = state.evicted() => {
            tracing::debug!(%peer, "connection evicted to make room for another source");
        }
    }
    drop(slot);
}

/// Reads the client's first bytes without consuming them, under the first-request deadline (or
/// the idle timeout, if shorter); the outcome to log when none came.
async fn first_bytes<S: AsyncRead + Unpin>(
    client: &mut BufReader<S>,
    options: &ServeOptions,
) -> Result<(), &'static str> {
    use tokio::io::AsyncBufReadExt as _;
    let (deadline, late) = if options.idle_timeout < options.first_request_timeout {
        (options.idle_timeout, "idle timeout")
    } else {
        (options.first_request_timeout, "no request in time")
    };
    match tokio::time::timeout(deadline, client.fill_buf()).await {
        Ok(Ok([])) => Err("closed before a request"),
        Ok(Ok(_)) => Ok(()),
        Ok(Err(err)) if client_went_away(&err) => Err("closed before a request"),
        Ok(Err(_)) => Err("client error before a request"),
        Err(_) => Err(late),
    }
}

async fn serve_client(
    shared: &Shared,
    tcp: TcpStream,
    peer: SocketAddr,
    state: &crate::slots::SlotState,
) {
    let _open = crate::metrics::connection_opened();
    let active = shared
        .active
        .fetch_add(1, Ordering::AcqRel)
        .saturating_add(1);
    let traffic = Arc::clone(&state.traffic);
    let mut log = ConnectionLog {
        shared,
        peer,
        traffic: &traffic,
        outcome: "aborted",
    };
    tracing::debug!(%peer, active, "connection accepted");
    tune_socket(&tcp);
    let options = &shared.options;

    let Some(acceptor) = &shared.acceptor else {
        log.outcome = passthrough(shared, tcp, &traffic, state).await;
        return;
    };
    let tls = match tokio::time::timeout(options.handshake_timeout, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(err)) => {
            crate::metrics::handshake(false);
            tracing::info!(%peer, error = %err, "TLS handshake failed");
            log.outcome = "handshake failed";
            return;
        }
        Err(_) => {
            crate::metrics::handshake(false);
            tracing::info!(%peer, "TLS handshake timed out");
            log.outcome = "handshake timeout";
            return;
        }
    };
    crate::metrics::handshake(true);
    state.enter(Stage::AwaitingRequest);
    // rustls verified any certificate the client showed against --client-ca.
    let identity = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(|leaf| crate::tls_reload::client_identity(leaf));
    let mut client = BufReader::with_capacity(
        FIRST_READ,
        Metered {
            inner: tls,
            traffic: Arc::clone(&traffic),
            side: Side::Client,
        },
    );
    // No enclave stream for a connection that sends nothing.
    if let Err(outcome) = first_bytes(&mut client, options).await {
        log.outcome = outcome;
        return;
    }
    state.enter(Stage::Spliced);

    let enclave = match tokio::time::timeout(
        options.enclave_connect_timeout,
        options.enclave.connect(),
    )
    .await
    {
        Ok(Ok(stream)) => {
            crate::metrics::enclave_connected();
            stream
        }
        Ok(Err(err)) => {
            warn_unreachable(shared, &err.to_string());
            fallback::serve(client, options.idle_timeout).await;
            log.outcome = "fallback";
            return;
        }
        Err(_) => {
            warn_unreachable(shared, "connect timed out");
            fallback::serve(client, options.idle_timeout).await;
            log.outcome = "fallback";
            return;
        }
    };
    let mut enclave = enclave;
    let preamble = crate::enclave_stream::preamble(identity.as_ref());
    if let Err(err) = enclave.write_all(&preamble).await {
        tracing::debug!(error = %err, "cannot write the preamble to the enclave");
        log.outcome = "enclave error";
        return;
    }
    let enclave = Metered {
        inner: enclave,
        traffic: Arc::clone(&traffic),
        side: Side::Enclave,
    };
    log.outcome = splice(client, enclave, &traffic, options.idle_timeout).await;
    crate::metrics::connection_ended(log.outcome);
}

/// Bytes read ahead to see a connection's first request before opening its enclave stream.
const FIRST_READ: usize = 2048;

/// Passthrough: the client's TCP bytes go to the enclave untouched and back, once its first
/// bytes (the TLS ClientHello) arrived in time. With the enclave unreachable the connection is
/// closed at once: the proxy has no key to answer with.
async fn passthrough(
    shared: &Shared,
    tcp: TcpStream,
    traffic: &Arc<Traffic>,
    state: &crate::slots::SlotState,
) -> &'static str {
    let options = &shared.options;
    let mut client = BufReader::with_capacity(
        FIRST_READ,
        Metered {
            inner: tcp,
            traffic: Arc::clone(traffic),
            side: Side::Client,
        },
    );
    if let Err(outcome) = first_bytes(&mut client, options).await {
        return outcome;
    }
    state.enter(Stage::Spliced);
    let enclave = match tokio::time::timeout(
        options.enclave_connect_timeout,
        options.enclave.connect(),
    )
    .await
    {
        Ok(Ok(stream)) => stream,
        Ok(Err(err)) => {
            warn_unreachable(shared, &err.to_string());
            return "enclave unreachable; closed";
        }
        Err(_) => {
            warn_unreachable(shared, "connect timed out");
            return "enclave unreachable; closed";
        }
    };
    let enclave = Metered {
        inner: enclave,
        traffic: Arc::clone(traffic),
        side: Side::Enclave,
    };
    splice(client, enclave, traffic, options.idle_timeout).await
}

fn warn_unreachable(shared: &Shared, reason: &str) {
    crate::metrics::enclave_connect_error();
    let due = match shared.unreachable.lock() {
        Ok(mut limit) => limit.hit(),
        Err(poisoned) => poisoned.into_inner().hit(),
    };
    if let Some(count) = due {
        if shared.acceptor.is_some() {
            tracing::warn!(enclave = %shared.options.enclave, reason, count, "enclave unreachable; answering with the fallback");
        } else {
            tracing::warn!(enclave = %shared.options.enclave, reason, count, "enclave unreachable; closing connections (passthrough: no key to answer with)");
        }
    }
}

/// Keepalive finds peers that vanished without a FIN; nodelay keeps watch events prompt.
fn tune_socket(tcp: &TcpStream) {
    if let Err(err) = tcp.set_nodelay(true) {
        tracing::debug!(error = %err, "set_nodelay failed");
    }
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(60))
        .with_interval(Duration::from_secs(15));
    let socket = socket2::SockRef::from(tcp);
    if let Err(err) = socket.set_tcp_keepalive(&keepalive) {
        tracing::debug!(error = %err, "set_tcp_keepalive failed");
    }
    if let Err(err) = socket.set_tcp_notsent_lowat(NOTSENT_LOWAT) {
        tracing::debug!(error = %err, "set_tcp_notsent_lowat failed");
    }
}

/// How ordinary clients end a connection: closing TCP without a TLS close_notify (Go's and
/// Python's clients do), or resetting it. Not a client error.
fn client_went_away(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
    )
}

/// Copies both ways. The client may half-close (its EOF is passed on as a write shutdown and
/// the enclave's answer still flows back); the connection ends when the enclave side ends, when
/// either side fails, or when nothing moves for `idle_timeout`.
async fn splice<C, E>(
    client: C,
    enclave: E,
    traffic: &Traffic,
    idle_timeout: Duration,
) -> &'static str
where
    C: AsyncRead + AsyncWrite + Unpin,
    E: AsyncRead + AsyncWrite + Unpin,
{
    let (client_read, mut client_write) = tokio::io::split(client);
    let (enclave_read, mut enclave_write) = tokio::io::split(enclave);
    let upstream = async {
        let mut reader = BufReader::with_capacity(SPLICE_BUF, client_read);
        let copied = tokio::io::copy_buf(&mut reader, &mut enclave_write).await;
        let shut = enclave_write.shutdown().await;
        copied.and(shut)
    };
    let downstream = async {
        let mut reader = BufReader::with_capacity(SPLICE_BUF, enclave_read);
        let copied = tokio::io::copy_buf(&mut reader, &mut client_write).await;
        let shut = client_write.shutdown().await;
        copied.and(shut)
    };
    tokio::pin!(upstream, downstream);
    let idle = idle(traffic, idle_timeout);
    tokio::pin!(idle);
    let mut client_done = false;
    loop {
        tokio::select! {
            result = &mut upstream, if !client_done => match result {
                Ok(_) => client_done = true,
                Err(err) if client_went_away(&err) => return "closed",
                Err(_) => return "client error",
            },
            result = &mut downstream => {
                return match result {
                    Ok(_) => "closed",
                    Err(_) => "enclave error",
                };
            }
            () = &mut idle => return "idle timeout",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client that stops reading can make the kernel hold at most this much unsent for it.
    #[tokio::test]
    async fn client_sockets_bound_their_unsent_bytes() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _client = TcpStream::connect(addr).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let before = socket2::SockRef::from(&server).tcp_notsent_lowat().unwrap();
        tune_socket(&server);
        let after = socket2::SockRef::from(&server).tcp_notsent_lowat().unwrap();
        assert_ne!(
            before, NOTSENT_LOWAT,
            "the kernel default already bounds it"
        );
        assert_eq!(after, NOTSENT_LOWAT);
        assert!(server.nodelay().unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limit_reports_swallowed_events() {
        let mut limit = RateLimit::new(Duration::from_secs(10));
        assert_eq!(limit.hit(), Some(1));
        assert_eq!(limit.hit(), None);
        assert_eq!(limit.hit(), None);
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(limit.hit(), Some(3));
    }

    #[tokio::test(start_paused = true)]
    async fn idle_waits_for_quiet_period() {
        let traffic = Traffic::new();
        let started = Instant::now();
        tokio::time::advance(Duration::from_secs(5)).await;
        traffic.record(true, 1);
        idle(&traffic, Duration::from_secs(10)).await;
        // Activity at t=5 s pushes the deadline to t=15 s.
        assert_eq!(started.elapsed(), Duration::from_secs(15));
    }

    #[tokio::test]
    async fn splice_passes_half_close_and_answer() {
        let (client, mut client_peer) = tokio::io::duplex(64);
        let (enclave, mut enclave_peer) = tokio::io::duplex(64);
        let traffic = Arc::new(Traffic::new());
        let client = Metered {
            inner: client,
            traffic: Arc::clone(&traffic),
            side: Side::Client,
        };
        let enclave = Metered {
            inner: enclave,
            traffic: Arc::clone(&traffic),
            side: Side::Enclave,
        };
        let enclave_side = async {
            let mut request = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut enclave_peer, &mut request)
                .await
                .unwrap();
            enclave_peer.write_all(b"answer").await.unwrap();
            enclave_peer.shutdown().await.unwrap();
            request
        };
        let client_side = async {
            client_peer.write_all(b"request").await.unwrap();
            client_peer.shutdown().await.unwrap();
            let mut answer = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut client_peer, &mut answer)
                .await
                .unwrap();
            answer
        };
        let (outcome, request, answer) = tokio::join!(
            splice(client, enclave, &traffic, Duration::from_secs(5)),
            enclave_side,
            client_side
        );
        assert_eq!(outcome, "closed");
        assert_eq!(request, b"request");
        assert_eq!(answer, b"answer");
        assert_eq!(traffic.from_client.load(Ordering::Relaxed), 7);
        assert_eq!(traffic.from_enclave.load(Ordering::Relaxed), 6);
    }

    /// A client that reads as a TLS stream does when its peer closes TCP without close_notify.
    struct EndsWithoutCloseNotify;

    impl AsyncRead for EndsWithoutCloseNotify {
        fn poll_read(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            _buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Poll::Ready(Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "peer closed connection without sending TLS close_notify",
            )))
        }
    }

    impl AsyncWrite for EndsWithoutCloseNotify {
        fn poll_write(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn a_client_closing_without_close_notify_is_a_normal_close() {
        let (enclave, _enclave_peer) = tokio::io::duplex(64);
        let traffic = Traffic::new();
        let outcome = splice(
            EndsWithoutCloseNotify,
            enclave,
            &traffic,
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(outcome, "closed");
    }

    #[tokio::test(start_paused = true)]
    async fn splice_closes_idle_connection() {
        let (client, _client_peer) = tokio::io::duplex(64);
        let (enclave, _enclave_peer) = tokio::io::duplex(64);
        let traffic = Traffic::new();
        let outcome = splice(client, enclave, &traffic, Duration::from_secs(900)).await;
        assert_eq!(outcome, "idle timeout");
    }
}
