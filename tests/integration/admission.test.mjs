// Admission and limits: max_in_flight with its fair, deadline-aware queue, the adaptive limit,
// rpm/tpm per endpoint and per client key, priority tiers, ejection and readmission, /metrics.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chat, eventually, stopAfterAll } from './lib/harness.mjs';

const { sim, serve } = stopAfterAll();

const one = (endpoint, extra = {}) => ({ models: [{ name: 'm', endpoints: [endpoint] }], ...extra });
const metric = async (gw, name) => {
  const text = await (await fetch(`${gw.url}/metrics`)).text();
  const m = text.match(new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, 'm'));
  return m ? Number(m[1]) : undefined;
};

test('max_in_flight caps what reaches the upstream; the rest wait their turn and all succeed', async () => {
  const s = await sim(['--ttft', '200', '--tokens', '2']);
  const gw = await serve(one({ base_url: s.base, max_in_flight: 2 }));
  const results = await Promise.all(Array.from({ length: 8 }, () => chat(gw.base, { model: 'm' })));
  assert.deepEqual(results.map((r) => r.status), Array(8).fill(200));
  assert.equal((await s.stats()).max_in_flight, 2);
  const waited = (await eventually(() => { const l = gw.accessLog(); return l.length === 8 && l; }))
    .filter((l) => l.queue_ms > 100).length;
  assert.ok(waited >= 5, `${waited} requests waited in the queue`);
});

test('a full queue → 503 queue_full at once, with Retry-After', async () => {
  const s = await sim(['--ttft', '500', '--tokens', '1']);
  const gw = await serve(one({ base_url: s.base, max_in_flight: 1, queue: 1 }));
  const first = chat(gw.base, { model: 'm' });
  const second = chat(gw.base, { model: 'm' });
  await eventually(async () => (await metric(gw, 'ballast_queue_depth')) === 1);
  const third = await chat(gw.base, { model: 'm' });
  assert.equal(third.status, 503);
  assert.equal(third.json.error.code, 'queue_full');
  assert.ok(third.ms < 100, `refused after ${third.ms.toFixed(0)} ms`);
  assert.ok(Number(third.headers.get('retry-after')) >= 1);
  assert.ok(Number(third.headers.get('retry-after-ms')) > 0);
  assert.equal(third.headers.get('x-should-retry'), null, 'the client may retry after Retry-After');
  assert.equal((await first).status, 200);
  assert.equal((await second).status, 200);
});

test('a request that could not start before its deadline is refused at once, not after waiting', async () => {
  const s = await sim(['--ttft', '1000', '--tokens', '1']);
  const gw = await serve(one({ base_url: s.base, max_in_flight: 1 }));
  assert.equal((await chat(gw.base, { model: 'm' })).status, 200); // ballast learns a slot is held ~1 s
  await eventually(() => gw.accessLog().length === 1); // and has released it
  const busy = chat(gw.base, { model: 'm' });
  await eventually(async () => (await s.stats()).in_flight === 1);
  const hurried = await chat(gw.base, { model: 'm' }, { 'x-ballast-timeout': '0.8' });
  assert.equal(hurried.status, 503);
  assert.equal(hurried.json.error.code, 'queue_timeout');
  assert.match(hurried.json.error.message, /could not start before its deadline/);
  assert.ok(hurried.ms < 150, `refused after ${hurried.ms.toFixed(0)} ms`);
  // Never a promise past the client's own deadline (0.8 s, met 5% early): whole seconds round to 0.
  const ms = Number(hurried.headers.get('retry-after-ms'));
  assert.ok(ms >= 1 && ms <= 760, `retry-after-ms ${ms}`);
  assert.equal(hurried.headers.get('retry-after'), '0');
  assert.equal((await busy).status, 200);
});

