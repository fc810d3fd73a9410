package actors

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/assistiv/gateway/internal/money"
	"github.com/assistiv/gateway/internal/pb"
)

// Money scenarios, written like raft's interaction tests: each "> cmd" line
// runs one call on a pure account and the lines under it are exactly what
// the call must print. Every command that stands for a message to the
// actor first applies the lazy period reset, as Receive does. After every
// step the ledger (every entry the account returned) must sum to the
// balance, each entry's balance_after must be the running sum, and the
// balance and reservations must never be negative.
//
// Commands:
//
//	at <RFC 3339>            set the clock
//	advance <dur> / back <dur>
//	budget <usd> <period>    create the budget (as the actor's POST does)
//	topup <usd> / debit <usd>
//	suspend / unsuspend
//	limits rpm=N tpm=N rpd=N
//	admit <id> cost=<usd> [tokens=N]
//	settle <id> cost=<usd> [tokens=N]
//	release <id>
//	touch                    any message (a GET): only the lazy reset
//	tpm                      tokens in the TPM window now
var accountScripts = []struct {
	name   string
	script string
}{
	{"topup and debit move the balance exactly", `
> at 2025-01-15T10:00:00Z
> budget 10 one_time
entry #1 budget_set +10 balance=10 at=2025-01-15T10:00:00Z
balance=10 reserved=0
> topup 5.000000001
entry #2 topup +5.000000001 balance=15.000000001 at=2025-01-15T10:00:00Z
balance=15.000000001 reserved=0
> debit 15.000000002
error budget_exhausted
balance=15.000000001 reserved=0
> debit 15.000000001
entry #3 debit -15.000000001 balance=0 at=2025-01-15T10:00:00Z
balance=0 reserved=0
> debit 0.000000001
error budget_exhausted
balance=0 reserved=0
> topup 0
error invalid_amount
balance=0 reserved=0
> topup -1
error invalid_amount
balance=0 reserved=0
`},
	{"the balance has a ceiling of 8 billion USD", `
> at 2025-01-15T10:00:00Z
> budget 0 one_time
entry #1 budget_set +0 balance=0 at=2025-01-15T10:00:00Z
balance=0 reserved=0
> topup 1000000000
entry #2 topup +1000000000 balance=1000000000 at=2025-01-15T10:00:00Z
balance=1000000000 reserved=0
> topup 1000000000
entry #3 topup +1000000000 balance=2000000000 at=2025-01-15T10:00:00Z
balance=2000000000 reserved=0
> topup 1000000000
entry #4 topup +1000000000 balance=3000000000 at=2025-01-15T10:00:00Z
balance=3000000000 reserved=0
> topup 1000000000
entry #5 topup +1000000000 balance=4000000000 at=2025-01-15T10:00:00Z
balance=4000000000 reserved=0
> topup 1000000000
entry #6 topup +1000000000 balance=5000000000 at=2025-01-15T10:00:00Z
balance=5000000000 reserved=0
> topup 1000000000
entry #7 topup +1000000000 balance=6000000000 at=2025-01-15T10:00:00Z
balance=6000000000 reserved=0
> topup 1000000000
entry #8 topup +1000000000 balance=7000000000 at=2025-01-15T10:00:00Z
balance=7000000000 reserved=0
> topup 1000000000
entry #9 topup +1000000000 balance=8000000000 at=2025-01-15T10:00:00Z
balance=8000000000 reserved=0
> topup 0.000000001
error invalid_amount
balance=8000000000 reserved=0
`},
	{"a suspended budget refuses admission and keeps its state", `
> at 2025-01-15T10:00:00Z
> budget 10 one_time
entry #1 budget_set +10 balance=10 at=2025-01-15T10:00:00Z
balance=10 reserved=0
> suspend
balance=10 reserved=0
> admit r1 cost=1
error budget_suspended
balance=10 reserved=0
> unsuspend
balance=10 reserved=0
> admit r1 cost=1
admitted
balance=10 reserved=1
`},
	{"admit reserves the worst case; settle and release give it back", `
> at 2025-01-15T10:00:00Z
> budget 10 one_time
entry #1 budget_set +10 balance=10 at=2025-01-15T10:00:00Z
balance=10 reserved=0
> admit r1 cost=4
admitted
balance=10 reserved=4
> admit r1 cost=1
error conflict
balance=10 reserved=4
> admit r2 cost=4
admitted
balance=10 reserved=8
> admit r3 cost=2.000000001
error budget_exhausted
balance=10 reserved=8
> debit 2.000000001
error budget_exhausted
balance=10 reserved=8
> debit 2
entry #2 debit -2 balance=8 at=2025-01-15T10:00:00Z
balance=8 reserved=8
> admit r3 cost=0.000000001
error budget_exhausted
balance=8 reserved=8
> admit r3 cost=0
admitted
balance=8 reserved=8
> settle r1 cost=1.5
entry #3 usage -1.5 balance=6.5 at=2025-01-15T10:00:00Z
balance=6.5 reserved=4
> settle r1 cost=1
error reservation_unknown
balance=6.5 reserved=4
> settle r2 cost=-1
error invalid_request
balance=6.5 reserved=4
> release r2
released
balance=6.5 reserved=0
> release r2
not open
balance=6.5 reserved=0
> settle r3 cost=0
entry #4 usage +0 balance=6.5 at=2025-01-15T10:00:00Z
balance=6.5 reserved=0
> admit r1 cost=6.5
admitted
balance=6.5 reserved=6.5
> settle r1 cost=6.5
entry #5 usage -6.5 balance=0 at=2025-01-15T10:00:00Z
balance=0 reserved=0
`},
	{"a reservation admitted before the budget existed is counted once", `
> at 2025-01-15T10:00:00Z
> admit r1 cost=5
admitted
> budget 10 one_time
entry #1 budget_set +10 balance=10 at=2025-01-15T10:00:00Z
balance=10 reserved=5
> settle r1 cost=0
entry #2 usage +0 balance=10 at=2025-01-15T10:00:00Z
balance=10 reserved=0
> debit 10.000000001
error budget_exhausted
balance=10 reserved=0
`},
	{"settle beyond the available balance charges what is there and records the rest", `
> at 2025-01-15T10:00:00Z
> budget 1 one_time
entry #1 budget_set +1 balance=1 at=2025-01-15T10:00:00Z
balance=1 reserved=0
> admit r1 cost=0.5
admitted
balance=1 reserved=0.5
> admit r2 cost=0.5
admitted
balance=1 reserved=1
> settle r1 cost=2
entry #2 usage -0.5 balance=0.5 at=2025-01-15T10:00:00Z uncharged=1.5
balance=0.5 reserved=0.5
> settle r2 cost=0.7
entry #3 usage -0.5 balance=0 at=2025-01-15T10:00:00Z uncharged=0.2
balance=0 reserved=0
`},
	{"the TPM estimate is corrected at settlement", `
> at 2025-01-15T10:00:00Z
> limits tpm=1000
> admit r1 cost=0 tokens=800
admitted tokens=200/1000 reset=60000ms
> tpm
tpm used=800
> admit r2 cost=0 tokens=300
error rate_limited retry_after_ms=60000 tokens=200/1000
> advance 10s
> settle r1 cost=0 tokens=200
settled
> tpm
tpm used=200
> admit r2 cost=0 tokens=300
admitted tokens=500/1000 reset=50000ms
> settle r2 cost=0 tokens=900
settled
> admit r3 cost=0 tokens=1
error rate_limited retry_after_ms=50000 tokens=0/1000
> advance 50s
> tpm
tpm used=900
> admit r3 cost=0 tokens=100
admitted tokens=0/1000 reset=10000ms
> admit r4 cost=0 tokens=1001
error invalid_request
`},
	{"requests per minute: exact, with the reset and retry the headers carry", `
> at 2025-01-15T10:00:00Z
> limits rpm=2
> admit a cost=0
admitted requests=1/2 reset=60000ms
> advance 15s
> admit b cost=0
admitted requests=0/2 reset=45000ms
> admit c cost=0
error rate_limited retry_after_ms=45000 requests=0/2
> advance 44.999s
> admit c cost=0
error rate_limited retry_after_ms=1 requests=0/2
> advance 1ms
> admit c cost=0
admitted requests=0/2 reset=15000ms
> release a
released
> admit d cost=0
error rate_limited retry_after_ms=15000 requests=0/2
`},
	{"requests per day count in 1-minute granules: never looser, at most a minute stricter", `
> at 2025-01-15T10:00:00.5Z
> limits rpd=2
> admit a cost=0
admitted requests=1/2 reset=86459500ms
> admit b cost=0
admitted requests=0/2 reset=86459500ms
> at 2025-01-16T10:00:00.5Z
> admit c cost=0
error rate_limited retry_after_ms=59500 requests=0/2
> at 2025-01-16T10:01:00Z
> admit c cost=0
admitted requests=1/2 reset=86460000ms
`},
	{"a daily budget resets at 00:00 UTC, lazily, dated at the boundary", `
> at 2025-01-15T10:00:00Z
> budget 10 daily
entry #1 budget_set +10 balance=10 at=2025-01-15T10:00:00Z
balance=10 reserved=0
> debit 7
entry #2 debit -7 balance=3 at=2025-01-15T10:00:00Z
balance=3 reserved=0
> at 2025-01-15T23:59:59.999Z
> touch
balance=3 reserved=0
> at 2025-01-16T00:00:00Z
> touch
entry #3 period_reset +7 balance=10 at=2025-01-16T00:00:00Z
balance=10 reserved=0
> touch
balance=10 reserved=0
> debit 2
entry #4 debit -2 balance=8 at=2025-01-16T00:00:00Z
balance=8 reserved=0
> at 2025-01-19T15:30:00Z
> debit 1
entry #5 period_reset +2 balance=10 at=2025-01-19T00:00:00Z
entry #6 debit -1 balance=9 at=2025-01-19T15:30:00Z
balance=9 reserved=0
`},
	{"a monthly budget resets on the 1st at 00:00 UTC", `
> at 2025-01-31T23:00:00Z
> budget 100 monthly
entry #1 budget_set +100 balance=100 at=2025-01-31T23:00:00Z
balance=100 reserved=0
> debit 40
entry #2 debit -40 balance=60 at=2025-01-31T23:00:00Z
balance=60 reserved=0
> at 2025-01-31T23:59:59.999Z
> touch
balance=60 reserved=0
> at 2025-02-01T00:00:00Z
> debit 10
entry #3 period_reset +40 balance=100 at=2025-02-01T00:00:00Z
entry #4 debit -10 balance=90 at=2025-02-01T00:00:00Z
balance=90 reserved=0
> at 2025-02-28T23:59:59Z
> touch
balance=90 reserved=0
> at 2025-04-15T12:00:00Z
> touch
entry #5 period_reset +10 balance=100 at=2025-04-01T00:00:00Z
balance=100 reserved=0
`},
	{"a clock that goes backwards never resets, and never resets twice (F-11)", `
> at 2025-01-16T01:00:00Z
> budget 10 daily
entry #1 budget_set +10 balance=10 at=2025-01-16T01:00:00Z
balance=10 reserved=0
> debit 4
entry #2 debit -4 balance=6 at=2025-01-16T01:00:00Z
balance=6 reserved=0
> back 2h
> debit 1
entry #3 debit -1 balance=5 at=2025-01-15T23:00:00Z
balance=5 reserved=0
> at 2025-01-16T05:00:00Z
> touch
balance=5 reserved=0
> at 2025-01-17T00:00:00Z
> touch
entry #4 period_reset +5 balance=10 at=2025-01-17T00:00:00Z
balance=10 reserved=0
> debit 3
entry #5 debit -3 balance=7 at=2025-01-17T00:00:00Z
balance=7 reserved=0
> back 1h
> touch
balance=7 reserved=0
> at 2025-01-17T00:00:00Z
> touch
balance=7 reserved=0
> at 2025-01-17T23:59:59Z
> touch
balance=7 reserved=0
`},
	{"a reservation held across a reset is settled against the new period", `
> at 2025-01-15T22:00:00Z
> budget 10 daily
entry #1 budget_set +10 balance=10 at=2025-01-15T22:00:00Z
balance=10 reserved=0
> debit 3
entry #2 debit -3 balance=7 at=2025-01-15T22:00:00Z
balance=7 reserved=0
> admit r1 cost=6
admitted
balance=7 reserved=6
> at 2025-01-16T00:00:01Z
> settle r1 cost=5
entry #3 period_reset +3 balance=10 at=2025-01-16T00:00:00Z
entry #4 usage -5 balance=5 at=2025-01-16T00:00:01Z
balance=5 reserved=0
`},
}

