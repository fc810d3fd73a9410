package main

import (
	"context"
	"log/slog"
	"net"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/assistiv/gateway/dashboard"
	"github.com/assistiv/gateway/edge"
	"github.com/assistiv/gateway/internal/clock"
)

// dashboardServer serves the dashboard on its own address
// (ASSISTIV_DASHBOARD_LISTEN).
type dashboardServer struct {
	srv *fasthttp.Server
	ln  net.Listener
}

func (d *dashboardServer) Serve() error { return d.srv.Serve(d.ln) }

// Shutdown stops accepting and waits, at most until ctx ends, for the
// dashboard's in-flight requests.
func (d *dashboardServer) Shutdown(ctx context.Context) { _ = d.srv.ShutdownWithContext(ctx) }

// newDashboard builds the web dashboard and mounts it at /dashboard on the
// gateway's listener, or, with -dashboard-listen, returns a server for it
// on that address. Cookies are Secure when the public URL is https.
func newDashboard(o options, srv *edge.Server, store dashboard.Records, clk clock.Clock, log *slog.Logger, digest [32]byte) (*dashboardServer, error) {
	cfg := dashboard.DefaultConfig()
	cfg.AdminKeyDigest = digest
	if o.publicURL != "http://127.0.0.1:8080" { // the default: links use the request's host
		cfg.PublicURL = o.publicURL
	}
	cfg.SecureCookies = strings.HasPrefix(o.publicURL, "https://")
	d, err := dashboard.New(cfg, dashboard.Deps{Edge: srv, Store: store, Clock: clk, Log: log})
	if err != nil {
		return nil, err
	}
	if o.dashboardListen == "" {
		srv.Mount(dashboard.Prefix, d.Handler())
		return nil, nil
	}
	ln, err := net.Listen("tcp", o.dashboardListen)
	if err != nil {
		return nil, err
	}
	h := d.Handler()
	log.Info("dashboard listening", "addr", ln.Addr().String())
	return &dashboardServer{ln: ln, srv: &fasthttp.Server{Name: "assistiv-dashboard", Handler: func(ctx *fasthttp.RequestCtx) {
		if p := string(ctx.Path()); p == "/" {
			ctx.Redirect(dashboard.Prefix+"/", fasthttp.StatusFound)
			return
		}
		h(ctx)
	}, ReadTimeout: edge.DefaultConfig().ReadTimeout, WriteTimeout: edge.DefaultConfig().WriteTimeout}}, nil
}
