package edge_test

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go"
	"github.com/openai/openai-go/option"
	"github.com/openai/openai-go/shared"

	"github.com/assistiv/gateway/edge/edgetest"
	"github.com/assistiv/gateway/mockllm"
	"github.com/assistiv/gateway/mockllm/mocktest"
	"github.com/assistiv/gateway/providers/catalog"
)

// canaryProviderKey is a distinctive provider key: it must never appear in
// a response, a log line or the data dir in clear text (B-8).
const canaryProviderKey = "sk-canary-PROVIDER-7f3a9c1e5b"

// inferenceEnv is a gateway with a platform whose four providers point at
// one mock upstream, a funded wallet, and an end-user with a budget.
type inferenceEnv struct {
	g       *edgetest.Gateway
	mockURL string
	mock    *mockllm.Server
	pid, pk string
	uid, uk string
	client  openai.Client
}

func newInferenceEnv(t *testing.T, mcfg mockllm.Config, budgetUSD float64) *inferenceEnv {
	t.Helper()
	e := &inferenceEnv{}
	e.mockURL, e.mock = mocktest.Start(t, mcfg)
	e.g = edgetest.Start(t, edgetest.Options{})
	e.pid, e.pk = e.g.CreatePlatform(t, "inference")
	for _, p := range []string{"openai", "anthropic", "google", "xai"} {
		r := e.g.Do(t, "PUT", "/admin/v1/platforms/"+e.pid+"/llm-providers/"+p, edgetest.AdminKey,
			map[string]any{"api_key": canaryProviderKey, "base_url": e.mockURL, "enabled": true})
		if r.Status != 200 {
			t.Fatalf("configure %s: %d %s", p, r.Status, r.Body)
		}
		if strings.Contains(string(r.Body), canaryProviderKey) {
			t.Fatalf("provider config response leaks the key: %s", r.Body)
		}
	}
	if r := e.g.Do(t, "POST", "/admin/v1/platforms/"+e.pid+"/wallet/topup", edgetest.AdminKey, map[string]any{"amount_usd": 100}); r.Status != 200 {
		t.Fatalf("wallet topup: %d %s", r.Status, r.Body)
	}
	e.uid, e.uk = e.g.CreateEndUser(t, e.pid, e.pk, "inference-user")
	if budgetUSD >= 0 {
		if r := e.g.Do(t, "POST", "/v1/platforms/"+e.pid+"/end-users/"+e.uid+"/budget", e.pk, map[string]any{"amount_usd": budgetUSD}); r.Status != 201 {
			t.Fatalf("budget: %d %s", r.Status, r.Body)
		}
	}
	e.client = openai.NewClient(option.WithBaseURL(e.g.URL+"/v1"), option.WithAPIKey(e.uk), option.WithMaxRetries(0))
	return e
}

var providerModels = []struct{ provider, model string }{
	{"openai", "gpt-4o-mini"}, {"anthropic", "claude-haiku-4-5"}, {"google", "gemini-2.5-flash"}, {"xai", "grok-3-mini"},
}

