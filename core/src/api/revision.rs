//! Revisions as reads ask for them, answered as kube-apiserver answers: `resourceVersion` parsed
//! like `APIObjectVersioner.ParseResourceVersion` (400 for `abc` or `-1`), `resourceVersionMatch`
//! checked like `ValidateListOptions` (422), a revision the store has not reached waited for up to
//! the watch cache's `blockTimeout` (3 s) and then refused with 504 `ResourceVersionTooLarge`,
//! `Exact` served from the watch ring's history or 410, and continue tokens signed with this run's
//! key so that a forged token, or one from an earlier run, cannot make a LIST claim a revision.
//!
//! Waiting is sans-I/O: core answers [`Outcome::Pending`] with the revision it needs and the
//! deadline; the runtime calls again with the same request (its `waiting_since` set) when the
//! store's revision reaches it or at the deadline, and core then serves it or answers 504.

use alloc::string::{String, ToString};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit as _, Mac as _};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::request::{ApiRequest, Query};
use super::{Cluster, Outcome};
use crate::error::Cause;
use crate::resource::ResourceId;
use crate::{Error, UnixTime, json as j};

/// How long a read waits for a revision the store has not reached (kube's `blockTimeout`).
pub(crate) const BLOCK_TIMEOUT_SECS: u64 = 3;

/// The version of our continue tokens (the MAC covers it).
const CONTINUE_VERSION: &str = "nautilus.continue/v2";

/// Longest continue token read.
const MAX_CONTINUE: usize = 4096;

/// What a read's `resourceVersion` and `resourceVersionMatch` ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadAt {
    /// `resourceVersion` unset: the latest state.
    Latest,
    /// `"0"`: any state (the latest here).
    Any,
    /// At least this revision (the default for a non-zero `resourceVersion`).
    NotOlderThan(u64),
    /// Exactly the state at this revision.
    Exact(u64),
}

/// kube's `ParseResourceVersion`: `""` and `"0"` are 0; otherwise a decimal `uint64`, or 400
/// worded as the storage layer words it.
pub(crate) fn parse_resource_version(text: &str) -> Result<u64, Error> {
    if text.is_empty() || text == "0" {
        return Ok(0);
    }
    let syntax = !text.bytes().all(|b| b.is_ascii_digit());
    let reason = match text.parse::<u64>() {
        Ok(n) if !syntax => return Ok(n),
        _ if syntax => "invalid syntax",
        _ => "value out of range",
    };
    let quoted = crate::gostr::quote(text);
    Err(Error::BadRequest(alloc::format!(
        "invalid resource version: resourceVersion: Invalid value: {quoted}: strconv.ParseUint: parsing {quoted}: {reason}"
    )))
}

fn list_options_invalid(causes: alloc::vec::Vec<Cause>) -> Error {
    Error::Invalid {
        kind: "ListOptions.meta.k8s.io".into(),
        name: String::new(),
        causes,
    }
}

/// A LIST's read position, after kube's `ValidateListOptions` (422 for a match that is
/// forbidden or unknown). `paged`: the request has a limit, which makes a legacy non-zero
/// `resourceVersion` exact, as kube's etcd path does.
pub(crate) fn list_read(query: &Query, paged: bool) -> Result<ReadAt, Error> {
    let rv = query.get("resourceVersion").unwrap_or("");
    let continued = query.get("continue").is_some_and(|c| !c.is_empty());
    let mut causes = alloc::vec::Vec::new();
    let matching = query.get("resourceVersionMatch").unwrap_or("");
    if !matching.is_empty() {
        if rv.is_empty() {
            causes.push(Cause::forbidden(
                "resourceVersionMatch",
                "Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided",
            ));
        }
        if continued {
            causes.push(Cause::forbidden(
                "resourceVersionMatch",
                "Forbidden: resourceVersionMatch is forbidden when continue is provided",
            ));
        }
        if !matches!(matching, "Exact" | "NotOlderThan") {
            causes.push(Cause::not_supported(
                "resourceVersionMatch",
                alloc::format!(
                    "Unsupported value: {}: supported values: \"Exact\", \"NotOlderThan\", \"\"",
                    crate::gostr::quote(matching)
                ),
            ));
        }
        if matching == "Exact" && rv == "0" {
            causes.push(Cause::forbidden(
                "resourceVersionMatch",
                "Forbidden: resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
            ));
        }
    }
    if query.get("sendInitialEvents").is_some() {
        causes.push(Cause::forbidden(
            "sendInitialEvents",
            "Forbidden: sendInitialEvents is forbidden for list",
        ));
    }
    if !causes.is_empty() {
        return Err(list_options_invalid(causes));
    }
    let revision = parse_resource_version(rv)?;
    Ok(match (rv, matching) {
        ("", _) => ReadAt::Latest,
        ("0", _) => ReadAt::Any,
        (_, "Exact") => ReadAt::Exact(revision),
        (_, "NotOlderThan") => ReadAt::NotOlderThan(revision),
        _ if paged => ReadAt::Exact(revision),
        _ => ReadAt::NotOlderThan(revision),
    })
}

