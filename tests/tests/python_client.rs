//! The official Python `kubernetes` client against a dev cluster: runs
//! `tests/python/client_smoke.py` with the kubeconfig `dev` wrote, unmodified.

use std::process::Command;

use nautilus_tests::{DevCluster, workspace_dir};

/// Fails (never skips) when the module is missing: CI installs it with `pip install kubernetes`.
fn require_kubernetes_module() {
    let probe = Command::new("python3")
        .args(["-c", "import kubernetes"])
        .output()
        .expect("python3 on PATH");
    assert!(
        probe.status.success(),
        "the Python `kubernetes` module is not importable; run `pip install kubernetes`:\n{}",
        String::from_utf8_lossy(&probe.stderr)
    );
}

#[test]
fn official_python_client_smoke() {
    require_kubernetes_module();
    let cluster = DevCluster::start();
    let script = workspace_dir().join("tests/python/client_smoke.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(&cluster.kubeconfig)
        .env("PYTHONUNBUFFERED", "1")
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "client_smoke.py failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}\ncluster logs:\n{}",
        out.status,
        cluster.logs()
    );
    assert!(
        stdout.contains("client_smoke: OK"),
        "client_smoke.py did not finish:\n{stdout}\n{stderr}"
    );
}

/// TokenReview with the Python client's AuthenticationV1Api: the admin's token and a staked
/// worker's Seal token are authenticated as who they are; a tampered Seal token and an unknown
/// token are `authenticated: false` with the reason; the worker may not review tokens (403).
#[test]
fn python_client_reviews_tokens() {
    use nautilus_tests::simulator::{DEFAULT_PACKAGE, SimConfig, Simulator, package_arg};
    require_kubernetes_module();
    let cluster = DevCluster::start_with(&[&package_arg(&DEFAULT_PACKAGE)]);
    let sim = Simulator::start(
        &cluster,
        SimConfig {
            workers: 1,
            interval: std::time::Duration::from_secs(5),
            connections: 1,
            ..SimConfig::default()
        },
    )
    .unwrap();
    let seal = sim.worker(0).token();
    // One character of the signature changed (still base64url, same length).
    let (prefix_and_claims, signature) = seal.rsplit_once('.').unwrap();
    let mut signature = signature.to_string();
    let flipped = if signature.as_bytes()[10] == b'A' {
        "B"
    } else {
        "A"
    };
    signature.replace_range(10..11, flipped);
    let tampered = format!("{prefix_and_claims}.{signature}");
    let script = r#"
import sys
from kubernetes import client, config
config.load_kube_config(sys.argv[1])
admin_token = sys.argv[4]
api = client.AuthenticationV1Api()
def review(token, audiences=None):
    body = client.V1TokenReview(spec=client.V1TokenReviewSpec(token=token, audiences=audiences))
    return api.create_token_review(body).status
for label, token in [("admin", admin_token), ("seal", sys.argv[2]), ("tampered", sys.argv[3]), ("unknown", "nope")]:
    s = review(token)
    print(label, s.authenticated, s.user.username if s.user else None,
          ",".join(s.user.groups or []) if s.user else None, s.audiences, s.error)
s = review(admin_token, ["vault"])
print("other-audience", s.authenticated, s.error)
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(&cluster.kubeconfig)
        .arg(&seal)
        .arg(&tampered)
        .arg(&cluster.token)
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "admin True nautilus:admin system:masters,system:authenticated ['https://kubernetes.default.svc.cluster.local'] None",
            "seal True system:node:sim-00000 system:nodes,system:authenticated ['https://kubernetes.default.svc.cluster.local'] None",
            "tampered None None  None invalid Seal token: signature does not verify",
            "unknown None None  None invalid bearer token",
            "other-audience None invalid bearer token",
        ],
        "{stdout}"
    );
    // The worker itself may not review tokens: kube's 403.
    let body = serde_json::json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
        "spec": {"token": cluster.token}})
    .to_string();
    let reply = nautilus_tests::client::blocking_request(
        cluster.port,
        &cluster.ca_pem,
        "POST",
        "/apis/authentication.k8s.io/v1/tokenreviews",
        Some(body.as_bytes()),
        &[("authorization".into(), format!("Bearer {seal}"))],
    )
    .unwrap();
    assert_eq!(reply.status, 403);
    assert_eq!(
        reply.json()["message"],
        "tokenreviews.authentication.k8s.io is forbidden: User \"system:node:sim-00000\" cannot create resource \"tokenreviews\" in API group \"authentication.k8s.io\" at the cluster scope"
    );
}
