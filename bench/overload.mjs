// The scenario ballast exists for, measured side by side in one run: 200 requests at once from the
// OpenAI Node SDK (timeout 10 s, its default 2 retries) against a simulator that serves 8 at a time
// (`--capacity 8 --ttft 100 --itl 20 --tokens 40`, ~0.9 s per answer), reached
//   (a) directly,
//   (b) through ballast with max_in_flight: 8,
//   (c) through haproxy with maxconn 8 and a queue,
//   (d) directly, behind a client-side semaphore of 8.
// For each: requests that succeeded, client timeouts, fast refusals (a 429/503 the SDK gave up on),
// p50/p99 latency (from the app's call, retries and semaphore waits included), HTTP attempts the
// SDK made, and the simulator's wasted work (answers generated for a client that had gone).
// Not a test: it prints figures. Everything it starts, it stops. Only 127.0.0.1.
//   node bench/overload.mjs [REQUESTS]
// Env: SCENARIOS=abcd (a subset to run), BALLAST_ACCESS_LOG=FILE (ballast's access log; off by default).
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { startSim, startServe, tempDir, freePort, waitForPort } from '../tests/integration/lib/harness.mjs';

const require = createRequire(new URL('../tests/integration/package.json', import.meta.url));
const OpenAI = require('openai');

const REQUESTS = Number(process.argv[2] ?? 200);
const CAPACITY = 8;
const SIM_FLAGS = ['--capacity', String(CAPACITY), '--ttft', '100', '--itl', '20', '--tokens', '40'];
const CLIENT_TIMEOUT = 10_000;
// ballast and haproxy let a request wait at most this long for a slot: below the client's 10 s
// timeout by more than one answer's 0.9 s, since the SDK does not send its client-wide timeout.
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

async function scenario(name, sim, baseURL, { limitClient = false } = {}) {
  let attempts = 0;
  const client = new OpenAI({
    baseURL,
    apiKey: 'sk-bench',
    timeout: CLIENT_TIMEOUT,
    fetch: (url, init) => { attempts++; return fetch(url, init); },
  });
  const gate = limitClient ? semaphore(CAPACITY) : null;
  const r = { name, ok: 0, timeouts: 0, refusals: 0, other: 0, latencies: [] };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: REQUESTS }, async () => {
    const started = performance.now();
    const release = gate ? await gate.acquire() : null;
    try {
      await client.chat.completions.create({ model: 'm', messages });
      r.ok++;
      r.latencies.push(performance.now() - started);
    } catch (e) {
      if (e instanceof OpenAI.APIConnectionTimeoutError) r.timeouts++;
      else if (e.status === 429 || e.status === 503) r.refusals++;
      else r.other++;
    } finally {
      release?.();
    }
  }));
  r.wall = performance.now() - t0;
  r.attempts = attempts;
  const stats = await settle(sim);
  r.completed = stats.completed;
  r.wasted = stats.wasted;
  r.latencies.sort((a, b) => a - b);
  return r;
}

const only = process.env.SCENARIOS ?? 'abcd';
const results = [];
if (only.includes('a')) {
  const sim = await startSim(SIM_FLAGS);
  results.push(await scenario('(a) direct', sim, sim.base));
  await sim.stop();
}
if (only.includes('b')) {
  const sim = await startSim(SIM_FLAGS);
  const gw = await startServe({
    log: { access: process.env.BALLAST_ACCESS_LOG ?? 'off' },
    timeouts: { queue: QUEUE_TIMEOUT },
    models: [{ name: 'm', endpoints: [{ base_url: sim.base, max_in_flight: CAPACITY }] }],
  });
  results.push(await scenario('(b) ballast max_in_flight 8', sim, gw.base));
  await gw.stop();
  await sim.stop();
}
if (only.includes('c')) {
  const sim = await startSim(SIM_FLAGS);
  const haproxy = await startHaproxy(Number(sim.address.split(':').pop()));
  results.push(await scenario('(c) haproxy maxconn 8', sim, haproxy.base));
  await haproxy.stop();
  await sim.stop();
}
if (only.includes('d')) {
  const sim = await startSim(SIM_FLAGS);
  results.push(await scenario('(d) client semaphore 8', sim, sim.base, { limitClient: true }));
  await sim.stop();
}

const s = (ms) => (Number.isNaN(ms) ? '-' : `${(ms / 1000).toFixed(2)}s`);
console.log(`${REQUESTS} requests at once, OpenAI SDK (timeout ${CLIENT_TIMEOUT / 1000} s, 2 retries) → ballast sim ${SIM_FLAGS.join(' ')}\n`);
console.log('| scenario | succeeded | client timeouts | fast refusals | other errors | p50 | p99 | all done | SDK attempts | sim completed | sim wasted |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|');
for (const r of results) {
  console.log(`| ${r.name} | ${r.ok} | ${r.timeouts} | ${r.refusals} | ${r.other} | ${s(percentile(r.latencies, 50))} | ${s(percentile(r.latencies, 99))} | ${s(r.wall)} | ${r.attempts} | ${r.completed} | ${r.wasted} |`);
}
const ballast = results.find((r) => r.name.startsWith('(b)'));
const others = results.filter((r) => r !== ballast);
if (ballast && others.length) {
  const best = Math.max(...others.map((r) => r.ok));
  console.log(`\nballast: ${ballast.ok} succeeded (best of the others: ${best}), ${ballast.timeouts} client timeouts, ${ballast.wasted} wasted answers.`);
}