func TestAccountScripts(t *testing.T) {
	for _, sc := range accountScripts {
		t.Run(sc.name, func(t *testing.T) {
			h := &acctHarness{t: t, a: newEndUser(&pb.EndUser{Id: "eu_test", PlatformId: "plat_test"}), lim: &pb.RateLimits{}}
			var cmd string
			var want []string
			flush := func() {
				if cmd == "" {
					return
				}
				got := h.run(cmd)
				if g, w := strings.Join(got, "\n"), strings.Join(want, "\n"); g != w {
					t.Errorf("> %s\ngot:\n%s\nwant:\n%s", cmd, g, w)
				}
				h.checkInvariants(cmd)
			}
			for _, line := range strings.Split(sc.script, "\n") {
				line = strings.TrimSpace(line)
				if line == "" {
					continue
				}
				if c, ok := strings.CutPrefix(line, "> "); ok {
					flush()
					cmd, want = c, nil
					continue
				}
				want = append(want, line)
			}
			flush()
		})
	}
}

// acctHarness drives one account with a hand-set clock.
type acctHarness struct {
	t      *testing.T
	now    time.Time
	a      *endUser
	lim    *pb.RateLimits
	ledger []*pb.LedgerEntry
}

func usdArg(t *testing.T, s string) money.Nanos {
	t.Helper()
	n, err := money.ParseUSD(s)
	if err != nil {
		t.Fatalf("bad amount %q: %v", s, err)
	}
	return n
}

