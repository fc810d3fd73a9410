// The stack every compat test drives: the real bin/mockllm and bin/gateway,
// each on a free 127.0.0.1 port (the binaries pick it: -listen :0, read back
// from their log), the gateway on a temporary data dir, and a platform whose
// four providers point at the mock, with end-users for each test's needs.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = (name) => join(process.env.COMPAT_BIN_DIR || join(root, 'bin'), name);

/** One model per provider; each test runs on all four. */
export const PROVIDERS = [
  { provider: 'openai', model: 'gpt-4o-mini' },
  { provider: 'anthropic', model: 'claude-haiku-4-5' },
  { provider: 'google', model: 'gemini-2.5-flash' },
  { provider: 'xai', model: 'grok-3-mini' },
];

// start runs a binary and resolves with its listen address once the line
// matching re appears on stderr.
function start(cmd, args, env, re) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    // Never outlive the test process, even when it dies without after().
    const reap = () => child.kill('SIGKILL');
    process.once('exit', reap);
    child.once('exit', () => process.removeListener('exit', reap));
    let log = '';
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${cmd} did not start:\n${log}`)); }, 20000);
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d) => {
      if (log.length < 1 << 20) log += d;
      const m = re.exec(log);
      if (m && timer) {
        clearTimeout(timer);
        resolve({ child, addr: m[1], log: () => log });
      }
    });
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`${cmd} exited ${code}:\n${log}`)); });
  });
}

function stop(p) {
  return new Promise((resolve) => {
    if (p.child.exitCode !== null || p.child.signalCode !== null) return resolve();
    const t = setTimeout(() => p.child.kill('SIGKILL'), 10000);
    p.child.removeAllListeners('exit');
    p.child.on('exit', () => { clearTimeout(t); resolve(); });
    p.child.kill('SIGTERM');
  });
}

/** Stack is a running mock and gateway with one platform. */
export class Stack {
  static async start({ mockArgs = [] } = {}) {
    const s = new Stack();
    s.dir = mkdtempSync(join(tmpdir(), 'assistiv-compat-'));
    s.adminKey = 'compat-admin-' + randomBytes(12).toString('hex');
    s.mock = await start(bin('mockllm'), ['-listen', '127.0.0.1:0', '-text-and-tool', ...mockArgs], {}, /mockllm listening.*addr=(\S+)/);
    s.mockURL = 'http://' + s.mock.addr;
    s.gw = await start(bin('gateway'), ['serve', '-listen', '127.0.0.1:0', '-data-dir', join(s.dir, 'data'), '-allow-private-egress'], {
      ASSISTIV_ADMIN_KEY: s.adminKey,
      ASSISTIV_MASTER_KEY: randomBytes(32).toString('base64'),
      ASSISTIV_LOG_LEVEL: 'info',
    }, /msg=listening addr=(\S+)/);
    s.url = 'http://' + s.gw.addr;
    s.baseURL = s.url + '/v1';
    await s.setup();
    return s;
  }

  async stop() {
    await Promise.all([this.gw && stop(this.gw), this.mock && stop(this.mock)]);
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** call sends one JSON request to the gateway and returns {status, headers, body}. */
  async call(method, path, key, body, headers = {}) {
    const r = await fetch(this.url + path, {
      method,
      headers: { Authorization: 'Bearer ' + key, 'Content-Type': 'application/json', ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    let json;
    try { json = JSON.parse(text); } catch { json = undefined; }
    if (r.status >= 300 && !headers['x-allow-error']) {
      throw new Error(`${method} ${path}: ${r.status} ${text}`);
    }
    return { status: r.status, headers: r.headers, body: json, text };
  }

  async setup() {
    const admin = this.adminKey;
    const p = (await this.call('POST', '/admin/v1/platforms', admin, { name: 'compat' })).body;
    this.pid = p.platform.id;
    this.platformKey = p.api_key.raw_key;
    for (const { provider } of PROVIDERS) {
      await this.call('PUT', `/admin/v1/platforms/${this.pid}/llm-providers/${provider}`, admin,
        { api_key: 'mock-upstream-key', base_url: this.mockURL, enabled: true });
    }
    await this.call('POST', `/admin/v1/platforms/${this.pid}/wallet/topup`, admin, { amount_usd: 1000 },
      { 'Idempotency-Key': 'compat-fund' });
    await this.call('PATCH', `/admin/v1/platforms/${this.pid}`, admin, { skills_enabled: true });
  }

  /** endUser creates an end-user with a budget (USD) and optional rate limits; returns {id, key}. */
  async endUser(externalId, budgetUSD = 50, rateLimits) {
    const u = (await this.call('POST', `/v1/platforms/${this.pid}/end-users`, this.platformKey, { external_id: externalId })).body;
    await this.call('POST', `/v1/platforms/${this.pid}/end-users/${u.id}/budget`, this.platformKey, { amount_usd: budgetUSD, period: 'monthly' });
    if (rateLimits) {
      await this.call('PUT', `/v1/platforms/${this.pid}/end-users/${u.id}/rate-limits`, this.platformKey, rateLimits);
    }
    return { id: u.id, key: u.api_key.raw_key };
  }

  /** usage returns the usage ledger entries of an end-user's budget. */
  async usage(userId) {
    const r = await this.call('GET', `/v1/platforms/${this.pid}/end-users/${userId}/budget/transactions?limit=100`, this.platformKey);
    return r.body.data.filter((e) => e.type === 'usage');
  }

  /** mockRequests is how many requests the mock upstream received. */
  async mockRequests() {
    const r = await fetch(this.mockURL + '/mock/stats');
    return (await r.json()).total;
  }
}

/** countingFetch wraps fetch and counts (and keeps the URLs of) the requests a client sends. */
export function countingFetch() {
  const f = async (input, init) => {
    f.count++;
    f.urls.push(new URL(String(input instanceof Request ? input.url : input)).pathname);
    return fetch(input, init);
  };
  f.count = 0;
  f.urls = [];
  return f;
}

/** weatherSchema is the tool every tool loop calls. */
export const weatherSchema = {
  type: 'object',
  properties: { city: { type: 'string', description: 'City name' } },
  required: ['city'],
  additionalProperties: false,
};

/** recipeSchema is the structured output every client asks for. */
export const recipeSchema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    minutes: { type: 'integer' },
    ingredients: { type: 'array', items: { type: 'string' } },
  },
  required: ['name', 'minutes', 'ingredients'],
  additionalProperties: false,
};
