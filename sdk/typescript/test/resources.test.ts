// Every resource method against the real gateway (bin/gateway with the mock
// upstream): round trips, pagination, exact amounts and the error classes.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import {
  Assistiv,
  AssistivAuthError,
  AssistivError,
  AssistivPaymentRequiredError,
  AssistivRateLimitError,
  type Fetch,
} from '../src/index.js';
import { eventually, listen, readBody, startGateway, zip, type Gateway, type LocalServer } from './helpers.js';

let gw: Gateway;
let platform: { id: string; key: string };
let client: Assistiv;
/** Requests the counting client sent, as "METHOD path?query". */
const sent: string[] = [];

const counting: Fetch = (input, init) => {
  const u = new URL(String(input));
  sent.push(`${init?.method ?? 'GET'} ${u.pathname}${u.search}`);
  return fetch(input, init);
};

async function rejects<E extends AssistivError>(p: Promise<unknown>, cls: new (...a: any[]) => E, status: number, code: string): Promise<E> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof cls, `got ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}, want ${cls.name}`);
    assert.ok(e instanceof AssistivError);
    assert.equal(e.status, status);
    assert.equal(e.code, code);
    assert.match(e.requestId ?? '', /^req_/);
    assert.equal(typeof e.message, 'string');
    return e;
  }
  assert.fail(`resolved, want ${cls.name} ${status} ${code}`);
}

before(async () => {
  gw = await startGateway();
  platform = await gw.createPlatform('acme', { walletUSD: '100', providers: true });
  client = new Assistiv({ apiKey: platform.key, baseURL: gw.url, fetch: counting });
});

after(async () => {
  await gw?.stop();
});

describe('me and the platform id', () => {
  it('me() tells the key apart and the platform id is looked up once', async () => {
    const c = new Assistiv({ apiKey: platform.key, baseURL: gw.url, fetch: counting });
    const start = sent.length;
    await c.endUsers.list();
    await c.rateLimits.getDefaults();
    const mine = sent.slice(start);
    assert.deepEqual(mine.filter((s) => s.startsWith('GET /v1/me')).length, 1, mine.join('\n'));
    const me = await c.me();
    assert.equal(me.key_type, 'platform');
    assert.equal(me.platform_id, platform.id);
    assert.match(me.key_prefix, /^sk-plat_/);
  });

  it('an explicit platformId is used and sent as X-Assistiv-Platform-Id', async () => {
    const c = new Assistiv({ apiKey: platform.key, baseURL: gw.url, platformId: platform.id, fetch: counting });
    const start = sent.length;
    assert.equal((await c.platform.get()).id, platform.id);
    assert.deepEqual(sent.slice(start), [`GET /v1/platforms/${platform.id}`]);
    const other = await gw.createPlatform('other');
    const wrong = new Assistiv({ apiKey: platform.key, baseURL: gw.url, platformId: other.id });
    await rejects(wrong.endUsers.list(), AssistivAuthError, 403, 'platform_mismatch');
  });

  it('platform.get and platform.update', async () => {
    const p = await client.platform.update({ display_name: 'Acme Inc', default_rate_limits: { requests_per_day: 5000 } });
    assert.equal(p.settings.display_name, 'Acme Inc');
    assert.equal(p.settings.default_rate_limits.requests_per_day, 5000);
    assert.equal((await client.platform.get()).settings.display_name, 'Acme Inc');
    await rejects(client.patch(`/v1/platforms/${platform.id}`, { markup_pct: 10 }), AssistivError, 403, 'forbidden_field');
  });
});

