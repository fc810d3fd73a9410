// LangChain's ChatOpenAI (@langchain/openai) against the gateway, on every
// provider, in Chat Completions mode and with useResponsesApi: text,
// streaming, a tool loop whose first turn is text and a tool call together,
// structured output, usage metadata, and 402/429 surfacing as the OpenAI
// client's typed errors (a 402 never retried).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ChatOpenAI } from '@langchain/openai';
import { HumanMessage, ToolMessage } from '@langchain/core/messages';
import { tool } from '@langchain/core/tools';
import OpenAI from 'openai';
import { z } from 'zod';
import { Stack, PROVIDERS, countingFetch } from './stack.js';

let s, user;
before(async () => {
  s = await Stack.start();
  user = await s.endUser('langchain');
});
after(() => s?.stop());

const chat = (key, model, useResponsesApi, opts = {}) => new ChatOpenAI({
  model, apiKey: key, useResponsesApi, maxRetries: 2,
  configuration: { baseURL: s.baseURL, ...(opts.fetch ? { fetch: opts.fetch } : {}) },
  ...opts.model,
});

const getWeather = tool(async ({ city }) => `sunny, 21C in ${city}`, {
  name: 'get_weather', description: 'Weather in a city', schema: z.object({ city: z.string() }),
});

for (const { provider, model } of PROVIDERS) {
  for (const responses of [false, true]) {
    const mode = responses ? 'responses' : 'chat';

    test(`langchain ${mode} ${provider}: text and usage`, async () => {
      const f = countingFetch();
      const m = await chat(user.key, model, responses, { fetch: f }).invoke('Say hi');
      assert.deepEqual(f.urls, [responses ? '/v1/responses' : '/v1/chat/completions']);
      assert.ok(typeof m.content === 'string' ? m.content.length > 0 : m.text.length > 0);
      assert.ok(m.usage_metadata.input_tokens > 0 && m.usage_metadata.output_tokens > 0, JSON.stringify(m.usage_metadata));
    });

    test(`langchain ${mode} ${provider}: streaming`, async () => {
      const m = chat(user.key, model, responses, { model: { streamUsage: true } });
      let text = '', chunks = 0, usage;
      for await (const ch of await m.stream('Say hi')) {
        chunks++;
        text += ch.text;
        if (ch.usage_metadata) usage = ch.usage_metadata;
      }
      assert.ok(chunks > 3, `${chunks} chunks`);
      assert.ok(text.length > 0);
      assert.ok(usage?.output_tokens > 0, JSON.stringify(usage));
    });

    test(`langchain ${mode} ${provider}: tool loop with text and a call in one turn`, async () => {
      const m = chat(user.key, model, responses).bindTools([getWeather]);
      const messages = [new HumanMessage('What is the weather in Paris?')];
      const first = await m.invoke(messages);
      assert.ok(first.text.length > 0, 'text beside the call');
      assert.equal(first.tool_calls.length, 1);
      assert.equal(first.tool_calls[0].name, 'get_weather');
      messages.push(first);
      for (const tc of first.tool_calls) {
        messages.push(new ToolMessage({ tool_call_id: tc.id, content: await getWeather.invoke(tc.args) }));
      }
      const second = await m.invoke(messages);
      assert.match(second.text, /sunny, 21C in /);
    });

    test(`langchain ${mode} ${provider}: structured output`, async () => {
      const m = chat(user.key, model, responses).withStructuredOutput(
        z.object({ name: z.string(), minutes: z.number().int(), ingredients: z.array(z.string()) }), { name: 'recipe' });
      const v = await m.invoke('A quick recipe');
      assert.equal(typeof v.name, 'string');
      assert.ok(Array.isArray(v.ingredients));
    });
  }
}

test('langchain responses openai reasoning model: reasoning effort', async () => {
  for (const responses of [false, true]) {
    const m = chat(user.key, 'gpt-5-mini', responses, { model: { reasoning: { effort: 'low' } } });
    const out = await m.invoke('Think, then say hi');
    assert.ok(out.text.length > 0);
  }
});

test('langchain: 402 budget_exhausted is the OpenAI APIError, never retried, on every provider', async () => {
  const broke = await s.endUser('langchain-broke', 0.000001);
  for (const { model } of PROVIDERS) {
    for (const responses of [false, true]) {
      const f = countingFetch();
      await assert.rejects(chat(broke.key, model, responses, { fetch: f }).invoke('hi'), (e) => {
        assert.ok(e instanceof OpenAI.APIError, e.constructor.name);
        assert.equal(e.status, 402);
        assert.equal(e.code, 'budget_exhausted');
        assert.match(e.message, /budget/);
        return true;
      });
      assert.equal(f.count, 1, `${model}: a 402 was sent ${f.count} times`);
    }
  }
});

test('langchain: 429 rate_limited is a RateLimitError (MODEL_RATE_LIMIT) with Retry-After, on every provider', async () => {
  const lim = await s.endUser('langchain-limited', 50, { requests_per_minute: 1 });
  await chat(lim.key, 'gpt-4o-mini', false).invoke('hi');
  for (const { model } of PROVIDERS) {
    for (const responses of [false, true]) {
      const m = chat(lim.key, model, responses, { model: { maxRetries: 0 } });
      await assert.rejects(m.invoke('hi'), (e) => {
        assert.ok(e instanceof OpenAI.RateLimitError, e.constructor.name);
        assert.equal(e.status, 429);
        assert.equal(e.code, 'rate_limited');
        assert.equal(e.lc_error_code, 'MODEL_RATE_LIMIT');
        assert.ok(Number(e.headers.get('retry-after')) > 0);
        return true;
      });
    }
  }
});
