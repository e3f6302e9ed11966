// ballast load's HTML report as a person sees it: a streamed sweep and a single run against real
// simulators on 127.0.0.1, each page rendered by headless Chromium (a screenshot, then the DOM it
// built). The page must render; every plot must hold data; the knee and the SLO must be drawn where
// the report has them; the header must say what was run; nothing may read "–", NaN or inf; what the
// user typed must come back as text. The screenshots are kept in $BALLAST_TEST_OUT, by default
// test-out/ next to the ballast binary (the build directory).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BIN, runBallast, tempDir, stopAfterAll, eventually } from './lib/harness.mjs';

const { sim } = stopAfterAll();
const OUT = process.env.BALLAST_TEST_OUT ?? path.join(path.dirname(BIN), 'test-out');
const CHROMIUM = process.env.CHROMIUM ?? 'chromium';
// Chromium renders one of these pages in 1 to 2 s here; beyond this it hangs.
const CHROMIUM_TIMEOUT_MS = 30_000;

// Headless Chromium on FILE, with a profile and HOME of its own in a temporary directory. It runs in
// a process group of its own (its PID is the group's id), so that when it hangs, or leaves a helper
// behind, the browser and its helpers are stopped together, and nothing else.
function chromium(args) {
  const home = tempDir();
  const proc = spawn(CHROMIUM, [
    '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-extensions', '--no-first-run',
    `--user-data-dir=${path.join(home, 'profile')}`, ...args,
  ], {
    env: { ...process.env, HOME: home, XDG_CONFIG_HOME: path.join(home, '.config'), XDG_CACHE_HOME: path.join(home, '.cache') },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const group = proc.pid;
  const alive = () => {
    try { process.kill(-group, 0); return true; } catch { return false; }
  };
  let stdout = '';
  let stderr = '';
  proc.stdout.setEncoding('utf8');
  proc.stderr.setEncoding('utf8');
  proc.stdout.on('data', (d) => { stdout += d; });
  proc.stderr.on('data', (d) => { stderr += d; });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try { process.kill(-group, 'SIGKILL'); } catch { /* already gone */ }
  }, CHROMIUM_TIMEOUT_MS);
  return new Promise((resolve) => {
    proc.on('error', (e) => {
      clearTimeout(timer);
      resolve({ code: null, error: `${CHROMIUM} could not be started (scripts/install-deps.sh test installs it): ${e.message}`, stdout, stderr });
    });
    proc.on('close', async (code, signal) => {
      clearTimeout(timer);
      // The crash handler outlives the browser by a moment; give the group 5 s to empty, then end it.
      if (group) {
        await eventually(() => !alive(), { timeoutMs: 5_000, everyMs: 50 }).catch(() => {
          try { process.kill(-group, 'SIGKILL'); } catch { /* gone meanwhile */ }
        });
      }
      fs.rmSync(home, { recursive: true, force: true });
      resolve({ code, signal, timedOut, stdout, stderr });
    });
  });
}

// Renders HTML twice: a screenshot into OUT/NAME.png, and the DOM Chromium built from the page.
async function render(html, name) {
  fs.mkdirSync(OUT, { recursive: true });
  const png = path.join(OUT, `${name}.png`);
  fs.rmSync(png, { force: true });
  const url = `file://${html}`;
  const shot = await chromium([`--screenshot=${png}`, '--window-size=1200,4000', url]);
  assert.equal(shot.error, undefined, shot.error);
  assert.ok(!shot.timedOut, `chromium --screenshot hung; killed after ${CHROMIUM_TIMEOUT_MS} ms`);
  assert.equal(shot.code, 0, `chromium --screenshot exited with ${shot.signal ?? shot.code}:\n${shot.stderr.slice(-2000)}`);
  assert.ok(fs.existsSync(png), `no screenshot written:\n${shot.stderr.slice(-2000)}`);
  const image = fs.readFileSync(png);
  // A PNG of the size asked for; a blank page of that size is about 22 KB.
  assert.equal(image.toString('latin1', 1, 4), 'PNG');
  assert.deepEqual([image.readUInt32BE(16), image.readUInt32BE(20)], [1200, 4000], 'screenshot size');
  assert.ok(image.length > 60_000, `screenshot of ${image.length} bytes: an almost empty page`);

  const dump = await chromium(['--dump-dom', url]);
  assert.equal(dump.error, undefined, dump.error);
  assert.ok(!dump.timedOut, `chromium --dump-dom hung; killed after ${CHROMIUM_TIMEOUT_MS} ms`);
  assert.equal(dump.code, 0, `chromium --dump-dom exited with ${dump.signal ?? dump.code}:\n${dump.stderr.slice(-2000)}`);
  assert.match(dump.stdout, /<\/html>\s*$/, 'the whole DOM');
  return { dom: dump.stdout, png };
}