describe('endUsers', () => {
  it('create is idempotent on external_id, get/update/delete round-trip', async () => {
    const a = await client.endUsers.create({ external_id: 'user-42', display_name: 'Jane Smith', metadata: { plan: 'pro', seats: 12345678901234567890n.toString() } });
    assert.match(a.id, /^eu_/);
    assert.equal(a.external_id, 'user-42');
    assert.equal(a.display_name, 'Jane Smith');
    assert.deepEqual(a.metadata, { plan: 'pro', seats: '12345678901234567890' });
    assert.match(a.api_key.raw_key, /^sk-eu_/);
    const again = await client.endUsers.create({ external_id: 'user-42' });
    assert.equal(again.id, a.id);
    assert.notEqual(again.api_key.raw_key, a.api_key.raw_key);

    const got = await client.endUsers.get(a.id);
    assert.equal(got.id, a.id);
    assert.ok(got.effective_rate_limits);
    const upd = await client.endUsers.update(a.id, { display_name: 'Jane S.', metadata: { plan: 'team', n: 1.5 } });
    assert.equal(upd.display_name, 'Jane S.');
    assert.deepEqual(upd.metadata, { plan: 'team', n: 1.5 });

    const filtered = await client.endUsers.list({ external_id: 'user-42' });
    assert.deepEqual(filtered.data.map((u) => u.id), [a.id]);

    const del = await client.endUsers.delete(a.id);
    assert.equal(del.deleted, true);
    await rejects(client.endUsers.get(a.id), AssistivError, 404, 'not_found');
    const e = await rejects(client.endUsers.get('eu_doesnotexist'), AssistivError, 404, 'not_found');
    assert.ok(!(e instanceof AssistivAuthError));
  });

  it('list: await gives one page, for await walks every page once', async () => {
    const p = await gw.createPlatform('paging');
    const c = new Assistiv({ apiKey: p.key, baseURL: gw.url, platformId: p.id, fetch: counting });
    const ids = new Set<string>();
    for (let i = 0; i < 7; i++) ids.add((await c.endUsers.create({ external_id: `page-${i}` })).id);

    const start = sent.length;
    const seen: string[] = [];
    for await (const u of c.endUsers.list({ limit: 3 })) seen.push(u.id);
    const calls = sent.slice(start);
    assert.equal(seen.length, 7);
    assert.deepEqual(new Set(seen), ids);
    assert.equal(calls.length, 3, calls.join('\n')); // 3 + 3 + 1
    assert.equal(new Set(calls).size, 3, 'a page was fetched twice');

    const first = await c.endUsers.list({ limit: 3 });
    assert.equal(first.data.length, 3);
    assert.ok(first.hasNextPage());
    const second = await first.getNextPage();
    assert.equal(second.data.length, 3);
    const third = await second.getNextPage();
    assert.equal(third.data.length, 1);
    assert.equal(third.hasNextPage(), false);
    await assert.rejects(third.getNextPage(), /no next page/);
    assert.deepEqual(new Set([...first.data, ...second.data, ...third.data].map((u) => u.id)), ids);
    assert.equal((await c.endUsers.list({ limit: 100 }).toArray()).length, 7);
  });
});

