//! Service allocation against the core alone: kube's refusals for explicit cluster IPs and node
//! ports, allocation on every path, release on delete and type change, and bookkeeping that
//! always equals what the stored Services hold, after any sequence of operations.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde_json::{Value, json};

use super::tests::{call, call_with, server};
use super::{Cluster, Method};
use crate::Config;
use crate::admission::services::Allocations;
use crate::net::{PortRange, ServiceCidr};

const SVCS: &str = "/api/v1/namespaces/default/services";

fn svc(name: &str, ty: &str, ip: Option<&str>, node_ports: &[u64]) -> Value {
    let ports: Vec<Value> = if node_ports.is_empty() {
        alloc::vec![json!({"name": "p0", "port": 80})]
    } else {
        node_ports
            .iter()
            .enumerate()
            .map(|(i, np)| {
                let mut p =
                    json!({"name": alloc::format!("p{i}"), "port": 80 + i, "protocol": "TCP"});
                if *np != 0 {
                    p["nodePort"] = json!(np);
                }
                p
            })
            .collect()
    };
    let mut spec = json!({"type": ty, "selector": {"app": name}, "ports": ports});
    if let Some(ip) = ip {
        spec["clusterIP"] = json!(ip);
    }
    if ty == "ExternalName" {
        spec["externalName"] = json!("example.com");
    }
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec})
}

fn create(s: &mut Cluster, body: Value) -> (u16, Value) {
    let r = call(s, Method::Post, SVCS, Some(body));
    (r.status, r.body)
}

#[track_caller]
fn assert_invalid(reply: (u16, Value), message: &str) {
    assert_eq!(reply.0, 422, "{}", reply.1);
    assert_eq!(reply.1["reason"], "Invalid");
    assert_eq!(reply.1["message"], message);
}

#[test]
fn explicit_values_are_checked_like_kube_s_allocators() {
    let mut s = server(Config::default());
    let kubernetes = call(
        &mut s,
        Method::Get,
        &alloc::format!("{SVCS}/kubernetes"),
        None,
    )
    .body;
    assert_eq!(kubernetes["spec"]["clusterIP"], "10.43.0.1");
    let (code, a) = create(&mut s, svc("a", "NodePort", Some("10.43.0.2"), &[30000]));
    assert_eq!(code, 201, "{a}");
    assert_eq!(a["spec"]["clusterIPs"], json!(["10.43.0.2"]));
    assert_invalid(
        create(&mut s, svc("b", "NodePort", None, &[30000])),
        "Service \"b\" is invalid: spec.ports[0].nodePort: Invalid value: 30000: provided port is already allocated",
    );
    assert_invalid(
        create(&mut s, svc("b", "ClusterIP", Some("10.43.0.2"), &[])),
        "Service \"b\" is invalid: spec.clusterIPs: Invalid value: []string{\"10.43.0.2\"}: failed to allocate IP 10.43.0.2: provided IP is already allocated",
    );
    assert_invalid(
        create(&mut s, svc("b", "NodePort", None, &[80])),
        "Service \"b\" is invalid: spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767",
    );
    assert_invalid(
        create(&mut s, svc("b", "ClusterIP", Some("8.8.8.8"), &[])),
        "Service \"b\" is invalid: spec.clusterIPs: Invalid value: []string{\"8.8.8.8\"}: failed to allocate IP 8.8.8.8: the provided IP (8.8.8.8) is not in the valid range. The range of valid IPs is 10.43.0.0/16",
    );
    assert_invalid(
        create(&mut s, svc("b", "ClusterIP", Some("not-an-ip"), &[])),
        "Service \"b\" is invalid: spec.clusterIPs[0]: Invalid value: \"not-an-ip\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
    );
    assert_invalid(
        create(&mut s, svc("b", "NodePort", None, &[30001, 30001])),
        "Service \"b\" is invalid: spec.ports[1].nodePort: Duplicate value: 30001",
    );
    // The network and broadcast addresses are not in the range either.
    assert_eq!(
        create(&mut s, svc("b", "ClusterIP", Some("10.43.255.255"), &[])).0,
        422
    );
    // Dynamic values come from above the static band, so explicit ones rarely collide.
    let (code, b) = create(&mut s, svc("b", "NodePort", None, &[0, 0]));
    assert_eq!(code, 201, "{b}");
    assert_eq!(b["spec"]["clusterIP"], "10.43.1.1");
    assert_eq!(b["spec"]["ports"][0]["nodePort"], 30086);
    assert_eq!(b["spec"]["ports"][1]["nodePort"], 30087);
    assert_invariant(&s);
}

