// Vercel's AI SDK (ai + @ai-sdk/openai) against the gateway, on every
// provider, through the Responses API (the provider's default) and Chat
// Completions (.chat()): text, streaming, an agent loop whose first step is
// text and a tool call together (the Responses loop sends that text back as
// an item_reference), structured output, usage, and 402/429 as APICallError
// (a 402 never retried).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateText, streamText, tool, jsonSchema, stepCountIs, Output, APICallError } from 'ai';
import { createOpenAI } from '@ai-sdk/openai';
import { z } from 'zod';
import { Stack, PROVIDERS, countingFetch, weatherSchema } from './stack.js';

let s, user;
before(async () => {
  s = await Stack.start();
  user = await s.endUser('ai-sdk');
});
after(() => s?.stop());

// recordingFetch keeps the JSON bodies a client sends.
function recordingFetch() {
  const f = async (input, init) => {
    if (init?.body) f.bodies.push(JSON.parse(init.body));
    return fetch(input, init);
  };
  f.bodies = [];
  return f;
}

const modes = {
  responses: (p, m) => p(m),
  chat: (p, m) => p.chat(m),
};

const weather = () => tool({
  description: 'Weather in a city',
  inputSchema: jsonSchema(weatherSchema),
  execute: async ({ city }) => `sunny, 21C in ${city}`,
});

for (const { provider, model } of PROVIDERS) {
  for (const [mode, pick] of Object.entries(modes)) {
    test(`ai-sdk ${mode} ${provider}: text and usage`, async () => {
      const f = countingFetch();
      const openai = createOpenAI({ apiKey: user.key, baseURL: s.baseURL, fetch: f });
      const r = await generateText({ model: pick(openai, model), prompt: 'Say hi' });
      assert.deepEqual(f.urls, [mode === 'responses' ? '/v1/responses' : '/v1/chat/completions']);
      assert.ok(r.text.length > 0);
      assert.ok(r.usage.inputTokens > 0 && r.usage.outputTokens > 0, JSON.stringify(r.usage));
      assert.equal(r.finishReason, 'stop');
    });

    test(`ai-sdk ${mode} ${provider}: streaming`, async () => {
      const openai = createOpenAI({ apiKey: user.key, baseURL: s.baseURL });
      const r = streamText({ model: pick(openai, model), prompt: 'Say hi', onError: ({ error }) => { throw error; } });
      let text = '', parts = 0;
      for await (const d of r.textStream) { text += d; parts++; }
      assert.ok(parts > 3, `${parts} text parts`);
      assert.equal(text, await r.text);
      const u = await r.usage;
      assert.ok(u.outputTokens > 0, JSON.stringify(u));
    });

    test(`ai-sdk ${mode} ${provider}: agent loop with text and a tool call in one step`, async () => {
      const f = recordingFetch();
      const openai = createOpenAI({ apiKey: user.key, baseURL: s.baseURL, fetch: f });
      const r = await generateText({
        model: pick(openai, model), prompt: 'What is the weather in Paris?',
        tools: { get_weather: weather() }, stopWhen: stepCountIs(5),
      });
      assert.equal(r.steps.length, 2, JSON.stringify(r.steps.map((st) => st.finishReason)));
      const [first, last] = r.steps;
      assert.ok(first.text.length > 0, 'the first step says something');
      assert.equal(first.toolCalls.length, 1);
      assert.equal(first.toolCalls[0].toolName, 'get_weather');
      assert.ok(first.toolCalls[0].input.city);
      assert.match(last.text, /sunny, 21C in /);
      assert.ok(r.totalUsage.outputTokens > first.usage.outputTokens);
      if (mode === 'responses') {
        // The second step referenced the first step's message by id.
        const refs = f.bodies[1].input.filter((i) => i.type === 'item_reference');
        assert.equal(refs.length, 1, JSON.stringify(f.bodies[1].input));
        assert.match(refs[0].id, /^msg_/);
      }
    });

    test(`ai-sdk ${mode} ${provider}: streamed agent loop`, async () => {
      const openai = createOpenAI({ apiKey: user.key, baseURL: s.baseURL });
      const r = streamText({
        model: pick(openai, model), prompt: 'What is the weather in Rome?',
        tools: { get_weather: weather() }, stopWhen: stepCountIs(5), onError: ({ error }) => { throw error; },
      });
      let text = '';
      for await (const d of r.textStream) text += d;
      const steps = await r.steps;
      assert.equal(steps.length, 2);
      assert.ok(steps[0].text.length > 0 && steps[0].toolCalls.length === 1);
      assert.match(text, /sunny, 21C in /);
    });

    test(`ai-sdk ${mode} ${provider}: structured output`, async () => {
      const openai = createOpenAI({ apiKey: user.key, baseURL: s.baseURL });
      const r = await generateText({
        model: pick(openai, model), prompt: 'A quick recipe',
        output: Output.object({ schema: z.object({ name: z.string(), minutes: z.number().int(), ingredients: z.array(z.string()) }) }),
      });
      assert.equal(typeof r.output.name, 'string');
      assert.ok(Array.isArray(r.output.ingredients));
    });
  }
}

