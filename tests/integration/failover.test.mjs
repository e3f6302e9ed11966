// Failover as users meet it: the OpenAI Node SDK at its defaults, streaming, in front of a primary
// endpoint and a fallback tier that serves another model under its own name on a second simulator.
// Faults are scripted per request on the simulators (#N: only the next N requests); what each
// upstream saw is read from its own stats, never from ballast's log.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { eventually, stopAfterAll } from './lib/harness.mjs';

const { sim, serve } = stopAfterAll();
const messages = [{ role: 'user', content: 'hi' }];
const FIRST_BYTE = 1000; // ms

// Generations an upstream was asked for: its requests, less the health checks' GET /models.
async function generations(s) {
  const st = await s.stats();
  return st.requests - st.model_listings;
}

// A primary that knows the client's name and a fallback (priority 1) that knows only "big-model":
// a request reaching it under the client's name would fail with 404 model_not_found.
async function pair({ primaryFaults = [], model = {}, config = {} } = {}) {
  const fast = ['--ttft', '5', '--itl', '1', '--tokens', '4'];
  const primary = await sim([...fast, ...primaryFaults.flatMap((f) => ['--fault', f])]);
  const fallback = await sim([...fast, '--model', 'big-model']);
  const gw = await serve({
    timeouts: { first_byte: `${FIRST_BYTE}ms` },
    ...config,
    models: [{
      name: 'gpt',
      ...model,
      endpoints: [
        { name: 'primary', base_url: primary.base },
        { name: 'fallback', base_url: fallback.base, model: 'big-model', priority: 1 },
      ],
    }],
  });
  return { primary, fallback, gw, client: new OpenAI({ baseURL: gw.base, apiKey: 'sk-app' }) };
}

// One streamed chat through the SDK, read to its end: who answered, as the client sees it.
async function streamed(client) {
  const started = performance.now();
  const { data, response } = await client.chat.completions
    .create({ model: 'gpt', messages, stream: true, stream_options: { include_usage: true } })
    .withResponse();
  let text = '';
  let model = null;
  let usage = null;
  let finish = null;
  for await (const chunk of data) {
    model = chunk.model ?? model;
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      text += c.delta?.content ?? '';
      finish = c.finish_reason ?? finish;
    }
  }
  return {
    endpoint: response.headers.get('x-ballast-endpoint'),
    upstreamModel: response.headers.get('x-ballast-model'),
    model, usage, text, finish, ms: performance.now() - started,
  };
}

test('429 with Retry-After: 1 once, then healthy: one retry on the primary after ≥ 1 s, no fallback', async () => {
  const { primary, fallback, client } = await pair({ primaryFaults: ['status=429,retry-after=1#1'] });
  const r = await streamed(client);
  assert.equal(r.endpoint, 'primary');
  assert.equal(r.finish, 'stop');
  assert.ok(r.ms >= 1000, `answered after ${r.ms.toFixed(0)} ms`);
  assert.equal(await generations(primary), 2);
  assert.equal(await generations(fallback), 0);
});

test('429 on every attempt without a hint: the fallback serves; the primary saw at most 2 attempts', async () => {
  const { primary, fallback, client } = await pair({ primaryFaults: ['status=429'] });
  const r = await streamed(client);
  assert.equal(r.endpoint, 'fallback');
  assert.equal(r.model, 'big-model');
  assert.ok(await generations(primary) <= 2, `${await generations(primary)} attempts on the primary`);
  assert.equal(await generations(fallback), 1);
});

test('500 once, then healthy: the primary serves on its second attempt', async () => {
  const { primary, fallback, client } = await pair({ primaryFaults: ['status=500#1'] });
  const r = await streamed(client);
  assert.equal(r.endpoint, 'primary');
  assert.equal(r.model, 'gpt');
  assert.equal(await generations(primary), 2);
  assert.equal(await generations(fallback), 0);
});

test("503 on every attempt: the fallback serves, and the client sees the fallback's model and usage", async () => {
  const { primary, fallback, client, gw } = await pair({ primaryFaults: ['status=503'] });
  const r = await streamed(client);
  assert.equal(r.endpoint, 'fallback');
  assert.equal(r.upstreamModel, 'big-model');
  assert.equal(r.model, 'big-model', 'the upstream model field reaches the client as sent');
  assert.equal(r.usage.completion_tokens, 4);
  assert.equal(r.finish, 'stop');
  assert.equal(await generations(primary), 2);
  assert.equal(await generations(fallback), 1);
  const line = (await eventually(() => gw.accessLog()[0]));
  assert.equal(line.model, 'gpt');
  assert.equal(line.upstream_model, 'big-model');
  assert.deepEqual(line.attempts.map((a) => [a.endpoint, a.model, a.status]),
    [['primary', 'gpt', 503], ['primary', 'gpt', 503], ['fallback', 'big-model', 200]]);
  const metrics = await (await fetch(`${gw.url}/metrics`)).text();
  assert.match(metrics, /ballast_requests_total\{model="gpt",endpoint="fallback",upstream_model="big-model",code="ok"\} 1/);
});

