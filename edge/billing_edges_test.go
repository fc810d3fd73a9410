package edge_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/assistiv/gateway/actors"
	"github.com/assistiv/gateway/edge/edgetest"
	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/internal/money"
	"github.com/assistiv/gateway/internal/pb"
	"github.com/assistiv/gateway/mockllm"
	"github.com/assistiv/gateway/providers/catalog"
)

// postChat sends a chat completion body as the end-user and returns the
// status and the raw body.
func (e *inferenceEnv) postChat(t *testing.T, body string) (int, string) {
	t.Helper()
	r := e.g.Do(t, "POST", "/v1/chat/completions", e.uk, jsonRaw(body))
	return r.Status, string(r.Body)
}

// openStream starts a streaming chat completion as the end-user and
// returns the open response (the caller closes its body).
func (e *inferenceEnv) openStream(t *testing.T, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", e.g.URL+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+e.uk)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// jsonRaw is a request body sent as it is.
type jsonRaw string

func (j jsonRaw) MarshalJSON() ([]byte, error) { return []byte(j), nil }

// n choices can each run to the output bound: the reservation is n worst
// cases, so a budget that covers two worst cases admits n=1 and refuses
// n=3 before any upstream request.
func TestNChoicesReserveNWorstCases(t *testing.T) {
	m, err := catalog.Lookup("gpt-4o-mini")
	if err != nil {
		t.Fatal(err)
	}
	one := `{"model":"gpt-4o-mini","max_tokens":2000,"n":1,"messages":[{"role":"user","content":"hi"}]}`
	three := strings.Replace(one, `"n":1`, `"n":3`, 1)
	// The edge's admission estimate of the prompt: about a token per 3
	// bytes of body, plus 16.
	est := int64(len(one))/3 + 16
	worst, err := m.Cost(est, 2000)
	if err != nil {
		t.Fatal(err)
	}
	budget := money.Nanos(2 * worst)
	e := newInferenceEnv(t, mockllm.DefaultConfig(), -1)
	if r := e.g.Do(t, "POST", "/v1/platforms/"+e.pid+"/end-users/"+e.uid+"/budget", e.pk, map[string]any{"amount_usd": jsonRaw(budget.String())}); r.Status != 201 {
		t.Fatalf("budget: %d %s", r.Status, r.Body)
	}
	before := e.mock.Stats().Total
	if st, body := e.postChat(t, three); st != 402 || !strings.Contains(body, "budget_exhausted") {
		t.Fatalf("n=3 against two worst cases of budget: %d %s, want 402 budget_exhausted", st, body)
	}
	if e.mock.Stats().Total != before {
		t.Fatalf("the refused n=3 call reached the upstream")
	}
	if st, body := e.postChat(t, one); st != 200 {
		t.Fatalf("n=1: %d %s", st, body)
	}
}

// A client leaving an Anthropic stream is billed at least the tokens of
// the text it was sent: message_start's output_tokens of 1 is a floor, not
// the provider's final count.
func TestAnthropicStreamLeftEarlyBillsTheDeliveredText(t *testing.T) {
	cfg := mockllm.DefaultConfig()
	cfg.Tokens = 400
	cfg.TokensPerSecond = 100
	e := newInferenceEnv(t, cfg, 50)
	resp := e.openStream(t, `{"model":"claude-haiku-4-5","stream":true,"max_tokens":500,"messages":[{"role":"user","content":"talk a lot"}]}`)
	rd := bufio.NewReader(resp.Body)
	delivered := 0
	for events := 0; events < 40; {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("read stream: %v", err)
		}
		if strings.HasPrefix(line, "data: {") {
			events++
			if i := strings.Index(line, `"content":"`); i >= 0 {
				rest := line[i+len(`"content":"`):]
				if j := strings.Index(rest, `"`); j >= 0 {
					delivered += j
				}
			}
		}
	}
	resp.Body.Close()
	if delivered == 0 {
		t.Fatal("no content delivered before leaving")
	}
	var usage *ledgerEntry
	deadline := time.Now().Add(10 * time.Second)
	for usage == nil {
		for _, le := range e.ledger(t, "/v1/platforms/"+e.pid+"/end-users/"+e.uid+"/budget/transactions", e.pk) {
			if le.Type == "usage" {
				le := le
				usage = &le
			}
		}
		if usage == nil && time.Now().After(deadline) {
			t.Fatal("no usage entry after the client left")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if floor := int64(delivered+3) / 4; usage.CompletionTokens < floor || usage.CompletionTokens <= 1 {
		t.Fatalf("left after %d bytes of text: billed %d completion tokens, want at least %d", delivered, usage.CompletionTokens, floor)
	}
}

// A stream whose settlement fails (here: the end-user is deleted while the
// stream runs, so its reservation is gone) ends with an error event and
// never with [DONE], which would tell the client the call completed and
// was accounted for.
func TestFailedSettlementIsNeverFollowedByDone(t *testing.T) {
	cfg := mockllm.DefaultConfig()
	cfg.Tokens = 60
	cfg.TokensPerSecond = 60
	e := newInferenceEnv(t, cfg, 50)
	resp := e.openStream(t, `{"model":"gpt-4o-mini","stream":true,"max_tokens":100,"messages":[{"role":"user","content":"go"}]}`)
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	if _, err := rd.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	if r := e.g.Do(t, "DELETE", "/v1/platforms/"+e.pid+"/end-users/"+e.uid, e.pk, nil); r.Status != 200 && r.Status != 204 {
		t.Fatalf("delete end-user: %d %s", r.Status, r.Body)
	}
	var sawError, sawDone bool
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			break
		}
		if strings.HasPrefix(line, "data: [DONE]") {
			sawDone = true
		}
		if strings.HasPrefix(line, `data: {"error"`) {
			sawError = true
		}
	}
	if sawDone || !sawError {
		t.Fatalf("stream after a failed settlement: [DONE] %v, error event %v; want an error event and no [DONE]", sawDone, sawError)
	}
}

