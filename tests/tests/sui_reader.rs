//! Level 1 (`node-read`) end to end: a fixture Sui full node (the SDK's LedgerService server,
//! TLS with a test CA) serves a scripted chain; `nautilus-proxy dev --sui-node` relays the
//! enclave's TLS bytes to it; the enclave reads the staking events itself and a worker whose
//! stake is on the chain is admitted at `--min-trust-level=node-read`.

// Included by path until tests/src/lib.rs exports it (`pub mod sui_fixture;`).
#[path = "../src/sui_fixture/mod.rs"]
#[allow(dead_code, unreachable_pub)]
mod sui_fixture;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nautilus_core::token::{ed25519_address, hex32};
use nautilus_tests::client;
use serde_json::json;
use sui_fixture::dev::{Split, SuiDev, runtime};
use sui_fixture::{ChainEvent, ChainState};

#[test]
fn a_stake_read_from_the_chain_admits_at_node_read_and_foreign_events_are_ignored() {
    let rt = runtime();
    let package = [0x5a; 32];
    let (secret, stake) = ([41u8; 32], [42u8; 32]);
    let owner = ed25519_address(&secret).0;
    let chain = Arc::new(Mutex::new(ChainState::default()));
    {
        let mut c = chain.lock().unwrap();
        c.push(vec![vec![ChainEvent::Foreign]]);
        c.push(vec![vec![
            ChainEvent::Foreign,
            ChainEvent::Deposit {
                stake,
                owner,
                amount: 2_000_000_000,
            },
        ]]);
    }
    let node = sui_fixture::start(rt.handle(), package, chain.clone());
    let dev = SuiDev::start(
        &package,
        &[node.addr],
        &node.ca_pem,
        &["--min-trust-level=node-read"],
    );
    let reply = dev.register_until(&secret, &stake, "sui-worker-1", 200);
    assert_eq!(reply.json()["status"], "registered", "{}", dev.logs());

    // A stake that appears later on the chain is picked up too; a withdrawal revokes it.
    let (secret2, stake2) = ([51u8; 32], [52u8; 32]);
    let owner2 = ed25519_address(&secret2).0;
    assert_eq!(dev.register(&secret2, &stake2, "sui-worker-2").status, 401);
    chain.lock().unwrap().push(vec![vec![ChainEvent::Deposit {
        stake: stake2,
        owner: owner2,
        amount: 3_000_000_000,
    }]]);
    dev.register_until(&secret2, &stake2, "sui-worker-2", 200);
    chain
        .lock()
        .unwrap()
        .push(vec![vec![ChainEvent::Withdraw { stake: stake2 }]]);
    let refused = dev.register_until(&secret2, &stake2, "sui-worker-2", 401);
    assert!(
        String::from_utf8_lossy(&refused.body).contains("withdrawn"),
        "{}",
        String::from_utf8_lossy(&refused.body)
    );

    // The enclave's metrics show where the registry stands: its checkpoint, its lag, and the
    // stakes by trust level (the withdrawn stake is still known, at node-read).
    let auth = format!("Bearer {}", dev.admin_token());
    let reply = nautilus_tests::client::blocking_request(
        dev.port,
        &dev.ca_pem,
        "GET",
        "/metrics",
        None,
        &[("authorization".to_string(), auth)],
    )
    .expect("scrape");
    assert_eq!(reply.status, 200);
    let metrics = String::from_utf8_lossy(&reply.body).into_owned();
    nautilus_tests::promtool_check("enclave", &metrics);
    let value = |name: &str| -> Option<f64> {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    };
    assert_eq!(
        value("nautilus_stakes{trust=\"node-read\"}"),
        Some(2.0),
        "{metrics}"
    );
    assert_eq!(
        value("nautilus_stakes{trust=\"relay-pushed\"}"),
        Some(0.0),
        "{metrics}"
    );
    assert!(
        value("nautilus_sui_checkpoint").is_some_and(|c| c >= 1.0),
        "{metrics}"
    );
    assert!(
        value("nautilus_sui_seconds_since_progress").is_some_and(|s| s < 60.0),
        "{metrics}"
    );
}

