package edge

import (
	"encoding/json"
	"strconv"

	"github.com/assistiv/gateway/actors"
	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/internal/jsonstr"
	"github.com/assistiv/gateway/internal/money"
	"github.com/assistiv/gateway/internal/pb"
)

// JSON shapes of the REST surface.

type platformJSON struct {
	ID        string       `json:"id"`
	Object    string       `json:"object"`
	Name      string       `json:"name"`
	CreatedAt string       `json:"created_at"`
	UpdatedAt string       `json:"updated_at"`
	Settings  settingsJSON `json:"settings"`
	Wallet    *walletJSON  `json:"wallet,omitempty"`
}

type budgetTemplateJSON struct {
	AmountUSD money.Nanos `json:"amount_usd"`
	Period    string      `json:"period"`
}

type rateLimitsJSON struct {
	RequestsPerMinute   int64 `json:"requests_per_minute"`
	TokensPerMinute     int64 `json:"tokens_per_minute"`
	RequestsPerDay      int64 `json:"requests_per_day"`
	MaxParallelRequests int64 `json:"max_parallel_requests"`
}

type settingsJSON struct {
	DisplayName         string              `json:"display_name"`
	DefaultBudget       *budgetTemplateJSON `json:"default_budget"`
	MarkupPct           json.Number         `json:"markup_pct"`
	DefaultRateLimits   rateLimitsJSON      `json:"default_rate_limits"`
	SkillsEnabled       bool                `json:"skills_enabled"`
	WalletLowBalanceUSD money.Nanos         `json:"wallet_low_balance_usd"`
	BudgetLowBalanceUSD money.Nanos         `json:"budget_low_balance_usd"`
}

type walletJSON struct {
	Object      string         `json:"object"`
	BalanceUSD  money.Nanos    `json:"balance_usd"`
	ReservedUSD money.Nanos    `json:"reserved_usd"`
	AutoTopup   *autoTopupJSON `json:"auto_topup"`
}

type autoTopupJSON struct {
	Enabled      bool        `json:"enabled"`
	ThresholdUSD money.Nanos `json:"threshold_usd"`
	AmountUSD    money.Nanos `json:"amount_usd"`
	// Payments: the last declined charge (null when the last one
	// succeeded) and how many declined in a row.
	LastError           *string `json:"last_error"`
	LastErrorAt         *string `json:"last_error_at"`
	ConsecutiveFailures int32   `json:"consecutive_failures"`
}

func limitsView(r *pb.RateLimits) rateLimitsJSON {
	if r == nil {
		return rateLimitsJSON{}
	}
	return rateLimitsJSON{r.RequestsPerMinute, r.TokensPerMinute, r.RequestsPerDay, r.GetMaxParallelRequests()}
}

// overrideJSON is an end-user's rate-limit override: null for a field the
// override does not set (the platform default applies).
type overrideJSON struct {
	RequestsPerMinute   *int64 `json:"requests_per_minute"`
	TokensPerMinute     *int64 `json:"tokens_per_minute"`
	RequestsPerDay      *int64 `json:"requests_per_day"`
	MaxParallelRequests *int64 `json:"max_parallel_requests"`
}

func overrideView(r *pb.RateLimits) *overrideJSON {
	if r == nil {
		return nil
	}
	set := func(v int64) *int64 {
		if v < 0 {
			return nil
		}
		return &v
	}
	return &overrideJSON{set(r.RequestsPerMinute), set(r.TokensPerMinute), set(r.RequestsPerDay), r.MaxParallelRequests}
}

// inheritedFields names the fields that follow the platform default.
func inheritedFields(r *pb.RateLimits) []string {
	out := []string{}
	for _, f := range []struct {
		name string
		v    int64
	}{{"requests_per_minute", r.GetRequestsPerMinute()}, {"tokens_per_minute", r.GetTokensPerMinute()}, {"requests_per_day", r.GetRequestsPerDay()}} {
		if r == nil || f.v < 0 {
			out = append(out, f.name)
		}
	}
	if r == nil || r.MaxParallelRequests == nil {
		out = append(out, "max_parallel_requests")
	}
	return out
}

