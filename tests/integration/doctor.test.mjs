// ballast doctor against real trouble, each cause built for real on 127.0.0.1: simulators with the
// right flags and faults, a dead port, a listener whose accept queue is full, a dead proxy, a live
// tinyproxy for the CONNECT path, a self-signed certificate. Each case asserts the cause, words of
// the fix, and the exit status.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { runBallast, startTinyproxy, startTlsProxy, unansweredListener, selfSignedCert, tempDir, stopAfterAll, openssl, chat, eventually } from './lib/harness.mjs';

const { sim, serve, keep } = stopAfterAll();
let plain; // a healthy simulator on plain HTTP
let tls; // the same over TLS, with a self-signed certificate
let cert;
// A port nothing listens on, ever: tcpmux's, which no server here uses. A port found free at the
// start would not do: a process started later in this file may be given it.
const deadPort = 1;

before(async () => {
  plain = await sim(['--ttft', '20', '--tokens', '3']);
  cert = await selfSignedCert();
  tls = await sim(['--tokens', '3', '--tls-cert', cert.cert, '--tls-key', cert.key]);
});

// The CA variables a machine may set (to its own bundle, say): empty is unset, so only a case that sets
// one sees it.
const NO_CA_VARIABLES = { SSL_CERT_FILE: '', CURL_CA_BUNDLE: '', REQUESTS_CA_BUNDLE: '' };

// Not in a container unless a case says so: the guess would differ between machines. Exit 1 is doctor's
// answer when it found a cause; assertCause checks which exit each case must have.
async function doctor(args, env = {}) {
  const r = await runBallast(['doctor', '--json', ...args], { env: { BALLAST_CONTAINER: '0', ...NO_CA_VARIABLES, ...env }, expectExit: [0, 1] });
  let json = null;
  try { json = JSON.parse(r.stdout); } catch { /* usage errors print no JSON */ }
  return { ...r, json };
}

function assertCause(r, cause, ...fixWords) {
  assert.equal(r.json?.cause, cause, `${r.stdout}${r.stderr}`);
  for (const w of fixWords) assert.match(r.json.fix, w);
  assert.equal(r.code, cause === 'ok' ? 0 : 1);
}

test('a healthy endpoint on loopback: every hop ✓, in under 2 s, exit 0, and the JSON has its documented shape', async () => {
  const r = await doctor(['--base-url', plain.base]);
  assertCause(r, 'ok');
  assert.ok(r.ms < 2000, `took ${r.ms.toFixed(0)} ms`);
  assert.deepEqual(Object.keys(r.json), ['cause', 'fix', 'endpoints']);
  const [ep] = r.json.endpoints;
  assert.deepEqual(Object.keys(ep), ['name', 'url', 'cause', 'fix', 'hops']);
  assert.deepEqual(ep.hops.map((h) => h.hop), ['config', 'proxy', 'dns', 'connect', 'tls', 'models', 'chat']);
  for (const h of ep.hops) {
    assert.deepEqual(Object.keys(h), ['hop', 'ok', 'ms', 'detail']);
    assert.equal(h.ok, true);
    assert.equal(typeof h.ms, 'number');
  }
  assert.match(ep.hops.at(-1).detail, /first token \d+ ms/);
  // The waterfall for people.
  const text = await runBallast(['doctor', '--base-url', plain.base], { env: { BALLAST_CONTAINER: '0' } });
  assert.equal(text.code, 0);
  assert.match(text.stdout, /✓ connect/);
  assert.match(text.stdout, /cause: ok/);
});

test('nothing listening on a local port → connect_refused, naming the port and the local servers', async () => {
  const r = await doctor(['--base-url', `http://127.0.0.1:${deadPort}/v1`]);
  assertCause(r, 'connect_refused', new RegExp(`nothing is listening on 127\\.0\\.0\\.1:${deadPort}`), /start the model server/);
});

test('localhost from inside a container → connect_refused, suggesting host.docker.internal or the service name', async () => {
  const r = await doctor(['--base-url', `http://localhost:${deadPort}/v1`], { BALLAST_CONTAINER: '1' });
  assertCause(r, 'connect_refused', new RegExp(`host\\.docker\\.internal:${deadPort}`), /service name/);
});

