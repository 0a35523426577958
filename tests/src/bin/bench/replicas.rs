//! Issue 17's figures in one run on loopback: `dev --replicas 3` (three enclave replicas on
//! openraft, each on its own sealed log) beside a single durable enclave and a 3-member etcd
//! cluster whose data sits on the same disk: the leader's `kill -9` to the first acknowledged
//! write, a follower's catch-up after writes it missed, durable creates, and GET latency with
//! the read index.

use std::sync::Arc;
use std::time::{Duration, Instant};

use nautilus_tests::DevCluster;
use nautilus_tests::client::Connection;
use nautilus_tests::peers::{self, EtcdCluster};

use crate::load::{BodyTemplate, Latency, auth};
use crate::peer::{self, Server};
use crate::{Report, Scale, Verdict, ms};

const REPLICAS: usize = 3;
const NAMESPACE: &str = "bench";
/// How long the replicas may take to all be voters again after a restart (a restarted replica
/// waits for dev's backoff, replays its log and joins under a new id).
const REJOIN_LIMIT: Duration = Duration::from_secs(120);
/// The pause between write attempts while there is no leader.
const RETRY_GAP: Duration = Duration::from_millis(10);

/// Leader kills for the failover figure.
fn kills(scale: &Scale) -> usize {
    if scale.quick { 5 } else { 20 }
}

/// Writes a stopped follower misses before it is restarted.
fn missed_writes(scale: &Scale) -> usize {
    if scale.quick { 5_000 } else { 50_000 }
}

/// ConfigMap creates per server in the 32-client phase (two alternating rounds of half).
fn creates(scale: &Scale) -> usize {
    if scale.quick { 2_000 } else { 10_000 }
}

/// What a replica's `/readyz?verbose` line says about it.
#[derive(Debug, Clone)]
struct ReplicaState {
    /// `[+]`: it leads or follows a known leader.
    ready: bool,
    role: String,
    term: u64,
    /// The last log index it applied.
    applied: u64,
}

impl ReplicaState {
    fn parse(line: &str) -> Option<Self> {
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|part| part.strip_prefix(name)?.strip_prefix('='))
        };
        Some(Self {
            ready: line.starts_with("[+]"),
            role: field("role")?.to_string(),
            term: field("term")?.parse().ok()?,
            applied: field("applied")?.parse().ok()?,
        })
    }

    fn is_voter(&self) -> bool {
        self.ready && (self.role == "leader" || self.role == "follower")
    }
}

fn state(cluster: &DevCluster, slot: usize) -> Option<ReplicaState> {
    ReplicaState::parse(&cluster.replica_line(slot)?)
}

