//! Benchmark of the real binaries (`nautilus-proxy dev` + enclave, release build): GET latency
//! beside a raw hyper+rustls server, LIST and create figures, enclave memory, the byte budget's
//! 507, and watch fan-out latency. It prints figures beside the issue's goals; it asserts nothing
//! by timing and is not part of `cargo test`.
//!
//! `cargo run --release -p nautilus-tests --bin bench -- [--full] [--only NAME[,NAME]]` (the
//! default run uses small sizes and takes about two minutes; `--full` uses the goals' sizes)
//! with NAME one of get, sign, metrics, list, memory, budget, watch, tls, peer, kwok, replicas, hostile
//! (`peer`: the same clients against kube-apiserver + etcd built into `target/peers/`, side by
//! side with ratios; `kwok`: KWOK's controller managing fake Nodes (1,000 with `--full`) and
//! playing the pods of Deployments Running, issue 18's scale figure; `hostile`: issue 13's four
//! attacks, each for 30 s beside a legitimate admin client; `replicas`: issue 17's figures,
//! `dev --replicas 3` beside one replica and a 3-member etcd;
//! `metrics`: GET req/s
//! with the enclave's request metrics on and `--metrics=false`, two clusters side by side;
//! `--sign` = `--only sign`: the
//! cost of signed answers, `X-Nautilus-Sign: 1`; tls: GET pod p99 with the proxy terminating TLS
//! vs enclave TLS through `--passthrough`, side by side in one run). Pods are padded so that they are *served*
//! (with kube's defaults, `status` and `managedFields`) at about 2 KB, or `--pod-bytes N`.

#[path = "bench/durable.rs"]
mod durable;
#[path = "bench/hostile.rs"]
mod hostile;
#[path = "bench/kwok.rs"]
mod kwok;
#[path = "bench/load.rs"]
mod load;
#[path = "bench/peer.rs"]
mod peer;
#[path = "bench/raw.rs"]
mod raw;
#[path = "bench/replicas.rs"]
mod replicas;
#[path = "bench/watch.rs"]
mod watch;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use load::{
    BodyTemplate, Latency, auth, closed_loop_get, create_objects, encode_query, pods_of, quantile,
};
use nautilus_tests::DevCluster;
use nautilus_tests::client::{Connection, tls_config};

const SECTIONS: [&str; 18] = [
    "get",
    "sign",
    "metrics",
    "watch",
    "list",
    "memory",
    "budget",
    "tls",
    "peer",
    "kwok",
    "durable",
    // The snapshot figures of `durable`, alone.
    "durable-snapshot",
    // Issue 17: three enclave replicas beside one and beside a 3-member etcd.
    "replicas",
    "hostile",
    // The four attacks of `hostile`, one at a time.
    "hostile-bodies",
    "hostile-watchers",
    "hostile-connects",
    "hostile-events",
];
/// What kubectl sends for `kubectl get pods`.
const KUBECTL_TABLE_ACCEPT: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
/// Default size of the benchmark pods as served (with kube's defaults, status and
/// managedFields): the issue's "~2 KB" pods.
const POD_BYTES: usize = 2048;

/// Sizes of one run.
struct Scale {
    quick: bool,
    warmup: Duration,
    phase: Duration,
    list_pods: usize,
    memory_pods: usize,
    watchers: usize,
    changes: usize,
    change_gap: Duration,
    budget_bytes: u64,
    /// Served size of the benchmark pods (`--pod-bytes`).
    pod_bytes: usize,
    /// Extra enclave options for every cluster (`--enclave-arg`), for experiments.
    enclave_args: Vec<String>,
}

impl Scale {
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                quick,
                warmup: Duration::from_millis(200),
                phase: Duration::from_secs(1),
                list_pods: 1_000,
                memory_pods: 10_000,
                watchers: 100,
                changes: 20,
                change_gap: Duration::from_millis(20),
                budget_bytes: 5_000_000,
                pod_bytes: POD_BYTES,
                enclave_args: Vec::new(),
            }
        } else {
            Self {
                quick,
                warmup: Duration::from_millis(500),
                phase: Duration::from_secs(3),
                list_pods: 10_000,
                memory_pods: 100_000,
                watchers: 1_000,
                changes: 50,
                change_gap: Duration::from_millis(20),
                budget_bytes: 20_000_000,
                pod_bytes: POD_BYTES,
                enclave_args: Vec::new(),
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Pass,
    Miss,
    Info,
    /// The goal is stated for the full run's sizes only.
    Scaled,
}

impl Verdict {
    fn of(ok: bool) -> Self {
        if ok { Self::Pass } else { Self::Miss }
    }
    fn text(self) -> &'static str {
        match self {
            Self::Pass => "PASS",
            Self::Miss => "MISS",
            Self::Info => "",
            Self::Scaled => "n/a (quick)",
        }
    }
}

/// Collects verdicts for the closing summary.
#[derive(Default)]
struct Report {
    goals: Vec<(String, Verdict)>,
    failures: Vec<String>,
}

impl Report {
    fn header(&self, title: &str) {
        println!("\n== {title}");
        println!("{:<52} {:>28}  {:<22} verdict", "figure", "value", "goal");
    }

    fn row(&mut self, name: &str, value: String, goal: &str, verdict: Verdict) {
        println!("{name:<52} {value:>28}  {goal:<22} {}", verdict.text());
        if verdict != Verdict::Info {
            self.goals.push((name.to_string(), verdict));
        }
    }

    fn info(&mut self, name: &str, value: String) {
        self.row(name, value, "", Verdict::Info);
    }

    fn check(&mut self, name: &str, ok: bool, detail: String) {
        self.row(name, detail, "must hold", Verdict::of(ok));
    }
}

/// The 1-minute load average (other sessions share this machine; high load skews figures).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| t.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

fn ms(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{:.0} µs", d.as_secs_f64() * 1e6)
    } else {
        format!("{:.2} ms", d.as_secs_f64() * 1e3)
    }
}

fn mb(kb: u64) -> String {
    format!("{:.1} MB", kb as f64 / 1000.0)
}

/// `VmRSS` or `VmHWM` of `pid` in kB.
fn proc_status_kb(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("State:"))
                .is_some_and(|s| !s.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// Raises the soft open-file limit to the hard one (1,000 watchers need ~3,000 descriptors
/// across this process, the proxy and the enclave, which inherit the limit).
#[allow(unsafe_code)]
fn raise_nofile() -> u64 {
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
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        }
    }
    limit.rlim_cur
}

