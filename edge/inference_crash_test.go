package edge_test

// Money under faults (issue 11): kill -9 the gateway binary in the middle
// of an inference load, again and again, and check that every paid call is
// billed exactly once and every admitted call leaves exactly one trace.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assistiv/gateway/edge/edgetest"
	"github.com/assistiv/gateway/internal/money"
	"github.com/assistiv/gateway/mockllm"
	"github.com/assistiv/gateway/mockllm/mocktest"
)

// infCall is one inference call of the load and what its client saw.
type infCall struct {
	user     string
	rid      string // X-Request-Id; "" when the connection died first
	complete bool   // a 200 body, or a stream that ended with [DONE]
	doneAt   time.Time
}

func TestInferenceKill9BillsEveryCallOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the gateway binary through six kill -9s under inference load")
	}
	for _, mode := range []string{"sync", "batch"} {
		t.Run(mode, func(t *testing.T) { inferenceCrashRun(t, mode) })
	}
}

func inferenceCrashRun(t *testing.T, mode string) {
	seed := time.Now().UnixNano()
	if v, err := strconv.ParseInt(os.Getenv("GATEWAY_CRASH_SEED"), 10, 64); err == nil {
		seed = v
	}
	t.Logf("GATEWAY_CRASH_SEED=%d", seed)
	rng := rand.New(rand.NewSource(seed))

	// One upstream per provider, each with its own faults: 5xx on a fifth
	// of OpenAI's answers (retried by the gateway, sometimes given up);
	// slow Anthropic streams (kills and cancellations cut them) of which a
	// tenth stall mid-way; a tenth of Gemini's answers malformed (broken
	// JSON mid-stream or a truncated body); xAI hanging on one call in
	// twenty until the mock gives up (1 s).
	mock := func(edit func(*mockllm.Config)) string {
		cfg := mockllm.DefaultConfig()
		cfg.Tokens = 30
		cfg.HangMax = time.Second
		edit(&cfg)
		url, _ := mocktest.Start(t, cfg)
		return url
	}
	upstreams := map[string]string{
		"openai":    mock(func(c *mockllm.Config) { c.ErrorRate, c.ErrorStatus = 0.2, 500 }),
		"anthropic": mock(func(c *mockllm.Config) { c.TokensPerSecond, c.ErrorRate, c.ErrorFault = 150, 0.1, "stall" }),
		"google":    mock(func(c *mockllm.Config) { c.ErrorRate, c.ErrorFault = 0.1, "malformed_stream" }),
		"xai":       mock(func(c *mockllm.Config) { c.ErrorRate, c.ErrorFault = 0.05, "hang" }),
	}
	models := []string{"gpt-4o-mini", "claude-haiku-4-5", "grok-3-mini", "gemini-2.5-flash"}

	dir := t.TempDir()
	env := []string{"ASSISTIV_ALLOW_PRIVATE_EGRESS=true", "ASSISTIV_BILLING_DURABILITY=" + mode}
	p := edgetest.StartProcess(t, dir, env...)
	procs := []*edgetest.Process{p}
	pid, pkey := edgetest.CreatePlatform(t, p.Client(), p.URL, "infcrash")
	for prov, url := range upstreams {
		wantStatus(t, "provider", p.Do(t, "PUT", "/admin/v1/platforms/"+pid+"/llm-providers/"+prov, edgetest.AdminKey,
			map[string]any{"api_key": "sk-crash-0123456789", "base_url": url, "enabled": true}), 200)
	}
	wantStatus(t, "wallet", p.Do(t, "POST", "/admin/v1/platforms/"+pid+"/wallet/topup", edgetest.AdminKey, map[string]any{"amount_usd": 1000}), 200)
	type user struct{ id, key string }
	var users []user
	for i := 0; i < 8; i++ {
		id, key := edgetest.CreateEndUser(t, p.Client(), p.URL, pid, pkey, fmt.Sprint("inf-", i))
		amount := any(50)
		if i >= 6 {
			amount = jsonRaw("0.0002") // refused for budget after a call or two
		}
		wantStatus(t, "budget", p.Do(t, "POST", "/v1/platforms/"+pid+"/end-users/"+id+"/budget", pkey, map[string]any{"amount_usd": amount}), 201)
		users = append(users, user{id, key})
	}

	var mu sync.Mutex
	var calls []*infCall
	var kills []time.Time
	run := func(c *http.Client, base string, r *rand.Rand, stop <-chan struct{}) {
		for {
			select {
			case <-stop:
				return
			default:
			}
			u := users[r.Intn(len(users))]
			model := models[r.Intn(len(models))]
			stream := r.Intn(2) == 0
			cancelAfter := -1
			if stream && r.Intn(4) == 0 {
				cancelAfter = r.Intn(6) // leave after that many events
			}
			call := &infCall{user: u.id}
			mu.Lock()
			calls = append(calls, call)
			mu.Unlock()
			body := fmt.Sprintf(`{"model":%q,"stream":%v,"max_tokens":60,"messages":[{"role":"user","content":"crash test %d"}]}`, model, stream, r.Int())
			ctx, cancel := context.WithCancel(context.Background())
			req, _ := http.NewRequestWithContext(ctx, "POST", base+"/v1/chat/completions", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+u.key)
			req.Header.Set("Content-Type", "application/json")
			resp, err := c.Do(req)
			if err != nil {
				cancel()
				select {
				case <-stop:
					return
				default:
				}
				continue
			}
			call.rid = resp.Header.Get("X-Request-Id")
			complete := false
			if resp.StatusCode == 200 && stream {
				rd := bufio.NewReader(resp.Body)
				events := 0
				for {
					line, err := rd.ReadString('\n')
					if err != nil {
						break
					}
					if strings.HasPrefix(line, "data: [DONE]") {
						complete = true
						break
					}
					if strings.HasPrefix(line, "data: ") {
						events++
						if events == cancelAfter {
							cancel() // the client leaves mid-stream
							break
						}
					}
				}
			} else if resp.StatusCode == 200 {
				_, err := io.ReadAll(resp.Body)
				complete = err == nil
			} else {
				_, _ = io.Copy(io.Discard, resp.Body)
			}
			resp.Body.Close()
			cancel()
			if complete {
				mu.Lock()
				call.complete, call.doneAt = true, time.Now()
				mu.Unlock()
			}
		}
	}

	for round := 1; round <= 6; round++ {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		c := p.Client()
		for w := 0; w < 32; w++ {
			r := rand.New(rand.NewSource(seed + int64(round*100+w)))
			wg.Add(1)
			go func() { defer wg.Done(); run(c, p.URL, r, stop) }()
		}
		time.Sleep(time.Duration(300+rng.Intn(900)) * time.Millisecond)
		mu.Lock()
		kills = append(kills, time.Now())
		mu.Unlock()
		p.Kill()
		close(stop)
		wg.Wait()
		p = edgetest.StartProcess(t, dir, env...)
		procs = append(procs, p)
	}

	// The audit, on the last restart: every account's ledger, by request.
	type trace struct{ usage, unsettled, expired int }
	traces := map[string]*trace{}
	userUsage := map[string]money.Nanos{} // request id → budget charge
	at := func(rid string) *trace {
		if traces[rid] == nil {
			traces[rid] = &trace{}
		}
		return traces[rid]
	}
	for _, u := range users {
		path := "/v1/platforms/" + pid + "/end-users/" + u.id + "/budget"
		entries := processLedger(t, p, path+"/transactions", pkey)
		balance := usd(t, num(wantStatus(t, "budget", p.Do(t, "GET", path, pkey, nil), 200), "balance_usd"))
		checkLedger(t, entries, balance) // sums to the balance, never below zero
		for _, e := range entries {
			rid := str(e, "request_id")
			switch str(e, "type") {
			case "usage":
				at(rid).usage++
				userUsage[rid] = -usd(t, num(e, "amount_usd"))
			case "unsettled_on_crash":
				at(rid).unsettled++
			case "reservation_expired":
				at(rid).expired++
			}
		}
	}
	walletPath := "/admin/v1/platforms/" + pid + "/wallet"
	wentries := processLedger(t, p, walletPath+"/transactions", edgetest.AdminKey)
	wbalance := usd(t, num(wantStatus(t, "wallet", p.Do(t, "GET", walletPath, edgetest.AdminKey, nil), 200), "balance_usd"))
	checkLedger(t, wentries, wbalance)
	walletUsage := map[string]money.Nanos{}
	for _, e := range wentries {
		if str(e, "type") == "usage" {
			rid := str(e, "request_id")
			if _, dup := walletUsage[rid]; dup {
				t.Fatalf("request %s debited the wallet twice", rid)
			}
			walletUsage[rid] = -usd(t, num(e, "amount_usd"))
		}
	}
	// The markup is 0: each call's budget charge is its provider cost, and
	// the wallet's debit for it is the same amount, one for one.
	for rid, charge := range userUsage {
		if w, ok := walletUsage[rid]; !ok || w != charge {
			t.Fatalf("request %s: budget charged %s, wallet debited %s (present %v)", rid, charge, w, ok)
		}
	}
	if len(walletUsage) != len(userUsage) {
		t.Fatalf("%d wallet usage entries for %d budget usage entries", len(walletUsage), len(userUsage))
	}
	for rid, tr := range traces {
		if tr.usage+tr.unsettled+tr.expired != 1 {
			t.Fatalf("request %s left %d usage, %d unsettled_on_crash, %d reservation_expired entries; want exactly one", rid, tr.usage, tr.unsettled, tr.expired)
		}
	}
	// Every call the client saw complete is billed; in batch mode one that
	// completed just before a kill may instead be voided with its trace.
	// The window is the 5 ms timer plus the fsync it starts, and an fsync
	// on a shared CI disk can take hundreds of milliseconds: allow 1 s.
	var complete, voided int
	for _, c := range calls {
		if !c.complete {
			continue
		}
		complete++
		tr := traces[c.rid]
		if tr != nil && tr.usage == 1 {
			continue
		}
		// (A call shorter than the interval can lose its reservation
		// record with its settlement: no trace; README says so.)
		if mode == "batch" && nearKill(c.doneAt, kills, time.Second) && (tr == nil || tr.unsettled == 1) {
			voided++
			continue
		}
		var ks []string
		for _, k := range kills {
			ks = append(ks, k.Format(time.StampMicro))
		}
		_, inWallet := walletUsage[c.rid]
		for _, pr := range procs {
			for _, line := range strings.Split(pr.Logs(), "\n") {
				if strings.Contains(line, c.rid) {
					t.Log(line)
				}
			}
		}
		t.Fatalf("%s: request %s of %s completed for the client at %s but is not billed (trace %+v, in wallet %v); kills at %v", mode, c.rid, c.user, c.doneAt.Format(time.StampMicro), tr, inWallet, ks)
	}
	if complete < 100 {
		t.Fatalf("only %d calls completed over six rounds: the load never ran", complete)
	}
	t.Logf("%s: %d calls, %d completed, %d billed, %d completed in the last window before a kill and voided, %d traces",
		mode, len(calls), complete, len(userUsage), voided, len(traces))
}

// nearKill reports whether t is within d before a kill, or after the
// instant the test noted it and before the SIGKILL took effect (an answer
// already on the wire still reaches the client).
func nearKill(t time.Time, kills []time.Time, d time.Duration) bool {
	for _, k := range kills {
		if t.After(k.Add(-d)) && t.Before(k.Add(50*time.Millisecond)) {
			return true
		}
	}
	return false
}
