//! Deterministic, sans-I/O core of the Nautilus control plane: it never reads a clock, never does
//! I/O and never spawns; time and randomness are passed in by the runtime that drives it.
//!
//! Every growing structure has a budget in [`Config`] and refuses input that would exceed it with
//! a typed [`Error`], leaving state unchanged. No input makes it panic.
#![no_std]
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

extern crate alloc;
#[cfg(any(feature = "std", test, loom))]
extern crate std;

pub(crate) mod admission;
pub mod api;
pub mod attestation;
pub mod auth;
pub(crate) mod authz;
pub(crate) mod cel;
pub mod cluster;
pub mod compaction;
pub mod config;
pub(crate) mod controllers;
pub mod crd;
pub mod cron;
pub mod csr;
pub mod der;
pub mod error;
pub(crate) mod gostr;
pub mod json;
pub mod k3s;
pub mod metatime;
pub mod net;
pub mod packing;
pub mod patch;
pub mod protobuf;
pub mod quantity;
pub(crate) mod quota;
pub mod ratelimit;
pub mod resource;
pub mod scheduler;
pub mod schema;
pub mod selector;
pub mod serviceaccount;
pub mod signed_answer;
pub mod stake;
pub mod store;
pub mod sync;
pub mod time;
pub mod token;
pub mod validation;
pub mod view;
pub mod watch;
pub mod yaml;

/// Entry points for the fuzz targets (`core/fuzz/`) into parsers that are not public API.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::cel::evaluate_for_fuzzing as cel_evaluate;
}

pub use config::Config;
pub use error::Error;
pub use time::UnixTime;
