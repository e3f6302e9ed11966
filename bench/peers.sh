#!/usr/bin/env bash
# ballast beside the proxies users would put in front of an LLM upstream instead — haproxy, nginx and
# LiteLLM's proxy — all in front of the same `ballast sim`, measured in one run:
#   1. throughput: requests/s and p50/p99 of a small non-streamed chat completion (16 tokens), wrk -t2
#      -c64 as bench/throughput.sh runs it, and each proxy's resident memory after it;
#   2. added latency: p50/p99 through each proxy minus the sim reached directly, in an open loop (Poisson
#      arrivals, `ballast load --rate`) at one rate that every proxy sustains (by default a third of the
#      slowest one's requests/s in 1, at most 200/s);
#   3. overload: bench/overload.mjs's scenario (200 calls from the OpenAI Node SDK, timeout 10 s, against a
#      sim that serves 8 at a time) directly, through ballast (max_in_flight 8), haproxy (maxconn 8),
#      nginx (no limit: it has no upstream queue), LiteLLM (max_parallel_requests, 8 in all) and LiteLLM
#      with no limit.
# Then ballast's ratio to each peer. Not a test: figures depend on the machine; compare the ratios.
# Everything runs on 127.0.0.1 and is started and stopped by PID, here or by overload.mjs.
#   bench/peers.sh [SECONDS] [RATE]
# SECONDS: each wrk run (10). RATE: the open-loop rate, requests/s (default: see 2).
# Env: PEERS_LOAD_SECONDS (each open-loop run; twice SECONDS), PEERS_CONNECTIONS (wrk's, 64),
#      SCENARIOS and SHAPES (overload.mjs's; abcefg and burst here), LITELLM_WORKERS and LITELLM_SERVER
#      (bench/litellm/serve.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10}
rate=${2:-}
# p99 wants a few hundred samples at a rate the slowest proxy sustains.
load_duration=${PEERS_LOAD_SECONDS:-$((duration * 2))}
connections=${PEERS_CONNECTIONS:-64}
bin=build/ballast
for tool in wrk haproxy nginx node curl "$bin" bench/out/litellm-venv/bin/litellm; do
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
trap 'exit 130' INT TERM

# shellcheck source=bench/lib.sh
source bench/lib.sh
# PID and every process under it.
tree() {
  local p
  echo "$1"
  for p in $(pgrep -P "$1" 2>/dev/null); do tree "$p"; done
}
# Resident memory of PID and everything under it, in MB.
rss_mb() {
  ps -o rss= -p "$(tree "$1" | paste -sd,)" | awk '{s += $1} END {printf "%.0f", s / 1024}'
}

sim_port=$(free_port); ballast_port=$(free_port); haproxy_port=$(free_port); nginx_port=$(free_port)
litellm_port=$(free_port)

"$bin" sim --listen 127.0.0.1:"$sim_port" --tokens 16 2>"$work/sim.log" & pids+=($!)
wait_port "$sim_port"

cat >"$work/ballast.yaml" <<YAML
listen: 127.0.0.1:$ballast_port
log: {access: off}
models:
  - name: m
    endpoints: [{base_url: "http://127.0.0.1:$sim_port/v1"}]
YAML
"$bin" serve --config "$work/ballast.yaml" >/dev/null 2>"$work/ballast.log" & pids+=($!); ballast_pid=$!
wait_port "$ballast_port"

start_haproxy "$haproxy_port" "$sim_port"; haproxy_pid=$started_pid

start_nginx "$nginx_port" "$sim_port"; nginx_pid=$started_pid

echo "starting LiteLLM's proxy $(bench/out/litellm-venv/bin/python -c 'import importlib.metadata as m; print(m.version("litellm"))')" \
  "(${LITELLM_WORKERS:-2} ${LITELLM_SERVER:-uvicorn} workers, no database, access log off; bench/litellm/serve.sh)"
