// verifyWebhook: the Standard Webhooks test vector, the rejections, and
// real deliveries from bin/gateway (all seven event types, and a secret
// rotation that signs with two secrets).

import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { after, before, describe, it } from 'node:test';
import {
  Assistiv,
  signWebhook,
  verifyWebhook,
  verifyWebhookSignature,
  WEBHOOK_EVENT_TYPES,
  WebhookVerificationError,
  type WebhookEvent,
  type WebhookVerificationReason,
} from '../src/index.js';
import { eventually, listen, readBody, startGateway, type Gateway, type LocalServer } from './helpers.js';

// The specification's known-answer vector (standard-webhooks, the reference
// libraries' sign test).
const VEC = {
  secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
  ts: 1614265330,
  body: '{"test": 2432232314}',
  sig: 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
};
const vecHeaders = (over: Record<string, string> = {}): Record<string, string> => ({
  'webhook-id': VEC.id,
  'webhook-timestamp': String(VEC.ts),
  'webhook-signature': VEC.sig,
  ...over,
});
const at = (ts: number): { now: number } => ({ now: ts * 1000 });

function refused(fn: () => unknown, reason: WebhookVerificationReason): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof WebhookVerificationError, String(e));
    assert.equal(e.reason, reason);
    return true;
  });
}

describe('the specification test vector', () => {
  it('is accepted and reproduced', () => {
    assert.equal(signWebhook(VEC.secret, VEC.id, VEC.ts, VEC.body), VEC.sig);
    verifyWebhookSignature(VEC.body, vecHeaders(), VEC.secret, at(VEC.ts));
    verifyWebhookSignature(Buffer.from(VEC.body), vecHeaders(), VEC.secret.slice('whsec_'.length), at(VEC.ts));
    verifyWebhookSignature(VEC.body, new Headers(vecHeaders()), VEC.secret, at(VEC.ts));
    // verifyWebhook gets past the signature; the vector's body is not an event.
    refused(() => verifyWebhook(VEC.body, vecHeaders(), VEC.secret, at(VEC.ts)), 'invalid_payload');
  });

  it('rejects tampered bodies, wrong secrets, stale and future timestamps', () => {
    refused(() => verifyWebhookSignature('{"test": 2432232315}', vecHeaders(), VEC.secret, at(VEC.ts)), 'invalid_signature');
    refused(() => verifyWebhookSignature(VEC.body + ' ', vecHeaders(), VEC.secret, at(VEC.ts)), 'invalid_signature');
    refused(() => verifyWebhookSignature(VEC.body, vecHeaders({ 'webhook-id': 'msg_other' }), VEC.secret, at(VEC.ts)), 'invalid_signature');
    const wrong = 'whsec_' + Buffer.alloc(24, 7).toString('base64');
    refused(() => verifyWebhookSignature(VEC.body, vecHeaders(), wrong, at(VEC.ts)), 'invalid_signature');
    refused(() => verifyWebhookSignature(VEC.body, vecHeaders(), VEC.secret, at(VEC.ts + 301)), 'timestamp_too_old');
    refused(() => verifyWebhookSignature(VEC.body, vecHeaders(), VEC.secret, at(VEC.ts - 301)), 'timestamp_too_new');
    verifyWebhookSignature(VEC.body, vecHeaders(), VEC.secret, at(VEC.ts + 300)); // exactly the tolerance
    refused(() => verifyWebhookSignature(VEC.body, vecHeaders(), VEC.secret, { ...at(VEC.ts + 61), toleranceSeconds: 60 }), 'timestamp_too_old');
    verifyWebhookSignature(VEC.body, vecHeaders(), VEC.secret, { ...at(VEC.ts + 3000), toleranceSeconds: 3600 });
    // Default clock: the vector is from 2021.
    refused(() => verifyWebhookSignature(VEC.body, vecHeaders(), VEC.secret), 'timestamp_too_old');
  });

  it('checks every v1 signature and nothing else', () => {
    const bogus = 'v1,' + Buffer.alloc(32).toString('base64');
    verifyWebhookSignature(VEC.body, vecHeaders({ 'webhook-signature': `${bogus} ${VEC.sig}` }), VEC.secret, at(VEC.ts));
    verifyWebhookSignature(VEC.body, vecHeaders({ 'webhook-signature': `v1a,xyz  ${VEC.sig} ${bogus}` }), VEC.secret, at(VEC.ts));
    // Two header lines, as Node joins them.
    verifyWebhookSignature(VEC.body, { ...vecHeaders(), 'webhook-signature': [bogus, VEC.sig] }, VEC.secret, at(VEC.ts));
    verifyWebhookSignature(VEC.body, { ...vecHeaders(), 'webhook-signature': [VEC.sig, bogus] }, VEC.secret, at(VEC.ts));
    refused(() => verifyWebhookSignature(VEC.body, vecHeaders({ 'webhook-signature': VEC.sig.replace('v1,', 'v2,') }), VEC.secret, at(VEC.ts)), 'invalid_signature');
    refused(() => verifyWebhookSignature(VEC.body, vecHeaders({ 'webhook-signature': bogus }), VEC.secret, at(VEC.ts)), 'invalid_signature');
    refused(() => verifyWebhookSignature(VEC.body, vecHeaders({ 'webhook-signature': VEC.sig.slice(0, -2) }), VEC.secret, at(VEC.ts)), 'invalid_signature');
  });

  it('refuses malformed input', () => {
    for (const h of ['webhook-id', 'webhook-timestamp', 'webhook-signature']) {
      const headers = vecHeaders();
      delete headers[h];
      refused(() => verifyWebhookSignature(VEC.body, headers, VEC.secret, at(VEC.ts)), 'missing_headers');
    }
    for (const ts of ['01614265330', '+1614265330', '1614265330.0', '-1', 'abc']) {
      refused(() => verifyWebhookSignature(VEC.body, vecHeaders({ 'webhook-timestamp': ts }), VEC.secret, at(VEC.ts)), 'invalid_timestamp');
    }
    for (const secret of ['', 'whsec_', 'whsec_short', 'whsec_!!!!' + 'A'.repeat(28), 'whsec_' + Buffer.alloc(23).toString('base64'), 'whsec_' + Buffer.alloc(65).toString('base64')]) {
      refused(() => verifyWebhookSignature(VEC.body, vecHeaders(), secret, at(VEC.ts)), 'invalid_secret');
    }
    assert.throws(() => verifyWebhook(JSON.parse(VEC.body) as unknown as string, vecHeaders(), VEC.secret, at(VEC.ts)), TypeError);
    // Node's IncomingHttpHeaders: lower-case names; a repeated header is an array.
    const node: IncomingHttpHeaders = { 'webhook-id': VEC.id, 'webhook-timestamp': String(VEC.ts), 'webhook-signature': VEC.sig };
    verifyWebhookSignature(VEC.body, node, VEC.secret, at(VEC.ts));
    verifyWebhookSignature(VEC.body, { 'Webhook-Id': VEC.id, 'Webhook-Timestamp': String(VEC.ts), 'Webhook-Signature': VEC.sig }, VEC.secret, at(VEC.ts));
  });

  it('returns the typed event of a signed gateway payload', () => {
    const secret = 'whsec_' + Buffer.alloc(32, 1).toString('base64');
    const body = '{"id":"msg_1","event_type":"budget.topped_up","created_at":"2026-05-01T00:00:00Z","data":{"platform_id":"plat_1","end_user_id":"eu_1","external_id":"user-42","balance_usd":123456789.123456789,"amount_usd":0.000000001,"period":"monthly","transaction_id":"txn_1","transaction_type":"topup"}}';
    const ts = Math.floor(Date.now() / 1000);
    const ev = verifyWebhook(body, { 'webhook-id': 'msg_1', 'webhook-timestamp': String(ts), 'webhook-signature': signWebhook(secret, 'msg_1', ts, body) }, secret);
    assert.equal(ev.event_type, 'budget.topped_up');
    if (ev.event_type === 'budget.topped_up') {
      assert.equal(ev.data.balance_usd, '123456789.123456789');
      assert.equal(ev.data.amount_usd, '0.000000001');
      assert.equal(ev.data.transaction_id, 'txn_1');
    }
  });
});

