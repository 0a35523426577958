//! Issue 18's scale figure: KWOK's controller, the real client-go, managing fake Nodes against
//! dev mode in memory, with Deployments whose pods it plays Running and Ready
//! ([`nautilus_tests::kwok::run`]): the time to all pods Ready, the heartbeat latency inside the
//! enclave (its request histogram for KWOK's Lease renewals and Node status patches), Nodes
//! that went NotReady (a watch), and the enclave's CPU and RSS.

use std::time::Duration;

use nautilus_tests::kwok::{self, Sizes};
use nautilus_tests::scrape::Histogram;

use crate::{Report, Scale, Verdict, mb, ms, start_cluster};

/// The full run's sizes are the issue's: 1,000 nodes, 10,000 pods in 100 Deployments.
fn sizes(scale: &Scale) -> Sizes {
    let (nodes, deployments) = if scale.quick { (100, 10) } else { (1_000, 100) };
    Sizes {
        nodes,
        deployments,
        replicas: 100,
        hold: if scale.quick {
            Duration::from_secs(10)
        } else {
            Duration::from_secs(30)
        },
        limit: Duration::from_secs(300),
        verbose: false,
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn percent(share: Option<f64>) -> String {
    share.map_or_else(|| "?".into(), |s| format!("{:.1} %", s * 100.0))
}

/// `p50 / p99 (n requests)`, and whether the p99 is under `goal`: decided by the histogram's
/// bucket bounds, so a p99 whose bucket reaches above the goal is a miss.
fn latency(h: &Histogram, goal: Duration) -> (String, bool) {
    let at = |q| {
        h.quantile(q)
            .map_or("?".into(), |s| ms(Duration::from_secs_f64(s)))
    };
    let within = h
        .bound_of(0.99)
        .is_some_and(|bound| bound <= goal.as_secs_f64());
    (
        format!("{} / {} ({} req)", at(0.5), at(0.99), h.count()),
        within,
    )
}

pub(crate) fn section(scale: &Scale, report: &mut Report) -> Result<(), String> {
    let binary = kwok::binary()
        .map_err(|e| e.to_string())?
        .ok_or("no kwok binary: Go is missing and target/peers/kwok was never built")?;
    let sizes = sizes(scale);
    let cluster = start_cluster(scale, &[]);
    let (outcome, kwok) = kwok::run(&cluster, &binary, &sizes)?;
    let pods = sizes.pods();
    report.header(&format!(
        "kwok: {} fake Nodes managed by KWOK's controller (client-go), {pods} pods in {} Deployments of {}; dev mode in memory",
        sizes.nodes, sizes.deployments, sizes.replicas
    ));
    report.info(
        &format!(
            "{} Nodes created → Ready (KWOK took them over)",
            sizes.nodes
        ),
        secs(outcome.nodes_ready),
    );
    report.info(
        &format!("{pods} pods created (Deployments' status.replicas)"),
        secs(outcome.pods_created),
    );
    report.row(
        &format!("{pods} pods Running and Ready (readyReplicas)"),
        format!(
            "{} ({:.0} pods/s)",
            secs(outcome.pods_ready),
            pods as f64 / outcome.pods_ready.as_secs_f64().max(1e-9)
        ),
        "< 60 s @10k pods",
        if scale.quick {
            Verdict::Scaled
        } else {
            Verdict::of(outcome.pods_ready < Duration::from_secs(60))
        },
    );
    report.check(
        "pods listed Running, Ready, with an IP, on a fake Node",
        outcome.pods_running == pods && outcome.pods_listed == pods,
        format!(
            "{} of {} listed; {}..{} per Node",
            outcome.pods_running, outcome.pods_listed, outcome.spread.0, outcome.spread.1
        ),
    );
    let goal = Duration::from_millis(50);
    for (name, histogram) in [
        (
            "heartbeat: Lease renewals (PUT) p50 / p99",
            &outcome.lease_renewals,
        ),
        (
            "heartbeat: Node status (PATCH) p50 / p99",
            &outcome.node_status,
        ),
    ] {
        let (value, within) = latency(histogram, goal);
        report.row(
            name,
            value,
            "p99 < 50 ms",
            Verdict::of(within && histogram.count() > 0),
        );
    }
    report.info(
        "pod status (PATCH pods/status) p50 / p99",
        latency(&outcome.pod_status, goal).0,
    );
    let flaps = &outcome.nodes.not_ready;
    report.check(
        "Nodes NotReady at any time (node watch)",
        flaps.is_empty() && outcome.nodes.ever_ready() == sizes.nodes,
        if flaps.is_empty() {
            format!(
                "0 of {} ({} events, reopened {})",
                outcome.nodes.ever_ready(),
                outcome.nodes.events,
                outcome.nodes.reopened
            )
        } else {
            format!(
                "{} (first {} at {:.1} s)",
                flaps.len(),
                flaps[0].0,
                flaps[0].1.as_secs_f64()
            )
        },
    );
    report.info(
        "enclave CPU, Deployments created → pods Ready",
        percent(outcome.enclave_cpu_deploy),
    );
    report.info(
        &format!(
            "enclave CPU, {} s hold (heartbeats only)",
            sizes.hold.as_secs()
        ),
        percent(outcome.enclave_cpu_hold),
    );
    report.info(
        "KWOK CPU, Deployments created → pods Ready",
        percent(outcome.kwok_cpu_deploy),
    );
    report.info(
        "enclave RSS at the end",
        outcome.enclave_rss_kb.map_or("?".into(), mb),
    );
    let refused: Vec<String> = outcome
        .refusals
        .iter()
        .map(|((verb, resource, sub, code), n)| {
            let sub = if sub.is_empty() {
                String::new()
            } else {
                format!("/{sub}")
            };
            format!("{verb} {resource}{sub} {code} ×{n}")
        })
        .collect();
    report.info(
        "requests answered other than 2xx/3xx",
        if refused.is_empty() {
            "none".into()
        } else {
            refused.join(", ")
        },
    );
    if !outcome.kwok_errors.is_empty() {
        println!(
            "   KWOK logged {} errors, the first: {}",
            outcome.kwok_errors.len(),
            outcome.kwok_errors[0]
        );
    }
    drop(kwok);
    Ok(())
}
