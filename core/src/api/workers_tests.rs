//! Stakers joining, in virtual time: stake events, registration, heartbeats, NodeRestriction and
//! revocation, against the core alone.

use alloc::string::String;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{ApiRequest, Cluster, Method};
use crate::token::{SealClaims, ed25519_address, hex32, mint_ed25519};
use crate::{Config, UnixTime};

pub(super) const ADMIN: &str = "admin";
pub(super) const PACKAGE: [u8; 32] = [0xab; 32];
pub(super) const NOW: UnixTime = UnixTime::from_secs(1_750_000_000);

pub(super) struct Staker {
    secret: [u8; 32],
    stake: [u8; 32],
}

impl Staker {
    pub(super) fn new(seed: u8) -> Self {
        Self {
            secret: [seed; 32],
            stake: [seed.wrapping_add(100); 32],
        }
    }

    /// The stake object id.
    pub(super) fn stake(&self) -> [u8; 32] {
        self.stake
    }

    pub(super) fn token(&self, node: &str, iat: u64, exp: u64) -> String {
        mint_ed25519(
            &self.secret,
            &SealClaims {
                node_id: node.into(),
                stake_id: self.stake,
                iat,
                exp,
            },
        )
    }

    fn owner(&self) -> String {
        ed25519_address(&self.secret).to_hex()
    }
}

pub(super) fn server() -> Cluster {
    let config = Config {
        admin_token_sha256: Some(Sha256::digest(ADMIN.as_bytes()).into()),
        sui_package: Some(PACKAGE),
        ..Config::default()
    };
    Cluster::new(config, [3; 32], NOW)
}

pub(super) fn call(
    s: &mut Cluster,
    method: Method,
    path: &str,
    body: &Value,
    bearer: Option<&str>,
    seal: Option<&str>,
) -> (u16, Value) {
    let bytes = serde_json::to_vec(body).unwrap();
    let auth = bearer.map(|b| alloc::format!("Bearer {b}"));
    let mut req = ApiRequest::new(method, path);
    req.authorization = auth.as_deref();
    req.seal_token = seal;
    req.content_type = Some(if method == Method::Patch {
        "application/merge-patch+json"
    } else {
        "application/json"
    });
    if !body.is_null() {
        req.body = &bytes;
    }
    let r = crate::cluster::test_harness::answer(s, NOW, &req)
        .into_response()
        .unwrap();
    (
        r.status,
        serde_json::from_slice(&r.body).unwrap_or(Value::Null),
    )
}

pub(super) fn event(kind: &str, digest: &str, parsed: Value) -> Value {
    let pkg = hex32(&PACKAGE);
    json!({"id": {"txDigest": digest, "eventSeq": "0"}, "packageId": pkg, "transactionModule": "staking",
        "sender": "0x00", "type": alloc::format!("{pkg}::staking::{kind}"), "parsedJson": parsed, "timestampMs": "1"})
}

pub(super) fn deposit(
    s: &mut Cluster,
    staker: &Staker,
    checkpoint: u64,
    digest: &str,
) -> (u16, Value) {
    let body = json!({"checkpoint": checkpoint, "events": [event("StakeDeposited", digest,
        json!({"stake_id": hex32(&staker.stake), "owner": staker.owner(), "amount": "2000000000"}))]});
    call(
        s,
        Method::Post,
        "/api/v1/sui-events",
        &body,
        Some(ADMIN),
        None,
    )
}

pub(super) fn seed(
    s: &mut Cluster,
    endpoint: &str,
    node: &str,
    token: &str,
    timestamp: u64,
) -> (u16, Value) {
    let body =
        json!({"node_id": node, "seal_token": token, "timestamp": timestamp, "extra": "ignored"});
    call(
        s,
        Method::Post,
        &alloc::format!("/api/v1/{endpoint}"),
        &body,
        None,
        Some(token),
    )
}

pub(super) const D1: &str = "4vJ9JU1bJJE96FWSJKvHsmmFADCg4gpZQff4P3bkLKi";
pub(super) const D2: &str = "5vJ9JU1bJJE96FWSJKvHsmmFADCg4gpZQff4P3bkLKi";
pub(super) const D3: &str = "6vJ9JU1bJJE96FWSJKvHsmmFADCg4gpZQff4P3bkLKi";

