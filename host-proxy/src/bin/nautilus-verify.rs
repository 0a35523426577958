//! `nautilus-verify`: checks a Nautilus enclave from outside, with no enclave secret: its AWS
//! Nitro attestation document (signature, chain to the embedded AWS root G1, validity,
//! constraints, nonce, PCRs, user_data binding), signed answers, and a kubeconfig that pins the
//! attested cluster CA that issues the enclave-TLS certificate. Prints each check with ✓/✗;
//! exits 0 only if all hold.

#[path = "../verify/mod.rs"]
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args as ClapArgs, Parser, Subcommand};

use verify::client::{Target, Trust};
use verify::{Expect, Remote, Report};

#[derive(Parser, Debug)]
#[command(
    name = "nautilus-verify",
    version,
    about = "Verify a Nautilus enclave's attestation and signed answers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Verify an attestation document, fetched live (--url) or saved (--file).
    Attestation(AttestationArgs),
    /// Verify the enclave, then GET PATH as a signed answer and print its body.
    Get {
        /// Path and query, e.g. /api/v1/namespaces.
        path: String,
        #[command(flatten)]
        remote: RemoteArgs,
        /// Bearer token for the request.
        #[arg(long)]
        token: Option<String>,
    },
    /// Verify the enclave in enclave-TLS mode and write a kubeconfig pinning the cluster CA that
    /// issues its certificate (attested with it).
    Kubeconfig {
        #[command(flatten)]
        remote: RemoteArgs,
        /// Where to write the kubeconfig.
        #[arg(long)]
        out: PathBuf,
        /// Bearer token to put in the kubeconfig.
        #[arg(long)]
        token: Option<String>,
    },
}

#[derive(ClapArgs, Debug)]
struct AttestationArgs {
    /// A saved document (hex or raw CBOR) to verify offline.
    #[arg(long, conflicts_with = "url")]
    file: Option<PathBuf>,
    /// Clock for --file, unix milliseconds (default: now).
    #[arg(long, requires = "file")]
    at: Option<u64>,
    #[command(flatten)]
    remote: OptionalRemote,
}

#[derive(ClapArgs, Debug)]
struct OptionalRemote {
    /// Server, https://HOST:PORT.
    #[arg(long)]
    url: Option<String>,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(ClapArgs, Debug)]
struct RemoteArgs {
    /// Server, https://HOST:PORT.
    #[arg(long)]
    url: String,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(ClapArgs, Debug)]
struct CommonArgs {
    /// Expected PCR value, INDEX=HEX (48 bytes); repeatable.
    #[arg(long = "pcr")]
    pcrs: Vec<String>,
    /// Accept a simulated-NSM document (development only).
    #[arg(long)]
    allow_simulated: bool,
    /// CA certificates (PEM) for proxy-terminated TLS.
    #[arg(long, conflicts_with = "insecure_skip_tls_verify")]
    ca: Option<PathBuf>,
    /// Do not check the server certificate (the attestation is still checked).
    #[arg(long)]
    insecure_skip_tls_verify: bool,
    /// The enclave terminates TLS: its presented certificate and the CA that issued it must be
    /// the ones the attestation binds (user_data), and that CA becomes the trust anchor.
    #[arg(long)]
    enclave_tls: bool,
}

fn remote(url: &str, common: &CommonArgs, force_enclave_tls: bool) -> Result<Remote, String> {
    let target = Target::parse(url)?;
    let enclave_tls = common.enclave_tls || force_enclave_tls;
    let trust = match (&common.ca, common.insecure_skip_tls_verify || enclave_tls) {
        (Some(ca), false) => Trust::Ca(ca.clone()),
        (None, true) => Trust::Attested,
        (Some(_), true) => return Err("--ca does not go with --enclave-tls".into()),
        (None, false) if target.tls => {
            return Err(
                "give --ca FILE (proxy-terminated TLS), --enclave-tls or --insecure-skip-tls-verify"
                    .into(),
            );
        }
        (None, false) => Trust::Attested,
    };
    if enclave_tls && !target.tls {
        return Err("--enclave-tls needs an https:// URL".into());
    }
    Ok(Remote {
        target,
        trust,
        enclave_tls,
        pcrs: verify::parse_pcrs(&common.pcrs)?,
        allow_simulated: common.allow_simulated,
    })
}

