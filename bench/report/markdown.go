package report

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Markdown writes the human report for r. Plot images are linked as
// plotDir/<plot file>, relative to the Markdown file.
func Markdown(w io.Writer, r *Run, plotDir string) error {
	bw := bufio.NewWriter(w)
	mode := "full"
	if r.Quick {
		mode = "quick (BENCH_QUICK=1)"
	}
	fmt.Fprintf(bw, "# Benchmark report %s\n\n", r.ID)
	fmt.Fprintf(bw, "- Mode: %s; started %s, took %s\n", mode, r.Started.UTC().Format("2006-01-02 15:04:05 UTC"),
		r.Finished.Sub(r.Started).Round(1e9))
	h := r.Host
	fmt.Fprintf(bw, "- Host: %d CPUs %s, %s/%s, kernel %s, %s", h.NumCPU, h.CPUModel, h.GOOS, h.GOARCH, orDash(h.Kernel), h.GoVersion)
	if h.Commit != "" {
		fmt.Fprintf(bw, ", commit `%s`", h.Commit)
	}
	fmt.Fprint(bw, "\n")
	if line := speedLine(r.Speed); line != "" {
		fmt.Fprintf(bw, "- %s\n", line)
	}
	fmt.Fprint(bw, "- Every figure was measured in this run, next to its baseline. Latencies are µs unless a unit is shown. "+
		"Open-loop latency is measured from each request's intended send time (no coordinated omission). "+
		"See bench/README.md for how to read this report.\n")
	for _, n := range r.Notes {
		fmt.Fprintf(bw, "- %s\n", n)
	}

	if len(r.Headline) > 0 {
		fmt.Fprint(bw, "\n## Headline: targets\n\n")
		fmt.Fprint(bw, "Each figure is a ratio to (or a difference from) a baseline measured in this run, "+
			"except the absolute targets (debits/s, bytes per actor, recovery time, rate-limit exactness).\n\n")
		tbl(bw, []string{"target", "durability", "measured", "result", "how"}, func(row func(...string)) {
			for _, t := range r.Headline {
				st := t.Status
				switch st {
				case StatusPass:
					st = "pass"
				case StatusMiss:
					st = "**MISS**"
				}
				row(t.Name, orDash(t.Mode), t.Measured, st, t.Detail)
			}
		})
	}

	fmt.Fprint(bw, "\n## Process layout\n\n")
	tbl(bw, []string{"process", "binary", "CPUs"}, func(row func(...string)) {
		for _, p := range r.Layout {
			cpus := p.CPUs
			if cpus == "" {
				cpus = "not pinned"
			}
			row(p.Role, "`"+p.Binary+"`", cpus)
		}
	})

	plots := map[string][]Plot{}
	for i := range r.Scenarios {
		plots[r.Scenarios[i].Name] = scenarioPlots(&r.Scenarios[i])
	}
	for i := range r.Scenarios {
		s := &r.Scenarios[i]
		fmt.Fprintf(bw, "\n## %s\n\n", s.Title)
		if s.Description != "" {
			fmt.Fprintf(bw, "%s\n\n", s.Description)
		}
		if s.Error != "" {
			fmt.Fprintf(bw, "**Scenario stopped early: %s**\n\n", s.Error)
		}
		writeSaturation(bw, s)
		writeRates(bw, s)
		writeStreams(bw, s)
		for _, t := range s.Tables {
			fmt.Fprintf(bw, "### %s\n\n", t.Title)
			tbl(bw, t.Columns, func(row func(...string)) {
				for _, r := range t.Rows {
					row(r...)
				}
			})
		}
		for _, t := range s.Texts {
			fmt.Fprintf(bw, "### %s\n\n", t.Title)
			if t.Note != "" {
				fmt.Fprintf(bw, "%s\n\n", t.Note)
			}
			fmt.Fprintf(bw, "```\n%s\n```\n\n", strings.TrimRight(t.Body, "\n"))
		}
		if ps := plots[s.Name]; len(ps) > 0 {
			fmt.Fprint(bw, "### Distributions\n\n")
			for _, p := range ps {
				fmt.Fprintf(bw, "![%s](%s)\n\n", p.Title, filepath.ToSlash(filepath.Join(plotDir, p.File)))
			}
		}
	}
	return bw.Flush()
}

func writeSaturation(w io.Writer, s *Scenario) {
	ps := pointsOf(s, KindSaturation)
	if len(ps) == 0 {
		return
	}
	fmt.Fprint(w, "### Saturation throughput (closed loop)\n\n")
	cols := []string{"variant", "conns", "req/s"}
	bases := otherBaselines(s)
	for _, b := range bases {
		cols = append(cols, "× "+b)
	}
	cols = append(cols, "p50", "p99", "p99.9", "errors", "CPU µs/req")
	store := false
	for _, p := range ps {
		store = store || p.Store != nil
	}
	if store {
		cols = append(cols, "store: batches/req · fsyncs/s · writes/fsync")
	}
	tbl(w, cols, func(row func(...string)) {
		for _, p := range ps {
			cells := []string{p.Variant, fmt.Sprint(p.Conns), num(p.Throughput)}
			for _, b := range bases {
				cells = append(cells, ratioCell(p, b, "throughput"))
			}
			cells = append(cells, distCells(p.Latency)...)
			cells = append(cells, errCell(p), cpuCell(p))
			if store {
				cells = append(cells, storeCell(p))
			}
			row(cells...)
		}
	})
}

