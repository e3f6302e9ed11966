#!/usr/bin/env bash
# What holding many long streams open costs a proxy: STREAMS concurrent streams (`ballast load --stream
# --concurrency`, a closed loop) of about 6 s each (`ballast sim --ttft 50 --itl 100 --tokens 60`: 60
# tokens, 100 ms apart), sent directly and through ballast, haproxy and nginx in turn, each proxy started
# fresh for its run and stopped after it. For the proxy, all its processes and threads counted: peak
# resident memory (VmHWM), CPU seconds within the measured window and per token relayed in it; for the
# client: time to first token and between tokens (p50/p99), tokens/s, errors. Then ballast's ratio to
# each peer. SLOPE=1 also runs ballast at N2 streams and prints the memory each stream adds.
# Not a test: figures depend on the machine, and the simulator, the client and the proxy share its cores.
# Everything runs on 127.0.0.1, on free ports; everything it starts, it stops by PID. The table and every
# run's JSON are saved in bench/out/.
#   bench/streams.sh [STREAMS] [SECONDS]   defaults: 4000 streams, a 10 s window
# Env: SLOPE=1 (also ballast at N2 streams), N2 (9000).
set -euo pipefail
cd "$(dirname "$0")/.."
streams=${1:-4000}
duration=${2:-10}
slope=${SLOPE:-0}
streams2=${N2:-9000}
bin=${BALLAST_BIN:-build/ballast}
for tool in haproxy nginx pgrep python3; do
  command -v "$tool" >/dev/null || { echo "missing: $tool (apt-get install -y haproxy nginx procps)" >&2; exit 1; }
done
[ -x "$bin" ] || { echo "missing: $bin (make build)" >&2; exit 1; }
[ "$slope" != 1 ] || [ "$streams2" != "$streams" ] || { echo "SLOPE=1 wants N2 other than STREAMS ($streams)" >&2; exit 2; }

# shellcheck source=bench/lib.sh
source bench/lib.sh
bench_scratch

# Descriptors: a stream through a proxy holds two in the proxy (client and upstream side), one in the
# client and one in the simulator; every process started here inherits this limit.
most=$streams
[ "$slope" = 1 ] && [ "$streams2" -gt "$most" ] && most=$streams2
ulimit -Sn "$(ulimit -Hn)"
need=$((2 * most + 256))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$need" ]; then
  echo "open-file limit $(ulimit -n) (the hard limit): $most streams need $need descriptors in a proxy;" \
    "raise the hard limit (ulimit -Hn, as root) or run fewer streams" >&2
  exit 1
fi

sim_port=$(free_port); ballast_port=$(free_port); haproxy_port=$(free_port); nginx_port=$(free_port)

# No capacity limit: every stream is generated at once, 60 tokens over about 6 s.
"$bin" sim --listen 127.0.0.1:"$sim_port" --ttft 50 --itl 100 --tokens 60 2>"$work/sim.log" & sim_pid=$!
pids+=("$sim_pid")
wait_port "$sim_port"

# No limit of ballast's own in the way: max_connections (10000 by default) above every run's streams.
cat >"$work/ballast.yaml" <<YAML
listen: 127.0.0.1:$ballast_port
log: {access: off}
limits: {max_connections: $((most + 1000))}
models:
  - name: sim
    endpoints: [{base_url: "http://127.0.0.1:$sim_port/v1"}]
YAML

# forget PID: a process that has ended leaves $pids, so that the cleanup never signals a reused PID.
forget() {
  local p kept=()
  for p in "${pids[@]}"; do [ "$p" = "$1" ] || kept+=("$p"); done
  pids=("${kept[@]}")
}
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; forget "$1"; }

# cpu_ticks PID...: user + system clock ticks of these processes, every thread counted.
cpu_ticks() {
  local p
  for p in "$@"; do sed 's/.*) //' "/proc/$p/stat" 2>/dev/null || true; done | awk '{t += $12 + $13} END {print t + 0}'
}
# hwm_kib PID...: the sum of their peak resident memory, KiB.
hwm_kib() {
  local p
  for p in "$@"; do cat "/proc/$p/status" 2>/dev/null || true; done | awk '/^VmHWM:/ {t += $2} END {print t + 0}'
}

