//! `nautilus-seal`: mints a Seal token (ARCHITECTURE.md §4) from a Sui Ed25519 private key in
//! the `suiprivkey1...` form `sui keytool export` prints, on its own or, with
//! `--exec-credential`, as the client-go credential plugin of a staker's kubelet. The key is
//! never logged or echoed; prefer `--key-file` or the `NAUTILUS_SEAL_KEY` environment variable
//! over `--key`, which other local users can see in the process list.

#[path = "../seal/exec_credential.rs"]
mod exec_credential;

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Parser;
use nautilus_core::token::{SealClaims, ed25519_address, mint_ed25519, parse_hex32};
use nautilus_wire::sui_key;

#[derive(Parser, Debug)]
#[command(
    name = "nautilus-seal",
    version,
    about = "Mint a Seal token for a Nautilus worker from a Sui private key"
)]
struct Args {
    /// Sui private key, `suiprivkey1...` (Ed25519).
    #[arg(long, env = "NAUTILUS_SEAL_KEY", hide_env_values = true, conflicts_with_all = ["key_file", "generate_key"])]
    key: Option<String>,
    /// File holding the `suiprivkey1...` key (surrounding whitespace ignored).
    #[arg(long, conflicts_with = "generate_key")]
    key_file: Option<std::path::PathBuf>,
    /// Node name the token is for (a DNS-1123 subdomain).
    #[arg(long, required_unless_present_any = ["print_address", "generate_key"])]
    node_id: Option<String>,
    /// The stake object id, `0x` + 64 hex digits.
    #[arg(long, required_unless_present_any = ["print_address", "generate_key"])]
    stake_id: Option<String>,
    /// Lifetime: `<n>s`, `<n>m`, `<n>h`, `<n>d` or plain seconds. The enclave refuses tokens
    /// living longer than its `--token-max-lifetime` (default 24h).
    #[arg(long, default_value = "24h", value_parser = parse_ttl)]
    ttl: u64,
    /// Issue time in unix seconds instead of the clock (tests, reproducible tokens).
    #[arg(long, hide = true)]
    now: Option<u64>,
    /// Print the key's Sui address (0x...) instead of a token.
    #[arg(long)]
    print_address: bool,
    /// Print a new random Ed25519 key as `suiprivkey1...` and exit (development).
    #[arg(long)]
    generate_key: bool,
    /// Answer as a client-go credential plugin (`users[].user.exec` in a kubeconfig): a fresh
    /// token in a `client.authentication.k8s.io/v1` `ExecCredential` on stdout, with an
    /// `expirationTimestamp` `--refresh-before` ahead of the token's expiry, so client-go runs
    /// the plugin again before the enclave would refuse the token.
    #[arg(long, conflicts_with_all = ["print_address", "generate_key"])]
    exec_credential: bool,
    /// Print a K3s agent join token (`k3s agent --token`) instead of a bare token:
    /// `K10<SHA-256 of the bundle>::node:<seal token>`, pinning the API server's CA bundle in
    /// this file (what the enclave's `/cacerts` answers: in enclave TLS mode its attested
    /// certificate, as `nautilus-verify` pins it).
    #[arg(long, value_name = "SERVER_CA_FILE", conflicts_with_all = ["print_address", "generate_key", "exec_credential"])]
    k3s_token: Option<std::path::PathBuf>,
    /// With `--exec-credential`: how long before the token expires client-go should ask for a
    /// new one (same units as `--ttl`). Default 5m, or half the `--ttl` when that is shorter.
    #[arg(long, value_parser = parse_ttl, requires = "exec_credential")]
    refresh_before: Option<u64>,
}

fn parse_ttl(text: &str) -> Result<u64, String> {
    let (digits, unit) = match text.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&text[..i], c),
        _ => (text, 's'),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: expected e.g. 3600, 90m, 24h, 1d"))?;
    let scale = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => {
            return Err(format!(
                "invalid duration unit in {text:?}: use s, m, h or d"
            ));
        }
    };
    n.checked_mul(scale)
        .filter(|&secs| secs > 0)
        .ok_or_else(|| format!("invalid duration {text:?}"))
}

