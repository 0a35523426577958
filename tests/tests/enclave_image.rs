//! The part of the enclave image recipe this machine can run (no Docker engine, no Nitro): the
//! statically linked binary the image holds, and the example measured configuration.

use std::process::Command;

use nautilus_tests::{binary, workspace_dir};

#[test]
fn the_example_measured_configuration_is_valid() {
    let example = workspace_dir().join("enclave-runtime/image/enclave.example.toml");
    let out = Command::new(binary("nautilus-proxy"))
        .arg("__enclave")
        .arg("--config")
        .arg(&example)
        .arg("--print-config")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("listen = \"vsock:5000\""), "{stdout}");
    assert!(
        stdout.contains("simulated_nsm = false"),
        "production images never run the simulated NSM: {stdout}"
    );
}

#[test]
fn the_image_binary_is_statically_linked_and_runs() {
    let out_dir = tempfile::tempdir().unwrap();
    let script = workspace_dir().join("enclave-runtime/image/build-eif.sh");
    let built = Command::new("bash")
        .arg(&script)
        .arg("--binary-only")
        .arg("--out")
        .arg(out_dir.path())
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&built.stdout),
        String::from_utf8_lossy(&built.stderr)
    );
    let bin = out_dir.path().join("nautilus-enclave");
    let file = Command::new("file").arg(&bin).output().unwrap();
    let description = String::from_utf8_lossy(&file.stdout);
    assert!(
        description.contains("statically linked") || description.contains("static-pie"),
        "{description}"
    );
    let ldd = Command::new("ldd").arg(&bin).output().unwrap();
    let ldd_text = format!(
        "{}{}",
        String::from_utf8_lossy(&ldd.stdout),
        String::from_utf8_lossy(&ldd.stderr)
    );
    assert!(
        ldd_text.contains("not a dynamic executable") || ldd_text.contains("statically linked"),
        "{ldd_text}"
    );
    let version = Command::new(&bin).arg("--version").output().unwrap();
    assert!(
        String::from_utf8_lossy(&version.stdout).starts_with("nautilus-enclave"),
        "the static binary runs"
    );
    // Production refuses to start without the Nitro NSM (there is none here).
    let refused = Command::new(&bin)
        .args([
            "--listen",
            &format!("unix:{}/s.sock", out_dir.path().display()),
        ])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("no NSM available"));
}