# machine_ticks: clock ticks the whole machine (every core) spent in processes (user, nice, system),
# then in interrupts (irq, softirq: on loopback, most of the network's work).
machine_ticks() { awk '/^cpu / {print $2 + $3 + $4, $7 + $8}' /proc/stat; }
# listen_drops: connections the kernel dropped at a full listen queue since boot, every socket counted.
listen_drops() {
  awk '$1 == "TcpExt:" { if (!seen) { split($0, key); seen = 1 } else for (i in key) if (key[i] == "ListenDrops") print $i }' /proc/net/netstat
}

# start_target NAME N: starts the proxy NAME (nothing for direct) fresh, so that its VmHWM is this run's;
# sets $port and $proxy (its PID, empty for direct).
start_target() {
  proxy=
  case $1 in
    direct) port=$sim_port ;;
    ballast)
      port=$ballast_port
      "$bin" serve --config "$work/ballast.yaml" >/dev/null 2>"$work/ballast-$2.log" & proxy=$!
      pids+=("$proxy")
      wait_port "$port" ;;
    haproxy) port=$haproxy_port; start_haproxy "$port" "$sim_port" $(($2 + 1000)); proxy=$started_pid ;;
    # A worker may be handed most of the clients: room for every stream, both sides, in each.
    nginx) port=$nginx_port; start_nginx "$port" "$sim_port" $((2 * $2 + 256)); proxy=$started_pid ;;
  esac
}

# measure NAME N: one run of N streams through NAME. Appends "NAME N peak_kib proxy_ticks sim_ticks
# client_ticks process_ticks interrupt_ticks listen_drops" (ticks within the window: the proxy's, the
# simulator's, the client's, every process's, interrupts; drops within the run) to
# $work/rows.txt; the run's JSON is $work/NAME-N.json.
measure() {
  local name=$1 n=$2 procs=() load sleeper status=0 p0 p1 s0 s1 c1 m0 m1 i0 i1 d0 hwm
  start_target "$name" "$n"
  if [ -n "$proxy" ]; then
    # nginx's workers are its master's children; they are forked after it binds the port.
    for _ in $(seq 100); do [ "$name" != nginx ] || pgrep -P "$proxy" >/dev/null && break; sleep 0.05; done
    read -ra procs < <(echo "$proxy" $(pgrep -P "$proxy" || true))
  fi
  d0=$(listen_drops)
  p0=$(cpu_ticks "${procs[@]}"); s0=$(cpu_ticks "$sim_pid"); read -r m0 i0 < <(machine_ticks)
  # --timeout bounds the run: the window, then at most 30 s for the streams still open (about 6 s).
  "$bin" load --target "http://127.0.0.1:$port/v1" --model sim --stream --concurrency "$n" \
    --duration "$duration" --timeout 30 --json "$work/$name-$n.json" >"$work/$name-$n.txt" 2>&1 & load=$!
  pids+=("$load")
  # The window's CPU: what the proxy spent while the tokens counted in tokens/s were relayed.
  sleep "$duration" & sleeper=$!
  pids+=("$sleeper"); wait "$sleeper"; forget "$sleeper"
  p1=$(cpu_ticks "${procs[@]}"); s1=$(cpu_ticks "$sim_pid"); c1=$(cpu_ticks "$load"); read -r m1 i1 < <(machine_ticks)
  wait "$load" || status=$?
  forget "$load"
  hwm=$(hwm_kib "${procs[@]}")
  [ -z "$proxy" ] || stop "$proxy"
  # 1 is a run beyond the default SLO (over 1% errors): its figures still stand, and the table says so.
  if [ "$status" -gt 1 ] || [ ! -s "$work/$name-$n.json" ]; then
    echo "ballast load failed through $name (status $status):" >&2; tail -20 "$work/$name-$n.txt" >&2; exit 1
  fi
  cp "$work/$name-$n.json" "$out/streams-$stamp-$name-$n.json"
  echo "$name $n $hwm $((p1 - p0)) $((s1 - s0)) $c1 $((m1 - m0)) $((i1 - i0)) $(($(listen_drops) - d0))" >>"$work/rows.txt"
  echo "  $name: $(grep -m1 -i 'concurrency' "$work/$name-$n.txt" || tail -1 "$work/$name-$n.txt")"
}

echo "$streams concurrent streams (ballast load --stream --concurrency $streams, a ${duration}s window) against"
echo "ballast sim --ttft 50 --itl 100 --tokens 60 (about 6 s a stream), directly and through ballast, haproxy"
echo "$(haproxy -v | sed -n 's/^HAProxy version \([^ ]*\).*/\1/p') and nginx $(nginx -v 2>&1 | sed 's|.*/||'), one at a time; all on 127.0.0.1 sharing $(nproc) cores"
for name in direct ballast haproxy nginx; do
  measure "$name" "$streams"
