package edge

import (
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/assistiv/gateway/webhooks"
)

// webhookRoutes registers the operator API of outbound webhooks (when the
// node runs a webhooks service).
func (s *Server) webhookRoutes(r routeTable) {
	if s.deps.Webhooks == nil {
		return
	}
	const ep = "/admin/v1/platforms/{platformId}/webhook-endpoints"
	r.POST(ep, s.adminOnly(s.createWebhookEndpoint))
	r.GET(ep, s.adminOnly(s.listWebhookEndpoints))
	r.GET(ep+"/{endpointId}", s.adminOnly(s.getWebhookEndpoint))
	r.PATCH(ep+"/{endpointId}", s.adminOnly(s.patchWebhookEndpoint))
	r.DELETE(ep+"/{endpointId}", s.adminOnly(s.deleteWebhookEndpoint))
	r.GET(ep+"/{endpointId}/secret", s.adminOnly(s.getWebhookSecret))
	r.POST(ep+"/{endpointId}/secret/rotate", s.adminOnly(s.rotateWebhookSecret))
	r.GET(ep+"/{endpointId}/messages", s.adminOnly(s.listWebhookMessages))
	r.GET(ep+"/{endpointId}/messages/{messageId}", s.adminOnly(s.getWebhookMessage))
	r.POST(ep+"/{endpointId}/messages/{messageId}/replay", s.adminOnly(s.replayWebhookMessage))
	r.POST(ep+"/{endpointId}/test", s.adminOnly(s.testWebhookEndpoint))
}

// ---- JSON shapes ----

type webhookEndpointJSON struct {
	ID                      string   `json:"id"`
	Object                  string   `json:"object"`
	PlatformID              string   `json:"platform_id"`
	URL                     string   `json:"url"`
	Description             string   `json:"description"`
	EventTypes              []string `json:"event_types"`
	Enabled                 bool     `json:"enabled"`
	DisabledReason          *string  `json:"disabled_reason"`
	CreatedAt               string   `json:"created_at"`
	UpdatedAt               string   `json:"updated_at"`
	PreviousSecretExpiresAt *string  `json:"previous_secret_expires_at"`
}

type webhookMessageJSON struct {
	ID               string          `json:"id"`
	Object           string          `json:"object"`
	EndpointID       string          `json:"endpoint_id"`
	EventType        string          `json:"event_type"`
	Status           string          `json:"status"`
	Attempts         int             `json:"attempts"`
	LastResponseCode *int            `json:"last_response_code"`
	LastLatencyMs    *int64          `json:"last_latency_ms"`
	LastError        *string         `json:"last_error"`
	NextRetryAt      *string         `json:"next_retry_at"`
	LastAttemptAt    *string         `json:"last_attempt_at"`
	DeliveredAt      *string         `json:"delivered_at"`
	CreatedAt        string          `json:"created_at"`
	Payload          json.RawMessage `json:"payload"`
}

func timeOrNil(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	return optTime(t.UnixMilli())
}

func webhookEndpointView(e webhooks.Endpoint) webhookEndpointJSON {
	v := webhookEndpointJSON{
		ID: e.ID, Object: "webhook_endpoint", PlatformID: string(e.PlatformID), URL: e.URL,
		Description: e.Description, EventTypes: e.EventTypes, Enabled: e.Enabled,
		CreatedAt: ts(e.CreatedAt.UnixMilli()), UpdatedAt: ts(e.UpdatedAt.UnixMilli()),
		PreviousSecretExpiresAt: timeOrNil(e.PreviousSecretExpiresAt),
	}
	if e.DisabledReason != "" {
		r := e.DisabledReason
		v.DisabledReason = &r
	}
	return v
}

