//! Issue 4's end-to-end figure: a dev cluster (proxy + enclave) with simulated workers that
//! watch their pods and report them Running/Ready; one Deployment of 1,000 replicas is POSTed and
//! the time until the deployment reports every replica ready is measured, with the time until
//! all pods exist (`status.replicas`) and the enclave's peak RSS (VmHWM). Goal: < 5 s.
//!
//! Run: `cargo run --release -p nautilus-tests --bin deploy_bench [-- WORKERS REPLICAS]`
//! (defaults 50 workers, 1,000 replicas; each simulated node allows 110 pods).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use nautilus_tests::DevCluster;
use nautilus_tests::simulator::{DEFAULT_PACKAGE, SimConfig, Simulator, package_arg};
use serde_json::{Value, json};

/// Gives up after this long.
const LIMIT: Duration = Duration::from_secs(120);

fn status_kib(pid: Option<u32>, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(|| "?".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
}

fn get(c: &DevCluster, path: &str) -> Value {
    match c.request("GET", path, None, &[]) {
        Ok(reply) if reply.status == 200 => reply.json(),
        Ok(reply) => {
            eprintln!("GET {path}: {}", reply.status);
            Value::Null
        }
        Err(e) => {
            eprintln!("GET {path}: {e}");
            Value::Null
        }
    }
}

/// The value of the sample written exactly as `series` in a `/metrics` text.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(series)?;
        rest.strip_prefix(' ')?.trim().parse().ok()
    })
}

/// `(pods bound by the scheduler, sum of their queue-to-bind latencies in seconds)`.
fn scheduled(c: &DevCluster) -> (f64, f64) {
    let Ok(reply) = c.request("GET", "/metrics", None, &[]) else {
        return (0.0, 0.0);
    };
    let text = String::from_utf8_lossy(&reply.body);
    (
        sample(
            &text,
            "scheduler_schedule_attempts_total{result=\"scheduled\",profile=\"default-scheduler\"}",
        )
        .unwrap_or(0.0),
        sample(&text, "scheduler_pod_scheduling_sli_duration_seconds_sum").unwrap_or(0.0),
    )
}

