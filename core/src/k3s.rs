//! The K3s join token and supervisor credential, with a Seal token in the place of the K3s
//! token, so a K3s agent (v1.32) joins with its staker's Seal token and nothing else.
//!
//! Facts from k3s v1.32 (`pkg/clientaccess/token.go`), which the agent relies on:
//! - A join token is `K10<hex SHA-256 of the CA bundle>::<user>:<password>`; the hash may be
//!   empty, and a token without `K10` is a bare password. The agent splits the credentials at
//!   the first `:` and sends them as HTTP basic auth (`Authorization: Basic`) on every
//!   supervisor request; only a kubeadm-style bootstrap token (`[a-z0-9]{6}.[a-z0-9]{16}`) is
//!   sent as a bearer token.
//! - The hash of a bundle with one certificate is over the literal bytes the server's
//!   `/cacerts` answers (the PEM file); a bundle of several certificates hashes the DER of
//!   the root the first one chains to. The agent fetches `/cacerts` without verifying, checks
//!   the hash, then fetches it again verifying the server against that bundle.
//! - The user `node` is an agent's (group `k3s:agent`), `server` a joining server's.
//!
//! Here the user is `node` and the password is the Seal token: `K10<hash>::node:seal1....`.
//! The hash pins the enclave's TLS certificate (enclave TLS mode), which the staker takes from
//! an attested channel (`nautilus-verify`), so the agent trusts only the attested enclave.

use alloc::string::String;
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// The join token's format marker.
pub const TOKEN_PREFIX: &str = "K10";
/// The basic-auth user of an agent's token (k3s' `node` user, group `k3s:agent`).
pub const NODE_USER: &str = "node";
/// The supervisor API's path prefix for the program `k3s`.
pub const PREFIX: &str = "/v1-k3s/";

/// The token's CA hash: hex SHA-256 of the bundle's bytes exactly as `/cacerts` answers them
/// (k3s' rule for a bundle of one certificate, the only kind served here).
pub fn ca_hash(bundle: &[u8]) -> String {
    crate::token::hex32(&Sha256::digest(bundle).into())
        .trim_start_matches("0x")
        .into()
}

/// The agent's join token for `seal_token`, pinning `bundle` (the `/cacerts` answer).
pub fn join_token(bundle: &[u8], seal_token: &str) -> String {
    alloc::format!(
        "{TOKEN_PREFIX}{}::{NODE_USER}:{seal_token}",
        ca_hash(bundle)
    )
}

/// The bundle as `/cacerts` answers it, from a copy the staker holds: one certificate is
/// written back in core's PEM form (the enclave's, 64-column base64, one trailing newline), so
/// a copy that differs only in line wrapping or surrounding text pins the same hash; anything
/// else is hashed as given.
pub fn canonical_bundle(text: &str) -> String {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let one = text.matches(BEGIN).count() == 1;
    let body = text
        .split_once(BEGIN)
        .and_then(|(_, rest)| rest.split_once(END))
        .map(|(body, _)| body);
    let der = body.filter(|_| one).and_then(|body| {
        let encoded: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
    });
    match der {
        Some(der) => crate::der::pem("CERTIFICATE", &der),
        None => text.into(),
    }
}

/// A join token as k3s' `parseToken` reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinToken {
    /// The CA hash, hex; empty when the token pins nothing.
    pub ca_hash: String,
    /// The basic-auth user.
    pub user: String,
    /// The basic-auth password (here: the Seal token).
    pub password: String,
}

/// Reads a join token as k3s v1.32's agent does: `Err` carries k3s' text. Kubeadm bootstrap
/// tokens are not read (a Seal token never has their shape).
pub fn parse_join_token(token: &str) -> Result<JoinToken, &'static str> {
    if token.is_empty() {
        return Err("token must not be empty");
    }
    let (hash, creds) = match token.strip_prefix(TOKEN_PREFIX) {
        None => ("", token),
        Some(rest) => match rest.split_once("::") {
            Some((hash, creds)) => (hash, creds),
            None => ("", rest),
        },
    };
    if !hash.is_empty() && hash.len() != 64 {
        return Err("invalid token CA hash length");
    }
    let (user, password) = match creds.split_once(':') {
        Some((user, password)) if !password.is_empty() => (user, password),
        _ if token.starts_with(TOKEN_PREFIX) => return Err("invalid token format"),
        // A bare password: k3s makes it `K10:::<password>`, an empty user.
        _ => ("", creds),
    };
    Ok(JoinToken {
        ca_hash: hash.into(),
        user: user.into(),
        password: password.into(),
    })
}

