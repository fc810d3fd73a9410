package report

import (
	"bufio"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"strings"
)

// Plot is one latency-distribution chart: several series of the same metric
// at the same load, one per variant.
type Plot struct {
	File   string // file name, e.g. "overhead-rate-1000-latency.svg"
	Title  string
	Series []Series
}

// Series is one curve of a [Plot].
type Series struct {
	Name string
	Dist *Dist
}

// Plots returns the plots for every scenario of r, in report order: for
// each load of a scenario, one plot of the latency (or, for streams, TTFT
// and inter-event gap) of every variant measured at it.
func Plots(r *Run) []Plot {
	var out []Plot
	for i := range r.Scenarios {
		out = append(out, scenarioPlots(&r.Scenarios[i])...)
	}
	return out
}

func scenarioPlots(s *Scenario) []Plot {
	var keys []string
	byKey := map[string][]*Point{}
	for i := range s.Points {
		p := &s.Points[i]
		if _, ok := byKey[p.Key()]; !ok {
			keys = append(keys, p.Key())
		}
		byKey[p.Key()] = append(byKey[p.Key()], p)
	}
	var out []Plot
	for _, k := range keys {
		ps := byKey[k]
		p0 := ps[0]
		metrics := []metric{{"latency", "latency", func(p *Point) *Dist { return p.Latency }}}
		if p0.Kind == KindStream {
			metrics = []metric{
				{"ttft", "time to first token", func(p *Point) *Dist { return p.TTFT }},
				{"gap", "inter-chunk gap", func(p *Point) *Dist { return p.Gap }},
			}
		}
		for _, m := range metrics {
			pl := Plot{
				File:  fmt.Sprintf("%s-%s-%s.svg", s.Name, loadSlug(p0), m.name),
				Title: fmt.Sprintf("%s: %s, %s", s.Title, m.label, loadLabel(p0)),
			}
			for _, p := range ps {
				if d := m.get(p); d != nil && len(d.Curve) > 0 {
					pl.Series = append(pl.Series, Series{Name: p.Variant, Dist: d})
				}
			}
			if len(pl.Series) > 0 {
				out = append(out, pl)
			}
		}
	}
	return out
}

// metric names a distribution of a point.
type metric struct {
	name, label string
	get         func(*Point) *Dist
}

func loadSlug(p *Point) string {
	switch p.Kind {
	case KindSaturation:
		return fmt.Sprintf("conns%d", p.Conns)
	default:
		return fmt.Sprintf("%s%g", p.Kind, p.Rate)
	}
}

func loadLabel(p *Point) string {
	switch p.Kind {
	case KindSaturation:
		return fmt.Sprintf("closed loop, %d connections", p.Conns)
	case KindStream:
		return fmt.Sprintf("%g streams/s, up to %d in flight", p.Rate, p.Conns)
	default:
		return fmt.Sprintf("open loop at %g req/s", p.Rate)
	}
}

// Plot geometry, in SVG user units.
const (
	svgW, svgH                   = 760, 440
	padL, padR, padT, padB       = 72, 150, 44, 56
	plotW, plotH                 = svgW - padL - padR, svgH - padT - padB
	maxNines                     = 6 // x axis ends at 99.9999%
	fontAttrs                    = `font-family="sans-serif" font-size="12"`
	gridStroke                   = `stroke="#ddd" stroke-width="1"`
	axisStroke                   = `stroke="#333" stroke-width="1"`
	legendLine, legendRowSpacing = 24, 20
)

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"}

