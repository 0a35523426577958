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
use sui_fixture::dev::{SuiDev, runtime};
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
