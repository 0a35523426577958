//! kube-rs from crates.io against a dev cluster, driven as an operator built on it drives one:
//! server-side apply (ownership, a conflict naming the owner, force, removal of fields no longer
//! applied), a finalizer added and removed by `kube::runtime::finalizer` (its JSON patch `test`
//! op against a missing path), a `metadata_watcher`, dry runs, and a `Controller` reconciling the
//! ConfigMap each parent owns. The program is `tests/kubers/`, its own Cargo project with its
//! own lock file (outside the workspace); it is built into `target/kubers/` here (slow the first
//! time, cached by Cargo after) and exits non-zero naming the first mismatch.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use nautilus_tests::workspace_dir;

/// Builds `tests/kubers` into `target/kubers/debug/kubers` and returns its path.
fn build_program() -> PathBuf {
    let project = workspace_dir().join("tests").join("kubers");
    let target = workspace_dir().join("target").join("kubers");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let start = Instant::now();
    let build = Command::new(cargo)
        .args(["build", "--locked", "--quiet"])
        .current_dir(&project)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .expect("run cargo build");
    assert!(
        build.status.success(),
        "cargo build of tests/kubers failed ({}):\n{}{}",
        build.status,
        String::from_utf8_lossy(&build.stdout),
        String::from_utf8_lossy(&build.stderr)
    );
    let out = target.join("debug").join("kubers");
    println!(
        "kube_rs: built {} in {:.1}s",
        out.display(),
        start.elapsed().as_secs_f64()
    );
    out
}

#[test]
fn kube_rs_operator_ssa_finalizer_metadata_watcher_dry_run_and_controller() {
    let program = build_program();
    nautilus_tests::run_client_program("kube-rs", &program, "kubers: OK");
}