test('a connect with no answer → connect_timeout, within its own bound', async () => {
  const silent = await unansweredListener();
  keep(silent);
  const r = await doctor(['--base-url', `http://127.0.0.1:${silent.port}/v1`, '--connect-timeout', '1']);
  assertCause(r, 'connect_timeout', /did not answer within 1s/, /firewall/);
  assert.ok(r.ms < 2500, `took ${r.ms.toFixed(0)} ms`);
});

test('a host that does not resolve → dns_failure', async () => {
  const r = await doctor(['--base-url', 'https://no-such-host.invalid/v1'], { OPENAI_API_KEY: 'sk-proj-abcdefghijklmnop' });
  assertCause(r, 'dns_failure', /no-such-host\.invalid does not resolve/);
});

test('a proxy that captures loopback traffic because NO_PROXY lacks the host → proxy_failure, naming NO_PROXY', async () => {
  const r = await doctor(['--base-url', plain.base], { HTTP_PROXY: `http://127.0.0.1:${deadPort}` });
  assertCause(r, 'proxy_failure', /HTTP_PROXY sends traffic for 127\.0\.0\.1/, /NO_PROXY=127\.0\.0\.1/);
  // And with NO_PROXY listing it, the same endpoint is healthy.
  const ok = await doctor(['--base-url', plain.base], { HTTP_PROXY: `http://127.0.0.1:${deadPort}`, NO_PROXY: '127.0.0.1' });
  assertCause(ok, 'ok');
  assert.match(ok.json.endpoints[0].hops[1].detail, /NO_PROXY entry '127\.0\.0\.1' bypasses the proxy/);
});

