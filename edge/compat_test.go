package edge_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/openai/openai-go"
	"github.com/openai/openai-go/option"
	"github.com/openai/openai-go/responses"
	"github.com/openai/openai-go/shared"

	"github.com/assistiv/gateway/mockllm"
)

// The Go side of the client matrix (compat/ holds the Node side): the
// official openai-go client and mcp-go's client against the gateway.

var chatWeatherTool = openai.ChatCompletionToolParam{Function: shared.FunctionDefinitionParam{
	Name: "get_weather", Description: openai.String("current weather for a city"),
	Parameters: shared.FunctionParameters{
		"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}, "required": []string{"city"},
	},
}}

func TestOpenAIGoChatToolLoopWithTextAndCallInOneTurn(t *testing.T) {
	cfg := mockllm.DefaultConfig()
	cfg.TextAndTool = true
	e := newInferenceEnv(t, cfg, 50)
	ctx := context.Background()
	for _, pm := range providerModels {
		t.Run(pm.provider, func(t *testing.T) {
			params := openai.ChatCompletionNewParams{
				Model:    pm.model,
				Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("What is the weather in Paris?")},
				Tools:    []openai.ChatCompletionToolParam{chatWeatherTool},
			}
			// Streamed, as agents usually run: text deltas, then the call.
			stream := e.client.Chat.Completions.NewStreaming(ctx, params)
			acc := openai.ChatCompletionAccumulator{}
			for stream.Next() {
				acc.AddChunk(stream.Current())
			}
			if err := stream.Err(); err != nil {
				t.Fatalf("stream: %v", err)
			}
			resp, err := e.client.Chat.Completions.New(ctx, params)
			if err != nil {
				t.Fatalf("turn: %v", err)
			}
			for _, m := range []openai.ChatCompletionMessage{acc.Choices[0].Message, resp.Choices[0].Message} {
				if m.Content == "" || len(m.ToolCalls) != 1 || m.ToolCalls[0].Function.Name != "get_weather" {
					t.Fatalf("want text and one get_weather call in one message, got %+v", m)
				}
			}
			if acc.Choices[0].Message.Content != resp.Choices[0].Message.Content {
				t.Fatalf("streamed text %q != %q", acc.Choices[0].Message.Content, resp.Choices[0].Message.Content)
			}
			msg := resp.Choices[0].Message
			params.Messages = append(params.Messages, msg.ToParam(), openai.ToolMessage("sunny, 21C", msg.ToolCalls[0].ID))
			second, err := e.client.Chat.Completions.New(ctx, params)
			if err != nil {
				t.Fatalf("second turn: %v", err)
			}
			if !strings.Contains(second.Choices[0].Message.Content, "sunny, 21C") {
				t.Fatalf("the answer does not use the tool result: %q", second.Choices[0].Message.Content)
			}
			if body := lastUpstreamBody(t, e.mock, routeOf(pm.provider)); !strings.Contains(body, msg.Content) {
				t.Fatalf("the assistant's text did not go back upstream: %s", body)
			}
		})
	}
}

// countRequests is an openai-go middleware counting the requests sent.
func countRequests(n *atomic.Int64) option.Middleware {
	return func(r *http.Request, next option.MiddlewareNext) (*http.Response, error) {
		n.Add(1)
		return next(r)
	}
}

func TestOpenAIGoSurfacesBudgetAndRateLimitErrorsTyped(t *testing.T) {
	e := newInferenceEnv(t, mockllm.DefaultConfig(), 0.000001)
	ctx := context.Background()
	var sent atomic.Int64
	// Default retries on: a 402 must still be sent once.
	c := openai.NewClient(option.WithBaseURL(e.g.URL+"/v1"), option.WithAPIKey(e.uk), option.WithMaxRetries(2), option.WithMiddleware(countRequests(&sent)))
	for _, pm := range providerModels {
		_, chatErr := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: pm.model, Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}})
		_, respErr := c.Responses.New(ctx, responses.ResponseNewParams{Model: pm.model, Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hi")}})
		for _, err := range []error{chatErr, respErr} {
			var ae *openai.Error
			if !errors.As(err, &ae) || ae.StatusCode != 402 || ae.Code != "budget_exhausted" || ae.Type != "payment_required" || !strings.Contains(ae.Message, "budget") {
				t.Fatalf("402 on %s: %v", pm.provider, err)
			}
		}
	}
	if n := sent.Load(); n != int64(2*len(providerModels)) {
		t.Fatalf("%d calls answered 402 sent %d requests: a 402 was retried", 2*len(providerModels), n)
	}

	// 429 with Retry-After, on an end-user allowed one request a minute.
	uid, uk := e.g.CreateEndUser(t, e.pid, e.pk, "limited")
	if r := e.g.Do(t, "POST", "/v1/platforms/"+e.pid+"/end-users/"+uid+"/budget", e.pk, map[string]any{"amount_usd": 5}); r.Status != 201 {
		t.Fatalf("budget: %d %s", r.Status, r.Body)
	}
	if r := e.g.Do(t, "PUT", "/v1/platforms/"+e.pid+"/end-users/"+uid+"/rate-limits", e.pk, map[string]any{"requests_per_minute": 1}); r.Status != 200 {
		t.Fatalf("rate limits: %d %s", r.Status, r.Body)
	}
	lc := openai.NewClient(option.WithBaseURL(e.g.URL+"/v1"), option.WithAPIKey(uk), option.WithMaxRetries(0))
	if _, err := lc.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "grok-3-mini", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}}); err != nil {
		t.Fatalf("first call within the limit: %v", err)
	}
	for _, pm := range providerModels {
		_, chatErr := lc.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: pm.model, Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}})
		_, respErr := lc.Responses.New(ctx, responses.ResponseNewParams{Model: pm.model, Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hi")}})
		for _, err := range []error{chatErr, respErr} {
			var ae *openai.Error
			if !errors.As(err, &ae) || ae.StatusCode != 429 || ae.Code != "rate_limited" || ae.Response.Header.Get("Retry-After") == "" {
				t.Fatalf("429 on %s: %v", pm.provider, err)
			}
		}
	}
}

