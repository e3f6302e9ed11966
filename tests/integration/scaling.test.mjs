// Replicas of `ballast serve` sharing their limits through Redis (redis: in the config, docs/scaling.md):
// max_in_flight and rpm hold across three replicas; Redis going away leaves each replica its share and
// fails no request, and its return makes the limits shared again; a dead replica's slots come back
// within redis.lease_ttl. A real redis-server on loopback, started and killed here; what reached the
// upstream is counted by the simulator, never read from ballast's logs.
//
// The simulators run with no --capacity: one that queued past its capacity would hide an overshoot
// (its max_in_flight could never pass it), so each counts every generation ballast lets through.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chat, eventually, freePort, startPeer, stopAfterAll, waitForPort } from './lib/harness.mjs';

const run = stopAfterAll();
const REPLICAS = 3;

// redis-server in the foreground on `port` (a free one unless given: a restart reuses it), nothing
// persisted: a restarted Redis starts empty, as one that lost its memory does.
async function startRedis(port) {
  port ??= await freePort();
  const redis = startPeer('redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no']);
  await waitForPort(port);
  redis.port = port;
  redis.url = `redis://127.0.0.1:${port}/0`;
  return redis;
}

// REPLICAS gateways of one configuration, each on a port of its own, sharing `redis`; resolves once
// every one says the limits are shared (each connects in the background, keeping local shares until then).
async function startReplicas(redis, config, redisOptions = {}) {
  const all = [];
  for (let i = 0; i < REPLICAS; i++) {
    all.push(await run.serve({
      redis: { url: redis.url, replicas: REPLICAS, ...redisOptions },
      timeouts: { queue: '60s', total: '120s' },
      ...config,
    }));
  }
  await eventually(async () => (await Promise.all(all.map(limitsOf))).every((l) => l === 'shared'));
  return all;
}

