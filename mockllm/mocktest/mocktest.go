// Package mocktest starts a [mockllm.Server] for a test: on a random
// 127.0.0.1 port, closed by the test's cleanup. It is separate from mockllm
// so that the mock binary does not link package testing.
package mocktest

import (
	"net"
	"testing"

	"github.com/assistiv/gateway/mockllm"
)

// Start serves a mock with cfg on 127.0.0.1 and returns its base URL
// ("http://127.0.0.1:PORT", no trailing slash) and the server, which is
// closed when tb's test ends. It fails tb if cfg is invalid or the listener
// cannot be opened.
func Start(tb testing.TB, cfg mockllm.Config) (baseURL string, srv *mockllm.Server) {
	tb.Helper()
	if err := cfg.Validate(); err != nil {
		tb.Fatalf("mocktest.Start: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("mocktest.Start: listen: %v", err)
	}
	srv = mockllm.New(cfg)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	tb.Cleanup(func() {
		if err := srv.Close(); err != nil {
			tb.Errorf("mockllm Close: %v", err)
		}
		if err := <-done; err != nil {
			tb.Errorf("mockllm Serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String(), srv
}
