// The gateway's API through curl and fetch: every endpoint, streamed and not, the headers it
// forwards and replaces, the access log, and the errors a client can cause.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startSim, startServe, chat, streamChat, curl, eventually } from './lib/harness.mjs';

let sim;
let gw;

before(async () => {
  sim = await startSim(['--api-key', 'sk-upstream', '--tokens', '5']);
  gw = await startServe({
    models: [
      { name: 'm', endpoints: [{ provider: 'openai', base_url: sim.base, api_key: 'sk-upstream' }] },
      { name: 'wrong-key', endpoints: [{ provider: 'openai', base_url: sim.base, api_key: 'sk-wrong' }] },
      { name: 'dead', endpoints: [{ provider: 'openai', base_url: 'http://127.0.0.1:1/v1' }] },
    ],
    limits: { max_request_body: '64KiB' },
  });
});

after(async () => {
  await gw?.stop();
  await sim?.stop();
});

test('a non-streamed chat completion passes through unchanged, with a request id', async () => {
  const r = await chat(gw.base, { model: 'm' });
  assert.equal(r.status, 200);
  assert.equal(r.json.object, 'chat.completion');
  assert.equal(r.json.usage.completion_tokens, 5);
  assert.match(r.headers.get('x-ballast-request-id'), /^[0-9a-f]{16}$/);
  assert.match(r.headers.get('x-request-id'), /^req_sim_/, 'upstream headers are forwarded');
  assert.equal(r.headers.get('server'), 'ballast', 'one Server header, ballast\'s own');
});

test('the same request through curl', async () => {
  const r = await curl(['-i', `${gw.base}/chat/completions`, '-H', 'content-type: application/json',
    '-d', '{"model":"m","messages":[{"role":"user","content":"hi"}]}']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^HTTP\/1.1 200 OK/);
  assert.match(r.stdout, /x-ballast-request-id: [0-9a-f]{16}/i);
  assert.match(r.stdout, /"object":"chat.completion"/);
});

test('a streamed chat completion is relayed event by event, ending in [DONE]', async () => {
  const r = await streamChat(gw.base, { model: 'm', stream_options: { include_usage: true } });
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /text\/event-stream/);
  const data = r.events.map((e) => e.data);
  assert.equal(data.at(-1), '[DONE]');
  const tokens = data.slice(0, -1).map((d) => JSON.parse(d)).flatMap((c) => c.choices.map((x) => x.delta.content ?? ''));
  assert.equal(tokens.filter((t) => t).length, 5);
  assert.ok(data.some((d) => d.includes('"usage"')));
});

test('curl -N streams the same events', async () => {
  const r = await curl(['-N', `${gw.base}/chat/completions`, '-H', 'content-type: application/json',
    '-d', '{"model":"m","stream":true,"messages":[]}']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /data: \[DONE\]\n\n$/);
});

