package edge_test

import (
	"fmt"
	"net/url"
	"reflect"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/assistiv/gateway/edge/edgetest"
	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/internal/money"
	"github.com/assistiv/gateway/logs"
)

var logBase = time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)

// writeLogs writes entries through the gateway's log writer and waits
// until they are readable.
func writeLogs(tb testing.TB, g *edgetest.Gateway, es ...logs.Entry) {
	tb.Helper()
	for _, e := range es {
		g.Logs.Writer().Write(e)
	}
	if err := g.Logs.Writer().Flush(); err != nil {
		tb.Fatal(err)
	}
}

// logPages pages through path (which has no cursor) and returns every
// entry's request_id, newest first.
func logPages(tb testing.TB, g *edgetest.Gateway, key, path string) []string {
	tb.Helper()
	var out []string
	cursor := ""
	for i := 0; i < 10000; i++ {
		p := path
		if cursor != "" {
			p += "&cursor=" + url.QueryEscape(cursor)
		}
		r := g.Do(tb, "GET", p, key, nil)
		m := wantStatus(tb, "GET "+p, r, 200)
		for _, d := range list(tb, r) {
			out = append(out, str(d, "request_id"))
		}
		if m["has_more"] != true {
			if m["next_cursor"] != nil {
				tb.Errorf("GET %s: next_cursor %v without has_more", p, m["next_cursor"])
			}
			return out
		}
		cursor = str(m, "next_cursor")
	}
	tb.Fatal("paging does not end")
	return nil
}

func TestLogsListShapeFiltersAndGetByRequestID(t *testing.T) {
	g := edgetest.Start(t, edgetest.Options{})
	a := newPlatform(t, g, "logs-a")
	u1, u2 := a.endUser(t, g, "u1"), a.endUser(t, g, "u2")
	pid := ids.PlatformID(a.id)
	mk := func(n int, u endUser, model string, kind logs.Kind, status int) logs.Entry {
		e := logs.Entry{
			RequestID: fmt.Sprintf("req_%026d", n), PlatformID: pid, EndUserID: ids.EndUserID(u.id),
			Kind: kind, Model: model, Provider: "openai", StatusCode: status,
			PromptTokens: 10, CompletionTokens: 5, Cost: 1_500, ProviderCost: 1_000,
			Latency: 1234 * time.Millisecond, CreatedAt: logBase.Add(time.Duration(n) * time.Minute),
		}
		if status >= 400 {
			e.ErrorCode = "upstream_error"
		}
		return e
	}
	tool := mk(5, u2, "", logs.KindTool, 200)
	tool.Tool, tool.App, tool.Provider = "create_issue", "github", "github"
	stream := mk(1, u1, "claude-sonnet", logs.KindChatCompletions, 200)
	stream.Stream, stream.TTFT = true, 87*time.Millisecond
	writeLogs(t, g,
		mk(0, u1, "gpt-4o", logs.KindChatCompletions, 200),
		stream,
		mk(2, u2, "gpt-4o", logs.KindResponses, 429),
		mk(3, u2, "gpt-4o", logs.KindChatCompletions, 502),
		mk(4, u1, "gpt-4o", logs.KindChatCompletions, 201),
		tool,
	)
	rid := func(n int) string { return fmt.Sprintf("req_%026d", n) }

	// Shape of one entry, by request id.
	r := g.Do(t, "GET", a.path("/logs/"+rid(1)), a.key, nil)
	m := wantStatus(t, "GET log", r, 200)
	want := map[string]string{
		"object": "log", "request_id": rid(1), "end_user_id": u1.id, "kind": "chat.completions",
		"model": "claude-sonnet", "provider": "openai", "created_at": "2026-05-01T00:01:00.000Z",
	}
	for k, v := range want {
		if str(m, k) != v {
			t.Errorf("GET log: %s = %v, want %q", k, m[k], v)
		}
	}
	nums := map[string]string{
		"status_code": "200", "prompt_tokens": "10", "completion_tokens": "5", "total_tokens": "15",
		"cost_usd": "0.0000015", "provider_cost_usd": "0.000001", "latency_ms": "1234", "ttft_ms": "87",
	}
	for k, v := range nums {
		if num(m, k) != v {
			t.Errorf("GET log: %s = %v, want %s", k, m[k], v)
		}
	}
	if m["stream"] != true || m["error_code"] != nil || len(m) != 17 {
		t.Errorf("GET log = %s: want stream true, error_code null, 17 members", r.Body)
	}
	m = object(t, g.Do(t, "GET", a.path("/logs/"+rid(5)), a.key, nil).Body)
	if str(m, "tool") != "create_issue" || str(m, "app") != "github" || m["ttft_ms"] != nil || m["stream"] != false {
		t.Errorf("GET tool log = %v: want tool and app set, ttft_ms null", m)
	}
	m = object(t, g.Do(t, "GET", a.path("/logs/"+rid(3)), a.key, nil).Body)
	if str(m, "error_code") != "upstream_error" || num(m, "status_code") != "502" {
		t.Errorf("GET failed-call log = %v", m)
	}
	wantError(t, "GET unknown log", g.Do(t, "GET", a.path("/logs/"+fakeID(ids.RequestPrefix)), a.key, nil), 404, "not_found")

	for _, tc := range []struct {
		query string
		want  []int // newest first
	}{
		{"", []int{5, 4, 3, 2, 1, 0}},
		{"end_user_id=" + u1.id, []int{4, 1, 0}},
		{"model=gpt-4o", []int{4, 3, 2, 0}},
		{"kind=tool", []int{5}},
		{"status=200", []int{5, 1, 0}},
		{"status=2xx", []int{5, 4, 1, 0}},
		{"status=4xx", []int{2}},
		{"status=5xx", []int{3}},
		{"status=error", []int{3, 2}},
		{"end_user_id=" + u2.id + "&model=gpt-4o&status=error", []int{3, 2}},
		{"end_user_id=" + u1.id + "&status=2xx&model=gpt-4o", []int{4, 0}},
		{"start=2026-05-01T00:02:00Z", []int{5, 4, 3, 2}},
		{"since=2026-05-01T00:02:00Z", []int{5, 4, 3, 2}},
		{"end=2026-05-01T00:02:00Z", []int{1, 0}},
		{"start=2026-05-01T00:01:00Z&end=2026-05-01T00:04:00Z&end_user_id=" + u2.id, []int{3, 2}},
		{"start=2026-05-01T02:01:00%2B02:00", []int{5, 4, 3, 2, 1}}, // an offset is honoured
		{"end_user_id=" + fakeID(ids.EndUserPrefix), nil},
	} {
		for _, limit := range []int{1, 4, 50} {
			path := a.path(fmt.Sprintf("/logs?limit=%d&%s", limit, tc.query))
			got := logPages(t, g, a.key, path)
			var want []string
			for _, n := range tc.want {
				want = append(want, rid(n))
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("GET %s = %v, want %v", path, got, want)
			}
		}
	}
	// The default page is 50; limit is capped at 500.
	r = g.Do(t, "GET", a.path("/logs?limit=100000"), a.key, nil)
	if l := list(t, r); len(l) != 6 {
		t.Errorf("GET logs?limit=100000 returned %d entries", len(l))
	}
}

