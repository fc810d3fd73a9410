package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/assistiv/gateway/cluster"
	"github.com/assistiv/gateway/internal/money"
	"github.com/assistiv/gateway/persistence"
	"github.com/assistiv/gateway/persistence/postgres"
)

// defaultTakeoverCredit is what an account taken over from a crashed node
// may spend until the node's tail is recovered (README "Cluster", "Crash").
const defaultTakeoverCredit = "1.00"

// takeoverCredit parses ASSISTIV_CLUSTER_TAKEOVER_CREDIT_USD ("" is the
// default): a decimal USD amount, zero or more.
func takeoverCredit(v string) (money.Nanos, error) {
	if v == "" {
		v = defaultTakeoverCredit
	}
	n, err := money.ParseUSD(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("ASSISTIV_CLUSTER_TAKEOVER_CREDIT_USD=%q must be a USD amount of zero or more (e.g. 1.00)", v)
	}
	return n, nil
}

// publishTail sends what this node's previous run acknowledged after its
// last snapshot to Postgres, for the owners of its accounts to merge in,
// before the node snapshots or joins.
func publishTail(snap *postgres.Snapshotter, store *persistence.Store, node string, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := postgres.NewRegistry(snap.Pool()).PublishTail(ctx, store, node)
	if err != nil {
		return fmt.Errorf("publishing this node's un-snapshotted tail: %w", err)
	}
	if rep.Crashed || rep.Records > 0 {
		log.Warn("previous run's un-snapshotted tail published for the accounts' owners to merge",
			"crashed", rep.Crashed, "incarnation", rep.Incarnation, "records", rep.Records, "after_watermark", rep.Watermark)
	}
	return nil
}

// registerTakeoverMetrics exposes a cluster node's take-over counters.
func registerTakeoverMetrics(reg *prometheus.Registry, stats func() cluster.TakeoverStats) {
	for _, m := range []struct {
		name, help string
		gauge      bool
		get        func(cluster.TakeoverStats) int64
	}{
		{"assistiv_cluster_provisional_accounts", "Accounts this node holds provisionally, taken over from a crashed node whose tail is not recovered yet.", true, func(s cluster.TakeoverStats) int64 { return s.Provisional }},
		{"assistiv_cluster_takeovers_total", "Accounts this node took over from a crashed node (provisionally).", false, func(s cluster.TakeoverStats) int64 { return s.TakenOver }},
		{"assistiv_cluster_takeovers_recovered_total", "Provisional accounts settled by merging the crashed node's tail.", false, func(s cluster.TakeoverStats) int64 { return s.Recovered }},
		{"assistiv_cluster_takeovers_lost_total", "Provisional accounts settled by a lost declaration: the crashed node's acknowledged operations after its last snapshot are gone.", false, func(s cluster.TakeoverStats) int64 { return s.Lost }},
	} {
		get := m.get
		f := func() float64 { return float64(get(stats())) }
		if m.gauge {
			reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: m.name, Help: m.help}, f))
		} else {
			reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: m.name, Help: m.help}, f))
		}
	}
}

// clusterCmd is `gateway cluster status` and `gateway cluster forget NAME`,
// run anywhere ASSISTIV_POSTGRES_URL reaches the cluster's Postgres.
func clusterCmd(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("cluster", flag.ContinueOnError)
	url := fs.String("postgres-url", env("ASSISTIV_POSTGRES_URL", ""), "the cluster's Postgres (ASSISTIV_POSTGRES_URL)")
	if len(args) == 0 {
		return errors.New("usage: gateway cluster status | gateway cluster forget NAME")
	}
	sub := args[0]
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *url == "" {
		return errors.New("gateway cluster needs ASSISTIV_POSTGRES_URL")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := postgres.Connect(ctx, *url)
	if err != nil {
		return err
	}
	defer pool.Close()
	reg := postgres.NewRegistry(pool)
	switch sub {
	case "status":
		nodes, err := reg.Nodes(ctx)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "NODE\tADDRESS\tSTATE\tINCARNATION\tSINCE\tPENDING TAKE-OVERS")
		for _, s := range nodes {
			pending := 0
			if s.State != postgres.StateLeft {
				inc := s.Incarnation
				if s.State == postgres.StateRecovering && inc > 0 {
					inc--
				}
				if pending, err = reg.PendingTakeovers(ctx, s.Node, inc); err != nil {
					return err
				}
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%d\n", s.Node, s.Address, s.State, s.Incarnation, s.UpdatedAt.UTC().Format(time.RFC3339), pending)
		}
		lost, err := reg.LostReports(ctx)
		if err != nil {
			return err
		}
		if len(lost) > 0 {
			fmt.Fprintln(w, "\nLOST NODE\tINCARNATION\tDECLARED\tLOST AFTER (last snapshot)\tPROVISIONAL ACCOUNTS\tHELD USD")
			for _, l := range lost {
				fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%d\t%s\n", l.Node, l.Incarnation, l.DeclaredAt.UTC().Format(time.RFC3339),
					l.LastSnapshotAt.UTC().Format(time.RFC3339Nano), l.Provisional, money.Nanos(l.HeldNanos))
			}
		}
		return w.Flush()
	case "forget":
		if fs.NArg() != 1 {
			return errors.New("usage: gateway cluster forget NAME")
		}
		rep, err := reg.DeclareLost(ctx, fs.Arg(0))
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "node %s (run %d) declared lost: what it acknowledged after its last snapshot (%s, watermark %d) is gone; %d provisional account(s) get their holds (%s) back within a second\n",
			rep.Node, rep.Incarnation, rep.LastSnapshotAt.UTC().Format(time.RFC3339Nano), rep.Watermark, rep.Provisional, money.Nanos(rep.HeldNanos))
		return nil
	}
	fmt.Fprintln(os.Stderr, "usage: gateway cluster status | gateway cluster forget NAME")
	return fmt.Errorf("unknown cluster command %q", sub)
}
