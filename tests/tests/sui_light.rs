//! Level 2 (`light-client`) end to end: the level-2 fixture full node (a scripted chain signed by
//! a test validator committee, with the proofs the SDK's light client asks for) behind
//! `nautilus-proxy dev --sui-node`; the enclave, pinned to the epoch-0 committee with
//! `--sui-trust-anchor`, reads the package's authenticated event stream through the relay. A
//! stake admits at `--min-trust-level=light-client` only after verification, across epoch
//! changes; every forgery the fixture can make is refused, nothing of it is applied, and the
//! honest chain is read again once the node stops forging.

#[path = "../src/sui_fixture/mod.rs"]
#[allow(dead_code, unreachable_pub)]
mod sui_fixture;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use nautilus_core::token::{ed25519_address, hex32};
use sui_fixture::ChainEvent;
use sui_fixture::dev::{Split, SuiDev, runtime};
use sui_fixture::light::{LightChain, LightFaults, LightNode, start_light};

const TWO_SUI: u64 = 2_000_000_000;

/// A level-2 fixture node on a fresh chain (4 validators) and `nautilus-proxy dev` reading it
/// at `--min-trust-level=light-client`, pinned to the chain's epoch-0 committee; `extra` are
/// more enclave args.
fn light_cluster(
    rt: &tokio::runtime::Runtime,
    package: [u8; 32],
    extra: &[&str],
) -> (Arc<Mutex<LightChain>>, LightNode, SuiDev) {
    light_cluster_with(rt, package, &[], extra)
}

/// [`light_cluster`] with `dev` options (`--replicas 3`).
fn light_cluster_with(
    rt: &tokio::runtime::Runtime,
    package: [u8; 32],
    dev_args: &[&str],
    extra: &[&str],
) -> (Arc<Mutex<LightChain>>, LightNode, SuiDev) {
    let chain = Arc::new(Mutex::new(LightChain::new(package, 4)));
    let node = start_light(rt.handle(), chain.clone());
    let anchor = anchor_arg(&chain.lock().unwrap());
    let mut args = vec!["--min-trust-level=light-client", anchor.as_str()];
    args.extend_from_slice(extra);
    let dev = SuiDev::start_with(&package, &[node.addr], &node.ca_pem, dev_args, &args);
    (chain, node, dev)
}

/// Appends a checkpoint with `transactions`, then one more: the chain ticks on past the
/// settlement (a live chain does, about four checkpoints a second).
fn settle(chain: &Mutex<LightChain>, transactions: Vec<Vec<ChainEvent>>) -> u64 {
    let mut c = chain.lock().unwrap();
    let checkpoint = c.push(transactions);
    c.tick(1);
    checkpoint
}

fn anchor_arg(chain: &LightChain) -> String {
    format!(
        "--sui-trust-anchor={}",
        base64::engine::general_purpose::STANDARD.encode(chain.trust_anchor_bcs())
    )
}

fn deposit(secret: &[u8; 32], stake: [u8; 32], amount: u64) -> ChainEvent {
    ChainEvent::Deposit {
        stake,
        owner: ed25519_address(secret).0,
        amount,
    }
}

/// A counter or gauge from the enclave's `/metrics` (0 when absent).
fn metric(dev: &SuiDev, name: &str) -> f64 {
    let reply = dev.request("GET", "/metrics", None, &[]).expect("metrics");
    let text = String::from_utf8_lossy(&reply.body).into_owned();
    text.lines()
        .find_map(|line| {
            let (key, value) = line.rsplit_once(' ')?;
            (key == name).then(|| value.parse().ok())?
        })
        .unwrap_or(0.0)
}

/// The registry's view of `stake` (`GET /api/v1/sui-events?stake=`).
fn stake_view(dev: &SuiDev, stake: &[u8; 32]) -> serde_json::Value {
    dev.request(
        "GET",
        &format!("/api/v1/sui-events?stake={}", hex32(stake)),
        None,
        &[],
    )
    .expect("sui-events")
    .json()
}

