//! `--only hostile`: issue 13's four attacks against a fresh dev cluster each, while a legitimate
//! admin client GETs and creates: stalled anonymous 3 MiB bodies, non-reading watchers during a
//! storm of updates, a flood of silent connections from one source, and a worker flooding
//! Events. Memory is the enclave's RSS sampled every 50 ms (peak above the idle level measured
//! just before the attack); latencies are the legitimate client's.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nautilus_tests::DevCluster;
use nautilus_tests::client::{Connection, tcp_from, tls_config, tls_from};
use nautilus_tests::simulator::{DEFAULT_PACKAGE, SimConfig, Simulator, package_arg};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::load::{auth, quantile};
use super::{Report, Scale, Verdict, client_runtime, mb, ms, proc_status_kb, start_cluster};

/// Sizes of the hostile section.
pub(crate) struct Sizes {
    attack: Duration,
    stalled: usize,
    watchers: usize,
    configmaps: usize,
    silent: usize,
}

impl Sizes {
    pub(crate) fn of(scale: &Scale) -> Self {
        if scale.quick {
            Self {
                attack: Duration::from_secs(5),
                stalled: 60,
                watchers: 300,
                configmaps: 2_000,
                silent: 500,
            }
        } else {
            Self {
                attack: Duration::from_secs(30),
                stalled: 600,
                watchers: 3_000,
                configmaps: 20_000,
                silent: 5_000,
            }
        }
    }

    fn verdict(&self, scale: &Scale, ok: bool) -> Verdict {
        if scale.quick {
            Verdict::Scaled
        } else {
            Verdict::of(ok)
        }
    }
}

