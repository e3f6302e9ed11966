// Honest answers, judged as the clients judge them: a whole stream passes (with or without
// [DONE]), a broken one fails, and the request is read once, one way. Driven through the OpenAI
// Node SDK and LangChain.js; the simulator's faults script each case per request (x-sim-fault).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { ChatOpenAI } from '@langchain/openai';
import { chat, eventually, runBallast, stopAfterAll } from './lib/harness.mjs';

const { sim, serve } = stopAfterAll();
const messages = [{ role: 'user', content: 'hi' }];

async function setup(config = {}, simFlags = ['--ttft', '5', '--itl', '1', '--tokens', '6']) {
  const upstream = await sim(simFlags);
  const gw = await serve({
    outlier: { consecutive_failures: 1000 }, // a lone endpoint failing on purpose stays in
    ...config,
    models: [{ name: 'm', endpoints: [{ name: 'ep', base_url: upstream.base, health_check: false }] }],
  });
  return { upstream, gw, client: new OpenAI({ baseURL: gw.base, apiKey: 'sk-app' }) };
}

const fault = (spec) => ({ headers: { 'x-sim-fault': spec } });

async function readStream(stream) {
  let text = '';
  let finish = null;
  let usage = null;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta?.content ?? '';
    finish = chunk.choices[0]?.finish_reason ?? finish;
    usage = chunk.usage ?? usage;
  }
  return { text, finish, usage };
}

async function lastLog(gw, n = 1) {
  return eventually(() => { const l = gw.accessLog(); return l.length >= n && l[n - 1]; });
}

test('a whole stream that ends without [DONE] (finish_reason, then usage) is a success', async () => {
  const { gw, client, upstream } = await setup();
  const stream = await client.chat.completions.create(
    { model: 'm', messages, stream: true, stream_options: { include_usage: true } }, fault('no-done'));
  const r = await readStream(stream);
  assert.equal(r.finish, 'stop');
  assert.equal(r.usage.completion_tokens, 6);
  const line = await lastLog(gw);
  assert.equal(line.code, 'ok');
  assert.equal(line.usage.completion_tokens, 6);
  assert.equal(line.attempts.length, 1);
  assert.equal((await upstream.stats()).requests, 1);
  // LangChain.js reads it the same way.
  const llm = new ChatOpenAI({ model: 'm', apiKey: 'sk-app', configuration: { baseURL: gw.base, defaultHeaders: { 'x-sim-fault': 'no-done' } }, maxRetries: 0 });
  let chunks = 0;
  for await (const c of await llm.stream('hello')) if (c.content) chunks++;
  assert.equal(chunks, 6);
});

test("a mid-stream error event: the client's SDK raises the upstream's reason; logged and counted as upstream_error", async () => {
  const { gw, client } = await setup();
  const stream = await client.chat.completions.create({ model: 'm', messages, stream: true }, fault('error-event=2'));
  const chunks = [];
  const e = await (async () => { for await (const c of stream) chunks.push(c); })().then(() => null, (err) => err);
  assert.ok(e, 'the stream raised');
  assert.match(String(e.message), /Simulated mid-stream failure/);
  assert.ok(chunks.length >= 2, 'the tokens before it arrived');
  assert.ok(chunks.every((c) => !c.choices?.[0]?.finish_reason));
  const line = await lastLog(gw);
  assert.equal(line.code, 'upstream_error');
  assert.equal(line.attempts[0].code, 'upstream_error');
  const metrics = await (await fetch(`${gw.url}/metrics`)).text();
  assert.match(metrics, /ballast_requests_total\{model="m",endpoint="ep",upstream_model="m",code="upstream_error"\} 1/);
  const status = await (await fetch(`${gw.url}/ballast/status`)).json();
  assert.equal(status.models[0].endpoints[0].window_failures, 1, 'reported to health as a failure');
});

test('an error event before the first token is retried like an error status', async () => {
  const { gw, upstream } = await setup();
  await upstream.setFaults(['error-event=0#1']);
  const r = await new OpenAI({ baseURL: gw.base, apiKey: 'sk-app', maxRetries: 0 }).chat.completions.create({ model: 'm', messages, stream: true });
  assert.equal((await readStream(r)).finish, 'stop');
  const line = await lastLog(gw);
  assert.deepEqual(line.attempts.map((a) => a.code), ['upstream_error', 'ok']);
  assert.equal((await upstream.stats()).requests, 2);
});

