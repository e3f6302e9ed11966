// Starts real `ballast sim` and `ballast serve` processes on 127.0.0.1 (port 0: the kernel picks),
// reads the address each one logs, and stops them — only the processes this file started.
import { spawn, execFile } from 'node:child_process';
import { once } from 'node:events';
import { after } from 'node:test';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const BIN = process.env.BALLAST_BIN ?? path.resolve(here, '../../../build/ballast');

const started = new Set();
process.on('exit', () => {
  for (const p of started) {
    try { p.kill('SIGKILL'); } catch { /* already gone */ }
  }
});

export function tempDir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'ballast-test-'));
}

// Spawns `ballast ...args` and resolves once it logs "listening on SCHEME://ADDR".
export async function startProcess(args, { env = {}, expectListen = true } = {}) {
  const proc = spawn(BIN, args, {
    env: { ...cleanEnv(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.add(proc);
  const handle = {
    proc,
    stdout: '',
    stderr: '',
    exited: new Promise((resolve) => proc.on('exit', (code, signal) => {
      started.delete(proc);
      // A crash (a sanitizer report, an abort) must be seen, not just the tests it breaks.
      if (!handle.stopping && (signal || (code !== 0 && code !== 2))) {
        console.error(`ballast ${args[0]} died (${signal ?? `exit ${code}`}):\n${handle.stderr}`);
      }
      resolve({ code, signal });
    })),
    accessLog() {
      return handle.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
    },
    async stop(signal = 'SIGTERM') {
      handle.stopping = true;
      if (proc.exitCode !== null || proc.signalCode !== null) return handle.exited;
      proc.kill(signal);
      return handle.exited;
    },
  };
  proc.stdout.setEncoding('utf8');
  proc.stderr.setEncoding('utf8');
  proc.stdout.on('data', (d) => { handle.stdout += d; });
  if (!expectListen) {
    proc.stderr.on('data', (d) => { handle.stderr += d; });
    return handle;
  }
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`ballast ${args[0]} did not start:\n${handle.stderr}`)), 10_000);
    proc.stderr.on('data', (d) => {
      handle.stderr += d;
      const m = handle.stderr.match(/listening on (https?):\/\/(\S+)/);
      if (m && !handle.address) {
        handle.scheme = m[1];
        handle.address = m[2];
        handle.url = `${m[1]}://${m[2]}`;
        clearTimeout(timer);
        resolve();
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`ballast ${args[0]} exited with ${code}:\n${handle.stderr}`));
    });
  });
  return handle;
}

// The provider variables of the machine must not leak into a test's gateway.
function cleanEnv() {
  const env = { ...process.env };
  for (const k of Object.keys(env)) {
    if (/^(OPENAI_|AZURE_OPENAI_)|_proxy$|_PROXY$/.test(k)) delete env[k];
  }
  return env;
}

export async function startSim(flags = []) {
  const sim = await startProcess(['sim', '--listen', '127.0.0.1:0', ...flags]);
  sim.base = `${sim.url}/v1`;
  sim.stats = async () => (await fetch(`${sim.url}/sim/stats`)).json();
  sim.setFaults = async (faults) =>
    (await fetch(`${sim.url}/sim/faults`, { method: 'POST', body: JSON.stringify({ faults }) })).json();
  return sim;
}

// `config` is an object written as YAML (JSON is YAML), with listen set to a free port.
export async function startServe(config, { env = {}, args = [] } = {}) {
  const dir = tempDir();
  const file = path.join(dir, 'ballast.yaml');
  fs.writeFileSync(file, JSON.stringify({ listen: '127.0.0.1:0', ...config }, null, 2));
  const gw = await startProcess(['serve', '--config', file, ...args], { env });
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

export function curl(args) {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', ...args], { encoding: 'utf8' }, (err, stdout, stderr) =>
      resolve({ code: err ? err.code : 0, stdout, stderr }));
  });
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
time.sleep(600)
`;
  const proc = spawn('python3', ['-c', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  started.add(proc);
  const [line] = await once(proc.stdout, 'data');
  return {
    port: Number(String(line).trim()),
    stop() { proc.kill('SIGKILL'); started.delete(proc); },
  };
}

// Runs `ballast ARGS` to its end (doctor), with a clean environment plus `env`: {code, stdout, stderr, ms}.
export function runBallast(args, { env = {}, timeoutMs = 60_000 } = {}) {
  const started = performance.now();
  return new Promise((resolve) => {
    execFile(BIN, args, { env: { ...cleanEnv(), ...env }, encoding: 'utf8', timeout: timeoutMs }, (err, stdout, stderr) =>
      resolve({ code: err ? err.code : 0, stdout, stderr, ms: performance.now() - started }));
  });
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
  const proc = spawn('tinyproxy', ['-d', '-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  started.add(proc);
  await waitForPort(port);
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    stop() { proc.kill('SIGTERM'); started.delete(proc); },
  };
}

// For a test file: starts simulators and gateways, and stops them, and anything handed to keep(),
// when the file's tests are done.
export function stopAfterAll() {
  const running = [];
  after(async () => {
    for (const p of running.reverse()) await p.stop();
  });
  const keep = (p) => { running.push(p); return p; };
  return {
    keep,
    sim: async (flags) => keep(await startSim(flags)),
    serve: async (config, options) => keep(await startServe(config, options)),
  };
}

// A self-signed certificate for 127.0.0.1 and localhost, valid for a day: {dir, cert, key}.
export async function selfSignedCert() {
  const dir = tempDir();
  await openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'key.pem', '-out', 'cert.pem', '-days', '1',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], dir);
  return { dir, cert: path.join(dir, 'cert.pem'), key: path.join(dir, 'key.pem') };
}

export function openssl(args, cwd) {
  return new Promise((resolve, reject) => {
    execFile('openssl', args, { cwd }, (err, stdout, stderr) => (err ? reject(new Error(stderr)) : resolve(stdout)));
  });
}