describe('budgets', () => {
  let user: string;
  before(async () => {
    user = (await client.endUsers.create({ external_id: 'budget-user' })).id;
  });

  it('create, get, update, delete', async () => {
    const b = await client.budgets.create(user, { amount_usd: '10', period: 'monthly', low_balance_threshold_usd: 0.5 });
    assert.equal(b.amount_usd, '10');
    assert.equal(b.balance_usd, '10');
    assert.equal(b.period, 'monthly');
    assert.equal(b.low_balance_threshold_usd, '0.5');
    assert.equal((await client.budgets.get(user)).balance_usd, '10');
    const u = await client.budgets.update(user, { amount_usd: '12.5', is_suspended: false });
    assert.equal(u.amount_usd, '12.5');
    assert.equal(u.balance_usd, '12.5');
    const tmp = (await client.endUsers.create({ external_id: 'budget-tmp' })).id;
    await client.budgets.create(tmp, { amount_usd: 1 });
    assert.equal((await client.budgets.delete(tmp)).deleted, true);
    await rejects(client.budgets.get(tmp), AssistivError, 404, 'not_found');
  });

  it('amounts travel digit for digit, both ways', async () => {
    const before = await client.budgets.get(user);
    const r = await client.budgets.topup(user, { amount_usd: '0.000000001', reason: 'one nano' });
    assert.equal(r.transaction.amount_usd, '0.000000001');
    assert.equal(r.budget.balance_usd, addNanos(before.balance_usd, 1n));
    // Ten decimals: the SDK sends them as written, the gateway refuses.
    await rejects(client.budgets.topup(user, { amount_usd: '1.0000000001' }), AssistivError, 400, 'invalid_amount');
    // A float would print 123456789.12345679.
    const big = (await client.endUsers.create({ external_id: 'big' })).id;
    await client.budgets.create(big, { amount_usd: 0 });
    const t = await client.budgets.topup(big, { amount_usd: '123456789.123456789' });
    assert.equal(t.budget.balance_usd, '123456789.123456789');
    assert.equal(t.transaction.balance_after_usd, '123456789.123456789');
    const n = await client.budgets.topup(big, { amount_usd: 1e-9 });
    assert.equal(n.budget.balance_usd, '123456789.12345679');
    await assert.rejects(client.budgets.topup(big, { amount_usd: Number.NaN }), TypeError);
    await assert.rejects(client.budgets.topup(big, { amount_usd: '5 USD' }), TypeError);
  });

  it('topup and debit are idempotent: one key, one movement', async () => {
    const b0 = await client.budgets.get(user);
    const first = await client.budgets.topup(user, { amount_usd: 5, reason: 'monthly_stipend' }, { idempotencyKey: 'stipend-2026-05' });
    assert.equal(first.replayed, false);
    assert.equal(first.transaction.idempotency_key, 'stipend-2026-05');
    const second = await client.budgets.topup(user, { amount_usd: 5, reason: 'monthly_stipend' }, { idempotencyKey: 'stipend-2026-05' });
    assert.equal(second.replayed, true);
    assert.equal(second.transaction.id, first.transaction.id);
    assert.equal((await client.budgets.get(user)).balance_usd, addNanos(b0.balance_usd, 5_000_000_000n));
    await rejects(client.budgets.topup(user, { amount_usd: 6 }, { idempotencyKey: 'stipend-2026-05' }), AssistivError, 422, 'idempotency_key_reused');

    // Without a key the SDK generates a fresh one per call.
    const a = await client.budgets.debit(user, { amount_usd: '2.5', reason: 'manual' });
    const b = await client.budgets.debit(user, { amount_usd: '2.5', reason: 'manual' });
    assert.match(a.transaction.idempotency_key ?? '', /^[0-9a-f-]{36}$/);
    assert.notEqual(a.transaction.idempotency_key, b.transaction.idempotency_key);
    assert.equal(a.transaction.amount_usd, '-2.5');
    assert.equal(b.budget.balance_usd, addNanos(b0.balance_usd, 0n));

    await rejects(client.budgets.debit(user, { amount_usd: 1_000_000 }), AssistivPaymentRequiredError, 402, 'budget_exhausted');
  });

  it('transactions: every entry once, newest first, across pages', async () => {
    const start = sent.length;
    const all = await client.budgets.transactions(user, { limit: 2 }).toArray();
    const pages = sent.slice(start).filter((s) => s.includes('/budget/transactions'));
    const single = await client.budgets.transactions(user, { limit: 1000 });
    assert.equal(single.has_more, false);
    assert.deepEqual(all.map((t) => t.id), single.data.map((t) => t.id));
    assert.equal(new Set(all.map((t) => t.id)).size, all.length);
    assert.ok(all.length >= 6, `only ${all.length} entries`);
    assert.equal(new Set(pages).size, pages.length, 'a page was fetched twice');
    assert.ok(pages.length >= Math.ceil(all.length / 2) && pages.length <= Math.ceil(all.length / 2) + 1, pages.join('\n'));
    for (let i = 1; i < all.length; i++) assert.ok(all[i - 1]!.sequence > all[i]!.sequence);
  });
});

