//! loom models live in `tests/`; run them with `RUSTFLAGS="--cfg loom" cargo test -p nautilus-loom-tests --release`.
