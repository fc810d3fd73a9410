// verifyWebhook: Standard Webhooks (v1, symmetric) verification of the
// gateway's deliveries. The signed content is
// "<webhook-id>.<webhook-timestamp>.<raw body>", HMAC-SHA256 under the
// base64-decoded secret (whsec_ prefix optional); webhook-signature holds one
// or more space-separated "v1,<base64>" entries (several during a secret
// rotation) and any one matching, compared in constant time, is enough.

import { createHmac, timingSafeEqual } from 'node:crypto';
import { parse, type Decimal } from './json.js';

/** Why a delivery was refused. */
export type WebhookVerificationReason =
  | 'invalid_secret'
  | 'missing_headers'
  | 'invalid_timestamp'
  | 'timestamp_too_old'
  | 'timestamp_too_new'
  | 'invalid_signature'
  | 'invalid_payload';

/** WebhookVerificationError: answer 400 and do not act on the payload. */
export class WebhookVerificationError extends Error {
  constructor(readonly reason: WebhookVerificationReason, message: string) {
    super(message);
    this.name = 'WebhookVerificationError';
  }
}

/** The event types the gateway sends. */
export const WEBHOOK_EVENT_TYPES = [
  'budget.topped_up',
  'budget.debited',
  'budget.low_balance',
  'budget.suspended',
  'budget.unsuspended',
  'wallet.low_balance',
  'wallet.topped_up',
] as const;

export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** What every budget event carries: who, and the budget now. */
export interface BudgetEventData {
  platform_id: string;
  end_user_id: string;
  external_id: string;
  balance_usd: Decimal;
  /** The budget's amount; on topped_up/debited, the amount moved (positive). */
  amount_usd: Decimal;
  period: string;
}

/** budget.topped_up and budget.debited: the ledger entry that moved money. */
export interface BudgetMovementEventData extends BudgetEventData {
  transaction_id: string;
  transaction_type: string;
  reason?: string;
  request_id?: string;
  model?: string;
}

export interface BudgetLowBalanceEventData extends BudgetEventData {
  threshold_usd: Decimal;
}

export interface WalletLowBalanceEventData {
  platform_id: string;
  balance_usd: Decimal;
  threshold_usd: Decimal;
  /** Set when auto top-up is on: the amount about to be charged. */
  auto_topup_amount_usd?: Decimal;
}

export interface WalletToppedUpEventData {
  platform_id: string;
  balance_usd: Decimal;
  amount_usd: Decimal;
  transaction_id?: string;
  transaction_type?: string;
}

interface EventOf<T extends WebhookEventType, D> {
  /** The event id: the webhook-id of every attempt; deduplicate on it. */
  id: string;
  event_type: T;
  created_at: string;
  data: D;
}

export type BudgetToppedUpEvent = EventOf<'budget.topped_up', BudgetMovementEventData>;
export type BudgetDebitedEvent = EventOf<'budget.debited', BudgetMovementEventData>;
export type BudgetLowBalanceEvent = EventOf<'budget.low_balance', BudgetLowBalanceEventData>;
export type BudgetSuspendedEvent = EventOf<'budget.suspended', BudgetEventData>;
export type BudgetUnsuspendedEvent = EventOf<'budget.unsuspended', BudgetEventData>;
export type WalletLowBalanceEvent = EventOf<'wallet.low_balance', WalletLowBalanceEventData>;
export type WalletToppedUpEvent = EventOf<'wallet.topped_up', WalletToppedUpEventData>;

/** A verified event; narrow it with a switch on event_type. */
export type WebhookEvent =
  | BudgetToppedUpEvent
  | BudgetDebitedEvent
  | BudgetLowBalanceEvent
  | BudgetSuspendedEvent
  | BudgetUnsuspendedEvent
  | WalletLowBalanceEvent
  | WalletToppedUpEvent;

/** Request headers as Node (IncomingHttpHeaders), fetch (Headers) or a plain object give them. */
export type WebhookHeaders =
  | Headers
  | { get(name: string): string | null | undefined }
  | Record<string, string | string[] | undefined>;

export interface VerifyWebhookOptions {
  /** How far webhook-timestamp may be from now, either way, in seconds. Default 300. */
  toleranceSeconds?: number;
  /** The clock, in milliseconds since the epoch (tests). Default Date.now(). */
  now?: number;
}

const MIN_KEY_BYTES = 24;
const MAX_KEY_BYTES = 64;
const base64Pattern = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function secretKey(secret: string): Buffer {
  if (typeof secret !== 'string') throw new WebhookVerificationError('invalid_secret', 'the signing secret must be a string');
  const b64 = secret.startsWith('whsec_') ? secret.slice(6) : secret;
  if (!base64Pattern.test(b64)) throw new WebhookVerificationError('invalid_secret', 'the signing secret is not whsec_ followed by standard base64');
  const key = Buffer.from(b64, 'base64');
  if (key.length < MIN_KEY_BYTES || key.length > MAX_KEY_BYTES) {
    throw new WebhookVerificationError('invalid_secret', `the signing secret decodes to ${key.length} bytes, want ${MIN_KEY_BYTES} to ${MAX_KEY_BYTES}`);
  }
  return key;
}