#[test]
fn a_staker_registers_heartbeats_and_is_restricted_to_its_own_node() {
    let mut s = server();
    let (a, b) = (Staker::new(1), Staker::new(2));
    assert_eq!(deposit(&mut s, &a, 1, D1).1["applied"], 1);
    assert_eq!(deposit(&mut s, &b, 2, D2).1["applied"], 1);
    let (ta, tb) = (
        a.token("node-a", NOW.secs(), NOW.secs() + 3600),
        b.token("node-b", NOW.secs(), NOW.secs() + 3600),
    );
    let (code, body) = seed(&mut s, "register-worker", "node-a", &ta, NOW.secs());
    assert_eq!(
        (code, body["status"].as_str(), body["node_id"].as_str()),
        (200, Some("registered"), Some("node-a")),
        "{body}"
    );
    assert_eq!(
        seed(&mut s, "register-worker", "node-b", &tb, NOW.secs()).0,
        200
    );
    let (code, body) = seed(&mut s, "heartbeat", "node-a", &ta, NOW.secs());
    assert_eq!(
        (code, body["status"].as_str(), body["timestamp"].as_u64()),
        (200, Some("acknowledged"), Some(NOW.secs()))
    );

    let (_, node) = call(
        &mut s,
        Method::Get,
        "/api/v1/nodes/node-a",
        &Value::Null,
        Some(ADMIN),
        None,
    );
    assert_eq!(
        node["metadata"]["annotations"]["nautilus.io/staker-address"],
        a.owner()
    );
    assert_eq!(
        node["metadata"]["annotations"]["nautilus.io/stake-trust-level"],
        "relay-pushed"
    );
    let (code, _) = call(
        &mut s,
        Method::Get,
        "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/node-a",
        &Value::Null,
        Some(ADMIN),
        None,
    );
    assert_eq!(code, 200);

    // NodeRestriction: its own node yes, the other node, secrets and unfiltered pod lists no.
    assert_eq!(
        call(
            &mut s,
            Method::Get,
            "/api/v1/nodes/node-a",
            &Value::Null,
            Some(&ta),
            None
        )
        .0,
        200
    );
    let (code, body) = call(
        &mut s,
        Method::Get,
        "/api/v1/nodes/node-b",
        &Value::Null,
        Some(&ta),
        None,
    );
    assert_eq!(code, 403);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("nodes \"node-b\" is forbidden: User \"system:node:node-a\" cannot get"),
        "{body}"
    );
    assert_eq!(
        call(
            &mut s,
            Method::Get,
            "/api/v1/secrets",
            &Value::Null,
            Some(&ta),
            None
        )
        .0,
        403
    );
    assert_eq!(
        call(
            &mut s,
            Method::Get,
            "/api/v1/pods",
            &Value::Null,
            Some(&ta),
            None
        )
        .0,
        403
    );
    assert_eq!(
        call(
            &mut s,
            Method::Get,
            "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-a",
            &Value::Null,
            Some(&ta),
            None
        )
        .0,
        200
    );
    assert_eq!(
        call(
            &mut s,
            Method::Get,
            "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-b",
            &Value::Null,
            Some(&ta),
            None
        )
        .0,
        403
    );
    let pod = json!({"metadata": {"name": "p"}, "spec": {"nodeName": "node-a", "containers": [{"name": "c", "image": "nginx"}]}});
    assert_eq!(
        call(
            &mut s,
            Method::Post,
            "/api/v1/namespaces/default/pods",
            &pod,
            Some(&ta),
            None
        )
        .0,
        403,
        "nodes don't create pods"
    );
    assert_eq!(
        call(
            &mut s,
            Method::Post,
            "/api/v1/namespaces/default/pods",
            &pod,
            Some(ADMIN),
            None
        )
        .0,
        201
    );
    let running = json!({"status": {"phase": "Running"}});
    assert_eq!(
        call(
            &mut s,
            Method::Patch,
            "/api/v1/namespaces/default/pods/p/status",
            &running,
            Some(&ta),
            None
        )
        .0,
        200
    );
    assert_eq!(
        call(
            &mut s,
            Method::Patch,
            "/api/v1/namespaces/default/pods/p/status",
            &running,
            Some(&tb),
            None
        )
        .0,
        403
    );
    assert_eq!(
        call(
            &mut s,
            Method::Patch,
            "/api/v1/namespaces/default/pods/p",
            &json!({"metadata": {"labels": {"x": "y"}}}),
            Some(&ta),
            None
        )
        .0,
        403
    );

    let not_mine = call(
        &mut s,
        Method::Delete,
        "/api/v1/namespaces/default/pods/p",
        &Value::Null,
        Some(&tb),
        None,
    );
    assert_eq!(
        not_mine.0, 403,
        "a node may not delete pods bound elsewhere"
    );

    // A withdrawn stake: the next call is 401 with the reason; the node is cordoned, tainted,
    // and the pod that did not tolerate the taint is evicted.
    let body = json!({"checkpoint": 3, "events": [event("StakeWithdrawn", D3, json!({"stake_id": hex32(&a.stake)}))]});
    assert_eq!(
        call(
            &mut s,
            Method::Post,
            "/api/v1/sui-events",
            &body,
            Some(ADMIN),
            None
        )
        .0,
        200
    );
    let (code, body) = seed(&mut s, "heartbeat", "node-a", &ta, NOW.secs());
    assert_eq!(code, 401);
    assert!(
        body["message"].as_str().unwrap().contains("withdrawn"),
        "{body}"
    );
    let (_, node) = call(
        &mut s,
        Method::Get,
        "/api/v1/nodes/node-a",
        &Value::Null,
        Some(ADMIN),
        None,
    );
    assert_eq!(node["spec"]["unschedulable"], true);
    assert_eq!(
        node["spec"]["taints"][0]["key"],
        "nautilus.io/stake-revoked"
    );
    // Evicted: terminating gracefully, for node-a's kubelet (whose token no longer works) or
    // an operator to finish.
    let (code, p) = call(
        &mut s,
        Method::Get,
        "/api/v1/namespaces/default/pods/p",
        &Value::Null,
        Some(ADMIN),
        None,
    );
    assert_eq!(code, 200, "{p}");
    assert_eq!(p["metadata"]["deletionGracePeriodSeconds"], 30, "{p}");
    assert_eq!(
        seed(&mut s, "heartbeat", "node-b", &tb, NOW.secs()).0,
        200,
        "other stakers are unaffected"
    );
}

