//! A K3s agent's join requests against the core alone: the sequence a v1.32 agent sends, with
//! its Seal token as the node password, answered with certificates for its node signed by the
//! cluster CA; and every forged, expired, other-node, unstaked or malformed request refused as
//! k3s refuses it, leaving the store as it was.

use alloc::string::String;
use alloc::vec::Vec;
use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::workers_tests::{ADMIN, D1, D2, D3, NOW, PACKAGE, Staker, call, deposit, event, seed};
use crate::api::Method;
use crate::csr::authority::{ClusterCa, certificate_subject};
use crate::csr::authority_tests::{csr, der_of, key, verifies};
use crate::token::hex32;

/// What `/cacerts` answers: the enclave's TLS certificate in enclave TLS mode.
const SERVER_CA: &str = "-----BEGIN CERTIFICATE-----\nTUFERS1VUA==\n-----END CERTIFICATE-----\n";

fn cluster(enclave_tls: bool) -> super::Cluster {
    let config = crate::Config {
        admin_token_sha256: Some(Sha256::digest(ADMIN.as_bytes()).into()),
        sui_package: Some(PACKAGE),
        cluster_ca: ClusterCa::from_secret(&[9; 32]),
        root_ca_pem: Some(SERVER_CA.into()),
        enclave_tls,
        advertise_address: Some("10.0.0.1:6443".parse().unwrap()),
        ..crate::Config::default()
    };
    let mut core = super::Cluster::new(config, [3; 32], NOW);
    assert_eq!(deposit(&mut core, &Staker::new(1), 1, D1).1["applied"], 1);
    core
}

fn basic(user: &str, password: &str) -> String {
    alloc::format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(alloc::format!("{user}:{password}"))
    )
}

/// One agent request: (status, content type, body).
struct Call<'a> {
    method: Method,
    path: &'a str,
    authorization: Option<String>,
    name: Option<&'a str>,
    password: Option<&'a str>,
    ips: Option<&'a str>,
    body: Vec<u8>,
    cert: Option<crate::auth::CertUser>,
}

impl<'a> Call<'a> {
    /// What the agent's `getNodeNamedCrt` sends: POST, the request DER, basic auth, the node
    /// headers.
    fn node_named(path: &'a str, token: &str, node: &'a str, der: Vec<u8>) -> Self {
        Self {
            method: Method::Post,
            path,
            authorization: Some(basic("node", token)),
            name: Some(node),
            password: Some("0123456789abcdef0123456789abcdef"),
            ips: Some("192.168.1.20"),
            body: der,
            cert: None,
        }
    }

    fn get(path: &'a str, token: Option<&str>) -> Self {
        Self {
            method: Method::Get,
            path,
            authorization: token.map(|t| basic("node", t)),
            name: None,
            password: None,
            ips: None,
            body: Vec::new(),
            cert: None,
        }
    }

    fn send(&self, core: &mut super::Cluster) -> (u16, &'static str, Vec<u8>) {
        let mut req = super::ApiRequest::new(self.method, self.path);
        req.authorization = self.authorization.as_deref();
        req.k3s_node = super::k3s::NodeHeaders {
            name: self.name,
            password: self.password,
            ips: self.ips,
        };
        req.body = &self.body;
        req.client_cert = self.cert.as_ref();
        // The runtime decides on the head first, then sends the whole request.
        if let Err(refused) = core.admit_head(NOW, &req) {
            return (refused.status, refused.content_type, refused.body);
        }
        let r = core.handle_request(NOW, &req).into_response().unwrap();
        (r.status, r.content_type, r.body)
    }
}

/// An agent's request: Go's `x509.CreateCertificateRequest` with an empty subject, DER.
fn agent_request(seed: u8) -> Vec<u8> {
    der_of(core::str::from_utf8(&csr(&key(seed), &key(seed), "", &[], &[])).unwrap())
}

/// The PEM blocks of an answer, DER.
fn blocks(body: &[u8]) -> Vec<Vec<u8>> {
    let text = core::str::from_utf8(body).unwrap();
    text.split_inclusive("-----END CERTIFICATE-----\n")
        .map(der_of)
        .collect()
}

fn json_of(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap()
}

fn csr_names(core: &mut super::Cluster) -> Vec<Value> {
    let (code, list) = call(
        core,
        Method::Get,
        "/apis/certificates.k8s.io/v1/certificatesigningrequests",
        &Value::Null,
        Some(ADMIN),
        None,
    );
    assert_eq!(code, 200);
    list["items"].as_array().cloned().unwrap_or_default()
}

