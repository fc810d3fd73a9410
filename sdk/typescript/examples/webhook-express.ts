// examples/webhook-express.ts — an Express receiver. Verify on the raw body
// (express.raw, never express.json: re-serializing changes the bytes).
import express from 'express';
import { verifyWebhook, WebhookVerificationError } from '@assistiv/sdk';

const secret = process.env.ASSISTIV_WEBHOOK_SECRET ?? ''; // whsec_…, from the endpoint
const app = express();

app.post('/webhooks/assistiv', express.raw({ type: 'application/json' }), (req, res) => {
  let event;
  try {
    event = verifyWebhook(req.body as Buffer, req.headers, secret);
  } catch (err) {
    if (err instanceof WebhookVerificationError) return void res.status(400).send(err.reason);
    throw err;
  }
  // Answer fast; deduplicate on event.id (the same on every retry); do heavy work async.
  switch (event.event_type) {
    case 'budget.low_balance':
      console.log(event.event_type, event.id, event.data.end_user_id, event.data.balance_usd, '<', event.data.threshold_usd);
      break;
    case 'budget.topped_up':
    case 'budget.debited':
      console.log(event.event_type, event.id, event.data.end_user_id, event.data.amount_usd);
      break;
    case 'wallet.low_balance':
      console.log(event.event_type, event.id, event.data.balance_usd, event.data.auto_topup_amount_usd ?? 'no auto top-up');
      break;
    default:
      console.log(event.event_type, event.id, event.data.balance_usd);
  }
  res.sendStatus(200);
});

app.listen(Number(process.env.PORT ?? 3000), '127.0.0.1');
