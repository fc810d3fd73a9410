package suite

import (
	"context"

	"github.com/assistiv/gateway/bench/proc"
)

// Direct sends requests straight to the upstream: the floor every other
// variant is measured against.
type Direct struct{}

var _ Variant = Direct{}

// Name returns "direct".
func (Direct) Name() string { return "direct" }

// Start starts nothing; the upstream is already running.
func (Direct) Start(_ context.Context, env *Env) (*Instance, error) {
	return &Instance{
		BaseURL:  env.Upstream.URL,
		Procs:    []*proc.Process{env.Upstream.Process},
		Requests: DefaultTemplates(env.Upstream.URL),
		Stop:     func() {},
	}, nil
}

// BareProxy runs bench/cmd/bareproxy in front of the upstream: the cost of
// one extra fasthttp hop and nothing else.
type BareProxy struct {
	// Bin is the bareproxy binary.
	Bin string
}

var _ Variant = (*BareProxy)(nil)

// Name returns "bareproxy".
func (*BareProxy) Name() string { return "bareproxy" }

// Start starts the proxy on a free loopback port, pinned to the proxy's CPUs.
func (b *BareProxy) Start(ctx context.Context, env *Env) (*Instance, error) {
	addr, err := proc.FreeAddr()
	if err != nil {
		return nil, err
	}
	p, err := env.StartProcess(ctx, proc.Spec{
		Role: "bareproxy", Path: b.Bin, Addr: addr,
		Args: []string{"-listen", addr, "-upstream", env.Upstream.Addr},
	})
	if err != nil {
		return nil, err
	}
	url := "http://" + addr
	return &Instance{
		BaseURL:  url,
		Procs:    []*proc.Process{env.Upstream.Process, p},
		Requests: DefaultTemplates(url),
		Stop:     func() { env.Procs.Stop(p) },
	}, nil
}
