package persistence

import "encoding/binary"

// Record families: the first byte of every key.
const (
	FamilyMeta        byte = 0x01
	FamilyChangefeed  byte = 0x02
	FamilyPlatform    byte = 0x10
	FamilyKey         byte = 0x11
	FamilyPlatKeys    byte = 0x12
	FamilyEndUser     byte = 0x13
	FamilyExternal    byte = 0x14
	FamilyLedger      byte = 0x15
	FamilyIdempotency byte = 0x16
	FamilyReservation byte = 0x17
	FamilyUserKeys    byte = 0x18
)

// SchemaVersion is the layout version this code reads and writes.
const SchemaVersion = 1

// MetaSchemaKey holds the schema version of a data dir.
var MetaSchemaKey = MetaKey("schema_version")

// MetaChangefeedGap is set while (and after) the store ran without a
// changefeed; a snapshotter that finds it makes a full copy, then clears it.
var MetaChangefeedGap = MetaKey("changefeed_gap")

// MetaKey returns the key of a meta value.
func MetaKey(name string) []byte { return join(FamilyMeta, name) }

func join(family byte, parts ...string) []byte {
	n := 1
	for _, p := range parts {
		n += len(p) + 1
	}
	b := make([]byte, 0, n+8)
	b = append(b, family)
	for i, p := range parts {
		if i > 0 {
			b = append(b, 0)
		}
		b = append(b, p...)
	}
	return b
}

// PlatformKey is the key of a platform record.
func PlatformKey(platformID string) []byte { return join(FamilyPlatform, platformID) }

// APIKeyKey is the key of an API key record, by digest.
func APIKeyKey(digest []byte) []byte { return append([]byte{FamilyKey}, digest...) }

// PlatformKeyIndex is the key of a platform key's index entry.
func PlatformKeyIndex(platformID, keyID string) []byte {
	return join(FamilyPlatKeys, platformID, keyID)
}

// PlatformKeysPrefix is the prefix of all of a platform's key index entries.
func PlatformKeysPrefix(platformID string) []byte {
	return append(join(FamilyPlatKeys, platformID), 0)
}

// UserKeyIndex is the key of an end-user key's index entry.
func UserKeyIndex(platformID, endUserID, keyID string) []byte {
	return join(FamilyUserKeys, platformID, endUserID, keyID)
}

// UserKeysPrefix is the prefix of all of an end-user's key index entries.
func UserKeysPrefix(platformID, endUserID string) []byte {
	return append(join(FamilyUserKeys, platformID, endUserID), 0)
}

// EndUserKey is the key of an end-user record.
func EndUserKey(platformID, endUserID string) []byte {
	return join(FamilyEndUser, platformID, endUserID)
}

// EndUsersPrefix is the prefix of all of a platform's end-user records.
func EndUsersPrefix(platformID string) []byte { return append(join(FamilyEndUser, platformID), 0) }

// ExternalKey is the key of the external_id → end-user id index.
func ExternalKey(platformID, externalID string) []byte {
	return join(FamilyExternal, platformID, externalID)
}

// LedgerPrefix is the prefix of one account's ledger entries.
func LedgerPrefix(platformID, account string) []byte {
	return append(join(FamilyLedger, platformID, account), 0)
}

// LedgerKey is the key of one ledger entry.
func LedgerKey(platformID, account string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(LedgerPrefix(platformID, account), seq)
}

// IdempotencyKey is the key of an idempotency record, scoped to (platform,
// account, route).
func IdempotencyKey(platformID, account, route, key string) []byte {
	return join(FamilyIdempotency, platformID, account, route, key)
}

// IdempotencyPrefix is the prefix of one account's idempotency records.
func IdempotencyPrefix(platformID, account string) []byte {
	return append(join(FamilyIdempotency, platformID, account), 0)
}

// ReservationKey is the key of an open reservation.
func ReservationKey(platformID, account, reservationID string) []byte {
	return join(FamilyReservation, platformID, account, reservationID)
}

