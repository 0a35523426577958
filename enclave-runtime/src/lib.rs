//! The enclave runtime: the only driver of `nautilus-core`. It owns I/O, clocks, randomness and
//! concurrency; every rule lives in core. It serves HTTP/1.1 with hyper over each stream the
//! host proxy opens (vsock in production, a Unix socket in development).

mod cli;
mod http;
mod metrics;
mod nsm;
mod server;
mod transport;
mod watch_stream;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser as _;

pub use cli::{Cli, ListenAddr, LogFormat};

/// Runs the enclave with command-line `args` (program name first); returns when it stops.
pub fn cli_main<I: IntoIterator<Item = OsString>>(args: I) -> ExitCode {
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
    cli::init_logging(&cli);
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
    match runtime.block_on(server::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
