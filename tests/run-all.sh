#!/usr/bin/env bash
# Runs every test of the workspace: formatting and lints, the no_std build of core, the loom
# models, `cargo test` (unit tests, the proxy's socket tests, and the end-to-end suites that
# start the real binaries and drive them with the real kubectl and the Python client), then a
# short run of every fuzz target (core/fuzz/run.sh, when nightly and cargo-fuzz are installed).
# First it installs what the tests need and is missing (tests/install-deps.sh), so a fresh
# machine with Rust needs nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== test dependencies"
tests/install-deps.sh
# What install-deps.sh keeps under target/tools (kubectl 1.32, Go, a Python virtualenv) comes
# first.
export PATH="$PWD/target/tools/bin:$PWD/target/tools/go/bin:$PATH"
if [ -d target/tools/venv ]; then
  export PATH="$PWD/target/tools/venv/bin:$PATH"
fi

echo "== fmt and clippy"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

echo "== layering: below the cluster, nothing in core names the API layer"
# Dependencies run one way (store <- admission <- write path <- {api, controllers, scheduler} <-
# cluster): only api/ itself and cluster/, the state machine above it, may name `crate::api`.
if grep -rnE --include='*.rs' '(crate|super)::api\b' core/src | grep -vE '^core/src/(api|cluster)/'; then
  echo "these modules reach up into core's api layer (above); move what they need down" >&2
  exit 1
fi

echo "== generated files match their pinned upstream inputs"
tools/check-generated.sh

echo "== nautilus-core without std"
cargo build -p nautilus-core --no-default-features
if rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-none; then
  RUSTFLAGS='--cfg sha2_backend="soft"' cargo build -p nautilus-core --no-default-features --target x86_64-unknown-none
else
  echo "(x86_64-unknown-none is not installed here; skipped the bare-metal build)"
fi

echo "== loom models"
RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 CARGO_TARGET_DIR=target/loom \
  cargo test --release -p nautilus-loom-tests

echo "== cargo test"
cargo test --workspace

echo "== fuzz targets, 20 s each"
if cargo +nightly --version >/dev/null 2>&1 && cargo fuzz --version >/dev/null 2>&1; then
  core/fuzz/run.sh 20
else
  echo "(skipped: the fuzz run needs a nightly toolchain and cargo-fuzz; install nightly with rustup, and tests/install-deps.sh adds cargo-fuzz)"
fi