// A debit refused for the balance is remembered under its Idempotency-Key:
// retried after a top-up it replays the 402 (Idempotent-Replayed: true)
// and moves no money; a validation 400 is not remembered.
func TestRefusedDebitReplaysUnderItsKey(t *testing.T) {
	g := edgetest.Start(t, edgetest.Options{})
	pid, pk := g.CreatePlatform(t, "replay")
	uid, _ := g.CreateEndUser(t, pid, pk, "u")
	budget := "/v1/platforms/" + pid + "/end-users/" + uid + "/budget"
	if r := g.Do(t, "POST", budget, pk, map[string]any{"amount_usd": 1}); r.Status != 201 {
		t.Fatalf("budget: %d %s", r.Status, r.Body)
	}
	r := g.Do(t, "POST", budget+"/debit", pk, map[string]any{"amount_usd": 5}, "Idempotency-Key", "debit-1")
	if r.Status != 402 || r.ErrorCode() != "budget_exhausted" {
		t.Fatalf("debit over the balance: %d %s", r.Status, r.Body)
	}
	if r := g.Do(t, "POST", budget+"/topup", pk, map[string]any{"amount_usd": 10}); r.Status != 200 {
		t.Fatalf("topup: %d %s", r.Status, r.Body)
	}
	again := g.Do(t, "POST", budget+"/debit", pk, map[string]any{"amount_usd": 5}, "Idempotency-Key", "debit-1")
	if again.Status != 402 || again.ErrorCode() != "budget_exhausted" || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry of the refused debit after a top-up: %d %s (Idempotent-Replayed %q), want the 402 replayed",
			again.Status, again.Body, again.Header.Get("Idempotent-Replayed"))
	}
	if other := g.Do(t, "POST", budget+"/debit", pk, map[string]any{"amount_usd": 4}, "Idempotency-Key", "debit-1"); other.Status != 422 {
		t.Fatalf("same key, other body: %d %s, want 422", other.Status, other.Body)
	}
	var b struct {
		Balance json.Number `json:"balance_usd"`
	}
	g.Do(t, "GET", budget, pk, nil).JSON(t, &b)
	if b.Balance != "11" {
		t.Fatalf("balance %s after the replayed refusal, want 11", b.Balance)
	}
	// A validation refusal is not remembered: the request never executed.
	if r := g.Do(t, "POST", budget+"/debit", pk, map[string]any{"amount_usd": -1}, "Idempotency-Key", "debit-2"); r.Status != 400 {
		t.Fatalf("negative debit: %d %s", r.Status, r.Body)
	}
	if r := g.Do(t, "POST", budget+"/debit", pk, map[string]any{"amount_usd": 2}, "Idempotency-Key", "debit-2"); r.Status != 200 {
		t.Fatalf("the key of a validation refusal, used for a valid debit: %d %s", r.Status, r.Body)
	}
}

