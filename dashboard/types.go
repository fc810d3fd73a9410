package dashboard

import (
	"encoding/json"
	"html/template"
	"io/fs"
	"strconv"
	"strings"
	"time"

	"github.com/assistiv/gateway/internal/money"
)

// The API's JSON shapes, as the dashboard reads them.

type rateLimits struct {
	RequestsPerMinute int64 `json:"requests_per_minute"`
	TokensPerMinute   int64 `json:"tokens_per_minute"`
	RequestsPerDay    int64 `json:"requests_per_day"`
}

type platformJSON struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	CreatedAt string `json:"created_at"`
	Settings  struct {
		DisplayName   string `json:"display_name"`
		DefaultBudget *struct {
			AmountUSD money.Nanos `json:"amount_usd"`
			Period    string      `json:"period"`
		} `json:"default_budget"`
		MarkupPct           json.Number `json:"markup_pct"`
		DefaultRateLimits   rateLimits  `json:"default_rate_limits"`
		SkillsEnabled       bool        `json:"skills_enabled"`
		WalletLowBalanceUSD money.Nanos `json:"wallet_low_balance_usd"`
		BudgetLowBalanceUSD money.Nanos `json:"budget_low_balance_usd"`
	} `json:"settings"`
	Wallet *walletJSON `json:"wallet"`
}

func (p platformJSON) displayName() string {
	if p.Settings.DisplayName != "" {
		return p.Settings.DisplayName
	}
	return p.Name
}

type walletJSON struct {
	BalanceUSD  money.Nanos `json:"balance_usd"`
	ReservedUSD money.Nanos `json:"reserved_usd"`
	AutoTopup   *struct {
		Enabled      bool        `json:"enabled"`
		ThresholdUSD money.Nanos `json:"threshold_usd"`
		AmountUSD    money.Nanos `json:"amount_usd"`
	} `json:"auto_topup"`
}

type budgetJSON struct {
	AmountUSD              money.Nanos `json:"amount_usd"`
	Period                 string      `json:"period"`
	BalanceUSD             money.Nanos `json:"balance_usd"`
	ReservedUSD            money.Nanos `json:"reserved_usd"`
	AvailableUSD           money.Nanos `json:"available_usd"`
	IsSuspended            bool        `json:"is_suspended"`
	LowBalanceThresholdUSD money.Nanos `json:"low_balance_threshold_usd"`
	PeriodStart            *string     `json:"period_start"`
}

type endUserJSON struct {
	ID                  string      `json:"id"`
	ExternalID          string      `json:"external_id"`
	DisplayName         string      `json:"display_name"`
	CreatedAt           string      `json:"created_at"`
	Budget              *budgetJSON `json:"budget"`
	RateLimits          *rateLimits `json:"rate_limits"`
	EffectiveRateLimits *rateLimits `json:"effective_rate_limits"`
	APIKey              *keyJSON    `json:"api_key"`
}

type keyJSON struct {
	ID        string  `json:"id"`
	Name      string  `json:"name"`
	Kind      string  `json:"kind"`
	KeyPrefix string  `json:"key_prefix"`
	CreatedAt string  `json:"created_at"`
	RawKey    string  `json:"raw_key"`
	RevokedAt *string `json:"revoked_at"`
}

type txJSON struct {
	ID               string      `json:"id"`
	Type             string      `json:"type"`
	AmountUSD        money.Nanos `json:"amount_usd"`
	BalanceAfterUSD  money.Nanos `json:"balance_after_usd"`
	IdempotencyKey   string      `json:"idempotency_key"`
	Reason           string      `json:"reason"`
	RequestID        string      `json:"request_id"`
	Model            string      `json:"model"`
	PromptTokens     int64       `json:"prompt_tokens"`
	CompletionTokens int64       `json:"completion_tokens"`
	CreatedAt        string      `json:"created_at"`
}

