//! `--config FILE` for `nautilus-enclave` and `nautilus-proxy serve|dev`: every option can also
//! come from a TOML table (`max_objects = 5000`, `listen = "unix:/run/nautilus.sock"`,
//! `enclave_arg = ["--x"]`). Flags win over environment variables, which win over the file: the
//! file's entries become flags placed before the command line's own, and an entry is skipped
//! when its flag is on the command line or its variable is set. Clap then checks every value,
//! so a bad value in the file fails exactly like the same bad flag.

use std::any::TypeId;
use std::ffi::OsString;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Options that name the file or ask for help; never read from the file itself.
const NOT_IN_FILE: &[&str] = &["config", "help", "version", "print-config"];

/// How one program reads its config file.
#[derive(Clone, Copy, Debug)]
pub struct ConfigFile<'a> {
    /// Whose options the file sets, and so where its entries go.
    pub scope: Scope,
    /// The variable naming the file when `--config` is not given (an empty value counts as
    /// unset).
    pub env: Option<&'a str>,
    /// Whether hidden options may come from the file: the enclave's TESTS ONLY switches may;
    /// the proxy's hidden options are wired by `dev` itself, never by an operator.
    pub hidden_options: bool,
}

/// Whose options a config file sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The program's own (`nautilus-enclave`): entries go right after the program name.
    Program,
    /// Those of the subcommand the first argument names (`nautilus-proxy serve`): entries go
    /// right after it. Without a known subcommand the arguments come back unchanged.
    Subcommand,
}

/// Why a config file was refused; shown as one line starting `config file PATH: `.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The path names a directory.
    IsDirectory { path: PathBuf },
    /// The file could not be read (missing, not permitted, not UTF-8).
    Unreadable { path: PathBuf, source: io::Error },
    /// The text is not TOML; `message` is the parser's, on one line.
    NotToml { path: PathBuf, message: String },
    /// A key that is no option of the command (or one the file may not set).
    UnknownOption { path: PathBuf, key: String },
    /// A value of the wrong TOML type; `wanted` says which types the option takes.
    WrongType {
        path: PathBuf,
        key: String,
        wanted: &'static str,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::IsDirectory { path } => {
                write!(f, "config file {}: is a directory", path.display())
            }
            Error::Unreadable { path, source } => {
                write!(
                    f,
                    "config file {}: cannot be read: {source}",
                    path.display()
                )
            }
            Error::NotToml { path, message } => {
                write!(
                    f,
                    "config file {}: not valid TOML: {message}",
                    path.display()
                )
            }
            Error::UnknownOption { path, key } => {
                write!(f, "config file {}: unknown option `{key}`", path.display())
            }
            Error::WrongType { path, key, wanted } => write!(
                f,
                "config file {}: option `{key}` must be {wanted}",
                path.display()
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Unreadable { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl ConfigFile<'_> {
    /// `args` (program name first) with the config file's options inserted where
    /// [`Scope`] says. Without `--config` (or its variable) `args` come back unchanged.
    pub fn expand(
        &self,
        command: &clap::Command,
        args: Vec<OsString>,
    ) -> Result<Vec<OsString>, Error> {
        let (options, head) = match self.scope {
            Scope::Program => (command, 1),
            Scope::Subcommand => {
                let Some(name) = args.get(1).map(|a| a.to_string_lossy().into_owned()) else {
                    return Ok(args);
                };
                let Some(sub) = command.find_subcommand(&name) else {
                    return Ok(args);
                };
                (sub, 2)
            }
        };
        let Some(path) = self.path(args.get(head..).unwrap_or_default()) else {
            return Ok(args);
        };
        let path = PathBuf::from(path);
        let text = read(&path)?;
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| Error::NotToml {
            path: path.clone(),
            message: e.message().trim().replace('\n', " "),
        })?;
        let given = |long: &str| {
            args.iter().skip(head).any(|a| {
                let a = a.to_string_lossy();
                a == format!("--{long}") || a.starts_with(&format!("--{long}="))
            })
        };
        let mut from_file = Vec::new();
        for (key, value) in &table {
            let long = key.replace('_', "-");
            let arg = options
                .get_arguments()
                .find(|a| a.get_long() == Some(long.as_str()) && self.holds(a))
                .ok_or_else(|| Error::UnknownOption {
                    path: path.clone(),
                    key: key.clone(),
                })?;
            let from_env = arg
                .get_env()
                .is_some_and(|name| std::env::var_os(name).is_some());
            if given(&long) || from_env {
                continue;
            }
            let wrong = |wanted| Error::WrongType {
                path: path.clone(),
                key: key.clone(),
                wanted,
            };
            from_file.extend(flags(arg, &long, value).map_err(wrong)?);
        }
        let mut out = Vec::with_capacity(args.len() + from_file.len());
        let mut rest = args.into_iter();
        out.extend(rest.by_ref().take(head));
        out.extend(from_file);
        out.extend(rest);
        Ok(out)
    }

    /// Whether `arg` is an option the file may set (the options the proxy's `--print-config`
    /// prints, so its output is a file the same command accepts).
    pub fn holds(&self, arg: &clap::Arg) -> bool {
        arg.get_long()
            .is_some_and(|long| !NOT_IN_FILE.contains(&long))
            && (self.hidden_options || !arg.is_hide_set())
    }

    /// The `--config` value among `options` (the arguments after the program name, or after
    /// the subcommand), else the variable's.
    fn path(&self, options: &[OsString]) -> Option<OsString> {
        let mut iter = options.iter();
        while let Some(arg) = iter.next() {
            let text = arg.to_string_lossy();
            if text == "--config" {
                return iter.next().cloned();
            }
            if let Some(path) = text.strip_prefix("--config=") {
                return Some(OsString::from(path));
            }
        }
        self.env
            .and_then(std::env::var_os)
            .filter(|v| !v.is_empty())
    }
}

