//! The cluster's write path and its record: every change of cluster state is one [`Change`]
//! produced by the [`writer`], and applying a change is one function, live and on replay.

pub mod change;
pub(crate) mod object;
pub(crate) mod writer;

pub use change::{Change, ChangeKind, Origin};
pub(crate) use writer::WriteContext;

#[cfg(test)]
mod replay_tests;
