package edge_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go"
	"github.com/openai/openai-go/option"
	"github.com/openai/openai-go/responses"

	"github.com/assistiv/gateway/edge/edgetest"
	"github.com/assistiv/gateway/mockllm"
	"github.com/assistiv/gateway/persistence"
	"github.com/assistiv/gateway/providers/catalog"
)

// routeOf is the mock route a provider's requests arrive on.
func routeOf(provider string) mockllm.Route {
	switch provider {
	case "anthropic":
		return mockllm.RouteAnthropic
	case "google":
		return mockllm.RouteGemini
	}
	return mockllm.RouteOpenAI
}

// lastUpstreamBody is the body of the newest request the mock got on route.
func lastUpstreamBody(t *testing.T, m *mockllm.Server, r mockllm.Route) string {
	t.Helper()
	last, ok := m.LastRequest(r)
	if !ok {
		t.Fatalf("the mock recorded no %s request", r)
	}
	return string(last.Body)
}

var weatherTool = responses.ToolParamOfFunction("get_weather", map[string]any{
	"type":       "object",
	"properties": map[string]any{"city": map[string]any{"type": "string"}},
	"required":   []string{"city"},
}, false)

func TestResponsesThroughEveryProviderWithTheOpenAISDK(t *testing.T) {
	e := newInferenceEnv(t, mockllm.DefaultConfig(), 50)
	ctx := context.Background()
	for _, pm := range providerModels {
		t.Run(pm.provider, func(t *testing.T) {
			var raw *http.Response
			resp, err := e.client.Responses.New(ctx, responses.ResponseNewParams{
				Model:        pm.model,
				Input:        responses.ResponseNewParamsInputUnion{OfString: openai.String("Plan a trip to Tokyo")},
				Instructions: openai.String("Be brief."),
				Metadata:     map[string]string{"trip": "tokyo"},
			}, option.WithResponseInto(&raw))
			if err != nil {
				t.Fatalf("Responses.New(%s): %v", pm.model, err)
			}
			m, _ := catalog.Lookup(pm.model)
			if !strings.HasPrefix(resp.ID, "resp_") || resp.Object != "response" || resp.Status != responses.ResponseStatusCompleted || resp.Model != m.ID {
				t.Fatalf("Responses.New(%s) = id %q object %q status %q model %q", pm.model, resp.ID, resp.Object, resp.Status, resp.Model)
			}
			if resp.OutputText() == "" || len(resp.Output) != 1 || resp.Output[0].Type != "message" || resp.Output[0].Role != "assistant" {
				t.Fatalf("Responses.New(%s) output = %s", pm.model, resp.RawJSON())
			}
			if resp.Usage.InputTokens == 0 || resp.Usage.OutputTokens == 0 || resp.Usage.TotalTokens != resp.Usage.InputTokens+resp.Usage.OutputTokens {
				t.Fatalf("Responses.New(%s) usage = %+v", pm.model, resp.Usage)
			}
			if resp.Instructions.OfString != "Be brief." || resp.Metadata["trip"] != "tokyo" || resp.PreviousResponseID != "" {
				t.Fatalf("Responses.New(%s) echoes = %s", pm.model, resp.RawJSON())
			}
			// The instructions went upstream as the system prompt.
			if body := lastUpstreamBody(t, e.mock, routeOf(pm.provider)); !strings.Contains(body, "Be brief.") || !strings.Contains(body, "Plan a trip to Tokyo") {
				t.Fatalf("upstream body misses the instructions or input: %s", body)
			}
			got, err := e.client.Responses.Get(ctx, resp.ID, responses.ResponseGetParams{})
			if err != nil {
				t.Fatalf("Responses.Get(%s): %v", resp.ID, err)
			}
			if got.ID != resp.ID || got.OutputText() != resp.OutputText() || got.Usage.TotalTokens != resp.Usage.TotalTokens {
				t.Fatalf("Responses.Get = %s, want %s", got.RawJSON(), resp.RawJSON())
			}
			// Billed on both accounts under the call's request id, and logged
			// as a responses call.
			rid := raw.Header.Get("X-Request-Id")
			assertBilled(t, e, rid)
			assertLogged(t, e, rid, "responses")
		})
	}
}

