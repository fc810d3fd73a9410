package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"time"
)

// healthcheck is `gateway healthcheck`: GET /readyz on the node this
// environment configures (ASSISTIV_LISTEN, a wildcard host read as
// loopback) and exit 0 on 200. The container image's HEALTHCHECK runs it,
// since a distroless image has no shell or curl.
func healthcheck(args []string) error {
	fl := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	listen := fl.String("listen", env("ASSISTIV_LISTEN", "127.0.0.1:8080"), "the node's listen address (ASSISTIV_LISTEN)")
	timeout := fl.Duration("timeout", 3*time.Second, "give up after this long")
	if err := fl.Parse(args); err != nil {
		return err
	}
	host, port, err := net.SplitHostPort(*listen)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", *listen, err)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	hc := &http.Client{Timeout: *timeout}
	resp, err := hc.Get("http://" + net.JoinHostPort(host, port) + "/readyz")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New("not ready: /readyz answered " + resp.Status)
	}
	return nil
}
