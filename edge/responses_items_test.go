package edge_test

import (
	"context"
	"strings"
	"testing"

	"github.com/openai/openai-go"
	"github.com/openai/openai-go/responses"

	"github.com/assistiv/gateway/mockllm"
)

// textAndToolTurn asks model for the weather with the mock answering text
// and a tool call in one turn, and returns the response with its message
// and function_call items.
func textAndToolTurn(t *testing.T, e *inferenceEnv, model string, store bool) (resp *responses.Response, msg, call responses.ResponseOutputItemUnion) {
	t.Helper()
	resp, err := e.client.Responses.New(context.Background(), responses.ResponseNewParams{
		Model: model,
		Store: openai.Bool(store),
		Input: responses.ResponseNewParamsInputUnion{OfInputItemList: responses.ResponseInputParam{
			responses.ResponseInputItemParamOfMessage("What is the weather in Paris?", responses.EasyInputMessageRoleUser),
		}},
		Tools: []responses.ToolUnionParam{weatherTool},
	})
	if err != nil {
		t.Fatalf("text and tool turn (%s): %v", model, err)
	}
	for _, it := range resp.Output {
		switch it.Type {
		case "message":
			msg = it
		case "function_call":
			call = it
		}
	}
	if len(resp.Output) != 2 || msg.Type == "" || call.Type == "" || resp.OutputText() == "" || !strings.HasPrefix(msg.ID, "msg_") {
		t.Fatalf("want a message then a function_call: %s", resp.RawJSON())
	}
	return resp, msg, call
}

// referencingInput is the AI SDK's second step: the user turn, the
// assistant's earlier message by reference, the call (inline or by
// reference) and its output.
func referencingInput(msgID string, call responses.ResponseOutputItemUnion, callByRef bool, result string) responses.ResponseInputParam {
	in := responses.ResponseInputParam{
		responses.ResponseInputItemParamOfMessage("What is the weather in Paris?", responses.EasyInputMessageRoleUser),
		responses.ResponseInputItemParamOfItemReference(msgID),
	}
	if callByRef {
		in = append(in, responses.ResponseInputItemParamOfItemReference(call.ID))
	} else {
		fc := call.AsFunctionCall().ToParam()
		in = append(in, responses.ResponseInputItemUnionParam{OfFunctionCall: &fc})
	}
	return append(in, responses.ResponseInputItemParamOfFunctionCallOutput(call.CallID, result))
}

func TestResponsesItemReferenceResolvesStoredItemsOnEveryProvider(t *testing.T) {
	cfg := mockllm.DefaultConfig()
	cfg.TextAndTool = true
	e := newInferenceEnv(t, cfg, 50)
	ctx := context.Background()
	for _, pm := range providerModels {
		t.Run(pm.provider, func(t *testing.T) {
			first, msg, call := textAndToolTurn(t, e, pm.model, true)
			said := first.OutputText()
			for _, byRef := range []bool{false, true} {
				second, err := e.client.Responses.New(ctx, responses.ResponseNewParams{
					Model: pm.model,
					Input: responses.ResponseNewParamsInputUnion{OfInputItemList: referencingInput(msg.ID, call, byRef, "sunny, 21C")},
					Tools: []responses.ToolUnionParam{weatherTool},
				})
				if err != nil {
					t.Fatalf("second step (call by reference: %v): %v", byRef, err)
				}
				if second.Status != "completed" || !strings.Contains(second.OutputText(), "sunny, 21C") {
					t.Fatalf("second step answer: %s", second.RawJSON())
				}
				// The referenced text and call went upstream as the
				// assistant turn before the tool result.
				body := lastUpstreamBody(t, e.mock, routeOf(pm.provider))
				iText, iCall, iResult := strings.Index(body, said), strings.Index(body, "get_weather"), strings.LastIndex(body, "sunny, 21C")
				if iText < 0 || iCall < 0 || iResult < 0 || iText > iResult {
					t.Fatalf("upstream body lacks the referenced items in order (text %d, call %d, result %d): %s", iText, iCall, iResult, body)
				}
			}
			// A streamed response's items resolve too.
			evs := collectStream(t, e, responses.ResponseNewParams{
				Model: pm.model,
				Input: responses.ResponseNewParamsInputUnion{OfInputItemList: responses.ResponseInputParam{
					responses.ResponseInputItemParamOfMessage("And in Rome?", responses.EasyInputMessageRoleUser),
				}},
				Tools: []responses.ToolUnionParam{weatherTool},
			})
			final := evs[len(evs)-1].ev.Response
			var sMsg, sCall responses.ResponseOutputItemUnion
			for _, it := range final.Output {
				if it.Type == "message" {
					sMsg = it
				} else {
					sCall = it
				}
			}
			if sMsg.ID == "" || sCall.ID == "" {
				t.Fatalf("streamed turn output: %s", final.RawJSON())
			}
			third, err := e.client.Responses.New(ctx, responses.ResponseNewParams{
				Model: pm.model,
				Input: responses.ResponseNewParamsInputUnion{OfInputItemList: referencingInput(sMsg.ID, sCall, true, "cloudy, 17C")},
				Tools: []responses.ToolUnionParam{weatherTool},
			})
			if err != nil || !strings.Contains(third.OutputText(), "cloudy, 17C") {
				t.Fatalf("reference to streamed items: %v", err)
			}
			if body := lastUpstreamBody(t, e.mock, routeOf(pm.provider)); !strings.Contains(body, final.OutputText()) {
				t.Fatalf("the streamed message's text did not go upstream: %s", body)
			}
		})
	}
}

