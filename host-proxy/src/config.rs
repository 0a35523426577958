//! The proxy's one configuration: every option of `serve` and `dev` from a flag, a
//! `NAUTILUS_PROXY_*` environment variable or a `--config` TOML file (flags win over variables,
//! variables over the file); `--print-config` prints the effective values as TOML with secrets
//! redacted; any bad value is one line on stderr naming the option, exit code 2, and nothing is
//! started (parsing finishes before anything binds or spawns).

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Arg, ArgAction, ArgMatches, Command, CommandFactory, FromArgMatches};
use nautilus_wire::config_file::{self, ConfigFile, Scope};

/// Exit code of every configuration error (clap's own usage-error code).
pub(crate) const EXIT_BAD_CONFIG: u8 = 2;

/// Subcommands that take `--config` and `--print-config`.
const CONFIGURABLE: &[&str] = &["serve", "dev"];

/// The file sets the options of the subcommand (`serve` or `dev`), never the hidden ones (`dev`
/// wires those itself), named by `--config` or `NAUTILUS_PROXY_CONFIG`.
const CONFIG_FILE: ConfigFile<'static> = ConfigFile {
    scope: Scope::Subcommand,
    env: Some("NAUTILUS_PROXY_CONFIG"),
    hidden_options: false,
};

/// What the command line asks for.
#[derive(Debug)]
pub(crate) enum Action<T> {
    /// Run with these options.
    Run(T),
    /// Print this text (the effective configuration) and exit 0.
    Print(String),
}

/// Why parsing stopped.
#[derive(Debug)]
pub(crate) enum Failure {
    /// A config file problem (one line).
    File(config_file::Error),
    /// Clap's verdict (a bad value, or `--help`/`--version`).
    Clap(clap::Error),
}

/// `T`'s command with `--config` and `--print-config` on each configurable subcommand.
pub(crate) fn command<T: CommandFactory>() -> Command {
    let mut command = T::command();
    for name in CONFIGURABLE {
        // `dev` exists only with the `dev` feature.
        if command.find_subcommand(name).is_none() {
            continue;
        }
        command = command.mut_subcommand(*name, |sub| {
            sub.arg(Arg::new("config").long("config").value_name("FILE").help(
                "A TOML file with any of these options (`max_connections = 512`); flags \
                         and NAUTILUS_PROXY_* variables win over it [env: NAUTILUS_PROXY_CONFIG]",
            ))
            .arg(
                Arg::new("print_config")
                    .long("print-config")
                    .action(ArgAction::SetTrue)
                    .help("Print the effective configuration as TOML (secrets redacted) and exit"),
            )
        });
    }
    command
}

/// Parses `args` (program name first), reading the config file the subcommand names.
pub(crate) fn try_parse_from<T: CommandFactory + FromArgMatches>(
    args: Vec<OsString>,
) -> Result<Action<T>, Failure> {
    let command = command::<T>();
    // Only `serve` and `dev` read a proxy config file; `__enclave` hands `--config` to the
    // enclave runtime, which reads its own.
    let configurable = args
        .get(1)
        .is_some_and(|sub| CONFIGURABLE.iter().any(|c| sub.as_os_str() == *c));
    let args = if configurable {
        CONFIG_FILE.expand(&command, args).map_err(Failure::File)?
    } else {
        args
    };
    let matches = command
        .clone()
        .try_get_matches_from(args)
        .map_err(Failure::Clap)?;
    if let Some((name, sub)) = matches.subcommand()
        && CONFIGURABLE.contains(&name)
        && sub.get_flag("print_config")
        && let Some(sub_command) = command.find_subcommand(name)
    {
        return Ok(Action::Print(effective_toml(sub_command, sub)));
    }
    T::from_arg_matches(&matches)
        .map(Action::Run)
        .map_err(Failure::Clap)
}

/// Parses the process's arguments; `Err` carries the exit code after printing what the
/// operator must see (the configuration, help, or one error line).
pub(crate) fn parse<T: CommandFactory + FromArgMatches>() -> Result<T, ExitCode> {
    match try_parse_from::<T>(std::env::args_os().collect()) {
        Ok(Action::Run(cli)) => Ok(cli),
        Ok(Action::Print(text)) => {
            print!("{text}");
            Err(ExitCode::SUCCESS)
        }
        Err(Failure::File(err)) => {
            eprintln!("error: {err}");
            Err(ExitCode::from(EXIT_BAD_CONFIG))
        }
        Err(Failure::Clap(err)) if !err.use_stderr() => {
            // --help and --version.
            let _ = err.print();
            Err(ExitCode::SUCCESS)
        }
        Err(Failure::Clap(err)) => {
            eprintln!("{}", one_line(&err));
            Err(ExitCode::from(EXIT_BAD_CONFIG))
        }
    }
}

/// `--log-level`: a tracing filter (`info`, `nautilus_proxy=debug,warn`), checked up front so
/// a typo fails the start instead of silently logging at another level.
pub(crate) fn parse_log_filter(text: &str) -> Result<String, String> {
    tracing_subscriber::EnvFilter::try_new(text)
        .map(|_| text.to_string())
        .map_err(|e| format!("not a log filter ({e}); e.g. info or nautilus_proxy=debug"))
}

