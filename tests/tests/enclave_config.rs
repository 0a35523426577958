//! `nautilus-enclave` configuration as an operator meets it: a TOML file under flags and
//! environment variables, `--print-config`, and one clear line with exit code 2 for every bad
//! value, with nothing started.

use std::process::Command;

use nautilus_tests::binary;

fn enclave(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(binary("nautilus-proxy"));
    cmd.arg("__enclave").args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run the enclave");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn file_env_and_flags_combine_with_flags_winning() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("enclave.toml");
    std::fs::write(&file, "listen = \"unix:/tmp/from-file.sock\"\nmax_objects = 5000\nwatch_ring = 77\nmin_stake = 5\n").unwrap();
    let file = file.to_str().unwrap();
    let (code, out, err) = enclave(
        &["--config", file, "--print-config", "--watch-ring", "99"],
        &[("NAUTILUS_MIN_STAKE", "42")],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("listen = \"unix:/tmp/from-file.sock\""),
        "{out}"
    );
    assert!(
        out.contains("max_objects = 5000"),
        "the file fills what nothing else sets: {out}"
    );
    assert!(out.contains("watch_ring = 99"), "flags win: {out}");
    assert!(
        out.contains("min_stake = 42"),
        "the environment wins over the file: {out}"
    );
}

#[test]
fn the_config_file_can_come_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let from_env = write(
        "env.toml",
        "listen = \"unix:/tmp/from-env.sock\"\nmax_objects = 5000\n",
    );
    let (code, out, err) = enclave(&["--print-config"], &[("NAUTILUS_CONFIG", &from_env)]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("listen = \"unix:/tmp/from-env.sock\""),
        "{out}"
    );
    assert!(out.contains("max_objects = 5000"), "{out}");
    let given = write(
        "given.toml",
        "listen = \"unix:/tmp/given.sock\"\nwatch_ring = 77\n",
    );
    let (code, out, err) = enclave(
        &["--config", &given, "--print-config"],
        &[("NAUTILUS_CONFIG", &from_env)],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("watch_ring = 77") && !out.contains("max_objects = 5000"),
        "--config wins over the variable: {out}"
    );
}

#[test]
fn bad_configuration_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("never.sock");
    let listen = format!("unix:{}", socket.display());
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let unknown = write("unknown.toml", "max_objcts = 1\n");
    let wrong_type = write("type.toml", "max_objects = \"many\"\n");
    let dir_path = dir.path().to_str().unwrap().to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--listen", &listen, "--simulated-nsm", "--config", &unknown],
            "unknown option `max_objcts`",
        ),
        (
            vec![
                "--listen",
                &listen,
                "--simulated-nsm",
                "--config",
                &wrong_type,
            ],
            "max-objects",
        ),
        (
            vec![
                "--listen",
                &listen,
                "--simulated-nsm",
                "--config",
                &dir_path,
            ],
            "is a directory",
        ),
        (
            vec!["--listen", &listen, "--simulated-nsm", "--max-objects", "0"],
            "max-objects",
        ),
        (
            vec![
                "--listen",
                &listen,
                "--simulated-nsm",
                "--max-store-bytes",
                "1099511627776",
            ],
            "larger than this machine's memory",
        ),
        (
            vec!["--listen", "tcp:1", "--simulated-nsm"],
            "expected unix:PATH or vsock:PORT",
        ),
    ];
    for (args, needle) in cases {
        let (code, _, err) = enclave(&args, &[]);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!socket.exists(), "nothing was started for {args:?}");
    }
}
