//! loom models of the structures in `nautilus-core` that are shared across threads. Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p nautilus-loom-tests --release` (see `.ci/run`).
