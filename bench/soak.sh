#!/usr/bin/env bash
# A soak test: `ballast serve` in front of two faulty `ballast sim` upstreams, under steady open-loop
# load (streamed and non-streamed chat completions) for MINUTES, with a SIGHUP every 30 s alternating
# between two valid configurations. Once a minute it prints serve's RSS, open descriptors, requests and
# errors so far; at the end it drains serve with SIGTERM and judges the run:
#   RSS drift after warm-up ≤ 5%, descriptors flat (± SOAK_FD_SLACK), no crash, exit 0 after draining.
# Everything listens on 127.0.0.1 only; everything it starts, it stops (by PID), and its temp files go.
#   bench/soak.sh [MINUTES]     default 30
# SOAK_RATE: requests/s in all (default 80); SOAK_FD_SLACK (default 5); SOAK_KEEP=1 keeps the logs,
# the access log included, in the temp directory it names at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-30}
rate=${SOAK_RATE:-80}
fd_slack=${SOAK_FD_SLACK:-5}
reload_every=30      # seconds between SIGHUPs
bin=${BALLAST_BIN:-build/ballast}
[[ $minutes =~ ^[1-9][0-9]*$ ]] || { echo "usage: bench/soak.sh [MINUTES]  (a whole number ≥ 1)" >&2; exit 2; }
[[ $rate =~ ^[1-9][0-9]*$ && $rate -ge 2 ]] || { echo "SOAK_RATE must be a whole number ≥ 2" >&2; exit 2; }
for tool in curl awk python3; do command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }; done
[ -x "$bin" ] || { echo "missing: $bin (make build)" >&2; exit 1; }

# The warm-up: RSS and descriptors are judged from this minute on (10% of the run, at least minute 2).
warmup=$(( (minutes + 9) / 10 )); (( warmup < 2 )) && warmup=2; (( warmup >= minutes )) && warmup=$(( minutes - 1 ))
(( warmup < 1 )) && warmup=1