test('a malformed event amid a whole stream is dropped and counted; the answer is a success', async () => {
  const { gw, client } = await setup();
  const stream = await client.chat.completions.create({ model: 'm', messages, stream: true }, fault('malformed-at=2'));
  const r = await readStream(stream);
  assert.equal(r.finish, 'stop');
  assert.equal(r.text.split(' ').length, 6);
  const line = await lastLog(gw);
  assert.equal(line.code, 'ok');
  assert.equal(line.malformed_events, 1);
  const metrics = await (await fetch(`${gw.url}/metrics`)).text();
  assert.match(metrics, /ballast_malformed_events_total\{endpoint="ep"\} 1/);
});

test('a 200 whose body is not JSON is a 502, and retried', async () => {
  const { gw, upstream } = await setup();
  const client = new OpenAI({ baseURL: gw.base, apiKey: 'sk-app', maxRetries: 0 });
  const e = await client.chat.completions.create({ model: 'm', messages }, fault('malformed')).then(() => null, (err) => err);
  assert.equal(e.status, 502);
  assert.equal(e.code, 'upstream_reset');
  assert.match(e.message, /not JSON/);
  assert.equal(e.headers.get('x-ballast-attempts'), '2');
  await upstream.setFaults(['malformed#1']);
  const ok = await client.chat.completions.create({ model: 'm', messages });
  assert.equal(ok.choices[0].finish_reason, 'stop');
  const line = await lastLog(gw, 2);
  assert.deepEqual(line.attempts.map((a) => a.code), ['upstream_reset', 'ok']);
});

test('a client that pauses 20 s mid-stream gets the whole stream; the endpoint is not charged', { timeout: 90_000 }, async () => {
  // Enough tokens to fill every buffer between the simulator and the client, so ballast must stop
  // reading from the upstream while the client does not read; stream_idle far below the pause.
  const { gw } = await setup({ timeouts: { stream_idle: '3s' } }, ['--ttft', '5', '--itl', '0', '--tokens', '60000']);
  const res = await fetch(`${gw.base}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'm', messages, stream: true }),
  });
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let text = decoder.decode((await reader.read()).value, { stream: true });
  await new Promise((r) => setTimeout(r, 20_000));
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  assert.ok(text.length > 5_000_000, `only ${text.length} bytes: the stream did not fill the buffers`);
  assert.ok(text.endsWith('data: [DONE]\n\n'), 'the stream ended whole');
  assert.ok(!text.includes('event: error'));
  const line = await lastLog(gw);
  assert.equal(line.code, 'ok');
  const status = await (await fetch(`${gw.url}/ballast/status`)).json();
  assert.equal(status.models[0].endpoints[0].window_failures, 0);
});

test('one reading of the request: duplicate keys and unusable token limits are refused', async () => {
  const upstream = await sim([]);
  const gw = await serve({
    keys: [{ key: 'cheap-only', models: ['cheap'] }],
    models: [
      { name: 'cheap', endpoints: [{ base_url: upstream.base }] },
      { name: 'expensive', endpoints: [{ base_url: upstream.base }] },
    ],
  });
  const post = async (raw) => {
    const res = await fetch(`${gw.base}/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer cheap-only' }, body: raw,
    });
    return { status: res.status, body: await res.json() };
  };
  const dup = await post('{"model":"cheap","messages":[],"model":"expensive"}');
  assert.equal(dup.status, 400);
  assert.equal(dup.body.error.code, 'invalid_request');
  assert.match(dup.body.error.message, /'model' more than once/);
  assert.equal((await post('{"model":"cheap","stream":false,"messages":[],"stream":true}')).status, 400);
  for (const n of ['-1', '9223372036854775807', '1e300', '"lots"']) {
    const r = await post(`{"model":"cheap","messages":[],"max_tokens":${n}}`);
    assert.equal(r.status, 400, n);
    assert.match(r.body.error.message, /max_tokens/);
  }
  assert.equal((await upstream.stats()).requests, 0, 'none of them reached the upstream');
});

