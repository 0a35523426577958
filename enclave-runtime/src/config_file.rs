//! `--config FILE`: every enclave option can also come from a TOML table (`max_objects = 5000`,
//! `listen = "unix:/run/nautilus.sock"`). Flags win over environment variables, which win over
//! the file; the file's entries become flags placed before the command line's. The reading is
//! `nautilus-wire`'s, shared with the proxy; this says how the enclave uses it.

use nautilus_wire::config_file::{ConfigFile, Scope};

/// The enclave's file sets its own options (the TESTS ONLY ones too), named by `--config` or
/// `NAUTILUS_CONFIG` (the variable `Cli::config` declares).
pub(crate) const CONFIG_FILE: ConfigFile<'static> = ConfigFile {
    scope: Scope::Program,
    env: Some("NAUTILUS_CONFIG"),
    hidden_options: true,
};

#[cfg(test)]
mod tests {
    use std::ffi::OsString;

    use super::*;
    use crate::cli::Cli;
    use clap::{CommandFactory as _, Parser as _};

    fn expand(command: &clap::Command, args: Vec<OsString>) -> Result<Vec<OsString>, String> {
        CONFIG_FILE.expand(command, args).map_err(|e| e.to_string())
    }

    fn with_file(text: &str, args: &[&str]) -> Result<Cli, String> {
        let dir = std::env::temp_dir().join(format!(
            "nautilus-config-{}-{}",
            std::process::id(),
            text.len()
        ));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let file = dir.join("enclave.toml");
        std::fs::write(&file, text).map_err(|e| e.to_string())?;
        let mut argv: Vec<OsString> = vec![
            "nautilus-enclave".into(),
            "--config".into(),
            file.clone().into(),
        ];
        argv.extend(args.iter().map(OsString::from));
        let expanded = expand(&Cli::command(), argv)?;
        Cli::try_parse_from(expanded).map_err(|e| e.to_string())
    }

    #[test]
    fn the_file_fills_options_and_flags_win() {
        let cli = with_file(
            "listen = \"unix:/tmp/a.sock\"\nmax_objects = 5000\nsimulated-nsm = true\n",
            &["--max-objects", "7"],
        )
        .unwrap();
        assert_eq!(
            cli.listen,
            crate::cli::ListenAddr::Unix("/tmp/a.sock".into())
        );
        assert_eq!(cli.max_objects, 7, "the flag wins over the file");
        assert!(cli.simulated_nsm);
    }

    #[test]
    fn tls_options_come_from_the_file_too() {
        let cli = with_file(
            "listen = \"unix:/tmp/t.sock\"\ntls = \"enclave\"\ntls_san = \"api.example.com,10.0.0.1\"\ntrust_proxy_client_cert = true\n",
            &[],
        )
        .unwrap();
        assert_eq!(cli.tls, crate::tls::TlsMode::Enclave);
        assert_eq!(cli.tls_san, ["api.example.com", "10.0.0.1"]);
        assert!(cli.trust_proxy_client_cert);
        let default = with_file("listen = \"unix:/tmp/t.sock\"\n", &[]).unwrap();
        assert_eq!(
            default.tls,
            crate::tls::TlsMode::Proxy,
            "proxy TLS is the default"
        );
        assert!(!default.trust_proxy_client_cert);
        let bad = with_file("listen = \"unix:/tmp/t.sock\"\ntls = \"both\"\n", &[]).unwrap_err();
        assert!(bad.contains("both"), "{bad}");
    }

    #[test]
    fn bad_files_are_one_clear_error() {
        let unknown = with_file("listen = \"unix:/x\"\nmax_objcts = 1\n", &[]).unwrap_err();
        assert!(unknown.contains("unknown option `max_objcts`"), "{unknown}");
        let wrong_type = with_file("listen = \"unix:/x\"\nmax_objects = [1]\n", &[]).unwrap_err();
        assert!(
            wrong_type.contains("option `max_objects` must be a string or an integer"),
            "{wrong_type}"
        );
        let out_of_range = with_file("listen = \"unix:/x\"\nmax_objects = 0\n", &[]).unwrap_err();
        assert!(out_of_range.contains("max-objects"), "{out_of_range}");
        let not_toml = with_file("listen = \n", &[]).unwrap_err();
        assert!(not_toml.contains("not valid TOML"), "{not_toml}");
        let dir = std::env::temp_dir();
        let argv = vec![
            "nautilus-enclave".into(),
            "--config".into(),
            dir.clone().into_os_string(),
        ];
        assert!(
            expand(&Cli::command(), argv)
                .unwrap_err()
                .contains("is a directory")
        );
    }
}