#[test]
fn a_relay_pushed_stake_is_refused_below_the_minimum_trust_level() {
    let rt = runtime();
    let package = [0x6b; 32];
    let chain = Arc::new(Mutex::new(ChainState::default()));
    chain.lock().unwrap().push(vec![]);
    let node = sui_fixture::start(rt.handle(), package, chain);
    let dev = SuiDev::start(
        &package,
        &[node.addr],
        &node.ca_pem,
        &["--min-trust-level=node-read"],
    );
    let (secret, stake) = ([61u8; 32], [62u8; 32]);
    let owner = hex32(&ed25519_address(&secret).0);
    // Pushed by the "relay" (admin token in dev): known, but only at relay-pushed.
    let kubeconfig = std::fs::read_to_string(dev.dir.path().join("kubeconfig")).unwrap();
    let token = kubeconfig
        .lines()
        .find_map(|l| l.trim().strip_prefix("token:"))
        .unwrap()
        .trim()
        .trim_matches('"')
        .to_string();
    let body = json!({"checkpoint": 1000, "events": [nautilus_tests::simulator::deposit_event(&package, "4vJ9JU1bJJE96FWSJKvHsmmFADCg4gpZQff4P3bkLKi", &stake, &owner, 2_000_000_000)]}).to_string();
    let pushed = client::blocking_request(
        dev.port,
        &dev.ca_pem,
        "POST",
        "/api/v1/sui-events",
        Some(body.as_bytes()),
        &[
            ("authorization".into(), format!("Bearer {token}")),
            ("content-type".into(), "application/json".into()),
        ],
    )
    .unwrap();
    assert_eq!(
        pushed.status,
        200,
        "{}",
        String::from_utf8_lossy(&pushed.body)
    );
    let refused = dev.register(&secret, &stake, "pushed-worker");
    assert_eq!(refused.status, 401);
    let text = String::from_utf8_lossy(&refused.body);
    assert!(
        text.contains("trust level relay-pushed") && text.contains("node-read"),
        "{text}"
    );
}