test('through a live proxy (tinyproxy): the CONNECT tunnel and TLS inside it are checked', async () => {
  const proxy = await startTinyproxy();
  keep(proxy);
  const dir = tempDir();
  const config = path.join(dir, 'ballast.yaml');
  fs.writeFileSync(config, JSON.stringify({
    models: [{ name: 'sim', endpoints: [{ base_url: tls.base, proxy: proxy.url, ca_bundle: cert.cert }] }],
  }));
  const r = await doctor(['--config', config]);
  assertCause(r, 'ok');
  const hops = r.json.endpoints[0].hops;
  assert.deepEqual(hops.map((h) => h.hop), ['config', 'proxy', 'dns', 'connect', 'proxy_connect', 'tls', 'models', 'chat']);
  assert.match(hops[4].detail, /tunnel to 127\.0\.0\.1:\d+ open/);
  assert.match(hops[5].detail, /certificate verified/);
  // A live proxy that cannot reach the server answers with a page of its own: the proxy's failure.
  const http = await doctor(['--base-url', `http://127.0.0.1:${deadPort}/v1`], { http_proxy: proxy.url });
  assertCause(http, 'proxy_failure', /could not reach 127\.0\.0\.1 \(HTTP 5\d\d\)/, /NO_PROXY=127\.0\.0\.1/);
  // A proxy that refuses the tunnel is named as the proxy's failure, not the server's.
  const strict = await startTinyproxy(['ConnectPort 443']);
  keep(strict);
  const r2 = await doctor(['--base-url', tls.base], { HTTPS_PROXY: strict.url });
  assertCause(r2, 'proxy_failure', /answered CONNECT 127\.0\.0\.1:\d+ with 'HTTP\/1\.[01] 403/);
});

test('over HTTP/2 (nginx with TLS in front of the simulator): the streamed chat is read and judged whole', async () => {
  const nginx = keep(await startTlsProxy(plain.address));
  const dir = tempDir();
  const config = path.join(dir, 'ballast.yaml');
  fs.writeFileSync(config, JSON.stringify({ models: [{ name: 'sim', endpoints: [{ base_url: nginx.base, ca_bundle: nginx.cert }] }] }));
  const r = await doctor(['--config', config]);
  assertCause(r, 'ok');
  assert.match(r.json.endpoints[0].hops.at(-1).detail, /first token \d+ ms/);
  assert.ok(nginx.accessLog().every((l) => l.startsWith('HTTP/2.0 ')), nginx.accessLog().join('\n'));
});

test('a self-signed certificate → tls_failure, pointing at ca_bundle', async () => {
  const r = await doctor(['--base-url', tls.base]);
  assertCause(r, 'tls_failure', /self-signed certificate/, /ca_bundle/);
});

test('https:// to a plain HTTP port, and http:// to a TLS port → scheme_mismatch', async () => {
  const a = await doctor(['--base-url', plain.base.replace('http://', 'https://')]);
  assertCause(a, 'scheme_mismatch', /speaks plain HTTP, not TLS: write the base URL with http:\/\//);
  const b = await doctor(['--base-url', tls.base.replace('https://', 'http://')]);
  assertCause(b, 'scheme_mismatch', /speaks TLS: write the base URL with https:\/\//);
});

test('a rejected key → unauthorized, naming the variable it came from', async () => {
  const s = await sim(['--api-key', 'sk-the-right-key-123']);
  const r = await doctor(['--base-url', s.base, '--api-key-env', 'MY_LLM_KEY'], { MY_LLM_KEY: 'sk-a-wrong-key-4567' });
  assertCause(r, 'unauthorized', /rejected the key from MY_LLM_KEY \(HTTP 401/);
  const none = await doctor(['--base-url', s.base]);
  assertCause(none, 'unauthorized', /requires a key .* none was sent: export OPENAI_API_KEY/);
  const ok = await doctor(['--base-url', s.base, '--api-key-env', 'MY_LLM_KEY'], { MY_LLM_KEY: 'sk-the-right-key-123' });
  assertCause(ok, 'ok');
});

const escaped = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

test('a base URL missing /v1 → wrong_path, with the corrected URL', async () => {
  const r = await doctor(['--base-url', plain.url]);
  assertCause(r, 'wrong_path', new RegExp(`lacks /v1; use ${escaped(plain.url)}/v1$`));
});

test('wrong_path suggests /v1 in place of another version or a pasted /chat/completions; a query stays after the path', async () => {
  const v2 = await doctor(['--base-url', `${plain.url}/v2`]);
  assertCause(v2, 'wrong_path', new RegExp(`GET ${escaped(plain.url)}/v2/models answered 404: the base URL ends in /v2, not /v1; use ${escaped(plain.url)}/v1$`));
  const pasted = await doctor(['--base-url', `${plain.base}/chat/completions`]);
  assertCause(pasted, 'wrong_path', new RegExp(`ends in /chat/completions, which the client adds itself; use ${escaped(plain.base)}$`));
  // The query goes after the API's path: {base}/models?x=1, which the server answers.
  const query = await doctor(['--base-url', `${plain.base}?x=1`]);
  assertCause(query, 'ok');
  assert.match(query.json.endpoints[0].hops.find((h) => h.hop === 'models').detail, /^HTTP 200, \d+ model/);
  const noV1 = await doctor(['--base-url', `${plain.url}?x=1`]);
  assertCause(noV1, 'wrong_path', new RegExp(`GET ${escaped(plain.url)}/models\\?x=1 answered 404: the base URL lacks /v1; use ${escaped(plain.url)}/v1\\?x=1$`));
});

// A web server's welcome page on every path, as nginx answers before the model server is behind it.
function welcomePage() {
  const server = http.createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/html', server: 'nginx/1.27.0' });
    res.end('<!DOCTYPE html>\n<html><head><title>Welcome to nginx!</title></head><body><h1>Welcome to nginx!</h1></body></html>\n');
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    server.base = `http://127.0.0.1:${server.address().port}/v1`;
    server.stop = () => new Promise((done) => { server.closeAllConnections(); server.close(done); });
    resolve(server);
  }));
}

test('a 2xx page that is not the API (nginx\'s welcome page) → upstream_reset at models, saying what answered; never models ✓', async () => {
  const page = keep(await welcomePage());
  for (const args of [[], ['--model', 'gpt-4o']]) {
    const r = await doctor(['--base-url', page.base, ...args]);
    assertCause(r, 'upstream_reset', /answered HTTP 200 with text\/html \(titled 'Welcome to nginx!', Server: nginx\/1\.27\.0\)/,
      /likely nginx's own page: this is not an OpenAI-compatible API; check the base URL's host, port and path/);
    const hops = r.json.endpoints[0].hops;
    assert.deepEqual(hops.filter((h) => !h.ok).map((h) => h.hop), ['models']);
    assert.equal(hops.at(-1).hop, 'models');
    assert.doesNotMatch(JSON.stringify(r.json), /model\(s\)|listed|stream_broken|proxy_read_timeout/);
  }
});

test('a streamed chat answered 200 with a JSON error body, not an event stream → upstream_reset naming the error; never stream_broken', async () => {
  const s = await sim(['--tokens', '2']);
  await s.setFaults(['status=200']);
  const r = await doctor(['--base-url', s.base]);
  assertCause(r, 'upstream_reset', /answered HTTP 200 with application\/json \(Server: [^)]*\), not an event stream, holding an error: 'Simulated failure: status 200'/);
  const chatHop = r.json.endpoints[0].hops.at(-1);
  assert.equal(chatHop.hop, 'chat');
  assert.equal(chatHop.ok, false);
  assert.doesNotMatch(JSON.stringify(r.json), /stream_broken|proxy_read_timeout/);
});

