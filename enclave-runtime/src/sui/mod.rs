//! The enclave's own Sui reads (ARCHITECTURE.md §4): through the proxy's byte relay, TLS ending
//! in the enclave, protobuf decoded here and plain staking events handed to the core.

mod events;
mod light;
mod node;
mod reader;
mod relay;

pub(crate) use light::{TrustAnchor, parse_trust_anchor};
pub(crate) use reader::{ReaderOptions, spawn};
pub(crate) use relay::{RelayAddr, open as open_relay};