func optLimitsView(r *pb.RateLimits) *rateLimitsJSON {
	if r == nil {
		return nil
	}
	v := limitsView(r)
	return &v
}

// bpsToPct renders basis points as a percentage number: 2050 → 20.5.
func bpsToPct(bps int64) json.Number {
	// bps × 1e7 nanos is the percentage in money's 9-decimal form.
	return json.Number(money.Nanos(bps * 10_000_000).String())
}

func platformView(p *pb.Platform, withWallet bool) platformJSON {
	s := p.GetSettings()
	v := platformJSON{
		ID: p.Id, Object: "platform", Name: p.Name, CreatedAt: ts(p.CreatedAtMs), UpdatedAt: ts(p.UpdatedAtMs),
		Settings: settingsJSON{
			DisplayName:         s.GetDisplayName(),
			MarkupPct:           bpsToPct(s.GetMarkupBps()),
			DefaultRateLimits:   limitsView(s.GetDefaultRateLimits()),
			SkillsEnabled:       s.GetSkillsEnabled(),
			WalletLowBalanceUSD: money.Nanos(s.GetWalletLowBalanceNanos()),
			BudgetLowBalanceUSD: money.Nanos(s.GetBudgetLowBalanceNanos()),
		},
	}
	if db := s.GetDefaultBudget(); db != nil {
		v.Settings.DefaultBudget = &budgetTemplateJSON{money.Nanos(db.AmountNanos), db.Period}
	}
	if withWallet {
		w := walletView(p.Wallet, 0)
		v.Wallet = &w
	}
	return v
}

func walletView(w *pb.Wallet, reserved int64) walletJSON {
	v := walletJSON{Object: "wallet", BalanceUSD: money.Nanos(w.GetBalanceNanos()), ReservedUSD: money.Nanos(reserved)}
	if at := w.GetAutoTopup(); at != nil {
		v.AutoTopup = &autoTopupJSON{Enabled: at.Enabled, ThresholdUSD: money.Nanos(at.ThresholdNanos), AmountUSD: money.Nanos(at.AmountNanos),
			ConsecutiveFailures: at.ConsecutiveFailures}
		if at.LastError != "" {
			e, t := at.LastError, ts(at.LastErrorAtMs)
			v.AutoTopup.LastError, v.AutoTopup.LastErrorAt = &e, &t
		}
	}
	return v
}

type apiKeyJSON struct {
	ID        string  `json:"id"`
	Object    string  `json:"object"`
	Name      string  `json:"name,omitempty"`
	Kind      string  `json:"kind"`
	KeyPrefix string  `json:"key_prefix"`
	EndUserID string  `json:"end_user_id,omitempty"`
	CreatedAt string  `json:"created_at"`
	RawKey    string  `json:"raw_key,omitempty"`
	RevokedAt *string `json:"revoked_at,omitempty"`
}

func keyView(k *pb.APIKey, raw string) apiKeyJSON {
	return apiKeyJSON{
		ID: k.Id, Object: "api_key", Name: k.Name, Kind: ids.KeyKind(k.Kind).String(), KeyPrefix: k.Prefix,
		EndUserID: k.EndUserId, CreatedAt: ts(k.CreatedAtMs), RawKey: raw, RevokedAt: optTime(k.RevokedAtMs),
	}
}

type endUserJSON struct {
	ID                  string          `json:"id"`
	Object              string          `json:"object"`
	PlatformID          string          `json:"platform_id"`
	ExternalID          string          `json:"external_id"`
	DisplayName         string          `json:"display_name"`
	Metadata            json.RawMessage `json:"metadata"`
	CreatedAt           string          `json:"created_at"`
	UpdatedAt           string          `json:"updated_at"`
	Budget              *budgetJSON     `json:"budget"`
	RateLimits          *overrideJSON   `json:"rate_limits"`
	EffectiveRateLimits *rateLimitsJSON `json:"effective_rate_limits,omitempty"`
}

