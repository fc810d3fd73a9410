package main

import (
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/assistiv/gateway/actors"
	"github.com/assistiv/gateway/internal/secrets"
)

// gateway config prints the configuration serve would run with: every
// flag with its ASSISTIV_* variable, the variables without a flag (the
// secrets, the cluster, tracing), each with where its value came from.
// Secrets print as "<redacted>"; a Postgres URL keeps everything but its
// password. Settings that contradict each other or cannot be read are
// refused, one message each, and serve refuses the same ones at start-up
// ([refuseProblems]).

// envSetting is a variable read without a flag.
type envSetting struct {
	name   string
	secret bool
	doc    string
}

// envOnly lists the variables that have no flag, in print order.
var envOnly = []envSetting{
	{"ASSISTIV_ADMIN_KEY", true, "operator key (at least 16 characters); unset: the stored digest, or one generated on first start"},
	{"ASSISTIV_MASTER_KEY", true, "standard base64 of 32 bytes; unset: the key file in the data dir"},
	{"ASSISTIV_METRICS_TOKEN", true, "bearer token for /metrics on the main listener (at least 16 characters)"},
	{"ASSISTIV_STRIPE_SECRET_KEY", true, "Stripe secret key (with the webhook secret, or neither)"},
	{"ASSISTIV_STRIPE_WEBHOOK_SECRET", true, "Stripe webhook signing secret"},
	{"ASSISTIV_STRIPE_API_BASE", false, "Stripe API base URL (tests: stripe-mock)"},
	{"ASSISTIV_NODE_NAME", false, "this node's name in the cluster (default: the host name)"},
	{"ASSISTIV_CLUSTER_BIND", false, "memberlist bind address; set: cluster mode"},
	{"ASSISTIV_CLUSTER_ADVERTISE", false, "memberlist address the other nodes reach"},
	{"ASSISTIV_CLUSTER_JOIN", false, "comma-separated seed addresses"},
	{"ASSISTIV_CLUSTER_REMOTE", false, "protoactor remote address"},
	{"ASSISTIV_CLUSTER_KEY", true, "standard base64 of 32 bytes: authenticates and encrypts cluster traffic"},
	{"ASSISTIV_CLUSTER_TAKEOVER_CREDIT_USD", false, "what an account taken over from a crashed node may spend until that node's tail is recovered or it is declared lost (default " + defaultTakeoverCredit + ")"},
	{"ASSISTIV_OPERATOR_SOCKET", false, "unix socket of `gateway backup` (default DATA_DIR/gateway.sock; off: none)"},
	{"ASSISTIV_TRACE_CONTENT", false, "true: spans carry prompts and completions (off by default)"},
	{"OTEL_EXPORTER_OTLP_ENDPOINT", false, "OTLP/HTTP collector base URL; unset: tracing off"},
	{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", false, "OTLP/HTTP traces URL (overrides the base URL)"},
	{"OTEL_EXPORTER_OTLP_PROTOCOL", false, "http/protobuf (the only one supported)"},
	{"OTEL_EXPORTER_OTLP_HEADERS", true, "headers sent to the collector (often a token)"},
	{"OTEL_SERVICE_NAME", false, "service.name of the spans (default assistiv-gateway)"},
	{"OTEL_TRACES_SAMPLER", false, "default parentbased_always_on"},
	{"OTEL_TRACES_SAMPLER_ARG", false, "ratio in [0,1] for the traceidratio samplers"},
	{"OTEL_SDK_DISABLED", false, "true: tracing off"},
}

// envOfUsage finds the variable a flag's usage names at its end.
var envOfUsage = regexp.MustCompile(`\((ASSISTIV_[A-Z0-9_]+)\)$`)

// configCmd is `gateway config [serve flags]`.
func configCmd(args []string, stdout, stderr io.Writer) error {
	var o options
	fs := serveFlags(&o)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	envErr := readEnvOnly(&o, fs)
	probs := configProblems(o, os.LookupEnv)
	if envErr != nil && len(probs) == 0 {
		probs = append(probs, envErr) // a refusal serve makes that configProblems does not know
	}
	if len(probs) > 0 {
		for _, p := range probs {
			fmt.Fprintln(stderr, "gateway config:", p)
		}
		return fmt.Errorf("%d setting(s) refused; serve would not start", len(probs))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "# gateway %s: effective configuration (secrets redacted)\n", version)
	fmt.Fprintf(w, "# mode: %s\n", modeLine(os.LookupEnv))
	fmt.Fprintf(w, "# tracing: %s\n", tracingLine(os.LookupEnv))
	fs.VisitAll(func(f *flag.Flag) {
		name := "-" + f.Name
		src := "default"
		if m := envOfUsage.FindStringSubmatch(f.Usage); m != nil {
			name = m[1]
			if _, ok := os.LookupEnv(m[1]); ok {
				src = "env"
			}
		}
		if set[f.Name] {
			src = "flag -" + f.Name
		}
		v := f.Value.String()
		if f.Name == "postgres-url" {
			v = redactPostgres(v)
		}
		fmt.Fprintf(w, "%s=%s\t# %s\n", name, v, src)
	})
	for _, e := range envOnly {
		v, ok := os.LookupEnv(e.name)
		switch {
		case !ok || v == "":
			v, ok = "", false
		case e.secret:
			v = "<redacted>"
		}
		src := "unset"
		if ok {
			src = "env"
		}
		fmt.Fprintf(w, "%s=%s\t# %s; %s\n", e.name, v, src, e.doc)
	}
	for _, n := range warnings(os.LookupEnv) {
		fmt.Fprintf(w, "# warning: %s\n", n)
	}
	return w.Flush()
}

// refuseProblems is serve's start-up check: every refused setting, one
// line each.
func refuseProblems(o options) error {
	return errors.Join(configProblems(o, os.LookupEnv)...)
}

// lookupFunc reads a variable (os.LookupEnv in production).
type lookupFunc func(string) (string, bool)

func get(look lookupFunc, name string) string {
	v, _ := look(name)
	return v
}

// configProblems returns every setting that cannot be read or contradicts
// another, one error each, naming the variables (never a secret's value).
func configProblems(o options, look lookupFunc) []error {
	var ps []error
	bad := func(format string, a ...any) { ps = append(ps, fmt.Errorf(format, a...)) }

	// Values the flag defaults silently skip when unreadable.
	for _, n := range []string{"ASSISTIV_ACTOR_IDLE_TIMEOUT", "ASSISTIV_BATCH_SYNC_INTERVAL", "ASSISTIV_LOG_RETENTION",
		"ASSISTIV_RESPONSE_RETENTION", "ASSISTIV_SNAPSHOT_INTERVAL"} {
		if v := get(look, n); v != "" {
			if d, err := time.ParseDuration(v); err != nil {
				bad("%s=%q is not a duration (write it like 90s, 5m or 720h)", n, v)
			} else if d <= 0 {
				bad("%s=%q must be positive", n, v)
			}
		}
	}
	if v := get(look, "ASSISTIV_LOG_MAX_PER_PLATFORM"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err != nil || n <= 0 {
			bad("ASSISTIV_LOG_MAX_PER_PLATFORM=%q must be a positive whole number", v)
		}
	}
	if v := get(look, "ASSISTIV_ALLOW_PRIVATE_EGRESS"); v != "" && !slices.Contains([]string{"true", "false", "1", "0"}, v) {
		bad("ASSISTIV_ALLOW_PRIVATE_EGRESS=%q must be true or false", v)
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(o.logLevel)); err != nil {
		bad("log level %q must be debug, info, warn or error (ASSISTIV_LOG_LEVEL)", o.logLevel)
	}
	if o.logFormat != "text" && o.logFormat != "json" {
		bad("log format %q must be text or json (ASSISTIV_LOG_FORMAT)", o.logFormat)
	}
	if o.billingDurability != actors.DurabilitySync && o.billingDurability != actors.DurabilityBatch {
		bad("billing durability %q must be sync or batch (ASSISTIV_BILLING_DURABILITY)", o.billingDurability)
	}
	if o.batchSyncInterval <= 0 || o.batchSyncInterval > time.Second {
		bad("batch sync interval %s must be in (0, 1s] (ASSISTIV_BATCH_SYNC_INTERVAL)", o.batchSyncInterval)
	}
	if o.maxBody <= 0 {
		bad("-max-body-bytes %d must be positive", o.maxBody)
	}
	if o.shutdownTimeout <= 0 {
		bad("-shutdown-timeout %s must be positive", o.shutdownTimeout)
	}
	if v := get(look, "ASSISTIV_WEBHOOK_TEST_SCHEDULE"); v != "" {
		for _, f := range strings.Split(v, ",") {
			if _, err := time.ParseDuration(strings.TrimSpace(f)); err != nil {
				bad("ASSISTIV_WEBHOOK_TEST_SCHEDULE: %q is not a duration", strings.TrimSpace(f))
				break
			}
		}
	}

	// Listeners: readable, and no two on one address.
	addrs := map[string]string{}
	for _, l := range []struct{ what, env, v string }{
		{"listen", "ASSISTIV_LISTEN", o.listen},
		{"metrics listener", "ASSISTIV_METRICS_LISTEN", o.metricsListen},
		{"dashboard listener", "ASSISTIV_DASHBOARD_LISTEN", o.dashboardListen},
	} {
		if l.v == "" {
			continue
		}
		if _, port, err := net.SplitHostPort(l.v); err != nil {
			bad("%s address %q is not host:port (%s)", l.what, l.v, l.env)
		} else if port != "0" {
			if prev, dup := addrs[l.v]; dup {
				bad("%s and %s both use %s (%s): give each its own address", prev, l.what, l.v, l.env)
			}
			addrs[l.v] = l.what
		}
	}
	if u, err := url.Parse(o.publicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("public URL %q must be an absolute http(s) URL (ASSISTIV_PUBLIC_URL)", o.publicURL)
	}

	// Secrets.
	if o.adminKey != "" && len(o.adminKey) < 16 {
		bad("ASSISTIV_ADMIN_KEY must be at least 16 characters")
	}
	if o.masterKey != "" {
		if _, err := secrets.ParseKey(o.masterKey); err != nil {
			bad("ASSISTIV_MASTER_KEY must be standard base64 of 32 bytes (openssl rand -base64 32)")
		}
	}
	if o.metricsToken != "" && len(o.metricsToken) < 16 {
		bad("ASSISTIV_METRICS_TOKEN must be at least 16 characters")
	}
	if o.metricsToken != "" && o.metricsListen != "" {
		bad("ASSISTIV_METRICS_TOKEN and ASSISTIV_METRICS_LISTEN are both set: the separate metrics listener has no auth, so the token would guard nothing; set one")
	}
	if (o.stripeSecretKey == "") != (o.stripeWebhookSecret == "") {
		bad("set both ASSISTIV_STRIPE_SECRET_KEY and ASSISTIV_STRIPE_WEBHOOK_SECRET, or neither")
	}

	// Postgres and the cluster.
	if o.postgresURL != "" {
		if _, err := pgconn.ParseConfig(o.postgresURL); err != nil {
			bad("ASSISTIV_POSTGRES_URL is not a Postgres connection URL (postgres://user:password@host:5432/db)")
		}
	}
	clusterVars := []string{"ASSISTIV_CLUSTER_ADVERTISE", "ASSISTIV_CLUSTER_REMOTE", "ASSISTIV_CLUSTER_KEY", "ASSISTIV_CLUSTER_TAKEOVER_CREDIT_USD"}
	bind := get(look, "ASSISTIV_CLUSTER_BIND")
	if bind == "" && get(look, "ASSISTIV_CLUSTER_JOIN") != "" {
		bind = "127.0.0.1:7946" // serve's default when only the seeds are given
	}
	if bind == "" {
		var stray []string
		for _, n := range clusterVars {
			if get(look, n) != "" {
				stray = append(stray, n)
			}
		}
		if len(stray) > 0 {
			bad("%s set without ASSISTIV_CLUSTER_BIND or ASSISTIV_CLUSTER_JOIN: cluster mode starts only with those, so these would be ignored", strings.Join(stray, ", "))
		}
	} else {
		if o.postgresURL == "" {
			bad("cluster mode (ASSISTIV_CLUSTER_BIND) needs ASSISTIV_POSTGRES_URL: a node that takes over an account reads it from the shared snapshots")
		}
		if get(look, "ASSISTIV_CLUSTER_KEY") == "" {
			bad("cluster mode needs ASSISTIV_CLUSTER_KEY (standard base64 of 32 bytes), the same on every node")
		}
		if o.masterKey == "" {
			bad("cluster mode needs ASSISTIV_MASTER_KEY, the same on every node: a provider key sealed on one node is opened on another")
		}
		if o.adminKey == "" {
			bad("cluster mode needs ASSISTIV_ADMIN_KEY, the same on every node")
		}
		hostPort := func(n, v string) {
			if _, _, err := net.SplitHostPort(v); err != nil {
				bad("%s=%q is not host:port", n, v)
			}
		}
		hostPort("ASSISTIV_CLUSTER_BIND", bind)
		for _, n := range []string{"ASSISTIV_CLUSTER_ADVERTISE", "ASSISTIV_CLUSTER_REMOTE"} {
			if v := get(look, n); v != "" {
				hostPort(n, v)
			}
		}
		if v := get(look, "ASSISTIV_CLUSTER_JOIN"); v != "" {
			for _, s := range strings.Split(v, ",") {
				if _, _, err := net.SplitHostPort(strings.TrimSpace(s)); err != nil {
					bad("ASSISTIV_CLUSTER_JOIN: seed %q is not host:port", strings.TrimSpace(s))
				}
			}
		}
		if r := get(look, "ASSISTIV_CLUSTER_REMOTE"); r != "" && r == bind {
			bad("ASSISTIV_CLUSTER_BIND and ASSISTIV_CLUSTER_REMOTE are both %s: memberlist and the actor remote need their own ports", bind)
		}
		if addrs[bind] != "" {
			bad("ASSISTIV_CLUSTER_BIND %s is also the %s's address", bind, addrs[bind])
		}
		if _, err := takeoverCredit(get(look, "ASSISTIV_CLUSTER_TAKEOVER_CREDIT_USD")); err != nil {
			bad("%v", err)
		}
		if k := get(look, "ASSISTIV_CLUSTER_KEY"); k != "" {
			if b, err := base64.StdEncoding.Strict().DecodeString(strings.TrimSpace(k)); err != nil || len(b) != 32 {
				bad("ASSISTIV_CLUSTER_KEY must be standard base64 of 32 bytes (openssl rand -base64 32)")
			}
		}
	}

	// Tracing.
	for _, n := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"} {
		if v := get(look, n); v != "" {
			if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				bad("%s=%q must be an http(s) URL such as http://otel-collector:4318", n, v)
			}
		}
	}
	if v := get(look, "OTEL_EXPORTER_OTLP_PROTOCOL"); v != "" && v != "http/protobuf" {
		bad("OTEL_EXPORTER_OTLP_PROTOCOL=%q: this gateway exports OTLP over HTTP only; use http/protobuf (port 4318)", v)
	}
	sampler := get(look, "OTEL_TRACES_SAMPLER")
	if sampler != "" && !slices.Contains(samplerNames, sampler) {
		bad("OTEL_TRACES_SAMPLER=%q must be one of %s", sampler, strings.Join(samplerNames, ", "))
	}
	if v := get(look, "OTEL_TRACES_SAMPLER_ARG"); v != "" {
		if r, err := strconv.ParseFloat(v, 64); err != nil || r < 0 || r > 1 {
			bad("OTEL_TRACES_SAMPLER_ARG=%q must be a ratio in [0, 1]", v)
		} else if sampler != "traceidratio" && sampler != "parentbased_traceidratio" {
			bad("OTEL_TRACES_SAMPLER_ARG is set but OTEL_TRACES_SAMPLER is %q: the ratio applies only to traceidratio or parentbased_traceidratio", sampler)
		}
	}
	if v := get(look, "OTEL_SDK_DISABLED"); v != "" && v != "true" && v != "false" {
		bad("OTEL_SDK_DISABLED=%q must be true or false", v)
	}
	if v := get(look, "ASSISTIV_TRACE_CONTENT"); v != "" && v != "true" && v != "false" {
		bad("ASSISTIV_TRACE_CONTENT=%q must be true or false", v)
	} else if v == "true" && !tracingOn(look) {
		bad("ASSISTIV_TRACE_CONTENT=true but tracing is off (set OTEL_EXPORTER_OTLP_ENDPOINT)")
	}
	return ps
}

