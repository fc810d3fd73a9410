// The client: settings, the platform id, and the resources.

import { Core, type Fetch, type RequestOptions } from './core.js';
import { AssistivError } from './errors.js';
import {
  APIKeys,
  Budgets,
  EndUsers,
  Logs,
  MCPApps,
  Models,
  PlatformResource,
  RateLimitsResource,
  Skills,
  WalletResource,
  type Context,
} from './resources.js';
import type { Principal } from './types.js';

/** Options of [Assistiv]. */
export interface ClientOptions {
  /**
   * A platform key (sk-plat_…) for management, or an end-user key (sk-eu_…)
   * for me(), models and mcpApps. Default: ASSISTIV_PLATFORM_KEY.
   */
  apiKey?: string;
  /** The gateway's base URL. Default: ASSISTIV_BASE_URL, else https://api.assistiv.ai. */
  baseURL?: string;
  /**
   * The platform id for platform-scoped routes. Default: ASSISTIV_PLATFORM_ID,
   * else read once from GET /v1/me. When given, it is also sent as
   * X-Assistiv-Platform-Id (a mismatch with the key answers 403).
   */
  platformId?: string;
  /** Retries of a failed call that is safe to repeat. Default 2. */
  maxRetries?: number;
  /** Per-attempt timeout in milliseconds. Default 60 000. */
  timeout?: number;
  /** A fetch implementation (default globalThis.fetch). */
  fetch?: Fetch;
  /** Headers added to every call. */
  defaultHeaders?: Record<string, string>;
}

/** The default base URL. */
export const DEFAULT_BASE_URL = 'https://api.assistiv.ai';

/**
 * Assistiv is the client of the gateway's management surface. Inference
 * stays on the official openai client pointed at the same base URL + /v1.
 */
export class Assistiv {
  readonly endUsers: EndUsers;
  readonly budgets: Budgets;
  readonly rateLimits: RateLimitsResource;
  readonly apiKeys: APIKeys;
  readonly logs: Logs;
  readonly wallet: WalletResource;
  readonly models: Models;
  readonly skills: Skills;
  readonly mcpApps: MCPApps;
  readonly platform: PlatformResource;

  private readonly core: Core;
  private platformIdValue: string | undefined;
  private platformIdLookup: Promise<string> | undefined;

  constructor(options: ClientOptions = {}) {
    const env = typeof process === 'undefined' ? {} : process.env;
    const apiKey = options.apiKey ?? env.ASSISTIV_PLATFORM_KEY;
    if (!apiKey) throw new TypeError('Assistiv needs an apiKey (or ASSISTIV_PLATFORM_KEY)');
    const maxRetries = options.maxRetries ?? 2;
    const timeout = options.timeout ?? 60_000;
    if (!Number.isInteger(maxRetries) || maxRetries < 0) throw new RangeError('maxRetries must be a non-negative integer');
    if (!(timeout > 0)) throw new RangeError('timeout must be positive');
    const fetchFn = options.fetch ?? globalThis.fetch;
    if (typeof fetchFn !== 'function') throw new TypeError('no fetch available: use Node 20+ or pass options.fetch');
    this.platformIdValue = options.platformId ?? env.ASSISTIV_PLATFORM_ID ?? undefined;
    this.core = new Core({
      apiKey,
      baseURL: options.baseURL ?? env.ASSISTIV_BASE_URL ?? DEFAULT_BASE_URL,
      maxRetries,
      timeout,
      fetch: fetchFn.bind(globalThis),
      platformHeader: options.platformId,
      defaultHeaders: options.defaultHeaders,
    });
    const ctx: Context = { core: this.core, platformId: (o) => this.resolvePlatformId(o) };
    this.endUsers = new EndUsers(ctx);
    this.budgets = new Budgets(ctx);
    this.rateLimits = new RateLimitsResource(ctx);
    this.apiKeys = new APIKeys(ctx);
    this.logs = new Logs(ctx);
    this.wallet = new WalletResource(ctx);
    this.models = new Models(ctx);
    this.skills = new Skills(ctx);
    this.mcpApps = new MCPApps(ctx);
    this.platform = new PlatformResource(ctx);
  }

  /** The base URL calls go to. */
  get baseURL(): string {
    return this.core.settings.baseURL;
  }

  /** GET /v1/me: which key this is, of which platform (and end-user). */
  async me(options?: RequestOptions): Promise<Principal> {
    return (await this.core.send<Principal>({ method: 'GET', path: '/v1/me', options })).data;
  }

  private resolvePlatformId(options?: RequestOptions): Promise<string> {
    if (this.platformIdValue) return Promise.resolve(this.platformIdValue);
    // Only the transport options carry over to the lookup (not a top-up's Idempotency-Key).
    const lookup: RequestOptions = {};
    if (options?.signal) lookup.signal = options.signal;
    if (options?.timeout !== undefined) lookup.timeout = options.timeout;
    if (options?.maxRetries !== undefined) lookup.maxRetries = options.maxRetries;
    this.platformIdLookup ??= this.me(lookup).then(
      (p) => {
        if (p.key_type !== 'platform') {
          throw new AssistivError({ code: 'wrong_key_type', message: 'platform routes need a platform key (sk-plat_…)' });
        }
        this.platformIdValue = p.platform_id;
        return p.platform_id;
      },
      (e: unknown) => {
        this.platformIdLookup = undefined; // let a later call try again
        throw e;
      },
    );
    return this.platformIdLookup;
  }

  /** get sends GET path (e.g. "/v1/models") and returns the parsed body. */
  async get<T = unknown>(path: string, options?: RequestOptions & { query?: Record<string, string | number | boolean | undefined> }): Promise<T> {
    return (await this.core.send<T>({ method: 'GET', path, query: options?.query, options })).data;
  }

  /** post sends POST path with body; retried only with options.idempotencyKey. */
  async post<T = unknown>(path: string, body?: unknown, options?: RequestOptions): Promise<T> {
    return (await this.core.send<T>({ method: 'POST', path, body, options })).data;
  }

  /** put sends PUT path with body. */
  async put<T = unknown>(path: string, body?: unknown, options?: RequestOptions): Promise<T> {
    return (await this.core.send<T>({ method: 'PUT', path, body, options })).data;
  }

  /** patch sends PATCH path with body; retried only with options.idempotencyKey. */
  async patch<T = unknown>(path: string, body?: unknown, options?: RequestOptions): Promise<T> {
    return (await this.core.send<T>({ method: 'PATCH', path, body, options })).data;
  }

  /** delete sends DELETE path. */
  async delete<T = unknown>(path: string, options?: RequestOptions): Promise<T> {
    return (await this.core.send<T>({ method: 'DELETE', path, options })).data;
  }
}