/// The enclave's RSS sampled every 50 ms until stopped: the peak in kB.
struct RssSampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RssSampler {
    fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(0));
        let thread = {
            let (stop, peak) = (stop.clone(), peak.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(kb) = proc_status_kb(pid, "VmRSS:") {
                        peak.fetch_max(kb, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
        };
        Self {
            stop,
            peak,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.peak.load(Ordering::Relaxed)
    }
}

/// What the legitimate admin client saw.
#[derive(Default)]
pub(crate) struct Legit {
    pub(crate) gets: Vec<Duration>,
    /// When each GET started, from the first one: where the slow ones fall in the attack.
    get_starts: Vec<Duration>,
    pub(crate) get_failures: usize,
    /// The latency of each successful create.
    pub(crate) creates: Vec<Duration>,
    creates_ok: usize,
    creates_failed: usize,
    first_create_failure: Option<String>,
}

/// The legitimate admin on its own thread and runtime, so that the attack's client tasks (in
/// the same bench process) do not delay it: what it measures is the server's answer.
pub(crate) struct LegitThread(std::thread::JoinHandle<Legit>);

pub(crate) fn spawn_legit(
    port: u16,
    tls: Arc<rustls::ClientConfig>,
    token: String,
    stop: Arc<AtomicBool>,
) -> LegitThread {
    LegitThread(std::thread::spawn(
        move || match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt.block_on(legit_client(port, tls, token, stop)),
            Err(_) => Legit::default(),
        },
    ))
}

impl LegitThread {
    /// Its figures once `stop` is set.
    pub(crate) async fn finish(self) -> Legit {
        tokio::task::spawn_blocking(move || self.0.join().unwrap_or_default())
            .await
            .unwrap_or_default()
    }
}

/// The legitimate admin: a GET of one ConfigMap every 10 ms and a ConfigMap create every 100 ms,
/// each on its own keep-alive connection (re-opened after an error), until `stop`.
async fn legit_client(
    port: u16,
    tls: Arc<rustls::ClientConfig>,
    token: String,
    stop: Arc<AtomicBool>,
) -> Legit {
    let headers = auth(&token);
    let getter = {
        let (tls, headers, stop) = (tls.clone(), headers.clone(), stop.clone());
        tokio::spawn(async move {
            let (mut gets, mut starts, mut failures) = (Vec::new(), Vec::new(), 0);
            let mut conn = None;
            let first = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                if conn.is_none() {
                    conn = Connection::open(port, tls.clone()).await.ok();
                }
                let ok = match conn.as_mut() {
                    Some(c) => c
                        .send(
                            "GET",
                            "/api/v1/namespaces/default/configmaps/legit-target",
                            None,
                            &headers,
                        )
                        .await
                        .is_ok_and(|r| r.status == 200),
                    None => false,
                };
                if ok {
                    gets.push(t.elapsed());
                    starts.push(t - first);
                } else {
                    failures += 1;
                    conn = None;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (gets, starts, failures)
        })
    };
    let creator = tokio::spawn(async move {
        let (mut ok, mut failed, mut first) = (0, 0, None);
        let mut latencies = Vec::new();
        let mut conn = None;
        let mut seq = 0u64;
        while !stop.load(Ordering::Relaxed) {
            seq += 1;
            let t = Instant::now();
            if conn.is_none() {
                conn = Connection::open(port, tls.clone()).await.ok();
            }
            let body = format!(
                r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"legit-{seq}-{}"}},"data":{{"k":"v"}}}}"#,
                std::process::id()
            );
            let reply = match conn.as_mut() {
                Some(c) => c
                    .send(
                        "POST",
                        "/api/v1/namespaces/default/configmaps",
                        Some(body.as_bytes()),
                        &headers,
                    )
                    .await
                    .map_err(|e| e.to_string()),
                None => Err("connect failed".into()),
            };
            match reply {
                Ok(r) if r.status == 201 => {
                    ok += 1;
                    latencies.push(t.elapsed());
                }
                Ok(r) => {
                    failed += 1;
                    first.get_or_insert_with(|| {
                        format!("{} {}", r.status, String::from_utf8_lossy(&r.body))
                    });
                }
                Err(e) => {
                    failed += 1;
                    conn = None;
                    first.get_or_insert(e);
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        (latencies, ok, failed, first)
    });
    let (gets, get_starts, get_failures) = getter.await.unwrap_or_default();
    let (creates, creates_ok, creates_failed, first_create_failure) =
        creator
            .await
            .unwrap_or((Vec::new(), 0, 0, Some("creator panicked".into())));
    Legit {
        gets,
        get_starts,
        get_failures,
        creates,
        creates_ok,
        creates_failed,
        first_create_failure,
    }
}

pub(crate) fn create_target(cluster: &DevCluster) -> Result<(), String> {
    let body = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"legit-target"},"data":{"k":"v"}}"#;
    let reply = cluster.request(
        "POST",
        "/api/v1/namespaces/default/configmaps",
        Some(body),
        &[],
    )?;
    match reply.status {
        201 | 409 => Ok(()),
        s => Err(format!("create legit-target: {s}")),
    }
}

fn legit_rows(report: &mut Report, sizes: &Sizes, scale: &Scale, legit: &Legit, goal_ms: u64) {
    let mut gets = legit.gets.clone();
    gets.sort_unstable();
    let p99 = quantile(&gets, 0.99);
    // Which seconds of the attack the slowest 1 % fell in: a burst at one moment (the watchers
    // filling up, say) reads differently from a steady tail.
    let mut slow: Vec<(u64, u32)> = Vec::new();
    for (latency, start) in legit.gets.iter().zip(&legit.get_starts) {
        if *latency >= p99 {
            let second = start.as_secs();
            match slow.iter_mut().find(|(s, _)| *s == second) {
                Some((_, n)) => *n += 1,
                None => slow.push((second, 1)),
            }
        }
    }
    slow.sort_unstable();
    report.row(
        "  legit GET p99",
        format!(
            "{} ({} GETs, {} failed)",
            ms(p99),
            gets.len(),
            legit.get_failures
        ),
        &format!("< {goal_ms} ms"),
        sizes.verdict(
            scale,
            p99 < Duration::from_millis(goal_ms) && legit.get_failures == 0,
        ),
    );
    report.info(
        "  seconds into the attack of the GETs at or above p99 (count)",
        slow.iter()
            .map(|(s, n)| format!("{s}s:{n}"))
            .collect::<Vec<_>>()
            .join(" "),
    );
    report.info(
        "  legit creates ok / failed",
        format!(
            "{} / {}{}",
            legit.creates_ok,
            legit.creates_failed,
            legit
                .first_create_failure
                .as_ref()
                .map_or(String::new(), |f| format!(" (first: {})", truncate(f)))
        ),
    );
}