interface Delivery {
  headers: IncomingHttpHeaders;
  body: Buffer;
  event?: WebhookEvent;
  error?: unknown;
}

describe('deliveries from the gateway', () => {
  let gw: Gateway;
  let receiver: LocalServer;
  let secret = '';
  const deliveries: Delivery[] = [];
  let platform: { id: string; key: string };
  let endpointId = '';

  before(async () => {
    gw = await startGateway();
    platform = await gw.createPlatform('hooks-co', { walletUSD: '10', providers: true });
    receiver = await listen(async (req, res) => {
      const body = await readBody(req);
      const d: Delivery = { headers: req.headers, body };
      try {
        d.event = verifyWebhook(body, req.headers, secret);
        res.writeHead(200).end();
      } catch (e) {
        d.error = e;
        res.writeHead(400).end();
      }
      deliveries.push(d);
    });
    const ep = await gw.admin('POST', `/admin/v1/platforms/${platform.id}/webhook-endpoints`, {
      url: `${receiver.url}/hooks`, event_types: [...WEBHOOK_EVENT_TYPES], description: 'sdk test',
    });
    assert.equal(ep.status, 201, JSON.stringify(ep.body));
    secret = ep.body.secret;
    endpointId = ep.body.id;
    assert.match(secret, /^whsec_/);
  });

  after(async () => {
    await receiver?.close();
    await gw?.stop();
  });

  const byType = (t: string): WebhookEvent | undefined => deliveries.find((d) => d.event?.event_type === t)?.event;

  it('every event type arrives, verifies and carries its typed data', async () => {
    const c = new Assistiv({ apiKey: platform.key, baseURL: gw.url });
    const w = await gw.admin('POST', `/admin/v1/platforms/${platform.id}/wallet/topup`, '{"amount_usd":2.5}', { 'Idempotency-Key': 'hook-wire' });
    assert.equal(w.status, 200);
    const eu = await c.endUsers.create({ external_id: 'hook-user' });
    await c.budgets.create(eu.id, { amount_usd: 5, period: 'monthly', low_balance_threshold_usd: '4' });
    await c.budgets.topup(eu.id, { amount_usd: '1.5', reason: 'stipend' });
    await c.budgets.debit(eu.id, { amount_usd: '3.000000001', reason: 'manual' }); // 6.5 → 3.499999999: below 4
    await c.budgets.update(eu.id, { is_suspended: true });
    await c.budgets.update(eu.id, { is_suspended: false });
    // wallet.low_balance: a threshold at the balance, then one billed call.
    const wallet = await c.wallet.get();
    await c.platform.update({ wallet_low_balance_usd: wallet.balance_usd });
    const chat = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${eu.api_key.raw_key}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(chat.status, 200, await chat.text());

    await eventually('all seven event types', () => (WEBHOOK_EVENT_TYPES.every((t) => byType(t)) ? true : undefined), 15_000);
    const failed = deliveries.filter((d) => d.error);
    assert.deepEqual(failed.map((d) => String(d.error)), []);
    for (const d of deliveries) {
      assert.equal(d.headers['webhook-id'], d.event?.id);
      assert.equal(d.event?.data.platform_id, platform.id);
    }

    const wt = byType('wallet.topped_up');
    assert.ok(wt?.event_type === 'wallet.topped_up');
    assert.equal(wt.data.amount_usd, '2.5');
    assert.equal(wt.data.balance_usd, '12.5');
    const bt = byType('budget.topped_up');
    assert.ok(bt?.event_type === 'budget.topped_up');
    assert.equal(bt.data.amount_usd, '1.5');
    assert.equal(bt.data.balance_usd, '6.5');
    assert.equal(bt.data.end_user_id, eu.id);
    assert.equal(bt.data.external_id, 'hook-user');
    assert.equal(bt.data.reason, 'stipend');
    assert.match(bt.data.transaction_id, /.+/);
    const bd = byType('budget.debited');
    assert.ok(bd?.event_type === 'budget.debited');
    assert.equal(bd.data.amount_usd, '3.000000001');
    assert.equal(bd.data.balance_usd, '3.499999999');
    const bl = byType('budget.low_balance');
    assert.ok(bl?.event_type === 'budget.low_balance');
    assert.equal(bl.data.threshold_usd, '4');
    assert.equal(byType('budget.suspended')?.data.platform_id, platform.id);
    const bu = byType('budget.unsuspended');
    assert.ok(bu?.event_type === 'budget.unsuspended');
    assert.equal(bu.data.end_user_id, eu.id);
    const wl = byType('wallet.low_balance');
    assert.ok(wl?.event_type === 'wallet.low_balance');
    assert.equal(wl.data.threshold_usd, wallet.balance_usd);
    assert.ok(Number(wl.data.balance_usd) < Number(wallet.balance_usd));
  });

  it('a delivery is rejected when tampered, under another secret, or replayed late', () => {
    const d = deliveries.find((x) => x.event?.event_type === 'budget.topped_up');
    assert.ok(d);
    verifyWebhook(d.body, d.headers, secret);
    const tampered = Buffer.from(d.body.toString().replace('"1.5"', '"15"').replace(':1.5', ':15'));
    assert.notDeepEqual(tampered, d.body);
    refused(() => verifyWebhook(tampered, d.headers, secret), 'invalid_signature');
    refused(() => verifyWebhook(d.body, d.headers, 'whsec_' + Buffer.alloc(32, 9).toString('base64')), 'invalid_signature');
    const ts = Number(d.headers['webhook-timestamp']);
    refused(() => verifyWebhook(d.body, d.headers, secret, at(ts + 301)), 'timestamp_too_old');
    refused(() => verifyWebhook(d.body, { ...d.headers, 'webhook-timestamp': String(ts + 1) }, secret), 'invalid_signature');
  });

  it('after a rotation, deliveries verify under the old and the new secret', async () => {
    const rot = await gw.admin('POST', `/admin/v1/platforms/${platform.id}/webhook-endpoints/${endpointId}/secret/rotate`);
    assert.equal(rot.status, 200, JSON.stringify(rot.body));
    const old = secret;
    secret = rot.body.secret;
    assert.notEqual(secret, old);
    const before = deliveries.length;
    const w = await gw.admin('POST', `/admin/v1/platforms/${platform.id}/wallet/topup`, '{"amount_usd":1}', { 'Idempotency-Key': 'hook-after-rotate' });
    assert.equal(w.status, 200);
    const d = await eventually('a delivery after rotation', () => deliveries.slice(before).find((x) => x.event?.event_type === 'wallet.topped_up'));
    const sigs = String(d.headers['webhook-signature']).split(' ');
    assert.equal(sigs.length, 2, `want signatures under both secrets: ${sigs.join(' ')}`);
    assert.equal(verifyWebhook(d.body, d.headers, secret).id, d.event?.id);
    assert.equal(verifyWebhook(d.body, d.headers, old).id, d.event?.id);
  });
});