fn read_document(path: &PathBuf) -> Result<Vec<u8>, String> {
    let raw = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let text = std::str::from_utf8(&raw).ok().map(str::trim);
    match text {
        Some(t) if !t.is_empty() && t.bytes().all(|b| b.is_ascii_hexdigit()) => {
            hex::decode(t).map_err(|e| format!("{}: odd hex: {e}", path.display()))
        }
        _ => Ok(raw),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("nautilus-verify: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("nautilus-verify: {e}");
            ExitCode::from(1)
        }
    }
}

async fn run(cli: Cli) -> Result<bool, String> {
    match cli.command {
        Command::Attestation(args) => {
            let mut report = Report::new(false);
            if let Some(file) = &args.file {
                let pcrs = verify::parse_pcrs(&args.remote.common.pcrs)?;
                let doc = read_document(file)?;
                let Some(root) = verify::pinned_root(&mut report) else {
                    return Ok(false);
                };
                let expect = Expect {
                    pcrs: &pcrs,
                    nonce: None,
                    user_data: None,
                    allow_simulated: args.remote.common.allow_simulated,
                };
                let at = args.at.unwrap_or_else(verify::now_ms);
                verify::check_document(&mut report, &doc, &root, at, &expect);
            } else {
                let url = args
                    .remote
                    .url
                    .as_deref()
                    .ok_or("give --url https://HOST:PORT or --file DOC")?;
                let remote = remote(url, &args.remote.common, false)?;
                verify::attest(&mut report, &remote).await;
            }
            Ok(!report.failed())
        }
        Command::Get {
            path,
            remote: r,
            token,
        } => {
            // A watch answers with a stream that never completes, so it cannot be signed.
            let query = path.split_once('?').map_or("", |(_, q)| q);
            if query
                .split('&')
                .any(|kv| matches!(kv, "watch=1" | "watch=true" | "watch"))
            {
                return Err(format!(
                    "{path}: a watch is a stream with no complete answer to sign; GET the list"
                ));
            }
            let remote = remote(&r.url, &r.common, false)?;
            let mut report = Report::new(true);
            let Some(attested) = verify::attest(&mut report, &remote).await else {
                return Ok(false);
            };
            let Some((status, body)) =
                verify::signed_get(&mut report, &remote, &attested, &path, token.as_deref()).await
            else {
                return Ok(false);
            };
            use std::io::Write as _;
            std::io::stdout()
                .write_all(&body)
                .map_err(|e| format!("stdout: {e}"))?;
            // The answer is authentic either way, but a 401 or 404 is not the object asked for:
            // fail as `kubectl get` does, so scripts do not take a Status for the object.
            Ok(report.check(
                (200..300).contains(&status),
                &format!("answer status {status} is 2xx"),
            ))
        }
        Command::Kubeconfig {
            remote: r,
            out,
            token,
        } => {
            let remote = remote(&r.url, &r.common, true)?;
            let mut report = Report::new(false);
            let Some(attested) = verify::attest(&mut report, &remote).await else {
                return Ok(false);
            };
            let (Some(cert), Some(ca)) = (
                attested.peer_certificate.as_deref(),
                attested.ca_certificate.as_deref(),
            ) else {
                report.check(false, "enclave TLS certificate and its CA presented");
                return Ok(false);
            };
            // kubectl checks the host name against the certificate's SANs: a host the enclave
            // was not given with --tls-san would make a kubeconfig kubectl refuses.
            if report
                .result(
                    verify::client::issued_for(cert, ca, &remote.target.host),
                    &format!(
                        "the attested certificate is valid for {} (as kubectl will check it)",
                        remote.target.host
                    ),
                )
                .is_none()
            {
                report.info("start the enclave with --tls-san HOST (tls_san) for this name");
                return Ok(false);
            }
            // The attested CA, not this boot's serving certificate: the kubeconfig keeps
            // working when a durable enclave restarts with a new serving key.
            let config = verify::kubeconfig(&remote.target.base, ca, token.as_deref());
            std::fs::write(&out, config).map_err(|e| format!("{}: {e}", out.display()))?;
            report.check(
                true,
                &format!("wrote {} pinning the attested cluster CA", out.display()),
            );
            Ok(true)
        }
    }
}
