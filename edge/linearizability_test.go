package edge_test

// L-12 (reliability.md §8): the concurrent HTTP history of one end-user's
// budget is linearizable with respect to a sequential budget model,
// checked with porcupine.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/assistiv/gateway/edge/edgetest"
	"github.com/assistiv/gateway/internal/money"
)

type budgetOpKind int

const (
	opGet budgetOpKind = iota
	opTopup
	opDebit
)

func (k budgetOpKind) String() string {
	return [...]string{"get", "topup", "debit"}[k]
}

// budgetInput is one operation on the budget; Amount is in nano-USD.
type budgetInput struct {
	Kind   budgetOpKind
	Amount int64
}

// budgetOutput is what the gateway answered: the HTTP status and, on 200,
// the balance_usd it reported (after the operation, for writes).
type budgetOutput struct {
	Status  int
	Balance int64
}

// budgetModel is the sequential specification: the state is the balance
// in nano-USD; a top-up adds; a debit subtracts when it fits and
// otherwise answers 402 leaving the balance; a read returns the balance.
// Every successful answer reports the balance after the operation.
func budgetModel() porcupine.Model {
	return budgetModelWith(func(balance, amount int64) int64 { return balance + amount })
}

// budgetModelWith builds the model with a pluggable top-up rule, so a test
// can check that a wrong model is rejected.
func budgetModelWith(topup func(balance, amount int64) int64) porcupine.Model {
	return porcupine.Model{
		Init: func() any { return int64(initialBalance) },
		Step: func(state, input, output any) (bool, any) {
			bal := state.(int64)
			in, out := input.(budgetInput), output.(budgetOutput)
			switch in.Kind {
			case opGet:
				return out.Status == 200 && out.Balance == bal, bal
			case opTopup:
				next := topup(bal, in.Amount)
				return out.Status == 200 && out.Balance == next, next
			case opDebit:
				if in.Amount <= bal {
					next := bal - in.Amount
					return out.Status == 200 && out.Balance == next, next
				}
				return out.Status == 402, bal
			}
			return false, bal
		},
		Hash: func(state any) uint64 { return uint64(state.(int64)) },
		DescribeOperation: func(input, output any) string {
			in, out := input.(budgetInput), output.(budgetOutput)
			if in.Kind == opGet {
				return fmt.Sprintf("get() -> %d %s", out.Status, money.Nanos(out.Balance))
			}
			if out.Status != 200 {
				return fmt.Sprintf("%s(%s) -> %d", in.Kind, money.Nanos(in.Amount), out.Status)
			}
			return fmt.Sprintf("%s(%s) -> %s", in.Kind, money.Nanos(in.Amount), money.Nanos(out.Balance))
		},
		DescribeState: func(state any) string { return money.Nanos(state.(int64)).String() },
	}
}

// initialBalance is the budget the end-user starts with (100 µUSD).
const initialBalance = 100_000

// checkLinearizable runs porcupine and, when the history is not
// linearizable, writes the visualization and fails with its path.
// GATEWAY_PORCUPINE_DIR keeps it beyond the test's temporary directory.
func checkLinearizable(t *testing.T, model porcupine.Model, history []porcupine.Operation) porcupine.CheckResult {
	t.Helper()
	res, info := porcupine.CheckOperationsVerbose(model, history, 2*time.Minute)
	if res == porcupine.Illegal {
		dir := os.Getenv("GATEWAY_PORCUPINE_DIR")
		if dir == "" {
			dir = t.TempDir()
		}
		path := filepath.Join(dir, "l12-budget-"+fmt.Sprint(time.Now().UnixNano())+".html")
		if err := porcupine.VisualizePath(model, info, path); err != nil {
			t.Logf("visualize: %v", err)
		}
		t.Logf("porcupine visualization: %s", path)
	}
	return res
}

