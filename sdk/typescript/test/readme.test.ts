// The README's examples are the files in examples/ (type-checked by
// `npm run typecheck`), and they run: the quickstart and the inference
// example against bin/gateway, both webhook receivers receiving real
// deliveries. And `npm pack` ships what package.json promises.

import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { signWebhook, WEBHOOK_EVENT_TYPES } from '../src/index.js';
import { eventually, freePort, packageDir, startGateway, type Gateway } from './helpers.js';

const run = promisify(execFile);
const examplesDir = join(packageDir, 'examples');
const builtExamples = join(packageDir, 'build', 'examples');

describe('README', () => {
  it('shows only type-checked code: example files verbatim, and snippets of examples/tour.ts', async () => {
    const readme = await readFile(join(packageDir, 'README.md'), 'utf8');
    const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
    const files = (await readdir(examplesDir)).filter((f) => f.endsWith('.ts')).sort();
    assert.ok(files.length >= 4);
    const texts = new Map<string, string>();
    for (const f of files) texts.set(f, await readFile(join(examplesDir, f), 'utf8'));
    for (const [f, text] of texts) {
      if (f === 'tour.ts') continue;
      assert.ok(blocks.includes(text), `README.md has no ts block equal to examples/${f}`);
    }
    assert.ok(!/```(js|javascript|typescript)\n/.test(readme), 'README has code blocks outside the checked ts blocks');
    for (const b of blocks) {
      const whole = /^\/\/ examples\/([\w-]+\.ts)/.exec(b);
      if (whole) {
        assert.equal(texts.get(whole[1]!), b, `README's examples/${whole[1]} differs from the file`);
        continue;
      }
      assert.ok(texts.get('tour.ts')!.includes(b), `README snippet is not in examples/tour.ts:\n${b}`);
    }
  });
});