func TestChatCompletionsThroughEveryProviderWithTheOpenAISDK(t *testing.T) {
	cfg := mockllm.DefaultConfig()
	cfg.TokensPerSecond = 200 // 20 tokens over ~100 ms: streaming must arrive spread out
	e := newInferenceEnv(t, cfg, 50)
	ctx := context.Background()
	for _, pm := range providerModels {
		t.Run(pm.provider, func(t *testing.T) {
			resp, err := e.client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
				Model:    pm.model,
				Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("Be brief."), openai.UserMessage("Plan a trip to Tokyo")},
			})
			if err != nil {
				t.Fatalf("Completions.New(%s): %v", pm.model, err)
			}
			if len(resp.Choices) == 0 || resp.Choices[0].Message.Content == "" {
				t.Fatalf("empty completion: %+v", resp)
			}
			if resp.Usage.PromptTokens == 0 || resp.Usage.CompletionTokens == 0 {
				t.Fatalf("usage missing: %+v", resp.Usage)
			}

			stream := e.client.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
				Model:         pm.model,
				Messages:      []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Plan a trip to Tokyo")},
				StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
			})
			var arrivals []time.Time
			var text strings.Builder
			var usage openai.CompletionUsage
			for stream.Next() {
				ch := stream.Current()
				if len(ch.Choices) > 0 && ch.Choices[0].Delta.Content != "" {
					arrivals = append(arrivals, time.Now())
					text.WriteString(ch.Choices[0].Delta.Content)
				}
				if ch.Usage.TotalTokens > 0 {
					usage = ch.Usage
				}
			}
			if err := stream.Err(); err != nil {
				t.Fatalf("stream: %v", err)
			}
			if len(arrivals) < 5 || text.Len() == 0 {
				t.Fatalf("stream delivered %d content chunks (%q)", len(arrivals), text.String())
			}
			// Incremental, not buffered: at 200 tokens/s the chunks of one
			// stream cannot all arrive at the same moment.
			if spread := arrivals[len(arrivals)-1].Sub(arrivals[0]); spread < 30*time.Millisecond {
				t.Fatalf("chunks arrived within %v: buffered, not streamed", spread)
			}
			if usage.CompletionTokens == 0 {
				t.Fatalf("include_usage: no usage chunk")
			}
		})
	}
	// The provider key reached the mock (routing worked) and nowhere else.
	last, ok := e.mock.LastRequest(mockllm.RouteAnthropic)
	if !ok || last.Header.Get("x-api-key") != canaryProviderKey {
		t.Fatalf("anthropic upstream did not receive the provider key")
	}
	assertNoCanary(t, e.g.Dir, canaryProviderKey)
}

// assertNoCanary greps every file of the data dir for s.
func assertNoCanary(t *testing.T, dir, s string) {
	t.Helper()
	err := filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), s) {
			t.Errorf("%s holds the secret in clear text", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestToolCallingRoundTripAndJSONSchema(t *testing.T) {
	e := newInferenceEnv(t, mockllm.DefaultConfig(), 50)
	ctx := context.Background()
	for _, pm := range providerModels {
		t.Run(pm.provider, func(t *testing.T) {
			params := openai.ChatCompletionNewParams{
				Model:    pm.model,
				Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("What is the weather in Paris?")},
				Tools: []openai.ChatCompletionToolParam{{Function: shared.FunctionDefinitionParam{
					Name:        "get_weather",
					Description: openai.String("current weather for a city"),
					Parameters: shared.FunctionParameters{
						"type":       "object",
						"properties": map[string]any{"city": map[string]any{"type": "string"}},
						"required":   []string{"city"},
					},
				}}},
			}
			resp, err := e.client.Chat.Completions.New(ctx, params)
			if err != nil {
				t.Fatalf("tool call: %v", err)
			}
			msg := resp.Choices[0].Message
			if len(msg.ToolCalls) != 1 || msg.ToolCalls[0].Function.Name != "get_weather" {
				t.Fatalf("want one get_weather call, got %+v", msg)
			}
			var args map[string]any
			if err := json.Unmarshal([]byte(msg.ToolCalls[0].Function.Arguments), &args); err != nil || args["city"] == nil {
				t.Fatalf("tool arguments %q: %v", msg.ToolCalls[0].Function.Arguments, err)
			}
			if resp.Choices[0].FinishReason != "tool_calls" {
				t.Fatalf("finish_reason = %q, want tool_calls", resp.Choices[0].FinishReason)
			}
			params.Messages = append(params.Messages, msg.ToParam(), openai.ToolMessage("sunny, 21C", msg.ToolCalls[0].ID))
			resp2, err := e.client.Chat.Completions.New(ctx, params)
			if err != nil {
				t.Fatalf("follow-up with tool result: %v", err)
			}
			if !strings.Contains(resp2.Choices[0].Message.Content, "sunny") {
				t.Fatalf("the answer does not use the tool result: %q", resp2.Choices[0].Message.Content)
			}

			// Streamed tool calls: arguments arrive in pieces and reassemble
			// to what the non-streamed call returned.
			stream := e.client.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
				Model: pm.model, Messages: params.Messages[:1], Tools: params.Tools,
			})
			acc := openai.ChatCompletionAccumulator{}
			for stream.Next() {
				acc.AddChunk(stream.Current())
			}
			if err := stream.Err(); err != nil {
				t.Fatalf("streamed tool call: %v", err)
			}
			if len(acc.Choices) == 0 || len(acc.Choices[0].Message.ToolCalls) != 1 {
				t.Fatalf("streamed tool call not assembled: %+v", acc.Choices)
			}
			if got, want := acc.Choices[0].Message.ToolCalls[0].Function.Arguments, msg.ToolCalls[0].Function.Arguments; got != want {
				t.Fatalf("streamed arguments %q != non-streamed %q", got, want)
			}

			// Structured output: the reply is JSON that fits the schema.
			js, err := e.client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
				Model:    pm.model,
				Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Name a city and its country.")},
				ResponseFormat: openai.ChatCompletionNewParamsResponseFormatUnion{OfJSONSchema: &shared.ResponseFormatJSONSchemaParam{
					JSONSchema: shared.ResponseFormatJSONSchemaJSONSchemaParam{
						Name: "city",
						Schema: map[string]any{
							"type":       "object",
							"properties": map[string]any{"city": map[string]any{"type": "string"}, "country": map[string]any{"type": "string"}},
							"required":   []string{"city", "country"},
						},
					},
				}},
			})
			if err != nil {
				t.Fatalf("json_schema: %v", err)
			}
			var out map[string]any
			if err := json.Unmarshal([]byte(js.Choices[0].Message.Content), &out); err != nil {
				t.Fatalf("json_schema content is not JSON: %q", js.Choices[0].Message.Content)
			}
			if _, ok := out["city"].(string); !ok {
				t.Fatalf("json_schema content misses city: %v", out)
			}
			if _, ok := out["country"].(string); !ok {
				t.Fatalf("json_schema content misses country: %v", out)
			}
		})
	}
}

