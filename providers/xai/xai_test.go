package xai

import (
	"context"
	"errors"
	"testing"

	"github.com/assistiv/gateway/providers"
)

func TestXAIUsesOwnNameAndDefaultBase(t *testing.T) {
	tr, err := providers.NewTransport(providers.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	c := New(tr)
	if c.Name() != Name {
		t.Errorf("Name() = %q, want %q", c.Name(), Name)
	}
	req := &providers.ChatRequest{Model: "xai/grok-4", Messages: []providers.Message{{Role: "user", Content: providers.TextContent("hi")}}}
	_, err = c.Complete(context.Background(), providers.Upstream{}, req)
	var e *providers.Error
	if !errors.As(err, &e) || !errors.Is(err, providers.ErrBadUpstream) || e.Provider != Name {
		t.Errorf("Complete without key = %v, want ErrBadUpstream from xai", err)
	}
}
