//! ServiceAccount tokens as kube-apiserver 1.32 issues and reads them: ES256 JWTs with kube's
//! claims (`pkg/serviceaccount/claims.go`), signed by a P-256 key the runtime derives inside the
//! enclave and hands in through [`crate::Config`]. Only the key's public half leaves core, in the
//! JWKS. Pure: time is passed in; what a token names (its account, the object it is bound to) is
//! checked against the store by the API layer, as kube's validator checks it against its
//! informers.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{Signature, SigningKey};
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use crate::gostr::{go_json, go_json_string};

/// kube-apiserver's usual `--service-account-issuer` (k3s and kubeadm set it), and so the API
/// audience when none is configured.
pub const DEFAULT_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
/// Where the OIDC discovery document is served (`serviceaccount.OpenIDConfigPath`).
pub const OPENID_CONFIG_PATH: &str = "/.well-known/openid-configuration";
/// Where the JWKS is served (`serviceaccount.JWKSPath`).
pub const JWKS_PATH: &str = "/openid/v1/jwks";
/// `expirationSeconds` when a TokenRequest names none (kube's v1 default: one hour).
pub const DEFAULT_EXPIRATION_SECS: i64 = 3600;
/// The shortest lifetime a TokenRequest may ask (`MinTokenAgeSec`, ten minutes).
pub const MIN_EXPIRATION_SECS: i64 = 600;
/// The longest lifetime a TokenRequest may ask (2^32 seconds).
pub const MAX_EXPIRATION_SECS: i64 = 1 << 32;
/// The lifetime a kubelet asks for projected tokens (`WarnOnlyBoundTokenExpirationSeconds`):
/// with `--service-account-extend-token-expiration` (on by default) such a pod-bound token is
/// issued for [`EXTENDED_EXPIRATION_SECS`] and only warned about after this.
pub const WARN_ONLY_EXPIRATION_SECS: i64 = 60 * 60 + 7;
/// `ExpirationExtensionSeconds`: one year.
pub const EXTENDED_EXPIRATION_SECS: i64 = 24 * 365 * 60 * 60;
/// go-jose's `DefaultLeeway` on `nbf`, `exp` and `iat`, and kube's grace after a bound object's
/// deletion timestamp.
pub const LEEWAY_SECS: i64 = 60;
/// Longest bearer token read as a JWT; a longer one is not this issuer's (ours are ~1 KiB).
pub const MAX_JWT_BYTES: usize = 16 << 10;
/// The JWS algorithm of every token signed here.
pub const ALGORITHM: &str = "ES256";

/// DER of a P-256 `SubjectPublicKeyInfo` up to its point: SEQUENCE { SEQUENCE { id-ecPublicKey,
/// prime256v1 }, BIT STRING (0 unused bits) }; the 65-byte uncompressed point follows. What
/// Go's `x509.MarshalPKIXPublicKey` writes, which kube hashes into the key id.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// The issuer's signing key. Its `Debug` shows only the key id, so a logged configuration
/// never shows the secret.
#[derive(Clone)]
pub struct ServiceAccountKey {
    signing: SigningKey,
    key_id: String,
    x: [u8; 32],
    y: [u8; 32],
}

impl core::fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl ServiceAccountKey {
    /// The key whose scalar is `secret` (32 secret bytes from the runtime: derived from the
    /// cluster data key, or random). The rare secret that is no valid scalar (zero, or at least
    /// the group order: about 2^-32 of them) is rehashed, so the same secret always gives the
    /// same key; `None` only if 256 rehashes all fail, which does not happen.
    pub fn from_secret(secret: &[u8; 32]) -> Option<Self> {
        let signing = core::iter::once(*secret)
            .chain((0u8..=u8::MAX).map(|round| {
                let mut h = Sha256::new();
                h.update(b"nautilus service account key rehash");
                h.update(secret);
                h.update([round]);
                h.finalize().into()
            }))
            .find_map(|bytes: [u8; 32]| SigningKey::from_slice(&bytes).ok())?;
        let point = signing.verifying_key().to_sec1_point(false);
        let bytes = point.as_bytes();
        let x: [u8; 32] = bytes.get(1..33)?.try_into().ok()?;
        let y: [u8; 32] = bytes.get(33..65)?.try_into().ok()?;
        let mut spki = Sha256::new();
        spki.update(P256_SPKI_PREFIX);
        spki.update(bytes);
        let key_id = URL_SAFE_NO_PAD.encode(spki.finalize());
        Some(Self {
            signing,
            key_id,
            x,
            y,
        })
    }

