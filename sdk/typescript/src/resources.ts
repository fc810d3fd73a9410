// Resources mirroring the REST surface. Platform-scoped resources resolve
// the platform id once (the client's platformId, or GET /v1/me).

import type { CallSpec, Core, RequestOptions } from './core.js';
import { ListRequest, type ListEnvelope } from './pagination.js';
import type {
  AmountParams,
  APIKey,
  APIKeyRevoked,
  Budget,
  BudgetCreateParams,
  BudgetDeleted,
  BudgetMovement,
  BudgetUpdateParams,
  CreatedAPIKey,
  Deleted,
  EndUser,
  EndUserCreated,
  EndUserCreateParams,
  EndUserListParams,
  EndUserRateLimits,
  EndUserUpdateParams,
  ListParams,
  LogEntry,
  LogListParams,
  MCPApp,
  MCPAuthorization,
  MCPConnected,
  MCPDisconnected,
  Model,
  Platform,
  PlatformUpdate,
  RateLimits,
  RateLimitsInput,
  Skill,
  SkillCreateParams,
  Transaction,
  Wallet,
} from './types.js';

/** What resources share: the core and the platform id. */
export interface Context {
  core: Core;
  platformId(options?: RequestOptions): Promise<string>;
}

const seg = (v: string, what: string): string => {
  if (typeof v !== 'string' || v === '') throw new TypeError(`${what} must be a non-empty string`);
  return encodeURIComponent(v);
};

abstract class Resource {
  constructor(protected readonly ctx: Context) {}

  protected async call<T>(spec: CallSpec): Promise<T> {
    return (await this.ctx.core.send<T>(spec)).data;
  }

  /** base is /v1/platforms/{platformId}. */
  protected async base(options?: RequestOptions): Promise<string> {
    return `/v1/platforms/${seg(await this.ctx.platformId(options), 'platformId')}`;
  }

  protected paginate<T>(path: (o?: RequestOptions) => Promise<string>, query: CallSpec['query'], options?: RequestOptions): ListRequest<T> {
    return new ListRequest<T>(async (cursor) =>
      this.call<ListEnvelope<T>>({ method: 'GET', path: await path(options), query: { ...query, cursor }, options }),
    );
  }
}

function isoTime(v: string | Date | undefined): string | undefined {
  return v instanceof Date ? v.toISOString() : v;
}

/** The platform's own record and settings (platform key). */
export class PlatformResource extends Resource {
  /** GET /v1/platforms/{id}. */
  async get(options?: RequestOptions): Promise<Platform> {
    return this.call({ method: 'GET', path: await this.base(options), options });
  }

  /** PATCH /v1/platforms/{id}: display name, default budget and rate limits, skills, thresholds. */
  async update(params: PlatformUpdate, options?: RequestOptions): Promise<Platform> {
    return this.call({ method: 'PATCH', path: await this.base(options), body: params, options });
  }
}

/** End-users of the platform (platform key). */
export class EndUsers extends Resource {
  /**
   * POST /v1/platforms/{id}/end-users. Idempotent on external_id: a repeat
   * returns the same end-user with a fresh key. Store api_key.raw_key.
   */
  async create(params: EndUserCreateParams, options?: RequestOptions): Promise<EndUserCreated> {
    return this.call({ method: 'POST', path: `${await this.base(options)}/end-users`, body: params, options });
  }

  /** GET /v1/platforms/{id}/end-users: await for a page, or for await over every end-user. */
  list(params: EndUserListParams = {}, options?: RequestOptions): ListRequest<EndUser> {
    return this.paginate<EndUser>(async (o) => `${await this.base(o)}/end-users`, { limit: params.limit, external_id: params.external_id }, options);
  }

  /** GET /v1/platforms/{id}/end-users/{endUserId}. */
  async get(endUserId: string, options?: RequestOptions): Promise<EndUser> {
    return this.call({ method: 'GET', path: `${await this.base(options)}/end-users/${seg(endUserId, 'endUserId')}`, options });
  }

  /** PATCH /v1/platforms/{id}/end-users/{endUserId}. */
  async update(endUserId: string, params: EndUserUpdateParams, options?: RequestOptions): Promise<EndUser> {
    return this.call({ method: 'PATCH', path: `${await this.base(options)}/end-users/${seg(endUserId, 'endUserId')}`, body: params, options });
  }

  /** DELETE /v1/platforms/{id}/end-users/{endUserId}: revokes its keys, budget and connections. */
  async delete(endUserId: string, options?: RequestOptions): Promise<Deleted> {
    return this.call({ method: 'DELETE', path: `${await this.base(options)}/end-users/${seg(endUserId, 'endUserId')}`, options });
  }
}

/** End-user budgets (platform key). */
export class Budgets extends Resource {
  private async path(endUserId: string, options?: RequestOptions): Promise<string> {
    return `${await this.base(options)}/end-users/${seg(endUserId, 'endUserId')}/budget`;
  }

