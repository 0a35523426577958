//! Sui figures at level 1 (`node-read`) and level 2 (`light-client`), side by side, against
//! `nautilus-proxy dev --sui-node` and the fixture full nodes (level 2: checkpoints BLS-signed
//! by a 4-member test committee, the package's authenticated event stream with its proofs):
//! events applied per second from a backlog of 100,000 staking events; time from a deposit on
//! the fixture chain to an admitted worker (p50/p99); catch-up after a simulated one-hour
//! outage (14,400 checkpoints at Sui's ~4 per second, produced at once).
//!
//! `sui_bench [node-read|light-client]` runs one level; no argument runs both.

#[path = "../sui_fixture/mod.rs"]
#[allow(dead_code, unreachable_pub)]
mod sui_fixture;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nautilus_core::token::ed25519_address;
use sui_fixture::dev::{SuiDev, runtime};
use sui_fixture::light::{LightChain, start_light};
use sui_fixture::{ChainEvent, ChainState};

fn wait_for(dev: &SuiDev, token: &str, checkpoint: u64, limit: Duration) -> Duration {
    let started = Instant::now();
    while dev.checkpoint(token).is_none_or(|c| c < checkpoint) {
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

/// What one level measured.
struct Figures {
    backlog: Duration,
    admit_p50: Duration,
    admit_p99: Duration,
    catch_up: Duration,
}

/// A scripted chain at either level, as the bench drives it.
trait Chain {
    /// Appends a checkpoint; returns the checkpoint the registry reaches when it is applied.
    fn push(&self, transactions: Vec<Vec<ChainEvent>>) -> u64;
    fn set_down(&self, down: bool);
}

impl Chain for Arc<Mutex<ChainState>> {
    fn push(&self, transactions: Vec<Vec<ChainEvent>>) -> u64 {
        self.lock().unwrap().push(transactions)
    }
    fn set_down(&self, down: bool) {
        self.lock().unwrap().faults.down = down;
    }
}

impl Chain for Arc<Mutex<LightChain>> {
    fn push(&self, transactions: Vec<Vec<ChainEvent>>) -> u64 {
        self.lock().unwrap().push(transactions)
    }
    fn set_down(&self, down: bool) {
        self.lock().unwrap().faults.down = down;
    }
}

fn main() {
    let only = std::env::args().nth(1);
    let runs = |level: &str| only.as_deref().is_none_or(|o| o == level);
    let rt = runtime();
    let level1 = runs("node-read").then(|| {
        let package = [0xbe; 32];
        let chain = Arc::new(Mutex::new(ChainState::default()));
        chain.lock().unwrap().push(vec![]);
        let node = sui_fixture::start(rt.handle(), package, chain.clone());
        let dev = SuiDev::start(&package, &[node.addr], &node.ca_pem, &[]);
        wait_for(&dev, &dev.admin_token(), 0, Duration::from_secs(30));
        println!("level 1 (node-read):");
        measure(&dev, &chain)
    });
    let level2 = runs("light-client").then(|| {
        use base64::Engine as _;
        let package = [0xbf; 32];
        let chain = Arc::new(Mutex::new(LightChain::new(package, 4)));
        let node = start_light(rt.handle(), chain.clone());
        let anchor = base64::engine::general_purpose::STANDARD
            .encode(chain.lock().unwrap().trust_anchor_bcs());
        let dev = SuiDev::start(
            &package,
            &[node.addr],
            &node.ca_pem,
            &[
                &format!("--sui-trust-anchor={anchor}"),
                "--min-trust-level=light-client",
            ],
        );
        // The stream starts once the reader has proven the (empty) head at the tip.
        let secret = [0xee; 32];
        let stake = [0xef; 32];
        chain.push(vec![vec![ChainEvent::Deposit {
            stake,
            owner: ed25519_address(&secret).0,
            amount: 2_000_000_000,
        }]]);
        dev.register_until(&secret, &stake, "bench-warmup", 200);
        println!("level 2 (light-client):");
        measure(&dev, &chain)
    });
    if let (Some(one), Some(two)) = (level1, level2) {
        let ratio = |a: Duration, b: Duration| b.as_secs_f64() / a.as_secs_f64();
        println!("level 2 / level 1 (time ratios, >1 = level 2 slower):");
        println!(
            "  backlog {:.2}x, deposit→admitted p50 {:.2}x p99 {:.2}x, 1-hour catch-up {:.2}x",
            ratio(one.backlog, two.backlog),
            ratio(one.admit_p50, two.admit_p50),
            ratio(one.admit_p99, two.admit_p99),
            ratio(one.catch_up, two.catch_up)
        );
    }
}

fn measure(dev: &SuiDev, chain: &dyn Chain) -> Figures {
    let token = dev.admin_token();

    // 1. Backlog: 100 checkpoints x 100 transactions x 10 deposits over 10,000 stakes.
    let owner = [0x42; 32];
    let mut last = 0;
    {
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
            last = chain.push(txs);
        }
    }
    let backlog = wait_for(dev, &token, last, Duration::from_secs(600));
    let took = backlog;
    println!(
        "backlog: 100,000 staking events in 100 checkpoints applied in {:.2} s = {:.0} events/s",
        took.as_secs_f64(),
        100_000.0 / took.as_secs_f64()
    );

    // 2. Deposit on the chain → worker admitted.
    let mut samples = Vec::new();
    for i in 0..40u8 {
        // Deposits land at varied points of the reader's poll cycle (not right after the
        // previous admission, which would catch the reader awake).
        std::thread::sleep(Duration::from_millis(u64::from(i) * 37 % 150));
        let secret = [i.wrapping_add(1); 32];
        let stake = [i.wrapping_add(100); 32];
        chain.push(vec![vec![ChainEvent::Deposit {
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
    chain.set_down(true);
    let mut last = 0;
    {
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
            let checkpoint = chain.push(txs);
            if n % 10 == 0 {
                last = checkpoint;
            }
        }
    }
    std::thread::sleep(Duration::from_secs(3));
    chain.set_down(false);
    let took = wait_for(dev, &token, last, Duration::from_secs(1200));
    println!(
        "catch-up after a 1-hour outage (14,400 checkpoints, 1,440 staking events; to the last event): {:.2} s ({:.0} checkpoints/s; includes the reconnect backoff)",
        took.as_secs_f64(),
        14_400.0 / took.as_secs_f64()
    );
    Figures {
        backlog,
        admit_p50: percentile(&samples, 0.5),
        admit_p99: percentile(&samples, 0.99),
        catch_up: took,
    }
}
