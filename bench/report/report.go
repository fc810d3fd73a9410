// Package report owns the benchmark's results: the JSON schema one run is
// saved as ([Run]), the comparisons against baselines ([Compare]), the
// Markdown report ([Markdown]) and the SVG latency-distribution plots
// ([Plots], [Plot.WriteSVG]), drawn by hand with no plotting dependency.
//
// Everything is computed from a [Run] alone, so a saved JSON file can be
// rendered again ([Load], [WriteFiles]). Times are microseconds throughout,
// rates requests per second.
//
// The package has no goroutines or global state; its functions are safe for
// concurrent use on distinct values. It imports nothing of the gateway's.
package report

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// SchemaVersion is written into every [Run]; bump it when a field changes
// meaning.
const SchemaVersion = 1

// Run is one benchmark run: bench/results/<ID>.json.
type Run struct {
	Schema   int       `json:"schema"`
	ID       string    `json:"id"` // UTC start time, e.g. 20260102T150405Z
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Quick    bool      `json:"quick"`
	Host     Host      `json:"host"`
	// Speed is the host's speed probed at the start and at the end of the
	// run (one core's SHA-256, the data disk's fdatasync).
	Speed []HostSpeed `json:"speed,omitempty"`
	// Layout says which process ran where.
	Layout    []Placement `json:"layout"`
	Scenarios []Scenario  `json:"scenarios"`
	Notes     []string    `json:"notes,omitempty"`
	// Headline is the targets table at the top of the report, computed
	// from Scenarios by the runner.
	Headline []Target `json:"headline,omitempty"`
}

// Target is one row of the headline table: a goal, what this run measured
// for it and whether that meets it.
type Target struct {
	// Name says what is measured and the goal, e.g. "full-path saturation
	// ≥ 0.7× bare proxy".
	Name string `json:"name"`
	// Mode is the configuration the row is about ("batch", "sync", or "").
	Mode string `json:"mode,omitempty"`
	// Measured is the value as shown; Value the number compared.
	Measured string  `json:"measured"`
	Value    float64 `json:"value"`
	// Status is "pass", "miss" or "n/a" (not measured in this run).
	Status string `json:"status"`
	// Detail explains the figure (its inputs, the scenario it comes from).
	Detail string `json:"detail,omitempty"`
}

// Target statuses.
const (
	StatusPass = "pass"
	StatusMiss = "miss"
	StatusNA   = "n/a"
)

// Text is a preformatted block in a scenario's section (a CPU profile).
type Text struct {
	Title string `json:"title"`
	Note  string `json:"note,omitempty"` // a sentence above the block
	Body  string `json:"body"`
}

// Host describes the machine.
type Host struct {
	GOOS      string `json:"goos"`
	GOARCH    string `json:"goarch"`
	NumCPU    int    `json:"num_cpu"`
	CPUModel  string `json:"cpu_model,omitempty"`
	Kernel    string `json:"kernel,omitempty"`
	GoVersion string `json:"go_version"`
	Commit    string `json:"commit,omitempty"`
}

// HostSpeed is one probe of the host's speed.
type HostSpeed struct {
	At                   string  `json:"at"` // "start" or "end"
	SHA256MBps           float64 `json:"sha256_mb_per_s"`
	FsyncOverwriteMicros float64 `json:"fsync_overwrite_us"`
	FsyncAppendMicros    float64 `json:"fsync_append_us"`
}

// Placement is one process of the run and the CPUs it was pinned to.
type Placement struct {
	Role   string `json:"role"`   // "loadgen", "upstream", "bareproxy", "gateway", ...
	Binary string `json:"binary"` // path as started
	CPUs   string `json:"cpus"`   // taskset list such as "1"; "" when not pinned
}

// Point kinds.
const (
	KindSaturation = "saturation" // closed loop, N connections
	KindRate       = "rate"       // open loop at a fixed rate
	KindStream     = "stream"     // SSE streams, open loop at a fixed stream rate
)