// ReservationPrefix is the prefix of one account's open reservations.
func ReservationPrefix(platformID, account string) []byte {
	return append(join(FamilyReservation, platformID, account), 0)
}

// ChangefeedKey is the key of one commit's changefeed record.
func ChangefeedKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{FamilyChangefeed}, seq)
}

// PrefixEnd returns the smallest key greater than every key with prefix p.
func PrefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil // p is all 0xff: no upper bound
}

// FamilyWindows holds an end-user's rate windows, saved when its actor
// passivates: 0x19 platformID 0x00 endUserID → encoded windows.
const FamilyWindows byte = 0x19

// WindowsKey is the key of an end-user's saved rate windows.
func WindowsKey(platformID, endUserID string) []byte {
	return join(FamilyWindows, platformID, endUserID)
}

// WindowDeltasPrefix is the prefix of an end-user's rate-window deltas:
// the calls settled since its windows checkpoint (the checkpoint's key is
// not under it).
func WindowDeltasPrefix(platformID, endUserID string) []byte {
	return append(WindowsKey(platformID, endUserID), 0)
}

// WindowDeltaKey is the key of one rate-window delta.
func WindowDeltaKey(platformID, endUserID string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(WindowDeltasPrefix(platformID, endUserID), seq)
}

// ChargeKey is the key of a recorded offline payment charge.
func ChargeKey(platformID, chargeID string) []byte {
	return join(FamilyMeta, "charge", platformID, chargeID)
}

// FamilyOutbox holds webhook events written in the same commit as their
// cause: 0x20 platformID 0x00 eventID → the event's JSON payload. The
// webhooks dispatcher fans each out to subscribed endpoints and deletes it.
const FamilyOutbox byte = 0x20

// OutboxKey is the key of one outbox event.
func OutboxKey(platformID, eventID string) []byte { return join(FamilyOutbox, platformID, eventID) }

// Webhook delivery families (package webhooks owns their values; see doc.go):
//
//	0x21 endpoint  0x21 platformID 0x00 endpointID                       → endpoint JSON
//	0x22 message   0x22 platformID 0x00 endpointID 0x00 msgID           → message JSON
//	0x23 due       0x23 platformID 0x00 endpointID 0x00 due(8) msgID    → empty
//
// A message is one event fanned out to one endpoint; msgID is the event id
// (the webhook-id). A pending message has exactly one due entry, due(8)
// being its next attempt time in big-endian Unix milliseconds, so a scan of
// an endpoint's due prefix yields its work in time order.
const (
	FamilyWebhookEndpoint byte = 0x21
	FamilyWebhookMessage  byte = 0x22
	FamilyWebhookDue      byte = 0x23
)

// WebhookEndpointKey is the key of a webhook endpoint record.
func WebhookEndpointKey(platformID, endpointID string) []byte {
	return join(FamilyWebhookEndpoint, platformID, endpointID)
}

// WebhookEndpointsPrefix is the prefix of all of a platform's endpoints.
func WebhookEndpointsPrefix(platformID string) []byte {
	return append(join(FamilyWebhookEndpoint, platformID), 0)
}

// WebhookMessageKey is the key of one message (event × endpoint).
func WebhookMessageKey(platformID, endpointID, msgID string) []byte {
	return join(FamilyWebhookMessage, platformID, endpointID, msgID)
}

// WebhookMessagesPrefix is the prefix of all of one endpoint's messages.
func WebhookMessagesPrefix(platformID, endpointID string) []byte {
	return append(join(FamilyWebhookMessage, platformID, endpointID), 0)
}

// WebhookDueKey is the key of a pending message's due entry.
func WebhookDueKey(platformID, endpointID string, dueMs int64, msgID string) []byte {
	k := binary.BigEndian.AppendUint64(WebhookDuePrefix(platformID, endpointID), uint64(max(dueMs, 0)))
	return append(k, msgID...)
}

// WebhookDuePrefix is the prefix of all of one endpoint's due entries.
func WebhookDuePrefix(platformID, endpointID string) []byte {
	return append(join(FamilyWebhookDue, platformID, endpointID), 0)
}