test('completions, embeddings and responses are served, streamed and not', async () => {
  const post = (path, body) => fetch(`${gw.base}${path}`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
  const completion = await (await post('/completions', { model: 'm', prompt: 'hi' })).json();
  assert.equal(completion.object, 'text_completion');
  const streamed = await (await post('/completions', { model: 'm', prompt: 'hi', stream: true })).text();
  assert.match(streamed, /data: \[DONE\]/);
  const emb = await (await post('/embeddings', { model: 'm', input: ['a', 'b'] })).json();
  assert.equal(emb.data.length, 2);
  assert.equal(emb.data[1].index, 1);
  const resp = await (await post('/responses', { model: 'm', input: 'hi' })).json();
  assert.equal(resp.object, 'response');
  assert.equal(resp.status, 'completed');
  const respStream = await (await post('/responses', { model: 'm', input: 'hi', stream: true })).text();
  assert.match(respStream, /event: response.completed/);
});

test('GET /v1/models lists the configured model names', async () => {
  const r = await (await fetch(`${gw.base}/models`)).json();
  assert.deepEqual(r.data.map((m) => m.id), ['m', 'wrong-key', 'dead']);
});

test('forwarded headers: the endpoint\'s key replaces the client\'s; x-ballast-* and hop-by-hop ones stay behind', async () => {
  // An upstream that records what it receives.
  let seen = null;
  const upstream = http.createServer((req, res) => {
    seen = req.headers;
    res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': 'yes', 'set-cookie': 'a=b' });
    res.end('{"object":"chat.completion","choices":[]}');
  });
  await new Promise((r) => upstream.listen(0, '127.0.0.1', r));
  const g = await startServe({ models: [{ name: 'm', endpoints: [{ base_url: `http://127.0.0.1:${upstream.address().port}/v1`, api_key: 'sk-endpoint' }] }] });
  try {
    const r = await chat(g.base, { model: 'm' }, {
      authorization: 'Bearer sk-client', 'x-ballast-timeout': '30', 'openai-organization': 'org-1',
      'x-stainless-retry-count': '0', 'accept-encoding': 'gzip', 'proxy-authorization': 'Basic x',
    });
    assert.equal(r.status, 200);
    assert.equal(seen.authorization, 'Bearer sk-endpoint');
    assert.equal(seen['openai-organization'], 'org-1');
    assert.equal(seen['x-stainless-retry-count'], '0');
    assert.equal(seen['x-ballast-timeout'], undefined);
    assert.equal(seen['accept-encoding'], undefined);
    assert.equal(seen['proxy-authorization'], undefined);
    assert.equal(r.headers.get('x-upstream'), 'yes');
    assert.equal(r.headers.get('set-cookie'), null);
  } finally {
    await g.stop();
    upstream.close();
  }
});

test('an upstream that rejects the endpoint\'s key: its 401 passes through, never retried', async () => {
  const r = await chat(gw.base, { model: 'wrong-key' });
  assert.equal(r.status, 401);
  assert.equal(r.json.error.code, 'invalid_api_key');
  assert.equal(r.headers.get('x-should-retry'), 'false');
  assert.equal(r.headers.get('x-ballast-attempts'), '1');
});

test('a dead upstream port: 502 connect_refused after its retries, in under a second, naming hop, endpoint and fix', async () => {
  const r = await chat(gw.base, { model: 'dead' });
  assert.equal(r.status, 502);
  assert.equal(r.json.error.code, 'connect_refused');
  assert.match(r.json.error.message, /connect to 127.0.0.1:1 refused \(nothing listening\)/);
  assert.match(r.json.error.message, /is the model server running, and is the port right\?/);
  // A lone endpoint gets one retry after a fast failure (a full-jitter backoff of at most 250 ms),
  // and no more: failing twice there, with nowhere else to go, ends the request.
  assert.equal(r.headers.get('x-ballast-attempts'), '2');
  assert.equal(r.headers.get('x-should-retry'), 'false');
  assert.ok(r.ms < 1000, `took ${r.ms} ms`);
});

test('an unknown model: 404 unknown_model naming the configured ones', async () => {
  const r = await chat(gw.base, { model: 'gpt-5' });
  assert.equal(r.status, 404);
  assert.equal(r.json.error.code, 'unknown_model');
  assert.match(r.json.error.message, /model 'gpt-5' is not configured \(configured: m, wrong-key, dead\)/);
});

test('malformed JSON: 400 invalid_request', async () => {
  const res = await fetch(`${gw.base}/chat/completions`, { method: 'POST', body: '{"model": "m",' });
  const body = await res.json();
  assert.equal(res.status, 400);
  assert.equal(body.error.code, 'invalid_request');
  assert.equal(body.error.param, null);
  assert.match(body.error.message, /not valid JSON/);
});

test('a missing model: 400 invalid_request', async () => {
  const res = await fetch(`${gw.base}/chat/completions`, { method: 'POST', body: '{"messages":[]}' });
  assert.equal(res.status, 400);
  assert.equal((await res.json()).error.message, "invalid_request: 'model' is required");
});

test('a body over limits.max_request_body: 413 payload_too_large', async () => {
  const big = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'x'.repeat(70 * 1024) }] });
  const res = await fetch(`${gw.base}/chat/completions`, { method: 'POST', body: big });
  const body = await res.json();
  assert.equal(res.status, 413);
  assert.equal(body.error.code, 'payload_too_large');
  assert.match(body.error.message, /limits.max_request_body \(65536 bytes\)/);
});

test('an unknown path says what is served', async () => {
  const res = await fetch(`${gw.url}/chat/completions/extra`, { method: 'POST', body: '{}' });
  assert.equal(res.status, 400);
  assert.match((await res.json()).error.message, /ballast serves POST \/v1\/chat\/completions/);
});

test('base_url without /v1 works too', async () => {
  const r = await chat(gw.url, { model: 'm' });
  assert.equal(r.status, 200);
});

test('GET /healthz answers 200', async () => {
  const res = await fetch(`${gw.url}/healthz`);
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { status: 'ok' });
});

test('one JSON access-log line per request with its phase timings, tokens and bytes', async () => {
  const r = await chat(gw.base, { model: 'm' });
  const s = await streamChat(gw.base, { model: 'm' });
  // The line is written once the response is out: wait for it rather than race it.
  const byId = (res) => eventually(() => gw.accessLog().find((l) => l.id === res.headers.get('x-ballast-request-id')));
  const plain = await byId(r);
  const streamed = await byId(s);
  assert.equal(gw.accessLog().filter((l) => l.id === plain.id).length, 1, 'one line per request');
  assert.equal(plain.id, r.headers.get('x-ballast-request-id'));
  assert.equal(plain.model, 'm');
  assert.equal(plain.endpoint, sim.address);
  assert.equal(plain.status, 200);
  assert.equal(plain.code, 'ok');
  assert.deepEqual(plain.usage, { prompt_tokens: plain.usage.prompt_tokens, completion_tokens: 5, total_tokens: plain.usage.total_tokens });
  assert.ok(plain.bytes_in > 0 && plain.bytes_out === r.text.length);
  for (const key of ['dns_ms', 'connect_ms', 'tls_ms', 'first_byte_ms', 'first_token_ms', 'total_ms']) {
    assert.ok(key in plain, key);
    assert.ok(key in plain.attempts[0], key);
  }
  assert.equal(plain.attempts.length, 1);
  assert.equal(streamed.stream, true);
  assert.ok(streamed.first_token_ms > 0);
  assert.equal(streamed.bytes_out, s.text.length);
  const failed = gw.accessLog().find((l) => l.code === 'connect_refused');
  assert.ok(failed.message.includes('refused'), 'failures log their message');
});

test('no line of the log, no error body carries an upstream key', async () => {
  assert.ok(!gw.stdout.includes('sk-upstream'));
  assert.ok(!gw.stderr.includes('sk-upstream'));
});
