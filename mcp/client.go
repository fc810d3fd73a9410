package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/assistiv/gateway/internal/ids"
)

// apiCall is one tool call's access to an app's REST API with the
// end-user's token. Requests go to the activation's API base only.
type apiCall struct {
	s      *Service
	spec   *appSpec
	base   string
	tokens tokenSet
	pid    ids.PlatformID
	eid    ids.EndUserID
	status int // last upstream HTTP status
}

// upstreamError is an app API's refusal. Its message is the app's own
// error text, truncated; it never carries our token.
type upstreamError struct {
	status int
	msg    string
}

func (e *upstreamError) Error() string {
	return fmt.Sprintf("%s answered %d: %s", "the app API", e.status, e.msg)
}

// do sends one request and returns the JSON body. body, when not nil, is
// sent as JSON. A non-2xx answer is an *upstreamError.
func (c *apiCall) do(ctx context.Context, method, path string, q url.Values, body any) (json.RawMessage, error) {
	u := c.base + path
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
	ctx, cancel := context.WithTimeout(ctx, c.s.cfg.CallTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, scrubURLError(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "assistiv-gateway")
	req.Header.Set("Authorization", c.spec.authScheme+" "+c.tokens.AccessToken)
	if c.spec.name == "github" {
		req.Header.Set("Accept", "application/vnd.github+json")
		req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	}
	resp, err := c.s.http.Do(req)
	if err != nil {
		return nil, scrubURLError(err)
	}
	defer resp.Body.Close()
	c.status = resp.StatusCode
	raw, err := readBounded(resp.Body, c.s.cfg.MaxResponseBytes)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, &upstreamError{status: resp.StatusCode, msg: upstreamMessage(raw, c.tokens.AccessToken)}
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return json.RawMessage(`{}`), nil
	}
	if !json.Valid(raw) {
		return nil, &upstreamError{status: resp.StatusCode, msg: "the app answered a body that is not JSON"}
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

func pathEscape(s string) string { return url.PathEscape(s) }
