// Typed errors. Every error the gateway returns has the body
// {"error":{"type","code","message","request_id"}}; the SDK raises the class
// matching its status, carrying those fields.

/** Options of an [AssistivError]. */
export interface AssistivErrorInit {
  status?: number | undefined;
  type?: string | undefined;
  code: string;
  message: string;
  requestId?: string | undefined;
  headers?: Headers | undefined;
  cause?: unknown;
}

/**
 * AssistivError is any error of a call: a 4xx or 5xx answer with its
 * structured `code`, or (status undefined) a connection failure or timeout.
 */
export class AssistivError extends Error {
  /** HTTP status; undefined when no answer arrived. */
  readonly status: number | undefined;
  /** The error's type, e.g. "invalid_request_error". */
  readonly type: string | undefined;
  /** The machine-readable code, e.g. "invalid_amount", "not_found". */
  readonly code: string;
  /** The gateway's request id (X-Request-Id): quote it when reporting a problem. */
  readonly requestId: string | undefined;
  /** The response headers, when an answer arrived. */
  readonly headers: Headers | undefined;

  constructor(init: AssistivErrorInit) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = new.target.name;
    this.status = init.status;
    this.type = init.type;
    this.code = init.code;
    this.requestId = init.requestId;
    this.headers = init.headers;
  }
}

/**
 * AssistivAuthError: a missing, invalid or revoked key (401), or a key of the
 * wrong kind for the route or for X-Assistiv-Platform-Id (403
 * wrong_key_type, platform_mismatch).
 */
export class AssistivAuthError extends AssistivError {}

/** AssistivPaymentRequiredError (402): wallet exhausted, budget exhausted or suspended. */
export class AssistivPaymentRequiredError extends AssistivError {}

/** AssistivRateLimitError (429): a configured rate limit was exceeded. */
export class AssistivRateLimitError extends AssistivError {
  /** Seconds to wait before retrying (Retry-After), when the gateway said. */
  readonly retryAfter: number | undefined;

  constructor(init: AssistivErrorInit & { retryAfter?: number | undefined }) {
    super(init);
    this.retryAfter = init.retryAfter;
  }
}

/** AssistivConnectionError: no answer arrived (refused, reset, DNS). */
export class AssistivConnectionError extends AssistivError {}

/** AssistivTimeoutError: no answer within the client's timeout. */
export class AssistivTimeoutError extends AssistivConnectionError {}

const keyErrors = new Set(['wrong_key_type', 'platform_mismatch']);

/**
 * parseRetryAfter reads Retry-After (seconds or an HTTP date) as seconds;
 * undefined when absent or unreadable.
 */
export function parseRetryAfter(headers: Headers, now: number = Date.now()): number | undefined {
  const v = headers.get('retry-after');
  if (v === null || v.trim() === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(v.trim())) return Number(v.trim());
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, (at - now) / 1000);
}

/** errorFromResponse builds the error class matching status from a parsed body. */
export function errorFromResponse(status: number, headers: Headers, body: unknown): AssistivError {
  const e = (body as { error?: Record<string, unknown> } | undefined)?.error;
  const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
  const init: AssistivErrorInit = {
    status,
    type: str(e?.type),
    code: str(e?.code) ?? `http_${status}`,
    message: str(e?.message) ?? `HTTP ${status}`,
    requestId: str(e?.request_id) ?? headers.get('x-request-id') ?? undefined,
    headers,
  };
  if (status === 401 || (status === 403 && keyErrors.has(init.code))) return new AssistivAuthError(init);
  if (status === 402) return new AssistivPaymentRequiredError(init);
  if (status === 429) return new AssistivRateLimitError({ ...init, retryAfter: parseRetryAfter(headers) });
  return new AssistivError(init);
}
