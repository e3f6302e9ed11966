#!/usr/bin/env bash
# Tiny non-streamed requests: requests/s, p50/p99 latency and the proxy's CPU per request of `ballast sim`
# reached directly, through ballast, through haproxy and through nginx, measured in one run with wrk
# (closed loop) on 127.0.0.1, and ballast's ratio to each. CALLGRIND=1 then counts the user-space instructions per request
# of ballast (one worker) and haproxy (one thread) under valgrind's callgrind: the figure that stays put on a
# noisy machine. Not a test: figures depend on the machine; compare the ratios. Everything it starts, it
# stops by PID; the table is saved in bench/out/.
#   bench/throughput.sh [SECONDS] [CONNECTIONS]   defaults: 10 s, 64 connections
# Then the same request in an open loop at RATE (2,000) a second: latency p50/p99 through each.
# Env: CALLGRIND=1 (also instructions per request), RATE (2000), BALLAST_ACCESS_LOG (off).
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10}
connections=${2:-64}
callgrind=${CALLGRIND:-0}
rate=${RATE:-2000}
bin=${BALLAST_BIN:-build/ballast}
for tool in wrk haproxy nginx pgrep python3; do
  command -v "$tool" >/dev/null 2>&1 || { echo "missing: $tool (make bench installs it)" >&2; exit 1; }
done
[ -x "$bin" ] || { echo "missing: $bin (make build)" >&2; exit 1; }
if [ "$callgrind" = 1 ]; then
  for tool in valgrind callgrind_control; do
    command -v "$tool" >/dev/null 2>&1 || { echo "missing: $tool (apt-get install -y valgrind)" >&2; exit 1; }
  done
fi

# shellcheck source=bench/lib.sh
source bench/lib.sh
bench_scratch

sim_port=$(free_port); ballast_port=$(free_port); haproxy_port=$(free_port); nginx_port=$(free_port)

"$bin" sim --listen 127.0.0.1:"$sim_port" --tokens 16 2>"$work/sim.log" & pids+=($!)
wait_port "$sim_port"

# ballast_config PORT [WORKERS]: ballast's configuration, listening on PORT, with WORKERS workers (0: one per core).
ballast_config() {
  cat <<YAML
listen: 127.0.0.1:$1
log: {access: ${BALLAST_ACCESS_LOG:-off}}
workers: ${2:-0}
models:
  - name: m
    endpoints: [{base_url: "http://127.0.0.1:$sim_port/v1"}]
YAML
}
ballast_config "$ballast_port" >"$work/ballast.yaml"
"$bin" serve --config "$work/ballast.yaml" >"$work/ballast.access" 2>"$work/ballast.log" & ballast_pid=$!
pids+=("$ballast_pid")
wait_port "$ballast_port"

start_haproxy "$haproxy_port" "$sim_port"
haproxy_pid=$started_pid

start_nginx "$nginx_port" "$sim_port"
nginx_pid=$started_pid
for _ in $(seq 100); do pgrep -P "$nginx_pid" >/dev/null && break; sleep 0.05; done

# cpu_ticks PID...: user + system clock ticks of these processes, every thread counted.
cpu_ticks() {
  local p
  for p in "$@"; do sed 's/.*) //' "/proc/$p/stat" 2>/dev/null || true; done | awk '{t += $12 + $13} END {print t + 0}'
}

# wrk_run PORT THREADS CONNECTIONS SECONDS FILE: wrk's --latency output in FILE.
wrk_run() {
  wrk -t"$2" -c"$3" -d"$4s" --latency -s bench/post.lua "http://127.0.0.1:$1/v1/chat/completions" >"$5"
}
# wrk_figures FILE → "rps p50_ms p99_ms non2xx socket_errors requests"
wrk_figures() {
  python3 - "$1" <<'PY'
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
requests = int(re.search(r"(\d+) requests in", text).group(1))
print(f"{rps:.0f} {p50:.3f} {p99:.3f} {int(errors.group(1)) if errors else 0} {'yes' if sock else 'no'} {requests}")
PY
}

hz=$(getconf CLK_TCK)
report=$work/report.txt
{
  echo "wrk -t2 -c$connections -d${duration}s, POST /v1/chat/completions (16 tokens, not streamed), everything on"
  echo "127.0.0.1 sharing $(nproc) cores; CPU: the proxy's user + system time over the run, all its threads and processes"
  printf "%-10s %10s %10s %10s %8s %14s %s\n" target "req/s" "p50 ms" "p99 ms" non-2xx "CPU/request µs" "socket errors"
} | tee "$report"
declare -A rps cpu
for target in direct:"$sim_port" ballast:"$ballast_port" haproxy:"$haproxy_port" nginx:"$nginx_port"; do
  name=${target%%:*}; port=${target##*:}
  procs=()
  case $name in
    ballast) procs=("$ballast_pid") ;;
    haproxy) procs=("$haproxy_pid") ;;
    nginx) read -ra procs < <(echo "$nginx_pid" $(pgrep -P "$nginx_pid")) ;;
  esac
  t0=$(cpu_ticks "${procs[@]}")
  wrk_run "$port" 2 "$connections" "$duration" "$work/wrk-$name.txt"
  t1=$(cpu_ticks "${procs[@]}")
  read -r r p50 p99 errs sock requests < <(wrk_figures "$work/wrk-$name.txt")
  rps[$name]=$r
  per=–
  if [ "$name" != direct ]; then
    per=$(python3 -c "print(f'{($t1 - $t0) / $hz / $requests * 1e6:.1f}')")
    cpu[$name]=$per
  fi
  printf "%-10s %10s %10s %10s %8s %14s %s\n" "$name" "$r" "$p50" "$p99" "$errs" "$per" "$sock" | tee -a "$report"
