//! What the enclave runtime and the untrusted host proxy both speak, written once so the two
//! sides cannot drift: the storage channel's frames ([`storage`]).

pub mod storage;
