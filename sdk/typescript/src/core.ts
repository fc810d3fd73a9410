// The request core: one place that builds URLs and headers, applies the
// timeout, maps errors to classes and decides retries.

import { randomUUID } from 'node:crypto';
import {
  AssistivConnectionError,
  AssistivError,
  AssistivTimeoutError,
  errorFromResponse,
  parseRetryAfter,
} from './errors.js';
import { parse, stringify } from './json.js';
import { VERSION } from './version.js';

/** The fetch function the client calls (globalThis.fetch by default). */
export type Fetch = (input: string | URL, init?: RequestInit) => Promise<Response>;

/** Per-call options every method accepts as its last argument. */
export interface RequestOptions {
  /**
   * Idempotency-Key for POSTs that take one (top-ups, debits). A retry with
   * the same key and body replays the first answer instead of moving money
   * twice. Generated when absent on those routes.
   */
  idempotencyKey?: string;
  /** Override the client's timeout for this call, in milliseconds. */
  timeout?: number;
  /** Override the client's maxRetries for this call. */
  maxRetries?: number;
  /** Abort the call. */
  signal?: AbortSignal;
  /** Extra headers for this call. */
  headers?: Record<string, string>;
}

/** What the core needs to send one call. */
export interface CallSpec {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  query?: Record<string, string | number | boolean | undefined> | undefined;
  body?: unknown;
  /** Generate an Idempotency-Key when the caller gave none. */
  idempotent?: boolean;
  options?: RequestOptions | undefined;
}

/** A parsed answer with its headers. */
export interface Answer<T> {
  data: T;
  status: number;
  headers: Headers;
}

/** Connection settings of a client. */
export interface CoreSettings {
  apiKey: string;
  baseURL: string;
  maxRetries: number;
  timeout: number;
  fetch: Fetch;
  platformHeader?: string | undefined;
  defaultHeaders?: Record<string, string> | undefined;
}

const idempotentMethods = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);

/** Longest Retry-After the client waits out; a longer one is raised at once. */
export const MAX_RETRY_AFTER_SECONDS = 60;
const INITIAL_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 8_000;

/**
 * mayRetry reports whether a request can be sent again safely: idempotent
 * methods always, POST and PATCH only with an Idempotency-Key.
 */
export function mayRetry(method: string, headers: Record<string, string>): boolean {
  if (idempotentMethods.has(method)) return true;
  return Object.keys(headers).some((k) => k.toLowerCase() === 'idempotency-key');
}

/** retryableStatus: 429 and every 5xx (408 and 409 are the caller's to judge). */
export function retryableStatus(status: number): boolean {
  return status === 429 || status >= 500;
}

