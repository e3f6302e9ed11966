#!/usr/bin/env bash
# LiteLLM's proxy in the foreground on 127.0.0.1:PORT, one model `m` in front of one OpenAI-compatible
# upstream, set up as bench/ measures it. Prints "ready" once every worker answers; on SIGTERM (or
# SIGINT) it stops LiteLLM's whole process tree, by PID, within 10 s. Nothing it runs reaches the network.
#   bench/litellm/serve.sh PORT UPSTREAM_BASE_URL [MAX_PARALLEL_REQUESTS]
# MAX_PARALLEL_REQUESTS: the deployment's max_parallel_requests, per worker process (LiteLLM keeps the
# count in each worker); unset, no limit. Clients authenticate with the master key `sk-bench`.
# Env: LITELLM_VENV (bench/out/litellm-venv, made by `scripts/install-deps.sh bench`),
#      LITELLM_WORKERS (2: one per core of the 2-core machine the figures in README come from),
#      LITELLM_SERVER (uvicorn, LiteLLM's default; or granian).
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -ge 2 ] || { echo "usage: $0 PORT UPSTREAM_BASE_URL [MAX_PARALLEL_REQUESTS]" >&2; exit 2; }
port=$1
upstream=$2
max_parallel=${3:-}
venv=${LITELLM_VENV:-bench/out/litellm-venv}
workers=${LITELLM_WORKERS:-2}
server=${LITELLM_SERVER:-uvicorn}
[ -x "$venv/bin/litellm" ] || { echo "missing: $venv/bin/litellm (scripts/install-deps.sh bench makes it)" >&2; exit 1; }

work=$(mktemp -d)
{
  echo "model_list:"
  echo "  - model_name: m"
  echo "    litellm_params:"
  echo "      model: openai/m"
  echo "      api_base: $upstream"
  echo "      api_key: dummy"
  [ -z "$max_parallel" ] || echo "      max_parallel_requests: $max_parallel"
  echo "general_settings:"
  echo "  master_key: sk-bench"
  # No database is configured; these keep LiteLLM from queueing spend and error rows for one.
  echo "  disable_spend_logs: true"
  echo "  disable_error_logs: true"
} >"$work/config.yaml"

server_flags=()
case "$server" in
  uvicorn) ;;
  granian) server_flags=(--run_granian) ;;
  *) echo "LITELLM_SERVER must be uvicorn or granian" >&2; exit 2 ;;
esac

# A clean environment, so nothing of the machine's (a DATABASE_URL, provider keys, proxies, a .env in the
# working directory) changes what LiteLLM does, and every switch that would reach the network is off:
#   LITELLM_LOCAL_MODEL_COST_MAP  the model cost map from the wheel, not fetched from GitHub at startup;
#   LITELLM_TELEMETRY_DISABLED    no usage telemetry (off anyway without a database to store consent in);
#   LITELLM_MODE=PRODUCTION       no .env file loaded from the working directory;
#   HF_HUB_OFFLINE                no tokenizer downloads from Hugging Face.
# LITELLM_LOG=ERROR also turns off uvicorn's access log, as nginx's is off in bench/.
# The timeout of uvicorn's worker health check goes from 5 s to 60 s: a worker still importing LiteLLM
# on a busy 2-core machine misses the 5 s ping and is killed and respawned, again and again.
env -i PATH=/usr/bin:/bin HOME="$work" LANG=C.UTF-8 \
  LITELLM_LOCAL_MODEL_COST_MAP=True LITELLM_TELEMETRY_DISABLED=true LITELLM_MODE=PRODUCTION \
  HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 LITELLM_LOG=ERROR DISABLE_ADMIN_UI=True \
  "$venv/bin/litellm" --config "$work/config.yaml" --host 127.0.0.1 --port "$port" \
  --num_workers "$workers" --timeout_worker_healthcheck 60 "${server_flags[@]}" &
litellm=$!

descendants() {
  local p
  for p in $(pgrep -P "$1" 2>/dev/null); do echo "$p"; descendants "$p"; done
}
stop() {
  trap - TERM INT EXIT
  local tree
  tree=$(descendants "$litellm")
  kill -TERM "$litellm" 2>/dev/null || true
  # granian can wait on its workers for good after SIGTERM: 10 s, then SIGKILL to what is left.
  for _ in $(seq 100); do kill -0 "$litellm" 2>/dev/null || break; sleep 0.1; done
  for p in "$litellm" $tree; do kill -KILL "$p" 2>/dev/null || true; done
  wait "$litellm" 2>/dev/null || true
  rm -rf "$work"
}
trap 'stop; exit 0' TERM INT
trap stop EXIT

# Ready: the liveness probe answers, then the tree's CPU falls below 10% of a core for a second (the other
# workers have finished importing too). At most 180 s.
cpu_ticks() {
  local p sum=0 t
  for p in "$litellm" $(descendants "$litellm"); do
    t=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null) && sum=$((sum + t))
  done
  echo "$sum"
}
deadline=$((SECONDS + 180))
until curl -sf -o /dev/null "http://127.0.0.1:$port/health/liveliness"; do
  kill -0 "$litellm" 2>/dev/null || { echo "litellm exited before it answered" >&2; exit 1; }
  [ "$SECONDS" -lt "$deadline" ] || { echo "litellm did not answer within 180 s" >&2; exit 1; }
  sleep 0.2
done
hz=$(getconf CLK_TCK)
while [ "$SECONDS" -lt "$deadline" ]; do
  a=$(cpu_ticks); sleep 1; b=$(cpu_ticks)
  [ $((b - a)) -lt $((hz / 10)) ] && break
done
echo "ready"
wait "$litellm"
