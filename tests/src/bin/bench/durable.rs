//! Issue 16's figures, side by side in one run on the same real disk (not tmpfs): Nautilus with
//! its durable log (every acknowledged write sealed and fsync'd by the host proxy) beside etcd
//! 3.5 with its default fsync — its own puts through its HTTP gateway, and kube-apiserver 1.32
//! storing in it — then the enclave's restart to ready with everything written.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use http_body_util::{BodyExt as _, Full};
use nautilus_tests::DevCluster;
use nautilus_tests::peers::{self, Etcd, KubeApiServer};

use nautilus_tests::client::Connection;

use crate::load::{BodyTemplate, auth, quantile};
use crate::peer;
use crate::{Report, Scale, Verdict, ms};

/// ConfigMap creates per server in the 32-client phase (two alternating rounds of half).
fn creates(scale: &Scale) -> usize {
    if scale.quick { 2_000 } else { 10_000 }
}

/// Objects in the cluster when the enclave is killed for the restart figure.
fn restart_objects(scale: &Scale) -> usize {
    if scale.quick { 10_000 } else { 100_000 }
}

pub(crate) fn section(scale: &Scale, report: &mut Report) -> Result<(), String> {
    peers::build(&["kube-apiserver", "etcd"]).map_err(|e| e.to_string())?;
    let cluster = DevCluster::start_with(
        &scale
            .enclave_args
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    let etcd_dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let etcd = Etcd::start(etcd_dir.path()).map_err(|e| e.to_string())?;
    let kube = KubeApiServer::start(&etcd, "bench-durable-admin").map_err(|e| e.to_string())?;
    let ours = peer::Server::nautilus("nautilus", &cluster);
    let theirs = peer::Server::kube(&kube, &etcd);
    let both = [&ours, &theirs];
    report.header(&format!(
        "durable: Nautilus (sealed log, fsync by the proxy) vs etcd 3.5 (default fsync) and kube-apiserver on it; both on {} (not tmpfs)",
        disk_of(etcd_dir.path())
    ));
    let rt = crate::client_runtime()?;
    let side_by_side = |o: String, t: String, r: String| format!("{o} vs {t} ({r})");
    let total = creates(scale);
    rt.block_on(async {
        for server in both {
            server.prepare("bench").await?;
        }
        let cm = Arc::new(BodyTemplate::config_map(1_000));
        let path = "/api/v1/namespaces/bench/configmaps";
        // Two rounds, etcd's puts in each beside the creates, so that a noisy moment falls on
        // all three.
        let (mut rates, mut put_rate) = ([0.0f64; 2], 0.0);
        for round in ["a", "b"] {
            for (server, rate) in both.iter().zip(rates.iter_mut()) {
                *rate += server
                    .creates(path, cm.clone(), &format!("cm-{round}"), total / 2, 32)
                    .await?
                    / 2.0;
            }
            put_rate += etcd_puts(&etcd.url, total / 2, 32).await?.0 / 2.0;
        }
        report.row(
            &format!("create {total} ~1 KB ConfigMaps, 32 clients: /s (etcd: puts)"),
            format!(
                "{:.0} vs etcd puts {:.0} ({}); kube-apiserver {:.0}",
                rates[0],
                put_rate,
                peer::ratio(rates[0], put_rate),
                rates[1]
            ),
            "≥ 1.5× etcd's puts",
            Verdict::of(rates[0] >= 1.5 * put_rate),
        );
        report.info(
            "the same creates beside kube-apiserver on that etcd",
            side_by_side(
                format!("{:.0}", rates[0]),
                format!("{:.0}", rates[1]),
                peer::ratio(rates[0], rates[1]),
            ),
        );
        // One client, in alternating rounds so that a noisy moment falls on all three.
        let one = if scale.quick { 300 } else { 1_000 };
        let (mut o, mut t, mut e) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..3 {
            o.extend(one_client_creates(&ours, &format!("one{round}"), one / 3).await?);
            t.extend(one_client_creates(&theirs, &format!("one{round}"), one / 3).await?);
            e.extend(etcd_puts(&etcd.url, one / 3, 1).await?.1);
        }
        for v in [&mut o, &mut t, &mut e] {
            v.sort_unstable();
        }
        let (ours_p99, theirs_p99, put_p99) =
            (quantile(&o, 0.99), quantile(&t, 0.99), quantile(&e, 0.99));
        report.row(
            "create p99, 1 client (etcd: put p99)",
            format!(
                "{} vs etcd put {} ({}); kube-apiserver {}",
                ms(ours_p99),
                ms(put_p99),
                peer::ratio(ours_p99.as_secs_f64(), put_p99.as_secs_f64()),
                ms(theirs_p99)
            ),
            "≤ etcd's put p99",
            Verdict::of(ours_p99 <= put_p99),
        );
        report.info(
            "create p50, 1 client (etcd: put p50)",
            format!(
                "{} vs etcd put {}; kube-apiserver {}",
                ms(quantile(&o, 0.5)),
                ms(quantile(&e, 0.5)),
                ms(quantile(&t, 0.5))
            ),
        );
        // Fill the cluster for the restart figure.
        let have = total + one / 3 * 3;
        let fill = restart_objects(scale).saturating_sub(have);
        if fill > 0 {
            ours.creates(path, cm.clone(), "fill", fill, 32).await?;
        }
        Ok::<_, String>(())
    })?;
    drop(kube);
    drop(etcd);
    let objects = restart_objects(scale);
    // The RSS cost of persistence: the same objects in a cluster kept only in memory.
    let in_memory = DevCluster::start_opts(
        &["--in-memory"],
        &scale
            .enclave_args
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    let bare = peer::Server::nautilus("nautilus --in-memory", &in_memory);
    rt.block_on(async {
        bare.prepare("bench").await?;
        let cm = Arc::new(BodyTemplate::config_map(1_000));
        bare.creates(
            "/api/v1/namespaces/bench/configmaps",
            cm,
            "fill",
            objects,
            32,
        )
        .await
        .map(drop)
    })?;
    std::thread::sleep(Duration::from_secs(2));
    let (durable_rss, bare_rss) = (ours.rss_kb(), bare.rss_kb());
    report.row(
        &format!("enclave RSS with ~{objects} objects: durable vs in memory"),
        format!(
            "{} vs {} ({:+.1} %)",
            crate::mb(durable_rss),
            crate::mb(bare_rss),
            (durable_rss as f64 / bare_rss.max(1) as f64 - 1.0) * 100.0
        ),
        "< +10 % at 100,000",
        if scale.quick {
            Verdict::Scaled
        } else {
            Verdict::of(durable_rss * 10 < bare_rss * 11)
        },
    );
    drop(in_memory);
    let rss_before = cluster
        .enclave_pid()
        .and_then(|pid| crate::proc_status_kb(pid, "VmRSS:"));
    let (ready, replay_millis) = kill_and_wait_ready(&cluster)?;
    restart_row(
        report,
        scale,
        &format!("restart to ready after kill -9, ~{objects} objects in the log"),
        (ready, &replay_millis),
        ("< 5 s at 100,000", Duration::from_secs(5)),
    );
    let pid = cluster.enclave_pid();
    let rss_after = pid.and_then(|pid| crate::proc_status_kb(pid, "VmRSS:"));
    // The restarted enclave's peak: what its memory must hold while it replays.
    let peak = pid.and_then(|pid| crate::proc_status_kb(pid, "VmHWM:"));
    report.info(
        "enclave RSS before the kill / after the replay (its peak)",
        format!(
            "{} / {} ({})",
            rss_before.map_or("?".into(), crate::mb),
            rss_after.map_or("?".into(), crate::mb),
            peak.map_or("?".into(), crate::mb)
        ),
    );
    Ok(())
}

/// `kill -9` of the enclave, then the time until dev's restarted enclave answers `/readyz`,
/// and the replay's own milliseconds from its log line.
fn kill_and_wait_ready(cluster: &DevCluster) -> Result<(Duration, String), String> {
    let old = cluster.enclave_pid().ok_or("no enclave")?;
    nautilus_tests::signal(old, libc::SIGKILL);
    let killed = Instant::now();
    let deadline = killed + Duration::from_secs(300);
    // dev restarts the enclave after a 1 s backoff; ready once /readyz answers 200.
    let ready = loop {
        if Instant::now() > deadline {
            return Err("the enclave did not come back within 300 s".into());
        }
        let restarted = cluster.enclave_pid().is_some_and(|pid| pid != old);
        if restarted
            && cluster
                .request("GET", "/readyz", None, &[])
                .map(|r| r.status)
                == Ok(200)
        {
            break killed.elapsed();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let replayed = cluster
        .logs()
        .lines()
        .rev()
        .find(|l| l.contains("cluster state replayed"))
        .map(str::to_string)
        .unwrap_or_default();
    let millis = log_field(&replayed, "millis").unwrap_or("?").to_string();
    Ok((ready, millis))
}

/// The value of `name=` in a log line.
fn log_field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    line.split(&format!("{name}="))
        .nth(1)?
        .split_whitespace()
        .next()
}

/// A restart-to-ready row: the time, the replay's own milliseconds, against `goal`.
fn restart_row(
    report: &mut Report,
    scale: &Scale,
    figure: &str,
    (ready, replay_millis): (Duration, &str),
    (goal_text, goal): (&str, Duration),
) {
    report.row(
        figure,
        format!(
            "{} (replay {replay_millis} ms; dev waits 1 s before restarting)",
            ms(ready)
        ),
        goal_text,
        if scale.quick {
            Verdict::Scaled
        } else {
            Verdict::of(ready < goal)
        },
    );
}

/// Issue 16's snapshot figures: a restart from a snapshot of 10,000 objects plus 50,000 log
/// records after it, and the admin's GET and create p99 while snapshots are being taken beside
/// the same load without any.
pub(crate) fn snapshots(scale: &Scale, report: &mut Report) -> Result<(), String> {
    let (objects, records) = if scale.quick {
        (2_000, 10_000)
    } else {
        (10_000, 50_000)
    };
    report.header(&format!(
        "durable snapshots: restart from {objects} objects in a snapshot + {records} records; GET/create p99 while snapshots are taken"
    ));
    let rt = crate::client_runtime()?;
    let args = |every: usize| {
        let mut args: Vec<String> = scale.enclave_args.clone();
        args.push(format!("--snapshot-every={every}"));
        args
    };
    let start = |dir: Option<tempfile::TempDir>, args: &[String]| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        match dir {
            Some(dir) => DevCluster::start_in(dir, &[], &args),
            None => DevCluster::start_with(&args),
        }
    };
    // A snapshot once the objects are in (it covers them all), then a restart that will take
    // none while the records are written.
    let first = start(None, &args(objects));
    rt.block_on(create_configmaps(&first, objects))?;
    wait_for_log(&first, "snapshot written", Duration::from_secs(60))?;
    let second = start(Some(first.stop()), &args(10 * (objects + records)));
    let done = Arc::new(std::sync::atomic::AtomicU64::new(0));
    rt.block_on(crate::hostile::patch_configmaps(
        second.port,
        nautilus_tests::client::tls_config(&second.ca_pem),
        second.token.clone(),
        objects,
        records as u64,
        Duration::ZERO,
        Arc::new(std::sync::atomic::AtomicBool::new(false)),
        done.clone(),
        "record",
    ));
    let patched = done.load(std::sync::atomic::Ordering::Relaxed);
    if patched < records as u64 {
        return Err(format!("{patched} of {records} patches answered 200"));
    }
    let (ready, replay_millis) = kill_and_wait_ready(&second)?;
    let replayed = second
        .logs()
        .lines()
        .rev()
        .find(|l| l.contains("cluster state replayed"))
        .map(str::to_string)
        .unwrap_or_default();
    if !replayed.contains("snapshot_revision=") {
        return Err(format!(
            "the restart did not start from a snapshot: {replayed}"
        ));
    }
    let field = |name: &str| log_field(&replayed, name).unwrap_or("?").to_string();
    report.info(
        "the restart's replay",
        format!(
            "snapshot at revision {}, {} records, {} objects",
            field("snapshot_revision"),
            field("records"),
            field("objects")
        ),
    );
    restart_row(
        report,
        scale,
        &format!("restart to ready after kill -9: {objects}-object snapshot + {records} records"),
        (ready, &replay_millis),
        ("< 3 s", Duration::from_secs(3)),
    );
    drop(second);

    // The admin's GETs and creates at 100,000 objects: once with no snapshot, once with a
    // snapshot due every 2,000 entries, so that one is being taken nearly all the time.
    let filled = restart_objects(scale);
    let load = if scale.quick {
        Duration::from_secs(10)
    } else {
        Duration::from_secs(30)
    };
    let mut seen = Vec::new();
    for every in [0, 2_000] {
        let cluster = start(None, &args(every));
        rt.block_on(create_configmaps(&cluster, filled))?;
        crate::hostile::create_target(&cluster)?;
        let before = snapshot_lines(&cluster).len();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let tls = nautilus_tests::client::tls_config(&cluster.ca_pem);
        let (legit, load_patches) = rt.block_on(async {
            let legit = crate::hostile::spawn_legit(
                cluster.port,
                tls.clone(),
                cluster.token.clone(),
                stop.clone(),
            );
            // A steady background write load, 2,000 patches a second (a third of what the
            // server takes), keeps the journal moving and the snapshots due.
            let patches = Arc::new(std::sync::atomic::AtomicU64::new(0));
            let writer = tokio::spawn(crate::hostile::patch_configmaps(
                cluster.port,
                tls,
                cluster.token.clone(),
                filled,
                2_000 * load.as_secs(),
                load,
                stop.clone(),
                patches.clone(),
                "load",
            ));
            tokio::time::sleep(load).await;
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let _ = writer.await;
            (
                legit.finish().await,
                patches.load(std::sync::atomic::Ordering::Relaxed),
            )
        });
        let lines = snapshot_lines(&cluster);
        let during = &lines[before.min(lines.len())..];
        let numbers = |name: &str| -> Vec<u64> {
            during
                .iter()
                .filter_map(|l| log_field(l, name)?.parse().ok())
                .collect()
        };
        let mut millis = numbers("millis");
        millis.sort_unstable();
        let capture_max = numbers("capture_step_micros")
            .into_iter()
            .max()
            .unwrap_or(0);
        let taken = millis.len();
        if every > 0 && taken == 0 {
            return Err("no snapshot was taken during the load".into());
        }
        if every > 0 {
            report.info(
                "snapshots written during the load: count, median / max ms each, longest capture step under the store lock",
                format!(
                    "{taken}, {} / {} ms, {}",
                    millis[taken / 2],
                    millis[taken - 1],
                    ms(Duration::from_micros(capture_max))
                ),
            );
        }
        let mut gets = legit.gets.clone();
        let mut creates = legit.creates.clone();
        gets.sort_unstable();
        creates.sort_unstable();
        seen.push((
            quantile(&gets, 0.99),
            quantile(&creates, 0.99),
            taken,
            load_patches,
            gets.len(),
            creates.len(),
        ));
    }
    let (without, during) = (seen[0], seen[1]);
    report.info(
        &format!("load: ~{filled} objects, 2,000 patches/s over 4 connections, the admin's GET every 10 ms and create every 100 ms"),
        format!(
            "without snapshots: {} patches, {} GETs, {} creates; with: {} patches, {} snapshots written, {} GETs, {} creates",
            without.3, without.4, without.5, during.3, during.2, during.4, during.5
        ),
    );
    for (what, a, b) in [
        ("GET", without.0, during.0),
        ("create", without.1, during.1),
    ] {
        report.row(
            &format!("admin {what} p99 while snapshots are taken vs without"),
            format!(
                "{} vs {} ({})",
                ms(b),
                ms(a),
                peer::ratio(b.as_secs_f64(), a.as_secs_f64())
            ),
            "< 2× without",
            if scale.quick {
                Verdict::Scaled
            } else {
                Verdict::of(b < a * 2)
            },
        );
    }
    Ok(())
}

/// `count` ConfigMaps `cm-000000`.. of ~1 KB in `default`, over 8 connections.
async fn create_configmaps(cluster: &DevCluster, count: usize) -> Result<(), String> {
    let server = peer::Server::nautilus("nautilus", cluster);
    let cm = Arc::new(BodyTemplate::config_map(1_000));
    server
        .creates("/api/v1/namespaces/default/configmaps", cm, "cm", count, 8)
        .await
        .map(drop)
}

/// The enclave's log lines for the snapshots it has written so far.
fn snapshot_lines(cluster: &DevCluster) -> Vec<String> {
    cluster
        .logs()
        .lines()
        .filter(|l| l.contains("snapshot written"))
        .map(str::to_string)
        .collect()
}

fn wait_for_log(cluster: &DevCluster, text: &str, within: Duration) -> Result<(), String> {
    let deadline = Instant::now() + within;
    while !cluster.logs().contains(text) {
        if Instant::now() > deadline {
            return Err(format!(
                "no \"{text}\" in the logs within {} s",
                within.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// The latencies of `count` creates, one at a time on one connection.
async fn one_client_creates(
    server: &peer::Server,
    prefix: &str,
    count: usize,
) -> Result<Vec<Duration>, String> {
    let cm = BodyTemplate::config_map(1_000);
    let mut conn = Connection::open(server.port, server.tls.clone()).await?;
    let headers = auth(&server.token);
    let mut times = Vec::with_capacity(count);
    for i in 0..count {
        let body = crate::load::MakeBody::make(&cm, &format!("{prefix}-{i}"), i);
        let started = Instant::now();
        let reply = conn
            .send(
                "POST",
                "/api/v1/namespaces/bench/configmaps",
                Some(&body),
                &headers,
            )
            .await?;
        times.push(started.elapsed());
        if reply.status != 201 {
            return Err(format!("{}: create answered {}", server.name, reply.status));
        }
    }
    Ok(times)
}

/// `count` puts of 1 KB values through etcd's HTTP gateway over `clients` keep-alive
/// connections: (puts per second, each put's latency).
pub(crate) async fn etcd_puts(
    url: &str,
    count: usize,
    clients: usize,
) -> Result<(f64, Vec<Duration>), String> {
    let authority = url.trim_start_matches("http://").to_string();
    let value = base64::engine::general_purpose::STANDARD.encode(vec![b'x'; 1_000]);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (authority, value, next) = (authority.clone(), value.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(&authority)
                .await
                .map_err(|e| format!("etcd: {e}"))?;
            stream.set_nodelay(true).map_err(|e| e.to_string())?;
            let (mut send, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                    .await
                    .map_err(|e| format!("etcd: {e}"))?;
            tokio::spawn(conn);
            let mut times = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= count {
                    break;
                }
                let key = base64::engine::general_purpose::STANDARD.encode(format!("/bench/{i}"));
                let body = format!(r#"{{"key":"{key}","value":"{value}"}}"#);
                let request = hyper::Request::post("/v3/kv/put")
                    .header("host", authority.as_str())
                    .header("content-type", "application/json")
                    .body(Full::new(bytes::Bytes::from(body)))
                    .map_err(|e| e.to_string())?;
                let t = Instant::now();
                let reply = send
                    .send_request(request)
                    .await
                    .map_err(|e| format!("etcd put: {e}"))?;
                let status = reply.status();
                let _ = reply.into_body().collect().await;
                if !status.is_success() {
                    return Err(format!("etcd put answered {status}"));
                }
                times.push(t.elapsed());
            }
            Ok::<_, String>(times)
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.map_err(|e| e.to_string())??);
    }
    let elapsed = started.elapsed();
    Ok((all.len() as f64 / elapsed.as_secs_f64(), all))
}

/// The filesystem type and device under `path`, from /proc/mounts (longest mount prefix).
pub(crate) fn disk_of(path: &std::path::Path) -> String {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (dev, mount, fs) = (f.next()?, f.next()?, f.next()?);
            path.starts_with(mount)
                .then(|| (mount.len(), format!("{fs} on {dev}")))
        })
        .max()
        .map_or_else(|| "?".to_string(), |(_, d)| d)
}
