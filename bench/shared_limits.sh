#!/usr/bin/env bash
# What sharing limits through Redis costs a request: the same `ballast serve` (max_in_flight 64, rpm
# 10,000,000: limits that never refuse, but are taken and given back on every request) in front of a
# fast `ballast sim`, once with local limits and once with `redis:` set (a redis-server started here),
# each driven by `ballast load` in an open loop (Poisson arrivals, timed from when each request was
# due). The two alternate, ROUNDS times (3), so a quiet or busy moment of the machine falls on both;
# prints each run and the medians' difference; the target is p99 shared − p99 local ≤ 1 ms.
# Not a test: figures depend on the machine. Everything runs on 127.0.0.1, on free ports; everything
# it starts, it stops by PID. The table and both runs' JSON are saved in bench/out/.
#   bench/shared_limits.sh [SECONDS] [RATE] [ROUNDS]   defaults: 20 s at 2000 requests/s, after 3 s of
#                                                      warm-up, 3 rounds
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-20}
rate=${2:-2000}
rounds=${3:-3}
bin=${BALLAST_BIN:-build/ballast}
for tool in redis-server curl python3; do
  command -v "$tool" >/dev/null || { echo "missing: $tool (apt-get install -y redis-server)" >&2; exit 1; }
done
[ -x "$bin" ] || { echo "missing: $bin (make build)" >&2; exit 1; }

# shellcheck source=bench/lib.sh
source bench/lib.sh
bench_scratch

redis_port=$(free_port); sim_port=$(free_port); serve_port=$(free_port)

# No persistence: nothing is written outside the scratch directory.
redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no --dir "$work" \
  >"$work/redis.log" 2>&1 & pids+=($!)
wait_port "$redis_port"

# One token at once, no limit of its own: what is measured is ballast, not the upstream.
"$bin" sim --listen 127.0.0.1:"$sim_port" --ttft 0 --tokens 1 2>"$work/sim.log" & pids+=($!)
wait_port "$sim_port"

# config NAME [REDIS_BLOCK]: the same gateway, with or without redis:.
config() {
  cat >"$work/$1.yaml" <<YAML
listen: 127.0.0.1:$serve_port
log: {access: off}
${2:-}
models:
  - name: sim
    endpoints:
      - base_url: http://127.0.0.1:$sim_port/v1
        max_in_flight: 64
        rpm: 10000000
YAML
}
config local
config shared "redis: {url: redis://127.0.0.1:$redis_port/0, prefix: 'bench:', timeout: 50ms, replicas: 1}"
if ! "$bin" serve --check --config "$work/shared.yaml" >"$work/check.txt" 2>&1; then
  echo "$bin does not accept redis: yet (build it from a tree with shared limits):" >&2
  cat "$work/check.txt" >&2
  exit 1
fi

# measure NAME: starts serve with NAME.yaml, warms it up, measures, checks where its limits were kept,
# stops it. Appends "NAME requests ok p50 p99 limits fallbacks" to $work/table.txt.
measure() {
  local name=$1 serve_pid limits fallbacks
  "$bin" serve --config "$work/$name.yaml" >/dev/null 2>"$work/serve-$name.log" & serve_pid=$!
  pids+=("$serve_pid")
  wait_port "$serve_port"
  for run in warm-up measured; do
    "$bin" load --target "http://127.0.0.1:$serve_port/v1" --model sim --rate "$rate" \
      --duration "$([ $run = warm-up ] && echo 3 || echo "$duration")" --max-tokens 16 --timeout 10 \
      --json "$work/load-$name.json" >"$work/load-$name.txt" 2>&1 ||
      { echo "ballast load failed ($name):" >&2; cat "$work/load-$name.txt" >&2; exit 1; }
  done
  # Where the limits were kept during the run: a fallback to local limits would make the figure a lie.
  limits=$(curl -sf "http://127.0.0.1:$serve_port/ballast/status" |
    python3 -c 'import json, sys; r = json.load(sys.stdin).get("redis"); print(r["limits"] if r else "local")')
  fallbacks=$(curl -sf "http://127.0.0.1:$serve_port/metrics" |
    awk '$1 == "ballast_redis_fallbacks_total" {print $2} END {if (!NR) print 0}' | tail -1)
  kill "$serve_pid"; wait "$serve_pid" 2>/dev/null || true
  cp "$work/load-$name.json" "$out/shared-limits-$stamp-$name-$round.json"
  python3 - "$work/load-$name.json" "$name" "$limits" "${fallbacks:-0}" >>"$work/table.txt" <<'PY'
import json, sys
run = json.load(open(sys.argv[1]))["runs"][0]
lat = run["latency_ms"]
print(sys.argv[2], run["requests"], run["ok"], lat["p50"], lat["p99"], sys.argv[3], sys.argv[4])
PY
}

echo "ballast load --rate $rate (open loop) for ${duration}s each, after 3 s of warm-up; max_in_flight 64, rpm 10,000,000;"
echo "sim --ttft 0 --tokens 1; redis-server $(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p'); all on 127.0.0.1 sharing $(nproc) cores"
for round in $(seq 1 "$rounds"); do
  measure local
  measure shared
done

python3 - "$work/table.txt" "$out/shared-limits-$stamp.md" "$rate" "$duration" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
lines = ["| run | limits | requests | ok | p50 ms | p99 ms | kept in | fallbacks |", "|---|---|---|---|---|---|---|---|"]
for i, (name, req, ok, p50, p99, kept, fb) in enumerate(rows):
    lines.append(f"| {i // 2 + 1} | {name} | {req} | {ok} | {float(p50):.2f} | {float(p99):.2f} | {kept} | {fb} |")
median = {name: [statistics.median(float(r[col]) for r in rows if r[0] == name) for col in (3, 4)]
          for name in ("local", "shared")}
d50 = median["shared"][0] - median["local"][0]
d99 = median["shared"][1] - median["local"][1]
verdict = "within" if d99 <= 1.0 else "over"
lines.append("")
lines.append(f"medians: local p50 {median['local'][0]:.2f} p99 {median['local'][1]:.2f} ms; "
             f"shared p50 {median['shared'][0]:.2f} p99 {median['shared'][1]:.2f} ms")
lines.append(f"added by shared limits at {sys.argv[3]}/s: p50 {d50:+.2f} ms, p99 {d99:+.2f} ms "
             f"({verdict} the 1 ms target for p99)")
if any(r[0] == "shared" and (r[5] != "shared" or r[6] != "0") for r in rows):
    lines.append("warning: a shared run fell back to local limits at some point: its figures are not those of Redis")
text = "\n".join(lines)
print(text)
open(sys.argv[2], "w").write(text + "\n")
PY
echo "(saved in $out/shared-limits-$stamp.md, with every run's JSON)"
