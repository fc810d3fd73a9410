package mcp

import (
	"context"
	"fmt"
	"time"

	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/oauthconn"
)

// The OAuth side (activations, connect flow, connections) is package
// oauthconn; the Service exposes it to the edge under the names it had.

// Errors of the connect flow and activations (see package oauthconn).
var (
	ErrUnknownApp      = oauthconn.ErrUnknownApp
	ErrAppNotActive    = oauthconn.ErrAppNotActive
	ErrNotConnected    = oauthconn.ErrNotConnected
	ErrInvalid         = oauthconn.ErrInvalid
	ErrInvalidState    = oauthconn.ErrInvalidState
	ErrNoKeyring       = oauthconn.ErrNoKeyring
	ErrConfirmMismatch = oauthconn.ErrConfirmMismatch
)

// Types of the activation and connection views (see package oauthconn).
type (
	AppInput       = oauthconn.AppInput
	AppView        = oauthconn.AppView
	UserApp        = oauthconn.UserApp
	CallbackResult = oauthconn.CallbackResult
)

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// PutApp applies the operator's PUT of one app (see oauthconn).
func (s *Service) PutApp(ctx context.Context, pid ids.PlatformID, app string, in AppInput) (AppView, error) {
	return s.conns.PutApp(ctx, pid, app, in)
}

// ListApps returns every supported app with the platform's configuration.
func (s *Service) ListApps(pid ids.PlatformID) ([]AppView, error) { return s.conns.ListApps(pid) }

// UserApps lists the apps the platform activated with the end-user's
// connection state.
func (s *Service) UserApps(pid ids.PlatformID, eid ids.EndUserID) ([]UserApp, error) {
	return s.conns.UserApps(pid, eid)
}

// Connect starts the end-user's authorization of app and returns the
// authorization URL.
func (s *Service) Connect(ctx context.Context, pid ids.PlatformID, eid ids.EndUserID, app string) (string, error) {
	return s.conns.Connect(ctx, pid, eid, app)
}

// Callback completes an authorization at the OAuth callback.
func (s *Service) Callback(ctx context.Context, code, state, authError string) (CallbackResult, error) {
	return s.conns.Callback(ctx, code, state, authError)
}

// Confirm completes a connect flow for the end-user who started it.
func (s *Service) Confirm(ctx context.Context, pid ids.PlatformID, eid ids.EndUserID, app, token string) error {
	return s.conns.Confirm(ctx, pid, eid, app, token)
}

// Disconnect deletes the end-user's connection to app (idempotent).
func (s *Service) Disconnect(pid ids.PlatformID, eid ids.EndUserID, app string) error {
	return s.conns.Disconnect(pid, eid, app)
}

// SweepPending deletes the pending authorizations expired at now.
func (s *Service) SweepPending(now time.Time) (int, error) { return s.conns.SweepPending(now) }

// CountPending returns how many pending authorization records are stored.
func (s *Service) CountPending() (int, error) { return s.conns.CountPending() }
