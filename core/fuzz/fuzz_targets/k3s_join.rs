//! A K3s agent's join requests: the join token and basic-auth parsers on any text, and the
//! supervisor endpoints (`/cacerts`, `/v1-k3s/...`) with any credential, node headers and
//! request body (a certificate request is DER from the agent), against a server in enclave TLS
//! mode that knows one staker's deposit and has a cluster CA.
//!
//! Input: `control FF node FF header FF text FF body`, where `control` is [endpoint, credential
//! mode, method, iat offset, exp offset]. Credential mode 0 sends basic auth `node:<a token
//! signed for node>` (so the fuzzer reaches the node, stake and request checks), 1 sends
//! `header` verbatim as `Authorization`, 2 sends none; `text` goes to the join-token parsers.
//!
//! Invariants: no panic, no unbounded allocation, a refused request leaves the store unchanged.
#![no_main]

mod common;

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use nautilus_core::api::k3s::NodeHeaders;
use nautilus_core::api::{ApiRequest, Method};
use nautilus_core::cluster::Cluster;
use nautilus_core::token::{SealClaims, ed25519_address, hex32, mint_ed25519};
use nautilus_core::{Config, k3s};
use sha2::{Digest, Sha256};

const SECRET: [u8; 32] = [1; 32];
const STAKE: [u8; 32] = [101; 32];
const PATHS: &[&str] = &[
    "/cacerts",
    "/ping",
    "/v1-k3s/serving-kubelet.crt",
    "/v1-k3s/client-kubelet.crt",
    "/v1-k3s/client-kube-proxy.crt",
    "/v1-k3s/client-k3s-controller.crt",
    "/v1-k3s/client-ca.crt",
    "/v1-k3s/server-ca.crt",
    "/v1-k3s/config",
    "/v1-k3s/apiservers",
    "/v1-k3s/readyz",
    "/v1-k3s/connect",
    "/v1-k3s/server-bootstrap",
];

fn server() -> Cluster {
    let config = Config {
        admin_token_sha256: Some(Sha256::digest(common::ADMIN.as_bytes()).into()),
        sui_package: Some(common::PACKAGE),
        cluster_ca: nautilus_core::csr::authority::ClusterCa::from_secret(&[9; 32]),
        root_ca_pem: Some("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".into()),
        enclave_tls: true,
        ..Config::default()
    };
    let mut s = Cluster::new(config, [7; 32], common::NOW);
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
    common::NOW
        .secs()
        .saturating_add_signed((i64::from(byte as i8)) * 60)
}

fuzz_target!(|data: &[u8]| {
    let parts = common::fields(data, 5);
    let control = common::field(&parts, 0);
    let byte = |i: usize| control.get(i).copied().unwrap_or(0);
    let node = common::text(&parts, 1);
    let header = common::text(&parts, 2);
    let text = common::text(&parts, 3);
    let body = common::field(&parts, 4);

    let _ = k3s::parse_join_token(&text);
    let _ = k3s::seal_token_of(&text);
    let _ = k3s::ca_hash(k3s::canonical_bundle(&text).as_bytes());

    let minted = mint_ed25519(
        &SECRET,
        &SealClaims {
            node_id: node.clone(),
            stake_id: STAKE,
            iat: offset(byte(3)),
            exp: offset(byte(4)),
        },
    );
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("node:{minted}"))
    );
    let path = PATHS[usize::from(byte(0)) % PATHS.len()];
    let method = if byte(2) % 2 == 0 {
        Method::Post
    } else {
        Method::Get
    };
    let mut s = server();
    let mut req = ApiRequest::new(method, path);
    req.authorization = match byte(1) % 3 {
        0 => Some(basic.as_str()),
        1 => Some(header.as_str()),
        _ => None,
    };
    req.k3s_node = NodeHeaders {
        name: Some(node.as_str()),
        password: Some("0123456789abcdef"),
        ips: Some(header.as_str()),
    };
    req.body = body;
    let (revision, count) = (s.store().revision(), s.store().len());
    if let Err(refused) = s.admit_head(common::NOW, &req) {
        assert!(refused.status >= 400);
        return;
    }
    let Some(response) = s.handle_request(common::NOW, &req).into_response() else {
        return;
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
});