type ledgerEntry struct {
	Type             string      `json:"type"`
	AmountUSD        float64     `json:"-"`
	Amount           json.Number `json:"amount_usd"`
	RequestID        string      `json:"request_id"`
	Model            string      `json:"model"`
	PromptTokens     int64       `json:"prompt_tokens"`
	CompletionTokens int64       `json:"completion_tokens"`
}

func (e *inferenceEnv) ledger(t *testing.T, path, key string) []ledgerEntry {
	t.Helper()
	var out struct {
		Data []ledgerEntry `json:"data"`
	}
	r := e.g.Do(t, "GET", path+"?limit=1000", key, nil)
	if r.Status != 200 {
		t.Fatalf("ledger %s: %d %s", path, r.Status, r.Body)
	}
	r.JSON(t, &out)
	return out.Data
}

// nanos parses a decimal USD amount exactly into nano-USD.
func nanos(t *testing.T, n json.Number) int64 {
	t.Helper()
	s := string(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	whole, frac, _ := strings.Cut(s, ".")
	frac = (frac + "000000000")[:9]
	var v int64
	for _, c := range whole + frac {
		v = v*10 + int64(c-'0')
	}
	if neg {
		v = -v
	}
	return v
}

func TestUsageIsBilledAtCatalogPriceTimesMarkupExactly(t *testing.T) {
	e := newInferenceEnv(t, mockllm.DefaultConfig(), 50)
	if r := e.g.Do(t, "PATCH", "/admin/v1/platforms/"+e.pid, edgetest.AdminKey, map[string]any{"markup_pct": 25}); r.Status != 200 {
		t.Fatalf("markup: %d %s", r.Status, r.Body)
	}
	ctx := context.Background()
	for _, pm := range providerModels {
		resp, err := e.client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
			Model: pm.model, Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("bill me exactly")},
		})
		if err != nil {
			t.Fatalf("%s: %v", pm.model, err)
		}
		m, _ := catalog.Lookup(pm.model)
		cost, err := m.Cost(resp.Usage.PromptTokens, resp.Usage.CompletionTokens)
		if err != nil {
			t.Fatal(err)
		}
		charge := (cost*12500 + 9999) / 10000 // ×1.25, rounded up to the nano-USD
		var user, wallet *ledgerEntry
		for _, le := range e.ledger(t, "/v1/platforms/"+e.pid+"/end-users/"+e.uid+"/budget/transactions", e.pk) {
			if le.Type == "usage" && le.Model == m.ID {
				le := le
				user = &le
				break
			}
		}
		for _, le := range e.ledger(t, "/admin/v1/platforms/"+e.pid+"/wallet/transactions", edgetest.AdminKey) {
			if le.Type == "usage" && le.Model == m.ID {
				le := le
				wallet = &le
				break
			}
		}
		if user == nil || wallet == nil {
			t.Fatalf("%s: usage entries missing (user %v, wallet %v)", pm.model, user, wallet)
		}
		if got := nanos(t, user.Amount); got != -charge {
			t.Errorf("%s: budget usage = %d nano-USD, want %d (cost %d × 1.25)", pm.model, got, -charge, cost)
		}
		if got := nanos(t, wallet.Amount); got != -cost {
			t.Errorf("%s: wallet usage = %d nano-USD, want %d", pm.model, got, -cost)
		}
		if user.PromptTokens != resp.Usage.PromptTokens || user.CompletionTokens != resp.Usage.CompletionTokens {
			t.Errorf("%s: ledger tokens %d/%d, response usage %d/%d", pm.model, user.PromptTokens, user.CompletionTokens, resp.Usage.PromptTokens, resp.Usage.CompletionTokens)
		}
	}
}