fn wait_for(what: &str, dev: &SuiDev, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}:\n{}",
            dev.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_verified_stake_admits_at_light_client_across_an_epoch_change() {
    let rt = runtime();
    let package = [0x6a; 32];
    let (a, stake_a) = ([61u8; 32], [62u8; 32]);
    let (b, stake_b) = ([63u8; 32], [64u8; 32]);
    let (chain, _node, dev) = light_cluster(&rt, package, &["--sui-stale-after=2"]);
    assert_eq!(dev.register(&a, &stake_a, "light-a").status, 401);
    settle(
        &chain,
        vec![
            vec![ChainEvent::Foreign],
            vec![deposit(&a, stake_a, TWO_SUI)],
        ],
    );
    let reply = dev.register_until(&a, &stake_a, "light-a", 200);
    assert_eq!(reply.json()["status"], "registered");
    let view = stake_view(&dev, &stake_a);
    assert_eq!(view["stake"]["trust"], "light-client", "{view}");
    assert_eq!(view["stake"]["amount"], TWO_SUI.to_string(), "{view}");
    let node_object = dev
        .request("GET", "/api/v1/nodes/light-a", None, &[])
        .unwrap()
        .json();
    assert_eq!(
        node_object["metadata"]["annotations"]["nautilus.io/stake-trust-level"],
        "light-client"
    );

    // A new committee takes over; the enclave ratchets to it from the anchor (BLS-verifying the
    // end-of-epoch summary) and goes on verifying with it.
    {
        let mut c = chain.lock().unwrap();
        c.end_epoch(5);
        c.push(vec![vec![deposit(&b, stake_b, TWO_SUI)]]);
        c.tick(1);
        assert_eq!(c.epoch(), 1);
    }
    dev.register_until(&b, &stake_b, "light-b", 200);
    assert_eq!(stake_view(&dev, &stake_b)["stake"]["trust"], "light-client");
    let (code, text) = dev.readyz();
    assert_eq!(code, 200, "{text}");
    assert!(text.contains("light-client=2"), "{text}");
    assert_eq!(metric(&dev, "nautilus_sui_light_client_events_total"), 2.0);
    assert_eq!(
        metric(&dev, "nautilus_sui_light_client_refusals_total"),
        0.0
    );

    // An outage: the registry stays, readiness degrades after the staleness, and recovers.
    chain.lock().unwrap().faults.down = true;
    wait_for("readiness to degrade", &dev, || dev.readyz().0 == 503);
    assert!(dev.readyz().1.contains("no Sui progress"));
    assert_eq!(dev.seed("heartbeat", &a, &stake_a, "light-a").status, 200);
    chain.lock().unwrap().faults.down = false;
    wait_for("readiness to recover", &dev, || dev.readyz().0 == 200);
    // The relay carried the enclave's own gRPC: TLS to the node, through the proxy.
    assert!(
        dev.proxy_metrics()
            .contains("nautilus_proxy_sui_relay_connections_total"),
        "relay counters"
    );
}

/// One forgery: turned on, a deposit made; the enclave must refuse the node's data (logged
/// and counted) and never admit the stake; turned off, the honest chain is read.
fn refuses(dev: &SuiDev, chain: &Arc<Mutex<LightChain>>, forge: LightFaults, n: u8, epoch: bool) {
    let secret = [100 + n; 32];
    let stake = [150 + n; 32];
    let refusals = metric(dev, "nautilus_sui_light_client_refusals_total");
    {
        let mut c = chain.lock().unwrap();
        c.faults = forge.clone();
        if epoch {
            c.end_epoch(4);
        }
        // Two events, so that a reordering has something to swap.
        c.push(vec![vec![
            deposit(&secret, stake, TWO_SUI),
            deposit(&secret, [200 + n; 32], TWO_SUI),
        ]]);
        c.tick(1);
    }
    wait_for(&format!("a refusal of {forge:?}"), dev, || {
        metric(dev, "nautilus_sui_light_client_refusals_total") > refusals
    });
    assert!(
        dev.logs().contains("sui reader: refused the node's data"),
        "{}",
        dev.logs()
    );
    let node = format!("forged-{n}");
    assert_eq!(
        dev.register(&secret, &stake, &node).status,
        401,
        "{forge:?} admitted a stake"
    );
    assert!(
        stake_view(dev, &stake)
            .get("stake")
            .is_none_or(|s| s.is_null()),
        "{forge:?} reached the registry"
    );
    chain.lock().unwrap().faults = LightFaults::default();
    dev.register_until(&secret, &stake, &node, 200);
    let view = stake_view(dev, &stake);
    assert_eq!(
        view["stake"]["amount"],
        TWO_SUI.to_string(),
        "{forge:?}: {view}"
    );
}

