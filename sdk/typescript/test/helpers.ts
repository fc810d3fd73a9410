// Test harness: the real bin/gateway and bin/mockllm on free loopback ports
// with a temporary data dir, plus small helpers for the operator API (which
// the SDK does not cover) and for loopback HTTP servers.

import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer as createHTTPServer, type IncomingMessage, type RequestListener, type Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root (sdk/typescript), from build/test/helpers.js or test/helpers.ts. */
const packageRoot = fileURLToPath(new URL(import.meta.url.includes('/build/') ? '../../' : '../', import.meta.url));
/** The repository root. */
export const repoRoot = join(packageRoot, '..', '..');
export const packageDir = packageRoot;

export const ADMIN_KEY = 'sdk-test-operator-key-0123456789';

/** freePort asks the kernel for an unused loopback port. */
export async function freePort(): Promise<number> {
  const srv = createNetServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const addr = srv.address();
  srv.close();
  await once(srv, 'close');
  if (addr === null || typeof addr === 'string') throw new Error('no port');
  return addr.port;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, url: string, child: ChildProcess, logs: () => string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}:\n${logs()}`);
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await r.arrayBuffer();
      if (r.status < 500) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${what} not ready at ${url} after ${timeoutMs} ms:\n${logs()}`);
    await sleep(50);
  }
}

function start(bin: string, args: string[], env: Record<string, string>): { child: ChildProcess; logs: () => string } {
  const child = spawn(bin, args, { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (b: Buffer): void => {
    out = (out + b.toString()).slice(-20_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return { child, logs: () => out };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(t);
}

/** JSON answer of the operator API. */
export interface Answer {
  status: number;
  headers: Headers;
  body: any;
}

/** A running gateway with its mock upstream. */
export interface Gateway {
  url: string;
  mockURL: string;
  logs(): string;
  /** admin calls the operator API with the admin key. */
  admin(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<Answer>;
  /** createPlatform makes a platform with a funded wallet and providers on the mock. */
  createPlatform(name: string, opts?: { walletUSD?: string; providers?: boolean }): Promise<{ id: string; key: string }>;
  stop(): Promise<void>;
}

/** raw sends a request with any key and returns the parsed JSON answer. */
export async function raw(base: string, method: string, path: string, key: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const init: RequestInit = { method, headers: { Authorization: `Bearer ${key}`, ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    (init.headers as Record<string, string>)['Content-Type'] = 'application/json';
  }
  const r = await fetch(base + path, init);
  const text = await r.text();
  return { status: r.status, headers: r.headers, body: text === '' ? undefined : JSON.parse(text) };
}

/**
 * startGateway starts bin/mockllm and bin/gateway (built by `make build`;
 * ASSISTIV_GATEWAY_BIN and ASSISTIV_MOCKLLM_BIN override) on free ports.
 */
export async function startGateway(extraEnv: Record<string, string> = {}): Promise<Gateway> {
  const gatewayBin = process.env.ASSISTIV_GATEWAY_BIN ?? join(repoRoot, 'bin', 'gateway');
  const mockBin = process.env.ASSISTIV_MOCKLLM_BIN ?? join(repoRoot, 'bin', 'mockllm');
  const [gwPort, mockPort] = [await freePort(), await freePort()];
  const mockURL = `http://127.0.0.1:${mockPort}`;
  const url = `http://127.0.0.1:${gwPort}`;
  const dataDir = await mkdtemp(join(tmpdir(), 'assistiv-sdk-test-'));
  const mock = start(mockBin, ['-listen', `127.0.0.1:${mockPort}`], {});
  const gw = start(gatewayBin, ['serve'], {
    ASSISTIV_LISTEN: `127.0.0.1:${gwPort}`,
    ASSISTIV_DATA_DIR: dataDir,
    ASSISTIV_ADMIN_KEY: ADMIN_KEY,
    ASSISTIV_ALLOW_PRIVATE_EGRESS: 'true',
    ASSISTIV_PUBLIC_URL: url,
    ASSISTIV_LOG_LEVEL: 'warn',
    ASSISTIV_WEBHOOK_TEST_SCHEDULE: '0,200ms,200ms,200ms',
    ...extraEnv,
  });
  const stopAll = async (): Promise<void> => {
    await Promise.all([stop(gw.child), stop(mock.child)]);
    await rm(dataDir, { recursive: true, force: true });
  };
  try {
    await waitFor('mockllm', mockURL + '/', mock.child, mock.logs);
    await waitFor('gateway', url + '/readyz', gw.child, gw.logs);
  } catch (e) {
    await stopAll();
    throw e;
  }
  const admin = (method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<Answer> =>
    raw(url, method, path, ADMIN_KEY, body, headers);
  return {
    url,
    mockURL,
    logs: gw.logs,
    admin,
    async createPlatform(name, opts = {}) {
      const r = await admin('POST', '/admin/v1/platforms', { name });
      if (r.status !== 201) throw new Error(`create platform: ${r.status} ${JSON.stringify(r.body)}`);
      const id: string = r.body.platform.id;
      if (opts.walletUSD) {
        const t = await admin('POST', `/admin/v1/platforms/${id}/wallet/topup`, `{"amount_usd":${opts.walletUSD}}`, { 'Idempotency-Key': `fund-${id}` });
        if (t.status !== 200) throw new Error(`wallet topup: ${t.status} ${JSON.stringify(t.body)}`);
      }
      if (opts.providers) {
        for (const provider of ['openai', 'anthropic', 'google', 'xai']) {
          const p = await admin('PUT', `/admin/v1/platforms/${id}/llm-providers/${provider}`, { api_key: 'sk-mock-upstream-key', base_url: mockURL, enabled: true });
          if (p.status !== 200) throw new Error(`provider ${provider}: ${p.status} ${JSON.stringify(p.body)}`);
        }
      }
      return { id, key: r.body.api_key.raw_key as string };
    },
    stop: stopAll,
  };
}

/** A loopback HTTP server for the duration of a test. */
export interface LocalServer {
  url: string;
  server: Server;
  close(): Promise<void>;
}

export async function listen(handler: RequestListener): Promise<LocalServer> {
  const server = createHTTPServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('no address');
  return {
    url: `http://127.0.0.1:${addr.port}`,
    server,
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, 'close').catch(() => undefined);
    },
  };
}

/** readBody reads a request body as bytes. */
export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** eventually polls check until it returns a value, or fails after timeoutMs. */
export async function eventually<T>(what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

// ---- a minimal zip writer (stored entries) for skill uploads ----

const crcTable = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(b: Buffer): number {
  let c = 0xffffffff;
  for (const x of b) c = (crcTable[(c ^ x) & 0xff] as number) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** zip builds a zip archive of files (path → content), uncompressed. */
export function zip(files: Record<string, string>): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const [path, content] of Object.entries(files)) {
    const name = Buffer.from(path);
    const data = Buffer.from(content);
    const crc = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x0800, 6); // UTF-8 names
    local.writeUInt16LE(0, 8); // stored
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(name.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0x0800, 8);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(data.length, 20);
    central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(offset, 42);
    locals.push(local, name, data);
    centrals.push(central, name);
    offset += local.length + name.length + data.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(Object.keys(files).length, 8);
  end.writeUInt16LE(Object.keys(files).length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}
