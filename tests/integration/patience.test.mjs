// How long each client will wait, even when it does not say: the overload scenario through the
// OpenAI SDK with ballast's defaults (no timeouts.queue), a patience learned from give-ups and
// shown in /ballast/status, x-stainless-read-timeout, a sent deadline never second-guessed, a
// longer patience noticed again, and client_patience: off. Waste is counted by the simulator.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { chat, eventually, stopAfterAll } from './lib/harness.mjs';

const { sim, serve } = stopAfterAll();
const messages = [{ role: 'user', content: 'Summarise the plot of Hamlet in three sentences.' }];

// Until the simulator holds nothing more (work for clients that left counts as wasted).
async function settled(s) {
  return eventually(async () => {
    const st = await s.stats();
    return st.in_flight === 0 && st.queued === 0 && st;
  }, { timeoutMs: 30_000, everyMs: 50 });
}

// `calls` chat completions from `clients` SDK clients (each its own OpenAI instance, as worker
// processes would have), each with at most `perClient` in flight.
async function fanOut(base, { calls, clients = 1, perClient = Infinity, timeout, stream = false }) {
  const apps = Array.from({ length: clients }, () => ({
    client: new OpenAI({ baseURL: base, apiKey: 'sk-app', timeout }),
    free: perClient,
    waiting: [],
  }));
  const r = { ok: 0, timeouts: 0, refusals: [], other: [] };
  await Promise.all(Array.from({ length: calls }, async (_, i) => {
    const app = apps[i % clients];
    if (app.free > 0) app.free--;
    else await new Promise((go) => app.waiting.push(go));
    try {
      if (stream) {
        const s = await app.client.chat.completions.create({ model: 'm', messages, stream: true });
        for await (const _chunk of s) { /* to the end */ }
      } else {
        await app.client.chat.completions.create({ model: 'm', messages });
      }
      r.ok++;
    } catch (e) {
      if (e instanceof OpenAI.APIConnectionTimeoutError) r.timeouts++;
      else if (e.status === 429 || e.status === 503) r.refusals.push(e.message);
      else r.other.push(String(e));
    } finally {
      const next = app.waiting.shift();
      if (next) next();
      else app.free++;
    }
  }));
  return r;
}

// The shape of the overload scenario, faster: an upstream that runs 8 generations at a time
// (~0.3 s each, ~27/s) and 200 calls whose SDK gives up after 6 s, with 2 retries: directly, about
// a third of the first attempts would time out. ballast runs with max_in_flight and nothing else.
const OVERLOAD_SIM = ['--capacity', '8', '--ttft', '50', '--itl', '10', '--tokens', '25'];
const overloadConfig = (s) => ({ models: [{ name: 'm', endpoints: [{ base_url: s.base, max_in_flight: 8 }] }] });

for (const [shape, app] of [
  ['one process, 200 at once', { clients: 1 }],
  ['8 workers, 20 in flight each', { clients: 8, perClient: 20 }],
  ['one process, 200 streams at once', { clients: 1, stream: true }],
]) {
  test(`overload with defaults (${shape}): every call succeeds, no client timeout, no wasted generation`, async () => {
    const s = await sim(OVERLOAD_SIM);
    const gw = await serve(overloadConfig(s));
    const r = await fanOut(gw.base, { calls: 200, timeout: 6_000, ...app });
    const st = await settled(s);
    assert.deepEqual(r.other, []);
    assert.ok(r.ok >= 199, `${r.ok} succeeded; refused: ${r.refusals.slice(0, 3).join(' | ')}`);
    assert.equal(r.timeouts, 0);
    assert.ok(st.wasted <= 2, `${st.wasted} generations wasted`);
    assert.equal(st.completed, r.ok, 'the upstream generated only what was delivered');
    // The SDK was told when to come back, not held past its patience.
    const lines = gw.accessLog();
    assert.ok(lines.some((l) => l.code === 'queue_timeout' && l.retry_after_ms > 0));
    assert.ok(lines.every((l) => l.client_timeout_source === 'none'));
  });
}

// A client whose SDK gives up after 1.5 s: shorter than ballast would hold one of unknown patience.
const IMPATIENT_SIM = ['--capacity', '2', '--ttft', '100', '--itl', '20', '--tokens', '16'];

test('a patience is learned from agreeing give-ups, shown in /ballast/status, and admission uses it', async () => {
  const s = await sim(IMPATIENT_SIM);
  const gw = await serve({ models: [{ name: 'm', endpoints: [{ base_url: s.base, max_in_flight: 2 }] }] });
  // 30 calls at once, ~0.4 s each, 2 at a time: most first attempts outwait the client.
  const r = await fanOut(gw.base, { calls: 30, timeout: 1_500 });
  const st = await settled(s);
  const status = await (await fetch(`${gw.url}/ballast/status`)).json();
  const learned = status.client_patience.find((p) => p.client === '127.0.0.1' && p.model === 'm');
  assert.ok(learned && learned.patience_ms >= 1_400 && learned.patience_ms <= 1_700, JSON.stringify(learned));
  assert.ok(learned.agreeing >= 5);
  const lines = gw.accessLog();
  const taught = lines.filter((l) => l.client_timeout_source === 'learned');
  assert.ok(taught.length > 0, 'later requests were admitted by the learned patience');
  assert.ok(taught.every((l) => Math.abs(l.client_timeout_ms - learned.patience_ms) < 200));
  // Once learned, no request is started for a client that leaves before its answer; before, at
  // most the generations in flight when the first give-ups came (max_in_flight).
  assert.equal(taught.filter((l) => l.code === 'client_disconnected' && l.attempts.length > 0).length, 0);
  assert.ok(st.wasted <= 2, `${st.wasted} generations wasted`);
  // The learned refusals are ballast's named cause, with a Retry-After.
  const refused = taught.filter((l) => l.code === 'queue_timeout');
  assert.ok(refused.length > 0 && refused.every((l) => l.retry_after_ms > 0));
  assert.ok(r.ok + r.refusals.length + r.timeouts === 30);
});