fn truncate(text: &str) -> String {
    text.chars().take(120).collect()
}

/// Runs the four attacks.
/// One attack: its scale, its sizes, the report it adds rows to.
pub(crate) type Attack = fn(&Scale, &Sizes, &mut Report) -> Result<(), String>;

/// The attacks of `--only hostile`, each also selectable on its own by its name.
pub(crate) const ATTACKS: [(&str, Attack); 4] = [
    ("hostile-bodies", stalled_bodies),
    ("hostile-watchers", slow_watchers),
    ("hostile-connects", silent_connects),
    ("hostile-events", event_flood),
];

/// Attack 1: anonymous connections each declaring a 3 MiB body, sending what the server takes
/// and stalling; when the server closes one, it comes back a second later.
fn stalled_bodies(scale: &Scale, sizes: &Sizes, report: &mut Report) -> Result<(), String> {
    const BODY: usize = 3 << 20;
    let cluster = start_cluster(scale, &[]);
    create_target(&cluster)?;
    let pid = cluster.enclave_pid().ok_or("no enclave pid")?;
    let rt = client_runtime()?;
    let tls = tls_config(&cluster.ca_pem);
    let port = cluster.port;
    std::thread::sleep(Duration::from_secs(1));
    let idle = proc_status_kb(pid, "VmRSS:").unwrap_or(0);
    let sampler = RssSampler::start(pid);
    let stop = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicUsize::new(0));
    let pushed = Arc::new(AtomicU64::new(0));
    let legit = rt.block_on(async {
        let legit = spawn_legit(port, tls.clone(), cluster.token.clone(), stop.clone());
        let head = format!(
            "POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {BODY}\r\n\r\n"
        );
        let mut attackers = Vec::new();
        for _ in 0..sizes.stalled {
            let (tls, stop, refused, pushed, head) = (
                tls.clone(),
                stop.clone(),
                refused.clone(),
                pushed.clone(),
                head.clone(),
            );
            attackers.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let Ok(stream) = tls_from(None, port, tls.clone()).await else {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    };
                    let (mut reader, mut writer) = tokio::io::split(stream);
                    let push = async {
                        if writer.write_all(head.as_bytes()).await.is_err() {
                            return;
                        }
                        let chunk = vec![b' '; 64 << 10];
                        let mut sent = 0;
                        while sent + chunk.len() < BODY {
                            if writer.write_all(&chunk).await.is_err() {
                                return;
                            }
                            sent += chunk.len();
                            pushed.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                        }
                        // Stalled one chunk short of the declared length.
                        std::future::pending::<()>().await;
                    };
                    let closed = async {
                        let mut sink = [0u8; 4096];
                        while matches!(reader.read(&mut sink).await, Ok(n) if n > 0) {}
                    };
                    let ended = async {
                        while !stop.load(Ordering::Relaxed) {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    };
                    tokio::select! {
                        () = closed => { refused.fetch_add(1, Ordering::Relaxed); }
                        () = push => {}
                        () = ended => return,
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }));
        }
        tokio::time::sleep(sizes.attack).await;
        stop.store(true, Ordering::Relaxed);
        for a in attackers {
            let _ = a.await;
        }
        legit.finish().await
    });
    let peak = sampler.finish();
    report.header(&format!(
        "hostile 1: {} anonymous TLS connections, each POST with Content-Length 3 MiB and a body that never finishes, for {} s",
        sizes.stalled,
        sizes.attack.as_secs()
    ));
    report.info("  enclave RSS idle", mb(idle));
    let above = peak.saturating_sub(idle);
    report.row(
        "  enclave RSS peak above idle",
        mb(above),
        "< 64 MB",
        sizes.verdict(scale, above < 64_000),
    );
    report.info(
        "  attack connections refused and closed / body bytes pushed",
        format!(
            "{} / {}",
            refused.load(Ordering::Relaxed),
            mb(pushed.load(Ordering::Relaxed) / 1000)
        ),
    );
    legit_rows(report, sizes, scale, &legit, 50);
    Ok(())
}

