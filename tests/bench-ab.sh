#!/usr/bin/env bash
# Before/after benchmarks in one run: builds an earlier revision of the project beside this
# checkout, then runs the same `bench` sections (and optionally `worker_sim`) of both builds,
# interleaved round by round so a noisy minute hurts both, and prints each figure of both with
# the ratio. A figure worse by more than 5 % is marked `WORSE`. (A single run on a noisy
# machine decides nothing: look at the rounds.)
#
#   tests/bench-ab.sh REV [--sections get,list,watch,memory] [--rounds N] [--full] [--worker-sim]
#
# REV's checkout and build go under target/ab/ (a detached git worktree and its own target
# directory). The earlier build's `bench` is run with `CARGO=true`, so it uses the binaries
# built here instead of building its own test targets.
set -euo pipefail
cd "$(dirname "$0")/.."

rev=${1:?usage: tests/bench-ab.sh REV [--sections a,b] [--rounds N] [--full] [--worker-sim]}
shift
sections=get,list,watch,memory
rounds=2
size=--quick
worker_sim=0
while [ $# -gt 0 ]; do
  case $1 in
    --sections) sections=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --full) size=--full; shift ;;
    --worker-sim) worker_sim=1; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

root=$PWD
ab=$root/target/ab
src=$ab/before-src
mkdir -p "$ab/logs"
sha=$(git rev-parse --verify "$rev^{commit}")
if [ -d "$src" ]; then
  git -C "$src" checkout --quiet --detach "$sha"
else
  git worktree add --quiet --detach "$src" "$sha"
fi
# The earlier revision may pin a toolchain this machine lacks: build both with this one.
cp rust-toolchain.toml "$src/rust-toolchain.toml"

echo "== building $rev ($sha) and this checkout (release)"
(cd "$src" && CARGO_TARGET_DIR=$ab/before cargo build --quiet --release --workspace --bins)
cargo build --quiet --release --workspace --bins

run_before() { (cd "$src" && CARGO=true CARGO_TARGET_DIR=$ab/before NAUTILUS_PREBUILT=1 "$ab/before/release/$@"); }
run_after() { NAUTILUS_PREBUILT=1 "$root/target/release/$@"; }

for round in $(seq 1 "$rounds"); do
  for section in ${sections//,/ }; do
    echo "== round $round, section $section"
    run_before bench "$size" --only "$section" >"$ab/logs/before-$section-$round.txt" 2>&1 || true
    run_after bench "$size" --only "$section" >"$ab/logs/after-$section-$round.txt" 2>&1 || true
  done
  if [ "$worker_sim" = 1 ]; then
    echo "== round $round, worker_sim --workers 10000 (in memory)"
    # Revisions from before the durable log kept the cluster in memory without being asked.
    before_memory=()
    if grep -q -- '--in-memory' "$src/tests/src/bin/worker_sim.rs"; then before_memory=(--in-memory); fi
    run_before worker_sim --workers 10000 --interval 10 --duration 60 "${before_memory[@]}" >"$ab/logs/before-worker_sim-$round.txt" 2>&1 || true
    run_after worker_sim --workers 10000 --interval 10 --duration 60 --in-memory >"$ab/logs/after-worker_sim-$round.txt" 2>&1 || true
  fi
done

python3 - "$ab/logs" "$rounds" "$sections" "$worker_sim" <<'EOF'
import re, sys, pathlib
logs, rounds, sections, worker_sim = pathlib.Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3].split(','), sys.argv[4] == '1'
names = sections + (['worker_sim'] if worker_sim else [])
number = re.compile(r'(-?[\d,]*\.?\d+)\s*([^\s(,;/]*(?:/s)?)')

def rows(path):
    """A bench table's rows (figure padded to 52 columns, then the value; "ours / raw" pairs count
    ours), or worker_sim's `key: value` lines (`p50 0.3 ms  p99 0.8 ms` give one figure each)."""
    out = {}
    if not path.exists():
        return out
    for line in path.read_text(errors='replace').splitlines():
        if line.startswith(('==', 'figure', 'nautilus bench', 'worker_sim:', '!!', 'clients')):
            continue
        registered = re.search(r'registered in [\d.]+ ms \(([\d.]+)/s\)', line)
        if registered:
            out['registration'] = (float(registered.group(1)), '/s', line.strip())
            continue
        if len(line) > 60 and line[52:53] == ' ' and not line.startswith(' '):
            name, value = line[:52].strip(), line[52:82].strip()
        elif ':' in line and line.startswith('  ') and not line.startswith('   '):
            name, value = (part.strip() for part in line.split(':', 1))
            pairs = re.findall(r'\b(p\d+|max)\s+([\d.]+)\s*(ms|µs|s)\b', value)
            for label, v, unit in pairs:
                out[f'{name} {label}'] = (float(v), unit, value)
            if pairs:
                continue
        else:
            continue
        m = number.search(value)
        if name and m:
            out[name] = (float(m.group(1).replace(',', '')), m.group(2), value)
    return out

SCALE = {'ns': ('ms', 1e-6), 'µs': ('ms', 1e-3), 'us': ('ms', 1e-3), 'ms': ('ms', 1.0), 's': ('ms', 1e3),
         'B': ('MB', 1e-6), 'KB': ('MB', 1e-3), 'KiB': ('MB', 1 / 1024), 'MB': ('MB', 1.0), 'MiB': ('MB', 1.0),
         'GB': ('MB', 1e3)}

def normal(value, unit):
    """The value in ms (times) or MB (sizes), so two runs printed in different units compare."""
    base, factor = SCALE.get(unit, (unit, 1.0))
    return value * factor, base

def higher_is_better(unit, name):
    return '/s' in unit or '/s' in name or 'per second' in name or 'throughput' in name

print(f"\n{'figure':<52} {'before':>16} {'after':>16} {'after/before':>12}")
for section in names:
    print(f"\n== {section}")
    per_round = [(rows(logs / f'before-{section}-{r}.txt'), rows(logs / f'after-{section}-{r}.txt')) for r in range(1, rounds + 1)]
    for name in per_round[0][0]:
        for r, (before, after) in enumerate(per_round, 1):
            if name not in before or name not in after:
                continue
            (b, unit, _), (a, unit_after, _) = before[name], after[name]
            b, unit = normal(b, unit)
            a, _ = normal(a, unit_after)
            ratio = a / b if b else float('nan')
            worse = ratio < 0.95 if higher_is_better(unit, name) else ratio > 1.05
            mark = '  WORSE' if worse and b else ''
            label = name if r == 1 else f'  (round {r})'
            print(f"{label:<52} {b:>12.3f} {unit:<3} {a:>12.3f} {unit:<3} {ratio:>12.3f}{mark}")
EOF
