//! Seal tokens against the official Sui TypeScript SDK (`@mysten/sui`, run through node by
//! `tests/sui/mint.mjs`): tokens the SDK's `signPersonalMessage` makes are accepted byte for
//! byte by core's validator, tokens `nautilus-seal` makes verify with the SDK's
//! `verifyPersonalMessageSignature` under the same address as `toSuiAddress()`, and a tampered
//! claim fails both. `nautilus-seal --exec-credential` answers as the client-go credential plugin
//! of a staker's kubelet (run here as client-go runs it; kubelets use it in `kubemark_join.rs`).

use std::path::PathBuf;
use std::process::Command;

use nautilus_core::UnixTime;
use nautilus_core::stake::{StakeLimits, StakeRegistry};
use nautilus_core::token::{
    SignatureScheme, TokenError, TokenPolicy, TokenValidator, hex32, parse, parse_hex32,
};
use nautilus_tests::{binary, workspace_dir};
use serde_json::Value;

const PKG: [u8; 32] = [0x42; 32];
const STAKE: [u8; 32] = [0x5a; 32];
const IAT: u64 = 1_767_225_600;

fn sui_dir() -> PathBuf {
    workspace_dir().join("tests").join("sui")
}

/// Runs `node tests/sui/mint.mjs <args>` and parses its JSON line.
fn sdk(args: &[&str]) -> Value {
    let dir = sui_dir();
    assert!(
        dir.join("node_modules")
            .join("@mysten")
            .join("sui")
            .is_dir(),
        "the Sui TypeScript SDK is not installed: run `npm ci --prefix tests/sui`"
    );
    let out = Command::new("node")
        .arg(dir.join("mint.mjs"))
        .args(args)
        .output()
        .expect("run node (is Node.js installed?)");
    assert!(
        out.status.success(),
        "mint.mjs {:?} failed: {}",
        args.first(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("mint.mjs prints JSON")
}

fn field(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key} in {v}"))
        .to_string()
}

fn claims(node: &str, iat: u64, exp: u64) -> String {
    format!(
        r#"{{"node_id":"{node}","stake_id":"{}","iat":{iat},"exp":{exp}}}"#,
        hex32(&STAKE)
    )
}

/// A registry where `owner` holds STAKE with 5 SUI, learned from a pushed event.
fn registry(owner: &str) -> StakeRegistry {
    let mut r = StakeRegistry::new(StakeLimits::default());
    let body = format!(
        r#"{{"checkpoint":7,"events":[{{"id":{{"txDigest":"HWjQ1MtRkWZ3tTJ9ymgCyGLbbbg1fBd7xRkPaJ2J5Nty","eventSeq":"0"}},"packageId":"{p}","transactionModule":"staking","sender":"{owner}","type":"{p}::staking::StakeDeposited","parsedJson":{{"stake_id":"{s}","owner":"{owner}","amount":"5000000000"}},"timestampMs":"1767225600000"}}]}}"#,
        p = hex32(&PKG),
        s = hex32(&STAKE),
    );
    let out = r
        .apply_push(body.as_bytes(), &PKG, UnixTime::from_secs(IAT))
        .unwrap();
    assert_eq!(out.applied, 1);
    r
}

/// Replaces the claims part of a token, keeping the signature.
fn with_claims(token: &str, claims: &str) -> String {
    use base64::Engine as _;
    let sig = token.rsplit('.').next().unwrap();
    let enc = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims);
    format!("seal1.{enc}.{sig}")
}

