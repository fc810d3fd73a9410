// The REST surface's JSON shapes, member for member as the gateway writes
// them (snake_case). Amounts are decimal strings (see json.ts).

import type { AmountInput, Decimal } from './json.js';

export type { AmountInput, Decimal };

/** GET /v1/me: the key's principal. */
export interface Principal {
  object: 'principal';
  key_type: 'platform' | 'end_user';
  platform_id: string;
  key_id: string;
  key_prefix: string;
  /** Present for end-user keys. */
  end_user_id?: string;
}

export interface RateLimits {
  /** 0: no limit. */
  requests_per_minute: number;
  tokens_per_minute: number;
  requests_per_day: number;
  /** Calls one end-user may have in flight at once; 0: no limit. */
  max_parallel_requests: number;
}

/** Rate limits to set; omitted members are 0 (no limit). */
export type RateLimitsInput = Partial<RateLimits>;

export interface BudgetTemplate {
  amount_usd: Decimal;
  period: BudgetPeriod;
}

export interface PlatformSettings {
  display_name: string;
  default_budget: BudgetTemplate | null;
  markup_pct: Decimal;
  default_rate_limits: RateLimits;
  skills_enabled: boolean;
  wallet_low_balance_usd: Decimal;
  budget_low_balance_usd: Decimal;
}

export interface Platform {
  id: string;
  object: 'platform';
  name: string;
  created_at: string;
  updated_at: string;
  settings: PlatformSettings;
  wallet?: Wallet;
}

/** PATCH /v1/platforms/{id}: the settings a platform changes itself (markup is the operator's). */
export interface PlatformUpdate {
  display_name?: string;
  default_budget?: { amount_usd: AmountInput; period?: BudgetPeriod } | null;
  default_rate_limits?: RateLimitsInput;
  skills_enabled?: boolean;
  wallet_low_balance_usd?: AmountInput;
  budget_low_balance_usd?: AmountInput;
}

export interface AutoTopup {
  enabled: boolean;
  threshold_usd: Decimal;
  amount_usd: Decimal;
}

export interface Wallet {
  object: 'wallet';
  balance_usd: Decimal;
  reserved_usd: Decimal;
  auto_topup: AutoTopup | null;
}

export interface APIKey {
  id: string;
  object: 'api_key';
  name?: string;
  kind: 'platform' | 'end_user';
  key_prefix: string;
  end_user_id?: string;
  created_at: string;
  /** The raw key: only in the answer that created it. Store it then. */
  raw_key?: string;
  revoked_at?: string;
}

/** An API key as created: raw_key is always present, once. */
export interface CreatedAPIKey extends APIKey {
  raw_key: string;
}

export interface APIKeyRevoked {
  id: string;
  object: 'api_key';
  revoked: true;
}

export type Metadata = Record<string, unknown>;

export interface EndUser {
  id: string;
  object: 'end_user';
  platform_id: string;
  external_id: string;
  display_name: string;
  metadata: Metadata;
  created_at: string;
  updated_at: string;
  budget: Budget | null;
  /** The per-user override, null when the platform defaults apply. */
  rate_limits: RateLimitOverride | null;
  /** What applies now (on get and update). */
  effective_rate_limits?: RateLimits;
}

/** POST /v1/platforms/{id}/end-users: the end-user and a fresh key. */
export interface EndUserCreated extends EndUser {
  api_key: CreatedAPIKey;
}

export interface EndUserCreateParams {
  /** Your stable id for the user; create is idempotent on it. */
  external_id: string;
  display_name?: string;
  metadata?: Metadata;
}

export interface EndUserUpdateParams {
  display_name?: string;
  /** Replaces the metadata object. */
  metadata?: Metadata;
}

export interface EndUserListParams {
  /** Page size (1–100, default 20). */
  limit?: number;
  /** Only the end-user with this external id. */
  external_id?: string;
}

export interface Deleted {
  id: string;
  object: string;
  deleted: true;
}

export type BudgetPeriod = 'one_time' | 'daily' | 'monthly';

export interface Budget {
  object: 'budget';
  end_user_id: string;
  amount_usd: Decimal;
  period: BudgetPeriod;
  balance_usd: Decimal;
  reserved_usd: Decimal;
  available_usd: Decimal;
  is_suspended: boolean;
  low_balance_threshold_usd: Decimal;
  period_start: string | null;
  created_at: string;
  updated_at: string;
}

