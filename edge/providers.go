package edge

import (
	"context"
	"strings"
	"sync"

	"github.com/assistiv/gateway/internal/pb"
	"github.com/assistiv/gateway/internal/secrets"
	"github.com/assistiv/gateway/providers"
	"github.com/assistiv/gateway/providers/anthropic"
	"github.com/assistiv/gateway/providers/catalog"
	"github.com/assistiv/gateway/providers/google"
	"github.com/assistiv/gateway/providers/openai"
	"github.com/assistiv/gateway/providers/xai"
)

// NewUpstreams builds one client per provider over a shared transport.
func NewUpstreams(cfg providers.Config) (map[string]Upstream, error) {
	t, err := providers.NewTransport(cfg)
	if err != nil {
		return nil, err
	}
	return map[string]Upstream{
		catalog.OpenAI:    openai.New(t),
		catalog.XAI:       xai.New(t),
		catalog.Anthropic: anthropic.New(t, anthropic.DefaultConfig()),
		catalog.Google:    google.New(t),
	}, nil
}

// Upstream is one provider's client, as the inference path uses it.
// Implementations (providers/openai, anthropic, google, xai) are safe for
// concurrent use; cancelling ctx aborts the upstream call.
type Upstream interface {
	Complete(ctx context.Context, up providers.Upstream, req *providers.ChatRequest) (*providers.ChatResponse, error)
	Stream(ctx context.Context, up providers.Upstream, req *providers.ChatRequest) (*providers.Stream, error)
}

// providerNames are the providers a platform can configure.
var providerNames = map[string]bool{catalog.OpenAI: true, catalog.Anthropic: true, catalog.Google: true, catalog.XAI: true}

func providerAAD(platform, provider string) []byte {
	return []byte("provider_key|" + platform + "|" + provider)
}

// keyCache keeps the decrypted provider key of each (platform, provider),
// with the sealed bytes it came from: a rotation produces new sealed
// bytes, which replace the entry, so a stale key is never used and the
// cache holds one key per configured provider, however often keys
// rotate. Safe for concurrent use.
type keyCache struct {
	ring *secrets.Keyring
	m    sync.Map // platform "\x00" provider → cachedKey
}

type cachedKey struct{ sealed, plain string }

func (k *keyCache) open(platform, provider string, sealed []byte) (string, error) {
	id := platform + "\x00" + provider
	if v, ok := k.m.Load(id); ok && v.(cachedKey).sealed == string(sealed) {
		return v.(cachedKey).plain, nil
	}
	plain, err := k.ring.Open(sealed, providerAAD(platform, provider))
	if err != nil {
		return "", err
	}
	k.m.Store(id, cachedKey{sealed: string(sealed), plain: string(plain)})
	return string(plain), nil
}

// len is how many keys the cache holds (tests).
func (k *keyCache) len() int {
	n := 0
	k.m.Range(func(_, _ any) bool { n++; return true })
	return n
}

type providerIn struct {
	APIKey  *string `json:"api_key"`
	BaseURL *string `json:"base_url"`
	Enabled *bool   `json:"enabled"`
}

type providerJSON struct {
	Object      string `json:"object"`
	Provider    string `json:"provider"`
	Enabled     bool   `json:"enabled"`
	BaseURL     string `json:"base_url,omitempty"`
	APIKeyLast4 string `json:"api_key_last4"`
	UpdatedAt   string `json:"updated_at"`
}

func providerView(c *pb.ProviderConfig) providerJSON {
	return providerJSON{Object: "llm_provider", Provider: c.Provider, Enabled: c.Enabled, BaseURL: c.BaseUrl,
		APIKeyLast4: "…" + c.KeyLast4, UpdatedAt: ts(c.UpdatedAtMs)}
}

// putProvider configures a platform's provider: the key is sealed here, so
// only ciphertext reaches the actor, the store and every snapshot.
func (s *Server) putProvider(c *call) error {
	name := c.param("provider")
	if !providerNames[name] {
		return errNotFound("provider " + name)
	}
	var in providerIn
	if err := c.decodeJSON(&in, false); err != nil {
		return err
	}
	m := &pb.SetProvider{Config: &pb.ProviderConfig{Provider: name}}
	if in.APIKey != nil {
		k := strings.TrimSpace(*in.APIKey)
		if len(k) < 8 || len(k) > 512 {
			return errBadRequest("invalid_field", "api_key must be 8 to 512 characters")
		}
		if s.deps.Secrets == nil {
			return &apiError{Status: 503, Type: typeInternal, Code: "secrets_unavailable", Message: "no master key is loaded"}
		}
		sealed, err := s.deps.Secrets.Seal([]byte(k), providerAAD(string(c.platformID()), name))
		if err != nil {
			return err
		}
		m.Config.SealedApiKey, m.Config.KeyLast4, m.SetKey = sealed, k[len(k)-4:], true
	}
	if in.BaseURL != nil {
		u := strings.TrimRight(strings.TrimSpace(*in.BaseURL), "/")
		if u != "" {
			if err := s.deps.Egress.CheckURL(u, !s.deps.Egress.AllowPrivate); err != nil {
				return errBadRequest("invalid_base_url", "base_url refused: %v", err)
			}
		}
		m.Config.BaseUrl, m.SetBaseUrl = u, true
	}
	if in.Enabled != nil {
		m.Config.Enabled, m.SetEnabled = *in.Enabled, true
	}
	res, err := c.askPlatform(m)
	if err != nil {
		return err
	}
	return c.writeJSON(200, providerView(res.(*pb.ProviderView).Config))
}

func (s *Server) listProviders(c *call) error {
	res, err := c.askPlatform(&pb.GetPlatform{})
	if err != nil {
		return err
	}
	out := listJSON[providerJSON]{Object: "list", Data: []providerJSON{}}
	for _, name := range []string{catalog.OpenAI, catalog.Anthropic, catalog.Google, catalog.XAI} {
		if pc := res.(*pb.PlatformView).Platform.Providers[name]; pc != nil {
			out.Data = append(out.Data, providerView(pc))
		}
	}
	return c.writeJSON(200, out)
}

func (s *Server) deleteProvider(c *call) error {
	name := c.param("provider")
	if !providerNames[name] {
		return errNotFound("provider " + name)
	}
	if _, err := c.askPlatform(&pb.SetProvider{Config: &pb.ProviderConfig{Provider: name}, Delete: true}); err != nil {
		return err
	}
	return c.writeJSON(200, map[string]any{"object": "llm_provider", "provider": name, "deleted": true})
}

// models lists, in OpenAI's format, the catalog models of the providers the
// platform has enabled. Mock-only models are listed when the provider
// points at a custom base URL (the mock upstream of the demo and tests).
func (s *Server) models(c *call) error {
	res, err := c.ask(platformOf(c), &pb.GetPlatform{})
	if err != nil {
		return err
	}
	p := res.(*pb.PlatformView).Platform
	type model struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Created int64  `json:"created"`
		OwnedBy string `json:"owned_by"`
	}
	out := struct {
		Object string  `json:"object"`
		Data   []model `json:"data"`
	}{Object: "list", Data: []model{}}
	for _, m := range catalog.Models() {
		pc := p.Providers[m.Provider]
		if pc == nil || !pc.Enabled || (m.Mock && pc.BaseUrl == "") {
			continue
		}
		out.Data = append(out.Data, model{ID: m.ID, Object: "model", Created: p.CreatedAtMs / 1000, OwnedBy: m.Provider})
	}
	return c.writeJSON(200, out)
}
