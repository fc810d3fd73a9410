// examples/tour.ts — the README's short snippets, type-checked in context.
import { Assistiv, AssistivError, AssistivPaymentRequiredError } from '@assistiv/sdk';

const assistiv = new Assistiv({
  apiKey: process.env.ASSISTIV_PLATFORM_KEY,   // sk-plat_… (default: ASSISTIV_PLATFORM_KEY)
  baseURL: 'http://127.0.0.1:8080',             // default: ASSISTIV_BASE_URL, else https://api.assistiv.ai
  platformId: process.env.ASSISTIV_PLATFORM_ID, // default: ASSISTIV_PLATFORM_ID, else read once from /v1/me
  maxRetries: 2,                                // default 2
  timeout: 60_000,                              // per attempt, ms; default 60 000
});

const { id: endUserId } = await assistiv.endUsers.create({ external_id: 'user-42' });
const end_user_id = endUserId;

const page = await assistiv.endUsers.list({ limit: 50 });       // page.data, page.has_more
if (page.hasNextPage()) await page.getNextPage();
for await (const user of assistiv.endUsers.list()) console.log(user.external_id);
const all = await assistiv.logs.list({ end_user_id, status: '4xx' }).toArray();

try {
  await assistiv.budgets.debit(endUserId, { amount_usd: '2.50' });
} catch (err) {
  if (err instanceof AssistivPaymentRequiredError) { /* not enough budget */ }
  else if (err instanceof AssistivError) console.error(err.status, err.code, err.requestId);
  else throw err;
}

console.log(all.length);