    /// kube's key id: base64url (unpadded) of the SHA-256 of the public key's PKIX DER.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The public key as a JWK, as go-jose writes it (`use`, `kty`, `kid`, `crv`, `alg`, `x`,
    /// `y`, in that order).
    pub fn jwk(&self) -> String {
        let mut out = String::from("{\"use\":\"sig\",\"kty\":\"EC\",\"kid\":");
        go_json_string(&self.key_id, &mut out);
        out.push_str(",\"crv\":\"P-256\",\"alg\":\"ES256\",\"x\":\"");
        out.push_str(&URL_SAFE_NO_PAD.encode(self.x));
        out.push_str("\",\"y\":\"");
        out.push_str(&URL_SAFE_NO_PAD.encode(self.y));
        out.push_str("\"}");
        out
    }

    /// `GET /openid/v1/jwks`: the key set of this issuer.
    pub fn jwks(&self) -> String {
        alloc::format!("{{\"keys\":[{}]}}", self.jwk())
    }

    /// A signed compact JWS of `claims`: header `{"alg":"ES256","kid":...}`, the payload as
    /// go-jose builds it (the claims merged into one JSON object, keys sorted).
    pub fn sign(&self, claims: &Claims) -> String {
        let mut header = String::from("{\"alg\":\"ES256\",\"kid\":");
        go_json_string(&self.key_id, &mut header);
        header.push('}');
        let mut payload = String::new();
        go_json(&claims.to_json(), &mut payload);
        let mut token = URL_SAFE_NO_PAD.encode(header.as_bytes());
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(payload.as_bytes()));
        let signature: Signature = self.signing.sign(token.as_bytes());
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(signature.to_bytes()));
        token
    }

    /// A token of any header and payload bytes, signed: lets the fuzz target reach what lies
    /// behind the signature check.
    #[doc(hidden)]
    pub fn sign_raw_for_fuzzing(&self, header: &[u8], payload: &[u8]) -> String {
        let mut token = URL_SAFE_NO_PAD.encode(header);
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(payload));
        let signature: Signature = self.signing.sign(token.as_bytes());
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(signature.to_bytes()));
        token
    }

    /// Reads `token` as kube's JWT authenticator does up to its validator: the issuer (read
    /// before the signature, so another issuer's token is simply not this authenticator's),
    /// the key id, the signature. The claims' times, audiences and objects are the caller's.
    pub fn verify(&self, issuer: &str, token: &str) -> Result<Claims, Rejection> {
        // hasCorrectIssuer
        if token.len() > MAX_JWT_BYTES || token.trim().starts_with('{') {
            return Err(Rejection::NotOurs);
        }
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Rejection::NotOurs);
        };
        let payload_bytes = URL_SAFE_NO_PAD
            .decode(payload_b64)
            .map_err(|_| Rejection::NotOurs)?;
        let payload: Value =
            serde_json::from_slice(&payload_bytes).map_err(|_| Rejection::NotOurs)?;
        if payload.get("iss").and_then(Value::as_str) != Some(issuer) {
            return Err(Rejection::NotOurs);
        }
        // jwt.ParseSigned: the three parts decode (go-jose trims `=` padding first).
        let header_bytes = URL_SAFE_NO_PAD
            .decode(header_b64.trim_end_matches('='))
            .map_err(|_| Rejection::NotOurs)?;
        let Ok(Value::Object(header)) = serde_json::from_slice::<Value>(&header_bytes) else {
            return Err(Rejection::NotOurs);
        };
        let signature = URL_SAFE_NO_PAD
            .decode(signature_b64.trim_end_matches('='))
            .map_err(|_| Rejection::NotOurs)?;
        let kid = match header.get("kid") {
            None | Some(Value::Null) => "",
            Some(Value::String(kid)) => kid.as_str(),
            Some(_) => return Err(Rejection::NotOurs),
        };
        if !kid.is_empty() && kid != self.key_id {
            return Err(Rejection::NoKeys);
        }
        // DetachedVerify: no critical header go-jose does not know (it knows none of ours),
        // the algorithm the key is for, a signature of the key's size that verifies over the
        // header and payload (re-encoded, as go-jose signs what it decoded).
        let algorithm = header.get("alg").and_then(Value::as_str).unwrap_or("");
        if header.contains_key("crit") || algorithm != ALGORITHM {
            return Err(Rejection::Signature);
        }
        let signature = Signature::from_slice(&signature).map_err(|_| Rejection::Signature)?;
        let mut signed = URL_SAFE_NO_PAD.encode(&header_bytes);
        signed.push('.');
        signed.push_str(&URL_SAFE_NO_PAD.encode(&payload_bytes));
        self.signing
            .verifying_key()
            .verify(signed.as_bytes(), &signature)
            .map_err(|_| Rejection::Signature)?;
        Claims::from_json(&payload)
    }
}