fn ensure_namespace(cluster: &DevCluster, name: &str) -> Result<(), String> {
    let body =
        format!(r#"{{"apiVersion":"v1","kind":"Namespace","metadata":{{"name":"{name}"}}}}"#);
    let reply = cluster.request("POST", "/api/v1/namespaces", Some(body.as_bytes()), &[])?;
    match reply.status {
        201 | 409 => Ok(()),
        s => Err(format!(
            "create namespace {name}: {s} {}",
            String::from_utf8_lossy(&reply.body)
        )),
    }
}

/// The pod template for `namespace`, calibrated on `cluster` so pods are served at
/// [`POD_BYTES`]; also returns the request body size.
fn pod_template(
    cluster: &DevCluster,
    rt: &tokio::runtime::Runtime,
    namespace: &str,
    pod_bytes: usize,
) -> Result<(BodyTemplate, usize), String> {
    ensure_namespace(cluster, "calibrate")?;
    let (template, body_len, unpadded) = rt.block_on(async {
        let mut conn = Connection::open(cluster.port, tls_config(&cluster.ca_pem)).await?;
        BodyTemplate::calibrated(&mut conn, &cluster.token, "calibrate", namespace, pod_bytes).await
    })?;
    if unpadded > pod_bytes + 64 {
        println!("   note: the unpadded pod is already served at {unpadded} B (> {pod_bytes} B)");
    }
    Ok((template, body_len))
}

/// A cluster with the section's enclave options followed by the command line's, in memory
/// (`--in-memory`): these sections measure the API itself, beside kube-apiserver on an etcd in
/// tmpfs; the `durable` section measures the durable log on a real disk.
fn start_cluster(scale: &Scale, args: &[&str]) -> DevCluster {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(scale.enclave_args.iter().map(String::as_str));
    DevCluster::start_opts(&["--in-memory"], &all)
}

fn client_runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bench-client")
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // The default run takes about two minutes; `--full` runs issue 19's sizes (10,000-pod
    // LISTs, 100,000 pods in memory, 1,000 watchers), several minutes.
    let mut quick = true;
    let mut only: Option<Vec<String>> = None;
    let mut pod_bytes = POD_BYTES;
    let mut enclave_args = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--full" => quick = false,
            "--sign" => only = Some(vec!["sign".to_string()]),
            "--only" => {
                only = iter
                    .next()
                    .map(|v| v.split(',').map(str::to_string).collect());
            }
            other if other.starts_with("--only=") => {
                only = Some(
                    other["--only=".len()..]
                        .split(',')
                        .map(str::to_string)
                        .collect(),
                );
            }
            "--pod-bytes" => match iter.next().and_then(|v| v.parse().ok()) {
                Some(n) => pod_bytes = n,
                None => {
                    eprintln!("--pod-bytes needs a number");
                    std::process::exit(2);
                }
            },
            "--enclave-arg" => match iter.next() {
                Some(v) => enclave_args.push(v.clone()),
                None => {
                    eprintln!("--enclave-arg needs a value");
                    std::process::exit(2);
                }
            },
            "-h" | "--help" => {
                println!(
                    "bench [--full] [--only NAME[,NAME]] [--pod-bytes N (served pod size, default {POD_BYTES})] [--enclave-arg ARG]...   NAME: {}",
                    SECTIONS.join(", ")
                );
                return;
            }
            other => {
                eprintln!("unknown argument {other:?}; try --help");
                std::process::exit(2);
            }
        }
    }
    if let Some(names) = &only
        && let Some(bad) = names.iter().find(|n| !SECTIONS.contains(&n.as_str()))
    {
        eprintln!(
            "unknown section {bad:?}; choose from {}",
            SECTIONS.join(", ")
        );
        std::process::exit(2);
    }
    let wanted = |name: &str| only.as_ref().is_none_or(|o| o.iter().any(|n| n == name));
    let mut scale = Scale::new(quick);
    scale.pod_bytes = pod_bytes;
    scale.enclave_args = enclave_args;
    if !scale.enclave_args.is_empty() {
        println!("extra enclave options: {}", scale.enclave_args.join(" "));
    }
    let nofile = raise_nofile();
    let started = Instant::now();
    println!(
        "nautilus bench ({} run, {} build, {} CPUs, open-file limit {nofile}, load average {})",
        if quick { "quick" } else { "full" },
        if cfg!(debug_assertions) {
            "DEBUG (use --release for real figures)"
        } else {
            "release"
        },
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average(),
    );
    // Build the binaries before any timing starts.
    let _ = nautilus_tests::binary("nautilus-proxy");

    let mut report = Report::default();
    let mut run = |name: &str, f: &dyn Fn(&Scale, &mut Report) -> Result<(), String>| {
        let t = Instant::now();
        if let Err(e) = f(&scale, &mut report) {
            println!("!! section {name} failed: {e}");
            report.failures.push(format!("{name}: {e}"));
        }
        println!("   ({name} took {:.1} s)", t.elapsed().as_secs_f64());
    };
    if wanted("get") {
        run("get", &section_get);
    }
    if wanted("sign") {
        run("sign", &section_sign);
    }
    if wanted("metrics") {
        run("metrics", &section_metrics);
    }
    if wanted("watch") {
        run("watch", &section_watch);
    }
    // Separate clusters: the LISTs leave heap behind that would blur the memory figures.
    if wanted("list") {
        run("list", &|s, r| section_store(s, r, true, false));
    }
    if wanted("memory") {
        run("memory", &|s, r| section_store(s, r, false, true));
    }
    if wanted("budget") {
        run("budget", &section_budget);
    }
    if wanted("tls") {
        run("tls", &section_tls);
    }
    if wanted("peer") {
        run("peer", &section_peer);
    }
    if wanted("kwok") {
        run("kwok", &kwok::section);
    }
    if wanted("durable") {
        run("durable", &durable::section);
    }
    if wanted("durable") || wanted("durable-snapshot") {
        run("durable-snapshot", &durable::snapshots);
    }
    // Four clusters and 20 kills: only when asked for, or in the full run, so that the default
    // run stays short.
    if wanted("replicas") && (only.is_some() || !quick) {
        run("replicas", &replicas::section);
    }
    for (name, attack) in hostile::ATTACKS {
        if wanted("hostile") || wanted(name) {
            run(name, &|s, r| attack(s, &hostile::Sizes::of(s), r));
        }
    }

    println!(
        "\n== summary ({:.0} s, load average now {})",
        started.elapsed().as_secs_f64(),
        load_average()
    );
    for (name, verdict) in &report.goals {
        if *verdict != Verdict::Pass {
            println!("{:<52} {}", name, verdict.text());
        }
    }
    let pass = report
        .goals
        .iter()
        .filter(|(_, v)| *v == Verdict::Pass)
        .count();
    let miss = report
        .goals
        .iter()
        .filter(|(_, v)| *v == Verdict::Miss)
        .count();
    println!(
        "goals: {pass} PASS, {miss} MISS; section errors: {}",
        report.failures.len()
    );
    if !report.failures.is_empty() {
        std::process::exit(1);
    }
}

