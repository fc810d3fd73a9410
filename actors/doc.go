// Package actors holds the gateway's state machines: one actor per platform
// (settings, API keys, wallet, end-user creation) and one per end-user
// (budget, ledger, rate windows, open reservations), addressed by identity
// through a [Directory]. [Local] is the single-node directory; the cluster
// package provides one that places actors across nodes. Messages are the
// protobuf types of internal/pb, so they cross nodes unchanged.
//
// # Rules and I/O
//
// The rules live in plain types ([account], [endUser], [window]) that read
// no clock and do no I/O; Receive is a thin switch that calls them, appends
// the records they return to the store and replies. The upstream HTTP call
// of an inference runs on the edge's goroutine between Admit and Settle,
// never in a mailbox.
//
// # One account type
//
// All money is an [account]: a balance, what open reservations hold of it,
// its ledger's sequence and entries, its idempotency records. An
// end-user's budget is one (reservations: admitted calls; usage: settled
// calls with markup), a platform's wallet is one (reservations: the
// credit wallet leases hold; usage: the leases' spend folded in), and the
// default budget of a new end-user opens through one. Their balances and
// sequences are stored where they always were (the end-user record's
// budget, the platform record's wallet).
//
// # Idle actors
//
// A resident end-user actor keeps [endUser], a compact struct (record
// fields, budget terms, its account, open reservations in one pointer,
// rate windows allocated only once a limit counts), no protobuf message
// and no timer once no call is open (the directory's idle sweep, not a
// protoactor receive timeout, passivates it: idle.go); protobuf is built
// at the boundaries (records written, views). Actors of a kind share
// one Props and read their identity from their name (actorName).
// BenchmarkIdleEndUserMemory measures the heap per idle actor and
// BenchmarkProtoactorFloor what protoactor alone costs.
//
// # Mailbox turns
//
// Protoactor runs an actor's mailbox in turns: one starts when an idle
// mailbox receives a message and drains it. The directory's actors run
// their turns on a [workerPool] (Env.MailboxWorkers long-lived goroutines,
// whose stacks stay grown) rather than a new goroutine per turn; a turn
// that finds no worker idle, because every one runs or is blocked in an
// actor, runs on a goroutine of its own, so no actor waits for another.
//
// # Reserve, settle, release
//
//	           Admit (RPM/RPD/TPM windows, suspended?, budget ≥ worst case)
//	  idle ───────────────────────────────────────────────▶ reserved
//	   ▲   reservation record appended without fsync            │
//	   │                                                         │
//	   │  Settle(actual): usage entry, balance −= actual,        │
//	   ├──────── reserved −= worst case, TPM corrected ◀─────────┤
//	   │         (durable before the reply in sync mode)         │
//	   │                                                         │
//	   └──────── Release: reserved −= worst case ◀───────────────┘
//	             (the call never reached the upstream)
//
//	crash while reserved → at activation: unsettled_on_crash entry (amount 0,
//	uncharged = reservation) and the reservation record deleted.
//
// # Durable before reply
//
// A mutation changes memory, hands its records to the store's group-commit
// pipeline, and replies from the pipeline's callback once the records are
// synced; the actor meanwhile serves its next message. Records are ordered,
// so a later reply implies every earlier record is durable. Reads reply
// through a barrier when the actor has writes in flight, so nothing a crash
// could take back is ever shown. Idempotency replays reply through the same
// barrier: never before the original's record is durable.
//
// # Activation and passivation
//
// An actor loads its records on Started (after waiting for writes queued by
// a predecessor to be applied) and passivates after Env.IdleTimeout without
// messages (at most a quarter of it later), unless it holds open
// reservations or writes in flight, in which case it is asked again after
// another IdleTimeout. The
// directory removes its entry only when no call is in flight, so no message
// is ever delivered to a stopping actor.
//
// # Payments
//
// The platform actor credits money that arrives from a payment processor
// exactly once: a Checkout Session by its id (payments.go), an auto top-up
// by its intent, which is recorded before the processor is asked to charge
// and whose id is the processor's idempotency key (autotopup.go).
//
// # Reads across nodes and coherent caches
//
// In a cluster an actor's records live on its owner's disk, and a stored
// response or call log on the disk of the node that served the call.
// Nothing reads them there from elsewhere: a read that is not one
// actor's is a query every node answers from its own records ([Peers],
// answered by [Node]; listing.go merges platform and end-user listings,
// the owner's copy first, and asks the owner about a record only stale
// copies hold). Key revocations and platform settings are broadcast to
// every node as they change, and the key and settings caches of a
// clustered node ([Env.SetPeers]) fill from the owner's copy and are
// refreshed after a TTL, the safety net behind a missed broadcast. On a
// single node ([SingleNode]) nothing of this costs anything on a call:
// no TTL, no fan-out, no broadcast.
//
// Imports: internal/*, persistence. Never cluster, edge or cmd.
package actors