// Scenario is one scenario's results.
type Scenario struct {
	Name        string `json:"name"`
	Title       string `json:"title"`
	Description string `json:"description,omitempty"`
	// Baselines lists the variants every other variant's points are
	// compared with, in order (e.g. "direct", "bareproxy").
	Baselines []string `json:"baselines,omitempty"`
	Points    []Point  `json:"points"`
	Tables    []Table  `json:"tables,omitempty"` // scenario-specific extras, rendered as given
	// Metrics are a scenario's named figures for the headline table (e.g.
	// "debits_per_sec"); units are in the name.
	Metrics map[string]float64 `json:"metrics,omitempty"`
	// Texts are preformatted blocks shown after the tables (profiles).
	Texts       []Text  `json:"texts,omitempty"`
	Error       string  `json:"error,omitempty"` // why the scenario stopped early
	DurationSec float64 `json:"duration_sec"`
}

// Point is one measurement: one variant at one load.
type Point struct {
	Variant     string  `json:"variant"`
	Kind        string  `json:"kind"`
	Conns       int     `json:"conns,omitempty"` // saturation: connections; rate/stream: max in flight
	Rate        float64 `json:"rate,omitempty"`  // target requests (or streams) per second
	DurationSec float64 `json:"duration_sec"`

	Sent    int64            `json:"sent"`
	OK      int64            `json:"ok"`
	Failed  int64            `json:"failed"`
	Dropped int64            `json:"dropped"`
	Late    int64            `json:"late"`
	Errors  map[string]int64 `json:"errors,omitempty"`

	// Throughput is successful requests per second.
	Throughput float64 `json:"throughput"`
	// Sustained is false for a rate point that fell behind (see the
	// runner's rule) and for a failed point.
	Sustained bool `json:"sustained"`

	Latency *Dist `json:"latency,omitempty"`
	Service *Dist `json:"service,omitempty"`
	Lag     *Dist `json:"lag,omitempty"`
	TTFT    *Dist `json:"ttft,omitempty"`
	Gap     *Dist `json:"gap,omitempty"`
	Events  int64 `json:"events,omitempty"`

	CPU     []ProcCPU    `json:"cpu,omitempty"`
	Compare []Comparison `json:"compare,omitempty"`

	// Store is the gateway's money store over the point (its /metrics
	// counters after minus before); nil for the baselines.
	Store *StoreStats `json:"store,omitempty"`
}

// StoreStats are a gateway's group-commit counters over one point.
type StoreStats struct {
	Batches      uint64 `json:"batches"`       // batches the committer handed Pebble
	Fsyncs       uint64 `json:"fsyncs"`        // synced batches (one WAL fsync each)
	SyncedWrites uint64 `json:"synced_writes"` // writes acknowledged by those fsyncs
}

// Key identifies the load a point was measured at; points with equal keys
// are comparable.
func (p *Point) Key() string { return fmt.Sprintf("%s/%d/%g", p.Kind, p.Conns, p.Rate) }

// ProcCPU is one process's CPU time during a point.
type ProcCPU struct {
	Process      string  `json:"process"`
	Seconds      float64 `json:"seconds"`        // user + system
	MicrosPerReq float64 `json:"micros_per_req"` // Seconds / OK requests
}

// Dist summarises one latency distribution, in microseconds.
type Dist struct {
	Count int64   `json:"count"`
	Min   float64 `json:"min"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p999"`
	Max   float64 `json:"max"`
	// Curve is the percentile curve for plots, dense in the tail.
	Curve []CurvePoint `json:"curve,omitempty"`
}

// CurvePoint is the value at one percentile.
type CurvePoint struct {
	Percentile float64 `json:"p"`
	Micros     float64 `json:"us"`
}

