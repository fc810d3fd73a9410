package webhooks

import (
	"context"
	"errors"
	"slices"
	"sort"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/assistiv/gateway/actors"
	"github.com/assistiv/gateway/internal/egress"
	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/persistence"
)

// Endpoint is a webhook endpoint as the API shows it. It never carries a
// secret.
type Endpoint struct {
	ID          string
	PlatformID  ids.PlatformID
	URL         string
	Description string
	EventTypes  []string
	Enabled     bool
	// DisabledReason is one of the Disabled* constants, or "" while enabled.
	DisabledReason string
	CreatedAt      time.Time
	UpdatedAt      time.Time
	// PreviousSecretExpiresAt is when the rotated-out secret stops signing;
	// zero when there is none.
	PreviousSecretExpiresAt time.Time
}

// EndpointInput holds the fields of a create or update; nil fields are
// left as they are (on create: URL and EventTypes are required, Enabled
// defaults to true).
type EndpointInput struct {
	URL         *string
	EventTypes  []string // nil: unchanged
	Enabled     *bool
	Description *string
}

const (
	maxURLLen         = 2048
	maxDescriptionLen = 1024
)

func (s *Service) view(r *endpointRecord, now time.Time) Endpoint {
	e := Endpoint{
		ID: r.ID, PlatformID: ids.PlatformID(r.PlatformID), URL: r.URL, Description: r.Description,
		EventTypes: slices.Clone(r.EventTypes), Enabled: r.Enabled, DisabledReason: r.DisabledReason,
		CreatedAt: time.UnixMilli(r.CreatedAtMs).UTC(), UpdatedAt: time.UnixMilli(r.UpdatedAtMs).UTC(),
	}
	if len(r.OldSecret) > 0 && r.OldSecretUntilMs > now.UnixMilli() {
		e.PreviousSecretExpiresAt = time.UnixMilli(r.OldSecretUntilMs).UTC()
	}
	return e
}

// checkURL validates an endpoint URL: https (http too when the egress
// policy allows private targets), and a host that is not, and does not
// resolve to, a loopback, private or link-local address. It may block on
// DNS until ctx ends.
func (s *Service) checkURL(ctx context.Context, u string) error {
	if err := validText("url", u, maxURLLen, true); err != nil {
		return err
	}
	if err := s.cfg.Egress.CheckURLContext(ctx, u, true); err != nil {
		code := "invalid_url"
		if errors.Is(err, egress.ErrForbiddenAddress) || errors.Is(err, egress.ErrForbiddenScheme) {
			code = "url_not_allowed"
		}
		// egress errors name the host, never the whole URL.
		return invalid(code, "url: %v", err)
	}
	return nil
}

// checkTypes validates and normalizes event types: at least one, each one
// of actors.EventTypes; duplicates dropped; kept in documentation order.
func checkTypes(types []string) ([]string, error) {
	if len(types) == 0 {
		return nil, invalid("missing_field", "event_types must list at least one event type; budget.debited is high-volume and is only sent when listed")
	}
	seen := map[string]bool{}
	for _, t := range types {
		if !slices.Contains(actors.EventTypes, t) {
			if len(t) > 64 {
				t = t[:64]
			}
			return nil, invalid("invalid_event_type", "unknown event type %q (known: %v)", t, actors.EventTypes)
		}
		seen[t] = true
	}
	out := make([]string, 0, len(seen))
	for _, t := range actors.EventTypes {
		if seen[t] {
			out = append(out, t)
		}
	}
	return out, nil
}

func validText(field, v string, max int, required bool) error {
	if v == "" {
		if required {
			return invalid("missing_field", "%s is required", field)
		}
		return nil
	}
	if len(v) > max {
		return invalid("invalid_field", "%s is longer than %d bytes", field, max)
	}
	if !utf8.ValidString(v) {
		return invalid("invalid_field", "%s is not valid UTF-8", field)
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			return invalid("invalid_field", "%s contains control characters", field)
		}
	}
	return nil
}