/// ServiceAccount tokens whose signature verified, so that a token's ECDSA signature is checked
/// once rather than on every request (a P-256 verification costs more than the rest of a small
/// request). Only the signature's verdict is remembered: times, audiences and the objects a
/// token names are checked on every call, so a token still dies with its pod at once. kube
/// caches whole answers of its token authenticator for 10 s; this caches less.
#[derive(Debug)]
pub struct VerifiedTokens {
    /// Token text → its claims; the budget bounds it.
    entries: hashbrown::HashMap<String, Claims>,
    /// Most entries; 0 remembers nothing.
    budget: usize,
    /// Signatures checked so far (cache misses).
    signatures_checked: u64,
}

impl VerifiedTokens {
    /// An empty cache of at most `budget` tokens.
    pub fn new(budget: usize) -> Self {
        Self {
            entries: hashbrown::HashMap::new(),
            budget,
            signatures_checked: 0,
        }
    }

    /// Signatures checked since start: the work the cache did not save.
    pub fn signatures_checked(&self) -> u64 {
        self.signatures_checked
    }

    /// Tokens remembered now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether none is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// [`ServiceAccountKey::verify`], from the cache when `token` verified before.
    pub fn verify(
        &mut self,
        key: &ServiceAccountKey,
        issuer: &str,
        token: &str,
        now: crate::UnixTime,
    ) -> Result<Claims, Rejection> {
        if let Some(claims) = self.entries.get(token) {
            return Ok(claims.clone());
        }
        self.signatures_checked += 1;
        let claims = key.verify(issuer, token)?;
        self.remember(token, &claims, now);
        Ok(claims)
    }

    fn remember(&mut self, token: &str, claims: &Claims, now: crate::UnixTime) {
        if self.budget == 0 || claims.check_times(now).is_err() {
            // A token that fails its times now may never pass: it would only evict good ones.
            return;
        }
        if self.entries.len() >= self.budget {
            // First what has expired; if every entry is live, one arbitrary entry. Only on a
            // miss, which already paid for a signature.
            self.entries
                .retain(|_, claims| claims.check_times(now).is_ok());
            if self.entries.len() >= self.budget
                && let Some(victim) = self.entries.keys().next().cloned()
            {
                self.entries.remove(&victim);
            }
        }
        // An allocation failure inside `insert` would abort; reserve first and skip on failure.
        if self.entries.try_reserve(1).is_ok() {
            self.entries.insert(token.to_string(), claims.clone());
        }
    }
}

/// Why kube's JWT authenticator does not take a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Not a JWT of this issuer: another authenticator's token, so no error of this one.
    NotOurs,
    /// The header names a key id this issuer does not have.
    NoKeys,
    /// The signature does not verify (another key, another algorithm, `none`, tampering).
    Signature,
    /// The payload does not read as claims (only possible in a token this server did not sign).
    Claims(&'static str),
}

impl Rejection {
    /// The error kube's authenticator gives (what a TokenReview shows); `None` when the token
    /// is not this authenticator's to judge.
    pub fn message(self) -> Option<&'static str> {
        match self {
            Self::NotOurs => None,
            Self::NoKeys => Some("invalid signature, no keys found"),
            Self::Signature => Some("square/go-jose: error in cryptographic primitive"),
            Self::Claims(message) => Some(message),
        }
    }
}

