package cluster

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"time"
)

// Config configures a [Provider]. The zero value is not valid; start from
// [DefaultConfig].
type Config struct {
	// BindAddr is the IP address memberlist gossips on (TCP and UDP).
	// Default "127.0.0.1"; "0.0.0.0" listens on every interface.
	BindAddr string
	// BindPort is the gossip port. 0 picks a free port (tests); read it
	// back with [Provider.GossipAddr]. Default 0, range 0..65535.
	BindPort int
	// AdvertiseAddr, when set, is the IP address other nodes use to reach
	// this one (behind NAT, or when BindAddr is 0.0.0.0). Default "": the
	// bound address.
	AdvertiseAddr string
	// AdvertisePort, when set, is the port other nodes use. Default 0: the
	// bound port. Range 0..65535; must be 0 when BindPort is 0 (memberlist
	// then advertises the port it picked).
	AdvertisePort int
	// Seeds are host:port gossip addresses of existing members to join at
	// start. Empty starts a new cluster. Joining succeeds when at least one
	// seed answers.
	Seeds []string
	// NodeName is this node's memberlist name; it must be unique in the
	// cluster. Default "": the protoactor member id (ActorSystem.ID), which
	// is fresh on every start — what protoactor expects, since a member id
	// that left is blocked for good.
	NodeName string
	// Debounce is how long the publisher gathers membership changes before
	// one publication. Default 100 ms, range 0..10 s (0 publishes on every
	// signal, still from the one goroutine).
	Debounce time.Duration
	// LeaveTimeout bounds a graceful leave's broadcast. Default 2 s, range
	// 0..1 min.
	LeaveTimeout time.Duration
	// ProbeInterval is how often memberlist probes one other member, and
	// SuspicionMult how many probe intervals (× log10 of the member count,
	// at least 1) a member that did not answer stays suspect before it is
	// declared dead (up to twice that when no other member confirms the
	// suspicion). A crashed node's accounts are taken over once it is
	// dead: with the defaults (500 ms, 2) that is within about 3.5 s of
	// the crash (N−1 probe intervals until it is probed, a 300 ms probe
	// timeout, 1–2 s of suspicion). Defaults 500 ms (range 100 ms..10 s)
	// and 2 (1..10).
	ProbeInterval time.Duration
	SuspicionMult int
	// SecretKey, when set, is memberlist's keyring key (16, 24 or 32
	// bytes: AES-128/192/256-GCM): gossip is encrypted and authenticated,
	// and gossip not sealed with it is dropped. Node.Start sets it to the
	// cluster key.
	SecretKey []byte
	// LogOutput receives memberlist's log lines. At most one of LogOutput
	// and Logger may be set; with neither, logs are discarded.
	LogOutput io.Writer
	// Logger receives memberlist's log lines (see LogOutput).
	Logger *log.Logger
}

// DefaultConfig returns the defaults documented on [Config].
func DefaultConfig() Config {
	return Config{
		BindAddr:     "127.0.0.1",
		Debounce:     100 * time.Millisecond,
		LeaveTimeout: 2 * time.Second,
		// Faster than memberlist's LAN defaults (1 s, 4): crash take-over
		// within 5 s (README "Cluster", "Crash").
		ProbeInterval: 500 * time.Millisecond,
		SuspicionMult: 2,
	}
}

// Validate reports the first invalid field, or nil.
func (c Config) Validate() error {
	switch {
	case net.ParseIP(c.BindAddr) == nil:
		return fmt.Errorf("cluster: BindAddr %q is not an IP address", c.BindAddr)
	case c.BindPort < 0 || c.BindPort > 65535:
		return fmt.Errorf("cluster: BindPort %d out of range 0..65535", c.BindPort)
	case c.AdvertiseAddr != "" && net.ParseIP(c.AdvertiseAddr) == nil:
		return fmt.Errorf("cluster: AdvertiseAddr %q is not an IP address", c.AdvertiseAddr)
	case c.AdvertisePort < 0 || c.AdvertisePort > 65535:
		return fmt.Errorf("cluster: AdvertisePort %d out of range 0..65535", c.AdvertisePort)
	case c.AdvertisePort != 0 && c.BindPort == 0:
		return errors.New("cluster: AdvertisePort needs a fixed BindPort")
	case c.Debounce < 0 || c.Debounce > 10*time.Second:
		return fmt.Errorf("cluster: Debounce %s out of range 0..10s", c.Debounce)
	case c.LeaveTimeout < 0 || c.LeaveTimeout > time.Minute:
		return fmt.Errorf("cluster: LeaveTimeout %s out of range 0..1m", c.LeaveTimeout)
	case len(c.SecretKey) != 0 && len(c.SecretKey) != 16 && len(c.SecretKey) != 24 && len(c.SecretKey) != 32:
		return fmt.Errorf("cluster: SecretKey has %d bytes, want 16, 24 or 32", len(c.SecretKey))
	case c.ProbeInterval < 100*time.Millisecond || c.ProbeInterval > 10*time.Second:
		return fmt.Errorf("cluster: ProbeInterval %s out of range 100ms..10s", c.ProbeInterval)
	case c.SuspicionMult < 1 || c.SuspicionMult > 10:
		return fmt.Errorf("cluster: SuspicionMult %d out of range 1..10", c.SuspicionMult)
	case c.LogOutput != nil && c.Logger != nil:
		return errors.New("cluster: set at most one of LogOutput and Logger")
	}
	for _, s := range c.Seeds {
		if _, _, err := net.SplitHostPort(s); err != nil {
			return fmt.Errorf("cluster: seed %q: %w", s, err)
		}
	}
	return nil
}