test('an error event inside the stream → upstream_status, the fix naming the server\'s own message', async () => {
  const s = await sim(['--fault', 'error-event=1', '--tokens', '3']);
  const r = await doctor(['--base-url', s.base]);
  assertCause(r, 'upstream_status', /reported an error of its own: 'Simulated mid-stream failure'/);
  assert.doesNotMatch(r.json.fix, /answered HTTP 200/);
});

test('a model the server does not serve → unknown_model, listing what it does', async () => {
  const s = await sim(['--model', 'llama-3.1-8b']);
  const r = await doctor(['--base-url', s.base, '--model', 'gpt-4o']);
  assertCause(r, 'unknown_model', /model 'gpt-4o' is not served here \(it lists llama-3\.1-8b\)/);
});

test('Azure: a deployment that does not exist, an api-version it does not take, one that is malformed', async () => {
  const s = await sim(['--azure-deployment', 'gpt-4o-prod', '--azure-api-version', '2024-10-21']);
  const env = { AZURE_OPENAI_API_KEY: 'a1b2c3d4e5f6a7b8c9d0' };
  const dep = await doctor(['--provider', 'azure', '--base-url', s.url, '--deployment', 'gpt-4o', '--api-version', '2024-10-21'], env);
  assertCause(dep, 'azure_deployment_not_found', /deployment 'gpt-4o' does not exist/, /AZURE_OPENAI_DEPLOYMENT/);
  const ver = await doctor(['--provider', 'azure', '--base-url', s.url, '--deployment', 'gpt-4o-prod', '--api-version', '2023-01-01'], env);
  assertCause(ver, 'azure_api_version', /api-version '2023-01-01' is not supported/, /2024-10-21/);
  const bad = await doctor(['--provider', 'azure', '--base-url', s.url, '--deployment', 'gpt-4o-prod', '--api-version', 'latest'], env);
  assertCause(bad, 'azure_api_version', /api-version 'latest' is malformed/);
  const ok = await doctor(['--provider', 'azure', '--base-url', s.url, '--deployment', 'gpt-4o-prod', '--api-version', '2024-10-21'], env);
  assertCause(ok, 'ok');
});

test('a missing key, or an unset ${VAR}, is caught before anything is sent', async () => {
  const missing = await doctor(['--base-url', 'https://api.openai.com/v1']);
  assertCause(missing, 'missing_api_key', /export OPENAI_API_KEY=/);
  assert.equal(missing.json.endpoints[0].hops.length, 1);
  const dir = tempDir();
  const config = path.join(dir, 'ballast.yaml');
  fs.writeFileSync(config, 'models:\n  - name: gpt-4o-mini\n    endpoints:\n      - base_url: https://api.openai.com/v1\n        api_key: ${TEAM_OPENAI_KEY}\n');
  const unset = await doctor(['--config', config]);
  assertCause(unset, 'missing_api_key', /export TEAM_OPENAI_KEY=/);
  assert.equal(unset.json.endpoints[0].hops.length, 1);
});

test('429 → rate_limited; 500 → upstream_status', async () => {
  const limited = await sim(['--fault', 'status=429,retry-after=5']);
  assertCause(await doctor(['--base-url', limited.base]), 'rate_limited', /rate limit/, /rpm:/);
  const failing = await sim(['--fault', 'status=500']);
  assertCause(await doctor(['--base-url', failing.base]), 'upstream_status', /HTTP 500/);
});

