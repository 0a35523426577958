#!/usr/bin/env bash
# Installs what the test run needs besides Rust, only what is missing: a C linker, kubectl 1.32,
# Go 1.24 or later (the generated-files check and the real Kubernetes peers are built from
# pinned Go modules), the Python `kubernetes` client and `moto[server]` (a local AWS KMS API), Node.js (18 or later) with npm and the Sui
# TypeScript SDK (tests/sui), promtool, and the small tools the tests call (file, openssl,
# pgrep), and cargo-fuzz when a nightly toolchain is there. With everything present it only checks, in about a second. tests/run-all.sh runs it
# first (and .ci/run runs that).
#
# System packages come from apt-get (as root, or through sudo). kubectl, Go and, when the system
# Python refuses pip installs, a virtualenv with the client go under target/tools, which
# tests/run-all.sh puts first on PATH; downloads are checked against their published sha256.
# `--dry-run` prints what would be installed and installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

KUBECTL_VERSION=v1.32.4
GO_VERSION=1.26.8
tools="$PWD/target/tools"
export PATH="$tools/bin:$tools/go/bin:$PATH"
[ -d "$tools/venv" ] && export PATH="$tools/venv/bin:$PATH"
dry_run=0
[ "${1:-}" = "--dry-run" ] && dry_run=1

have() { command -v "$1" >/dev/null 2>&1; }
note() { echo "install-deps: $*"; }
planned=0
plan() { planned=1; note "would $*"; }
fail() { echo "install-deps: $*" >&2; exit 1; }

have cargo || fail "cargo is missing: install Rust with rustup (https://rustup.rs); rust-toolchain.toml picks the version"

# Debian/Ubuntu packages for the commands that are missing.
packages=()
have cc || packages+=(build-essential)
# Python: the client goes into the system Python when its pip takes it, else into a virtualenv
# under target/tools, which needs `venv` with `ensurepip` (Debian's python3-venv; Debian's own
# Python has neither pip nor ensurepip, and marks itself externally managed).
client=0
have python3 && python3 -c 'import kubernetes' 2>/dev/null && client=1
client_ok() { [ "$client" = 1 ]; }
system_pip_ok() {
  python3 -m pip --version >/dev/null 2>&1 &&
    python3 -c 'import os, sys, sysconfig
sys.exit(os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")))' 2>/dev/null
}
if ! have python3; then
  packages+=(python3 python3-venv)
elif ! client_ok && [ ! -x "$tools/venv/bin/pip" ] && ! system_pip_ok \
  && ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
  packages+=(python3-venv)
fi
have file || packages+=(file)
have openssl || packages+=(openssl)
have pgrep || packages+=(procps)
have promtool || packages+=(prometheus)
have node || packages+=(nodejs)
have npm || packages+=(npm)
kubectl_ok() {
  have kubectl || return 1
  local version
  version="$(kubectl version --client 2>/dev/null || true)"
  [[ "$version" == *"Client Version: v1.32."* ]]
}
go_ok() {
  have go || return 1
  local version
  version="$(go env GOVERSION 2>/dev/null || true)"
  version="${version#go}"
  [ "${version%%.*}" = 1 ] || return 1
  version="${version#1.}"
  [ "${version%%.*}" -ge 24 ] 2>/dev/null
}
{ kubectl_ok && go_ok; } || have curl || packages+=(curl ca-certificates)

apt_install() {
  if [ "$dry_run" = 1 ]; then
    plan "apt-get install $*"
    return
  fi
  have apt-get || fail "missing: $* (no apt-get here: install them with your package manager)"
  local sudo=()
  if [ "$(id -u)" != 0 ]; then
    have sudo || fail "missing: $* (run as root, or install sudo)"
    sudo=(sudo)
  fi
  note "apt-get install $*"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}
[ ${#packages[@]} -eq 0 ] || apt_install "${packages[@]}"

# kubectl 1.32 (the version the tests speak to), checked against its published digest.
if ! kubectl_ok; then
  os="$(uname -s | tr '[:upper:]' '[:lower:]')"
  case "$(uname -m)" in
    x86_64 | amd64) arch=amd64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) fail "no kubectl build for $(uname -m): install kubectl ${KUBECTL_VERSION} on the PATH" ;;
  esac
  url="https://dl.k8s.io/release/${KUBECTL_VERSION}/bin/${os}/${arch}/kubectl"
  if [ "$dry_run" = 1 ]; then
    plan "download kubectl ${KUBECTL_VERSION} into $tools/bin"
  else
    note "kubectl ${KUBECTL_VERSION} from $url"
    mkdir -p "$tools/bin"
    curl -fsSL -o "$tools/bin/kubectl.part" "$url"
    echo "$(curl -fsSL "$url.sha256")  $tools/bin/kubectl.part" | sha256sum --check --quiet
    chmod +x "$tools/bin/kubectl.part"
    mv "$tools/bin/kubectl.part" "$tools/bin/kubectl"
  fi
fi

# Go, the official build, when none of 1.24 or later is on the PATH.
if ! go_ok; then
  os="$(uname -s | tr '[:upper:]' '[:lower:]')"
  case "$(uname -m)" in
    x86_64 | amd64) arch=amd64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) fail "no Go build for $(uname -m): install Go 1.24 or later on the PATH" ;;
  esac
  url="https://dl.google.com/go/go${GO_VERSION}.${os}-${arch}.tar.gz"
  if [ "$dry_run" = 1 ]; then
    plan "download Go ${GO_VERSION} into $tools/go"
  else
    note "Go ${GO_VERSION} from $url"
    mkdir -p "$tools"
    curl -fsSL -o "$tools/go.tar.gz" "$url"
    echo "$(curl -fsSL "$url.sha256")  $tools/go.tar.gz" | sha256sum --check --quiet
    rm -rf "$tools/go"
    tar -xzf "$tools/go.tar.gz" -C "$tools"
    rm "$tools/go.tar.gz"
  fi