// DistFrom summarises h (microseconds). It returns nil for a nil or empty
// histogram.
func DistFrom(h *hdrhistogram.Histogram) *Dist {
	if h == nil || h.TotalCount() == 0 {
		return nil
	}
	d := &Dist{
		Count: h.TotalCount(),
		Min:   float64(h.Min()),
		Mean:  math.Round(h.Mean()*10) / 10,
		P50:   float64(h.ValueAtPercentile(50)),
		P90:   float64(h.ValueAtPercentile(90)),
		P99:   float64(h.ValueAtPercentile(99)),
		P999:  float64(h.ValueAtPercentile(99.9)),
		Max:   float64(h.Max()),
	}
	// Twenty points per decade of 1/(1-q), while the histogram holds
	// enough values for the percentile to mean something, then the max.
	for k := 0; ; k++ {
		x := math.Pow(10, float64(k)/20)
		if x > float64(d.Count) || x > 1e6 {
			break
		}
		p := 100 * (1 - 1/x)
		d.Curve = append(d.Curve, CurvePoint{Percentile: roundPct(p), Micros: float64(h.ValueAtPercentile(p))})
	}
	d.Curve = append(d.Curve, CurvePoint{Percentile: 100, Micros: d.Max})
	return d
}

func roundPct(p float64) float64 { return math.Round(p*1e6) / 1e6 }

// Comparison is a point measured against the same load on a baseline
// variant.
type Comparison struct {
	Against string  `json:"against"`
	Deltas  []Delta `json:"deltas"`
}

// Delta compares one metric. Ratio is This/Base; Diff is This-Base (for
// latencies, the added microseconds).
type Delta struct {
	Metric string  `json:"metric"`
	This   float64 `json:"this"`
	Base   float64 `json:"base"`
	Ratio  float64 `json:"ratio"`
	Diff   float64 `json:"diff"`
}

// Get returns the delta for metric.
func (c *Comparison) Get(metric string) (Delta, bool) {
	for _, d := range c.Deltas {
		if d.Metric == metric {
			return d, true
		}
	}
	return Delta{}, false
}

// CompareTo returns p's comparison against baseline, if present.
func (p *Point) CompareTo(baseline string) (*Comparison, bool) {
	for i := range p.Compare {
		if p.Compare[i].Against == baseline {
			return &p.Compare[i], true
		}
	}
	return nil, false
}

// Compare fills in every point's comparisons with the same-keyed points of
// the scenario's baselines that precede its variant in Baselines (all of
// them for a variant that is not a baseline), replacing earlier ones.
func Compare(s *Scenario) {
	for i := range s.Points {
		p := &s.Points[i]
		p.Compare = nil
		// A variant is compared with the baselines listed before it: the
		// bare proxy with direct, the gateway with both.
		for _, b := range s.Baselines {
			if b == p.Variant {
				break
			}
			for j := range s.Points {
				q := &s.Points[j]
				if q.Variant == b && q.Key() == p.Key() {
					p.Compare = append(p.Compare, compare(p, q))
					break
				}
			}
		}
	}
}

func compare(p, q *Point) Comparison {
	c := Comparison{Against: q.Variant}
	add := func(metric string, this, base float64) {
		d := Delta{Metric: metric, This: this, Base: base, Diff: this - base}
		if base != 0 {
			d.Ratio = math.Round(this/base*1000) / 1000
		}
		c.Deltas = append(c.Deltas, d)
	}
	add("throughput", p.Throughput, q.Throughput)
	dists := func(name string, a, b *Dist) {
		if a == nil || b == nil {
			return
		}
		add(name+"_p50", a.P50, b.P50)
		add(name+"_p99", a.P99, b.P99)
		add(name+"_p999", a.P999, b.P999)
	}
	dists("latency", p.Latency, q.Latency)
	dists("ttft", p.TTFT, q.TTFT)
	dists("gap", p.Gap, q.Gap)
	for _, pc := range p.CPU {
		for _, qc := range q.CPU {
			if pc.Process == qc.Process {
				add("cpu_"+pc.Process, pc.MicrosPerReq, qc.MicrosPerReq)
			}
		}
	}
	return c
}

// Table is a scenario-specific table, rendered as given.
type Table struct {
	Title   string     `json:"title"`
	Columns []string   `json:"columns"`
	Rows    [][]string `json:"rows"`
}

// Load reads a Run saved by [WriteFiles].
func Load(path string) (*Run, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Run
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("report: parse %s: %w", path, err)
	}
	if r.Schema != SchemaVersion {
		return nil, fmt.Errorf("report: %s has schema %d, want %d", path, r.Schema, SchemaVersion)
	}
	return &r, nil
}
