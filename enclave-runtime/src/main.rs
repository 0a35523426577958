//! `nautilus-enclave`: the trusted runtime process.

fn main() -> std::process::ExitCode {
    nautilus_enclave::cli_main(std::env::args_os())
}