test('a first token slower than the timeout → first_token_timeout, with the timeout to set', async () => {
  const slow = await sim(['--fault', 'slow-first-token=1500', '--tokens', '2']);
  const r = await doctor(['--base-url', slow.base, '--timeout', '1']);
  assertCause(r, 'first_token_timeout', /the first token took 1\.5s, more than --timeout \(1s\)/, /at least 3s/);
});

test('a stream that stalls → stream_broken within 3 × --timeout, idle gaps included', async () => {
  const s = await sim(['--fault', 'stall-after=2', '--tokens', '5']);
  for (const timeout of [1, 2]) {
    const r = await doctor(['--base-url', s.base, '--timeout', String(timeout)]);
    assertCause(r, 'stream_broken', new RegExp(`stalled: nothing more came for ${timeout}s`));
    const chatHop = r.json.endpoints[0].hops.at(-1);
    assert.ok(chatHop.ms <= timeout * 3000 + 100, `chat took ${chatHop.ms} ms`);
    assert.ok(r.ms < timeout * 3000 + 1500, `doctor took ${r.ms.toFixed(0)} ms`);
  }
});

test('no response headers (a blackhole, headers held) → first_byte_timeout within 3 × --timeout, not first_token_timeout', async () => {
  for (const fault of ['blackhole', 'slow-headers=5000']) {
    const s = await sim(['--fault', fault]);
    const r = await doctor(['--base-url', s.base, '--timeout', '1']);
    assertCause(r, 'first_byte_timeout', /took the request but sent no answer \(no response headers within 3s\)/);
    assert.match(r.json.endpoints[0].hops.at(-1).detail, /first byte -/);
    assert.ok(r.ms < 4500, `${fault}: doctor took ${r.ms.toFixed(0)} ms`);
  }
  // Headers, then no token: that is first_token_timeout.
  const keepalive = await sim(['--fault', 'keepalive-only']);
  const r = await doctor(['--base-url', keepalive.base, '--timeout', '1']);
  assertCause(r, 'first_token_timeout', /no token came within 1s/);
});

test('OPENAI_API_KEY holding a literal ${FOO} is the key serve sends: fine for a local server, an unexpanded placeholder for a remote one', async () => {
  const local = await doctor(['--base-url', plain.base], { OPENAI_API_KEY: '${FOO}', FOO: 'sk-set-but-unused' });
  assertCause(local, 'ok');
  assert.doesNotMatch(local.json.endpoints[0].hops[0].detail, /not set/);
  const toOpen = keep(await forwardTo(plain.address));
  const remote = await doctor(['--base-url', 'http://llm.example.test/v1'], { OPENAI_API_KEY: '${FOO}', FOO: 'x', http_proxy: toOpen.url });
  assertCause(remote, 'ok');  // the server took it: it decides
  assert.match(remote.json.endpoints[0].hops[0].detail, /key from OPENAI_API_KEY '.*' looks like an unexpanded placeholder: it is sent as written/);
});

test('a stream cut short or garbled → stream_broken', async () => {
  const cut = await sim(['--fault', 'cut-after=2']);
  assertCause(await doctor(['--base-url', cut.base]), 'stream_broken', /cut before its end/);
  const garbled = await sim(['--fault', 'malformed']);
  assertCause(await doctor(['--base-url', garbled.base]), 'stream_broken', /not JSON/);
});

test('--probe-concurrency shows where latency starts to climb', async () => {
  const s = await sim(['--capacity', '2', '--ttft', '200', '--tokens', '2']);
  const r = await doctor(['--base-url', s.base, '--probe-concurrency', '4']);
  assertCause(r, 'ok');
  const ramp = r.json.endpoints[0].hops.at(-1);
  assert.equal(ramp.hop, 'concurrency');
  assert.match(ramp.detail, /1: \d+ ms, 2: \d+ ms, 4: \d+ ms/);
  assert.match(ramp.detail, /latency climbs at 4 concurrent requests: set max_in_flight below 4/);
});