test('timeouts.queue: a request that waited too long → 503 queue_timeout', async () => {
  const s = await sim(['--ttft', '1500', '--tokens', '1']);
  const gw = await serve(one({ base_url: s.base, max_in_flight: 1 }, { timeouts: { queue: '300ms' } }));
  const busy = chat(gw.base, { model: 'm' });
  await eventually(async () => (await metric(gw, 'ballast_in_flight')) === 1);
  const waited = await chat(gw.base, { model: 'm' });
  assert.equal(waited.status, 503);
  assert.equal(waited.json.error.code, 'queue_timeout');
  assert.ok(waited.ms >= 290 && waited.ms < 600, `answered after ${waited.ms.toFixed(0)} ms`);
  assert.equal((await busy).status, 200);
});

test('max_in_flight: auto settles near the simulator\'s real capacity', async () => {
  // Beyond 8 the simulator queues, and time to first token climbs: the signal the limit follows.
  const s = await sim(['--capacity', '8', '--ttft', '10', '--itl', '3', '--tokens', '15']);
  const gw = await serve(one({ base_url: s.base, max_in_flight: 'auto' }));
  let left = 1000;
  const worker = async () => {
    while (left-- > 0) await chat(gw.base, { model: 'm', stream: true });
  };
  const limits = [];
  const sampler = setInterval(async () => limits.push(await metric(gw, 'ballast_max_in_flight')), 100);
  await Promise.all(Array.from({ length: 32 }, worker));
  clearInterval(sampler);
  const settled = limits.slice(Math.floor(limits.length / 2)).filter((v) => v !== undefined);
  const mean = settled.reduce((a, b) => a + b, 0) / settled.length;
  console.log(`max_in_flight: auto settled at ${mean.toFixed(1)} (capacity 8)`);
  assert.ok(mean >= 6 && mean <= 11, `the limit settled at ${mean.toFixed(1)} (samples ${settled.join(',')})`);
});

test('client keys: none or a wrong one → 401; over its rpm → 429 rate_limited with Retry-After', async () => {
  const s = await sim(['--tokens', '2']);
  const gw = await serve({
    models: [{ name: 'm', endpoints: [{ base_url: s.base }] }],
    keys: [{ key: 'team-a', rpm: 6 }, { key: 'team-b' }], // 6 per minute: a burst of 1, then one per 10 s
  });
  assert.equal((await chat(gw.base, { model: 'm' })).status, 401);
  assert.equal((await chat(gw.base, { model: 'm' }, { authorization: 'Bearer nope' })).json.error.code, 'unauthorized');
  assert.equal((await chat(gw.base, { model: 'm' }, { authorization: 'Bearer team-a' })).status, 200);
  const limited = await chat(gw.base, { model: 'm' }, { authorization: 'Bearer team-a' });
  assert.equal(limited.status, 429);
  assert.equal(limited.json.error.code, 'rate_limited');
  assert.ok(Number(limited.headers.get('retry-after')) >= 9);
  // Another key has its own limits.
  assert.equal((await chat(gw.base, { model: 'm' }, { authorization: 'Bearer team-b' })).status, 200);
});

test('tpm: tokens are estimated from the request and corrected from usage', async () => {
  const s = await sim(['--tokens', '2']);
  // 600 per minute: a bucket of 100. Each request below is estimated at ~67 tokens (its body / 4 plus
  // max_tokens 50) and uses ~11: without the correction the second would already be refused.
  const gw = await serve(one({ base_url: s.base, tpm: 600 }));
  for (let i = 0; i < 3; i++) assert.equal((await chat(gw.base, { model: 'm', max_tokens: 50 })).status, 200, `request ${i}`);
  const big = await chat(gw.base, { model: 'm', max_tokens: 500 });
  assert.equal(big.status, 429);
  assert.equal(big.json.error.code, 'rate_limited');
  assert.match(big.json.error.message, /rpm or tpm limit/);
});

