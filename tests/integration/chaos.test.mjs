// The chaos suite: every fault `ballast sim` can inject, and what a client using the OpenAI Node
// SDK at its default settings (2 retries, 10 minute timeout) must see through ballast. Faults are
// scripted per request (x-sim-fault) or per simulator, never left to chance.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { chat, eventually, stopAfterAll } from './lib/harness.mjs';

const BOUND = 1000; // ms: the first-byte, first-token and stream-idle bounds below
const BACKOFF_BASE = 250; // ms: the first retry waits at most this (full jitter)
const messages = [{ role: 'user', content: 'hi' }];
const { sim, serve } = stopAfterAll();

// The SDK as an app would build it: only baseURL changes.
const sdk = (gw, options = {}) => new OpenAI({ baseURL: gw.base, apiKey: 'sk-app', ...options });

async function failure(promise) {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  assert.fail('expected the call to fail');
}

test('one of two endpoints blackholed: ≥99.5% of 500 requests succeed, none waits past the first-byte bound plus backoff', async () => {
  const good = await sim(['--ttft', '5', '--itl', '1', '--tokens', '4']);
  const bad = await sim(['--fault', 'blackhole']);
  const gw = await serve({
    timeouts: { first_byte: `${BOUND}ms` },
    models: [{ name: 'm', endpoints: [{ base_url: good.base }, { base_url: bad.base }] }],
  });
  const client = sdk(gw);
  let left = 500;
  let ok = 0;
  let slowest = 0;
  const worker = async () => {
    while (left > 0) {
      left--;
      const started = performance.now();
      try {
        const r = await client.chat.completions.create({ model: 'm', messages });
        if (r.choices[0].finish_reason === 'stop') ok++;
      } catch { /* counted as not ok */ }
      slowest = Math.max(slowest, performance.now() - started);
    }
  };
  await Promise.all(Array.from({ length: 25 }, worker));
  assert.ok(ok >= 498, `${ok} of 500 succeeded`);
  // A request that met the blackhole first waited the bound, the first retry's backoff, then the good
  // endpoint's answer (tens of ms; 300 ms allowed for a loaded machine).
  assert.ok(slowest <= BOUND + BACKOFF_BASE + 300, `slowest request took ${slowest.toFixed(0)} ms`);
  // The blackholed endpoint was ejected, so most requests never met it.
  assert.match(gw.stderr, /endpoint 127\.0\.0\.1:\d+ of model 'm' ejected for 30s/);
  // Only the first second's requests (at most the 25 in flight) can have met it before the ejection.
  const log = await eventually(() => { const l = gw.accessLog(); return l.length === 500 && l; });
  const retried = log.filter((l) => l.attempts.length > 1).length;
  assert.ok(retried <= 25, `${retried} requests needed a retry`);
});

test('a lone endpoint answering 503: one retry on it per request, and fewer once the budget is spent', async () => {
  const a = await sim(['--fault', 'status=503']);
  const gw = await serve({
    retries: { max_attempts: 3, budget_ratio: 0.2, budget_min_per_s: 1 }, // 10 retries per 10 s window, + 20% of requests
    models: [{ name: 'm', endpoints: [{ base_url: a.base }] }],
  });
  const client = sdk(gw);
  // Three requests one after another: each is retried once on the same endpoint (a second failure
  // there, with no other endpoint, ends it), and the SDK does not add its own.
  for (let i = 0; i < 3; i++) {
    const e = await failure(client.chat.completions.create({ model: 'm', messages }));
    assert.equal(e.status, 503);
    assert.equal(e.headers.get('x-ballast-attempts'), '2');
    assert.equal(e.headers.get('x-should-retry'), 'false');
  }
  const generations = async () => { const st = await a.stats(); return st.requests - st.model_listings; };
  assert.equal(await generations(), 6);
  // Forty at once: the budget (0.2 × 43 requests + 10 = 18 retries in the window, 3 spent) runs out.
  const errors = await Promise.all(
    Array.from({ length: 40 }, () => failure(client.chat.completions.create({ model: 'm', messages }))),
  );
  assert.ok(errors.every((e) => e.status === 503 && e.headers.get('x-should-retry') === 'false'));
  const seen = (await generations()) - 6;
  assert.ok(seen >= 40 && seen <= 40 + 16, `the simulator saw ${seen} attempts for 40 requests`);
  assert.ok(seen < 2 * 40);
  const metrics = await (await fetch(`${gw.url}/metrics`)).text();
  assert.match(metrics, /ballast_retries_denied_total\{model="m",why="budget"\} \d+/);
});

