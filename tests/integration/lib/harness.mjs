// Starts real `ballast sim` and `ballast serve` processes on 127.0.0.1 (port 0: the kernel picks),
// reads the address each one logs, and stops them — only the processes this file started — failing the
// test file if any of them ended badly.
import { spawn } from 'node:child_process';
import { after } from 'node:test';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const BIN = process.env.BALLAST_BIN ?? path.resolve(here, '../../../build/ballast');

// Every process a test file starts goes through track(): when the file's tests are done, whatever still
// runs is stopped (SIGTERM, as an operator would), and the file fails if any process ended in a way
// nobody declared: a signal, an exit code other than the expected ones (0 unless `expectExit` says
// otherwise), a sanitizer report, or a hang (still running STOP_TIMEOUT_MS after SIGTERM, then killed).
// A leak found at exit or an abort while draining is a bug even when every assertion passed.
const STOP_TIMEOUT_MS = 10_000;
const tracked = [];
const failures = [];
const kept = [];  // what a test handed to stopAfterAll().keep() that is not a tracked process: servers of its own

after(async () => {
  for (const k of [...kept].reverse()) await k.stop();
  for (const p of [...tracked].reverse()) await p.stop();
  if (failures.length) {
    throw new Error(`${failures.length} process(es) started by this file ended badly:\n\n${failures.join('\n\n')}`);
  }
});

process.on('exit', () => {
  for (const p of tracked) {
    if (p.proc.exitCode === null && p.proc.signalCode === null) {
      console.error(`${p.name} was still running when the tests ended; killed`);
      try { p.proc.kill('SIGKILL'); } catch { /* already gone */ }
      process.exitCode = 1;
    }
  }
});

// A sanitizer's report, whatever the exit code that follows it.
const SANITIZER_REPORT = /^==\d+==ERROR: \w+Sanitizer|^\S+:\d+:\d+: runtime error: /m;

// Follows `proc` to its end. `expectExit`: the exit code or codes this process may end with (signals
// never pass). Returns the handle that stop() and `exited` ({code, signal}) are read from.
function track(proc, name, { expectExit = 0, stopTimeoutMs = STOP_TIMEOUT_MS } = {}) {
  const expected = [expectExit].flat();
  const handle = {
    name,
    proc,
    stdout: '',
    stderr: '',
    stopping: false,
    hung: false,
    exited: null,
    // SIGTERM (or `signal`), then up to stopTimeoutMs for the process to end by itself.
    async stop(signal = 'SIGTERM') {
      if (handle.stopping || proc.exitCode !== null || proc.signalCode !== null) return handle.exited;
      handle.stopping = true;
      proc.kill(signal);
      try { proc.kill('SIGCONT'); } catch { /* a paused process must see the signal too */ }
      const timer = setTimeout(() => {
        handle.hung = true;
        proc.kill('SIGKILL');
      }, stopTimeoutMs);
      const result = await handle.exited;
      clearTimeout(timer);
      return result;
    },
    // Ends the process with `signal` at once, as a crash a test stages (SIGKILL: no chance to clean
    // up); ending so is then declared, not a failure. Resolves once it has ended.
    async crash(signal = 'SIGKILL') {
      handle.crashedWith = signal;
      proc.kill(signal);
      return handle.exited;
    },
  };
  handle.exited = new Promise((resolve) => proc.on('close', (code, signal) => {
    const staged = signal !== null && signal === handle.crashedWith;
    const problem = handle.spawnError ? `could not be started: ${handle.spawnError}`
      : handle.hung ? `still running ${stopTimeoutMs} ms after SIGTERM; killed with SIGKILL`
      : signal && !staged ? `killed by ${signal}`
      : !staged && !expected.includes(code) ? `exited with ${code} (expected ${expected.join(' or ')})`
      : SANITIZER_REPORT.test(handle.stderr) || SANITIZER_REPORT.test(handle.stdout) ? `exited with ${code} after a sanitizer report`
      : null;
    if (problem) {
      const when = handle.stopping ? 'when stopped' : 'on its own';
      console.error(`${name}: ${problem} (${when})`);
      failures.push(`${name}\n  ${problem} (${when})\n${excerpt(handle.stderr)}`);
    }
    resolve({ code, signal });
  }));
  proc.on('error', (e) => { handle.spawnError = e.message; });
  proc.stdout?.setEncoding('utf8');
  proc.stderr?.setEncoding('utf8');
  proc.stdout?.on('data', (d) => { handle.stdout += d; });
  proc.stderr?.on('data', (d) => { handle.stderr += d; });
  tracked.push(handle);
  return handle;
}

// What a failure report shows of a process's stderr: a sanitizer report from its start, else the last lines.
function excerpt(stderr) {
  const lines = stderr.trimEnd().split('\n');
  const at = lines.findIndex((l) => SANITIZER_REPORT.test(l));
  const shown = at >= 0 ? lines.slice(at, at + 60) : lines.slice(-30);
  return shown.map((l) => `    | ${l}`).join('\n');
}