bench/litellm/serve.sh "$litellm_port" "http://127.0.0.1:$sim_port/v1" >"$work/litellm.out" 2>"$work/litellm.log" &
pids+=($!); litellm_pid=$!
started=$SECONDS
until grep -q '^ready' "$work/litellm.out"; do
  kill -0 "$litellm_pid" 2>/dev/null || { echo "LiteLLM did not start:" >&2; tail -20 "$work/litellm.log" >&2; exit 1; }
  sleep 0.5
done
echo "LiteLLM ready after $((SECONDS - started)) s"
litellm_tree=$(tree "$litellm_pid" | sort | paste -sd' ')

targets=(direct:"$sim_port" ballast:"$ballast_port" haproxy:"$haproxy_port" nginx:"$nginx_port" litellm:"$litellm_port")
peers=(haproxy nginx litellm)
declare -A proc=([ballast]=$ballast_pid [haproxy]=$haproxy_pid [nginx]=$nginx_pid [litellm]=$litellm_pid)
# One warm-up request through each, so that no first connection or lazy import lands in the figures.
for target in "${targets[@]}"; do
  curl -sf -o /dev/null -H 'content-type: application/json' -H 'authorization: Bearer sk-bench' \
    -d '{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":16}' \
    "http://127.0.0.1:${target##*:}/v1/chat/completions" || { echo "no answer through ${target%%:*}" >&2; exit 1; }
done

# --- 1. throughput ------------------------------------------------------------------------------------
# wrk's --latency output → "rps p50_ms p99_ms non2xx socket_errors"
wrk_measure() {
  wrk -t2 -c"$connections" -d"${duration}s" --latency -s bench/post.lua \
    "http://127.0.0.1:$1/v1/chat/completions" >"$work/wrk-$1.txt"
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
sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
print(f"{rps:.0f} {p50:.2f} {p99:.2f} {int(errors.group(1)) if errors else 0} {sum(map(int, sock.groups())) if sock else 0}")
PY
}