/// Figure 1: GET one pod (TLS, keep-alive) at 1 and 32 clients, beside the raw server.
fn section_get(scale: &Scale, report: &mut Report) -> Result<(), String> {
    let cluster = start_cluster(scale, &[]);
    ensure_namespace(&cluster, "bench")?;
    let rt = client_runtime()?;
    let (template, _) = pod_template(&cluster, &rt, "bench", scale.pod_bytes)?;
    let created = cluster.request(
        "POST",
        "/api/v1/namespaces/bench/pods",
        Some(&template.body("get-target", 0)),
        &[],
    )?;
    if created.status != 201 {
        return Err(format!("create pod: {}", created.status));
    }
    let path = "/api/v1/namespaces/bench/pods/get-target".to_string();
    let first = cluster.request("GET", &path, None, &[])?;
    if first.status != 200 {
        return Err(format!("GET pod: {}", first.status));
    }
    let content_type = first
        .header("content-type")
        .unwrap_or("application/json")
        .to_string();
    let body_len = first.body.len();
    let raw = raw::start(Bytes::from(first.body.clone()), content_type.clone())?;
    let ours_tls = tls_config(&cluster.ca_pem);
    let raw_tls = tls_config(&raw.ca_pem);
    // The raw server's answer must be the very same bytes.
    let check = rt.block_on(async {
        let mut conn = Connection::open(raw.port, raw_tls.clone()).await?;
        conn.send("GET", &path, None, &auth(&cluster.token)).await
    })?;
    if check.body != first.body || check.header("content-type") != Some(content_type.as_str()) {
        return Err("raw server does not answer the same bytes".into());
    }

    let rounds = if scale.quick { 1 } else { 3 };
    report.header(&format!(
        "GET one pod ({body_len} B, {content_type}) through proxy + enclave vs raw hyper+rustls; {} s per server and client count, in {rounds} alternating rounds, each after {} ms warm-up",
        scale.phase.as_secs_f64(),
        scale.warmup.as_millis()
    ));
    println!(
        "{:<16} {:>10} {:>10} {:>10} {:>10} {:>12} {:>12} {:>10}",
        "clients",
        "ours p50",
        "raw p50",
        "ours p99",
        "raw p99",
        "ours req/s",
        "raw req/s",
        "ours/raw"
    );
    let mut results: Vec<(usize, Latency, Latency)> = Vec::new();
    for clients in [1usize, 32] {
        let phase = |port, tls: &Arc<rustls::ClientConfig>| {
            rt.block_on(closed_loop_get(
                port,
                tls.clone(),
                auth(&cluster.token),
                path.clone(),
                clients,
                scale.warmup,
                scale.phase / rounds,
                body_len,
            ))
        };
        // Rounds alternate between the two servers so that load from other processes on
        // the machine weighs on both alike.
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            ours.extend(phase(cluster.port, &ours_tls)?);
            theirs.extend(phase(raw.port, &raw_tls)?);
        }
        let ours = Latency::of(ours, scale.phase);
        let theirs = Latency::of(theirs, scale.phase);
        println!(
            "{:<16} {:>10} {:>10} {:>10} {:>10} {:>12.0} {:>12.0} {:>9.0}%",
            clients,
            ms(ours.p50),
            ms(theirs.p50),
            ms(ours.p99),
            ms(theirs.p99),
            ours.per_sec,
            theirs.per_sec,
            100.0 * ours.per_sec / theirs.per_sec
        );
        results.push((clients, ours, theirs));
    }
    println!();
    for (clients, ours, theirs) in &results {
        let c = *clients;
        report.row(
            &format!("GET p50, {c} client(s): ours / raw"),
            format!("{} / {}", ms(ours.p50), ms(theirs.p50)),
            "",
            Verdict::Info,
        );
        report.row(
            &format!("GET p99, {c} client(s): ours / raw"),
            format!("{} / {}", ms(ours.p99), ms(theirs.p99)),
            if c == 1 { "ours p99 < 1 ms" } else { "" },
            if c == 1 {
                Verdict::of(ours.p99 < Duration::from_millis(1))
            } else {
                Verdict::Info
            },
        );
        report.info(
            &format!("GET max, {c} client(s): ours / raw"),
            format!("{} / {}", ms(ours.max), ms(theirs.max)),
        );
        let ratio = ours.per_sec / theirs.per_sec;
        report.row(
            &format!("GET req/s, {c} client(s): ours / raw"),
            format!("{:.0} / {:.0}", ours.per_sec, theirs.per_sec),
            "",
            Verdict::Info,
        );
        report.row(
            &format!("GET req/s ratio ours/raw, {c} client(s)"),
            format!("{:.0} %", 100.0 * ratio),
            ">= 50 %",
            Verdict::of(ratio >= 0.5),
        );
        report.info(
            &format!("GET p99 ratio ours/raw, {c} client(s)"),
            format!("{:.2}x", ours.p99.as_secs_f64() / theirs.p99.as_secs_f64()),
        );
        report.info(
            &format!("GET requests measured, {c} client(s): ours / raw"),
            format!("{} / {}", ours.requests, theirs.requests),
        );
    }
    drop(raw);
    Ok(())
}

/// Mean time of one call of `f` over `n` calls.
fn per_call(n: u32, mut f: impl FnMut()) -> Duration {
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed() / n
}

/// Signed answers: one P-384 signature and one verification in-process (the exact canonical
/// message of a GET pod answer), then GET pod latency with and without `X-Nautilus-Sign: 1`
/// on the same cluster, in alternating rounds.
fn section_sign(scale: &Scale, report: &mut Report) -> Result<(), String> {
    use nautilus_core::signed_answer::{self, SignedFields};
    let key = p384::ecdsa::SigningKey::from_slice(&[0x5a; 48]).map_err(|e| e.to_string())?;
    let public = key.verifying_key().to_sec1_point(false);
    let body = vec![b'x'; scale.pod_bytes];
    let fields = SignedFields {
        method: "GET",
        path_and_query: "/api/v1/namespaces/bench/pods/get-target",
        request_body: b"",
        status: 200,
        response_body: &body,
        revision: 123_456,
        timestamp_ms: 1_700_000_000_000,
        freshness: signed_answer::Freshness::Unverified,
        nonce: &[7u8; 32],
    };
    let signature = signed_answer::sign(&key, &fields);
    if signed_answer::verify(public.as_bytes(), &fields, &signature).is_err() {
        return Err("an in-process signature does not verify".into());
    }
    let n = if scale.quick { 50 } else { 300 };
    let sign_cost = per_call(n, || {
        std::hint::black_box(signed_answer::sign(&key, std::hint::black_box(&fields)));
    });
    let verify_cost = per_call(n, || {
        let _ = std::hint::black_box(signed_answer::verify(
            public.as_bytes(),
            std::hint::black_box(&fields),
            &signature,
        ));
    });

    let cluster = start_cluster(scale, &[]);
    ensure_namespace(&cluster, "bench")?;
    let rt = client_runtime()?;
    let (template, _) = pod_template(&cluster, &rt, "bench", scale.pod_bytes)?;
    let created = cluster.request(
        "POST",
        "/api/v1/namespaces/bench/pods",
        Some(&template.body("get-target", 0)),
        &[],
    )?;
    if created.status != 201 {
        return Err(format!("create pod: {}", created.status));
    }
    let path = "/api/v1/namespaces/bench/pods/get-target".to_string();
    let sign_headers = [("x-nautilus-sign", "1"), ("x-nautilus-nonce", "00112233")];
    let first = cluster.request("GET", &path, None, &sign_headers)?;
    let header_len = first.header("x-nautilus-signature").map_or(0, str::len);
    if first.status != 200 || header_len != 128 {
        return Err(format!(
            "signed GET pod: {} with a signature header of {header_len} characters",
            first.status
        ));
    }
    let body_len = first.body.len();
    let tls = tls_config(&cluster.ca_pem);
    let mut signed_headers = auth(&cluster.token);
    signed_headers.extend(
        sign_headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let rounds = if scale.quick { 1 } else { 3 };
    report.header(&format!(
        "signed answers: P-384 in-process (mean of {n}), then GET one pod ({body_len} B) with and without X-Nautilus-Sign, {} s each in {rounds} alternating rounds",
        scale.phase.as_secs_f64()
    ));
    report.info(
        "one P-384 signature (canonical message + ECDSA)",
        ms(sign_cost),
    );
    report.info("one P-384 verification", ms(verify_cost));
    for clients in [1usize, 8] {
        let phase = |headers: &Vec<(String, String)>| {
            rt.block_on(closed_loop_get(
                cluster.port,
                tls.clone(),
                headers.clone(),
                path.clone(),
                clients,
                scale.warmup,
                scale.phase / rounds,
                body_len,
            ))
        };
        let (mut plain, mut signed) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            plain.extend(phase(&auth(&cluster.token))?);
            signed.extend(phase(&signed_headers)?);
        }
        let plain = Latency::of(plain, scale.phase);
        let signed = Latency::of(signed, scale.phase);
        report.info(
            &format!("GET p50, {clients} client(s): unsigned / signed"),
            format!("{} / {}", ms(plain.p50), ms(signed.p50)),
        );
        report.info(
            &format!("GET p99, {clients} client(s): unsigned / signed"),
            format!("{} / {}", ms(plain.p99), ms(signed.p99)),
        );
        report.info(
            &format!("GET req/s, {clients} client(s): unsigned / signed"),
            format!("{:.0} / {:.0}", plain.per_sec, signed.per_sec),
        );
    }
    Ok(())
}

