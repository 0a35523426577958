//! Sui figures at level 1 (`node-read`), against `nautilus-proxy dev --sui-node` and the
//! fixture full node: events applied per second from a backlog of 100,000 staking events; time
//! from a deposit on the fixture chain to an admitted worker (p50/p99); catch-up after a
//! simulated one-hour outage (14,400 checkpoints at Sui's ~4 per second, produced at once).

#[path = "../sui_fixture/mod.rs"]
#[allow(dead_code, unreachable_pub)]
mod sui_fixture;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nautilus_core::token::ed25519_address;
use sui_fixture::dev::{SuiDev, runtime};
use sui_fixture::{ChainEvent, ChainState};

fn wait_for(dev: &SuiDev, token: &str, checkpoint: u64, limit: Duration) -> Duration {
    let started = Instant::now();
    while dev.checkpoint(token) != Some(checkpoint) {
        assert!(
            started.elapsed() < limit,
            "stuck at {:?}",
            dev.checkpoint(token)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    started.elapsed()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let rt = runtime();
    let package = [0xbe; 32];
    let chain = Arc::new(Mutex::new(ChainState::default()));
    chain.lock().unwrap().push(vec![]);
    let node = sui_fixture::start(rt.handle(), package, chain.clone());
    let dev = SuiDev::start(&package, &[node.addr], &node.ca_pem, &[]);
    let token = dev.admin_token();
    wait_for(&dev, &token, 0, Duration::from_secs(30));

    // 1. Backlog: 100 checkpoints x 100 transactions x 10 deposits over 10,000 stakes.
    let owner = [0x42; 32];
    {
        let mut c = chain.lock().unwrap();
        for cp in 0..100u64 {
            let txs = (0..100u64)
                .map(|t| {
                    (0..10u64)
                        .map(|e| {
                            let i = (cp * 1000 + t * 10 + e) % 10_000;
                            let mut stake = [0u8; 32];
                            stake[..8].copy_from_slice(&i.to_le_bytes());
                            ChainEvent::Deposit {
                                stake,
                                owner,
                                amount: 1_000_000,
                            }
                        })
                        .collect()
                })
                .collect();
            c.push(txs);
        }
    }
    let took = wait_for(&dev, &token, 100, Duration::from_secs(600));
    println!(
        "backlog: 100,000 staking events in 100 checkpoints applied in {:.2} s = {:.0} events/s",
        took.as_secs_f64(),
        100_000.0 / took.as_secs_f64()
    );

    // 2. Deposit on the chain → worker admitted.
    let mut samples = Vec::new();
    for i in 0..40u8 {
        let secret = [i.wrapping_add(1); 32];
        let stake = [i.wrapping_add(100); 32];
        chain.lock().unwrap().push(vec![vec![ChainEvent::Deposit {
            stake,
            owner: ed25519_address(&secret).0,
            amount: 2_000_000_000,
        }]]);
        let started = Instant::now();
        loop {
            if dev.register(&secret, &stake, &format!("bench-{i}")).status == 200 {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(30));
            std::thread::sleep(Duration::from_millis(2));
        }
        samples.push(started.elapsed());
    }
    samples.sort();
    println!(
        "deposit → admitted ({} deposits): p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms (reader polls the tip every 100 ms)",
        samples.len(),
        percentile(&samples, 0.5).as_secs_f64() * 1e3,
        percentile(&samples, 0.99).as_secs_f64() * 1e3,
        samples.last().unwrap().as_secs_f64() * 1e3
    );

    // 3. One hour of Sui while the node is unreachable, then recovery.
    let last = {
        let mut c = chain.lock().unwrap();
        c.faults.down = true;
        for n in 0..14_400u64 {
            let txs = if n % 10 == 0 {
                let mut stake = [0x77; 32];
                stake[..8].copy_from_slice(&n.to_le_bytes());
                vec![vec![ChainEvent::Deposit {
                    stake,
                    owner,
                    amount: 1_000_000,
                }]]
            } else {
                vec![vec![ChainEvent::Foreign]]
            };
            c.push(txs);
        }
        c.checkpoints.len() as u64 - 1
    };
    std::thread::sleep(Duration::from_secs(3));
    chain.lock().unwrap().faults.down = false;
    let took = wait_for(&dev, &token, last, Duration::from_secs(1200));
    println!(
        "catch-up after a 1-hour outage (14,400 checkpoints, 1,440 staking events): {:.2} s ({:.0} checkpoints/s; includes the reconnect backoff)",
        took.as_secs_f64(),
        14_400.0 / took.as_secs_f64()
    );
}
