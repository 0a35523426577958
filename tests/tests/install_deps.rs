//! `tests/install-deps.sh`, which `tests/run-all.sh` runs first so that a fresh machine needs
//! nothing installed by hand: with everything present it installs nothing and says so, and with
//! tools missing from the PATH it plans what would bring them, and only that (checked with
//! `--dry-run`, which installs nothing).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use nautilus_tests::workspace_dir;

fn install_deps(args: &[&str], path: Option<&Path>) -> Output {
    let mut cmd = Command::new("bash");
    cmd.arg(workspace_dir().join("tests/install-deps.sh"))
        .args(args);
    if let Some(path) = path {
        cmd.env("PATH", path);
    }
    cmd.output().expect("bash runs the script")
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "install-deps failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn with_everything_present_it_installs_nothing() {
    let out = stdout(&install_deps(&["--dry-run"], None));
    assert_eq!(out.trim(), "install-deps: nothing to install");
    let out = stdout(&install_deps(&[], None));
    assert_eq!(out.trim(), "install-deps: all test dependencies present");
}

#[test]
fn tools_missing_from_the_path_are_planned() {
    // A PATH with every command of ours except the ones taken away.
    let taken = ["promtool", "kubectl", "go", "file", "npm"];
    let dir = tempfile::tempdir().unwrap();
    let mut seen = BTreeSet::new();
    for entry in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        let Ok(listing) = std::fs::read_dir(&entry) else {
            continue;
        };
        for file in listing.flatten() {
            let name = file.file_name();
            if taken.iter().any(|t| name == *t) || !seen.insert(name.clone()) {
                continue;
            }
            std::os::unix::fs::symlink(file.path(), dir.path().join(&name)).unwrap();
        }
    }
    let out = stdout(&install_deps(&["--dry-run"], Some(dir.path())));
    let apt = out
        .lines()
        .find_map(|l| l.strip_prefix("install-deps: would apt-get install "))
        .unwrap_or_else(|| panic!("no apt-get plan: {out}"));
    let apt: BTreeSet<&str> = apt.split(' ').collect();
    for package in ["prometheus", "file", "npm"] {
        assert!(apt.contains(package), "{package} not planned: {out}");
    }
    assert!(
        !apt.contains("nodejs") && !apt.contains("openssl"),
        "only what is missing: {out}"
    );
    // (Unless an earlier run put them under target/tools, which the script itself puts on its
    // PATH.)
    if !workspace_dir().join("target/tools/bin/kubectl").exists() {
        assert!(out.contains("would download kubectl v1.32.4 into"), "{out}");
    }
    if !workspace_dir().join("target/tools/go/bin/go").exists() {
        assert!(out.contains("would download Go 1.26.8 into"), "{out}");
    }
}
