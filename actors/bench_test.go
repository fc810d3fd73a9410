package actors

import (
	"strconv"
	"testing"
	"time"

	"github.com/assistiv/gateway/internal/money"
	"github.com/assistiv/gateway/internal/pb"
)

// BenchmarkAdmitSettle is one inference call's pure money work: admit (rate
// windows, worst-case reservation) and settle (release, usage entry, TPM
// correction) on one account. No I/O, no actor.
func BenchmarkAdmitSettle(b *testing.B) {
	for _, c := range []struct {
		name string
		lim  *pb.RateLimits
	}{
		{"no-limits", &pb.RateLimits{}},
		{"rpm+tpm+rpd", &pb.RateLimits{RequestsPerMinute: 10_000, TokensPerMinute: 100_000_000, RequestsPerDay: 10_000_000}},
	} {
		b.Run(c.name, func(b *testing.B) {
			a := newAccount(&pb.EndUser{Id: "eu_bench", PlatformId: "plat_bench"})
			a.user.Budget = &pb.Budget{AmountNanos: int64(money.MaxAmount), BalanceNanos: int64(money.MaxAmount), Period: PeriodOneTime}
			now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
			ids := make([]string, 1024)
			for i := range ids {
				ids[i] = "res-" + strconv.Itoa(i)
			}
			admit := &pb.Admit{EstimatedTokens: 1200, MaxCostNanos: 50_000}
			settle := &pb.Settle{CostNanos: 20_000, Tokens: 900, Model: "gpt-x", PromptTokens: 700, CompletionTokens: 200}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				// 10 ms apart: at most 6,000 admissions in any minute, under
				// the 10,000 rpm limit, so the windows hold realistic logs.
				now = now.Add(10 * time.Millisecond)
				id := ids[i&1023]
				admit.ReservationId, admit.RequestId = id, id
				if _, err := a.admit(now, c.lim, admit); err != nil {
					b.Fatal(err)
				}
				settle.ReservationId, settle.RequestId = id, id
				if _, err := a.settle(now, c.lim, settle); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
