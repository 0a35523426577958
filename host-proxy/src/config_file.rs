//! `--config FILE` for `nautilus-proxy serve|dev`: every option of the subcommand can come from
//! a TOML table (`max_connections = 512`, `enclave = "vsock:16:5000"`, `enclave_arg = ["--x"]`).
//! Flags win over `NAUTILUS_PROXY_*` environment variables, which win over the file: the file's
//! entries become flags placed right after the subcommand, and an entry is skipped when its
//! flag is on the command line or its variable is set. Clap then checks every value, so a bad
//! value in the file fails exactly like the same bad flag.

use std::ffi::OsString;
use std::path::Path;

/// The environment variable naming the config file when `--config` is not given.
pub(crate) const CONFIG_ENV: &str = "NAUTILUS_PROXY_CONFIG";

/// Options that name the file or ask for help; never read from the file itself.
const NOT_IN_FILE: &[&str] = &["config", "help", "version", "print-config"];

/// `args` (program name, subcommand, options) with the config file's options inserted after
/// the subcommand. Without `--config` (or its variable) `args` come back unchanged.
pub(crate) fn expand(
    command: &clap::Command,
    args: Vec<OsString>,
) -> Result<Vec<OsString>, String> {
    let Some(sub_name) = args.get(1).map(|a| a.to_string_lossy().into_owned()) else {
        return Ok(args);
    };
    let Some(sub) = command.find_subcommand(&sub_name) else {
        return Ok(args);
    };
    let Some(path) = config_path(&args) else {
        return Ok(args);
    };
    let shown = path.to_string_lossy().into_owned();
    let text = read(Path::new(&path))?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        format!(
            "config file {shown}: not valid TOML: {}",
            e.message().trim().replace('\n', " ")
        )
    })?;
    let given = |long: &str| {
        args.iter().skip(2).any(|a| {
            let a = a.to_string_lossy();
            a == format!("--{long}") || a.starts_with(&format!("--{long}="))
        })
    };
    let mut from_file = Vec::new();
    for (key, value) in &table {
        let long = key.replace('_', "-");
        let arg = sub
            .get_arguments()
            .find(|a| {
                a.get_long() == Some(long.as_str())
                    && !a.is_hide_set()
                    && !NOT_IN_FILE.contains(&long.as_str())
            })
            .ok_or_else(|| format!("config file {shown}: unknown option `{key}`"))?;
        let from_env = arg
            .get_env()
            .is_some_and(|name| std::env::var_os(name).is_some());
        if given(&long) || from_env {
            continue;
        }
        let takes_value = arg.get_action().takes_values();
        let repeats = matches!(arg.get_action(), clap::ArgAction::Append);
        let scalar = |value: &toml::Value| match value {
            toml::Value::String(text) => Some(text.clone()),
            toml::Value::Integer(n) => Some(n.to_string()),
            _ => None,
        };
        let wrong = |wanted: &str| format!("config file {shown}: option `{key}` must be {wanted}");
        match value {
            toml::Value::Boolean(flag) if !takes_value => {
                if *flag {
                    from_file.push(OsString::from(format!("--{long}")));
                }
            }
            toml::Value::Array(items) if takes_value && repeats => {
                for item in items {
                    let text = scalar(item).ok_or_else(|| wrong("a list of strings"))?;
                    from_file.push(OsString::from(format!("--{long}={text}")));
                }
            }
            value if takes_value => {
                let text = scalar(value).ok_or_else(|| {
                    wrong(if repeats {
                        "a string or a list of strings"
                    } else {
                        "a string or an integer"
                    })
                })?;
                from_file.push(OsString::from(format!("--{long}={text}")));
            }
            _ => return Err(wrong("true or false")),
        }
    }
    let mut out = Vec::with_capacity(args.len() + from_file.len());
    let mut rest = args.into_iter();
    out.extend(rest.by_ref().take(2));
    out.extend(from_file);
    out.extend(rest);
    Ok(out)
}

/// The `--config` value after the subcommand, else `NAUTILUS_PROXY_CONFIG`.
fn config_path(args: &[OsString]) -> Option<OsString> {
    let mut iter = args.iter().skip(2);
    while let Some(arg) = iter.next() {
        let text = arg.to_string_lossy();
        if text == "--config" {
            return iter.next().cloned();
        }
        if let Some(path) = text.strip_prefix("--config=") {
            return Some(OsString::from(path));
        }
    }
    std::env::var_os(CONFIG_ENV).filter(|v| !v.is_empty())
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

    fn command() -> clap::Command {
        clap::Command::new("p").subcommand(
            clap::Command::new("serve")
                .arg(clap::Arg::new("listen").long("listen"))
                .arg(
                    clap::Arg::new("max")
                        .long("max-connections")
                        .env("NAUTILUS_PROXY_TEST_ONLY_MAX"),
                )
                .arg(
                    clap::Arg::new("flag")
                        .long("flag")
                        .action(clap::ArgAction::SetTrue),
                )
                .arg(
                    clap::Arg::new("extra")
                        .long("extra")
                        .action(clap::ArgAction::Append),
                )
                .arg(clap::Arg::new("config").long("config")),
        )
    }

    fn expand_with(text: &str, extra: &[&str]) -> Result<Vec<String>, String> {
        let dir = tempdir(text);
        let file = dir.join("proxy.toml");
        std::fs::write(&file, text).map_err(|e| e.to_string())?;
        let mut args: Vec<OsString> = vec!["p".into(), "serve".into(), "--config".into()];
        args.push(file.into_os_string());
        args.extend(extra.iter().map(OsString::from));
        let out = expand(&command(), args)?;
        Ok(out
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect())
    }

    fn tempdir(text: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "nautilus-proxy-config-{}-{}",
            std::process::id(),
            text.len()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn file_entries_become_flags_after_the_subcommand() {
        let out = expand_with(
            "listen = \"127.0.0.1:1\"\nmax_connections = 5\nflag = true\nextra = [\"a\", \"b\"]\n",
            &["--listen", "127.0.0.1:2"],
        )
        .unwrap();
        assert_eq!(out.get(1).map(String::as_str), Some("serve"));
        assert!(
            !out.iter().any(|a| a == "--listen=127.0.0.1:1"),
            "the flag wins: {out:?}"
        );
        for want in ["--max-connections=5", "--flag", "--extra=a", "--extra=b"] {
            assert!(out.iter().any(|a| a == want), "{want} in {out:?}");
        }
    }

    #[test]
    fn bad_files_are_one_clear_error() {
        let cases = [
            ("nope = 1\n", "unknown option `nope`"),
            (
                "listen = [1]\n",
                "option `listen` must be a string or an integer",
            ),
            ("flag = 1\n", "option `flag` must be true or false"),
            (
                "extra = [true]\n",
                "option `extra` must be a list of strings",
            ),
            ("listen = \n", "not valid TOML"),
        ];
        for (text, needle) in cases {
            let err = expand_with(text, &[]).unwrap_err();
            assert!(err.contains(needle), "{text:?}: {err}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
        let dir = std::env::temp_dir();
        let args = vec![
            "p".into(),
            "serve".into(),
            "--config".into(),
            dir.into_os_string(),
        ];
        assert!(
            expand(&command(), args)
                .unwrap_err()
                .contains("is a directory")
        );
        let missing = vec![
            "p".into(),
            "serve".into(),
            "--config=/nonexistent/proxy.toml".into(),
        ];
        assert!(
            expand(&command(), missing)
                .unwrap_err()
                .contains("cannot be read")
        );
    }
}