test('a reset before any response byte, once: answered', async () => {
  const { primary, fallback, client } = await pair({ primaryFaults: ['reset#1'] });
  const r = await streamed(client);
  assert.equal(r.finish, 'stop');
  assert.ok(['primary', 'fallback'].includes(r.endpoint));
  assert.equal(await generations(primary) + await generations(fallback), 2);
});

test('no response at all: the fallback serves after one first-byte bound; the primary saw 1 attempt', async () => {
  const { primary, fallback, client } = await pair({ primaryFaults: ['blackhole'] });
  const r = await streamed(client);
  assert.equal(r.endpoint, 'fallback');
  assert.ok(r.ms >= FIRST_BYTE && r.ms < FIRST_BYTE + 700, `answered after ${r.ms.toFixed(0)} ms`);
  assert.equal(await generations(primary), 1);
  assert.equal(await generations(fallback), 1);
});

test('400 context_length_exceeded with fallback_on: the fallback serves; the primary saw 1 attempt', async () => {
  const { primary, fallback, client } = await pair({
    primaryFaults: ['status=400,code=context_length_exceeded'],
    model: { fallback_on: ['context_length_exceeded'] },
  });
  const r = await streamed(client);
  assert.equal(r.endpoint, 'fallback');
  assert.equal(r.model, 'big-model');
  assert.equal(await generations(primary), 1);
  assert.equal(await generations(fallback), 1);
});

test('400 context_length_exceeded without fallback_on: the 400 passes through after 1 attempt', async () => {
  const { primary, fallback, client } = await pair({ primaryFaults: ['status=400,code=context_length_exceeded'] });
  const e = await streamed(client).then(() => assert.fail('expected a 400'), (err) => err);
  assert.equal(e.status, 400);
  assert.equal(e.code, 'context_length_exceeded');
  assert.equal(e.headers.get('x-ballast-endpoint'), 'primary');
  assert.equal(await generations(primary), 1, 'neither ballast nor the SDK retried a 400');
  assert.equal(await generations(fallback), 0);
});

test('the primary answers /models but fails every generation for 60 s: every request succeeds, it is ejected, and traffic returns after it recovers', { timeout: 150_000 }, async () => {
  const { primary, fallback, client, gw } = await pair();
  const failing = performance.now();
  await primary.setFaults(['status=503']);
  const served = [];
  for (let i = 0; i < 20; i++) {
    const started = performance.now();
    served.push((await streamed(client)).endpoint);
    await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (performance.now() - started))));
  }
  assert.equal(served.length, 20, 'every request succeeded');
  assert.ok(served.every((e) => e === 'fallback'));
  // Ejected within the first 10: from then on, the fallback answers at once.
  assert.match(gw.stderr, /endpoint primary of model 'gpt' ejected/);
  const log = gw.accessLog();
  const firstDirect = log.findIndex((l) => l.attempts.length === 1 && l.attempts[0].endpoint === 'fallback');
  assert.ok(firstDirect >= 0 && firstDirect < 10, `the first request sent straight to the fallback was #${firstDirect + 1}`);
  assert.ok(log.slice(firstDirect).every((l) => l.attempts.length === 1), 'none after it met the primary');
  const primaryAttempts = await generations(primary);
  assert.ok(primaryAttempts <= 10, `the primary saw ${primaryAttempts} generations`);
  // /models kept answering 200 throughout: the checks did not excuse the failures.
  assert.ok((await primary.stats()).model_listings >= 1, 'the health checks ran');
  await new Promise((r) => setTimeout(r, Math.max(0, 60_000 - (performance.now() - failing))));
  await primary.setFaults([]);
  const recovered = performance.now();
  let back = null;
  while (performance.now() - recovered < 30_000) {
    const r = await streamed(client);
    if (r.endpoint === 'primary') {
      back = performance.now() - recovered;
      break;
    }
    await new Promise((res) => setTimeout(res, 1000));
  }
  assert.ok(back !== null, 'traffic returned to the primary within 30 s of its recovery');
  assert.ok(await generations(fallback) >= 19);
});