// CreateEndpoint registers an endpoint of platform p and returns it with
// its signing secret ("whsec_…"), which is stored sealed. It blocks on DNS
// (URL check) and on the commit.
func (s *Service) CreateEndpoint(ctx context.Context, p ids.PlatformID, in EndpointInput) (Endpoint, string, error) {
	if err := s.platformExists(ctx, p); err != nil {
		return Endpoint{}, "", err
	}
	if in.URL == nil {
		return Endpoint{}, "", invalid("missing_field", "url is required")
	}
	if err := s.checkURL(ctx, *in.URL); err != nil {
		return Endpoint{}, "", err
	}
	types, err := checkTypes(in.EventTypes)
	if err != nil {
		return Endpoint{}, "", err
	}
	desc := ""
	if in.Description != nil {
		desc = *in.Description
		if err := validText("description", desc, maxDescriptionLen, false); err != nil {
			return Endpoint{}, "", err
		}
	}
	secret, err := newSecret()
	if err != nil {
		return Endpoint{}, "", err
	}
	now := s.clk.Now()
	r := &endpointRecord{
		ID: ids.New(EndpointPrefix, now), PlatformID: string(p), URL: *in.URL, Description: desc,
		EventTypes: types, Enabled: in.Enabled == nil || *in.Enabled,
		CreatedAtMs: now.UnixMilli(), UpdatedAtMs: now.UnixMilli(),
	}
	if !r.Enabled {
		r.DisabledReason = DisabledByOperator
	}
	if r.Secret, err = s.cfg.Keyring.Seal([]byte(secret), secretAAD(r.PlatformID, r.ID, "current")); err != nil {
		return Endpoint{}, "", err
	}

	defer s.lockShared()()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return Endpoint{}, "", ErrClosed
	}
	if len(s.endpoints[p]) >= s.cfg.MaxEndpoints {
		s.mu.Unlock()
		return Endpoint{}, "", conflict("too_many_endpoints", "a platform has at most %d webhook endpoints", s.cfg.MaxEndpoints)
	}
	if s.endpoints[p] == nil {
		s.endpoints[p] = map[string]*endpoint{}
	}
	s.endpoints[p][r.ID] = &endpoint{rec: r, inflight: map[string]bool{}, nextDue: noDue}
	s.publishLocked(p)
	wait := s.persistLocked(p, []persistence.Op{persistence.Set(persistence.WebhookEndpointKey(r.PlatformID, r.ID), encode(r))})
	s.mu.Unlock()
	if err := wait(); err != nil {
		return Endpoint{}, "", err
	}
	return s.view(r, now), secret, nil
}

// lookupLocked returns platform p's endpoint eid, or ErrNotFound (also for
// another platform's endpoint).
func (s *Service) lookupLocked(p ids.PlatformID, eid string) (*endpoint, error) {
	e := s.endpoints[p][eid]
	if e == nil || e.deleted {
		return nil, notFound("webhook endpoint", eid)
	}
	return e, nil
}