/// A reference to a named object in the private claims (`ref`: name and uid, both optional).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectRef {
    /// `name`.
    pub name: String,
    /// `uid`.
    pub uid: String,
}

impl ObjectRef {
    fn to_json(&self) -> Value {
        let mut map = Map::new();
        if !self.name.is_empty() {
            map.insert("name".into(), self.name.as_str().into());
        }
        if !self.uid.is_empty() {
            map.insert("uid".into(), self.uid.as_str().into());
        }
        Value::Object(map)
    }

    fn from_json(value: &Value) -> Result<Self, Rejection> {
        if !value.is_object() {
            return Err(Rejection::Claims(
                "json: cannot unmarshal a non-object into Go struct field of type serviceaccount.ref",
            ));
        }
        Ok(Self {
            name: optional_string(value.get("name"))?,
            uid: optional_string(value.get("uid"))?,
        })
    }
}

/// The claims of a ServiceAccount token: the registered ones and kube's private
/// `kubernetes.io` claim.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claims {
    /// `iss`.
    pub issuer: String,
    /// `sub`: `system:serviceaccount:<namespace>:<name>`.
    pub subject: String,
    /// `aud`.
    pub audiences: Vec<String>,
    /// `iat`, unix seconds.
    pub issued_at: Option<i64>,
    /// `nbf`, unix seconds.
    pub not_before: Option<i64>,
    /// `exp`, unix seconds.
    pub expiry: Option<i64>,
    /// `jti`: a UUID per token.
    pub id: String,
    /// `kubernetes.io.namespace`.
    pub namespace: String,
    /// `kubernetes.io.serviceaccount`.
    pub service_account: ObjectRef,
    /// `kubernetes.io.pod`: the pod the token is bound to.
    pub pod: Option<ObjectRef>,
    /// `kubernetes.io.secret`: the Secret the token is bound to.
    pub secret: Option<ObjectRef>,
    /// `kubernetes.io.node`: the Node the token is bound to, or the bound pod's node.
    pub node: Option<ObjectRef>,
    /// `kubernetes.io.warnafter`: when an extended token should have expired.
    pub warn_after: Option<i64>,
}

impl Claims {
    /// The payload as go-jose merges kube's claims (`omitempty` fields left out).
    fn to_json(&self) -> Value {
        let mut map = Map::new();
        let mut text = |key: &str, value: &str| {
            if !value.is_empty() {
                map.insert(key.into(), value.into());
            }
        };
        text("iss", &self.issuer);
        text("sub", &self.subject);
        text("jti", &self.id);
        if !self.audiences.is_empty() {
            map.insert("aud".into(), Value::from(self.audiences.clone()));
        }
        for (key, time) in [
            ("iat", self.issued_at),
            ("nbf", self.not_before),
            ("exp", self.expiry),
        ] {
            if let Some(time) = time {
                map.insert(key.into(), time.into());
            }
        }
        let mut kube = Map::new();
        if !self.namespace.is_empty() {
            kube.insert("namespace".into(), self.namespace.as_str().into());
        }
        kube.insert("serviceaccount".into(), self.service_account.to_json());
        for (key, object) in [
            ("pod", &self.pod),
            ("secret", &self.secret),
            ("node", &self.node),
        ] {
            if let Some(object) = object {
                kube.insert(key.into(), object.to_json());
            }
        }
        if let Some(warn_after) = self.warn_after {
            kube.insert("warnafter".into(), warn_after.into());
        }
        map.insert("kubernetes.io".into(), Value::Object(kube));
        Value::Object(map)
    }