function header(headers: WebhookHeaders, name: string): string | undefined {
  const getter = (headers as { get?: unknown }).get;
  if (typeof getter === 'function') {
    return (getter as (n: string) => string | null | undefined).call(headers, name) ?? undefined;
  }
  const rec = headers as Record<string, string | string[] | undefined>;
  let v = rec[name];
  if (v === undefined) {
    const k = Object.keys(rec).find((k) => k.toLowerCase() === name);
    v = k === undefined ? undefined : rec[k];
  }
  return Array.isArray(v) ? v.join(', ') : v;
}

/**
 * signWebhook returns the webhook-signature value ("v1,<base64>") of one
 * delivery: for tests of receivers and for tools that replay events.
 */
export function signWebhook(secret: string, msgId: string, timestamp: number, payload: string | Uint8Array): string {
  return 'v1,' + mac(secretKey(secret), msgId, String(timestamp), payload).toString('base64');
}

function mac(key: Buffer, msgId: string, stamp: string, payload: string | Uint8Array): Buffer {
  return createHmac('sha256', key).update(`${msgId}.${stamp}.`).update(payload).digest();
}

/**
 * verifyWebhookSignature checks a delivery's signature and timestamp
 * without reading the body: for payloads that are not gateway events. It
 * throws WebhookVerificationError like [verifyWebhook].
 */
export function verifyWebhookSignature(
  payload: string | Uint8Array,
  headers: WebhookHeaders,
  secret: string,
  options: VerifyWebhookOptions = {},
): void {
  if (typeof payload !== 'string' && !(payload instanceof Uint8Array)) {
    throw new TypeError('verifyWebhook needs the raw body (string or Buffer), not a parsed object: use express.raw() or read the stream');
  }
  const key = secretKey(secret);
  const id = header(headers, 'webhook-id');
  const stamp = header(headers, 'webhook-timestamp');
  const sigs = header(headers, 'webhook-signature');
  if (!id || !stamp || !sigs) {
    throw new WebhookVerificationError('missing_headers', 'webhook-id, webhook-timestamp and webhook-signature are required');
  }
  if (!/^(0|[1-9]\d{0,17})$/.test(stamp)) {
    throw new WebhookVerificationError('invalid_timestamp', 'webhook-timestamp must be decimal Unix seconds');
  }
  const tolerance = options.toleranceSeconds ?? 300;
  if (!(tolerance >= 0)) throw new RangeError('toleranceSeconds must not be negative');
  const now = Math.floor((options.now ?? Date.now()) / 1000);
  const ts = Number(stamp);
  if (now - ts > tolerance) throw new WebhookVerificationError('timestamp_too_old', 'webhook-timestamp is too old (a replay, or held too long)');
  if (ts - now > tolerance) throw new WebhookVerificationError('timestamp_too_new', 'webhook-timestamp is in the future');
  const want = mac(key, id, stamp, payload);
  let ok = false;
  // Entries are space-separated; a header sent twice reaches Node joined
  // with ", ", hence the trailing comma trimmed from each value.
  for (const entry of sigs.split(' ')) {
    const comma = entry.indexOf(',');
    if (comma <= 0 || entry.slice(0, comma) !== 'v1') continue;
    const value = entry.slice(comma + 1).replace(/,$/, '');
    if (value.length !== 44 || !base64Pattern.test(value)) continue;
    const got = Buffer.from(value, 'base64');
    // Every candidate is compared (no early exit), each in constant time.
    if (got.length === want.length && timingSafeEqual(got, want)) ok = true;
  }
  if (!ok) throw new WebhookVerificationError('invalid_signature', 'no webhook-signature entry matches');
}

/**
 * verifyWebhook checks a delivery and returns its typed event. payload must
 * be the raw body exactly as received (a string or Buffer, never a parsed
 * object: re-serializing changes the bytes). It throws
 * WebhookVerificationError when the secret is malformed, a header is
 * missing, the timestamp is not canonical or is outside the tolerance
 * (either way), no v1 signature matches, or the verified body is not an
 * event. Amounts in the event are decimal strings, exact.
 */
export function verifyWebhook(
  payload: string | Uint8Array,
  headers: WebhookHeaders,
  secret: string,
  options: VerifyWebhookOptions = {},
): WebhookEvent {
  verifyWebhookSignature(payload, headers, secret, options);
  const text = typeof payload === 'string' ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8');
  let event: unknown;
  try {
    event = parse(text);
  } catch {
    throw new WebhookVerificationError('invalid_payload', 'the signed body is not JSON');
  }
  const e = event as Partial<WebhookEvent> | null;
  if (e === null || typeof e !== 'object' || typeof e.id !== 'string' || typeof e.event_type !== 'string' || typeof e.data !== 'object' || e.data === null) {
    throw new WebhookVerificationError('invalid_payload', 'the signed body is not an event {id, event_type, created_at, data}');
  }
  return event as WebhookEvent;
}
