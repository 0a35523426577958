//! What the enclave runtime and the untrusted host proxy both speak, written once so the two
//! sides cannot drift: the stream preamble ([`preamble`]), the storage channel's frames
//! ([`storage`]), with the `config-file` feature the `--config` file both binaries read
//! ([`config_file`]), with the `kubeconfig` feature the kubeconfig files the proxy's `dev` and
//! `nautilus-verify` write ([`kubeconfig`]) and, with the `kms` feature,
//! KMS's `Recipient` envelope, SigV4 and request shapes ([`kms`]), which the enclave's client and
//! the simulated KMS of `nautilus-proxy dev` share, and with the `sui-key` feature the
//! `suiprivkey1...` keys `nautilus-seal` reads and the tests write ([`sui_key`]).

#[cfg(feature = "config-file")]
pub mod config_file;
#[cfg(feature = "kms")]
pub mod kms;
#[cfg(feature = "kubeconfig")]
pub mod kubeconfig;
pub mod preamble;
pub mod storage;
#[cfg(feature = "sui-key")]
pub mod sui_key;