#[test]
fn sdk_tokens_are_accepted_byte_for_byte() {
    // Short and long node names: the claims' BCS length prefix takes one or two bytes.
    let long_node = format!("{}.example.com", "w".repeat(200));
    for (scheme_arg, scheme) in [
        ("ed25519", SignatureScheme::Ed25519),
        ("secp256k1", SignatureScheme::Secp256k1),
        ("secp256r1", SignatureScheme::Secp256r1),
    ] {
        let key = sdk(&["keygen", scheme_arg]);
        let address = field(&key, "address");
        let stakes = registry(&address);
        for node in ["n1", "worker-7.pool-a", long_node.as_str()] {
            let signed = sdk(&[
                "sign",
                &field(&key, "secretKey"),
                &claims(node, IAT, IAT + 3600),
            ]);
            let token = field(&signed, "token");
            let parsed = parse(&token).unwrap_or_else(|e| panic!("{scheme_arg} {node}: {e}"));
            assert_eq!(parsed.signer.to_hex(), address, "{scheme_arg}");
            assert_eq!(parsed.scheme, scheme);
            let mut v = TokenValidator::new(TokenPolicy::default());
            let id = v
                .validate(&token, UnixTime::from_secs(IAT + 5), Some(node), &stakes)
                .unwrap_or_else(|e| panic!("{scheme_arg} {node}: {e}"));
            assert_eq!(id.node_id, node);
            assert_eq!(id.owner.to_hex(), address);
            assert_eq!(id.amount, 5_000_000_000);
            // The SDK itself agrees, and a tampered claim fails both sides.
            assert_eq!(sdk(&["verify", &token])["valid"], true);
            let tampered = with_claims(&token, &claims("n9", IAT, IAT + 3600));
            assert_eq!(sdk(&["verify", &tampered])["valid"], false);
            assert_eq!(
                v.validate(&tampered, UnixTime::from_secs(IAT + 5), None, &stakes)
                    .unwrap_err(),
                TokenError::BadSignature
            );
        }
    }
}

#[test]
fn nautilus_seal_tokens_verify_with_the_sdk() {
    let key = sdk(&["keygen", "ed25519"]);
    let address = field(&key, "address");
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, format!("{}\n", field(&key, "secretKey"))).unwrap();
    let seal = |args: &[&str]| {
        let out = Command::new(binary("nautilus-seal"))
            .arg("--key-file")
            .arg(&key_file)
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "nautilus-seal {args:?}: {stderr}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    assert_eq!(seal(&["--print-address"]), address);

    let stake = hex32(&STAKE);
    let now = IAT.to_string();
    let token = seal(&[
        "--node-id",
        "worker-1",
        "--stake-id",
        &stake,
        "--ttl",
        "2h",
        "--now",
        &now,
    ]);
    let verified = sdk(&["verify", &token]);
    assert_eq!(verified["valid"], true, "{verified}");
    assert_eq!(field(&verified, "address"), address);
    let parsed = parse(&token).unwrap();
    assert_eq!((parsed.claims.iat, parsed.claims.exp), (IAT, IAT + 7200));
    assert_eq!(parsed.claims.stake_id, parse_hex32(&stake).unwrap());
    // Ed25519 is deterministic: the SDK signing the same claims with the same key makes the
    // very same token.
    let sdk_token = field(
        &sdk(&[
            "sign",
            &field(&key, "secretKey"),
            &claims("worker-1", IAT, IAT + 7200),
        ]),
        "token",
    );
    assert_eq!(token, sdk_token);

    let stakes = registry(&address);
    let mut v = TokenValidator::new(TokenPolicy::default());
    assert!(
        v.validate(&token, UnixTime::from_secs(IAT), Some("worker-1"), &stakes)
            .is_ok()
    );
    let tampered = with_claims(&token, &claims("worker-2", IAT, IAT + 7200));
    assert_eq!(sdk(&["verify", &tampered])["valid"], false);
    assert_eq!(
        v.validate(
            &tampered,
            UnixTime::from_secs(IAT),
            Some("worker-2"),
            &stakes
        )
        .unwrap_err(),
        TokenError::BadSignature
    );
}

#[test]
fn nautilus_seal_refuses_bad_input_without_echoing_the_key() {
    let k1 = field(&sdk(&["keygen", "secp256k1"]), "secretKey");
    let out = Command::new(binary("nautilus-seal"))
        .args(["--node-id", "n1", "--stake-id", &hex32(&STAKE)])
        .env("NAUTILUS_SEAL_KEY", &k1)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("use an Ed25519 key"), "{stderr}");
    assert!(!stderr.contains(&k1));
    let ed = field(&sdk(&["keygen", "ed25519"]), "secretKey");
    for (args, want) in [
        (vec!["--node-id", "N1", "--stake-id", "0x1"], "DNS-1123"),
        (
            vec!["--node-id", "n1", "--stake-id", "0x1"],
            "64 hex digits",
        ),
    ] {
        let out = Command::new(binary("nautilus-seal"))
            .args(&args)
            .env("NAUTILUS_SEAL_KEY", &ed)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(want), "{stderr}");
        assert!(!stderr.contains(&ed));
    }
}