describe('rateLimits', () => {
  it('platform defaults and per-user overrides', async () => {
    const d = await client.rateLimits.setDefaults({ requests_per_minute: 100, tokens_per_minute: 50_000 });
    assert.deepEqual(d, { requests_per_minute: 100, tokens_per_minute: 50_000, requests_per_day: 0, max_parallel_requests: 0 });
    assert.deepEqual(await client.rateLimits.getDefaults(), d);
    const u = (await client.endUsers.create({ external_id: 'limits-user' })).id;
    const none = await client.rateLimits.get(u);
    assert.equal(none.override, null);
    assert.equal(none.effective.requests_per_minute, 100);
    const set = await client.rateLimits.set(u, { requests_per_minute: 600, tokens_per_minute: 250_000 });
    // Fields absent from an override follow the platform default (null).
    assert.deepEqual(set.override, { requests_per_minute: 600, tokens_per_minute: 250_000, requests_per_day: null, max_parallel_requests: null });
    assert.equal(set.effective.requests_per_minute, 600);
    assert.equal((await client.rateLimits.get(u)).override?.tokens_per_minute, 250_000);
    const cleared = await client.rateLimits.delete(u);
    assert.equal(cleared.override, null);
    assert.equal(cleared.effective.requests_per_minute, 100);
    await rejects(client.rateLimits.set(u, { requests_per_minute: -1 }), AssistivError, 400, 'invalid_field');
    await client.rateLimits.setDefaults({});
  });
});

describe('apiKeys', () => {
  it('create, list, revoke', async () => {
    const k = await client.apiKeys.create({ name: 'Production server' });
    assert.match(k.raw_key, /^sk-plat_/);
    const other = new Assistiv({ apiKey: k.raw_key, baseURL: gw.url });
    assert.equal((await other.me()).key_id, k.id);
    const list = await client.apiKeys.list();
    const listed = list.find((x) => x.id === k.id);
    assert.ok(listed);
    assert.equal(listed.raw_key, undefined);
    assert.equal(listed.key_prefix, k.key_prefix);
    assert.equal((await client.apiKeys.revoke(k.id)).revoked, true);
    await rejects(other.me(), AssistivAuthError, 401, 'invalid_api_key');
    assert.equal((await client.apiKeys.list()).find((x) => x.id === k.id), undefined, 'a revoked key is still listed');
  });
});

describe('wallet', () => {
  it('get and transactions', async () => {
    const p = await gw.createPlatform('wallet-co', { walletUSD: '100' });
    for (const [i, amt] of ['0.25', '7', '0.000000001'].entries()) {
      const r = await gw.admin('POST', `/admin/v1/platforms/${p.id}/wallet/topup`, `{"amount_usd":${amt}}`, { 'Idempotency-Key': `w-${i}` });
      assert.equal(r.status, 200);
    }
    const c = new Assistiv({ apiKey: p.key, baseURL: gw.url });
    const w = await c.wallet.get();
    assert.equal(w.balance_usd, '107.250000001');
    assert.equal(w.reserved_usd, '0');
    const txs = await c.wallet.transactions({ limit: 3 }).toArray();
    assert.deepEqual(txs.map((t) => t.amount_usd), ['0.000000001', '7', '0.25', '100']);
    assert.equal(txs[0]!.balance_after_usd, '107.250000001');
  });
});

