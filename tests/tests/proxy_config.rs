//! `nautilus-proxy` configuration as an operator meets it: every option of `serve` and `dev`
//! from a flag, a `NAUTILUS_PROXY_*` variable or a `--config` TOML file (flags win over
//! variables, variables over the file), `--print-config`, and one clear line with exit code 2
//! for every bad value, with nothing started.

use std::process::Command;

use nautilus_tests::{binary, free_port};

/// Runs the proxy with `args` and `env` (and no inherited `NAUTILUS_PROXY_*`); exit code,
/// stdout, stderr.
fn proxy(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(binary("nautilus-proxy"));
    cmd.args(args);
    for (name, _) in std::env::vars() {
        if name.starts_with("NAUTILUS_PROXY_") {
            cmd.env_remove(name);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run the proxy");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn serve_file_env_and_flags_combine_with_flags_winning() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("proxy.toml");
    std::fs::write(
        &file,
        "enclave = \"vsock:16:5000\"\ntls_cert = \"/etc/nautilus/tls.crt\"\n\
         tls_key = \"/etc/nautilus/tls.key\"\nmax_connections = 100\nidle_timeout_secs = 30\n\
         handshake_timeout_secs = 5\nenclave_logs = \"vsock:9001\"\nlog_format = \"json\"\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let (code, out, err) = proxy(
        &[
            "serve",
            "--config",
            file,
            "--print-config",
            "--max-connections",
            "7",
        ],
        &[("NAUTILUS_PROXY_IDLE_TIMEOUT_SECS", "60")],
    );
    assert_eq!(code, Some(0), "{err}");
    for want in [
        "enclave = \"vsock:16:5000\"",
        "tls_cert = \"/etc/nautilus/tls.crt\"",
        "max_connections = 7",
        "idle_timeout_secs = 60",
        "handshake_timeout_secs = 5",
        "enclave_logs = \"vsock:9001\"",
        "log_format = \"json\"",
        "listen = \"127.0.0.1:6443\"",
        "shutdown_grace_secs = 10",
        "# metrics_listen is not set",
    ] {
        assert!(out.contains(want), "{want} missing:\n{out}");
    }
    // The printed configuration is itself a valid config file for the same subcommand.
    let again = dir.path().join("again.toml");
    std::fs::write(&again, &out).unwrap();
    let (code, out2, err) = proxy(
        &[
            "serve",
            "--config",
            again.to_str().unwrap(),
            "--print-config",
        ],
        &[],
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out2, out);
}

#[test]
fn the_config_file_can_come_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("proxy.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:7443\"\nenclave_arg = [\"--max-objects=5000\", \"--watch-ring=99\"]\n\
         token_max_lifetime = 600\n",
    )
    .unwrap();
    let (code, out, err) = proxy(
        &["dev", "--print-config"],
        &[("NAUTILUS_PROXY_CONFIG", file.to_str().unwrap())],
    );
    assert_eq!(code, Some(0), "{err}");
    for want in [
        "listen = \"127.0.0.1:7443\"",
        "enclave_arg = [\"--max-objects=5000\", \"--watch-ring=99\"]",
        "token_max_lifetime = 600",
        "data_dir = \"./.nautilus-dev\"",
    ] {
        assert!(out.contains(want), "{want} missing:\n{out}");
    }
    assert!(
        !out.contains("exit_with_parent"),
        "hidden options stay hidden:\n{out}"
    );
}

/// Arguments, environment, and a text the one error line must contain.
type Case<'a> = (Vec<String>, Vec<(&'a str, &'a str)>, &'a str);

