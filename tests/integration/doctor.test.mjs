// ballast doctor against real trouble, each cause built for real on 127.0.0.1: simulators with the
// right flags and faults, a dead port, a listener whose accept queue is full, a dead proxy, a live
// tinyproxy for the CONNECT path, a self-signed certificate. Each case asserts the cause, words of
// the fix, and the exit status.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { runBallast, startTinyproxy, startTlsProxy, unansweredListener, selfSignedCert, tempDir, freePort, stopAfterAll } from './lib/harness.mjs';

const { sim, keep } = stopAfterAll();
let plain; // a healthy simulator on plain HTTP
let tls; // the same over TLS, with a self-signed certificate
let cert;
let deadPort; // a port nothing listens on

before(async () => {
  plain = await sim(['--ttft', '20', '--tokens', '3']);
  cert = await selfSignedCert();
  tls = await sim(['--tokens', '3', '--tls-cert', cert.cert, '--tls-key', cert.key]);
  deadPort = await freePort();
});

// Not in a container unless a case says so: the guess would differ between machines. Exit 1 is doctor's
// answer when it found a cause; assertCause checks which exit each case must have.
async function doctor(args, env = {}) {
  const r = await runBallast(['doctor', '--json', ...args], { env: { BALLAST_CONTAINER: '0', ...env }, expectExit: [0, 1] });
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

test('a base URL missing /v1 → wrong_path, with the corrected URL', async () => {
  const r = await doctor(['--base-url', plain.url]);
  assertCause(r, 'wrong_path', new RegExp(`lacks /v1; use ${plain.url.replace(/\./g, '\\.')}/v1`));
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

test('a missing key and a placeholder key are caught before anything is sent', async () => {
  const missing = await doctor(['--base-url', 'https://api.openai.com/v1']);
  assertCause(missing, 'missing_api_key', /export OPENAI_API_KEY=/);
  assert.equal(missing.json.endpoints[0].hops.length, 1);
  const placeholder = await doctor(['--base-url', 'https://api.openai.com/v1'], { OPENAI_API_KEY: 'sk-xxxxxxxxxxxxxxxx' });
  assertCause(placeholder, 'placeholder_api_key', /OPENAI_API_KEY holds a placeholder/);
  const dir = tempDir();
  const config = path.join(dir, 'ballast.yaml');
  fs.writeFileSync(config, 'models:\n  - name: gpt-4o-mini\n    endpoints:\n      - base_url: https://api.openai.com/v1\n        api_key: ${TEAM_OPENAI_KEY}\n');
  const unset = await doctor(['--config', config]);
  assertCause(unset, 'missing_api_key', /export TEAM_OPENAI_KEY=/);
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