/// Attack 2: non-reading watchers on ConfigMaps while every ConfigMap is patched once (the
/// issue's 20,000 updates), the patches spread over the attack.
/// Watchers come from four loopback addresses (one source may hold 1,024 proxy connections).
fn slow_watchers(scale: &Scale, sizes: &Sizes, report: &mut Report) -> Result<(), String> {
    let cluster = start_cluster(scale, &[]);
    create_target(&cluster)?;
    let pid = cluster.enclave_pid().ok_or("no enclave pid")?;
    let rt = client_runtime()?;
    let tls = tls_config(&cluster.ca_pem);
    let port = cluster.port;
    let token = cluster.token.clone();
    let configmaps = sizes.configmaps;
    // The ConfigMaps of 1 KB, over 8 connections.
    rt.block_on(async {
        let mut tasks = Vec::new();
        for c in 0..8 {
            let (tls, token) = (tls.clone(), token.clone());
            tasks.push(tokio::spawn(async move {
                let mut conn = Connection::open(port, tls).await?;
                let headers = auth(&token);
                let data = "x".repeat(1000);
                for i in (c..configmaps).step_by(8) {
                    let body = format!(
                        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"cm-{i:06}"}},"data":{{"k":"{data}"}}}}"#
                    );
                    let r = conn
                        .send(
                            "POST",
                            "/api/v1/namespaces/default/configmaps",
                            Some(body.as_bytes()),
                            &headers,
                        )
                        .await?;
                    if r.status != 201 {
                        return Err(format!("create cm-{i:06}: {}", r.status));
                    }
                }
                Ok::<(), String>(())
            }));
        }
        for t in tasks {
            t.await.map_err(|e| e.to_string())??;
        }
        Ok::<(), String>(())
    })?;
    // One patch of every ConfigMap before idle is read, so that the watch history (the ring
    // holds the last updates' superseded versions, which creates do not have) is as full at idle
    // as after the attack: the after-close figure then measures what the watchers left behind.
    let warmed = Arc::new(AtomicU64::new(0));
    rt.block_on(patch_configmaps(
        port,
        tls.clone(),
        token.clone(),
        configmaps,
        configmaps as u64,
        Duration::ZERO,
        Arc::new(AtomicBool::new(false)),
        warmed.clone(),
        "warm-up",
    ));
    if warmed.load(Ordering::Relaxed) < configmaps as u64 {
        return Err(format!(
            "warm-up patched {} of {configmaps} ConfigMaps",
            warmed.load(Ordering::Relaxed)
        ));
    }
    let listed = cluster.request(
        "GET",
        "/api/v1/namespaces/default/configmaps?limit=1",
        None,
        &[],
    )?;
    let revision = listed
        .json()
        .pointer("/metadata/resourceVersion")
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .ok_or("LIST has no resourceVersion")?;
    std::thread::sleep(Duration::from_secs(2));
    let idle = proc_status_kb(pid, "VmRSS:").unwrap_or(0);
    let sampler = RssSampler::start(pid);
    let stop = Arc::new(AtomicBool::new(false));
    let open = Arc::new(AtomicUsize::new(0));
    let updates = Arc::new(AtomicU64::new(0));
    let opening = Instant::now();
    // The watchers wait on this instead of polling `stop` (3,000 tasks waking every 100 ms
    // loaded the bench's own runtime).
    let (ended_tx, ended) = tokio::sync::watch::channel(false);
    let (legit, opened_in, watchers_gone) = rt.block_on(async {
        let gate = Arc::new(tokio::sync::Semaphore::new(64));
        let mut watchers = Vec::new();
        for w in 0..sizes.watchers {
            let source = Ipv4Addr::new(127, 0, 0, 10 + (w % 4) as u8);
            let (tls, token, mut ended, open, gate, revision) = (
                tls.clone(),
                token.clone(),
                ended.clone(),
                open.clone(),
                gate.clone(),
                revision.clone(),
            );
            watchers.push(tokio::spawn(async move {
                let permit = gate.acquire().await;
                let mut stream = tls_from(Some(source), port, tls.clone()).await.ok()?;
                let request = format!(
                    "GET /api/v1/namespaces/default/configmaps?watch=true&resourceVersion={revision} HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {token}\r\n\r\n"
                );
                stream.write_all(request.as_bytes()).await.ok()?;
                let mut head = [0u8; 256];
                let n = stream.read(&mut head).await.ok()?;
                drop(permit);
                if n == 0 {
                    return None;
                }
                open.fetch_add(1, Ordering::Relaxed);
                // Never read again, until the attack ends.
                let _ = ended.wait_for(|ended| *ended).await;
                Some(stream)
            }));
        }
        while open.load(Ordering::Relaxed) < sizes.watchers && opening.elapsed() < sizes.attack {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let opened_in = opening.elapsed();
        let legit = spawn_legit(port, tls.clone(), token.clone(), stop.clone());
        // The issue's 20,000 updates (one per ConfigMap), spread over the attack.
        let writers = tokio::spawn(patch_configmaps(
            port,
            tls.clone(),
            token.clone(),
            configmaps,
            configmaps as u64,
            sizes.attack,
            stop.clone(),
            updates.clone(),
            "attack",
        ));
        tokio::time::sleep(sizes.attack).await;
        stop.store(true, Ordering::Relaxed);
        let _ = ended_tx.send(true);
        let _ = writers.await;
        let legit = legit.finish().await;
        // Close every watcher at once and let the enclave settle.
        let mut streams = Vec::new();
        for w in watchers {
            if let Ok(Some(s)) = w.await {
                streams.push(s);
            }
        }
        drop(streams);
        let gone = Instant::now();
        (legit, opened_in, gone)
    });
    let peak = sampler.finish();
    std::thread::sleep(Duration::from_secs(10).saturating_sub(watchers_gone.elapsed()));
    let after = proc_status_kb(pid, "VmRSS:").unwrap_or(0);
    let metrics = cluster.request("GET", "/metrics", None, &[])?;
    let terminated: f64 = String::from_utf8_lossy(&metrics.body)
        .lines()
        .filter(|l| l.starts_with("apiserver_terminated_watchers_total"))
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
        .sum();
    report.header(&format!(
        "hostile 2: {} watchers on ConfigMaps that never read (4 source addresses), {} ConfigMaps of 1 KB updated once each over {} s",
        sizes.watchers,
        sizes.configmaps,
        sizes.attack.as_secs()
    ));
    report.info("  enclave RSS idle (with the ConfigMaps)", mb(idle));
    report.info(
        "  watchers opened / closed by the enclave as unresponsive",
        format!(
            "{} in {:.1} s / {terminated}",
            open.load(Ordering::Relaxed),
            opened_in.as_secs_f64(),
        ),
    );
    report.info(
        "  updates during the attack",
        updates.load(Ordering::Relaxed).to_string(),
    );
    report.row(
        "  enclave RSS peak",
        format!(
            "{} ({} above idle)",
            mb(peak),
            mb(peak.saturating_sub(idle))
        ),
        "< 256 MB",
        sizes.verdict(scale, peak < 256_000),
    );
    legit_rows(report, sizes, scale, &legit, 50);
    let settled = after.abs_diff(idle);
    report.row(
        "  enclave RSS 10 s after the watchers closed",
        format!("{} ({} from idle)", mb(after), mb(settled)),
        "within 20 MB of idle",
        sizes.verdict(scale, settled < 20_000),
    );
    Ok(())
}

