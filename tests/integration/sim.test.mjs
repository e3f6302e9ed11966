// `ballast sim` on its own: every flag and every fault, answered the way OpenAI and Azure answer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { startSim, chat, streamChat, selfSignedCert, curl, eventually } from './lib/harness.mjs';

async function withSim(flags, fn) {
  const sim = await startSim(flags);
  try {
    await fn(sim);
  } finally {
    await sim.stop();
  }
}

test('--model: other models get OpenAI\'s 404 model_not_found; GET /v1/models lists them', () =>
  withSim(['--model', 'a', '--model', 'b'], async (sim) => {
    assert.equal((await chat(sim.base, { model: 'a' })).status, 200);
    const r = await chat(sim.base, { model: 'c' });
    assert.equal(r.status, 404);
    assert.equal(r.json.error.code, 'model_not_found');
    assert.equal(r.json.error.message, 'The model `c` does not exist or you do not have access to it.');
    const models = await (await fetch(`${sim.base}/models`)).json();
    assert.deepEqual(models.data.map((m) => m.id), ['a', 'b']);
  }));

test('--api-key: anything else gets OpenAI\'s 401 invalid_api_key', () =>
  withSim(['--api-key', 'sk-right'], async (sim) => {
    assert.equal((await chat(sim.base, { model: 'm' }, { authorization: 'Bearer sk-right' })).status, 200);
    const r = await chat(sim.base, { model: 'm' }, { authorization: 'Bearer sk-wrong-key-123' });
    assert.equal(r.status, 401);
    assert.equal(r.json.error.code, 'invalid_api_key');
    assert.match(r.json.error.message, /^Incorrect API key provided: sk-\*\*\*\*\*-123\./);
  }));

test('Azure form: deployments, api-versions and the api-key header', () =>
  withSim(['--azure-deployment', 'prod', '--azure-api-version', '2024-10-21', '--api-key', 'az-key'], async (sim) => {
    const url = (dep, v) => `${sim.url}/openai/deployments/${dep}/chat/completions${v ? `?api-version=${v}` : ''}`;
    const post = (u, key = 'az-key') => fetch(u, { method: 'POST', headers: { 'api-key': key }, body: '{"messages":[]}' });
    const ok = await post(url('prod', '2024-10-21'));
    assert.equal(ok.status, 200);
    assert.equal((await ok.json()).model, 'prod');
    const dep = await post(url('staging', '2024-10-21'));
    assert.equal(dep.status, 404);
    assert.equal((await dep.json()).error.code, 'DeploymentNotFound');
    const ver = await post(url('prod', '2023-01-01'));
    assert.equal(ver.status, 404);
    assert.deepEqual(await ver.json(), { error: { code: '404', message: 'Resource not found' } });
    assert.equal((await post(url('prod'))).status, 404, 'api-version is required');
    const key = await post(url('prod', '2024-10-21'), 'bad');
    assert.equal(key.status, 401);
    assert.equal((await key.json()).error.code, '401');
  }));

test('--ttft, --itl, --tokens shape the timing and length of an answer', () =>
  withSim(['--ttft', '200', '--itl', '50', '--tokens', '5'], async (sim) => {
    const s = await streamChat(sim.base, { model: 'm' });
    const content = s.events.filter((e) => /"content":"[^"]/.test(e.data));
    assert.equal(content.length, 5);
    // 200 ms to the first token, then four gaps of 50 ms.
    assert.ok(s.ms >= 400 && s.ms < 500, `stream took ${s.ms} ms`);
    const r = await chat(sim.base, { model: 'm', max_tokens: 2 });
    assert.equal(r.json.usage.completion_tokens, 2);
    assert.equal(r.json.choices[0].finish_reason, 'length');
    assert.ok(r.ms >= 250 && r.ms < 350, `non-streamed took ${r.ms} ms`);
  }));