  /** POST …/budget. */
  async create(endUserId: string, params: BudgetCreateParams, options?: RequestOptions): Promise<Budget> {
    return this.call({ method: 'POST', path: await this.path(endUserId, options), body: params, options });
  }

  /** GET …/budget. */
  async get(endUserId: string, options?: RequestOptions): Promise<Budget> {
    return this.call({ method: 'GET', path: await this.path(endUserId, options), options });
  }

  /** PATCH …/budget: amount, period, is_suspended, low_balance_threshold_usd. */
  async update(endUserId: string, params: BudgetUpdateParams, options?: RequestOptions): Promise<Budget> {
    return this.call({ method: 'PATCH', path: await this.path(endUserId, options), body: params, options });
  }

  /** DELETE …/budget. */
  async delete(endUserId: string, options?: RequestOptions): Promise<BudgetDeleted> {
    return this.call({ method: 'DELETE', path: await this.path(endUserId, options), options });
  }

  /**
   * POST …/budget/topup with an Idempotency-Key (options.idempotencyKey, or
   * a generated one reused by the SDK's own retries). Pass your own key to
   * make retries across processes safe.
   */
  async topup(endUserId: string, params: AmountParams, options?: RequestOptions): Promise<BudgetMovement> {
    return this.move(endUserId, 'topup', params, options);
  }

  /** POST …/budget/debit, idempotent like [topup]. */
  async debit(endUserId: string, params: AmountParams, options?: RequestOptions): Promise<BudgetMovement> {
    return this.move(endUserId, 'debit', params, options);
  }

  private async move(endUserId: string, op: 'topup' | 'debit', params: AmountParams, options?: RequestOptions): Promise<BudgetMovement> {
    const res = await this.ctx.core.send<Omit<BudgetMovement, 'replayed'>>({
      method: 'POST', path: `${await this.path(endUserId, options)}/${op}`, body: params, idempotent: true, options,
    });
    return { ...res.data, replayed: res.headers.get('idempotent-replayed') === 'true' };
  }

  /** GET …/budget/transactions, newest first: await for a page, or for await over all. */
  transactions(endUserId: string, params: ListParams = {}, options?: RequestOptions): ListRequest<Transaction> {
    return this.paginate<Transaction>(async (o) => `${await this.path(endUserId, o)}/transactions`, { limit: params.limit }, options);
  }
}

/** Platform default and per-end-user rate limits (platform key). */
export class RateLimitsResource extends Resource {
  /** GET /v1/platforms/{id}/rate-limits: the platform defaults. */
  async getDefaults(options?: RequestOptions): Promise<RateLimits> {
    return this.call({ method: 'GET', path: `${await this.base(options)}/rate-limits`, options });
  }

  /** PUT /v1/platforms/{id}/rate-limits: replaces the defaults (omitted: 0, no limit). */
  async setDefaults(limits: RateLimitsInput, options?: RequestOptions): Promise<RateLimits> {
    return this.call({ method: 'PUT', path: `${await this.base(options)}/rate-limits`, body: limits, options });
  }

  private async path(endUserId: string, options?: RequestOptions): Promise<string> {
    return `${await this.base(options)}/end-users/${seg(endUserId, 'endUserId')}/rate-limits`;
  }

  /** GET …/end-users/{endUserId}/rate-limits: override and effective limits. */
  async get(endUserId: string, options?: RequestOptions): Promise<EndUserRateLimits> {
    return this.call({ method: 'GET', path: await this.path(endUserId, options), options });
  }

  /** PUT …/end-users/{endUserId}/rate-limits: sets the user's override. */
  async set(endUserId: string, limits: RateLimitsInput, options?: RequestOptions): Promise<EndUserRateLimits> {
    return this.call({ method: 'PUT', path: await this.path(endUserId, options), body: limits, options });
  }

  /** DELETE …/end-users/{endUserId}/rate-limits: back to the platform defaults. */
  async delete(endUserId: string, options?: RequestOptions): Promise<EndUserRateLimits> {
    return this.call({ method: 'DELETE', path: await this.path(endUserId, options), options });
  }
}

/** Platform API keys (platform key). */
export class APIKeys extends Resource {
  /** GET /v1/platforms/{id}/api-keys: prefixes only, never raw keys. */
  async list(options?: RequestOptions): Promise<APIKey[]> {
    return (await this.call<ListEnvelope<APIKey>>({ method: 'GET', path: `${await this.base(options)}/api-keys`, options })).data;
  }

  /** POST /v1/platforms/{id}/api-keys: raw_key is returned once. */
  async create(params: { name?: string } = {}, options?: RequestOptions): Promise<CreatedAPIKey> {
    return this.call({ method: 'POST', path: `${await this.base(options)}/api-keys`, body: params, options });
  }