test('a client key\'s tpm is given back for a request that failed, as an endpoint\'s is', async () => {
  const s = await sim(['--tokens', '2', '--fault', 'status=500#2']);  // the first two answers are 500s
  // 6,000 tokens a minute: a bucket of 1,000. Each request is estimated at ~900 (max_tokens 880).
  const gw = await serve({
    models: [{ name: 'm', retries: { max_attempts: 1 }, endpoints: [{ base_url: s.base }] }],
    keys: [{ key: 'team-a', tpm: 6000 }],
  });
  const ask = () => chat(gw.base, { model: 'm', max_tokens: 880 }, { authorization: 'Bearer team-a' });
  assert.equal((await ask()).status, 500);
  // Still 1,000 in the bucket: the failure cost the key nothing.
  assert.equal((await ask()).status, 500);
  const ok = await ask();
  assert.equal(ok.status, 200, ok.text.slice(0, 300));
  // The answer's usage (a few tokens) is what it cost: another fits at once.
  assert.equal((await ask()).status, 200);
});

test('the queue is fair between client keys: one key\'s burst does not hold another\'s request back', async () => {
  const s = await sim(['--ttft', '100', '--tokens', '1']);
  const gw = await serve({
    models: [{ name: 'm', endpoints: [{ base_url: s.base, max_in_flight: 1 }] }],
    keys: [{ key: 'batch' }, { key: 'interactive' }],
  });
  const burst = Array.from({ length: 6 }, () => chat(gw.base, { model: 'm' }, { authorization: 'Bearer batch' }));
  await eventually(async () => (await metric(gw, 'ballast_queue_depth')) === 5);
  const mine = await chat(gw.base, { model: 'm' }, { authorization: 'Bearer interactive' });
  assert.equal(mine.status, 200);
  await Promise.all(burst);
  // It waited for the request in flight and at most one of the burst's, not for all five queued before it.
  const log = await eventually(() => { const l = gw.accessLog(); return l.length === 7 && l; });
  const theirs = log.filter((l) => l.queue_ms > 0).map((l) => l.queue_ms).sort((a, b) => a - b);
  const my = log.find((l) => l.queue_ms > 0 && mine.headers.get('x-ballast-request-id') === l.id);
  assert.ok(my.queue_ms < 350, `the interactive request waited ${my.queue_ms.toFixed(0)} ms (the burst's waits: ${theirs.map(Math.round)})`);
  assert.ok(theirs.at(-1) > 450);
});

test('an endpoint\'s rpm: over it → 429 rate_limited, or the other endpoint takes the request', async () => {
  const a = await sim(['--tokens', '2']);
  const b = await sim(['--tokens', '2']);
  const gw = await serve({
    models: [
      { name: 'one', endpoints: [{ base_url: a.base, rpm: 12 }] }, // a burst of 2
      { name: 'two', endpoints: [{ base_url: a.base, rpm: 6, name: 'limited' }, { base_url: b.base, name: 'spare' }] },
    ],
  });
  assert.equal((await chat(gw.base, { model: 'one' })).status, 200);
  assert.equal((await chat(gw.base, { model: 'one' })).status, 200);
  const r = await chat(gw.base, { model: 'one' });
  assert.equal(r.status, 429);
  assert.equal(r.json.error.code, 'rate_limited');
  assert.ok(Number(r.headers.get('retry-after')) >= 4);
  for (let i = 0; i < 4; i++) assert.equal((await chat(gw.base, { model: 'two' })).status, 200);
  const two = (await eventually(() => { const l = gw.accessLog().filter((x) => x.model === 'two'); return l.length === 4 && l; }));
  assert.ok(two.filter((l) => l.endpoint === 'spare').length >= 3);
});