/// GET one pod with the proxy terminating TLS (the default) vs the enclave terminating it
/// (`dev --enclave-tls`, the proxy splicing ciphertext), two clusters measured in alternating
/// rounds so that machine load weighs on both alike.
fn section_tls(scale: &Scale, report: &mut Report) -> Result<(), String> {
    let mut extra: Vec<&str> = scale.enclave_args.iter().map(String::as_str).collect();
    extra.retain(|a| !a.is_empty());
    let proxy_tls = DevCluster::start_opts(&[], &extra);
    let enclave_tls = DevCluster::start_opts(&["--enclave-tls"], &extra);
    let rt = client_runtime()?;
    let path = "/api/v1/namespaces/bench/pods/tls-target".to_string();
    let mut setups = Vec::new();
    for cluster in [&proxy_tls, &enclave_tls] {
        ensure_namespace(cluster, "bench")?;
        let (template, _) = pod_template(cluster, &rt, "bench", scale.pod_bytes)?;
        let created = cluster.request(
            "POST",
            "/api/v1/namespaces/bench/pods",
            Some(&template.body("tls-target", 0)),
            &[],
        )?;
        if created.status != 201 {
            return Err(format!("create pod: {}", created.status));
        }
        let first = cluster.request("GET", &path, None, &[])?;
        if first.status != 200 {
            return Err(format!("GET pod: {}", first.status));
        }
        setups.push((cluster, tls_config(&cluster.ca_pem), first.body.len()));
    }
    let rounds = if scale.quick { 1 } else { 3 };
    report.header(&format!(
        "GET one pod: proxy-terminated TLS vs enclave TLS (proxy --passthrough); {} s per mode and client count, {rounds} alternating rounds",
        scale.phase.as_secs_f64()
    ));
    println!(
        "{:<10} {:>14} {:>14} {:>14} {:>14} {:>14} {:>14}",
        "clients",
        "proxy p50",
        "enclave p50",
        "proxy p99",
        "enclave p99",
        "proxy req/s",
        "enclave req/s"
    );
    for clients in [1usize, 32] {
        let mut samples = [Vec::new(), Vec::new()];
        for _ in 0..rounds {
            for (i, (cluster, tls, len)) in setups.iter().enumerate() {
                let got = rt.block_on(closed_loop_get(
                    cluster.port,
                    tls.clone(),
                    auth(&cluster.token),
                    path.clone(),
                    clients,
                    scale.warmup,
                    scale.phase / rounds,
                    *len,
                ))?;
                if let Some(all) = samples.get_mut(i) {
                    all.extend(got);
                }
            }
        }
        let [proxy, enclave] = samples.map(|s| Latency::of(s, scale.phase));
        println!(
            "{:<10} {:>14} {:>14} {:>14} {:>14} {:>14.0} {:>14.0}",
            clients,
            ms(proxy.p50),
            ms(enclave.p50),
            ms(proxy.p99),
            ms(enclave.p99),
            proxy.per_sec,
            enclave.per_sec
        );
        report.info(
            &format!("GET p99, {clients} client(s): proxy TLS / enclave TLS"),
            format!("{} / {}", ms(proxy.p99), ms(enclave.p99)),
        );
        report.info(
            &format!("GET p50, {clients} client(s): proxy TLS / enclave TLS"),
            format!("{} / {}", ms(proxy.p50), ms(enclave.p50)),
        );
        report.info(
            &format!("GET req/s, {clients} client(s): proxy TLS / enclave TLS"),
            format!("{:.0} / {:.0}", proxy.per_sec, enclave.per_sec),
        );
    }
    Ok(())
}