func TestLogsBadInputAnswers400(t *testing.T) {
	g := edgetest.Start(t, edgetest.Options{})
	a := newPlatform(t, g, "logs-bad")
	for _, tc := range []struct{ query, code string }{
		{"cursor=nope", "invalid_cursor"},
		{"cursor=", "invalid_cursor"},
		{"cursor=" + logs.EncodeCursor(9)[:11] + "A", "invalid_cursor"},
		{"cursor=AAAAAAAAAAAAAAAAAAAAAAAA", "invalid_cursor"},
		{"status=teapot", "invalid_parameter"},
		{"status=6xx", "invalid_parameter"},
		{"start=yesterday", "invalid_parameter"},
		{"end=2026-05-01", "invalid_parameter"},
		{"start=2026-05-02T00:00:00Z&end=2026-05-01T00:00:00Z", "invalid_parameter"},
		{"start=2026-05-02T00:00:00Z&since=2026-05-01T00:00:00Z", "invalid_parameter"},
		{"end_user_id=someone", "invalid_parameter"},
		{"kind=embeddings", "invalid_parameter"},
		{"limit=0", "invalid_limit"},
		{"limit=ten", "invalid_limit"},
	} {
		wantError(t, "GET logs?"+tc.query, g.Do(t, "GET", a.path("/logs?"+tc.query), a.key, nil), 400, tc.code)
	}
}