// mcpGoClient connects mcp-go's streamable HTTP client to path with key.
func mcpGoClient(t *testing.T, url, key string) (*client.Client, error) {
	t.Helper()
	c, err := client.NewStreamableHttpClient(url, transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + key}))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		return nil, err
	}
	init := mcpgo.InitializeRequest{}
	init.Params.ProtocolVersion = mcpgo.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcpgo.Implementation{Name: "compat", Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		_ = c.Close()
		return nil, err
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, nil
}

func TestMCPGoClientOnBothSurfaces(t *testing.T) {
	e := newInferenceEnv(t, mockllm.DefaultConfig(), 5)
	if r := e.g.Do(t, "PATCH", "/v1/platforms/"+e.pid, e.pk, map[string]any{"skills_enabled": true}); r.Status != 200 {
		t.Fatalf("skills_enabled: %d %s", r.Status, r.Body)
	}
	ctx := context.Background()
	for _, path := range []string{"/mcp", "/mcp/skills"} {
		t.Run(path, func(t *testing.T) {
			c, err := mcpGoClient(t, e.g.URL+path, e.uk)
			if err != nil {
				t.Fatalf("connect: %v", err)
			}
			tools, err := c.ListTools(ctx, mcpgo.ListToolsRequest{})
			if err != nil {
				t.Fatalf("ListTools: %v", err)
			}
			names := map[string]bool{}
			for _, tl := range tools.Tools {
				names[tl.Name] = true
			}
			for _, want := range []string{"find_skill", "fetch_skill", "create_skill"} {
				if !names[want] {
					t.Fatalf("%s missing from %v", want, names)
				}
			}
			call := mcpgo.CallToolRequest{}
			call.Params.Name = "create_skill"
			call.Params.Arguments = map[string]any{"name": "go compat " + path, "description": "from mcp-go",
				"files": []any{map[string]any{"path": "SKILL.md", "content": "# go compat\n\nBe kind.\n"}}}
			res, err := c.CallTool(ctx, call)
			if err != nil || res.IsError {
				t.Fatalf("create_skill: %v %+v", err, res)
			}
			var created struct{ ID string }
			if err := json.Unmarshal([]byte(res.Content[0].(mcpgo.TextContent).Text), &created); err != nil || !strings.HasPrefix(created.ID, "skill_") {
				t.Fatalf("create_skill result %+v: %v", res.Content, err)
			}
			call = mcpgo.CallToolRequest{}
			call.Params.Name = "fetch_skill"
			call.Params.Arguments = map[string]any{"skill_id": created.ID}
			if res, err = c.CallTool(ctx, call); err != nil || res.IsError || !strings.Contains(res.Content[0].(mcpgo.TextContent).Text, "Be kind.") {
				t.Fatalf("fetch_skill: %v %+v", err, res)
			}
			call.Params.Arguments = map[string]any{"skill_id": "skill_nope"}
			if res, err = c.CallTool(ctx, call); err != nil || !res.IsError {
				t.Fatalf("fetch_skill of nothing: %v %+v, want an isError result", err, res)
			}
			// A bad key is the client's typed 401 (no OAuth handler set).
			if _, err := mcpGoClient(t, e.g.URL+path, "sk-eu_not-a-key"); !errors.Is(err, transport.ErrAuthorizationRequired) {
				t.Fatalf("bad key: %v, want transport.ErrAuthorizationRequired", err)
			}
		})
	}
}