/// The cost of metrics on the hot path: GET one pod on two clusters, one with the enclave's
/// request metrics on and one with `--metrics=false`, in interleaved rounds (on/off, then
/// off/on, so drift and other load weigh on both alike); the figure is the median of the
/// per-round-pair ratios.
fn section_metrics(scale: &Scale, report: &mut Report) -> Result<(), String> {
    let on = start_cluster(scale, &[]);
    let off = start_cluster(scale, &["--metrics=false"]);
    let rt = client_runtime()?;
    let path = "/api/v1/namespaces/bench/pods/get-target".to_string();
    let mut body_len = 0;
    for cluster in [&on, &off] {
        ensure_namespace(cluster, "bench")?;
        let (template, _) = pod_template(cluster, &rt, "bench", scale.pod_bytes)?;
        let created = cluster.request(
            "POST",
            "/api/v1/namespaces/bench/pods",
            Some(&template.body("get-target", 0)),
            &[],
        )?;
        if created.status != 201 {
            return Err(format!("create pod: {}", created.status));
        }
        body_len = cluster.request("GET", &path, None, &[])?.body.len();
    }
    let rounds: usize = if scale.quick { 4 } else { 20 };
    let slice = Duration::from_millis(500);
    let pids = |c: &DevCluster| [Some(c.pid()), c.enclave_pid()];
    let (pids_on, pids_off) = (pids(&on), pids(&off));
    report.header(&format!(
        "metrics on vs --metrics=false: GET one pod ({body_len} B), {rounds} interleaved rounds of {} ms per cluster and client count",
        slice.as_millis()
    ));
    println!(
        "{:<10} {:>12} {:>12} {:>10} {:>10} {:>14} {:>14} {:>16}",
        "clients",
        "on req/s",
        "off req/s",
        "on p50",
        "off p50",
        "on/off (agg)",
        "on/off (med)",
        "CPU µs/req on/off"
    );
    for clients in [1usize, 32] {
        let phase = |cluster: &DevCluster| {
            rt.block_on(closed_loop_get(
                cluster.port,
                tls_config(&cluster.ca_pem),
                auth(&cluster.token),
                path.clone(),
                clients,
                scale.warmup,
                slice,
                body_len,
            ))
        };
        let (mut all_on, mut all_off, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        // CPU time of proxy + enclave per request: far less sensitive than req/s to what
        // other processes on the machine do.
        let cpu_before = (cpu_ticks(&pids_on), cpu_ticks(&pids_off));
        for round in 0..rounds {
            let (a, b) = if round % 2 == 0 {
                let a = phase(&on)?;
                (a, phase(&off)?)
            } else {
                let b = phase(&off)?;
                (phase(&on)?, b)
            };
            if !b.is_empty() {
                ratios.push(a.len() as f64 / b.len() as f64);
            }
            all_on.extend(a);
            all_off.extend(b);
        }
        let cpu_on = cpu_ticks(&pids_on).saturating_sub(cpu_before.0);
        let cpu_off = cpu_ticks(&pids_off).saturating_sub(cpu_before.1);
        let per_req = |ticks: u64, n: usize| ticks as f64 * 1e6 / TICKS_PER_SEC / n.max(1) as f64;
        let (cpu_req_on, cpu_req_off) = (
            per_req(cpu_on, all_on.len()),
            per_req(cpu_off, all_off.len()),
        );
        ratios.sort_by(f64::total_cmp);
        let median = ratios.get(ratios.len() / 2).copied().unwrap_or(0.0);
        let measured = slice * u32::try_from(rounds).unwrap_or(u32::MAX);
        let lat_on = Latency::of(all_on, measured);
        let lat_off = Latency::of(all_off, measured);
        let aggregate = lat_on.per_sec / lat_off.per_sec;
        println!(
            "{:<10} {:>12.0} {:>12.0} {:>10} {:>10} {:>13.1}% {:>13.1}% {:>7.1} / {:<7.1}",
            clients,
            lat_on.per_sec,
            lat_off.per_sec,
            ms(lat_on.p50),
            ms(lat_off.p50),
            100.0 * aggregate,
            100.0 * median,
            cpu_req_on,
            cpu_req_off
        );
        report.info(
            &format!("CPU per GET (proxy + enclave) metrics on / off, {clients} client(s)"),
            format!(
                "{cpu_req_on:.1} / {cpu_req_off:.1} µs ({:+.1} %)",
                100.0 * (cpu_req_on / cpu_req_off - 1.0)
            ),
        );
        let cost = 100.0 * (1.0 - median);
        report.row(
            &format!("GET req/s metrics on / off, {clients} client(s)"),
            format!(
                "{:.0} / {:.0} (median round ratio {:.1} %, cost {cost:.1} %)",
                lat_on.per_sec,
                lat_off.per_sec,
                100.0 * median
            ),
            "< 3 % difference",
            Verdict::of(cost.abs() < 3.0),
        );
    }
    println!();
    Ok(())
}

/// Clock ticks per second of /proc's CPU times (USER_HZ, 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// utime + stime of the processes, in clock ticks.
fn cpu_ticks(pids: &[Option<u32>]) -> u64 {
    pids.iter()
        .flatten()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .filter_map(|stat| {
            // Fields after the parenthesised command name; utime and stime are 14 and 15.
            let rest = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let utime: u64 = fields.get(11)?.parse().ok()?;
            let stime: u64 = fields.get(12)?.parse().ok()?;
            Some(utime + stime)
        })
        .sum()
}

/// Figure 4: many watchers, one change at a time, per-watcher delivery latency.
fn section_watch(scale: &Scale, report: &mut Report) -> Result<(), String> {
    let cluster = start_cluster(scale, &[]);
    ensure_namespace(&cluster, "bench")?;
    let listed = cluster.request("GET", "/api/v1/namespaces/bench/pods?limit=1", None, &[])?;
    let revision = listed
        .json()
        .pointer("/metadata/resourceVersion")
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .ok_or("LIST has no resourceVersion")?;
    let rt = client_runtime()?;
    let tls = tls_config(&cluster.ca_pem);
    let watchers = scale.watchers;
    let changes = scale.changes;
    let (template, body_len) = pod_template(&cluster, &rt, "bench", scale.pod_bytes)?;
    let token = cluster.token.clone();
    let port = cluster.port;
    let watch_path = format!(
        "/api/v1/namespaces/bench/pods?watch=true&resourceVersion={}",
        encode_query(&revision)
    );
    let enclave_pid = cluster.enclave_pid();
    let proxy_pid = cluster.pid();

    let outcome = rt.block_on(watch::fan_out(
        port,
        tls,
        token,
        watch_path,
        Arc::new(template),
        watchers,
        changes,
        scale.change_gap,
        &enclave_pid
            .into_iter()
            .chain([proxy_pid])
            .collect::<Vec<_>>(),
    ))?;
    let watch::FanOut {
        open_time,
        latencies,
        complete,
        write_latency,
        last_per_change,
        server_cpu,
        client_cpu,
    } = outcome;
    let expected = watchers * changes;
    report.header(&format!(
        "watch fan-out: {watchers} watchers (one TLS connection each) x {changes} pod creations (served ~{} B, body {body_len} B) {} ms apart",
        scale.pod_bytes,
        scale.change_gap.as_millis()
    ));
    let full = watchers == 1_000;
    report.info(
        &format!("open {watchers} watches"),
        format!("{:.2} s", open_time.as_secs_f64()),
    );
    report.check(
        "every watcher saw every change",
        latencies.len() == expected,
        format!(
            "{} / {expected} deliveries, {complete} complete",
            latencies.len()
        ),
    );
    report.info("delivery latency p50", ms(quantile(&latencies, 0.50)));
    report.row(
        "delivery latency p99",
        ms(quantile(&latencies, 0.99)),
        "< 10 ms @1000 watchers",
        if full {
            Verdict::of(quantile(&latencies, 0.99) < Duration::from_millis(10))
        } else {
            Verdict::Scaled
        },
    );
    report.info(
        "delivery latency max",
        ms(latencies.last().copied().unwrap_or_default()),
    );
    report.info(
        "time until the last watcher saw a change: p50 / max",
        format!(
            "{} / {}",
            ms(quantile(&last_per_change, 0.5)),
            ms(last_per_change.last().copied().unwrap_or_default())
        ),
    );
    report.info(
        "writer's create latency p50 / max",
        format!(
            "{} / {}",
            ms(quantile(&write_latency, 0.5)),
            ms(write_latency.last().copied().unwrap_or_default())
        ),
    );
    report.info(
        "CPU per delivery: enclave + proxy / this client",
        format!(
            "{:.1} / {:.1} µs",
            server_cpu * 1e6 / expected as f64,
            client_cpu * 1e6 / expected as f64
        ),
    );
    if let Some(pid) = enclave_pid {
        report.info(
            "enclave RSS with the watchers",
            proc_status_kb(pid, "VmRSS:").map_or("?".into(), mb),
        );
    }
    report.info(
        "proxy RSS with the watchers",
        proc_status_kb(proxy_pid, "VmRSS:").map_or("?".into(), mb),
    );
    Ok(())
}

fn create_rate(created: &load::Created) -> String {
    format!(
        "{:.0} pods/s ({} in {:.2} s)",
        created.ok as f64 / created.elapsed.as_secs_f64(),
        created.ok,
        created.elapsed.as_secs_f64()
    )
}

/// Times `GET path` with `accept` (median of `runs`) on one keep-alive connection.
async fn timed_get(
    conn: &mut Connection,
    token: &str,
    path: &str,
    accept: &str,
    runs: usize,
) -> Result<(Duration, usize), String> {
    let mut headers = auth(token);
    headers.push(("accept".into(), accept.into()));
    let mut times = Vec::with_capacity(runs);
    let mut bytes = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let reply = conn.send("GET", path, None, &headers).await?;
        times.push(t.elapsed());
        if reply.status != 200 {
            return Err(format!("GET {path}: {}", reply.status));
        }
        bytes = reply.body.len();
    }
    times.sort_unstable();
    Ok((quantile(&times, 0.5), bytes))
}

