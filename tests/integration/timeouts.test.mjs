// Every phase bound fires within 10% of its value and answers with its own code: before a stream
// begins as an OpenAI-shape error, after it began as an SSE error event. Each case scripts the
// simulator per request with x-sim-fault, so nothing here waits on luck.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSim, startServe, chat, streamChat, unansweredListener } from './lib/harness.mjs';

const BOUND = 1000; // ms, every phase
let sim;
let gw;
let silent;

before(async () => {
  sim = await startSim(['--tokens', '20', '--itl', '10']);
  silent = await unansweredListener();
  const timeouts = { connect: `${BOUND}ms`, first_byte: `${BOUND}ms`, first_token: `${BOUND}ms`, stream_idle: `${BOUND}ms`, total: '30s' };
  gw = await startServe({
    timeouts,
    // One attempt, so each bound is seen firing once; retries have their own suite (chaos).
    retries: { max_attempts: 1 },
    models: [
      { name: 'm', endpoints: [{ base_url: sim.base }] },
      { name: 'silent', endpoints: [{ base_url: `http://127.0.0.1:${silent.port}/v1` }] },
      { name: 'short-total', timeouts: { total: `${BOUND}ms`, first_byte: '10s' }, endpoints: [{ base_url: sim.base }] },
      { name: 'slow-connect-bound', timeouts: { connect: '3s' }, endpoints: [{ base_url: sim.base }] },
    ],
  });
});

after(async () => {
  await gw?.stop();
  await sim?.stop();
  await silent?.stop();
});

function assertWithin(ms, bound = BOUND) {
  assert.ok(ms >= bound * 0.95 && ms <= bound * 1.1, `fired after ${ms.toFixed(0)} ms, bound ${bound} ms`);
}

// A client's deadline is met 5% early (at most 500 ms), so its own timer never beats ballast's answer.
function assertBeforeClientDeadline(ms, deadline) {
  const at = deadline - Math.min(deadline * 0.05, 500);
  assert.ok(ms >= at && ms <= at * 1.1 && ms < deadline, `answered after ${ms.toFixed(0)} ms, client deadline ${deadline} ms`);
}

test('connect: no answer to the SYN → 504 connect_timeout at the connect bound', async () => {
  const r = await chat(gw.base, { model: 'silent' });
  assert.equal(r.status, 504);
  assert.equal(r.json.error.code, 'connect_timeout');
  assert.match(r.json.error.message, /got no answer within 1s \(timeouts.connect\)/);
  assertWithin(r.ms);
});

test('first byte: headers that never come → 504 first_byte_timeout', async () => {
  const r = await chat(gw.base, { model: 'm' }, { 'x-sim-fault': 'slow-headers=5000' });
  assert.equal(r.status, 504);
  assert.equal(r.json.error.code, 'first_byte_timeout');
  assert.match(r.json.error.message, /timeouts.first_byte/);
  assertWithin(r.ms);
});

test('first byte: its bound starts when the request is sent, whatever the connect bound', async () => {
  // connect 3 s, first byte 1 s: the first-byte bound must not wait for the connect bound to pass.
  const r = await chat(gw.base, { model: 'slow-connect-bound' }, { 'x-sim-fault': 'slow-headers=5000' });
  assert.equal(r.json.error.code, 'first_byte_timeout');
  assertWithin(r.ms);
});

test('first byte: a blackholed request → 504 first_byte_timeout', async () => {
  const r = await chat(gw.base, { model: 'm' }, { 'x-sim-fault': 'blackhole' });
  assert.equal(r.json.error.code, 'first_byte_timeout');
  assertWithin(r.ms);
});

test('first token: a stream whose first token is late → 504 first_token_timeout, before any byte went out', async () => {
  const r = await streamChat(gw.base, { model: 'm' }, { 'x-sim-fault': 'slow-first-token=5000' });
  assert.equal(r.status, 504);
  assert.equal(JSON.parse(r.text).error.code, 'first_token_timeout');
  assertWithin(r.ms);
});

