# What the bench scripts share: ports, and the peers (haproxy, nginx) configured as every comparison
# runs them, all on 127.0.0.1. Sourced after `work` (a scratch directory) and `pids` (what the script's
# cleanup stops) are set, or followed by bench_scratch, which sets them and the cleanup.

# bench_scratch: for a script that sources this first: $out (bench/out), $stamp, a scratch directory
# $work and $pids, with traps that stop every PID in $pids and remove $work however the run ends (a
# signal ends it through the EXIT trap too, so nothing started outlives it).
bench_scratch() {
  out=bench/out
  mkdir -p "$out"
  stamp=$(date +%Y%m%d-%H%M%S)
  work=$(mktemp -d)
  pids=()
  trap bench_cleanup EXIT
  trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 143' TERM; trap 'exit 141' PIPE
}
bench_cleanup() {
  local status=$?
  set +e
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$work"
  exit "$status"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_port() {
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done
  echo "nothing listening on $1" >&2; exit 1
}

# start_haproxy PORT UPSTREAM_PORT [MAXCONN]: haproxy in the foreground, kept-alive connections to the
# upstream, no limit below MAXCONN client connections (4000). http-no-delay sends each piece of a
# stream as it comes: without it the kernel holds back small writes, and SSE events reach the client
# about 200 ms late. Its PID is in $started_pid.
start_haproxy() {
  cat >"$work/haproxy.cfg" <<CFG
global
  maxconn ${3:-4000}
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  option http-keep-alive
  option http-no-delay
frontend fe
  bind 127.0.0.1:$1
  default_backend sim
backend sim
  http-reuse always
  server sim 127.0.0.1:$2
CFG
  haproxy -db -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1 &
  started_pid=$!
  pids+=("$started_pid")
  wait_port "$1"
}

# start_nginx PORT UPSTREAM_PORT [WORKER_CONNECTIONS]: nginx in the foreground, one worker per core,
# each with up to WORKER_CONNECTIONS (4096) connections, client and upstream sides counted, kept-alive
# connections to the upstream, no buffering (streams pass as they come), no access log. Its PID is in
# $started_pid.
start_nginx() {
  mkdir -p "$work/nginx"
  cat >"$work/nginx.conf" <<CFG
worker_processes auto;
pid $work/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections ${3:-4096}; }
http {
  access_log off;
  client_body_temp_path $work/nginx;
  proxy_temp_path $work/nginx;
  upstream sim { server 127.0.0.1:$2; keepalive 128; }
  server {
    listen 127.0.0.1:$1;
    location / {
      proxy_pass http://sim;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
CFG
  nginx -c "$work/nginx.conf" -g 'daemon off;' >"$work/nginx.out" 2>&1 &
  started_pid=$!
  pids+=("$started_pid")
  wait_port "$1"
}
