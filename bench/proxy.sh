#!/usr/bin/env bash
# The built-in proxy's overhead: wrk against a replica directly and through
# `launchway proxy`, in one run. The replica is nginx answering a fixed
# body (so the proxy, not the replica, is what is measured).
# Needs wrk and nginx (Debian packages `wrk`, `nginx`).
# Usage: bench/proxy.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "install wrk (apt-get install wrk)" >&2; exit 1; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || { echo "install nginx (apt-get install nginx)" >&2; exit 1; }
cargo build --release -q -p launchway
LW="$PWD/target/release/launchway"
WORK=$(mktemp -d)
cleanup() { kill "$PROXY" 2>/dev/null || true; "$NGINX" -p "$WORK" -c nginx.conf -s stop 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
mkdir -p "$WORK/logs"
cat > "$WORK/nginx.conf" <<EOF
worker_processes 1;
error_log $WORK/logs/error.log;
pid $WORK/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  server {
    listen 127.0.0.1:18181;
    location / { return 200 '{"prediction": 0.12}'; }
  }
  # The peer: nginx itself as the reverse proxy in front of the same replica.
  upstream replica { server 127.0.0.1:18181; keepalive 64; }
  server {
    listen 127.0.0.1:18183;
    location / { proxy_pass http://replica; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
EOF
"$NGINX" -p "$WORK" -c nginx.conf
"$LW" proxy --listen 127.0.0.1:18182 --backend 127.0.0.1:18181 2> "$WORK/proxy.log" &
PROXY=$!
sleep 0.5
run() { wrk -t2 -c32 -d10s --latency "$1" | awk '/Requests\/sec/ {rps=$2} /^ +99%/ {p99=$2} END {print rps, p99}'; }
# Latency at a steady ~2,000 req/s (4 connections, 2 ms apart), below saturation.
echo 'function delay() return 2 end' > "$WORK/paced.lua"
paced() { wrk -t1 -c4 -d10s --latency -s "$WORK/paced.lua" "$1" | awk '/Requests\/sec/ {rps=$2} /^ +99%/ {p99=$2} END {print rps, p99}'; }
read -r d_rps d_p99 < <(run http://127.0.0.1:18181/predict)
read -r p_rps p_p99 < <(run http://127.0.0.1:18182/predict)
read -r n_rps n_p99 < <(run http://127.0.0.1:18183/predict)
report() {
python3 - "$@" <<'PY'
import re, sys
def ms(s):
    n, u = re.match(r"([\d.]+)(\w+)", s).groups()
    return float(n) * {"us": 0.001, "ms": 1, "s": 1000}[u]
label, d, dp, p, pp = sys.argv[1], float(sys.argv[2]), sys.argv[3], float(sys.argv[4]), sys.argv[5]
print(f"{label}: {p:.0f} req/s = {p / d:.0%} of direct ({d:.0f}); p99 {pp} vs {dp} (+{ms(pp) - ms(dp):.2f} ms)")
PY
}
echo "== replica: nginx fixed response (measures the proxy itself; 2 cores shared by wrk, replica and proxy)"
report "launchway proxy" "$d_rps" "$d_p99" "$p_rps" "$p_p99"
report "nginx as proxy " "$d_rps" "$d_p99" "$n_rps" "$n_p99"
echo "== latency at ~2,000 req/s (not saturated)"
read -r d_rps d_p99 < <(paced http://127.0.0.1:18181/predict)
read -r p_rps p_p99 < <(paced http://127.0.0.1:18182/predict)
read -r n_rps n_p99 < <(paced http://127.0.0.1:18183/predict)
report "launchway proxy" "$d_rps" "$d_p99" "$p_rps" "$p_p99"
report "nginx as proxy " "$d_rps" "$d_p99" "$n_rps" "$n_p99"

echo "== replica: a Python HTTP service (what the proxy fronts in practice)"
mkdir -p "$WORK/site" && echo '{"prediction": 0.12}' > "$WORK/site/predict"
python3 -m http.server 18184 --bind 127.0.0.1 --directory "$WORK/site" 2>/dev/null &
PY_SERVER=$!
"$LW" proxy --listen 127.0.0.1:18185 --backend 127.0.0.1:18184 2>> "$WORK/proxy.log" &
PROXY2=$!
trap 'kill $PY_SERVER $PROXY2 2>/dev/null || true; cleanup' EXIT
sleep 0.5
read -r d_rps d_p99 < <(run http://127.0.0.1:18184/predict)
read -r p_rps p_p99 < <(run http://127.0.0.1:18185/predict)
report "launchway proxy (saturated)" "$d_rps" "$d_p99" "$p_rps" "$p_p99"
read -r d_rps d_p99 < <(paced http://127.0.0.1:18184/predict)
read -r p_rps p_p99 < <(paced http://127.0.0.1:18185/predict)
report "launchway proxy (~2,000 req/s offered)" "$d_rps" "$d_p99" "$p_rps" "$p_p99"
echo "(targets: >= 90% of direct throughput, <= +1 ms p99)"
