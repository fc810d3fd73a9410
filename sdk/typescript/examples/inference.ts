// examples/inference.ts — inference with the openai client: any model of the
// catalog (or provider/model), streaming included, billed to the end-user.
import OpenAI from 'openai';

const openai = new OpenAI({
  apiKey: process.env.END_USER_KEY, // sk-eu_…
  baseURL: `${process.env.ASSISTIV_BASE_URL ?? 'https://api.assistiv.ai'}/v1`,
});

const stream = await openai.chat.completions.create({
  model: 'claude-haiku-4-5',
  messages: [{ role: 'user', content: 'Plan a trip to Tokyo' }],
  stream: true,
});
for await (const chunk of stream) process.stdout.write(chunk.choices[0]?.delta.content ?? '');
process.stdout.write('\n');

// Stateful Responses API: the gateway keeps the conversation per end-user.
const first = await openai.responses.create({ model: 'gpt-4o-mini', input: 'Plan a trip' });
const next = await openai.responses.create({ model: 'gpt-4o-mini', input: 'Make it shorter', previous_response_id: first.id });
console.log(next.output_text);
