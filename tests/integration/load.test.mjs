// ballast load against real simulators on 127.0.0.1: the sweep finds the knee of a capacity-8
// simulator and recommends it; an open-loop run sees the delay a pause really caused, where a
// closed-loop run barely sends during it; failures are counted by class and by ballast's code; the
// JSON follows its documented schema and the HTML stands alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { BIN, runBallast, runCommand, tempDir, stopAfterAll } from './lib/harness.mjs';

const { sim, serve } = stopAfterAll();

// `expectExit`: 1 for a run that breaks its SLO, as load exits then.
async function load(args, { expectExit = 0 } = {}) {
  const dir = tempDir();
  const json = path.join(dir, 'load.json');
  const html = path.join(dir, 'load.html');
  const r = await runBallast(['load', '--json', json, '--html', html, ...args], { timeoutMs: 120_000, expectExit });
  return { ...r, report: fs.existsSync(json) ? JSON.parse(fs.readFileSync(json, 'utf8')) : null, html };
}

// The documented schema (docs/load.md), checked key by key and type by type.
const percentilesShape = { p50: 'number', p90: 'number', p99: 'number', max: 'number', mean: 'number' };
const runShape = {
  mode: 'string', load: 'number', duration_s: 'number', requests: 'number', ok: 'number', error_rate: 'number',
  ok_in_window: 'number', open_at_end: 'number', refused: 'number', refused_wait_s: 'number', sustained_rps: 'number', throughput_rps: 'number', tokens_per_s: 'number', latency_ms: percentilesShape, ttft_ms: [percentilesShape, null],
  itl_ms: [percentilesShape, null], errors: 'object', statuses: 'object', codes: 'object', within_slo: 'boolean',
  breach: 'string', timeline: 'array',
};
const reportShape = {
  schema: 'string', target: 'string', model: 'string', stream: 'boolean', sweep: 'boolean',
  command: 'string', version: 'string', started: 'string', wall_s: 'number',
  slo: { ttft_ms: 'number', latency_ms: 'number', max_error_rate: 'number' }, runs: 'array',
  knee: [{ load: 'number', capped: 'boolean', rule: 'string' }, null], recommendation: 'any',
};
function checkShape(value, shape, where) {
  if (shape === 'any') return;
  if (Array.isArray(shape)) {
    const errors = [];
    for (const s of shape) {
      if (s === null && value === null) return;
      if (s === null) continue;
      try { checkShape(value, s, where); return; } catch (e) { errors.push(e.message); }
    }
    assert.fail(`${where}: ${errors.join('; ') || 'not null'}`);
  }
  if (typeof shape === 'string') {
    if (shape === 'array') assert.ok(Array.isArray(value), `${where} is an array`);
    else assert.equal(typeof value, shape, `${where} is a ${shape}`);
    return;
  }
  assert.equal(typeof value, 'object', `${where} is an object`);
  assert.deepEqual(Object.keys(value).sort(), Object.keys(shape).sort(), `${where} has exactly its keys`);
  for (const [k, s] of Object.entries(shape)) checkShape(value[k], s, `${where}.${k}`);
}
function checkReport(report) {
  checkShape(report, reportShape, 'report');
  assert.equal(report.schema, 'ballast.load/2');
  assert.match(report.started, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.match(report.command, / load /);
  report.runs.forEach((r, i) => {
    checkShape(r, runShape, `runs[${i}]`);
    r.timeline.forEach((t, j) => checkShape(t, { second: 'number', sent: 'number', ok: 'number', errors: 'number',
      done: 'number', p50_ms: 'number', p99_ms: 'number', max_ms: 'number' }, `runs[${i}].timeline[${j}]`));
  });
}

test('the sweep finds the knee of a capacity-8 simulator (±25%) and recommends it', async () => {
  const s = await sim(['--capacity', '8', '--ttft', '50', '--itl', '5', '--tokens', '10']);
  const r = await load(['--target', s.base, '--model', 'sim', '--sweep', '--duration', '1.5', '--slo-latency', '150']);
  assert.equal(r.code, 0, r.stderr);
  checkReport(r.report);
  const knee = r.report.knee.load;
  assert.ok(knee >= 6 && knee <= 10, `knee at ${knee}`);
  assert.equal(r.report.recommendation.max_in_flight, knee);
  assert.match(r.report.recommendation.snippets.ballast, new RegExp(`max_in_flight: ${knee}`));
  assert.match(r.report.recommendation.snippets.langchain, new RegExp(`"max_concurrency": ${knee}`));
  assert.match(r.report.recommendation.snippets.asyncio, new RegExp(`Semaphore\\(${knee}\\)`));
  assert.match(r.stdout, new RegExp(`knee: concurrency ${knee}`));
  // Beyond the knee the runs broke the SLO, at and below it they did not.
  for (const run of r.report.runs) assert.equal(run.within_slo, run.load <= knee, `load ${run.load}`);
  // No progress line when stderr is not a terminal.
  assert.doesNotMatch(r.stderr, /in flight/);
  // The HTML stands alone: plots inline, nothing fetched.
  const html = fs.readFileSync(r.html, 'utf8');
  assert.ok((html.match(/<svg /g) || []).length >= 4, 'four plots');
  assert.doesNotMatch(html.replace(/xmlns="http:\/\/www\.w3\.org\/2000\/svg"/g, ''), /(src|href)=|https?:\/\/(?!127\.0\.0\.1)/);
});

// Pauses the simulator (SIGSTOP) from 2 s to 4 s into a 6 s run: the kernel still takes connections
// and requests; nothing answers until SIGCONT.
async function pausedRun(s, args) {
  const dir = tempDir();
  const json = path.join(dir, 'load.json');
  // The pause may break the SLO the run sets itself from its first second: exit 1 is an answer here.
  const run = runBallast(['load', '--target', s.base, '--model', 'sim', '--duration', '6', '--json', json, ...args],
    { expectExit: [0, 1] });
  await new Promise((r) => setTimeout(r, 2000));
  s.proc.kill('SIGSTOP');
  await new Promise((r) => setTimeout(r, 2000));
  s.proc.kill('SIGCONT');
  await run;
  return JSON.parse(fs.readFileSync(json, 'utf8'));
}

test('open loop: requests due during a 2 s pause report the delay they really saw; closed loop barely sends then', async () => {
  const s = await sim(['--ttft', '5', '--tokens', '4']);
  const open = await pausedRun(s, ['--rate', '100']);
  checkReport(open);
  const run = open.runs[0];
  assert.equal(run.ok, run.requests, 'every request was answered in the end');
  assert.ok(run.requests >= 500, `${run.requests} requests over 6 s at 100/s`);
  // A third of the requests were due during the pause and waited up to 2 s: p99 shows it.
  assert.ok(run.latency_ms.p99 >= 1500, `open-loop p99 ${run.latency_ms.p99} ms`);
  assert.ok(run.latency_ms.max >= 1800 && run.latency_ms.max <= 2600, `max ${run.latency_ms.max} ms`);
  // And so does the timeline: the seconds of the pause, by when requests were due.
  const paused = run.timeline.filter((t) => t.second >= 2 && t.second < 4);
  assert.ok(paused.every((t) => t.sent >= 60), `sent during the pause: ${paused.map((t) => t.sent)}`);
  assert.ok(paused.some((t) => t.max_ms >= 1500), `max latency during the pause: ${paused.map((t) => t.max_ms)}`);
  assert.ok(run.timeline[0].p99_ms < 100 && run.timeline.at(-1).p99_ms < 100, 'before and after the pause: fast');

  // The generator's clock starts a little after the process (more so in a sanitizer build), so
  // the pause may straddle seconds 1 and 3 of its timeline; second 2 lies wholly inside it.
  const closed = await pausedRun(s, ['--concurrency', '4']);
  const c = closed.runs[0];
  const duringPause = c.timeline[2].sent;
  const unpaused = Math.max(c.timeline[0].sent, c.timeline[5].sent);
  assert.ok(duringPause <= 4, `closed loop sent ${duringPause} requests in the paused second (${unpaused} in a second without the pause)`);
  assert.ok(unpaused > 50 * Math.max(1, duringPause), 'almost nothing, against what it sends otherwise');
});

test('failures are counted by class, with ballast\'s own codes when the target is ballast', async () => {
  const s = await sim(['--ttft', '200', '--tokens', '2']);
  const gw = await serve({ models: [{ name: 'sim', endpoints: [{ base_url: s.base, max_in_flight: 1, queue: 0 }] }] });
  const r = await load(['--target', gw.base, '--model', 'sim', '--concurrency', '4', '--duration', '1'], { expectExit: 1 });
  assert.equal(r.code, 1, 'the run broke the default SLO (1% errors)');
  const run = r.report.runs[0];
  assert.ok(run.codes.queue_full > 0, JSON.stringify(run.codes));
  assert.equal(run.statuses['503'], run.codes.queue_full);
  // ballast's refusals carry Retry-After: counted as refused, with the wait they asked for.
  assert.equal(run.errors.refused, run.codes.queue_full);
  assert.equal(run.refused, run.codes.queue_full);
  assert.ok(run.refused_wait_s >= run.refused, `${run.refused_wait_s} s asked by ${run.refused} refusals`);
  assert.ok(run.ok >= 3);

  const dead = await load(['--target', 'http://127.0.0.1:1/v1', '--model', 'sim', '--concurrency', '2', '--duration', '0.5'], { expectExit: 1 });
  assert.ok(dead.report.runs[0].errors.connect_refused > 0);
  assert.equal(dead.report.runs[0].ok, 0);

  const slow = await sim(['--fault', 'slow-first-token=3000', '--tokens', '2']);
  const timeouts = await load(['--target', slow.base, '--model', 'sim', '--stream', '--concurrency', '2', '--duration', '0.5', '--timeout', '0.5'], { expectExit: 1 });
  assert.ok(timeouts.report.runs[0].errors.client_timeout >= 2);

  const cut = await sim(['--fault', 'cut-after=2', '--tokens', '5']);
  const truncated = await load(['--target', cut.base, '--model', 'sim', '--stream', '--concurrency', '2', '--duration', '0.5'], { expectExit: 1 });
  assert.ok(truncated.report.runs[0].errors.truncated > 0);
});

// Each of these fails the way an SDK would see it fail; none may count as ok.
test('what the client got: an error event, a stream without its end and a 200 that is not JSON are failures', async () => {
  const run = async (target, args) => (await load(['--target', target, '--model', 'sim', '--concurrency', '2', '--duration', '0.5', ...args], { expectExit: 1 })).report.runs[0];

  // A stream cut after 3 tokens: directly it is truncated; through ballast, which ends it with an
  // SSE error event naming the cause, it is a stream_error with ballast's code.
  const cut = await sim(['--fault', 'cut-after=3', '--tokens', '10', '--itl', '2']);
  const direct = await run(cut.base, ['--stream']);
  assert.equal(direct.ok, 0);
  assert.equal(direct.errors.truncated, direct.requests, JSON.stringify(direct.errors));
  const gw = await serve({ models: [{ name: 'sim', endpoints: [{ base_url: cut.base }] }] });
  const through = await run(gw.base, ['--stream']);
  assert.equal(through.ok, 0, JSON.stringify(through));
  assert.equal(through.errors.stream_error, through.requests, JSON.stringify(through.errors));
  assert.equal(through.codes.upstream_reset, through.requests, JSON.stringify(through.codes));
  assert.equal(through.error_rate, 1);

  // The upstream's own error event, mid-stream.
  const errored = await sim(['--fault', 'error-event=2', '--tokens', '5']);
  const e = await run(errored.base, ['--stream']);
  assert.equal(e.errors.stream_error, e.requests, JSON.stringify(e.errors));

  // Every chunk and its finish_reason but no [DONE]: complete, as the SDKs judge it (so ok here).
  const noDone = await sim(['--fault', 'no-done', '--tokens', '3']);
  const n = (await load(['--target', noDone.base, '--model', 'sim', '--concurrency', '2', '--duration', '0.5', '--stream'])).report.runs[0];
  assert.equal(n.ok, n.requests, JSON.stringify(n.errors));

  // An event whose data is not JSON: the SDKs raise on it, so the stream is garbled.
  const mangled = await sim(['--fault', 'malformed-at=2', '--tokens', '5']);
  const m = await run(mangled.base, ['--stream']);
  assert.equal(m.errors.truncated, m.requests, JSON.stringify(m.errors));

  // A 200 whose body is not JSON.
  const garbled = await sim(['--fault', 'malformed', '--tokens', '3']);
  const g = await run(garbled.base, []);
  assert.equal(g.errors.bad_body, g.requests, JSON.stringify(g.errors));
  assert.equal(g.ok, 0);
});

test('throughput counts the answers completed within the window; requests still open are reported apart', async () => {
  // Two generations at once, ~100 ms each: ~20 answers a second, whatever the offered rate.
  const s = await sim(['--capacity', '2', '--ttft', '50', '--itl', '5', '--tokens', '10']);
  const r = await load(['--target', s.base, '--model', 'sim', '--rate', '40', '--duration', '2'], { expectExit: [0, 1] });
  const run = r.report.runs[0];
  assert.ok(run.throughput_rps <= 21.5, `throughput ${run.throughput_rps} req/s from a server that serves 20/s`);
  assert.ok(run.throughput_rps >= 15, `throughput ${run.throughput_rps} req/s`);
  assert.equal(run.throughput_rps, run.ok_in_window / run.duration_s);
  assert.ok(run.open_at_end >= 10, `${run.open_at_end} requests were still queued when the window closed`);
  assert.equal(run.ok, run.requests, 'each was answered in the end');
  assert.match(r.stdout, new RegExp(`open at end ${run.open_at_end}`));
});

test('a closed loop waits as a refusal\'s Retry-After says, unless told not to', async () => {
  const s = await sim(['--ttft', '100', '--tokens', '2']);
  const gw = await serve({ models: [{ name: 'sim', endpoints: [{ base_url: s.base, max_in_flight: 2, queue: 0 }] }] });
  const args = ['--target', gw.base, '--model', 'sim', '--concurrency', '16', '--duration', '1.5'];
  const polite = (await load(args, { expectExit: 1 })).report.runs[0];
  // 14 workers refused at once, each told when a slot frees (a few hundred ms): a few refusals
  // each over the run, not a storm.
  assert.ok(polite.refused >= 14 && polite.refused <= 4 * 16, `${polite.refused} refusals`);
  assert.ok(polite.refused_wait_s >= 0.1 * polite.refused, `waits asked: ${polite.refused_wait_s} s`);
  assert.ok(polite.ok >= 10, `${polite.ok} answers`);
  const storm = (await load([...args, '--no-respect-retry-after'], { expectExit: 1 })).report.runs[0];
  assert.ok(storm.refused > 20 * polite.refused, `without waiting: ${storm.refused} refusals against ${polite.refused}`);

  // A wait past the SDKs' 60 s cap is reported as asked, and waited for only until the run ends.
  const far = await sim(['--fault', 'status=429,retry-after=3600']);
  const started = Date.now();
  const r = await load(['--target', far.base, '--model', 'sim', '--concurrency', '2', '--duration', '1'], { expectExit: 1 });
  assert.ok(Date.now() - started < 10_000, 'the run ends on time');
  const told = r.report.runs[0];
  assert.equal(told.refused, 2, 'one refusal per worker, then each waits');
  assert.equal(told.refused_wait_s, 7200);
  assert.match(r.stdout, /\[refused 2; codes: rate_limit_exceeded 2; Retry-After 3600\.0 s on average\]/);
});

test('usage errors exit 2 and name what is wrong', async () => {
  for (const [args, words] of [
    [['--target', ''], /--target : must start with http/],
    [['--target', 'ftp://127.0.0.1:1/v1'], /must start with http/],
    [['--target', 'http://127.0.0.1:99999/v1'], /port outside/],
    [['--target', 'http://127.0.0.1:1/v1', '--max-tokens', '-5'], /--max-tokens/],
    [['--target', 'http://127.0.0.1:1/v1', '--prompt-tokens', '0'], /--prompt-tokens/],
  ]) {
    const r = await runBallast(['load', '--model', 'sim', '--concurrency', '1', ...args], { expectExit: 2 });
    assert.match(r.stderr, words, args.join(' '));
  }
});

test('a sweep that finds no load within the SLO exits 1', async () => {
  const r = await load(['--target', 'http://127.0.0.1:1/v1', '--model', 'sim', '--sweep', '--duration', '0.3'], { expectExit: 1 });
  assert.match(r.stdout, /no knee/);
  assert.equal(r.report.knee, null);
});

// Without an SLO the knee is where more concurrency stops adding throughput (docs/load.md): the
// capacity of a simulator that runs that many generations at once.
for (const capacity of [4, 8, 16]) {
  test(`without an SLO, the default sweep recommends the capacity of a --capacity ${capacity} simulator`, async () => {
    // Answers of ~350 ms, as an LLM's are long against a client's own cost per request. A sanitizer
    // build on a busy machine spends ~10 ms per request outside the slot (in the generator and the
    // simulator's HTTP), more at 16 streams than at 4: against answers of ~150 ms that is 6% of a
    // slot, and capacity + 1, whose queue hides it, then adds more than 5% of throughput.
    const s = await sim(['--capacity', String(capacity), '--ttft', '300', '--itl', '5', '--tokens', '10']);
    const r = await load(['--target', s.base, '--model', 'sim', '--sweep', '--duration', '1.5']);
    assert.equal(r.code, 0, r.stderr);
    checkReport(r.report);
    assert.equal(r.report.knee.rule, 'throughput');
    assert.equal(r.report.knee.load, capacity, r.stdout);
    assert.equal(r.report.recommendation.max_in_flight, capacity);
    assert.match(r.stdout, new RegExp(`knee: concurrency ${capacity} `));
  });
}

test('on a terminal, a live progress line: rate, in flight, ok, errors, p50 and p99 so far', async () => {
  const s = await sim(['--ttft', '5', '--tokens', '4']);
  // script(1) (util-linux, always on Debian) gives the run a terminal.
  const command = `${BIN} load --target ${s.base} --model sim --concurrency 2 --duration 2.5`;
  const { stdout: out } = await runCommand('script', ['-qec', command, '/dev/null'], { timeoutMs: 30_000 });
  assert.match(out, /\r\x1b\[Kconcurrency 2 +\d+ req\/s  in flight 2  ok \d+  errors 0  p50 [\d.]+ ms  p99 [\d.]+ ms/);
  assert.match(out, /concurrency 2 +[\d.]+ req\/s  ok +\d+/, 'then the run\'s line');
});

test('streams: time to first token, inter-token latency and tokens per second', async () => {
  const s = await sim(['--ttft', '100', '--itl', '10', '--tokens', '10']);
  const r = await load(['--target', s.base, '--model', 'sim', '--stream', '--concurrency', '2', '--duration', '1.5']);
  assert.equal(r.code, 0, r.stderr);
  const run = r.report.runs[0];
  assert.ok(run.ttft_ms.p50 >= 95 && run.ttft_ms.p50 <= 130, `ttft p50 ${run.ttft_ms.p50}`);
  assert.ok(run.itl_ms.p50 >= 8 && run.itl_ms.p50 <= 20, `itl p50 ${run.itl_ms.p50}`);
  assert.ok(run.tokens_per_s > 50, `tokens/s ${run.tokens_per_s}`);
});