#[test]
fn an_agent_joins_with_its_seal_token_in_the_join_token() {
    let mut core = cluster(true);
    let staker = Staker::new(1);
    let seal = staker.token("node-a", NOW.secs(), NOW.secs() + 3600);
    let join = crate::k3s::join_token(SERVER_CA.as_bytes(), &seal);
    let parsed = crate::k3s::parse_join_token(&join).unwrap();
    assert_eq!(parsed.user, "node");

    // 1. /cacerts, anonymous: the bundle the token's hash pins.
    let (code, kind, body) = Call::get("/cacerts", None).send(&mut core);
    assert_eq!((code, kind), (200, "text/plain"));
    assert_eq!(body, SERVER_CA.as_bytes());
    assert_eq!(crate::k3s::ca_hash(&body), parsed.ca_hash);

    // 2. config: the fields the agent reads.
    let (code, _, body) = Call::get("/v1-k3s/config", Some(&parsed.password)).send(&mut core);
    assert_eq!(code, 200);
    let config = json_of(&body);
    assert_eq!(
        config["ClusterIPRange"],
        json!({"IP": "10.42.0.0", "Mask": "//8AAA=="})
    );
    assert_eq!(
        config["ServiceIPRange"],
        json!({"IP": "10.43.0.0", "Mask": "//8AAA=="})
    );
    assert_eq!(config["ClusterDNS"], "10.43.0.10");
    assert_eq!(config["ClusterDomain"], "cluster.local");
    assert_eq!(
        config["ServiceNodePortRange"],
        json!({"Base": 30000, "Size": 2768})
    );
    assert_eq!(config["FlannelBackend"], "vxlan");
    assert_eq!(config["EgressSelectorMode"], "disabled");
    assert_eq!(config["HTTPSPort"], config["SupervisorPort"]);
    assert_eq!(config["DisableCCM"], true);

    // 3. client-ca.crt and server-ca.crt.
    let ca = ClusterCa::from_secret(&[9; 32]).unwrap();
    let (code, _, body) = Call::get("/v1-k3s/client-ca.crt", Some(&seal)).send(&mut core);
    assert_eq!((code, body), (200, ca.certificate_pem().into_bytes()));
    let (code, _, body) = Call::get("/v1-k3s/server-ca.crt", Some(&seal)).send(&mut core);
    assert_eq!((code, body.as_slice()), (200, SERVER_CA.as_bytes()));

    // 4. serving-kubelet.crt: the node's name, localhost, 127.0.0.1 and its IP; CA appended.
    let before = core.store().revision();
    let (code, kind, body) = Call::node_named(
        "/v1-k3s/serving-kubelet.crt",
        &seal,
        "Node-A",
        agent_request(21),
    )
    .send(&mut core);
    assert_eq!(
        (code, kind),
        (200, "text/plain"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    let certs = blocks(&body);
    assert_eq!(certs.len(), 2);
    assert_eq!(certs[1], ca.certificate_der());
    assert!(verifies(&ca, &certs[0]));
    assert_eq!(
        certificate_subject(&certs[0]),
        Some(("node-a".into(), Vec::new()))
    );
    assert_eq!(core.store().revision(), before, "serving: nothing recorded");

    // 5. client-kubelet.crt: system:node:node-a in system:nodes, recorded with its stake.
    let (code, _, body) = Call::node_named(
        "/v1-k3s/client-kubelet.crt",
        &seal,
        "node-a",
        agent_request(22),
    )
    .send(&mut core);
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    let certs = blocks(&body);
    assert!(verifies(&ca, &certs[0]));
    assert_eq!(
        certificate_subject(&certs[0]),
        Some((
            "system:node:node-a".into(),
            alloc::vec!["system:nodes".into()]
        ))
    );
    let issued = csr_names(&mut core);
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0]["spec"]["username"], "system:node:node-a");
    assert_eq!(
        issued[0]["spec"]["extra"]["nautilus.io/stake-id"][0],
        hex32(&staker.stake())
    );
    let recorded = base64::engine::general_purpose::STANDARD
        .decode(issued[0]["status"]["certificate"].as_str().unwrap())
        .unwrap();
    assert_eq!(der_of(core::str::from_utf8(&recorded).unwrap()), certs[0]);

    // The certificate authenticates its node before it registers, held to the stake.
    let node_cert = crate::auth::CertUser {
        name: "system:node:node-a".into(),
        groups: alloc::vec!["system:nodes".into()],
        cluster_ca: true,
    };
    let mut get_node = Call::get("/api/v1/nodes/node-a", None);
    get_node.cert = Some(node_cert.clone());
    assert_eq!(
        get_node.send(&mut core).0,
        404,
        "authenticated: not yet registered"
    );

    // 6. kube-proxy and the agent controller: their own names; apiservers; readyz.
    for (path, cn) in [
        ("/v1-k3s/client-kube-proxy.crt", "system:kube-proxy"),
        ("/v1-k3s/client-k3s-controller.crt", "system:k3s-controller"),
    ] {
        let mut call = Call::get(path, Some(&seal));
        call.method = Method::Post;
        call.body = agent_request(23);
        let (code, _, body) = call.send(&mut core);
        assert_eq!(code, 200, "{path}");
        assert_eq!(
            certificate_subject(&blocks(&body)[0]),
            Some((cn.into(), Vec::new()))
        );
    }
    let (code, _, body) = Call::get("/v1-k3s/apiservers", Some(&seal)).send(&mut core);
    assert_eq!((code, json_of(&body)), (200, json!(["10.0.0.1:6443"])));
    let (code, _, body) = Call::get("/v1-k3s/readyz", Some(&seal)).send(&mut core);
    assert_eq!((code, body.as_slice()), (200, &b"ok"[..]));

    // 7. A restarted agent presents its certificate and no token: it still gets its own.
    let mut renew = Call::node_named(
        "/v1-k3s/client-kubelet.crt",
        &seal,
        "node-a",
        agent_request(24),
    );
    renew.authorization = None;
    renew.cert = Some(node_cert.clone());
    assert_eq!(renew.send(&mut core).0, 200);

    // 8. The tunnel: with the kubelet's certificate, switched to the runtime (101).
    let mut tunnel = Call::get("/v1-k3s/connect", None);
    tunnel.cert = Some(node_cert);
    assert_eq!(tunnel.send(&mut core).0, 101);
}

