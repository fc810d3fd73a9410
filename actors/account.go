package actors

import (
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/internal/money"
	"github.com/assistiv/gateway/internal/pb"
	"github.com/assistiv/gateway/persistence"
)

// Ledger entry types.
const (
	EntryTopup              = "topup"
	EntryDebit              = "debit"
	EntryUsage              = "usage"
	EntryPeriodReset        = "period_reset"
	EntryBudgetSet          = "budget_set"
	EntryUnsettledOnCrash   = "unsettled_on_crash"
	EntryAutoTopup          = "auto_topup"
	EntryLeaseReturned      = "lease_returned"
	EntryReservationExpired = "reservation_expired"
)

// maxBalance is the ceiling of any account's balance.
const maxBalance = 8 * money.MaxAmount

// account is one ledger account: its balance, what open reservations hold
// of it, the sequence of its ledger, and its idempotency records. It is
// the one money type of the gateway: an end-user's budget (named by the
// end-user's id, reservations held by admitted calls) and a platform's
// wallet (named [WalletAccount], reservations held by wallet leases) are
// both an account, and every ledger entry either writes comes from its
// methods, so a ledger always sums to its balance.
//
// It reads no clock and does no I/O: each mutation returns the entry the
// caller must make durable before it answers. Where the balance and the
// sequence are stored (the end-user record's budget, the platform
// record's wallet) is the owner's business; the stored format is the
// same as before this type existed. Owned by a single actor; not safe
// for concurrent use.
type account struct {
	platform string
	name     string // the ledger account: an end-user id or WalletAccount
	balance  money.Nanos
	reserved money.Nanos // held by open reservations (calls, or leases)
	seq      uint64      // the last ledger entry's sequence
}

// entry appends an entry of typ moving the balance by amount, which the
// caller has already applied, and returns it.
func (a *account) entry(now time.Time, typ string, amount money.Nanos) *pb.LedgerEntry {
	a.seq++
	return &pb.LedgerEntry{
		Id:                ids.New(ids.EntryPrefix, now),
		PlatformId:        a.platform,
		Account:           a.name,
		Seq:               a.seq,
		Type:              typ,
		AmountNanos:       int64(amount),
		BalanceAfterNanos: int64(a.balance),
		CreatedAtMs:       now.UnixMilli(),
	}
}

// available is what the account can still hold or pay for.
func (a *account) available() money.Nanos { return a.balance - a.reserved }

// validAmount refuses an amount a caller may not move in one request.
func validAmount(amount money.Nanos) error {
	if amount <= 0 || amount > money.MaxAmount {
		return errorf(ErrAmountOutOfRange, "amount_usd must be positive and at most %s", money.MaxAmount)
	}
	return nil
}

// credit adds amount (a top-up of type typ): positive, at most
// [money.MaxAmount], and never taking the balance past its ceiling.
func (a *account) credit(now time.Time, typ string, amount money.Nanos) (*pb.LedgerEntry, error) {
	if err := validAmount(amount); err != nil {
		return nil, err
	}
	return a.deposit(now, typ, amount)
}

// deposit adds money paid in elsewhere (a Checkout Session): positive,
// and never taking the balance past its ceiling.
func (a *account) deposit(now time.Time, typ string, amount money.Nanos) (*pb.LedgerEntry, error) {
	if amount <= 0 {
		return nil, errorf(ErrAmountOutOfRange, "amount must be positive")
	}
	nb, err := money.Add(a.balance, amount)
	if err != nil || nb > maxBalance {
		return nil, errorf(ErrAmountOutOfRange, "balance would exceed the maximum")
	}
	a.balance = nb
	return a.entry(now, typ, amount), nil
}

// debit takes amount (an API debit): never below what open reservations
// hold.
func (a *account) debit(now time.Time, amount money.Nanos) (*pb.LedgerEntry, error) {
	if err := validAmount(amount); err != nil {
		return nil, err
	}
	if amount > a.available() {
		return nil, errorf(ErrBudgetExhausted, "debit of %s exceeds the available balance %s", amount, a.available())
	}
	a.balance -= amount
	return a.entry(now, EntryDebit, -amount), nil
}

// adjust moves the balance by delta with no limit checked: what the
// account's owner decided (a budget set, a period reset, a closing entry,
// an auto top-up the processor already charged).
func (a *account) adjust(now time.Time, typ string, delta money.Nanos) *pb.LedgerEntry {
	a.balance += delta
	return a.entry(now, typ, delta)
}

// note records an event that moves no money (a reservation voided at a
// crash or at its expiry, a lease closed at recovery).
func (a *account) note(now time.Time, typ string) *pb.LedgerEntry { return a.entry(now, typ, 0) }

// hold reserves amount of the balance.
func (a *account) hold(amount money.Nanos) { a.reserved += amount }

// unhold gives a reservation of amount back.
func (a *account) unhold(amount money.Nanos) { a.reserved -= amount }

// reserve holds up to want when the available balance has it, else what
// is available; it refuses when that is less than least.
func (a *account) reserve(want, least money.Nanos) (money.Nanos, bool) {
	g := min(want, max(a.available(), 0))
	if g < least || g == 0 && least > 0 {
		return 0, false
	}
	a.hold(g)
	return g, true
}

// charge settles a reservation of held with the actual cost: it gives the
// reservation back and debits the cost as a usage entry, never below
// what other reservations hold nor below zero; what cannot be charged is
// recorded on the entry as uncharged.
func (a *account) charge(now time.Time, held, cost money.Nanos) *pb.LedgerEntry {
	a.unhold(held)
	var uncharged money.Nanos
	if avail := a.available(); cost > avail {
		uncharged = cost - max(avail, 0)
		cost = max(avail, 0)
	}
	a.balance -= cost
	e := a.entry(now, EntryUsage, -cost)
	e.UnchargedNanos = int64(uncharged)
	return e
}

// idempotencyKey is where the record of an idempotent request to this
// account on route is stored.
func (a *account) idempotencyKey(route, key string) []byte {
	return persistence.IdempotencyKey(a.platform, a.name, route, key)
}

// remember returns the op that stores the outcome of an idempotent request
// (status 0: a refusal decided by the account's state) under its key.
func (a *account) remember(now time.Time, route, key string, hash []byte, status int32, reply proto.Message) persistence.Op {
	rec := &pb.IdempotencyRecord{Key: key, RequestHash: hash, Status: status, Reply: marshal(reply), CreatedAtMs: now.UnixMilli()}
	return persistence.Set(a.idempotencyKey(route, key), marshal(rec))
}

// ledgerKey is where entry seq of this account is stored.
func (a *account) ledgerKey(seq uint64) []byte {
	return persistence.LedgerKey(a.platform, a.name, seq)
}

// entryOp returns the op that stores e.
func (a *account) entryOp(e *pb.LedgerEntry) persistence.Op {
	return persistence.Set(a.ledgerKey(e.Seq), marshal(e))
}

// WithMarkup turns a provider cost into the end-user's charge: cost × (1 +
// bps/10,000), rounded up to the next nano-USD, in exact integers. The
// end-user actor charges budgets with it; the call log uses it for calls
// that were not settled.
func WithMarkup(cost money.Nanos, bps int64) (money.Nanos, error) {
	if cost < 0 {
		return 0, errorf(ErrInvalid, "negative cost")
	}
	if bps == 0 {
		return cost, nil
	}
	v, err := money.MulDivCeil(cost, 10_000+bps, 10_000)
	if err != nil {
		return 0, errorf(ErrAmountOutOfRange, "cost with markup overflows")
	}
	return v, nil
}
