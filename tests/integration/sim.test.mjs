// `ballast sim` on its own: every flag and every fault, answered the way OpenAI and Azure answer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
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
      req.end('{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}');
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
      req.end('{"model":"m","messages":[{"role":"user","content":"hi"}]}');
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
      req.end('{"model":"m","messages":[{"role":"user","content":"hi"}]}');
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

// A request on a connection of its own, left open until the test ends it: {req, res, body, closed}.
// `res` resolves with the response once its headers arrive; `body` holds what arrived so far.
function hold(base, path, body, headers = {}) {
  const out = { body: '' };
  out.req = http.request(`${base}${path}`, { method: 'POST', agent: false, headers: { 'content-type': 'application/json', ...headers } });
  out.res = new Promise((resolve) => {
    out.req.on('response', (res) => {
      res.setEncoding('utf8');
      res.on('data', (d) => { out.body += d; });
      res.on('error', () => {});
      resolve(res);
    });
  });
  out.closed = new Promise((resolve) => out.req.on('close', resolve));
  out.req.on('error', () => {});
  out.req.end(typeof body === 'string' ? body : JSON.stringify(body));
  return out;
}

// Sends raw bytes on a socket of its own and resolves with the response's status line.
function statusLine(url, raw) {
  return new Promise((resolve, reject) => {
    const { hostname, port } = new URL(url);
    const sock = net.connect(Number(port), hostname, () => sock.write(raw));
    let data = '';
    const timer = setTimeout(() => { sock.destroy(); reject(new Error(`no status line within 2 s: ${JSON.stringify(data)}`)); }, 2_000);
    sock.setEncoding('latin1');
    sock.on('data', (d) => {
      data += d;
      const end = data.indexOf('\r\n');
      if (end >= 0) {
        clearTimeout(timer);
        sock.destroy();
        resolve(data.slice(0, end));
      }
    });
    sock.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

function rawPost(path, body, headers = '') {
  return `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n${headers}` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
}

const hi = [{ role: 'user', content: 'hi' }];

// A normal request, which must be answered promptly: nothing the requests before it did may still
// hold the one generation slot.
async function answeredPromptly(sim, body = {}) {
  const started = performance.now();
  const res = await fetch(`${sim.base}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'm', messages: hi, ...body }),
    signal: AbortSignal.timeout(2_000),
  });
  const text = await res.text();
  const ms = performance.now() - started;
  assert.equal(res.status, 200, text);
  assert.ok(ms < 2_000, `answered after ${ms} ms`);
  return text;
}

test('malformed requests get OpenAI\'s 400 before anything is reserved: no slot, no queue place, no rate charge', () =>
  withSim(['--capacity', '1', '--rpm', '2'], async (sim) => {
    // [path, body (a string is sent as it is), param, code]
    const cases = [
      ['/chat/completions', 'not json', null, null],
      ['/chat/completions', '', null, null],
      ['/chat/completions', '{"model":"m","messages":[', null, null],
      ['/chat/completions', '[1,2]', null, 'invalid_type'],
      ['/chat/completions', '"hi"', null, 'invalid_type'],
      ['/chat/completions', 'null', null, 'invalid_type'],
      ['/chat/completions', { messages: hi }, null, null],
      ['/chat/completions', { model: 7, messages: hi }, 'model', 'invalid_type'],
      ['/chat/completions', { model: 'm' }, 'messages', 'missing_required_parameter'],
      ['/chat/completions', { model: 'm', messages: 'hi' }, 'messages', 'invalid_type'],
      ['/chat/completions', { model: 'm', messages: null }, 'messages', 'invalid_type'],
      ['/chat/completions', { model: 'm', messages: ['hi'] }, 'messages[0]', 'invalid_type'],
      ['/chat/completions', { model: 'm', messages: [{ content: 'hi' }] }, 'messages[0].role', 'missing_required_parameter'],
      ['/chat/completions', { model: 'm', messages: [{ role: 'robot', content: 'hi' }] }, 'messages[0].role', 'invalid_value'],
      ['/chat/completions', { model: 'm', messages: [{ role: 'user', content: 5 }] }, 'messages[0].content', 'invalid_type'],
      ['/chat/completions', { model: 'm', messages: hi, max_tokens: -1 }, 'max_tokens', 'integer_below_min_value'],
      ['/chat/completions', { model: 'm', messages: hi, max_tokens: 0 }, 'max_tokens', 'integer_below_min_value'],
      ['/chat/completions', { model: 'm', messages: hi, max_tokens: 1e12 }, 'max_tokens', 'invalid_value'],
      ['/chat/completions', '{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":1e12}', 'max_tokens', 'invalid_type'],
      ['/chat/completions', { model: 'm', messages: hi, max_tokens: 2_000_000 }, 'max_tokens', 'invalid_value'],
      ['/chat/completions', { model: 'm', messages: hi, max_tokens: '10' }, 'max_tokens', 'invalid_type'],
      ['/chat/completions', { model: 'm', messages: hi, max_tokens: 1.5 }, 'max_tokens', 'invalid_type'],
      ['/chat/completions', { model: 'm', messages: hi, max_completion_tokens: -1 }, 'max_completion_tokens', 'integer_below_min_value'],
      ['/chat/completions', { model: 'm', messages: hi, n: -1 }, 'n', 'integer_below_min_value'],
      ['/chat/completions', { model: 'm', messages: hi, n: 1000 }, 'n', 'integer_above_max_value'],
      ['/chat/completions', { model: 'm', messages: hi, stream: 'yes' }, 'stream', 'invalid_type'],
      ['/chat/completions', { model: 'm', messages: hi, stream_options: { include_usage: true } }, 'stream_options', null],
      ['/chat/completions', { model: 'm', messages: hi, stream: true, stream_options: 'x' }, 'stream_options', 'invalid_type'],
      ['/chat/completions', { model: 'm', messages: hi, tools: 'f' }, 'tools', 'invalid_type'],
      ['/chat/completions', { model: 'm', messages: hi, tools: [{ type: 'function' }] }, 'tools[0].function', 'missing_required_parameter'],
      ['/chat/completions', { model: 'm', messages: hi, tool_choice: 3 }, 'tool_choice', 'invalid_type'],
      ['/chat/completions', '{"model":"m","messages":[],"max_tokens":5,"max_tokens":-1}', null, null],
      ['/completions', { model: 'm' }, 'prompt', 'missing_required_parameter'],
      ['/completions', { model: 'm', prompt: 'hi', max_tokens: -1 }, 'max_tokens', 'integer_below_min_value'],
      ['/embeddings', { model: 'm', input: [] }, 'input', 'empty_array'],
      ['/embeddings', { model: 'm', input: 'a', dimensions: -1 }, 'dimensions', 'integer_below_min_value'],
      ['/responses', { model: 'm', input: 'hi', max_output_tokens: 1 }, 'max_output_tokens', 'integer_below_min_value'],
    ];
    let sent = 0;
    for (const [path, body, param, code] of cases) {
      // Each body as it is, and (when that is not what is wrong with it) asking for a stream.
      const bodies = typeof body === 'string' || 'stream' in body || 'stream_options' in body
        ? [body] : [body, { ...body, stream: true }];
      for (const b of bodies) {
        const raw = typeof b === 'string' ? b : JSON.stringify(b);
        const res = await fetch(`${sim.base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: raw });
        const text = await res.text();
        assert.equal(res.status, 400, `${path} ${raw}: ${text}`);
        assert.match(res.headers.get('content-type'), /application\/json/);
        const { error } = JSON.parse(text);
        assert.deepEqual(Object.keys(error).sort(), ['code', 'message', 'param', 'type'], raw);
        assert.equal(error.type, 'invalid_request_error', raw);
        assert.equal(error.param, param, raw);
        assert.equal(error.code, code, raw);
        assert.ok(error.message.length > 0);
        sent++;
      }
    }
    const refused = await sim.stats();
    assert.equal(refused.by_status['400'], sent);
    assert.equal(refused.in_flight, 0);
    assert.equal(refused.max_in_flight, 0, 'no refused request ever held the slot');
    assert.equal(refused.queued, 0);
    // --rpm 2 was charged by none of them: two requests pass, the third is refused.
    await answeredPromptly(sim, { max_tokens: 3 });
    await answeredPromptly(sim, { stream: true });
    assert.equal((await chat(sim.base, { model: 'm' })).status, 429);
  }));