echo
echo "== 1. throughput: wrk -t2 -c$connections -d${duration}s, POST /v1/chat/completions (16 tokens), all on 127.0.0.1 sharing $(nproc) cores"
printf "%-8s %8s %9s %9s %8s %13s %8s\n" target "req/s" "p50 ms" "p99 ms" non-2xx "socket errors" "RSS MB"
declare -A rps
for target in "${targets[@]}"; do
  name=${target%%:*}; port=${target##*:}
  read -r r p50 p99 errs sock < <(wrk_measure "$port")
  rps[$name]=$r
  rss=-
  [ "$name" = direct ] || rss=$(rss_mb "${proc[$name]}")
  printf "%-8s %8s %9s %9s %8s %13s %8s\n" "$name" "$r" "$p50" "$p99" "$errs" "$sock" "$rss"
  echo "$name $r" >>"$work/throughput.txt"
done
echo "(wrk gives up on a request after 2 s and counts it as a socket timeout, not in the percentiles. RSS: after the run, all processes of the proxy.)"

# --- 2. added latency at a fixed open-loop rate -------------------------------------------------------
if [ -z "$rate" ]; then
  slowest=$(for peer in ballast "${peers[@]}"; do echo "${rps[$peer]}"; done | sort -n | head -1)
  rate=$(( slowest / 3 > 200 ? 200 : (slowest / 3 < 5 ? 5 : slowest / 3) ))
fi
echo
echo "== 2. added latency: ballast load --rate $rate (open loop, Poisson arrivals) for ${load_duration}s each, after 3 s of warm-up, same request"
printf "%-8s %8s %9s %9s %9s %12s %12s\n" target sent ok "p50 ms" "p99 ms" "+p50 ms" "+p99 ms"
for target in "${targets[@]}"; do
  name=${target%%:*}; port=${target##*:}
  for run in warm-up measured; do
    BENCH_API_KEY=sk-bench "$bin" load --target "http://127.0.0.1:$port/v1" --model m --api-key-env BENCH_API_KEY \
      --rate "$rate" --duration "$([ $run = warm-up ] && echo 3 || echo "$load_duration")" --max-tokens 16 \
      --timeout 10 --json "$work/load-$name.json" >"$work/load-$name.txt" 2>&1 ||
      { cat "$work/load-$name.txt" >&2; exit 1; }
  done
  python3 - "$work/load-$name.json" "$name" "$work/latency.txt" <<'PY'
import json, sys
run = json.load(open(sys.argv[1]))["runs"][0]
name, table = sys.argv[2], sys.argv[3]
p50, p99 = run["latency_ms"]["p50"], run["latency_ms"]["p99"]
with open(table, "a+") as f:
    f.seek(0)
    direct = [float(v) for v in f.read().split()[1:3]]  # the first line is direct's
    f.write(f"{name} {p50} {p99}\n")
added = ("-", "-") if name == "direct" else (f"{p50 - direct[0]:.2f}", f"{p99 - direct[1]:.2f}")
print(f"{name:<8} {run['requests']:>8} {run['ok']:>9} {p50:>9.2f} {p99:>9.2f} {added[0]:>12} {added[1]:>12}")
PY
done

[ "$(tree "$litellm_pid" | sort | paste -sd' ')" = "$litellm_tree" ] ||
  echo "LiteLLM's processes changed during phases 1 and 2 (a worker was restarted): $litellm_tree → $(tree "$litellm_pid" | sort | paste -sd' ')"
# Phases 1 and 2 are done with these; overload.mjs starts its own, one scenario at a time.
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
wait 2>/dev/null || true
pids=()
if grep -q . "$work/litellm.log"; then
  echo "LiteLLM's log (errors only) during phases 1 and 2: $(grep -c . "$work/litellm.log") lines; the first:"
  head -5 "$work/litellm.log" | cut -c1-200
fi

# --- 3. overload ----------------------------------------------------------------------------------------
echo
echo "== 3. overload: bench/overload.mjs through each proxy"
SCENARIOS=${SCENARIOS:-abcefg} SHAPES=${SHAPES:-burst} OVERLOAD_JSON="$work/overload.json" node bench/overload.mjs

# --- ratios -----------------------------------------------------------------------------------------------
echo
echo "== ballast / peer (throughput: higher favours ballast; latency, timeouts, waste: lower does)"
python3 - "$work/throughput.txt" "$work/latency.txt" "$work/overload.json" <<'PY'
import json, sys
rps = {name: float(v) for name, v in (line.split() for line in open(sys.argv[1]))}
lat = {name: (float(a), float(b)) for name, a, b in (line.split() for line in open(sys.argv[2]))}
overload = json.load(open(sys.argv[3]))

def ratio(a, b):
    return f"{a / b:.2f}" if a >= 0 and b > 0 else "-"
def cell(a, b, unit=""):
    return f"{a:g}{unit} / {b:g}{unit} = {ratio(a, b)}"

# LiteLLM runs twice in the overload: with max_parallel_requests (as haproxy has maxconn) and without.
peers = ["haproxy", "nginx", "litellm", "litellm-unlimited"]
same = {"litellm-unlimited": "litellm"}  # one LiteLLM served phases 1 and 2
print("| ballast / peer | " + " | ".join(peers) + " |")
print("|---|" + "---|" * len(peers))
print("| 1. req/s | " + " | ".join(cell(rps["ballast"], rps[same.get(p, p)]) for p in peers) + " |")
for i, label in enumerate(("2. added p50", "2. added p99")):
    b = round(lat["ballast"][i] - lat["direct"][i], 2)
    cells = [cell(b, round(lat[same.get(p, p)][i] - lat["direct"][i], 2), " ms") for p in peers]
    print(f"| {label} | " + " | ".join(cells) + " |")
by_shape = {}
for r in overload:
    by_shape.setdefault(r["shape"], {})[r["proxy"]] = r
for shape, rows in by_shape.items():
    if "ballast" not in rows:
        continue
    b = rows["ballast"]
    for key, label in (("ok", "succeeded"), ("timeouts", "client timeouts"), ("unread", "unread answers")):
        cells = ["-" if p not in rows else cell(b[key], rows[p][key]) for p in peers]
        print(f"| 3. {shape}: {label} | " + " | ".join(cells) + " |")
PY
