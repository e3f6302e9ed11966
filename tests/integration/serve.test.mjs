// `ballast serve` as an operator meets it: configuration from a file, from the environment or
// built in; client keys; egress proxies; a private CA; and a graceful SIGTERM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { startProcess, startTlsProxy, startSim, startServe, chat, streamChat, tempDir, selfSignedCert, eventually } from './lib/harness.mjs';

test('a bad config reports every problem with file, line and key, and exits 2', async () => {
  const file = path.join(tempDir(), 'bad.yaml');
  fs.writeFileSync(file, [
    'listen: 127.0.0.1:0',
    'models:',
    '  - name: m',
    '    endpoints:',
    '      - base_url: localhost:8000',
    '        api_key: ${NOT_SET_ANYWHERE}',
    'timeouts: {connect: 5}',
    'retry: 3',
  ].join('\n'));
  const p = await startProcess(['serve', '--config', file], { expectListen: false, expectExit: 2 });
  const { code } = await p.exited;
  assert.equal(code, 2);
  assert.match(p.stderr, /the configuration has 4 problem\(s\); nothing was started/);
  assert.match(p.stderr, new RegExp(`${file}:5: models\\[0\\]\\.endpoints\\[0\\]\\.base_url: 'localhost:8000' must start with http:// or https://`));
  assert.match(p.stderr, /:6: models\[0\]\.endpoints\[0\]\.api_key: environment variable NOT_SET_ANYWHERE is not set/);
  assert.match(p.stderr, /:7: timeouts\.connect: '5' is not a positive duration/);
  assert.match(p.stderr, /:8: retry: unknown key/);
});

test('no config and no provider variables: the built-in simulated model, and the log says so', async () => {
  const p = await startProcess(['serve', '--listen', '127.0.0.1:0']);
  try {
    assert.match(p.stderr, /serving the built-in simulated model 'sim'/);
    const r = await chat(`${p.url}/v1`, { model: 'sim' });
    assert.equal(r.status, 200);
    assert.equal(r.json.object, 'chat.completion');
    const s = await streamChat(`${p.url}/v1`, { model: 'sim' });
    assert.equal(s.events.at(-1).data, '[DONE]');
  } finally {
    await p.stop();
  }
});

test('OPENAI_API_KEY and OPENAI_BASE_URL: fronts that provider for any model', async () => {
  const sim = await startSim(['--api-key', 'sk-from-env']);
  const p = await startProcess(['serve', '--listen', '127.0.0.1:0'], {
    env: { OPENAI_API_KEY: 'sk-from-env', OPENAI_BASE_URL: sim.base },
  });
  try {
    assert.equal((await chat(`${p.url}/v1`, { model: 'gpt-4o-mini' })).status, 200);
    assert.equal((await chat(`${p.url}/v1`, { model: 'anything-else' })).status, 200);
    const models = await (await fetch(`${p.url}/v1/models`)).json();
    assert.deepEqual(models.data.map((m) => m.id), ['sim'], 'the listing is the provider\'s own');
  } finally {
    await p.stop();
    await sim.stop();
  }
});

test('AZURE_OPENAI_* and OPENAI_API_VERSION: fronts that deployment', async () => {
  const sim = await startSim(['--azure-deployment', 'prod', '--azure-api-version', '2024-10-21', '--api-key', 'az']);
  const env = { AZURE_OPENAI_ENDPOINT: sim.url, AZURE_OPENAI_API_KEY: 'az', OPENAI_API_VERSION: '2024-10-21', AZURE_OPENAI_DEPLOYMENT: 'prod' };
  const p = await startProcess(['serve', '--listen', '127.0.0.1:0'], { env });
  const wrong = await startProcess(['serve', '--listen', '127.0.0.1:0'], { env: { ...env, AZURE_OPENAI_DEPLOYMENT: 'nope' } });
  try {
    const r = await chat(`${p.url}/v1`, { model: 'gpt-4o-mini' });
    assert.equal(r.status, 200);
    assert.equal(r.json.model, 'prod');
    const w = await chat(`${wrong.url}/v1`, { model: 'x' });
    assert.equal(w.status, 404);
    assert.equal(w.json.error.code, 'DeploymentNotFound', 'Azure\'s own answer passes through');
  } finally {
    await p.stop();
    await wrong.stop();
    await sim.stop();
  }
});

