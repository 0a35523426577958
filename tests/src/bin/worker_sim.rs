//! The worker figure: N simulated stakers (default 10,000) heartbeating every interval (default
//! 10 s) against `nautilus-proxy dev`; prints heartbeat latency (p50/p99/max), errors, nodes that
//! ever left Ready (watched), and the enclave's CPU over the measured window.
//!
//! `cargo run --release -p nautilus-tests --bin worker_sim -- --workers 10000 --interval 10
//! --duration 60` (options: `--connections N`, `--grace S`, `--warmup S`, `--watch-pods`,
//! `--enclave-arg ARG` repeatable).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nautilus_tests::DevCluster;
use nautilus_tests::client::tls_config;
use nautilus_tests::simulator::{
    DEFAULT_PACKAGE, HeartbeatMode, SimConfig, Simulator, WatchStream, package_arg, percentile,
};
use serde_json::Value;

struct Options {
    workers: usize,
    interval: u64,
    duration: u64,
    connections: usize,
    grace: u64,
    warmup: Option<u64>,
    watch_pods: bool,
    /// `dev --in-memory`: no durable log (each heartbeat then waits for no fsync).
    in_memory: bool,
    enclave_args: Vec<String>,
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        workers: 10_000,
        interval: 10,
        duration: 60,
        connections: 32,
        grace: 40,
        warmup: None,
        watch_pods: false,
        in_memory: false,
        enclave_args: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        let number = |v: String| v.parse::<u64>().map_err(|e| format!("{name}: {e}"));
        match name.as_str() {
            "--workers" => o.workers = number(value()?)? as usize,
            "--interval" => o.interval = number(value()?)?.max(1),
            "--duration" => o.duration = number(value()?)?,
            "--connections" => o.connections = number(value()?)?.max(1) as usize,
            "--grace" => o.grace = number(value()?)?,
            "--warmup" => o.warmup = Some(number(value()?)?),
            "--watch-pods" => o.watch_pods = true,
            "--in-memory" => o.in_memory = true,
            "--enclave-arg" => o.enclave_args.push(value()?),
            "-h" | "--help" => {
                println!(
                    "worker_sim [--workers N] [--interval S] [--duration S] [--connections N] \
                     [--grace S] [--warmup S] [--watch-pods] [--in-memory] [--enclave-arg ARG]..."
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(o)
}

use nautilus_tests::procfs::cpu_secs;

fn rss_mb(pid: u32) -> Option<f64> {
    nautilus_tests::procfs::status_kb(pid, "VmRSS:").map(|kb| kb as f64 / 1024.0)
}

/// Raises the soft open-file limit to the hard one (a pod watcher per worker needs two sockets).
#[allow(unsafe_code)]
fn raise_nofile() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read/write the struct we pass by pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max.min(1 << 20);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

fn ready_status(node: &Value) -> &str {
    node.pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| {
            cs.iter()
                .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
        })
        .and_then(|c| c.get("status").and_then(Value::as_str))
        .unwrap_or("missing")
}

/// Nodes seen in a state other than Ready=True, and how many such transitions, from a watch on
/// every node (so no flap between two polls is missed).
#[derive(Default)]
struct Flaps {
    ever_not_ready: Mutex<BTreeSet<String>>,
    transitions: AtomicU64,
    events: AtomicU64,
    watching: AtomicBool,
    error: Mutex<Option<String>>,
}

fn watch_nodes(cluster: &DevCluster, flaps: Arc<Flaps>) -> std::thread::JoinHandle<()> {
    let port = cluster.port;
    let tls = tls_config(&cluster.ca_pem);
    let auth = vec![(
        "authorization".to_string(),
        format!("Bearer {}", cluster.token),
    )];
    std::thread::spawn(move || {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                *flaps.error.lock().expect("lock") = Some(e.to_string());
                return;
            }
        };
        rt.block_on(async move {
            let mut ready: std::collections::BTreeMap<String, bool> = Default::default();
            let mut rv = String::new();
            loop {
                let path = if rv.is_empty() {
                    "/api/v1/nodes?watch=true&allowWatchBookmarks=true".to_string()
                } else {
                    format!(
                        "/api/v1/nodes?watch=true&allowWatchBookmarks=true&resourceVersion={rv}"
                    )
                };
                let mut stream = match WatchStream::connect(port, tls.clone(), &path, &auth).await {
                    Ok(s) => s,
                    Err(e) => {
                        *flaps.error.lock().expect("lock") = Some(e);
                        return;
                    }
                };
                flaps.watching.store(true, Ordering::Relaxed);
                while let Ok(Some(event)) = stream.next_event().await {
                    flaps.events.fetch_add(1, Ordering::Relaxed);
                    let object = event.get("object").cloned().unwrap_or_default();
                    if let Some(v) = object
                        .pointer("/metadata/resourceVersion")
                        .and_then(Value::as_str)
                    {
                        rv = v.to_string();
                    }
                    let kind = event.get("type").and_then(Value::as_str).unwrap_or("");
                    if !matches!(kind, "ADDED" | "MODIFIED") {
                        continue;
                    }
                    let name = object
                        .pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    let is_ready = ready_status(&object) == "True";
                    let was_ready = ready.insert(name.clone(), is_ready);
                    if !is_ready && was_ready != Some(false) {
                        flaps.transitions.fetch_add(1, Ordering::Relaxed);
                        flaps.ever_not_ready.lock().expect("lock").insert(name);
                    }
                }
            }
        });
    })
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|t| t.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("worker_sim: {e}");
            std::process::exit(2);
        }
    };
    raise_nofile();
    let interval = Duration::from_secs(o.interval);
    let warmup = Duration::from_secs(o.warmup.unwrap_or(o.interval));
    let mut args = vec![
        package_arg(&DEFAULT_PACKAGE),
        "--min-stake=1000000000".to_string(),
        format!("--node-grace-secs={}", o.grace),
    ];
    args.extend(o.enclave_args.iter().cloned());
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    println!(
        "worker_sim: {} workers, heartbeat every {} s, {} s measured after {} s warm-up, {} \
         connections, grace {} s{}",
        o.workers,
        o.interval,
        o.duration,
        warmup.as_secs(),
        o.connections,
        o.grace,
        if o.watch_pods { ", pod watchers" } else { "" }
    );
    println!(
        "   cluster state: {}",
        if o.in_memory {
            "in memory (dev --in-memory)"
        } else {
            "durable log (every heartbeat's write fsync'd by the proxy before its answer)"
        }
    );
    let proxy_args: &[&str] = if o.in_memory { &["--in-memory"] } else { &[] };
    let cluster = DevCluster::start_opts(proxy_args, &arg_refs);
    let enclave = cluster.enclave_pid();
    let proxy = cluster.pid();
    let config = SimConfig {
        workers: o.workers,
        interval,
        connections: o.connections,
        watch_pods: o.watch_pods,
        mode: HeartbeatMode::Seed,
        ..SimConfig::default()
    };
    let mut sim = match Simulator::new(cluster.port, &cluster.ca_pem, &cluster.token, config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("worker_sim: {e}");
            std::process::exit(1);
        }
    };
    let started = Instant::now();
    let (applied, pushes) = match sim.stake_all() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("worker_sim: staking failed: {e}\n{}", cluster.logs());
            std::process::exit(1);
        }
    };
    let staked = started.elapsed();
    let started = Instant::now();
    if let Err(e) = sim.register_all() {
        eprintln!("worker_sim: registration failed: {e}");
        std::process::exit(1);
    }
    let registered = started.elapsed();
    println!(
        "  staked {} workers in {} ({applied} events applied in {pushes} pushes), registered in \
         {} ({:.0}/s)",
        o.workers,
        ms(staked),
        ms(registered),
        o.workers as f64 / registered.as_secs_f64().max(1e-9)
    );
    let flaps = Arc::new(Flaps::default());
    let _watcher = watch_nodes(&cluster, flaps.clone());
    sim.run();
    std::thread::sleep(warmup);
    let _ = sim.take_latencies();
    let _ = sim.take_lateness();
    let before = sim.stats();
    let flaps_before = flaps.transitions.load(Ordering::Relaxed);
    let cpu0 = enclave.and_then(cpu_secs);
    let proxy0 = cpu_secs(proxy);
    let self0 = cpu_secs(std::process::id());
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(o.duration));
    let wall = t0.elapsed().as_secs_f64();
    let cpu1 = enclave.and_then(cpu_secs);
    let proxy1 = cpu_secs(proxy);
    let self1 = cpu_secs(std::process::id());
    let after = sim.stats();
    let latencies = sim.take_latencies();
    let lateness = sim.take_lateness();
    let share = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => format!("{:.1}% of one core", (b - a) / wall * 100.0),
        _ => "unknown".to_string(),
    };
    let p50 = percentile(&latencies, 50.0);
    let p99 = percentile(&latencies, 99.0);
    let max = latencies.last().copied().unwrap_or_default();
    let errors = after.errors - before.errors;
    let sent = after.heartbeats - before.heartbeats;
    let ever = flaps.ever_not_ready.lock().expect("lock").len();
    let transitions = flaps.transitions.load(Ordering::Relaxed);
    let not_ready_after_warmup = transitions - flaps_before;
    println!("  measured window: {wall:.1} s");
    println!(
        "  heartbeats:       {sent} sent ({:.0}/s), {} answered 200",
        sent as f64 / wall,
        latencies.len()
    );
    println!(
        "  latency:          p50 {}  p99 {}  max {}",
        ms(p50),
        ms(p99),
        ms(max)
    );
    println!(
        "  send lateness:    p50 {}  p99 {}  (how late the client sent after the due time: \
         client or machine starvation, not server latency)",
        ms(percentile(&lateness, 50.0)),
        ms(percentile(&lateness, 99.0))
    );
    println!("  load average:     {}", load_average());
    println!("  errors:           {errors}");
    if o.watch_pods {
        println!(
            "  pod watchers:     {} watch/status errors, {} pods reported Running",
            after.watch_errors, after.pods_running
        );
    }
    println!(
        "  NotReady flaps:   {ever} nodes ever left Ready ({not_ready_after_warmup} transitions \
         in the window; node watch saw {} events{})",
        flaps.events.load(Ordering::Relaxed),
        match &*flaps.error.lock().expect("lock") {
            Some(e) => format!(", watch failed: {e}"),
            None if flaps.watching.load(Ordering::Relaxed) => String::new(),
            None => ", watch never started".to_string(),
        }
    );
    println!("  enclave CPU:      {}", share(cpu0, cpu1));
    println!(
        "  enclave RSS:      {}",
        enclave
            .and_then(rss_mb)
            .map_or("unknown".into(), |m| format!("{m:.1} MB"))
    );
    println!("  proxy CPU:        {}", share(proxy0, proxy1));
    println!("  simulator CPU:    {}", share(self0, self1));
    // The operating figure: one Prometheus scrape with every simulated node registered.
    let mut scrapes = Vec::new();
    let mut scrape_bytes = 0;
    for _ in 0..5 {
        let started = Instant::now();
        if let Ok(reply) = sim.admin_request("GET", "/metrics", None, &[]) {
            scrape_bytes = reply.body.len();
            if reply.status == 200 {
                scrapes.push(started.elapsed());
            }
        }
    }
    scrapes.sort();
    println!(
        "  /metrics scrape:  median {} over {} scrapes, {scrape_bytes} bytes, with {} nodes registered",
        scrapes
            .get(scrapes.len() / 2)
            .map_or("failed".into(), |d| ms(*d)),
        scrapes.len(),
        o.workers
    );
    let p99_ok = p99 < Duration::from_millis(5);
    println!(
        "  goal p99 < 5 ms: {}; no flaps: {}; no errors: {}",
        if p99_ok { "PASS" } else { "FAIL" },
        if ever == 0 { "PASS" } else { "FAIL" },
        if errors == 0 { "PASS" } else { "FAIL" }
    );
    for e in sim.error_samples().iter().take(5) {
        println!("  error sample: {e}");
    }
    sim.shutdown();
    drop(cluster);
    if !(p99_ok && ever == 0 && errors == 0) {
        std::process::exit(1);
    }
}
