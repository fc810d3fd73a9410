// Retry rules, against the real gateway behind a loopback proxy that injects
// failures: 5xx and 429 are retried for idempotent methods and for requests
// carrying an Idempotency-Key, never for a POST or PATCH without one;
// Retry-After is honoured; timeouts and refused connections raise their
// classes.

import assert from 'node:assert/strict';
import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { after, before, beforeEach, describe, it } from 'node:test';
import {
  Assistiv,
  AssistivConnectionError,
  AssistivError,
  AssistivRateLimitError,
  AssistivTimeoutError,
} from '../src/index.js';
import { backoffMs, mayRetry } from '../src/core.js';
import { freePort, listen, readBody, startGateway, type Gateway, type LocalServer } from './helpers.js';

/** What the proxy does with one request. */
type Fault =
  | { kind: 'answer'; status: number; headers?: Record<string, string>; body?: unknown }
  /** Forward to the gateway, drop its answer, answer 502: a lost response. */
  | { kind: 'lose'; status: number }
  | { kind: 'delay'; ms: number };

interface Seen {
  method: string;
  path: string;
  idempotencyKey: string | undefined;
  at: number;
}

let gw: Gateway;
let proxy: LocalServer;
let platform: { id: string; key: string };
let faults: Fault[] = [];
let seen: Seen[] = [];

function forward(method: string, path: string, headers: Record<string, string>, body: Buffer): Promise<{ status: number; headers: Record<string, string>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const u = new URL(gw.url + path);
    const req = httpRequest({ host: u.hostname, port: u.port, path, method, headers }, async (res) => {
      const chunks: Buffer[] = [];
      for await (const c of res) chunks.push(c as Buffer);
      const h: Record<string, string> = {};
      for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string' && k !== 'content-length' && k !== 'connection') h[k] = v;
      resolve({ status: res.statusCode ?? 0, headers: h, body: Buffer.concat(chunks) });
    });
    req.on('error', reject);
    req.end(body);
  });
}

before(async () => {
  gw = await startGateway();
  platform = await gw.createPlatform('retry-co');
  proxy = await listen((req, res) => {
    serve(req, res).catch(() => res.destroy()); // e.g. the gateway stopped under a delayed request
  });
  const serve = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const body = await readBody(req);
    const key = req.headers['idempotency-key'];
    seen.push({ method: req.method ?? '', path: req.url ?? '', idempotencyKey: typeof key === 'string' ? key : undefined, at: Date.now() });
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string' && k !== 'host' && k !== 'connection') headers[k] = v;
    const fault = faults.shift();
    if (fault?.kind === 'answer') {
      res.writeHead(fault.status, { 'Content-Type': 'application/json', ...fault.headers });
      res.end(fault.body === undefined ? '' : JSON.stringify(fault.body));
      return;
    }
    if (fault?.kind === 'delay') await new Promise((r) => setTimeout(r, fault.ms));
    const out = await forward(req.method ?? 'GET', req.url ?? '/', headers, body);
    if (fault?.kind === 'lose') {
      res.writeHead(fault.status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ error: { type: 'api_error', code: 'bad_gateway', message: 'upstream answer lost', request_id: 'req_proxy' } }));
      return;
    }
    if (res.destroyed) return;
    res.writeHead(out.status, out.headers);
    res.end(out.body);
  };
});

after(async () => {
  await proxy?.close();
  await gw?.stop();
});

beforeEach(() => {
  faults = [];
  seen = [];
});

const unavailable = (n: number): Fault[] =>
  Array.from({ length: n }, () => ({ kind: 'answer', status: 503, body: { error: { type: 'overloaded_error', code: 'unavailable', message: 'try again', request_id: 'req_x' } } }) as Fault);

function client(opts: { maxRetries?: number; timeout?: number } = {}): Assistiv {
  return new Assistiv({ apiKey: platform.key, baseURL: proxy.url, platformId: platform.id, ...opts });
}

