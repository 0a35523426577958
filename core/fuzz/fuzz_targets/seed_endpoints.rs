//! The seed's worker endpoints: `register-worker` and `heartbeat` bodies with their
//! `X-Seal-Token` header, `sui-events` pushes (the Sui event JSON a relay sends) and reads, and
//! Seal-token parsing on its own, against a server that knows one staker's deposit.
//!
//! Input: `control FF node FF token FF body`, where `control` is [endpoint, token mode, auth,
//! iat offset, exp offset, timestamp offset]. Token mode 0 signs a real token for `node` (so the
//! fuzzer gets past the signature to the claims, stake and registration checks), 1 sends
//! `token` verbatim, 2 sends none. An empty body with mode 0 becomes the body a worker sends.
//!
//! Invariants: no panic, no unbounded allocation, a refused request leaves the store unchanged.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use nautilus_core::api::{ApiRequest, Method};
use nautilus_core::cluster::Cluster;
use nautilus_core::token::{self, SealClaims, ed25519_address, hex32, mint_ed25519};

const SECRET: [u8; 32] = [1; 32];
const STAKE: [u8; 32] = [101; 32];

fn server() -> Cluster {
    let mut s = common::bare_server();
    let pkg = hex32(&common::PACKAGE);
    let event = serde_json::json!({"checkpoint": 1, "events": [{
        "id": {"txDigest": "4vJ9JU1bJJE96FWSJKvHsmmFADCg4gpZQff4P3bkLKi", "eventSeq": "0"},
        "packageId": pkg, "transactionModule": "staking", "sender": "0x00",
        "type": format!("{pkg}::staking::StakeDeposited"),
        "parsedJson": {"stake_id": hex32(&STAKE), "owner": ed25519_address(&SECRET).to_hex(),
            "amount": "2000000000"},
        "timestampMs": "1"}]});
    let body = serde_json::to_vec(&event).unwrap_or_default();
    common::admin_call(
        &mut s,
        Method::Post,
        "/api/v1/sui-events",
        "application/json",
        &body,
    );
    s
}

fn offset(byte: u8) -> u64 {
    // Around the server's clock: -128 .. +127 minutes.
    common::NOW
        .secs()
        .saturating_add_signed((i64::from(byte as i8)) * 60)
}

fuzz_target!(|data: &[u8]| {
    let parts = common::fields(data, 4);
    let control = common::field(&parts, 0);
    let byte = |i: usize| control.get(i).copied().unwrap_or(0);
    let node = common::text(&parts, 1);
    let raw_token = common::text(&parts, 2);
    let body = common::field(&parts, 3);

    let _ = token::parse(&raw_token);

    let (method, path) = match byte(0) % 4 {
        0 => (Method::Post, "/api/v1/register-worker"),
        1 => (Method::Post, "/api/v1/heartbeat"),
        2 => (Method::Post, "/api/v1/sui-events"),
        _ => (Method::Get, "/api/v1/sui-events"),
    };
    let minted = mint_ed25519(
        &SECRET,
        &SealClaims {
            node_id: node.clone(),
            stake_id: STAKE,
            iat: offset(byte(3)),
            exp: offset(byte(4)),
        },
    );
    let header = match byte(1) % 3 {
        0 => Some(minted.as_str()),
        1 => Some(raw_token.as_str()),
        _ => None,
    };
    let worker_body;
    let body = if body.is_empty() && byte(1) % 3 == 0 {
        worker_body = serde_json::to_vec(&serde_json::json!({
            "node_id": node, "seal_token": minted, "timestamp": offset(byte(5))}))
        .unwrap_or_default();
        &worker_body[..]
    } else {
        body
    };
    let admin = format!("Bearer {}", common::ADMIN);
    let relay = format!("Bearer {}", common::RELAY);

    let mut s = server();
    // Twice: a registration then a heartbeat with the same token finds the first's state.
    for round in 0..2 {
        let mut req = ApiRequest::new(method, path);
        if round == 1 && method == Method::Post && path.ends_with("register-worker") {
            req = ApiRequest::new(Method::Post, "/api/v1/heartbeat");
        }
        req.seal_token = header;
        req.authorization = match byte(2) % 3 {
            0 => None,
            1 => Some(relay.as_str()),
            _ => Some(admin.as_str()),
        };
        req.content_type = Some("application/json");
        req.body = body;
        let (revision, count) = (s.store().revision(), s.store().len());
        let Some(response) = s.handle_request(common::NOW, &req).into_response() else {
            continue;
        };
        if response.status >= 400 {
            assert_eq!(
                (s.store().revision(), s.store().len()),
                (revision, count),
                "a refused request ({}) changed the store: {}",
                response.status,
                String::from_utf8_lossy(&response.body)
            );
        }
    }
});