test('--capacity N runs N generations at once and queues the rest FIFO; --queue bounds the queue', () =>
  withSim(['--capacity', '2', '--queue', '2', '--ttft', '300'], async (sim) => {
    const results = await Promise.all(Array.from({ length: 5 }, () => chat(sim.base, { model: 'm' })));
    const statuses = results.map((r) => r.status).sort();
    assert.deepEqual(statuses, [200, 200, 200, 200, 503]);
    const stats = await sim.stats();
    assert.equal(stats.max_in_flight, 2);
    assert.equal(stats.completed, 4);
    assert.equal(stats.by_status['503'], 1);
    // Two waves of 300 ms: the queued pair finished after about 600 ms.
    const slowest = Math.max(...results.filter((r) => r.status === 200).map((r) => r.ms));
    assert.ok(slowest >= 600 && slowest < 750, `slowest ${slowest} ms`);
  }));

test('--rpm: 429 with Retry-After and OpenAI\'s x-ratelimit-* headers', () =>
  withSim(['--rpm', '2'], async (sim) => {
    const a = await chat(sim.base, { model: 'm' });
    assert.equal(a.headers.get('x-ratelimit-limit-requests'), '2');
    assert.equal(a.headers.get('x-ratelimit-remaining-requests'), '1');
    await chat(sim.base, { model: 'm' });
    const r = await chat(sim.base, { model: 'm' });
    assert.equal(r.status, 429);
    assert.equal(r.json.error.code, 'rate_limit_exceeded');
    assert.equal(r.headers.get('retry-after'), '30');
    assert.ok(Number(r.headers.get('retry-after-ms')) > 29_000);
    assert.equal(r.headers.get('x-ratelimit-remaining-requests'), '0');
    assert.match(r.headers.get('x-ratelimit-reset-requests'), /^(\d+m)?\d+s$/);
  }));

test('--tpm: a request whose prompt and max_tokens do not fit gets 429 naming tokens', () =>
  withSim(['--tpm', '100'], async (sim) => {
    assert.equal((await chat(sim.base, { model: 'm', max_tokens: 40 })).status, 200);
    const r = await chat(sim.base, { model: 'm', max_tokens: 90 });
    assert.equal(r.status, 429);
    assert.equal(r.json.error.type, 'tokens');
    assert.equal(r.headers.get('x-ratelimit-limit-tokens'), '100');
  }));

test('--seed makes answers and fault rolls repeat exactly', async () => {
  const run = async (seed) => {
    const out = [];
    await withSim(['--seed', String(seed), '--fault', 'status=503@0.5'], async (sim) => {
      for (let i = 0; i < 8; i++) {
        const r = await chat(sim.base, { model: 'm' });
        out.push(r.status === 200 ? r.json.choices[0].message.content : r.status);
      }
    });
    return out;
  };
  const a = await run(7);
  assert.deepEqual(await run(7), a);
  assert.notDeepEqual(await run(8), a);
  assert.ok(a.includes(503) && a.some((x) => typeof x === 'string'));
});

test('--fault sets the server\'s faults; POST /sim/faults changes them at run time; x-sim-fault overrides per request', () =>
  withSim(['--fault', 'status=500'], async (sim) => {
    assert.equal((await chat(sim.base, { model: 'm' })).status, 500);
    assert.equal((await chat(sim.base, { model: 'm' }, { 'x-sim-fault': 'status=418' })).status, 418);
    assert.deepEqual(await sim.setFaults(['status=429,retry-after=3']), { faults: ['status=429,retry-after=3'] });
    const r = await chat(sim.base, { model: 'm' });
    assert.equal(r.status, 429);
    assert.equal(r.headers.get('retry-after'), '3');
    const plain = await fetch(`${sim.url}/sim/faults`, { method: 'POST', body: 'reset@0' });
    assert.deepEqual(await plain.json(), { faults: ['reset@0'] });
    const bad = await fetch(`${sim.url}/sim/faults`, { method: 'POST', body: '{"faults":["explode"]}' });
    assert.equal(bad.status, 400);
    await fetch(`${sim.url}/sim/faults`, { method: 'DELETE' });
    assert.equal((await chat(sim.base, { model: 'm' })).status, 200);
    const badHeader = await chat(sim.base, { model: 'm' }, { 'x-sim-fault': 'nonsense' });
    assert.equal(badHeader.status, 400);
  }));