// Per-call logs (package logs). Entries are keyed by a per-node sequence
// the log writer assigns, so newest-first cursors stay exact while entries
// arrive; the request index finds one entry by its request id:
//
//	0x30 platformID 0x00 seq(8, big-endian) → encoded log entry
//	0x31 platformID 0x00 requestID          → seq(8, big-endian)
const (
	FamilyLogEntry   byte = 0x30
	FamilyLogRequest byte = 0x31
)

// LogEntriesPrefix is the prefix of all of a platform's log entries.
func LogEntriesPrefix(platformID string) []byte { return append(join(FamilyLogEntry, platformID), 0) }

// LogEntryKey is the key of the log entry with sequence seq.
func LogEntryKey(platformID string, seq uint64) []byte {
	return AppendLogEntryKey(make([]byte, 0, len(platformID)+10), platformID, seq)
}

// AppendLogEntryKey appends LogEntryKey(platformID, seq) to dst (the log
// writer cuts its keys from shared blocks).
func AppendLogEntryKey(dst []byte, platformID string, seq uint64) []byte {
	dst = append(append(append(dst, FamilyLogEntry), platformID...), 0)
	return binary.BigEndian.AppendUint64(dst, seq)
}

// LogRequestKey is the key of the request id → log sequence index row.
func LogRequestKey(platformID, requestID string) []byte {
	return AppendLogRequestKey(make([]byte, 0, len(platformID)+len(requestID)+2), platformID, requestID)
}

// AppendLogRequestKey appends LogRequestKey(platformID, requestID) to dst.
func AppendLogRequestKey(dst []byte, platformID, requestID string) []byte {
	return append(append(append(append(dst, FamilyLogRequest), platformID...), 0), requestID...)
}

// MCP families (package mcp owns their values; see doc.go):
//
//	0x40 mcp app      0x40 platformID 0x00 app                   → activation JSON (client secret sealed)
//	0x41 mcp conn     0x41 platformID 0x00 app 0x00 endUserID    → connection JSON (tokens sealed)
//	0x42 oauth state  0x42 sha256(state)(32)                     → pending authorization JSON (PKCE verifier sealed)
//
// Connections sort under their app so deactivating an app revokes every
// end-user's connection with one range delete. A state is keyed by its
// digest: the raw state never reaches the disk.
const (
	FamilyMCPApp     byte = 0x40
	FamilyMCPConn    byte = 0x41
	FamilyOAuthState byte = 0x42
)

// MCPAppKey is the key of a platform's activation of one MCP app.
func MCPAppKey(platformID, app string) []byte { return join(FamilyMCPApp, platformID, app) }

// MCPAppsPrefix is the prefix of all of a platform's MCP app activations.
func MCPAppsPrefix(platformID string) []byte { return append(join(FamilyMCPApp, platformID), 0) }

// MCPConnKey is the key of one end-user's connection to one MCP app.
func MCPConnKey(platformID, app, endUserID string) []byte {
	return join(FamilyMCPConn, platformID, app, endUserID)
}

// MCPConnsPrefix is the prefix of every end-user's connection to one app.
func MCPConnsPrefix(platformID, app string) []byte {
	return append(join(FamilyMCPConn, platformID, app), 0)
}

// OAuthStateKey is the key of a pending authorization, by the SHA-256 of
// its state parameter.
func OAuthStateKey(stateDigest []byte) []byte {
	return append([]byte{FamilyOAuthState}, stateDigest...)
}

// FamilyResponse holds stored Responses API objects (package edge), each
// with its conversation so far, and beside them each output item of a
// stored response, for item_reference inputs (item ids have their own
// prefixes, msg_ and fc_, never resp_):
//
//	0x50 platformID 0x00 endUserID 0x00 responseID → JSON {"response","messages"}
//	0x50 platformID 0x00 endUserID 0x00 itemID     → JSON {"response_id","item"}
const FamilyResponse byte = 0x50

// ResponseKey is the key of one end-user's stored response.
func ResponseKey(platformID, endUserID, responseID string) []byte {
	return join(FamilyResponse, platformID, endUserID, responseID)
}