    /// The claims of a verified payload, read as Go's decoder reads them into `jwt.Claims` and
    /// kube's `privateClaims` (a number where a date is due, a string or list audience).
    fn from_json(payload: &Value) -> Result<Self, Rejection> {
        let audiences = match payload.get("aud") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(one)) => alloc::vec![one.clone()],
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| item.as_str().map(ToString::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or(Rejection::Claims(AUDIENCE_ERROR))?,
            Some(_) => return Err(Rejection::Claims(AUDIENCE_ERROR)),
        };
        let kube = match payload.get("kubernetes.io") {
            None | Some(Value::Null) => &NULL,
            Some(value @ Value::Object(_)) => value,
            Some(_) => {
                return Err(Rejection::Claims(
                    "json: cannot unmarshal a non-object into Go struct field privateClaims.kubernetes.io of type serviceaccount.kubernetes",
                ));
            }
        };
        let reference = |key: &str| match kube.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => ObjectRef::from_json(value).map(Some),
        };
        Ok(Self {
            issuer: optional_string(payload.get("iss"))?,
            subject: optional_string(payload.get("sub"))?,
            audiences,
            issued_at: numeric_date(payload.get("iat"))?,
            not_before: numeric_date(payload.get("nbf"))?,
            expiry: numeric_date(payload.get("exp"))?,
            id: optional_string(payload.get("jti"))?,
            namespace: optional_string(kube.get("namespace"))?,
            service_account: reference("serviceaccount")?.unwrap_or_default(),
            pod: reference("pod")?,
            secret: reference("secret")?,
            node: reference("node")?,
            warn_after: numeric_date(kube.get("warnafter"))?,
        })
    }

    /// go-jose's `Claims.Validate` at `now` with its one-minute leeway, in its order and with
    /// kube's words for each failure.
    pub fn check_times(&self, now: crate::UnixTime) -> Result<(), &'static str> {
        let now = i128::from(now.nanos);
        let leeway = i128::from(LEEWAY_SECS) * 1_000_000_000;
        let nanos = |secs: i64| i128::from(secs) * 1_000_000_000;
        if self.not_before.is_some_and(|nbf| now + leeway < nanos(nbf)) {
            return Err("service account token is not valid yet");
        }
        if self.expiry.is_some_and(|exp| now - leeway > nanos(exp)) {
            return Err("service account token has expired");
        }
        if self.issued_at.is_some_and(|iat| now + leeway < nanos(iat)) {
            return Err("service account token is issued in the future");
        }
        Ok(())
    }
}

/// What an absent object reads as.
static NULL: Value = Value::Null;

const AUDIENCE_ERROR: &str =
    "square/go-jose/jwt: expected string or array value to unmarshal to Audience";

fn optional_string(value: Option<&Value>) -> Result<String, Rejection> {
    match value {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(text)) => Ok(text.clone()),
        Some(_) => Err(Rejection::Claims(
            "json: cannot unmarshal a non-string into Go value of type string",
        )),
    }
}

/// A `NumericDate`: any JSON number, truncated to whole seconds as go-jose does.
#[allow(clippy::cast_possible_truncation)]
fn numeric_date(value: Option<&Value>) -> Result<Option<i64>, Rejection> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(secs) = n.as_i64() {
                return Ok(Some(secs));
            }
            n.as_f64()
                .filter(|f| f.is_finite() && f.abs() < 9.2e18)
                .map(|f| Some(f as i64))
                .ok_or(Rejection::Claims(NUMERIC_DATE_ERROR))
        }
        Some(_) => Err(Rejection::Claims(NUMERIC_DATE_ERROR)),
    }
}

const NUMERIC_DATE_ERROR: &str =
    "square/go-jose/jwt: expected number value to unmarshal NumericDate";

/// `serviceaccount.MakeUsername`.
pub fn username(namespace: &str, name: &str) -> String {
    alloc::format!("system:serviceaccount:{namespace}:{name}")
}

/// Whether `issuer` may have OIDC discovery (kube's `NewOpenIDMetadataProvider`: an https URL
/// without query or fragment).
pub fn discoverable(issuer: &str) -> bool {
    issuer.starts_with("https://") && !issuer.contains(['?', '#'])
}

/// `GET /.well-known/openid-configuration` as kube writes it (`openIDMetadata`, field order
/// kept).
pub fn openid_configuration(issuer: &str, jwks_uri: &str) -> String {
    let mut out = String::from("{\"issuer\":");
    go_json_string(issuer, &mut out);
    out.push_str(",\"jwks_uri\":");
    go_json_string(jwks_uri, &mut out);
    out.push_str(
        ",\"response_types_supported\":[\"id_token\"],\"subject_types_supported\":[\"public\"],\"id_token_signing_alg_values_supported\":[\"ES256\"]}",
    );
    out
}

#[cfg(test)]
mod tests;
