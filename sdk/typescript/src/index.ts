// @assistiv/sdk: the TypeScript client of the Assistiv gateway's management
// surface, its typed errors, and Standard Webhooks verification.

export { Assistiv, DEFAULT_BASE_URL, type ClientOptions } from './client.js';
export type { Fetch, RequestOptions } from './core.js';
export {
  AssistivError,
  AssistivAuthError,
  AssistivPaymentRequiredError,
  AssistivRateLimitError,
  AssistivConnectionError,
  AssistivTimeoutError,
  type AssistivErrorInit,
} from './errors.js';
export { ListRequest, Page, type ListEnvelope } from './pagination.js';
export type * from './types.js';
export {
  verifyWebhook,
  verifyWebhookSignature,
  signWebhook,
  WebhookVerificationError,
  WEBHOOK_EVENT_TYPES,
  type WebhookVerificationReason,
  type WebhookEvent,
  type WebhookEventType,
  type WebhookHeaders,
  type VerifyWebhookOptions,
  type BudgetEventData,
  type BudgetMovementEventData,
  type BudgetLowBalanceEventData,
  type WalletLowBalanceEventData,
  type WalletToppedUpEventData,
  type BudgetToppedUpEvent,
  type BudgetDebitedEvent,
  type BudgetLowBalanceEvent,
  type BudgetSuspendedEvent,
  type BudgetUnsuspendedEvent,
  type WalletLowBalanceEvent,
  type WalletToppedUpEvent,
} from './webhooks.js';
export { VERSION } from './version.js';