func TestBudgetHistoryIsLinearizable(t *testing.T) {
	g := edgetest.Start(t, edgetest.Options{})
	p, _, up := budgetUser(t, g, money.Nanos(initialBalance).String())
	client := g.Client()

	const workers = 16
	run := 2 * time.Second
	if testing.Short() {
		run = 500 * time.Millisecond
	}
	base := time.Now() // monotonic; every timestamp below is time.Since(base)
	deadline := base.Add(run)

	// send issues one request and reports status and balance_usd (0 when
	// absent); a transport error is returned so the caller can stop
	// without calling t.Fatal off the test goroutine.
	send := func(method, path string, body []byte, idem string) (budgetOutput, error) {
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequest(method, g.URL+path, rd)
		if err != nil {
			return budgetOutput{}, err
		}
		req.Header.Set("Authorization", "Bearer "+p.key)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if idem != "" {
			req.Header.Set("Idempotency-Key", idem)
		}
		resp, err := client.Do(req)
		if err != nil {
			return budgetOutput{}, err
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		if err != nil {
			return budgetOutput{}, err
		}
		out := budgetOutput{Status: resp.StatusCode}
		if resp.StatusCode != 200 {
			if resp.StatusCode == 402 && !bytes.Contains(raw, []byte(`"budget_exhausted"`)) {
				return out, fmt.Errorf("402 without budget_exhausted: %s", raw)
			}
			return out, nil
		}
		var v struct {
			BalanceUSD  *money.Nanos `json:"balance_usd"`
			ReservedUSD money.Nanos  `json:"reserved_usd"`
			Budget      *struct {
				BalanceUSD *money.Nanos `json:"balance_usd"`
			} `json:"budget"`
		}
		if err := json.Unmarshal(raw, &v); err != nil {
			return out, fmt.Errorf("decode %s: %v", raw, err)
		}
		switch {
		case v.Budget != nil && v.Budget.BalanceUSD != nil:
			out.Balance = int64(*v.Budget.BalanceUSD)
		case v.BalanceUSD != nil:
			out.Balance = int64(*v.BalanceUSD)
		default:
			return out, fmt.Errorf("no balance_usd in %s", raw)
		}
		return out, nil
	}

	var (
		mu      sync.Mutex
		history []porcupine.Operation
		wg      sync.WaitGroup
	)
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(w) + time.Now().UnixNano()))
			var local []porcupine.Operation
			defer func() {
				mu.Lock()
				history = append(history, local...)
				mu.Unlock()
			}()
			for i := 0; time.Now().Before(deadline); i++ {
				var in budgetInput
				var method, path, idem string
				var body []byte
				switch k := rng.Intn(10); {
				case k < 3:
					in = budgetInput{Kind: opGet}
					method, path = "GET", up
				case k < 6:
					in = budgetInput{Kind: opTopup, Amount: 1_000 * (1 + rng.Int63n(40))}
					method, path = "POST", up+"/topup"
				default:
					in = budgetInput{Kind: opDebit, Amount: 1_000 * (1 + rng.Int63n(60))}
					method, path = "POST", up+"/debit"
				}
				if in.Kind != opGet {
					body, _ = json.Marshal(map[string]any{"amount_usd": money.Nanos(in.Amount), "reason": "l12"})
					idem = fmt.Sprintf("l12-%d-%d", w, i)
				}
				call := time.Since(base)
				out, err := send(method, path, body, idem)
				ret := time.Since(base)
				if err != nil {
					errs <- fmt.Errorf("worker %d: %s %s: %w", w, method, path, err)
					return
				}
				if out.Status != 200 && !(in.Kind == opDebit && out.Status == 402) {
					errs <- fmt.Errorf("worker %d: %s %s = %d", w, method, path, out.Status)
					return
				}
				local = append(local, porcupine.Operation{
					ClientId: w, Input: in, Output: out, Call: int64(call), Return: int64(ret),
				})
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}

	counts := map[string]int{}
	for _, op := range history {
		in, out := op.Input.(budgetInput), op.Output.(budgetOutput)
		counts[fmt.Sprintf("%s/%d", in.Kind, out.Status)]++
	}
	t.Logf("%d operations from %d clients in %v: %v", len(history), workers, run, counts)
	if counts["debit/402"] == 0 || counts["debit/200"] == 0 || counts["topup/200"] == 0 || counts["get/200"] == 0 {
		t.Fatalf("the history does not exercise every outcome: %v", counts)
	}

	start := time.Now()
	res := checkLinearizable(t, budgetModel(), history)
	t.Logf("porcupine: %s in %v", res, time.Since(start).Round(time.Millisecond))
	switch res {
	case porcupine.Ok:
	case porcupine.Unknown:
		t.Fatalf("porcupine timed out on %d operations", len(history))
	default:
		t.Fatalf("the budget history is not linearizable")
	}

	// The checker must be able to say no. A model whose top-up is off by
	// one nano-USD, and the right model on the history with one read's
	// answer altered, must both be rejected.
	t.Run("WrongModelIsRejected", func(t *testing.T) {
		wrong := budgetModelWith(func(balance, amount int64) int64 { return balance + amount + 1 })
		res, info := porcupine.CheckOperationsVerbose(wrong, history, time.Minute)
		if res != porcupine.Illegal {
			t.Fatalf("off-by-one model: porcupine says %s, want Illegal", res)
		}
		// The failure path's visualization can be written.
		path := filepath.Join(t.TempDir(), "wrong-model.html")
		if err := porcupine.VisualizePath(wrong, info, path); err != nil {
			t.Fatalf("visualize: %v", err)
		}
		if st, err := os.Stat(path); err != nil || st.Size() == 0 {
			t.Fatalf("visualization %s: %v", path, err)
		}
	})
	t.Run("TamperedHistoryIsRejected", func(t *testing.T) {
		tampered := append([]porcupine.Operation(nil), history...)
		for i, op := range tampered {
			if op.Input.(budgetInput).Kind == opGet {
				out := op.Output.(budgetOutput)
				out.Balance += 7 // no operation amount is 7 nano-USD
				tampered[i].Output = out
				break
			}
		}
		if res, _ := porcupine.CheckOperationsVerbose(budgetModel(), tampered, time.Minute); res != porcupine.Illegal {
			t.Fatalf("tampered history: porcupine says %s, want Illegal", res)
		}
	})
	t.Run("StaleReadIsRejected", func(t *testing.T) {
		// A top-up completes, then a later read still sees the old balance.
		stale := []porcupine.Operation{
			{ClientId: 0, Input: budgetInput{Kind: opTopup, Amount: 5_000}, Output: budgetOutput{200, initialBalance + 5_000}, Call: 0, Return: 10},
			{ClientId: 1, Input: budgetInput{Kind: opGet}, Output: budgetOutput{200, initialBalance}, Call: 20, Return: 30},
		}
		if res := checkLinearizableQuiet(budgetModel(), stale); res != porcupine.Illegal {
			t.Fatalf("stale read: porcupine says %s, want Illegal", res)
		}
		// The same read overlapping the top-up is fine.
		stale[1].Call = 5
		if res := checkLinearizableQuiet(budgetModel(), stale); res != porcupine.Ok {
			t.Fatalf("concurrent read: porcupine says %s, want Ok", res)
		}
		// A debit refused while the balance covered it is not.
		refused := []porcupine.Operation{
			{ClientId: 0, Input: budgetInput{Kind: opDebit, Amount: initialBalance}, Output: budgetOutput{Status: 402}, Call: 0, Return: 10},
		}
		if res := checkLinearizableQuiet(budgetModel(), refused); res != porcupine.Illegal {
			t.Fatalf("wrongly refused debit: porcupine says %s, want Illegal", res)
		}
	})
}

func checkLinearizableQuiet(model porcupine.Model, history []porcupine.Operation) porcupine.CheckResult {
	return porcupine.CheckOperationsTimeout(model, history, time.Minute)
}
