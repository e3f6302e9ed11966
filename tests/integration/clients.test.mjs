// Real clients, changing only base_url: the OpenAI Node SDK and LangChain.js, pinned in the lockfile.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { ChatOpenAI, OpenAIEmbeddings } from '@langchain/openai';
import { startSim, startServe } from './lib/harness.mjs';

let sim;
let gw;
let client;

before(async () => {
  sim = await startSim(['--tokens', '6', '--api-key', 'sk-real-upstream-key']);
  gw = await startServe({
    models: [
      { name: 'gpt-4o-mini', endpoints: [{ base_url: sim.base, api_key: 'sk-real-upstream-key' }] },
      { name: 'text-embedding-3-small', endpoints: [{ base_url: sim.base, api_key: 'sk-real-upstream-key' }] },
      { name: 'dead', endpoints: [{ base_url: 'http://127.0.0.1:1/v1' }] },
    ],
  });
  // The app's own key does not matter: ballast holds the upstream's.
  client = new OpenAI({ baseURL: gw.base, apiKey: 'sk-app-placeholder', maxRetries: 0 });
});

after(async () => {
  await gw?.stop();
  await sim?.stop();
});

test('OpenAI SDK: chat.completions.create', async () => {
  const r = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(r.choices[0].finish_reason, 'stop');
  assert.equal(r.usage.completion_tokens, 6);
  assert.ok(r.choices[0].message.content.length > 0);
});

test('OpenAI SDK: a streamed chat completion', async () => {
  const stream = await client.chat.completions.create({
    model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream: true, stream_options: { include_usage: true },
  });
  let text = '';
  let usage = null;
  let finish = null;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta?.content ?? '';
    finish = chunk.choices[0]?.finish_reason ?? finish;
    usage = chunk.usage ?? usage;
  }
  assert.equal(finish, 'stop');
  assert.equal(usage.completion_tokens, 6);
  assert.equal(text.split(' ').length, 6);
});

test('OpenAI SDK: embeddings (base64 by default) and models', async () => {
  const e = await client.embeddings.create({ model: 'text-embedding-3-small', input: ['a', 'b', 'c'] });
  assert.equal(e.data.length, 3);
  assert.equal(e.data[0].embedding.length, 8);
  const norm = Math.hypot(...e.data[0].embedding);
  assert.ok(Math.abs(norm - 1) < 1e-3, 'decoded from base64 as float32');
  const models = [];
  for await (const m of client.models.list()) models.push(m.id);
  assert.deepEqual(models, ['gpt-4o-mini', 'text-embedding-3-small', 'dead']);
});

test('OpenAI SDK: responses, streamed and not', async () => {
  const r = await client.responses.create({ model: 'gpt-4o-mini', input: 'hi' });
  assert.equal(r.status, 'completed');
  assert.ok(r.output_text.length > 0);
  const stream = await client.responses.create({ model: 'gpt-4o-mini', input: 'hi', stream: true });
  const types = [];
  for await (const ev of stream) types.push(ev.type);
  assert.equal(types.at(-1), 'response.completed');
});

test('OpenAI SDK: ballast\'s errors surface as APIError with the taxonomy code', async () => {
  await assert.rejects(
    client.chat.completions.create({ model: 'no-such-model', messages: [] }),
    (e) => e instanceof OpenAI.NotFoundError && e.code === 'unknown_model',
  );
  await assert.rejects(
    client.chat.completions.create({ model: 'dead', messages: [] }),
    (e) => e instanceof OpenAI.APIError && e.status === 502 && e.code === 'connect_refused' && /refused/.test(e.message),
  );
});

test('OpenAI SDK: a stream cut mid-way raises an error instead of ending quietly', async () => {
  const stream = await client.chat.completions.create(
    { model: 'gpt-4o-mini', messages: [], stream: true },
    { headers: { 'x-sim-fault': 'cut-after=3' } },
  );
  let tokens = 0;
  await assert.rejects(async () => {
    for await (const chunk of stream) if (chunk.choices[0]?.delta?.content) tokens++;
  }, (e) => e instanceof OpenAI.APIError && /ended the response before it was complete/.test(e.message));
  assert.equal(tokens, 3);
});

test('OpenAI SDK: a per-request timeout is sent as x-stainless-timeout and ballast answers first', async () => {
  const started = performance.now();
  await assert.rejects(
    client.chat.completions.create({ model: 'gpt-4o-mini', messages: [] },
      { timeout: 2_000, headers: { 'x-sim-fault': 'slow-headers=10000' } }),
    (e) => e instanceof OpenAI.APIError && e.status === 504 && e.code === 'deadline_exceeded',
  );
  const ms = performance.now() - started;
  assert.ok(ms < 2_000, `ballast answered first, after ${ms.toFixed(0)} ms`);
});

test('OpenAI SDK: a client-wide timeout is not sent by the SDK; x-ballast-timeout in defaultHeaders carries it', async () => {
  const quick = new OpenAI({
    baseURL: gw.base, apiKey: 'x', maxRetries: 0, timeout: 2_000, defaultHeaders: { 'x-ballast-timeout': '2' },
  });
  const started = performance.now();
  await assert.rejects(
    quick.chat.completions.create({ model: 'gpt-4o-mini', messages: [] }, { headers: { 'x-sim-fault': 'slow-headers=10000' } }),
    (e) => e instanceof OpenAI.APIError && e.code === 'deadline_exceeded' && /client's own deadline of 2s/.test(e.message),
  );
  assert.ok(performance.now() - started < 2_000);
});

test('LangChain ChatOpenAI: invoke, stream and batch', async () => {
  const llm = new ChatOpenAI({ model: 'gpt-4o-mini', apiKey: 'sk-app', configuration: { baseURL: gw.base }, maxRetries: 0 });
  const msg = await llm.invoke('hello');
  assert.ok(String(msg.content).length > 0);
  let chunks = 0;
  for await (const c of await llm.stream('hello')) if (c.content) chunks++;
  assert.equal(chunks, 6);
  const batch = await llm.batch(['a', 'b', 'c', 'd'], { maxConcurrency: 2 });
  assert.equal(batch.length, 4);
});

test('LangChain OpenAIEmbeddings', async () => {
  const emb = new OpenAIEmbeddings({ model: 'text-embedding-3-small', apiKey: 'sk-app', configuration: { baseURL: gw.base } });
  const vectors = await emb.embedDocuments(['one', 'two']);
  assert.equal(vectors.length, 2);
  const q = await emb.embedQuery('one');
  assert.deepEqual(q, vectors[0], 'the same text embeds the same');
});