#[test]
fn bad_configuration_is_one_line_naming_the_option_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let logs = dir.path().join("logs.sock");
    let logs_arg = format!("unix:{}", logs.display());
    let write = |name: &str, text: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let unknown = write("unknown.toml", b"max_conections = 1\n");
    let wrong_type = write("type.toml", b"max_connections = \"many\"\n");
    let not_a_flag = write("flag.toml", b"max_connections = true\n");
    let zero = write("zero.toml", b"handshake_timeout_secs = 0\n");
    let huge = write("huge.toml", b"idle_timeout_secs = 99999999999\n");
    let not_toml = write("broken.toml", b"listen = \n");
    let not_utf8 = write("binary.toml", b"listen = \"\xff\xfe\"\n");
    let dir_path = dir.path().to_str().unwrap().to_string();
    let base = |extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = [
            "serve",
            "--listen",
            &listen,
            "--enclave",
            "unix:/nonexistent/enclave.sock",
            "--tls-cert",
            "/nonexistent/c.pem",
            "--tls-key",
            "/nonexistent/k.pem",
            "--enclave-logs",
            &logs_arg,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let cases: Vec<Case> = vec![
        (
            base(&["--config", &unknown]),
            vec![],
            "unknown option `max_conections`",
        ),
        (
            base(&["--config", &wrong_type]),
            vec![],
            "--max-connections",
        ),
        (
            base(&["--config", &not_a_flag]),
            vec![],
            "`max_connections` must be",
        ),
        (
            base(&["--config", &zero]),
            vec![],
            "--handshake-timeout-secs",
        ),
        (base(&["--config", &huge]), vec![], "--idle-timeout-secs"),
        (base(&["--config", &not_toml]), vec![], "not valid TOML"),
        (base(&["--config", &not_utf8]), vec![], "cannot be read"),
        (base(&["--config", &dir_path]), vec![], "is a directory"),
        (
            base(&["--config", "/nonexistent/proxy.toml"]),
            vec![],
            "cannot be read",
        ),
        (
            base(&["--max-connections", "0"]),
            vec![],
            "--max-connections",
        ),
        (
            base(&["--idle-timeout-secs=-1"]),
            vec![],
            "--idle-timeout-secs",
        ),
        (base(&["--log-level", "debug,=="]), vec![], "--log-level"),
        (base(&["--log-format", "xml"]), vec![], "--log-format"),
        (
            base(&["--metrics-listen", "0.0.0.0:9090"]),
            vec![],
            "not a loopback address",
        ),
        (base(&["--bogus"]), vec![], "--bogus"),
        (
            base(&[]),
            vec![("NAUTILUS_PROXY_MAX_CONNECTIONS", "lots")],
            "--max-connections",
        ),
        (
            vec![
                "serve".into(),
                "--listen".into(),
                listen.clone(),
                "--enclave".into(),
                "tcp:1".into(),
                "--tls-cert".into(),
                "c".into(),
                "--tls-key".into(),
                "k".into(),
            ],
            vec![],
            "--enclave",
        ),
        (
            base(&[])
                .into_iter()
                .map(|a| if a == logs_arg { "vsock:x".into() } else { a })
                .collect(),
            vec![],
            "--enclave-logs",
        ),
        (
            vec!["serve".into(), "--listen".into(), listen.clone()],
            vec![],
            "--enclave",
        ),
        (
            vec![
                "dev".into(),
                "--listen".into(),
                listen.clone(),
                "--data-dir".into(),
                dir.path().join("dev").to_str().unwrap().into(),
                "--token-max-lifetime".into(),
                "5".into(),
            ],
            vec![],
            "--token-max-lifetime",
        ),
    ];
    for (args, env, needle) in cases {
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, out, err) = proxy(&argv, &env);
        assert_eq!(code, Some(2), "{args:?} {env:?}: {err}");
        assert!(err.contains(needle), "{args:?} {env:?}: {err}");
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "one line for {args:?}: {err}"
        );
        assert!(err.starts_with("error: "), "{err}");
        assert!(out.is_empty(), "{args:?}: {out}");
        // Nothing was started: the port is free, no log socket or dev data dir was made.
        assert!(
            std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(),
            "{args:?} left the port bound"
        );
        assert!(!logs.exists(), "{args:?} made the log socket");
        assert!(
            !dir.path().join("dev").exists(),
            "{args:?} made the data dir"
        );
    }
}

#[test]
fn help_and_version_exit_0() {
    let (code, out, _) = proxy(&["serve", "--help"], &[]);
    assert_eq!(code, Some(0));
    for want in [
        "--config",
        "--print-config",
        "--enclave-logs",
        "NAUTILUS_PROXY_CONFIG",
    ] {
        assert!(out.contains(want), "{want} missing from help:\n{out}");
    }
    let (code, out, _) = proxy(&["--version"], &[]);
    assert_eq!(code, Some(0));
    assert!(out.starts_with("nautilus-proxy "), "{out}");
}
