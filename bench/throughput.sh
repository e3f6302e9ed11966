#!/usr/bin/env bash
# Requests/s and p50/p99 latency of `ballast sim` reached directly, through ballast, through haproxy
# and through nginx, measured in one run with wrk on 127.0.0.1, and ballast's ratio to each.
# Not a test: figures depend on the machine; compare the ratios. Everything it starts, it stops.
#   bench/throughput.sh [SECONDS] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10}
connections=${2:-64}
bin=build/ballast
for tool in wrk haproxy nginx "$bin"; do
  command -v "$tool" >/dev/null 2>&1 || [ -x "$tool" ] || { echo "missing: $tool (make bench installs it)" >&2; exit 1; }
done

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# shellcheck source=bench/lib.sh
source bench/lib.sh

sim_port=$(free_port); ballast_port=$(free_port); haproxy_port=$(free_port); nginx_port=$(free_port)

"$bin" sim --listen 127.0.0.1:"$sim_port" --tokens 16 2>"$work/sim.log" & pids+=($!)
wait_port "$sim_port"

cat >"$work/ballast.yaml" <<YAML
listen: 127.0.0.1:$ballast_port
log: {access: ${BALLAST_ACCESS_LOG:-off}}
models:
  - name: m
    endpoints: [{base_url: "http://127.0.0.1:$sim_port/v1"}]
YAML
"$bin" serve --config "$work/ballast.yaml" >"$work/ballast.access" 2>"$work/ballast.log" & pids+=($!)
wait_port "$ballast_port"

start_haproxy "$haproxy_port" "$sim_port"

start_nginx "$nginx_port" "$sim_port"

# wrk's --latency output → "rps p50_ms p99_ms errors"
measure() {
  local out
  out=$(wrk -t2 -c"$connections" -d"${duration}s" --latency -s bench/post.lua "http://127.0.0.1:$1/v1/chat/completions")
  echo "$out" >"$work/wrk-$1.txt"
  python3 - "$work/wrk-$1.txt" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
def ms(v):
    n, unit = re.match(r"([\d.]+)(us|ms|s)", v).groups()
    return float(n) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
p50 = ms(re.search(r"^\s+50%\s+(\S+)", text, re.M).group(1))
p99 = ms(re.search(r"^\s+99%\s+(\S+)", text, re.M).group(1))
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
sock = re.search(r"Socket errors: (.*)", text)
print(f"{rps:.0f} {p50:.3f} {p99:.3f} {int(errors.group(1)) if errors else 0} {'yes' if sock else 'no'}")
PY
}

echo "wrk -t2 -c$connections -d${duration}s, POST /v1/chat/completions (16 tokens), everything on 127.0.0.1 sharing $(nproc) cores"
printf "%-10s %10s %10s %10s %8s %s\n" target "req/s" "p50 ms" "p99 ms" non-2xx "socket errors"
declare -A rps
for target in direct:"$sim_port" ballast:"$ballast_port" haproxy:"$haproxy_port" nginx:"$nginx_port"; do
  name=${target%%:*}; port=${target##*:}
  read -r r p50 p99 errs sock < <(measure "$port")
  rps[$name]=$r
  printf "%-10s %10s %10s %10s %8s %s\n" "$name" "$r" "$p50" "$p99" "$errs" "$sock"
done
echo
for peer in haproxy nginx direct; do
  python3 -c "print(f'ballast / $peer: {${rps[ballast]} / ${rps[$peer]}:.2f}')"
done