describe('retry rules', () => {
  it('the rule: idempotent methods, or an Idempotency-Key', () => {
    for (const m of ['GET', 'PUT', 'DELETE']) assert.equal(mayRetry(m, {}), true, m);
    for (const m of ['POST', 'PATCH']) {
      assert.equal(mayRetry(m, {}), false, m);
      assert.equal(mayRetry(m, { 'Idempotency-Key': 'k' }), true, m);
    }
    const waits = [1, 2, 3, 4, 5, 6].map((n) => backoffMs(n, () => 1));
    assert.deepEqual(waits, [500, 1000, 2000, 4000, 8000, 8000]);
    assert.equal(backoffMs(1, () => 0), 375);
  });

  it('GET is retried on 5xx until it succeeds', async () => {
    faults = unavailable(2);
    const rl = await client({ maxRetries: 2 }).rateLimits.getDefaults();
    assert.equal(rl.requests_per_minute, 0);
    assert.equal(seen.length, 3);
    assert.ok(seen[1]!.at - seen[0]!.at >= 350, 'no backoff before the first retry');
  });

  it('GET gives up after maxRetries with the last error', async () => {
    faults = unavailable(5);
    await assert.rejects(client({ maxRetries: 1 }).rateLimits.getDefaults(), (e: unknown) => e instanceof AssistivError && e.status === 503 && e.code === 'unavailable');
    assert.equal(seen.length, 2);
    faults = unavailable(1);
    seen = [];
    await assert.rejects(client({ maxRetries: 2 }).rateLimits.getDefaults({ maxRetries: 0 }), AssistivError);
    assert.equal(seen.length, 1, 'per-call maxRetries ignored');
    faults = [];
  });

  it('PUT and DELETE are retried', async () => {
    faults = unavailable(1);
    await client().rateLimits.setDefaults({ requests_per_day: 10 });
    assert.deepEqual(seen.map((s) => s.method), ['PUT', 'PUT']);
    const eu = await client().endUsers.create({ external_id: 'delete-retried' });
    faults = unavailable(1);
    seen = [];
    assert.equal((await client().endUsers.delete(eu.id)).deleted, true);
    assert.deepEqual(seen.map((s) => s.method), ['DELETE', 'DELETE']);
  });

  it('a POST without an Idempotency-Key is never retried', async () => {
    faults = unavailable(1);
    await assert.rejects(client({ maxRetries: 3 }).endUsers.create({ external_id: 'never-retried' }), (e: unknown) => e instanceof AssistivError && e.status === 503);
    assert.equal(seen.length, 1);
    faults = [{ kind: 'lose', status: 502 }];
    seen = [];
    await assert.rejects(client({ maxRetries: 3 }).endUsers.create({ external_id: 'lost-create' }), (e: unknown) => e instanceof AssistivError && e.status === 502);
    assert.equal(seen.length, 1);
    faults = [{ kind: 'answer', status: 429, headers: { 'Retry-After': '1' }, body: { error: { type: 'rate_limit_error', code: 'rate_limited', message: 'slow down', request_id: 'req_y' } } }];
    seen = [];
    await assert.rejects(client({ maxRetries: 3 }).apiKeys.create({ name: 'x' }), AssistivRateLimitError);
    assert.equal(seen.length, 1);
  });

  it('a PATCH without an Idempotency-Key is never retried', async () => {
    faults = unavailable(1);
    await assert.rejects(client({ maxRetries: 3 }).platform.update({ display_name: 'x' }), AssistivError);
    assert.equal(seen.length, 1);
  });

  it('a top-up whose answer was lost is retried with the same key and applied once', async () => {
    const c = client({ maxRetries: 2 });
    const eu = await c.endUsers.create({ external_id: 'lost-topup' });
    await c.budgets.create(eu.id, { amount_usd: 0 });
    faults = [{ kind: 'lose', status: 502 }];
    seen = [];
    const r = await c.budgets.topup(eu.id, { amount_usd: '1.25' });
    assert.equal(seen.length, 2);
    assert.ok(seen[0]!.idempotencyKey);
    assert.equal(seen[1]!.idempotencyKey, seen[0]!.idempotencyKey);
    assert.equal(r.replayed, true, 'the retry should replay the first, applied, top-up');
    assert.equal(r.budget.balance_usd, '1.25');
    assert.equal((await c.budgets.get(eu.id)).balance_usd, '1.25');
    const txs = await c.budgets.transactions(eu.id).toArray();
    assert.equal(txs.filter((t) => t.idempotency_key === seen[0]!.idempotencyKey).length, 1);

    // The same with the caller's own key, through a debit.
    faults = [{ kind: 'lose', status: 500 }, ...unavailable(1)];
    seen = [];
    const d = await c.budgets.debit(eu.id, { amount_usd: '0.25' }, { idempotencyKey: 'debit-once' });
    assert.deepEqual(seen.map((s) => s.idempotencyKey), ['debit-once', 'debit-once', 'debit-once']);
    assert.equal(d.budget.balance_usd, '1');
    // A POST given an explicit key through the generic method is retried too.
    faults = unavailable(1);
    seen = [];
    await c.post(`/v1/platforms/${platform.id}/end-users/${eu.id}/budget/topup`, { amount_usd: 1 }, { idempotencyKey: 'generic-key' });
    assert.equal(seen.length, 2);
  });

  it('429 waits Retry-After before retrying', async () => {
    faults = [{ kind: 'answer', status: 429, headers: { 'Retry-After': '1' }, body: { error: { type: 'rate_limit_error', code: 'rate_limited', message: 'slow down', request_id: 'req_z' } } }];
    await client({ maxRetries: 1 }).apiKeys.list();
    assert.equal(seen.length, 2);
    const waited = seen[1]!.at - seen[0]!.at;
    assert.ok(waited >= 950, `retried after ${waited} ms, Retry-After said 1 s`);
  });

  it('a Retry-After beyond 60 s is raised at once with retryAfter', async () => {
    faults = [{ kind: 'answer', status: 429, headers: { 'Retry-After': '120' }, body: { error: { type: 'rate_limit_error', code: 'rate_limited', message: 'later', request_id: 'req_w' } } }];
    const t0 = Date.now();
    await assert.rejects(client({ maxRetries: 3 }).apiKeys.list(), (e: unknown) => e instanceof AssistivRateLimitError && e.retryAfter === 120);
    assert.equal(seen.length, 1);
    assert.ok(Date.now() - t0 < 1000);
  });

  it('4xx other than 429 is not retried', async () => {
    faults = [{ kind: 'answer', status: 409, body: { error: { type: 'idempotency_error', code: 'idempotency_key_in_use', message: 'busy', request_id: 'req_v' } } }];
    await assert.rejects(client({ maxRetries: 3 }).apiKeys.list(), (e: unknown) => e instanceof AssistivError && e.status === 409);
    assert.equal(seen.length, 1);
  });
});