/// A GET's read position: a non-zero `resourceVersion` means "not older than".
pub(crate) fn get_read(query: &Query) -> Result<ReadAt, Error> {
    let rv = query.get("resourceVersion").unwrap_or("");
    Ok(match parse_resource_version(rv)? {
        _ if rv.is_empty() => ReadAt::Latest,
        0 => ReadAt::Any,
        n => ReadAt::NotOlderThan(n),
    })
}

impl Cluster {
    /// Whether the store has reached `wanted` for a read arriving at `now`: `Ok(None)` when it
    /// has, `Ok(Some(Pending))` while the read may still wait, 504 once it has waited
    /// [`BLOCK_TIMEOUT_SECS`].
    pub(crate) fn await_revision(
        &self,
        now: UnixTime,
        req: &ApiRequest<'_>,
        wanted: u64,
    ) -> Result<Option<Outcome>, Error> {
        let current = self.store.revision();
        if wanted <= current {
            return Ok(None);
        }
        let deadline = req
            .waiting_since
            .unwrap_or(now)
            .plus_secs(BLOCK_TIMEOUT_SECS);
        if now < deadline {
            return Ok(Some(Outcome::Pending {
                revision: wanted,
                deadline,
            }));
        }
        Err(Error::ResourceVersionTooLarge {
            requested: wanted,
            current,
            retry_after_secs: 1,
        })
    }

    /// The key continue tokens are signed with: derived from the run's random seed, so a new
    /// run refuses an earlier run's tokens.
    pub(crate) fn continue_key(seed: &[u8; 32]) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(b"nautilus continue-token key\0");
        hasher.update(seed);
        hasher.finalize().into()
    }
}

/// The MAC state over a token's fields (length-prefixed, so no two field lists collide).
fn continue_mac(
    key: &[u8; 32],
    resource: ResourceId,
    rv: Option<u64>,
    ns: &str,
    name: &str,
) -> hmac::Hmac<Sha256> {
    // `None` (the latest revision) is kube's `-1`.
    let rv = rv.map_or_else(|| String::from("-1"), |rv| rv.to_string());
    // HMAC takes a key of any length, so the fallback is never taken.
    let mut mac = <hmac::Hmac<Sha256>>::new_from_slice(key)
        .unwrap_or_else(|_| <hmac::Hmac<Sha256>>::new(&Default::default()));
    for part in [
        CONTINUE_VERSION.as_bytes(),
        resource.info().plural.as_bytes(),
        rv.as_bytes(),
        ns.as_bytes(),
        name.as_bytes(),
    ] {
        mac.update(&(part.len() as u64).to_le_bytes());
        mac.update(part);
    }
    mac
}

/// A continue token for the next page of a `resource` LIST at revision `rv`, after
/// (`ns`, `name`).
pub(crate) fn encode_continue(
    key: &[u8; 32],
    resource: ResourceId,
    rv: u64,
    ns: &str,
    name: &str,
) -> String {
    let mac = continue_mac(key, resource, Some(rv), ns, name)
        .finalize()
        .into_bytes();
    let token = json!({"v": CONTINUE_VERSION, "rv": rv, "ns": ns, "name": name,
        "mac": URL_SAFE_NO_PAD.encode(mac)});
    URL_SAFE_NO_PAD.encode(j::to_vec(&token))
}

/// A token that goes on after (`ns`, `name`) at whatever revision is latest then (kube's
/// `ResourceVersion: -1` token, handed out in the 410 for a compacted snapshot).
pub(crate) fn encode_continue_latest(
    key: &[u8; 32],
    resource: ResourceId,
    ns: &str,
    name: &str,
) -> String {
    let mac = continue_mac(key, resource, None, ns, name)
        .finalize()
        .into_bytes();
    let token = json!({"v": CONTINUE_VERSION, "rv": -1, "ns": ns, "name": name,
        "mac": URL_SAFE_NO_PAD.encode(mac)});
    URL_SAFE_NO_PAD.encode(j::to_vec(&token))
}

