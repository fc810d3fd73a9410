package cluster

import (
	"errors"
	"io"
	"log"
	"slices"
	"strings"
	"testing"
	"time"

	protocluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/hashicorp/memberlist"
)

func TestMetaRoundTrip(t *testing.T) {
	m := nodeMeta{ID: "node-a", Host: "127.0.0.1", Port: 7001, Kinds: []string{"enduser", "platform"}}
	b, err := encodeMeta(m)
	if err != nil {
		t.Fatalf("encodeMeta(%+v): %v", m, err)
	}
	got, err := decodeMeta(b)
	if err != nil || got.ID != m.ID || got.Host != m.Host || got.Port != m.Port || !slices.Equal(got.Kinds, m.Kinds) {
		t.Fatalf("decodeMeta(encodeMeta(%+v)) = %+v, %v", m, got, err)
	}
}

func TestEncodeMetaRejectsOversizeAndIncomplete(t *testing.T) {
	for name, tc := range map[string]struct {
		m    nodeMeta
		want error
	}{
		"oversize id":    {nodeMeta{ID: strings.Repeat("x", 600), Host: "h", Port: 1}, ErrMetaTooLarge},
		"too many kinds": {nodeMeta{ID: "a", Host: "h", Port: 1, Kinds: slices.Repeat([]string{"enduser"}, 60)}, ErrMetaTooLarge},
		"no id":          {nodeMeta{Host: "h", Port: 1}, errBadMeta},
		"no port":        {nodeMeta{ID: "a", Host: "h"}, errBadMeta},
		"empty kind":     {nodeMeta{ID: "a", Host: "h", Port: 1, Kinds: []string{""}}, errBadMeta},
	} {
		if _, err := encodeMeta(tc.m); !errors.Is(err, tc.want) {
			t.Errorf("%s: encodeMeta = %v, want %v", name, err, tc.want)
		}
	}
}

func TestDecodeMetaRejectsForeignBytes(t *testing.T) {
	for name, in := range map[string]string{
		"empty":    "",
		"not json": "{",
		"array":    "[1]",
		"no id":    `{"host":"h","port":1}`,
		"no host":  `{"id":"a","port":1}`,
		"bad port": `{"id":"a","host":"h","port":70000}`,
		"oversize": `{"id":"` + strings.Repeat("x", 600) + `","host":"h","port":1}`,
	} {
		if m, err := decodeMeta([]byte(in)); !errors.Is(err, errBadMeta) {
			t.Errorf("%s: decodeMeta(%.40q) = %+v, %v; want errBadMeta", name, in, m, err)
		}
	}
}

func TestMembersOfSkipsClientsAndBadMetaInIDOrder(t *testing.T) {
	meta := func(id string, port int, kinds ...string) []byte {
		b, err := encodeMeta(nodeMeta{ID: id, Host: "127.0.0.1", Port: port, Kinds: kinds})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	nodes := []*memberlist.Node{
		{Name: "c", Meta: meta("c", 9003, "platform", "enduser")},
		{Name: "client", Meta: meta("client", 9009)},
		{Name: "broken", Meta: []byte("{")},
		{Name: "none"},
		nil,
		{Name: "dup", Meta: meta("a", 9002, "enduser")},
		{Name: "a", Meta: meta("a", 9001, "enduser", "platform")},
	}
	got := membersOf(nodes)
	want := []*protocluster.Member{
		{Id: "a", Host: "127.0.0.1", Port: 9001, Kinds: []string{"enduser", "platform"}},
		{Id: "c", Host: "127.0.0.1", Port: 9003, Kinds: []string{"enduser", "platform"}},
	}
	if len(got) != len(want) {
		t.Fatalf("membersOf = %v, want %v", got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Id != w.Id || g.Host != w.Host || g.Port != w.Port || !slices.Equal(g.Kinds, w.Kinds) {
			t.Errorf("membersOf[%d] = %v, want %v", i, g, w)
		}
	}
	// The same view in another order gives the same list.
	slices.Reverse(nodes)
	again := membersOf(nodes)
	for i := range got {
		if again[i].Id != got[i].Id || again[i].Port != got[i].Port {
			t.Fatalf("membersOf depends on node order: %v vs %v", again, got)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig()
	if err := ok.Validate(); err != nil {
		t.Fatalf("DefaultConfig().Validate() = %v", err)
	}
	for name, mod := range map[string]func(*Config){
		"no bind addr":                   func(c *Config) { c.BindAddr = "" },
		"hostname bind addr":             func(c *Config) { c.BindAddr = "localhost" },
		"negative port":                  func(c *Config) { c.BindPort = -1 },
		"port too big":                   func(c *Config) { c.BindPort = 70000 },
		"bad advertise":                  func(c *Config) { c.AdvertiseAddr = "x" },
		"bad advertise port":             func(c *Config) { c.AdvertisePort = -2 },
		"advertise port, free bind port": func(c *Config) { c.AdvertisePort = 7946 },
		"debounce too long":              func(c *Config) { c.Debounce = time.Hour },
		"negative debounce":              func(c *Config) { c.Debounce = -1 },
		"leave timeout":                  func(c *Config) { c.LeaveTimeout = time.Hour },
		"seed without port":              func(c *Config) { c.Seeds = []string{"127.0.0.1"} },
		"both log outputs":               func(c *Config) { c.LogOutput, c.Logger = io.Discard, log.New(io.Discard, "", 0) },
	} {
		c := DefaultConfig()
		mod(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: Validate(%+v) = nil, want an error", name, c)
		}
	}
}
