package edge_test

import (
	"slices"
	"testing"
	"time"

	"github.com/assistiv/gateway/edge/edgetest"
	"github.com/assistiv/gateway/internal/clock"
	"github.com/assistiv/gateway/internal/pb"
)

// The spec's own override example sets only RPM and TPM: the platform's
// daily request limit must still hold for that end-user, and follow the
// platform default when it changes. An explicit 0 lifts a limit. GET
// shows the override (null where inherited), the inherited fields and the
// limits in effect.
func TestRateLimitOverrideInheritsAbsentFields(t *testing.T) {
	clk := clock.NewFake(time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC))
	g := edgetest.Start(t, edgetest.Options{Clock: clk})
	p := newPlatform(t, g, "Inherit")
	u := p.endUser(t, g, "u")
	rl := p.path("/end-users/" + u.id + "/rate-limits")
	wantStatus(t, "PUT platform limits", g.Do(t, "PUT", p.path("/rate-limits"), p.key,
		map[string]any{"requests_per_minute": 100, "tokens_per_minute": 1000, "requests_per_day": 3}), 200)

	view := wantStatus(t, "PUT override", g.Do(t, "PUT", rl, p.key, map[string]any{"requests_per_minute": 600, "tokens_per_minute": 250000}), 200)
	if o, e := limitsText(view, "override"), limitsText(view, "effective"); o != "rpm=600 tpm=250000 rpd=" || e != "rpm=600 tpm=250000 rpd=3" {
		t.Fatalf("PUT override: override %s effective %s; want rpd inherited (3)", o, e)
	}
	if inh := inherited(view); !slices.Equal(inh, []string{"requests_per_day", "max_parallel_requests"}) {
		t.Fatalf("inherited = %v, want [requests_per_day max_parallel_requests]", inh)
	}
	get := wantStatus(t, "GET override", g.Do(t, "GET", rl, p.key, nil), 200)
	if limitsText(get, "override") != "rpm=600 tpm=250000 rpd=" || limitsText(get, "effective") != "rpm=600 tpm=250000 rpd=3" {
		t.Fatalf("GET = %v", get)
	}
	eu := wantStatus(t, "GET end-user", g.Do(t, "GET", p.path("/end-users/"+u.id), p.key, nil), 200)
	if limitsText(eu, "rate_limits") != "rpm=600 tpm=250000 rpd=" || limitsText(eu, "effective_rate_limits") != "rpm=600 tpm=250000 rpd=3" {
		t.Fatalf("end-user view rate_limits %s effective %s", limitsText(eu, "rate_limits"), limitsText(eu, "effective_rate_limits"))
	}

	// The daily limit of the platform still refuses the fourth request.
	for i := 1; i <= 4; i++ {
		_, err := askUser(g, p, u, &pb.CountRequest{})
		if i <= 3 && err != nil {
			t.Fatalf("request %d of 3 per day refused: %v", i, err)
		}
		if i == 4 && err == nil {
			t.Fatal("a fourth request in the day was admitted: the override lifted the platform's daily limit")
		}
	}

	// The inherited field follows the platform default.
	wantStatus(t, "PUT platform limits", g.Do(t, "PUT", p.path("/rate-limits"), p.key, map[string]any{"requests_per_day": 5}), 200)
	get = wantStatus(t, "GET after default change", g.Do(t, "GET", rl, p.key, nil), 200)
	if e := limitsText(get, "effective"); e != "rpm=600 tpm=250000 rpd=5" {
		t.Fatalf("effective after the platform default changed = %s, want rpd=5", e)
	}
	if _, err := askUser(g, p, u, &pb.CountRequest{}); err != nil {
		t.Fatalf("fourth request under the raised default: %v", err)
	}

	// An explicit 0 lifts the daily limit for this user only.
	view = wantStatus(t, "PUT lift", g.Do(t, "PUT", rl, p.key, map[string]any{"requests_per_day": 0}), 200)
	if o, e := limitsText(view, "override"), limitsText(view, "effective"); o != "rpm= tpm= rpd=0" || e != "rpm=0 tpm=0 rpd=0" {
		t.Fatalf("lift: override %s effective %s", o, e)
	}
	for i := 0; i < 5; i++ {
		if _, err := askUser(g, p, u, &pb.CountRequest{}); err != nil {
			t.Fatalf("request %d after the lift: %v", i, err)
		}
	}
	other := p.endUser(t, g, "other")
	ov := wantStatus(t, "GET other", g.Do(t, "GET", p.path("/end-users/"+other.id+"/rate-limits"), p.key, nil), 200)
	if limitsText(ov, "override") != "null" || limitsText(ov, "effective") != "rpm=0 tpm=0 rpd=5" || len(inherited(ov)) != 4 {
		t.Fatalf("another user's limits = %v", ov)
	}
}

func inherited(m map[string]any) []string {
	var out []string
	l, _ := m["inherited"].([]any)
	for _, v := range l {
		s, _ := v.(string)
		out = append(out, s)
	}
	return out
}