// ResponseItemKey is the key of one output item of an end-user's stored
// response.
func ResponseItemKey(platformID, endUserID, itemID string) []byte {
	return join(FamilyResponse, platformID, endUserID, itemID)
}

// ResponsesPrefix is the prefix of all of one end-user's stored responses.
func ResponsesPrefix(platformID, endUserID string) []byte {
	return append(join(FamilyResponse, platformID, endUserID), 0)
}

// MCPAppNames are the MCP apps whose connections an end-user may hold; an
// end-user's deletion removes its connection to each.
var MCPAppNames = []string{"github", "slack", "zoho_mail", "zendesk"}

// Skill families (package mcp owns their values; see its doc.go). The
// files' bytes are content-addressed and sealed, in Pebble (0x64) so that
// snapshots and restores carry them with the records naming them:
//
//	0x60 skill     0x60 skillID                                  → skill JSON (name, description, files, review sums)
//	0x61 owner     0x61 owner 0x00 skillID                       → empty; owner is the platform id, "" for public skills
//	0x62 review    0x62 skillID 0x00 platformID 0x00 endUserID   → review JSON (one per end-user and skill)
//	0x63 blob ref  0x63 sha256(32)                               → uint64 big-endian: file references to the blob
//	0x64 blob      0x64 sha256(32)                               → the file's bytes, sealed (AES-256-GCM)
const (
	FamilySkill       byte = 0x60
	FamilySkillOwner  byte = 0x61
	FamilySkillReview byte = 0x62
	FamilySkillBlob   byte = 0x63
	FamilySkillData   byte = 0x64
)

// SkillDataKey is the key of a blob's sealed bytes, by the SHA-256 of its
// plaintext.
func SkillDataKey(sha []byte) []byte { return append([]byte{FamilySkillData}, sha...) }

// SkillKey is the key of one skill's record.
func SkillKey(skillID string) []byte { return join(FamilySkill, skillID) }

// SkillOwnerKey is the key of a skill's owner index entry (owner "" for a
// public skill).
func SkillOwnerKey(owner, skillID string) []byte { return join(FamilySkillOwner, owner, skillID) }

// SkillOwnerPrefix is the prefix of every skill owned by owner ("": public).
func SkillOwnerPrefix(owner string) []byte { return append(join(FamilySkillOwner, owner), 0) }

// SkillReviewKey is the key of one end-user's review of one skill.
func SkillReviewKey(skillID, platformID, endUserID string) []byte {
	return join(FamilySkillReview, skillID, platformID, endUserID)
}

// SkillReviewsPrefix is the prefix of every review of one skill.
func SkillReviewsPrefix(skillID string) []byte { return append(join(FamilySkillReview, skillID), 0) }

// SkillBlobRefKey is the key of a blob's reference count, by the SHA-256
// of its plaintext.
func SkillBlobRefKey(sha []byte) []byte { return append([]byte{FamilySkillBlob}, sha...) }

// Payment families (actors/autotopup.go owns their values):
//
//	0x70 platformID 0x00 "checkout" 0x00 sessionID  → pb.CheckoutSession
//	0x70 platformID 0x00 "intent" 0x00 intentID     → pb.TopupIntent
//	0x71 platformID 0x00 intentID                   → empty, while the intent is pending
//
// The pending index lets a restarting node find every auto top-up whose
// outcome it must still learn, without reading history.
const (
	FamilyPayment        byte = 0x70
	FamilyPendingPayment byte = 0x71
)

// CheckoutSessionKey is the key of a recorded Checkout Session.
func CheckoutSessionKey(platformID, sessionID string) []byte {
	return join(FamilyPayment, platformID, "checkout", sessionID)
}

// TopupIntentKey is the key of an auto top-up intent.
func TopupIntentKey(platformID, intentID string) []byte {
	return join(FamilyPayment, platformID, "intent", intentID)
}

// TopupIntentsPrefix is the prefix of all of a platform's intents.
func TopupIntentsPrefix(platformID string) []byte {
	return append(join(FamilyPayment, platformID, "intent"), 0)
}