func TestRefusalsArriveBeforeAnyUpstreamRequest(t *testing.T) {
	e := newInferenceEnv(t, mockllm.DefaultConfig(), 0) // a budget of 0
	body := map[string]any{"model": "gpt-4o-mini", "messages": []any{map[string]any{"role": "user", "content": "hi"}}}
	before := e.mock.Requests()
	r := e.g.Do(t, "POST", "/v1/chat/completions", e.uk, body)
	if r.Status != 402 || r.ErrorCode() != "budget_exhausted" {
		t.Fatalf("empty budget: %d %s", r.Status, r.Body)
	}
	// Suspended budget.
	e.g.Do(t, "PATCH", "/v1/platforms/"+e.pid+"/end-users/"+e.uid+"/budget", e.pk, map[string]any{"amount_usd": 10, "is_suspended": true})
	if r := e.g.Do(t, "POST", "/v1/chat/completions", e.uk, body); r.Status != 402 || r.ErrorCode() != "budget_suspended" {
		t.Fatalf("suspended: %d %s", r.Status, r.Body)
	}
	e.g.Do(t, "PATCH", "/v1/platforms/"+e.pid+"/end-users/"+e.uid+"/budget", e.pk, map[string]any{"is_suspended": false})
	// Rate limit: 1 request per minute.
	e.g.Do(t, "PUT", "/v1/platforms/"+e.pid+"/end-users/"+e.uid+"/rate-limits", e.pk, map[string]any{"requests_per_minute": 1})
	if r := e.g.Do(t, "POST", "/v1/chat/completions", e.uk, body); r.Status != 200 {
		t.Fatalf("first call: %d %s", r.Status, r.Body)
	} else if r.Header.Get("x-ratelimit-limit-requests") != "1" || r.Header.Get("x-ratelimit-remaining-requests") != "0" {
		t.Fatalf("rate headers on success: %v", r.Header)
	}
	after1 := e.mock.Requests()
	r = e.g.Do(t, "POST", "/v1/chat/completions", e.uk, body)
	if r.Status != 429 || r.ErrorCode() != "rate_limited" || r.Header.Get("Retry-After") == "" || r.Header.Get("x-ratelimit-remaining-requests") != "0" {
		t.Fatalf("over the limit: %d %v %s", r.Status, r.Header, r.Body)
	}
	// Wallet empty: a second platform with no wallet funds.
	pid2, pk2 := e.g.CreatePlatform(t, "broke")
	e.g.Do(t, "PUT", "/admin/v1/platforms/"+pid2+"/llm-providers/openai", edgetest.AdminKey, map[string]any{"api_key": canaryProviderKey, "base_url": e.mockURL})
	_, uk2 := e.g.CreateEndUser(t, pid2, pk2, "u")
	if r := e.g.Do(t, "POST", "/v1/chat/completions", uk2, body); r.Status != 402 || r.ErrorCode() != "wallet_insufficient" {
		t.Fatalf("empty wallet: %d %s", r.Status, r.Body)
	}
	if got := e.mock.Requests(); got != after1 || after1 != before+1 {
		t.Fatalf("upstream saw %d requests (before %d, after the one admitted call %d): refusals reached it", got, before, after1)
	}
	// A platform key is refused on inference.
	if r := e.g.Do(t, "POST", "/v1/chat/completions", e.pk, body); r.Status != 403 || r.ErrorCode() != "wrong_key_type" {
		t.Fatalf("platform key on inference: %d %s", r.Status, r.Body)
	}
	// Unknown model.
	if r := e.g.Do(t, "POST", "/v1/chat/completions", e.uk, map[string]any{"model": "no-such-model", "messages": []any{map[string]any{"role": "user", "content": "x"}}}); r.Status != 404 || r.ErrorCode() != "model_not_found" {
		t.Fatalf("unknown model: %d %s", r.Status, r.Body)
	}
}

