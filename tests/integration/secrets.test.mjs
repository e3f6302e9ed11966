// Secrets stay secret: three canaries (an endpoint's upstream api_key, a client key under keys:, a
// proxy password) are driven through every error code ballast answers, streamed and not, every admin
// page, reloads good and bad, `serve --check`, doctor and load. Everything anyone outside ballast sees
// (response bodies, headers, SSE events, the access and server logs, reports) is collected per
// scenario, and the last test asserts that no canary appears in any of it. Each scenario also asserts
// the code it was built to reach, so none passes by doing nothing.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import {
  stopAfterAll, startProcess, runBallast, eventually, tempDir, unansweredListener,
} from './lib/harness.mjs';

const hex = (bytes) => crypto.randomBytes(bytes).toString('hex');
const UPSTREAM_KEY = `sk-canary-${hex(16)}`;
const CLIENT_KEY = `sk-canary-${hex(16)}`;
const PROXY_PASSWORD = `canary-${hex(16)}`;
// The configuration names them as ${VAR}; serve and doctor get them in their environment.
const SECRET_ENV = { UPSTREAM_KEY, CLIENT_KEY, PROXY_PASSWORD };
// What would give a secret away: the secret, its random part alone, and the proxy's Basic credentials.
const TELLS = [
  ...Object.entries(SECRET_ENV).flatMap(([name, s]) => [[name, s], [`${name}'s random part`, s.slice(-32)]]),
  ['the proxy credentials in Basic form', Buffer.from(`user:${PROXY_PASSWORD}`).toString('base64')],
];

const run = stopAfterAll();
const messages = [{ role: 'user', content: 'hi' }];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Everything seen from outside, by scenario: [{scenario, where, text}].
const collected = [];
function collect(scenario, where, text) {
  collected.push({ scenario, where, text: typeof text === 'string' ? text : JSON.stringify(text) });
}

