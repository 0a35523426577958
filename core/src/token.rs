//! Seal tokens (ARCHITECTURE.md §4): `seal1.<base64url(claims)>.<base64url(sui_signature)>`, a
//! Sui personal-message signature over the claims by the key that owns a stake. Parsing and
//! signature checks are pure; [`TokenValidator`] adds the policy (time, lifetime, node, stake)
//! and a bounded cache of verified signatures. Time is passed in, nothing is read.

use alloc::format;
use alloc::string::{String, ToString};
use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use blake2::{Blake2b256, Digest as _};
use hashbrown::HashMap;
use serde::Deserialize;

use crate::stake::{StakeRegistry, TrustLevel};
use crate::{Error, UnixTime};

/// Every token starts with this, so a Seal token is never mistaken for another bearer token.
pub const TOKEN_PREFIX: &str = "seal1.";
/// Longest token accepted, in bytes (claims of a 253-byte node name fit with room to spare).
pub const MAX_TOKEN_BYTES: usize = 2048;
/// Longest `node_id` (a DNS-1123 subdomain, like a Node name).
pub const MAX_NODE_ID_BYTES: usize = 253;

/// Sui intent for a personal message: scope PersonalMessage (3), version V0, app Sui.
const PERSONAL_MESSAGE_INTENT: [u8; 3] = [3, 0, 0];
/// Decoded claims never exceed this: 3/4 of the largest token.
const MAX_CLAIMS_BYTES: usize = MAX_TOKEN_BYTES / 4 * 3;
/// Largest serialized signature: flag + 64-byte signature + 33-byte compressed key.
const MAX_SIGNATURE_BYTES: usize = 1 + 64 + 33;