type logJSON struct {
	RequestID        string      `json:"request_id"`
	EndUserID        string      `json:"end_user_id"`
	Kind             string      `json:"kind"`
	Model            string      `json:"model"`
	Provider         string      `json:"provider"`
	StatusCode       int         `json:"status_code"`
	ErrorCode        *string     `json:"error_code"`
	PromptTokens     int64       `json:"prompt_tokens"`
	CompletionTokens int64       `json:"completion_tokens"`
	TotalTokens      int64       `json:"total_tokens"`
	CostUSD          money.Nanos `json:"cost_usd"`
	ProviderCostUSD  money.Nanos `json:"provider_cost_usd"`
	LatencyMs        int64       `json:"latency_ms"`
	TTFTMs           *int64      `json:"ttft_ms"`
	Stream           bool        `json:"stream"`
	CreatedAt        string      `json:"created_at"`
	Tool             string      `json:"tool"`
	App              string      `json:"app"`
}

type providerJSON struct {
	Provider    string `json:"provider"`
	Enabled     bool   `json:"enabled"`
	BaseURL     string `json:"base_url"`
	APIKeyLast4 string `json:"api_key_last4"`
	UpdatedAt   string `json:"updated_at"`
}

type listOf[T any] struct {
	Data       []T     `json:"data"`
	HasMore    bool    `json:"has_more"`
	NextCursor *string `json:"next_cursor"`
}

// funcs are the template helpers.
var funcs = template.FuncMap{
	"usd": usdText,
	"limit": func(n int64) string {
		if n == 0 {
			return "unlimited"
		}
		return strconv.FormatInt(n, 10)
	},
	"when": when,
	"pct":  func(n json.Number) string { return string(n) + "%" },
	"deref": func(s *string) string {
		if s == nil {
			return ""
		}
		return *s
	},
	"derefInt": func(p *int64) int64 {
		if p == nil {
			return 0
		}
		return *p
	},
	"eq2": func(a, b string) bool { return a == b },
	"has": func(m map[string]string, k string) bool { _, ok := m[k]; return ok },
	"neg": func(n money.Nanos) bool { return n < 0 },
	"score": func(f *float64) string {
		if f == nil {
			return "–"
		}
		return strconv.FormatFloat(*f, 'f', 1, 64)
	},
	"join": strings.Join,
	"whenMs": func(ms int64) template.HTML {
		return when(time.UnixMilli(ms).UTC().Format(time.RFC3339Nano))
	},
	"navItems": func() [][2]string { return navItems },
	"periods":  func() []string { return []string{"monthly", "daily", "one_time"} },
	"logKinds": func() []string { return []string{"chat.completions", "responses", "tool"} },
	"roles":    func() []string { return []string{RoleOwner, RoleAdmin, RoleViewer} },
}

// navItems are the platform pages: path and label.
var navItems = [][2]string{
	{"overview", "Overview"}, {"end-users", "End-users"}, {"logs", "Logs"}, {"playground", "Playground"},
	{"llm-configs", "LLM Configs"}, {"mcp", "MCP"}, {"skills", "Skills"}, {"api-keys", "API keys"}, {"webhooks", "Webhooks"}, {"billing", "Billing"},
	{"settings", "Settings"}, {"team", "Team"},
}

// usdText renders an exact amount: "$1.5", "-$0.000000001".
func usdText(n money.Nanos) string {
	if s := n.String(); strings.HasPrefix(s, "-") {
		return "-$" + s[1:]
	}
	return "$" + n.String()
}

// when renders a timestamp as <time>: UTC in the markup and the title,
// turned into the viewer's time zone by the page script.
func when(s string) template.HTML {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return template.HTML(template.HTMLEscapeString(s))
	}
	u := t.UTC().Format("2006-01-02 15:04:05 UTC")
	iso := t.UTC().Format(time.RFC3339)
	return template.HTML(`<time datetime="` + iso + `" title="` + u + `">` + u + `</time>`)
}

func fsGlob(pattern string) ([]string, error) { return fs.Glob(assets, pattern) }