describe('models, inference logs', () => {
  it('models.list with either key', async () => {
    const eu = await client.endUsers.create({ external_id: 'models-user' });
    const viaPlatform = await client.models.list();
    const viaUser = await new Assistiv({ apiKey: eu.api_key.raw_key, baseURL: gw.url }).models.list();
    assert.ok(viaPlatform.some((m) => m.id === 'gpt-4o-mini' && m.owned_by === 'openai'));
    assert.deepEqual(viaUser, viaPlatform);
    const bare = await gw.createPlatform('no-providers');
    assert.deepEqual(await new Assistiv({ apiKey: bare.key, baseURL: gw.url }).models.list(), []);
  });

  it('logs.list filters and iterates, logs.get reads one entry', async () => {
    const eu = await client.endUsers.create({ external_id: 'logs-user' });
    await client.budgets.create(eu.id, { amount_usd: 5 });
    const openai = new OpenAI({ apiKey: eu.api_key.raw_key, baseURL: `${gw.url}/v1`, maxRetries: 0 });
    const rids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const { response } = await openai.chat.completions
        .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `hello ${i}` }] })
        .withResponse();
      rids.push(response.headers.get('x-request-id') ?? '');
    }
    const entries = await eventually('3 log entries', async () => {
      const all = await client.logs.list({ end_user_id: eu.id, limit: 1 }).toArray();
      return all.length === 3 ? all : undefined;
    });
    assert.deepEqual(entries.map((e) => e.request_id), [...rids].reverse()); // newest first
    for (const e of entries) {
      assert.equal(e.model, 'gpt-4o-mini');
      assert.equal(e.status_code, 200);
      assert.match(e.cost_usd, /^\d+(\.\d{1,9})?$/);
    }
    const one = await client.logs.get(rids[0]!);
    assert.equal(one.request_id, rids[0]);
    assert.equal(one.end_user_id, eu.id);
    assert.equal((await client.logs.list({ end_user_id: eu.id, status: '4xx' })).data.length, 0);
    assert.equal((await client.logs.list({ end_user_id: eu.id, model: 'gpt-4o-mini', status: 200, since: new Date(Date.now() - 3600_000) })).data.length, 3);
    assert.equal((await client.logs.list({ end_user_id: eu.id, end: '2000-01-01T00:00:00Z' })).data.length, 0);
    await rejects(client.logs.get('req_00000000000000000000000000'), AssistivError, 404, 'not_found');
    await rejects(client.logs.list({ status: 'teapot' }), AssistivError, 400, 'invalid_parameter');
  });
});

describe('skills', () => {
  it('create, get (either key), delete', async () => {
    const p = await client.platform.update({ skills_enabled: true });
    assert.equal(p.settings.skills_enabled, true);
    const archive = zip({ 'SKILL.md': '# Tokyo trips\nPlan a trip to Tokyo.\n', 'plan.py': 'print("hi")\n' });
    const s = await client.skills.create({ name: 'tokyo-trips', description: 'Plans trips to Tokyo', archive });
    assert.equal(s.visibility, 'private');
    assert.equal(s.file_count, 2);
    assert.deepEqual(s.files.map((f) => f.path).sort(), ['SKILL.md', 'plan.py']);
    assert.equal((await client.skills.get(s.id)).name, 'tokyo-trips');
    const eu = await client.endUsers.create({ external_id: 'skills-user' });
    assert.equal((await new Assistiv({ apiKey: eu.api_key.raw_key, baseURL: gw.url }).skills.get(s.id)).id, s.id);
    const b64 = await client.skills.create({ name: 'same-via-base64', description: 'x', archive: { base64: archive.toString('base64') } });
    assert.equal(b64.total_bytes, s.total_bytes);
    assert.equal((await client.skills.delete(s.id)).deleted, true);
    await rejects(client.skills.get(s.id), AssistivError, 404, 'skill_not_found');
    await rejects(client.skills.create({ name: 'bad', description: 'x', archive: Buffer.from('not a zip') }), AssistivError, 400, 'invalid_archive');
  });
});

