// Command gateway runs the Assistiv-compatible multi-tenant LLM gateway.
//
//	gateway serve              run one node (flags or ASSISTIV_* variables)
//	gateway version            print the version
//
// cmd/gateway is the only wiring: it reads flags and the environment into
// each component's Config, opens the store, starts the actors and the edge,
// and on SIGINT/SIGTERM stops accepting, drains in-flight requests,
// passivates actors and flushes the store.
package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	stdlog "log"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/valyala/fasthttp"

	"github.com/assistiv/gateway/actors"
	"github.com/assistiv/gateway/cluster"
	"github.com/assistiv/gateway/dashboard"
	"github.com/assistiv/gateway/edge"
	"github.com/assistiv/gateway/internal/clock"
	"github.com/assistiv/gateway/internal/egress"
	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/internal/money"
	"github.com/assistiv/gateway/internal/secrets"
	"github.com/assistiv/gateway/logs"
	"github.com/assistiv/gateway/mcp"
	"github.com/assistiv/gateway/payments"
	"github.com/assistiv/gateway/persistence"
	"github.com/assistiv/gateway/persistence/postgres"
	"github.com/assistiv/gateway/providers"
	"github.com/assistiv/gateway/webhooks"
)

var version = "dev"

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "restore":
		err = restore(os.Args[2:])
	case "config":
		err = configCmd(os.Args[2:], os.Stdout, os.Stderr)
	case "backup":
		err = backupCmd(os.Args[2:])
	case "cluster":
		err = clusterCmd(os.Args[2:], os.Stdout)
	case "healthcheck":
		err = healthcheck(os.Args[2:])
	case "version":
		fmt.Println(version)
	case "-h", "--help", "help":
		usage()
	default:
		usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage: gateway <command> [flags]

commands:
  serve     run one gateway node
  config    print the effective configuration (secrets redacted) or what contradicts
  backup    back up a running node: gateway backup --to DIR [-data-dir DIR]
  restore   rebuild a lost data dir: gateway restore --from DIR | --from-postgres [-data-dir DIR]
  cluster   crash take-over: gateway cluster status | gateway cluster forget NAME (ASSISTIV_POSTGRES_URL)
  healthcheck  exit 0 when the local node's /readyz answers 200 (container health check)
  version   print the version