/// Merge-patches ConfigMaps `cm-0`.. over 4 connections until `total` patches are done (or
/// `stop`), spread evenly over `spread` (at once when zero), counting successes in `done`;
/// `pass` makes every patch a change (a repeated value would be a no-op, with no new revision).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn patch_configmaps(
    port: u16,
    tls: Arc<rustls::ClientConfig>,
    token: String,
    configmaps: usize,
    total: u64,
    spread: Duration,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
    pass: &'static str,
) {
    const WRITERS: u64 = 4;
    let started = Instant::now();
    let mut writers = Vec::new();
    for c in 0..WRITERS {
        let (tls, token, stop, done) = (tls.clone(), token.clone(), stop.clone(), done.clone());
        writers.push(tokio::spawn(async move {
            let Ok(mut conn) = Connection::open(port, tls).await else {
                return;
            };
            let mut headers = auth(&token);
            headers.push(("content-type".into(), "application/merge-patch+json".into()));
            // This writer's share: patches c, c + 4, c + 8, ... of the whole sequence.
            let mut n = c;
            while n < total && !stop.load(Ordering::Relaxed) {
                let due = spread.mul_f64(n as f64 / total as f64);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    tokio::time::sleep(wait).await;
                }
                let i = n as usize % configmaps.max(1);
                let round = n / configmaps.max(1) as u64;
                let body = format!(r#"{{"data":{{"round":"{pass}-{round}"}}}}"#);
                let path = format!("/api/v1/namespaces/default/configmaps/cm-{i:06}");
                if conn
                    .send("PATCH", &path, Some(body.as_bytes()), &headers)
                    .await
                    .is_ok_and(|r| r.status == 200)
                {
                    done.fetch_add(1, Ordering::Relaxed);
                }
                n += WRITERS;
            }
        }));
    }
    for w in writers {
        let _ = w.await;
    }
}