describe('mcpApps', () => {
  let fake: LocalServer;
  before(async () => {
    fake = await listen(async (req, res) => {
      const u = new URL(req.url ?? '/', 'http://x');
      if (u.pathname === '/authorize') {
        const to = new URL(u.searchParams.get('redirect_uri') ?? '');
        to.searchParams.set('code', 'code-123');
        to.searchParams.set('state', u.searchParams.get('state') ?? '');
        res.writeHead(302, { Location: to.toString() }).end();
        return;
      }
      if (u.pathname === '/token') {
        const form = new URLSearchParams((await readBody(req)).toString());
        const ok = form.get('code') === 'code-123' && form.get('client_id') === 'gh-client' && (form.get('code_verifier') ?? '').length >= 43;
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(ok ? { access_token: 'gho_test', token_type: 'bearer', scope: 'repo' } : { error: 'invalid_grant' }));
        return;
      }
      res.writeHead(404).end();
    });
  });
  after(async () => fake?.close());

  it('list, connect through OAuth, disconnect', async () => {
    const act = await gw.admin('PUT', `/admin/v1/platforms/${platform.id}/mcp-apps/github`, {
      client_id: 'gh-client', client_secret: 'gh-secret', landing_url: 'http://127.0.0.1:1/app', active: true,
      authorize_url: `${fake.url}/authorize`, token_url: `${fake.url}/token`, api_base_url: `${fake.url}/api`,
    });
    assert.equal(act.status, 200, JSON.stringify(act.body));
    const eu = await client.endUsers.create({ external_id: 'mcp-user' });
    const user = new Assistiv({ apiKey: eu.api_key.raw_key, baseURL: gw.url });
    const apps = await user.mcpApps.list();
    assert.deepEqual(apps.map((a) => [a.app, a.active, a.connected]), [['github', true, false]]);

    const auth = await user.mcpApps.connect('github');
    assert.equal(auth.app, 'github');
    const au = new URL(auth.authorization_url);
    assert.equal(au.origin + au.pathname, `${fake.url}/authorize`);
    assert.equal(au.searchParams.get('code_challenge_method'), 'S256');
    // The browser's part: consent at the app, then back to the gateway.
    const consent = await fetch(auth.authorization_url, { redirect: 'manual' });
    const callback = await fetch(consent.headers.get('location') ?? '', { redirect: 'manual' });
    assert.equal(callback.status, 302);
    // The landing page gets a confirmation; the platform's back end
    // completes it with the same end-user's key.
    const landing = new URL(callback.headers.get('location') ?? '');
    assert.equal(landing.searchParams.get('status'), 'confirm');
    const confirmation = landing.searchParams.get('confirmation') ?? '';
    const other = new Assistiv({ apiKey: (await client.endUsers.create({ external_id: 'mcp-other' })).api_key.raw_key, baseURL: gw.url });
    await rejects(other.mcpApps.confirm('github', confirmation), AssistivError, 403, 'connection_user_mismatch');
    const again = await user.mcpApps.connect('github');
    const consent2 = await fetch(again.authorization_url, { redirect: 'manual' });
    const callback2 = await fetch(consent2.headers.get('location') ?? '', { redirect: 'manual' });
    const confirmation2 = new URL(callback2.headers.get('location') ?? '').searchParams.get('confirmation') ?? '';
    assert.equal((await user.mcpApps.confirm('github', confirmation2)).connected, true);
    const connected = await user.mcpApps.list();
    assert.equal(connected[0]?.connected, true);
    assert.ok(connected[0]?.connected_at);

    assert.equal((await user.mcpApps.disconnect('github')).deleted, true);
    assert.equal((await user.mcpApps.list())[0]?.connected, false);
    await rejects(user.mcpApps.connect('slack'), AssistivError, 409, 'app_not_active');
    await rejects(user.mcpApps.connect('myspace'), AssistivError, 404, 'app_not_found');
    await rejects(client.mcpApps.list(), AssistivAuthError, 403, 'wrong_key_type');
  });
});