func endUserView(u *pb.EndUser, effective *pb.RateLimits) endUserJSON {
	md := json.RawMessage(u.MetadataJson)
	if len(md) == 0 {
		md = json.RawMessage("{}")
	}
	v := endUserJSON{
		ID: u.Id, Object: "end_user", PlatformID: u.PlatformId, ExternalID: u.ExternalId, DisplayName: u.DisplayName,
		Metadata: md, CreatedAt: ts(u.CreatedAtMs), UpdatedAt: ts(u.UpdatedAtMs),
		RateLimits: overrideView(u.RateLimits), EffectiveRateLimits: optLimitsView(effective),
	}
	if u.Budget != nil {
		// A stored record knows no open reservations: only the actor does
		// (see liveEndUserView), so a list shows them as null.
		b := budgetView(u.Id, u.Budget, 0)
		b.ReservedUSD, b.AvailableUSD = nil, nil
		v.Budget = &b
	}
	return v
}

type budgetJSON struct {
	Object                 string       `json:"object"`
	EndUserID              string       `json:"end_user_id"`
	AmountUSD              money.Nanos  `json:"amount_usd"`
	Period                 string       `json:"period"`
	BalanceUSD             money.Nanos  `json:"balance_usd"`
	ReservedUSD            *money.Nanos `json:"reserved_usd"`
	AvailableUSD           *money.Nanos `json:"available_usd"`
	IsSuspended            bool         `json:"is_suspended"`
	LowBalanceThresholdUSD money.Nanos  `json:"low_balance_threshold_usd"`
	PeriodStart            *string      `json:"period_start"`
	CreatedAt              string       `json:"created_at"`
	UpdatedAt              string       `json:"updated_at"`
}

// appendJSON appends v as encoding/json.Marshal writes it, without
// reflection (TestViewEncodersMatchMarshal).
func (v *budgetJSON) appendJSON(b []byte) []byte {
	b = append(b, `{"object":`...)
	b = jsonstr.Append(b, v.Object, true)
	b = append(b, `,"end_user_id":`...)
	b = jsonstr.Append(b, v.EndUserID, true)
	b = append(b, `,"amount_usd":`...)
	b = v.AmountUSD.AppendUSD(b)
	b = append(b, `,"period":`...)
	b = jsonstr.Append(b, v.Period, true)
	b = append(b, `,"balance_usd":`...)
	b = v.BalanceUSD.AppendUSD(b)
	b = append(b, `,"reserved_usd":`...)
	b = appendOptUSD(b, v.ReservedUSD)
	b = append(b, `,"available_usd":`...)
	b = appendOptUSD(b, v.AvailableUSD)
	b = append(b, `,"is_suspended":`...)
	b = strconv.AppendBool(b, v.IsSuspended)
	b = append(b, `,"low_balance_threshold_usd":`...)
	b = v.LowBalanceThresholdUSD.AppendUSD(b)
	b = append(b, `,"period_start":`...)
	if v.PeriodStart == nil {
		b = append(b, "null"...)
	} else {
		b = jsonstr.Append(b, *v.PeriodStart, true)
	}
	b = append(b, `,"created_at":`...)
	b = jsonstr.Append(b, v.CreatedAt, true)
	b = append(b, `,"updated_at":`...)
	b = jsonstr.Append(b, v.UpdatedAt, true)
	return append(b, '}')
}

func appendOptUSD(b []byte, n *money.Nanos) []byte {
	if n == nil {
		return append(b, "null"...)
	}
	return n.AppendUSD(b)
}

// budgetView renders a budget with the reservations open on it. A one-time
// budget has no period: its period_start is null.
func budgetView(endUser string, b *pb.Budget, reserved int64) budgetJSON {
	res, avail := money.Nanos(reserved), money.Nanos(b.BalanceNanos-reserved)
	v := budgetJSON{
		Object: "budget", EndUserID: endUser, AmountUSD: money.Nanos(b.AmountNanos), Period: b.Period,
		BalanceUSD: money.Nanos(b.BalanceNanos), ReservedUSD: &res,
		AvailableUSD: &avail, IsSuspended: b.IsSuspended,
		LowBalanceThresholdUSD: money.Nanos(b.LowBalanceNanos),
		CreatedAt:              ts(b.CreatedAtMs), UpdatedAt: ts(b.UpdatedAtMs),
	}
	if b.Period != actors.PeriodOneTime && b.PeriodStartMs > 0 {
		v.PeriodStart = optTime(b.PeriodStartMs)
	}
	return v
}