#[test]
fn every_forgery_is_refused_and_nothing_forged_is_applied() {
    let rt = runtime();
    let package = [0x6b; 32];
    let (chain, _node, dev) = light_cluster(&rt, package, &[]);
    // Each forgery, and whether it needs an epoch change to show.
    type Forgery = (fn(&mut LightFaults), bool);
    let cases: [Forgery; 7] = [
        (|f| f.forge_event = true, false),
        (|f| f.foreign_in_stream = true, false),
        (|f| f.duplicate = true, false),
        (|f| f.reorder = true, false),
        (|f| f.forge_head_proof = true, false),
        (|f| f.non_member_signature = true, false),
        (|f| f.wrong_committee_transition = true, true),
    ];
    for (n, (set, epoch)) in cases.into_iter().enumerate() {
        let mut forge = LightFaults::default();
        set(&mut forge);
        refuses(&dev, &chain, forge, n as u8, epoch);
    }
    assert!(dev.logs().contains("verification failed"), "{}", dev.logs());

    // A node claiming a tip older than one already seen: a rollback attempt, refused.
    chain.lock().unwrap().faults.tip_override = Some(1);
    wait_for("a rollback refusal", &dev, || {
        dev.logs().contains("rollback attempt")
    });
    chain.lock().unwrap().faults = LightFaults::default();

    // An event of ours on the chain whose BCS does not match the schema: authentic, so the
    // light client yields it, and the reader refuses the checkpoint (nothing of it applied).
    let (secret, stake) = ([120u8; 32], [121u8; 32]);
    let refusals = metric(&dev, "nautilus_sui_light_client_refusals_total");
    settle(
        &chain,
        vec![
            vec![deposit(&secret, stake, TWO_SUI)],
            vec![ChainEvent::Malformed],
        ],
    );
    wait_for("a schema refusal", &dev, || {
        metric(&dev, "nautilus_sui_light_client_refusals_total") > refusals
            && dev.logs().contains("does not match the schema")
    });
    assert_eq!(dev.register(&secret, &stake, "malformed").status, 401);
    // The reasons, for whoever reads the test's output (`--nocapture`).
    for line in dev
        .logs()
        .lines()
        .filter(|l| l.contains("refused the node's data"))
    {
        eprintln!("{line}");
    }
}