  /** DELETE /v1/platforms/{id}/api-keys/{keyId}: the key stops working at once. */
  async revoke(keyId: string, options?: RequestOptions): Promise<APIKeyRevoked> {
    return this.call({ method: 'DELETE', path: `${await this.base(options)}/api-keys/${seg(keyId, 'keyId')}`, options });
  }
}

/** Per-call logs (platform key). */
export class Logs extends Resource {
  /** GET /v1/platforms/{id}/logs, newest first, filtered: await for a page, or for await over all. */
  list(params: LogListParams = {}, options?: RequestOptions): ListRequest<LogEntry> {
    const query = {
      end_user_id: params.end_user_id,
      model: params.model,
      kind: params.kind,
      status: params.status === undefined ? undefined : String(params.status),
      start: isoTime(params.start),
      since: isoTime(params.since),
      end: isoTime(params.end),
      limit: params.limit,
    };
    return this.paginate<LogEntry>(async (o) => `${await this.base(o)}/logs`, query, options);
  }

  /** GET /v1/platforms/{id}/logs/{requestId}. */
  async get(requestId: string, options?: RequestOptions): Promise<LogEntry> {
    return this.call({ method: 'GET', path: `${await this.base(options)}/logs/${seg(requestId, 'requestId')}`, options });
  }
}

/** The platform wallet (platform key; top-ups are the operator's). */
export class WalletResource extends Resource {
  /** GET /v1/platforms/{id}/wallet. */
  async get(options?: RequestOptions): Promise<Wallet> {
    return this.call({ method: 'GET', path: `${await this.base(options)}/wallet`, options });
  }

  /** GET /v1/platforms/{id}/wallet/transactions, newest first. */
  transactions(params: ListParams = {}, options?: RequestOptions): ListRequest<Transaction> {
    return this.paginate<Transaction>(async (o) => `${await this.base(o)}/wallet/transactions`, { limit: params.limit }, options);
  }
}

/** Models the platform can call now (platform or end-user key). */
export class Models extends Resource {
  /** GET /v1/models. */
  async list(options?: RequestOptions): Promise<Model[]> {
    return (await this.call<{ data: Model[] }>({ method: 'GET', path: '/v1/models', options })).data;
  }
}

/** Skills: private uploads (platform key), reads (either key). */
export class Skills extends Resource {
  /** POST /v1/skills: a private skill from a zip of its folder. */
  async create(params: SkillCreateParams, options?: RequestOptions): Promise<Skill> {
    const a = params.archive;
    const archive_base64 = a instanceof Uint8Array ? Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64') : a.base64;
    return this.call({
      method: 'POST', path: '/v1/skills', body: { name: params.name, description: params.description, archive_base64 }, options,
    });
  }

  /** GET /v1/skills/{skillId}. */
  async get(skillId: string, options?: RequestOptions): Promise<Skill> {
    return this.call({ method: 'GET', path: `/v1/skills/${seg(skillId, 'skillId')}`, options });
  }

  /** DELETE /v1/skills/{skillId} (the platform's own private skills). */
  async delete(skillId: string, options?: RequestOptions): Promise<Deleted> {
    return this.call({ method: 'DELETE', path: `/v1/skills/${seg(skillId, 'skillId')}`, options });
  }
}

/** MCP app connections of the calling end-user (end-user key). */
export class MCPApps extends Resource {
  /** GET /v1/mcp/apps: the apps the platform activated, with this user's connection state. */
  async list(options?: RequestOptions): Promise<MCPApp[]> {
    return (await this.call<ListEnvelope<MCPApp>>({ method: 'GET', path: '/v1/mcp/apps', options })).data;
  }

  /** POST /v1/mcp/apps/{app}/connect: the OAuth URL to send the user's browser to. */
  async connect(app: string, options?: RequestOptions): Promise<MCPAuthorization> {
    return this.call({ method: 'POST', path: `/v1/mcp/apps/${seg(app, 'app')}/connect`, options });
  }

  /**
   * POST /v1/mcp/apps/{app}/connect/confirm: completes a connection. After
   * consent the gateway redirects the browser to your landing page with
   * `status=confirm&confirmation=…`; your back end confirms it with the key
   * of the end-user who started the flow (another user's key is refused,
   * so a connect link is not a bearer link).
   */
  async confirm(app: string, confirmation: string, options?: RequestOptions): Promise<MCPConnected> {
    return this.call({ method: 'POST', path: `/v1/mcp/apps/${seg(app, 'app')}/connect/confirm`, body: { confirmation }, options });
  }

  /** DELETE /v1/mcp/apps/{app}/connection. */
  async disconnect(app: string, options?: RequestOptions): Promise<MCPDisconnected> {
    return this.call({ method: 'DELETE', path: `/v1/mcp/apps/${seg(app, 'app')}/connection`, options });
  }
}