/// One client GETs a pod back to back for `span` while another LISTs the namespace with
/// `accept` back to back: shows whether a long LIST holds up other requests.
async fn get_during_lists(
    port: u16,
    tls: Arc<rustls::ClientConfig>,
    token: &str,
    accept: &str,
    span: Duration,
) -> Result<(Latency, usize), String> {
    let mut lister = Connection::open(port, tls.clone()).await?;
    let mut headers = auth(token);
    headers.push(("accept".into(), accept.into()));
    let end = Instant::now() + span;
    let lists = async {
        let mut count = 0usize;
        while Instant::now() < end {
            let reply = lister
                .send("GET", "/api/v1/namespaces/bench/pods", None, &headers)
                .await?;
            if reply.status != 200 {
                return Err(format!("LIST: {}", reply.status));
            }
            count += 1;
        }
        Ok::<_, String>(count)
    };
    let gets = closed_loop_get(
        port,
        tls,
        auth(token),
        "/api/v1/namespaces/bench/pods/p-000000".into(),
        1,
        Duration::ZERO,
        span,
        usize::MAX,
    );
    let (lists, gets) = tokio::join!(lists, gets);
    Ok((Latency::of(gets?, span), lists?))
}

/// kubectl-style paging: `limit=500` pages of Tables until no `continue`.
async fn paged_table(
    conn: &mut Connection,
    token: &str,
    base: &str,
) -> Result<(Duration, usize, usize), String> {
    let mut headers = auth(token);
    headers.push(("accept".into(), KUBECTL_TABLE_ACCEPT.into()));
    let mut cont = String::new();
    let (mut bytes, mut pages) = (0, 0);
    let t = Instant::now();
    loop {
        let mut path = format!("{base}?limit=500");
        if !cont.is_empty() {
            path.push_str("&continue=");
            path.push_str(&encode_query(&cont));
        }
        let reply = conn.send("GET", &path, None, &headers).await?;
        if reply.status != 200 {
            return Err(format!("GET {path}: {}", reply.status));
        }
        bytes += reply.body.len();
        pages += 1;
        cont = reply
            .json()
            .pointer("/metadata/continue")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string();
        if cont.is_empty() || pages > 100_000 {
            break;
        }
    }
    Ok((t.elapsed(), bytes, pages))
}

/// Figures 2 and 3 (first part): create rates, LIST sizes and times, enclave RSS.
fn section_store(
    scale: &Scale,
    report: &mut Report,
    list: bool,
    memory: bool,
) -> Result<(), String> {
    let cluster = start_cluster(
        scale,
        &["--max-objects=200000", "--max-store-bytes=1000000000"],
    );
    let enclave_pid = cluster.enclave_pid().ok_or("no enclave pid")?;
    let rt = client_runtime()?;
    let tls = tls_config(&cluster.ca_pem);
    for ns in ["bench", "bench1", "fill"] {
        ensure_namespace(&cluster, ns)?;
    }
    let n = scale.list_pods;
    let (template, body_len) = pod_template(&cluster, &rt, "bench", scale.pod_bytes)?;
    // Pods no scheduler acts on, as on kube-apiserver's side of `--only peer` (with ours acting,
    // each pod also gets a status update and a FailedScheduling event: twice the objects).
    let template = Arc::new(template.unscheduled());
    let create = |ns: &str, prefix: &str, first: usize, count: usize, conns: usize| {
        rt.block_on(create_objects(
            cluster.port,
            tls.clone(),
            &cluster.token,
            &pods_of(ns),
            template.clone(),
            prefix,
            first,
            count,
            conns,
            false,
        ))
    };
    report.header(&format!(
        "store: pods served ~{} B (body {body_len} B), enclave pid {enclave_pid}, idle RSS {}",
        scale.pod_bytes,
        proc_status_kb(enclave_pid, "VmRSS:").map_or("?".into(), mb)
    ));
    let eight = create("bench", "p", 0, n, 8)?;
    let stored = cluster.request("GET", "/api/v1/namespaces/bench/pods/p-000000", None, &[])?;
    report.info(
        "one stored pod as served (bytes)",
        stored.body.len().to_string(),
    );
    report.info(
        &format!("create {n} pods, 8 connections"),
        create_rate(&eight),
    );
    let rss_small = proc_status_kb(enclave_pid, "VmRSS:").unwrap_or(0);
    if memory {
        // Heap and stacks apart from the binary's code and read-only data the process touched.
        report.info(
            &format!("enclave RSS after {n} pods: anonymous / file-backed"),
            format!(
                "{} / {}",
                proc_status_kb(enclave_pid, "RssAnon:").map_or("?".into(), mb),
                proc_status_kb(enclave_pid, "RssFile:").map_or("?".into(), mb)
            ),
        );
        report.row(
            &format!("enclave RSS after {n} pods"),
            mb(rss_small),
            "< 40 MB @10k pods",
            if n == 10_000 {
                Verdict::of(rss_small < 40_000)
            } else {
                Verdict::Scaled
            },
        );
    }
    let mut total = n;
    if list {
        let rss = || proc_status_kb(enclave_pid, "VmRSS:").map_or("?".into(), mb);
        let (plain, rss_plain, table, rss_table, paged) = rt.block_on(async {
            let mut conn = Connection::open(cluster.port, tls.clone()).await?;
            let base = "/api/v1/namespaces/bench/pods";
            let plain = timed_get(&mut conn, &cluster.token, base, "application/json", 5).await?;
            let rss_plain = rss();
            let table = timed_get(&mut conn, &cluster.token, base, KUBECTL_TABLE_ACCEPT, 5).await?;
            let rss_table = rss();
            let paged = paged_table(&mut conn, &cluster.token, base).await?;
            Ok::<_, String>((plain, rss_plain, table, rss_table, paged))
        })?;
        report.info(
            &format!("LIST {n} pods, JSON: time (median of 5)"),
            ms(plain.0),
        );
        report.info(
            &format!("LIST {n} pods, JSON: bytes"),
            format!("{} ({:.1} MB)", plain.1, plain.1 as f64 / 1e6),
        );
        report.info(
            &format!("LIST {n} pods, JSON: throughput"),
            format!("{:.0} MB/s", plain.1 as f64 / 1e6 / plain.0.as_secs_f64()),
        );
        report.info(
            &format!("LIST {n} pods, Table (kubectl Accept): time"),
            ms(table.0),
        );
        report.info(
            &format!("LIST {n} pods, Table: bytes"),
            format!("{} ({:.2} MB)", table.1, table.1 as f64 / 1e6),
        );
        report.info(
            &format!("LIST {n} pods, Table paged limit=500: time"),
            format!("{} ({} pages, {} B)", ms(paged.0), paged.2, paged.1),
        );
        report.info("enclave RSS after 5 JSON LISTs", rss_plain);
        report.info("enclave RSS after 5 Table LISTs too", rss_table);
        report.info("enclave RSS after the paged Table LIST too", rss());
        for (kind, accept) in [
            ("JSON", "application/json"),
            ("Table", KUBECTL_TABLE_ACCEPT),
        ] {
            let (during, lists) = rt.block_on(get_during_lists(
                cluster.port,
                tls.clone(),
                &cluster.token,
                accept,
                scale.phase,
            ))?;
            report.info(
                &format!("GET one pod while {kind} LISTs of {n} run: p50 / p99"),
                format!("{} / {}", ms(during.p50), ms(during.p99)),
            );
            report.info(
                &format!("GET one pod while {kind} LISTs of {n} run: max"),
                format!(
                    "{} ({lists} LISTs, {} GETs)",
                    ms(during.max),
                    during.requests
                ),
            );
        }
        let one = create("bench1", "p", 0, n, 1)?;
        report.info(&format!("create {n} pods, 1 connection"), create_rate(&one));
        total += n;
    }
    if memory {
        let big = scale.memory_pods;
        let fill = create("fill", "p", 0, big.saturating_sub(total), 8)?;
        report.info(
            &format!("create {} more pods, 8 connections", fill.ok),
            create_rate(&fill),
        );
        let rss_big = proc_status_kb(enclave_pid, "VmRSS:").unwrap_or(0);
        report.row(
            &format!("enclave RSS after {big} pods"),
            mb(rss_big),
            "< 300 MB @100k pods",
            if big == 100_000 {
                Verdict::of(rss_big < 300_000)
            } else {
                Verdict::Scaled
            },
        );
        report.info(
            "enclave peak RSS (VmHWM)",
            proc_status_kb(enclave_pid, "VmHWM:").map_or("?".into(), mb),
        );
        report.info(
            "enclave RSS per pod beyond the first batch",
            format!(
                "{:.0} B",
                (rss_big.saturating_sub(rss_small) as f64 * 1000.0)
                    / (big.saturating_sub(n).max(1)) as f64
            ),
        );
        report.info(
            "proxy RSS",
            proc_status_kb(cluster.pid(), "VmRSS:").map_or("?".into(), mb),
        );
    }
    if !scale.quick {
        println!("   (counts are the issue's: 10,000 and 100,000 pods)");
    }
    Ok(())
}