func webhookMessageView(m webhooks.Message) webhookMessageJSON {
	v := webhookMessageJSON{
		ID: m.ID, Object: "webhook_message", EndpointID: m.EndpointID, EventType: m.EventType,
		Status: m.Status, Attempts: m.Attempts, CreatedAt: ts(m.CreatedAt.UnixMilli()),
		NextRetryAt: timeOrNil(m.NextAttemptAt), LastAttemptAt: timeOrNil(m.LastAttemptAt),
		DeliveredAt: timeOrNil(m.DeliveredAt), Payload: json.RawMessage(m.Payload),
	}
	if m.Attempts > 0 {
		lat := m.LastLatency.Milliseconds()
		v.LastLatencyMs = &lat
		if m.LastStatusCode != 0 {
			code := m.LastStatusCode
			v.LastResponseCode = &code
		}
		if m.LastError != "" {
			e := m.LastError
			v.LastError = &e
		}
	}
	if !json.Valid(v.Payload) {
		v.Payload = json.RawMessage("null")
	}
	return v
}

// webhookError maps the webhooks package's errors to API errors.
func webhookError(err error) error {
	var fe *webhooks.FieldError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &fe) && errors.Is(err, webhooks.ErrConflict):
		return &apiError{Status: 409, Type: typeConflict, Code: fe.Code, Message: fe.Message}
	case errors.As(err, &fe):
		return errBadRequest(fe.Code, "%s", fe.Message)
	case errors.Is(err, webhooks.ErrNotFound):
		return errNotFound(strings.TrimSuffix(err.Error(), ": "+webhooks.ErrNotFound.Error()))
	case errors.Is(err, webhooks.ErrClosed):
		return &apiError{Status: 503, Type: typeOverload, Code: "unavailable", Message: "the node is shutting down"}
	}
	return err
}

type webhookEndpointIn struct {
	URL         *string   `json:"url"`
	EventTypes  *[]string `json:"event_types"`
	Enabled     *bool     `json:"enabled"`
	Description *string   `json:"description"`
}

func (in *webhookEndpointIn) input() webhooks.EndpointInput {
	out := webhooks.EndpointInput{URL: in.URL, Enabled: in.Enabled, Description: in.Description}
	if in.EventTypes != nil {
		out.EventTypes = *in.EventTypes
		if out.EventTypes == nil {
			out.EventTypes = []string{}
		}
	}
	return out
}

// ---- handlers ----

func (s *Server) createWebhookEndpoint(c *call) error {
	var in webhookEndpointIn
	if err := c.decodeJSON(&in, false); err != nil {
		return err
	}
	if in.EventTypes == nil {
		return errBadRequest("missing_field", "event_types is required: list the event types this endpoint receives")
	}
	ctx, cancel := c.context()
	defer cancel()
	e, secret, err := s.deps.Webhooks.CreateEndpoint(ctx, c.platformID(), in.input())
	if err != nil {
		return webhookError(err)
	}
	return c.writeJSON(201, struct {
		webhookEndpointJSON
		Secret string `json:"secret"`
	}{webhookEndpointView(e), secret})
}

func (s *Server) listWebhookEndpoints(c *call) error {
	eps, err := s.deps.Webhooks.ListEndpoints(c.platformID())
	if err != nil {
		return webhookError(err)
	}
	out := listJSON[webhookEndpointJSON]{Object: "list", Data: make([]webhookEndpointJSON, 0, len(eps))}
	for _, e := range eps {
		out.Data = append(out.Data, webhookEndpointView(e))
	}
	return c.writeJSON(200, out)
}

func (s *Server) getWebhookEndpoint(c *call) error {
	e, err := s.deps.Webhooks.GetEndpoint(c.platformID(), c.param("endpointId"))
	if err != nil {
		return webhookError(err)
	}
	return c.writeJSON(200, webhookEndpointView(e))
}

func (s *Server) patchWebhookEndpoint(c *call) error {
	var in webhookEndpointIn
	if err := c.decodeJSON(&in, false); err != nil {
		return err
	}
	ctx, cancel := c.context()
	defer cancel()
	e, err := s.deps.Webhooks.UpdateEndpoint(ctx, c.platformID(), c.param("endpointId"), in.input())
	if err != nil {
		return webhookError(err)
	}
	return c.writeJSON(200, webhookEndpointView(e))
}