test('first token: keep-alive comments do not count as a token', async () => {
  const r = await streamChat(gw.base, { model: 'm' }, { 'x-sim-fault': 'keepalive-only' });
  assert.equal(r.status, 504);
  assert.equal(JSON.parse(r.text).error.code, 'first_token_timeout');
  assertWithin(r.ms);
});

test('stream idle: a stall after 3 tokens → the stream ends with an SSE error event, never [DONE]', async () => {
  const r = await streamChat(gw.base, { model: 'm' }, { 'x-sim-fault': 'stall-after=3' });
  assert.equal(r.status, 200);
  const last = r.events.at(-1);
  assert.equal(last.event, 'error');
  assert.equal(JSON.parse(last.data).error.code, 'stream_idle_timeout');
  assert.ok(!r.text.includes('[DONE]'));
  assert.ok(!r.text.includes('"finish_reason":"stop"'), 'no made-up finish_reason');
  const content = r.events.filter((e) => e.data.includes('"content":"') && !e.data.includes('"content":""'));
  assert.equal(content.length, 3);
  // Fired one idle bound after the third token (about 20 ms of tokens before it).
  assert.ok(r.ms >= BOUND * 0.95 && r.ms <= BOUND * 1.1 + 100, `ended after ${r.ms} ms`);
});

test('non-streamed: an answer stalled before it starts → 504 first_byte_timeout', async () => {
  const r = await chat(gw.base, { model: 'm', stream: false }, { 'x-sim-fault': 'stall-after=3' });
  // The simulator never answers a stalled non-streamed request: the first-byte bound governs.
  assert.equal(r.json.error.code, 'first_byte_timeout');
  assertWithin(r.ms);
});

test('the client\'s deadline (x-stainless-timeout, seconds) caps the total → 504 deadline_exceeded', async () => {
  const r = await chat(gw.base, { model: 'm' }, { 'x-sim-fault': 'slow-headers=5000', 'x-stainless-timeout': '0.5' });
  assert.equal(r.status, 504);
  assert.equal(r.json.error.code, 'deadline_exceeded');
  assert.match(r.json.error.message, /the client's own deadline of 500ms/);
  assertBeforeClientDeadline(r.ms, 500);
});

test('x-ballast-timeout caps the total the same way', async () => {
  const r = await chat(gw.base, { model: 'm' }, { 'x-sim-fault': 'slow-headers=5000', 'x-ballast-timeout': '0.7' });
  assert.equal(r.json.error.code, 'deadline_exceeded');
  assertBeforeClientDeadline(r.ms, 700);
});

test('the total bound → 504 deadline_exceeded naming timeouts.total', async () => {
  const r = await chat(gw.base, { model: 'short-total' }, { 'x-sim-fault': 'slow-headers=5000' });
  assert.equal(r.json.error.code, 'deadline_exceeded');
  assert.match(r.json.error.message, /timeouts.total/);
  assertWithin(r.ms);
});

test('the deadline mid-stream → an SSE error event with deadline_exceeded', async () => {
  const r = await streamChat(gw.base, { model: 'm', max_tokens: 20 }, { 'x-sim-fault': 'stall-after=2', 'x-stainless-timeout': '0.6' });
  assert.equal(r.status, 200);
  assert.equal(JSON.parse(r.events.at(-1).data).error.code, 'deadline_exceeded');
  assertBeforeClientDeadline(r.ms, 600);
});

test('every timeout is logged with its code and the phases it reached', async () => {
  const codes = gw.accessLog().map((l) => l.code);
  for (const c of ['connect_timeout', 'first_byte_timeout', 'first_token_timeout', 'stream_idle_timeout', 'deadline_exceeded']) {
    assert.ok(codes.includes(c), c);
  }
  const idle = gw.accessLog().find((l) => l.code === 'stream_idle_timeout');
  assert.equal(idle.status, 200, 'the stream had begun');
  assert.ok(idle.first_token_ms > 0);
});
