package main

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"
)

// clearGatewayEnv unsets every ASSISTIV_* and OTEL_* variable for the test.
func clearGatewayEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "ASSISTIV_") || strings.HasPrefix(k, "OTEL_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
}

// TestConfigPrintsEffectiveSettingsWithSecretsRedacted: every setting is
// printed with its source, and no secret's value appears.
func TestConfigPrintsEffectiveSettingsWithSecretsRedacted(t *testing.T) {
	clearGatewayEnv(t)
	secretsSet := map[string]string{
		"ASSISTIV_ADMIN_KEY":             "admin-secret-0123456789",
		"ASSISTIV_MASTER_KEY":            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
		"ASSISTIV_STRIPE_SECRET_KEY":     "sk_test_supersecret",
		"ASSISTIV_STRIPE_WEBHOOK_SECRET": "whsec_supersecret",
		"ASSISTIV_CLUSTER_KEY":           "HxwdHhsaGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA=",
		"OTEL_EXPORTER_OTLP_HEADERS":     "authorization=Bearer otel-token-secret",
	}
	for k, v := range secretsSet {
		t.Setenv(k, v)
	}
	t.Setenv("ASSISTIV_POSTGRES_URL", "postgres://gw:pg-password-secret@db:5432/gw?sslmode=disable")
	t.Setenv("ASSISTIV_CLUSTER_BIND", "0.0.0.0:7946")
	t.Setenv("ASSISTIV_CLUSTER_JOIN", "gw-0.gw:7946, gw-1.gw:7946")
	t.Setenv("ASSISTIV_CLUSTER_REMOTE", "0.0.0.0:8090")
	t.Setenv("ASSISTIV_NODE_NAME", "gw-0")
	t.Setenv("ASSISTIV_CLUSTER_TAKEOVER_CREDIT_USD", "2.50")
	t.Setenv("ASSISTIV_LOG_LEVEL", "debug")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
	t.Setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
	t.Setenv("OTEL_TRACES_SAMPLER_ARG", "0.01")
	var out, errOut bytes.Buffer
	if err := configCmd([]string{"-listen", "0.0.0.0:9000"}, &out, &errOut); err != nil {
		t.Fatalf("configCmd: %v\n%s", err, errOut.String())
	}
	got := out.String()
	for _, v := range append(mapValues(secretsSet), "pg-password-secret", "otel-token-secret") {
		if strings.Contains(got, v) {
			t.Errorf("output shows a secret %q:\n%s", v, got)
		}
	}
	for _, want := range []string{
		"ASSISTIV_LISTEN=0.0.0.0:9000", "flag -listen",
		"ASSISTIV_LOG_LEVEL=debug", "ASSISTIV_DATA_DIR=./data",
		"ASSISTIV_POSTGRES_URL=postgres://gw:redacted@db:5432/gw?sslmode=disable",
		"ASSISTIV_ADMIN_KEY=<redacted>", "ASSISTIV_CLUSTER_KEY=<redacted>", "ASSISTIV_METRICS_TOKEN= ",
		"ASSISTIV_CLUSTER_JOIN=gw-0.gw:7946, gw-1.gw:7946",
		"ASSISTIV_CLUSTER_TAKEOVER_CREDIT_USD=2.50",
		`# mode: cluster, node "gw-0", memberlist on 0.0.0.0:7946`,
		"# tracing: OTLP/HTTP, sampler parentbased_traceidratio 0.01",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}

func mapValues(m map[string]string) []string {
	var vs []string
	for _, v := range m {
		vs = append(vs, v)
	}
	return vs
}

// TestConfigRefusesContradictions: each contradictory or unreadable
// setting is refused with its own message naming the variables, and serve
// refuses the same settings.
func TestConfigRefusesContradictions(t *testing.T) {
	for _, c := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"cluster without postgres", clusterEnv(map[string]string{"ASSISTIV_POSTGRES_URL": ""}), "cluster mode (ASSISTIV_CLUSTER_BIND) needs ASSISTIV_POSTGRES_URL"},
		{"cluster without key", clusterEnv(map[string]string{"ASSISTIV_CLUSTER_KEY": ""}), "cluster mode needs ASSISTIV_CLUSTER_KEY"},
		{"cluster without master key", clusterEnv(map[string]string{"ASSISTIV_MASTER_KEY": ""}), "cluster mode needs ASSISTIV_MASTER_KEY"},
		{"cluster settings without bind", map[string]string{"ASSISTIV_CLUSTER_REMOTE": "127.0.0.1:1", "ASSISTIV_CLUSTER_KEY": "x"}, "ASSISTIV_CLUSTER_REMOTE, ASSISTIV_CLUSTER_KEY set without ASSISTIV_CLUSTER_BIND or ASSISTIV_CLUSTER_JOIN"},
		{"short cluster key", clusterEnv(map[string]string{"ASSISTIV_CLUSTER_KEY": "c2hvcnQ="}), "ASSISTIV_CLUSTER_KEY must be standard base64 of 32 bytes"},
		{"bind equals remote", clusterEnv(map[string]string{"ASSISTIV_CLUSTER_REMOTE": "127.0.0.1:7946"}), "need their own ports"},
		{"bad take-over credit", clusterEnv(map[string]string{"ASSISTIV_CLUSTER_TAKEOVER_CREDIT_USD": "-1"}), `ASSISTIV_CLUSTER_TAKEOVER_CREDIT_USD="-1" must be a USD amount of zero or more`},
		{"bad join seed", clusterEnv(map[string]string{"ASSISTIV_CLUSTER_JOIN": "a:1,nohost"}), `seed "nohost" is not host:port`},
		{"stripe half", map[string]string{"ASSISTIV_STRIPE_SECRET_KEY": "sk_test_x"}, "set both ASSISTIV_STRIPE_SECRET_KEY and ASSISTIV_STRIPE_WEBHOOK_SECRET"},
		{"metrics on the main port", map[string]string{"ASSISTIV_LISTEN": "127.0.0.1:8080", "ASSISTIV_METRICS_LISTEN": "127.0.0.1:8080"}, "listen and metrics listener both use 127.0.0.1:8080"},
		{"metrics token and listener", map[string]string{"ASSISTIV_METRICS_TOKEN": "0123456789abcdef", "ASSISTIV_METRICS_LISTEN": "127.0.0.1:9100"}, "the token would guard nothing"},
		{"bad duration", map[string]string{"ASSISTIV_SNAPSHOT_INTERVAL": "10"}, `ASSISTIV_SNAPSHOT_INTERVAL="10" is not a duration`},
		{"bad master key", map[string]string{"ASSISTIV_MASTER_KEY": "not-base64"}, "ASSISTIV_MASTER_KEY must be standard base64 of 32 bytes"},
		{"short admin key", map[string]string{"ASSISTIV_ADMIN_KEY": "short"}, "ASSISTIV_ADMIN_KEY must be at least 16 characters"},
		{"grpc exporter", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "exports OTLP over HTTP only"},
		{"ratio without ratio sampler", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_SAMPLER_ARG": "0.01"}, "the ratio applies only to traceidratio"},
		{"content without tracing", map[string]string{"ASSISTIV_TRACE_CONTENT": "true"}, "ASSISTIV_TRACE_CONTENT=true but tracing is off"},
		{"bad durability", map[string]string{"ASSISTIV_BILLING_DURABILITY": "maybe"}, `billing durability "maybe" must be sync or batch`},
	} {
		t.Run(c.name, func(t *testing.T) {
			clearGatewayEnv(t)
			for k, v := range c.env {
				if v != "" {
					t.Setenv(k, v)
				}
			}
			var out, errOut bytes.Buffer
			err := configCmd(nil, &out, &errOut)
			if err == nil {
				t.Fatalf("configCmd accepted %v:\n%s", c.env, out.String())
			}
			lines := strings.Split(strings.TrimSpace(errOut.String()), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], c.want) {
				t.Errorf("configCmd(%v) said %q, want one line containing %q", c.env, errOut.String(), c.want)
			}
			if out.Len() != 0 {
				t.Errorf("configCmd printed a configuration it refused:\n%s", out.String())
			}
			var o options
			fs := serveFlags(&o)
			if err := fs.Parse(nil); err != nil {
				t.Fatal(err)
			}
			_ = readEnvOnly(&o, fs)
			if err := refuseProblems(o); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("serve's check = %v, want %q", err, c.want)
			}
		})
	}
}

// clusterEnv is a complete cluster node's environment with overrides ("": unset).
func clusterEnv(over map[string]string) map[string]string {
	m := map[string]string{
		"ASSISTIV_CLUSTER_BIND": "127.0.0.1:7946", "ASSISTIV_POSTGRES_URL": "postgres://db/x",
		"ASSISTIV_CLUSTER_KEY": "HxwdHhsaGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA=",
		"ASSISTIV_MASTER_KEY":  "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
		"ASSISTIV_ADMIN_KEY":   "admin-secret-0123456789",
	}
	for k, v := range over {
		m[k] = v
	}
	return m
}

// TestConfigDefaultsAccepted: no variables at all is a valid single node.
func TestConfigDefaultsAccepted(t *testing.T) {
	clearGatewayEnv(t)
	var out, errOut bytes.Buffer
	if err := configCmd(nil, &out, &errOut); err != nil {
		t.Fatalf("configCmd: %v: %s", err, errOut.String())
	}
	for _, want := range []string{`# mode: single node`, `# tracing: off`, `ASSISTIV_LISTEN=127\.0\.0\.1:8080 +# default`} {
		if !regexp.MustCompile(want).MatchString(out.String()) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