// kv parses key=value arguments.
func kv(args []string) map[string]string {
	m := map[string]string{}
	for _, a := range args {
		if k, v, ok := strings.Cut(a, "="); ok {
			m[k] = v
		}
	}
	return m
}

func (h *acctHarness) run(cmd string) []string {
	t := h.t
	f := strings.Fields(cmd)
	var out []string
	record := func(e *pb.LedgerEntry) {
		if e == nil {
			return
		}
		h.ledger = append(h.ledger, e)
		line := fmt.Sprintf("entry #%d %s %s balance=%s at=%s", e.Seq, e.Type, signed(e.AmountNanos),
			money.Nanos(e.BalanceAfterNanos), time.UnixMilli(e.CreatedAtMs).UTC().Format(time.RFC3339Nano))
		if e.UnchargedNanos != 0 {
			line += " uncharged=" + money.Nanos(e.UnchargedNanos).String()
		}
		out = append(out, line)
	}
	fail := func(err error) {
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("> %s: error %v is not an *Error", cmd, err)
		}
		line := "error " + e.Code
		if e.Rate != nil {
			line += fmt.Sprintf(" retry_after_ms=%d", e.Rate.RetryAfterMs) + rateText(e.Rate, false)
		}
		out = append(out, line)
	}
	// Commands that stand for a message apply the lazy reset first.
	message := func() { record(h.a.resetIfDue(h.now)) }
	switch f[0] {
	case "at":
		ts, err := time.Parse(time.RFC3339Nano, f[1])
		if err != nil {
			t.Fatal(err)
		}
		h.now = ts
		return nil
	case "advance", "back":
		d, err := time.ParseDuration(f[1])
		if err != nil {
			t.Fatal(err)
		}
		if f[0] == "back" {
			d = -d
		}
		h.now = h.now.Add(d)
		return nil
	case "limits":
		m := kv(f[1:])
		num := func(k string) int64 { n, _ := strconv.ParseInt(m[k], 10, 64); return n }
		h.lim = &pb.RateLimits{RequestsPerMinute: num("rpm"), TokensPerMinute: num("tpm"), RequestsPerDay: num("rpd")}
		return nil
	case "budget":
		// What the actor's SetBudget{Create} does.
		var e *pb.LedgerEntry
		h.a.budget, e = openBudget(&h.a.money, h.now, usdArg(t, f[1]), f[2], 0, "budget created")
		record(e)
	case "topup", "debit":
		message()
		e, err := h.a.credit(h.now, usdArg(t, f[1]), f[0] == "debit")
		if err != nil {
			fail(err)
		} else {
			record(e)
		}
	case "suspend", "unsuspend":
		message()
		h.a.budget.suspended = f[0] == "suspend"
	case "touch":
		message()
	case "admit":
		message()
		m := kv(f[2:])
		tokens, _ := strconv.ParseInt(m["tokens"], 10, 64)
		info, err := h.a.admit(h.now, h.lim, &pb.Admit{ReservationId: f[1], RequestId: "req-" + f[1],
			EstimatedTokens: tokens, MaxCostNanos: int64(usdArg(t, m["cost"]))})
		if err != nil {
			fail(err)
		} else {
			out = append(out, "admitted"+rateText(info, true))
		}
	case "settle":
		message()
		m := kv(f[2:])
		tokens, _ := strconv.ParseInt(m["tokens"], 10, 64)
		e, err := h.a.settle(h.now, &pb.Settle{ReservationId: f[1], CostNanos: int64(usdArg(t, m["cost"])), Tokens: tokens})
		switch {
		case err != nil:
			fail(err)
		case e == nil:
			out = append(out, "settled")
		default:
			record(e)
		}
	case "release":
		message()
		if h.a.release(f[1]) != nil {
			out = append(out, "released")
		} else {
			out = append(out, "not open")
		}
	case "tpm":
		var used int64
		if h.a.win != nil {
			used = h.a.win.tpm.used(h.now)
		}
		out = append(out, fmt.Sprintf("tpm used=%d", used))
		return out
	default:
		t.Fatalf("unknown command %q", cmd)
	}
	if h.a.budget.set {
		out = append(out, fmt.Sprintf("balance=%s reserved=%s", h.a.money.balance, h.a.money.reserved))
	}
	return out
}