// assertBilled checks that the call rid left a usage entry on the
// end-user's budget and on the platform's wallet.
func assertBilled(t *testing.T, e *inferenceEnv, rid string) {
	t.Helper()
	for _, l := range []struct{ path, key string }{
		{"/v1/platforms/" + e.pid + "/end-users/" + e.uid + "/budget/transactions", e.pk},
		{"/admin/v1/platforms/" + e.pid + "/wallet/transactions", edgetest.AdminKey},
	} {
		found := false
		for _, le := range e.ledger(t, l.path, l.key) {
			if le.Type == "usage" && le.RequestID == rid {
				found = true
				if le.PromptTokens == 0 || le.CompletionTokens == 0 || nanos(t, le.Amount) >= 0 {
					t.Errorf("%s: usage entry of %s = %+v", l.path, rid, le)
				}
			}
		}
		if !found {
			t.Errorf("%s: no usage entry for request %s", l.path, rid)
		}
	}
}

// assertLogged waits for the call's log entry and checks its kind.
func assertLogged(t *testing.T, e *inferenceEnv, rid, kind string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := e.g.Do(t, "GET", "/v1/platforms/"+e.pid+"/logs/"+rid, e.pk, nil)
		if r.Status == 200 {
			var l struct{ Kind string }
			r.JSON(t, &l)
			if l.Kind != kind {
				t.Errorf("log of %s is not a %s call: %s", rid, kind, r.Body)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log entry for %s: %d %s", rid, r.Status, r.Body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestResponsesPreviousResponseIDContinuesTheConversation(t *testing.T) {
	e := newInferenceEnv(t, mockllm.DefaultConfig(), 50)
	ctx := context.Background()
	for _, pm := range []struct{ provider, model string }{providerModels[0], providerModels[1]} {
		t.Run(pm.provider, func(t *testing.T) {
			turns := []string{"my name is Ada Lovelace", "I live in London", "what do you know about me"}
			var prev *responses.Response
			var replies []string
			for i, text := range turns {
				p := responses.ResponseNewParams{
					Model:        pm.model,
					Input:        responses.ResponseNewParamsInputUnion{OfString: openai.String(text)},
					Instructions: openai.String(fmt.Sprintf("instructions-of-turn-%d", i+1)),
				}
				if prev != nil {
					p.PreviousResponseID = openai.String(prev.ID)
				}
				r, err := e.client.Responses.New(ctx, p)
				if err != nil {
					t.Fatalf("turn %d: %v", i+1, err)
				}
				if prev != nil && r.PreviousResponseID != prev.ID {
					t.Fatalf("turn %d: previous_response_id = %q, want %q", i+1, r.PreviousResponseID, prev.ID)
				}
				body := lastUpstreamBody(t, e.mock, routeOf(pm.provider))
				// The upstream saw every earlier turn, input and output.
				for j := 0; j < i; j++ {
					if !strings.Contains(body, turns[j]) || !strings.Contains(body, replies[j]) {
						t.Fatalf("turn %d: upstream request misses turn %d (%q → %q): %s", i+1, j+1, turns[j], replies[j], body)
					}
				}
				// Instructions are not carried over.
				for j := 0; j < i; j++ {
					if strings.Contains(body, fmt.Sprintf("instructions-of-turn-%d", j+1)) {
						t.Fatalf("turn %d: instructions of turn %d were carried over: %s", i+1, j+1, body)
					}
				}
				replies = append(replies, r.OutputText())
				prev = r
			}
		})
	}
}

func TestResponsesToolCallRoundTripWithFunctionCallOutput(t *testing.T) {
	e := newInferenceEnv(t, mockllm.DefaultConfig(), 50)
	ctx := context.Background()
	for _, pm := range providerModels {
		t.Run(pm.provider, func(t *testing.T) {
			first, err := e.client.Responses.New(ctx, responses.ResponseNewParams{
				Model: pm.model,
				Input: responses.ResponseNewParamsInputUnion{OfInputItemList: responses.ResponseInputParam{
					responses.ResponseInputItemParamOfMessage("What is the weather in Paris?", responses.EasyInputMessageRoleUser),
				}},
				Tools: []responses.ToolUnionParam{weatherTool},
			})
			if err != nil {
				t.Fatalf("tool call: %v", err)
			}
			var call *responses.ResponseOutputItemUnion
			for i := range first.Output {
				if first.Output[i].Type == "function_call" {
					call = &first.Output[i]
				}
			}
			if call == nil || call.Name != "get_weather" || call.CallID == "" || !strings.HasPrefix(call.ID, "fc_") || call.Status != "completed" {
				t.Fatalf("want one get_weather function_call, got %s", first.RawJSON())
			}
			var args map[string]any
			if err := json.Unmarshal([]byte(call.Arguments), &args); err != nil || args["city"] == nil {
				t.Fatalf("arguments %q: %v", call.Arguments, err)
			}
			if first.Tools[0].Name != "get_weather" || first.Tools[0].Type != "function" {
				t.Fatalf("tools echo: %s", first.RawJSON())
			}

			// Stateful: the result refers to the call through previous_response_id.
			second, err := e.client.Responses.New(ctx, responses.ResponseNewParams{
				Model:              pm.model,
				PreviousResponseID: openai.String(first.ID),
				Input: responses.ResponseNewParamsInputUnion{OfInputItemList: responses.ResponseInputParam{
					responses.ResponseInputItemParamOfFunctionCallOutput(call.CallID, "sunny, 21C"),
				}},
				Tools: []responses.ToolUnionParam{weatherTool},
			})
			if err != nil {
				t.Fatalf("function_call_output: %v", err)
			}
			if !strings.Contains(second.OutputText(), "sunny, 21C") {
				t.Fatalf("the answer does not use the tool result: %q", second.OutputText())
			}

			// Stateless: the client replays the items itself, with store off.
			fc := call.AsFunctionCall().ToParam()
			third, err := e.client.Responses.New(ctx, responses.ResponseNewParams{
				Model: pm.model,
				Store: openai.Bool(false),
				Input: responses.ResponseNewParamsInputUnion{OfInputItemList: responses.ResponseInputParam{
					responses.ResponseInputItemParamOfMessage("What is the weather in Paris?", responses.EasyInputMessageRoleUser),
					{OfFunctionCall: &fc},
					responses.ResponseInputItemParamOfFunctionCallOutput(call.CallID, "rainy, 12C"),
				}},
				Tools: []responses.ToolUnionParam{weatherTool},
			})
			if err != nil {
				t.Fatalf("replayed items: %v", err)
			}
			if !strings.Contains(third.OutputText(), "rainy, 12C") {
				t.Fatalf("the answer does not use the replayed tool result: %q", third.OutputText())
			}
		})
	}
}

func TestResponsesJSONSchemaTextFormat(t *testing.T) {
	e := newInferenceEnv(t, mockllm.DefaultConfig(), 50)
	for _, pm := range providerModels {
		r, err := e.client.Responses.New(context.Background(), responses.ResponseNewParams{
			Model: pm.model,
			Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Name a city and its country.")},
			Text: responses.ResponseTextConfigParam{Format: responses.ResponseFormatTextConfigUnionParam{
				OfJSONSchema: &responses.ResponseFormatTextJSONSchemaConfigParam{Name: "city", Schema: map[string]any{
					"type":       "object",
					"properties": map[string]any{"city": map[string]any{"type": "string"}, "country": map[string]any{"type": "string"}},
					"required":   []string{"city", "country"},
				}},
			}},
		})
		if err != nil {
			t.Fatalf("%s: json_schema: %v", pm.model, err)
		}
		var out map[string]any
		if err := json.Unmarshal([]byte(r.OutputText()), &out); err != nil || out["city"] == nil || out["country"] == nil {
			t.Fatalf("%s: output %q does not fit the schema", pm.model, r.OutputText())
		}
		if r.Text.Format.Type != "json_schema" {
			t.Fatalf("%s: text.format echo: %s", pm.model, r.RawJSON())
		}
	}
}

// streamedEvent is what a test keeps of one event.
type streamedEvent struct {
	ev responses.ResponseStreamEventUnion
	at time.Time
}

func collectStream(t *testing.T, e *inferenceEnv, p responses.ResponseNewParams) []streamedEvent {
	t.Helper()
	st := e.client.Responses.NewStreaming(context.Background(), p)
	var out []streamedEvent
	for st.Next() {
		out = append(out, streamedEvent{st.Current(), time.Now()})
	}
	if err := st.Err(); err != nil {
		t.Fatalf("stream: %v", err)
	}
	for i, ev := range out {
		if ev.ev.SequenceNumber != int64(i) {
			t.Fatalf("event %d (%s) has sequence_number %d", i, ev.ev.Type, ev.ev.SequenceNumber)
		}
	}
	return out
}

// compress replaces runs of one event type by one "type*" entry.
func compress(evs []streamedEvent) []string {
	var out []string
	for i, ev := range evs {
		switch {
		case i > 0 && evs[i-1].ev.Type == ev.ev.Type:
			out[len(out)-1] = strings.TrimSuffix(out[len(out)-1], "*") + "*"
		default:
			out = append(out, ev.ev.Type)
		}
	}
	return out
}

func TestResponsesStreamingEventSequence(t *testing.T) {
	cfg := mockllm.DefaultConfig()
	cfg.TokensPerSecond = 200 // 20 tokens over ~100 ms: events must arrive spread out
	e := newInferenceEnv(t, cfg, 50)
	ctx := context.Background()
	for _, pm := range providerModels {
		t.Run(pm.provider, func(t *testing.T) {
			evs := collectStream(t, e, responses.ResponseNewParams{
				Model: pm.model,
				Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Plan a trip to Tokyo")},
			})
			want := []string{
				"response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
				"response.output_text.delta*", "response.output_text.done", "response.content_part.done",
				"response.output_item.done", "response.completed",
			}
			if got := compress(evs); strings.Join(got, " ") != strings.Join(want, " ") {
				t.Fatalf("event sequence:\n got %v\nwant %v", got, want)
			}
			var text strings.Builder
			var deltas []time.Time
			for _, ev := range evs {
				if ev.ev.Type == "response.output_text.delta" {
					text.WriteString(ev.ev.Delta.OfString)
					deltas = append(deltas, ev.at)
				}
			}
			created, done := evs[0].ev.Response, evs[len(evs)-1].ev.Response
			if created.Status != "in_progress" || len(created.Output) != 0 || created.ID != done.ID {
				t.Fatalf("response.created = %s", created.RawJSON())
			}
			if done.Status != "completed" || done.OutputText() != text.String() || done.Usage.OutputTokens == 0 || done.Usage.InputTokens == 0 {
				t.Fatalf("response.completed = %s; deltas gave %q", done.RawJSON(), text.String())
			}
			if len(deltas) < 5 {
				t.Fatalf("%d text deltas", len(deltas))
			}
			if spread := deltas[len(deltas)-1].Sub(deltas[0]); spread < 30*time.Millisecond {
				t.Fatalf("deltas arrived within %v: buffered, not streamed", spread)
			}
			// The stored response is the completed one, at once.
			got, err := e.client.Responses.Get(ctx, done.ID, responses.ResponseGetParams{})
			if err != nil || got.Status != "completed" || got.OutputText() != text.String() {
				t.Fatalf("Get after stream = %v, %v", got, err)
			}

			// A streamed tool call.
			evs = collectStream(t, e, responses.ResponseNewParams{
				Model: pm.model,
				Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("What is the weather in Paris?")},
				Tools: []responses.ToolUnionParam{weatherTool},
			})
			var args strings.Builder
			var doneArgs string
			for _, ev := range evs {
				switch ev.ev.Type {
				case "response.output_item.added":
					if ev.ev.Item.Type == "function_call" && (ev.ev.Item.Name != "get_weather" || ev.ev.Item.CallID == "") {
						t.Fatalf("function_call added = %s", ev.ev.RawJSON())
					}
				case "response.function_call_arguments.delta":
					args.WriteString(ev.ev.Delta.OfString)
				case "response.function_call_arguments.done":
					doneArgs = ev.ev.Arguments
				}
			}
			seq := strings.Join(compress(evs), " ")
			if !strings.Contains(seq, "response.output_item.added response.function_call_arguments.delta") ||
				!strings.Contains(seq, "response.function_call_arguments.done response.output_item.done response.completed") {
				t.Fatalf("tool call event sequence: %s", seq)
			}
			final := evs[len(evs)-1].ev.Response
			var fc *responses.ResponseOutputItemUnion
			for i := range final.Output {
				if final.Output[i].Type == "function_call" {
					fc = &final.Output[i]
				}
			}
			if fc == nil || args.String() != doneArgs || fc.Arguments != doneArgs || !json.Valid([]byte(doneArgs)) {
				t.Fatalf("streamed arguments %q, done %q, final %s", args.String(), doneArgs, final.RawJSON())
			}
		})
	}
}

func TestResponsesOfAnotherEndUserOrPlatformAreNotFound(t *testing.T) {
	e := newInferenceEnv(t, mockllm.DefaultConfig(), 50)
	ctx := context.Background()
	mine, err := e.client.Responses.New(ctx, responses.ResponseNewParams{
		Model: "gpt-4o-mini", Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("a secret of mine")},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Another end-user of the same platform, and one of another platform.
	uid2, uk2 := e.g.CreateEndUser(t, e.pid, e.pk, "neighbour")
	if r := e.g.Do(t, "POST", "/v1/platforms/"+e.pid+"/end-users/"+uid2+"/budget", e.pk, map[string]any{"amount_usd": 5}); r.Status != 201 {
		t.Fatalf("budget: %d %s", r.Status, r.Body)
	}
	pid3, pk3 := e.g.CreatePlatform(t, "other")
	_, uk3 := e.g.CreateEndUser(t, pid3, pk3, "stranger")
	body := map[string]any{"model": "gpt-4o-mini", "input": "continue", "previous_response_id": mine.ID}
	for name, key := range map[string]string{"same platform": uk2, "other platform": uk3} {
		if r := e.g.Do(t, "GET", "/v1/responses/"+mine.ID, key, nil); r.Status != 404 {
			t.Errorf("%s: GET another's response = %d %s", name, r.Status, r.Body)
		}
		if r := e.g.Do(t, "DELETE", "/v1/responses/"+mine.ID, key, nil); r.Status != 404 {
			t.Errorf("%s: DELETE another's response = %d %s", name, r.Status, r.Body)
		}
		before := e.mock.Requests()
		if r := e.g.Do(t, "POST", "/v1/responses", key, body); r.Status != 404 || r.ErrorCode() != "previous_response_not_found" {
			t.Errorf("%s: previous_response_id of another = %d %s", name, r.Status, r.Body)
		}
		if e.mock.Requests() != before {
			t.Errorf("%s: the refused continuation reached the upstream", name)
		}
	}
	// A platform key is refused on every Responses route.
	for _, m := range []struct{ method, path string }{{"POST", "/v1/responses"}, {"GET", "/v1/responses/" + mine.ID}, {"DELETE", "/v1/responses/" + mine.ID}} {
		if r := e.g.Do(t, m.method, m.path, e.pk, body); r.Status != 403 || r.ErrorCode() != "wrong_key_type" {
			t.Errorf("platform key on %s %s = %d %s", m.method, m.path, r.Status, r.Body)
		}
	}
	// Untouched by all that; then deleted by its owner, durably gone.
	if _, err := e.client.Responses.Get(ctx, mine.ID, responses.ResponseGetParams{}); err != nil {
		t.Fatalf("owner's GET after the refusals: %v", err)
	}
	r := e.g.Do(t, "DELETE", "/v1/responses/"+mine.ID, e.uk, nil)
	if r.Status != 200 || !strings.Contains(string(r.Body), `"deleted":true`) {
		t.Fatalf("DELETE = %d %s", r.Status, r.Body)
	}
	var apierr *openai.Error
	if _, err := e.client.Responses.Get(ctx, mine.ID, responses.ResponseGetParams{}); !errors.As(err, &apierr) || apierr.StatusCode != 404 {
		t.Fatalf("GET after DELETE: %v", err)
	}
	if err := e.client.Responses.Delete(ctx, mine.ID); !errors.As(err, &apierr) || apierr.StatusCode != 404 {
		t.Fatalf("second DELETE: %v", err)
	}
	if r := e.g.Do(t, "GET", "/v1/responses/not-an-id", e.uk, nil); r.Status != 404 {
		t.Fatalf("GET of a malformed id = %d %s", r.Status, r.Body)
	}
}

func TestResponsesWithStoreFalseLeaveNothingRetrievable(t *testing.T) {
	e := newInferenceEnv(t, mockllm.DefaultConfig(), 50)
	ctx := context.Background()
	r, err := e.client.Responses.New(ctx, responses.ResponseNewParams{
		Model: "gpt-4o-mini", Store: openai.Bool(false),
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("forget me")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.OutputText() == "" || strings.Contains(r.RawJSON(), `"store":true`) {
		t.Fatalf("store=false response: %s", r.RawJSON())
	}
	evs := collectStream(t, e, responses.ResponseNewParams{
		Model: "claude-haiku-4-5", Store: openai.Bool(false),
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("forget me too")},
	})
	streamed := evs[len(evs)-1].ev.Response.ID
	for _, id := range []string{r.ID, streamed} {
		if hr := e.g.Do(t, "GET", "/v1/responses/"+id, e.uk, nil); hr.Status != 404 {
			t.Errorf("GET of an unstored response = %d %s", hr.Status, hr.Body)
		}
		if hr := e.g.Do(t, "POST", "/v1/responses", e.uk, map[string]any{"model": "gpt-4o-mini", "input": "x", "previous_response_id": id}); hr.Status != 404 {
			t.Errorf("previous_response_id of an unstored response = %d %s", hr.Status, hr.Body)
		}
	}
	n := 0
	if err := e.g.Store.ScanPrefix([]byte{persistence.FamilyResponse}, false, func(k, v []byte) bool { n++; return true }); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("store=false left %d records", n)
	}
}

func TestResponsesMidStreamDisconnectBillsThePartialOutput(t *testing.T) {
	cfg := mockllm.DefaultConfig()
	cfg.Tokens = 200
	cfg.TokensPerSecond = 100 // two seconds of stream
	e := newInferenceEnv(t, cfg, 50)
	req, _ := http.NewRequest("POST", e.g.URL+"/v1/responses", strings.NewReader(
		`{"model":"gpt-4o-mini","stream":true,"max_output_tokens":300,"input":"talk a lot"}`))
	req.Header.Set("Authorization", "Bearer "+e.uk)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	rid := resp.Header.Get("X-Request-Id")
	rd := bufio.NewReader(resp.Body)
	var id string
	for deltas := 0; deltas < 5; {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("read stream: %v", err)
		}
		if strings.HasPrefix(line, "event: response.output_text.delta") {
			deltas++
		}
		if id == "" && strings.HasPrefix(line, "data: ") {
			var ev struct {
				Response struct{ ID string } `json:"response"`
			}
			_ = json.Unmarshal([]byte(line[6:]), &ev)
			id = ev.Response.ID
		}
	}
	resp.Body.Close() // leave mid-stream
	deadline := time.Now().Add(10 * time.Second)
	for {
		var usage *ledgerEntry
		for _, le := range e.ledger(t, "/v1/platforms/"+e.pid+"/end-users/"+e.uid+"/budget/transactions", e.pk) {
			if le.Type == "usage" && le.RequestID == rid {
				usage = &le
			}
		}
		if usage != nil {
			if usage.CompletionTokens <= 0 || usage.CompletionTokens >= 200 {
				t.Fatalf("partial stream billed %d completion tokens; want between 1 and 199", usage.CompletionTokens)
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
	// The response the client left is kept, marked cancelled.
	for {
		r := e.g.Do(t, "GET", "/v1/responses/"+id, e.uk, nil)
		if r.Status == 200 {
			var o struct{ Status string }
			r.JSON(t, &o)
			if o.Status != "cancelled" {
				t.Fatalf("left response status %q: %s", o.Status, r.Body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("left response %s not stored: %d %s", id, r.Status, r.Body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// truncatingUpstream speaks OpenAI's streaming format, then drops the
// connection after a few chunks: a mid-stream upstream failure.
func truncatingUpstream(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i, word := range []string{"partial ", "output ", "then "} {
			fmt.Fprintf(w, "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{%s\"content\":%q},\"finish_reason\":null}]}\n\n",
				map[bool]string{true: `"role":"assistant",`}[i == 0], word)
		}
		w.(http.Flusher).Flush()
		// No [DONE]: the body just ends.
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestResponsesMidStreamUpstreamFailureEndsWithResponseFailed(t *testing.T) {
	e := newInferenceEnv(t, mockllm.DefaultConfig(), 50)
	if r := e.g.Do(t, "PUT", "/admin/v1/platforms/"+e.pid+"/llm-providers/openai", edgetest.AdminKey,
		map[string]any{"api_key": canaryProviderKey, "base_url": truncatingUpstream(t), "enabled": true}); r.Status != 200 {
		t.Fatalf("configure: %d %s", r.Status, r.Body)
	}
	r := e.g.Do(t, "POST", "/v1/responses", e.uk, map[string]any{"model": "gpt-4o-mini", "input": "hi", "stream": true})
	if r.Status != 200 {
		t.Fatalf("stream: %d %s", r.Status, r.Body)
	}
	var types []string
	var failed struct {
		Response struct {
			ID     string
			Status string
			Error  struct{ Code, Message string }
		}
	}
	for _, block := range bytes.Split(bytes.TrimSpace(r.Body), []byte("\n\n")) {
		lines := strings.SplitN(string(block), "\n", 2)
		typ := strings.TrimPrefix(lines[0], "event: ")
		types = append(types, typ)
		if typ == "response.failed" {
			if err := json.Unmarshal([]byte(strings.TrimPrefix(lines[1], "data: ")), &failed); err != nil {
				t.Fatal(err)
			}
		}
	}
	seq := strings.Join(types, " ")
	if !strings.Contains(seq, "response.output_text.delta error response.failed") || strings.Contains(seq, "response.completed") {
		t.Fatalf("event sequence: %s", seq)
	}
	if failed.Response.Status != "failed" || failed.Response.Error.Code == "" {
		t.Fatalf("response.failed: %+v", failed)
	}
	// The three chunks relayed are billed; the failed response is stored.
	assertBilled(t, e, r.Header.Get("X-Request-Id"))
	var got struct{ Status string }
	g := e.g.Do(t, "GET", "/v1/responses/"+failed.Response.ID, e.uk, nil)
	g.JSON(t, &got)
	if g.Status != 200 || got.Status != "failed" {
		t.Fatalf("GET failed response: %d %s", g.Status, g.Body)
	}
}

func TestResponsesRefuseWhatTheyCannotTranslate(t *testing.T) {
	e := newInferenceEnv(t, mockllm.DefaultConfig(), 50)
	before := e.mock.Requests()
	for _, c := range []struct {
		name string
		body string
		code string
	}{
		{"no input", `{"model":"gpt-4o-mini"}`, "missing_field"},
		{"hosted tool item", `{"model":"gpt-4o-mini","input":[{"type":"web_search_call","id":"ws_1","status":"completed"}]}`, "invalid_input"},
		{"reasoning item", `{"model":"gpt-4o-mini","input":[{"type":"reasoning","id":"rs_1","summary":[]}]}`, "invalid_input"},
		{"unknown field", `{"model":"gpt-4o-mini","input":"x","frobnicate":1}`, "unknown_parameter"},
		{"conversation", `{"model":"gpt-4o-mini","input":"x","conversation":"conv_1"}`, "unsupported_parameter"},
		{"prompt template", `{"model":"gpt-4o-mini","input":"x","prompt":{"id":"pmpt_1"}}`, "unsupported_parameter"},
		{"reasoning effort on claude", `{"model":"claude-haiku-4-5","input":"x","reasoning":{"effort":"high"}}`, "unsupported_parameter"},
		{"reasoning effort on gemini", `{"model":"gemini-2.5-flash","input":"x","reasoning":{"effort":"low"}}`, "unsupported_parameter"},
		{"reasoning summary", `{"model":"gpt-5-mini","input":"x","reasoning":{"summary":"auto"}}`, "unsupported_parameter"},
		{"logprobs", `{"model":"gpt-4o-mini","input":"x","top_logprobs":3}`, "unsupported_parameter"},
		{"logprobs include", `{"model":"gpt-4o-mini","input":"x","include":["message.output_text.logprobs"]}`, "unsupported_parameter"},
		{"priority tier", `{"model":"gpt-4o-mini","input":"x","service_tier":"priority"}`, "unsupported_parameter"},
		{"verbosity", `{"model":"gpt-4o-mini","input":"x","text":{"verbosity":"low"}}`, "unsupported_parameter"},
		{"input file", `{"model":"gpt-4o-mini","input":[{"role":"user","content":[{"type":"input_file","file_id":"f"}]}]}`, "invalid_input"},
		{"hosted tool", `{"model":"gpt-4o-mini","input":"x","tools":[{"type":"web_search_preview"}]}`, "unsupported_tool"},
		{"background", `{"model":"gpt-4o-mini","input":"x","background":true}`, "unsupported_parameter"},
		{"bad format", `{"model":"gpt-4o-mini","input":"x","text":{"format":{"type":"yaml"}}}`, "invalid_field"},
		{"unknown model", `{"model":"no-such-model","input":"x"}`, "model_not_found"},
		{"malformed", `{"model":`, "invalid_json"},
	} {
		r := e.g.Do(t, "POST", "/v1/responses", e.uk, c.body)
		if r.Status/100 != 4 || r.ErrorCode() != c.code {
			t.Errorf("%s: %d %s, want code %s", c.name, r.Status, r.Body, c.code)
		}
		if c.code == "unsupported_parameter" || c.code == "unknown_parameter" {
			wantError(t, c.name, r, 400, c.code)
			// The 400 names the field it refuses.
			var body map[string]any
			_ = json.Unmarshal([]byte(c.body), &body)
			named := false
			for k := range body {
				if k != "model" && k != "input" && strings.Contains(string(r.Body), k) {
					named = true
				}
			}
			if !named {
				t.Errorf("%s: the message does not name the field: %s", c.name, r.Body)
			}
		}
	}
	if e.mock.Requests() != before {
		t.Fatalf("refused requests reached the upstream")
	}
}

func TestResponsesAcceptTheFieldsTheyHonourAndTranslateSafetyIdentifier(t *testing.T) {
	e := newInferenceEnv(t, mockllm.DefaultConfig(), 50)
	r := e.g.Do(t, "POST", "/v1/responses", e.uk, `{"model":"gpt-4o-mini","input":"hi",
		"safety_identifier":"hashed-user-7","include":["reasoning.encrypted_content","web_search_call.action.sources"],
		"truncation":"auto","service_tier":"auto","prompt_cache_key":"k1","prompt_cache_retention":"24h",
		"max_tool_calls":3,"text":{"format":{"type":"text"},"verbosity":"medium"},"top_logprobs":0,
		"reasoning":{},"background":false,"conversation":null,"store":true}`)
	if r.Status != 200 {
		t.Fatalf("accepted fields: %d %s", r.Status, r.Body)
	}
	if body := lastUpstreamBody(t, e.mock, mockllm.RouteOpenAI); !strings.Contains(body, `"user":"hashed-user-7"`) {
		t.Fatalf("safety_identifier did not reach the upstream as user: %s", body)
	}
	// reasoning.effort becomes chat reasoning_effort for OpenAI and xAI.
	for _, c := range []struct{ model, effort string }{{"gpt-5-mini", "low"}, {"grok-3-mini", "high"}} {
		r = e.g.Do(t, "POST", "/v1/responses", e.uk, `{"model":"`+c.model+`","input":"think","reasoning":{"effort":"`+c.effort+`","summary":null}}`)
		if body := lastUpstreamBody(t, e.mock, mockllm.RouteOpenAI); r.Status != 200 || !strings.Contains(body, `"reasoning_effort":"`+c.effort+`"`) {
			t.Fatalf("%s reasoning.effort: %d %s, upstream %s", c.model, r.Status, r.Body, body)
		}
	}
	// user wins over safety_identifier when both are given.
	r = e.g.Do(t, "POST", "/v1/responses", e.uk, `{"model":"gpt-4o-mini","input":"hi again","user":"u-1","safety_identifier":"s-1"}`)
	if body := lastUpstreamBody(t, e.mock, mockllm.RouteOpenAI); r.Status != 200 || !strings.Contains(body, `"user":"u-1"`) {
		t.Fatalf("user and safety_identifier: %d, upstream %s", r.Status, body)
	}
}