// storeCell renders a gateway point's group commit: Pebble batches per
// successful request, fsyncs per second and writes acknowledged per
// fsync ("–" for a baseline or a point without fsyncs).
func storeCell(p *Point) string {
	st := p.Store
	if st == nil || p.OK == 0 || p.DurationSec <= 0 {
		return "–"
	}
	per := "–"
	if st.Fsyncs > 0 {
		per = fmt.Sprintf("%.1f", float64(st.SyncedWrites)/float64(st.Fsyncs))
	}
	return fmt.Sprintf("%.2f · %s · %s", float64(st.Batches)/float64(p.OK), num(float64(st.Fsyncs)/p.DurationSec), per)
}

func writeRates(w io.Writer, s *Scenario) {
	ps := pointsOf(s, KindRate)
	if len(ps) == 0 {
		return
	}
	fmt.Fprint(w, "### Latency at fixed rates (open loop, from intended send time)\n\n")
	cols := []string{"variant", "target req/s", "achieved", "p50", "p90", "p99", "p99.9", "max"}
	bases := otherBaselines(s)
	for _, b := range bases {
		cols = append(cols, "added vs "+b+" p50 / p99 / p99.9", "× p99 vs "+b)
	}
	cols = append(cols, "dropped", "late", "errors", "CPU µs/req")
	tbl(w, cols, func(row func(...string)) {
		for _, p := range ps {
			achieved := num(p.Throughput)
			if !p.Sustained {
				achieved += " (not sustained)"
			}
			cells := []string{p.Variant, num(p.Rate), achieved}
			d := p.Latency
			if d == nil {
				d = &Dist{}
			}
			cells = append(cells, us(d.P50), us(d.P90), us(d.P99), us(d.P999), us(d.Max))
			for _, b := range bases {
				cells = append(cells, addedCell(p, b, "latency"), ratioCell(p, b, "latency_p99"))
			}
			cells = append(cells, fmt.Sprint(p.Dropped), fmt.Sprint(p.Late), errCell(p), cpuCell(p))
			row(cells...)
		}
	})
}

func writeStreams(w io.Writer, s *Scenario) {
	ps := pointsOf(s, KindStream)
	if len(ps) == 0 {
		return
	}
	fmt.Fprint(w, "### Streams (server-sent events)\n\n")
	cols := []string{"variant", "streams", "streams/s", "TTFT p50", "TTFT p99", "gap p50", "gap p99", "gap p99.9", "events/stream"}
	bases := otherBaselines(s)
	for _, b := range bases {
		cols = append(cols, "added TTFT vs "+b+" p50 / p99", "added gap vs "+b+" p50 / p99")
	}
	cols = append(cols, "errors", "CPU µs/stream")
	tbl(w, cols, func(row func(...string)) {
		for _, p := range ps {
			t, g := p.TTFT, p.Gap
			if t == nil {
				t = &Dist{}
			}
			if g == nil {
				g = &Dist{}
			}
			perStream := "–"
			if p.OK+p.Failed > 0 {
				perStream = fmt.Sprintf("%.1f", float64(p.Events)/float64(p.OK+p.Failed))
			}
			cells := []string{p.Variant, fmt.Sprint(p.OK), num(p.Rate), us(t.P50), us(t.P99), us(g.P50), us(g.P99), us(g.P999), perStream}
			for _, b := range bases {
				cells = append(cells, addedPair(p, b, "ttft"), addedPair(p, b, "gap"))
			}
			cells = append(cells, errCell(p), cpuCell(p))
			row(cells...)
		}
	})
}

func pointsOf(s *Scenario, kind string) []*Point {
	var ps []*Point
	for i := range s.Points {
		if s.Points[i].Kind == kind {
			ps = append(ps, &s.Points[i])
		}
	}
	return ps
}

// otherBaselines returns the baselines that some point is compared with.
func otherBaselines(s *Scenario) []string {
	var out []string
	for _, b := range s.Baselines {
		for i := range s.Points {
			if _, ok := s.Points[i].CompareTo(b); ok {
				out = append(out, b)
				break
			}
		}
	}
	return out
}

func ratioCell(p *Point, base, metric string) string {
	c, ok := p.CompareTo(base)
	if !ok {
		return "–"
	}
	d, ok := c.Get(metric)
	if !ok || d.Ratio == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", d.Ratio)
}

