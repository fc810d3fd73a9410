package edge_test

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/assistiv/gateway/edge"
	"github.com/assistiv/gateway/edge/edgetest"
	"github.com/assistiv/gateway/internal/clock"
	"github.com/assistiv/gateway/mockllm"
	"github.com/assistiv/gateway/mockllm/mocktest"
	"github.com/assistiv/gateway/persistence"
)

type respEnv struct {
	g    *edgetest.Gateway
	mock *mockllm.Server
	clk  *clock.Fake
	p    platform
	u    endUser
}

func newRespEnv(t *testing.T) *respEnv {
	t.Helper()
	e := &respEnv{clk: clock.NewFake(time.Now())}
	var mockURL string
	mockURL, e.mock = mocktest.Start(t, mockllm.DefaultConfig())
	e.g = edgetest.Start(t, edgetest.Options{Clock: e.clk, EdgeConfig: func(c *edge.Config) { c.ResponseRetention = 24 * time.Hour }})
	e.p = newPlatform(t, e.g, "Responses")
	wantStatus(t, "provider", e.g.Do(t, "PUT", "/admin/v1/platforms/"+e.p.id+"/llm-providers/openai", edgetest.AdminKey,
		map[string]any{"api_key": "sk-upstream-key", "base_url": mockURL, "enabled": true}), 200)
	wantStatus(t, "wallet", e.g.Do(t, "POST", "/admin/v1/platforms/"+e.p.id+"/wallet/topup", edgetest.AdminKey, map[string]any{"amount_usd": 100}), 200)
	e.u = e.p.endUser(t, e.g, "u")
	return e
}

// turn posts one Responses turn continuing prev and returns its id and
// the number of messages the upstream received.
func (e *respEnv) turn(t *testing.T, prev, text string) (string, int) {
	t.Helper()
	body := map[string]any{"model": "gpt-4o-mini", "input": text, "max_output_tokens": 16}
	if prev != "" {
		body["previous_response_id"] = prev
	}
	r := wantStatus(t, "POST /v1/responses", e.g.Do(t, "POST", "/v1/responses", e.u.key, body), 200)
	last := e.mock.LastRequests(mockllm.RouteOpenAI)
	var up struct {
		Messages []json.RawMessage `json:"messages"`
	}
	if err := json.Unmarshal(last[len(last)-1].Body, &up); err != nil {
		t.Fatal(err)
	}
	return str(r, "id"), len(up.Messages)
}

func (e *respEnv) recordSize(t *testing.T, id string) int {
	t.Helper()
	v, err := e.g.Store.Get(persistence.ResponseKey(e.p.id, e.u.id, id))
	if err != nil {
		t.Fatalf("record of %s: %v", id, err)
	}
	return len(v)
}

// Each stored response holds its own turn only: along a chain of 40
// turns the records do not grow (a record holding the whole conversation
// would make storage quadratic), while the upstream still receives the
// whole conversation. A deleted turn drops out of the conversations
// continuing it.
func TestResponseChainStoresEachTurnOnce(t *testing.T) {
	e := newRespEnv(t)
	var chain []string
	prev := ""
	for i := 0; i < 40; i++ {
		id, sent := e.turn(t, prev, "turn")
		if want := 2*i + 1; sent != want {
			t.Fatalf("turn %d sent %d messages upstream, want %d (the whole conversation)", i, sent, want)
		}
		chain, prev = append(chain, id), id
	}
	first, last := e.recordSize(t, chain[1]), e.recordSize(t, chain[39])
	if last > first*2 {
		t.Fatalf("record of turn 40 is %d bytes, of turn 2 %d: records grow with the chain", last, first)
	}
	total := 0
	for _, id := range chain {
		total += e.recordSize(t, id)
	}
	t.Logf("40-turn chain: %d bytes stored (turn 2: %d, turn 40: %d)", total, first, last)

	// Delete turn 20: a turn continuing turn 40 sees turns 21..40 only.
	wantStatus(t, "DELETE", e.g.Do(t, "DELETE", "/v1/responses/"+chain[19], e.u.key, nil), 200)
	if _, sent := e.turn(t, chain[39], "after delete"); sent != 2*20+1 {
		t.Fatalf("after deleting turn 20 the upstream received %d messages, want %d", sent, 41)
	}
}

// Stored responses expire after ResponseRetention: GET and
// previous_response_id answer 404, and the sweeper deletes them.
func TestStoredResponsesExpireAndAreSwept(t *testing.T) {
	e := newRespEnv(t)
	old, _ := e.turn(t, "", "old")
	e.clk.Advance(23 * time.Hour)
	fresh, _ := e.turn(t, "", "fresh")
	if n, err := e.g.Server.SweepResponses(e.clk.Now()); err != nil || n != 0 {
		t.Fatalf("SweepResponses before expiry = %d, %v", n, err)
	}
	e.clk.Advance(2 * time.Hour) // old is 25 h old, fresh 2 h
	wantError(t, "GET expired", e.g.Do(t, "GET", "/v1/responses/"+old, e.u.key, nil), 404, "response_not_found")
	wantError(t, "continue expired", e.g.Do(t, "POST", "/v1/responses", e.u.key,
		map[string]any{"model": "gpt-4o-mini", "input": "x", "previous_response_id": old}), 404, "previous_response_not_found")
	if n, err := e.g.Server.SweepResponses(e.clk.Now()); err != nil || n != 1 {
		t.Fatalf("SweepResponses after expiry = %d, %v; want 1", n, err)
	}
	if _, err := e.g.Store.Get(persistence.ResponseKey(e.p.id, e.u.id, old)); err == nil {
		t.Fatal("the expired record is still stored")
	}
	wantStatus(t, "GET fresh", e.g.Do(t, "GET", "/v1/responses/"+fresh, e.u.key, nil), 200)
}

// A record of the earlier layout (the whole conversation in "messages")
// still continues.
func TestLegacyStoredResponseStillContinues(t *testing.T) {
	e := newRespEnv(t)
	id, _ := e.turn(t, "", "hello")
	legacy := `{"response":{"id":"` + id + `","object":"response","created_at":` + strconv.FormatInt(e.clk.Now().Unix(), 10) + `},` +
		`"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"},{"role":"user","content":"c"},{"role":"assistant","content":"d"}]}`
	if err := e.g.Store.Commit(persistence.Set(persistence.ResponseKey(e.p.id, e.u.id, id), []byte(legacy))); err != nil {
		t.Fatal(err)
	}
	if _, sent := e.turn(t, id, "next"); sent != 5 {
		t.Fatalf("continuing a legacy record sent %d messages, want 5", sent)
	}
}