// The page's figures as Chromium parsed them: {id: svg}.
function figures(dom) {
  const found = {};
  for (const m of dom.matchAll(/<figure id="([^"]+)">([\s\S]*?)<\/figure>/g)) found[m[1]] = m[2];
  return found;
}

// A plot holds data when a line has two points or a bar has height.
function hasData(svg) {
  for (const m of svg.matchAll(/<polyline class="series"[^>]*\spoints="([^"]*)"/g)) {
    if (m[1].trim().split(/\s+/).length >= 2) return true;
  }
  for (const m of svg.matchAll(/<rect class="bar"[^>]*\sheight="([^"]*)"/g)) {
    if (Number(m[1]) > 0) return true;
  }
  return false;
}

// A labelled rule (class "knee" or "slo"): its label, or null.
function rule(svg, cls) {
  const m = svg.match(new RegExp(`<g class="${cls}"><line [^>]*></line><text [^>]*>([^<]*)</text></g>`));
  return m ? m[1] : null;
}

function text(dom) {
  return dom.replace(/<style>[\s\S]*?<\/style>/g, '').replace(/<[^>]+>/g, ' ')
    .replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&');
}

// What every page must be: no placeholder, no non-number, nothing fetched, every plot with data.
function checkPage(dom, report) {
  const shown = text(dom);
  assert.doesNotMatch(shown, /–/, 'a "–" placeholder');
  assert.doesNotMatch(shown, /\b(nan|inf|infinity)\b/i, 'NaN or inf on the page');
  assert.doesNotMatch(dom, /\b(nan|inf|infinity)\b/i, 'NaN or inf in an attribute');
  assert.doesNotMatch(dom, /<script|\s(src|href)=/i, 'a script, or something fetched');
  const figs = figures(dom);
  assert.equal((dom.match(/<svg /g) || []).length, Object.keys(figs).length, 'every plot is a figure');
  for (const [id, svg] of Object.entries(figs)) assert.ok(hasData(svg), `plot ${id} has no data`);

  // The header says what was run: when, with which ballast, the exact command, for how long.
  const started = report.started.replace('T', ' ').replace('Z', ' UTC');
  assert.ok(shown.includes(started), `the start, ${started}`);
  assert.ok(shown.includes(`ballast ${report.version}`), `the version, ${report.version}`);
  assert.ok(shown.includes(report.command), `the command, ${report.command}`);
  const durations = [...new Set(report.runs.map((r) => r.duration_s))];
  assert.equal(durations.length, 1);
  assert.match(shown, new RegExp(`measured over ${durations[0]} s`));
  assert.ok(shown.includes(`${report.wall_s.toFixed(1)} s wall time in all`), `the wall time, ${report.wall_s} s`);
  assert.match(shown, /SLO: [^.]*at most \d+\.\d% of requests failing/, 'the SLO in words');
  return { figs, shown };
}

async function loadReport(args, name, { expectExit = 0 } = {}) {
  const dir = tempDir();
  const json = path.join(dir, `${name}.json`);
  const html = path.join(dir, `${name}.html`);
  const r = await runBallast(['load', ...args, '--html', html, '--json', json], { timeoutMs: 45_000, expectExit });
  assert.ok(fs.existsSync(html), `no HTML written:\n${r.stdout}\n${r.stderr}`);
  return { ...r, html, report: JSON.parse(fs.readFileSync(json, 'utf8')) };
}

