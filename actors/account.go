package actors

import (
	"time"

	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/internal/money"
	"github.com/assistiv/gateway/internal/pb"
)

// Budget periods.
const (
	PeriodOneTime = "one_time"
	PeriodDaily   = "daily"
	PeriodMonthly = "monthly"
)

// ValidPeriod reports whether p names a budget period.
func ValidPeriod(p string) bool {
	return p == PeriodOneTime || p == PeriodDaily || p == PeriodMonthly
}

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

// periodStart returns the start of the budget period containing t (UTC).
func periodStart(period string, t time.Time) time.Time {
	t = t.UTC()
	switch period {
	case PeriodDaily:
		return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	case PeriodMonthly:
		return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
	return time.Time{}
}

// openReservation is admitted spend not yet settled.
type openReservation struct {
	amount    money.Nanos
	wallet    money.Nanos // provider cost held on the wallet lease
	expires   time.Time   // wall clock: voided then if still open
	tokens    int64
	at        time.Time
	tpmAt     time.Time // where its tokens sit in the TPM window; zero: not counted
	requestID string
}

// account is one end-user's budget, open reservations and rate windows: the
// rules the end-user actor applies. It reads no clock and does no I/O; each
// method returns the ledger entries the caller must make durable before it
// answers. Owned by a single actor; not safe for concurrent use.
type account struct {
	user     *pb.EndUser
	reserved money.Nanos
	open     map[string]*openReservation
	rpm      window
	tpm      window
	rpd      window
}

func newAccount(u *pb.EndUser) *account {
	return &account{
		user: u,
		open: make(map[string]*openReservation),
		rpm:  newWindow(time.Minute, 0),
		tpm:  newWindow(time.Minute, 0),
		rpd:  newWindow(24*time.Hour, time.Minute),
	}
}

func (a *account) entry(now time.Time, typ string, amount money.Nanos) *pb.LedgerEntry {
	a.user.LedgerSeq++
	return &pb.LedgerEntry{
		Id:                ids.New(ids.EntryPrefix, now),
		PlatformId:        a.user.PlatformId,
		Account:           a.user.Id,
		Seq:               a.user.LedgerSeq,
		Type:              typ,
		AmountNanos:       int64(amount),
		BalanceAfterNanos: a.user.Budget.GetBalanceNanos(),
		CreatedAtMs:       now.UnixMilli(),
	}
}

// resetIfDue brings a periodic budget back to its amount when now has
// crossed a period boundary since the period started. The entry is dated at
// the boundary, however late the user was next touched. A clock that went
// backwards never resets.
func (a *account) resetIfDue(now time.Time) *pb.LedgerEntry {
	b := a.user.Budget
	if b == nil || b.Period == PeriodOneTime {
		return nil
	}
	boundary := periodStart(b.Period, now)
	if boundary.UnixMilli() <= b.PeriodStartMs {
		return nil
	}
	delta := money.Nanos(b.AmountNanos - b.BalanceNanos)
	b.BalanceNanos = b.AmountNanos
	b.PeriodStartMs = boundary.UnixMilli()
	b.LowBalanceNotified = false
	e := a.entry(boundary, EntryPeriodReset, delta)
	e.Reason = "period_reset"
	return e
}

// available is what the budget can still admit.
func (a *account) available() money.Nanos {
	return money.Nanos(a.user.Budget.GetBalanceNanos()) - a.reserved
}

// credit applies a top-up (debit=false) or an API debit (debit=true).
// A debit never takes the balance below what open reservations hold.
func (a *account) credit(now time.Time, amount money.Nanos, debit bool) (*pb.LedgerEntry, error) {
	b := a.user.Budget
	if b == nil {
		return nil, errorf(ErrNotFound, "end-user %s has no budget", a.user.Id)
	}
	if amount <= 0 || amount > money.MaxAmount {
		return nil, errorf(ErrAmountOutOfRange, "amount_usd must be positive and at most %s", money.MaxAmount)
	}
	typ := EntryTopup
	if debit {
		if amount > a.available() {
			return nil, errorf(ErrBudgetExhausted, "debit of %s exceeds the available balance %s", amount, a.available())
		}
		b.BalanceNanos -= int64(amount)
		typ = EntryDebit
		amount = -amount
	} else {
		nb, err := money.Add(money.Nanos(b.BalanceNanos), amount)
		if err != nil || nb > money.MaxAmount*8 {
			return nil, errorf(ErrAmountOutOfRange, "balance would exceed the maximum")
		}
		b.BalanceNanos = int64(nb)
	}
	b.UpdatedAtMs = now.UnixMilli()
	return a.entry(now, typ, amount), nil
}

// limitsFor merges the end-user override over platform defaults field by
// field (see [mergeLimits]).
func limitsFor(override, defaults *pb.RateLimits) *pb.RateLimits {
	return mergeLimits(override, defaults)
}

// admit decides whether an inference call may start at now. On success it
// records the reservation and the rate-window admissions; on refusal it
// changes nothing. estimatedTokens counts against TPM; maxCost against the
// budget (when the user has one).
func (a *account) admit(now time.Time, lim *pb.RateLimits, req *pb.Admit) (*pb.RateLimitInfo, error) {
	if _, dup := a.open[req.ReservationId]; dup {
		return nil, errorf(ErrConflict, "reservation %s already open", req.ReservationId)
	}
	cost := money.Nanos(req.MaxCostNanos)
	info, err := a.check(now, lim, req.EstimatedTokens, cost)
	if err != nil {
		return nil, err
	}
	a.record(now, lim, req, info)
	return info, nil
}

// record books an admission that check passed at now: the rate windows
// and the reservation. info is updated with the remaining counts.
func (a *account) record(now time.Time, lim *pb.RateLimits, req *pb.Admit, info *pb.RateLimitInfo) {
	cost := money.Nanos(req.MaxCostNanos)
	tpmAt := a.countRate(now, lim, 1, req.EstimatedTokens, info)
	// Counted with or without a budget: a budget created (or deleted)
	// while the call is in flight must see the same reservations its
	// settlement will release.
	a.reserved += cost
	a.open[req.ReservationId] = &openReservation{amount: cost, tokens: req.EstimatedTokens, at: now, tpmAt: tpmAt, requestID: req.RequestId}
}

// check applies admission's rules in order (suspension, calls in flight,
// rate windows, budget after reservations) without recording anything; it
// returns the rate-limit info for the answer.
func (a *account) check(now time.Time, lim *pb.RateLimits, tokens int64, cost money.Nanos) (*pb.RateLimitInfo, error) {
	if b := a.user.Budget; b != nil && b.IsSuspended {
		return nil, errorf(ErrBudgetSuspended, "the end-user's budget is suspended")
	}
	if err := a.checkParallel(lim); err != nil {
		return nil, err
	}
	info, err := a.checkRate(now, lim, 1, tokens)
	if err != nil {
		return nil, err
	}
	if a.user.Budget != nil && cost > a.available() {
		return nil, errorf(ErrBudgetExhausted, "the end-user's budget (%s available) cannot cover this request's worst case %s", a.available(), cost)
	}
	return info, nil
}

// checkParallel refuses a call when the end-user already has its
// max_parallel_requests calls in flight (open reservations).
func (a *account) checkParallel(lim *pb.RateLimits) error {
	if n := lim.GetMaxParallelRequests(); n > 0 && int64(len(a.open)) >= n {
		return errorf(ErrTooManyParallel, "this end-user already has %d calls in flight (max_parallel_requests %d); retry when one ends", len(a.open), n)
	}
	return nil
}

// checkRate checks the three windows without recording anything.
func (a *account) checkRate(now time.Time, lim *pb.RateLimits, reqs, tokens int64) (*pb.RateLimitInfo, error) {
	if lim.TokensPerMinute > 0 && tokens > lim.TokensPerMinute {
		// Waiting never helps: this one request is larger than the window.
		return nil, errorf(ErrInvalid, "this request's estimated %d tokens exceed the tokens_per_minute limit of %d; lower max_tokens or the prompt", tokens, lim.TokensPerMinute)
	}
	var retry time.Duration
	refused := false
	try := func(w *window, limit, units int64) {
		if limit <= 0 {
			return
		}
		if ok, d := w.check(now, units, limit); !ok {
			refused = true
			if d == 0 {
				d = w.span
			}
			if d > retry {
				retry = d
			}
		}
	}
	try(&a.rpm, lim.RequestsPerMinute, reqs)
	try(&a.rpd, lim.RequestsPerDay, reqs)
	try(&a.tpm, lim.TokensPerMinute, tokens)
	info := a.rateInfo(now, lim)
	if refused {
		info.RetryAfterMs = retry.Milliseconds()
		if retry%time.Millisecond != 0 {
			info.RetryAfterMs++
		}
		return info, &Error{Code: ErrRateLimited.Code, Message: "rate limit exceeded; retry after " + retry.Round(time.Millisecond).String(), Rate: info}
	}
	return info, nil
}

// countRate records admitted units and updates info's remaining counts. It
// returns where the tokens were recorded in the TPM window (zero when TPM
// is off), for settlement to correct.
func (a *account) countRate(now time.Time, lim *pb.RateLimits, reqs, tokens int64, info *pb.RateLimitInfo) (tpmAt time.Time) {
	if lim.RequestsPerMinute > 0 {
		a.rpm.add(now, reqs)
	}
	if lim.RequestsPerDay > 0 {
		a.rpd.add(now, reqs)
	}
	if lim.TokensPerMinute > 0 {
		tpmAt = a.tpm.add(now, tokens)
	}
	*info = *a.rateInfo(now, lim)
	return tpmAt
}

// rateInfo reports the request and token limits as OpenAI's x-ratelimit-*
// headers do: the per-minute request limit (per-day when only that is set).
func (a *account) rateInfo(now time.Time, lim *pb.RateLimits) *pb.RateLimitInfo {
	info := &pb.RateLimitInfo{}
	switch {
	case lim.RequestsPerMinute > 0:
		info.LimitRequests = lim.RequestsPerMinute
		info.RemainingRequests = max(0, lim.RequestsPerMinute-a.rpm.used(now))
		info.ResetRequestsMs = a.rpm.resetIn(now).Milliseconds()
	case lim.RequestsPerDay > 0:
		info.LimitRequests = lim.RequestsPerDay
		info.RemainingRequests = max(0, lim.RequestsPerDay-a.rpd.used(now))
		info.ResetRequestsMs = a.rpd.resetIn(now).Milliseconds()
	}
	if lim.TokensPerMinute > 0 {
		info.LimitTokens = lim.TokensPerMinute
		info.RemainingTokens = max(0, lim.TokensPerMinute-a.tpm.used(now))
		info.ResetTokensMs = a.tpm.resetIn(now).Milliseconds()
	}
	return info
}

// countRequest counts one request (a tool call) against the request windows.
func (a *account) countRequest(now time.Time, lim *pb.RateLimits) (*pb.RateLimitInfo, error) {
	info, err := a.checkRate(now, lim, 1, 0)
	if err != nil {
		return nil, err
	}
	a.countRate(now, lim, 1, 0, info)
	return info, nil
}

// settle closes a reservation with the actual cost: it releases what was
// reserved, debits the cost (never below zero: what cannot be charged is
// recorded as uncharged on the entry) and corrects the TPM window from the
// estimate to the actual tokens.
func (a *account) settle(now time.Time, lim *pb.RateLimits, req *pb.Settle) (*pb.LedgerEntry, error) {
	r, ok := a.open[req.ReservationId]
	if !ok {
		return nil, errorf(ErrReservationUnknown, "reservation %s is not open", req.ReservationId)
	}
	if req.CostNanos < 0 || req.Tokens < 0 {
		return nil, errorf(ErrInvalid, "negative usage")
	}
	delete(a.open, req.ReservationId)
	a.reserved -= r.amount
	if !r.tpmAt.IsZero() {
		// The entry the estimate went into: after a clock step backwards
		// that is a newer entry than the admission time names.
		a.tpm.adjust(r.tpmAt, req.Tokens-r.tokens)
	}
	b := a.user.Budget
	if b == nil {
		return nil, nil // no budget: nothing to charge
	}
	cost := money.Nanos(req.CostNanos)
	var uncharged money.Nanos
	if avail := money.Nanos(b.BalanceNanos) - a.reserved; cost > avail {
		uncharged = cost - max(avail, 0)
		cost = max(avail, 0)
	}
	b.BalanceNanos -= int64(cost)
	b.UpdatedAtMs = now.UnixMilli()
	e := a.entry(now, EntryUsage, -cost)
	e.RequestId = req.RequestId
	e.Model = req.Model
	e.PromptTokens = req.PromptTokens
	e.CompletionTokens = req.CompletionTokens
	e.UnchargedNanos = int64(uncharged)
	return e, nil
}

// release drops a reservation without charging (the call failed before
// the upstream produced anything billable). Its token estimate leaves the
// TPM window too: one failed call must not hold a minute of the user's
// tokens. The request still counts against the request windows. It
// reports whether the reservation was open.
func (a *account) release(id string) bool {
	r, ok := a.open[id]
	if !ok {
		return false
	}
	delete(a.open, id)
	a.reserved -= r.amount
	if !r.tpmAt.IsZero() {
		a.tpm.adjust(r.tpmAt, -r.tokens)
	}
	return true
}

// recount puts one past call (at, with tokens) back into the rate
// windows, at most as early as the windows already reach (never looser).
func (a *account) recount(at time.Time, tokens int64) {
	a.rpm.add(at, 1)
	a.rpd.add(at, 1)
	if tokens > 0 {
		a.tpm.add(at, tokens)
	}
}

// restore reopens a reservation from its record (an actor restarted within
// the process that admitted it). Its tokens are not put back in the TPM
// window, which the restart lost; settlement then corrects nothing there.
func (a *account) restore(r *pb.Reservation) {
	if _, dup := a.open[r.Id]; dup {
		return
	}
	a.reserved += money.Nanos(r.AmountNanos)
	a.open[r.Id] = &openReservation{
		amount: money.Nanos(r.AmountNanos), wallet: money.Nanos(r.WalletNanos), tokens: r.Tokens,
		at: time.UnixMilli(r.CreatedAtMs), expires: time.UnixMilli(r.ExpiresAtMs), requestID: r.RequestId,
	}
}

// lowBalanceCrossed reports (once per crossing) that the balance fell
// below the budget's low-balance threshold.
func (a *account) lowBalanceCrossed() bool {
	b := a.user.Budget
	if b == nil || b.LowBalanceNanos <= 0 {
		return false
	}
	if b.BalanceNanos < b.LowBalanceNanos {
		if !b.LowBalanceNotified {
			b.LowBalanceNotified = true
			return true
		}
		return false
	}
	b.LowBalanceNotified = false
	return false
}
