#!/usr/bin/env bash
# Runs Kubernetes' own conformance tests (e2e.test of k8s.io/kubernetes v1.32, built with the
# ginkgo runner by tests/peers/build.sh) against `nautilus-proxy dev`, or against a real control
# plane (etcd + kube-apiserver + kube-controller-manager + kube-scheduler, no nodes) to check
# the harness itself, and writes the JUnit report and a summary. Slow: not part of run-all.sh.
#
#   tests/peers/conformance.sh [--against dev|kube] [--set NAME] [--focus REGEX] [--procs N]
#                              [--out DIR] [-- more e2e.test flags]
#
# --focus runs the [Conformance] tests whose names match REGEX instead of a set (e.g.
# --focus 'PodTemplates|CronJob'); the report lands in DIR (default target/conformance/<against>-focus/).
#
# Sets:
#   api-machinery  every [sig-api-machinery] [Conformance] test (the default)
#   apps-node      the [sig-apps]/[sig-node] [Conformance] tests that need no running
#                  container (listed in tests/peers/no-container.txt)
#   apps-node-all  every [sig-apps]/[sig-node] [Conformance] test (to redo that list: the ones
#                  that pass against --against kube, which has no nodes, need no container)
#
# The clusters have no nodes (--num-nodes=0 tells the suite so): a test that needs a running
# container fails on either; the reference run shows which.
#
# The report lands in DIR (default target/conformance/<against>-<set>/): junit_01.xml, e2e.log,
# the cluster's log, and summary.txt (one line per test: PASS/FAIL/SKIP and its name, then the
# counts).
#
# NAUTILUS_PROFILE=debug runs the debug build of nautilus-proxy (no release build; slower per
# request, enough for these tests) instead of the release one.
#
# e2e's BeforeEach waits for the test namespace's `default` ServiceAccount (created by
# kube-controller-manager in kube). Pass `-- --e2e-verify-service-account=false` to run the
# tests on a server that does not create it.
set -euo pipefail

peers=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$peers/../.." && pwd)
against=dev
set_name=api-machinery
focus_only=
procs=8
out=

while [ $# -gt 0 ]; do
  case "$1" in
    --against) against=$2; shift 2 ;;
    --set) set_name=$2; shift 2 ;;
    --focus) focus_only=$2; shift 2 ;;
    --procs) procs=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "conformance.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

# A test name as a regular expression that matches only itself.
quote_re() {
  sed -e 's/[][\\.^$*+?(){}|]/\\&/g'
}

case "$set_name" in
  api-machinery) focus='\[sig-api-machinery\].*\[Conformance\]' ;;
  apps-node-all) focus='\[sig-(apps|node)\].*\[Conformance\]' ;;
  apps-node)
    focus=$(grep -v '^#' "$peers/no-container.txt" | grep . | quote_re | paste -sd'|')
    ;;
  *) echo "conformance.sh: unknown set '$set_name'" >&2; exit 2 ;;
esac
if [ -n "$focus_only" ]; then
  focus="(${focus_only}).*\[Conformance\]"
  set_name=focus
fi
case "$against" in
  dev | kube) ;;
  *) echo "conformance.sh: --against is dev or kube" >&2; exit 2 ;;
esac

out=${out:-$repo/target/conformance/$against-$set_name}
mkdir -p "$out"
out=$(cd "$out" && pwd)
rm -f "$out"/junit_*.xml "$out/summary.txt"
bin=${NAUTILUS_PEERS_DIR:-$repo/target/peers}

peer_names=(e2e.test ginkgo)
if [ "$against" = kube ]; then
  peer_names+=(etcd kube-apiserver kube-controller-manager kube-scheduler)
fi
bash "$peers/build.sh" "${peer_names[@]}"

cluster_pid=
data=$(mktemp -d)
cleanup() {
  if [ -n "$cluster_pid" ] && kill -0 "$cluster_pid" 2>/dev/null; then
    kill -TERM "$cluster_pid"
    wait "$cluster_pid" || true
  fi
  rm -rf "$data"
}
trap cleanup EXIT

