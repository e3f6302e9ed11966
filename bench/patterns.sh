#!/usr/bin/env bash
# The overload patterns the guides teach, in Python (bench/python/), each run twice unchanged but for
# its base URL: straight at `ballast sim --capacity 8 --ttft 100 --itl 20 --tokens 40` (about 0.9 s per
# answer, 8 at a time), then through ballast (`max_in_flight: 8`, every other setting at its default)
# in front of the same kind of simulator. 200 calls, client timeout 10 s, the libraries' default
# retries. Prints, per pattern, the calls that succeeded, the client timeouts (the library's own
# timeout exception), other errors by class, the time until all were done, and the answers the
# simulator generated for clients that had already gone; the table is also saved in bench/out/.
# Not a test: figures depend on the machine. Everything it starts, it stops. Only 127.0.0.1.
#   bench/patterns.sh [PATTERN...]      (default: all five, in order)
# Env: PYTHON (default .venv/bin/python), CALLS (200), CLIENT_TIMEOUT (10).
# Exits 1 when a pattern did not end all-successful through ballast. ballast's access log is kept
# in bench/out/ beside the table.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${BALLAST_BIN:-build/ballast}
python=${PYTHON:-.venv/bin/python}
patterns=("$@")
((${#patterns[@]})) || patterns=(client_per_call gather_ainvoke batch autogen_threads worker_processes)
sim_flags=(--capacity 8 --ttft 100 --itl 20 --tokens 40)
model=gpt-4o-mini
export CALLS=${CALLS:-200} CLIENT_TIMEOUT=${CLIENT_TIMEOUT:-10} MODEL=$model

[ -x "$bin" ] || { echo "missing: $bin (make build)" >&2; exit 1; }
[ -x "$python" ] || { echo "missing: $python (the Python venv with the clients in tests/python/requirements.txt)" >&2; exit 1; }
for p in "${patterns[@]}"; do
  [ -f "bench/python/$p.py" ] || { echo "no such pattern: $p (bench/python/$p.py)" >&2; exit 2; }
done

# The machine's provider, proxy and LangChain tracing variables must reach neither ballast nor the clients.
while read -r v; do unset "$v"; done < <(env | sed -n 's/^\(OPENAI_[^=]*\|AZURE_OPENAI_[^=]*\|LANG\(CHAIN\|SMITH\)_[^=]*\|[A-Za-z_]*_[Pp][Rr][Oo][Xx][Yy]\)=.*/\1/p')

# shellcheck source=bench/lib.sh
source bench/lib.sh
bench_scratch

# Starts `ballast ARGS` with its stdout and stderr in files named NAME.*, and waits for the address
# it logs ("listening on http://ADDR"): that goes to $addr, its PID to $pid.
start() {
  local name=$1; shift
  : >"$work/$name.err"  # before the process opens it: read at once below
  "$bin" "$@" >"$work/$name.out" 2>"$work/$name.err" &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 200); do
    addr=$(sed -n 's/.*listening on http:\/\/\([0-9.:]*\).*/\1/p' "$work/$name.err" | head -1)
    [ -n "$addr" ] && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  echo "ballast $1 did not start:" >&2; cat "$work/$name.err" >&2; exit 1
}

stop() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

stats() { curl -sf "http://$1/sim/stats"; }

# Waits until the simulator holds nothing (work for clients that left still runs to its end, and counts).
settle() {
  for _ in $(seq 1200); do
    stats "$1" | "$python" -c 'import json,sys; s=json.load(sys.stdin); sys.exit(s["in_flight"] + s["queued"] > 0)' && return 0
    sleep 0.1
  done
}

# Runs one pattern against BASE_URL and prints its JSON line with the simulator's work added.
run_pattern() {
  local pattern=$1 side=$2 base=$3 sim=$4
  local before after line
  before=$(stats "$sim")
  if ! line=$("$python" "bench/python/$pattern.py" "$base" 2>"$work/$pattern.$side.err" | tail -1) || [ -z "$line" ]; then
    echo "$pattern ($side) failed:" >&2; tail -20 "$work/$pattern.$side.err" >&2
    line="{\"pattern\": \"$pattern\", \"failed\": true}"
  fi
  settle "$sim"
  after=$(stats "$sim")
  "$python" - "$line" "$before" "$after" "$side" <<'PY'
import json, sys
r, before, after = (json.loads(a) for a in sys.argv[1:4])
r["side"] = sys.argv[4]
r["sim_completed"] = after["completed"] - before["completed"]
r["sim_wasted"] = after["wasted"] - before["wasted"]
print(json.dumps(r))
PY
}

# ballast, in front of a simulator of its own for the whole run.
start sim-behind sim --listen 127.0.0.1:0 "${sim_flags[@]}"
behind=$addr
cat >"$work/ballast.yaml" <<YAML
listen: 127.0.0.1:0
models:
  - name: $model
    endpoints:
      - base_url: http://$behind/v1
        max_in_flight: 8
YAML
start ballast serve --config "$work/ballast.yaml"
gateway=$addr ballast_pid=$pid

results="$work/results.jsonl"
for pattern in "${patterns[@]}"; do
  # A fresh simulator for each direct run: what clients abandoned in one must not slow the next.
  start "sim-$pattern" sim --listen 127.0.0.1:0 "${sim_flags[@]}"
  direct=$addr direct_pid=$pid
  echo "== $pattern: direct" >&2
  run_pattern "$pattern" direct "http://$direct/v1" "$direct" | tee -a "$results" >&2
  stop "$direct_pid"
  echo "== $pattern: through ballast" >&2
  run_pattern "$pattern" ballast "http://$gateway/v1" "$behind" | tee -a "$results" >&2
done
stop "$ballast_pid"
grep '"status"' "$work/ballast.out" >"$out/patterns-$stamp-access.jsonl" || true

"$python" - "$results" "$out/patterns-$stamp.md" "$out/patterns-$stamp-access.jsonl" \
  "$CALLS" "$CLIENT_TIMEOUT" "${sim_flags[*]}" <<'PY'
import collections, json, sys
results_file, table_file, access_file, calls, timeout, sim_flags = sys.argv[1:7]
rows = collections.defaultdict(dict)
for line in open(results_file):
    r = json.loads(line)
    rows[r["pattern"]][r["side"]] = r

def cells(r):
    if r is None or r.get("failed"):
        return ["failed"] + ["-"] * 4
    errors = ", ".join(f"{n} {k}" for k, n in sorted(r["errors"].items())) or "0"
    return [str(r["ok"]), str(r["client_timeouts"]), errors, f'{r["wall_s"]:.1f} s', str(r["sim_wasted"])]

lines = [
    f"{calls} calls per pattern, client timeout {timeout} s, default retries; ballast sim {sim_flags};"
    " through ballast: max_in_flight 8, defaults otherwise",
    "",
    "| pattern | direct: ok | timeouts | other errors | all done | sim wasted "
    "| ballast: ok | timeouts | other errors | all done | sim wasted |",
    "|---|---|---|---|---|---|---|---|---|---|---|",
]
failed = []
for pattern, sides in rows.items():
    lines.append("| " + " | ".join([pattern] + cells(sides.get("direct")) + cells(sides.get("ballast"))) + " |")
    b = sides.get("ballast")
    if b is None or b.get("failed") or b["ok"] != b["calls"]:
        failed.append(pattern)
lines.append("")
if failed:
    statuses = collections.Counter()
    for line in open(access_file):
        a = json.loads(line)
        statuses[f'{a.get("status")} {a.get("code", "")}'.strip()] += 1
    lines.append(f"NOT all-successful through ballast: {', '.join(failed)}. ballast's answers: "
                 + ", ".join(f"{n} × {s}" for s, n in statuses.most_common()) + f" (access log: {access_file})")
else:
    lines.append("Through ballast every call of every pattern succeeded, with no client timeout.")
text = "\n".join(lines) + "\n"
open(table_file, "w").write(text)
print(text, end="")
print(f"(saved in {table_file})")
sys.exit(1 if failed else 0)
PY