fi

# The official Python client: into the system Python if its pip takes it, else a virtualenv.
if ! client_ok; then
  if [ "$dry_run" = 1 ]; then
    plan "pip install kubernetes"
  elif [ ! -x "$tools/venv/bin/pip" ] && system_pip_ok && python3 -m pip install --quiet kubernetes; then
    :
  else
    note "pip install kubernetes into $tools/venv"
    [ -x "$tools/venv/bin/pip" ] || python3 -m venv "$tools/venv" \
      || fail "python3 -m venv failed: install python3-venv"
    "$tools/venv/bin/pip" install --quiet kubernetes
  fi
fi

# moto (its KMS API server, `moto_server`) for the enclave's KMS client test, beside the client.
if ! python3 -c 'import moto.kms, boto3' 2>/dev/null && ! { [ -x "$tools/venv/bin/moto_server" ]; }; then
  if [ "$dry_run" = 1 ]; then
    plan "pip install 'moto[server]'"
  elif [ ! -x "$tools/venv/bin/pip" ] && system_pip_ok && python3 -m pip install --quiet 'moto[server]'; then
    :
  else
    note "pip install 'moto[server]' into $tools/venv"
    [ -x "$tools/venv/bin/pip" ] || python3 -m venv "$tools/venv" \
      || fail "python3 -m venv failed: install python3-venv"
    "$tools/venv/bin/pip" install --quiet 'moto[server]'
  fi
fi

# Node.js 18 or later for the Sui SDK, and the SDK at the version tests/sui/package.json pins.
if have node; then
  major="$(node -p 'process.versions.node.split(".")[0]')"
  [ "$major" -ge 18 ] || fail "Node.js $(node --version) is too old for the Sui SDK: install Node.js 18 or later"
  sdk_current() {
    node -e '
      const want = require("./tests/sui/package.json").dependencies["@mysten/sui"];
      const got = require("./tests/sui/node_modules/@mysten/sui/package.json").version;
      process.exit(got === want ? 0 : 1);' 2>/dev/null
  }
  if ! sdk_current; then
    if [ "$dry_run" = 1 ]; then
      plan "npm ci --prefix tests/sui"
    else
      note "npm ci --prefix tests/sui"
      npm ci --prefix tests/sui --no-audit --no-fund --loglevel=error
    fi
  fi
elif [ "$dry_run" = 1 ]; then
  plan "npm ci --prefix tests/sui"
fi

# cargo-fuzz for the short fuzz run (core/fuzz/run.sh), only where a nightly toolchain is
# installed: libFuzzer's instrumentation needs nightly, and without it run-all.sh skips the run.
if cargo +nightly --version >/dev/null 2>&1 && ! cargo fuzz --version >/dev/null 2>&1; then
  if [ "$dry_run" = 1 ]; then
    plan "cargo install --locked cargo-fuzz"
  else
    note "cargo install --locked cargo-fuzz"
    cargo install --locked cargo-fuzz
  fi
fi

if [ "$dry_run" = 0 ]; then
  note "all test dependencies present"
elif [ "$planned" = 0 ]; then
  note "nothing to install"
fi
