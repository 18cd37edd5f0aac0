#!/usr/bin/env bash
# Jobs that mostly wait (issue 16, item 13): one run of 62 jobs that each
# sleep 0.3 s (as jobs waiting on the network or a service do), with
# `--jobs <cores>` (the old default) and with the default (64, CPU-aware:
# past the cores a job starts only while the CPUs are not all busy); and
# the same with 16 CPU-bound jobs, where the default must not be slower.
# Usage: bench/parallel.sh   (builds the release binary)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p launchway
LW="$PWD/target/release/launchway"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
CORES=$(nproc)
mk() { # name jobs step
  local repo="$WORK/$1"
  mkdir -p "$repo/.github/workflows"
  python3 - "$repo/.github/workflows/w.yml" "$2" "$3" <<'PY'
import sys
path, n, step = sys.argv[1], int(sys.argv[2]), sys.argv[3]
jobs = "".join(f"  j{i}:\n    runs-on: ubuntu-latest\n    steps:\n      - run: {step}\n" for i in range(n))
open(path, "w").write("on: push\njobs:\n" + jobs)
PY
  git -C "$repo" init -q -b main && git -C "$repo" add -A
  git -C "$repo" -c user.name=b -c user.email=b@l commit -qm w
}
mk waiting 62 "sleep 0.3"
mk cpu 16 "python3 -c 'sum(i*i for i in range(3_000_000))'"
t() { # seconds for one run
  python3 - "$@" <<'PY'
import subprocess, sys, time
t = time.perf_counter()
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
print(f"{time.perf_counter() - t:.2f}")
PY
}
for name in waiting cpu; do
  old=$(LAUNCHWAY_HOME="$WORK/h1" t "$LW" run -C "$WORK/$name" --jobs "$CORES")
  new=$(LAUNCHWAY_HOME="$WORK/h2" t "$LW" run -C "$WORK/$name")
  echo "$name: --jobs $CORES ${old}s | default ${new}s | $(python3 -c "print(f'{$old / $new:.1f}')")x"
done