/// The process's user + system CPU time in clock ticks (`/proc/<pid>/stat` fields 14 and 15).
fn cpu_ticks(pid: Option<u32>) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid?)).ok()?;
    // The command may hold spaces; the fields after its closing parenthesis are plain.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    Some(user + system)
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let workers = args.first().copied().unwrap_or(50).max(1);
    let replicas = args.get(1).copied().unwrap_or(1_000);
    if replicas > workers * 110 {
        eprintln!("{replicas} replicas do not fit on {workers} nodes of 110 pods");
        std::process::exit(2);
    }

    let c = DevCluster::start_with(&[&package_arg(&DEFAULT_PACKAGE), "--min-stake=1000000000"]);
    let pid = c.enclave_pid();
    let sim = Simulator::start(
        &c,
        SimConfig {
            workers,
            connections: 8,
            watch_pods: true,
            ..SimConfig::default()
        },
    )
    .unwrap_or_else(|e| panic!("simulator: {e}"));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let nodes = get(&c, "/api/v1/nodes");
        let ready = nodes["items"].as_array().map_or(0, |items| {
            items
                .iter()
                .filter(|n| {
                    n["status"]["conditions"].as_array().is_some_and(|cs| {
                        cs.iter()
                            .any(|c| c["type"] == "Ready" && c["status"] == "True")
                    })
                })
                .count()
        });
        if ready == workers {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {ready}/{workers} nodes Ready"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Let the pod watches of every worker settle before the clock starts.
    std::thread::sleep(Duration::from_millis(500));
    let rss_before = status_kib(pid, "VmRSS:");
    let (bound_before, latency_before) = scheduled(&c);

    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "bench", "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "bench"}},
            "template": {
                "metadata": {"labels": {"app": "bench"}},
                "spec": {"containers": [{"name": "app", "image": "nginx"}]}
            }
        }
    });
    let body = serde_json::to_vec(&deployment).unwrap_or_default();
    let started = Instant::now();
    let reply = c
        .request(
            "POST",
            "/apis/apps/v1/namespaces/default/deployments",
            Some(&body),
            &[("content-type", "application/json")],
        )
        .unwrap_or_else(|e| panic!("POST deployment: {e}"));
    assert_eq!(reply.status, 201, "POST deployment: {}", reply.json());

    let path = "/apis/apps/v1/namespaces/default/deployments/bench";
    let mut all_created: Option<Duration> = None;
    let mut all_bound: Option<Duration> = None;
    let mut peak_rss = 0;
    let ready_after = loop {
        let d = get(&c, path);
        let at = started.elapsed();
        peak_rss = peak_rss.max(status_kib(pid, "VmRSS:").unwrap_or(0));
        let replicas_now = d["status"]["replicas"].as_u64().unwrap_or(0) as usize;
        let ready = d["status"]["readyReplicas"].as_u64().unwrap_or(0) as usize;
        if all_created.is_none() && replicas_now >= replicas {
            all_created = Some(at);
        }
        if all_bound.is_none() && scheduled(&c).0 - bound_before >= replicas as f64 {
            all_bound = Some(started.elapsed());
        }
        if ready >= replicas {
            break at;
        }
        if at > LIMIT {
            eprintln!(
                "gave up after {:?}: {replicas_now} pods, {ready} ready; simulator {:?}",
                at,
                sim.stats()
            );
            std::process::exit(1);
        }
        std::thread::sleep(Duration::from_millis(20));
    };

    // Check the outcome from the pods themselves: every one Running and Ready, and how they
    // spread over the nodes.
    let pods = get(
        &c,
        "/api/v1/namespaces/default/pods?labelSelector=app%3Dbench",
    );
    let items = pods["items"].as_array().cloned().unwrap_or_default();
    let mut by_node: BTreeMap<String, usize> = BTreeMap::new();
    let mut running = 0;
    for pod in &items {
        let ready = pod["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        });
        if pod["status"]["phase"] == "Running" && ready {
            running += 1;
        }
        if let Some(node) = pod["spec"]["nodeName"].as_str() {
            *by_node.entry(node.to_string()).or_insert(0) += 1;
        }
    }
    let (least, most) = (
        by_node.values().min().copied().unwrap_or(0),
        by_node.values().max().copied().unwrap_or(0),
    );
    let (bound_after, latency_after) = scheduled(&c);
    let secs = ready_after.as_secs_f64();
    println!("deploy: {replicas} replicas on {workers} simulated workers");
    println!(
        "  all pods created (status.replicas) after {:.3} s",
        all_created.map_or(f64::NAN, |d| d.as_secs_f64())
    );
    println!(
        "  all pods bound (scheduler metrics)    after {:.3} s; mean queue-to-bind {:.1} ms",
        all_bound.map_or(f64::NAN, |d| d.as_secs_f64()),
        (latency_after - latency_before) * 1e3 / (bound_after - bound_before).max(1.0)
    );
    println!(
        "  all Ready (status.readyReplicas) after  {secs:.3} s ({:.0} pods/s) — goal < 5 s: {}",
        replicas as f64 / secs,
        if secs < 5.0 { "met" } else { "NOT met" }
    );
    println!(
        "  pods Running+Ready: {running}/{}, on {} nodes ({least}..{most} per node)",
        items.len(),
        by_node.len()
    );
    println!(
        "  enclave RSS: before {}, peak sampled {}, peak (VmHWM) {}",
        mib(rss_before),
        mib(Some(peak_rss)),
        mib(status_kib(pid, "VmHWM:"))
    );
    // Once settled, the enclave must be idle apart from heartbeats: no backlog polling loop.
    let idle = Duration::from_secs(3);
    let ticks_before = cpu_ticks(pid);
    std::thread::sleep(idle);
    if let (Some(a), Some(b)) = (ticks_before, cpu_ticks(pid)) {
        // Linux reports CPU time in USER_HZ = 100 ticks per second.
        println!(
            "  enclave CPU when settled: {:.1} % of a core over {} s",
            (b - a) as f64 / idle.as_secs_f64(),
            idle.as_secs()
        );
    }
    drop(sim);
}
