//! Who is calling: the bearer token is resolved to an identity here, in core, so the untrusted
//! proxy never decides access.

use sha2::{Digest, Sha256};

use crate::{Config, Error};

/// The caller of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Identity {
    /// No credential: only health, version and attestation paths.
    Anonymous,
    /// The cluster administrator (the admin token).
    Admin,
    /// The Sui event relay (its credential may push stake events and nothing else).
    Relay,
    /// A worker node, by a valid Seal token: may act only as its own node.
    Node(alloc::boxed::Box<crate::token::NodeIdentity>),
}

/// The bearer token of an `Authorization` header, if it is one.
pub fn bearer(authorization: &str) -> Option<&str> {
    authorization
        .strip_prefix("Bearer ")
        .or_else(|| authorization.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Resolves an `Authorization` header value. A header that is present but wrong is 401, never
/// a silent downgrade to anonymous.
pub fn authenticate(config: &Config, authorization: Option<&str>) -> Result<Identity, Error> {
    let Some(header) = authorization else {
        return Ok(Identity::Anonymous);
    };
    let token = bearer(header).ok_or_else(|| Error::Unauthorized("Unauthorized".into()))?;
    let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    match (&config.admin_token_sha256, &config.relay_token_sha256) {
        (Some(admin), _) if constant_time_eq(admin, &digest) => Ok(Identity::Admin),
        (_, Some(relay)) if constant_time_eq(relay, &digest) => Ok(Identity::Relay),
        _ => Err(Error::Unauthorized("Unauthorized".into())),
    }
}

/// Compares two digests without an early exit, so timing does not reveal a prefix match.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_admin_token_is_admin() {
        let mut config = Config {
            admin_token_sha256: Some(Sha256::digest(b"s3cret").into()),
            ..Config::default()
        };
        assert_eq!(
            authenticate(&config, Some("Bearer s3cret")),
            Ok(Identity::Admin)
        );
        assert_eq!(authenticate(&config, None), Ok(Identity::Anonymous));
        assert!(matches!(
            authenticate(&config, Some("Bearer s3creT")),
            Err(Error::Unauthorized(_))
        ));
        assert!(matches!(
            authenticate(&config, Some("Basic s3cret")),
            Err(Error::Unauthorized(_))
        ));
        assert!(matches!(
            authenticate(&config, Some("Bearer ")),
            Err(Error::Unauthorized(_))
        ));
        config.admin_token_sha256 = None;
        assert!(matches!(
            authenticate(&config, Some("Bearer s3cret")),
            Err(Error::Unauthorized(_))
        ));
    }
}
