// The official openai Node client against the gateway, on every provider:
// Chat Completions and Responses; text, streaming, a tool loop whose first
// turn is text and a tool call together, structured output, usage, and
// 402/429 as the client's typed errors (a 402 never retried).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { Stack, PROVIDERS, countingFetch, weatherSchema, recipeSchema } from './stack.js';

let s, user;
before(async () => {
  s = await Stack.start();
  user = await s.endUser('openai-node');
});
after(() => s?.stop());

const client = (key, opts = {}) => new OpenAI({ apiKey: key, baseURL: s.baseURL, ...opts });

const chatTool = { type: 'function', function: { name: 'get_weather', description: 'Weather in a city', parameters: weatherSchema } };
const respTool = { type: 'function', name: 'get_weather', description: 'Weather in a city', parameters: weatherSchema, strict: false };

for (const { provider, model } of PROVIDERS) {
  test(`openai-node chat ${provider}: text, usage, streaming`, async () => {
    const c = client(user.key);
    const r = await c.chat.completions.create({ model, messages: [{ role: 'user', content: 'Say hi' }] });
    assert.ok(r.choices[0].message.content.length > 0);
    assert.ok(r.usage.prompt_tokens > 0 && r.usage.completion_tokens > 0);
    const stream = await c.chat.completions.create({ model, stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'Say hi' }] });
    let text = '', usage, chunks = 0;
    for await (const ch of stream) {
      chunks++;
      text += ch.choices[0]?.delta?.content ?? '';
      if (ch.usage) usage = ch.usage;
    }
    assert.ok(chunks > 3, `${chunks} chunks`);
    assert.equal(text, r.choices[0].message.content);
    assert.ok(usage?.completion_tokens > 0, 'streamed usage');
  });

  test(`openai-node chat ${provider}: tool loop with text and a call in one turn`, async () => {
    const c = client(user.key);
    const messages = [{ role: 'user', content: 'What is the weather in Paris?' }];
    const first = await c.chat.completions.create({ model, messages, tools: [chatTool] });
    const m = first.choices[0].message;
    assert.equal(first.choices[0].finish_reason, 'tool_calls');
    assert.ok(m.content?.length > 0, 'text beside the call');
    assert.equal(m.tool_calls[0].function.name, 'get_weather');
    assert.ok(JSON.parse(m.tool_calls[0].function.arguments).city);
    messages.push(m, { role: 'tool', tool_call_id: m.tool_calls[0].id, content: 'sunny, 21C' });
    const second = await c.chat.completions.create({ model, messages, tools: [chatTool] });
    assert.match(second.choices[0].message.content, /sunny, 21C/);
  });

  test(`openai-node chat ${provider}: structured output`, async () => {
    const r = await client(user.key).chat.completions.create({
      model, messages: [{ role: 'user', content: 'A quick recipe' }],
      response_format: { type: 'json_schema', json_schema: { name: 'recipe', schema: recipeSchema, strict: true } },
    });
    const v = JSON.parse(r.choices[0].message.content);
    assert.equal(typeof v.name, 'string');
    assert.equal(typeof v.minutes, 'number');
    assert.ok(Array.isArray(v.ingredients));
  });

  test(`openai-node responses ${provider}: text, usage, streaming, structured output`, async () => {
    const c = client(user.key);
    const r = await c.responses.create({ model, input: 'Say hi', instructions: 'Be brief.' });
    assert.equal(r.status, 'completed');
    assert.ok(r.output_text.length > 0);
    assert.ok(r.usage.input_tokens > 0 && r.usage.output_tokens > 0);
    const stream = await c.responses.create({ model, input: 'Say hi', stream: true });
    let text = '', done;
    for await (const ev of stream) {
      if (ev.type === 'response.output_text.delta') text += ev.delta;
      if (ev.type === 'response.completed') done = ev.response;
    }
    assert.ok(text.length > 0);
    assert.equal(done.output_text ?? done.output[0].content[0].text, text);
    assert.ok(done.usage.output_tokens > 0);
    const so = await c.responses.create({ model, input: 'A quick recipe', text: { format: { type: 'json_schema', name: 'recipe', schema: recipeSchema, strict: true } } });
    const v = JSON.parse(so.output_text);
    assert.ok(Array.isArray(v.ingredients));
  });

  test(`openai-node responses ${provider}: tool loop, item_reference and previous_response_id`, async () => {
    const c = client(user.key);
    const first = await c.responses.create({ model, input: [{ role: 'user', content: 'What is the weather in Paris?' }], tools: [respTool] });
    const msg = first.output.find((o) => o.type === 'message');
    const call = first.output.find((o) => o.type === 'function_call');
    assert.ok(msg && call, JSON.stringify(first.output));
    // Stateless with references, as the AI SDK sends it.
    const second = await c.responses.create({
      model, tools: [respTool],
      input: [
        { role: 'user', content: 'What is the weather in Paris?' },
        { type: 'item_reference', id: msg.id },
        { type: 'item_reference', id: call.id },
        { type: 'function_call_output', call_id: call.call_id, output: 'sunny, 21C' },
      ],
    });
    assert.match(second.output_text, /sunny, 21C/);
    // Stateful.
    const third = await c.responses.create({ model, tools: [respTool], previous_response_id: first.id,
      input: [{ type: 'function_call_output', call_id: call.call_id, output: 'rainy, 12C' }] });
    assert.match(third.output_text, /rainy, 12C/);
  });
}

test('openai-node: 402 budget_exhausted is an APIError, never retried, on every provider', async () => {
  const broke = await s.endUser('openai-node-broke', 0.000001);
  for (const { model } of PROVIDERS) {
    for (const api of ['chat', 'responses']) {
      const f = countingFetch();
      const c = client(broke.key, { fetch: f, maxRetries: 2 });
      const call = api === 'chat'
        ? c.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }] })
        : c.responses.create({ model, input: 'hi' });
      await assert.rejects(call, (e) => {
        assert.ok(e instanceof OpenAI.APIError, e.constructor.name);
        assert.equal(e.status, 402);
        assert.equal(e.code, 'budget_exhausted');
        assert.equal(e.type, 'payment_required');
        assert.match(e.message, /budget/);
        assert.match(e.requestID ?? '', /^req_/);
        return true;
      });
      assert.equal(f.count, 1, `${model} ${api}: a 402 was sent ${f.count} times`);
    }
  }
});

test('openai-node: 429 rate_limited is a RateLimitError with Retry-After, on every provider', async () => {
  const lim = await s.endUser('openai-node-limited', 50, { requests_per_minute: 1 });
  const c = client(lim.key, { maxRetries: 0 });
  await c.chat.completions.create({ model: 'grok-3-mini', messages: [{ role: 'user', content: 'hi' }] });
  for (const { model } of PROVIDERS) {
    for (const call of [
      () => c.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }] }),
      () => c.responses.create({ model, input: 'hi' }),
    ]) {
      await assert.rejects(call(), (e) => {
        assert.ok(e instanceof OpenAI.RateLimitError, e.constructor.name);
        assert.equal(e.status, 429);
        assert.equal(e.code, 'rate_limited');
        assert.match(e.message, /rate limit/);
        assert.ok(Number(e.headers.get('retry-after')) > 0, 'Retry-After');
        return true;
      });
    }
  }
});
