//! The real client-go against a dev cluster, driven as an operator drives it: server-side apply
//! with typed apply configurations (ownership, a conflict naming the owner, force, removal of
//! fields no longer applied), finalizers added with controller-runtime's JSON patch, a
//! metadata-only informer, and dry runs. The Go program is `tests/clientgo/main.go`, its own module
//! pinned at the client-go release of the peers; it is built into `target/clientgo/` here (slow
//! the first time, cached by Go after) and exits non-zero naming the first mismatch.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use nautilus_tests::workspace_dir;

/// Whether `go` runs at all: without it the test is skipped (said on stdout), never passed
/// silently; with it every failure fails the test.
fn go_available() -> bool {
    Command::new("go")
        .arg("version")
        .output()
        .is_ok_and(|out| out.status.success())
}

/// Builds `tests/clientgo` into `target/clientgo/clientgo` and returns its path.
fn build_program() -> PathBuf {
    let module = workspace_dir().join("tests").join("clientgo");
    let out = workspace_dir()
        .join("target")
        .join("clientgo")
        .join("clientgo");
    let start = Instant::now();
    let build = Command::new("go")
        .args(["build", "-trimpath", "-o"])
        .arg(&out)
        .arg(".")
        .current_dir(&module)
        // The module's go.mod picks the language version; never fetch another toolchain.
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-mod=mod -buildvcs=false")
        .env("CGO_ENABLED", "0")
        .output()
        .expect("run go build");
    assert!(
        build.status.success(),
        "go build of tests/clientgo failed ({}):\n{}{}",
        build.status,
        String::from_utf8_lossy(&build.stdout),
        String::from_utf8_lossy(&build.stderr)
    );
    println!(
        "client_go: built {} in {:.1}s",
        out.display(),
        start.elapsed().as_secs_f64()
    );
    out
}

#[test]
fn client_go_operator_ssa_finalizers_metadata_informer_and_dry_run() {
    if !go_available() {
        println!(
            "client_go: SKIPPED: `go` is not on the PATH (the program is built from Go modules)"
        );
        return;
    }
    let program = build_program();
    nautilus_tests::run_client_program("client-go", &program, "clientgo: OK");
}