func addedCell(p *Point, base, dist string) string {
	c, ok := p.CompareTo(base)
	if !ok {
		return "–"
	}
	var parts []string
	for _, q := range []string{"_p50", "_p99", "_p999"} {
		d, ok := c.Get(dist + q)
		if !ok {
			return "–"
		}
		parts = append(parts, signed(d.Diff))
	}
	return strings.Join(parts, " / ")
}

func addedPair(p *Point, base, dist string) string {
	c, ok := p.CompareTo(base)
	if !ok {
		return "–"
	}
	a, ok1 := c.Get(dist + "_p50")
	b, ok2 := c.Get(dist + "_p99")
	if !ok1 || !ok2 {
		return "–"
	}
	return signed(a.Diff) + " / " + signed(b.Diff)
}

func distCells(d *Dist) []string {
	if d == nil {
		return []string{"–", "–", "–"}
	}
	return []string{us(d.P50), us(d.P99), us(d.P999)}
}

func errCell(p *Point) string {
	if len(p.Errors) == 0 {
		return "0"
	}
	keys := make([]string, 0, len(p.Errors))
	for k := range p.Errors {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s: %d", k, p.Errors[k]))
	}
	return strings.Join(parts, ", ")
}

func cpuCell(p *Point) string {
	if len(p.CPU) == 0 {
		return "–"
	}
	var parts []string
	for _, c := range p.CPU {
		parts = append(parts, fmt.Sprintf("%s %.1f", c.Process, c.MicrosPerReq))
	}
	return strings.Join(parts, " · ")
}

func us(v float64) string {
	if v == 0 {
		return "–"
	}
	return num(v)
}

func num(v float64) string {
	if v >= 100 || v == float64(int64(v)) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

func signed(v float64) string {
	if v >= 0 {
		return "+" + num(v)
	}
	return "−" + num(-v)
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

// tbl writes a Markdown table; fill calls row once per row.
func tbl(w io.Writer, cols []string, fill func(row func(...string))) {
	fmt.Fprintf(w, "| %s |\n|", strings.Join(cols, " | "))
	for range cols {
		fmt.Fprint(w, " --- |")
	}
	fmt.Fprint(w, "\n")
	fill(func(cells ...string) {
		esc := make([]string, len(cells))
		for i, c := range cells {
			esc[i] = strings.ReplaceAll(c, "|", `\|`)
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(esc, " | "))
	})
	fmt.Fprint(w, "\n")
}

// Files are the paths [WriteFiles] wrote.
type Files struct {
	JSON, Markdown, Latest string
	Plots                  []string
}

// WriteFiles writes r into dir as <ID>.json, <ID>.md, the plots under
// <ID>/ and a copy of the Markdown as LATEST.md (whose links work because it
// sits beside <ID>.md). It computes comparisons first. dir is created if
// needed.
func WriteFiles(dir string, r *Run) (Files, error) {
	for i := range r.Scenarios {
		Compare(&r.Scenarios[i])
	}
	f := Files{
		JSON:     filepath.Join(dir, r.ID+".json"),
		Markdown: filepath.Join(dir, r.ID+".md"),
		Latest:   filepath.Join(dir, "LATEST.md"),
	}
	plotDir := filepath.Join(dir, r.ID)
	if err := os.MkdirAll(plotDir, 0o755); err != nil {
		return f, err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return f, err
	}
	if err := os.WriteFile(f.JSON, append(b, '\n'), 0o644); err != nil {
		return f, err
	}
	for _, p := range Plots(r) {
		path := filepath.Join(plotDir, p.File)
		if err := writeWith(path, p.WriteSVG); err != nil {
			return f, err
		}
		f.Plots = append(f.Plots, path)
	}
	md := func(w io.Writer) error { return Markdown(w, r, r.ID) }
	if err := writeWith(f.Markdown, md); err != nil {
		return f, err
	}
	return f, writeWith(f.Latest, md)
}

func writeWith(path string, write func(io.Writer) error) error {
	fh, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(fh); err != nil {
		fh.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return fh.Close()
}

// speedLine renders the host-speed probes as "start → end" pairs.
func speedLine(ps []HostSpeed) string {
	if len(ps) == 0 {
		return ""
	}
	pair := func(f func(HostSpeed) float64, prec int) string {
		parts := make([]string, len(ps))
		for i, p := range ps {
			parts[i] = strconv.FormatFloat(f(p), 'f', prec, 64)
		}
		return strings.Join(parts, " → ")
	}
	ats := make([]string, len(ps))
	for i, p := range ps {
		ats[i] = p.At
	}
	return fmt.Sprintf("Host speed (%s): SHA-256 %s MB/s on one core; fdatasync of 2 KiB %s µs overwriting, %s µs appending "+
		"(median wall, on the data dirs' disk). Compare two runs' figures only when these agree.",
		strings.Join(ats, " → "),
		pair(func(p HostSpeed) float64 { return p.SHA256MBps }, 0),
		pair(func(p HostSpeed) float64 { return p.FsyncOverwriteMicros }, 0),
		pair(func(p HostSpeed) float64 { return p.FsyncAppendMicros }, 0))
}