// ListEndpoints returns platform p's endpoints, oldest first.
func (s *Service) ListEndpoints(p ids.PlatformID) ([]Endpoint, error) {
	ctx, cancel := context.WithTimeout(s.ctx, announceTimeout)
	defer cancel()
	if err := s.platformExists(ctx, p); err != nil {
		return nil, err
	}
	now := s.clk.Now()
	s.mu.Lock()
	out := make([]Endpoint, 0, len(s.endpoints[p]))
	for _, e := range s.endpoints[p] {
		if !e.deleted {
			out = append(out, s.view(e.rec, now))
		}
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// GetEndpoint returns platform p's endpoint eid.
func (s *Service) GetEndpoint(p ids.PlatformID, eid string) (Endpoint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.lookupLocked(p, eid)
	if err != nil {
		return Endpoint{}, err
	}
	return s.view(e.rec, s.clk.Now()), nil
}

// UpdateEndpoint changes the fields set in in. Enabling an endpoint clears
// its disabled reason and failure history; its held pending messages are
// then delivered. It blocks on DNS (a new URL) and on the commit.
func (s *Service) UpdateEndpoint(ctx context.Context, p ids.PlatformID, eid string, in EndpointInput) (Endpoint, error) {
	if in.URL != nil {
		if err := s.checkURL(ctx, *in.URL); err != nil {
			return Endpoint{}, err
		}
	}
	var types []string
	if in.EventTypes != nil {
		var err error
		if types, err = checkTypes(in.EventTypes); err != nil {
			return Endpoint{}, err
		}
	}
	if in.Description != nil {
		if err := validText("description", *in.Description, maxDescriptionLen, false); err != nil {
			return Endpoint{}, err
		}
	}
	now := s.clk.Now()
	defer s.lockShared()()
	s.mu.Lock()
	e, err := s.lookupLocked(p, eid)
	if err != nil {
		s.mu.Unlock()
		return Endpoint{}, err
	}
	r := *e.rec
	if in.URL != nil {
		r.URL = *in.URL
	}
	if types != nil {
		r.EventTypes = types
	}
	if in.Description != nil {
		r.Description = *in.Description
	}
	if in.Enabled != nil && *in.Enabled != r.Enabled {
		r.Enabled = *in.Enabled
		r.FailingSinceMs = 0
		r.DisabledReason = ""
		if !r.Enabled {
			r.DisabledReason = DisabledByOperator
		}
	}
	r.UpdatedAtMs = now.UnixMilli()
	e.rec = &r
	e.nextDue = 0 // rescan: enabling releases held messages
	s.publishLocked(p)
	wait := s.persistLocked(p, []persistence.Op{persistence.Set(persistence.WebhookEndpointKey(string(p), eid), encode(&r))})
	s.mu.Unlock()
	if err := wait(); err != nil {
		return Endpoint{}, err
	}
	s.wakeScheduler()
	return s.view(&r, now), nil
}

// DeleteEndpoint removes an endpoint with its messages and delivery log.
// Deliveries in flight finish but are not recorded.
func (s *Service) DeleteEndpoint(p ids.PlatformID, eid string) error {
	defer s.lockShared()()
	s.mu.Lock()
	e, err := s.lookupLocked(p, eid)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	e.deleted = true
	delete(s.endpoints[p], eid)
	s.publishLocked(p)
	msgs := persistence.WebhookMessagesPrefix(string(p), eid)
	due := persistence.WebhookDuePrefix(string(p), eid)
	wait := s.persistLocked(p, []persistence.Op{
		persistence.Delete(persistence.WebhookEndpointKey(string(p), eid)),
		persistence.DeleteRange(msgs, persistence.PrefixEnd(msgs)),
		persistence.DeleteRange(due, persistence.PrefixEnd(due)),
	})
	s.mu.Unlock()
	return wait()
}

// Secret reveals the endpoint's current signing secret.
func (s *Service) Secret(p ids.PlatformID, eid string) (string, error) {
	s.mu.Lock()
	e, err := s.lookupLocked(p, eid)
	var sealed []byte
	if err == nil {
		sealed = e.rec.Secret
	}
	s.mu.Unlock()
	if err != nil {
		return "", err
	}
	b, err := s.cfg.Keyring.Open(sealed, secretAAD(string(p), eid, "current"))
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// RotateSecret replaces the endpoint's signing secret with next (a
// "whsec_…" string) or, when next is empty, a fresh one. The old secret
// keeps signing beside the new one for Config.RotationOverlap, so every
// delivery meanwhile carries two v1 signatures. It returns the new secret.
func (s *Service) RotateSecret(p ids.PlatformID, eid, next string) (string, Endpoint, error) {
	if next == "" {
		var err error
		if next, err = newSecret(); err != nil {
			return "", Endpoint{}, err
		}
	} else if err := checkSecret(next); err != nil {
		return "", Endpoint{}, err
	}
	now := s.clk.Now()
	s.mu.Lock()
	e, err := s.lookupLocked(p, eid)
	if err != nil {
		s.mu.Unlock()
		return "", Endpoint{}, err
	}
	r := *e.rec
	s.mu.Unlock()

	cur, err := s.cfg.Keyring.Open(r.Secret, secretAAD(string(p), eid, "current"))
	if err != nil {
		return "", Endpoint{}, err
	}
	sealedNew, err := s.cfg.Keyring.Seal([]byte(next), secretAAD(string(p), eid, "current"))
	if err != nil {
		return "", Endpoint{}, err
	}
	var sealedOld []byte
	if s.cfg.RotationOverlap > 0 {
		if sealedOld, err = s.cfg.Keyring.Seal(cur, secretAAD(string(p), eid, "previous")); err != nil {
			return "", Endpoint{}, err
		}
	}

	defer s.lockShared()()
	s.mu.Lock()
	e, err = s.lookupLocked(p, eid)
	if err != nil {
		s.mu.Unlock()
		return "", Endpoint{}, err
	}
	if string(e.rec.Secret) != string(r.Secret) {
		s.mu.Unlock()
		return "", Endpoint{}, conflict("concurrent_rotation", "the secret was rotated concurrently; retry")
	}
	r = *e.rec
	r.Secret = sealedNew
	r.OldSecret, r.OldSecretUntilMs = sealedOld, 0
	if sealedOld != nil {
		r.OldSecretUntilMs = now.Add(s.cfg.RotationOverlap).UnixMilli()
	}
	r.UpdatedAtMs = now.UnixMilli()
	e.rec = &r
	wait := s.persistLocked(p, []persistence.Op{persistence.Set(persistence.WebhookEndpointKey(string(p), eid), encode(&r))})
	s.mu.Unlock()
	if err := wait(); err != nil {
		return "", Endpoint{}, err
	}
	return next, s.view(&r, now), nil
}

// signingSecrets opens the secrets that sign a delivery made at now: the
// current one, and the previous one during a rotation's overlap.
func (s *Service) signingSecrets(r *endpointRecord, now time.Time) ([]string, error) {
	cur, err := s.cfg.Keyring.Open(r.Secret, secretAAD(r.PlatformID, r.ID, "current"))
	if err != nil {
		return nil, err
	}
	out := []string{string(cur)}
	if len(r.OldSecret) > 0 && now.UnixMilli() < r.OldSecretUntilMs {
		old, err := s.cfg.Keyring.Open(r.OldSecret, secretAAD(r.PlatformID, r.ID, "previous"))
		if err != nil {
			return nil, err
		}
		out = append(out, string(old))
	}
	return out, nil
}