#[test]
fn every_path_allocates_and_releases() {
    let mut s = server(Config::default());
    let path = alloc::format!("{SVCS}/a");
    assert_eq!(create(&mut s, svc("a", "ClusterIP", None, &[])).0, 201);
    // Patch to NodePort: a port is allocated and recorded, so nobody gets it again.
    let r = call(
        &mut s,
        Method::Patch,
        &path,
        Some(json!({"spec": {"type": "NodePort"}})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let port = r.body["spec"]["ports"][0]["nodePort"].as_u64().unwrap();
    let (_, b) = create(&mut s, svc("b", "NodePort", None, &[0]));
    assert_ne!(b["spec"]["ports"][0]["nodePort"].as_u64().unwrap(), port);
    assert_eq!(create(&mut s, svc("c", "NodePort", None, &[port])).0, 422);
    assert_invariant(&s);
    // Back to ClusterIP: the node port is released (and cleared from the object).
    let r = call(
        &mut s,
        Method::Patch,
        &path,
        Some(json!({"spec": {"type": "ClusterIP"}})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body["spec"]["ports"][0].get("nodePort").is_none(),
        "{}",
        r.body
    );
    assert_eq!(create(&mut s, svc("c", "NodePort", None, &[port])).0, 201);
    assert_invariant(&s);
    // To ExternalName the IP goes (and is free again); back to ClusterIP a new one comes.
    let ip = r.body["spec"]["clusterIP"].as_str().unwrap().to_string();
    let r = call(
        &mut s,
        Method::Patch,
        &path,
        Some(json!({"spec": {"type": "ExternalName", "externalName": "example.com"}})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body["spec"].get("clusterIP").is_none(), "{}", r.body);
    assert_eq!(create(&mut s, svc("d", "ClusterIP", Some(&ip), &[])).0, 201);
    let r = call(
        &mut s,
        Method::Patch,
        &path,
        Some(json!({"spec": {"type": "ClusterIP", "externalName": null}})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body["spec"]["clusterIP"]
            .as_str()
            .unwrap()
            .starts_with("10.43.")
    );
    assert_ne!(r.body["spec"]["clusterIP"], ip.as_str());
    assert_invariant(&s);
    // A PUT that leaves the allocated values out keeps them.
    let mut put = call(&mut s, Method::Get, &alloc::format!("{SVCS}/c"), None).body;
    let kept = put["spec"]["clusterIP"].clone();
    put["spec"].as_object_mut().unwrap().remove("clusterIP");
    put["spec"].as_object_mut().unwrap().remove("clusterIPs");
    put["spec"]["ports"][0]
        .as_object_mut()
        .unwrap()
        .remove("nodePort");
    let r = call(&mut s, Method::Put, &alloc::format!("{SVCS}/c"), Some(put));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["spec"]["clusterIP"], kept);
    assert_eq!(r.body["spec"]["ports"][0]["nodePort"], port);
    // Headless Services hold no IP; delete releases everything.
    assert_eq!(
        create(&mut s, svc("h", "ClusterIP", Some("None"), &[])).0,
        201
    );
    for name in ["a", "b", "c", "d", "h"] {
        let r = call(
            &mut s,
            Method::Delete,
            &alloc::format!("{SVCS}/{name}"),
            None,
        );
        assert_eq!(r.status, 200, "{}", r.body);
    }
    assert_eq!(
        create(&mut s, svc("e", "NodePort", Some(&ip), &[port])).0,
        201
    );
    assert_invariant(&s);
}

/// The live tables equal the ones the stored Services define, and no two Services share a value.
#[track_caller]
fn assert_invariant(s: &Cluster) {
    let (cidr, range) = (s.config().service_cidr, s.config().node_port_range);
    assert_eq!(s.services, Allocations::rebuild(cidr, range, s.store()));
    let mut ips: BTreeMap<String, String> = BTreeMap::new();
    let mut ports: BTreeMap<u64, String> = BTreeMap::new();
    for (key, object) in s
        .store()
        .range(crate::resource::ResourceId::Services, None, None)
    {
        let svc: Value = serde_json::from_slice(&object.json.bytes()).unwrap();
        let ty = svc["spec"]["type"].as_str().unwrap_or("ClusterIP");
        if let Some(ip) = svc["spec"]["clusterIP"].as_str().filter(|ip| *ip != "None") {
            assert_ne!(ty, "ExternalName", "{svc}");
            let other = ips.insert(ip.into(), key.name.to_string());
            assert!(other.is_none(), "{ip} held by {other:?} and {}", key.name);
        } else {
            assert!(
                ty == "ExternalName" || svc["spec"]["clusterIP"] == "None",
                "{svc}"
            );
        }
        if matches!(ty, "NodePort" | "LoadBalancer") {
            let mut mine = alloc::collections::BTreeSet::new();
            for p in svc["spec"]["ports"].as_array().unwrap() {
                let np = p["nodePort"].as_u64().expect("a node port");
                assert!(range.first as u64 <= np && np <= range.last as u64);
                if mine.insert(np) {
                    let other = ports.insert(np, key.name.to_string());
                    assert!(other.is_none(), "{np} held by {other:?} and {}", key.name);
                }
            }
        } else {
            for p in svc["spec"]["ports"].as_array().into_iter().flatten() {
                assert!(p.get("nodePort").is_none() || ty == "ExternalName", "{svc}");
            }
        }
    }
}

/// xorshift64*, so the sequence is the same on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

#[test]
fn the_bookkeeping_equals_the_stored_services_after_any_sequence() {
    // A small range and few ports, so conflicts and full ranges happen often.
    let mut s = server(Config {
        service_cidr: ServiceCidr::parse("10.96.0.0/28").unwrap(),
        node_port_range: PortRange::parse("30000-30007").unwrap(),
        ..Config::default()
    });
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let types = ["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"];
    let mut outcomes: BTreeMap<u16, usize> = BTreeMap::new();
    for _ in 0..600 {
        let name = alloc::format!("s{}", rng.below(8));
        let path = alloc::format!("{SVCS}/{name}");
        let ty = types[rng.below(4) as usize];
        let ip = match rng.below(4) {
            0 => Some(alloc::format!("10.96.0.{}", rng.below(16))),
            1 => Some("None".into()),
            _ => None,
        };
        let ip = ip.filter(|_| ty == "ClusterIP" || rng.below(2) == 0);
        let explicit: Vec<u64> = (0..rng.below(3) + 1)
            .map(|_| match rng.below(3) {
                0 => 30000 + rng.below(9),
                _ => 0,
            })
            .collect();
        let code = match rng.below(6) {
            0 | 1 => create(&mut s, svc(&name, ty, ip.as_deref(), &explicit)).0,
            2 => {
                let mut patch = json!({"spec": {"type": ty}});
                if ty == "ExternalName" {
                    patch["spec"]["externalName"] = json!("example.com");
                } else {
                    patch["spec"]["externalName"] = Value::Null;
                }
                call(&mut s, Method::Patch, &path, Some(patch)).status
            }
            3 => {
                let current = call(&mut s, Method::Get, &path, None);
                if current.status != 200 {
                    current.status
                } else {
                    let mut body = current.body;
                    body["spec"]["type"] = json!(ty);
                    if ty == "ExternalName" {
                        body["spec"]["externalName"] = json!("example.com");
                    }
                    call(&mut s, Method::Put, &path, Some(body)).status
                }
            }
            4 => {
                let body = svc(&name, ty, ip.as_deref(), &explicit);
                call_with(
                    &mut s,
                    Method::Patch,
                    &alloc::format!("{path}?fieldManager=fuzz&force=true"),
                    Some(body),
                    Some("application/apply-patch+yaml"),
                )
                .status
            }
            _ => call(&mut s, Method::Delete, &path, None).status,
        };
        *outcomes.entry(code).or_default() += 1;
        assert!(
            matches!(code, 200 | 201 | 404 | 409 | 422 | 500),
            "unexpected {code}"
        );
        assert_invariant(&s);
    }
    // The sequence exercised successes, refusals and full ranges alike.
    for (code, least) in [(200, 20), (201, 20), (422, 20), (500, 1)] {
        assert!(
            outcomes.get(&code).is_some_and(|n| *n >= least),
            "{outcomes:?}"
        );
    }
}
