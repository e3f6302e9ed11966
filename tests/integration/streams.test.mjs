// Honest streams and the upstream faults that break them, plus what a client disconnect and
// connection reuse do to the upstream, counted by the simulator itself.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import { startSim, startServe, chat, streamChat, eventually } from './lib/harness.mjs';

let sim;
let gw;

before(async () => {
  sim = await startSim(['--tokens', '10', '--itl', '5', '--cancel-on-disconnect']);
  gw = await startServe({ models: [{ name: 'm', endpoints: [{ base_url: sim.base }] }] });
});

after(async () => {
  await gw?.stop();
  await sim?.stop();
});

test('a stream cut after 3 tokens: the client sees an error event, never a finished message', async () => {
  const r = await streamChat(gw.base, { model: 'm' }, { 'x-sim-fault': 'cut-after=3' });
  assert.equal(r.status, 200);
  const last = r.events.at(-1);
  assert.equal(last.event, 'error');
  const err = JSON.parse(last.data).error;
  assert.equal(err.code, 'upstream_reset');
  assert.match(err.message, /ended the response before it was complete/);
  assert.ok(!r.text.includes('[DONE]'));
  assert.ok(!r.text.includes('"finish_reason":"stop"'));
});

test('a malformed event mid-stream is dropped, not relayed; the rest of the stream arrives whole', async () => {
  const r = await streamChat(gw.base, { model: 'm' }, { 'x-sim-fault': 'malformed' });
  assert.ok(r.events.every((e) => e.event !== 'error'));
  assert.ok(r.events.every((e) => e.data === '[DONE]' || (() => { try { JSON.parse(e.data); return true; } catch { return false; } })()),
    'every relayed event is JSON');
  assert.equal(r.events.at(-1).data, '[DONE]');
});

test('a stream cut before its first token: a whole 502 upstream_reset, nothing half-sent', async () => {
  const r = await streamChat(gw.base, { model: 'm' }, { 'x-sim-fault': 'cut-after=0' });
  assert.equal(r.status, 502);
  assert.equal(JSON.parse(r.text).error.code, 'upstream_reset');
});

test('a non-streamed response cut short is a 502 upstream_reset', async () => {
  const r = await chat(gw.base, { model: 'm' }, { 'x-sim-fault': 'cut-after=3' });
  assert.equal(r.status, 502);
  assert.equal(r.json.error.code, 'upstream_reset');
});

test('a connection reset before any answer is a 502 upstream_reset', async () => {
  const r = await chat(gw.base, { model: 'm' }, { 'x-sim-fault': 'reset' });
  assert.equal(r.status, 502);
  assert.equal(r.json.error.code, 'upstream_reset');
  assert.match(r.json.error.message, /closed the connection before answering/);
});

test('an upstream error status passes through with its body', async () => {
  const r = await chat(gw.base, { model: 'm' }, { 'x-sim-fault': 'status=503,retry-after=7' });
  assert.equal(r.status, 503);
  assert.equal(r.headers.get('retry-after'), '7');
  assert.match(r.json.error.message, /Simulated failure/);
  const id = r.headers.get('x-ballast-request-id');
  const line = await eventually(() => gw.accessLog().find((l) => l.id === id));
  assert.equal(line.code, 'upstream_status');
});

// Sends a request with node:http and destroys the socket after `afterMs`.
function abandon(url, body, afterMs, headers = {}) {
  return new Promise((resolve) => {
    const req = http.request(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers } });
    req.on('error', () => resolve());
    req.end(JSON.stringify(body));
    setTimeout(() => { req.destroy(); resolve(); }, afterMs);
  });
}

