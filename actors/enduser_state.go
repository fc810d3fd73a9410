package actors

import (
	"time"

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

// period interns a stored period name: an idle actor keeps no copy of it.
func period(p string) string {
	switch p {
	case PeriodDaily:
		return PeriodDaily
	case PeriodMonthly:
		return PeriodMonthly
	case PeriodOneTime:
		return PeriodOneTime
	}
	return p
}

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

// budget is an end-user budget's terms; its balance is the end-user's
// [account]. The zero value is "no budget".
type budget struct {
	set           bool
	suspended     bool
	notified      bool // low_balance_notified: the crossing was announced
	period        string
	amount        money.Nanos
	low           money.Nanos // low-balance threshold (0: none)
	periodStartMs int64
	createdMs     int64
	updatedMs     int64
}

// openBudget starts a budget of amount per period at now on acct: the
// budget_set entry that brings the balance to amount. The end-user
// actor's POST and the platform actor's default budget both use it.
func openBudget(acct *account, now time.Time, amount money.Nanos, per string, low money.Nanos, reason string) (budget, *pb.LedgerEntry) {
	if !ValidPeriod(per) {
		per = PeriodOneTime
	}
	b := budget{set: true, period: period(per), amount: amount, low: low,
		periodStartMs: periodStart(per, now).UnixMilli(), createdMs: now.UnixMilli(), updatedMs: now.UnixMilli()}
	e := acct.adjust(now, EntryBudgetSet, amount-acct.balance)
	e.Reason = reason
	return b, e
}

// openReservation is admitted spend not yet settled.
type openReservation struct {
	id        string
	amount    money.Nanos
	wallet    money.Nanos // provider cost held on the wallet lease
	expires   time.Time   // wall clock: voided then if still open
	tokens    int64
	at        time.Time
	tpmAt     time.Time // where its tokens sit in the TPM window; zero: not counted
	requestID string
	key       []byte // its record's key, once made (admission); nil: make it
}

// reservations are an end-user's open reservations. Most end-users have
// at most one call in flight: it takes one pointer, and the map exists
// only while more are open, so an idle actor holds nothing here.
type reservations struct {
	one  *openReservation
	more map[string]*openReservation
}

func (rs *reservations) len() int {
	n := len(rs.more)
	if rs.one != nil {
		n++
	}
	return n
}

func (rs *reservations) get(id string) *openReservation {
	if rs.one != nil && rs.one.id == id {
		return rs.one
	}
	return rs.more[id] // nil map: nil
}

func (rs *reservations) put(r *openReservation) {
	if rs.one == nil {
		rs.one = r
		return
	}
	if rs.more == nil {
		rs.more = make(map[string]*openReservation)
	}
	rs.more[r.id] = r
}

// take removes and returns reservation id (nil when it is not open).
func (rs *reservations) take(id string) *openReservation {
	if rs.one != nil && rs.one.id == id {
		r := rs.one
		rs.one = nil
		return r
	}
	r := rs.more[id]
	if r != nil {
		delete(rs.more, id)
		if len(rs.more) == 0 {
			rs.more = nil // give the map back
		}
	}
	return r
}

// all returns the open reservations (a copy: the caller may take them).
func (rs *reservations) all() []*openReservation {
	out := make([]*openReservation, 0, rs.len())
	if rs.one != nil {
		out = append(out, rs.one)
	}
	for _, r := range rs.more {
		out = append(out, r)
	}
	return out
}

// rateWindows are an end-user's rate windows; allocated on the first
// admission a rate limit counts.
type rateWindows struct {
	rpm, tpm, rpd window
}

func newRateWindows() *rateWindows {
	return &rateWindows{rpm: newWindow(time.Minute, 0), tpm: newWindow(time.Minute, 0), rpd: newWindow(24*time.Hour, time.Minute)}
}

// endUser is one end-user as its actor keeps it resident: the record's
// fields, the budget's terms, its money [account], open reservations and
// rate windows. Protobuf appears only at the boundaries (load, the record
// written back, views). Its rules read no clock and do no I/O; each
// method returns the ledger entries the caller must make durable before
// it answers. Owned by a single actor; not safe for concurrent use.
type endUser struct {
	externalID  string
	displayName string
	metadata    []byte
	createdMs   int64
	updatedMs   int64
	limits      *pb.RateLimits // the end-user's override; nil: platform defaults
	budget      budget
	money       account // the budget's balance (0 without one), reservations, ledger sequence
	open        reservations
	win         *rateWindows // nil until a rate limit counted something
	// provisional: taken over from a crashed node and not yet recovered
	// (Env.Provision). Its balance has the take-over hold taken out, which
	// comes back by a delta at the end; so nothing may set the balance
	// absolutely meanwhile: period resets wait, and changing the amount or
	// deleting the budget is refused.
	provisional bool
}

// newEndUser reads a stored end-user record.
func newEndUser(u *pb.EndUser) *endUser {
	eu := &endUser{
		externalID: u.ExternalId, displayName: u.DisplayName, metadata: u.MetadataJson,
		createdMs: u.CreatedAtMs, updatedMs: u.UpdatedAtMs, limits: u.RateLimits,
		money: account{platform: u.PlatformId, name: u.Id, seq: u.LedgerSeq},
	}
	if len(eu.metadata) == 0 {
		eu.metadata = nil
	}
	if b := u.Budget; b != nil {
		eu.budget = budget{set: true, suspended: b.IsSuspended, notified: b.LowBalanceNotified, period: period(b.Period),
			amount: money.Nanos(b.AmountNanos), low: money.Nanos(b.LowBalanceNanos),
			periodStartMs: b.PeriodStartMs, createdMs: b.CreatedAtMs, updatedMs: b.UpdatedAtMs}
		eu.money.balance = money.Nanos(b.BalanceNanos)
	}
	return eu
}

// record returns the end-user's stored record (a fresh message each time).
func (u *endUser) record() *pb.EndUser {
	return &pb.EndUser{
		Id: u.money.name, PlatformId: u.money.platform, ExternalId: u.externalID, DisplayName: u.displayName,
		MetadataJson: u.metadata, CreatedAtMs: u.createdMs, UpdatedAtMs: u.updatedMs,
		Budget: u.budgetRecord(), RateLimits: u.limits, LedgerSeq: u.money.seq,
	}
}

// budgetRecord returns the budget as stored and shown (nil: none).
func (u *endUser) budgetRecord() *pb.Budget {
	b := &u.budget
	if !b.set {
		return nil
	}
	return &pb.Budget{
		AmountNanos: int64(b.amount), Period: b.period, BalanceNanos: int64(u.money.balance), IsSuspended: b.suspended,
		LowBalanceNanos: int64(b.low), PeriodStartMs: b.periodStartMs, CreatedAtMs: b.createdMs, UpdatedAtMs: b.updatedMs,
		LowBalanceNotified: b.notified,
	}
}

// resetIfDue brings a periodic budget back to its amount when now has
// crossed a period boundary since the period started. The entry is dated at
// the boundary, however late the user was next touched. A clock that went
// backwards never resets. A provisional account resets once it is
// recovered (its next activation), still dated at the boundary.
func (u *endUser) resetIfDue(now time.Time) *pb.LedgerEntry {
	b := &u.budget
	if !b.set || b.period == PeriodOneTime || u.provisional {
		return nil
	}
	boundary := periodStart(b.period, now)
	if boundary.UnixMilli() <= b.periodStartMs {
		return nil
	}
	b.periodStartMs = boundary.UnixMilli()
	b.notified = false
	e := u.money.adjust(boundary, EntryPeriodReset, b.amount-u.money.balance)
	e.Reason = "period_reset"
	return e
}

// credit applies a top-up (debit=false) or an API debit (debit=true) to
// the budget. A debit never takes the balance below what open
// reservations hold.
func (u *endUser) credit(now time.Time, amount money.Nanos, debit bool) (*pb.LedgerEntry, error) {
	if !u.budget.set {
		return nil, errorf(ErrNotFound, "end-user %s has no budget", u.money.name)
	}
	var e *pb.LedgerEntry
	var err error
	if debit {
		e, err = u.money.debit(now, amount)
	} else {
		e, err = u.money.credit(now, EntryTopup, amount)
	}
	if err != nil {
		return nil, err
	}
	u.budget.updatedMs = now.UnixMilli()
	return e, nil
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
func (u *endUser) admit(now time.Time, lim *pb.RateLimits, req *pb.Admit) (*pb.RateLimitInfo, error) {
	if u.open.get(req.ReservationId) != nil {
		return nil, errorf(ErrConflict, "reservation %s already open", req.ReservationId)
	}
	info, err := u.check(now, lim, req.EstimatedTokens, money.Nanos(req.MaxCostNanos))
	if err != nil {
		return nil, err
	}
	u.recordAdmission(now, lim, req, info)
	return info, nil
}

// recordAdmission books an admission that check passed at now: the rate
// windows and the reservation, which it returns. info is updated with the
// remaining counts.
func (u *endUser) recordAdmission(now time.Time, lim *pb.RateLimits, req *pb.Admit, info *pb.RateLimitInfo) *openReservation {
	cost := money.Nanos(req.MaxCostNanos)
	tpmAt := u.countRate(now, lim, 1, req.EstimatedTokens, info)
	// Counted with or without a budget: a budget created (or deleted)
	// while the call is in flight must see the same reservations its
	// settlement will release.
	u.money.hold(cost)
	r := &openReservation{id: req.ReservationId, amount: cost, tokens: req.EstimatedTokens, at: now, tpmAt: tpmAt, requestID: req.RequestId}
	u.open.put(r)
	return r
}

// check applies admission's rules in order (suspension, calls in flight,
// rate windows, budget after reservations) without recording anything; it
// returns the rate-limit info for the answer.
func (u *endUser) check(now time.Time, lim *pb.RateLimits, tokens int64, cost money.Nanos) (*pb.RateLimitInfo, error) {
	if u.budget.set && u.budget.suspended {
		return nil, errorf(ErrBudgetSuspended, "the end-user's budget is suspended")
	}
	if err := u.checkParallel(lim); err != nil {
		return nil, err
	}
	info, err := u.checkRate(now, lim, 1, tokens)
	if err != nil {
		return nil, err
	}
	if u.budget.set && cost > u.money.available() {
		return nil, errorf(ErrBudgetExhausted, "the end-user's budget (%s available) cannot cover this request's worst case %s", u.money.available(), cost)
	}
	return info, nil
}

// checkParallel refuses a call when the end-user already has its
// max_parallel_requests calls in flight (open reservations).
func (u *endUser) checkParallel(lim *pb.RateLimits) error {
	if n := lim.GetMaxParallelRequests(); n > 0 && int64(u.open.len()) >= n {
		return errorf(ErrTooManyParallel, "this end-user already has %d calls in flight (max_parallel_requests %d); retry when one ends", u.open.len(), n)
	}
	return nil
}

// windows returns the rate windows, allocating them on first use.
func (u *endUser) windows() *rateWindows {
	if u.win == nil {
		u.win = newRateWindows()
	}
	return u.win
}

// checkRate checks the three windows without recording anything.
func (u *endUser) checkRate(now time.Time, lim *pb.RateLimits, reqs, tokens int64) (*pb.RateLimitInfo, error) {
	if lim.TokensPerMinute > 0 && tokens > lim.TokensPerMinute {
		// Waiting never helps: this one request is larger than the window.
		return nil, errorf(ErrInvalid, "this request's estimated %d tokens exceed the tokens_per_minute limit of %d; lower max_tokens or the prompt", tokens, lim.TokensPerMinute)
	}
	if lim.RequestsPerMinute <= 0 && lim.RequestsPerDay <= 0 && lim.TokensPerMinute <= 0 {
		return &pb.RateLimitInfo{}, nil
	}
	w := u.windows()
	var retry time.Duration
	refused := false
	try := func(w *window, limit, units int64) {
		if limit <= 0 {
			return
		}
		if ok, d := w.check(now, units, limit); !ok {
			refused = true
			if d == 0 {
				d = w.span()
			}
			if d > retry {
				retry = d
			}
		}
	}
	try(&w.rpm, lim.RequestsPerMinute, reqs)
	try(&w.rpd, lim.RequestsPerDay, reqs)
	try(&w.tpm, lim.TokensPerMinute, tokens)
	info := u.rateInfo(now, lim)
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
func (u *endUser) countRate(now time.Time, lim *pb.RateLimits, reqs, tokens int64, info *pb.RateLimitInfo) (tpmAt time.Time) {
	if lim.RequestsPerMinute <= 0 && lim.RequestsPerDay <= 0 && lim.TokensPerMinute <= 0 {
		*info = pb.RateLimitInfo{}
		return time.Time{}
	}
	w := u.windows()
	if lim.RequestsPerMinute > 0 {
		w.rpm.add(now, reqs)
	}
	if lim.RequestsPerDay > 0 {
		w.rpd.add(now, reqs)
	}
	if lim.TokensPerMinute > 0 {
		tpmAt = w.tpm.add(now, tokens)
	}
	*info = *u.rateInfo(now, lim)
	return tpmAt
}

// rateInfo reports the request and token limits as OpenAI's x-ratelimit-*
// headers do: the per-minute request limit (per-day when only that is set).
func (u *endUser) rateInfo(now time.Time, lim *pb.RateLimits) *pb.RateLimitInfo {
	info := &pb.RateLimitInfo{}
	if u.win == nil {
		// Nothing counted yet: every limit is whole.
		switch {
		case lim.RequestsPerMinute > 0:
			info.LimitRequests, info.RemainingRequests = lim.RequestsPerMinute, lim.RequestsPerMinute
		case lim.RequestsPerDay > 0:
			info.LimitRequests, info.RemainingRequests = lim.RequestsPerDay, lim.RequestsPerDay
		}
		if lim.TokensPerMinute > 0 {
			info.LimitTokens, info.RemainingTokens = lim.TokensPerMinute, lim.TokensPerMinute
		}
		return info
	}
	w := u.win
	switch {
	case lim.RequestsPerMinute > 0:
		info.LimitRequests = lim.RequestsPerMinute
		info.RemainingRequests = max(0, lim.RequestsPerMinute-w.rpm.used(now))
		info.ResetRequestsMs = w.rpm.resetIn(now).Milliseconds()
	case lim.RequestsPerDay > 0:
		info.LimitRequests = lim.RequestsPerDay
		info.RemainingRequests = max(0, lim.RequestsPerDay-w.rpd.used(now))
		info.ResetRequestsMs = w.rpd.resetIn(now).Milliseconds()
	}
	if lim.TokensPerMinute > 0 {
		info.LimitTokens = lim.TokensPerMinute
		info.RemainingTokens = max(0, lim.TokensPerMinute-w.tpm.used(now))
		info.ResetTokensMs = w.tpm.resetIn(now).Milliseconds()
	}
	return info
}

// countRequest counts one request (a tool call) against the request windows.
func (u *endUser) countRequest(now time.Time, lim *pb.RateLimits) (*pb.RateLimitInfo, error) {
	info, err := u.checkRate(now, lim, 1, 0)
	if err != nil {
		return nil, err
	}
	u.countRate(now, lim, 1, 0, info)
	return info, nil
}

// settle closes a reservation with the actual cost: it releases what was
// reserved, debits the cost (never below zero: what cannot be charged is
// recorded as uncharged on the entry) and corrects the TPM window from the
// estimate to the actual tokens.
func (u *endUser) settle(now time.Time, req *pb.Settle) (*pb.LedgerEntry, error) {
	if req.CostNanos < 0 || req.Tokens < 0 {
		if u.open.get(req.ReservationId) == nil {
			return nil, errorf(ErrReservationUnknown, "reservation %s is not open", req.ReservationId)
		}
		return nil, errorf(ErrInvalid, "negative usage")
	}
	r := u.open.take(req.ReservationId)
	if r == nil {
		return nil, errorf(ErrReservationUnknown, "reservation %s is not open", req.ReservationId)
	}
	if !r.tpmAt.IsZero() && u.win != nil {
		// The entry the estimate went into: after a clock step backwards
		// that is a newer entry than the admission time names.
		u.win.tpm.adjust(r.tpmAt, req.Tokens-r.tokens)
	}
	if !u.budget.set {
		u.money.unhold(r.amount)
		return nil, nil // no budget: nothing to charge
	}
	e := u.money.charge(now, r.amount, money.Nanos(req.CostNanos))
	u.budget.updatedMs = now.UnixMilli()
	e.RequestId = req.RequestId
	e.Model = req.Model
	e.PromptTokens = req.PromptTokens
	e.CompletionTokens = req.CompletionTokens
	return e, nil
}

// release drops a reservation without charging (the call failed before
// the upstream produced anything billable). Its token estimate leaves the
// TPM window too: one failed call must not hold a minute of the user's
// tokens. The request still counts against the request windows. It
// returns the reservation (nil when it was not open).
func (u *endUser) release(id string) *openReservation {
	r := u.open.take(id)
	if r == nil {
		return nil
	}
	u.money.unhold(r.amount)
	if !r.tpmAt.IsZero() && u.win != nil {
		u.win.tpm.adjust(r.tpmAt, -r.tokens)
	}
	return r
}

// recount puts one past call (at, with tokens) back into the rate
// windows, at most as early as the windows already reach (never looser).
func (u *endUser) recount(at time.Time, tokens int64) {
	w := u.windows()
	w.rpm.add(at, 1)
	w.rpd.add(at, 1)
	if tokens > 0 {
		w.tpm.add(at, tokens)
	}
}

// restore reopens a reservation from its record (an actor restarted within
// the process that admitted it). Its tokens are not put back in the TPM
// window, which the restart lost; settlement then corrects nothing there.
func (u *endUser) restore(r *pb.Reservation) {
	if u.open.get(r.Id) != nil {
		return
	}
	u.money.hold(money.Nanos(r.AmountNanos))
	u.open.put(&openReservation{
		id: r.Id, amount: money.Nanos(r.AmountNanos), wallet: money.Nanos(r.WalletNanos), tokens: r.Tokens,
		at: time.UnixMilli(r.CreatedAtMs), expires: time.UnixMilli(r.ExpiresAtMs), requestID: r.RequestId,
	})
}

// lowBalanceCrossed reports (once per crossing) that the balance fell
// below the budget's low-balance threshold.
func (u *endUser) lowBalanceCrossed() bool {
	b := &u.budget
	if !b.set || b.low <= 0 {
		return false
	}
	if u.money.balance < b.low {
		if !b.notified {
			b.notified = true
			return true
		}
		return false
	}
	b.notified = false
	return false
}
