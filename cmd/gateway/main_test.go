package main

import (
	"strings"
	"testing"
	"time"
)

// TestParseStripeNeedsBothSecrets: Stripe is on with both secrets, off
// with neither, and a half configuration refuses to start.
func TestParseStripeNeedsBothSecrets(t *testing.T) {
	for _, c := range []struct {
		key, whsec string
		ok         bool
	}{{"", "", true}, {"sk_test_1", "whsec_1", true}, {"sk_test_1", "", false}, {"", "whsec_1", false}} {
		t.Setenv("ASSISTIV_STRIPE_SECRET_KEY", c.key)
		t.Setenv("ASSISTIV_STRIPE_WEBHOOK_SECRET", c.whsec)
		t.Setenv("ASSISTIV_STRIPE_API_BASE", "http://127.0.0.1:12111")
		o, err := parse(nil)
		if (err == nil) != c.ok {
			t.Errorf("key %q whsec %q: err = %v, want ok=%v", c.key, c.whsec, err, c.ok)
			continue
		}
		if err != nil && !strings.Contains(err.Error(), "ASSISTIV_STRIPE_WEBHOOK_SECRET") {
			t.Errorf("error %q does not name the variables", err)
		}
		if err == nil && (o.stripeSecretKey != c.key || o.stripeWebhookSecret != c.whsec || o.stripeAPIBase != "http://127.0.0.1:12111") {
			t.Errorf("options = %+v", o)
		}
	}
}

// TestParseCluster: without BIND/JOIN the node is single; cluster mode
// needs a valid key and Postgres (clear errors naming the variables) and
// snapshots every second unless told otherwise.
func TestParseCluster(t *testing.T) {
	const key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // 32 bytes
	const adm = "admin-key-of-the-cluster"
	for _, c := range []struct {
		name                    string
		bind, join, k, pg, snap string
		master, admin           string
		wantErr                 string
		cluster                 bool
		interval                time.Duration
	}{
		{name: "single", interval: 10 * time.Second},
		{name: "single, stray key", k: key, wantErr: "need cluster mode"},
		{name: "no key", bind: "127.0.0.1:7946", pg: "postgres://x", wantErr: "ASSISTIV_CLUSTER_KEY"},
		{name: "short key", bind: "127.0.0.1:7946", k: "c2hvcnQ=", pg: "postgres://x", wantErr: "ASSISTIV_CLUSTER_KEY"},
		{name: "no postgres", bind: "127.0.0.1:7946", k: key, master: key, admin: adm, wantErr: "ASSISTIV_POSTGRES_URL"},
		{name: "bad bind", bind: "localhost:7946", k: key, pg: "postgres://x", wantErr: "ASSISTIV_CLUSTER_BIND"},
		{name: "bad seed", join: "127.0.0.1", k: key, pg: "postgres://x", wantErr: "ASSISTIV_CLUSTER_JOIN"},
		{name: "no master key", bind: "127.0.0.1:7946", k: key, pg: "postgres://x", admin: adm, wantErr: "ASSISTIV_MASTER_KEY"},
		{name: "no admin key", bind: "127.0.0.1:7946", k: key, pg: "postgres://x", master: key, wantErr: "ASSISTIV_ADMIN_KEY"},
		{name: "cluster", bind: "127.0.0.1:7946", join: "127.0.0.1:7947", k: key, pg: "postgres://x", master: key, admin: adm, cluster: true, interval: time.Second},
		{name: "cluster, interval set", bind: "127.0.0.1:7946", k: key, pg: "postgres://x", snap: "5s", master: key, admin: adm, cluster: true, interval: 5 * time.Second},
	} {
		t.Setenv("ASSISTIV_CLUSTER_BIND", c.bind)
		t.Setenv("ASSISTIV_CLUSTER_JOIN", c.join)
		t.Setenv("ASSISTIV_CLUSTER_KEY", c.k)
		t.Setenv("ASSISTIV_POSTGRES_URL", c.pg)
		t.Setenv("ASSISTIV_SNAPSHOT_INTERVAL", c.snap)
		t.Setenv("ASSISTIV_NODE_NAME", "n1")
		t.Setenv("ASSISTIV_MASTER_KEY", c.master)
		t.Setenv("ASSISTIV_ADMIN_KEY", c.admin)
		o, err := parse(nil)
		switch {
		case c.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%s: err = %v, want one naming %s", c.name, err, c.wantErr)
			}
		case err != nil:
			t.Errorf("%s: %v", c.name, err)
		case (o.clusterKey != nil) != c.cluster || o.snapshotInterval != c.interval:
			t.Errorf("%s: cluster %v interval %s, want %v %s", c.name, o.clusterKey != nil, o.snapshotInterval, c.cluster, c.interval)
		}
	}
}