test('client keys: without one 401 unauthorized; a key limited to some models', async () => {
  const sim = await startSim([]);
  const gw = await startServe({
    models: [{ name: 'a', endpoints: [{ base_url: sim.base }] }, { name: 'b', endpoints: [{ base_url: sim.base }] }],
    keys: [{ key: 'team-a', models: ['a'] }, { key: 'admin' }],
  });
  try {
    const none = await chat(gw.base, { model: 'a' });
    assert.equal(none.status, 401);
    assert.equal(none.json.error.code, 'unauthorized');
    assert.equal((await chat(gw.base, { model: 'a' }, { authorization: 'Bearer team-a' })).status, 200);
    const other = await chat(gw.base, { model: 'b' }, { authorization: 'Bearer team-a' });
    assert.equal(other.status, 401);
    assert.match(other.json.error.message, /may not use model 'b'/);
    assert.equal((await chat(gw.base, { model: 'b' }, { 'api-key': 'admin' })).status, 200);
    assert.equal((await chat(gw.base, { model: 'a' }, { authorization: 'Bearer wrong' })).status, 401);
  } finally {
    await gw.stop();
    await sim.stop();
  }
});

// A minimal forward proxy that counts what it is asked to carry.
async function startForwardProxy() {
  const seen = [];
  const server = http.createServer((req, res) => {
    seen.push(req.url);
    const target = new URL(req.url);
    const up = http.request(target, { method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode, r.headers);
      r.pipe(res);
    });
    req.pipe(up);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}`, seen, close: () => server.close() };
}

test('HTTP_PROXY in either case is honoured; NO_PROXY bypasses it; a dead proxy is a proxy_failure', async () => {
  const sim = await startSim([]);
  const proxy = await startForwardProxy();
  const config = { models: [{ name: 'm', endpoints: [{ base_url: sim.base }] }] };
  try {
    const upper = await startServe(config, { env: { HTTP_PROXY: proxy.url } });
    assert.equal((await chat(upper.base, { model: 'm' })).status, 200);
    assert.equal(proxy.seen.length, 1, 'the request went through the proxy');
    await upper.stop();

    const bypass = await startServe(config, { env: { http_proxy: proxy.url, NO_PROXY: 'localhost,127.0.0.0/8' } });
    assert.equal((await chat(bypass.base, { model: 'm' })).status, 200);
    assert.equal(proxy.seen.length, 1, 'NO_PROXY sent it direct');
    await bypass.stop();

    const dead = await startServe(config, { env: { HTTP_PROXY: 'http://127.0.0.1:1' } });
    const r = await chat(dead.base, { model: 'm' });
    assert.equal(r.status, 502);
    assert.equal(r.json.error.code, 'proxy_failure');
    assert.match(r.json.error.message, /proxy http:\/\/127.0.0.1:1 \(from HTTP_PROXY\) failed/);
    assert.match(r.json.error.message, /NO_PROXY/);
    await dead.stop();
  } finally {
    proxy.close();
    await sim.stop();
  }
});

test('an HTTPS upstream with a private CA: ca_bundle trusts it; without it, tls_failure', async () => {
  const { dir } = await selfSignedCert();
  const sim = await startSim(['--tls-cert', path.join(dir, 'cert.pem'), '--tls-key', path.join(dir, 'key.pem')]);
  const gw = await startServe({
    models: [
      { name: 'trusted', endpoints: [{ base_url: sim.base, ca_bundle: path.join(dir, 'cert.pem') }] },
      { name: 'untrusted', endpoints: [{ base_url: sim.base }] },
      { name: 'plain-to-tls', endpoints: [{ base_url: sim.base.replace('https:', 'http:') }] },
    ],
  });
  try {
    const ok = await chat(gw.base, { model: 'trusted' });
    assert.equal(ok.status, 200);
    const s = await streamChat(gw.base, { model: 'trusted' });
    assert.equal(s.events.at(-1).data, '[DONE]');
    const bad = await chat(gw.base, { model: 'untrusted' });
    assert.equal(bad.status, 502);
    assert.equal(bad.json.error.code, 'tls_failure');
    assert.match(bad.json.error.message, /ca_bundle/);
    const plain = await chat(gw.base, { model: 'plain-to-tls' });
    assert.equal(plain.status, 502, 'plain HTTP spoken to a TLS port fails fast');
    const line = gw.accessLog().find((l) => l.model === 'trusted');
    assert.ok(line.tls_ms > 0, 'the TLS handshake is timed');
  } finally {
    await gw.stop();
    await sim.stop();
  }
});

test('SIGTERM: stops accepting, lets an in-flight stream finish, exits 0', async () => {
  const sim = await startSim(['--tokens', '10', '--itl', '100']);
  const gw = await startServe({ models: [{ name: 'm', endpoints: [{ base_url: sim.base }] }], shutdown_grace: '10s' });
  try {
    const port = Number(gw.address.split(':').at(-1));
    const inflight = streamChat(gw.base, { model: 'm' });
    await new Promise((r) => setTimeout(r, 300));
    gw.proc.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 100));
    const refused = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.on('connect', () => { s.destroy(); resolve(false); });
      s.on('error', (e) => resolve(e.code === 'ECONNREFUSED'));
    });
    assert.ok(refused, 'no new connections once draining');
    const r = await inflight;
    assert.equal(r.events.at(-1).data, '[DONE]', 'the stream finished whole');
    const { code } = await gw.exited;
    assert.equal(code, 0);
    assert.match(gw.stderr, /SIGTERM: no new connections/);
  } finally {
    await gw.stop();
    await sim.stop();
  }
});

test('SIGTERM: a stream longer than the grace period ends with a shutting_down event, and is logged', async () => {
  const sim = await startSim(['--tokens', '100', '--itl', '100']);
  const gw = await startServe({ models: [{ name: 'm', endpoints: [{ base_url: sim.base }] }], shutdown_grace: '500ms' });
  try {
    const inflight = streamChat(gw.base, { model: 'm' });
    await new Promise((r) => setTimeout(r, 200));
    const started = performance.now();
    gw.proc.kill('SIGTERM');
    const { code } = await gw.exited;
    const waited = performance.now() - started;
    assert.equal(code, 0);
    assert.ok(waited >= 450 && waited < 1_500, `exited after ${waited} ms`);
    const r = await inflight;
    assert.ok(!r.text.includes('[DONE]'), 'never passed off as complete');
    const last = r.events.at(-1);
    assert.equal(last.event, 'error');
    assert.equal(JSON.parse(last.data).error.code, 'shutting_down');
    const line = gw.accessLog().at(-1);
    assert.equal(line.code, 'shutting_down');
  } finally {
    await gw.stop();
    await sim.stop();
  }
});

test('several workers share one port and serve concurrent clients', async () => {
  const sim = await startSim(['--ttft', '20']);
  const gw = await startServe({ workers: 3, models: [{ name: 'm', endpoints: [{ base_url: sim.base }] }] });
  try {
    assert.match(gw.stderr, /\(3 worker\(s\)/);
    // Separate connections, accepted by whichever worker is free on the one listening socket.
    const results = await Promise.all(Array.from({ length: 48 }, () => new Promise((resolve, reject) => {
      const req = http.request(`${gw.base}/chat/completions`, { method: 'POST', agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      });
      req.on('error', reject);
      req.end('{"model":"m","messages":[]}');
    })));
    assert.deepEqual([...new Set(results)], [200]);
    assert.equal((await sim.stats()).completed, 48);
  } finally {
    await gw.stop();
    await sim.stop();
  }
});

test('one owner per port: a second ballast on a port a running one holds fails, naming the port; the first serves on', async () => {
  const sim = await startSim([]);
  const gw = await startServe({ workers: 2, models: [{ name: 'm', endpoints: [{ base_url: sim.base }] }] });
  try {
    const file = path.join(tempDir(), 'second.yaml');
    fs.writeFileSync(file, JSON.stringify({ listen: gw.address, models: [{ name: 'other', endpoints: [{ provider: 'sim' }] }] }));
    const second = await startProcess(['serve', '--config', file], { expectListen: false, expectExit: 1 });
    const { code } = await second.exited;
    assert.equal(code, 1);
    assert.match(second.stderr, new RegExp(`cannot listen on ${gw.address.replace(/\./g, '\\.')}: Address already in use`));
    for (let i = 0; i < 10; i++) assert.equal((await chat(gw.base, { model: 'm' })).status, 200);
  } finally {
    await gw.stop();
    await sim.stop();
  }
});

test('HTTP/2 where the upstream offers it: nginx (TLS + h2) in front of the simulator sees HTTP/2.0', async () => {
  const sim = await startSim(['--tokens', '4']);
  const nginx = await startTlsProxy(sim.address);
  const gw = await startServe({ models: [{ name: 'm', endpoints: [{ base_url: nginx.base, ca_bundle: nginx.cert }] }] });
  try {
    assert.equal((await chat(gw.base, { model: 'm' })).status, 200);
    const s = await streamChat(gw.base, { model: 'm' });
    assert.equal(s.events.at(-1).data, '[DONE]');
    const log = await eventually(() => nginx.accessLog().length >= 2 && nginx.accessLog());
    assert.deepEqual(log, ['HTTP/2.0 200', 'HTTP/2.0 200']);
  } finally {
    await gw.stop();
    await nginx.stop();
    await sim.stop();
  }
});

test('a provider set only by environment variables trusts a private CA through SSL_CERT_FILE, CURL_CA_BUNDLE or REQUESTS_CA_BUNDLE; one naming no file stops startup', async () => {
  const { dir, cert, key } = await selfSignedCert();
  const sim = await startSim(['--tls-cert', cert, '--tls-key', key]);
  // The machine's own values must not decide the case: empty is unset.
  const none = { SSL_CERT_FILE: '', CURL_CA_BUNDLE: '', REQUESTS_CA_BUNDLE: '' };
  const provider = { OPENAI_BASE_URL: sim.base, OPENAI_API_KEY: 'EMPTY' };
  try {
    for (const variable of ['SSL_CERT_FILE', 'CURL_CA_BUNDLE', 'REQUESTS_CA_BUNDLE']) {
      const gw = await startProcess(['serve', '--listen', '127.0.0.1:0'], { env: { ...none, ...provider, [variable]: cert } });
      try {
        const ok = await chat(`${gw.url}/v1`, { model: 'gpt-4o-mini' });
        assert.equal(ok.status, 200, `${variable}: ${ok.text}`);
        const s = await streamChat(`${gw.url}/v1`, { model: 'gpt-4o-mini' });
        assert.equal(s.events.at(-1).data, '[DONE]');
      } finally {
        await gw.stop();
      }
    }
    // A config file's https endpoint without ca_bundle: takes the variable too.
    const file = await startServe({ models: [{ name: 'm', endpoints: [{ base_url: sim.base }] }] }, { env: { ...none, SSL_CERT_FILE: cert } });
    try {
      assert.equal((await chat(file.base, { model: 'm' })).status, 200);
    } finally {
      await file.stop();
    }
    // Without one: tls_failure, naming where a CA goes.
    const untrusted = await startProcess(['serve', '--listen', '127.0.0.1:0'], { env: { ...none, ...provider } });
    try {
      const bad = await chat(`${untrusted.url}/v1`, { model: 'gpt-4o-mini' });
      assert.equal(bad.status, 502);
      assert.equal(bad.json.error.code, 'tls_failure');
      assert.match(bad.json.error.message, /ca_bundle .*SSL_CERT_FILE/);
    } finally {
      await untrusted.stop();
    }
    // A variable naming no file is a startup error naming it, not a silent fallback to the system's CAs.
    const missing = path.join(dir, 'missing.pem');
    const p = await startProcess(['serve', '--listen', '127.0.0.1:0'],
      { env: { ...none, ...provider, CURL_CA_BUNDLE: missing }, expectListen: false, expectExit: 2 });
    const { code } = await p.exited;
    assert.equal(code, 2);
    assert.match(p.stderr, new RegExp(`CURL_CA_BUNDLE names '${missing.replace(/\./g, '\\.')}', which is not a readable file`));
  } finally {
    await sim.stop();
  }
});
