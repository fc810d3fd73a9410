// examples/quickstart.ts — the five steps to a first inference.
// 1. npm install @assistiv/sdk openai
// 2. Set ASSISTIV_PLATFORM_KEY and ASSISTIV_PLATFORM_ID (and ASSISTIV_BASE_URL when self-hosting).
import OpenAI from 'openai';
import { Assistiv, AssistivPaymentRequiredError } from '@assistiv/sdk';

const assistiv = new Assistiv(); // reads ASSISTIV_PLATFORM_KEY, ASSISTIV_PLATFORM_ID, ASSISTIV_BASE_URL

// 3. Provision the end-user (idempotent on external_id) and store its key: it is shown once.
const user = await assistiv.endUsers.create({ external_id: 'user-42', display_name: 'Jane Smith' });
const endUserKey = user.api_key.raw_key;

// Give the user a monthly budget; a top-up with your own Idempotency-Key is safe to retry.
if (!user.budget) await assistiv.budgets.create(user.id, { amount_usd: '10', period: 'monthly' });
await assistiv.budgets.topup(user.id, { amount_usd: '5', reason: 'monthly_stipend' }, { idempotencyKey: `stipend-${user.id}-2026-05` });

// 4. Inference stays on the official openai client, with the end-user's key.
const openai = new OpenAI({ apiKey: endUserKey, baseURL: `${assistiv.baseURL}/v1` });
try {
  const completion = await openai.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: 'Say hi' }],
  });
  console.log(completion.choices[0]?.message.content);
} catch (err) {
  // 5. A 402 means the wallet or this user's budget is exhausted: top up and retry.
  if (err instanceof OpenAI.APIError && err.status === 402) {
    console.error('payment required:', err.code, '- top up the wallet or the budget');
  } else {
    throw err;
  }
}

// Every call is billed: read the user's ledger, newest first, across all pages.
for await (const tx of assistiv.budgets.transactions(user.id)) {
  console.log(tx.type, tx.amount_usd, '→', tx.balance_after_usd);
}

// Management calls raise typed errors: AssistivPaymentRequiredError on 402.
try {
  await assistiv.budgets.debit(user.id, { amount_usd: '1000000' });
} catch (err) {
  if (!(err instanceof AssistivPaymentRequiredError)) throw err;
  console.log('refused:', err.code);
}