test('the SDK\'s own retries (x-stainless-retry-count) spend the same budget as ballast\'s', async () => {
  const a = await sim(['--fault', 'status=503']);
  const gw = await serve({
    retries: { budget_ratio: 0, budget_min_per_s: 0.1 }, // one retry per 10 s window
    models: [{ name: 'm', endpoints: [{ base_url: a.base }] }],
  });
  // A request the SDK is already retrying takes the window's one retry …
  const retried = await chat(gw.base, { model: 'm' }, { 'x-stainless-retry-count': '1' });
  assert.equal(retried.headers.get('x-ballast-attempts'), '1');
  // … so ballast does not retry the next one, and says the client should not either.
  const next = await chat(gw.base, { model: 'm' });
  assert.equal(next.status, 503);
  assert.equal(next.headers.get('x-ballast-attempts'), '1');
  assert.equal(next.headers.get('x-should-retry'), 'false');
  assert.equal((await a.stats()).requests, 2);
});

test('429 with Retry-After: 1: the retry comes no sooner than a second later', async () => {
  const s = await sim(['--fault', 'status=429,retry-after=1']);
  const gw = await serve({ models: [{ name: 'm', endpoints: [{ base_url: s.base }] }] });
  const started = performance.now();
  const call = sdk(gw).chat.completions.create({ model: 'm', messages });
  // Once the first attempt has met the 429, the simulator recovers.
  await eventually(async () => (await s.stats()).requests >= 1);
  await fetch(`${s.url}/sim/faults`, { method: 'DELETE' });
  const r = await call;
  assert.equal(r.choices[0].finish_reason, 'stop');
  assert.ok(performance.now() - started >= 1000);
  const line = await eventually(() => gw.accessLog().find((l) => l.status === 200));
  assert.equal(line.attempts.length, 2);
  assert.equal(line.attempts[0].status, 429);
  assert.ok(line.backoff_ms >= 1000, `waited ${line.backoff_ms} ms before the retry`);
});

test('a stream cut after 3 tokens: the client sees an error, never a finished message', async () => {
  const s = await sim(['--itl', '5']);
  const gw = await serve({ models: [{ name: 'm', endpoints: [{ base_url: s.base }] }] });
  const stream = await sdk(gw).chat.completions.create(
    { model: 'm', messages, stream: true },
    { headers: { 'x-sim-fault': 'cut-after=3' } },
  );
  const chunks = [];
  const e = await failure((async () => { for await (const c of stream) chunks.push(c); })());
  assert.match(String(e.message), /upstream_reset|ended|closed|cut/i);
  assert.ok(chunks.length >= 1);
  assert.ok(chunks.every((c) => !c.choices?.[0]?.finish_reason), 'no finish_reason was made up');
});

test('a stall mid-stream: an error within the idle bound', async () => {
  const s = await sim(['--itl', '5']);
  const gw = await serve({
    timeouts: { stream_idle: `${BOUND}ms` },
    models: [{ name: 'm', endpoints: [{ base_url: s.base }] }],
  });
  const stream = await sdk(gw).chat.completions.create(
    { model: 'm', messages, stream: true },
    { headers: { 'x-sim-fault': 'stall-after=3' } },
  );
  let last = performance.now();
  const e = await failure((async () => {
    for await (const c of stream) {
      assert.ok(!c.choices?.[0]?.finish_reason);
      last = performance.now();
    }
  })());
  const gap = performance.now() - last;
  assert.match(String(e.message), /went silent .*timeouts\.stream_idle/);
  assert.ok(gap >= BOUND * 0.95 && gap <= BOUND * 1.2, `the error came ${gap.toFixed(0)} ms after the last chunk`);
});