test('--capacity 1: clients that vanish (cut bodies, resets, leaving while queued or mid-generation) never keep the slot', () =>
  withSim(['--capacity', '1'], async (sim) => {
    // A body cut short: Content-Length says more than arrives, then the connection closes.
    for (const rest of ['', '{"model":"m","mess']) {
      await new Promise((resolve) => {
        const { hostname, port } = new URL(sim.url);
        const sock = net.connect(Number(port), hostname, () => {
          sock.end(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n${rest}`);
        });
        sock.on('close', resolve);
        sock.on('error', () => {});
        sock.resume();
      });
    }
    // A reset and a blackhole take no slot.
    const reset = await chat(sim.base, { model: 'm' }, { 'x-sim-fault': 'reset' }).catch((e) => e);
    assert.ok(reset instanceof Error);
    const blackhole = hold(sim.base, '/chat/completions', { model: 'm', messages: hi }, { 'x-sim-fault': 'blackhole' });
    const inFlight = (n) => eventually(async () => { const s = await sim.stats(); return s.in_flight === n && s; }, { timeoutMs: 2_000 });
    const queued = (n) => eventually(async () => { const s = await sim.stats(); return s.queued === n && s; }, { timeoutMs: 2_000 });

    // The slot held by a generation that never ends by itself (non-streamed), two clients queued
    // behind it (streamed and not) that leave while waiting, then the holder leaves too.
    const holder = hold(sim.base, '/chat/completions', { model: 'm', messages: hi }, { 'x-sim-fault': 'stall-after=0' });
    await inFlight(1);
    const queuedStream = hold(sim.base, '/chat/completions', { model: 'm', messages: hi, stream: true });
    const queuedPlain = hold(sim.base, '/chat/completions', { model: 'm', messages: hi, max_tokens: 5 });
    await queued(2);
    queuedStream.req.destroy();
    queuedPlain.req.destroy();
    holder.req.destroy();
    await inFlight(0);
    await queued(0);

    // Leaving mid-generation: mid-stream, before the first token, and from a non-streamed answer.
    for (const [body, fault, started] of [
      [{ stream: true }, 'stall-after=2', (h) => (h.body.match(/"content":"[^"]/g) || []).length === 2],
      [{ stream: true }, 'slow-first-token=60000', (h) => h.body.length > 0 || h.headersIn],
      [{ stream: true }, 'keepalive-only', (h) => h.body.includes(': keep-alive')],
      [{}, 'keepalive-only', () => true],
    ]) {
      const h = hold(sim.base, '/chat/completions', { model: 'm', messages: hi, ...body }, { 'x-sim-fault': fault });
      h.res.then(() => { h.headersIn = true; });
      await inFlight(1);
      await eventually(() => started(h), { timeoutMs: 2_000 });
      h.req.destroy();
      await inFlight(0);
    }
    blackhole.req.destroy();

    const s = await sim.stats();
    assert.equal(s.in_flight, 0);
    assert.equal(s.queued, 0);
    await answeredPromptly(sim);
    assert.match(await answeredPromptly(sim, { stream: true }), /data: \[DONE\]/);
  }));

test('--cancel-on-disconnect: a client that leaves the queue gives up its place at once', () =>
  withSim(['--capacity', '1', '--cancel-on-disconnect'], async (sim) => {
    const holder = hold(sim.base, '/chat/completions', { model: 'm', messages: hi }, { 'x-sim-fault': 'stall-after=0' });
    await eventually(async () => (await sim.stats()).in_flight === 1, { timeoutMs: 2_000 });
    const waiter = hold(sim.base, '/chat/completions', { model: 'm', messages: hi });
    await eventually(async () => (await sim.stats()).queued === 1, { timeoutMs: 2_000 });
    waiter.req.destroy();
    const s = await eventually(async () => { const x = await sim.stats(); return x.queued === 0 && x; }, { timeoutMs: 2_000 });
    assert.equal(s.in_flight, 1, 'the holder still holds the slot');
    assert.equal(s.cancelled, 1);
    holder.req.destroy();
    await eventually(async () => (await sim.stats()).in_flight === 0, { timeoutMs: 2_000 });
    await answeredPromptly(sim);
  }));

test('every status goes out with a reason phrase: 529 "Site is overloaded", unknown codes by class; 204 has no body', () =>
  withSim(['--fault', 'status=529'], async (sim) => {
    const body = JSON.stringify({ model: 'm', messages: hi });
    assert.equal(await statusLine(sim.url, rawPost('/v1/chat/completions', body)), 'HTTP/1.1 529 Site is overloaded');
    const line = (fault) => statusLine(sim.url, rawPost('/v1/chat/completions', body, `x-sim-fault: ${fault}\r\n`));
    assert.equal(await line('status=520'), 'HTTP/1.1 520 Server Error');
    assert.equal(await line('status=460'), 'HTTP/1.1 460 Client Error');
    assert.equal(await line('status=503'), 'HTTP/1.1 503 Service Unavailable');
    const r = await chat(sim.base, { model: 'm' }, { 'x-sim-fault': 'status=204' });
    assert.equal(r.status, 204);
    assert.equal(r.text, '');
    assert.equal((await chat(sim.base, { model: 'm' }, { 'x-sim-fault': 'status=100' })).status, 400, '1xx is no answer');
    // None of these ended a connection by an error.
    assert.doesNotMatch(sim.stderr, /unexpected error/);
  }));
