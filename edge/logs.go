package edge

import (
	"errors"
	"strconv"
	"time"

	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/internal/money"
	"github.com/assistiv/gateway/logs"
)

// Per-call logs: GET /v1/platforms/{platformId}/logs and
// GET /v1/platforms/{platformId}/logs/{requestId}, platform keys only.
// Entries are written by the inference and tool paths through
// s.deps.Logs.Writer().Write, which never blocks (and is a no-op when
// Deps.Logs is nil).

// logJSON is one log entry on the wire.
type logJSON struct {
	Object           string      `json:"object"`
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
	Tool             string      `json:"tool,omitempty"`
	App              string      `json:"app,omitempty"`
}

func logView(e *logs.Entry) logJSON {
	v := logJSON{
		Object: "log", RequestID: e.RequestID, EndUserID: string(e.EndUserID), Kind: string(e.Kind),
		Model: e.Model, Provider: e.Provider, StatusCode: e.StatusCode,
		PromptTokens: e.PromptTokens, CompletionTokens: e.CompletionTokens,
		TotalTokens: e.PromptTokens + e.CompletionTokens,
		CostUSD:     e.Cost, ProviderCostUSD: e.ProviderCost,
		LatencyMs: e.Latency.Milliseconds(), Stream: e.Stream,
		CreatedAt: e.CreatedAt.UTC().Format("2006-01-02T15:04:05.000Z07:00"),
		Tool:      e.Tool, App: e.App,
	}
	if e.ErrorCode != "" {
		v.ErrorCode = &e.ErrorCode
	}
	if e.TTFT > 0 {
		ms := e.TTFT.Milliseconds()
		v.TTFTMs = &ms
	}
	return v
}

var errLogsOff = &apiError{Status: 503, Type: typeOverload, Code: "logs_unavailable", Message: "logs are not enabled on this node"}

func (s *Server) listLogs(c *call) error {
	if s.deps.Logs == nil {
		return errLogsOff
	}
	limit, err := c.limit(logs.DefaultLimit, logs.MaxLimit)
	if err != nil {
		return err
	}
	args := c.ctx.QueryArgs()
	q := logs.Query{Limit: limit, Cursor: string(args.Peek("cursor"))}
	if args.Has("cursor") && q.Cursor == "" {
		return errBadRequest("invalid_cursor", "cursor is not one this API returned")
	}
	if v := string(args.Peek("end_user_id")); v != "" {
		if !ids.Valid(ids.EndUserPrefix, v) {
			return errBadRequest("invalid_parameter", "end_user_id is not an end-user id")
		}
		q.EndUserID = ids.EndUserID(v)
	}
	if v := string(args.Peek("model")); v != "" {
		if err := validText("model", v, 255, false); err != nil {
			return err
		}
		q.Model = v
	}
	if v := string(args.Peek("kind")); v != "" {
		if !logs.Kind(v).Valid() {
			return errBadRequest("invalid_parameter", "kind must be chat.completions, responses or tool")
		}
		q.Kind = logs.Kind(v)
	}
	if q.Status, err = logs.ParseStatus(string(args.Peek("status"))); err != nil {
		return errBadRequest("invalid_parameter", "status must be a code (e.g. 429), a class (2xx, 4xx, 5xx) or error")
	}
	start, since := string(args.Peek("start")), string(args.Peek("since"))
	if start != "" && since != "" && start != since {
		return errBadRequest("invalid_parameter", "send start or since (the same thing), not both")
	}
	if start == "" {
		start = since
	}
	if q.Start, err = queryTime("start", start); err != nil {
		return err
	}
	if q.End, err = queryTime("end", string(args.Peek("end"))); err != nil {
		return err
	}
	if !q.Start.IsZero() && !q.End.IsZero() && q.End.Before(q.Start) {
		return errBadRequest("invalid_parameter", "end is before start")
	}
	var page logs.Page
	if s.alone() {
		page, err = s.deps.Logs.List(c.platformID(), q)
	} else {
		page, err = logs.ListAcross(c.ctx, s.deps.Peers, c.platformID(), q) // every node's calls
	}
	if errors.Is(err, logs.ErrInvalidCursor) {
		return errBadRequest("invalid_cursor", "cursor is not one this API returned")
	}
	if err != nil {
		return err
	}
	out := listJSON[logJSON]{Object: "list", Data: make([]logJSON, 0, len(page.Entries)), HasMore: page.HasMore}
	for i := range page.Entries {
		out.Data = append(out.Data, logView(&page.Entries[i]))
	}
	if page.HasMore {
		out.NextCursor = &page.NextCursor
	}
	return c.writeJSON(200, out)
}

// queryTime parses an optional RFC 3339 query parameter.
func queryTime(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, errBadRequest("invalid_parameter", "%s must be an RFC 3339 time such as 2026-05-01T00:00:00Z", name)
	}
	return t, nil
}

func (s *Server) getLog(c *call) error {
	if s.deps.Logs == nil {
		return errLogsOff
	}
	rid := c.param("requestId")
	var e logs.Entry
	var err error
	if s.alone() {
		e, err = s.deps.Logs.Get(c.platformID(), rid)
	} else {
		e, err = logs.GetAcross(c.ctx, s.deps.Peers, c.platformID(), rid)
	}
	if errors.Is(err, logs.ErrNotFound) {
		return errNotFound("log entry " + strconv.Quote(rid))
	}
	if err != nil {
		return err
	}
	return c.writeJSON(200, logView(&e))
}
