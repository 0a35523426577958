//! `nautilus-verify` against the real enclave (simulated NSM) behind the real proxy, in both
//! TLS modes: the attestation binds the certificate the enclave presents and the cluster CA that
//! issued it (enclave TLS) or the zero SPKI hash (proxy TLS), signed GETs verify, and a verified
//! kubeconfig pins the cluster CA so plain kubectl works, also after the enclave restarts with a
//! new key.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use base64::Engine as _;
use nautilus_tests::{DevCluster, binary};

fn verify(args: &[&str]) -> Output {
    Command::new(binary("nautilus-verify"))
        .args(args)
        .output()
        .expect("run nautilus-verify")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[track_caller]
fn exits(out: &Output, code: i32) -> String {
    let t = text(out);
    assert_eq!(out.status.code(), Some(code), "{t}");
    t
}

/// kubectl with only `kubeconfig` and a fresh cache.
fn kubectl(kubeconfig: &Path, args: &[&str]) -> Output {
    let cache = tempfile::tempdir().unwrap();
    Command::new("kubectl")
        .env_remove("KUBECONFIG")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(cache.path())
        .arg("--request-timeout=20s")
        .args(args)
        .output()
        .expect("kubectl on PATH")
}

/// The PEM in a kubeconfig's `certificate-authority-data`.
fn pinned_pem(kubeconfig: &Path) -> String {
    let text = std::fs::read_to_string(kubeconfig).unwrap();
    let data = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("certificate-authority-data:"))
        .unwrap_or_else(|| panic!("no certificate-authority-data:\n{text}"));
    let pem = base64::engine::general_purpose::STANDARD
        .decode(data.trim().trim_matches('"'))
        .unwrap();
    String::from_utf8(pem).unwrap()
}

/// The serving key's SubjectPublicKeyInfo hash the enclave logged last (one per boot).
fn printed_spki_hash(logs: &str) -> Option<String> {
    logs.rsplit(" spki_sha256=")
        .next()
        .filter(|_| logs.contains(" spki_sha256="))
        .and_then(|rest| rest.get(..64))
        .map(str::to_string)
}

/// The cluster CA's SubjectPublicKeyInfo hash `dev` printed when it pinned the CA.
fn printed_ca_hash(logs: &str) -> Option<String> {
    logs.rsplit("CA SubjectPublicKeyInfo sha256 ")
        .next()
        .filter(|_| logs.contains("CA SubjectPublicKeyInfo sha256 "))
        .and_then(|rest| rest.get(..64))
        .map(str::to_string)
}