func TestMidStreamDisconnectBillsThePartialOutput(t *testing.T) {
	cfg := mockllm.DefaultConfig()
	cfg.Tokens = 200
	cfg.TokensPerSecond = 100 // two seconds of stream
	e := newInferenceEnv(t, cfg, 50)
	req, _ := http.NewRequest("POST", e.g.URL+"/v1/chat/completions", strings.NewReader(
		`{"model":"gpt-4o-mini","stream":true,"max_tokens":300,"messages":[{"role":"user","content":"talk a lot"}]}`))
	req.Header.Set("Authorization", "Bearer "+e.uk)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	rd := bufio.NewReader(resp.Body)
	events := 0
	for events < 5 {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("read stream: %v", err)
		}
		if strings.HasPrefix(line, "data: {") {
			events++
		}
	}
	resp.Body.Close() // leave mid-stream
	deadline := time.Now().Add(10 * time.Second)
	for {
		var usage *ledgerEntry
		for _, le := range e.ledger(t, "/v1/platforms/"+e.pid+"/end-users/"+e.uid+"/budget/transactions", e.pk) {
			if le.Type == "usage" {
				le := le
				usage = &le
			}
		}
		if usage != nil {
			if usage.CompletionTokens <= 0 || usage.CompletionTokens >= 200 {
				t.Fatalf("partial stream billed %d completion tokens; want between 1 and 199", usage.CompletionTokens)
			}
			if nanos(t, usage.Amount) >= 0 {
				t.Fatalf("partial stream charged nothing: %+v", usage)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no usage entry after the client disconnected")
		}
		time.Sleep(20 * time.Millisecond)
	}
	var b struct {
		Reserved json.Number `json:"reserved_usd"`
	}
	e.g.Do(t, "GET", "/v1/platforms/"+e.pid+"/end-users/"+e.uid+"/budget", e.pk, nil).JSON(t, &b)
	if b.Reserved != "0" {
		t.Fatalf("reservation not released after disconnect: reserved_usd %s", b.Reserved)
	}
}

func TestModelsListsOnlyEnabledProviders(t *testing.T) {
	e := newInferenceEnv(t, mockllm.DefaultConfig(), 1)
	e.g.Do(t, "PUT", "/admin/v1/platforms/"+e.pid+"/llm-providers/google", edgetest.AdminKey, map[string]any{"enabled": false})
	var out struct {
		Object string `json:"object"`
		Data   []struct {
			ID      string `json:"id"`
			OwnedBy string `json:"owned_by"`
		} `json:"data"`
	}
	r := e.g.Do(t, "GET", "/v1/models", e.uk, nil)
	r.JSON(t, &out)
	if r.Status != 200 || out.Object != "list" || len(out.Data) == 0 {
		t.Fatalf("models: %d %s", r.Status, r.Body)
	}
	seen := map[string]bool{}
	for _, m := range out.Data {
		seen[m.OwnedBy] = true
	}
	if seen["google"] || !seen["openai"] || !seen["anthropic"] || !seen["xai"] {
		t.Fatalf("providers listed: %v", seen)
	}
	if r := e.g.Do(t, "GET", "/v1/models", e.pk, nil); r.Status != 200 {
		t.Fatalf("platform key on /v1/models: %d", r.Status)
	}
	// Listing providers shows the last four characters of the key only.
	r = e.g.Do(t, "GET", "/admin/v1/platforms/"+e.pid+"/llm-providers", edgetest.AdminKey, nil)
	if strings.Contains(string(r.Body), canaryProviderKey) || !strings.Contains(string(r.Body), canaryProviderKey[len(canaryProviderKey)-4:]) {
		t.Fatalf("provider list: %s", r.Body)
	}
}

