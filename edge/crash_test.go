package edge_test

// F-1 (reliability.md §4.2): kill -9 in the middle of a money load, again
// and again, and check that nothing acknowledged is lost and nothing is
// applied twice.

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/assistiv/gateway/edge/edgetest"
	"github.com/assistiv/gateway/internal/money"
)

// crashOp is one idempotent money operation of the load, with what the
// client knows about its outcome.
type crashOp struct {
	account string // end-user id, or "wallet"
	path    string // POST path
	key     string // Idempotency-Key, unique per op
	amount  money.Nanos
	signed  money.Nanos // its effect on the balance
	acked   bool        // answered 200 before the kill
	txID    string      // the acknowledged transaction id
	retried bool
}

// crashPost sends one request; err means the outcome is unknown (the
// connection died).
func crashPost(c *http.Client, url, key, idem string, body []byte) (int, http.Header, []byte, error) {
	req, err := http.NewRequest("POST", url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Idempotency-Key", idem)
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, nil, err
	}
	return resp.StatusCode, resp.Header, b, nil
}

// processLedger pages an account's transactions on a child process.
func processLedger(t *testing.T, p *edgetest.Process, path, key string) []map[string]any {
	t.Helper()
	var all []map[string]any
	cursor := ""
	for {
		q := path + "?limit=1000"
		if cursor != "" {
			q += "&cursor=" + cursor
		}
		r := p.Do(t, "GET", q, key, nil)
		m := wantStatus(t, "GET "+path, r, 200)
		all = append(all, list(t, r)...)
		if m["has_more"] != true {
			break
		}
		cursor = str(m, "next_cursor")
	}
	// Newest first across pages: reverse into sequence order.
	for i, j := 0, len(all)-1; i < j; i, j = i+1, j-1 {
		all[i], all[j] = all[j], all[i]
	}
	return all
}

