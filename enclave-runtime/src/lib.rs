//! The enclave runtime: the only driver of `nautilus-core`. It owns I/O, clocks, randomness and
//! concurrency; every rule lives in core. It serves HTTP/1.1 with hyper over each stream the
//! host proxy opens (vsock in production, a Unix socket in development).

mod attestation;
mod budget;
mod cli;
mod config_file;
mod durable;
mod heap;
mod http;
mod k3s_tunnel;
mod kms;
mod kubelet;
mod log_sink;
mod metrics;
mod nsm;
mod preamble;
mod replica;
mod server;
mod signing;
mod sui;
mod thread_priority;
mod tls;
mod transport;
mod watch_stream;
mod websocket;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser as _;

pub use cli::{Cli, ListenAddr, LogFormat};
pub use log_sink::SinkAddr;
pub use tls::TlsMode;

/// Runs the enclave with command-line `args` (program name first); returns when it stops.
pub fn cli_main<I: IntoIterator<Item = OsString>>(args: I) -> ExitCode {
    let args = match config_file::CONFIG_FILE.expand(
        &<Cli as clap::CommandFactory>::command(),
        args.into_iter().collect(),
    ) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    if let Some(total) = memory_total_bytes()
        && cli.max_store_bytes > total
    {
        eprintln!(
            "error: --max-store-bytes {} is larger than this machine's memory ({total} bytes)",
            cli.max_store_bytes
        );
        return ExitCode::from(2);
    }
    if cli.print_config {
        print!("{}", cli.effective_toml());
        return ExitCode::SUCCESS;
    }
    cli::init_logging(&cli);
    metrics::set_enabled(cli.metrics);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = match runtime.block_on(server::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e}");
            // The host's sealed state does not verify: a distinct code, so an operator (or a
            // supervisor) knows not to simply restart.
            if matches!(
                e.downcast_ref::<durable::DurableError>(),
                Some(durable::DurableError::Tampered { .. })
            ) {
                ExitCode::from(durable::EXIT_TAMPERED)
            } else {
                ExitCode::from(2)
            }
        }
    };
    // The last lines (the drain, "stopped") still reach the proxy.
    log_sink::flush(std::time::Duration::from_millis(500));
    code
}

/// `MemTotal` from /proc/meminfo, if readable (an enclave sees its own allotment there).
fn memory_total_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}
