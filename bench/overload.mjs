// The scenario ballast exists for, measured side by side in one run: 200 requests from the OpenAI
// Node SDK (timeout 10 s, its default 2 retries) against a simulator that serves 8 at a time
// (`--capacity 8 --ttft 100 --itl 20 --tokens 40`, ~0.9 s per answer), in one of two app shapes —
// `burst`: one process firing all 200 at once (asyncio.gather-style); `workers`: 8 workers, each
// its own client capped at 20 calls in flight (gunicorn-style) — reached
//   (a) directly,
//   (b) through ballast with max_in_flight: 8 and every other setting at its default (no
//       timeouts.queue: the SDK sends no deadline for a client-wide timeout),
//   (c) through haproxy with maxconn 8 and a queue timeout tuned by hand below the client's,
//   (d) directly, behind a client-side semaphore of 8,
// and, run only when asked for (bench/peers.sh does):
//   (e) through nginx, which has no queue in front of an upstream (max_conns only refuses), so no limit,
//   (f) through LiteLLM's proxy with max_parallel_requests adding up to 8 over its workers (it counts
//       per worker process, and refuses with a 429 when they are taken),
//   (g) through LiteLLM's proxy with no limit.
// For each: requests that succeeded, client timeouts, fast refusals (a 429/503 the SDK gave up on),
// p50/p99 latency (from the app's call, retries and semaphore waits included), HTTP attempts the
// SDK made, the requests the simulator received (more than the attempts: a proxy retried on its own),
// the simulator's wasted work (answers it finished after its client, the proxy, had gone) and the
// answers nobody read (answers generated, wasted ones included, minus the calls that succeeded: this
// also counts an answer a proxy read to the end for a client that had already gone, which the simulator
// cannot tell from one that was delivered).
// Not a test: it prints figures. Everything it starts, it stops. Only 127.0.0.1.
//   node bench/overload.mjs [REQUESTS]
// Env: SCENARIOS=abcd (a subset to run, from abcdefg), SHAPES=burst,workers (which app shapes), STREAM=1
// (streamed calls, each read to its end), BALLAST_ACCESS_LOG=FILE (ballast's access log; off by
// default), OVERLOAD_JSON=FILE (the results as JSON too), LITELLM_WORKERS (bench/litellm/serve.sh).
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startSim, startServe, tempDir, freePort, waitForPort } from '../tests/integration/lib/harness.mjs';

const require = createRequire(new URL('../tests/integration/package.json', import.meta.url));
const OpenAI = require('openai');

const REQUESTS = Number(process.argv[2] ?? 200);
const CAPACITY = 8;
const SIM_FLAGS = ['--capacity', String(CAPACITY), '--ttft', '100', '--itl', '20', '--tokens', '40'];
const CLIENT_TIMEOUT = 10_000;
const STREAM = process.env.STREAM === '1';
// haproxy lets a request wait at most this long for a slot: below the client's 10 s timeout by
// more than one answer's 0.9 s, set by hand (the SDK does not send its client-wide timeout).
// ballast is left at its defaults.
const QUEUE_TIMEOUT = '8s';
const messages = [{ role: 'user', content: 'Summarise the plot of Hamlet in three sentences.' }];