// WriteSVG draws the plot: latency (log scale) against percentile on a
// log "1/(1-q)" axis, so 90%, 99%, 99.9% ... are evenly spaced and the
// tail gets the room it deserves, as in HdrHistogram's plots.
func (p *Plot) WriteSVG(w io.Writer) error {
	bw := bufio.NewWriter(w)
	// Axis ranges.
	nines := 1.0
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range p.Series {
		for _, c := range s.Dist.Curve {
			if c.Percentile < 100 {
				nines = math.Max(nines, xOf(c.Percentile))
			}
			lo, hi = math.Min(lo, c.Micros), math.Max(hi, c.Micros)
		}
	}
	nines = math.Min(math.Ceil(nines), maxNines)
	lo, hi = math.Max(lo, 1), math.Max(hi, 1)
	yLo := math.Floor(math.Log10(lo))
	yHi := math.Ceil(math.Log10(hi))
	if yHi <= yLo {
		yHi = yLo + 1
	}
	px := func(x float64) float64 { return padL + math.Min(x, nines)/nines*plotW }
	py := func(us float64) float64 {
		return padT + plotH - (math.Log10(math.Max(us, 1))-yLo)/(yHi-yLo)*plotH
	}

	fmt.Fprintf(bw, `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" %s>
<rect width="100%%" height="100%%" fill="white"/>
<text x="%d" y="24" font-size="14" font-weight="bold">%s</text>
`, svgW, svgH, svgW, svgH, fontAttrs, padL, esc(p.Title))

	// Horizontal grid at 1-2-5 steps with labels.
	for e := yLo; e <= yHi; e++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, e)
			if math.Log10(v) > yHi+1e-9 {
				break
			}
			y := py(v)
			fmt.Fprintf(bw, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" %s/>`+"\n", padL, padL+plotW, y, y, gridStroke)
			fmt.Fprintf(bw, `<text x="%d" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>`+"\n", padL-6, y, esc(FormatMicros(v)))
		}
	}
	// Vertical grid at 0%, 90%, 99%, ...
	for k := 0.0; k <= nines; k++ {
		x := px(k)
		fmt.Fprintf(bw, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" %s/>`+"\n", x, x, padT, padT+plotH, gridStroke)
		fmt.Fprintf(bw, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x, padT+plotH+18, esc(nineLabel(int(k))))
	}
	fmt.Fprintf(bw, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" %s/>`+"\n", padL, padT, plotW, plotH, axisStroke)
	fmt.Fprintf(bw, `<text x="%d" y="%d" text-anchor="middle">percentile (log scale of 1/(1-q))</text>`+"\n", padL+plotW/2, svgH-12)
	fmt.Fprintf(bw, `<text x="16" y="%d" text-anchor="middle" transform="rotate(-90 16 %d)">latency (log scale)</text>`+"\n", padT+plotH/2, padT+plotH/2)

	// Curves and legend.
	for i, s := range p.Series {
		color := palette[i%len(palette)]
		var pts strings.Builder
		for _, c := range s.Dist.Curve {
			x := xOf(c.Percentile)
			if c.Percentile >= 100 {
				x = nines // the max sits at the right edge
			}
			fmt.Fprintf(&pts, "%.1f,%.1f ", px(x), py(c.Micros))
		}
		fmt.Fprintf(bw, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", color, strings.TrimSpace(pts.String()))
		ly := padT + 10 + i*legendRowSpacing
		lx := padL + plotW + 12
		fmt.Fprintf(bw, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="3"/>`+"\n", lx, lx+legendLine, ly, ly, color)
		fmt.Fprintf(bw, `<text x="%d" y="%d" dominant-baseline="middle">%s</text>`+"\n", lx+legendLine+6, ly, esc(s.Name))
	}
	fmt.Fprintln(bw, "</svg>")
	return bw.Flush()
}

// xOf maps a percentile to the number of nines: 0% → 0, 90% → 1, 99% → 2.
func xOf(pct float64) float64 {
	if pct >= 100 {
		return maxNines
	}
	return math.Log10(1 / (1 - pct/100))
}

func nineLabel(k int) string {
	switch k {
	case 0:
		return "0%"
	case 1:
		return "90%"
	}
	return "99" + dotNines(k-2) + "%"
}

func dotNines(n int) string {
	if n <= 0 {
		return ""
	}
	return "." + strings.Repeat("9", n)
}

func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// FormatMicros renders a duration given in microseconds with a fitting unit:
// "850µs", "1.2ms", "3s".
func FormatMicros(us float64) string {
	trim := func(v float64, unit string) string {
		s := fmt.Sprintf("%.1f", v)
		s = strings.TrimSuffix(s, ".0")
		return s + unit
	}
	switch {
	case us >= 1e6:
		return trim(us/1e6, "s")
	case us >= 1e3:
		return trim(us/1e3, "ms")
	default:
		return trim(us, "µs")
	}
}