func signed(n int64) string {
	if n >= 0 {
		return "+" + money.Nanos(n).String()
	}
	return money.Nanos(n).String()
}

// rateText renders what the x-ratelimit-* headers carry.
func rateText(r *pb.RateLimitInfo, withReset bool) string {
	var s string
	if r.LimitRequests > 0 {
		s += fmt.Sprintf(" requests=%d/%d", r.RemainingRequests, r.LimitRequests)
		if withReset {
			s += fmt.Sprintf(" reset=%dms", r.ResetRequestsMs)
		}
	}
	if r.LimitTokens > 0 {
		s += fmt.Sprintf(" tokens=%d/%d", r.RemainingTokens, r.LimitTokens)
		if withReset {
			s += fmt.Sprintf(" reset=%dms", r.ResetTokensMs)
		}
	}
	return s
}

// checkInvariants: the ledger sums to the balance, every balance_after is
// the running sum, sequence numbers are dense, nothing is negative, and
// reserved equals the sum of open reservations.
func (h *acctHarness) checkInvariants(cmd string) {
	h.t.Helper()
	if !h.a.budget.set {
		return
	}
	balance, reserved := int64(h.a.money.balance), h.a.money.reserved
	var sum int64
	for i, e := range h.ledger {
		sum += e.AmountNanos
		if e.BalanceAfterNanos != sum {
			h.t.Fatalf("after > %s: entry #%d balance_after %d, running sum %d", cmd, e.Seq, e.BalanceAfterNanos, sum)
		}
		if e.Seq != uint64(i+1) {
			h.t.Fatalf("after > %s: entry %d has seq %d", cmd, i, e.Seq)
		}
	}
	if sum != balance {
		h.t.Fatalf("after > %s: ledger sums to %d, balance %d", cmd, sum, balance)
	}
	if balance < 0 || reserved < 0 {
		h.t.Fatalf("after > %s: balance %d, reserved %d", cmd, balance, reserved)
	}
	var open money.Nanos
	for _, r := range h.a.open.all() {
		open += r.amount
	}
	if open != reserved {
		h.t.Fatalf("after > %s: reserved %d, open reservations hold %d", cmd, reserved, open)
	}
}