async function startHaproxy(simPort) {
  const port = await freePort();
  const cfg = path.join(tempDir(), 'haproxy.cfg');
  fs.writeFileSync(cfg, `global
  maxconn 4000
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout queue ${QUEUE_TIMEOUT}
  option abortonclose
frontend fe
  bind 127.0.0.1:${port}
  default_backend sim
backend sim
  server sim 127.0.0.1:${simPort} maxconn ${CAPACITY}
`);
  const proc = spawn('haproxy', ['-db', '-f', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
  await waitForPort(port);
  return { base: `http://127.0.0.1:${port}/v1`, stop: () => new Promise((r) => { proc.on('exit', r); proc.kill('SIGTERM'); }) };
}

async function startNginx(simPort) {
  const port = await freePort();
  const dir = tempDir();
  const cfg = path.join(dir, 'nginx.conf');
  // As bench/throughput.sh runs it; proxy_read_timeout stays at its 60 s.
  fs.writeFileSync(cfg, `worker_processes auto;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir};
  proxy_temp_path ${dir};
  upstream sim { server 127.0.0.1:${simPort}; keepalive 128; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://sim;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
`);
  const proc = spawn('nginx', ['-c', cfg, '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
  await waitForPort(port);
  return { base: `http://127.0.0.1:${port}/v1`, stop: () => new Promise((r) => { proc.on('exit', r); proc.kill('SIGTERM'); }) };
}

// bench/litellm/serve.sh in the foreground; it says "ready" once every worker answers, and takes LiteLLM's
// whole process tree down with it on SIGTERM.
const LITELLM_WORKERS = Number(process.env.LITELLM_WORKERS ?? 2);
async function startLiteLLM(simBase, maxParallelPerWorker) {
  const port = await freePort();
  const script = fileURLToPath(new URL('./litellm/serve.sh', import.meta.url));
  const args = [String(port), simBase, ...(maxParallelPerWorker ? [String(maxParallelPerWorker)] : [])];
  const proc = spawn(script, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LITELLM_WORKERS: String(LITELLM_WORKERS) } });
  let out = '';
  let err = '';
  proc.stderr.on('data', (d) => { err += d; });
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGTERM');
      reject(new Error(`LiteLLM not ready within 240 s:\n${err.slice(-2000)}`));
    }, 240_000);
    proc.stdout.on('data', (d) => {
      out += d;
      if (/^ready$/m.test(out)) { clearTimeout(timer); resolve(); }
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`LiteLLM exited with ${code}:\n${err.slice(-2000)}`)); });
  });
  return {
    base: `http://127.0.0.1:${port}/v1`,
    log: () => err,
    stop: () => new Promise((r) => {
      if (proc.exitCode !== null || proc.signalCode !== null) return r();
      proc.on('exit', r);
      proc.kill('SIGTERM');
    }),
  };
}

function semaphore(n) {
  let free = n;
  const waiting = [];
  return {
    async acquire() {
      if (free > 0) free--;
      else await new Promise((r) => waiting.push(r));
      return () => {
        const next = waiting.shift();
        if (next) next();
        else free++;
      };
    },
  };
}

function percentile(sorted, p) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function settle(sim) {
  // Let the simulator finish what it still holds (work for clients that left counts as wasted).
  for (let i = 0; i < 600; i++) {
    const s = await sim.stats();
    if (s.in_flight === 0 && s.queued === 0) return s;
    await new Promise((r) => setTimeout(r, 100));
  }
  return sim.stats();
}

// The app's shape: how many clients (each its own OpenAI instance, as separate worker processes
// would have) and how many calls each may have in flight.
function appShape(shape) {
  if (shape === 'workers') return { clients: 8, perClient: 20 };
  return { clients: 1, perClient: Infinity };
}

async function scenario(name, proxy, sim, baseURL, shape, { limitClient = false } = {}) {
  let attempts = 0;
  const { clients, perClient } = appShape(shape);
  const makeClient = () => new OpenAI({
    baseURL,
    apiKey: 'sk-bench',
    timeout: CLIENT_TIMEOUT,
    fetch: (url, init) => { attempts++; return fetch(url, init); },
  });
  const apps = Array.from({ length: clients }, () => ({
    client: makeClient(),
    gate: Number.isFinite(perClient) ? semaphore(perClient) : null,
  }));
  const gate = limitClient ? semaphore(CAPACITY) : null;
  const r = { name: `${name}, ${shape}${STREAM ? ', streamed' : ''}`, proxy, shape: `${shape}${STREAM ? ', streamed' : ''}`, ok: 0, timeouts: 0, refusals: 0, other: 0, latencies: [] };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: REQUESTS }, async (_, i) => {
    const app = apps[i % clients];
    const started = performance.now();
    const releaseApp = app.gate ? await app.gate.acquire() : null;
    const release = gate ? await gate.acquire() : null;
    try {
      if (STREAM) {
        const stream = await app.client.chat.completions.create({ model: 'm', messages, stream: true });
        for await (const _chunk of stream) { /* read to the end */ }
      } else {
        await app.client.chat.completions.create({ model: 'm', messages });
      }
      r.ok++;
      r.latencies.push(performance.now() - started);
    } catch (e) {
      if (e instanceof OpenAI.APIConnectionTimeoutError) r.timeouts++;
      else if (e.status === 429 || e.status === 503) r.refusals++;
      else r.other++;
    } finally {
      release?.();
      releaseApp?.();
    }
  }));
  r.wall = performance.now() - t0;
  r.attempts = attempts;
  const stats = await settle(sim);
  r.simRequests = stats.requests - stats.model_listings;
  r.completed = stats.completed;
  r.wasted = stats.wasted;
  r.unread = stats.completed + stats.wasted - r.ok;
  r.latencies.sort((a, b) => a - b);
  return r;
}