describe('error classes', () => {
  it('401 and 403 wrong_key_type are AssistivAuthError', async () => {
    const bad = new Assistiv({ apiKey: 'sk-plat_not-a-real-key', baseURL: gw.url, platformId: platform.id });
    await rejects(bad.me(), AssistivAuthError, 401, 'invalid_api_key');
    await rejects(bad.endUsers.list(), AssistivAuthError, 401, 'invalid_api_key');
    const eu = await client.endUsers.create({ external_id: 'wrong-key-user' });
    const user = new Assistiv({ apiKey: eu.api_key.raw_key, baseURL: gw.url, platformId: platform.id });
    await rejects(user.endUsers.list(), AssistivAuthError, 403, 'wrong_key_type');
    // Without platformId, platform routes need a platform key to find it.
    const lookup = new Assistiv({ apiKey: eu.api_key.raw_key, baseURL: gw.url });
    await assert.rejects(lookup.endUsers.list(), (e: unknown) => e instanceof AssistivError && e.code === 'wrong_key_type');
  });

  it('402 and 429 from inference', async () => {
    const eu = await client.endUsers.create({ external_id: 'limited-user' });
    await client.budgets.create(eu.id, { amount_usd: 5 });
    await client.rateLimits.set(eu.id, { requests_per_minute: 1 });
    const user = new Assistiv({ apiKey: eu.api_key.raw_key, baseURL: gw.url, maxRetries: 0 });
    const body = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] };
    await user.post('/v1/chat/completions', body);
    const rl = await rejects(user.post('/v1/chat/completions', body), AssistivRateLimitError, 429, 'rate_limited');
    assert.ok(rl.retryAfter !== undefined && rl.retryAfter > 0 && rl.retryAfter <= 60, `retryAfter ${rl.retryAfter}`);
    assert.equal(rl.type, 'rate_limit_error');

    await client.rateLimits.delete(eu.id);
    await client.budgets.update(eu.id, { is_suspended: true });
    const pr = await rejects(user.post('/v1/chat/completions', body), AssistivPaymentRequiredError, 402, 'budget_suspended');
    assert.equal(pr.type, 'payment_required');
  });

  it('other statuses are AssistivError with the structured code', async () => {
    const e = await rejects(client.endUsers.create({ external_id: '' }), AssistivError, 400, 'missing_field');
    assert.ok(!(e instanceof AssistivAuthError) && !(e instanceof AssistivPaymentRequiredError) && !(e instanceof AssistivRateLimitError));
    await rejects(client.get('/v1/no-such-route'), AssistivError, 404, 'route_not_found');
    // The generic methods reach any route with the same parsing and errors.
    const put = await client.put<{ requests_per_minute: number }>(`/v1/platforms/${platform.id}/rate-limits`, { requests_per_minute: 7 });
    assert.equal(put.requests_per_minute, 7);
    assert.equal((await client.get<{ requests_per_minute: number }>(`/v1/platforms/${platform.id}/rate-limits`)).requests_per_minute, 7);
    const eu = await client.post<{ id: string }>(`/v1/platforms/${platform.id}/end-users`, { external_id: 'generic' });
    const w = await client.get<{ data: Array<{ id: string }> }>(`/v1/platforms/${platform.id}/end-users`, { query: { external_id: 'generic' } });
    assert.deepEqual(w.data.map((u) => u.id), [eu.id]);
    assert.equal((await client.delete<{ deleted: boolean }>(`/v1/platforms/${platform.id}/end-users/${eu.id}`)).deleted, true);
    await client.put(`/v1/platforms/${platform.id}/rate-limits`, {});
  });
});

/** addNanos adds n nano-USD to a decimal string, exactly. */
function addNanos(decimal: string, n: bigint): string {
  const [int, frac = ''] = decimal.split('.');
  const nanos = BigInt(int!) * 1_000_000_000n + BigInt((frac + '000000000').slice(0, 9)) + n;
  const whole = nanos / 1_000_000_000n;
  const rest = (nanos % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  return rest === '' ? whole.toString() : `${whole}.${rest}`;
}