/// base64url, padding optional: the SDKs and JWT habits write it unpadded, some tools pad.
/// Non-zero trailing bits are refused, so one token has one meaning.
const B64URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A Sui address: Blake2b-256 of `flag || public key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SuiAddress(pub [u8; 32]);

impl SuiAddress {
    /// The address of a public key of `scheme`, as Sui derives it.
    pub fn from_public_key(scheme: SignatureScheme, public_key: &[u8]) -> Self {
        let mut h = Blake2b256::new();
        h.update([scheme.flag()]);
        h.update(public_key);
        Self(h.finalize().into())
    }

    /// `0x` + 64 lower-case hex digits, as Sui shows addresses.
    pub fn to_hex(&self) -> String {
        hex32(&self.0)
    }
}

impl core::fmt::Display for SuiAddress {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// `0x` + 64 lower-case hex digits of a 32-byte Sui id.
pub fn hex32(bytes: &[u8; 32]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(66);
    out.push_str("0x");
    for b in bytes {
        for nibble in [b >> 4, b & 0x0f] {
            out.push(
                DIGITS
                    .get(usize::from(nibble))
                    .map_or('0', |&d| char::from(d)),
            );
        }
    }
    out
}

/// Parses `0x` + exactly 64 hex digits (either case) into 32 bytes; anything else is `None`.
/// Sui shows object ids and addresses in this full form.
pub fn parse_hex32(text: &str) -> Option<[u8; 32]> {
    let digits = text.strip_prefix("0x")?.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let mut value = 0u8;
        for &c in pair {
            let nibble = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                b'A'..=b'F' => c - b'A' + 10,
                _ => return None,
            };
            value = (value << 4) | nibble;
        }
        *byte = value;
    }
    Some(out)
}

/// Signature schemes of Sui's serialized signature, by flag byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureScheme {
    /// Flag 0x00: 64-byte signature, 32-byte key.
    Ed25519,
    /// Flag 0x01: ECDSA over SHA-256 of the digest, 64-byte compact low-S signature,
    /// 33-byte compressed key.
    Secp256k1,
    /// Flag 0x02: as secp256k1, on P-256.
    Secp256r1,
}

impl SignatureScheme {
    /// The flag byte Sui puts first in a serialized signature.
    pub const fn flag(self) -> u8 {
        match self {
            Self::Ed25519 => 0x00,
            Self::Secp256k1 => 0x01,
            Self::Secp256r1 => 0x02,
        }
    }

    /// Sui's name of the scheme.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Ed25519 => "ed25519",
            Self::Secp256k1 => "secp256k1",
            Self::Secp256r1 => "secp256r1",
        }
    }

    const fn public_key_len(self) -> usize {
        match self {
            Self::Ed25519 => 32,
            Self::Secp256k1 | Self::Secp256r1 => 33,
        }
    }
}

/// Why a token is refused. One variant per rule, so tests and logs name the exact reason.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenError {
    /// Longer than [`MAX_TOKEN_BYTES`].
    TooLong,
    /// Not a well-formed token; `what` names the part.
    Malformed {
        /// The part that is wrong, e.g. `claims base64`.
        what: &'static str,
    },
    /// A Sui signature flag we do not verify (multisig 0x03, zkLogin 0x05, passkey 0x06, or an
    /// unknown byte).
    UnsupportedScheme {
        /// The flag byte.
        flag: u8,
    },
    /// The public key is not a valid point for its scheme.
    InvalidPublicKey,
    /// The signature does not verify over the claims.
    BadSignature,
    /// `iat` is after `exp`.
    ExpiresBeforeIssued,
    /// `exp - iat` is above the configured maximum lifetime.
    LifetimeTooLong {
        /// The token's lifetime in seconds.
        lifetime_secs: u64,
        /// The configured maximum.
        max_secs: u64,
    },
    /// `now` is after `exp`.
    Expired,
    /// `now` is before `iat - skew`.
    NotYetValid,
    /// The token is for another node than the one the request acts for.
    WrongNode,
    /// The stake registry does not know `stake_id`.
    UnknownStake,
    /// The signer's address does not own `stake_id`.
    NotOwner,
    /// The stake was withdrawn.
    StakeWithdrawn,
    /// The stake was slashed below the minimum.
    SlashedBelowMinimum,
    /// The stake is below the minimum (never slashed: deposited too little).
    BelowMinimum,
}

impl TokenError {
    /// A short, fixed reason text (never contains the token or its claims).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TooLong => "token is too long",
            Self::Malformed { .. } => "token is malformed",
            Self::UnsupportedScheme { .. } => "signature scheme is not supported",
            Self::InvalidPublicKey => "public key is invalid",
            Self::BadSignature => "signature does not verify",
            Self::ExpiresBeforeIssued => "token expires before it is issued",
            Self::LifetimeTooLong { .. } => "token lifetime is above the maximum",
            Self::Expired => "token has expired",
            Self::NotYetValid => "token is not yet valid",
            Self::WrongNode => "token is for another node",
            Self::UnknownStake => "stake is unknown",
            Self::NotOwner => "signer does not own the stake",
            Self::StakeWithdrawn => "stake was withdrawn",
            Self::SlashedBelowMinimum => "stake was slashed below the minimum",
            Self::BelowMinimum => "stake is below the minimum",
        }
    }
}

impl core::fmt::Display for TokenError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.reason())?;
        match self {
            Self::Malformed { what } => write!(f, ": {what}"),
            Self::UnsupportedScheme { flag } => write!(f, ": flag 0x{flag:02x}"),
            Self::LifetimeTooLong {
                lifetime_secs,
                max_secs,
            } => write!(f, ": {lifetime_secs}s > {max_secs}s"),
            _ => Ok(()),
        }
    }
}

impl core::error::Error for TokenError {}

impl From<TokenError> for Error {
    fn from(e: TokenError) -> Self {
        Error::Unauthorized(format!("invalid Seal token: {e}"))
    }
}

/// The signed claims of a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealClaims {
    /// The node the token lets its holder act as (a DNS-1123 subdomain).
    pub node_id: String,
    /// The Sui object id of the stake.
    pub stake_id: [u8; 32],
    /// Issued at, unix seconds.
    pub iat: u64,
    /// Expires at, unix seconds (inclusive).
    pub exp: u64,
}

impl SealClaims {
    /// The canonical claims JSON this crate signs: `{"node_id","stake_id","iat","exp"}`.
    pub fn to_json(&self) -> String {
        // node_id is a DNS-1123 subdomain when valid, so it needs no escaping; escape anyway
        // through serde_json so an invalid name still yields valid JSON.
        let node = serde_json::Value::String(self.node_id.clone()).to_string();
        format!(
            "{{\"node_id\":{node},\"stake_id\":\"{}\",\"iat\":{},\"exp\":{}}}",
            hex32(&self.stake_id),
            self.iat,
            self.exp
        )
    }
}

/// A token whose syntax is valid and whose signature verifies; no policy checked yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedToken {
    /// The signed claims.
    pub claims: SealClaims,
    /// The address of the signing key.
    pub signer: SuiAddress,
    /// The signature scheme.
    pub scheme: SignatureScheme,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClaims {
    node_id: String,
    stake_id: String,
    iat: u64,
    exp: u64,
}

/// The digest a Sui wallet signs for a personal message: Blake2b-256 of the intent `[3,0,0]`
/// followed by the BCS `vector<u8>` of the message (ULEB128 length, then the bytes).
pub fn personal_message_digest(message: &[u8]) -> [u8; 32] {
    let mut len_bytes = [0u8; 10];
    let mut n = 0;
    let mut len = message.len() as u64;
    for slot in len_bytes.iter_mut() {
        let low = (len & 0x7f) as u8;
        len >>= 7;
        n += 1;
        if len == 0 {
            *slot = low;
            break;
        }
        *slot = low | 0x80;
    }
    let mut h = Blake2b256::new();
    h.update(PERSONAL_MESSAGE_INTENT);
    h.update(len_bytes.get(..n).unwrap_or_default());
    h.update(message);
    h.finalize().into()
}

/// Checks syntax and signature; on success the claims and the signer's address.
pub fn parse(token: &str) -> Result<ParsedToken, TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::TooLong);
    }
    let rest = token
        .strip_prefix(TOKEN_PREFIX)
        .ok_or(TokenError::Malformed {
            what: "missing seal1. prefix",
        })?;
    let (claims_b64, sig_b64) = rest.split_once('.').ok_or(TokenError::Malformed {
        what: "missing signature part",
    })?;
    let mut claims_buf = [0u8; MAX_CLAIMS_BYTES];
    let claims_len = B64URL
        .decode_slice(claims_b64, &mut claims_buf)
        .map_err(|_| TokenError::Malformed {
            what: "claims base64url",
        })?;
    let claims_bytes = claims_buf.get(..claims_len).unwrap_or_default();
    // Base64 of at most 98 bytes is at most 132 characters; refuse longer before decoding.
    if sig_b64.len() > 136 {
        return Err(TokenError::Malformed {
            what: "signature length",
        });
    }
    let mut sig_buf = [0u8; 136];
    let sig_len =
        B64URL
            .decode_slice(sig_b64, &mut sig_buf)
            .map_err(|_| TokenError::Malformed {
                what: "signature base64url",
            })?;
    let serialized = sig_buf.get(..sig_len).unwrap_or_default();
    let claims = parse_claims(claims_bytes)?;
    let (scheme, signer) = verify_personal_message(claims_bytes, serialized)?;
    Ok(ParsedToken {
        claims,
        signer,
        scheme,
    })
}

fn parse_claims(bytes: &[u8]) -> Result<SealClaims, TokenError> {
    let mut scratch = [0u8; MAX_CLAIMS_BYTES];
    // serde-json-core only recurses into values of unknown fields, which deny_unknown_fields
    // refuses first, and the claims are at most MAX_CLAIMS_BYTES: no deep recursion possible.
    let (raw, used): (RawClaims, usize) = serde_json_core::from_slice_escaped(bytes, &mut scratch)
        .map_err(|_| TokenError::Malformed {
            what: "claims JSON",
        })?;
    let trailing = bytes.get(used..).unwrap_or_default();
    if !trailing
        .iter()
        .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
    {
        return Err(TokenError::Malformed {
            what: "claims JSON",
        });
    }
    if raw.node_id.len() > MAX_NODE_ID_BYTES
        || !crate::validation::is_dns1123_subdomain(&raw.node_id)
    {
        return Err(TokenError::Malformed {
            what: "node_id is not a DNS-1123 subdomain",
        });
    }
    let stake_id = parse_hex32(&raw.stake_id).ok_or(TokenError::Malformed {
        what: "stake_id is not 0x and 64 hex digits",
    })?;
    Ok(SealClaims {
        node_id: raw.node_id,
        stake_id,
        iat: raw.iat,
        exp: raw.exp,
    })
}

/// Verifies a Sui serialized signature (`flag || sig || pubkey`) over a personal message;
/// returns the scheme and the signer's address.
pub fn verify_personal_message(
    message: &[u8],
    serialized: &[u8],
) -> Result<(SignatureScheme, SuiAddress), TokenError> {
    let (&flag, rest) = serialized.split_first().ok_or(TokenError::Malformed {
        what: "empty signature",
    })?;
    let scheme = match flag {
        0x00 => SignatureScheme::Ed25519,
        0x01 => SignatureScheme::Secp256k1,
        0x02 => SignatureScheme::Secp256r1,
        other => return Err(TokenError::UnsupportedScheme { flag: other }),
    };
    if rest.len() != 64 + scheme.public_key_len() || serialized.len() > MAX_SIGNATURE_BYTES {
        return Err(TokenError::Malformed {
            what: "signature length does not match its scheme",
        });
    }
    let (sig, public_key) = rest.split_at(64);
    let digest = personal_message_digest(message);
    match scheme {
        SignatureScheme::Ed25519 => verify_ed25519(&digest, sig, public_key)?,
        SignatureScheme::Secp256k1 => verify_secp256k1(&digest, sig, public_key)?,
        SignatureScheme::Secp256r1 => verify_secp256r1(&digest, sig, public_key)?,
    }
    Ok((scheme, SuiAddress::from_public_key(scheme, public_key)))
}

fn verify_ed25519(digest: &[u8; 32], sig: &[u8], public_key: &[u8]) -> Result<(), TokenError> {
    let key: &[u8; 32] = public_key
        .try_into()
        .map_err(|_| TokenError::InvalidPublicKey)?;
    let sig: &[u8; 64] = sig.try_into().map_err(|_| TokenError::BadSignature)?;
    let key =
        ed25519_dalek::VerifyingKey::from_bytes(key).map_err(|_| TokenError::InvalidPublicKey)?;
    // Strict: refuses small-order keys and non-canonical R, for which one signature could
    // verify for many messages.
    key.verify_strict(digest, &ed25519_dalek::Signature::from_bytes(sig))
        .map_err(|_| TokenError::BadSignature)
}

fn verify_secp256k1(digest: &[u8; 32], sig: &[u8], public_key: &[u8]) -> Result<(), TokenError> {
    use k256::ecdsa::signature::Verifier as _;
    let key = k256::ecdsa::VerifyingKey::from_sec1_bytes(public_key)
        .map_err(|_| TokenError::InvalidPublicKey)?;
    let sig = k256::ecdsa::Signature::from_slice(sig).map_err(|_| TokenError::BadSignature)?;
    // Sui accepts only low-S signatures (no malleable twin of a valid signature).
    if sig.normalize_s() != sig {
        return Err(TokenError::BadSignature);
    }
    key.verify(digest, &sig)
        .map_err(|_| TokenError::BadSignature)
}

fn verify_secp256r1(digest: &[u8; 32], sig: &[u8], public_key: &[u8]) -> Result<(), TokenError> {
    use p256::ecdsa::signature::Verifier as _;
    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(public_key)
        .map_err(|_| TokenError::InvalidPublicKey)?;
    let sig = p256::ecdsa::Signature::from_slice(sig).map_err(|_| TokenError::BadSignature)?;
    if sig.normalize_s() != sig {
        return Err(TokenError::BadSignature);
    }
    key.verify(digest, &sig)
        .map_err(|_| TokenError::BadSignature)
}

/// Makes an Ed25519 token, as `nautilus-seal` and the tests do; the same bytes a Sui wallet's
/// `signPersonalMessage` produces for these claims. `secret_key` is the 32-byte Ed25519 seed.
pub fn mint_ed25519(secret_key: &[u8; 32], claims: &SealClaims) -> String {
    use ed25519_dalek::Signer as _;
    let key = ed25519_dalek::SigningKey::from_bytes(secret_key);
    let claims_json = claims.to_json();
    let digest = personal_message_digest(claims_json.as_bytes());
    let sig = key.sign(&digest);
    let mut serialized = [0u8; 97];
    let (flag, rest) = serialized.split_at_mut(1);
    let (sig_part, key_part) = rest.split_at_mut(64);
    if let Some(f) = flag.first_mut() {
        *f = SignatureScheme::Ed25519.flag();
    }
    sig_part.copy_from_slice(&sig.to_bytes());
    key_part.copy_from_slice(key.verifying_key().as_bytes());
    let mut token = String::with_capacity(TOKEN_PREFIX.len() + 400);
    token.push_str(TOKEN_PREFIX);
    B64URL.encode_string(claims_json.as_bytes(), &mut token);
    token.push('.');
    B64URL.encode_string(serialized, &mut token);
    token
}

/// The Sui address of an Ed25519 secret key (seed).
pub fn ed25519_address(secret_key: &[u8; 32]) -> SuiAddress {
    let key = ed25519_dalek::SigningKey::from_bytes(secret_key);
    SuiAddress::from_public_key(SignatureScheme::Ed25519, key.verifying_key().as_bytes())
}

/// Token policy; the defaults are the enclave's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPolicy {
    /// Longest `exp - iat` accepted (`--token-max-lifetime`). Default 86,400 s (24 h): a day
    /// bounds how long a leaked token is useful while letting a worker mint once a day.
    pub max_lifetime_secs: u64,
    /// Clock skew tolerated before `iat` (a staker's clock slightly ahead of the enclave's).
    /// Default 60 s. Expiry gets no skew: a token is never valid after `exp`.
    pub clock_skew_secs: u64,
    /// Verified tokens remembered so repeated calls skip the signature. Default 16,384 (about
    /// 7 MiB at the 2 KiB token limit, typically under 4 MiB); 0 disables the cache.
    pub cache_entries: usize,
}

impl Default for TokenPolicy {
    fn default() -> Self {
        Self {
            max_lifetime_secs: 86_400,
            clock_skew_secs: 60,
            cache_entries: 16_384,
        }
    }
}

/// What a valid token proves: the caller is this node, backed by this stake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeIdentity {
    /// The node the caller may act as.
    pub node_id: String,
    /// The stake object backing it.
    pub stake_id: [u8; 32],
    /// The staker's address (the token's signer and the stake's owner).
    pub owner: SuiAddress,
    /// The stake's current amount, MIST.
    pub amount: u64,
    /// How the registry learned the stake.
    pub trust: TrustLevel,
    /// The stake's change counter when checked (see [`crate::stake::Stake::generation`]).
    pub stake_generation: u64,
    /// The token's `exp`, unix seconds.
    pub expires: u64,
    /// The signature scheme.
    pub scheme: SignatureScheme,
}

/// Validates tokens against the policy and the stake registry. Only the signature result is
/// cached; every rule that can change (time, node, stake) is checked on every call, so a
/// withdrawal or slash takes effect on the next request.
#[derive(Debug)]
pub struct TokenValidator {
    policy: TokenPolicy,
    /// Token text → verified claims. Keyed by the full token so a lookup is one hash and one
    /// compare; the budget bounds it.
    cache: HashMap<String, ParsedToken>,
}

impl TokenValidator {
    /// A validator with `policy` and an empty cache.
    pub fn new(policy: TokenPolicy) -> Self {
        Self {
            policy,
            cache: HashMap::new(),
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> &TokenPolicy {
        &self.policy
    }

    /// Verified tokens currently cached.
    pub fn cached(&self) -> usize {
        self.cache.len()
    }

    /// Forgets every cached signature (e.g. on a policy change).
    pub fn clear_cache(&mut self) {
        self.cache.clear();
    }

    /// Checks every rule of ARCHITECTURE.md §4 for `token` at `now`. `acting_node` is the node
    /// the request acts for, when it names one.
    pub fn validate(
        &mut self,
        token: &str,
        now: UnixTime,
        acting_node: Option<&str>,
        stakes: &StakeRegistry,
    ) -> Result<NodeIdentity, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::TooLong);
        }
        if let Some(parsed) = self.cache.get(token) {
            return check_policy(&self.policy, parsed, now, acting_node, stakes);
        }
        let parsed = parse(token)?;
        let result = check_policy(&self.policy, &parsed, now, acting_node, stakes);
        // Cache only what may pass later: a token past its expiry or with a lifetime the
        // policy refuses never will, and caching it would let junk evict good entries.
        if !matches!(
            result,
            Err(TokenError::Expired
                | TokenError::LifetimeTooLong { .. }
                | TokenError::ExpiresBeforeIssued)
        ) {
            self.remember(token, parsed, now);
        }
        result
    }

    fn remember(&mut self, token: &str, parsed: ParsedToken, now: UnixTime) {
        let budget = self.policy.cache_entries;
        if budget == 0 {
            return;
        }
        if self.cache.len() >= budget {
            // First drop what has expired; if every entry is live, drop one arbitrary entry.
            // Bounded by the budget, and only on a miss, which already paid for a signature.
            self.cache.retain(|_, p| !expired(p.claims.exp, now));
            if self.cache.len() >= budget
                && let Some(victim) = self.cache.keys().next().cloned()
            {
                self.cache.remove(&victim);
            }
        }
        // An allocation failure inside `insert` would abort; reserve first and skip on failure.
        if self.cache.try_reserve(1).is_ok() {
            self.cache.insert(token.to_string(), parsed);
        }
    }
}

fn expired(exp: u64, now: UnixTime) -> bool {
    now > UnixTime::from_secs(exp)
}

fn check_policy(
    policy: &TokenPolicy,
    parsed: &ParsedToken,
    now: UnixTime,
    acting_node: Option<&str>,
    stakes: &StakeRegistry,
) -> Result<NodeIdentity, TokenError> {
    let claims = &parsed.claims;
    if claims.iat > claims.exp {
        return Err(TokenError::ExpiresBeforeIssued);
    }
    let lifetime_secs = claims.exp - claims.iat;
    if lifetime_secs > policy.max_lifetime_secs {
        return Err(TokenError::LifetimeTooLong {
            lifetime_secs,
            max_secs: policy.max_lifetime_secs,
        });
    }
    // Nanosecond comparison: `now ≤ exp` means not even half a second past it.
    if expired(claims.exp, now) {
        return Err(TokenError::Expired);
    }
    if now.plus_secs(policy.clock_skew_secs) < UnixTime::from_secs(claims.iat) {
        return Err(TokenError::NotYetValid);
    }
    if let Some(node) = acting_node
        && node != claims.node_id
    {
        return Err(TokenError::WrongNode);
    }
    let stake = stakes
        .get(&claims.stake_id)
        .ok_or(TokenError::UnknownStake)?;
    if stake.owner != parsed.signer {
        return Err(TokenError::NotOwner);
    }
    if stake.withdrawn {
        return Err(TokenError::StakeWithdrawn);
    }
    if stake.amount < stakes.min_stake() {
        return Err(if stake.slashed > 0 {
            TokenError::SlashedBelowMinimum
        } else {
            TokenError::BelowMinimum
        });
    }
    Ok(NodeIdentity {
        node_id: claims.node_id.clone(),
        stake_id: claims.stake_id,
        owner: stake.owner,
        amount: stake.amount,
        trust: stake.trust,
        stake_generation: stake.generation,
        expires: claims.exp,
        scheme: parsed.scheme,
    })
}
