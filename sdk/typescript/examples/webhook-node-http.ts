// examples/webhook-node-http.ts — the same receiver on plain node:http.
import { createServer } from 'node:http';
import { verifyWebhook, WebhookVerificationError, type WebhookEvent } from '@assistiv/sdk';

const secret = process.env.ASSISTIV_WEBHOOK_SECRET ?? ''; // whsec_…, from the endpoint

createServer(async (req, res) => {
  if (req.method !== 'POST' || req.url !== '/webhooks/assistiv') return void res.writeHead(404).end();
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  let event: WebhookEvent;
  try {
    event = verifyWebhook(Buffer.concat(chunks), req.headers, secret);
  } catch (err) {
    if (err instanceof WebhookVerificationError) return void res.writeHead(400).end(err.reason);
    throw err;
  }
  res.writeHead(200).end();
  if (event.event_type === 'budget.suspended' || event.event_type === 'budget.unsuspended') {
    console.log(event.event_type, event.id, event.data.end_user_id);
  } else {
    console.log(event.event_type, event.id, event.data.balance_usd);
  }
}).listen(Number(process.env.PORT ?? 3000), '127.0.0.1');