#[test]
fn enclave_tls_attestation_kubeconfig_and_signed_get_end_to_end() {
    let cluster = DevCluster::start_opts(&["--enclave-tls"], &[]);
    let url = format!("https://127.0.0.1:{}", cluster.port);
    let logs = cluster.logs();
    let spki = printed_spki_hash(&logs).unwrap_or_else(|| panic!("no SPKI hash:\n{logs}"));
    let ca = printed_ca_hash(&logs).unwrap_or_else(|| panic!("no CA hash:\n{logs}"));

    // The document binds the certificate the enclave presented in this very handshake and the
    // cluster CA that issued it.
    let out = verify(&[
        "attestation",
        "--url",
        &url,
        "--enclave-tls",
        "--allow-simulated",
    ]);
    let t = exits(&out, 0);
    assert!(t.contains("✓ enclave TLS certificate presented"), "{t}");
    let bound = t
        .lines()
        .find(|l| l.starts_with("✓ user_data "))
        .unwrap_or_else(|| panic!("no passing user_data check:\n{t}"));
    assert!(
        bound.contains(&format!(
            "SHA-256 of the presented TLS SPKI {spki}, SHA-256 of its issuing CA's SPKI {ca}"
        )),
        "{t}"
    );
    assert!(t.contains("✓ nonce "), "{t}");
    assert!(t.contains("✓ /attestation/config hashes"), "{t}");
    assert!(t.contains("module_id simulated-"), "{t}");
    assert!(!t.contains('✗'), "{t}");

    // Without --allow-simulated the simulated NSM is refused.
    let out = verify(&["attestation", "--url", &url, "--enclave-tls"]);
    let t = exits(&out, 1);
    assert!(t.contains("simulated"), "{t}");

    // Checked as if the proxy terminated TLS (zero SPKI hash), the binding fails, and the
    // attested configuration tells which flag fits.
    let out = verify(&[
        "attestation",
        "--url",
        &url,
        "--insecure-skip-tls-verify",
        "--allow-simulated",
    ]);
    let t = exits(&out, 1);
    assert!(t.contains("✗ user_data "), "{t}");
    assert!(
        t.contains("hint: the attested configuration has tls = \"enclave\""),
        "{t}"
    );

    // A PCR that is not the enclave's.
    let pcr0 = format!("0={}", "11".repeat(48));
    let out = verify(&[
        "attestation",
        "--url",
        &url,
        "--enclave-tls",
        "--allow-simulated",
        "--pcr",
        &pcr0,
    ]);
    let t = exits(&out, 1);
    assert!(t.contains("✗ PCR0 is "), "{t}");

    // A verified kubeconfig pins the attested cluster CA: the one dev pinned too.
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("attested.kubeconfig");
    let out = verify(&[
        "kubeconfig",
        "--url",
        &url,
        "--out",
        kc.to_str().unwrap(),
        "--token",
        &cluster.token,
        "--allow-simulated",
    ]);
    let t = exits(&out, 0);
    assert!(t.contains("pinning the attested cluster CA"), "{t}");
    assert!(
        t.contains("✓ the attested certificate is valid for 127.0.0.1"),
        "{t}"
    );
    let dev_pinned = std::fs::read_to_string(cluster.dir.path().join("enclave-tls.crt")).unwrap();
    assert_eq!(pinned_pem(&kc).trim(), dev_pinned.trim());
    let out = kubectl(&kc, &["get", "ns"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("default"));

    // A signed GET, checked with the attested key.
    let out = verify(&[
        "get",
        "/api/v1/namespaces/default",
        "--url",
        &url,
        "--enclave-tls",
        "--token",
        &cluster.token,
        "--allow-simulated",
    ]);
    let t = exits(&out, 0);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("\"name\":\"default\""),
        "{t}"
    );
    assert!(t.contains("✓ answer signature"), "{t}");
    assert!(
        t.contains("✓ same attested enclave TLS certificate on this connection"),
        "{t}"
    );
    // dev keeps a durable log: authentic, but one enclave cannot prove it is the newest copy.
    assert!(t.contains("freshness: unverified (restored from"), "{t}");

    // A restarted enclave has a new TLS key, issued by the same cluster CA: the verified
    // kubeconfig keeps working as it is, and verifying again binds the new key and the same CA.
    let pinned = std::fs::read(&kc).unwrap();
    let pid = cluster.enclave_pid().expect("the enclave child runs");
    nautilus_tests::signal(pid, libc::SIGKILL);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cluster.logs().contains("kubeconfig unchanged") {
        assert!(Instant::now() < deadline, "{}", cluster.logs());
        std::thread::sleep(Duration::from_millis(100));
    }
    let new_spki = printed_spki_hash(&cluster.logs()).unwrap();
    assert_ne!(new_spki, spki, "a new TLS key");
    let out = kubectl(&kc, &["get", "ns"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = verify(&[
        "attestation",
        "--url",
        &url,
        "--enclave-tls",
        "--allow-simulated",
    ]);
    let t = exits(&out, 0);
    assert!(
        t.contains(&format!(
            "SHA-256 of the presented TLS SPKI {new_spki}, SHA-256 of its issuing CA's SPKI {ca}"
        )),
        "{t}"
    );
    let out = verify(&[
        "kubeconfig",
        "--url",
        &url,
        "--out",
        kc.to_str().unwrap(),
        "--token",
        &cluster.token,
        "--allow-simulated",
    ]);
    exits(&out, 0);
    assert_eq!(std::fs::read(&kc).unwrap(), pinned, "the same CA pinned");
    let out = kubectl(&kc, &["get", "ns"]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn proxy_tls_binds_the_zero_spki_hash() {
    // In memory: the signed answers say their state never left the enclave.
    let cluster = DevCluster::start_opts(&["--in-memory"], &[]);
    let url = format!("https://127.0.0.1:{}", cluster.port);
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &cluster.ca_pem).unwrap();
    let ca = ca.to_str().unwrap();

    let out = verify(&[
        "attestation",
        "--url",
        &url,
        "--ca",
        ca,
        "--allow-simulated",
    ]);
    let t = exits(&out, 0);
    assert!(t.contains("✓ user_data "), "{t}");
    assert!(t.contains("zero SPKI hash"), "{t}");
    assert!(!t.contains('✗'), "{t}");

    // The certificate presented here is the proxy's: the document does not bind it.
    let out = verify(&[
        "attestation",
        "--url",
        &url,
        "--enclave-tls",
        "--allow-simulated",
    ]);
    let t = exits(&out, 1);
    assert!(t.contains("✗ user_data "), "{t}");
    assert!(
        t.contains("hint: the attested configuration has tls = \"proxy\""),
        "{t}"
    );

    // A watch is a stream: nothing complete to sign, refused up front.
    let out = verify(&["get", "/api/v1/pods?watch=1", "--url", &url, "--ca", ca]);
    let t = exits(&out, 1);
    assert!(t.contains("a watch is a stream"), "{t}");

    let out = verify(&[
        "get",
        "/api/v1/namespaces/default",
        "--url",
        &url,
        "--ca",
        ca,
        "--token",
        &cluster.token,
        "--allow-simulated",
    ]);
    let t = exits(&out, 0);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("\"name\":\"default\""),
        "{t}"
    );
    assert!(t.contains("✓ answer signature"), "{t}");
    assert!(t.contains("✓ answer status 200 is 2xx"), "{t}");
    assert!(
        t.contains("freshness: in-memory (the state never left"),
        "{t}"
    );

    // An authentic 404 is printed but is not the object asked for: exit 1, as kubectl does.
    let out = verify(&[
        "get",
        "/api/v1/namespaces/absent",
        "--url",
        &url,
        "--ca",
        ca,
        "--token",
        &cluster.token,
        "--allow-simulated",
    ]);
    let t = exits(&out, 1);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("\"reason\":\"NotFound\""),
        "{t}"
    );
    assert!(t.contains("✓ answer signature (status 404"), "{t}");
    assert!(t.contains("✗ answer status 404 is 2xx"), "{t}");
}
