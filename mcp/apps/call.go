// Package apps is the base of the MCP app clients: an app's [Spec] (OAuth
// endpoints, scopes, tools), the [Call] a tool makes to the app's REST API
// with the end-user's token, and the argument reader the tools share. One
// package per app (github, slack, zendesk, zohomail) builds its Spec;
// package mcp registers them, runs the OAuth connections and serves the
// tools. apps imports no package of ours.
package apps

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
)

// Call is one tool call's access to an app's REST API with the
// end-user's token. Requests go to Base (the activation's API base) only.
type Call struct {
	Spec        *Spec
	Base        string
	AccessToken string
	// AccountID is an app-specific account id cached with the tokens
	// (Zoho Mail's accountId); SaveAccountID stores a newly found one.
	AccountID     string
	SaveAccountID func(id string)
	// HTTP is an egress-guarded client that follows no redirects.
	HTTP             *http.Client
	Timeout          time.Duration // bounds one request
	MaxResponseBytes int64         // bounds one answer
	Status           int           // last upstream HTTP status
}

// UpstreamError is an app API's refusal. Its message is the app's own
// error text, truncated; it never carries our token.
type UpstreamError struct {
	Status int
	Msg    string
}

func (e *UpstreamError) Error() string {
	return fmt.Sprintf("%s answered %d: %s", "the app API", e.Status, e.Msg)
}

// Do sends one request and returns the JSON body. body, when not nil, is
// sent as JSON. A non-2xx answer is an *UpstreamError.
func (c *Call) Do(ctx context.Context, method, path string, q url.Values, body any) (json.RawMessage, error) {
	u := c.Base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, ScrubURLError(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "assistiv-gateway")
	req.Header.Set("Authorization", c.Spec.AuthScheme+" "+c.AccessToken)
	if c.Spec.Name == "github" {
		req.Header.Set("Accept", "application/vnd.github+json")
		req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, ScrubURLError(err)
	}
	defer resp.Body.Close()
	c.Status = resp.StatusCode
	raw, err := ReadBounded(resp.Body, c.MaxResponseBytes)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, &UpstreamError{Status: resp.StatusCode, Msg: upstreamMessage(raw, c.AccessToken)}
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return json.RawMessage(`{}`), nil
	}
	if !json.Valid(raw) {
		return nil, &UpstreamError{Status: resp.StatusCode, Msg: "the app answered a body that is not JSON"}
	}
	return raw, nil
}

// upstreamMessage extracts a short error text from an error body.
func upstreamMessage(raw []byte, token string) string {
	var m struct {
		Message     string `json:"message"`
		Error       any    `json:"error"`
		Description string `json:"description"`
	}
	msg := ""
	if json.Unmarshal(raw, &m) == nil {
		switch {
		case m.Message != "":
			msg = m.Message
		case m.Description != "":
			msg = m.Description
		case m.Error != nil:
			b, _ := json.Marshal(m.Error)
			msg = string(b)
		}
	}
	if msg == "" {
		msg = strings.TrimSpace(string(raw))
	}
	if len(msg) > 300 {
		msg = msg[:300]
	}
	if token != "" {
		msg = strings.ReplaceAll(msg, token, "[redacted]")
	}
	return msg
}

// PathEscape escapes one URL path segment.
func PathEscape(s string) string { return url.PathEscape(s) }

// ReadBounded reads at most max bytes of r; more is an error.
func ReadBounded(r io.Reader, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("response larger than %d bytes", max)
	}
	return b, nil
}

// ScrubURLError drops the URL from a *url.Error: it may carry a query
// with a secret.
func ScrubURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// ErrInvalid wraps a message about invalid tool arguments, safe to show.
var ErrInvalid = errors.New("mcp: invalid input")

// Invalidf returns an ErrInvalid with a message.
func Invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Spec describes one OAuth-backed app: its real endpoints, how its
// authorization server wants requests, and its tools.
type Spec struct {
	Name          string
	Title         string
	AuthorizeURL  string // may hold {subdomain}
	TokenURL      string
	APIBase       string
	DefaultScopes []string
	ScopeSep      string
	ScopeParam    string            // "scope", or Slack's "user_scope" (the tools act as the user)
	ExtraAuth     map[string]string // extra authorization parameters
	JSONToken     bool              // token requests as JSON (Zendesk) instead of a form
	AuthScheme    string            // Authorization scheme for API calls
	Subdomain     bool              // endpoints are per tenant subdomain (Zendesk)
	Tools         []Tool
}

// ToolNames lists the app's tool names.
func (a *Spec) ToolNames() []string {
	out := make([]string, len(a.Tools))
	for i, t := range a.Tools {
		out[i] = t.Def.Name
	}
	return out
}

// Tool is one tool of an app: its definition and what a call runs.
type Tool struct {
	Def mcpgo.Tool
	Run func(ctx context.Context, c *Call, req mcpgo.CallToolRequest) (any, error)
}

// SafeCode keeps an error code short and printable.
func SafeCode(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.' {
			return r
		}
		return '_'
	}, s)
}
