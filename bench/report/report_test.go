package report

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// hist returns a histogram of n values spread from base to ~base*tail µs.
func hist(n int, base, tail int64) *hdrhistogram.Histogram {
	h := hdrhistogram.New(1, 60_000_000, 3)
	for i := range n {
		v := base + int64(i%100)
		if i%1000 == 999 {
			v = base * tail
		}
		_ = h.RecordValue(v)
	}
	return h
}

func sampleRun() *Run {
	start := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	point := func(variant, kind string, conns int, rate float64, base int64) Point {
		p := Point{
			Variant: variant, Kind: kind, Conns: conns, Rate: rate, DurationSec: 2,
			Sent: 10000, OK: 9990, Failed: 10, Errors: map[string]int64{"timeout": 10},
			Throughput: 5000 - float64(base), Sustained: true,
			Latency: DistFrom(hist(10000, base, 50)),
			CPU:     []ProcCPU{{Process: "upstream", Seconds: 0.5, MicrosPerReq: 50}},
		}
		if kind == KindStream {
			p.TTFT, p.Gap, p.Events = DistFrom(hist(1000, base, 3)), DistFrom(hist(20000, 20000, 2)), 200000
		}
		return p
	}
	return &Run{
		Schema: SchemaVersion, ID: "20260102T150405Z", Started: start, Finished: start.Add(time.Minute),
		Quick: true, Host: Host{GOOS: "linux", GOARCH: "amd64", NumCPU: 2, GoVersion: "go1.26"},
		Speed: []HostSpeed{{At: "start", SHA256MBps: 512.4, FsyncOverwriteMicros: 90, FsyncAppendMicros: 165},
			{At: "end", SHA256MBps: 470, FsyncOverwriteMicros: 101.6, FsyncAppendMicros: 170}},
		Layout: []Placement{{Role: "loadgen", Binary: "benchrun", CPUs: "0"}, {Role: "upstream", Binary: "bin/x", CPUs: "1"}},
		Scenarios: []Scenario{{
			Name: "overhead", Title: "Overhead <non-streaming>", Baselines: []string{"direct", "bareproxy"},
			Points: []Point{
				point("direct", KindSaturation, 64, 0, 100),
				point("bareproxy", KindSaturation, 64, 0, 150),
				point("direct", KindRate, 256, 1000, 80),
				point("bareproxy", KindRate, 256, 1000, 120),
				point("direct", KindStream, 1000, 250, 300),
				point("bareproxy", KindStream, 1000, 250, 400),
			},
			Tables: []Table{{Title: "Extra", Columns: []string{"a", "b"}, Rows: [][]string{{"1", "x|y"}}}},
		}},
	}
}

func TestWriteFilesRoundTripsJSON(t *testing.T) {
	dir := t.TempDir()
	r := sampleRun()
	f, err := WriteFiles(dir, r)
	if err != nil {
		t.Fatalf("WriteFiles() error = %v", err)
	}
	got, err := Load(f.JSON)
	if err != nil {
		t.Fatalf("Load(%s) error = %v", f.JSON, err)
	}
	a, _ := json.Marshal(r)
	b, _ := json.Marshal(got)
	if !bytes.Equal(a, b) {
		t.Errorf("Load(WriteFiles(run)) differs from run (%d vs %d bytes of JSON)", len(a), len(b))
	}
	if got.Scenarios[0].Points[1].Compare == nil {
		t.Errorf("WriteFiles did not fill comparisons")
	}
}

// TestMarkdownShowsTheGroupCommit: a gateway point's store counters get
// their column in the saturation table; the baselines' rows show "–".
func TestMarkdownShowsTheGroupCommit(t *testing.T) {
	r := sampleRun()
	sc := &r.Scenarios[0]
	gw := sc.Points[1]
	gw.Variant = "gateway-sync"
	gw.Store = &StoreStats{Batches: 4995, Fsyncs: 200, SyncedWrites: 3200}
	sc.Points = append(sc.Points, gw)
	Compare(sc)
	var b strings.Builder
	if err := Markdown(&b, r, "plots"); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{"| store: batches/req · fsyncs/s · writes/fsync |", "| 0.50 · 100 · 16.0 |", "| – |"} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown() lacks %q", want)
		}
	}
}