// TestKill9MidLoadLosesNothingAcknowledged drives concurrent idempotent
// top-ups, debits and wallet top-ups from 16 goroutines against the
// gateway binary, SIGKILLs it at a random moment, restarts it on the same
// data dir, retries every operation whose answer was lost with its
// original key, and checks after every restart:
//
//  1. every acknowledged operation is in the ledger exactly once, as the
//     transaction it was acknowledged with;
//  2. an unacknowledged one is there at most once, and its retry did not
//     duplicate it;
//  3. per account the ledger sums to the balance, balances never go
//     negative, and balance = start + Σ applied;
//  5. no idempotency key appears twice.
//
// Six kills per run. Then (check 7) a graceful restart and a kill without
// load leave an identical state. GATEWAY_CRASH_SEED replays a run.
func TestKill9MidLoadLosesNothingAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gateway binary")
	}
	seed := time.Now().UnixNano()
	if v, err := strconv.ParseInt(os.Getenv("GATEWAY_CRASH_SEED"), 10, 64); err == nil {
		seed = v
	}
	t.Logf("GATEWAY_CRASH_SEED=%d", seed)
	rng := rand.New(rand.NewSource(seed))
	dir := t.TempDir()
	p := edgetest.StartProcess(t, dir)
	pid, pkey := edgetest.CreatePlatform(t, p.Client(), p.URL, "crash")
	plat := "/v1/platforms/" + pid
	start := map[string]money.Nanos{"wallet": 0}
	var users []string
	for i := 0; i < 4; i++ {
		id, _ := edgetest.CreateEndUser(t, p.Client(), p.URL, pid, pkey, fmt.Sprint("crash-", i))
		wantStatus(t, "POST budget", p.Do(t, "POST", plat+"/end-users/"+id+"/budget", pkey, map[string]any{"amount_usd": 1000}), 201)
		users = append(users, id)
		start[id] = 1000 * money.PerUSD
	}
	keyFor := func(account string) string {
		if account == "wallet" {
			return edgetest.AdminKey
		}
		return pkey
	}
	ledgerPath := func(account string) string {
		if account == "wallet" {
			return "/admin/v1/platforms/" + pid + "/wallet/transactions"
		}
		return plat + "/end-users/" + account + "/budget/transactions"
	}
	balanceOfAccount := func(p *edgetest.Process, account string) money.Nanos {
		if account == "wallet" {
			return usd(t, num(wantStatus(t, "GET wallet", p.Do(t, "GET", "/admin/v1/platforms/"+pid+"/wallet", edgetest.AdminKey, nil), 200), "balance_usd"))
		}
		b := wantStatus(t, "GET budget", p.Do(t, "GET", plat+"/end-users/"+account+"/budget", pkey, nil), 200)
		return usd(t, num(b, "balance_usd"))
	}

	var ops []*crashOp
	var opsMu sync.Mutex
	nextOp := 0
	newOp := func(r *rand.Rand) *crashOp {
		opsMu.Lock()
		defer opsMu.Unlock()
		nextOp++
		op := &crashOp{key: fmt.Sprintf("op-%d-%d", seed, nextOp)}
		switch k := r.Intn(10); {
		case k < 2:
			op.account = "wallet"
			op.path = "/admin/v1/platforms/" + pid + "/wallet/topup"
			op.amount = money.Nanos(1 + r.Int63n(int64(money.PerUSD)))
			op.signed = op.amount
		case k < 6:
			op.account = users[r.Intn(len(users))]
			op.path = plat + "/end-users/" + op.account + "/budget/topup"
			op.amount = money.Nanos(1 + r.Int63n(int64(money.PerUSD)))
			op.signed = op.amount
		default:
			op.account = users[r.Intn(len(users))]
			op.path = plat + "/end-users/" + op.account + "/budget/debit"
			op.amount = money.Nanos(1 + r.Int63n(int64(money.PerUSD)/100))
			op.signed = -op.amount
		}
		ops = append(ops, op)
		return op
	}
	body := func(op *crashOp) []byte {
		b, _ := json.Marshal(map[string]any{"amount_usd": op.amount, "reason": "crash-test"})
		return b
	}

	// verify runs checks 1, 2, 3 and 5 against p and returns a digest of
	// the state it read.
	verify := func(p *edgetest.Process, when string) [32]byte {
		t.Helper()
		h := sha256.New()
		byKey := map[string]*crashOp{}
		for _, op := range ops {
			byKey[op.key] = op
		}
		for _, account := range append([]string{"wallet"}, users...) {
			entries := processLedger(t, p, ledgerPath(account), keyFor(account))
			balance := balanceOfAccount(p, account)
			checkLedger(t, entries, balance)
			seen := map[string]int{}
			want := start[account]
			for _, e := range entries {
				raw, _ := json.Marshal(e)
				h.Write(raw)
				k := str(e, "idempotency_key")
				if k == "" {
					continue
				}
				seen[k]++
				op := byKey[k]
				if op == nil {
					t.Fatalf("%s: %s ledger has an entry with key %q that no operation sent", when, account, k)
				}
				if op.account != account || usd(t, num(e, "amount_usd")) != op.signed {
					t.Fatalf("%s: entry %v does not match operation %+v", when, e, op)
				}
				if op.acked && str(e, "id") != op.txID {
					t.Fatalf("%s: acknowledged %s as %s, the ledger has %s", when, k, op.txID, str(e, "id"))
				}
				want += op.signed
			}
			for k, n := range seen {
				if n != 1 {
					t.Fatalf("%s: key %s applied %d times", when, k, n)
				}
			}
			for _, op := range ops {
				if op.account == account && (op.acked || op.retried) && seen[op.key] != 1 {
					t.Fatalf("%s: %s operation %s (acked %v, retried %v) is in the ledger %d times, want once",
						when, account, op.key, op.acked, op.retried, seen[op.key])
				}
			}
			if balance != want {
				t.Fatalf("%s: %s balance %s, want start %s + applied = %s", when, account, balance, start[account], want)
			}
			fmt.Fprintf(h, "%s=%s\n", account, balance)
		}
		var sum [32]byte
		copy(sum[:], h.Sum(nil))
		return sum
	}

	const kills = 6
	var totalAcked, totalUnknown, replayedAfterCrash int
	for round := 1; round <= kills; round++ {
		stop := make(chan struct{})
		var acked, unknown atomic.Int64
		var wg sync.WaitGroup
		client := p.Client()
		url := p.URL
		for w := 0; w < 16; w++ {
			r := rand.New(rand.NewSource(seed + int64(round*100+w)))
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					op := newOp(r)
					status, _, b, err := crashPost(client, url+op.path, keyFor(op.account), op.key, body(op))
					if err != nil {
						unknown.Add(1)
						return // the node is gone; stop this worker
					}
					if status != 200 {
						t.Errorf("round %d: %s %s = %d %s", round, op.path, op.key, status, b)
						return
					}
					var out struct {
						Transaction struct {
							ID string `json:"id"`
						} `json:"transaction"`
					}
					if json.Unmarshal(b, &out) != nil || out.Transaction.ID == "" {
						t.Errorf("round %d: answer %s", round, b)
						return
					}
					opsMu.Lock()
					op.acked, op.txID = true, out.Transaction.ID
					opsMu.Unlock()
					acked.Add(1)
				}
			}()
		}
		// Kill at a random instant 0.2–1.2 s into the load.
		time.Sleep(time.Duration(200+rng.Intn(1000)) * time.Millisecond)
		p.Kill()
		close(stop)
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		totalAcked += int(acked.Load())
		p = edgetest.StartProcess(t, dir)
		// Retry every operation without an answer, with its original key.
		for _, op := range ops {
			if op.acked || op.retried {
				continue
			}
			status, hdr, b, err := crashPost(p.Client(), p.URL+op.path, keyFor(op.account), op.key, body(op))
			if err != nil || status != 200 {
				t.Fatalf("round %d: retry of %s = %d %s %v", round, op.key, status, b, err)
			}
			op.retried = true
			totalUnknown++
			if hdr.Get("Idempotent-Replayed") == "true" {
				replayedAfterCrash++ // it had been applied (and synced) before the kill
			}
		}
		verify(p, fmt.Sprintf("after kill %d", round))
		t.Logf("kill %d: %d acknowledged, %d cut off", round, acked.Load(), unknown.Load())
	}
	if totalAcked < kills*10 {
		t.Fatalf("only %d operations acknowledged over %d kills: the load never ran", totalAcked, kills)
	}
	t.Logf("%d operations acknowledged, %d unanswered and retried (%d of them had been applied before the kill)",
		totalAcked, totalUnknown, replayedAfterCrash)

	// Check 7: restarting without load, gracefully or not, changes nothing.
	before := verify(p, "before the idle restarts")
	p.Stop(t)
	p = edgetest.StartProcess(t, dir)
	if after := verify(p, "after a graceful restart"); after != before {
		t.Fatalf("state changed across an idle graceful restart")
	}
	p.Kill()
	p = edgetest.StartProcess(t, dir)
	if after := verify(p, "after an idle kill -9"); after != before {
		t.Fatalf("state changed across an idle kill -9")
	}
	p.Stop(t)
}