func (s *Server) deleteWebhookEndpoint(c *call) error {
	eid := c.param("endpointId")
	if err := s.deps.Webhooks.DeleteEndpoint(c.platformID(), eid); err != nil {
		return webhookError(err)
	}
	return c.writeJSON(200, map[string]any{"id": eid, "object": "webhook_endpoint", "deleted": true})
}

func (s *Server) getWebhookSecret(c *call) error {
	eid := c.param("endpointId")
	secret, err := s.deps.Webhooks.Secret(c.platformID(), eid)
	if err != nil {
		return webhookError(err)
	}
	c.ctx.Response.Header.Set("Cache-Control", "no-store")
	return c.writeJSON(200, map[string]any{"object": "webhook_secret", "endpoint_id": eid, "secret": secret})
}

func (s *Server) rotateWebhookSecret(c *call) error {
	var in struct {
		Secret string `json:"secret"`
	}
	if err := c.decodeJSON(&in, true); err != nil {
		return err
	}
	eid := c.param("endpointId")
	secret, e, err := s.deps.Webhooks.RotateSecret(c.platformID(), eid, in.Secret)
	if err != nil {
		return webhookError(err)
	}
	c.ctx.Response.Header.Set("Cache-Control", "no-store")
	return c.writeJSON(200, map[string]any{
		"object": "webhook_secret", "endpoint_id": eid, "secret": secret,
		"previous_secret_expires_at": timeOrNil(e.PreviousSecretExpiresAt),
	})
}

func (s *Server) listWebhookMessages(c *call) error {
	limit, err := c.limit(50, 250)
	if err != nil {
		return err
	}
	q := webhooks.MessageQuery{Status: string(c.ctx.QueryArgs().Peek("status")), Limit: limit}
	if cur := c.ctx.QueryArgs().Peek("cursor"); len(cur) > 0 {
		b, err := decodeCursor(string(cur))
		if err != nil {
			return err
		}
		if !webhooks.ValidMessageID(string(b)) {
			return errBadRequest("invalid_cursor", "cursor is not one this API returned")
		}
		q.Before = string(b)
	}
	page, err := s.deps.Webhooks.ListMessages(c.platformID(), c.param("endpointId"), q)
	if err != nil {
		return webhookError(err)
	}
	out := listJSON[webhookMessageJSON]{Object: "list", Data: make([]webhookMessageJSON, 0, len(page.Messages))}
	for _, m := range page.Messages {
		out.Data = append(out.Data, webhookMessageView(m))
	}
	if page.Next != "" {
		out.HasMore = true
		out.NextCursor = encodeCursor([]byte(page.Next))
	}
	return c.writeJSON(200, out)
}

func (s *Server) getWebhookMessage(c *call) error {
	m, err := s.deps.Webhooks.GetMessage(c.platformID(), c.param("endpointId"), c.param("messageId"))
	if err != nil {
		return webhookError(err)
	}
	return c.writeJSON(200, webhookMessageView(m))
}

func (s *Server) replayWebhookMessage(c *call) error {
	if err := c.decodeJSON(&struct{}{}, true); err != nil {
		return err
	}
	m, err := s.deps.Webhooks.Replay(c.platformID(), c.param("endpointId"), c.param("messageId"))
	if err != nil {
		return webhookError(err)
	}
	return c.writeJSON(202, webhookMessageView(m))
}

// testWebhookEndpoint queues a "webhook.test" delivery to one endpoint.
func (s *Server) testWebhookEndpoint(c *call) error {
	if err := c.decodeJSON(&struct{}{}, true); err != nil {
		return err
	}
	m, err := s.deps.Webhooks.SendTest(c.platformID(), c.param("endpointId"))
	if err != nil {
		return webhookError(err)
	}
	return c.writeJSON(202, webhookMessageView(m))
}
