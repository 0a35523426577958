#!/usr/bin/env bash
# Builds the enclave image file (EIF) for AWS Nitro Enclaves and prints its PCRs.
#
#   enclave-runtime/image/build-eif.sh --config enclave.toml [--out DIR]   # static binary, image, EIF
#   enclave-runtime/image/build-eif.sh --binary-only [--out DIR]           # the static binary only
#
# Steps: a statically linked `nautilus-enclave` (glibc, crt-static: no loader, no shared
# libraries in the enclave), a `FROM scratch` Docker image holding it and the configuration,
# then `nitro-cli build-enclave`, whose JSON output carries PCR0/1/2. The last two steps need a
# Docker engine and nitro-cli (an EC2 instance with Nitro Enclaves enabled).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$root/target/eif"
config=""
binary_only=0
while [ $# -gt 0 ]; do
  case "$1" in
    --config) config="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --binary-only) binary_only=1; shift ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$out"

echo "== static nautilus-enclave"
RUSTFLAGS="-C target-feature=+crt-static" CARGO_TARGET_DIR="$root/target/static" \
  cargo build --release --locked -p nautilus-enclave --target x86_64-unknown-linux-gnu \
  --manifest-path "$root/Cargo.toml"
cp "$root/target/static/x86_64-unknown-linux-gnu/release/nautilus-enclave" "$out/nautilus-enclave"
strip "$out/nautilus-enclave" 2>/dev/null || true
if ! file "$out/nautilus-enclave" | grep -q "static"; then
  echo "error: $out/nautilus-enclave is not statically linked" >&2
  exit 1
fi
sha256sum "$out/nautilus-enclave"
[ "$binary_only" = 1 ] && exit 0

[ -n "$config" ] || { echo "error: --config FILE is required to build the image (see enclave.example.toml)" >&2; exit 2; }
"$out/nautilus-enclave" --config "$config" --print-config >/dev/null
cp "$config" "$out/enclave.toml"
cp "$here/Dockerfile" "$out/Dockerfile"
command -v docker >/dev/null || { echo "error: docker is needed for the image" >&2; exit 1; }
command -v nitro-cli >/dev/null || { echo "error: nitro-cli is needed for the EIF" >&2; exit 1; }

echo "== image"
docker build -t nautilus-enclave:eif "$out"
echo "== EIF"
nitro-cli build-enclave --docker-uri nautilus-enclave:eif --output-file "$out/nautilus-enclave.eif" | tee "$out/measurements.json"
echo "PCRs (pin these in nautilus-verify):"
grep -E '"PCR[0-2]"' "$out/measurements.json"
