// Package webhooks delivers the gateway's outbound webhooks: it owns the
// endpoints platforms register, the dispatcher that drains the outbox the
// actors write, the delivery workers, and the delivery log. Signing is
// Standard Webhooks v1 (package whsig); every connection goes through the
// SSRF guard of internal/egress. It may import actors, persistence and
// internal packages, never edge or cmd.
//
// # Flow
//
//	actor commit ──(same Pebble batch as the ledger entry)──▶ 0x20 outbox
//	      │ Env.Notify → Service.Wake
//	      ▼
//	dispatcher: ONE batch deletes the outbox records and writes, per
//	            enabled endpoint subscribed to the type, a message (0x22)
//	            and its due entry (0x23, due now)
//	      ▼
//	scheduler: per endpoint, scans due entries in time order and starts a
//	           delivery for each one due, within the bounds
//	      ▼
//	delivery:  POST payload with webhook-id / webhook-timestamp /
//	           webhook-signature; then ONE batch updates the message
//	           (attempts, status, code, latency, error, next attempt) and
//	           replaces its due entry (or removes it when final)
//
// Actors write an event only for types some enabled endpoint of the
// platform subscribes to: the service publishes each platform's mask to
// [actors.Subscriptions] whenever endpoints change. budget.debited is
// high-volume, so no endpoint gets it unless it lists it.
//
// # Records
//
//	0x21 platformID 0x00 endpointID                     → endpointRecord JSON
//	0x22 platformID 0x00 endpointID 0x00 msgID          → messageRecord JSON
//	0x23 platformID 0x00 endpointID 0x00 due(8) msgID   → empty
//
// msgID is the event id ("msg_" + time-ordered id), the webhook-id of every
// attempt and replay, so receivers can deduplicate. Scanning an endpoint's
// message prefix backwards lists its log newest first. The endpoint's
// signing secrets are sealed with internal/secrets, bound by additional
// data to "webhook_secret|platform|endpoint|current" (or "|previous"), and
// never logged.
//
// # Delivery rules
//
//   - 2xx within Config.RequestTimeout (default 10 s) is delivered.
//     Anything else fails the attempt: 3xx (redirects are never followed),
//     4xx, 5xx, a transport error, a timeout, or an address the egress
//     policy refuses at connect time (DNS rebinding).
//   - 410 Gone fails the message and disables the endpoint.
//   - A failed attempt is retried on Config.Schedule (Svix's: immediately,
//     5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, each delay ±10% jitter);
//     after the last attempt the message is failed. A Retry-After (in
//     seconds, at most 24 h) on a failed attempt lengthens its delay.
//   - An endpoint is disabled (with a slog warning) when every attempt has
//     failed for Config.DisableAfter (default 5 days) since the first
//     failure after its last success, Svix's rule. A disabled endpoint
//     gets no new messages; its pending ones are held and resume when it
//     is enabled again.
//   - Replay re-queues a delivered or failed message, same webhook-id, for
//     an immediate attempt and a fresh round of the schedule.
//
// Delivery is at least once: an attempt interrupted by a crash (or Close)
// is not recorded, and its due entry is still there after restart, so it is
// made again. Order is not promised, not even per endpoint. Because events
// are written in the actors' commit and moved to messages in one batch, a
// committed event is never lost and never exists without its cause.
//
// # Cluster
//
// With [Service.Share] several nodes serve the same endpoints: the
// endpoint records live in shared records (Postgres, cluster.Shared),
// each node's table follows them (reloaded on another node's
// announcement and every Sharing.Resync), and the messages, due entries
// and outbox stay in each node's Pebble: an event is dispatched and
// delivered by the node whose actor committed it, so once cluster-wide.
// A delivery that changes an endpoint's failure state writes it back to
// the shared record (re-read first, only those fields changed).
//
// # Concurrency
//
// Two goroutines (dispatcher, scheduler) plus one per delivery in flight,
// all started by Start and waited for by Close. At most Config.Workers
// deliveries run at once on the node and at most Config.PerEndpoint per
// endpoint, so a slow or dead endpoint holds a few workers, each cut at the
// request timeout, and never delays the others or the actors (who only
// append to the outbox and call Wake, which does not block).
//
// One mutex, Service.mu, guards the in-memory endpoints and scheduling
// state. Writes whose content depends on that state are submitted to the
// store while it is held, so the store applies them in decision order;
// their completion is awaited after releasing it. It is never held across
// network I/O. A shared service has one more lock, sharing.mu, taken
// before mu (never after) around each of its endpoint writes and held
// across the shared commit; reloads never take it (see shared.go).
package webhooks