test('a sent deadline is never second-guessed by a learned patience; the read timeout bounds the first byte', async () => {
  const s = await sim(IMPATIENT_SIM);
  const gw = await serve({ models: [{ name: 'm', endpoints: [{ base_url: s.base, max_in_flight: 2 }] }] });
  await fanOut(gw.base, { calls: 30, timeout: 1_500 });
  await settled(s);
  await eventually(async () => {
    const status = await (await fetch(`${gw.url}/ballast/status`)).json();
    return status.client_patience.some((p) => p.patience_ms);
  });
  // Keep the endpoint busy for ~2 s, then ask with a 10 s deadline sent per request: it waits.
  const busy = Array.from({ length: 8 }, () => chat(gw.base, { model: 'm' }, { 'x-ballast-timeout': '30' }));
  await eventually(async () => (await s.stats()).in_flight === 2);
  const patient = await chat(gw.base, { model: 'm' }, { 'x-stainless-timeout': '10' });
  assert.equal(patient.status, 200);
  // openai-python's read timeout, below the queue's wait: refused at once, named.
  const busyAgain = Array.from({ length: 8 }, () => chat(gw.base, { model: 'm' }, { 'x-ballast-timeout': '30' }));
  await eventually(async () => (await s.stats()).in_flight === 2);
  const reader = await chat(gw.base, { model: 'm' }, { 'x-stainless-read-timeout': '1.0' });
  assert.equal(reader.status, 503);
  assert.equal(reader.json.error.code, 'queue_timeout');
  assert.ok(reader.ms < 300, `refused after ${reader.ms.toFixed(0)} ms`);
  await Promise.all([...busy, ...busyAgain]);
  const lines = gw.accessLog();
  const sent = lines.find((l) => l.client_timeout_source === 'sent' && l.client_timeout_ms === 10_000);
  assert.ok(sent && sent.code === 'ok' && sent.queue_ms > 1_500, JSON.stringify(sent));
  const read = lines.find((l) => l.client_timeout_source === 'read');
  assert.equal(read.client_timeout_ms, 1_000);
  assert.equal(read.code, 'queue_timeout');
});

test('a client whose patience grows (a redeploy with a longer timeout) is re-learned within a minute', async () => {
  const s = await sim(IMPATIENT_SIM);
  const gw = await serve({ models: [{ name: 'm', endpoints: [{ base_url: s.base, max_in_flight: 2 }] }] });
  await fanOut(gw.base, { calls: 30, timeout: 1_500 });
  await settled(s);
  const learned = async () => (await (await fetch(`${gw.url}/ballast/status`)).json()).client_patience
    .find((p) => p.client === '127.0.0.1')?.patience_ms;
  assert.ok(await learned());
  // The same client, now patient for 20 s, keeps a queue deeper than its old patience: its refused
  // requests test the learned value, at most one every 15 s, and the first that outlasts it ends it.
  const started = performance.now();
  const client = new OpenAI({ baseURL: gw.base, apiKey: 'sk-app', timeout: 20_000, maxRetries: 0 });
  let stop = false;
  const load = async () => {
    while (!stop) {
      // A refusal comes back at once: pause as an app would, not spin.
      await client.chat.completions.create({ model: 'm', messages })
        .catch(() => new Promise((r) => setTimeout(r, 100)));
    }
  };
  const workers = Array.from({ length: 12 }, load);
  try {
    await eventually(async () => !(await learned()), { timeoutMs: 40_000, everyMs: 250 });
  } finally {
    stop = true;
    await Promise.all(workers);
  }
  assert.ok(performance.now() - started < 40_000);
  const probe = gw.accessLog().find((l) => l.client_timeout_source === 'none' && l.queue_ms > 1_500);
  assert.ok(probe, 'a probe was held past the learned patience and went on');
});

test('timeouts.client_patience: off learns nothing', async () => {
  const s = await sim(IMPATIENT_SIM);
  const gw = await serve({
    timeouts: { client_patience: 'off' },
    models: [{ name: 'm', endpoints: [{ base_url: s.base, max_in_flight: 2 }] }],
  });
  await fanOut(gw.base, { calls: 30, timeout: 1_500 });
  await settled(s);
  const status = await (await fetch(`${gw.url}/ballast/status`)).json();
  assert.deepEqual(status.client_patience, []);
  assert.ok(gw.accessLog().every((l) => l.client_timeout_source === 'none'));
});