cd "$repo"
if [ "$against" = dev ]; then
  profile=${NAUTILUS_PROFILE:-release}
  case "$profile" in
    release) cargo build --release -p nautilus-proxy ;;
    # The test harness's build (tests/src/lib.rs): the same features, so nothing is rebuilt.
    debug) cargo build --workspace --tests --bins ;;
    *) echo "conformance.sh: NAUTILUS_PROFILE is release or debug" >&2; exit 2 ;;
  esac
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "target/$profile/nautilus-proxy" dev --data-dir "$data" --listen "127.0.0.1:$port" \
    >"$out/cluster.log" 2>&1 &
  cluster_pid=$!
  kubeconfig=$data/kubeconfig
else
  cargo build -p nautilus-tests --bin peer_cluster
  kubeconfig=$data/kubeconfig
  target/debug/peer_cluster --kubeconfig "$kubeconfig" >"$out/cluster.log" 2>&1 &
  cluster_pid=$!
fi

for _ in $(seq 1 600); do
  if [ -s "$kubeconfig" ] && kubectl --kubeconfig "$kubeconfig" get --raw /readyz >/dev/null 2>&1; then
    break
  fi
  kill -0 "$cluster_pid" 2>/dev/null || {
    echo "conformance.sh: the cluster exited:" >&2
    cat "$out/cluster.log" >&2
    exit 1
  }
  sleep 0.5
done
kubectl --kubeconfig "$kubeconfig" get --raw /readyz >/dev/null
cp "$kubeconfig" "$out/kubeconfig"

echo "conformance.sh: running $set_name against $against with $procs processes (log: $out/e2e.log)"
start=$(date +%s)
set +e
"$bin/ginkgo" --procs="$procs" --timeout=6h --no-color -v "$bin/e2e.test" -- \
  --kubeconfig="$kubeconfig" \
  --provider=skeleton \
  --num-nodes=0 \
  --report-dir="$out" \
  --disable-log-dump \
  --ginkgo.focus="$focus" \
  "$@" >"$out/e2e.log" 2>&1
status=$?
set -e
echo "conformance.sh: e2e.test exited with $status after $(($(date +%s) - start))s"

# From the JUnit report; from the log (verbose: every spec's name and result) when a parallel
# process died before the report was merged.
python3 - "$out" "$focus" <<'EOF' | tee "$out/summary.txt"
import os, re, sys, xml.etree.ElementTree as ET

out, focus = sys.argv[1], re.compile(sys.argv[2])
results = []
junit = os.path.join(out, "junit_01.xml")
if os.path.exists(junit):
    for case in ET.parse(junit).getroot().iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            state = "FAIL"
        elif case.find("skipped") is not None:
            state = "SKIP"
        else:
            state = "PASS"
        results.append((state, case.get("name", "")))
else:
    print("(no JUnit report: a parallel process died; results read from e2e.log)")
    log = open(os.path.join(out, "e2e.log"), errors="replace").read()
    for m in re.finditer(r"^• (\[[A-Z]+\] )?\[[0-9.]+ seconds\]\n(.*)$", log, re.M):
        verdict = m.group(1) or ""
        state = "PASS" if not verdict else "SKIP" if "SKIPPED" in verdict else "FAIL"
        name = re.sub(r" \[(It|BeforeEach|AfterEach|JustBeforeEach)\]", "", m.group(2))
        results.append((state, name))
counts = {"PASS": 0, "FAIL": 0, "SKIP": 0}
for state, name in results:
    # The report lists every spec of the suite; keep the focused ones, drop setup nodes.
    if not focus.search(name) or name.startswith("[SynchronizedBeforeSuite]"):
        continue
    counts[state] += 1
    print(f"{state} {name}")
print(f"{counts['PASS']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped")
EOF