fn run(args: Args) -> Result<String, String> {
    if args.generate_key {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| format!("no randomness: {e}"))?;
        return Ok(sui_key::encode_ed25519(&seed));
    }
    // Asked first, so a plugin misconfigured for another API version fails before any signing.
    let exec_version = if args.exec_credential {
        let info = std::env::var(exec_credential::EXEC_INFO_ENV).ok();
        Some(exec_credential::api_version(info.as_deref())?)
    } else {
        None
    };
    let key_text = match (&args.key, &args.key_file) {
        (Some(k), _) => k.clone(),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
        (None, None) => {
            return Err("give the key with --key-file, NAUTILUS_SEAL_KEY or --key".to_string());
        }
    };
    let seed = sui_key::decode_ed25519(&key_text).map_err(|e| e.to_string())?;
    if args.print_address {
        return Ok(ed25519_address(&seed).to_hex());
    }
    let (Some(node_id), Some(stake_id)) = (args.node_id, args.stake_id) else {
        return Err("--node-id and --stake-id are required".to_string());
    };
    if !nautilus_core::validation::is_dns1123_subdomain(&node_id) {
        return Err(format!(
            "--node-id {node_id:?} is not a DNS-1123 subdomain (lower-case letters, digits, '-', '.')"
        ));
    }
    let stake_id = parse_hex32(&stake_id)
        .ok_or_else(|| "--stake-id must be 0x followed by 64 hex digits".to_string())?;
    let iat = match args.now {
        Some(t) => t,
        None => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|_| "the clock is before 1970".to_string())?
            .as_secs(),
    };
    let claims = SealClaims {
        node_id,
        stake_id,
        iat,
        exp: iat.saturating_add(args.ttl),
    };
    let token = mint_ed25519(&seed, &claims);
    if let Some(path) = &args.k3s_token {
        let bundle = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let bundle = nautilus_core::k3s::canonical_bundle(&bundle);
        return Ok(nautilus_core::k3s::join_token(bundle.as_bytes(), &token));
    }
    match exec_version {
        Some(version) => {
            let margin = exec_credential::refresh_before(args.ttl, args.refresh_before)?;
            Ok(exec_credential::answer(version, &token, claims.exp, margin))
        }
        None => Ok(token),
    }
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("nautilus-seal: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_units() {
        assert_eq!(parse_ttl("24h"), Ok(86_400));
        assert_eq!(parse_ttl("90m"), Ok(5400));
        assert_eq!(parse_ttl("3600"), Ok(3600));
        assert_eq!(parse_ttl("1d"), Ok(86_400));
        assert_eq!(parse_ttl("10s"), Ok(10));
        assert!(parse_ttl("0").is_err());
        assert!(parse_ttl("5y").is_err());
        assert!(parse_ttl("h").is_err());
        assert!(parse_ttl("").is_err());
    }

    #[test]
    fn the_sdks_key_has_the_sdks_address() {
        // Exported by @mysten/sui `Ed25519Keypair.getSecretKey()`; address from toSuiAddress().
        let sdk = "suiprivkey1qrprrmqrvg6wjrdt2anhad24zxvhlzg0a2f9gv07wluyct9tttz87825mlq";
        let seed = sui_key::decode_ed25519(sdk).unwrap();
        assert_eq!(
            ed25519_address(&seed).to_hex(),
            "0x6b66a0f19eadcc20732bb9b3f0c305ac9a5cd59e9bf010a07081f3498a9c0600"
        );
    }

    #[test]
    fn exec_mode_needs_the_token_arguments_and_a_margin_inside_the_lifetime() {
        let sdk = "suiprivkey1qrprrmqrvg6wjrdt2anhad24zxvhlzg0a2f9gv07wluyct9tttz87825mlq";
        let stake = format!("0x{}", "5a".repeat(32));
        let parse = |extra: &[&str]| {
            let mut argv = vec!["nautilus-seal", "--exec-credential", "--key", sdk];
            argv.extend_from_slice(extra);
            Args::try_parse_from(argv)
        };
        assert!(parse(&[]).is_err(), "--node-id and --stake-id are required");
        let args = parse(&[
            "--node-id",
            "n1",
            "--stake-id",
            &stake,
            "--ttl",
            "60",
            "--refresh-before",
            "60",
        ])
        .unwrap();
        let err = run(args).unwrap_err();
        assert!(err.contains("shorter than --ttl"), "{err}");
        assert!(!err.contains(sdk));
        let args = parse(&[
            "--node-id",
            "n1",
            "--stake-id",
            &stake,
            "--ttl",
            "2h",
            "--now",
            "1767225600",
        ])
        .unwrap();
        let out: serde_json::Value = serde_json::from_str(&run(args).unwrap()).unwrap();
        assert_eq!(out["kind"], "ExecCredential");
        // 2026-01-01T00:00:00Z + 2 h - 5 min.
        assert_eq!(out["status"]["expirationTimestamp"], "2026-01-01T01:55:00Z");
        let token = out["status"]["token"].as_str().unwrap();
        let parsed = nautilus_core::token::parse(token).unwrap();
        assert_eq!(parsed.claims.node_id, "n1");
        assert_eq!(parsed.claims.exp, 1_767_225_600 + 7200);
        // --refresh-before belongs to the plugin mode only.
        assert!(
            Args::try_parse_from([
                "nautilus-seal",
                "--key",
                sdk,
                "--node-id",
                "n1",
                "--stake-id",
                &stake,
                "--refresh-before",
                "1m",
            ])
            .is_err()
        );
    }

    #[test]
    fn the_k3s_token_pins_the_served_bundle_and_carries_the_seal_token() {
        let sdk = "suiprivkey1qrprrmqrvg6wjrdt2anhad24zxvhlzg0a2f9gv07wluyct9tttz87825mlq";
        let stake = format!("0x{}", "5a".repeat(32));
        let served = nautilus_core::der::pem("CERTIFICATE", &[7u8; 90]);
        let file = std::env::temp_dir().join(format!("k3s-ca-{}.pem", std::process::id()));
        // A copy with other line endings pins the same bytes as the served one.
        std::fs::write(&file, served.replace('\n', "\r\n")).unwrap();
        let argv = [
            "nautilus-seal",
            "--key",
            sdk,
            "--node-id",
            "n1",
            "--stake-id",
            &stake,
            "--k3s-token",
            file.to_str().unwrap(),
        ];
        let out = run(Args::try_parse_from(argv).unwrap()).unwrap();
        let _ = std::fs::remove_file(&file);
        let token = nautilus_core::k3s::parse_join_token(&out).unwrap();
        assert_eq!(
            token.ca_hash,
            nautilus_core::k3s::ca_hash(served.as_bytes())
        );
        assert_eq!(token.user, "node");
        let seal = nautilus_core::token::parse(&token.password).unwrap();
        assert_eq!(seal.claims.node_id, "n1");
        let mut with_plugin = argv.to_vec();
        with_plugin.push("--exec-credential");
        assert!(Args::try_parse_from(with_plugin).is_err());
    }
}