function describe(file, args) {
  const text = [path.basename(file), ...args].join(' ');
  return text.length > 200 ? `${text.slice(0, 200)}...` : text;
}

export function tempDir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'ballast-test-'));
}

// Spawns `ballast ...args` and, unless expectListen is false, resolves once it logs
// "listening on SCHEME://ADDR". `expectExit`: see track().
export async function startProcess(args, { env = {}, expectListen = true, expectExit = 0, stopTimeoutMs } = {}) {
  const proc = spawn(BIN, args, { env: { ...cleanEnv(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const handle = track(proc, describe(BIN, args), { expectExit, stopTimeoutMs });
  handle.accessLog = () => handle.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  if (!expectListen) return handle;
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`ballast ${args[0]} did not start:\n${handle.stderr}`)), 10_000);
    const onData = () => {
      const m = handle.stderr.match(/listening on (https?):\/\/(\S+)/);
      if (m) {
        handle.scheme = m[1];
        handle.address = m[2];
        handle.url = `${m[1]}://${m[2]}`;
        clearTimeout(timer);
        proc.stderr.off('data', onData);
        resolve();
      }
    };
    proc.stderr.on('data', onData);
    handle.exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`ballast ${args[0]} exited with ${signal ?? code}:\n${handle.stderr}`));
    });
  });
  return handle;
}

// Runs FILE ARGS to its end: {code, signal, stdout, stderr, ms}. One still running after timeoutMs
// is killed and counts as a failure, as does an exit code not in `expectExit` (0 unless given).
export function runCommand(file, args, { env = process.env, cwd, timeoutMs = 60_000, expectExit = 0 } = {}) {
  const started = performance.now();
  const proc = spawn(file, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  const handle = track(proc, describe(file, args), { expectExit });
  const timer = setTimeout(() => {
    handle.hung = true;
    proc.kill('SIGKILL');
  }, timeoutMs);
  return handle.exited.then(({ code, signal }) => {
    clearTimeout(timer);
    return { code, signal, stdout: handle.stdout, stderr: handle.stderr, ms: performance.now() - started };
  });
}

// Runs `ballast ARGS` to its end (doctor, load), with a clean environment plus `env`; see runCommand().
export function runBallast(args, { env = {}, ...options } = {}) {
  return runCommand(BIN, args, { env: { ...cleanEnv(), ...env }, ...options });
}

// A peer (nginx, tinyproxy, ...) in the foreground, followed like ballast's own processes; it too must
// exit 0 when stopped with SIGTERM.
export function startPeer(file, args, options = {}) {
  const proc = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  return track(proc, describe(file, args), options);
}

// The provider variables of the machine must not leak into a test's gateway. In a sanitizer build a
// report ends the process with SIGABRT, so it can never pass for an exit code a test expects (doctor's 1,
// a config error's 2); options already set in the environment come after, and win.
function cleanEnv() {
  const env = { ...process.env };
  for (const k of Object.keys(env)) {
    if (/^(OPENAI_|AZURE_OPENAI_)|_proxy$|_PROXY$/.test(k)) delete env[k];
  }
  env.ASAN_OPTIONS = ['abort_on_error=1', env.ASAN_OPTIONS].filter(Boolean).join(':');
  env.UBSAN_OPTIONS = ['abort_on_error=1:print_stacktrace=1', env.UBSAN_OPTIONS].filter(Boolean).join(':');
  return env;
}

export async function startSim(flags = [], options = {}) {
  const sim = await startProcess(['sim', '--listen', '127.0.0.1:0', ...flags], options);
  sim.base = `${sim.url}/v1`;
  sim.stats = async () => (await fetch(`${sim.url}/sim/stats`)).json();
  sim.setFaults = async (faults) =>
    (await fetch(`${sim.url}/sim/faults`, { method: 'POST', body: JSON.stringify({ faults }) })).json();
  return sim;
}

// `config` is an object written as YAML (JSON is YAML), with listen set to a free port.
export async function startServe(config, { args = [], ...options } = {}) {
  const dir = tempDir();
  const file = path.join(dir, 'ballast.yaml');
  fs.writeFileSync(file, JSON.stringify({ listen: '127.0.0.1:0', ...config }, null, 2));
  const gw = await startProcess(['serve', '--config', file, ...args], options);
  gw.base = `${gw.url}/v1`;
  gw.configFile = file;
  return gw;
}

// A model named `name` in front of one endpoint.
export function oneModel(name, endpoint, extra = {}) {
  return { models: [{ name, endpoints: [endpoint] }], ...extra };
}

export async function chat(base, body, headers = {}) {
  const started = performance.now();
  const res = await fetch(`${base}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], ...body }),
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* a stream, or not JSON */ }
  return { status: res.status, headers: res.headers, text, json, ms: performance.now() - started };
}

// Reads an SSE response to the end (or until the connection drops) and splits its events.
export async function streamChat(base, body, headers = {}) {
  const started = performance.now();
  const res = await fetch(`${base}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], stream: true, ...body }),
  });
  // Read chunk by chunk: a stream that is cut keeps what arrived before the cut.
  let text = '';
  let error = null;
  const decoder = new TextDecoder();
  try {
    for await (const chunk of res.body) text += decoder.decode(chunk, { stream: true });
  } catch (e) {
    error = e;
  }
  const events = text.split('\n\n').filter((e) => e.trim()).map((raw) => {
    const event = (raw.match(/^event: (.*)$/m) || [])[1] ?? null;
    const data = raw.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
    return { event, data, raw };
  });
  return { status: res.status, headers: res.headers, text, events, error, ms: performance.now() - started };
}

