//! Seal token validation figures, single thread, in core: the signature path (a token not seen
//! before, full parse + signature + policy) and the cached path (a token already verified: only
//! the policy and stake checks), side by side with the goals of issue 3. Run it in release:
//! `cargo run --release -p nautilus-tests --bin token_bench`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use nautilus_core::UnixTime;
use nautilus_core::stake::{StakeLimits, StakeRegistry};
use nautilus_core::token::{
    SealClaims, TokenPolicy, TokenValidator, ed25519_address, hex32, mint_ed25519, parse,
};

const PKG: [u8; 32] = [0x42; 32];
const STAKE: [u8; 32] = [0x5a; 32];
const KEY: [u8; 32] = [9; 32];
const IAT: u64 = 1_767_225_600;
const RUN: Duration = Duration::from_secs(2);

// Made with @mysten/sui (tests/sui/mint.mjs): secp256k1 and secp256r1 personal-message tokens.
const SECP256K1: &str = "seal1.eyJub2RlX2lkIjoid29ya2VyLTAwMDEucG9vbC1hLmV4YW1wbGUuY29tIiwic3Rha2VfaWQiOiIweGFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWIiLCJpYXQiOjE3NjcyMjU2MDAsImV4cCI6MTc2NzMxMjAwMH0.Ab8T2kCbPJJUQqfpulmT6lKAgwHJx19rJgjYltI7Z5EdHaXYrQFfMiFqlOklWvXUDKm8Z1K55Y3EFRm4sm9-G28CLj2uPA-RJgarndnpu7NEM7VFJxyKn_SHsOBfTVrn1k8";
const SECP256R1: &str = "seal1.eyJub2RlX2lkIjoid29ya2VyLTAwMDEucG9vbC1hLmV4YW1wbGUuY29tIiwic3Rha2VfaWQiOiIweGFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWIiLCJpYXQiOjE3NjcyMjU2MDAsImV4cCI6MTc2NzMxMjAwMH0.AqbI8SIRFckTCl4dXLMRU2Whe9iWWYr-y3D7mpczNjRpfoN3sukzWU9Oyr0IsONVUll5UaUOOx0A6Cs4TDUX2dECEKL8bt1mj9B7ocZ6uhEC9wfulqI1EIMFZWtVFIr_kEI";

fn registry() -> StakeRegistry {
    let mut r = StakeRegistry::new(StakeLimits::default());
    let owner = ed25519_address(&KEY);
    let body = format!(
        r#"{{"checkpoint":1,"events":[{{"id":{{"txDigest":"HWjQ1MtRkWZ3tTJ9ymgCyGLbbbg1fBd7xRkPaJ2J5Nty","eventSeq":"0"}},"type":"{p}::staking::StakeDeposited","parsedJson":{{"stake_id":"{s}","owner":"{owner}","amount":"5000000000"}}}}]}}"#,
        p = hex32(&PKG),
        s = hex32(&STAKE),
    );
    r.apply_push(body.as_bytes(), &PKG, UnixTime::from_secs(IAT))
        .expect("stake event");
    r
}

/// Runs `f` over and over for RUN; returns calls per second.
fn rate(mut f: impl FnMut(usize)) -> f64 {
    let start = Instant::now();
    let mut n = 0usize;
    while start.elapsed() < RUN {
        for _ in 0..64 {
            f(n);
            n += 1;
        }
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    if cfg!(debug_assertions) {
        eprintln!("note: debug build; run with --release for meaningful figures");
    }
    let stakes = registry();
    let now = UnixTime::from_secs(IAT + 1);
    // Distinct tokens (different lifetimes), so the signature path never hits a cache.
    let tokens: Vec<String> = (0..4096u64)
        .map(|i| {
            mint_ed25519(
                &KEY,
                &SealClaims {
                    node_id: format!("worker-{i}.pool-a"),
                    stake_id: STAKE,
                    iat: IAT,
                    exp: IAT + 3600 + i,
                },
            )
        })
        .collect();

    let mut uncached = TokenValidator::new(TokenPolicy {
        cache_entries: 0,
        ..TokenPolicy::default()
    });
    let signature = rate(|i| {
        let t = &tokens[i % tokens.len()];
        let id = uncached.validate(t, now, None, &stakes).expect("valid");
        black_box(id);
    });

    let mut cached = TokenValidator::new(TokenPolicy::default());
    let nodes: Vec<String> = (0..tokens.len())
        .map(|i| format!("worker-{i}.pool-a"))
        .collect();
    // A working set of 1,024 live tokens, as many workers heartbeating would present.
    let working = 1024;
    for (t, n) in tokens.iter().zip(&nodes).take(working) {
        cached
            .validate(t, now, Some(n), &stakes)
            .expect("valid token");
    }
    let cached_rate = rate(|i| {
        let k = i % working;
        let id = cached
            .validate(&tokens[k], now, Some(&nodes[k]), &stakes)
            .expect("valid");
        black_box(id);
    });

    let ed = rate(|i| {
        black_box(parse(black_box(&tokens[i % tokens.len()])).expect("valid"));
    });
    let k1 = rate(|_| {
        black_box(parse(black_box(SECP256K1)).expect("valid"));
    });
    let r1 = rate(|_| {
        black_box(parse(black_box(SECP256R1)).expect("valid"));
    });

    println!(
        "Seal token validation, core, single thread ({}s per figure)",
        RUN.as_secs()
    );
    println!("{:<44} {:>14} {:>14}", "path", "per second", "goal");
    println!(
        "{:<44} {:>14.0} {:>14}",
        "signature (ed25519, full validate)", signature, ">= 20,000"
    );
    println!(
        "{:<44} {:>14.0} {:>14}",
        "cached (1,024 live tokens, full policy)", cached_rate, ">= 1,000,000"
    );
    println!(
        "{:<44} {:>14.0} {:>14}",
        "signature (ed25519, parse only)", ed, "-"
    );
    println!(
        "{:<44} {:>14.0} {:>14}",
        "signature (secp256k1, parse)", k1, "-"
    );
    println!(
        "{:<44} {:>14.0} {:>14}",
        "signature (secp256r1, parse)", r1, "-"
    );
}