test('a streamed sweep: plots against load with the knee and the SLO drawn, the knee run in detail', async () => {
  const s = await sim(['--capacity', '4', '--ttft', '20', '--itl', '5', '--tokens', '10']);
  const r = await loadReport(['--target', s.base, '--model', 'sim', '--stream', '--sweep', '--duration', '1'], 'load-report');
  assert.equal(r.code, 0, r.stderr);
  const { report } = r;
  assert.ok(report.runs.length >= 3, `${report.runs.length} runs`);
  assert.ok(report.knee, 'a capacity-4 simulator has a knee');

  const { dom } = await render(r.html, 'load-report');
  const { figs, shown } = checkPage(dom, report);
  const againstLoad = ['throughput', 'errors', 'ttft', 'latency', 'itl', 'tokens'];
  assert.deepEqual(Object.keys(figs).sort(), [...againstLoad, 'distribution', 'timeline'].sort());
  // The knee, on every plot against load, at the knee's load.
  for (const id of againstLoad) assert.equal(rule(figs[id], 'knee'), `knee ${report.knee.load}`, `the knee on ${id}`);
  // The SLO, on the plot of what it bounds: the error rate always, first token and latency when given.
  assert.match(rule(figs.errors, 'slo') ?? '', /^SLO ≤ \d+\.\d%$/);
  assert.equal(rule(figs.ttft, 'slo') !== null, report.slo.ttft_ms > 0, 'an SLO line on first token when it has one');
  assert.equal(rule(figs.latency, 'slo') !== null, report.slo.latency_ms > 0, 'an SLO line on latency when it has one');
  assert.equal(rule(figs.distribution, 'slo') !== null, report.slo.ttft_ms > 0);
  // How the knee was chosen, in words, and the throughput rule's two bounds drawn where they apply.
  if (report.knee.rule === 'throughput') {
    assert.match(shown, /No first-token or latency target was set/);
    assert.match(shown, /smallest load that reached 95% of the best throughput seen \(\d+ req\/s, at concurrency \d+\)/);
    assert.match(rule(figs.throughput, 'rule') ?? '', /^95% of best: \d+ req\/s$/);
    assert.match(rule(figs.latency, 'rule') ?? '', /^p50 limit, 1\.5× lightest: \d+ ms$/);
  } else {
    assert.equal(report.knee.rule, 'slo');
    assert.match(shown, /the highest load that stayed within the SLO/);
  }
  assert.match(shown, new RegExp(`Knee: concurrency ${report.knee.load}\\b`));
  // The knee's run in detail: its first-token times and its timeline, with both axes.
  assert.match(figs.distribution, /Time to first token at concurrency/);
  assert.match(figs.timeline, /latency of requests due that second \(ms\)/);
  assert.match(figs.timeline, /requests\/s/);
  // A row per run, the knee's marked; the stream's columns.
  const rows = dom.match(/<tr[\s>]/g).length;
  assert.ok(rows >= report.runs.length + 1, `${rows} rows for ${report.runs.length} runs`);
  assert.equal((dom.match(/<tr class="knee">/g) || []).length, 1, 'the knee row');
  assert.match(shown, /first token p99 ms/);
  assert.match(shown, /inter-token p99 ms/);
  assert.match(shown, /tokens\/s/);
});

test('a single run: its distribution and timeline, no plots against load; what the user typed comes back as text', async () => {
  const s = await sim(['--capacity', '4', '--ttft', '20', '--itl', '5', '--tokens', '10']);
  const model = 'sim<i>x</i>&"';
  const r = await loadReport(['--target', s.base, '--model', model, '--concurrency', '2', '--duration', '1',
    '--slo-latency', '500'], 'load-report-single');
  assert.equal(r.code, 0, r.stderr);
  const { report } = r;
  assert.equal(report.runs.length, 1);

  const { dom } = await render(r.html, 'load-report-single');
  const { figs, shown } = checkPage(dom, report);
  assert.deepEqual(Object.keys(figs).sort(), ['distribution', 'timeline']);
  assert.match(figs.distribution, /Latency at concurrency 2/);
  assert.equal(rule(figs.distribution, 'slo'), 'SLO 500 ms');
  assert.match(shown, /One run at concurrency 2: within the SLO/);
  assert.match(shown, /SLO: p99 latency ≤ 500 ms and at most 1\.0% of requests failing/);
  assert.doesNotMatch(dom, /class="knee"/);
  // The model name is shown as typed, and never became markup.
  assert.ok(shown.includes(model), 'the model name, as text');
  assert.doesNotMatch(dom, /<i>/);
});
