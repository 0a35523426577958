//! The Nitro Secure Module boundary. This issue wires only the simulated module's identity and
//! randomness; attestation documents arrive with the attestation work.

/// Which NSM the enclave runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NsmKind {
    /// Development: no hardware, nothing is attested. Said in logs and in `/readyz` detail.
    Simulated,
}

impl NsmKind {
    /// Picks the NSM for this start, refusing production without a real device.
    pub(crate) fn select(simulated: bool) -> anyhow::Result<Self> {
        if simulated {
            tracing::warn!(
                "SIMULATED NSM: development mode; this enclave is not attested and must not hold production state"
            );
            return Ok(Self::Simulated);
        }
        anyhow::bail!(
            "no NSM available: production mode needs the Nitro NSM device (/dev/nsm) and attestation support; \
             pass --simulated-nsm for development"
        )
    }

    /// Fresh random bytes (the simulated NSM uses the OS generator).
    pub(crate) fn random_seed(self) -> anyhow::Result<[u8; 32]> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no randomness available: {e}"))?;
        Ok(seed)
    }
}