/// Attack 3: silent TCP connects from 127.0.0.1 (never a ClientHello), each re-opened 100 ms
/// after the proxy closes it; 127.0.0.2 opens a fresh connection for every GET.
fn silent_connects(scale: &Scale, sizes: &Sizes, report: &mut Report) -> Result<(), String> {
    let cluster = start_cluster(scale, &[]);
    create_target(&cluster)?;
    let rt = client_runtime()?;
    let tls = tls_config(&cluster.ca_pem);
    let port = cluster.port;
    let token = cluster.token.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let connects = Arc::new(AtomicU64::new(0));
    let (gets, failures, first_failure) = rt.block_on(async {
        let mut flood = Vec::new();
        for _ in 0..sizes.silent {
            let (stop, connects) = (stop.clone(), connects.clone());
            flood.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let Ok(tcp) = tcp_from(Some(Ipv4Addr::LOCALHOST), port).await else {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    };
                    connects.fetch_add(1, Ordering::Relaxed);
                    let gone = async {
                        let mut probe = [0u8; 1];
                        let _ = tcp.peek(&mut probe).await;
                    };
                    let ended = async {
                        while !stop.load(Ordering::Relaxed) {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    };
                    tokio::select! {
                        () = gone => {}
                        () = ended => return,
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }));
        }
        // Let the flood fill what it can first.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let headers = auth(&token);
        let started = Instant::now();
        let (mut gets, mut failures, mut first_failure) = (Vec::new(), 0usize, None);
        while started.elapsed() < sizes.attack {
            let t = Instant::now();
            let result = tokio::time::timeout(Duration::from_secs(10), async {
                let mut conn =
                    Connection::open_from(Some(Ipv4Addr::new(127, 0, 0, 2)), port, tls.clone())
                        .await?;
                conn.send(
                    "GET",
                    "/api/v1/namespaces/default/configmaps/legit-target",
                    None,
                    &headers,
                )
                .await
            })
            .await
            .map_err(|_| "timed out after 10 s".to_string())
            .and_then(|r| r);
            match result {
                Ok(r) if r.status == 200 => gets.push(t.elapsed()),
                Ok(r) => {
                    failures += 1;
                    first_failure.get_or_insert(format!("status {}", r.status));
                }
                Err(e) => {
                    failures += 1;
                    first_failure.get_or_insert(e);
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stop.store(true, Ordering::Relaxed);
        for f in flood {
            let _ = f.await;
        }
        (gets, failures, first_failure)
    });
    let mut gets = gets;
    gets.sort_unstable();
    let p99 = quantile(&gets, 0.99);
    report.header(&format!(
        "hostile 3: {} silent TCP connects from 127.0.0.1 (re-opened when closed) for {} s; 127.0.0.2 opens a connection per GET",
        sizes.silent,
        sizes.attack.as_secs()
    ));
    report.info(
        "  flood connects made",
        connects.load(Ordering::Relaxed).to_string(),
    );
    report.row(
        "  second source's GET p99 (connect + TLS + GET)",
        format!("{} ({} GETs, {failures} failed)", ms(p99), gets.len()),
        "< 1 s, none failed",
        sizes.verdict(scale, p99 < Duration::from_secs(1) && failures == 0),
    );
    if let Some(f) = first_failure {
        println!("   first failure: {f}");
    }
    Ok(())
}

/// Attack 4: one staked worker creates 8 KB Events as fast as four connections allow, in a 20 MB
/// store, while the admin creates ConfigMaps.
fn event_flood(scale: &Scale, sizes: &Sizes, report: &mut Report) -> Result<(), String> {
    let cluster = start_cluster(
        scale,
        &[
            &package_arg(&DEFAULT_PACKAGE),
            "--min-stake=1000000000",
            "--max-store-bytes=20000000",
        ],
    );
    create_target(&cluster)?;
    let sim = Simulator::new(
        cluster.port,
        &cluster.ca_pem,
        &cluster.token,
        SimConfig {
            workers: 1,
            ..SimConfig::default()
        },
    )?;
    sim.stake_all()?;
    sim.register_all()?;
    let worker_token = sim.worker(0).token();
    let node = sim.worker(0).node.clone();
    let rt = client_runtime()?;
    let tls = tls_config(&cluster.ca_pem);
    let port = cluster.port;
    let stop = Arc::new(AtomicBool::new(false));
    let codes = Arc::new(std::sync::Mutex::new(
        std::collections::BTreeMap::<u16, u64>::new(),
    ));
    let legit = rt.block_on(async {
        let legit = spawn_legit(port, tls.clone(), cluster.token.clone(), stop.clone());
        let mut flood = Vec::new();
        for c in 0..4 {
            let (tls, token, stop, codes, node) = (
                tls.clone(),
                worker_token.clone(),
                stop.clone(),
                codes.clone(),
                node.clone(),
            );
            flood.push(tokio::spawn(async move {
                let Ok(mut conn) = Connection::open(port, tls.clone()).await else {
                    return;
                };
                let headers = auth(&token);
                let pad = "x".repeat(8000);
                let mut seq = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    seq += 1;
                    let body = format!(
                        r#"{{"apiVersion":"v1","kind":"Event","metadata":{{"name":"{node}.{c}-{seq}","namespace":"default"}},"involvedObject":{{"kind":"Node","name":"{node}"}},"reason":"Flood","message":"{pad}","type":"Normal","source":{{"component":"kubelet","host":"{node}"}}}}"#
                    );
                    let status = match conn
                        .send(
                            "POST",
                            "/api/v1/namespaces/default/events",
                            Some(body.as_bytes()),
                            &headers,
                        )
                        .await
                    {
                        Ok(r) => r.status,
                        Err(_) => {
                            match Connection::open(port, tls.clone()).await {
                                Ok(c) => conn = c,
                                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                            }
                            0
                        }
                    };
                    if let Ok(mut codes) = codes.lock() {
                        *codes.entry(status).or_default() += 1;
                    }
                }
            }));
        }
        tokio::time::sleep(sizes.attack).await;
        stop.store(true, Ordering::Relaxed);
        for f in flood {
            let _ = f.await;
        }
        legit.finish().await
    });
    report.header(&format!(
        "hostile 4: one worker creating 8 KB Events over 4 connections for {} s (store: 20 MB)",
        sizes.attack.as_secs()
    ));
    let codes = codes.lock().map(|c| c.clone()).unwrap_or_default();
    report.info(
        "  the worker's Event creates by status",
        codes
            .iter()
            .map(|(code, n)| format!("{code}: {n}"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    report.row(
        "  the admin's creates during the flood",
        format!(
            "{} ok, {} failed{}",
            legit.creates_ok,
            legit.creates_failed,
            legit
                .first_create_failure
                .as_ref()
                .map_or(String::new(), |f| format!(" (first: {})", truncate(f)))
        ),
        "all succeed",
        sizes.verdict(scale, legit.creates_failed == 0 && legit.creates_ok > 0),
    );
    let mut gets = legit.gets.clone();
    gets.sort_unstable();
    report.info("  legit GET p99", ms(quantile(&gets, 0.99)));
    Ok(())
}
