// The gateway's life as an operator runs it: reloads under load, `serve --check`, the admin
// listener, readiness while draining, and the process-wide bounds on connections and bodies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { stopAfterAll, startProcess, chat, streamChat, eventually, freePort, tempDir } from './lib/harness.mjs';

const run = stopAfterAll();

const writeConfig = (file, config) => fs.writeFileSync(file, JSON.stringify(config, null, 2));
const count = (text, re) => (text.match(new RegExp(re, 'g')) ?? []).length;

async function reloaded(gw, n) {
  await eventually(() => count(gw.stderr, /reloaded \S+ \(configuration #\d+\)/) >= n, { timeoutMs: 10_000 });
}

test('10 reloads under continuous streamed and non-streamed load lose no request and cut no stream; a bad one keeps the running config', async () => {
  const sim = await run.sim(['--ttft', '20', '--itl', '15', '--tokens', '12']);
  const configA = { models: [{ name: 'm', endpoints: [{ name: 'up', base_url: sim.base, max_in_flight: 8 }] }] };
  const configB = {
    models: [
      { name: 'm', endpoints: [{ name: 'up', base_url: sim.base, max_in_flight: 12, weight: 2 }] },
      { name: 'extra', endpoints: [{ name: 'up2', base_url: sim.base }] },
    ],
    timeouts: { total: '120s' },
  };
  const gw = await run.serve({ ...configA, workers: 2 });
  const file = gw.configFile;

  let running = true;
  const results = { ok: 0, failed: [] };
  const loop = async (stream) => {
    while (running) {
      if (stream) {
        const r = await streamChat(gw.base, { model: 'm' });
        const done = r.events.at(-1)?.data === '[DONE]' && !r.events.some((e) => e.event === 'error');
        if (r.status === 200 && done && !r.error) results.ok++;
        else results.failed.push({ stream, status: r.status, tail: r.text.slice(-300) });
      } else {
        const r = await chat(gw.base, { model: 'm' });
        if (r.status === 200 && r.json?.choices?.length) results.ok++;
        else results.failed.push({ stream, status: r.status, body: r.text.slice(0, 300) });
      }
    }
  };
  const loops = [0, 1, 2, 3, 4, 5].map((i) => loop(i % 2 === 0));

  for (let i = 1; i <= 10; i++) {
    writeConfig(file, { listen: gw.address, workers: 2, ...(i % 2 ? configB : configA) });
    gw.proc.kill('SIGHUP');
    await reloaded(gw, i);
    await new Promise((r) => setTimeout(r, 150));  // let requests start under this configuration
  }
  const bad = { listen: gw.address, models: [{ name: 'm', endpoints: [{ name: 'up', base_url: sim.base, max_in_flight: 'lots' }] }] };
  writeConfig(file, bad);
  gw.proc.kill('SIGHUP');
  await eventually(() => /reload refused/.test(gw.stderr));
  await new Promise((r) => setTimeout(r, 300));
  running = false;
  await Promise.all(loops);

  assert.deepEqual(results.failed, [], 'every request answered whole');
  assert.ok(results.ok > 40, `${results.ok} requests`);
  // Counted at the upstream: each request generated once, none lost or repeated.
  assert.equal((await sim.stats()).completed, results.ok);
  assert.equal(count(gw.stderr, /reloaded \S+ \(configuration #\d+\)/), 10);
  assert.match(gw.stderr, /reload refused: \S+ has 1 problem\(s\); the running configuration stays/);
  assert.match(gw.stderr, /ballast\.yaml:\d+: models\[0\]\.endpoints\[0\]\.max_in_flight: 'lots'/);
  // The running configuration is the 10th reload's (A): 'extra' (only in B) is gone, the limit is A's.
  assert.equal((await chat(gw.base, { model: 'extra' })).status, 404);
  const status = await (await fetch(`${gw.url}/ballast/status`)).json();
  assert.equal(status.models[0].endpoints[0].max_in_flight, 8);
});

test('a request in flight finishes under the configuration it started with; new ones use the reloaded one', async () => {
  const one = await run.sim(['--ttft', '20', '--itl', '100', '--tokens', '15']);
  const two = await run.sim([]);
  const gw = await run.serve({ models: [{ name: 'm', endpoints: [{ name: 'one', base_url: one.base }] }] });
  const inflight = streamChat(gw.base, { model: 'm' });
  await eventually(async () => (await one.stats()).in_flight === 1);
  writeConfig(gw.configFile, { listen: gw.address, models: [{ name: 'm', endpoints: [{ name: 'two', base_url: two.base }] }] });
  gw.proc.kill('SIGHUP');
  await reloaded(gw, 1);
  const after = await chat(gw.base, { model: 'm' });
  assert.equal(after.headers.get('x-ballast-endpoint'), 'two');
  const r = await inflight;
  assert.equal(r.headers.get('x-ballast-endpoint'), 'one');
  assert.equal(r.events.at(-1).data, '[DONE]', 'the stream was not cut');
  assert.equal((await one.stats()).completed, 1);
  assert.equal((await two.stats()).completed, 1);
});

test('endpoint state carries over a reload by name: an ejected endpoint stays ejected', async () => {
  const sim = await run.sim([]);
  const dead = `http://127.0.0.1:${await freePort()}/v1`;
  const config = (weight) => ({
    outlier: { consecutive_failures: 1, base_ejection: '60s' },
    models: [{ name: 'm', endpoints: [
      { name: 'good', base_url: sim.base, health_check: { enabled: false } },
      { name: 'dead', base_url: dead, weight, health_check: { enabled: false } },
    ] }],
  });
  const gw = await run.serve(config(1));
  const status = async () => (await (await fetch(`${gw.url}/ballast/status`)).json()).models[0].endpoints;
  for (let i = 0; i < 10 && (await status())[1].health !== 'ejected'; i++) {
    assert.equal((await chat(gw.base, { model: 'm' })).status, 200);
  }
  assert.equal((await status())[1].health, 'ejected');
  writeConfig(gw.configFile, { listen: gw.address, ...config(5) });
  gw.proc.kill('SIGHUP');
  await reloaded(gw, 1);
  const after = await status();
  assert.equal(after[1].weight, 5, 'the new settings apply');
  assert.equal(after[1].health, 'ejected', 'what traffic learned stays');
});

test('serve --check: 0 for a good config, 2 with every problem as file:line: key', async () => {
  const dir = tempDir();
  const good = path.join(dir, 'good.yaml');
  const bad = path.join(dir, 'bad.yaml');
  fs.writeFileSync(good, 'models:\n  - name: m\n    endpoints:\n      - provider: sim\n');
  fs.writeFileSync(bad, 'models:\n  - name: m\n    endpoints:\n      - provider: sim\n        max_in_flight: lots\nlimits:\n  max_connections: 0\n');
  const ok = await startProcess(['serve', '--check', '--config', good], { expectListen: false });
  assert.equal((await ok.exited).code, 0);
  assert.match(ok.stdout, /good\.yaml: ok \(1 model\(s\), 1 endpoint\(s\)\)/);
  const no = await startProcess(['serve', '--check', '--config', bad], { expectListen: false, expectExit: 2 });
  assert.equal((await no.exited).code, 2);
  assert.match(no.stderr, /bad\.yaml:5: models\[0\]\.endpoints\[0\]\.max_in_flight/);
  assert.match(no.stderr, /bad\.yaml:7: limits\.max_connections/);
});

test('admin_listen: /metrics and /ballast/status move there; its /readyz says draining while the workers drain', async () => {
  const sim = await run.sim(['--ttft', '20', '--itl', '100', '--tokens', '30']);
  const adminPort = await freePort();
  const gw = await run.serve({
    admin_listen: `127.0.0.1:${adminPort}`,
    shutdown_grace: '10s',
    models: [{ name: 'm', endpoints: [{ base_url: sim.base }] }],
  });
  const admin = `http://127.0.0.1:${adminPort}`;
  assert.equal((await fetch(`${gw.url}/metrics`)).status, 400, 'no longer on the main listener');
  assert.equal((await fetch(`${admin}/metrics`)).status, 200);
  assert.equal((await fetch(`${admin}/ballast/status`)).status, 200);
  assert.equal((await fetch(`${admin}/v1/models`)).status, 400, 'the API is not served there');
  const ready = await fetch(`${admin}/readyz`);
  assert.equal(ready.status, 200);
  assert.equal((await fetch(`${gw.url}/readyz`)).status, 200);

  const inflight = streamChat(gw.base, { model: 'm' });
  await eventually(async () => (await sim.stats()).in_flight === 1);
  gw.proc.kill('SIGTERM');
  await eventually(() => /SIGTERM/.test(gw.stderr));
  const draining = await fetch(`${admin}/readyz`);
  assert.equal(draining.status, 503);
  assert.deepEqual(await draining.json(), { status: 'draining' });
  const r = await inflight;
  assert.equal(r.events.at(-1).data, '[DONE]');
  assert.equal((await gw.exited).code, 0);
});

test('SIGTERM: a queued request that could not finish within shutdown_grace is refused at once; one that can is served', async () => {
  const sim = await run.sim(['--ttft', '1000', '--tokens', '1']);
  const gw = await run.serve({
    shutdown_grace: '2500ms',
    models: [{ name: 'm', endpoints: [{ base_url: sim.base, max_in_flight: 1 }] }],
  });
  // One answer teaches ballast how long a slot is held: about 1 s.
  assert.equal((await chat(gw.base, { model: 'm' })).status, 200);
  const first = chat(gw.base, { model: 'm' });
  await eventually(async () => (await sim.stats()).in_flight === 1);
  const next = chat(gw.base, { model: 'm' });
  await eventually(async () => (await (await fetch(`${gw.url}/ballast/status`)).text()).includes('"queued":1'));
  const last = chat(gw.base, { model: 'm' });
  await eventually(async () => (await (await fetch(`${gw.url}/ballast/status`)).text()).includes('"queued":2'));
  // The process ends 2.5 s from now. `first` ends within 1 s and `next` by about 2 s: both are served.
  // `last` would start at about 2 s and end at about 3 s: it is told now, not cut then.
  const signalled = Date.now();
  gw.proc.kill('SIGTERM');
  const refused = await last;
  const answeredAfter = Date.now() - signalled;
  assert.equal(refused.status, 503, refused.text);
  assert.ok(answeredAfter < 1000, `refused ${answeredAfter} ms after SIGTERM`);
  assert.equal(refused.json.error.code, 'queue_timeout');
  assert.match(refused.json.error.message, /shutting down/);
  assert.ok(Number(refused.headers.get('retry-after-ms')) > 0);
  assert.equal((await first).status, 200);
  assert.equal((await next).status, 200);
  assert.equal((await gw.exited).code, 0);
});

test('limits.max_buffered_bytes: a body past the bound across requests in flight is refused 503 with Retry-After', async () => {
  const sim = await run.sim(['--ttft', '1000', '--tokens', '2']);
  const gw = await run.serve({
    limits: { max_buffered_bytes: '1KiB' },
    models: [{ name: 'm', endpoints: [{ base_url: sim.base }] }],
  });
  const big = 'x'.repeat(700);
  const first = chat(gw.base, { model: 'm', messages: [{ role: 'user', content: big }] });
  await eventually(async () => (await sim.stats()).in_flight === 1);
  const second = await chat(gw.base, { model: 'm', messages: [{ role: 'user', content: big }] });
  assert.equal(second.status, 503);
  assert.equal(second.json.error.code, 'queue_full');
  assert.match(second.json.error.message, /limits\.max_buffered_bytes/);
  assert.ok(Number(second.headers.get('retry-after-ms')) > 0);
  assert.equal((await first).status, 200);
  // Once the first is done its bytes are free again (released as its session finishes the answer,
  // a moment after the client has read it).
  await eventually(async () => (await chat(gw.base, { model: 'm', messages: [{ role: 'user', content: big }] })).status === 200);
});

test('limits.max_connections: past it a new connection waits in the accept queue until another closes', async () => {
  const gw = await run.serve({ limits: { max_connections: 2 }, workers: 1, models: [{ name: 'm', endpoints: [{ provider: 'sim' }] }] });
  const port = Number(gw.address.split(':').at(-1));
  const open = () => new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.on('error', reject);
  });
  const held = [await open(), await open()];
  await eventually(() => /limits\.max_connections \(2\) reached/.test(gw.stderr));
  const third = await open();  // the kernel accepts it; ballast does not serve it yet
  let answer = '';
  third.on('data', (d) => { answer += d; });
  third.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(answer, '', 'not served while two connections are open');
  held[0].destroy();
  await eventually(() => answer.includes('200 OK'));
  held[1].destroy();
  third.destroy();
});

test('a log reader that goes away never stops serving: lost lines are counted, and SIGTERM still drains', async () => {
  const gw = await run.serve({ models: [{ name: 'm', endpoints: [{ provider: 'sim' }] }] });
  // Both pipes' readers go away, as with `ballast serve | head` or a log shipper that restarts.
  gw.proc.stdout.destroy();
  gw.proc.stderr.destroy();
  for (let i = 0; i < 5; i++) assert.equal((await chat(gw.base, { model: 'm' })).status, 200);
  gw.proc.kill('SIGHUP');  // logs a line to the lost stderr
  const text = await eventually(async () => {
    const t = await (await fetch(`${gw.url}/metrics`)).text();
    return /ballast_log_lines_dropped_total\{log="server"\} [1-9]/.test(t) && t;
  });
  assert.match(text, /ballast_log_lines_dropped_total\{log="access"\} ([5-9]|\d\d+)/);
  assert.equal((await chat(gw.base, { model: 'm' })).status, 200);
  gw.proc.kill('SIGTERM');
  assert.deepEqual(await gw.exited, { code: 0, signal: null });
});