const models = (...list) => ({ models: list.map(([name, endpoint]) => ({ name, endpoints: [endpoint] })) });
const statusOf = async (gw) => (await fetch(`${gw.url}/ballast/status`)).json();
const limitsOf = async (gw) => (await statusOf(gw)).redis?.limits;
const metric = async (gw, name) => {
  const m = (await (await fetch(`${gw.url}/metrics`)).text()).match(new RegExp(`^${name} (\\S+)$`, 'm'));
  return m ? Number(m[1]) : undefined;
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// One streamed chat of `model` through `gw`, every event read, bounded by `withinMs`: whether it came
// back 200 and whole (its last event [DONE], no error event), and how long it took.
async function stream(gw, model, withinMs) {
  const started = performance.now();
  try {
    const res = await fetch(`${gw.base}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model, stream: true, messages: [{ role: 'user', content: 'hi' }] }),
      signal: AbortSignal.timeout(withinMs),
    });
    const events = (await res.text()).split('\n\n').filter((e) => e.trim());
    const whole = events.at(-1) === 'data: [DONE]' && !events.some((e) => /^event: error|"error":/m.test(e));
    return { ok: res.status === 200 && whole, status: res.status, tail: events.slice(-2), ms: performance.now() - started };
  } catch (e) {
    return { ok: false, error: e.name === 'TimeoutError' ? `no answer within ${withinMs} ms` : e.message, ms: performance.now() - started };
  }
}

// Fails unless every one of `results` was 200 and whole, saying how many were not and showing a few.
function assertAllWhole(results, what) {
  const bad = results.filter((r) => !r.ok);
  assert.equal(bad.length, 0, `${bad.length} of ${results.length} ${what}, e.g. ${JSON.stringify(bad.slice(0, 3))}`);
}

// `clients` loops per gateway, each streaming one request after another until stop() (which resolves
// to every result once the last one is in).
function keepStreaming(gws, model, clients, withinMs) {
  let running = true;
  const results = [];
  const loop = async (gw) => {
    while (running) results.push(await stream(gw, model, withinMs));
  };
  const loops = gws.flatMap((gw) => Array.from({ length: clients }, () => loop(gw)));
  return { results, stop: async () => { running = false; await Promise.all(loops); return results; } };
}

test('max_in_flight 8 across three replicas: 3 × 64 concurrent streams, 8 at most at the upstream, all served whole', async () => {
  const sim = await run.sim(['--ttft', '20', '--itl', '10', '--tokens', '20']);  // ~0.2 s a stream: 24 rounds
  const redis = await startRedis();
  const gws = await startReplicas(redis, models(['m', { name: 'up', base_url: sim.base, max_in_flight: 8 }]));
  const results = await Promise.all(gws.flatMap((gw) => Array.from({ length: 64 }, () => stream(gw, 'm', 60_000))));
  assertAllWhole(results, 'streams were not answered 200 and whole');
  const stats = await sim.stats();
  assert.equal(stats.completed, 3 * 64);
  // Reached (one replica's share would be 2, three of them 6) and never passed.
  assert.equal(stats.max_in_flight, 8, `the simulator saw up to ${stats.max_in_flight} generations at once`);
});

test('rpm 600 across three replicas: over 60 s of load above it the upstream gets 600 ± 5%, the rest is refused 429 with Retry-After', async () => {
  const sim = await run.sim(['--tokens', '1']);
  const redis = await startRedis();
  const gws = await startReplicas(redis, models(['m', { name: 'up', base_url: sim.base, rpm: 600 }]));

  // The bucket holds 10 s worth (100) and starts full, for the three replicas together.
  const burst = await Promise.all(Array.from({ length: 99 }, (_, i) => chat(gws[i % REPLICAS].base, { model: 'm' })));
  assert.deepEqual(burst.filter((r) => r.status !== 200).map((r) => `${r.status} ${r.text.slice(0, 200)}`), []);

  // Then 15 a second, round robin over the replicas; 10 a second fit.
  const PER_SECOND = 15;
  const answers = [];
  const pending = new Set();
  let sent = 0;
  const began = performance.now();
  const driver = setInterval(() => {
    const due = Math.floor(((performance.now() - began) * PER_SECOND) / 1000);
    for (; sent < due; sent++) {
      const at = performance.now();
      const p = chat(gws[sent % REPLICAS].base, { model: 'm' }).then((r) => answers.push({ at, ...r }));
      pending.add(p);
      p.finally(() => pending.delete(p));
    }
  }, 20);
  try {
    // The window starts once the burst is spent: a refusal has come back.
    await eventually(() => answers.some((a) => a.status === 429), { timeoutMs: 20_000 });
    const t0 = performance.now();
    const before = (await sim.stats()).completed;
    await sleep(60_000);  // the measuring window itself, not a wait for something to happen
    const completed = (await sim.stats()).completed - before;
    const t1 = performance.now();
    const inWindow = answers.filter((a) => a.at >= t0 && a.at < t1);
    console.log(`rpm 600: ${completed} reached the upstream in 60 s; ${inWindow.length} sent, ` +
      `${inWindow.filter((a) => a.status === 429).length} refused`);
    assert.ok(inWindow.length >= 0.9 * 60 * PER_SECOND, `only ${inWindow.length} requests sent in the window`);
    assert.ok(completed >= 570 && completed <= 630, `${completed} requests reached the upstream in 60 s (rpm 600)`);
  } finally {
    clearInterval(driver);
    await Promise.all(pending);
  }
  const refused = answers.filter((a) => a.status !== 200);
  assert.ok(refused.length > 200, `${refused.length} refused`);
  for (const r of refused) {
    assert.equal(r.status, 429, r.text.slice(0, 300));
    assert.equal(r.json?.error?.code, 'rate_limited');
    assert.ok(Number(r.headers.get('retry-after')) >= 1, `retry-after: ${r.headers.get('retry-after')}`);
    assert.ok(Number(r.headers.get('retry-after-ms')) > 0, `retry-after-ms: ${r.headers.get('retry-after-ms')}`);
  }
});

test('Redis killed mid-run: no request fails, each replica keeps its share of the limit; Redis back: shared again within 5 s', async () => {
  // Two models on two simulators: `during` takes the load through Redis's death, `after` the fresh
  // load once it is back, so each simulator's peak speaks of one phase.
  const during = await run.sim(['--ttft', '50', '--itl', '20', '--tokens', '40']);  // ~0.8 s a stream
  const after = await run.sim(['--ttft', '20', '--itl', '10', '--tokens', '20']);
  let redis = await startRedis();
  const gws = await startReplicas(redis, models(
    ['during', { name: 'up', base_url: during.base, max_in_flight: 8 }],
    ['after', { name: 'up', base_url: after.base, max_in_flight: 8 }],
  ));
  const share = Math.floor(8 / REPLICAS);

  // 12 clients a replica: every replica has requests waiting, locally or for a shared slot.
  const load = keepStreaming(gws, 'during', 12, 30_000);
  let results;
  try {
    await eventually(async () => (await during.stats()).completed >= 24, { timeoutMs: 15_000 });
    assert.equal((await during.stats()).max_in_flight, 8, 'while Redis is up the shared limit holds');

    const logged = gws.map((gw) => gw.stderr.length);
    const killed = performance.now();
    await redis.crash('SIGKILL');
    await eventually(async () => (await Promise.all(gws.map(limitsOf))).every((l) => l === 'local'), { timeoutMs: 3_000 });
    console.log(`every replica fell back to local limits ${(performance.now() - killed).toFixed(0)} ms after Redis died`);
    for (const [i, gw] of gws.entries()) {
      const lines = gw.stderr.slice(logged[i]).split('\n').filter((l) => /redis/i.test(l) && /share/i.test(l));
      assert.equal(lines.length, 1, `replica ${i} logs the fallback once:\n${gw.stderr.slice(logged[i])}`);
      const { redis: r } = await statusOf(gw);
      assert.equal(r.url, redis.url);
      assert.equal(r.replicas, REPLICAS);
      assert.equal(r.fallbacks, 1);
      assert.ok(typeof r.why === 'string' && r.why.length > 0, `why: ${r.why}`);
      assert.equal(await metric(gw, 'ballast_redis_shared'), 0);
      assert.equal(await metric(gw, 'ballast_redis_fallbacks_total'), 1);
    }

    // Serving goes on. What was admitted before (8 at most) runs to its end; from then on each replica
    // starts a request only while it has fewer than its share in flight: 8 + 3 × 2 at the very most.
    const done = (await during.stats()).completed;
    await eventually(async () => (await during.stats()).completed >= done + 24, { timeoutMs: 15_000 });
    const peak = (await during.stats()).max_in_flight;
    assert.ok(peak <= 8 + REPLICAS * share,
      `the simulator saw ${peak} generations at once after Redis died (at most 8 admitted before + ${REPLICAS} × ${share})`);
    // Those admitted before are long done: now the shares alone bound it. Sampled every 20 ms for 2 s.
    const samples = [];
    for (const until = performance.now() + 2_000; performance.now() < until; await sleep(20)) {
      samples.push((await during.stats()).in_flight);
    }
    assert.ok(Math.max(...samples) <= REPLICAS * share,
      `in flight at the simulator on local shares: up to ${Math.max(...samples)} (${REPLICAS} × ${share} allowed)`);
    assert.ok(Math.max(...samples) >= share, 'the replicas are serving meanwhile');
  } finally {
    results = await load.stop();
  }
  assertAllWhole(results, 'streams were not answered 200 and whole within 30 s');
  assert.ok(results.length >= 48, `${results.length} requests`);

  // Redis back on its port, empty: within 5 s (reconnects back off 2 s at most) the limits are shared again.
  const restarted = performance.now();
  redis = await startRedis(redis.port);
  await eventually(async () => (await Promise.all(gws.map(limitsOf))).every((l) => l === 'shared'), { timeoutMs: 5_000 });
  console.log(`shared again ${(performance.now() - restarted).toFixed(0)} ms after Redis restarted`);
  for (const gw of gws) assert.equal(await metric(gw, 'ballast_redis_shared'), 1);

  const fresh = await Promise.all(gws.flatMap((gw) => Array.from({ length: 32 }, () => stream(gw, 'after', 60_000))));
  assertAllWhole(fresh, 'streams were not answered 200 and whole');
  const stats = await after.stats();
  assert.equal(stats.completed, 3 * 32);
  assert.equal(stats.max_in_flight, 8, `the simulator saw up to ${stats.max_in_flight} generations at once`);
});

test('a replica killed while holding slots: the others get them within lease_ttl', async () => {
  // ~10 s a stream: none of those running ends by itself while the slots are measured.
  const sim = await run.sim(['--ttft', '100', '--itl', '25', '--tokens', '400']);
  const redis = await startRedis();
  const gws = await startReplicas(redis, models(['m', { name: 'up', base_url: sim.base, max_in_flight: 8 }]),
    { lease_ttl: '3s' });
  const [victim, ...others] = gws;
  const inFlight = async () => (await sim.stats()).in_flight;

  // The victim takes 4 slots; the others 4 between them, and 8 more of theirs wait.
  const doomed = Array.from({ length: 4 }, () => stream(victim, 'm', 60_000));
  await eventually(async () => (await inFlight()) === 4);
  const survivors = others.flatMap((gw) => Array.from({ length: 6 }, () => stream(gw, 'm', 60_000)));
  await eventually(async () => (await inFlight()) === 8);
  const endpointOf = async (gw) => (await statusOf(gw)).models[0].endpoints[0];
  await eventually(async () => (await Promise.all(others.map(endpointOf))).every((e) => e.in_flight + e.queued === 6));
  assert.equal((await sim.stats()).requests, 8, 'the 8 waiting have not reached the simulator');

  const killed = performance.now();
  await victim.crash('SIGKILL');
  // Its connections close with it, and the simulator cancels its 4 generations at once: from here on
  // the simulator counts the others' requests only, and its slots are free there. In Redis the
  // victim's leases live on until they expire, unrenewed.
  await eventually(async () => (await inFlight()) === 4, { timeoutMs: 1_000, everyMs: 10 });
  const noticed = performance.now() - killed;
  const regained = await eventually(async () => (await inFlight()) === 8 && performance.now() - killed,
    { timeoutMs: 10_000, everyMs: 20 }).catch(() => Infinity);
  const when = regained === Infinity ? 'not within 10 s of the kill' : `${regained.toFixed(0)} ms after the kill`;
  console.log(`the simulator dropped the dead replica's generations after ${noticed.toFixed(0)} ms; ` +
    `the others held all 8 slots ${when}`);
  assert.ok(regained <= 3_000 + 1_500, `the others got the dead replica's slots ${when} (lease_ttl 3s)`);
  const stats = await sim.stats();
  assert.equal(stats.max_in_flight, 8, `the simulator saw up to ${stats.max_in_flight} generations at once`);
  assert.ok(stats.cancelled >= 4, `${stats.cancelled} cancelled`);

  assert.ok((await Promise.all(doomed)).every((r) => !r.ok), 'the dead replica\'s streams were cut');
  assertAllWhole(await Promise.all(survivors), 'of the other replicas\' streams were not answered 200 and whole');
  assert.equal((await sim.stats()).completed, 12);
});

test('Redis that stops answering (SIGSTOP) is Redis away: each replica falls back within redis.timeout and no request waits for it', async () => {
  const sim = await run.sim(['--ttft', '20', '--itl', '10', '--tokens', '10']);  // ~0.1 s a stream
  const redis = await startRedis();
  const gws = await startReplicas(redis, models(['m', { name: 'up', base_url: sim.base, max_in_flight: 8, rpm: 60_000 }]),
    { timeout: '100ms' });
  redis.proc.kill('SIGSTOP');
  try {
    // Each request still answers within its usual time plus at most one redis.timeout (the call that
    // found Redis silent); from then on no call is made until Redis answers again.
    const results = await Promise.all(gws.flatMap((gw) => Array.from({ length: 6 }, () => stream(gw, 'm', 5_000))));
    assertAllWhole(results, 'streams were not answered 200 and whole while Redis was silent');
    const slowest = Math.max(...results.map((r) => r.ms));
    assert.ok(slowest < 2_000, `the slowest took ${slowest.toFixed(0)} ms`);
    for (const gw of gws) {
      const { redis: r } = await statusOf(gw);
      assert.equal(r.limits, 'local');
      assert.match(r.why, /100ms|no answer|timed? ?out/i);
    }
  } finally {
    redis.proc.kill('SIGCONT');
  }
  await eventually(async () => (await Promise.all(gws.map(limitsOf))).every((l) => l === 'shared'), { timeoutMs: 5_000 });
});