// The rest of the faults, one request each through one gateway, with what the client must see.
test('every other fault, as the client sees it', async (t) => {
  const s = await sim(['--itl', '5', '--tokens', '8']);
  const gw = await serve({
    timeouts: { first_byte: `${BOUND}ms`, first_token: `${BOUND}ms`, stream_idle: `${BOUND}ms` },
    // A lone endpoint failing on purpose must not be ejected between cases.
    outlier: { consecutive_failures: 1000 },
    models: [{ name: 'm', endpoints: [{ base_url: s.base, health_check: false }] }],
  });
  // Counts what the SDK sends: its own retries happen before its promise settles.
  let sent = 0;
  const client = sdk(gw, { fetch: (url, init) => { sent++; return fetch(url, init); } });
  const requests = async () => (await s.stats()).requests;
  // A lone endpoint: a fast transient failure is retried on it once; a silent one (no answer
  // within a bound) never is, and is answered at once, leaving the SDK free to retry it later.
  const cases = [
    { fault: 'status=400', status: 400, attempts: 1, why: 'a request bug is surfaced at once, never retried' },
    { fault: 'status=500', status: 500, attempts: 2, why: 'retried once by ballast, then passed through' },
    // A reused connection that dies before answering is not re-sent behind ballast's back: every
    // request the simulator sees is an attempt ballast counted.
    { fault: 'reset', status: 502, code: 'upstream_reset', attempts: 2 },
    { fault: 'blackhole', status: 504, code: 'first_byte_timeout', attempts: 1, silent: true },
    { fault: 'cut-after=3', status: 502, code: 'upstream_reset', attempts: 2, why: 'a body cut short is never passed on' },
    { fault: 'slow-first-token=3000', stream: true, status: 504, code: 'first_token_timeout', attempts: 1, silent: true },
    { fault: 'keepalive-only', stream: true, status: 504, code: 'first_token_timeout', attempts: 1, silent: true },
  ];
  for (const c of cases) {
    await t.test(`${c.fault}${c.stream ? ' (stream)' : ''} → ${c.status} ${c.code ?? ''}`, async () => {
      const before = await requests();
      const sentBefore = sent;
      const e = await failure(
        client.chat.completions.create({ model: 'm', messages, stream: !!c.stream }, { headers: { 'x-sim-fault': c.fault } }),
      );
      assert.equal(e.status, c.status);
      if (c.code) assert.equal(e.code, c.code);
      assert.equal(e.headers.get('x-ballast-attempts'), String(c.attempts));
      const sends = sent - sentBefore;
      if (c.silent) {
        // One attempt, answered at the bound: retrying may help, so the SDK may (its 2 retries).
        assert.equal(e.headers.get('x-should-retry'), null);
        assert.equal(sends, 3);
      } else {
        assert.equal(e.headers.get('x-should-retry'), 'false', 'the SDK must not stack its retries on ballast\'s');
        assert.equal(sends, 1, 'the SDK did not retry on top');
      }
      const seen = (await requests()) - before;
      assert.equal(seen, c.attempts * sends);
    });
  }
  await t.test('slow-headers below the bound → a normal answer', async () => {
    const r = await client.chat.completions.create({ model: 'm', messages }, { headers: { 'x-sim-fault': 'slow-headers=300' } });
    assert.equal(r.choices[0].finish_reason, 'stop');
  });
  await t.test('malformed (stream) → the invalid event is dropped, the rest of the answer arrives whole', async () => {
    const stream = await client.chat.completions.create({ model: 'm', messages, stream: true }, { headers: { 'x-sim-fault': 'malformed' } });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    assert.equal(chunks.at(-1).choices[0].finish_reason, 'stop');
  });
  await t.test('status=429 asking for 2 minutes (over retry_after_cap) → passed back at once with its Retry-After', async () => {
    const started = performance.now();
    const e = await failure(
      sdk(gw, { maxRetries: 0 }).chat.completions.create({ model: 'm', messages }, { headers: { 'x-sim-fault': 'status=429,retry-after=120' } }),
    );
    assert.equal(e.status, 429);
    assert.equal(e.headers.get('retry-after'), '120');
    assert.equal(e.headers.get('x-ballast-attempts'), '1');
    assert.ok(performance.now() - started < 500);
  });
});