// samplerNames are the OTEL_TRACES_SAMPLER values the gateway honours.
var samplerNames = []string{"always_on", "always_off", "traceidratio", "parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio"}

// tracingOn tells whether the variables turn tracing on.
func tracingOn(look lookupFunc) bool {
	if get(look, "OTEL_SDK_DISABLED") == "true" {
		return false
	}
	return get(look, "OTEL_EXPORTER_OTLP_ENDPOINT") != "" || get(look, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// warnings are settings that work but deserve a look.
func warnings(look lookupFunc) []string {
	var ws []string
	if get(look, "ASSISTIV_WEBHOOK_TEST_SCHEDULE") != "" {
		ws = append(ws, "ASSISTIV_WEBHOOK_TEST_SCHEDULE is a test-only setting")
	}
	return ws
}

func modeLine(look lookupFunc) string {
	bind := get(look, "ASSISTIV_CLUSTER_BIND")
	if bind == "" && get(look, "ASSISTIV_CLUSTER_JOIN") != "" {
		bind = "127.0.0.1:7946"
	}
	if bind == "" {
		return "single node"
	}
	name := get(look, "ASSISTIV_NODE_NAME")
	if name == "" {
		name, _ = os.Hostname()
	}
	return fmt.Sprintf("cluster, node %q, memberlist on %s", name, bind)
}

func tracingLine(look lookupFunc) string {
	if !tracingOn(look) {
		return "off (OTEL_EXPORTER_OTLP_ENDPOINT unset)"
	}
	s := get(look, "OTEL_TRACES_SAMPLER")
	if s == "" {
		s = "parentbased_always_on"
	}
	if a := get(look, "OTEL_TRACES_SAMPLER_ARG"); a != "" {
		s += " " + a
	}
	return "OTLP/HTTP, sampler " + s
}

// pwParam matches a password in a key=value connection string.
var pwParam = regexp.MustCompile(`(?i)(password\s*=\s*)('[^']*'|\S+)`)

// redactPostgres hides the password of a Postgres URL or DSN.
func redactPostgres(v string) string {
	if v == "" {
		return v
	}
	if u, err := url.Parse(v); err == nil && u.Scheme != "" {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "redacted")
		}
		q := u.Query()
		if q.Has("password") {
			q.Set("password", "redacted")
			u.RawQuery = q.Encode()
		}
		return u.String()
	}
	return pwParam.ReplaceAllString(v, "${1}redacted")
}
