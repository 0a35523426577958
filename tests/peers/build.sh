#!/usr/bin/env bash
# Builds the real Kubernetes peers (kube-apiserver, kube-scheduler, kube-controller-manager,
# kubemark, kwok, etcd, the e2e conformance binary e2e.test and the ginkgo runner that runs it in
# parallel) from the Go modules pinned in tests/peers/go.mod and
# tests/peers/kwok/go.mod into target/peers/ (or $NAUTILUS_PEERS_DIR).
#
#   tests/peers/build.sh                          # every peer
#   tests/peers/build.sh kube-apiserver etcd      # only these
#
# A peer already built from the same go.mod, go.sum, Go toolchain and recipe is skipped (a stamp
# file beside it records what it was built from). Each build prints how long it took.
set -euo pipefail

peers=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$peers/../.." && pwd)
out=${NAUTILUS_PEERS_DIR:-$repo/target/peers}
all=(kube-apiserver kube-scheduler kube-controller-manager kubemark kwok etcd e2e.test ginkgo standin-kubelet)

# name -> "module-dir|package|how" (how: build = go build, test = go test -c)
recipe() {
  case "$1" in
    kube-apiserver) echo ".|k8s.io/kubernetes/cmd/kube-apiserver|build" ;;
    kube-scheduler) echo ".|k8s.io/kubernetes/cmd/kube-scheduler|build" ;;
    kube-controller-manager) echo ".|k8s.io/kubernetes/cmd/kube-controller-manager|build" ;;
    kubemark) echo ".|k8s.io/kubernetes/cmd/kubemark|build" ;;
    etcd) echo ".|go.etcd.io/etcd/server/v3|build" ;;
    e2e.test) echo ".|k8s.io/kubernetes/test/e2e|test" ;;
    ginkgo) echo ".|github.com/onsi/ginkgo/v2/ginkgo|build" ;;
    kwok) echo "kwok|sigs.k8s.io/kwok/cmd/kwok|build" ;;
    standin-kubelet) echo ".|nautilus.test/peers/standin-kubelet|build" ;;
    *) return 1 ;;
  esac
}

if [ $# -eq 0 ]; then
  set -- "${all[@]}"
fi
for name in "$@"; do
  recipe "$name" >/dev/null || {
    echo "build.sh: unknown peer '$name' (known: ${all[*]})" >&2
    exit 2
  }
done

command -v go >/dev/null || {
  echo "build.sh: Go is not on the PATH (the peers are built from Go modules)" >&2
  exit 1
}

# The module's go.mod decides the language version; never download another toolchain.
export GOTOOLCHAIN=local
export CGO_ENABLED=0
mkdir -p "$out/.stamps"
out=$(cd "$out" && pwd)

# What `kube-apiserver --version` and /version report, as the upstream release build sets it
# (hack/lib/version.sh): without it they say v0.0.0-master and kubectl cannot pick its version.
kube_ldflags() {
  local version major minor flags="-s -w" pkg
  version=$(cd "$peers" && go list -m -f '{{.Version}}' k8s.io/kubernetes)
  major=${version#v}
  major=${major%%.*}
  minor=${version#v*.}
  minor=${minor%%.*}
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  echo "$flags"
}

build_one() {
  local name=$1 dir pkg how module ldflags stamp want start took
  IFS='|' read -r dir pkg how <<<"$(recipe "$name")"
  module="$peers/$dir"
  ldflags="-s -w"
  case "$pkg" in
    k8s.io/kubernetes/*) ldflags=$(kube_ldflags) ;;
  esac
  stamp="$out/.stamps/$name"
  want=$(
    {
      cat "$module/go.mod" "$module/go.sum"
      # A peer of this module (the stand-in kubelet) is rebuilt when its source changes.
      case "$pkg" in
        nautilus.test/peers/*) cat "$module/${pkg#nautilus.test/peers/}"/*.go ;;
      esac
      go version
      echo "$pkg $how CGO_ENABLED=$CGO_ENABLED -trimpath $ldflags"
    } | sha256sum | cut -d' ' -f1
  )
  if [ -x "$out/$name" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    echo "$name: up to date ($out/$name)"
    return
  fi
  echo "$name: building $pkg ..."
  start=$(date +%s)
  rm -f "$stamp"
  (
    cd "$module"
    if [ "$how" = test ]; then
      go test -c -trimpath -ldflags "$ldflags" -o "$out/$name" "$pkg"
    else
      go build -trimpath -ldflags "$ldflags" -o "$out/$name" "$pkg"
    fi
  )
  echo "$want" >"$stamp"
  took=$(($(date +%s) - start))
  echo "$name: built in ${took}s ($out/$name)"
}

for name in "$@"; do
  build_one "$name"
done