/// The flags one file entry stands for; `Err` names the TOML types `arg` takes.
fn flags(arg: &clap::Arg, long: &str, value: &toml::Value) -> Result<Vec<OsString>, &'static str> {
    let takes_value = arg.get_action().takes_values();
    let repeats = matches!(arg.get_action(), clap::ArgAction::Append);
    let boolean_value = arg.get_value_parser().type_id() == TypeId::of::<bool>();
    let flag = |text: &str| OsString::from(format!("--{long}={text}"));
    match value {
        toml::Value::Boolean(on) if !takes_value => Ok(on
            .then(|| OsString::from(format!("--{long}")))
            .into_iter()
            .collect()),
        // `metrics = false` for an option that takes true/false as its value.
        toml::Value::Boolean(on) if boolean_value => Ok(vec![flag(&on.to_string())]),
        toml::Value::Array(items) if takes_value && repeats => items
            .iter()
            .map(|item| {
                scalar(item)
                    .map(|text| flag(&text))
                    .ok_or("a list of strings")
            })
            .collect(),
        value if takes_value => scalar(value)
            .map(|text| vec![flag(&text)])
            .ok_or(if repeats {
                "a string or a list of strings"
            } else {
                "a string or an integer"
            }),
        _ => Err("true or false"),
    }
}

/// A string or an integer as the text of a flag's value.
fn scalar(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(text) => Some(text.clone()),
        toml::Value::Integer(n) => Some(n.to_string()),
        _ => None,
    }
}

