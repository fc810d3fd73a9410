package dashboard

import (
	"strings"
	"testing"
)

func TestNiceMax(t *testing.T) {
	for in, want := range map[int64]int64{0: 4, 1: 4, 5: 8, 9: 10, 11: 20, 123: 200, 12300: 20000, 99999877000: 100000000000, 40: 40, 41: 80} {
		if got := niceMax(in); got != want {
			t.Errorf("niceMax(%d) = %d, want %d", in, got, want)
		}
	}
}

func TestChartIsReadableWithoutColourAndEscapesNames(t *testing.T) {
	c := chart{ID: "c", Title: "t", Labels: []string{"a", "b"}, Format: func(v int64) string { return "v" },
		Series: []series{{"<script>x</script>", []int64{1, 2}}, {"two", []int64{3, 0}}}}
	svg, legend := string(c.SVG()), string(c.Legend())
	if strings.Contains(svg+legend, "<script>") {
		t.Fatal("series name not escaped")
	}
	// The second series is patterned, not only coloured, in the bars and the legend.
	if !strings.Contains(svg, `fill="url(#c-p1)"`) || !strings.Contains(legend, `fill="url(#c-p1)"`) {
		t.Fatalf("no pattern fill for series 2:\n%s\n%s", svg, legend)
	}
	// Every bar carries its exact value.
	if strings.Count(svg, "<rect") < 3 || !strings.Contains(svg, "<title>a two: v</title>") {
		t.Fatalf("bars without tooltips:\n%s", svg)
	}
}