type transactionJSON struct {
	ID               string      `json:"id"`
	Object           string      `json:"object"`
	Account          string      `json:"account"`
	Type             string      `json:"type"`
	AmountUSD        money.Nanos `json:"amount_usd"`
	BalanceAfterUSD  money.Nanos `json:"balance_after_usd"`
	IdempotencyKey   string      `json:"idempotency_key,omitempty"`
	Reason           string      `json:"reason,omitempty"`
	RequestID        string      `json:"request_id,omitempty"`
	Model            string      `json:"model,omitempty"`
	PromptTokens     int64       `json:"prompt_tokens,omitempty"`
	CompletionTokens int64       `json:"completion_tokens,omitempty"`
	UnchargedUSD     money.Nanos `json:"uncharged_usd,omitempty"`
	// Payments: the Stripe objects behind a stripe_topup / auto_topup.
	CheckoutSessionID string `json:"checkout_session_id,omitempty"`
	PaymentIntentID   string `json:"payment_intent_id,omitempty"`
	Sequence          uint64 `json:"sequence"`
	CreatedAt         string `json:"created_at"`
}

// appendJSON appends v as encoding/json.Marshal writes it, without
// reflection (TestViewEncodersMatchMarshal).
func (v *transactionJSON) appendJSON(b []byte) []byte {
	str := func(b []byte, key, s string, omitEmpty bool) []byte {
		if omitEmpty && s == "" {
			return b
		}
		b = append(append(append(b, ",\""...), key...), "\":"...)
		return jsonstr.Append(b, s, true)
	}
	b = append(b, `{"id":`...)
	b = jsonstr.Append(b, v.ID, true)
	b = str(b, "object", v.Object, false)
	b = str(b, "account", v.Account, false)
	b = str(b, "type", v.Type, false)
	b = append(b, `,"amount_usd":`...)
	b = v.AmountUSD.AppendUSD(b)
	b = append(b, `,"balance_after_usd":`...)
	b = v.BalanceAfterUSD.AppendUSD(b)
	b = str(b, "idempotency_key", v.IdempotencyKey, true)
	b = str(b, "reason", v.Reason, true)
	b = str(b, "request_id", v.RequestID, true)
	b = str(b, "model", v.Model, true)
	if v.PromptTokens != 0 {
		b = strconv.AppendInt(append(b, `,"prompt_tokens":`...), v.PromptTokens, 10)
	}
	if v.CompletionTokens != 0 {
		b = strconv.AppendInt(append(b, `,"completion_tokens":`...), v.CompletionTokens, 10)
	}
	if v.UnchargedUSD != 0 {
		b = v.UnchargedUSD.AppendUSD(append(b, `,"uncharged_usd":`...))
	}
	b = str(b, "checkout_session_id", v.CheckoutSessionID, true)
	b = str(b, "payment_intent_id", v.PaymentIntentID, true)
	b = strconv.AppendUint(append(b, `,"sequence":`...), v.Sequence, 10)
	b = str(b, "created_at", v.CreatedAt, false)
	return append(b, '}')
}

func txView(e *pb.LedgerEntry) transactionJSON {
	return transactionJSON{
		ID: e.Id, Object: "transaction", Account: e.Account, Type: e.Type, AmountUSD: money.Nanos(e.AmountNanos),
		BalanceAfterUSD: money.Nanos(e.BalanceAfterNanos), IdempotencyKey: e.IdempotencyKey, Reason: e.Reason,
		RequestID: e.RequestId, Model: e.Model, PromptTokens: e.PromptTokens, CompletionTokens: e.CompletionTokens,
		UnchargedUSD: money.Nanos(e.UnchargedNanos), Sequence: e.Seq, CreatedAt: ts(e.CreatedAtMs),
		CheckoutSessionID: e.CheckoutSessionId, PaymentIntentID: e.PaymentIntentId,
	}
}

// listJSON is every paginated list: data, then an opaque cursor for the next
// page (null on the last).
type listJSON[T any] struct {
	Object     string  `json:"object"`
	Data       []T     `json:"data"`
	HasMore    bool    `json:"has_more"`
	NextCursor *string `json:"next_cursor"`
}
