package dashboard

import (
	"fmt"
	"html/template"
	"strings"
	"time"
)

// series is one named row of values, one per x position.
type series struct {
	Name   string
	Values []int64
}

// chart is a server-rendered SVG chart with its data as a table, readable
// without colour: each series has its own fill pattern, named in the legend,
// and every bar or point carries its exact value as a tooltip.
type chart struct {
	ID     string
	Title  string
	Labels []string
	Series []series
	// Format renders a value (money or a count).
	Format func(int64) string
	// Line draws points joined by a line instead of stacked bars.
	Line bool
}

const (
	chartW, chartH       = 640, 240
	padL, padR, padT, pB = 72, 12, 12, 36
)

// patterns are the fills of series 0..5: solid, hatched, dotted, crossed,
// horizontal lines, vertical lines; each in its own colour class as well.
var patterns = []string{
	``,
	`<path d="M0,6 L6,0" class="pl"/>`,
	`<circle cx="3" cy="3" r="1.4" class="pd"/>`,
	`<path d="M0,0 L6,6 M0,6 L6,0" class="pl"/>`,
	`<path d="M0,3 L6,3" class="pl"/>`,
	`<path d="M3,0 L3,6" class="pl"/>`,
}

func (c chart) fill(i int) string {
	if i%len(patterns) == 0 {
		return fmt.Sprintf(`class="s%d"`, i%6)
	}
	return fmt.Sprintf(`fill="url(#%s-p%d)" class="s%d"`, c.ID, i%6, i%6)
}

func esc(s string) string { return template.HTMLEscapeString(s) }

// SVG renders the chart.
func (c chart) SVG() template.HTML {
	var b strings.Builder
	n := len(c.Labels)
	var max int64
	for i := 0; i < n; i++ {
		var sum int64
		for _, s := range c.Series {
			if c.Line {
				max = maxI(max, s.Values[i])
			} else {
				sum += maxI(s.Values[i], 0)
			}
		}
		max = maxI(max, sum)
	}
	max = niceMax(max)
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-labelledby="%s-t" preserveAspectRatio="xMidYMid meet">`, chartW, chartH, c.ID)
	fmt.Fprintf(&b, `<title id="%s-t">%s</title><defs>`, c.ID, esc(c.Title))
	for i := 1; i < len(patterns) && i < len(c.Series)+1; i++ {
		fmt.Fprintf(&b, `<pattern id="%s-p%d" width="6" height="6" patternUnits="userSpaceOnUse"><rect width="6" height="6" class="s%d"/>%s</pattern>`, c.ID, i, i, patterns[i])
	}
	b.WriteString(`</defs>`)
	plotW, plotH := float64(chartW-padL-padR), float64(chartH-padT-pB)
	for k := 0; k <= 4; k++ {
		y := float64(padT) + plotH*float64(k)/4
		v := max - max*int64(k)/4
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" class="grid"/><text x="%d" y="%.1f" class="axis" text-anchor="end">%s</text>`,
			padL, chartW-padR, y, y, padL-6, y+4, esc(c.Format(v)))
	}
	slot := plotW / float64(maxInt(n, 1))
	step := maxInt(1, n/7)
	for i, l := range c.Labels {
		if (n-1-i)%step == 0 { // counted from the last day, which is always labelled
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" class="axis" text-anchor="middle">%s</text>`, float64(padL)+slot*(float64(i)+0.5), chartH-pB+16, esc(l))
		}
	}
	scale := func(v int64) float64 { return plotH * float64(v) / float64(max) }
	if c.Line {
		for si, s := range c.Series {
			var pts []string
			for i, v := range s.Values {
				x, y := float64(padL)+slot*(float64(i)+0.5), float64(padT)+plotH-scale(v)
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" class="s%d pt"><title>%s %s: %s</title></circle>`, x, y, si, esc(c.Labels[i]), esc(s.Name), esc(c.Format(v)))
			}
			fmt.Fprintf(&b, `<polyline points="%s" class="line l%d"/>`, strings.Join(pts, " "), si)
		}
	} else {
		bw := slot * 0.7
		for i := 0; i < n; i++ {
			y := float64(padT) + plotH
			for si, s := range c.Series {
				v := s.Values[i]
				if v <= 0 {
					continue
				}
				h := scale(v)
				y -= h
				fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" %s><title>%s %s: %s</title></rect>`,
					float64(padL)+slot*float64(i)+(slot-bw)/2, y, bw, h, c.fill(si), esc(c.Labels[i]), esc(s.Name), esc(c.Format(v)))
			}
		}
	}
	fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" class="axisline"/></svg>`, padL, chartW-padR, chartH-pB, chartH-pB)
	return template.HTML(b.String())
}

// Legend renders the series names with their swatches.
func (c chart) Legend() template.HTML {
	var b strings.Builder
	b.WriteString(`<ul class="legend">`)
	for i, s := range c.Series {
		sw := fmt.Sprintf(`<rect width="14" height="14" %s/>`, c.fill(i))
		if c.Line {
			sw = fmt.Sprintf(`<line x1="0" x2="14" y1="7" y2="7" class="line l%d"/>`, i)
		}
		fmt.Fprintf(&b, `<li><svg width="14" height="14" aria-hidden="true">%s</svg> %s</li>`, sw, esc(s.Name))
	}
	b.WriteString(`</ul>`)
	return template.HTML(b.String())
}

// Rows are the chart's data as table rows: label, then one value per series.
func (c chart) Rows() [][]string {
	out := make([][]string, len(c.Labels))
	for i, l := range c.Labels {
		row := []string{l}
		for _, s := range c.Series {
			row = append(row, c.Format(s.Values[i]))
		}
		out[i] = row
	}
	return out
}

// niceMax rounds an axis maximum up to 1, 2, 4, 8 or 10 times a power of
// ten (at least 4), so the quarter ticks are round numbers.
func niceMax(v int64) int64 {
	if v <= 4 {
		return 4
	}
	p := int64(1)
	for p <= v/10 {
		p *= 10
	}
	for _, m := range []int64{1, 2, 4, 8, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func maxI(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

func maxInt(a, b int) int {
	if a > b {
		return a
	}
	return b
}

// dayLabels are the last n UTC days ending today, oldest first.
func dayLabels(now time.Time, n int) ([]time.Time, []string) {
	today := time.Date(now.UTC().Year(), now.UTC().Month(), now.UTC().Day(), 0, 0, 0, 0, time.UTC)
	days := make([]time.Time, n)
	labels := make([]string, n)
	for i := 0; i < n; i++ {
		days[i] = today.AddDate(0, 0, i-n+1)
		labels[i] = days[i].Format("Jan 2")
	}
	return days, labels
}