/// Figure 3 (second part): a small byte budget filled until 507; the enclave keeps serving.
fn section_budget(scale: &Scale, report: &mut Report) -> Result<(), String> {
    let budget = format!("--max-store-bytes={}", scale.budget_bytes);
    let cluster = start_cluster(scale, &[budget.as_str()]);
    ensure_namespace(&cluster, "bench")?;
    let enclave_pid = cluster.enclave_pid().ok_or("no enclave pid")?;
    let rt = client_runtime()?;
    let tls = tls_config(&cluster.ca_pem);
    let (template, body_len) = pod_template(&cluster, &rt, "bench", scale.pod_bytes)?;
    let template = Arc::new(template);
    let filled = rt.block_on(create_objects(
        cluster.port,
        tls.clone(),
        &cluster.token,
        &pods_of("bench"),
        template.clone(),
        "p",
        0,
        10_000_000,
        8,
        true,
    ))?;
    report.header(&format!(
        "byte budget: --max-store-bytes={} filled with pods served ~{} B (body {body_len} B) over 8 connections",
        scale.budget_bytes, scale.pod_bytes
    ));
    report.info("pods that fit", filled.ok.to_string());
    report.info("fill rate", create_rate(&filled));
    let first_refusal = filled
        .stopped_by
        .as_ref()
        .map_or("none".to_string(), |r| r.status.to_string());
    report.check(
        "the fill ended with 507",
        filled.stopped_by.as_ref().is_some_and(|r| r.status == 507),
        first_refusal,
    );
    let next = cluster.request(
        "POST",
        "/api/v1/namespaces/bench/pods",
        Some(&template.body("one-more", 0)),
        &[],
    )?;
    let body: serde_json::Value = serde_json::from_slice(&next.body).unwrap_or_default();
    let kind = body.get("kind").and_then(|v| v.as_str()).unwrap_or("");
    let reason = body.get("reason").and_then(|v| v.as_str()).unwrap_or("");
    report.check(
        "next create: 507 Status InsufficientStorage",
        next.status == 507 && kind == "Status" && reason == "InsufficientStorage",
        format!("{} {kind} {reason}", next.status),
    );
    if let Some(message) = body.get("message").and_then(|v| v.as_str()) {
        println!("   message: {message}");
    }
    let get = cluster.request("GET", "/api/v1/namespaces/bench/pods/p-000000", None, &[])?;
    report.check(
        "GET a stored pod afterwards",
        get.status == 200,
        get.status.to_string(),
    );
    let listed = cluster.request("GET", "/api/v1/namespaces/bench/pods", None, &[])?;
    let items = if listed.status == 200 {
        listed
            .json()
            .get("items")
            .and_then(|i| i.as_array())
            .map_or(0, Vec::len)
    } else {
        0
    };
    report.check(
        "LIST afterwards",
        listed.status == 200 && items == filled.ok,
        format!("{} with {items} items", listed.status),
    );
    report.check(
        "enclave process still alive (same pid)",
        alive(enclave_pid) && cluster.enclave_pid() == Some(enclave_pid),
        format!("pid {enclave_pid}"),
    );
    report.info(
        "enclave RSS when full",
        proc_status_kb(enclave_pid, "VmRSS:").map_or("?".into(), mb),
    );
    Ok(())
}

