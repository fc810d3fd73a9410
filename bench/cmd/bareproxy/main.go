// Command bareproxy is the benchmark's bare fasthttp reverse proxy (package
// bench/proxy) as a process of its own, so that it can be pinned and
// measured like the gateway.
//
//	bareproxy -listen 127.0.0.1:9001 -upstream 127.0.0.1:9000
//
// SIGINT or SIGTERM shuts it down.
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

	"github.com/assistiv/gateway/bench/proxy"
)

func main() {
	cfg := proxy.DefaultConfig()
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on (host:port)")
	flag.StringVar(&cfg.Upstream, "upstream", "", "upstream host:port (required)")
	flag.IntVar(&cfg.MaxConns, "max-conns", cfg.MaxConns, "maximum connections to the upstream")
	flag.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "upstream exchange timeout, including streaming")
	flag.Parse()
	if err := run(*listen, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bareproxy:", err)
		os.Exit(1)
	}
}

func run(listen string, cfg proxy.Config) error {
	p, err := proxy.New(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	log.Printf("bareproxy: listening on %s, upstream %s", ln.Addr(), cfg.Upstream)
	srv := p.Server()
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