#[test]
fn seed_endpoints_refuse_every_forgery_and_store_nothing() {
    let mut s = server();
    let a = Staker::new(1);
    deposit(&mut s, &a, 1, D1);
    let now = NOW.secs();
    let good = a.token("node-a", now, now + 3600);
    let before = s.store().revision();
    let forged = {
        let mut t = good.clone().into_bytes();
        let last = t.len() - 5;
        t[last] = if t[last] == b'A' { b'B' } else { b'A' };
        String::from_utf8(t).unwrap()
    };
    let cases: [(&str, String, &str, u64, Option<&str>); 7] = [
        ("forged signature", forged, "node-a", now, None),
        (
            "token for another node",
            a.token("node-b", now, now + 3600),
            "node-a",
            now,
            None,
        ),
        (
            "expired",
            a.token("node-a", now - 7200, now - 3600),
            "node-a",
            now,
            None,
        ),
        (
            "lifetime too long",
            a.token("node-a", now, now + 90_000),
            "node-a",
            now,
            None,
        ),
        (
            "unknown stake",
            Staker::new(9).token("node-a", now, now + 3600),
            "node-a",
            now,
            None,
        ),
        (
            "replayed timestamp",
            good.clone(),
            "node-a",
            now - 600,
            None,
        ),
        (
            "header differs",
            good.clone(),
            "node-a",
            now,
            Some("seal1.other"),
        ),
    ];
    for (what, token, node, timestamp, header) in cases {
        let body = json!({"node_id": node, "seal_token": token, "timestamp": timestamp});
        let (code, reply) = call(
            &mut s,
            Method::Post,
            "/api/v1/register-worker",
            &body,
            None,
            Some(header.unwrap_or(&token)),
        );
        assert_eq!(code, 401, "{what}: {reply}");
        assert_eq!(reply["status"], "error", "{what}");
    }
    let (code, _) = call(
        &mut s,
        Method::Post,
        "/api/v1/register-worker",
        &json!({"node_id": "node-a", "seal_token": good, "timestamp": now}),
        None,
        None,
    );
    assert_eq!(code, 401, "missing X-Seal-Token");
    let mut req = ApiRequest::new(Method::Post, "/api/v1/register-worker");
    req.seal_token = Some(&good);
    req.body = b"{\"node_id\": ";
    let r = crate::cluster::test_harness::answer(&mut s, NOW, &req)
        .into_response()
        .unwrap();
    assert_eq!(r.status, 400, "malformed JSON");
    assert_eq!(s.store().revision(), before, "nothing was stored");
    // Events: another package is ignored, a replayed checkpoint applies nothing, anonymous is 401.
    let other = json!({"checkpoint": 5, "events": [{"id": {"txDigest": D2, "eventSeq": "0"}, "packageId": "0x01",
        "transactionModule": "staking", "sender": "0x00", "type": "0x0000000000000000000000000000000000000000000000000000000000000001::staking::StakeDeposited",
        "parsedJson": {"stake_id": hex32(&[7; 32]), "owner": a.owner(), "amount": "5000000000"}, "timestampMs": "1"}]});
    let (_, reply) = call(
        &mut s,
        Method::Post,
        "/api/v1/sui-events",
        &other,
        Some(ADMIN),
        None,
    );
    assert_eq!(
        (reply["applied"].as_u64(), reply["ignored"].as_u64()),
        (Some(0), Some(1))
    );
    let (_, reply) = deposit(&mut s, &a, 1, D1);
    assert_eq!(reply["applied"], 0, "a replayed event applies once");
    assert_eq!(
        call(
            &mut s,
            Method::Post,
            "/api/v1/sui-events",
            &other,
            None,
            None
        )
        .0,
        401
    );
    let (code, position) = call(
        &mut s,
        Method::Get,
        "/api/v1/sui-events",
        &Value::Null,
        Some(ADMIN),
        None,
    );
    assert_eq!(
        (code, position["checkpoint"].as_u64()),
        (200, Some(5)),
        "a relay resumes after the last applied checkpoint"
    );
    assert_eq!(
        call(
            &mut s,
            Method::Get,
            "/api/v1/sui-events",
            &Value::Null,
            None,
            None
        )
        .0,
        401
    );
}

