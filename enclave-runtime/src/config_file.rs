//! `--config FILE`: every enclave option can also come from a TOML table (`max_objects = 5000`,
//! `listen = "unix:/run/nautilus.sock"`). Flags win over environment variables, which win over
//! the file; the file's entries become flags placed before the command line's.

use std::ffi::OsString;
use std::path::Path;

/// Options that name the file or ask for help; never read from the file itself.
const NOT_IN_FILE: &[&str] = &["config", "help", "version", "print-config"];

/// `args` with the `--config` file's options inserted after the program name.
pub(crate) fn expand(
    command: &clap::Command,
    args: Vec<OsString>,
) -> Result<Vec<OsString>, String> {
    let Some(path) = config_path(&args) else {
        return Ok(args);
    };
    let text = read(Path::new(&path))?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        format!(
            "config file {}: not valid TOML: {}",
            path.to_string_lossy(),
            e.message()
        )
    })?;
    let given = |long: &str| {
        args.iter().any(|a| {
            let a = a.to_string_lossy();
            a == format!("--{long}") || a.starts_with(&format!("--{long}="))
        })
    };
    let mut from_file = Vec::new();
    for (key, value) in &table {
        let long = key.replace('_', "-");
        let arg = command
            .get_arguments()
            .find(|a| a.get_long() == Some(long.as_str()) && !NOT_IN_FILE.contains(&long.as_str()))
            .ok_or_else(|| {
                format!(
                    "config file {}: unknown option `{key}`",
                    path.to_string_lossy()
                )
            })?;
        let from_env = arg
            .get_env()
            .is_some_and(|name| std::env::var_os(name).is_some());
        if given(&long) || from_env {
            continue;
        }
        let takes_value = arg.get_action().takes_values();
        match value {
            toml::Value::Boolean(flag) if !takes_value => {
                if *flag {
                    from_file.push(OsString::from(format!("--{long}")));
                }
            }
            // `metrics = false` for an option that takes true/false as its value.
            toml::Value::Boolean(flag) if takes_value => {
                from_file.push(OsString::from(format!("--{long}={flag}")))
            }
            toml::Value::String(text) if takes_value => {
                from_file.push(OsString::from(format!("--{long}={text}")))
            }
            toml::Value::Integer(n) if takes_value => {
                from_file.push(OsString::from(format!("--{long}={n}")))
            }
            _ => {
                let wanted = if takes_value {
                    "a string or an integer"
                } else {
                    "true or false"
                };
                return Err(format!(
                    "config file {}: option `{key}` must be {wanted}",
                    path.to_string_lossy()
                ));
            }
        }
    }
    let mut out = Vec::with_capacity(args.len() + from_file.len());
    let mut rest = args.into_iter();
    out.extend(rest.next());
    out.extend(from_file);
    out.extend(rest);
    Ok(out)
}

fn config_path(args: &[OsString]) -> Option<OsString> {
    let mut iter = args.iter().skip(1);
    while let Some(arg) = iter.next() {
        let text = arg.to_string_lossy();
        if text == "--config" {
            return iter.next().cloned();
        }
        if let Some(path) = text.strip_prefix("--config=") {
            return Some(OsString::from(path));
        }
    }
    None
}

fn read(path: &Path) -> Result<String, String> {
    if path.is_dir() {
        return Err(format!("config file {}: is a directory", path.display()));
    }
    std::fs::read_to_string(path)
        .map_err(|e| format!("config file {}: cannot be read: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::{CommandFactory as _, Parser as _};

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