test('faults: reset, slow-headers, slow-first-token, cut-after, stall-after, malformed, keepalive-only', () =>
  withSim(['--tokens', '6'], async (sim) => {
    const reset = await chat(sim.base, { model: 'm' }, { 'x-sim-fault': 'reset' }).catch((e) => e);
    assert.ok(reset instanceof Error, 'the connection is reset');
    const slow = await chat(sim.base, { model: 'm' }, { 'x-sim-fault': 'slow-headers=300' });
    assert.ok(slow.status === 200 && slow.ms >= 300);
    const sft = await streamChat(sim.base, { model: 'm' }, { 'x-sim-fault': 'slow-first-token=300' });
    assert.ok(sft.ms >= 300);
    const cut = await streamChat(sim.base, { model: 'm' }, { 'x-sim-fault': 'cut-after=3' });
    assert.ok(!cut.text.includes('[DONE]'));
    assert.equal(cut.events.filter((e) => /"content":"[^"]/.test(e.data)).length, 3);
    const cutPlain = await chat(sim.base, { model: 'm' }, { 'x-sim-fault': 'cut-after=3' }).catch((e) => e);
    assert.ok(cutPlain instanceof Error, 'a non-streamed body is cut short');
    const malformed = await streamChat(sim.base, { model: 'm' }, { 'x-sim-fault': 'malformed' });
    assert.ok(malformed.events.some((e) => { try { JSON.parse(e.data); return false; } catch { return e.data !== '[DONE]'; } }));
    // stall-after and keepalive-only never end by themselves: read a while, then leave.
    const peek = (fault, ms) => new Promise((resolve) => {
      let body = '';
      const req = http.request(`${sim.base}/chat/completions`, { method: 'POST', headers: { 'x-sim-fault': fault } }, (res) => {
        res.setEncoding('utf8');
        res.on('data', (d) => { body += d; });
      });
      req.on('error', () => {});
      req.end('{"model":"m","stream":true}');
      setTimeout(() => { req.destroy(); resolve(body); }, ms);
    });
    const stalled = await peek('stall-after=2', 300);
    assert.equal((stalled.match(/"content":"[^"]/g) || []).length, 2);
    const kept = await peek('keepalive-only', 350);
    assert.ok(kept.includes(': keep-alive') && !kept.includes('"content":"'));
  }));

test('/sim/stats counts requests, connections, cancellations and wasted work', () =>
  withSim(['--ttft', '300'], async (sim) => {
    // Without --cancel-on-disconnect a non-streamed client that leaves is noticed only when
    // answering: the finished generation is wasted.
    await new Promise((resolve) => {
      const req = http.request(`${sim.base}/chat/completions`, { method: 'POST' });
      req.on('error', () => {});
      req.end('{"model":"m"}');
      setTimeout(() => { req.destroy(); resolve(); }, 50);
    });
    const s = await eventually(async () => { const x = await sim.stats(); return x.wasted === 1 && x; }, { timeoutMs: 2_000 });
    for (const k of ['requests', 'connections', 'in_flight', 'max_in_flight', 'queued', 'completed', 'cancelled', 'wasted', 'by_status']) {
      assert.ok(k in s, k);
    }
    assert.equal(s.requests, 1);
    assert.equal(s.completed, 0);
  }));

test('--cancel-on-disconnect notices the client leaving at once', () =>
  withSim(['--ttft', '2000', '--cancel-on-disconnect'], async (sim) => {
    await new Promise((resolve) => {
      const req = http.request(`${sim.base}/chat/completions`, { method: 'POST' });
      req.on('error', () => {});
      req.end('{"model":"m"}');
      setTimeout(() => { req.destroy(); resolve(); }, 50);
    });
    const s = await eventually(async () => { const x = await sim.stats(); return x.cancelled === 1 && x; }, { timeoutMs: 500 });
    assert.equal(s.wasted, 0);
  }));

test('--tls-cert/--tls-key serve HTTPS', async () => {
  const { dir } = await selfSignedCert();
  await withSim(['--tls-cert', path.join(dir, 'cert.pem'), '--tls-key', path.join(dir, 'key.pem')], async (sim) => {
    assert.equal(sim.scheme, 'https');
    const r = await curl(['--cacert', path.join(dir, 'cert.pem'), `${sim.base}/models`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /"object":"list"/);
  });
});