export function curl(args, options = {}) {
  return runCommand('curl', ['-sS', ...args], options);
}

// Waits until `fn()` returns a truthy value; a bounded poll for state another process reports.
export async function eventually(fn, { timeoutMs = 5_000, everyMs = 20 } = {}) {
  const until = performance.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (performance.now() > until) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

// A TCP listener that never accepts, its accept queue filled: further connects get no answer.
export async function unansweredListener() {
  const script = `
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(0)
fill = []
for _ in range(3):
    c = socket.socket(); c.setblocking(False)
    try: c.connect(s.getsockname())
    except BlockingIOError: pass
    fill.append(c)
print(s.getsockname()[1], flush=True)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
time.sleep(600)
`;
  const listener = startPeer('python3', ['-c', script.replace('import socket', 'import signal, socket')]);
  const line = await eventually(() => listener.stdout.includes('\n') && listener.stdout);
  listener.port = Number(line.trim());
  return listener;
}

// A port the kernel just handed out and took back: free, for a peer that cannot take port 0.
export function freePort() {
  return new Promise((resolve) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// Waits until something accepts connections on 127.0.0.1:port.
export function waitForPort(port) {
  return eventually(() => new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1', () => { c.destroy(); resolve(true); });
    c.on('error', () => resolve(false));
  }), { everyMs: 50 });
}

// tinyproxy in the foreground on a free port: {url, port, stop()}. `extra` lines go into its config.
export async function startTinyproxy(extra = []) {
  const dir = tempDir();
  const port = await freePort();
  const conf = path.join(dir, 'tinyproxy.conf');
  fs.writeFileSync(conf, [`Port ${port}`, 'Listen 127.0.0.1', 'Timeout 30', 'Allow 127.0.0.1', 'LogLevel Error', ...extra].join('\n') + '\n');
  const proxy = startPeer('tinyproxy', ['-d', '-c', conf]);
  await waitForPort(port);
  proxy.port = port;
  proxy.url = `http://127.0.0.1:${port}`;
  return proxy;
}

// nginx in the foreground, speaking TLS and HTTP/2 on a free port and proxying to `address` (HOST:PORT,
// plain HTTP/1.1), with a self-signed certificate: {port, base, cert, accessLog(), stop()}. Its access
// log has one line per request: the protocol and the status ("HTTP/2.0 200").
export async function startTlsProxy(address) {
  const { dir, cert } = await selfSignedCert();
  const port = await freePort();
  fs.writeFileSync(path.join(dir, 'nginx.conf'), `
user root;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
events {}
http {
  log_format proto '$server_protocol $status';
  access_log ${dir}/access.log proto;
  client_body_temp_path ${dir}; proxy_temp_path ${dir}; fastcgi_temp_path ${dir}; uwsgi_temp_path ${dir}; scgi_temp_path ${dir};
  upstream backend { server ${address}; keepalive 8; }
  server {
    listen 127.0.0.1:${port} ssl http2;
    ssl_certificate ${dir}/cert.pem;
    ssl_certificate_key ${dir}/key.pem;
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_buffering off; }
  }
}`);
  const nginx = startPeer('nginx', ['-c', path.join(dir, 'nginx.conf'), '-g', 'daemon off;']);
  await waitForPort(port);
  nginx.port = port;
  nginx.base = `https://127.0.0.1:${port}/v1`;
  nginx.cert = cert;
  nginx.accessLog = () => {
    const file = path.join(dir, 'access.log');
    return fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim().split('\n').filter(Boolean) : [];
  };
  return nginx;
}

// For a test file: simulators and gateways that live until the file's tests are done. Every process is
// stopped then anyway (see track()); keep() stays for the callers that name what they keep.
export function stopAfterAll() {
  // Processes are stopped anyway (see track()); anything else kept (a test's own HTTP server) is
  // stopped first, when the file's tests are done.
  const keep = (p) => {
    if (!tracked.includes(p)) kept.push(p);
    return p;
  };
  return {
    keep,
    sim: (flags, options) => startSim(flags, options),
    serve: (config, options) => startServe(config, options),
  };
}

// A self-signed certificate for 127.0.0.1 and localhost, valid for a day: {dir, cert, key}.
export async function selfSignedCert() {
  const dir = tempDir();
  await openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'key.pem', '-out', 'cert.pem', '-days', '1',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], dir);
  return { dir, cert: path.join(dir, 'cert.pem'), key: path.join(dir, 'key.pem') };
}

export async function openssl(args, cwd) {
  const r = await runCommand('openssl', args, { cwd });
  if (r.code !== 0) throw new Error(r.stderr);
  return r.stdout;
}