/// Issue 19's table: the same clients, objects and TLS setup against Nautilus (dev mode) and
/// kube-apiserver 1.32 on etcd 3.5 (tmpfs), both on this machine, in alternating rounds.
fn section_peer(scale: &Scale, report: &mut Report) -> Result<(), String> {
    use nautilus_tests::peers::{self, Etcd, KubeApiServer};
    peers::build(&["kube-apiserver", "etcd"]).map_err(|e| e.to_string())?;
    let cluster = start_cluster(scale, &[]);
    let rt = client_runtime()?;
    ensure_namespace(&cluster, "bench")?;
    let (template, body_len) = pod_template(&cluster, &rt, "bench", scale.pod_bytes)?;
    // The same objects on both sides: kube-apiserver runs without a scheduler, so no scheduler
    // may add a status and an event to ours either.
    let template = Arc::new(template.unscheduled());
    let etcd_dir = peers::tmpfs_dir().map_err(|e| format!("tmpfs: {e}"))?;
    let etcd = Etcd::start(etcd_dir.path()).map_err(|e| e.to_string())?;
    let kube = KubeApiServer::start(&etcd, "bench-peer-admin").map_err(|e| e.to_string())?;
    let ours = peer::Server::nautilus("nautilus", &cluster);
    let theirs = peer::Server::kube(&kube, &etcd);
    let both = [&ours, &theirs];
    let full = !scale.quick;
    let pods = scale.list_pods;
    report.header(&format!(
        "peer: Nautilus (dev mode: proxy TLS + enclave) vs kube-apiserver 1.32 + etcd 3.5 on tmpfs; pods served ~{} B (body {body_len} B); Nautilus / kube-apiserver",
        scale.pod_bytes
    ));
    let side_by_side = |o: String, t: String, r: String| format!("{o} vs {t} ({r})");
    rt.block_on(async {
        for server in both {
            server.prepare("bench").await?;
            server
                .call(
                    "POST",
                    &pods_of("bench"),
                    Some(&template.body("get-target", 0)),
                    &[201],
                )
                .await?;
        }
        let get_path = "/api/v1/namespaces/bench/pods/get-target";
        for clients in [1, 32] {
            let [o, t] =
                peer::alternating_gets(&both, get_path, clients, 2, scale.warmup, scale.phase)
                    .await?;
            report.row(
                &format!("GET pod, {clients} client(s): req/s"),
                side_by_side(
                    format!("{:.0}", o.per_sec),
                    format!("{:.0}", t.per_sec),
                    peer::ratio(o.per_sec, t.per_sec),
                ),
                "≥ 3×",
                Verdict::of(o.per_sec >= 3.0 * t.per_sec),
            );
            report.row(
                &format!("GET pod, {clients} client(s): p99"),
                side_by_side(
                    ms(o.p99),
                    ms(t.p99),
                    peer::ratio(o.p99.as_secs_f64(), t.p99.as_secs_f64()),
                ),
                if clients == 1 { "ours < 1 ms" } else { "" },
                if clients == 1 {
                    Verdict::of(o.p99 < Duration::from_millis(1))
                } else {
                    Verdict::Info
                },
            );
        }

        let config_maps = if full { 5_000 } else { 1_000 };
        let cm = Arc::new(BodyTemplate::config_map(1_000));
        let mut rates = [0.0f64; 2];
        // Two rounds of half each, alternating.
        for round in ["a", "b"] {
            for (server, rate) in both.iter().zip(rates.iter_mut()) {
                let path = "/api/v1/namespaces/bench/configmaps";
                *rate += server
                    .creates(
                        path,
                        cm.clone(),
                        &format!("cm-{round}"),
                        config_maps / 2,
                        32,
                    )
                    .await?
                    / 2.0;
            }
        }
        report.row(
            &format!("create {config_maps} ~1 KB ConfigMaps, 32 clients: /s"),
            side_by_side(
                format!("{:.0}", rates[0]),
                format!("{:.0}", rates[1]),
                peer::ratio(rates[0], rates[1]),
            ),
            "≥ 2×",
            Verdict::of(rates[0] >= 2.0 * rates[1]),
        );

        let mut pod_rates = [0.0f64; 2];
        for (server, rate) in both.iter().zip(pod_rates.iter_mut()) {
            *rate = server
                .creates(&pods_of("bench"), template.clone(), "p", pods, 32)
                .await?;
        }
        report.info(
            &format!("create {pods} pods, 32 clients: /s"),
            side_by_side(
                format!("{:.0}", pod_rates[0]),
                format!("{:.0}", pod_rates[1]),
                peer::ratio(pod_rates[0], pod_rates[1]),
            ),
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (rss_ours, rss_theirs) = (ours.rss_kb(), theirs.rss_kb());
        report.row(
            &format!("resident memory with {pods} pods"),
            side_by_side(
                mb(rss_ours),
                format!("{} (apiserver+etcd)", mb(rss_theirs)),
                peer::ratio(rss_ours as f64, rss_theirs as f64),
            ),
            "< 40 MB and ≤ 0.2×",
            if full {
                Verdict::of(rss_ours < 40_000 && rss_ours * 5 <= rss_theirs)
            } else {
                Verdict::Scaled
            },
        );

        for (label, accept) in [
            ("JSON", "application/json"),
            ("Table", KUBECTL_TABLE_ACCEPT),
        ] {
            let mut times = [Vec::new(), Vec::new()];
            let mut bytes = [0usize; 2];
            for _ in 0..2 {
                for (i, server) in both.iter().enumerate() {
                    let (t, b) = server.list(accept, 3).await?;
                    if let (Some(all), Some(size)) = (times.get_mut(i), bytes.get_mut(i)) {
                        all.push(t);
                        *size = b;
                    }
                }
            }
            let [o, t] = times.map(|mut v| {
                v.sort_unstable();
                quantile(&v, 0.5)
            });
            report.row(
                &format!("LIST {pods} pods, {label}: time (bytes)"),
                side_by_side(
                    format!("{} ({:.1} MB)", ms(o), bytes[0] as f64 / 1e6),
                    format!("{} ({:.1} MB)", ms(t), bytes[1] as f64 / 1e6),
                    peer::ratio(o.as_secs_f64(), t.as_secs_f64()),
                ),
                "≤ 0.33×",
                if full {
                    Verdict::of(o.as_secs_f64() * 3.0 <= t.as_secs_f64())
                } else {
                    Verdict::Scaled
                },
            );
        }

        let mut fan = Vec::new();
        let mut cpu = Vec::new();
        for server in both {
            let revision = server.list_revision("bench").await?;
            let watch_path = format!(
                "/api/v1/namespaces/bench/pods?watch=true&resourceVersion={}",
                encode_query(&revision)
            );
            let outcome = watch::fan_out(
                server.port,
                server.tls.clone(),
                server.token.clone(),
                watch_path,
                template.clone(),
                scale.watchers,
                scale.changes,
                scale.change_gap,
                &server.cpu_pids,
            )
            .await?;
            let expected = scale.watchers * scale.changes;
            if outcome.latencies.len() != expected {
                return Err(format!(
                    "{}: {} of {expected} watch deliveries arrived",
                    server.name,
                    outcome.latencies.len()
                ));
            }
            cpu.push(outcome.server_cpu * 1e6 / expected as f64);
            fan.push(outcome.latencies);
        }
        let at = |i: usize, q: f64| fan.get(i).map_or(Duration::ZERO, |l| quantile(l, q));
        let cpu_at = |i: usize| cpu.get(i).copied().unwrap_or_default();
        report.info(
            &format!(
                "watch fan-out, {} watchers: server CPU per delivery",
                scale.watchers
            ),
            side_by_side(
                format!("{:.1} µs", cpu_at(0)),
                format!("{:.1} µs", cpu_at(1)),
                peer::ratio(cpu_at(0), cpu_at(1)),
            ),
        );
        report.info(
            &format!("watch fan-out, {} watchers: p50", scale.watchers),
            side_by_side(
                ms(at(0, 0.5)),
                ms(at(1, 0.5)),
                peer::ratio(at(0, 0.5).as_secs_f64(), at(1, 0.5).as_secs_f64()),
            ),
        );
        report.row(
            &format!("watch fan-out, {} watchers: p99", scale.watchers),
            side_by_side(
                ms(at(0, 0.99)),
                ms(at(1, 0.99)),
                peer::ratio(at(0, 0.99).as_secs_f64(), at(1, 0.99).as_secs_f64()),
            ),
            "< 10 ms and < theirs",
            if full {
                Verdict::of(at(0, 0.99) < Duration::from_millis(10) && at(0, 0.99) < at(1, 0.99))
            } else {
                Verdict::Scaled
            },
        );
        Ok::<_, String>(())
    })?;

    let (nodes, sched_pods) = if full { (1_000, 10_000) } else { (100, 1_000) };
    // The scheduler's client is raised from its default 50 requests/s (which alone would cap
    // it at 50 bindings/s) so that the figure is the scheduler's, not its rate limiter's.
    let scheduler = peers::KubeScheduler::start_with(
        &kube.kubeconfig,
        &["--kube-api-qps=100000", "--kube-api-burst=100000"],
    )
    .map_err(|e| e.to_string())?;
    // A fresh cluster whose watch history is as deep as kube-apiserver's watch cache for pods
    // (which grows to 100k+ events): the progress watch follows 20,000 writes (creates and
    // bindings) and would otherwise fall out of the default 10,000-event ring.
    let sched_cluster = start_cluster(
        scale,
        &["--watch-ring=200000", "--watch-ring-bytes=1073741824"],
    );
    let ours_sched = peer::Server::nautilus("nautilus", &sched_cluster);
    let mut placed = Vec::new();
    for server in [&ours_sched, &theirs] {
        placed.push(rt.block_on(peer::schedule(server, nodes, sched_pods))?);
    }
    drop(scheduler);
    let rate = |i: usize| {
        placed
            .get(i)
            .map_or(0.0, |&(bound, secs)| bound as f64 / secs.max(1e-9))
    };
    let detail = |i: usize| {
        placed.get(i).map_or(String::new(), |&(bound, secs)| {
            format!("{:.0}/s ({bound} bound in {secs:.2} s)", rate(i))
        })
    };
    report.row(
        &format!("{sched_pods} pods onto {nodes} nodes, created at 32 clients: pods/s"),
        side_by_side(detail(0), detail(1), peer::ratio(rate(0), rate(1))),
        "≥ 5×",
        if full {
            Verdict::of(rate(0) >= 5.0 * rate(1))
        } else {
            Verdict::Scaled
        },
    );
    Ok(())
}
