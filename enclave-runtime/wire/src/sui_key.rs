//! Sui private keys in the `suiprivkey1...` form `sui keytool export` prints and the Sui SDKs'
//! `getSecretKey()` returns (bech32 of a scheme flag and the 32-byte secret), written once for
//! `nautilus-seal`, which reads them, and the tests, which hand their stakers' keys to it. Only
//! Ed25519 keys are read: the Seal tokens `nautilus-seal` mints are Ed25519. No error text ever
//! contains the key.

use core::fmt;

/// Sui's bech32 human-readable part for private keys.
const HRP: &str = "suiprivkey";
/// The Ed25519 flag byte in front of the 32-byte secret.
const ED25519_FLAG: u8 = 0x00;

/// Why a key text was refused; never carries the key.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// Not bech32, or a bad checksum.
    NotBech32,
    /// Bech32 with another human-readable part than `suiprivkey`.
    NotAPrivateKey,
    /// A key of another signature scheme (its flag byte).
    Scheme(u8),
    /// An Ed25519 flag followed by other than 32 bytes.
    Length,
    /// No bytes at all.
    Empty,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotBech32 => f.write_str("the key is not valid bech32"),
            Self::NotAPrivateKey => write!(f, "the key must start with {HRP}1"),
            Self::Scheme(flag) => write!(
                f,
                "the key's scheme (flag 0x{flag:02x}) is not supported: use an Ed25519 key"
            ),
            Self::Length => f.write_str("the Ed25519 key must be 32 bytes"),
            Self::Empty => f.write_str("the key is empty"),
        }
    }
}

impl std::error::Error for KeyError {}

/// The Ed25519 secret (seed) of `suiprivkey1...` (surrounding whitespace ignored).
pub fn decode_ed25519(text: &str) -> Result<[u8; 32], KeyError> {
    let (hrp, data) = bech32::decode(text.trim()).map_err(|_| KeyError::NotBech32)?;
    if hrp.as_str() != HRP {
        return Err(KeyError::NotAPrivateKey);
    }
    match data.split_first() {
        Some((&ED25519_FLAG, seed)) => seed.try_into().map_err(|_| KeyError::Length),
        Some((&flag, _)) => Err(KeyError::Scheme(flag)),
        None => Err(KeyError::Empty),
    }
}

/// `suiprivkey1...` for the Ed25519 secret `seed`.
pub fn encode_ed25519(seed: &[u8; 32]) -> String {
    let mut data = Vec::with_capacity(33);
    data.push(ED25519_FLAG);
    data.extend_from_slice(seed);
    // `HRP` is a valid lower-case human-readable part and 33 bytes are far below bech32's
    // length limit, so neither step can fail.
    let hrp = bech32::Hrp::parse_unchecked(HRP);
    bech32::encode::<bech32::Bech32>(hrp, &data).expect("33 bytes fit a bech32 string")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_match_the_sdk() {
        // Exported by @mysten/sui `Ed25519Keypair.getSecretKey()`.
        let sdk = "suiprivkey1qrprrmqrvg6wjrdt2anhad24zxvhlzg0a2f9gv07wluyct9tttz87825mlq";
        let seed = decode_ed25519(sdk).unwrap();
        assert_eq!(encode_ed25519(&seed), sdk);
        assert_eq!(decode_ed25519(&format!("  {sdk}\n")), Ok(seed));
        // A secp256k1 key from the SDK is refused with a reason, and never echoed.
        let k1 = "suiprivkey1q94hr7whu2q944ruv7p0ucjfwmx7ewf99vmwwjlfmluw2mteft2x2dyzfyg";
        let err = decode_ed25519(k1).unwrap_err();
        assert_eq!(err, KeyError::Scheme(0x01));
        assert!(err.to_string().contains("flag 0x01"), "{err}");
        assert!(!err.to_string().contains(k1));
        assert!(decode_ed25519("suipubkey1qqqqqq").is_err());
        assert_eq!(decode_ed25519("not a key"), Err(KeyError::NotBech32));
    }
}