const only = process.env.SCENARIOS ?? 'abcd';
const shapes = (process.env.SHAPES ?? 'burst,workers').split(',');
const results = [];
for (const shape of shapes) {
  if (only.includes('a')) {
    const sim = await startSim(SIM_FLAGS);
    results.push(await scenario('(a) direct', 'direct', sim, sim.base, shape));
    await sim.stop();
  }
  if (only.includes('b')) {
    const sim = await startSim(SIM_FLAGS);
    const gw = await startServe({
      log: { access: process.env.BALLAST_ACCESS_LOG ?? 'off' },
      models: [{ name: 'm', endpoints: [{ base_url: sim.base, max_in_flight: CAPACITY }] }],
    });
    results.push(await scenario('(b) ballast max_in_flight 8', 'ballast', sim, gw.base, shape));
    await gw.stop();
    await sim.stop();
  }
  if (only.includes('c')) {
    const sim = await startSim(SIM_FLAGS);
    const haproxy = await startHaproxy(Number(sim.address.split(':').pop()));
    results.push(await scenario('(c) haproxy maxconn 8', 'haproxy', sim, haproxy.base, shape));
    await haproxy.stop();
    await sim.stop();
  }
  if (only.includes('d')) {
    const sim = await startSim(SIM_FLAGS);
    results.push(await scenario('(d) client semaphore 8', 'semaphore', sim, sim.base, shape, { limitClient: true }));
    await sim.stop();
  }
  if (only.includes('e')) {
    const sim = await startSim(SIM_FLAGS);
    const nginx = await startNginx(Number(sim.address.split(':').pop()));
    results.push(await scenario('(e) nginx, no limit', 'nginx', sim, nginx.base, shape));
    await nginx.stop();
    await sim.stop();
  }
  for (const [letter, perWorker] of [['f', Math.max(1, Math.floor(CAPACITY / LITELLM_WORKERS))], ['g', 0]]) {
    if (!only.includes(letter)) continue;
    const sim = await startSim(SIM_FLAGS);
    const litellm = await startLiteLLM(sim.base, perWorker);
    const name = perWorker
      ? `(${letter}) LiteLLM max_parallel_requests ${perWorker} × ${LITELLM_WORKERS} workers`
      : `(${letter}) LiteLLM, no limit (${LITELLM_WORKERS} workers)`;
    results.push(await scenario(name, perWorker ? 'litellm' : 'litellm-unlimited', sim, litellm.base, shape));
    await litellm.stop();
    await sim.stop();
    const errors = litellm.log().split('\n').filter((l) => /error|exception/i.test(l));
    if (errors.length) console.error(`${name}: ${errors.length} error lines in LiteLLM's log, the first: ${errors[0].slice(0, 300)}`);
  }
}

const s = (ms) => (Number.isNaN(ms) ? '-' : `${(ms / 1000).toFixed(2)}s`);
console.log(`${REQUESTS} requests (${shapes.join(', ')}${STREAM ? ', streamed' : ''}), OpenAI SDK (timeout ${CLIENT_TIMEOUT / 1000} s, 2 retries) → ballast sim ${SIM_FLAGS.join(' ')}\n`);
console.log('| scenario | succeeded | client timeouts | fast refusals | other errors | p50 | p99 | all done | SDK attempts | sim requests | sim completed | sim wasted | unread answers |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
for (const r of results) {
  console.log(`| ${r.name} | ${r.ok} | ${r.timeouts} | ${r.refusals} | ${r.other} | ${s(percentile(r.latencies, 50))} | ${s(percentile(r.latencies, 99))} | ${s(r.wall)} | ${r.attempts} | ${r.simRequests} | ${r.completed} | ${r.wasted} | ${r.unread} |`);
}
if (process.env.OVERLOAD_JSON) {
  fs.writeFileSync(process.env.OVERLOAD_JSON, JSON.stringify(results.map(({ latencies, ...r }) => ({
    ...r, p50_ms: percentile(latencies, 50), p99_ms: percentile(latencies, 99),
  })), null, 2));
}
for (const ballast of results.filter((r) => r.name.startsWith('(b)'))) {
  const shape = ballast.name.split(', ').slice(1).join(', ');
  const others = results.filter((r) => r !== ballast && r.name.endsWith(shape));
  const best = others.length ? ` (best of the others: ${Math.max(...others.map((r) => r.ok))})` : '';
  console.log(`\nballast, ${shape}: ${ballast.ok} succeeded${best}, ${ballast.timeouts} client timeouts, ${ballast.wasted} wasted answers.`);
}
