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