Run "gateway serve -h" for the flags; each has an ASSISTIV_* variable.
`)
}

// env returns the variable's value or def.
func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

type options struct {
	listen            string
	dataDir           string
	adminKey          string
	masterKey         string
	postgresURL       string
	allowPrivate      bool
	logLevel          string
	logFormat         string
	idleTimeout       time.Duration
	billingDurability string
	batchSyncInterval time.Duration
	maxBody           int
	shutdownTimeout   time.Duration
	snapshotInterval  time.Duration
	demoUpstream      string
	logRetention      time.Duration
	logMaxPerPlatform int64
	responseRetention time.Duration
	publicURL         string
	// Stripe (README "Payments"): both secrets or neither.
	stripeSecretKey     string
	stripeWebhookSecret string
	stripeAPIBase       string
	dashboardListen     string
	metricsListen       string // separate /metrics listener ("": none)
	metricsToken        string // bearer token for /metrics on the main listener
	// Cluster mode (README "Cluster"): on when clusterBind or clusterJoin
	// is set; off, the gateway is the single node it always was.
	nodeName         string
	takeoverCredit   money.Nanos // ASSISTIV_CLUSTER_TAKEOVER_CREDIT_USD (takeover.go)
	clusterBind      string      // memberlist host:port
	clusterAdvertise string      // memberlist host:port others use
	clusterJoin      []string
	clusterRemote    string // protoactor remote host:port
	clusterKey       []byte
	// webhookSchedule overrides the webhook retry schedule. Test-only
	// (ASSISTIV_WEBHOOK_TEST_SCHEDULE, comma-separated durations such as
	// "0,200ms,200ms"): crash tests use it so retries happen in
	// milliseconds. Never set it in production.
	webhookSchedule []time.Duration
}

func parse(args []string) (options, error) {
	var o options
	fs := serveFlags(&o)
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	return o, readEnvOnly(&o, fs)
}

// serveFlags declares serve's flags into o, each defaulting to its
// ASSISTIV_* variable (named at the end of its usage).
func serveFlags(o *options) *flag.FlagSet {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.StringVar(&o.listen, "listen", env("ASSISTIV_LISTEN", "127.0.0.1:8080"), "address to listen on (ASSISTIV_LISTEN)")
	fs.StringVar(&o.dataDir, "data-dir", env("ASSISTIV_DATA_DIR", "./data"), "data directory (ASSISTIV_DATA_DIR)")
	fs.StringVar(&o.postgresURL, "postgres-url", env("ASSISTIV_POSTGRES_URL", ""), "Postgres URL for snapshots; empty: none (ASSISTIV_POSTGRES_URL)")
	fs.BoolVar(&o.allowPrivate, "allow-private-egress", env("ASSISTIV_ALLOW_PRIVATE_EGRESS", "") == "true" || env("ASSISTIV_ALLOW_PRIVATE_EGRESS", "") == "1", "allow outbound calls to loopback/private addresses (ASSISTIV_ALLOW_PRIVATE_EGRESS)")
	fs.StringVar(&o.logLevel, "log-level", env("ASSISTIV_LOG_LEVEL", "info"), "debug, info, warn or error (ASSISTIV_LOG_LEVEL)")
	fs.StringVar(&o.logFormat, "log-format", env("ASSISTIV_LOG_FORMAT", "text"), "text or json (ASSISTIV_LOG_FORMAT)")
	fs.DurationVar(&o.idleTimeout, "actor-idle-timeout", durEnv("ASSISTIV_ACTOR_IDLE_TIMEOUT", 5*time.Minute), "passivate actors idle this long (ASSISTIV_ACTOR_IDLE_TIMEOUT)")
	fs.StringVar(&o.billingDurability, "billing-durability", env("ASSISTIV_BILLING_DURABILITY", actors.DurabilitySync), "sync or batch (ASSISTIV_BILLING_DURABILITY)")
	fs.DurationVar(&o.batchSyncInterval, "batch-sync-interval", durEnv("ASSISTIV_BATCH_SYNC_INTERVAL", 5*time.Millisecond), "longest a settlement acknowledged without fsync (billing-durability=batch) stays unsynced (ASSISTIV_BATCH_SYNC_INTERVAL)")
	fs.DurationVar(&o.logRetention, "log-retention", durEnv("ASSISTIV_LOG_RETENTION", logs.DefaultConfig().Retention), "keep per-call logs this long, e.g. 720h (ASSISTIV_LOG_RETENTION)")
	fs.Int64Var(&o.logMaxPerPlatform, "log-max-per-platform", int64Env("ASSISTIV_LOG_MAX_PER_PLATFORM", logs.DefaultConfig().MaxEntriesPerPlatform), "keep at most this many per-call log entries per platform, oldest deleted first (ASSISTIV_LOG_MAX_PER_PLATFORM)")
	fs.DurationVar(&o.responseRetention, "response-retention", durEnv("ASSISTIV_RESPONSE_RETENTION", edge.DefaultConfig().ResponseRetention), "keep stored Responses API responses this long (ASSISTIV_RESPONSE_RETENTION)")
	fs.DurationVar(&o.snapshotInterval, "snapshot-interval", durEnv("ASSISTIV_SNAPSHOT_INTERVAL", 10*time.Second), "how often to snapshot to Postgres (ASSISTIV_SNAPSHOT_INTERVAL)")
	fs.StringVar(&o.demoUpstream, "demo-upstream", env("ASSISTIV_DEMO_UPSTREAM", ""), "create (or refresh keys of) a demo platform whose providers point at this mock upstream URL and print its keys (ASSISTIV_DEMO_UPSTREAM)")
	fs.StringVar(&o.publicURL, "public-url", env("ASSISTIV_PUBLIC_URL", "http://127.0.0.1:8080"), "the gateway's public base URL; OAuth redirect_uri is it + /oauth/callback (ASSISTIV_PUBLIC_URL)")
	fs.StringVar(&o.dashboardListen, "dashboard-listen", env("ASSISTIV_DASHBOARD_LISTEN", ""), "serve the web dashboard on this address instead of the main listener's /dashboard (ASSISTIV_DASHBOARD_LISTEN)")
	fs.StringVar(&o.metricsListen, "metrics-listen", env("ASSISTIV_METRICS_LISTEN", ""), "serve /metrics on this address only, without auth (bind it to loopback or a private network); empty: /metrics on the main listener with the admin key or ASSISTIV_METRICS_TOKEN (ASSISTIV_METRICS_LISTEN)")
	fs.IntVar(&o.maxBody, "max-body-bytes", 4<<20, "largest request body accepted")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long to drain in-flight requests on SIGTERM")
	return fs
}

// readEnvOnly reads the settings that have no flag (secrets) and checks
// the first contradictions; [configProblems] checks them all.
func readEnvOnly(o *options, fs *flag.FlagSet) error {
	o.adminKey = os.Getenv("ASSISTIV_ADMIN_KEY")
	o.masterKey = os.Getenv("ASSISTIV_MASTER_KEY")
	o.stripeSecretKey = os.Getenv("ASSISTIV_STRIPE_SECRET_KEY")
	o.stripeWebhookSecret = os.Getenv("ASSISTIV_STRIPE_WEBHOOK_SECRET")
	o.stripeAPIBase = os.Getenv("ASSISTIV_STRIPE_API_BASE")
	if (o.stripeSecretKey == "") != (o.stripeWebhookSecret == "") {
		return errors.New("set both ASSISTIV_STRIPE_SECRET_KEY and ASSISTIV_STRIPE_WEBHOOK_SECRET, or neither")
	}
	o.metricsToken = os.Getenv("ASSISTIV_METRICS_TOKEN")
	if o.metricsToken != "" && len(o.metricsToken) < 16 {
		return errors.New("ASSISTIV_METRICS_TOKEN must be at least 16 characters")
	}
	if v := os.Getenv("ASSISTIV_WEBHOOK_TEST_SCHEDULE"); v != "" {
		for _, f := range strings.Split(v, ",") {
			d, err := time.ParseDuration(strings.TrimSpace(f))
			if err != nil {
				return fmt.Errorf("ASSISTIV_WEBHOOK_TEST_SCHEDULE: %w", err)
			}
			o.webhookSchedule = append(o.webhookSchedule, d)
		}
	}
	if err := parseCluster(o, fs); err != nil {
		return err
	}
	if o.batchSyncInterval <= 0 || o.batchSyncInterval > time.Second {
		return fmt.Errorf("batch-sync-interval must be in (0, 1s], not %s", o.batchSyncInterval)
	}
	if o.billingDurability != actors.DurabilitySync && o.billingDurability != actors.DurabilityBatch {
		return fmt.Errorf("billing-durability must be sync or batch, not %q", o.billingDurability)
	}
	return nil
}

// parseCluster reads the cluster settings. In cluster mode the cluster key
// and Postgres are required, and the snapshot interval defaults to 1 s.
func parseCluster(o *options, fs *flag.FlagSet) error {
	o.nodeName = os.Getenv("ASSISTIV_NODE_NAME")
	o.clusterBind = os.Getenv("ASSISTIV_CLUSTER_BIND")
	o.clusterAdvertise = os.Getenv("ASSISTIV_CLUSTER_ADVERTISE")
	o.clusterRemote = os.Getenv("ASSISTIV_CLUSTER_REMOTE")
	for _, s := range strings.Split(os.Getenv("ASSISTIV_CLUSTER_JOIN"), ",") {
		if s = strings.TrimSpace(s); s != "" {
			if _, _, err := net.SplitHostPort(s); err != nil {
				return fmt.Errorf("ASSISTIV_CLUSTER_JOIN: seed %q is not host:port: %w", s, err)
			}
			o.clusterJoin = append(o.clusterJoin, s)
		}
	}
	if o.clusterBind == "" && len(o.clusterJoin) == 0 {
		if o.clusterAdvertise != "" || o.clusterRemote != "" || os.Getenv("ASSISTIV_CLUSTER_KEY") != "" || os.Getenv("ASSISTIV_CLUSTER_TAKEOVER_CREDIT_USD") != "" {
			return errors.New("ASSISTIV_CLUSTER_ADVERTISE, ASSISTIV_CLUSTER_REMOTE, ASSISTIV_CLUSTER_KEY and ASSISTIV_CLUSTER_TAKEOVER_CREDIT_USD need cluster mode: set ASSISTIV_CLUSTER_BIND (and ASSISTIV_CLUSTER_JOIN on every node but the first)")
		}
		if o.nodeName == "" {
			o.nodeName = "local"
		}
		return nil
	}
	if o.clusterBind == "" {
		o.clusterBind = "127.0.0.1:7946"
	}
	for name, v := range map[string]string{"ASSISTIV_CLUSTER_BIND": o.clusterBind, "ASSISTIV_CLUSTER_ADVERTISE": o.clusterAdvertise, "ASSISTIV_CLUSTER_REMOTE": o.clusterRemote} {
		if v == "" {
			continue
		}
		host, port, err := net.SplitHostPort(v)
		if err != nil || net.ParseIP(host) == nil {
			return fmt.Errorf("%s must be ip:port, not %q", name, v)
		}
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return fmt.Errorf("%s: bad port in %q", name, v)
		}
	}
	if o.clusterRemote == "" {
		host, _, _ := net.SplitHostPort(o.clusterBind)
		o.clusterRemote = net.JoinHostPort(host, "0")
	}
	key, err := cluster.ParseKey(os.Getenv("ASSISTIV_CLUSTER_KEY"))
	if err != nil {
		return fmt.Errorf("cluster mode needs ASSISTIV_CLUSTER_KEY (standard base64 of 32 random bytes, e.g. `head -c32 /dev/urandom | base64`), the same on every node: %w", err)
	}
	o.clusterKey = key
	if o.takeoverCredit, err = takeoverCredit(os.Getenv("ASSISTIV_CLUSTER_TAKEOVER_CREDIT_USD")); err != nil {
		return err
	}
	if o.masterKey == "" {
		return errors.New("cluster mode needs ASSISTIV_MASTER_KEY, the same on every node: a provider key sealed on one node is opened on another")
	}
	if o.adminKey == "" {
		return errors.New("cluster mode needs ASSISTIV_ADMIN_KEY, the same on every node")
	}
	if o.postgresURL == "" {
		return errors.New("cluster mode needs ASSISTIV_POSTGRES_URL: every node snapshots to the same Postgres, from which a dead node's accounts are taken over")
	}
	if o.nodeName == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			return errors.New("cluster mode needs ASSISTIV_NODE_NAME (no host name to default to)")
		}
		o.nodeName = h
	}
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == "snapshot-interval" })
	if !set && os.Getenv("ASSISTIV_SNAPSHOT_INTERVAL") == "" {
		o.snapshotInterval = time.Second
	}
	return nil
}

// startCluster joins this node to the cluster and returns it as the
// node's directory.
func startCluster(o options, aenv *actors.Env, reg *postgres.Registry, log *slog.Logger) (*cluster.Node, error) {
	gossip := cluster.DefaultConfig()
	host, port, _ := net.SplitHostPort(o.clusterBind)
	gossip.BindAddr = host
	gossip.BindPort, _ = strconv.Atoi(port)
	if o.clusterAdvertise != "" {
		h, p, _ := net.SplitHostPort(o.clusterAdvertise)
		gossip.AdvertiseAddr = h
		gossip.AdvertisePort, _ = strconv.Atoi(p)
	}
	gossip.Seeds = o.clusterJoin
	gossip.Logger = stdlog.New(slogWriter{log.With("component", "memberlist")}, "", 0)
	rhost, rport, _ := net.SplitHostPort(o.clusterRemote)
	cfg := cluster.NodeConfig{Gossip: gossip, RemoteHost: rhost, Key: o.clusterKey, Env: aenv, Log: log,
		Takeover: &cluster.TakeoverConfig{Registry: reg, Name: o.nodeName, Credit: o.takeoverCredit}}
	cfg.RemotePort, _ = strconv.Atoi(rport)
	n, err := cluster.Start(cfg)
	if err != nil {
		return nil, err
	}
	log.Info("cluster node started", "node", o.nodeName, "gossip", n.GossipAddr(), "remote", n.Address(), "members", n.MemberAddresses())
	return n, nil
}

// slogWriter turns memberlist's log lines ("[LEVEL] memberlist: ...")
// into slog records.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(b []byte) (int, error) {
	line := strings.TrimSpace(string(b))
	switch {
	case strings.HasPrefix(line, "[ERR]"):
		w.log.Error(line)
	case strings.HasPrefix(line, "[WARN]"):
		w.log.Warn(line)
	default:
		w.log.Debug(line)
	}
	return len(b), nil
}

func int64Env(name string, def int64) int64 {
	if v := os.Getenv(name); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return n
		}
	}
	return def
}

func durEnv(name string, def time.Duration) time.Duration {
	if v := os.Getenv(name); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
	}
	return def
}

func newLogger(level, format string) *slog.Logger {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		lv = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

// adminDigest returns the digest of the operator's admin key. With
// ASSISTIV_ADMIN_KEY set, that key is used (and its digest remembered);
// without it, the remembered digest is used; on a first start without
// either, a key is generated, printed once, and only its digest stored.
func adminDigest(store *persistence.Store, configured string, log *slog.Logger) ([32]byte, error) {
	key := persistence.MetaKey("admin_key_digest")
	if configured != "" {
		if len(configured) < 16 {
			return [32]byte{}, errors.New("ASSISTIV_ADMIN_KEY must be at least 16 characters")
		}
		d := sha256.Sum256([]byte(configured))
		return d, store.Commit(persistence.Set(key, d[:]))
	}
	if v, err := store.Get(key); err == nil && len(v) == 32 {
		var d [32]byte
		copy(d[:], v)
		return d, nil
	} else if err != nil && !errors.Is(err, persistence.ErrNotFound) {
		return [32]byte{}, err
	}
	raw, d := ids.NewKey(ids.KindAdmin)
	if err := store.Commit(persistence.Set(key, d[:])); err != nil {
		return [32]byte{}, err
	}
	fmt.Fprintf(os.Stderr, "\n  Generated the operator admin key (shown once; only its digest is stored):\n\n    %s\n\n  Use it as: Authorization: Bearer <key> on /admin/v1/...\n\n", raw)
	log.Info("generated admin key", "prefix", ids.DisplayPrefix(raw))
	return d, nil
}

func serve(args []string) error {
	o, err := parse(args)
	if err != nil {
		return err
	}
	if err := refuseProblems(o); err != nil {
		return err
	}
	log := newLogger(o.logLevel, o.logFormat)
	log.Info("starting gateway", "version", version, "listen", o.listen, "data_dir", o.dataDir,
		"postgres", o.postgresURL != "", "allow_private_egress", o.allowPrivate,
		"billing_durability", o.billingDurability, "public_url", o.publicURL, "metrics_listen", o.metricsListen, "metrics_token_set", o.metricsToken != "", "log_retention", o.logRetention, "admin_key_set", o.adminKey != "", "master_key_set", o.masterKey != "")

	scfg := persistence.DefaultConfig()
	scfg.Dir = o.dataDir
	scfg.Logger = log
	// Without Postgres nothing reads the changefeed: do not grow it. A
	// later start with Postgres makes one full copy first.
	scfg.DisableChangefeed = o.postgresURL == ""
	scfg.MaxUnsyncedDelay = o.batchSyncInterval
	store, err := persistence.Open(scfg)
	if err != nil {
		return err
	}
	// undo closes what start-up opened, newest first, when a later step
	// fails.
	var undo []func()
	fail := func(err error) error {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
		return err
	}
	undo = append(undo, func() { store.Close() })
	digest, err := adminDigest(store, o.adminKey, log)
	if err != nil {
		return fail(err)
	}

	var snap *postgres.Snapshotter
	var notHeld atomic.Pointer[func([]byte) bool] // cluster mode: actors.Env.NotHeld, once the env exists
	if o.postgresURL != "" {
		pcfg := postgres.DefaultConfig()
		pcfg.URL, pcfg.Interval, pcfg.Logger = o.postgresURL, o.snapshotInterval, log
		if o.clusterKey != nil {
			pcfg.Node = o.nodeName // each node keeps its own place in the shared snapshot
			// Records of accounts another node holds stay out of it
			// (set below, once the actor env exists).
			pcfg.Skip = func(key []byte) bool { f := notHeld.Load(); return f != nil && (*f)(key) }
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		snap, err = postgres.Open(ctx, pcfg, store)
		cancel()
		if err != nil {
			return fail(err)
		}
		if o.clusterKey != nil {
			// Before the first snapshot round: what the previous run
			// acknowledged after its last snapshot goes to the owners of
			// its accounts (README "Cluster", "Crash").
			if err := publishTail(snap, store, o.nodeName, log); err != nil {
				snap.Close()
				return fail(err)
			}
		}
		snap.Start()
		undo = append(undo, snap.Close)
		log.Info("postgres snapshots on", "interval", o.snapshotInterval)
	}

	clk := clock.Real{}
	tr, err := newTracing(log)
	if err != nil {
		return fail(err)
	}
	undo = append(undo, tr.Close)
	keyring, err := masterKeyring(o.masterKey, o.dataDir, log)
	if err != nil {
		return fail(err)
	}
	wcfg := webhooks.DefaultConfig()
	wcfg.Keyring, wcfg.Clock, wcfg.Logger, wcfg.Tracer = keyring, clk, log, tr.tracer()
	wcfg.Egress = egress.Policy{AllowPrivate: o.allowPrivate}
	if o.webhookSchedule != nil {
		wcfg.Schedule, wcfg.Jitter = o.webhookSchedule, 0
		log.Warn("using the test-only webhook retry schedule", "schedule", o.webhookSchedule)
	}
	subs := &actors.Subscriptions{}
	hooks, err := webhooks.New(wcfg, store, subs)
	if err != nil {
		return fail(err)
	}
	undo = append(undo, hooks.Close)

	aenv := actors.NewEnv(store, clk, log)
	aenv.IdleTimeout = o.idleTimeout
	aenv.BillingDurability = o.billingDurability
	aenv.Subscriptions = subs
	aenv.Notify = hooks.Wake
	stripeClient, err := newStripe(o, log)
	if err != nil {
		return fail(err)
	}
	if stripeClient != nil {
		aenv.Payments = stripeClient
	}
	aenv.Node = o.nodeName
	if o.clusterKey != nil {
		f := aenv.NotHeld
		notHeld.Store(&f)
	}
	var dir actors.Directory
	var peers actors.Peers = actors.NewSingleNode(aenv)
	var peerNode *actors.Node // cluster mode: where the call logs answer other nodes
	// shared holds, in cluster mode, the records every node reads alike
	// (webhook endpoints, skills, OAuth records, dashboard accounts).
	var shared *cluster.Shared
	var tkStats func() cluster.TakeoverStats
	closeDir := func() {}
	if o.clusterKey != nil {
		node, err := startCluster(o, aenv, postgres.NewRegistry(snap.Pool()), log)
		if err != nil {
			return fail(err)
		}
		dir = node
		tkStats = node.TakeoverStats
		peers, peerNode = node.Peers(), node.PeerNode()
		closeDir = func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := node.Shutdown(ctx); err != nil {
				log.Warn("leaving the cluster", "err", err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		shared, err = cluster.OpenShared(ctx, o.postgresURL, node)
		cancel()
		if err != nil {
			closeDir()
			return fail(err)
		}
		shared.SetLogger(log)
		undo = append(undo, shared.Close)
		// Records this node kept alone (or under an earlier version) move
		// to the shared records once, before the services load them.
		if moved, err := shared.Import(store, cluster.SharedFamilies); err != nil {
			closeDir()
			return fail(err)
		} else if moved > 0 {
			log.Info("moved this node's platform records to the cluster's shared records", "records", moved)
		}
		if err := shared.ShareWebhooks(hooks, 0); err != nil {
			closeDir()
			return fail(err)
		}
	} else {
		local := actors.NewLocal(aenv)
		dir, closeDir = local, local.Close
	}
	undo = append(undo, closeDir)
	resumeTopups(dir, store, log)
	hooks.Start()

	lcfg := logs.DefaultConfig()
	lcfg.Retention, lcfg.Clock, lcfg.Logger = o.logRetention, clk, log
	logDB, err := logs.OpenDB(o.dataDir, log)
	if err != nil {
		return fail(err)
	}
	undo = append(undo, func() { logDB.Close() })
	opsock, err := startOperator(o.dataDir, store, logDB, log)
	if err != nil {
		return fail(err)
	}
	if opsock != nil {
		undo = append(undo, opsock.Close)
	}
	lg, err := logs.Open(lcfg, logDB)
	if err != nil {
		return fail(err)
	}
	undo = append(undo, lg.Close)
	if peerNode != nil {
		lg.Serve(peerNode, o.nodeName)
	}

	reg := prometheus.NewRegistry()
	// The Go collector's defaults plus the live heap (go_gc_heap_live_bytes:
	// what the last GC found reachable), the fair measure of what resident
	// actors hold (heap in use also counts garbage not yet collected).
	reg.MustRegister(collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(
		collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/gc/heap/live:bytes$`)})),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if tkStats != nil {
		registerTakeoverMetrics(reg, tkStats)
	}
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "assistiv_logs_dropped_total",
		Help: "Per-call log entries dropped because the log writer's queue was full.",
	}, func() float64 { return float64(lg.Writer().Dropped()) }))
	// Group commit: synced writes per fsync is the ratio of the last two.
	for _, c := range []struct {
		name, help string
		get        func(persistence.Stats) uint64
	}{
		{"assistiv_store_writes_total", "Writes (one actor's atomic group of records) applied to the money store.", func(st persistence.Stats) uint64 { return st.Writes }},
		{"assistiv_store_batches_total", "Batches the group committer handed Pebble.", func(st persistence.Stats) uint64 { return st.Batches }},
		{"assistiv_store_fsyncs_total", "Synced batches of the money store (one WAL fsync each).", func(st persistence.Stats) uint64 { return st.Commits }},
		{"assistiv_store_synced_writes_total", "Writes acknowledged by those fsyncs; divided by assistiv_store_fsyncs_total: writes per fsync.", func(st persistence.Stats) uint64 { return st.SyncedWrites }},
	} {
		get := c.get
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: c.name, Help: c.help},
			func() float64 { return float64(get(store.Stats())) }))
	}
	pcfg := providers.DefaultConfig()
	pcfg.AllowPrivateEgress = o.allowPrivate
	upstreams, err := edge.NewUpstreams(pcfg)
	if err != nil {
		return fail(err)
	}
	mcfg := mcp.DefaultConfig()
	mcfg.PublicURL, mcfg.Clock, mcfg.Logger = o.publicURL, clk, log
	mcfg.Egress = egress.Policy{AllowPrivate: o.allowPrivate}
	mcfg.SkillsDir = filepath.Join(o.dataDir, "skills")
	mdeps := mcp.Deps{Store: store, Directory: dir, Keyring: keyring, Logs: lg.Writer()}
	if shared != nil {
		mdeps.Shared = shared
	}
	msvc, err := mcp.New(mcfg, mdeps)
	if err != nil {
		return fail(err)
	}
	ecfg := edge.DefaultConfig()
	ecfg.AdminKeyDigest = digest
	ecfg.MaxBodyBytes = o.maxBody
	ecfg.ResponseRetention = o.responseRetention
	ecfg.TraceContent = os.Getenv("ASSISTIV_TRACE_CONTENT") == "true"
	if o.metricsToken != "" {
		ecfg.MetricsTokenDigest = sha256.Sum256([]byte(o.metricsToken))
	}
	ecfg.MetricsSeparate = o.metricsListen != ""
	srv, err := edge.New(ecfg, edge.Deps{Directory: dir, Auth: aenv.Auth, Store: store, Peers: peers, Clock: clk, Log: log, Registry: reg, Webhooks: hooks, Logs: lg,
		Secrets: keyring, Egress: egress.Policy{AllowPrivate: o.allowPrivate}, Upstreams: upstreams, MCP: msvc,
		Stripe: stripeClient, PublicURL: strings.TrimRight(o.publicURL, "/"), Tracer: tr.tracer(), TraceSampler: tr.headSampler()})
	if err != nil {
		return fail(err)
	}
	var accounts dashboard.Records = store
	if shared != nil {
		accounts = shared
	}
	dash, err := newDashboard(o, srv, accounts, clk, log, digest)
	if err != nil {
		return fail(err)
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fail(err)
	}
	undo = append(undo, func() { ln.Close() })
	log.Info("listening", "addr", ln.Addr().String())
	if o.demoUpstream != "" {
		if err := setupDemo(dir, store, keyring, o.demoUpstream, "http://"+ln.Addr().String()); err != nil {
			log.Error("demo setup failed", "err", err)
		}
	}

	var metricsSrv *fasthttp.Server
	if o.metricsListen != "" {
		mln, err := net.Listen("tcp", o.metricsListen)
		if err != nil {
			return fail(fmt.Errorf("metrics listener: %w", err))
		}
		log.Info("metrics listening", "addr", mln.Addr().String())
		metricsSrv = &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
			if string(ctx.Path()) != "/metrics" {
				ctx.Error("not found", fasthttp.StatusNotFound)
				return
			}
			srv.MetricsHandler()(ctx)
		}, ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second, Name: "assistiv-metrics"}
		go func() { _ = metricsSrv.Serve(mln) }()
	}

	errc := make(chan error, 2) // the gateway and the dashboard listener
	go func() { errc <- srv.Serve(ln) }()
	if dash != nil {
		go func() { errc <- dash.Serve() }()
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case s := <-sig:
		log.Info("shutting down", "signal", s.String())
	case err := <-errc:
		if err != nil && !strings.Contains(err.Error(), "closed") {
			log.Error("server stopped", "err", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.shutdownTimeout)
	defer cancel()
	_ = msvc.Close(ctx) // ends MCP listening streams so the drain is not held up
	if dash != nil {
		dash.Shutdown(ctx) // its pages call the edge: drain them first
	}
	if metricsSrv != nil {
		_ = metricsSrv.ShutdownWithContext(ctx)
	}
	if err := srv.Shutdown(ctx); err != nil {
		log.Warn("drain incomplete", "err", err)
	}
	if opsock != nil {
		opsock.Close() // waits for a running backup
	}
	closeDir()    // cluster: hand the actors over and leave; single node: stop the actors
	hooks.Close() // after the actors (their last events stay in the outbox), before the store
	if shared != nil {
		shared.Close() // after every service that uses it
	}
	lg.Close() // writes the queued log entries; before their store
	if err := logDB.Close(); err != nil {
		log.Warn("close log store", "err", err)
	}
	if snap != nil {
		snap.Close()
	}
	tr.Close()
	if err := store.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	log.Info("stopped")
	return nil
}

// masterKeyring returns the keyring that seals secrets at rest: the key in
// ASSISTIV_MASTER_KEY when set, else the key file in the data dir (created
// on first start).
func masterKeyring(configured, dataDir string, log *slog.Logger) (*secrets.Keyring, error) {
	if configured != "" {
		k, err := secrets.FromBase64(configured)
		if err != nil {
			return nil, fmt.Errorf("ASSISTIV_MASTER_KEY: %w", err)
		}
		return k, nil
	}
	key, created, err := secrets.LoadOrCreateKeyFile(dataDir)
	if err != nil {
		return nil, err
	}
	if created {
		log.Warn("generated a master key file; back it up, secrets sealed under it are lost without it",
			"path", filepath.Join(dataDir, secrets.KeyFileName))
	}
	return secrets.NewKeyring(key)
}

// restore rebuilds a data dir from a backup (--from) or the last Postgres
// snapshot (--from-postgres).
func restore(args []string) error {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	backupDir := fs.String("from", "", "restore from the backup `gateway backup` wrote to this directory")
	from := fs.Bool("from-postgres", false, "restore from the snapshot in ASSISTIV_POSTGRES_URL")
	dataDir := fs.String("data-dir", env("ASSISTIV_DATA_DIR", "./data"), "data directory to rebuild; must be empty (ASSISTIV_DATA_DIR)")
	url := fs.String("postgres-url", env("ASSISTIV_POSTGRES_URL", ""), "Postgres URL (ASSISTIV_POSTGRES_URL)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := newLogger("info", "text")
	switch {
	case *backupDir != "" && *from:
		return errors.New("restore takes --from DIR or --from-postgres, not both")
	case *backupDir != "":
		return restoreFromBackup(*backupDir, *dataDir, log)
	case !*from || *url == "":
		return errors.New("restore needs --from DIR, or --from-postgres and a Postgres URL (ASSISTIV_POSTGRES_URL or -postgres-url)")
	}
	scfg := persistence.DefaultConfig()
	scfg.Dir, scfg.Logger = *dataDir, log
	store, err := persistence.Open(scfg)
	if err != nil {
		return err
	}
	defer store.Close()
	ctx := context.Background()
	pool, err := postgres.Connect(ctx, *url)
	if err != nil {
		return err
	}
	defer pool.Close()
	n, err := postgres.Restore(ctx, pool, store)
	if err != nil {
		return err
	}
	log.Info("restored from postgres", "records", n, "data_dir", *dataDir)
	return nil
}

// newStripe returns the Stripe client when it is configured (nil when not:
// auto top-ups then go to the offline recorder and checkout answers 503).
func newStripe(o options, log *slog.Logger) (*payments.Stripe, error) {
	if o.stripeSecretKey == "" {
		log.Info("payments: Stripe not configured; auto top-up uses the offline recorder and wallet checkout is off")
		return nil, nil
	}
	sc, err := payments.New(payments.Config{SecretKey: o.stripeSecretKey, WebhookSecret: o.stripeWebhookSecret,
		APIBase: o.stripeAPIBase, Logger: log})
	if err != nil {
		return nil, err
	}
	log.Info("payments: Stripe configured", "api_base", o.stripeAPIBase, "live", strings.HasPrefix(o.stripeSecretKey, "sk_live_"))
	return sc, nil
}

// resumeTopups wakes every platform with an auto top-up whose outcome was
// not recorded before the last stop, so each asks the processor again.
func resumeTopups(dir actors.Directory, store *persistence.Store, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := actors.ResumeTopups(ctx, dir, store)
	if err != nil {
		log.Error("resume pending auto top-ups", "err", err)
	}
	if n > 0 {
		log.Warn("resuming pending auto top-ups", "platforms", n)
	}
}
