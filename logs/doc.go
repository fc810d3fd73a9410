// Package logs owns the per-call structured logs: one [Entry] per
// inference or tool call (tokens, cost, latency, status), written without
// slowing the response, listed per platform with filters and cursors, and
// expired after a retention period.
//
// # Writing
//
// [Writer.Write] puts an entry on a bounded in-memory queue and returns; it
// never blocks. One goroutine drains the queue, assigns each entry the next
// per-node sequence number, and folds whatever has queued into one
// persistence.Write. When the queue is full (the store cannot keep up) new
// entries are dropped and counted: [Writer.Dropped], exported by cmd/gateway
// as assistiv_logs_dropped_total. Logs are not money, so the writes are
// NoSync: they are applied (readable) at once and become durable with the
// next fsync of any write; a crash may lose the last moments of logs, never
// a ledger entry. [Store.Close] drains the queue before the store closes.
//
// # Keys
//
//	0x30 platformID 0x00 seq(8, big-endian) → encoded entry (see encode)
//	0x31 platformID 0x00 requestID          → seq(8)
//	0x01 "log_seq"                          → last seq(8) + its created_at(8)
//
// The sequence, not the time, orders a platform's entries. The writer also
// never lets created_at go backwards in sequence order, so time bounds
// become key bounds (found by binary search) and expired entries are
// always a prefix of each platform's range. A cursor is the sequence below
// which the next page continues; since only newer sequences appear while a
// client pages, newest-first pages neither skip nor repeat an entry. One
// query examines at most [Config.MaxScan] entries, then answers has_more
// with a cursor, so a selective filter cannot scan forever.
//
// # Retention
//
// A janitor goroutine runs [Store.Sweep] every [Config.SweepInterval]: per
// platform it range-deletes the entries older than [Config.Retention]
// (oldest first, bounded chunks) and their request index rows.
//
// # Concurrency and imports
//
// Two goroutines, both owned by the [Store] and stopped by Close: the
// writer's drain loop and the janitor. Queries run on the caller's
// goroutine over Pebble iterators. The writer's mutex only guards closing
// the queue against concurrent sends; there is no other lock.
//
// logs imports persistence and internal packages; never edge or actors
// (the edge renders entries as JSON and calls Write).
package logs