test('a 1 MB model name: a bounded 404, a bounded log line', async () => {
  const { gw } = await setup();
  const name = 'x'.repeat(1 << 20);
  const r = await chat(gw.base, { model: name });
  assert.equal(r.status, 404);
  assert.ok(r.text.length < 2000, `the error body is ${r.text.length} bytes`);
  assert.match(r.json.error.message, /x…' is not configured/);
  const line = await lastLog(gw);
  assert.ok(JSON.stringify(line).length < 3000);
  assert.ok(line.model.endsWith('…'));
});

test("an upstream that echoes the endpoint's key in its error body never hands it to the client", async (t) => {
  // A scripted upstream: answers 400 with the Authorization header it received in the message.
  const http = await import('node:http');
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: `bad request with ${req.headers.authorization}`, type: 'invalid_request_error', code: null } }));
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  const key = 'sk-canary-0123456789abcdef';
  const gw = await serve({ models: [{ name: 'm', endpoints: [{ base_url: `http://127.0.0.1:${server.address().port}/v1`, api_key: key, health_check: false }] }] });
  const r = await chat(gw.base, { model: 'm' });
  assert.equal(r.status, 400);
  assert.ok(!r.text.includes(key), r.text);
  assert.match(r.json.error.message, /Bearer \*\*\*/);
  assert.ok(!gw.stdout.includes(key) && !gw.stderr.includes(key));
});