fn status(body: &[u8]) -> (String, String) {
    let v = json_of(body);
    assert_eq!(v["kind"], "Status", "{v}");
    (
        v["reason"].as_str().unwrap_or("").into(),
        v["message"].as_str().unwrap_or("").into(),
    )
}

#[test]
fn forged_expired_other_node_and_unstaked_requests_change_nothing() {
    let mut core = cluster(true);
    let (a, b, unstaked) = (Staker::new(1), Staker::new(2), Staker::new(3));
    assert_eq!(deposit(&mut core, &b, 2, D2).1["applied"], 1);
    let good = a.token("node-a", NOW.secs(), NOW.secs() + 3600);
    // node-c is registered to stake a; b's token for it may not take it over.
    let c_by_a = a.token("node-c", NOW.secs(), NOW.secs() + 3600);
    assert_eq!(
        seed(&mut core, "register-worker", "node-c", &c_by_a, NOW.secs()).0,
        200
    );
    let c_by_b = b.token("node-c", NOW.secs(), NOW.secs() + 3600);
    let expired = a.token("node-a", NOW.secs() - 7200, NOW.secs() - 3600);
    let stranger = unstaked.token("node-a", NOW.secs(), NOW.secs() + 3600);
    let mut forged = good.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let for_b = b.token("node-b", NOW.secs(), NOW.secs() + 3600);

    let path = "/v1-k3s/client-kubelet.crt";
    let named =
        |token: &str, node: &'static str| Call::node_named(path, token, node, agent_request(31));
    let mut cases: Vec<(&str, Call<'_>, u16, &str, &str)> = Vec::new();
    let mut anonymous = named(&good, "node-a");
    anonymous.authorization = None;
    cases.push(("no credential", anonymous, 403, "Forbidden", "forbidden"));
    let mut server_user = named(&good, "node-a");
    server_user.authorization = Some(basic("server", &good));
    cases.push((
        "server user",
        server_user,
        401,
        "Unauthorized",
        "not authorized",
    ));
    let mut k3s_password = named(&good, "node-a");
    k3s_password.authorization = Some(basic("node", "0123456789abcdef"));
    cases.push((
        "k3s password",
        k3s_password,
        401,
        "Unauthorized",
        "not authorized",
    ));
    cases.push((
        "forged",
        named(&forged, "node-a"),
        401,
        "Unauthorized",
        "not authorized",
    ));
    cases.push((
        "expired",
        named(&expired, "node-a"),
        401,
        "Unauthorized",
        "not authorized",
    ));
    cases.push((
        "unstaked",
        named(&stranger, "node-a"),
        401,
        "Unauthorized",
        "not authorized",
    ));
    cases.push((
        "other node",
        named(&for_b, "node-a"),
        403,
        "Forbidden",
        "unable to verify node 'node-a': the Seal token is for node 'node-b'",
    ));
    let taken = alloc::format!(
        "unable to verify node 'node-c': it is registered to stake {}",
        hex32(&a.stake())
    );
    cases.push((
        "another stake's node",
        named(&c_by_b, "node-c"),
        403,
        "Forbidden",
        &taken,
    ));
    let mut no_name = named(&good, "node-a");
    no_name.name = None;
    cases.push(("no name", no_name, 400, "BadRequest", "node name not set"));
    let mut no_password = named(&good, "node-a");
    no_password.password = None;
    cases.push((
        "no password",
        no_password,
        400,
        "BadRequest",
        "node password not set",
    ));
    let mut legacy = named(&good, "node-a");
    legacy.method = Method::Get;
    legacy.body = Vec::new();
    cases.push(("legacy GET", legacy, 400, "BadRequest", ""));
    let mut garbage = named(&good, "node-a");
    garbage.body = b"not a request".to_vec();
    cases.push((
        "garbage",
        garbage,
        400,
        "BadRequest",
        "x509: malformed certificate request",
    ));
    // A request whose key did not sign it: no proof the agent holds the key.
    let mut stolen_key = named(&good, "node-a");
    stolen_key.body = der_of(core::str::from_utf8(&csr(&key(40), &key(41), "", &[], &[])).unwrap());
    cases.push((
        "key not held",
        stolen_key,
        400,
        "BadRequest",
        "x509: ECDSA verification failure",
    ));
    let mut bad_ip = Call::node_named(
        "/v1-k3s/serving-kubelet.crt",
        &good,
        "node-a",
        agent_request(32),
    );
    bad_ip.ips = Some("192.168.1.20,not-an-ip");
    cases.push((
        "bad node IP",
        bad_ip,
        500,
        "InternalError",
        "Internal error occurred: invalid node IP address <nil>",
    ));
    // Someone else's certificate naming node-a in the header.
    let mut cert_other = named(&good, "node-a");
    cert_other.authorization = None;
    cert_other.cert = Some(crate::auth::CertUser {
        name: "system:node:node-c".into(),
        groups: alloc::vec!["system:nodes".into()],
        cluster_ca: true,
    });
    cases.push((
        "certificate of another node",
        cert_other,
        400,
        "BadRequest",
        "header node name does not match auth node name",
    ));
    // A certificate of the cluster CA that names no node.
    let mut cert_user = named(&good, "node-a");
    cert_user.authorization = None;
    cert_user.cert = Some(crate::auth::CertUser {
        name: "system:kube-proxy".into(),
        groups: Vec::new(),
        cluster_ca: true,
    });
    cases.push((
        "kube-proxy certificate",
        cert_user,
        401,
        "Unauthorized",
        "not authorized",
    ));
    cases.push((
        "server-only path",
        Call::get("/v1-k3s/server-bootstrap", Some(&good)),
        403,
        "Forbidden",
        "forbidden",
    ));
    // The tunnel is for a node's certificate, not its token (k3s: `system:nodes` only).
    cases.push((
        "tunnel by token",
        Call::get("/v1-k3s/connect", Some(&good)),
        403,
        "Forbidden",
        "forbidden",
    ));
    cases.push((
        "unknown path",
        Call::get("/v1-k3s/nothing-here", Some(&good)),
        404,
        "NotFound",
        "",
    ));
    cases.push((
        "unauthenticated config",
        Call::get("/v1-k3s/config", Some(&forged)),
        401,
        "Unauthorized",
        "not authorized",
    ));

    let before = core.store().revision();
    for (what, call, code, reason, message) in &cases {
        let (got, _, body) = call.send(&mut core);
        assert_eq!(got, *code, "{what}: {}", String::from_utf8_lossy(&body));
        let (got_reason, got_message) = status(&body);
        assert_eq!(got_reason, *reason, "{what}");
        if !message.is_empty() {
            assert_eq!(got_message, *message, "{what}");
        }
    }
    assert_eq!(core.store().revision(), before, "no refusal wrote anything");
    assert!(csr_names(&mut core).is_empty());

    // A withdrawn stake: the token that worked a moment ago asks nothing more.
    assert_eq!(named(&good, "node-a").send(&mut core).0, 200);
    let withdraw = json!({"checkpoint": 3, "events": [event("StakeWithdrawn", D3,
        json!({"stake_id": hex32(&a.stake())}))]});
    assert_eq!(
        call(
            &mut core,
            Method::Post,
            "/api/v1/sui-events",
            &withdraw,
            Some(ADMIN),
            None
        )
        .0,
        200
    );
    let issued = csr_names(&mut core).len();
    let (code, _, body) = named(&good, "node-a").send(&mut core);
    assert_eq!(
        (code, status(&body)),
        (401, ("Unauthorized".into(), "not authorized".into()))
    );
    assert_eq!(csr_names(&mut core).len(), issued);
}

#[test]
fn without_enclave_tls_no_certificate_is_issued() {
    let mut core = cluster(false);
    let seal = Staker::new(1).token("node-a", NOW.secs(), NOW.secs() + 3600);
    let (code, _, body) = Call::node_named(
        "/v1-k3s/client-kubelet.crt",
        &seal,
        "node-a",
        agent_request(50),
    )
    .send(&mut core);
    assert_eq!(code, 503);
    assert_eq!(status(&body).0, "ServiceUnavailable");
    assert!(csr_names(&mut core).is_empty());
    // What the agent trusts is still answered: the CA the proxy's certificate chains to.
    assert_eq!(Call::get("/cacerts", None).send(&mut core).0, 200);
}

#[test]
fn the_kube_proxy_and_controller_certificates_read_only_what_their_components_read() {
    let mut core = cluster(true);
    let a = Staker::new(1);
    let token = a.token("node-c", NOW.secs(), NOW.secs() + 3600);
    assert_eq!(
        seed(&mut core, "register-worker", "node-c", &token, NOW.secs()).0,
        200
    );
    let as_component = |core: &mut super::Cluster, cn: &str, method: Method, path: &str| {
        let mut call = Call::get(path, None);
        call.method = method;
        call.cert = Some(crate::auth::CertUser {
            name: cn.into(),
            groups: Vec::new(),
            cluster_ca: true,
        });
        if method == Method::Post {
            call.body = br#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"x"},"spec":{"ports":[{"port":80}]}}"#.to_vec();
        }
        let (code, _, body) = call.send(core);
        (code, body)
    };
    let proxy = "system:kube-proxy";
    let controller = "system:k3s-controller";
    let cases: &[(&str, Method, &str, u16)] = &[
        (proxy, Method::Get, "/api/v1/services", 200),
        (proxy, Method::Get, "/api/v1/endpoints", 200),
        (
            proxy,
            Method::Get,
            "/apis/discovery.k8s.io/v1/endpointslices",
            200,
        ),
        (proxy, Method::Get, "/api/v1/nodes", 200),
        (proxy, Method::Get, "/api/v1/secrets", 403),
        (proxy, Method::Get, "/api/v1/pods", 403),
        (proxy, Method::Get, "/api/v1/nodes/node-c/proxy", 403),
        (
            proxy,
            Method::Post,
            "/api/v1/namespaces/default/services",
            403,
        ),
        (proxy, Method::Delete, "/api/v1/nodes/node-c", 403),
        (controller, Method::Get, "/api/v1/nodes/node-c", 200),
        (
            controller,
            Method::Get,
            "/api/v1/namespaces/default/endpoints?fieldSelector=metadata.name%3Dkubernetes",
            200,
        ),
        (controller, Method::Get, "/api/v1/services", 403),
        (controller, Method::Get, "/api/v1/configmaps", 403),
        // Any other name the cluster CA never issues to an agent authenticates nothing.
        ("system:kube-scheduler", Method::Get, "/api/v1/nodes", 401),
    ];
    let before = core.store().revision();
    for (cn, method, path, want) in cases {
        let (code, body) = as_component(&mut core, cn, *method, path);
        assert_eq!(
            code,
            *want,
            "{cn} {method:?} {path}: {}",
            String::from_utf8_lossy(&body)
        );
        if code == 403 {
            assert_eq!(json_of(&body)["reason"], "Forbidden");
            assert!(
                json_of(&body)["message"]
                    .as_str()
                    .unwrap()
                    .contains(&alloc::format!("User \"{cn}\" cannot")),
                "{}",
                String::from_utf8_lossy(&body)
            );
        }
    }
    assert_eq!(core.store().revision(), before);
    // The agent's tunnel waits for RBAC to let it list endpoints: its review says yes.
    let mut review = Call::get(
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        None,
    );
    review.method = Method::Post;
    review.cert = Some(crate::auth::CertUser {
        name: controller.into(),
        groups: Vec::new(),
        cluster_ca: true,
    });
    review.body = serde_json::to_vec(&json!({"apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview", "spec": {"resourceAttributes":
            {"namespace": "default", "verb": "list", "resource": "endpoints"}}}))
    .unwrap();
    let (code, _, body) = review.send(&mut core);
    assert_eq!(code, 201, "{}", String::from_utf8_lossy(&body));
    assert_eq!(json_of(&body)["status"]["allowed"], true);
}