/// The Seal token an agent's `Authorization` header carries: basic auth as user [`NODE_USER`]
/// (what the agent sends), or a bearer Seal token (for a hand-made client). `None`: no Seal
/// token there (another user, another scheme, bad base64).
pub fn seal_token_of(authorization: &str) -> Option<String> {
    if let Some(token) = crate::auth::bearer(authorization) {
        return token
            .starts_with(crate::token::TOKEN_PREFIX)
            .then(|| token.into());
    }
    let encoded = authorization
        .strip_prefix("Basic ")
        .or_else(|| authorization.strip_prefix("basic "))?
        .trim();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = core::str::from_utf8(&decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    (user == NODE_USER && password.starts_with(crate::token::TOKEN_PREFIX)).then(|| password.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_join_token_carries_the_seal_token_as_the_node_password() {
        let bundle = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let token = join_token(bundle, "seal1.abc.def");
        let hash = ca_hash(bundle);
        assert_eq!(hash.len(), 64);
        assert_eq!(token, alloc::format!("K10{hash}::node:seal1.abc.def"));
        assert_eq!(
            parse_join_token(&token),
            Ok(JoinToken {
                ca_hash: hash,
                user: "node".into(),
                password: "seal1.abc.def".into(),
            })
        );
    }

    #[test]
    fn a_copy_of_one_certificate_hashes_as_the_served_bundle() {
        let served = crate::der::pem("CERTIFICATE", &[7u8; 100]);
        let rewrapped = alloc::format!(
            "subject=CN = enclave\n{}",
            served.replace('\n', "\r\n").replacen("\r\n", "\r\n\r\n", 2)
        );
        assert_eq!(canonical_bundle(&rewrapped), served);
        assert_eq!(canonical_bundle(&served), served);
        let two = alloc::format!("{served}{served}");
        assert_eq!(canonical_bundle(&two), two, "a chain is hashed as given");
        assert_eq!(canonical_bundle("junk"), "junk");
    }

    #[test]
    fn join_tokens_parse_as_k3s_parses_them() {
        assert_eq!(parse_join_token(""), Err("token must not be empty"));
        assert_eq!(
            parse_join_token("K10abcd::node:x"),
            Err("invalid token CA hash length")
        );
        assert_eq!(
            parse_join_token(&alloc::format!("K10{}::nopassword", "0".repeat(64))),
            Err("invalid token format")
        );
        let bare = parse_join_token("s3cret").unwrap();
        assert_eq!((bare.user.as_str(), bare.password.as_str()), ("", "s3cret"));
        let unpinned = parse_join_token("K10::node:seal1.x.y").unwrap();
        assert_eq!(unpinned.ca_hash, "");
        assert_eq!(unpinned.password, "seal1.x.y");
    }

    #[test]
    fn only_the_node_user_or_a_bearer_seal_token_carries_a_seal_token() {
        let basic = |text: &str| {
            alloc::format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(text)
            )
        };
        assert_eq!(
            seal_token_of(&basic("node:seal1.a.b")).as_deref(),
            Some("seal1.a.b")
        );
        assert_eq!(seal_token_of(&basic("server:seal1.a.b")), None);
        assert_eq!(seal_token_of(&basic("node:k3s-password")), None);
        assert_eq!(seal_token_of(&basic("node")), None);
        assert_eq!(seal_token_of("Basic !!!"), None);
        assert_eq!(
            seal_token_of("Bearer seal1.a.b").as_deref(),
            Some("seal1.a.b")
        );
        assert_eq!(seal_token_of("Bearer abcdef.0123456789abcdef"), None);
        assert_eq!(seal_token_of("Digest x"), None);
    }
}