fn read(path: &Path) -> Result<String, Error> {
    if path.is_dir() {
        return Err(Error::IsDirectory {
            path: path.to_path_buf(),
        });
    }
    std::fs::read_to_string(path).map_err(|source| Error::Unreadable {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// How `nautilus-proxy` reads its file (but with no variable: tests share one process
    /// environment).
    const SUBCOMMAND: ConfigFile<'static> = ConfigFile {
        scope: Scope::Subcommand,
        env: None,
        hidden_options: false,
    };

    fn options() -> clap::Command {
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
            .arg(
                clap::Arg::new("metrics")
                    .long("metrics")
                    .action(clap::ArgAction::Set)
                    .value_parser(clap::value_parser!(bool)),
            )
            .arg(clap::Arg::new("secret").long("secret").hide(true))
            .arg(clap::Arg::new("config").long("config"))
    }

    fn command() -> clap::Command {
        clap::Command::new("p").subcommand(options())
    }

    /// `text` in a file of its own (tests run in parallel).
    fn write(text: &str) -> PathBuf {
        static FILES: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "nautilus-wire-config-{}-{}",
            std::process::id(),
            FILES.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("proxy.toml");
        std::fs::write(&file, text).unwrap();
        file
    }

    fn strings(args: Vec<OsString>) -> Vec<String> {
        args.into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    fn expand_with(text: &str, extra: &[&str]) -> Result<Vec<String>, String> {
        let mut args: Vec<OsString> = vec!["p".into(), "serve".into(), "--config".into()];
        args.push(write(text).into_os_string());
        args.extend(extra.iter().map(OsString::from));
        let out = SUBCOMMAND
            .expand(&command(), args)
            .map_err(|e| e.to_string())?;
        Ok(strings(out))
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
    fn file_entries_go_after_the_program_name_for_a_program() {
        let program = ConfigFile {
            scope: Scope::Program,
            env: None,
            hidden_options: true,
        };
        let file = write("flag = true\nmetrics = false\nsecret = \"s\"\nextra = \"x\"\n");
        let mut config = OsString::from("--config=");
        config.push(&file);
        let args = vec!["e".into(), config.clone(), "--listen".into(), "u".into()];
        let out = strings(program.expand(&options(), args).unwrap());
        assert_eq!(out.first().map(String::as_str), Some("e"), "{out:?}");
        let mut from_file = out.get(1..5).unwrap().to_vec();
        from_file.sort();
        assert_eq!(
            from_file,
            ["--extra=x", "--flag", "--metrics=false", "--secret=s"],
            "hidden options allowed, a boolean value as its text: {out:?}"
        );
        assert_eq!(
            out.get(5..).unwrap(),
            [config.to_string_lossy().as_ref(), "--listen", "u"],
            "the command line's own flags come after the file's"
        );
        let hidden = SUBCOMMAND
            .expand(&command(), vec!["p".into(), "serve".into(), config])
            .unwrap_err()
            .to_string();
        assert!(hidden.contains("unknown option `secret`"), "{hidden}");
    }

    #[test]
    fn without_a_file_or_a_known_subcommand_args_are_unchanged() {
        for argv in [
            &["p"][..],
            &["p", "serve", "--listen", "x"],
            &["p", "other", "--config", "/nonexistent/proxy.toml"],
        ] {
            let args: Vec<OsString> = argv.iter().map(OsString::from).collect();
            let out = SUBCOMMAND.expand(&command(), args).unwrap();
            assert_eq!(strings(out), argv);
        }
    }

    #[test]
    fn bad_files_are_one_clear_error() {
        let cases = [
            ("nope = 1\n", "unknown option `nope`"),
            ("config = \"x\"\n", "unknown option `config`"),
            (
                "listen = [1]\n",
                "option `listen` must be a string or an integer",
            ),
            (
                "listen = true\n",
                "option `listen` must be a string or an integer",
            ),
            ("flag = 1\n", "option `flag` must be true or false"),
            (
                "extra = [true]\n",
                "option `extra` must be a list of strings",
            ),
            (
                "extra = 1.5\n",
                "option `extra` must be a string or a list of strings",
            ),
            ("listen = \n", "not valid TOML"),
        ];
        for (text, needle) in cases {
            let err = expand_with(text, &[]).unwrap_err();
            assert!(err.contains(needle), "{text:?}: {err}");
            assert!(err.starts_with("config file /"), "{text:?}: {err}");
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
            SUBCOMMAND
                .expand(&command(), args)
                .unwrap_err()
                .to_string()
                .contains("is a directory")
        );
        let missing = vec![
            "p".into(),
            "serve".into(),
            "--config=/nonexistent/proxy.toml".into(),
        ];
        assert!(
            SUBCOMMAND
                .expand(&command(), missing)
                .unwrap_err()
                .to_string()
                .contains("cannot be read")
        );
    }
}
