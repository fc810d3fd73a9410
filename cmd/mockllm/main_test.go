package main

import (
	"context"
	"testing"
	"time"
)

func TestRunRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-tokens", "0"}, {"-error-rate", "2"}, {"-nope"}, {"-listen", "256.0.0.1:1"}} {
		if err := run(context.Background(), args); err == nil {
			t.Errorf("run(%q) = nil, want an error", args)
		}
	}
}

func TestRunServesUntilCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-listen", "127.0.0.1:0", "-ttft", "10ms"}) }()
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run after cancel = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after cancel")
	}
}