/// Waits until every replica is a ready voter; the leader's slot and term.
fn wait_for_voters(cluster: &DevCluster, what: &str) -> Result<(usize, u64), String> {
    let deadline = Instant::now() + REJOIN_LIMIT;
    loop {
        let states: Vec<Option<ReplicaState>> =
            (0..REPLICAS).map(|slot| state(cluster, slot)).collect();
        let leader = states
            .iter()
            .enumerate()
            .filter_map(|(slot, s)| Some((slot, s.as_ref()?)))
            .filter(|(_, s)| s.ready && s.role == "leader")
            .max_by_key(|(_, s)| s.term);
        if states.iter().flatten().filter(|s| s.is_voter()).count() == REPLICAS
            && let Some((slot, s)) = leader
        {
            return Ok((slot, s.term));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{what}: the replicas were not all voters within {} s: {states:?}",
                REJOIN_LIMIT.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The highest term any replica reports.
fn max_term(cluster: &DevCluster) -> u64 {
    (0..REPLICAS)
        .filter_map(|slot| state(cluster, slot))
        .map(|s| s.term)
        .max()
        .unwrap_or(0)
}

/// Waits until `dev` has started a new process for `slot` (its pid file changed); when it
/// noticed.
fn wait_restarted(cluster: &DevCluster, slot: usize, old: u32) -> Result<Instant, String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if cluster.replica_pid(slot).is_some_and(|pid| pid != old) {
            return Ok(Instant::now());
        }
        if Instant::now() > deadline {
            return Err(format!("dev did not restart replica {slot} within 60 s"));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Counts leader elections that no kill caused: the term any replica reports, before and
/// after each phase in which nothing was killed.
#[derive(Default)]
struct QuietTerms {
    elections: u64,
    phases: Vec<String>,
}

impl QuietTerms {
    fn phase<T>(
        &mut self,
        cluster: &DevCluster,
        name: &str,
        run: impl FnOnce() -> Result<T, String>,
    ) -> Result<T, String> {
        let before = max_term(cluster);
        let out = run()?;
        let after = max_term(cluster);
        let elections = after.saturating_sub(before);
        if elections > 0 {
            self.phases
                .push(format!("{name}: term {before} -> {after}"));
        }
        self.elections += elections;
        Ok(out)
    }
}

pub(crate) fn section(scale: &Scale, report: &mut Report) -> Result<(), String> {
    peers::build(&["etcd"]).map_err(|e| e.to_string())?;
    let enclave_args: Vec<&str> = scale.enclave_args.iter().map(String::as_str).collect();
    let three = DevCluster::start_opts(&["--replicas", "3"], &enclave_args);
    wait_for_voters(&three, "start")?;
    report.header(&format!(
        "replicas: dev --replicas 3 (openraft, each replica on its own sealed log, fsync by the proxy) vs 1 durable replica vs a 3-member etcd; all on {}",
        crate::durable::disk_of(three.dir.path())
    ));
    let rt = crate::client_runtime()?;
    let ours = Server::nautilus("3 replicas", &three);
    rt.block_on(ours.prepare(NAMESPACE))?;
    let mut quiet = QuietTerms::default();

    // 1. The leader's kill -9 to the first acknowledged write, on a small cluster first.
    let count = kills(scale);
    let (mut failovers, mut kill_elections, mut refusals) = (Vec::new(), 0u64, Vec::new());
    for k in 0..count {
        let (leader, term) = wait_for_voters(&three, &format!("before kill {k}"))?;
        let old = three
            .replica_pid(leader)
            .ok_or("no pid file for the leader")?;
        nautilus_tests::signal(old, libc::SIGKILL);
        let killed = Instant::now();
        let refused = rt
            .block_on(write_until_acknowledged(&ours, &format!("failover-{k}")))
            .map_err(|e| {
                let states: Vec<Option<String>> =
                    (0..REPLICAS).map(|slot| three.replica_line(slot)).collect();
                format!("kill {k} of slot {leader}: {e}; the replicas now: {states:?}")
            })?;
        failovers.push(killed.elapsed());
        refusals.push(refused);
        wait_restarted(&three, leader, old)?;
        let (_, after) = wait_for_voters(&three, &format!("after kill {k}"))?;
        kill_elections += after.saturating_sub(term);
    }
    failovers.sort_unstable();
    let p99 = crate::load::quantile(&failovers, 0.99);
    report.row(
        &format!("leader kill -9 -> first acknowledged write, {count} kills: p50 / p99 / max"),
        format!(
            "{} / {} / {} ({:.2}× the goal)",
            ms(crate::load::quantile(&failovers, 0.5)),
            ms(p99),
            ms(failovers.last().copied().unwrap_or_default()),
            p99.as_secs_f64()
        ),
        "p99 ≤ 1 s",
        Verdict::of(p99 <= Duration::from_secs(1)),
    );
    // One election per kill; more (a split vote, a rejoining replica disturbing the leader)
    // are leader changes the kill did not need.
    report.info(
        "terms gained from each kill to all voters again",
        format!(
            "{kill_elections} for {count} kills ({} beyond one each); refused attempts per failover: {}",
            kill_elections.saturating_sub(count as u64),
            refusals.join(", ")
        ),
    );

    // The comparison servers, started after the kills so that they do not share the machine
    // with the failovers.
    let one = DevCluster::start_with(&enclave_args);
    let single = Server::nautilus("1 replica", &one);
    let etcd_dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let etcd = EtcdCluster::start(etcd_dir.path(), REPLICAS).map_err(|e| e.to_string())?;
    rt.block_on(single.prepare(NAMESPACE))?;

    // 4. GET one ConfigMap: a linearizable read on three replicas (read index) vs one.
    quiet.phase(&three, "GETs", || gets(scale, report, &rt, &ours, &single))?;

    // 3. Durable creates, 32 clients: three replicas vs one vs the etcd cluster's puts.
    quiet.phase(&three, "creates", || {
        durable_creates(scale, report, &rt, [&ours, &single], &etcd)
    })?;
    drop(etcd);
    drop(one);

    // 2. A follower that missed the writes catches up after its restart.
    catch_up(scale, report, &rt, &three, &ours, &mut quiet)?;

    report.row(
        "leader changes no kill caused (terms gained in quiet phases)",
        if quiet.phases.is_empty() {
            "0".to_string()
        } else {
            format!("{} ({})", quiet.elections, quiet.phases.join("; "))
        },
        "0",
        Verdict::of(quiet.elections == 0),
    );
    log_findings(report, &three, count);
    Ok(())
}

/// Creates ConfigMap `name` through the proxy on fresh connections, `RETRY_GAP` apart, until
/// the answer is 201 (or 409: an earlier attempt with an unknown outcome was applied). Returns
/// what the refused attempts got, e.g. `503×12 connect×1`.
async fn write_until_acknowledged(server: &Server, name: &str) -> Result<String, String> {
    let body = format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}"}},"data":{{"k":"{name}"}}}}"#
    );
    let path = format!("/api/v1/namespaces/{NAMESPACE}/configmaps");
    let headers = auth(&server.token);
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut refused, mut last): (Vec<(String, usize)>, String) = (Vec::new(), String::new());
    loop {
        let attempt = async {
            let mut conn = Connection::open(server.port, server.tls.clone())
                .await
                .map_err(|_| "connect".to_string())?;
            conn.send("POST", &path, Some(body.as_bytes()), &headers)
                .await
                .map_err(|_| "broken".to_string())
        };
        let outcome = tokio::time::timeout(Duration::from_secs(10), attempt)
            .await
            .unwrap_or_else(|_| Err("timeout".to_string()));
        let what = match outcome {
            Ok(reply) if matches!(reply.status, 201 | 409) => {
                return Ok(if refused.is_empty() {
                    "0".to_string()
                } else {
                    refused
                        .iter()
                        .map(|(what, n)| format!("{what}×{n}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                });
            }
            Ok(reply) => {
                last = String::from_utf8_lossy(&reply.body)
                    .chars()
                    .take(300)
                    .collect();
                reply.status.to_string()
            }
            Err(e) => e,
        };
        match refused.iter_mut().find(|(w, _)| *w == what) {
            Some((_, n)) => *n += 1,
            None => refused.push((what, 1)),
        }
        if Instant::now() > deadline {
            return Err(format!(
                "no write acknowledged within 60 s: {refused:?}, the last answer: {last}"
            ));
        }
        tokio::time::sleep(RETRY_GAP).await;
    }
}

/// GET one ~1 KB ConfigMap at 1 and 32 clients, three replicas and one in alternating rounds.
fn gets(
    scale: &Scale,
    report: &mut Report,
    rt: &tokio::runtime::Runtime,
    three: &Server,
    one: &Server,
) -> Result<(), String> {
    let rounds: u32 = if scale.quick { 2 } else { 3 };
    let path = format!("/api/v1/namespaces/{NAMESPACE}/configmaps/get-target");
    let body = BodyTemplate::config_map(1_000).body("get-target", 0);
    for server in [three, one] {
        rt.block_on(server.call(
            "POST",
            &format!("/api/v1/namespaces/{NAMESPACE}/configmaps"),
            Some(&body),
            &[201, 409],
        ))?;
    }
    for clients in [1usize, 32] {
        let (mut ours, mut theirs) = (Refusals::default(), Refusals::default());
        let (mut ours_samples, mut theirs_samples) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            ours_samples.extend(rt.block_on(gets_counting_refusals(
                three, &path, clients, scale, &mut ours,
            ))?);
            theirs_samples.extend(rt.block_on(gets_counting_refusals(
                one,
                &path,
                clients,
                scale,
                &mut theirs,
            ))?);
        }
        let measured = scale.phase * rounds;
        let (ours_latency, theirs_latency) = (
            Latency::of(ours_samples, measured),
            Latency::of(theirs_samples, measured),
        );
        let figure = |l: &Latency, refusals: &Refusals| {
            format!(
                "p50 {} p99 {}, {:.0}/s{}",
                ms(l.p50),
                ms(l.p99),
                l.per_sec,
                refusals.describe()
            )
        };
        let name = format!("GET one ConfigMap, {clients} client(s), 3 replicas (read index)");
        if clients == 1 {
            report.row(
                &name,
                figure(&ours_latency, &ours),
                "p99 < 1 ms",
                Verdict::of(ours_latency.p99 < Duration::from_millis(1) && ours.count == 0),
            );
        } else {
            report.row(
                &name,
                figure(&ours_latency, &ours),
                "every answer 200",
                Verdict::of(ours.count == 0),
            );
        }
        let (ours, theirs) = (ours_latency, theirs_latency);
        report.info(
            "  the same on 1 replica (3 replicas' p99 ratio, req/s ratio)",
            format!(
                "{} ({}, {})",
                figure(&theirs, &Refusals::default()),
                peer::ratio(ours.p99.as_secs_f64(), theirs.p99.as_secs_f64()),
                peer::ratio(ours.per_sec, theirs.per_sec)
            ),
        );
    }
    Ok(())
}

/// The GETs a server answered with something other than 200: how many, and the first.
#[derive(Default)]
struct Refusals {
    count: usize,
    first: Option<String>,
}

impl Refusals {
    fn describe(&self) -> String {
        match &self.first {
            None => String::new(),
            Some(first) => format!(
                "; {} refused, first: {}",
                self.count,
                first.chars().take(160).collect::<String>()
            ),
        }
    }
}

/// Closed-loop GETs of `path` over `clients` connections (as `load::closed_loop_get`), where
/// an answer other than 200 is counted in `refusals` instead of ending the run: a leader
/// refuses a read it cannot confirm it still leads for, and how often is a figure too.
async fn gets_counting_refusals(
    server: &Server,
    path: &str,
    clients: usize,
    scale: &Scale,
    refusals: &mut Refusals,
) -> Result<Vec<Duration>, String> {
    let mut conns = Vec::with_capacity(clients);
    for _ in 0..clients {
        conns.push(Connection::open(server.port, server.tls.clone()).await?);
    }
    let measure_from = Instant::now() + scale.warmup;
    let end = measure_from + scale.phase;
    let headers = Arc::new(auth(&server.token));
    let path = Arc::new(path.to_string());
    let mut tasks = Vec::with_capacity(clients);
    for mut conn in conns {
        let (headers, path) = (headers.clone(), path.clone());
        tasks.push(tokio::spawn(async move {
            let (mut samples, mut refused, mut first) = (Vec::new(), 0usize, None);
            loop {
                let t = Instant::now();
                if t >= end {
                    break;
                }
                let reply = conn.send("GET", &path, None, &headers).await?;
                let took = t.elapsed();
                if reply.status != 200 {
                    refused += 1;
                    first.get_or_insert_with(|| {
                        format!("{} {}", reply.status, String::from_utf8_lossy(&reply.body))
                    });
                } else if t >= measure_from {
                    samples.push(took);
                }
            }
            Ok::<_, String>((samples, refused, first))
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        let (samples, refused, first) = task.await.map_err(|e| e.to_string())??;
        all.extend(samples);
        refusals.count += refused;
        if refusals.first.is_none() {
            refusals.first = first;
        }
    }
    Ok(all)
}

/// Durable ~1 KB ConfigMap creates over 32 clients on three replicas and on one, beside puts
/// of 1 KB values to the etcd cluster's leader, in two alternating rounds.
fn durable_creates(
    scale: &Scale,
    report: &mut Report,
    rt: &tokio::runtime::Runtime,
    servers: [&Server; 2],
    etcd: &EtcdCluster,
) -> Result<(), String> {
    let total = creates(scale);
    // The leader takes puts without a forwarding hop: etcd's best case.
    let leader = etcd.leader_url().ok_or("the etcd cluster has no leader")?;
    let cm = Arc::new(BodyTemplate::config_map(1_000));
    let path = format!("/api/v1/namespaces/{NAMESPACE}/configmaps");
    let (mut rates, mut puts) = ([0.0f64; 2], 0.0);
    for round in ["a", "b"] {
        for (server, rate) in servers.iter().zip(rates.iter_mut()) {
            *rate += rt.block_on(server.creates(
                &path,
                cm.clone(),
                &format!("create-{round}"),
                total / 2,
                32,
            ))? / 2.0;
        }
        puts += rt
            .block_on(crate::durable::etcd_puts(&leader, total / 2, 32))?
            .0
            / 2.0;
    }
    let [three, one] = rates;
    report.row(
        &format!("create {total} ~1 KB ConfigMaps, 32 clients: 3 replicas vs 1, /s"),
        format!("{three:.0} vs {one:.0} ({})", peer::ratio(three, one)),
        "≥ 0.5× 1 replica",
        Verdict::of(three >= 0.5 * one),
    );
    report.row(
        "  3 replicas vs 3-member etcd puts (to its leader), /s",
        format!("{three:.0} vs {puts:.0} ({})", peer::ratio(three, puts)),
        "≥ 1.5× etcd's puts",
        Verdict::of(three >= 1.5 * puts),
    );
    Ok(())
}

/// A follower is stopped (SIGSTOP: it answers nothing, like a dead host) while the writes go
/// through the proxy over 32 clients, then killed with `kill -9`; from its restarted process's
/// start (the pid file changing, dev's backoff left out) until it says it is a follower that
/// has applied as far as the leader had at that moment.
fn catch_up(
    scale: &Scale,
    report: &mut Report,
    rt: &tokio::runtime::Runtime,
    cluster: &DevCluster,
    server: &Server,
    quiet: &mut QuietTerms,
) -> Result<(), String> {
    let writes = missed_writes(scale);
    let (leader, _) = wait_for_voters(cluster, "before the catch-up")?;
    let follower = (0..REPLICAS).find(|&s| s != leader).ok_or("no follower")?;
    let old = cluster
        .replica_pid(follower)
        .ok_or("no pid file for the follower")?;
    let cm = Arc::new(BodyTemplate::config_map(1_000));
    let path = format!("/api/v1/namespaces/{NAMESPACE}/configmaps");
    nautilus_tests::signal(old, libc::SIGSTOP);
    let written = quiet.phase(cluster, "writes while a follower is down", || {
        rt.block_on(server.creates(&path, cm, "missed", writes, 32))
    });
    nautilus_tests::signal(old, libc::SIGKILL);
    let rate = written?;
    report.info(
        &format!("{writes} creates, 32 clients, one follower down: /s"),
        format!("{rate:.0}"),
    );
    let started = wait_restarted(cluster, follower, old)?;
    let (mut answered, mut voter) = (None, None);
    let deadline = started + REJOIN_LIMIT;
    let (caught_up, applied) = loop {
        let leader_applied = (0..REPLICAS)
            .filter(|&s| s != follower)
            .filter_map(|s| state(cluster, s))
            .find(|s| s.ready && s.role == "leader")
            .map(|s| s.applied);
        let own = state(cluster, follower);
        if let Some(own) = &own {
            answered.get_or_insert_with(|| started.elapsed());
            if own.is_voter() {
                voter.get_or_insert_with(|| started.elapsed());
                if let Some(target) = leader_applied
                    && own.applied >= target
                {
                    break (started.elapsed(), own.applied);
                }
            }
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the restarted follower did not catch up within {} s: {own:?}, leader applied {leader_applied:?}",
                REJOIN_LIMIT.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let goal = Duration::from_secs(10);
    report.row(
        &format!("follower restarted after {writes} writes: start -> caught up"),
        format!(
            "{} ({:.2}× the goal)",
            ms(caught_up),
            caught_up.as_secs_f64() / goal.as_secs_f64()
        ),
        "≤ 10 s at 50,000",
        if scale.quick {
            Verdict::Scaled
        } else {
            Verdict::of(caught_up <= goal)
        },
    );
    report.info(
        "  its first answer / a voter again / caught up (applied index)",
        format!(
            "{} / {} / {} ({applied})",
            answered.map_or("?".into(), ms),
            voter.map_or("?".into(), ms),
            ms(caught_up)
        ),
    );
    Ok(())
}

/// Error and warning lines in the replicas' logs beyond the exits the kills caused.
fn log_findings(report: &mut Report, cluster: &DevCluster, kills: usize) {
    let logs = cluster.logs();
    let level = |l: &str, level: &str| l.split_whitespace().take(4).any(|w| w == level);
    let exits = logs
        .lines()
        .filter(|l| l.contains("the enclave exited unexpectedly"))
        .count();
    let others: Vec<&str> = logs
        .lines()
        .filter(|l| level(l, "ERROR") || level(l, "WARN"))
        .filter(|l| !l.contains("the enclave exited unexpectedly"))
        .collect();
    report.info(
        "replica exits dev saw (kills + the catch-up's) / other ERROR and WARN lines",
        format!("{exits} (expected {}) / {}", kills + 1, others.len()),
    );
    let mut seen: Vec<String> = Vec::new();
    for line in others {
        let message: String = line
            .split_whitespace()
            .skip_while(|w| *w != "ERROR" && *w != "WARN")
            .collect::<Vec<_>>()
            .join(" ");
        let key: String = message.chars().take(60).collect();
        if !seen.iter().any(|s| s.starts_with(&key)) {
            println!("   log: {}", message.chars().take(240).collect::<String>());
            seen.push(message);
        }
        if seen.len() >= 8 {
            break;
        }
    }
}
