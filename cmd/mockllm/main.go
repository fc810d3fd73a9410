// Command mockllm runs the mock LLM upstream (package mockllm) on a TCP
// address until SIGINT or SIGTERM, then shuts down gracefully.
//
//	mockllm -listen 127.0.0.1:9090 -ttft 200ms -tokens-per-second 50
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/assistiv/gateway/mockllm"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "mockllm:", err)
		stop()
		os.Exit(1)
	}
}

// run parses args into a mockllm.Config and serves until ctx ends.
func run(ctx context.Context, args []string) error {
	cfg := mockllm.DefaultConfig()
	fs := flag.NewFlagSet("mockllm", flag.ContinueOnError)
	fs.StringVar(&cfg.Listen, "listen", cfg.Listen, "TCP address to listen on")
	fs.DurationVar(&cfg.Latency, "latency", cfg.Latency, "wait before every response")
	fs.DurationVar(&cfg.TTFT, "ttft", cfg.TTFT, "time to first token")
	fs.Float64Var(&cfg.TokensPerSecond, "tokens-per-second", cfg.TokensPerSecond, "token pace after the first (0: unpaced)")
	fs.IntVar(&cfg.Tokens, "tokens", cfg.Tokens, "words in a generated text reply")
	fs.BoolVar(&cfg.TextAndTool, "text-and-tool", cfg.TextAndTool, "open every tool-call reply with a sentence of text in the same turn")
	fs.Float64Var(&cfg.ErrorRate, "error-rate", cfg.ErrorRate, "fraction of requests answered with -error-status, in [0, 1]")
	fs.IntVar(&cfg.ErrorStatus, "error-status", cfg.ErrorStatus, "HTTP status of -error-rate and fail-first failures")
	fs.StringVar(&cfg.APIKey, "api-key", cfg.APIKey, "the only accepted provider key (empty: any non-empty key)")
	fs.DurationVar(&cfg.HangMax, "hang-max", cfg.HangMax, "longest hang or stall before closing the connection")
	fs.IntVar(&cfg.RecordRequests, "record", cfg.RecordRequests, "recent requests kept per route (0: off)")
	verbose := fs.Bool("v", false, "debug logging")
	if err := fs.Parse(args); err != nil {
		return err
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if err := cfg.Validate(); err != nil {
		return err
	}
	apiKey := "(any)"
	if cfg.APIKey != "" {
		apiKey = "(set, redacted)"
	}
	cfg.Logger.Info("mockllm config", "listen", cfg.Listen, "latency", cfg.Latency, "ttft", cfg.TTFT,
		"tokens_per_second", cfg.TokensPerSecond, "tokens", cfg.Tokens, "text_and_tool", cfg.TextAndTool, "error_rate", cfg.ErrorRate,
		"error_status", cfg.ErrorStatus, "api_key", apiKey, "hang_max", cfg.HangMax, "record", cfg.RecordRequests)
	return mockllm.Run(ctx, cfg)
}