// An upstream that repeats the credentials it was sent, as some servers and proxies do in their errors.
// The mode comes from the x-echo header, or else from the first path segment (for doctor, which sends
// no headers of ours): 401 (the default), 401-header (the key in WWW-Authenticate too), 500,
// event-first (an SSE error event before any token), event-after-token. /models answers 200 but in 401.
async function startEcho() {
  const received = [];
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const creds = [req.headers.authorization, req.headers['api-key']].filter(Boolean).join(' ');
      received.push(creds);
      const segment = req.url.split('/')[1];
      const mode = req.headers['x-echo'] ?? (['v1', 'openai'].includes(segment) ? '401' : segment);
      const error = (status, headers = {}) => {
        res.writeHead(status, { 'content-type': 'application/json', ...headers });
        res.end(JSON.stringify({ error: { message: `Incorrect API key provided: ${creds}`, type: 'invalid_request_error', code: 'invalid_api_key', param: null } }));
      };
      if (mode === '401') return error(401);
      if (mode === '401-header') return error(401, { 'www-authenticate': `Bearer error="invalid_token", error_description="${creds}"` });
      if (req.method === 'GET' && req.url.split('?')[0].endsWith('/models')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end(JSON.stringify({ object: 'list', data: [{ id: 'm', object: 'model' }] }));
      }
      if (mode === '500') return error(500);
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      if (mode === 'event-after-token') {
        const chunk = { id: 'c', object: 'chat.completion.chunk', created: 0, model: 'm', choices: [{ index: 0, delta: { content: 'hello' }, finish_reason: null }] };
        res.write(`data: ${JSON.stringify(chunk)}\n\n`);
      }
      res.end(`data: ${JSON.stringify({ error: { message: `the key ${creds} was revoked`, type: 'server_error', code: 'invalid_api_key' } })}\n\n`);
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${server.address().port}`;
  return { url, base: `${url}/v1`, received, stop: () => server.close() };
}

// A forward proxy that wants user:PROXY_PASSWORD: it carries plain-HTTP requests that present them
// and refuses every CONNECT with 407.
async function startProxy() {
  const expected = `Basic ${Buffer.from(`user:${PROXY_PASSWORD}`).toString('base64')}`;
  const received = [];
  const server = http.createServer((req, res) => {
    received.push(req.headers['proxy-authorization']);
    if (req.headers['proxy-authorization'] !== expected) {
      res.writeHead(407, { 'proxy-authenticate': 'Basic realm="canary"' });
      return res.end();
    }
    const headers = { ...req.headers };
    delete headers['proxy-authorization'];
    const up = http.request(req.url, { method: req.method, headers }, (r) => {
      res.writeHead(r.statusCode, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  server.on('connect', (req, socket) => {
    received.push(req.headers['proxy-authorization']);
    socket.end('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="canary"\r\nContent-Length: 0\r\n\r\n');
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { port: server.address().port, expected, received, stop: () => server.close() };
}

let sim; // requires UPSTREAM_KEY: a 200 through it shows the key was sent
let tierA; // the two tiers of model 'down', both answering 500
let tierB;
let echo;
let proxy;
// A port nothing listens on, ever (tcpmux's): one found free at the start could be given to a
// process started later in this file.
const deadPort = 1;
let gw;
let config;

const ep = (name, extra) => ({ name, api_key: '${UPSTREAM_KEY}', health_check: false, ...extra });
const proxyUrl = (port) => `http://user:\${PROXY_PASSWORD}@127.0.0.1:${port}`;

before(async () => {
  sim = await run.sim(['--api-key', UPSTREAM_KEY, '--tokens', '4']);
  tierA = await run.sim(['--api-key', UPSTREAM_KEY, '--fault', 'status=500']);
  tierB = await run.sim(['--api-key', UPSTREAM_KEY, '--fault', 'status=500']);
  echo = run.keep(await startEcho());
  proxy = run.keep(await startProxy());
  const silent = run.keep(await unansweredListener());
  const fast = { first_byte: '400ms', first_token: '400ms', stream_idle: '400ms' };
  config = {
    keys: [{ key: '${CLIENT_KEY}' }],
    limits: { max_request_body: '16KiB' },
    shutdown_grace: '500ms',
    outlier: { consecutive_failures: 1, base_ejection: '1s' },
    retries: { max_attempts: 1 },
    timeouts: { connect: '400ms' },
    models: [
      { name: 'ok', endpoints: [ep('sim', { base_url: sim.base })] },
      { name: 'fast', timeouts: fast, endpoints: [ep('fast', { base_url: sim.base })] },
      { name: 'full', endpoints: [ep('full', { base_url: sim.base, max_in_flight: 1, queue: 0 })] },
      { name: 'wait', timeouts: { queue: '300ms' }, endpoints: [ep('wait', { base_url: sim.base, max_in_flight: 1 })] },
      { name: 'rpm', endpoints: [ep('rpm', { base_url: sim.base, rpm: 6 })] },
      { name: 'refused', endpoints: [ep('refused', { base_url: `http://127.0.0.1:${deadPort}/v1` })] },
      { name: 'silent', endpoints: [ep('silent', { base_url: `http://127.0.0.1:${silent.port}/v1` })] },
      { name: 'tls', endpoints: [ep('tls', { base_url: sim.base.replace('http:', 'https:') })] },
      { name: 'dns', endpoints: [ep('dns', { base_url: 'http://ballast-canary.invalid/v1' })] },
      { name: 'proxied', endpoints: [ep('proxied', { base_url: sim.base, proxy: proxyUrl(proxy.port) })] },
      // Its active checks, every 200 ms, fail through the dead proxy too.
      { name: 'proxy-dead', endpoints: [ep('proxy-dead', { base_url: sim.base, proxy: proxyUrl(deadPort), health_check: { interval: '200ms' } })] },
      { name: 'proxy-refuses', endpoints: [ep('proxy-refuses', { base_url: sim.base.replace('http:', 'https:'), proxy: proxyUrl(proxy.port) })] },
      { name: 'echo', endpoints: [ep('echo', { base_url: echo.base, health_check: { interval: '200ms' } })] },
      { name: 'echo-azure', endpoints: [ep('echo-azure', { provider: 'azure', endpoint: echo.url, deployment: 'd', api_version: '2024-10-21' })] },
      { name: 'down', endpoints: [ep('down-a', { base_url: tierA.base }), ep('down-b', { base_url: tierB.base, priority: 1 })] },
    ],
  };
  gw = await run.serve(config, { env: SECRET_ENV });
});

// ---- requests ----

const headerText = (headers) => [...headers.entries()].map(([k, v]) => `${k}: ${v}`).join('\n');

// The error code a client reads: from a JSON error body, or from the last SSE event carrying an error.
function codeOf(text) {
  try { return JSON.parse(text)?.error?.code ?? null; } catch { /* a stream */ }
  let code = null;
  for (const line of text.split('\n')) {
    if (!line.startsWith('data: ')) continue;
    try { code = JSON.parse(line.slice(6))?.error?.code ?? code; } catch { /* [DONE], or not JSON */ }
  }
  return code;
}

// One request as a step of a scenario describes it; reads the answer to its end (or its cut).
async function send(step, g = gw) {
  const auth = step.auth ?? { authorization: `Bearer ${CLIENT_KEY}` };
  const headers = { 'content-type': 'application/json', ...auth, ...step.headers };
  if (step.fault) headers['x-sim-fault'] = step.fault;
  if (step.echo) headers['x-echo'] = step.echo;
  const body = step.rawBody ?? JSON.stringify({ model: step.model, messages, ...(step.stream && { stream: true }), ...step.extra });
  const res = await fetch(`${g.url}${step.path ?? '/v1/chat/completions'}`, {
    method: step.method ?? 'POST', headers, body: step.method === 'GET' ? undefined : body,
  });
  let text = '';
  const decoder = new TextDecoder();
  try {
    for await (const chunk of res.body) text += decoder.decode(chunk, { stream: true });
  } catch { /* a cut stream keeps what arrived */ }
  return { status: res.status, headers: res.headers, text, id: res.headers.get('x-ballast-request-id') };
}

// A request that is not HTTP ballast can frame, written on a socket of its own.
function sendRaw(bytes) {
  return new Promise((resolve, reject) => {
    const port = Number(gw.address.split(':').at(-1));
    const s = net.connect(port, '127.0.0.1', () => s.write(bytes));
    let text = '';
    s.setEncoding('utf8');
    s.on('data', (d) => { text += d; });
    s.on('end', () => resolve(text));
    s.on('error', reject);
    setTimeout(() => { s.destroy(); resolve(text); }, 2000);
  });
}

async function inFlight(model, g = gw) {
  const status = await (await fetch(`${g.url}/ballast/status`)).json();
  const m = status.models.find((x) => x.name === model);
  return m.endpoints.reduce((n, e) => n + e.in_flight, 0);
}

const OWN = (code) => !['ok', 'upstream_status'].includes(code);

// Checks a step's answer (its status, the code the client reads, the code logged, and where an
// upstream echoed a secret, that the echo arrived with *** in its place) and collects every part of it.
async function check(scenario, step, r, g = gw) {
  const label = step.label ?? scenario;
  collect(scenario, `${label}: response headers`, headerText(r.headers));
  collect(scenario, `${label}: response body`, r.text);
  assert.equal(r.status, step.status, `${label}: HTTP status (${r.text.slice(0, 300)})`);
  const clientCode = step.clientCode === undefined ? (OWN(step.code) ? step.code : undefined) : step.clientCode;
  if (clientCode !== undefined) assert.equal(codeOf(r.text), clientCode, `${label}: the code the client reads`);
  if (step.shows) assert.match(`${headerText(r.headers)}\n${r.text}`, step.shows, `${label}: the echo, scrubbed`);
  assert.ok(r.id, `${label}: x-ballast-request-id`);
  const line = await eventually(() => g.accessLog().find((l) => String(l.id) === r.id), { timeoutMs: 10_000 });
  collect(scenario, `${label}: its access log line`, JSON.stringify(line));
  assert.equal(line.code, step.code, `${label}: the code logged`);
}

// A scenario is a list of steps, run in order. A step may wait first, or run in the background (held
// in flight while the next steps run; awaited and checked at the end).
async function play(scenario, g = gw) {
  const background = [];
  for (const step of scenario.steps) {
    if (step.wait) await sleep(step.wait);
    if (step.background) {
      background.push([step, send(step, g)]);
      await eventually(async () => (await inFlight(step.model, g)) >= 1);
      continue;
    }
    await check(scenario.name, step, await send(step, g), g);
  }
  for (const [step, pending] of background) await check(scenario.name, step, await pending, g);
}

const one = (name, step) => ({ name, steps: [step] });
const held = (model, fault) => ({ label: 'the request holding the slot', model, fault, background: true, status: 200, code: 'ok' });

const SCENARIOS = [
  one('a plain success (the sim requires the upstream key)', { model: 'ok', status: 200, code: 'ok' }),
  one('a streamed success', { model: 'ok', stream: true, status: 200, code: 'ok' }),
  one('a success through the proxy with the password', { model: 'proxied', status: 200, code: 'ok' }),
  one('unknown_model', { model: 'nope', status: 404, code: 'unknown_model' }),
  one('unknown_model, streamed', { model: 'nope', stream: true, status: 404, code: 'unknown_model' }),
  one('invalid_request: malformed JSON', { rawBody: '{"model": "ok", "messages": [', status: 400, code: 'invalid_request' }),
  one('invalid_request: model given twice', { rawBody: `{"model":"ok","model":"fast","messages":${JSON.stringify(messages)}}`, status: 400, code: 'invalid_request' }),
  one('invalid_request: unknown path', { path: '/v1/nothing', model: 'ok', status: 400, code: 'invalid_request' }),
  one('unauthorized: no client key', { auth: {}, model: 'ok', status: 401, code: 'unauthorized' }),
  one('unauthorized: a wrong key containing the client key', { auth: { authorization: `Bearer x${CLIENT_KEY}x` }, model: 'ok', status: 401, code: 'unauthorized' }),
  one('unauthorized: the client key with a suffix, as x-api-key', { auth: { 'x-api-key': `${CLIENT_KEY}-old` }, model: 'ok', stream: true, status: 401, code: 'unauthorized' }),
  one('unauthorized: the upstream key presented as a client key', { auth: { 'api-key': UPSTREAM_KEY }, model: 'ok', status: 401, code: 'unauthorized' }),
  one('unauthorized: the client key in the query string', { auth: {}, path: `/v1/chat/completions?api-key=${CLIENT_KEY}`, model: 'ok', status: 401, code: 'unauthorized' }),
  one('unauthorized: GET /v1/models with a wrong key', { auth: { authorization: `Bearer ${UPSTREAM_KEY}` }, method: 'GET', path: '/v1/models', status: 401, code: 'unauthorized' }),
  one('payload_too_large', { model: 'ok', extra: { padding: 'x'.repeat(20_000) }, status: 413, code: 'payload_too_large' }),
  {
    name: 'rate_limited',
    steps: [
      { label: 'the one request the bucket holds', model: 'rpm', status: 200, code: 'ok' },
      { label: 'the next', model: 'rpm', status: 429, code: 'rate_limited' },
      { label: 'the next, streamed', model: 'rpm', stream: true, status: 429, code: 'rate_limited' },
    ],
  },
  { name: 'queue_full', steps: [held('full', 'slow-headers=1000'), { model: 'full', status: 503, code: 'queue_full' }] },
  {
    name: 'queue_timeout',
    steps: [held('wait', 'slow-headers=1200'), { model: 'wait', status: 503, code: 'queue_timeout' },
      { label: 'streamed', model: 'wait', stream: true, status: 503, code: 'queue_timeout' }],
  },
  one('deadline_exceeded', { model: 'ok', fault: 'slow-headers=3000', headers: { 'x-ballast-timeout': '0.5' }, status: 504, code: 'deadline_exceeded' }),
  one('deadline_exceeded, streamed', { model: 'ok', stream: true, fault: 'slow-first-token=3000', headers: { 'x-ballast-timeout': '0.5' }, status: 504, code: 'deadline_exceeded' }),
  one('connect_refused', { model: 'refused', status: 502, code: 'connect_refused' }),
  one('connect_refused, streamed', { model: 'refused', stream: true, status: 502, code: 'connect_refused' }),
  one('connect_timeout', { model: 'silent', status: 504, code: 'connect_timeout' }),
  one('tls_failure', { model: 'tls', status: 502, code: 'tls_failure' }),
  one('dns_failure', { model: 'dns', status: 502, code: 'dns_failure' }),
  one('first_byte_timeout', { model: 'fast', fault: 'slow-headers=2000', status: 504, code: 'first_byte_timeout' }),
  one('first_byte_timeout, streamed', { model: 'fast', stream: true, fault: 'slow-headers=2000', status: 504, code: 'first_byte_timeout' }),
  one('first_token_timeout', { model: 'fast', stream: true, fault: 'slow-first-token=2000', status: 504, code: 'first_token_timeout' }),
  one('stream_idle_timeout (an SSE error event)', { model: 'fast', stream: true, fault: 'stall-after=2', status: 200, code: 'stream_idle_timeout' }),
  one('upstream_reset', { model: 'ok', fault: 'reset', status: 502, code: 'upstream_reset' }),
  one('upstream_reset: a 2xx that is not JSON', { model: 'ok', fault: 'malformed', status: 502, code: 'upstream_reset' }),
  one('upstream_reset, streamed (cut)', { model: 'ok', stream: true, fault: 'cut-after=2', status: 200, code: 'upstream_reset' }),
  one('upstream_error before the first token', { model: 'ok', stream: true, fault: 'error-event=0', status: 502, code: 'upstream_error' }),
  one('upstream_error after tokens (relayed)', { model: 'ok', stream: true, fault: 'error-event=2', status: 200, code: 'upstream_error', clientCode: 'server_error' }),
  one('upstream_status', { model: 'ok', fault: 'status=500', status: 500, code: 'upstream_status' }),
  one('upstream_status, streamed', { model: 'ok', stream: true, fault: 'status=503', status: 503, code: 'upstream_status' }),
  one('upstream_status: a 401 echoing the key', { model: 'echo', status: 401, code: 'upstream_status', shows: /provided: Bearer \*\*\*"/ }),
  one('upstream_status: a 401 echoing the key, streamed', { model: 'echo', stream: true, status: 401, code: 'upstream_status', shows: /provided: Bearer \*\*\*"/ }),
  one('upstream_status: a 500 echoing the key', { model: 'echo', echo: '500', status: 500, code: 'upstream_status', shows: /provided: Bearer \*\*\*"/ }),
  one('upstream_status: Azure, a 401 echoing its api-key', { model: 'echo-azure', status: 401, code: 'upstream_status', shows: /provided: \*\*\*"/ }),
  one('upstream_status: a 401 echoing the key in WWW-Authenticate too', { model: 'echo', echo: '401-header', status: 401, code: 'upstream_status', shows: /www-authenticate: .*error_description="Bearer \*\*\*"/ }),
  one('upstream_error: an error event echoing the key before the first token', { model: 'echo', echo: 'event-first', stream: true, status: 502, code: 'upstream_error', shows: /the key Bearer \*\*\* was revoked/ }),
  one('upstream_error: an error event echoing the key after a token', { model: 'echo', echo: 'event-after-token', stream: true, status: 200, code: 'upstream_error', clientCode: 'invalid_api_key', shows: /the key Bearer \*\*\* was revoked/ }),
  {
    // Tier A fails and is ejected; once its ejection is over it is probing (held); tier B fails and is
    // ejected meanwhile: no endpoint is left.
    name: 'all_endpoints_down',
    steps: [
      { label: 'tier A fails', model: 'down', status: 500, code: 'upstream_status' },
      { ...held('down', 'slow-headers=2500'), label: "tier A's half-open probe", wait: 1200 },
      { label: 'tier B fails', model: 'down', status: 500, code: 'upstream_status' },
      { label: 'no endpoint left', model: 'down', status: 503, code: 'all_endpoints_down' },
      { label: 'no endpoint left, streamed', model: 'down', stream: true, status: 503, code: 'all_endpoints_down' },
    ],
  },
  one('proxy_failure: a dead proxy with the password', { model: 'proxy-dead', status: 502, code: 'proxy_failure' }),
  one('proxy_failure: a dead proxy with the password, streamed', { model: 'proxy-dead', stream: true, status: 502, code: 'proxy_failure' }),
  one('proxy_failure: a proxy refusing CONNECT', { model: 'proxy-refuses', status: 502, code: 'proxy_failure' }),
];

test('every error code, streamed and not: bodies, headers and SSE events', async (t) => {
  for (const scenario of SCENARIOS) await t.test(scenario.name, () => play(scenario));
  // The secrets were live on those paths: the upstreams and the proxy were sent them.
  assert.ok(echo.received.some((c) => c === `Bearer ${UPSTREAM_KEY}`), 'the echo server got the key');
  assert.ok(echo.received.some((c) => c === UPSTREAM_KEY), 'the echo server got the Azure api-key');
  assert.ok(proxy.received.includes(proxy.expected), 'the proxy got the password');
});

test('requests ballast cannot frame, carrying the client key', async () => {
  const auth = `Authorization: Bearer ${CLIENT_KEY}\r\n`;
  const cases = {
    'Content-Length with Transfer-Encoding': `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n${auth}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
    'a bad request line with the key in it': `POST /v1/chat/completions?key=${CLIENT_KEY} HTTP/9.${CLIENT_KEY}\r\nHost: x\r\n${auth}\r\n`,
  };
  for (const [name, bytes] of Object.entries(cases)) {
    const text = await sendRaw(bytes);
    collect(`invalid_request: ${name}`, 'the raw answer', text);
    assert.match(text, /^HTTP\/1\.1 400/, name);
    assert.equal(codeOf(text.slice(text.indexOf('\r\n\r\n') + 4)), 'invalid_request', name);
  }
});

test('proxy_failure: the password in HTTP_PROXY rather than in proxy:', async () => {
  const env = { ...SECRET_ENV, HTTP_PROXY: `http://user:${PROXY_PASSWORD}@127.0.0.1:${deadPort}` };
  const other = await run.serve({ models: [{ name: 'm', endpoints: [{ base_url: sim.base, api_key: '${UPSTREAM_KEY}', health_check: false }] }] }, { env });
  await play(one('proxy_failure: a dead proxy from HTTP_PROXY', { auth: {}, model: 'm', status: 502, code: 'proxy_failure', shows: /proxy http:\/\/\*\*\*@127\.0\.0\.1:\d+ \(from HTTP_PROXY\)/ }), other);
  await other.stop();
  collect('proxy_failure: a dead proxy from HTTP_PROXY', 'the access log', other.stdout);
  collect('proxy_failure: a dead proxy from HTTP_PROXY', 'the server log', other.stderr);
});

test('the admin pages', async () => {
  const pages = [
    ['/metrics', {}, 200], ['/ballast/status', {}, 200], ['/healthz', {}, 200], ['/readyz', {}, 200],
    ['/v1/models', { authorization: `Bearer ${CLIENT_KEY}` }, 200],
    ['/metrics', { authorization: `Bearer x${CLIENT_KEY}` }, 200],
  ];
  for (const [page, headers, status] of pages) {
    const res = await fetch(`${gw.url}${page}`, { headers });
    const text = await res.text();
    collect(`admin page ${page}`, 'headers', headerText(res.headers));
    collect(`admin page ${page}`, 'body', text);
    assert.equal(res.status, status, page);
  }
  // The pages say what happened: the failures above are counted, the endpoints listed.
  const metrics = await (await fetch(`${gw.url}/metrics`)).text();
  assert.match(metrics, /code="proxy_failure"/);
  assert.match(metrics, /ballast_endpoint_healthy\{model="proxied",endpoint="proxied"\}/);
});

// ---- reloads and serve --check ----

// A minimal configuration whose only endpoint has `endpoint` merged in, written as JSON; returns the
// file and the line on which `key` is written.
function badConfig(dir, name, endpoint, key) {
  const file = path.join(dir, `${name}.yaml`);
  const text = JSON.stringify({ listen: gw.address, models: [{ name: 'm', endpoints: [{ base_url: sim.base, ...endpoint }] }] }, null, 2);
  fs.writeFileSync(file, text);
  const line = text.split('\n').findIndex((l) => l.includes(`"${key}"`)) + 1;
  assert.ok(line > 0);
  return { file, line };
}

const count = (text, re) => (text.match(new RegExp(re, 'g')) ?? []).length;

test('reloads: a good one, and bad ones refused with file:line: key and no value shown; serve --check says the same', async () => {
  const dir = tempDir();
  const BAD = [
    ['an api_key with CR/LF in it', { api_key: `${UPSTREAM_KEY}\r\nx-injected: 1` }, 'api_key',
      /: models\[0\]\.endpoints\[0\]\.api_key: must not contain a line break or a NUL character \(the value is not shown\)/],
    ['a proxy URL with the password and a port out of range', { proxy: `http://user:${PROXY_PASSWORD}@127.0.0.1:99999` }, 'proxy',
      /: models\[0\]\.endpoints\[0\]\.proxy: 'http:\/\/\*\*\*@127\.0\.0\.1:99999' has a port outside 1-65535/],
    ['a proxy URL with the password and no scheme', { proxy: `user:${PROXY_PASSWORD}@127.0.0.1:3128` }, 'proxy',
      /: models\[0\]\.endpoints\[0\]\.proxy: '\*\*\*@127\.0\.0\.1:3128' must start with http:\/\/ or https:\/\//],
    ['a proxy URL with the password and a socks scheme', { proxy: `socks5://user:${PROXY_PASSWORD}@127.0.0.1:1080` }, 'proxy',
      /: models\[0\]\.endpoints\[0\]\.proxy: 'socks5:\/\/\*\*\*@127\.0\.0\.1:1080' must start with http:\/\/ or https:\/\//],
    ['an unknown key whose value is the key', { api_token: UPSTREAM_KEY }, 'api_token',
      /: models\[0\]\.endpoints\[0\]\.api_token: unknown key/],
  ];

  // A good reload first: the same configuration, its secrets from the environment again.
  fs.writeFileSync(gw.configFile, JSON.stringify({ listen: gw.address, ...config }, null, 2));
  gw.proc.kill('SIGHUP');
  await eventually(() => count(gw.stderr, /reloaded \S+ \(configuration #\d+\)/) === 1, { timeoutMs: 10_000 });

  let refused = 0;
  for (const [name, endpoint, key, message] of BAD) {
    const { file, line } = badConfig(dir, name.replaceAll(/\W+/g, '-'), endpoint, key);
    const where = new RegExp(`${file.replaceAll(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:${line}${message.source}`);
    // The running gateway's file becomes the bad one, and is refused on SIGHUP.
    const before = gw.stderr.length;
    fs.copyFileSync(file, gw.configFile);
    gw.proc.kill('SIGHUP');
    refused++;
    await eventually(() => count(gw.stderr, /reload refused/) === refused, { timeoutMs: 10_000 });
    const said = gw.stderr.slice(before);
    collect(`reload refused: ${name}`, 'the server log', said);
    assert.match(said, new RegExp(`${gw.configFile.replaceAll(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:${line}${message.source}`), name);
    // serve --check on the same file.
    const checked = await runBallast(['serve', '--check', '--config', file], { env: SECRET_ENV, timeoutMs: 10_000, expectExit: 2 });
    collect(`serve --check: ${name}`, 'stdout', checked.stdout);
    collect(`serve --check: ${name}`, 'stderr', checked.stderr);
    assert.equal(checked.code, 2, name);
    assert.match(checked.stderr, where, name);
  }

  // A key that arrives through ${VAR} with a line break in it, for serve --check.
  const viaEnv = badConfig(dir, 'api-key-from-env', { api_key: '${BROKEN_KEY}' }, 'api_key');
  const checked = await runBallast(['serve', '--check', '--config', viaEnv.file],
    { env: { ...SECRET_ENV, BROKEN_KEY: `${UPSTREAM_KEY}\nx-injected: 1` }, timeoutMs: 10_000, expectExit: 2 });
  collect('serve --check: an api_key from ${VAR} with a line break', 'stdout and stderr', checked.stdout + checked.stderr);
  assert.equal(checked.code, 2);
  assert.match(checked.stderr, new RegExp(`:${viaEnv.line}: models\\[0\\]\\.endpoints\\[0\\]\\.api_key: must not contain a line break`));

  // The good file passes serve --check, and the running configuration is still the good one.
  fs.writeFileSync(gw.configFile, JSON.stringify({ listen: gw.address, ...config }, null, 2));
  const good = await runBallast(['serve', '--check', '--config', gw.configFile], { env: SECRET_ENV, timeoutMs: 10_000 });
  collect('serve --check: the good configuration', 'stdout and stderr', good.stdout + good.stderr);
  assert.equal(good.code, 0, good.stderr);
  await play(one('a success after the refused reloads', { model: 'ok', status: 200, code: 'ok' }));
});

// ---- doctor ----

async function doctor(scenario, args, env) {
  const r = await runBallast(['doctor', ...args], { env: { BALLAST_CONTAINER: '0', ...env }, timeoutMs: 30_000, expectExit: [0, 1] });
  collect(scenario, 'stdout', r.stdout);
  collect(scenario, 'stderr', r.stderr);
  return r;
}

test('doctor: a config with the key and the proxy password, and the OPENAI_API_KEY form', async () => {
  const dir = tempDir();
  const file = path.join(dir, 'doctor.yaml');
  const endpoint = (name, extra) => ({ name, api_key: '${UPSTREAM_KEY}', ...extra });
  // doctor asks each endpoint for its model's name; the simulator lists 'sim'.
  fs.writeFileSync(file, JSON.stringify({
    models: [
      {
        name: 'sim',
        endpoints: [
          endpoint('sim', { base_url: sim.base }),
          endpoint('via-proxy', { base_url: sim.base, proxy: proxyUrl(proxy.port) }),
          endpoint('dead-proxy', { base_url: sim.base, proxy: proxyUrl(deadPort) }),
        ],
      },
      {
        name: 'm',
        endpoints: [
          endpoint('echo-401', { base_url: echo.base }),
          endpoint('echo-500', { base_url: `${echo.url}/500/v1` }),
          endpoint('echo-event', { base_url: `${echo.url}/event-first/v1` }),
          endpoint('echo-azure', { provider: 'azure', endpoint: echo.url, deployment: 'd', api_version: '2024-10-21' }),
        ],
      },
    ],
  }, null, 2));
  const expected = {
    sim: 'ok', 'via-proxy': 'ok', 'dead-proxy': 'proxy_failure', 'echo-401': 'unauthorized',
    'echo-500': 'upstream_status', 'echo-event': 'upstream_status', 'echo-azure': 'unauthorized',
  };

  const json = await doctor('doctor --config --json', ['--config', file, '--json', '--timeout', '2'], SECRET_ENV);
  const report = JSON.parse(json.stdout);
  assert.deepEqual(Object.fromEntries(report.endpoints.map((e) => [e.name.replace(/^\S+ \/ /, ''), e.cause])), expected);
  assert.equal(json.code, 1);
  const text = await doctor('doctor --config', ['--config', file, '--timeout', '2'], SECRET_ENV);
  assert.equal(text.code, 1);
  assert.match(text.stdout, /cause: proxy_failure/);

  // The environment form, as an app's variables would name it.
  const fromEnv = (base) => ({ OPENAI_API_KEY: UPSTREAM_KEY, OPENAI_BASE_URL: base, OPENAI_MODEL: 'sim' });
  const okEnv = await doctor('doctor with OPENAI_API_KEY (healthy)', ['--json'], fromEnv(sim.base));
  assert.equal(JSON.parse(okEnv.stdout).cause, 'ok');
  const echoEnv = await doctor('doctor with OPENAI_API_KEY (an echoing 401)', [], fromEnv(echo.base));
  assert.match(echoEnv.stdout, /cause: unauthorized/);
  assert.match(echoEnv.stdout, /Incorrect API key provided: Bearer \*\*\*/, 'the echo, scrubbed');
  const viaEnvProxy = await doctor('doctor with the password in HTTP_PROXY', ['--json', '--base-url', sim.base],
    { OPENAI_API_KEY: UPSTREAM_KEY, HTTP_PROXY: `http://user:${PROXY_PASSWORD}@127.0.0.1:${deadPort}` });
  assert.equal(JSON.parse(viaEnvProxy.stdout).cause, 'proxy_failure');
  const echoEnv500 = await doctor('doctor --base-url --api-key-env (an echoing 500)', ['--json', '--base-url', `${echo.url}/500/v1`, '--api-key-env', 'MY_KEY'], { MY_KEY: UPSTREAM_KEY });
  assert.equal(JSON.parse(echoEnv500.stdout).cause, 'upstream_status');
});

// ---- load ----

async function load(scenario, args, key) {
  const dir = tempDir();
  const json = path.join(dir, 'load.json');
  const html = path.join(dir, 'load.html');
  const r = await runBallast(['load', '--json', json, '--html', html, '--concurrency', '2', '--duration', '0.5', '--api-key-env', 'LOAD_KEY', ...args],
    { env: { LOAD_KEY: key }, timeoutMs: 30_000, expectExit: [0, 1] });
  collect(scenario, 'stdout', r.stdout);
  collect(scenario, 'stderr', r.stderr);
  const report = fs.readFileSync(json, 'utf8');
  collect(scenario, 'the JSON report', report);
  collect(scenario, 'the HTML report', fs.readFileSync(html, 'utf8'));
  return { ...r, report: JSON.parse(report) };
}

test('load: with the client key against the gateway, a wrong key, and an upstream echoing its key', async () => {
  const ok = await load('load through the gateway with the client key', ['--target', gw.base, '--model', 'ok', '--stream'], CLIENT_KEY);
  assert.ok(ok.report.runs[0].ok > 0, ok.stderr);
  assert.equal(ok.report.runs[0].error_rate, 0);
  const wrong = await load('load through the gateway with a wrong key containing the client key', ['--target', gw.base, '--model', 'ok'], `${CLIENT_KEY}x`);
  assert.ok(wrong.report.runs[0].codes.unauthorized > 0, JSON.stringify(wrong.report.runs[0].codes));
  const echoed = await load('load through the gateway to an upstream echoing its key', ['--target', gw.base, '--model', 'echo'], CLIENT_KEY);
  assert.ok(echoed.report.runs[0].statuses['401'] > 0);
  const direct = await load('load straight at an upstream echoing the key it was given', ['--target', `${echo.url}/500/v1`, '--model', 'm', '--stream'], UPSTREAM_KEY);
  assert.ok(direct.report.runs[0].statuses['500'] > 0);
});

// ---- the end: shutting_down, and the whole of both logs ----

test('shutting_down: a begun stream and a waiting request when shutdown_grace runs out; then both logs whole', async () => {
  const stream = { label: 'a begun stream', model: 'ok', stream: true, fault: 'stall-after=2', status: 200, code: 'shutting_down' };
  const waiting = { label: 'a request awaiting headers', model: 'ok', fault: 'slow-headers=5000', status: 503, code: 'shutting_down' };
  const pending = [stream, waiting].map((s) => [s, send(s)]);
  await eventually(async () => (await inFlight('ok')) === 2);
  gw.proc.kill('SIGTERM');
  await eventually(() => /SIGTERM/.test(gw.stderr));
  const readyz = await fetch(`${gw.url}/readyz`).then(async (r) => ({ status: r.status, text: await r.text() }), () => null);
  if (readyz) collect('shutting_down', '/readyz while draining', readyz.text);
  for (const [step, p] of pending) await check('shutting_down', step, await p);
  assert.equal((await gw.exited).code, 0);

  collect('the whole run', 'the access log (stdout)', gw.stdout);
  collect('the whole run', 'the server log (stderr)', gw.stderr);
  // The logs saw the paths above: the proxy's failures (redacted), the ejections, the reloads.
  assert.match(gw.stdout, /proxy http:\/\/\*\*\*@127\.0\.0\.1:\d+ \(from the endpoint's proxy\)/);
  assert.match(gw.stderr, /endpoint down-b of model 'down' ejected/);
  assert.match(gw.stderr, /reload refused/);
  assert.ok(gw.accessLog().length > 60, `${gw.accessLog().length} access log lines`);
});

test('no secret appears in anything anyone outside ballast sees', async (t) => {
  const scenarios = new Map();
  for (const piece of collected) {
    if (!scenarios.has(piece.scenario)) scenarios.set(piece.scenario, []);
    scenarios.get(piece.scenario).push(piece);
  }
  assert.ok(scenarios.size >= SCENARIOS.length + 20, `${scenarios.size} scenarios collected`);
  for (const [scenario, pieces] of scenarios) {
    await t.test(scenario, () => {
      for (const { where, text } of pieces) {
        for (const [name, tell] of TELLS) {
          const at = text.indexOf(tell);
          assert.ok(at < 0, `${scenario}: ${name} in ${where}: …${text.slice(Math.max(0, at - 120), at + tell.length + 40)}…`);
        }
      }
    });
  }
});