test('no arguments: the endpoint the provider variables name, as serve would; none set → usage, exit 2', async () => {
  const r = await doctor([], { OPENAI_BASE_URL: plain.base });
  assertCause(r, 'ok');
  assert.equal(r.json.endpoints[0].url, plain.base);
  const none = await runBallast(['doctor'], { expectExit: 2 });
  assert.equal(none.code, 2);
  assert.match(none.stderr, /nothing to check/);
  const bad = await runBallast(['doctor', '--provider', 'bedrock'], { expectExit: 2 });
  assert.equal(bad.code, 2);
});

test('--config checks every endpoint; the first broken one decides the overall cause', async () => {
  const dir = tempDir();
  const config = path.join(dir, 'ballast.yaml');
  fs.writeFileSync(config, JSON.stringify({
    models: [
      { name: 'sim', endpoints: [{ base_url: plain.base }] },
      { name: 'local', endpoints: [{ base_url: `http://127.0.0.1:${deadPort}/v1` }] },
    ],
  }));
  const r = await doctor(['--config', config]);
  assertCause(r, 'connect_refused');
  assert.deepEqual(r.json.endpoints.map((e) => e.cause), ['ok', 'connect_refused']);
});

// ---- keys that local servers take -------------------------------------------------------------

test('OPENAI_API_KEY=ollama or EMPTY (what Ollama\'s and vLLM\'s docs set) against a local server: no placeholder_api_key, exit 0', async () => {
  for (const key of ['ollama', 'EMPTY']) {
    const r = await doctor([], { OPENAI_BASE_URL: plain.base, OPENAI_API_KEY: key });
    assertCause(r, 'ok');
    assert.ok(r.json.endpoints[0].hops.every((h) => h.ok), JSON.stringify(r.json));
    assert.doesNotMatch(r.json.endpoints[0].hops[0].detail, /placeholder/);
  }
});

