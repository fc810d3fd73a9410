package suite

import "testing"

func TestParseBenchReadsCustomRateMetrics(t *testing.T) {
	out := "goos: linux\n" +
		"BenchmarkDurableDebits/64/shared-2   10000   151770 ns/op   6589 debits/s   0.94 fsyncs/op   2565 B/op   27 allocs/op\n" +
		"BenchmarkAdmitSettle/no-limits-2   580190   1792 ns/op   528 B/op   5 allocs/op\nPASS\n"
	lines := parseBench(out)
	if len(lines) != 2 {
		t.Fatalf("parseBench() = %d lines, want 2", len(lines))
	}
	if got := lines[0].perSec(); got != 6589 {
		t.Errorf("perSec() of the debits line = %v, want 6589 (its debits/s metric)", got)
	}
	if got := lines[1].perSec(); got < 558_000 || got > 558_100 {
		t.Errorf("perSec() of the admit line = %v, want 1e9/1792", got)
	}
}

func TestZipfFavoursLowRanks(t *testing.T) {
	z := &zipf{cdf: newZipfCDF(1000, 1.0), x: 1}
	n0, n := 0, 100_000
	for range n {
		k := z.next()
		if k < 0 || k >= 1000 {
			t.Fatalf("zipf.next() = %d, out of [0, 1000)", k)
		}
		if k == 0 {
			n0++
		}
	}
	// P(0) = 1/H(1000) ≈ 0.134.
	if f := float64(n0) / float64(n); f < 0.12 || f > 0.15 {
		t.Errorf("rank 0 drawn %.3f of the time, want about 0.134", f)
	}
}