test('a client that ignores Retry-After cannot make the promised wait grow: 50 SDK calls after it all succeed', { timeout: 120_000 }, async () => {
  const upstream = await sim(['--ttft', '100', '--itl', '5', '--tokens', '8']);
  const QUEUE_MS = 10_000;
  const gw = await serve({
    timeouts: { queue: `${QUEUE_MS}ms` },
    models: [{ name: 'm', endpoints: [{ base_url: upstream.base, max_in_flight: 8, queue: 8 }] }],
  });
  let longest = 0;
  let refusals = 0;
  const note = (res) => {
    if (res.status === 503 || res.status === 429) {
      refusals++;
      longest = Math.max(longest, Number(res.headers.get('retry-after-ms')));
      assert.ok(Number(res.headers.get('retry-after')) <= QUEUE_MS / 1000);
    }
  };
  // 64 clients re-sending at once whatever they are told, for 5 s.
  const until = performance.now() + 5000;
  const rude = async () => {
    while (performance.now() < until) {
      const res = await fetch(`${gw.base}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'm', messages }),
      });
      await res.arrayBuffer();
      note(res);
    }
  };
  await Promise.all(Array.from({ length: 64 }, rude));
  assert.ok(refusals > 1000, `only ${refusals} refusals: the loop did not overload the endpoint`);
  // Then a batch of well-behaved SDK calls, obeying retry-after-ms as the SDK does.
  const client = new OpenAI({
    baseURL: gw.base,
    apiKey: 'sk-app',
    fetch: async (url, init) => {
      const res = await fetch(url, init);
      note(res);
      return res;
    },
  });
  const started = performance.now();
  const results = await Promise.allSettled(
    Array.from({ length: 50 }, () => client.chat.completions.create({ model: 'm', messages })),
  );
  const took = performance.now() - started;
  const failed = results.filter((r) => r.status === 'rejected');
  assert.equal(failed.length, 0, `${failed.length} failed: ${failed[0]?.reason}`);
  assert.ok(took < 30_000, `the batch took ${took.toFixed(0)} ms`);
  console.log(`${refusals} refusals; the longest promise ${longest} ms (timeouts.queue ${QUEUE_MS} ms); 50 SDK calls done in ${took.toFixed(0)} ms`);
  assert.ok(longest <= QUEUE_MS, `a refusal promised ${longest} ms`);
  // Nothing is left waiting: the next refusal, if any, would be worked out afresh.
  const status = await (await fetch(`${gw.url}/ballast/status`)).json();
  assert.equal(status.models[0].endpoints[0].queued, 0);
});

test("GET /v1/models lists the client-facing names, only those the client's key may use", async () => {
  const upstream = await sim([]);
  const gw = await serve({
    keys: [{ key: 'team-a', models: ['gpt'] }, { key: 'admin' }],
    models: [
      { name: 'gpt', endpoints: [{ base_url: upstream.base, model: 'upstream-name' }] },
      { name: 'internal', endpoints: [{ base_url: upstream.base }] },
    ],
  });
  const list = async (key) =>
    (await (await fetch(`${gw.base}/models`, { headers: { authorization: `Bearer ${key}` } })).json()).data.map((m) => m.id);
  assert.deepEqual(await list('team-a'), ['gpt']);
  assert.deepEqual(await list('admin'), ['gpt', 'internal']);
});

test("an endpoint's model: applies to every API, and only to the body's top-level model", async () => {
  const upstream = await sim(['--model', 'upstream-name']);
  const gw = await serve({ models: [{ name: 'public', endpoints: [{ name: 'only', base_url: upstream.base, model: 'upstream-name' }] }] });
  const post = async (path, body) => {
    const res = await fetch(`${gw.base}${path}`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
    });
    return { status: res.status, model: res.headers.get('x-ballast-model'), json: await res.json() };
  };
  const cases = [
    ['/chat/completions', { model: 'public', messages: [{ role: 'user', content: 'the word "model": "public"' }] }],
    ['/completions', { model: 'public', prompt: 'hi' }],
    ['/embeddings', { model: 'public', input: 'hi' }],
    ['/responses', { model: 'public', input: 'hi' }],
  ];
  for (const [path, body] of cases) {
    const r = await post(path, body);
    assert.equal(r.status, 200, `${path}: ${JSON.stringify(r.json)}`);
    assert.equal(r.model, 'upstream-name');
    assert.equal(r.json.model, 'upstream-name', `${path}: the upstream's own model field reaches the client`);
  }
});