func TestResponsesItemReferenceRefusesWhatTheUserCannotReference(t *testing.T) {
	cfg := mockllm.DefaultConfig()
	cfg.TextAndTool = true
	e := newInferenceEnv(t, cfg, 50)
	_, msg, call := textAndToolTurn(t, e, "gpt-4o-mini", true)
	_, uMsg, uCall := textAndToolTurn(t, e, "claude-haiku-4-5", false)
	deleted, dMsg, _ := textAndToolTurn(t, e, "gemini-2.5-flash", true)
	if r := e.g.Do(t, "DELETE", "/v1/responses/"+deleted.ID, e.uk, nil); r.Status != 200 {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}

	// Another end-user of the same platform, and one of another platform.
	uid2, uk2 := e.g.CreateEndUser(t, e.pid, e.pk, "neighbour")
	if r := e.g.Do(t, "POST", "/v1/platforms/"+e.pid+"/end-users/"+uid2+"/budget", e.pk, map[string]any{"amount_usd": 5}); r.Status != 201 {
		t.Fatalf("budget: %d %s", r.Status, r.Body)
	}
	pid3, pk3 := e.g.CreatePlatform(t, "other")
	_, uk3 := e.g.CreateEndUser(t, pid3, pk3, "stranger")

	ref := func(id string) []map[string]any {
		return []map[string]any{{"role": "user", "content": "hi"}, {"type": "item_reference", "id": id}}
	}
	cases := []struct {
		name, key, id string
		input         any
	}{
		{"unknown message id", e.uk, fakeID("msg_"), ref(fakeID("msg_"))},
		{"malformed id", e.uk, "msg_1", ref("msg_1")},
		{"a response id", e.uk, deleted.ID, ref(deleted.ID)},
		{"another user's message", uk2, msg.ID, ref(msg.ID)},
		{"another user's call", uk2, call.ID, ref(call.ID)},
		{"another platform's message", uk3, msg.ID, ref(msg.ID)},
		{"store false message", e.uk, uMsg.ID, ref(uMsg.ID)},
		{"store false call", e.uk, uCall.ID, ref(uCall.ID)},
		{"deleted response's message", e.uk, dMsg.ID, ref(dMsg.ID)},
		{"bare reference (no type) of another's", uk2, msg.ID, []map[string]any{{"id": msg.ID}}},
	}
	for _, c := range cases {
		if c.name == "unknown message id" {
			c.id = c.input.([]map[string]any)[1]["id"].(string)
		}
		before := e.mock.Requests()
		r := e.g.Do(t, "POST", "/v1/responses", c.key, map[string]any{"model": "gpt-4o-mini", "input": c.input})
		wantError(t, c.name, r, 400, "item_not_found")
		if !strings.Contains(string(r.Body), c.id) {
			t.Errorf("%s: the 400 does not name %s: %s", c.name, c.id, r.Body)
		}
		if e.mock.Requests() != before {
			t.Errorf("%s: the refused request reached the upstream", c.name)
		}
	}
	// The owner still resolves its own items after all that.
	r := e.g.Do(t, "POST", "/v1/responses", e.uk, map[string]any{"model": "gpt-4o-mini", "input": ref(msg.ID)})
	if r.Status != 200 {
		t.Fatalf("owner's reference: %d %s", r.Status, r.Body)
	}
}