describe('the examples run against the gateway', () => {
  let gw: Gateway;
  let platform: { id: string; key: string };
  const children: ChildProcess[] = [];

  before(async () => {
    gw = await startGateway();
    platform = await gw.createPlatform('examples-co', { walletUSD: '50', providers: true });
  });
  after(async () => {
    for (const c of children) c.kill('SIGTERM');
    await gw?.stop();
  });

  const env = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({
    PATH: process.env.PATH,
    ASSISTIV_BASE_URL: gw.url,
    ASSISTIV_PLATFORM_KEY: platform.key,
    ASSISTIV_PLATFORM_ID: platform.id,
    ...extra,
  });

  it('quickstart: end-user, budget, inference, ledger, a typed 402; safe to run twice', async () => {
    const first = await run(process.execPath, [join(builtExamples, 'quickstart.js')], { env: env(), timeout: 30_000 });
    const lines = first.stdout.trim().split('\n');
    assert.ok(lines[0] && lines[0].length > 0, first.stdout);
    assert.ok(lines.some((l) => /^usage -\d+(\.\d+)? → \d+(\.\d+)?$/.test(l)), `no billed call in the ledger:\n${first.stdout}`);
    assert.ok(lines.some((l) => l.startsWith('topup 5 → ')), first.stdout);
    assert.equal(lines.at(-1), 'refused: budget_exhausted');
    const second = await run(process.execPath, [join(builtExamples, 'quickstart.js')], { env: env(), timeout: 30_000 });
    assert.equal(second.stdout.split('\n').filter((l) => l.startsWith('topup 5 → ')).length, 1, 'the idempotent top-up applied twice');
  });

  it('inference: streaming and Responses through the openai client', async () => {
    const u = await fetch(`${gw.url}/v1/platforms/${platform.id}/end-users`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${platform.key}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ external_id: 'inference-user' }),
    });
    const user = (await u.json()) as { id: string; api_key: { raw_key: string } };
    await fetch(`${gw.url}/v1/platforms/${platform.id}/end-users/${user.id}/budget`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${platform.key}`, 'Content-Type': 'application/json' },
      body: '{"amount_usd":5}',
    });
    const out = await run(process.execPath, [join(builtExamples, 'inference.js')], { env: env({ END_USER_KEY: user.api_key.raw_key }), timeout: 30_000 });
    const lines = out.stdout.trim().split('\n');
    assert.equal(lines.length, 2, out.stdout);
    assert.ok(lines.every((l) => l.trim().length > 0), out.stdout);
  });

  for (const example of ['webhook-express', 'webhook-node-http']) {
    it(`${example}: verifies real deliveries, answers 400 to forgeries`, async () => {
      const port = await freePort();
      const url = `http://127.0.0.1:${port}/webhooks/assistiv`;
      const ep = await gw.admin('POST', `/admin/v1/platforms/${platform.id}/webhook-endpoints`, { url, event_types: [...WEBHOOK_EVENT_TYPES] });
      assert.equal(ep.status, 201, JSON.stringify(ep.body));
      const child = spawn(process.execPath, [join(builtExamples, `${example}.js`)], {
        env: env({ PORT: String(port), ASSISTIV_WEBHOOK_SECRET: ep.body.secret }),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.push(child);
      let out = '';
      child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
      child.stderr?.on('data', (b: Buffer) => (out += b.toString()));
      await eventually(`${example} listening`, async () => {
        try {
          await fetch(url, { method: 'GET' });
          return true;
        } catch {
          return undefined;
        }
      });

      const key = `wire-${example}`;
      const w = await gw.admin('POST', `/admin/v1/platforms/${platform.id}/wallet/topup`, '{"amount_usd":1.25}', { 'Idempotency-Key': key });
      assert.equal(w.status, 200);
      const line = await eventually('the receiver printing the event', () => out.split('\n').find((l) => l.startsWith('wallet.topped_up ')));
      assert.match(line, /^wallet\.topped_up msg_\S+ \d+(\.\d+)?$/);
      const msgs = await gw.admin('GET', `/admin/v1/platforms/${platform.id}/webhook-endpoints/${ep.body.id}/messages`);
      const delivered = await eventually('the gateway recording the 200', async () => {
        const m = await gw.admin('GET', `/admin/v1/platforms/${platform.id}/webhook-endpoints/${ep.body.id}/messages`);
        return m.body.data.find((x: { status: string }) => x.status === 'delivered');
      });
      assert.equal(delivered.last_response_code, 200, JSON.stringify(msgs.body));

      // A forged delivery: signed with another secret.
      const body = '{"id":"msg_forged","event_type":"wallet.topped_up","created_at":"2026-05-01T00:00:00Z","data":{"platform_id":"x","balance_usd":1e9,"amount_usd":1e9}}';
      const ts = Math.floor(Date.now() / 1000);
      const forged = await fetch(url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'webhook-id': 'msg_forged', 'webhook-timestamp': String(ts), 'webhook-signature': signWebhook('whsec_' + Buffer.alloc(32, 5).toString('base64'), 'msg_forged', ts, body) },
        body,
      });
      assert.equal(forged.status, 400);
      assert.ok(!out.includes('msg_forged'), out);
      child.kill('SIGTERM');
    });
  }
});

describe('npm pack', () => {
  it('ships dist with types, README and package.json, not sources or tests', async () => {
    const { stdout } = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: packageDir, timeout: 60_000 });
    const [info] = JSON.parse(stdout) as Array<{ name: string; files: Array<{ path: string }> }>;
    const paths = info!.files.map((f) => f.path);
    assert.equal(info!.name, '@assistiv/sdk');
    for (const p of ['package.json', 'README.md', 'dist/index.js', 'dist/index.d.ts', 'dist/webhooks.js', 'dist/webhooks.d.ts']) {
      assert.ok(paths.includes(p), `${p} missing from the tarball: ${paths.join(', ')}`);
    }
    assert.ok(!paths.some((p) => p.startsWith('src/') || p.startsWith('test/') || p.startsWith('build/') || p.startsWith('node_modules/')), paths.join(', '));
    const pkg = JSON.parse(await readFile(join(packageDir, 'package.json'), 'utf8')) as { dependencies?: object };
    assert.equal(pkg.dependencies, undefined, 'the SDK has no runtime dependencies');
  });
});