// PendingTopupKey is the index entry of a pending intent.
func PendingTopupKey(platformID, intentID string) []byte {
	return join(FamilyPendingPayment, platformID, intentID)
}

// PendingTopupsPrefix is the prefix of every pending intent of every
// platform.
var PendingTopupsPrefix = []byte{FamilyPendingPayment}

// Wallet lease records (actors: the platform actor owns a lease record;
// end-user actors write its spend records with their usage entries).
const (
	FamilyLease      byte = 0x72
	FamilyLeaseSpend byte = 0x73
)

// LeaseKey is the key of a wallet lease record.
func LeaseKey(platformID, leaseID string) []byte { return join(FamilyLease, platformID, leaseID) }

// LeasesPrefix is the prefix of all of a platform's lease records.
func LeasesPrefix(platformID string) []byte { return append(join(FamilyLease, platformID), 0) }

// LeaseSpendPrefix is the prefix of one lease's unaggregated spend records.
func LeaseSpendPrefix(platformID, leaseID string) []byte {
	return append(join(FamilyLeaseSpend, platformID, leaseID), 0)
}

// LeaseSpendKey is the key of one settled call's spend on a lease.
func LeaseSpendKey(platformID, leaseID string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(LeaseSpendPrefix(platformID, leaseID), seq)
}

// FamilyDashboard holds the web dashboard's own records (package
// dashboard): platform team members, their invites and sign-in sessions.
// The second key part names the kind: "m" member (platform, email), "e"
// email index, "i" invite (token digest), "j" a platform's invite index
// (platform, token digest), "s" session (token digest), "u" a member's
// session index (platform, email, session digest).
const FamilyDashboard byte = 0x74

// DashboardKey is the key of a dashboard record of the given kind.
func DashboardKey(kind string, parts ...string) []byte {
	return join(FamilyDashboard, append([]string{kind}, parts...)...)
}

// DashboardPrefix is the prefix of every dashboard record of the kind
// whose leading parts are given.
func DashboardPrefix(kind string, parts ...string) []byte {
	return append(DashboardKey(kind, parts...), 0)
}

// FamilyHolding records, per actor identity, the epoch of this node's copy
// of the actor's records (cluster mode; package actors, holding.go):
// 0x75 kind(1) platformID 0x00 endUserID → epoch (uint64 big-endian). Each
// node that activates an actor after taking its records over from another
// node writes an epoch one above every copy it saw, so the newest copy is
// the one with the highest epoch. Node-local: not snapshotted.
const FamilyHolding byte = 0x75

// HoldingKey is the key of this node's holding epoch of one actor.
func HoldingKey(kind byte, platformID, endUserID string) []byte {
	b := []byte{FamilyHolding, kind}
	b = append(b, platformID...)
	b = append(b, 0)
	return append(b, endUserID...)
}

// PaymentsPrefix is the prefix of all of a platform's payment records
// (checkout sessions and auto top-up intents).
func PaymentsPrefix(platformID string) []byte { return append(join(FamilyPayment, platformID), 0) }

// PendingTopupsOf is the prefix of one platform's pending intents.
func PendingTopupsOf(platformID string) []byte {
	return append(join(FamilyPendingPayment, platformID), 0)
}

// ExternalPrefix is the prefix of a platform's external_id index.
func ExternalPrefix(platformID string) []byte { return append(join(FamilyExternal, platformID), 0) }

// FamilyTakeover marks an account taken over after its owner crashed
// (cluster mode; package actors, takeover.go): 0x76 kind(1) platformID 0x00
// endUserID → the crashed node's incarnation (uint64 big-endian), the
// amount held back from the balance (int64 big-endian), then the crashed
// node's name. It travels with the account's records and is snapshotted.
const FamilyTakeover byte = 0x76

// TakeoverKey is the key of one account's take-over marker.
func TakeoverKey(kind byte, platformID, endUserID string) []byte {
	b := []byte{FamilyTakeover, kind}
	b = append(b, platformID...)
	b = append(b, 0)
	return append(b, endUserID...)
}
