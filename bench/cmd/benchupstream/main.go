// Command benchupstream is the benchmark's trivial OpenAI-style upstream
// (package bench/upstream): a fixed chat completion, or an SSE stream of
// -chunks chunks -interval apart ending with "data: [DONE]".
//
//	benchupstream -listen 127.0.0.1:9000 -chunks 200 -interval 20ms
//
// The listen address may also come from ASSISTIV_LISTEN. SIGINT or SIGTERM
// shuts it down.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/assistiv/gateway/bench/upstream"
	"github.com/valyala/fasthttp"
)

func main() {
	cfg := upstream.DefaultConfig()
	def := "127.0.0.1:0"
	if v := os.Getenv("ASSISTIV_LISTEN"); v != "" {
		def = v
	}
	listen := flag.String("listen", def, "address to listen on (host:port); env ASSISTIV_LISTEN")
	flag.IntVar(&cfg.Chunks, "chunks", cfg.Chunks, "content chunks per stream (request header X-Bench-Chunks overrides)")
	flag.DurationVar(&cfg.ChunkInterval, "interval", cfg.ChunkInterval, "time between chunks (X-Bench-Chunk-Interval overrides)")
	flag.DurationVar(&cfg.FirstChunkDelay, "first-delay", cfg.FirstChunkDelay, "time before the first chunk")
	flag.Parse()
	if err := run(*listen, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "benchupstream:", err)
		os.Exit(1)
	}
}

func run(listen string, cfg upstream.Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	log.Printf("benchupstream: listening on %s, %d chunks every %v", ln.Addr(), cfg.Chunks, cfg.ChunkInterval)
	srv := &fasthttp.Server{
		Handler:               upstream.Handler(cfg),
		Name:                  "benchupstream",
		NoDefaultServerHeader: true,
		NoDefaultDate:         true,
		IdleTimeout:           2 * time.Minute,
		CloseOnShutdown:       true,
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sig
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.ShutdownWithContext(ctx)
	}()
	return srv.Serve(ln)
}