/// `nautilus-seal --exec-credential` run as client-go runs a credential plugin: `KUBERNETES_EXEC_INFO`
/// set, the `ExecCredential` read from stdout. The token is fresh, for the node and stake given,
/// accepted by core's validator, and client-go is told to come back before it expires; a version
/// the plugin does not speak is refused on stderr with a non-zero exit and nothing on stdout.
#[test]
fn nautilus_seal_answers_as_a_client_go_credential_plugin() {
    // Exported by @mysten/sui `Ed25519Keypair.getSecretKey()`; address from toSuiAddress().
    let key = "suiprivkey1qrprrmqrvg6wjrdt2anhad24zxvhlzg0a2f9gv07wluyct9tttz87825mlq";
    let address = "0x6b66a0f19eadcc20732bb9b3f0c305ac9a5cd59e9bf010a07081f3498a9c0600";
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("staker.key");
    std::fs::write(&key_file, format!("{key}\n")).unwrap();
    let stake = hex32(&STAKE);
    let plugin = |exec_info: &str, extra: &[&str]| {
        Command::new(binary("nautilus-seal"))
            .arg("--exec-credential")
            .arg("--key-file")
            .arg(&key_file)
            .args(["--node-id", "worker-1", "--stake-id", &stake])
            .args(extra)
            .env("KUBERNETES_EXEC_INFO", exec_info)
            .output()
            .unwrap()
    };
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };

    // What client-go 1.32 sets for a `client.authentication.k8s.io/v1` plugin run without a
    // terminal (interactiveMode Never).
    let v1 = r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false}}"#;
    let before = now();
    let out = plugin(v1, &["--ttl", "24h"]);
    let after = now();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    assert!(!stdout.contains(key), "the key is never printed");
    let answer: Value = serde_json::from_str(&stdout).expect("stdout is one ExecCredential");
    assert_eq!(
        answer["apiVersion"], "client.authentication.k8s.io/v1",
        "{answer}"
    );
    assert_eq!(answer["kind"], "ExecCredential", "{answer}");
    let token = field(&answer["status"], "token");
    let parsed = parse(&token).unwrap();
    assert_eq!(parsed.claims.node_id, "worker-1");
    assert_eq!(parsed.claims.stake_id, STAKE);
    assert_eq!(parsed.signer.to_hex(), address);
    assert!(
        (before..=after).contains(&parsed.claims.iat),
        "a fresh token"
    );
    assert_eq!(parsed.claims.exp - parsed.claims.iat, 86_400);
    // client-go runs the plugin again once this time has passed: five minutes before expiry.
    let expiry = UnixTime::parse_rfc3339(&field(&answer["status"], "expirationTimestamp"))
        .expect("RFC 3339");
    assert_eq!(expiry.secs(), parsed.claims.exp - 300, "{answer}");
    let stakes = registry(address);
    let mut v = TokenValidator::new(TokenPolicy::default());
    let id = v
        .validate(
            &token,
            UnixTime::from_secs(parsed.claims.iat),
            Some("worker-1"),
            &stakes,
        )
        .expect("the enclave's validator accepts it");
    assert_eq!(id.node_id, "worker-1");

    // A shorter margin; and an older kubeconfig's v1beta1 is answered in v1beta1.
    let beta = r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1beta1","spec":{"interactive":false}}"#;
    let out = plugin(beta, &["--ttl", "1h", "--refresh-before", "10m"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["apiVersion"], "client.authentication.k8s.io/v1beta1");
    let parsed = parse(&field(&answer["status"], "token")).unwrap();
    let expiry = UnixTime::parse_rfc3339(&field(&answer["status"], "expirationTimestamp")).unwrap();
    assert_eq!(expiry.secs(), parsed.claims.exp - 600);

    // Refusals: on stderr, exit 2, nothing on stdout, never the key.
    for (info, extra, want) in [
        (
            r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1alpha1"}"#,
            &["--ttl", "1h"][..],
            "KUBERNETES_EXEC_INFO asks for apiVersion",
        ),
        (
            v1,
            &["--ttl", "60s", "--refresh-before", "2m"][..],
            "shorter than --ttl",
        ),
    ] {
        let out = plugin(info, extra);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(want), "{stderr}");
        assert!(out.stdout.is_empty());
        assert!(!stderr.contains(key));
    }
}