// The per-call log shows what the ledgers charged: the budget's usage
// entry (cost with the platform's markup) and the wallet's debit, for the
// same request, exactly.
func TestCallLogAgreesWithTheLedgers(t *testing.T) {
	e := newInferenceEnv(t, mockllm.DefaultConfig(), 50)
	if r := e.g.Do(t, "PATCH", "/admin/v1/platforms/"+e.pid, edgetest.AdminKey, map[string]any{"markup_pct": 33.3}); r.Status != 200 {
		t.Fatalf("markup: %d %s", r.Status, r.Body)
	}
	r := e.g.Do(t, "POST", "/v1/chat/completions", e.uk, jsonRaw(`{"model":"gpt-4o-mini","max_tokens":50,"messages":[{"role":"user","content":"hello there"}]}`))
	if r.Status != 200 {
		t.Fatalf("chat: %d %s", r.Status, r.Body)
	}
	rid := r.Header.Get("X-Request-Id")
	var usage, wallet json.Number
	for _, le := range e.ledger(t, "/v1/platforms/"+e.pid+"/end-users/"+e.uid+"/budget/transactions", e.pk) {
		if le.Type == "usage" && le.RequestID == rid {
			usage = le.Amount
		}
	}
	for _, le := range e.ledger(t, "/admin/v1/platforms/"+e.pid+"/wallet/transactions", edgetest.AdminKey) {
		if le.Type == "usage" && le.RequestID == rid {
			wallet = le.Amount
		}
	}
	if usage == "" || wallet == "" {
		t.Fatalf("ledger entries for %s: budget %q wallet %q", rid, usage, wallet)
	}
	var entry struct {
		Cost         json.Number `json:"cost_usd"`
		ProviderCost json.Number `json:"provider_cost_usd"`
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		lr := e.g.Do(t, "GET", "/v1/platforms/"+e.pid+"/logs/"+rid, e.pk, nil)
		if lr.Status == 200 {
			lr.JSON(t, &entry)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("log entry %s: %d %s", rid, lr.Status, lr.Body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if nanos(t, entry.Cost) != -nanos(t, usage) || nanos(t, entry.ProviderCost) != -nanos(t, wallet) {
		t.Fatalf("log cost %s / provider cost %s; ledgers charged %s / %s", entry.Cost, entry.ProviderCost, usage, wallet)
	}
	if nanos(t, entry.Cost) <= nanos(t, entry.ProviderCost) {
		t.Fatalf("a 33.3%% markup charged %s on a provider cost of %s", entry.Cost, entry.ProviderCost)
	}
}

// A graceful shutdown whose drain ends while a stream is still running
// ends the stream and settles what it produced before the actors stop:
// the usage entry is there, nothing stays reserved.
func TestShutdownSettlesStreamsStillRunning(t *testing.T) {
	cfg := mockllm.DefaultConfig()
	cfg.Tokens = 2000
	cfg.TokensPerSecond = 100 // 20 s of stream: still running at shutdown
	e := newInferenceEnv(t, cfg, 50)
	resp := e.openStream(t, `{"model":"gpt-4o-mini","stream":true,"max_tokens":3000,"messages":[{"role":"user","content":"talk"}]}`)
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	for events := 0; events < 5; {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, "data: {") {
			events++
		}
	}
	rid := resp.Header.Get("X-Request-Id")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_ = e.g.Server.Shutdown(ctx) // the drain times out: the stream is still open
	// The server is down; read the ledger from the actor directly.
	actx, acancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer acancel()
	res, err := e.g.Actors.Ask(actx, actors.EndUserActor(ids.PlatformID(e.pid), ids.EndUserID(e.uid)), &pb.ListLedger{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var usage *pb.LedgerEntry
	for _, le := range res.(*pb.LedgerPage).Entries {
		if le.Type == actors.EntryUsage && le.RequestId == rid {
			usage = le
		}
	}
	if usage == nil || usage.CompletionTokens == 0 {
		t.Fatalf("no usage entry for the stream cut by the shutdown (%v)", usage)
	}
	b, err := e.g.Actors.Ask(actx, actors.EndUserActor(ids.PlatformID(e.pid), ids.EndUserID(e.uid)), &pb.GetBudget{})
	if err != nil {
		t.Fatal(err)
	}
	if r := b.(*pb.BudgetView).ReservedNanos; r != 0 {
		t.Fatalf("%d still reserved after the shutdown settled the stream", r)
	}
}

// A reasoning model's hidden reasoning tokens are bounded by
// max_completion_tokens and billed inside completion_tokens: the
// reservation is the prompt estimate plus max_completion_tokens at the
// output price (a budget one nano-USD short of it refuses the call before
// any upstream request), and the settlement is the reported usage at the
// catalog's prices.
func TestReasoningModelReservesItsCompletionBoundAndBillsReportedUsage(t *testing.T) {
	m, err := catalog.Lookup("o4-mini")
	if err != nil {
		t.Fatal(err)
	}
	body := `{"model":"o4-mini","max_completion_tokens":1500,"reasoning_effort":"high","messages":[{"role":"user","content":"think"}]}`
	worst, err := m.Cost(int64(len(body))/3+16, 1500)
	if err != nil {
		t.Fatal(err)
	}
	e := newInferenceEnv(t, mockllm.DefaultConfig(), -1)
	budget := "/v1/platforms/" + e.pid + "/end-users/" + e.uid + "/budget"
	if r := e.g.Do(t, "POST", budget, e.pk, map[string]any{"amount_usd": jsonRaw(money.Nanos(worst - 1).String())}); r.Status != 201 {
		t.Fatalf("budget: %d %s", r.Status, r.Body)
	}
	before := e.mock.Stats().Total
	if st, b := e.postChat(t, body); st != 402 {
		t.Fatalf("a budget one nano-USD under the worst case: %d %s, want 402", st, b)
	}
	if e.mock.Stats().Total != before {
		t.Fatal("the refused call reached the upstream")
	}
	if r := e.g.Do(t, "POST", budget+"/topup", e.pk, map[string]any{"amount_usd": jsonRaw("0.000000001")}); r.Status != 200 {
		t.Fatalf("topup: %d %s", r.Status, r.Body)
	}
	st, b := e.postChat(t, body)
	if st != 200 {
		t.Fatalf("the worst case exactly covered: %d %s", st, b)
	}
	var resp struct {
		Usage struct {
			Prompt     int64 `json:"prompt_tokens"`
			Completion int64 `json:"completion_tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal([]byte(b), &resp); err != nil || resp.Usage.Completion == 0 {
		t.Fatalf("usage in %s: %v", b, err)
	}
	want, _ := m.Cost(resp.Usage.Prompt, resp.Usage.Completion)
	for _, le := range e.ledger(t, budget+"/transactions", e.pk) {
		if le.Type == "usage" {
			if got := -nanos(t, le.Amount); got != want {
				t.Fatalf("settled %d nano-USD for %d+%d tokens, want %d", got, resp.Usage.Prompt, resp.Usage.Completion, want)
			}
			return
		}
	}
	t.Fatal("no usage entry")
}