test('priority tiers: the next tier takes over while the first has no healthy endpoint', async () => {
  const backup = await sim(['--tokens', '2']);
  const gw = await serve({
    outlier: { consecutive_failures: 3 },
    models: [{
      name: 'm',
      endpoints: [
        { base_url: 'http://127.0.0.1:1/v1', name: 'primary', health_check: false },
        { base_url: backup.base, name: 'backup', priority: 1 },
      ],
    }],
  });
  for (let i = 0; i < 6; i++) assert.equal((await chat(gw.base, { model: 'm' })).status, 200);
  const log = await eventually(() => { const l = gw.accessLog(); return l.length === 6 && l; });
  // A refused connect is fast and transient: the first request tries the primary once more before
  // the next tier; the second's failure is the third in a row and ejects it; from then on backup
  // takes them directly.
  assert.deepEqual(log.map((l) => l.attempts.map((a) => a.endpoint).join('>')),
    ['primary>primary>backup', 'primary>backup', 'backup', 'backup', 'backup', 'backup']);
  assert.match(gw.stderr, /endpoint primary of model 'm' ejected for 30s/);
  const status = await (await fetch(`${gw.url}/ballast/status`)).json();
  assert.equal(status.models[0].endpoints[0].health, 'ejected');
});

test('ejection, then half-open readmission once the endpoint recovers', async () => {
  const a = await sim(['--tokens', '2']);
  const b = await sim(['--tokens', '2']);
  const gw = await serve({
    outlier: { consecutive_failures: 2, base_ejection: '300ms' },
    models: [{ name: 'm', endpoints: [{ base_url: a.base, name: 'a', health_check: false }, { base_url: b.base, name: 'b', health_check: false }] }],
  });
  await a.setFaults(['status=500']);
  await eventually(async () => {
    await chat(gw.base, { model: 'm' });
    return /endpoint a of model 'm' ejected for 300ms/.test(gw.stderr);
  });
  await fetch(`${a.url}/sim/faults`, { method: 'DELETE' });
  await eventually(async () => {
    assert.equal((await chat(gw.base, { model: 'm' })).status, 200);
    return /endpoint a of model 'm' readmitted/.test(gw.stderr);
  }, { timeoutMs: 5000 });
  assert.equal(await metric(gw, 'ballast_ejections_total'), 1);
});

test('an active health check ejects a dead endpoint with no traffic', async () => {
  const b = await sim(['--tokens', '2']);
  const gw = await serve({
    outlier: { consecutive_failures: 2 },
    models: [{
      name: 'm',
      endpoints: [
        { base_url: 'http://127.0.0.1:1/v1', name: 'dead', health_check: { interval: '100ms' } },
        { base_url: b.base, name: 'alive', health_check: false },
      ],
    }],
  });
  await eventually(() => /endpoint dead of model 'm' ejected .*health check: GET \/models/.test(gw.stderr));
  assert.equal((await chat(gw.base, { model: 'm' })).status, 200);
});

test('/metrics: requests, attempts, retries, queue, limits and phase histograms in Prometheus text', async () => {
  const s = await sim(['--tokens', '2']);
  const gw = await serve(one({ base_url: s.base, max_in_flight: 4, name: 'ep' }));
  await chat(gw.base, { model: 'm' });
  await chat(gw.base, { model: 'm', stream: true });
  await eventually(() => gw.accessLog().length === 2);
  const text = await (await fetch(`${gw.url}/metrics`)).text();
  for (const line of [
    'ballast_requests_total{model="m",endpoint="ep",upstream_model="m",code="ok"} 2',
    'ballast_attempts_total{endpoint="ep",code="ok"} 2',
    'ballast_in_flight{model="m",endpoint="ep"} 0',
    'ballast_queue_depth{model="m",endpoint="ep"} 0',
    'ballast_max_in_flight{model="m",endpoint="ep"} 4',
    'ballast_endpoint_healthy{model="m",endpoint="ep"} 1',
    'ballast_queue_wait_seconds_count{endpoint="ep"} 2',
    'ballast_phase_seconds_count{endpoint="ep",phase="first_token"} 1',
    'ballast_phase_seconds_count{endpoint="ep",phase="total"} 2',
  ]) {
    assert.ok(text.includes(line), `missing: ${line}`);
  }
  assert.match(text, /# TYPE ballast_phase_seconds histogram/);
  assert.match(text, /ballast_phase_seconds_bucket\{endpoint="ep",phase="first_byte",le="\+Inf"\} 2/);
});