/// Clap's message without the usage block and tips, on one line.
pub(crate) fn one_line(err: &clap::Error) -> String {
    let text = err.render().to_string();
    let parts: Vec<&str> = text
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .filter(|l| !l.is_empty() && !l.starts_with("tip:"))
        .collect();
    parts.join(" ")
}

/// Whether an option's value is a secret that `--print-config` must not show. Paths and
/// SHA-256 digests of tokens are not secrets; tokens, passwords and secret values are.
fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.ends_with("token")
        || key.contains("secret")
        || key.contains("private_key")
        || key.contains("password")
}

/// A TOML basic string.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One TOML value: booleans and integers bare, everything else a string.
fn toml_value(raw: &str) -> String {
    if raw == "true" || raw == "false" || raw.parse::<i64>().is_ok() {
        raw.to_string()
    } else {
        quoted(raw)
    }
}

/// Every option of `sub` as the TOML `--config` accepts, from the parsed `matches` (so options
/// other helpers add later show up without a change here). Unset options are comments.
pub(crate) fn effective_toml(sub: &Command, matches: &ArgMatches) -> String {
    let mut out = String::new();
    for arg in sub.get_arguments() {
        let Some(long) = arg.get_long().filter(|_| CONFIG_FILE.holds(arg)) else {
            continue;
        };
        let key = long.replace('-', "_");
        let values: Vec<String> = matches
            .try_get_raw(arg.get_id().as_str())
            .ok()
            .flatten()
            .map(|raw| raw.map(|v| v.to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        let repeats = matches!(arg.get_action(), ArgAction::Append);
        let line = if values.is_empty() && !repeats {
            format!("# {key} is not set\n")
        } else if is_secret(&key) {
            format!("{key} = \"<redacted>\"\n")
        } else if repeats {
            let items: Vec<String> = values.iter().map(|v| quoted(v)).collect();
            format!("{key} = [{}]\n", items.join(", "))
        } else {
            let value = values.first().map_or_else(String::new, |v| toml_value(v));
            format!("{key} = {value}\n")
        };
        out.push_str(&line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser, Debug)]
    struct Top {
        #[command(subcommand)]
        command: Sub,
    }

    #[derive(clap::Subcommand, Debug)]
    enum Sub {
        Serve {
            #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=10))]
            count: u64,
            #[arg(long)]
            relay_token: Option<String>,
            #[arg(long)]
            admin_token_sha256: Option<String>,
            #[arg(long)]
            name: Option<String>,
            #[arg(long)]
            on: bool,
            #[arg(long = "extra", allow_hyphen_values = true)]
            extra: Vec<String>,
        },
    }

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn print_config_shows_effective_values_and_redacts_secrets() {
        let Ok(Action::Print(text)) = try_parse_from::<Top>(args(&[
            "p",
            "serve",
            "--print-config",
            "--relay-token=hunter2",
            "--admin-token-sha256=abcd",
            "--on",
            "--extra=--a",
            "--extra",
            "b\"c",
        ])) else {
            panic!("not printed")
        };
        assert_eq!(
            text,
            "count = 5\nrelay_token = \"<redacted>\"\nadmin_token_sha256 = \"abcd\"\n\
             # name is not set\non = true\nextra = [\"--a\", \"b\\\"c\"]\n"
        );
        assert!(!text.contains("hunter2"));
    }

    #[test]
    fn bad_values_are_one_line_naming_the_option() {
        for (argv, needle) in [
            (vec!["p", "serve", "--count", "0"], "--count"),
            (vec!["p", "serve", "--count", "x"], "--count"),
            (vec!["p", "serve", "--bogus"], "--bogus"),
        ] {
            let Err(Failure::Clap(err)) = try_parse_from::<Top>(args(&argv)) else {
                panic!("{argv:?} parsed")
            };
            let line = one_line(&err);
            assert!(line.starts_with("error: "), "{line}");
            assert!(line.contains(needle), "{argv:?}: {line}");
            assert!(!line.contains('\n'));
        }
    }

    #[test]
    fn other_subcommands_keep_their_config_flag() {
        #[derive(clap::Parser, Debug)]
        struct WithPassThrough {
            #[command(subcommand)]
            command: Pass,
        }
        #[derive(clap::Subcommand, Debug)]
        enum Pass {
            Inner {
                #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
                args: Vec<String>,
            },
        }
        let Ok(Action::Run(parsed)) = try_parse_from::<WithPassThrough>(args(&[
            "p",
            "inner",
            "--config",
            "/nonexistent/enclave.toml",
        ])) else {
            panic!("the pass-through subcommand read the file")
        };
        let Pass::Inner { args } = parsed.command;
        assert_eq!(args, ["--config", "/nonexistent/enclave.toml"]);
    }

    #[test]
    fn secrets_are_named_by_key() {
        for (key, secret) in [
            ("relay_token", true),
            ("admin_token", true),
            ("admin_token_sha256", false),
            ("token_file", false),
            ("token_max_lifetime", false),
            ("client_secret", true),
            ("tls_key", false),
            ("max_connections", false),
        ] {
            assert_eq!(is_secret(key), secret, "{key}");
        }
    }
}