func TestConcurrentCallsCannotOverspendASmallBudget(t *testing.T) {
	// 100,000 nano-USD: each call's worst case (about 37,000) fits twice,
	// its actual cost (about 12,000) eight times.
	e := newInferenceEnv(t, mockllm.DefaultConfig(), 0.0001)
	const calls = 32
	body := `{"model":"gpt-4o-mini","max_tokens":50,"messages":[{"role":"user","content":"a short question"}]}`
	statuses := make(chan int, calls)
	var wg sync.WaitGroup
	for i := 0; i < calls; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", e.g.URL+"/v1/chat/completions", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+e.uk)
			req.Header.Set("Content-Type", "application/json")
			resp, err := e.g.Client().Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		}()
	}
	wg.Wait()
	close(statuses)
	ok, refused := 0, 0
	for s := range statuses {
		switch s {
		case 200:
			ok++
		case 402:
			refused++
		default:
			t.Errorf("unexpected status %d", s)
		}
	}
	if ok == 0 || refused == 0 {
		t.Fatalf("want some calls admitted and some refused by a $0.0001 budget: %d ok, %d refused", ok, refused)
	}
	var spent int64
	usage := 0
	for _, le := range e.ledger(t, "/v1/platforms/"+e.pid+"/end-users/"+e.uid+"/budget/transactions", e.pk) {
		if le.Type == "usage" {
			usage++
			spent -= nanos(t, le.Amount)
		}
	}
	if usage != ok {
		t.Fatalf("%d usage entries for %d admitted calls", usage, ok)
	}
	if spent > 100_000 {
		t.Fatalf("spent %d nano-USD from a 100,000 nano-USD budget", spent)
	}
	var b struct {
		Balance  json.Number `json:"balance_usd"`
		Reserved json.Number `json:"reserved_usd"`
	}
	e.g.Do(t, "GET", "/v1/platforms/"+e.pid+"/end-users/"+e.uid+"/budget", e.pk, nil).JSON(t, &b)
	if nanos(t, b.Balance) != 100_000-spent || b.Reserved != "0" {
		t.Fatalf("budget after the burst: balance %s reserved %s; spent %d", b.Balance, b.Reserved, spent)
	}
}

func TestProviderKeyNeverInLogLines(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	mockURL, _ := mocktest.Start(t, mockllm.DefaultConfig())
	g := edgetest.Start(t, edgetest.Options{Log: log})
	pid, pk := g.CreatePlatform(t, "canary")
	g.Do(t, "PUT", "/admin/v1/platforms/"+pid+"/llm-providers/openai", edgetest.AdminKey, map[string]any{"api_key": canaryProviderKey, "base_url": mockURL})
	g.Do(t, "POST", "/admin/v1/platforms/"+pid+"/wallet/topup", edgetest.AdminKey, map[string]any{"amount_usd": 1})
	_, uk := g.CreateEndUser(t, pid, pk, "u")
	for _, model := range []string{"gpt-4o-mini", "gpt-4o-mini-mock-error-401"} {
		g.Do(t, "POST", "/v1/chat/completions", uk, map[string]any{"model": model, "messages": []any{map[string]any{"role": "user", "content": "hi"}}})
	}
	// An upstream that refuses the key: its error must not echo it either.
	g.Do(t, "PUT", "/admin/v1/platforms/"+pid+"/llm-providers/openai", edgetest.AdminKey, map[string]any{"api_key": canaryProviderKey + "-rotated"})
	g.Close()
	if strings.Contains(buf.String(), canaryProviderKey) {
		t.Fatalf("a log line holds the provider key:\n%s", buf.String())
	}
	if buf.Len() == 0 {
		t.Fatal("nothing was logged: the check read nothing")
	}
	assertNoCanary(t, g.Dir, canaryProviderKey)
}

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Len()
}