export interface BudgetCreateParams {
  amount_usd: AmountInput;
  period?: BudgetPeriod;
  is_suspended?: boolean;
  low_balance_threshold_usd?: AmountInput;
}

export type BudgetUpdateParams = Partial<BudgetCreateParams>;

export interface BudgetDeleted {
  object: 'budget';
  end_user_id: string;
  deleted: true;
}

export interface AmountParams {
  /** Positive USD, at most 9 decimals; sent digit for digit. */
  amount_usd: AmountInput;
  reason?: string;
}

export interface Transaction {
  id: string;
  object: 'transaction';
  account: string;
  type: string;
  /** Signed: negative for debits and charges. */
  amount_usd: Decimal;
  balance_after_usd: Decimal;
  idempotency_key?: string;
  reason?: string;
  request_id?: string;
  model?: string;
  prompt_tokens?: number;
  completion_tokens?: number;
  uncharged_usd?: Decimal;
  sequence: number;
  created_at: string;
}

/** A budget top-up or debit. */
export interface BudgetMovement {
  budget: Budget;
  transaction: Transaction;
  /** True when the gateway replayed an earlier answer for the same Idempotency-Key. */
  replayed: boolean;
}

export interface ListParams {
  limit?: number;
}

/** An end-user's override: null for a field that follows the platform default. */
export type RateLimitOverride = { [K in keyof RateLimits]: number | null };

/** GET/PUT/DELETE /v1/platforms/{id}/end-users/{endUserId}/rate-limits. */
export interface EndUserRateLimits {
  object: 'rate_limits';
  end_user_id: string;
  override: RateLimitOverride | null;
  /** The fields that follow the platform default. */
  inherited?: (keyof RateLimits)[];
  effective: RateLimits;
}

export type LogKind = 'chat.completions' | 'responses' | 'tool';

export interface LogEntry {
  object: 'log';
  request_id: string;
  end_user_id: string;
  kind: LogKind;
  model: string;
  provider: string;
  status_code: number;
  error_code: string | null;
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  cost_usd: Decimal;
  provider_cost_usd: Decimal;
  latency_ms: number;
  ttft_ms: number | null;
  stream: boolean;
  created_at: string;
  tool?: string;
  app?: string;
}

export interface LogListParams {
  end_user_id?: string;
  model?: string;
  kind?: LogKind;
  /** A status code ("429", 429), a class ("2xx", "4xx", "5xx") or "error". */
  status?: string | number;
  /** RFC 3339 time or Date; entries at or after. `since` is the same. */
  start?: string | Date;
  since?: string | Date;
  /** RFC 3339 time or Date; entries before. */
  end?: string | Date;
  limit?: number;
}

export interface Model {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
}

export interface SkillFile {
  path: string;
  size: number;
  sha256: string;
}

export interface Scorecard {
  review_count: number;
  correctness: number | null;
  clarity: number | null;
  safety: number | null;
  usefulness: number | null;
  overall: number | null;
}

export interface Skill {
  object: 'skill';
  id: string;
  name: string;
  description: string;
  visibility: 'public' | 'private';
  platform_id?: string;
  files: SkillFile[];
  file_count: number;
  total_bytes: number;
  created_at: string;
  scorecard: Scorecard;
}

export interface SkillCreateParams {
  name: string;
  description: string;
  /** The zip archive of the skill folder (SKILL.md at its root), raw bytes or base64. */
  archive: Uint8Array | { base64: string };
}

export type MCPAppName = 'github' | 'slack' | 'zoho_mail' | 'zendesk';

export interface MCPApp {
  app: MCPAppName | (string & {});
  object: string;
  title: string;
  active: boolean;
  connected: boolean;
  connected_at: string | null;
  scopes: string[];
  tools: string[];
}

export interface MCPAuthorization {
  object: 'mcp_authorization';
  app: string;
  /** Send the end-user's browser here to consent; the gateway finishes the OAuth flow. */
  authorization_url: string;
}

export interface MCPConnected {
  object: 'mcp_connection';
  app: string;
  connected: true;
}

export interface MCPDisconnected {
  object: 'mcp_connection';
  app: string;
  deleted: true;
}
