package dashboard

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/assistiv/gateway/actors"
	"github.com/assistiv/gateway/edge"
	"github.com/assistiv/gateway/internal/ids"
)

// apiError is the API's structured error, shown next to the form field it
// concerns.
type apiError struct {
	Status    int    `json:"-"`
	Type      string `json:"type"`
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

// apiResult is one in-process API answer.
type apiResult struct {
	Status    int
	Body      []byte
	RequestID string
	Replayed  bool
}

// caller builds the in-process identities pages act as.
func operatorCaller() edge.Caller { return edge.Caller{Admin: true} }

func platformCaller(pid string) edge.Caller {
	return edge.Caller{Principal: actors.Principal{Kind: ids.KindPlatform, Platform: ids.PlatformID(pid), KeyID: "dashboard", Prefix: "dashboard"}}
}

func endUserCaller(pid, eid string) edge.Caller {
	return edge.Caller{Principal: actors.Principal{Kind: ids.KindEndUser, Platform: ids.PlatformID(pid), EndUser: ids.EndUserID(eid), KeyID: "dashboard", Prefix: "dashboard"}}
}

// apiCall is one request to the gateway's REST API, answered in-process.
type apiCall struct {
	As          edge.Caller
	Method      string
	Path        string
	Query       url.Values
	Body        any
	Idempotency string
}

// do runs c through the edge's router and returns the answer; a status of
// 400 or more comes back as *apiError.
func (d *Dashboard) do(c apiCall) (apiResult, error) {
	var ctx fasthttp.RequestCtx
	req := &ctx.Request
	req.Header.SetMethod(c.Method)
	uri := c.Path
	if len(c.Query) > 0 {
		uri += "?" + c.Query.Encode()
	}
	req.SetRequestURI(uri)
	req.Header.SetHost("dashboard.internal")
	if c.Body != nil {
		b, err := json.Marshal(c.Body)
		if err != nil {
			return apiResult{}, err
		}
		req.Header.SetContentType("application/json")
		req.SetBody(b)
	}
	if c.Idempotency != "" {
		req.Header.Set("Idempotency-Key", c.Idempotency)
	}
	d.edge.ServeInternal(&ctx, c.As)
	res := apiResult{
		Status:    ctx.Response.StatusCode(),
		Body:      append([]byte(nil), ctx.Response.Body()...),
		RequestID: string(ctx.Response.Header.Peek("X-Request-Id")),
		Replayed:  string(ctx.Response.Header.Peek("Idempotent-Replayed")) == "true",
	}
	if res.Status >= 400 {
		var e struct {
			Error apiError `json:"error"`
		}
		if json.Unmarshal(res.Body, &e) != nil || e.Error.Code == "" {
			e.Error = apiError{Type: "api_error", Code: "unexpected_answer", Message: fmt.Sprintf("the gateway answered %d", res.Status)}
		}
		e.Error.Status = res.Status
		return res, &e.Error
	}
	return res, nil
}

// get decodes a GET's JSON answer into v.
func (d *Dashboard) get(as edge.Caller, path string, q url.Values, v any) error {
	res, err := d.do(apiCall{As: as, Method: "GET", Path: path, Query: q})
	if err != nil {
		return err
	}
	return json.Unmarshal(res.Body, v)
}

var (
	numberLiteral  = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)
	integerLiteral = regexp.MustCompile(`^-?[0-9]+$`)
)

// usd turns a form's amount into the JSON the API parses: a number literal
// as a number, anything else as a string (which the API refuses with its
// own 400), so the money rules stay the API's.
func usd(s string) json.RawMessage {
	s = strings.TrimSpace(s)
	if numberLiteral.MatchString(s) {
		return json.RawMessage(s)
	}
	b, _ := json.Marshal(s)
	return b
}

// intField is usd for integers (rate limits).
func intField(s string) json.RawMessage {
	s = strings.TrimSpace(s)
	if integerLiteral.MatchString(s) {
		return json.RawMessage(s)
	}
	b, _ := json.Marshal(s)
	return b
}

// pathSeg escapes one path segment.
func pathSeg(s string) string { return url.PathEscape(s) }