test('ai-sdk responses openai reasoning model: agent loop with developer instructions and reasoning effort', async () => {
  // gpt-5 models take the SDK's reasoning-model path: system as a
  // developer message, reasoning.effort, and the assistant text replayed
  // inline rather than by reference.
  const f = recordingFetch();
  const openai = createOpenAI({ apiKey: user.key, baseURL: s.baseURL, fetch: f });
  const r = await generateText({
    model: openai('gpt-5-mini'), system: 'Be brief.', prompt: 'What is the weather in Oslo?',
    tools: { get_weather: weather() }, stopWhen: stepCountIs(5),
    providerOptions: { openai: { reasoningEffort: 'low' } },
  });
  assert.equal(r.steps.length, 2);
  assert.match(r.text, /sunny, 21C in /);
  assert.equal(f.bodies[0].reasoning.effort, 'low');
  assert.equal(f.bodies[0].input[0].role, 'developer');
});

test('ai-sdk: 402 budget_exhausted is an APICallError, never retried, on every provider', async () => {
  const broke = await s.endUser('ai-sdk-broke', 0.000001);
  for (const { model } of PROVIDERS) {
    for (const [mode, pick] of Object.entries(modes)) {
      const f = countingFetch();
      const openai = createOpenAI({ apiKey: broke.key, baseURL: s.baseURL, fetch: f });
      await assert.rejects(generateText({ model: pick(openai, model), prompt: 'hi', maxRetries: 2 }), (e) => {
        assert.ok(APICallError.isInstance(e), `${mode}: ${e.constructor.name}: ${e.message}`);
        assert.equal(e.statusCode, 402);
        assert.equal(e.isRetryable, false);
        assert.match(e.message, /budget/);
        assert.equal(JSON.parse(e.responseBody).error.code, 'budget_exhausted');
        return true;
      });
      assert.equal(f.count, 1, `${model} ${mode}: a 402 was sent ${f.count} times`);
    }
  }
});

test('ai-sdk: 429 rate_limited is a retryable APICallError with Retry-After, on every provider', async () => {
  const lim = await s.endUser('ai-sdk-limited', 50, { requests_per_minute: 1 });
  const openai = createOpenAI({ apiKey: lim.key, baseURL: s.baseURL });
  await generateText({ model: openai('gpt-4o-mini'), prompt: 'hi' });
  for (const { model } of PROVIDERS) {
    for (const [mode, pick] of Object.entries(modes)) {
      await assert.rejects(generateText({ model: pick(openai, model), prompt: 'hi', maxRetries: 0 }), (e) => {
        assert.ok(APICallError.isInstance(e), `${mode}: ${e.constructor.name}`);
        assert.equal(e.statusCode, 429);
        assert.equal(e.isRetryable, true);
        assert.match(e.message, /rate limit/);
        assert.ok(Number(e.responseHeaders['retry-after']) > 0);
        assert.equal(JSON.parse(e.responseBody).error.code, 'rate_limited');
        return true;
      });
    }
  }
});