done
[ "$slope" = 1 ] && measure ballast "$streams2"

python3 - "$work" "$out/streams-$stamp.md" "$streams" "$(getconf CLK_TCK)" "$slope" "$streams2" "$(nproc)" <<'PY'
import json, sys
work, saved = sys.argv[1], sys.argv[2]
streams, hz, slope, streams2, cores = int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], int(sys.argv[6]), int(sys.argv[7])
rows = {}
for line in open(f"{work}/rows.txt"):
    name, n, kib, proxy, sim, client, machine, interrupts, drops = line.split()
    run = json.load(open(f"{work}/{name}-{n}.json"))["runs"][0]
    tokens = run["tokens_per_s"] * run["duration_s"]
    direct = name == "direct"
    rows[name, int(n)] = {
        "rss": None if direct else int(kib) / 1024, "kib": int(kib),
        "cpu": None if direct else int(proxy) / hz,
        "cpu_token": None if direct or not tokens else int(proxy) / hz / tokens * 1e6,
        "sim": int(sim) / hz, "client": int(client) / hz,
        "kernel": int(interrupts) / hz,
        # Every process's time but these three's: anything else running on the machine.
        "others": max(0, int(machine) - int(proxy) - int(sim) - int(client)) / hz,
        "drops": int(drops), "run": run,
    }

def f(v, fmt):
    return "–" if v is None else format(v, fmt)

lines = ["| target | streams | peak RSS MB | CPU s | CPU/token µs | TTFT p50 / p99 ms | ITL p50 / p99 ms "
         "| tokens/s | ok | errors | sim / client / interrupts / others CPU s | listen drops |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|"]
for (name, n), r in rows.items():
    run = r["run"]
    errors = sum(run["errors"].values())
    detail = ", ".join(f"{k} {v}" for k, v in run["errors"].items() if v)
    lines.append(f"| {name} | {n} | {f(r['rss'], '.1f')} | {f(r['cpu'], '.2f')} | {f(r['cpu_token'], '.1f')} "
                 f"| {run['ttft_ms']['p50']:.0f} / {run['ttft_ms']['p99']:.0f} "
                 f"| {run['itl_ms']['p50']:.0f} / {run['itl_ms']['p99']:.0f} | {run['tokens_per_s']:,.0f} "
                 f"| {run['ok']} | {errors}{f' ({detail})' if detail else ''} "
                 f"| {r['sim']:.2f} / {r['client']:.2f} / {r['kernel']:.2f} / {r['others']:.2f} | {r['drops']} |")
window = rows[("direct", streams)]["run"]["duration_s"]
lines.append("")
lines.append(f"Peak RSS: the sum of VmHWM over the proxy's processes (nginx: master and workers), each started fresh "
             f"for its run. CPU: user + system within the {window:g} s window, every thread; per token: over the "
             f"tokens the client received in it (tokens/s × window). The simulator's, the client's, the kernel's "
             f"in interrupts (loopback's network work) and every other process's over the same window, of "
             f"{cores * window:g} s the {cores} cores had. Listen drops: connections the kernel "
             f"dropped at a full accept queue during the run (the client retries them after 1 s, 3 s, ...).")
busy = [f"{name} ({r['others']:.1f} s)" for (name, n), r in rows.items() if r["others"] > 0.05 * cores * window]
if busy:
    lines.append(f"warning: other processes used over 5% of the machine during {', '.join(busy)}: "
                 f"those figures are of a shared machine")
b = rows[("ballast", streams)]
for peer in ("haproxy", "nginx"):
    p = rows[(peer, streams)]
    lines.append(f"ballast / {peer}: RSS {b['rss'] / p['rss']:.1f}×, CPU/token {b['cpu_token'] / p['cpu_token']:.1f}×, "
                 f"ITL p99 {b['run']['itl_ms']['p99'] / p['run']['itl_ms']['p99']:.1f}×")
if slope == "1":
    hi = rows[("ballast", streams2)]
    per = (hi["kib"] - b["kib"]) / (streams2 - streams)
    lines.append(f"ballast's peak RSS: {b['rss']:.1f} MB at {streams} streams, {hi['rss']:.1f} MB at {streams2}: "
                 f"{per:.1f} KB per stream")
text = "\n".join(lines)
print(text)
open(saved, "w").write(text + "\n")
PY
echo "(saved in $out/streams-$stamp.md, with every run's JSON)"