test('a request the HTTP parser refuses gets a 400 (431 for huge headers) in the OpenAI shape, and a log line', async () => {
  const net = await import('node:net');
  const { gw } = await setup();
  const [host, port] = [gw.address.split(':')[0], Number(gw.address.split(':')[1])];
  const send = (raw) => new Promise((resolve, reject) => {
    const sock = net.connect(port, host, () => sock.end(raw));
    let got = '';
    sock.on('data', (d) => { got += d; });
    sock.on('end', () => resolve(got));
    sock.on('error', reject);
  });
  const smuggle = await send('POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n');
  assert.match(smuggle, /^HTTP\/1\.1 400 /);
  assert.match(smuggle, /connection: close/i);
  assert.match(smuggle, /x-ballast-request-id: [0-9a-f]{16}/);
  const body = JSON.parse(smuggle.slice(smuggle.indexOf('\r\n\r\n') + 4));
  assert.equal(body.error.code, 'invalid_request');
  const huge = await send(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(70_000)}\r\n\r\n`);
  assert.match(huge, /^HTTP\/1\.1 431 /);
  const lines = await eventually(() => { const l = gw.accessLog(); return l.length >= 2 && l; });
  assert.deepEqual(lines.map((l) => l.status), [400, 431]);
});

test('an SSE line longer than limits.max_sse_line fails the stream as upstream_reset, named, and is not retried', async (t) => {
  const http = await import('node:http');
  let requests = 0;
  // A scripted upstream: a stream whose first event never ends its line.
  const server = http.createServer((req, res) => {
    requests++;
    req.resume();
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write(`data: {"choices":[{"index":0,"delta":{"content":"${'x'.repeat(200_000)}`);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => { server.closeAllConnections(); server.close(); });
  const gw = await serve({
    limits: { max_sse_line: '64KiB' },
    models: [{ name: 'm', endpoints: [{ base_url: `http://127.0.0.1:${server.address().port}/v1`, health_check: false }] }],
  });
  const r = await chat(gw.base, { model: 'm', stream: true });
  assert.equal(r.status, 502);
  assert.equal(r.json.error.code, 'upstream_reset');
  assert.match(r.json.error.message, /longer than limits\.max_sse_line \(65536 bytes\)/);
  assert.equal(r.headers.get('x-ballast-attempts'), '1');
  assert.equal(requests, 1);
});

test('a response header block over 64 KiB fails as upstream_reset, named, and is not retried', async (t) => {
  const http = await import('node:http');
  let requests = 0;
  const server = http.createServer((req, res) => {
    requests++;
    req.resume();
    const headers = { 'content-type': 'application/json' };
    for (let i = 0; i < 10; i++) headers[`x-filler-${i}`] = 'a'.repeat(8_000);
    res.writeHead(200, headers);
    res.end('{"choices":[]}');
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => { server.closeAllConnections(); server.close(); });
  const gw = await serve({
    models: [{ name: 'm', endpoints: [{ base_url: `http://127.0.0.1:${server.address().port}/v1`, health_check: false }] }],
  });
  const r = await chat(gw.base, { model: 'm' });
  assert.equal(r.status, 502);
  assert.equal(r.json.error.code, 'upstream_reset');
  assert.match(r.json.error.message, /response headers larger than 64 KiB/);
  assert.equal(r.headers.get('x-ballast-attempts'), '1');
  assert.equal(requests, 1, 'the same upstream would send the same again: not retried');
});

test('an upstream stream whose lines end in a lone CR arrives whole, its last event included', async (t) => {
  const http = await import('node:http');
  // SSE allows CR, LF or CRLF to end a line. The last byte a CR: until the stream ends it might be the
  // first half of a CRLF; once it has ended, it ends the event.
  const server = http.createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write('data: {"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}\r\r');
    res.end('data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\r\r');
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  const gw = await serve({ models: [{ name: 'm', endpoints: [{ base_url: `http://127.0.0.1:${server.address().port}/v1`, health_check: false }] }] });
  const r = await chat(gw.base, { model: 'm', stream: true });
  assert.equal(r.status, 200);
  assert.ok(r.text.endsWith('"finish_reason":"stop"}]}\r\r'), JSON.stringify(r.text.slice(-80)));
  assert.ok(!r.text.includes('event: error'), r.text);
  const line = await eventually(() => gw.accessLog().at(-1));
  assert.equal(line.code, 'ok');
  // ballast load reads the same stream as whole too.
  const load = await runBallast(['load', '--target', gw.base, '--model', 'm', '--stream', '--concurrency', '1', '--duration', '0.5']);
  assert.match(load.stdout, /err +0\.0%/, load.stdout);
});

test('a HEAD request gets the headers of its answer and no body; the connection stays usable', async () => {
  const net = await import('node:net');
  const { gw } = await setup();
  const [host, port] = [gw.address.split(':')[0], Number(gw.address.split(':')[1])];
  const got = await new Promise((resolve, reject) => {
    const sock = net.connect(port, host, () => {
      sock.write('HEAD /v1/models HTTP/1.1\r\nHost: x\r\n\r\n');
      sock.write('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    });
    let text = '';
    sock.on('data', (d) => { text += d; });
    sock.on('end', () => resolve(text));
    sock.on('error', reject);
  });
  // The first answer's header block is followed at once by the second answer's status line.
  const first = got.indexOf('\r\n\r\n');
  assert.match(got, /^HTTP\/1\.1 \d{3} /);
  assert.match(got.slice(0, first), /content-length: [1-9]\d*/i);
  assert.match(got.slice(first + 4), /^HTTP\/1\.1 200 /, JSON.stringify(got));
  assert.match(got, /\{"status":"ok"\}$/);
});

test('a stream to an HTTP/1.0 client is sent unchunked and ended by closing the connection', async () => {
  const net = await import('node:net');
  const { gw } = await setup();
  const [host, port] = [gw.address.split(':')[0], Number(gw.address.split(':')[1])];
  const body = JSON.stringify({ model: 'm', stream: true, messages });
  const got = await new Promise((resolve, reject) => {
    const sock = net.connect(port, host, () => {
      sock.write(`POST /v1/chat/completions HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    });
    let text = '';
    sock.on('data', (d) => { text += d; });
    sock.on('end', () => resolve(text));
    sock.on('error', reject);
  });
  const split = got.indexOf('\r\n\r\n');
  const head = got.slice(0, split);
  const rest = got.slice(split + 4);
  assert.match(head, /^HTTP\/1\.1 200 /);
  assert.doesNotMatch(head, /transfer-encoding/i);
  assert.match(head, /connection: close/i);
  assert.ok(rest.startsWith('data: {'), JSON.stringify(rest.slice(0, 40)));
  assert.ok(rest.endsWith('data: [DONE]\n\n'), JSON.stringify(rest.slice(-40)));
});