work=$(mktemp -d)
declare -A live=()   # PIDs started here and not yet reaped: the only ones cleanup may signal
cleanup() {
  local p
  for p in "${!live[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${!live[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "${SOAK_KEEP:-0}" = 1 ]; then echo "logs kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done
  echo "nothing listening on 127.0.0.1:$1" >&2; exit 1
}
# Alive means running: a zombie (exited, not yet reaped) is not.
alive() { [ -r "/proc/$1/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }
# Waits for a child started here and forgets its PID; its status is left in $reaped.
reap() { reaped=0; wait "$1" 2>/dev/null || reaped=$?; unset "live[$1]"; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# serve's descriptors now, as "TOTAL DOWN UP OTHER": TCP connections on its port (which the clients
# open), to the sims, and the rest (listener, event loops, timers, log files).
fds_now() {
  python3 - "$1" "$serve_port" "$sim_a_port" "$sim_b_port" <<'PY'
import os, sys
pid, port, sims = sys.argv[1], int(sys.argv[2]), {int(p) for p in sys.argv[3:]}
fds = os.listdir(f"/proc/{pid}/fd")
inodes = set()
for fd in fds:
    try:
        link = os.readlink(f"/proc/{pid}/fd/{fd}")
    except OSError:
        continue
    if link.startswith("socket:["):
        inodes.add(link[8:-1])
down = up = 0
for table in ("tcp", "tcp6"):
    with open(f"/proc/{pid}/net/{table}") as f:
        for line in list(f)[1:]:
            c = line.split()
            if c[9] not in inodes:
                continue
            local, remote, listening = int(c[1].split(":")[1], 16), int(c[2].split(":")[1], 16), c[3] == "0A"
            down += local == port and not listening
            up += remote in sims
print(len(fds), down, up, len(fds) - down - up)
PY
}
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }

sim_a_port=$(free_port); sim_b_port=$(free_port); serve_port=$(free_port)

# A few percent of each upstream's requests fail, in every way an upstream fails: an error status,
# a reset, a stream cut or stalled after some tokens, a first token too slow for timeouts.first_token,
# a mid-stream error event; and some odd but whole answers (no [DONE], one malformed event).
faults=(status=503@0.02 "status=429,retry-after=1@0.005" reset@0.01 cut-after=4@0.01
        slow-first-token=1500@0.01 stall-after=4@0.002 error-event=4@0.003 no-done@0.005 malformed-at=2@0.005)
fault_args=(); for f in "${faults[@]}"; do fault_args+=(--fault "$f"); done
"$bin" sim --listen 127.0.0.1:"$sim_a_port" --ttft 20 --itl 5 --tokens 16 --seed 1 "${fault_args[@]}" \
  >"$work/sim-a.log" 2>&1 & sim_a=$!; live[$sim_a]=1
"$bin" sim --listen 127.0.0.1:"$sim_b_port" --ttft 20 --itl 5 --tokens 16 --seed 2 "${fault_args[@]}" \
  >"$work/sim-b.log" 2>&1 & sim_b=$!; live[$sim_b]=1
wait_port "$sim_a_port"; wait_port "$sim_b_port"

# Two valid configurations, differing in weights and limits; SIGHUP swaps which one the file holds.
# The access log is written (to /dev/null unless kept) so that its cost is part of what is soaked.
config() { # WEIGHT_A WEIGHT_B MAX_IN_FLIGHT
  cat <<YAML
listen: 127.0.0.1:$serve_port
log: {access: $access}
shutdown_grace: 5s
models:
  - name: soak
    endpoints:
      - {name: sim-a, base_url: "http://127.0.0.1:$sim_a_port/v1", weight: $1, max_in_flight: $3}
      - {name: sim-b, base_url: "http://127.0.0.1:$sim_b_port/v1", weight: $2, max_in_flight: $3}
timeouts: {connect: 1s, first_byte: 2s, first_token: 1s, stream_idle: 2s, total: 10s, queue: 2s}
retries: {max_attempts: 3, base: 50ms, cap: 500ms}
YAML
}
access=stdout; [ "${SOAK_KEEP:-0}" = 1 ] && access=$work/access.log
config 2 1 64 >"$work/config-a.yaml"
config 1 2 32 >"$work/config-b.yaml"
cp "$work/config-a.yaml" "$work/ballast.yaml"
"$bin" serve --config "$work/ballast.yaml" >/dev/null 2>"$work/serve.log" & serve=$!; live[$serve]=1
wait_port "$serve_port"
sleep 1
read -r _ _ _ other_idle_start < <(fds_now "$serve")

# Requests answered so far, from serve's /metrics: "total errors code=n code=n …" (ok excluded).
metrics() {
  curl -s --max-time 5 "http://127.0.0.1:$serve_port/metrics" | awk '
    /^ballast_requests_total\{/ {
      match($0, /code="[^"]*"/); code = substr($0, RSTART + 6, RLENGTH - 7)
      n[code] += $NF; total += $NF; if (code != "ok") errors += $NF
    }
    END {
      printf "%d %d", total, errors
      for (c in n) if (c != "ok") printf " %s=%d", c, n[c]
      print ""
    }'
}

seconds=$(( minutes * 60 ))
half=$(( rate / 2 ))
echo "soak: ${minutes} min, $rate req/s open loop (half streamed), 2 sims with faults ${faults[*]}"
echo "      SIGHUP every ${reload_every}s alternating two configs; warm-up until minute $warmup"
# The load runs a few seconds past the last minute's figures, so that they are all taken under load.
load_args=(load --target "http://127.0.0.1:$serve_port/v1" --model soak --duration "$(( seconds + 3 ))"
           --max-tokens 16 --prompt-tokens 64 --timeout 30)
"$bin" "${load_args[@]}" --rate "$half" --seed 1 --json "$work/load-plain.json" \
  >"$work/load-plain.out" 2>&1 & load_plain=$!; live[$load_plain]=1
"$bin" "${load_args[@]}" --rate "$(( rate - half ))" --stream --seed 2 --json "$work/load-stream.json" \
  >"$work/load-stream.out" 2>&1 & load_stream=$!; live[$load_stream]=1

# Descriptors are sampled every second and shown as the minute's medians: the connections open at one
# instant come and go with the load, a leak moves the median. fds is the total, d/u/o its downstream
# connections, upstream connections and the rest. The verdict leaves out the downstream connections:
# how many the clients keep open is theirs to decide (the open-loop generator keeps one for each
# request it ever had in flight at once), and whether serve closes them is checked once they leave.
row="%-6s %8s %5s %11s %9s %7s  %-5s %s\n"
printf "$row" minute "rss MiB" fds "d/u/o" requests errors serve "errors by code"
start=$(date +%s)
crashed=0; serve_rc=; reloads=0; next_reload=$reload_every; minute=0
rss_warm=; own_warm=; rss_end=0; own_end=0; s_total=(); s_down=(); s_up=(); s_other=(); s_own=()
while (( minute < minutes )); do
  sleep 1
  now=$(( $(date +%s) - start ))
  if ! alive "$serve"; then
    crashed=1; reap "$serve"; serve_rc=$reaped
    echo "serve died at ${now}s with status $serve_rc; its log ends:"; tail -n 20 "$work/serve.log" | sed 's/^/  /'
    break
  fi
  if read -r t d u o < <(fds_now "$serve" 2>/dev/null); then
    s_total+=("$t"); s_down+=("$d"); s_up+=("$u"); s_other+=("$o"); s_own+=("$(( u + o ))")
  fi
  if (( now >= (minute + 1) * 60 )); then
    minute=$(( minute + 1 ))
    rss=$(rss_kib "$serve"); own=$(median "${s_own[@]}")
    dou="$(median "${s_down[@]}")/$(median "${s_up[@]}")/$(median "${s_other[@]}")"
    read -r total errors kinds < <(metrics)
    printf "$row" "$minute" "$(mib "$rss")" "$(median "${s_total[@]}")" "$dou" "$total" "$errors" alive "${kinds:--}"
    s_total=(); s_down=(); s_up=(); s_other=(); s_own=()
    if (( minute == warmup )); then rss_warm=$rss; own_warm=$own; fi
    rss_end=$rss; own_end=$own
  fi
  if (( now >= next_reload && minute < minutes )); then
    (( reloads % 2 == 0 )) && src=config-b.yaml || src=config-a.yaml
    cp "$work/$src" "$work/ballast.yaml.new" && mv "$work/ballast.yaml.new" "$work/ballast.yaml"
    kill -HUP "$serve"; reloads=$(( reloads + 1 )); next_reload=$(( next_reload + reload_every ))
  fi
done

# The load ends by itself once its duration is over and its last requests are answered (or time out);
# without serve there is nothing left to measure.
for p in "$load_plain" "$load_stream"; do
  (( crashed )) || for _ in $(seq 600); do alive "$p" || break; sleep 0.1; done
  alive "$p" && kill -TERM "$p"
  reap "$p"
done

final=; down_left=; other_idle_end=
if (( ! crashed )); then
  # With the clients gone, serve must have closed every downstream connection.
  for _ in $(seq 10); do
    read -r _ down_left _ other_idle_end < <(fds_now "$serve"); (( down_left == 0 )) && break; sleep 0.5
  done
  rss_peak=$(awk '/^VmHWM:/ {print $2}' "/proc/$serve/status")
  final=$(metrics)
  curl -s --max-time 5 -o "$work/metrics.txt" "http://127.0.0.1:$serve_port/metrics" || true
  kill -TERM "$serve"
  for _ in $(seq 150); do alive "$serve" || break; sleep 0.1; done
  if alive "$serve"; then
    echo "serve still running 15 s after SIGTERM (shutdown_grace 5s)"; kill -KILL "$serve"
  fi
  reap "$serve"; serve_rc=$reaped
fi
for p in "$sim_a" "$sim_b"; do kill -TERM "$p" 2>/dev/null || true; reap "$p"; done

echo
elapsed=$(( $(date +%s) - start ))
echo "== after $(( elapsed / 60 )) min $(( elapsed % 60 )) s =="
python3 - "$work/load-plain.json" "$work/load-stream.json" <<'PY'
import json, os, sys
for path, name in zip(sys.argv[1:], ("non-streamed", "streamed")):
    if not os.path.exists(path):
        print(f"load {name:13s} no report (the load did not finish)")
        continue
    r = json.load(open(path))["runs"][0]
    def counts(d):
        return " ".join(f"{k}={v}" for k, v in sorted(d.items()) if v) or "-"
    print(f"load {name:13s} {r['requests']} requests, {r['requests'] - r['ok']} failed "
          f"({100 * r['error_rate']:.2f}%), p99 {r['latency_ms']['p99']:.0f} ms; "
          f"classes: {counts(r['errors'])}; ballast codes: {counts(r['codes'])}")
PY
if [ -n "$final" ]; then
  read -r total errors kinds <<<"$final"
  echo "serve answered   $total requests, $errors errors: ${kinds:--}"
  # What the faults did upstream, and what ballast did about them.
  awk '
    function code(l) { match(l, /(code|reason|why)="[^"]*"/); s = substr(l, RSTART, RLENGTH); sub(/^[a-z]*="/, "", s); return substr(s, 1, length(s) - 1) }
    /^ballast_attempts_total\{/ { n++; a += $NF; if (!/code="ok"/) { f += $NF; fc[code($0)] += $NF } }
    /^ballast_retries_total\{/ { r += $NF; rc[code($0)] += $NF }
    /^ballast_retries_denied_total\{/ { d += $NF; dc[code($0)] += $NF }
    /^ballast_ejections_total\{/ { e += $NF }
    /^ballast_malformed_events_total\{/ { m += $NF }
    function list(arr,   k, out) { out = ""; for (k in arr) out = out " " k "=" arr[k]; return out == "" ? " -" : out }
    END {
      printf "upstream         %d attempts, %d failed:%s\n", a, f, list(fc)
      printf "retries          %d made:%s; %d denied:%s\n", r, list(rc), d, list(dc)
      printf "ejections        %d; malformed events dropped %d\n", e, m
    }' "$work/metrics.txt"
fi
# serve's own log: "TIME LEVEL message"; each SIGHUP must be logged as a reload.
read -r hup_logged warnings log_errors < <(awk '
  $2 == "info" && /reloaded .* \(configuration #/ {h++; next} $2 ~ /^warn/ {w++} $2 == "error" || $2 == "critical" {e++}
  END {print h + 0, w + 0, e + 0}' "$work/serve.log")
echo "serve log        $reloads SIGHUPs sent, $hup_logged reloads logged; $warnings warnings, $log_errors errors"
awk '$2 ~ /^warn/ || $2 == "error" || $2 == "critical" {$1 = ""; print}' "$work/serve.log" \
  | sort | uniq -c | sort -rn | head -n 5 | sed 's/^/  /'
verdict=PASS; why=()
(( hup_logged == reloads )) || why+=("$reloads SIGHUPs, $hup_logged reloads logged")
if [ -n "$rss_warm" ] && (( rss_warm > 0 )); then
  drift=$(awk -v a="$rss_warm" -v b="$rss_end" 'BEGIN {printf "%+.1f", (b - a) * 100 / a}')
  echo "rss              $(mib "$rss_warm") MiB at minute $warmup → $(mib "$rss_end") MiB at minute $minute: ${drift}% (peak $(mib "${rss_peak:-0}") MiB)"
  awk -v d="$drift" 'BEGIN {exit !(d > 5)}' && why+=("RSS grew ${drift}% after warm-up (target ≤ 5%)")
elif (( ! crashed )); then
  echo "rss              no figure after the warm-up"; why+=("no RSS figure after the warm-up")
fi
if [ -n "$own_warm" ]; then
  echo "fds              $own_warm in minute $warmup → $own_end in minute $minute (medians, downstream connections left out)"
  (( own_end - own_warm > fd_slack || own_warm - own_end > fd_slack )) \
    && why+=("descriptors went from $own_warm to $own_end (target ± $fd_slack)")
fi
if [ -n "$down_left" ]; then
  echo "after the load   $down_left downstream connections left open; $other_idle_start other descriptors before the load, $other_idle_end after"
  (( down_left > 0 )) && why+=("$down_left downstream connections still open after the clients left")
  (( other_idle_end - other_idle_start > fd_slack )) \
    && why+=("$other_idle_start descriptors other than connections before the load, $other_idle_end after")
fi
echo "crashes          $crashed"
(( crashed )) && why+=("serve crashed (status $serve_rc)")
if (( ! crashed )); then
  echo "serve exit       $serve_rc after SIGTERM"
  [ "$serve_rc" = 0 ] || why+=("serve exited $serve_rc after SIGTERM, not 0")
fi
(( ${#why[@]} )) && verdict=FAIL
echo "$verdict  (targets: RSS drift ≤ 5% after warm-up, fds ± $fd_slack, 0 crashes, exit 0 after draining)"
for w in "${why[@]}"; do echo "  $w"; done
[ "$verdict" = PASS ]