func TestLogsAreInvisibleAcrossTenants(t *testing.T) {
	g := edgetest.Start(t, edgetest.Options{})
	a, b := newPlatform(t, g, "logs-a"), newPlatform(t, g, "logs-b")
	ua := a.endUser(t, g, "ua")
	ridA := fakeID(ids.RequestPrefix)
	writeLogs(t, g, logs.Entry{RequestID: ridA, PlatformID: ids.PlatformID(a.id), EndUserID: ids.EndUserID(ua.id),
		Kind: logs.KindChatCompletions, Model: "gpt-4o", StatusCode: 200})

	wantError(t, "B on A's logs", g.Do(t, "GET", a.path("/logs"), b.key, nil), 404, "not_found")
	wantError(t, "B on A's log", g.Do(t, "GET", a.path("/logs/"+ridA), b.key, nil), 404, "not_found")
	wantError(t, "B on its own path with A's request id", g.Do(t, "GET", b.path("/logs/"+ridA), b.key, nil), 404, "not_found")
	if got := logPages(t, g, b.key, b.path("/logs?end_user_id="+ua.id)); len(got) != 0 {
		t.Errorf("B lists A's entries: %v", got)
	}
	if got := logPages(t, g, b.key, b.path("/logs?x=1")); len(got) != 0 {
		t.Errorf("B lists A's entries: %v", got)
	}
	if got := logPages(t, g, a.key, a.path("/logs?x=1")); !reflect.DeepEqual(got, []string{ridA}) {
		t.Errorf("A lists %v, want its one entry", got)
	}
	// End-user keys cannot read logs, not even their own.
	r := g.Do(t, "GET", a.path("/logs"), ua.key, nil)
	wantError(t, "end-user key on logs", r, 403, "wrong_key_type")
}

// Cursor paging under concurrent writes: writers keep writing while a
// reader pages with limit=7; the union of the pages is exactly the entries
// that existed when the first page was read, with no duplicates or gaps.
func TestLogsCursorPagingUnderConcurrentWrites(t *testing.T) {
	g := edgetest.Start(t, edgetest.Options{})
	a := newPlatform(t, g, "logs-paging")
	pid := ids.PlatformID(a.id)
	var n atomic.Int64
	write := func() {
		i := n.Add(1)
		g.Logs.Writer().Write(logs.Entry{RequestID: fmt.Sprintf("req_%026d", i), PlatformID: pid,
			Kind: logs.KindChatCompletions, Model: "gpt-4o", StatusCode: 200, Cost: money.Nanos(i)})
	}
	for i := 0; i < 150; i++ {
		write()
	}
	writeLogs(t, g)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
					write()
					time.Sleep(100 * time.Microsecond)
				}
			}
		}()
	}
	var got []string
	path := a.path("/logs?limit=7")
	first := g.Do(t, "GET", path, a.key, nil)
	m := wantStatus(t, "GET first page", first, 200)
	for _, d := range list(t, first) {
		got = append(got, str(d, "request_id"))
	}
	for m["has_more"] == true {
		for i := 0; i < 3; i++ { // entries certainly land between pages
			write()
		}
		writeLogs(t, g)
		r := g.Do(t, "GET", path+"&cursor="+url.QueryEscape(str(m, "next_cursor")), a.key, nil)
		m = wantStatus(t, "GET next page", r, 200)
		for _, d := range list(t, r) {
			got = append(got, str(d, "request_id"))
		}
	}
	close(stop)
	wg.Wait()
	writeLogs(t, g)

	// What existed at the first read: every entry at or below the first
	// page's newest sequence.
	top, err := g.Logs.Get(pid, got[0])
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	all := 0
	for q := (logs.Query{Limit: logs.MaxLimit}); ; {
		p, err := g.Logs.List(pid, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Entries {
			all++
			if e.Seq <= top.Seq {
				want = append(want, e.RequestID)
			}
		}
		if !p.HasMore {
			break
		}
		q.Cursor = p.NextCursor
	}
	dup := map[string]bool{}
	for _, id := range got {
		if dup[id] {
			t.Errorf("%s returned twice", id)
		}
		dup[id] = true
	}
	if !reflect.DeepEqual(got, want) {
		sort.Strings(got)
		sort.Strings(want)
		t.Errorf("pages returned %d entries, want the %d that existed at the first page", len(got), len(want))
	}
	if all <= len(want) {
		t.Errorf("no entry arrived while paging (%d in all)", all)
	}
}

func TestLogsSurviveGatewayRestart(t *testing.T) {
	dir := t.TempDir()
	g := edgetest.Start(t, edgetest.Options{Dir: dir})
	a := newPlatform(t, g, "logs-restart")
	rid := fakeID(ids.RequestPrefix)
	g.Logs.Writer().Write(logs.Entry{RequestID: rid, PlatformID: ids.PlatformID(a.id), Kind: logs.KindResponses, StatusCode: 200})
	g.Close() // drains the queue; no Flush
	g = edgetest.Start(t, edgetest.Options{Dir: dir})
	r := g.Do(t, "GET", a.path("/logs/"+rid), a.key, nil)
	if m := wantStatus(t, "GET log after restart", r, 200); str(m, "kind") != "responses" {
		t.Errorf("GET log after restart = %s", r.Body)
	}
}