done
echo | tee -a "$report"
for peer in haproxy nginx; do
  python3 -c "print(f'ballast / $peer: requests/s {${rps[ballast]} / ${rps[$peer]}:.2f}×, CPU per request {${cpu[ballast]} / ${cpu[$peer]}:.2f}×')" |
    tee -a "$report"
done
python3 -c "print(f'ballast / direct: requests/s {${rps[ballast]} / ${rps[direct]}:.2f}×')" | tee -a "$report"

# An open loop: requests sent at RATE a second whatever the answers do, as many independent clients
# would (`ballast load --rate`); latency p50/p99 and errors through each.
{
  echo
  echo "open loop: ballast load --rate $rate --duration $duration, the same request, not streamed"
  printf "%-10s %10s %10s %10s %8s\n" target "sent/s" "p50 ms" "p99 ms" errors
} | tee -a "$report"
declare -A open_p99
for target in direct:"$sim_port" ballast:"$ballast_port" haproxy:"$haproxy_port" nginx:"$nginx_port"; do
  name=${target%%:*}; port=${target##*:}
  "$bin" load --target "http://127.0.0.1:$port/v1" --model m --rate "$rate" --duration "$duration" \
    --json "$work/open-$name.json" >"$work/open-$name.txt" 2>&1 || true
  read -r sent p50 p99 errs < <(python3 - "$work/open-$name.json" <<'PY'
import json, sys
run = json.load(open(sys.argv[1]))["runs"][0]
print(f"{run['requests'] / run['duration_s']:.0f} {run['latency_ms']['p50']:.2f} {run['latency_ms']['p99']:.2f} "
      f"{run['requests'] - run['ok']}")
PY
  )
  open_p99[$name]=$p99
  printf "%-10s %10s %10s %10s %8s\n" "$name" "$sent" "$p50" "$p99" "$errs" | tee -a "$report"
done
for peer in haproxy nginx; do
  python3 -c "print(f'ballast / $peer: open-loop p99 {${open_p99[ballast]} / ${open_p99[$peer]}:.2f}×')" | tee -a "$report"
done

if [ "$callgrind" = 1 ]; then
  # Each proxy alone under callgrind, on one thread: a warm-up, then the counters are zeroed, wrk runs
  # (one connection thread, 8 connections), and they are dumped; instructions over the requests wrk
  # completed. Startup, configuration and the warm-up are left out.
  # stop_pid PID: stops it and takes it out of $pids, so that the cleanup never signals a reused PID.
  stop_pid() {
    local p kept=()
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
    for p in "${pids[@]}"; do [ "$p" = "$1" ] || kept+=("$p"); done
    pids=("${kept[@]}")
  }
  stop_pid "$ballast_pid"; stop_pid "$haproxy_pid"; stop_pid "$nginx_pid"
  wait_long() {
    for _ in $(seq 300); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done
    echo "nothing listening on $1 under valgrind" >&2; exit 1
  }
  # count NAME PORT PID: "instructions requests" for the process PID under callgrind, serving on PORT.
  count() {
    wrk -t1 -c8 -d2s -s bench/post.lua "http://127.0.0.1:$2/v1/chat/completions" >/dev/null
    callgrind_control -z "$3" >/dev/null 2>&1
    wrk_run "$2" 1 8 "$duration" "$work/cg-wrk-$1.txt"
    callgrind_control -d "$3" >/dev/null 2>&1
    local dump instructions
    dump=$(ls -t "$work/cg-$1".out.* | head -1)
    instructions=$(awk '/^(summary|totals):/ {print $2; exit}' "$dump")
    read -r _ _ _ _ _ requests < <(wrk_figures "$work/cg-wrk-$1.txt")
    echo "$instructions $requests"
  }
  cg_port=$(free_port)
  ballast_config "$cg_port" 1 >"$work/ballast-cg.yaml"
  valgrind --tool=callgrind --callgrind-out-file="$work/cg-ballast.out.%p" \
    "$bin" serve --config "$work/ballast-cg.yaml" >/dev/null 2>"$work/cg-ballast.log" & cg_pid=$!
  pids+=("$cg_pid")
  wait_long "$cg_port"
  read -r b_instr b_req < <(count ballast "$cg_port" "$cg_pid")
  stop_pid "$cg_pid"

  cg_port=$(free_port)
  sed -e "s/^  maxconn .*/&\n  nbthread 1/" -e "s/127.0.0.1:$haproxy_port/127.0.0.1:$cg_port/" \
    "$work/haproxy.cfg" >"$work/haproxy-cg.cfg"
  valgrind --tool=callgrind --callgrind-out-file="$work/cg-haproxy.out.%p" \
    haproxy -db -f "$work/haproxy-cg.cfg" >/dev/null 2>"$work/cg-haproxy.log" & cg_pid=$!
  pids+=("$cg_pid")
  wait_long "$cg_port"
  read -r h_instr h_req < <(count haproxy "$cg_port" "$cg_pid")
  stop_pid "$cg_pid"

  python3 - "$b_instr" "$b_req" "$h_instr" "$h_req" <<'PY' | tee -a "$report"
import sys
bi, br, hi, hr = (int(v) for v in sys.argv[1:])
b, h = bi / br, hi / hr
print()
print("user-space instructions per request under callgrind (one worker / one thread, wrk -t1 -c8):")
print(f"  ballast {b:,.0f} ({br} requests), haproxy {h:,.0f} ({hr} requests): ballast / haproxy {b / h:.2f}×")
PY
fi
cp "$report" "$out/throughput-$stamp.txt"
echo "(saved in $out/throughput-$stamp.txt)"
