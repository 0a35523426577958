//! `nautilus-proxy dev` as an operator meets it: one command up, a kubeconfig only its owner can
//! read, a clear refusal on a busy port, and a clean stop of both processes on SIGTERM.

use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;
use std::time::{Duration, Instant};

use nautilus_tests::{DevCluster, binary};

#[test]
fn a_second_dev_on_a_busy_port_fails_clearly() {
    let c = DevCluster::start();
    let other = tempfile::tempdir().unwrap();
    let out = Command::new(binary("nautilus-proxy"))
        .args([
            "dev",
            "--listen",
            &format!("127.0.0.1:{}", c.port),
            "--data-dir",
        ])
        .arg(other.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on 127.0.0.1:{}", c.port))
            && stderr.contains("already in use"),
        "{stderr}"
    );
    assert!(
        !other.path().join("kubeconfig").exists(),
        "nothing was started"
    );
    // The first cluster is unaffected.
    assert_eq!(
        c.request("GET", "/api/v1/namespaces/default", None, &[])
            .unwrap()
            .status,
        200
    );
}

#[test]
fn kubeconfig_is_private_and_the_token_never_reaches_argv_or_logs() {
    let c = DevCluster::start();
    let mode = std::fs::metadata(&c.kubeconfig)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let pid = c.enclave_pid().expect("enclave runs");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let cmdline = String::from_utf8_lossy(&cmdline);
    assert!(cmdline.contains("--simulated-nsm"), "{cmdline}");
    assert!(
        !cmdline.contains(&c.token),
        "the admin token is passed only as its hash"
    );
    c.kubectl_ok(&["get", "pods", "-A"]);
    assert!(
        c.logs().contains("SIMULATED NSM"),
        "dev says loudly that the NSM is simulated"
    );
    assert!(
        !c.logs().contains(&c.token),
        "no log line carries the admin token"
    );

    // A refused credential is a security event at info, with the reason and without the token.
    let wrong = "not-the-admin-token-4b1d";
    let reply = nautilus_tests::client::blocking_request(
        c.port,
        &c.ca_pem,
        "GET",
        "/api/v1/secrets",
        None,
        &[("authorization".into(), format!("Bearer {wrong}"))],
    )
    .unwrap();
    assert_eq!(reply.status, 401);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !c.logs().contains("request refused") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let logs = c.logs();
    assert!(
        logs.lines()
            .any(|l| l.contains("request refused") && l.contains("code=401")),
        "{logs}"
    );
    assert!(!logs.contains(wrong), "the refused token is not logged");
}

#[test]
fn sigterm_stops_proxy_and_enclave() {
    let c = DevCluster::start();
    let enclave = c.enclave_pid().expect("enclave runs");
    nautilus_tests::signal(c.pid(), libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(20);
    let alive = |pid: u32| std::path::Path::new(&format!("/proc/{pid}")).exists() && !zombie(pid);
    while Instant::now() < deadline && (alive(enclave) || alive(c.pid())) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!alive(enclave), "the enclave stopped");
    assert!(!alive(c.pid()), "the proxy stopped");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", c.port)).is_err(),
        "the port is closed"
    );
}

#[test]
fn a_killed_proxy_takes_its_enclave_with_it() {
    let c = DevCluster::start();
    let enclave = c.enclave_pid().expect("enclave runs");
    nautilus_tests::signal(c.pid(), libc::SIGKILL);
    let deadline = Instant::now() + Duration::from_secs(15);
    let alive = |pid: u32| std::path::Path::new(&format!("/proc/{pid}")).exists() && !zombie(pid);
    while Instant::now() < deadline && alive(enclave) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !alive(enclave),
        "the enclave child exits when its proxy is killed"
    );
}

fn zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.split_whitespace().nth(2) == Some("Z"))
}