func TestCompareComputesRatiosAndAddedMicros(t *testing.T) {
	r := sampleRun()
	s := &r.Scenarios[0]
	Compare(s)
	p := &s.Points[3] // bareproxy at 1000 req/s
	c, ok := p.CompareTo("direct")
	if !ok {
		t.Fatalf("bareproxy rate point has no comparison with direct: %+v", p.Compare)
	}
	d, ok := c.Get("latency_p50")
	if !ok || d.Diff != p.Latency.P50-s.Points[2].Latency.P50 || d.Diff <= 0 {
		t.Errorf("latency_p50 delta = %+v, want this-base = %v", d, p.Latency.P50-s.Points[2].Latency.P50)
	}
	tp, _ := c.Get("throughput")
	if want := p.Throughput / s.Points[2].Throughput; tp.Ratio < want-0.001 || tp.Ratio > want+0.001 {
		t.Errorf("throughput ratio = %v, want %v", tp.Ratio, want)
	}
	if _, ok := s.Points[2].CompareTo("direct"); ok {
		t.Errorf("direct point compared with itself")
	}
	if _, ok := s.Points[0].CompareTo("bareproxy"); ok {
		t.Errorf("direct point compared with the later baseline bareproxy")
	}
}

func TestMarkdownHasTablesAndPlotLinks(t *testing.T) {
	r := sampleRun()
	Compare(&r.Scenarios[0])
	var b strings.Builder
	if err := Markdown(&b, r, "plots"); err != nil {
		t.Fatalf("Markdown() error = %v", err)
	}
	md := b.String()
	for _, want := range []string{
		"| process | binary | CPUs |",
		"### Saturation throughput (closed loop)",
		"| variant | conns | req/s | × direct | p50 |",
		"### Latency at fixed rates",
		"added vs direct p50 / p99 / p99.9",
		"### Streams (server-sent events)",
		"TTFT p50",
		"](plots/overhead-rate1000-latency.svg)",
		"](plots/overhead-stream250-gap.svg)",
		`| 1 | x\|y |`,
		"timeout: 10",
		"Host speed (start → end): SHA-256 512 → 470 MB/s on one core; fdatasync of 2 KiB 90 → 102 µs overwriting, 165 → 170 µs appending",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown() lacks %q", want)
		}
	}
	// Every table row has as many cells as its header.
	var cols int
	for _, line := range strings.Split(md, "\n") {
		if !strings.HasPrefix(line, "|") {
			cols = 0
			continue
		}
		n := strings.Count(strings.ReplaceAll(line, `\|`, ""), "|")
		if cols == 0 {
			cols = n
		} else if n != cols {
			t.Errorf("table row has %d separators, header %d: %s", n, cols, line)
		}
	}
}

func TestPlotsAreWellFormedSVG(t *testing.T) {
	dir := t.TempDir()
	f, err := WriteFiles(dir, sampleRun())
	if err != nil {
		t.Fatalf("WriteFiles() error = %v", err)
	}
	if len(f.Plots) != 4 { // conns64, rate1000, stream ttft, stream gap
		t.Errorf("WriteFiles wrote %d plots, want 4: %v", len(f.Plots), f.Plots)
	}
	for _, path := range f.Plots {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		dec := xml.NewDecoder(bytes.NewReader(b))
		var polylines int
		var root string
		for {
			tok, err := dec.Token()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s is not well-formed XML: %v", filepath.Base(path), err)
			}
			if se, ok := tok.(xml.StartElement); ok {
				if root == "" {
					root = se.Name.Local
				}
				if se.Name.Local == "polyline" {
					polylines++
				}
			}
		}
		if root != "svg" || polylines != 2 {
			t.Errorf("%s: root <%s> with %d curves, want <svg> with 2", filepath.Base(path), root, polylines)
		}
	}
	if !strings.Contains(mustRead(t, f.Latest), "![") {
		t.Errorf("LATEST.md has no plot links")
	}
}

func mustRead(tb testing.TB, path string) string {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

func TestFormatMicrosAndNineLabels(t *testing.T) {
	for _, tc := range []struct {
		in   float64
		want string
	}{{850, "850µs"}, {1000, "1ms"}, {1500, "1.5ms"}, {2e6, "2s"}} {
		if got := FormatMicros(tc.in); got != tc.want {
			t.Errorf("FormatMicros(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
	for k, want := range []string{"0%", "90%", "99%", "99.9%", "99.99%"} {
		if got := nineLabel(k); got != want {
			t.Errorf("nineLabel(%d) = %q, want %q", k, got, want)
		}
	}
}