#[test]
fn an_older_tip_is_refused_as_a_rollback_and_reading_resumes_when_the_node_is_honest_again() {
    let rt = runtime();
    let package = [0x7c; 32];
    let (secret, stake) = ([71u8; 32], [72u8; 32]);
    let (secret2, stake2) = ([73u8; 32], [74u8; 32]);
    let chain = Arc::new(Mutex::new(ChainState::default()));
    // Checkpoint 0 is empty, so the tip seen before the lie is 1.
    chain.lock().unwrap().push(vec![]);
    chain.lock().unwrap().push(vec![vec![ChainEvent::Deposit {
        stake,
        owner: ed25519_address(&secret).0,
        amount: 2_000_000_000,
    }]]);
    let node = sui_fixture::start(rt.handle(), package, chain.clone());
    let dev = SuiDev::start(
        &package,
        &[node.addr],
        &node.ca_pem,
        &["--min-trust-level=node-read"],
    );
    dev.register_until(&secret, &stake, "rollback-1", 200);
    {
        let mut c = chain.lock().unwrap();
        c.push(vec![vec![ChainEvent::Deposit {
            stake: stake2,
            owner: ed25519_address(&secret2).0,
            amount: 2_000_000_000,
        }]]);
        // The node now claims a tip older than the checkpoint already seen.
        c.faults.tip_override = Some(0);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while !dev.logs().contains("rollback attempt") {
        assert!(
            Instant::now() < deadline,
            "no rollback refusal logged:\n{}",
            dev.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Nothing past the lie was applied; the first stake still admits.
    assert_eq!(dev.register(&secret2, &stake2, "rollback-2").status, 401);
    assert_eq!(dev.register(&secret, &stake, "rollback-1").status, 200);
    chain.lock().unwrap().faults.tip_override = None;
    dev.register_until(&secret2, &stake2, "rollback-2", 200);
}

#[test]
fn events_are_applied_exactly_once_across_a_proxy_restart_mid_page() {
    let rt = runtime();
    let package = [0x8d; 32];
    let (owner, stake) = ([81u8; 32], [82u8; 32]);
    const CHECKPOINTS: u64 = 200;
    let chain = Arc::new(Mutex::new(ChainState::default()));
    let (checkpoints, expected) = sui_fixture::top_ups(stake, owner, CHECKPOINTS);
    {
        let mut c = chain.lock().unwrap();
        for transactions in checkpoints {
            c.push(transactions);
        }
        c.faults.delay = Duration::from_millis(3);
    }
    let node = sui_fixture::start(rt.handle(), package, chain.clone());
    let mut split = Split::start(&package, node.addr, &node.ca_pem, &[]);
    // Wait until the reader is part-way through a page, then kill the relay under it.
    let deadline = Instant::now() + Duration::from_secs(60);
    let progress = |split: &Split| {
        split
            .position(&stake)
            .and_then(|v| v.get("checkpoint").and_then(serde_json::Value::as_u64))
    };
    loop {
        if progress(&split).is_some_and(|c| c >= 30) {
            break;
        }
        assert!(Instant::now() < deadline, "the reader made no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    split.kill_proxy();
    let at_kill = progress(&split).unwrap();
    assert!(
        at_kill < CHECKPOINTS - 1,
        "the whole chain was read before the kill"
    );
    std::thread::sleep(Duration::from_millis(700));
    let during = progress(&split).unwrap();
    assert!(
        during <= at_kill + 1,
        "read on without a relay: {at_kill} → {during}"
    );
    split.start_proxy();
    loop {
        if progress(&split) == Some(CHECKPOINTS - 1) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the reader did not catch up: {:?}",
            split.position(&stake)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let view = split.position(&stake).unwrap();
    let s = &view["stake"];
    assert_eq!(s["amount"], expected.to_string(), "{view}");
    assert_eq!(s["trust"], "node-read");
    assert_eq!(s["checkpoint"], CHECKPOINTS - 1);
}

#[test]
fn a_sui_outage_degrades_readiness_then_refuses_new_workers_and_recovery_catches_up() {
    let rt = runtime();
    let package = [0x9e; 32];
    let (a, stake_a) = ([91u8; 32], [92u8; 32]);
    let (b, stake_b) = ([93u8; 32], [94u8; 32]);
    let (c, stake_c) = ([95u8; 32], [96u8; 32]);
    let chain = Arc::new(Mutex::new(ChainState::default()));
    chain.lock().unwrap().push(vec![
        vec![ChainEvent::Deposit {
            stake: stake_a,
            owner: ed25519_address(&a).0,
            amount: 2_000_000_000,
        }],
        vec![ChainEvent::Deposit {
            stake: stake_b,
            owner: ed25519_address(&b).0,
            amount: 2_000_000_000,
        }],
    ]);
    let node = sui_fixture::start(rt.handle(), package, chain.clone());
    let dev = SuiDev::start(
        &package,
        &[node.addr],
        &node.ca_pem,
        &["--sui-stale-after=2", "--sui-max-stale=4"],
    );
    dev.register_until(&a, &stake_a, "outage-a", 200);
    let (code, text) = dev.readyz();
    assert_eq!(code, 200, "{text}");
    assert!(text.contains("[+]sui-stake-registry ok"), "{text}");

    chain.lock().unwrap().faults.down = true;
    let outage = Instant::now();
    // Degraded after the staleness, while existing workers keep working.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (code, text) = dev.readyz();
        if code == 503 {
            assert!(
                text.contains("[-]sui-stake-registry failed") && text.contains("no Sui progress"),
                "{text}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "readyz never degraded: {text}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(outage.elapsed() >= Duration::from_millis(1500));
    // Plain `/readyz` (what load balancers poll) fails too, with the failing check named.
    let plain = nautilus_tests::client::blocking_request(
        dev.port,
        &dev.ca_pem,
        "GET",
        "/readyz",
        None,
        &[],
    )
    .expect("readyz");
    assert_eq!(plain.status, 503);
    assert!(
        String::from_utf8_lossy(&plain.body).contains("[-]sui-stake-registry failed"),
        "{}",
        String::from_utf8_lossy(&plain.body)
    );
    assert_eq!(dev.seed("heartbeat", &a, &stake_a, "outage-a").status, 200);
    // New registrations are refused past the maximum staleness, with the reason.
    let refused = dev.register_until(&b, &stake_b, "outage-b", 503);
    let body = String::from_utf8_lossy(&refused.body);
    assert!(
        body.contains("no Sui progress") && body.contains("refused"),
        "{body}"
    );
    assert_eq!(dev.seed("heartbeat", &a, &stake_a, "outage-a").status, 200);

    // Recovery: what happened during the outage is caught up, and registrations resume.
    chain.lock().unwrap().push(vec![vec![ChainEvent::Deposit {
        stake: stake_c,
        owner: ed25519_address(&c).0,
        amount: 2_000_000_000,
    }]]);
    chain.lock().unwrap().faults.down = false;
    dev.register_until(&c, &stake_c, "outage-c", 200);
    dev.register_until(&b, &stake_b, "outage-b", 200);
    assert_eq!(dev.readyz().0, 200);
}

#[test]
fn a_node_serving_malformed_or_failing_data_is_failed_over_and_nothing_of_it_applied() {
    let rt = runtime();
    let package = [0xa1; 32];
    let (a, stake_a) = ([101u8; 32], [102u8; 32]);
    let deposit = ChainEvent::Deposit {
        stake: stake_a,
        owner: ed25519_address(&a).0,
        amount: 2_000_000_000,
    };
    // The first node's checkpoint 0 carries a malformed event of ours next to the deposit
    // (refused whole); the second serves the honest chain after some injected errors.
    let bad = Arc::new(Mutex::new(ChainState::default()));
    bad.lock()
        .unwrap()
        .push(vec![vec![ChainEvent::Malformed, deposit.clone()]]);
    let good = Arc::new(Mutex::new(ChainState::default()));
    good.lock().unwrap().push(vec![vec![deposit]]);
    good.lock().unwrap().faults.errors = 2;
    let first = sui_fixture::start(rt.handle(), package, bad.clone());
    let second = sui_fixture::start_sharing_ca(rt.handle(), package, good.clone(), &first);
    let dev = SuiDev::start(
        &package,
        &[first.addr, second.addr],
        &first.ca_pem,
        &["--min-trust-level=node-read"],
    );
    dev.register_until(&a, &stake_a, "failover-a", 200);
    let logs = dev.logs();
    assert!(
        logs.contains("does not match the schema") && logs.contains("refused the node's data"),
        "{logs}"
    );
    assert!(logs.contains("injected error"), "{logs}");
    assert!(bad.lock().unwrap().served >= 1 && good.lock().unwrap().served >= 3);

    // The good node goes away; the reader fails over back to the first, which has since
    // been fixed, and keeps following the chain from where the core stands.
    drop(second);
    {
        let mut b = bad.lock().unwrap();
        b.checkpoints = good.lock().unwrap().checkpoints.clone();
        b.push(vec![vec![ChainEvent::Withdraw { stake: stake_a }]]);
    }
    dev.register_until(&a, &stake_a, "failover-a", 401);
}

/// Issue 17: on `dev --replicas 3` the leader reads Sui and its batches reach the other
/// replicas in the log. `kill -9` of the leader part-way through the chain: the new leader
/// reads on from what was committed, so every replica ends with every event applied exactly
/// once (the stake's amount is the sum of its top-ups and slashes), a worker whose stake
/// appears after the failover is admitted, and no replica reports Sui as stale (a follower
/// does not read it: the leader's progress is what counts).
#[test]
fn on_replicas_the_leader_reads_sui_and_a_new_leader_goes_on_exactly_once() {
    const REPLICAS: usize = 3;
    const CHECKPOINTS: u64 = 200;
    let rt = runtime();
    let package = [0xa7; 32];
    let (owner, stake) = ([97u8; 32], [98u8; 32]);
    let chain = Arc::new(Mutex::new(ChainState::default()));
    let (checkpoints, expected) = sui_fixture::top_ups(stake, owner, CHECKPOINTS);
    let mut checkpoints = checkpoints.into_iter();
    {
        let mut c = chain.lock().unwrap();
        for transactions in checkpoints.by_ref().take(CHECKPOINTS as usize / 2) {
            c.push(transactions);
        }
    }
    let node = sui_fixture::start(rt.handle(), package, chain.clone());
    let dev = SuiDev::start_with(
        &package,
        &[node.addr],
        &node.ca_pem,
        &["--replicas", "3"],
        &["--sui-stale-after=2"],
    );

    // The leader reads the first half; the second half comes slowly (200 ms a read, 16 in
    // flight), and the leader is killed part-way through it.
    let deadline = Instant::now() + Duration::from_secs(90);
    let half = CHECKPOINTS / 2;
    while !(0..REPLICAS).any(|slot| {
        dev.replica_stake(slot, &stake)
            .is_some_and(|(c, _, _)| c == half - 1)
    }) {
        assert!(
            Instant::now() < deadline,
            "no replica read the first half of the chain:\n{}",
            dev.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    {
        let mut c = chain.lock().unwrap();
        c.faults.delay = Duration::from_millis(200);
        for transactions in checkpoints {
            c.push(transactions);
        }
    }
    let (leader, at_kill) = loop {
        if let Some(slot) = dev.leading_slot(REPLICAS)
            && let Some((checkpoint, _, _)) = dev.replica_stake(slot, &stake)
            && checkpoint >= half + 10
        {
            break (slot, checkpoint);
        }
        assert!(
            Instant::now() < deadline,
            "no replica led and read Sui:\n{}",
            dev.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let pid = dev.replica_pid(leader).expect("the leader's pid");
    nautilus_tests::signal(pid, 9);
    assert!(
        at_kill < CHECKPOINTS - 1,
        "the whole chain was read before the kill: nothing left for the next leader"
    );

    // Every replica (the killed one restarted by dev under a new id) ends at the chain's last
    // checkpoint with each event applied once.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let positions: Vec<_> = (0..REPLICAS)
            .map(|slot| dev.replica_stake(slot, &stake))
            .collect();
        if positions
            .iter()
            .all(|p| p.as_ref().is_some_and(|(c, _, _)| *c == CHECKPOINTS - 1))
        {
            for (slot, position) in positions.iter().enumerate() {
                let (_, amount, trust) = position.as_ref().unwrap();
                assert_eq!(
                    *amount,
                    expected.to_string(),
                    "replica {slot}: the stake's amount after the failover"
                );
                assert_eq!(trust, "node-read", "replica {slot}");
            }
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the replicas did not all read the chain after the leader was killed (at {at_kill}): {positions:?}\n{}",
            dev.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let new_leader = dev
        .leading_slot(REPLICAS)
        .expect("a leader after the failover");
    assert_ne!(new_leader, leader, "the killed replica cannot lead at once");

    // A stake deposited after the failover admits its worker (registered through the proxy).
    let (secret, stake2) = ([99u8; 32], [100u8; 32]);
    chain.lock().unwrap().push(vec![vec![ChainEvent::Deposit {
        stake: stake2,
        owner: ed25519_address(&secret).0,
        amount: 2_000_000_000,
    }]]);
    dev.register_until(&secret, &stake2, "replica-sui-worker", 200);

    // Past the staleness limit, no replica reports Sui as stale: the leader reaches the tip,
    // and the followers (the deposed leader's new process among them) do not read Sui.
    std::thread::sleep(Duration::from_secs(3));
    for slot in 0..REPLICAS {
        let (status, text) = dev
            .replica_request_within(slot, "GET", "/readyz?verbose", None, Duration::from_secs(5))
            .expect("readyz");
        assert!(
            text.contains("[+]sui-stake-registry ok"),
            "replica {slot} ({status}): {text}"
        );
    }
}