describe('timeouts and connection errors', () => {
  it('a GET that times out is retried, then raises AssistivTimeoutError', async () => {
    faults = [{ kind: 'delay', ms: 1500 }, { kind: 'delay', ms: 1500 }];
    const t0 = Date.now();
    await assert.rejects(client({ maxRetries: 1, timeout: 200 }).apiKeys.list(), (e: unknown) => e instanceof AssistivTimeoutError && e.status === undefined && e.code === 'timeout');
    assert.equal(seen.length, 2);
    assert.ok(Date.now() - t0 < 1500);
  });

  it('a timed-out GET succeeds on retry', async () => {
    faults = [{ kind: 'delay', ms: 1000 }];
    const keys = await client({ maxRetries: 1, timeout: 250 }).apiKeys.list();
    assert.ok(keys.length >= 1);
    assert.equal(seen.length, 2);
  });

  it('a POST without a key that times out is not retried', async () => {
    faults = [{ kind: 'delay', ms: 1000 }];
    await assert.rejects(client({ maxRetries: 3, timeout: 200 }).endUsers.create({ external_id: 'slow' }), AssistivTimeoutError);
    assert.equal(seen.length, 1);
  });

  it('a refused connection raises AssistivConnectionError, retried for GET', async () => {
    const port = await freePort();
    const c = new Assistiv({ apiKey: platform.key, baseURL: `http://127.0.0.1:${port}`, platformId: platform.id, maxRetries: 1 });
    const t0 = Date.now();
    await assert.rejects(c.apiKeys.list(), (e: unknown) => e instanceof AssistivConnectionError && !(e instanceof AssistivTimeoutError) && e.code === 'connection_error');
    assert.ok(Date.now() - t0 >= 350, 'GET was not retried after a refused connection');
  });

  it("the caller's abort is not retried", async () => {
    faults = [{ kind: 'delay', ms: 1000 }];
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('user gave up')), 100);
    await assert.rejects(client({ maxRetries: 3 }).apiKeys.list({ signal: ac.signal }), /user gave up/);
    assert.equal(seen.length, 1);
  });
});
