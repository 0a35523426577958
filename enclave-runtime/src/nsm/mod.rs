//! The Nitro Secure Module boundary: attestation documents, randomness and PCR reads behind one
//! trait, with the real device (`/dev/nsm`, production) and a SIMULATED module (development)
//! that makes real COSE_Sign1 documents through a throw-away certificate chain.

mod real;
pub(crate) mod simulated;

use std::fmt;
use std::sync::Arc;

/// Why an NSM call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NsmError {
    /// No module to talk to (no `/dev/nsm`).
    Unavailable(String),
    /// The module refused the request or answered something unexpected.
    Device(String),
    /// The caller's input is out of range (too long, unknown PCR).
    InvalidInput(String),
}

impl fmt::Display for NsmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unavailable(m) => write!(f, "NSM unavailable: {m}"),
            Self::Device(m) => write!(f, "NSM error: {m}"),
            Self::InvalidInput(m) => write!(f, "NSM input refused: {m}"),
        }
    }
}

impl std::error::Error for NsmError {}

/// One Nitro Secure Module, real or simulated.
pub(crate) trait Nsm: Send + Sync {
    /// A fresh attestation document (COSE_Sign1 bytes) binding `user_data`, `nonce` and
    /// `public_key`; an empty slice puts CBOR null in that field, as the device does for an
    /// absent value.
    fn attest(
        &self,
        user_data: &[u8],
        nonce: &[u8],
        public_key: &[u8],
    ) -> Result<Vec<u8>, NsmError>;
    /// Fills `out` with random bytes from the module.
    fn random(&self, out: &mut [u8]) -> Result<(), NsmError>;
    /// The current value of PCR `index`.
    fn describe_pcr(&self, index: u16) -> Result<Vec<u8>, NsmError>;
    /// True for the development module, whose documents prove nothing.
    fn is_simulated(&self) -> bool;
    /// The module's id as its documents carry it (`simulated-...` for the simulated one).
    fn module_id(&self) -> String;
}

/// Longest `user_data`, `nonce` and `public_key` the device accepts (AWS: 1024 bytes each).
pub(crate) const MAX_FIELD_BYTES: usize = 1024;

/// Picks the NSM for this start: the simulated one when asked (with a WARN line), otherwise
/// the device, refusing to start without it.
pub(crate) fn select(simulated: bool) -> anyhow::Result<Arc<dyn Nsm>> {
    if simulated {
        let nsm = simulated::SimulatedNsm::new()
            .map_err(|e| anyhow::anyhow!("cannot start the simulated NSM: {e}"))?;
        tracing::warn!(
            module_id = %nsm.module_id(),
            "SIMULATED NSM: development mode; attestation documents are signed by a throw-away \
             root generated at start, prove nothing, and this enclave must not hold production state"
        );
        return Ok(Arc::new(nsm));
    }
    match real::DeviceNsm::open() {
        Ok(nsm) => {
            // PCR0 (the image measurement) in the log lets an operator match it with the build.
            let pcr0 = nsm
                .describe_pcr(0)
                .map_or_else(|e| e.to_string(), hex::encode);
            tracing::info!(module_id = %nsm.module_id(), pcr0 = %pcr0, "Nitro Secure Module opened");
            Ok(Arc::new(nsm))
        }
        Err(e) => anyhow::bail!(
            "no NSM available ({e}): production mode needs the Nitro NSM device (/dev/nsm); \
             pass --simulated-nsm for development"
        ),
    }
}

/// A P-384 key from NSM randomness: 48 random bytes as the scalar, drawn again when they are
/// not a valid scalar (zero or ≥ the group order, odds about 2^-190 per draw).
pub(crate) fn p384_key(nsm: &dyn Nsm) -> Result<p384::ecdsa::SigningKey, NsmError> {
    for _ in 0..16 {
        let mut scalar = [0u8; 48];
        nsm.random(&mut scalar)?;
        if let Ok(key) = p384::ecdsa::SigningKey::from_slice(&scalar) {
            return Ok(key);
        }
    }
    Err(NsmError::Device(
        "16 draws of random bytes were all invalid P-384 scalars".into(),
    ))
}

/// A 32-byte seed from the NSM (core's request ids and token nonces).
pub(crate) fn random_seed(nsm: &dyn Nsm) -> anyhow::Result<[u8; 32]> {
    let mut seed = [0u8; 32];
    nsm.random(&mut seed)
        .map_err(|e| anyhow::anyhow!("no randomness available: {e}"))?;
    Ok(seed)
}