/// The revision (`None`: the latest) and position of a continue token this run issued for
/// `resource`: 400 for one that does not decode (kube's wording), 410 Expired for one whose
/// signature does not hold (a forgery, another resource's, or an earlier run's: either way the
/// client must start over).
pub(crate) fn decode_continue(
    key: &[u8; 32],
    resource: ResourceId,
    token: &str,
) -> Result<(Option<u64>, String, String), Error> {
    let invalid = |detail: &str| {
        Error::BadRequest(alloc::format!(
            "invalid continue token: continue key is not valid: {detail}"
        ))
    };
    if token.len() > MAX_CONTINUE {
        return Err(invalid("the token is too long"));
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|e| invalid(&alloc::format!("illegal base64 data: {e}")))?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| invalid(&e.to_string()))?;
    let version = j::str_at(&value, "/v");
    if version != CONTINUE_VERSION {
        return Err(invalid(&alloc::format!(
            "server does not recognize this encoded version {version}"
        )));
    }
    let rv = match value.get("rv").and_then(Value::as_i64) {
        Some(-1) => None,
        _ => Some(
            value
                .get("rv")
                .and_then(Value::as_u64)
                .filter(|rv| *rv > 0)
                .ok_or_else(|| invalid("incorrect encoded start resourceVersion"))?,
        ),
    };
    let (Some(ns), Some(name), Some(mac)) = (
        value.get("ns").and_then(Value::as_str),
        value.get("name").and_then(Value::as_str),
        value.get("mac").and_then(Value::as_str),
    ) else {
        return Err(invalid("encoded start key empty"));
    };
    let mac = URL_SAFE_NO_PAD
        .decode(mac)
        .map_err(|e| invalid(&alloc::format!("illegal base64 data: {e}")))?;
    // `verify_slice` compares in constant time.
    if continue_mac(key, resource, rv, ns, name)
        .verify_slice(&mac)
        .is_err()
    {
        return Err(Error::Expired(CONTINUE_EXPIRED.into()));
    }
    Ok((rv, ns.into(), name.into()))
}

/// kube's 410 for a continue token it can no longer serve.
pub(crate) const CONTINUE_EXPIRED: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.";

/// kube's 410 for an `Exact` LIST at a revision it no longer holds.
pub(crate) const LIST_EXPIRED: &str = "The resourceVersion for the provided list is too old.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_versions_parse_like_kube() {
        assert_eq!(parse_resource_version(""), Ok(0));
        assert_eq!(parse_resource_version("0"), Ok(0));
        assert_eq!(parse_resource_version("0042"), Ok(42));
        for (text, reason) in [
            ("abc", "invalid syntax"),
            ("-1", "invalid syntax"),
            ("+1", "invalid syntax"),
            ("1_000", "invalid syntax"),
            ("18446744073709551616", "value out of range"),
        ] {
            let err = parse_resource_version(text).unwrap_err();
            assert_eq!(
                err.message(),
                alloc::format!(
                    "invalid resource version: resourceVersion: Invalid value: \"{text}\": strconv.ParseUint: parsing \"{text}\": {reason}"
                )
            );
            assert_eq!(err.code(), 400);
        }
    }

    fn other_run_key() -> [u8; 32] {
        Cluster::continue_key(&[2; 32])
    }

    #[test]
    fn continue_tokens_hold_only_with_this_run_s_key() {
        let key = Cluster::continue_key(&[1; 32]);
        let token = encode_continue(&key, ResourceId::Pods, 77, "ns", "b");
        assert_eq!(
            decode_continue(&key, ResourceId::Pods, &token),
            Ok((Some(77), "ns".into(), "b".into()))
        );
        let latest = encode_continue_latest(&key, ResourceId::Pods, "ns", "b");
        assert_eq!(
            decode_continue(&key, ResourceId::Pods, &latest),
            Ok((None, "ns".into(), "b".into()))
        );
        assert!(matches!(
            decode_continue(&other_run_key(), ResourceId::Pods, &latest),
            Err(Error::Expired(_))
        ));
        let other_run = Cluster::continue_key(&[2; 32]);
        assert!(matches!(
            decode_continue(&other_run, ResourceId::Pods, &token),
            Err(Error::Expired(_))
        ));
        assert!(matches!(
            decode_continue(&key, ResourceId::ConfigMaps, &token),
            Err(Error::Expired(_))
        ));
        // The issue's forgery: plain JSON claiming a revision.
        let forged = URL_SAFE_NO_PAD.encode(
            br#"{"v":"nautilus.continue/v2","rv":99999999999999,"ns":"ns","name":"b","mac":"AAAA"}"#,
        );
        assert!(matches!(
            decode_continue(&key, ResourceId::Pods, &forged),
            Err(Error::Expired(_))
        ));
        let old_format =
            URL_SAFE_NO_PAD.encode(br#"{"v":"nautilus.continue/v1","rv":5,"ns":"","name":"a"}"#);
        let err = decode_continue(&key, ResourceId::Pods, &old_format).unwrap_err();
        assert_eq!(err.code(), 400);
        assert!(
            err.message()
                .starts_with("invalid continue token: continue key is not valid")
        );
        assert_eq!(
            decode_continue(&key, ResourceId::Pods, "!!")
                .unwrap_err()
                .code(),
            400
        );
    }
}
