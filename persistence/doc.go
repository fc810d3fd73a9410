// Package persistence owns the node's store: Pebble as the write-ahead log
// and the state of every actor, its key spaces, the group-commit pipeline,
// and (in package postgres below it) periodic snapshots to Postgres.
//
// # Key spaces
//
// Every key starts with one byte naming its record family; the families and
// the layout of the rest are fixed for a schema version (stored under
// [MetaSchemaKey]). Ids never contain a 0x00 byte, so 0x00 separates
// components and a prefix scan of one tenant never crosses into another:
//
//	0x01 meta        0x01 name                             → value
//	0x02 changefeed  0x02 seq(8, big-endian)               → keys changed by one commit
//	0x10 platform    0x10 platformID                       → pb.Platform
//	0x11 key         0x11 digest(32)                       → pb.APIKey
//	0x12 plat keys   0x12 platformID 0x00 keyID            → digest(32)
//	0x13 end-user    0x13 platformID 0x00 endUserID        → pb.EndUser
//	0x14 external    0x14 platformID 0x00 externalID       → endUserID
//	0x15 ledger      0x15 platformID 0x00 account 0x00 seq(8) → pb.LedgerEntry
//	0x16 idempotency 0x16 platformID 0x00 account 0x00 route 0x00 key → pb.IdempotencyRecord
//	0x17 reservation 0x17 platformID 0x00 account 0x00 reservationID → pb.Reservation
//	0x18 user keys   0x18 platformID 0x00 endUserID 0x00 keyID → digest(32)
//	0x19 windows     0x19 platformID 0x00 endUserID        → saved rate windows
//	0x20 outbox      0x20 platformID 0x00 eventID          → webhook event JSON
//	0x21 wh endpoint 0x21 platformID 0x00 endpointID       → webhook endpoint JSON (package webhooks)
//	0x22 wh message  0x22 platformID 0x00 endpointID 0x00 msgID → delivery state JSON (package webhooks)
//	0x23 wh due      0x23 platformID 0x00 endpointID 0x00 due(8) msgID → empty: a pending message's next attempt
//	0x30 log entry   0x30 platformID 0x00 seq(8)           → log entry (package logs)
//	0x31 log request 0x31 platformID 0x00 requestID        → seq(8) of its log entry
//	0x40 mcp app     0x40 platformID 0x00 app              → MCP app activation JSON, client secret sealed (package mcp)
//	0x41 mcp conn    0x41 platformID 0x00 app 0x00 endUserID → MCP connection JSON, OAuth tokens sealed (package mcp)
//	0x42 oauth state 0x42 sha256(state)(32)                → pending OAuth authorization JSON, PKCE verifier sealed (package mcp)
//	0x50 response    0x50 platformID 0x00 endUserID 0x00 responseID → stored response and its conversation, JSON (package edge)
//	                 0x50 platformID 0x00 endUserID 0x00 itemID     → one output item of a stored response, for item_reference, JSON (package edge)
//	0x60 skill       0x60 skillID                          → skill metadata JSON: name, description, file list, review sums (package mcp)
//	0x61 skill owner 0x61 owner 0x00 skillID               → empty; owner is the platform id, "" for public skills (package mcp)
//	0x62 skill review 0x62 skillID 0x00 platformID 0x00 endUserID → one end-user's review JSON (package mcp)
//	0x63 skill blob  0x63 sha256(32)                       → uint64 big-endian count of file references to the sealed blob (package mcp)
//	0x70 payment     0x70 platformID 0x00 ("checkout" 0x00 sessionID | "intent" 0x00 intentID) → pb.CheckoutSession | pb.TopupIntent (package actors)
//	0x71 pending pay 0x71 platformID 0x00 intentID         → empty: an auto top-up intent whose outcome is not yet recorded
//	0x72 lease       0x72 platformID 0x00 leaseID          → pb.Lease: wallet credit granted to one node's run (package actors)
//	0x73 lease spend 0x73 platformID 0x00 leaseID 0x00 seq(8) → pb.LeaseSpend: a settled call's wallet cost, until folded into the wallet
//	0x74 dashboard   0x74 kind 0x00 parts…                 → dashboard members, invites, sessions (package dashboard)
//	0x75 holding     0x75 kind(1) platformID 0x00 endUserID → epoch(8) of this node's copy of an actor's records (cluster mode; not snapshotted)
//	0x19 deltas      0x19 platformID 0x00 endUserID 0x00 seq(8) → a settled call's rate-window delta since the windows checkpoint
//
// # Durability
//
// Writers hand [Write]s to [Store.Submit]. One committer goroutine drains
// the queue in order, folds whatever has queued into one Pebble batch, and
// applies it with a synced write without waiting for the fsync; a second
// goroutine waits for each batch's fsync in order and only then calls the
// writers' Done callbacks. Many actors' records therefore share one fsync,
// order is kept (a durable record implies every earlier one is durable), and
// an actor never blocks on the disk: it replies from Done. A write or fsync
// error is fatal: the store refuses every later write and calls
// [Config.OnFatal], so nothing is acknowledged after a failed sync.
//
// Each batch also records the keys it changed under the changefeed family,
// which the Postgres snapshotter reads from its watermark.
//
// This package imports no sibling package of ours (style.md §1).
package persistence