#[test]
fn events_are_applied_exactly_once_across_a_proxy_restart_at_light_client() {
    let rt = runtime();
    let package = [0x6c; 32];
    let (owner, stake) = ([65u8; 32], [66u8; 32]);
    const CHECKPOINTS: u64 = 3_000;
    let chain = Arc::new(Mutex::new(LightChain::new(package, 4)));
    let (checkpoints, expected) = sui_fixture::top_ups(stake, owner, CHECKPOINTS);
    let mut last = 0;
    {
        let mut c = chain.lock().unwrap();
        for transactions in checkpoints {
            last = c.push(transactions);
        }
        c.tick(1);
        c.faults.delay = Duration::from_millis(50);
    }
    let node = start_light(rt.handle(), chain.clone());
    let anchor = anchor_arg(&chain.lock().unwrap());
    let mut split = Split::start(
        &package,
        node.addr,
        &node.ca_pem,
        &["--min-trust-level=light-client", &anchor],
    );
    let progress = |split: &Split| {
        split
            .position(&stake)
            .and_then(|v| v.get("checkpoint").and_then(serde_json::Value::as_u64))
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    while progress(&split).is_none_or(|c| c < 1) {
        assert!(
            Instant::now() < deadline,
            "the light client made no progress"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    split.kill_proxy();
    let at_kill = progress(&split).unwrap();
    assert!(at_kill < last, "the whole stream was read before the kill");
    std::thread::sleep(Duration::from_millis(1500));
    split.start_proxy();
    loop {
        if progress(&split) == Some(last) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the light client did not catch up: {:?}",
            split.position(&stake)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let view = split.position(&stake).unwrap();
    let s = &view["stake"];
    assert_eq!(s["amount"], expected.to_string(), "{view}");
    assert_eq!(s["trust"], "light-client");
    assert_eq!(s["checkpoint"], last);
}

#[test]
fn the_light_client_fails_over_to_the_next_node_and_keeps_its_verified_position() {
    let rt = runtime();
    let package = [0x6d; 32];
    let (a, stake_a) = ([67u8; 32], [68u8; 32]);
    let (b, stake_b) = ([69u8; 32], [70u8; 32]);
    let chain = Arc::new(Mutex::new(LightChain::new(package, 4)));
    let first = start_light(rt.handle(), chain.clone());
    let second = sui_fixture::light::start_light_sharing_ca(rt.handle(), chain.clone(), &first);
    let anchor = anchor_arg(&chain.lock().unwrap());
    let dev = SuiDev::start(
        &package,
        &[first.addr, second.addr],
        &first.ca_pem,
        &["--min-trust-level=light-client", &anchor],
    );
    settle(&chain, vec![vec![deposit(&a, stake_a, TWO_SUI)]]);
    dev.register_until(&a, &stake_a, "failover-a", 200);
    // The first node goes away; the second carries on from the verified position.
    drop(first);
    settle(&chain, vec![vec![deposit(&b, stake_b, TWO_SUI)]]);
    dev.register_until(&b, &stake_b, "failover-b", 200);
    assert_eq!(
        stake_view(&dev, &stake_a)["stake"]["amount"],
        TWO_SUI.to_string(),
        "nothing applied twice"
    );
    assert_eq!(metric(&dev, "nautilus_sui_light_client_events_total"), 2.0);
    assert!(
        dev.logs().contains("node failed; trying the next"),
        "{}",
        dev.logs()
    );
}

#[test]
fn a_withheld_settlement_is_caught_at_the_next_proof_and_re_read_from_the_last_proven_head() {
    let rt = runtime();
    let package = [0x6e; 32];
    let (a, stake_a) = ([71u8; 32], [72u8; 32]);
    let (b, stake_b) = ([73u8; 32], [74u8; 32]);
    let (c, stake_c) = ([75u8; 32], [76u8; 32]);
    let (chain, _node, dev) = light_cluster(&rt, package, &[]);
    settle(&chain, vec![vec![deposit(&a, stake_a, TWO_SUI)]]);
    dev.register_until(&a, &stake_a, "withheld-a", 200);
    // The node withholds a checkpoint's events and settlement: the range looks quiet.
    let refusals = metric(&dev, "nautilus_sui_light_client_refusals_total");
    {
        let mut ch = chain.lock().unwrap();
        let hidden = ch.push(vec![vec![deposit(&b, stake_b, TWO_SUI)]]);
        ch.faults.hide_checkpoint = Some(hidden);
        ch.tick(3);
    }
    // Let the reader pass the hidden checkpoint as quiet, then settle another deposit: the
    // head proven there includes the withheld event, so the fold does not match.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(dev.register(&b, &stake_b, "withheld-b").status, 401);
    settle(&chain, vec![vec![deposit(&c, stake_c, TWO_SUI)]]);
    wait_for("the mismatch to be refused", &dev, || {
        metric(&dev, "nautilus_sui_light_client_refusals_total") > refusals
    });
    assert_eq!(dev.register(&c, &stake_c, "withheld-c").status, 401);
    // The node stops withholding: reading resumes from the last proven head, picks up the
    // withheld deposit and the later one, each exactly once.
    chain.lock().unwrap().faults.hide_checkpoint = None;
    dev.register_until(&b, &stake_b, "withheld-b", 200);
    dev.register_until(&c, &stake_c, "withheld-c", 200);
    for stake in [stake_a, stake_b, stake_c] {
        assert_eq!(
            stake_view(&dev, &stake)["stake"]["amount"],
            TWO_SUI.to_string()
        );
    }
    assert!(
        dev.logs().contains("do not fold into the stream head"),
        "{}",
        dev.logs()
    );
}

/// Issue 17: on `dev --replicas 3` the leader runs the light client; after `kill -9` of the
/// leader the new one verifies the stream from the anchor itself (a follower never read Sui)
/// and goes on: a stake deposited after the failover admits at `light-client`, and every
/// replica holds each stake once, at the verified trust level.
#[test]
fn on_replicas_a_new_leader_verifies_from_the_anchor_and_goes_on() {
    const REPLICAS: usize = 3;
    let rt = runtime();
    let package = [0x7c; 32];
    let (a, stake_a) = ([71u8; 32], [72u8; 32]);
    let (b, stake_b) = ([73u8; 32], [74u8; 32]);
    let (chain, _node, dev) = light_cluster_with(&rt, package, &["--replicas", "3"], &[]);
    settle(&chain, vec![vec![deposit(&a, stake_a, TWO_SUI)]]);
    dev.register_until(&a, &stake_a, "light-replica-a", 200);
    let leader = dev.leading_slot(REPLICAS).expect("a leader");
    nautilus_tests::signal(dev.replica_pid(leader).expect("the leader's pid"), 9);

    settle(&chain, vec![vec![deposit(&b, stake_b, TWO_SUI)]]);
    dev.register_until(&b, &stake_b, "light-replica-b", 200);
    let new_leader = dev
        .leading_slot(REPLICAS)
        .expect("a leader after the failover");
    assert_ne!(new_leader, leader, "the killed replica cannot lead at once");
    wait_for("every replica to hold both stakes", &dev, || {
        (0..REPLICAS).all(|slot| {
            [stake_a, stake_b].iter().all(|stake| {
                dev.replica_stake(slot, stake)
                    .is_some_and(|(_, amount, trust)| {
                        amount == TWO_SUI.to_string() && trust == "light-client"
                    })
            })
        })
    });
}
