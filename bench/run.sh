#!/usr/bin/env bash
# Launchway benchmarks, side by side with the baseline each target names.
#   bench/run.sh            # build release, run all three, print ratios
# Targets (issue #2): <= 2 ms engine overhead per step; 64 x `sleep 0.2` with
# --jobs 2 within 1.1x of the ideal 6.4 s; lint >= 1,000 workflows/s.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p launchway
LW="$PWD/target/release/launchway"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export LAUNCHWAY_HOME="$WORK/home"
now() { date +%s.%N; }
elapsed() { python3 -c "print(f'{$2 - $1:.3f}')"; }

mkrepo() { # name, workflow text
  mkdir -p "$WORK/$1/.github/workflows"
  printf '%s' "$2" > "$WORK/$1/.github/workflows/bench.yml"
  git -C "$WORK/$1" init -q -b main
  git -C "$WORK/$1" add -A
  git -C "$WORK/$1" -c user.name=b -c user.email=b@b commit -qm bench
}

# 1. Engine overhead: 200 one-line run steps vs the same 200 commands in one bash script.
N=200
wf="on: push
jobs:
  steps:
    runs-on: local
    steps:
"
script=""
for i in $(seq 1 $N); do
  wf+="      - run: echo step $i
"
  script+="echo step $i
"
done
mkrepo overhead "$wf"
printf '%s' "$script" > "$WORK/plain.sh"
"$LW" run -C "$WORK/overhead" --json >/dev/null 2>&1   # warm up
best_lw=999; best_sh=999
for _ in 1 2 3; do
  t0=$(now); "$LW" run -C "$WORK/overhead" --json >/dev/null 2>&1; t1=$(now)
  d=$(elapsed "$t0" "$t1"); best_lw=$(python3 -c "print(min($best_lw, $d))")
  t0=$(now); bash -e "$WORK/plain.sh" >/dev/null; t1=$(now)
  d=$(elapsed "$t0" "$t1"); best_sh=$(python3 -c "print(min($best_sh, $d))")
done
per_step=$(python3 -c "print(f'{($best_lw - $best_sh) / $N * 1000:.2f}')")
echo "overhead: launchway ${best_lw}s, plain bash ${best_sh}s for $N steps -> ${per_step} ms per step (target <= 2 ms)"
# A second baseline: one bash process per command, as any step runner must start.
printf 'echo step\n' > "$WORK/one.sh"
t0=$(now); for _ in $(seq 1 $N); do bash -e "$WORK/one.sh" >/dev/null; done; t1=$(now)
per_bash=$(elapsed "$t0" "$t1")
echo "overhead: $N bash processes take ${per_bash}s -> launchway/bash-per-step = $(python3 -c "print(f'{$best_lw / $per_bash:.2f}')")x"

# 2. Scheduling: 64 independent jobs of sleep 0.2 with --jobs 2; ideal 6.4 s.
wf="on: push
jobs:
"
for i in $(seq 1 64); do
  wf+="  j$i:
    runs-on: local
    steps: [{run: sleep 0.2}]
"
done
mkrepo sched "$wf"
t0=$(now); "$LW" run -C "$WORK/sched" --jobs 2 --json >/dev/null 2>&1; t1=$(now)
d=$(elapsed "$t0" "$t1")
echo "scheduling: 64 x sleep 0.2 on 2 slots in ${d}s -> $(python3 -c "print(f'{$d / 6.4:.3f}')")x ideal (target <= 1.1x)"

# 3. Lint throughput: the conformance workflows and the example, replicated to 1,000 files.
mkdir -p "$WORK/lint"
mapfile -t srcs < <(find crates/launchway/tests/fixtures/conformance examples/churn-service -path '*/.github/workflows/*.yml')
i=0
while [ $i -lt 1000 ]; do
  for s in "${srcs[@]}"; do
    [ $i -ge 1000 ] && break
    cp "$s" "$WORK/lint/wf$i.yml"; i=$((i + 1))
  done
done
t0=$(now); "$LW" lint "$WORK/lint" >/dev/null 2>&1 || true; t1=$(now)
d=$(elapsed "$t0" "$t1")
echo "lint: 1000 workflows in ${d}s -> $(python3 -c "print(f'{1000 / $d:.0f}')") workflows/s (target >= 1000)"