test('a client that disconnects cancels its upstream request at once (non-streamed)', async () => {
  const before = await sim.stats();
  const started = performance.now();
  // The answer would take 5 s; the client leaves after 100 ms.
  await abandon(`${gw.base}/chat/completions`, { model: 'm', messages: [] }, 100, { 'x-sim-fault': 'slow-first-token=5000' });
  // The simulator (with --cancel-on-disconnect) notices its own client — ballast — leaving.
  await eventually(async () => (await sim.stats()).cancelled > before.cancelled, { timeoutMs: 2_000 });
  const waited = performance.now() - started;
  assert.ok(waited < 400, `upstream cancelled ${waited.toFixed(0)} ms after the request began`);
  const after = await sim.stats();
  assert.equal(after.completed, before.completed);
  assert.equal(after.wasted, before.wasted);
  await eventually(() => gw.accessLog().at(-1)?.code === 'client_disconnected');
  assert.equal(gw.accessLog().at(-1).status, 499);
}, { timeout: 10_000 });

test('a client that disconnects mid-stream cancels the upstream stream', async () => {
  const before = await sim.stats();
  await new Promise((resolve) => {
    const req = http.request(`${gw.base}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' } });
    req.on('response', (res) => {
      res.once('data', () => { req.destroy(); resolve(); });
    });
    req.on('error', () => {});
    req.end(JSON.stringify({ model: 'm', stream: true, messages: [] }));
  });
  await eventually(async () => (await sim.stats()).cancelled > before.cancelled, { timeoutMs: 2_000 });
  assert.equal((await sim.stats()).completed, before.completed);
});

test('sequential requests reuse one upstream connection', async () => {
  const fresh = await startSim([]);
  // Each worker has its own pool, and a client's second connection may land on another worker:
  // one worker makes "one upstream connection" exact.
  const g = await startServe({ workers: 1, models: [{ name: 'm', endpoints: [{ base_url: fresh.base }] }] });
  try {
    for (let i = 0; i < 20; i++) assert.equal((await chat(g.base, { model: 'm' })).status, 200);
    for (let i = 0; i < 5; i++) assert.equal((await streamChat(g.base, { model: 'm' })).status, 200);
    const stats = await fresh.stats();
    assert.equal(stats.requests, 25);
    // One connection for the 25 requests; the stats request itself is a second one.
    assert.equal(stats.connections, 2);
    const reused = g.accessLog().filter((l) => l.attempts[0].reused_connection).length;
    assert.equal(reused, 24);
  } finally {
    await g.stop();
    await fresh.stop();
  }
});

function rssBytes(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(status.match(/VmRSS:\s+(\d+) kB/)[1]) * 1024;
}

test('a slow reader slows its upstream transfer instead of growing memory', async (t) => {
  // About 30 MB of stream, produced as fast as the simulator can write it.
  const big = await startSim(['--tokens', '200000']);
  // Under AddressSanitizer freed memory is quarantined, not reused, so RSS would count every byte
  // that passed through rather than what is held: the quarantine is off for this one process.
  const g = await startServe({ workers: 1, models: [{ name: 'm', endpoints: [{ base_url: big.base }] }] },
    { env: { ASAN_OPTIONS: 'quarantine_size_mb=0:thread_local_quarantine_size_kb=0' } });
  try {
    const before = rssBytes(g.proc.pid);
    let received = 0;
    let peak = 0;
    const done = new Promise((resolve, reject) => {
      const req = http.request(`${g.base}/chat/completions`, { method: 'POST' }, (res) => {
        res.once('data', (d) => {
          received += d.length;
          res.pause();  // the client stops reading
          const sample = setInterval(() => { peak = Math.max(peak, rssBytes(g.proc.pid)); }, 50);
          setTimeout(() => {
            clearInterval(sample);
            res.on('data', (chunk) => { received += chunk.length; });
            res.on('end', resolve);
            res.resume();
          }, 1_500);
        });
      });
      req.on('error', reject);
      req.end('{"model":"m","stream":true,"messages":[]}');
    });
    await done;
    assert.ok(received > 25_000_000, `the whole stream arrived (${received} bytes)`);
    const growth = peak - before;
    t.diagnostic(`RSS growth while the client paused: ${(growth / 1048576).toFixed(1)} MiB of a ${(received / 1048576).toFixed(1)} MiB stream`);
    assert.ok(growth < 16 * 1024 * 1024, `ballast grew by ${(growth / 1048576).toFixed(1)} MiB while the client did not read`);
  } finally {
    await g.stop();
    await big.stop();
  }
}, { timeout: 60_000 });