/// One staker with `nodes` registered workers, driven the way the runtime drives core: after
/// each request, `handle_timeout` runs whenever core says work is due.
struct Fleet {
    server: Cluster,
    staker: Staker,
    tokens: alloc::vec::Vec<(String, String)>,
    now: UnixTime,
}

impl Fleet {
    fn new(nodes: usize) -> Self {
        let mut server = server();
        let staker = Staker::new(21);
        assert_eq!(deposit(&mut server, &staker, 1, D1).0, 200);
        let exp = NOW.secs() + 86_400;
        let tokens = (0..nodes)
            .map(|i| {
                let node = alloc::format!("w-{i:05}");
                let token = staker.token(&node, NOW.secs(), exp);
                (node, token)
            })
            .collect();
        let mut fleet = Self {
            server,
            staker,
            tokens,
            now: NOW,
        };
        for i in 0..nodes {
            assert_eq!(fleet.send("register-worker", i), 200, "registration {i}");
        }
        fleet
    }

    fn send(&mut self, endpoint: &str, worker: usize) -> u16 {
        let (node, token) = &self.tokens[worker];
        let body = serde_json::to_vec(
            &json!({"node_id": node, "seal_token": token, "timestamp": self.now.secs()}),
        )
        .unwrap();
        let path = alloc::format!("/api/v1/{endpoint}");
        let mut req = ApiRequest::new(Method::Post, &path);
        req.seal_token = Some(token);
        req.content_type = Some("application/json");
        req.body = &body;
        let status = self
            .server
            .handle_request(self.now, &req)
            .into_response()
            .unwrap()
            .status;
        self.run_due();
        status
    }