test('a server started with --api-key X and called with X is fine, whatever X looks like; a wrong key is unauthorized, not a placeholder', async () => {
  for (const key of ['X', 'EMPTY', 'your-api-key']) {
    const s = await sim(['--api-key', key, '--tokens', '2']);
    const right = await doctor([], { OPENAI_BASE_URL: s.base, OPENAI_API_KEY: key });
    assertCause(right, 'ok');
    const wrong = await doctor([], { OPENAI_BASE_URL: s.base, OPENAI_API_KEY: 'sk-xxxxxxxx' });
    assertCause(wrong, 'unauthorized', /rejected the key from OPENAI_API_KEY \(HTTP 401/);
  }
});

// An HTTP forward proxy that takes a request for any host to `target` (HOST:PORT): a server under a
// public-looking name, reached without DNS.
function forwardTo(target) {
  const at = target.lastIndexOf(':');
  const server = http.createServer((req, res) => {
    const url = new URL(req.url); // absolute-form, as clients send to a proxy
    const up = http.request({ host: target.slice(0, at), port: Number(target.slice(at + 1)), method: req.method,
      path: url.pathname + url.search, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    server.url = `http://127.0.0.1:${server.address().port}`;
    server.stop = () => new Promise((done) => { server.closeAllConnections(); server.close(done); });
    resolve(server);
  }));
}

test('a placeholder key for a public host is named only when the server rejects it; a server that accepts it is right', async () => {
  const locked = await sim(['--api-key', 'sk-the-real-key-123', '--tokens', '2']);
  const open = await sim(['--tokens', '2']);
  const toLocked = keep(await forwardTo(locked.address));
  const toOpen = keep(await forwardTo(open.address));
  const base = 'http://llm.example.test/v1'; // not loopback, private or a single label
  const key = 'sk-xxxxxxxxxxxxxxxx';
  const rejected = await doctor(['--base-url', base], { OPENAI_API_KEY: key, http_proxy: toLocked.url });
  assertCause(rejected, 'placeholder_api_key', /OPENAI_API_KEY holds a placeholder \('sk-x{9}…'\), which the server rejected \(HTTP 401\)/);
  const hops = rejected.json.endpoints[0].hops;
  assert.match(hops[0].detail, /looks like a placeholder \(the server decides\)/);
  assert.equal(hops.at(-1).hop, 'models');
  const accepted = await doctor(['--base-url', base], { OPENAI_API_KEY: key, http_proxy: toOpen.url });
  assertCause(accepted, 'ok');
  // A key that is no placeholder, rejected: the key is wrong, not a placeholder.
  const wrong = await doctor(['--base-url', base], { OPENAI_API_KEY: 'ollama', http_proxy: toLocked.url });
  assertCause(wrong, 'unauthorized', /rejected the key from OPENAI_API_KEY/);
});

// ---- a private CA -----------------------------------------------------------------------------

// A CA of our own and a server certificate it signed, for 127.0.0.1 and localhost: {dir, ca, cert, key}.
async function privateCa() {
  const dir = tempDir();
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=ballast test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign'], dir);
  await openssl(['req', ...ec, '-keyout', 'key.pem', '-out', 'server.csr', '-subj', '/CN=localhost'], dir);
  fs.writeFileSync(path.join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  await openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial',
    '-out', 'cert.pem', '-days', '1', '-extfile', 'san.ext'], dir);
  return { dir, ca: path.join(dir, 'ca.pem'), cert: path.join(dir, 'cert.pem'), key: path.join(dir, 'key.pem') };
}

let pki;
let privateTls; // a simulator whose certificate the private CA signed

async function privateTlsSim() {
  if (!privateTls) {
    pki = await privateCa();
    privateTls = await sim(['--tokens', '3', '--tls-cert', pki.cert, '--tls-key', pki.key]);
  }
  return privateTls;
}

test('a private CA named by SSL_CERT_FILE, CURL_CA_BUNDLE or REQUESTS_CA_BUNDLE: doctor passes every hop', async () => {
  const s = await privateTlsSim();
  for (const variable of ['SSL_CERT_FILE', 'CURL_CA_BUNDLE', 'REQUESTS_CA_BUNDLE']) {
    const r = await doctor(['--base-url', s.base], { [variable]: pki.ca });
    assertCause(r, 'ok');
    const hops = r.json.endpoints[0].hops;
    assert.deepEqual(hops.map((h) => [h.hop, h.ok]), ['config', 'proxy', 'dns', 'connect', 'tls', 'models', 'chat'].map((h) => [h, true]));
    assert.match(hops[4].detail, new RegExp(`certificate verified against ${variable} `));
  }
  // The same through the provider variables alone, as `ballast doctor` with no arguments reads them.
  const env = await doctor([], { OPENAI_BASE_URL: s.base, OPENAI_API_KEY: 'EMPTY', SSL_CERT_FILE: pki.ca });
  assertCause(env, 'ok');
});

test('without the CA: tls_failure at the first hop that meets the certificate, with the CA fix; never stream_broken', async () => {
  const s = await privateTlsSim();
  const r = await doctor(['--base-url', s.base]);
  assertCause(r, 'tls_failure', /unable to get local issuer certificate/, /checked against the system's CAs/, /ca_bundle:/,
    /SSL_CERT_FILE/, /CURL_CA_BUNDLE/, /REQUESTS_CA_BUNDLE/);
  assert.deepEqual(r.json.endpoints[0].hops.filter((h) => !h.ok).map((h) => h.hop), ['tls']);
  // A bundle that holds some other CA fails the same way, naming the bundle it checked against.
  const other = await doctor(['--base-url', s.base], { SSL_CERT_FILE: cert.cert });
  assertCause(other, 'tls_failure', new RegExp(`checked against SSL_CERT_FILE \\(${cert.cert.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\)`));
  for (const x of [r, other]) assert.doesNotMatch(JSON.stringify(x.json), /stream_broken|proxy_read_timeout/);
});

test('which CA bundle wins: ca_bundle: in the config, then REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE, SSL_CERT_FILE; one naming no file is a tls_failure naming it', async () => {
  const s = await privateTlsSim();
  const missing = path.join(pki.dir, 'missing.pem');
  // The more specific variable wins over SSL_CERT_FILE, which may name the system's bundle.
  assertCause(await doctor(['--base-url', s.base], { SSL_CERT_FILE: cert.cert, CURL_CA_BUNDLE: pki.ca }), 'ok');
  assertCause(await doctor(['--base-url', s.base], { CURL_CA_BUNDLE: cert.cert, REQUESTS_CA_BUNDLE: pki.ca }), 'ok');
  assertCause(await doctor(['--base-url', s.base], { CURL_CA_BUNDLE: cert.cert, SSL_CERT_FILE: pki.ca }), 'tls_failure', /checked against CURL_CA_BUNDLE/);
  // A variable naming no file is said so, naming the variable: no silent fallback to another CA.
  const gone = await doctor(['--base-url', s.base], { SSL_CERT_FILE: missing });
  assertCause(gone, 'tls_failure', /SSL_CERT_FILE names '.*missing\.pem', which is not a readable file/);
  assert.deepEqual(gone.json.endpoints[0].hops.map((h) => h.hop), ['config']);
  // The config's own ca_bundle: wins over every variable, even one naming nothing.
  const dir = tempDir();
  const config = path.join(dir, 'ballast.yaml');
  fs.writeFileSync(config, JSON.stringify({ models: [{ name: 'sim', endpoints: [{ base_url: s.base, ca_bundle: pki.ca }] }] }));
  const configured = await doctor(['--config', config], { SSL_CERT_FILE: missing, REQUESTS_CA_BUNDLE: cert.cert });
  assertCause(configured, 'ok');
  assert.match(configured.json.endpoints[0].hops[4].detail, /certificate verified against ca_bundle /);
  // A config endpoint without one takes the variable, as serve does.
  fs.writeFileSync(config, JSON.stringify({ models: [{ name: 'sim', endpoints: [{ base_url: s.base }] }] }));
  assertCause(await doctor(['--config', config], { REQUESTS_CA_BUNDLE: pki.ca }), 'ok');
});

// ---- ejections in ballast's words -------------------------------------------------------------

test('an ejected endpoint is named with ballast\'s cause in the log and /ballast/status, not curl\'s text', async () => {
  const alive = await sim(['--tokens', '2']);
  const dead = `127.0.0.1:${deadPort}`;
  const gw = await serve({
    outlier: { consecutive_failures: 2 },
    models: [
      { name: 'm', endpoints: [{ base_url: `http://${dead}/v1`, health_check: false }, { base_url: alive.base, health_check: false }] },
      { name: 'h', endpoints: [{ base_url: `http://${dead}/v1`, name: 'checked', health_check: { interval: '100ms' } }, { base_url: alive.base, health_check: false }] },
    ],
  });
  const endpoint = async (model, name) => {
    const status = await (await fetch(`${gw.url}/ballast/status`)).json();
    return status.models.find((m) => m.name === model).endpoints.find((e) => e.name === name);
  };
  // Passive: requests fail to connect, and the second failure in a row ejects it.
  const ejected = await eventually(async () => {
    assert.equal((await chat(gw.base, { model: 'm' })).status, 200);
    const e = await endpoint('m', dead);
    return e.health === 'ejected' && e;
  });
  const cause = new RegExp(`^connect_refused: connect to ${dead.replace(/\./g, '\\.')} refused \\(nothing listening\\)`);
  assert.match(ejected.ejected_because, cause);
  assert.match(ejected.last_failure, cause);
  assert.equal(typeof ejected.last_failure_ago_ms, 'number');
  // Active: the health check's failure, classified and worded the same way.
  const checked = await eventually(async () => {
    const e = await endpoint('h', 'checked');
    return e.health === 'ejected' && e;
  });
  // A configured name is shown with its host:port: "is the port right?" is answerable from the message.
  assert.match(checked.ejected_because, new RegExp(`^health check: GET /models: connect_refused: connect to checked \\(${dead.replace(/\./g, '\\.')}\\) refused \\(nothing listening\\)`));
  const line = (name, model) => gw.stderr.split('\n').find((l) => l.includes(`endpoint ${name} of model '${model}' ejected`));
  assert.match(line(dead, 'm'), /\(outlier thresholds; last: connect_refused: connect to 127\.0\.0\.1:\d+ refused/);
  assert.match(line('checked', 'h'), /last: health check: GET \/models: connect_refused: /);
  const status = await (await fetch(`${gw.url}/ballast/status`)).text();
  for (const text of [status, line(dead, 'm'), line('checked', 'h')]) assert.doesNotMatch(text, /Couldn't connect|Failed to connect/);
});