/** backoffMs is the wait before retry n (1-based): exponential with jitter, capped. */
export function backoffMs(n: number, random: () => number = Math.random): number {
  const base = Math.min(MAX_BACKOFF_MS, INITIAL_BACKOFF_MS * 2 ** (n - 1));
  return Math.round(base * (0.75 + random() * 0.25));
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** anySignal aborts when either signal does (AbortSignal.any is Node 20.3+). */
function anySignal(a: AbortSignal, b: AbortSignal): AbortSignal {
  if (typeof AbortSignal.any === 'function') return AbortSignal.any([a, b]);
  const ac = new AbortController();
  for (const s of [a, b]) {
    if (s.aborted) {
      ac.abort(s.reason);
      break;
    }
    s.addEventListener('abort', () => ac.abort(s.reason), { once: true });
  }
  return ac.signal;
}

/** Core sends calls for one client. */
export class Core {
  constructor(readonly settings: CoreSettings) {}

  url(path: string, query?: CallSpec['query']): string {
    const base = this.settings.baseURL.replace(/\/+$/, '');
    const u = new URL(base + path);
    for (const [k, v] of Object.entries(query ?? {})) {
      if (v !== undefined && v !== '') u.searchParams.set(k, String(v));
    }
    return u.toString();
  }

  headers(spec: CallSpec): Record<string, string> {
    const h: Record<string, string> = {
      Accept: 'application/json',
      Authorization: `Bearer ${this.settings.apiKey}`,
      'User-Agent': `assistiv-sdk-typescript/${VERSION} node/${process.versions.node}`,
      ...this.settings.defaultHeaders,
    };
    if (this.settings.platformHeader) h['X-Assistiv-Platform-Id'] = this.settings.platformHeader;
    if (spec.body !== undefined) h['Content-Type'] = 'application/json';
    const key = spec.options?.idempotencyKey ?? (spec.idempotent ? randomUUID() : undefined);
    if (key !== undefined) h['Idempotency-Key'] = key;
    return { ...h, ...spec.options?.headers };
  }

  /** send performs spec, retrying as [mayRetry] and [retryableStatus] allow. */
  async send<T>(spec: CallSpec): Promise<Answer<T>> {
    const url = this.url(spec.path, spec.query);
    const headers = this.headers(spec);
    const body = spec.body === undefined ? undefined : stringify(spec.body);
    const retries = Math.max(0, spec.options?.maxRetries ?? this.settings.maxRetries);
    const retryable = mayRetry(spec.method, headers);
    for (let attempt = 0; ; attempt++) {
      let err: AssistivError;
      let wait: number | undefined;
      try {
        const res = await this.attempt(url, spec, headers, body);
        const parsed = parseBody(res);
        if (res.ok) return { data: parsed as T, status: res.status, headers: res.headers };
        err = errorFromResponse(res.status, res.headers, parsed);
        if (!retryableStatus(res.status)) throw err;
        const after = parseRetryAfter(res.headers);
        if (after !== undefined) {
          if (after > MAX_RETRY_AFTER_SECONDS) throw err;
          wait = after * 1000;
        }
      } catch (e) {
        if (!(e instanceof AssistivConnectionError)) throw e;
        err = e;
      }
      if (!retryable || attempt >= retries) throw err;
      await sleep(wait ?? backoffMs(attempt + 1), spec.options?.signal);
    }
  }

  private async attempt(url: string, spec: CallSpec, headers: Record<string, string>, body: string | undefined): Promise<RawAnswer> {
    const timeout = spec.options?.timeout ?? this.settings.timeout;
    const timer = AbortSignal.timeout(timeout);
    const signal = spec.options?.signal ? anySignal(spec.options.signal, timer) : timer;
    try {
      const init: RequestInit = { method: spec.method, headers, signal };
      if (body !== undefined) init.body = body;
      const res = await this.settings.fetch(url, init);
      const text = await res.text(); // under the same timeout as the headers
      return { status: res.status, ok: res.ok, headers: res.headers, text };
    } catch (e) {
      if (spec.options?.signal?.aborted) throw e; // the caller's abort: not ours to retry
      if (timer.aborted) {
        throw new AssistivTimeoutError({ code: 'timeout', message: `no answer from ${spec.method} ${spec.path} within ${timeout} ms`, cause: e });
      }
      throw new AssistivConnectionError({
        code: 'connection_error',
        message: `${spec.method} ${spec.path} failed: ${e instanceof Error ? e.message : String(e)}`,
        cause: e,
      });
    }
  }
}

interface RawAnswer {
  status: number;
  ok: boolean;
  headers: Headers;
  text: string;
}

function parseBody(res: RawAnswer): unknown {
  const text = res.text;
  if (text === '') return undefined;
  const type = res.headers.get('content-type') ?? '';
  if (!type.includes('json')) return res.ok ? text : { error: { message: text.slice(0, 500) } };
  try {
    return parse(text);
  } catch (e) {
    if (!res.ok) return { error: { message: text.slice(0, 500) } };
    throw new AssistivError({
      status: res.status,
      code: 'invalid_response',
      message: `the gateway answered invalid JSON: ${(e as Error).message}`,
      requestId: res.headers.get('x-request-id') ?? undefined,
      headers: res.headers,
    });
  }
}