    /// What the runtime's timer task does after a request.
    fn run_due(&mut self) {
        if self.server.poll_timeout().is_some_and(|t| t <= self.now) {
            self.server.handle_timeout(self.now);
        }
    }

    /// Every worker heartbeats once, spread evenly over `interval` seconds of virtual time.
    fn heartbeat_round(&mut self, interval: u64) {
        let n = self.tokens.len() as u64;
        let start = self.now;
        for i in 0..self.tokens.len() {
            self.now = UnixTime {
                nanos: start.nanos + interval * 1_000_000_000 * i as u64 / n,
            };
            assert_eq!(self.send("heartbeat", i), 200);
        }
        self.now = start.plus_secs(interval);
        self.run_due();
    }

    /// Store reads and node-lifecycle visits since start.
    fn work(&self) -> u64 {
        self.server.store().reads() + self.server.lifecycle.visits()
    }
}

#[test]
fn a_heartbeat_costs_the_same_work_at_1000_and_10000_nodes() {
    let per_heartbeat = |nodes: usize| {
        let mut fleet = Fleet::new(nodes);
        // Past the registrations' own writes, into the steady state of heartbeats every 10 s.
        fleet.heartbeat_round(10);
        let before = fleet.work();
        let sample = 500;
        for round in 0..2 {
            for i in 0..sample {
                fleet.now = UnixTime {
                    nanos: fleet.now.nanos + 10_000_000,
                };
                assert_eq!(fleet.send("heartbeat", (i * 7 + round) % nodes), 200);
            }
        }
        let ready = fleet.server.node_readiness();
        assert_eq!(ready.unreachable, 0, "no node flapped at {nodes} nodes");
        let _ = &fleet.staker;
        let per = (fleet.work() - before) as f64 / (2 * sample) as f64;
        std::eprintln!("{nodes} nodes: {per:.2} reads+visits per heartbeat");
        per
    };
    let small = per_heartbeat(1_000);
    let large = per_heartbeat(10_000);
    assert!(
        large <= small * 1.1,
        "work per heartbeat grew with the cluster: {small:.1} reads+visits at 1,000 nodes, \
         {large:.1} at 10,000"
    );
    assert!(small > 0.0, "the work count sees the heartbeats");
}

/// The stake-event budgets come from `Config`: a push over `max_stake_events_per_push` is
/// refused whole (413) and changes nothing; the same events one by one are applied.
#[test]
fn the_configured_stake_event_limit_refuses_a_larger_push_whole() {
    let config = Config {
        admin_token_sha256: Some(Sha256::digest(ADMIN.as_bytes()).into()),
        sui_package: Some(PACKAGE),
        max_stake_events_per_push: 1,
        ..Config::default()
    };
    let mut s = Cluster::new(config, [3; 32], NOW);
    let (a, b) = (Staker::new(1), Staker::new(2));
    let deposit_of = |staker: &Staker, digest: &str| {
        event(
            "StakeDeposited",
            digest,
            json!({"stake_id": hex32(&staker.stake), "owner": staker.owner(), "amount": "2000000000"}),
        )
    };
    let both = json!({"checkpoint": 1, "events": [deposit_of(&a, D1), deposit_of(&b, D2)]});
    let (code, status) = call(
        &mut s,
        Method::Post,
        "/api/v1/sui-events",
        &both,
        Some(ADMIN),
        None,
    );
    assert_eq!(code, 413, "{status}");
    let (_, position) = call(
        &mut s,
        Method::Get,
        "/api/v1/sui-events",
        &Value::Null,
        Some(ADMIN),
        None,
    );
    assert_eq!(
        position["checkpoint"],
        Value::Null,
        "nothing was applied: {position}"
    );
    assert_eq!(deposit(&mut s, &a, 1, D1).1["applied"], 1);
    assert_eq!(deposit(&mut s, &b, 2, D2).1["applied"], 1);
}
