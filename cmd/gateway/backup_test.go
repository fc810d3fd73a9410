package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assistiv/gateway/edge/edgetest"
	"github.com/assistiv/gateway/internal/money"
)

// topup is one wallet top-up of the load.
type topup struct {
	key    string
	amount money.Nanos
	acked  time.Time // when its 200 was read; zero: no answer
}

// TestBackupUnderLoadRestoresEveryAcknowledgedTopup runs the gateway
// binary under a load of idempotent wallet top-ups over HTTP, takes
// `gateway backup` in the middle of it, kills the node, restores the
// backup into a new data dir with `gateway restore --from` and starts a
// node there. That node serves every top-up acknowledged before the backup
// was requested, each once with its amount; nothing it holds was never
// sent; its ledger sums to its balance; the master key file came along.
func TestBackupUnderLoadRestoresEveryAcknowledgedTopup(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gateway binary")
	}
	bin := edgetest.BuildBinary(t)
	root := t.TempDir()
	dataDir, backupDir, restoredDir := filepath.Join(root, "data"), filepath.Join(root, "backup"), filepath.Join(root, "restored")
	p := edgetest.StartProcess(t, dataDir)
	pid, _ := edgetest.CreatePlatform(t, p.Client(), p.URL, "backup")
	topupURL := p.URL + "/admin/v1/platforms/" + pid + "/wallet/topup"

	var mu sync.Mutex
	var ops []*topup
	stop := make(chan struct{})
	var wg sync.WaitGroup
	deadline := time.Now().Add(60 * time.Second) // the load stops by itself
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 5000 && time.Now().Before(deadline); i++ {
				select {
				case <-stop:
					return
				default:
				}
				op := &topup{key: fmt.Sprintf("bk-%d-%d", w, i), amount: money.Nanos(int64(1+w*1000+i) * 1000)}
				mu.Lock()
				ops = append(ops, op)
				mu.Unlock()
				body, _ := json.Marshal(map[string]any{"amount_usd": op.amount})
				req, _ := http.NewRequest("POST", topupURL, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+edgetest.AdminKey)
				req.Header.Set("Idempotency-Key", op.key)
				resp, err := p.Client().Do(req)
				if err != nil {
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 || resp.StatusCode == 201 {
					mu.Lock()
					op.acked = time.Now()
					mu.Unlock()
				}
			}
		}(w)
	}
	ackedCount := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, op := range ops {
			if !op.acked.IsZero() {
				n++
			}
		}
		return n
	}
	for ackedCount() < 200 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	backupAsked := time.Now()
	out, err := exec.Command(bin, "backup", "--to", backupDir, "-data-dir", dataDir).CombinedOutput()
	if err != nil {
		close(stop)
		wg.Wait()
		t.Fatalf("gateway backup: %v\n%s\nnode logs:\n%s", err, out, p.Logs())
	}
	t.Logf("gateway backup: %s", bytes.TrimSpace(out))
	afterBackup := ackedCount()
	for ackedCount() < afterBackup+200 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // traffic went on during and after the backup
	}
	close(stop)
	wg.Wait()
	p.Kill()

	// A backup is refused into a non-empty directory; restore is refused
	// into a non-empty data dir and from a directory without a manifest.
	if out, err := exec.Command(bin, "restore", "--from", backupDir, "-data-dir", dataDir).CombinedOutput(); err == nil || !strings.Contains(string(out), "not empty") {
		t.Errorf("restore into the old, non-empty data dir: err %v, output %s", err, out)
	}
	if out, err := exec.Command(bin, "restore", "--from", dataDir, "-data-dir", filepath.Join(root, "x")).CombinedOutput(); err == nil || !strings.Contains(string(out), "not a complete backup") {
		t.Errorf("restore from a data dir: err %v, output %s", err, out)
	}
	if out, err := exec.Command(bin, "backup", "--to", filepath.Join(root, "y"), "-data-dir", dataDir).CombinedOutput(); err == nil || !strings.Contains(string(out), "no running gateway") {
		t.Errorf("backup of a stopped node: err %v, output %s", err, out)
	}

	if out, err := exec.Command(bin, "restore", "--from", backupDir, "-data-dir", restoredDir).CombinedOutput(); err != nil {
		t.Fatalf("gateway restore: %v\n%s", err, out)
	}
	for _, f := range []string{"master.key", "logs"} {
		if _, err := os.Stat(filepath.Join(restoredDir, f)); err != nil {
			t.Errorf("restored data dir lacks %s: %v", f, err)
		}
	}
	k1, _ := os.ReadFile(filepath.Join(dataDir, "master.key"))
	k2, _ := os.ReadFile(filepath.Join(restoredDir, "master.key"))
	if len(k1) == 0 || !bytes.Equal(k1, k2) {
		t.Errorf("the restored master key file differs from the node's")
	}

	p2 := edgetest.StartProcess(t, restoredDir)
	ledger := walletLedger(t, p2, pid)
	wallet := p2.Do(t, "GET", "/admin/v1/platforms/"+pid+"/wallet", edgetest.AdminKey, nil).Map(t)
	balance, err := money.ParseUSD(fmt.Sprint(wallet["balance_usd"]))
	if err != nil {
		t.Fatalf("wallet: %v (%v)", err, wallet)
	}
	byKey := map[string]*topup{}
	for _, op := range ops {
		byKey[op.key] = op
	}
	var sum money.Nanos
	seen := map[string]bool{}
	for _, e := range ledger {
		amt, err := money.ParseUSD(fmt.Sprint(e["amount_usd"]))
		if err != nil {
			t.Fatalf("entry %v: %v", e, err)
		}
		sum += amt
		k, _ := e["idempotency_key"].(string)
		if k == "" {
			continue
		}
		op := byKey[k]
		switch {
		case op == nil:
			t.Errorf("restored ledger holds %q, never sent", k)
		case seen[k]:
			t.Errorf("restored ledger holds %q twice", k)
		case amt != op.amount:
			t.Errorf("restored %q = %s, sent %s", k, amt, op.amount)
		}
		seen[k] = true
	}
	if sum != balance {
		t.Errorf("restored ledger sums to %s, balance %s", sum, balance)
	}
	var before, after, afterKept int
	for _, op := range ops {
		switch {
		case op.acked.IsZero():
		case op.acked.Before(backupAsked):
			before++
			if !seen[op.key] {
				t.Errorf("top-up %q acknowledged before the backup is missing from the restored node", op.key)
			}
		default:
			after++
			if seen[op.key] {
				afterKept++
			}
		}
	}
	t.Logf("%d top-ups acknowledged before the backup, all restored; %d after it, %d of those in the backup", before, after, afterKept)
	if before < 200 || after < 200 {
		t.Errorf("load too thin: %d acknowledged before the backup, %d after", before, after)
	}
}

// walletLedger pages the platform wallet's transactions.
func walletLedger(t *testing.T, p *edgetest.Process, pid string) []map[string]any {
	t.Helper()
	var all []map[string]any
	cursor := ""
	for {
		q := "/admin/v1/platforms/" + pid + "/wallet/transactions?limit=1000"
		if cursor != "" {
			q += "&cursor=" + cursor
		}
		r := p.Do(t, "GET", q, edgetest.AdminKey, nil)
		if r.Status != 200 {
			t.Fatalf("GET %s: %d %s", q, r.Status, r.Body)
		}
		var page struct {
			Data       []map[string]any `json:"data"`
			HasMore    bool             `json:"has_more"`
			NextCursor string           `json:"next_cursor"`
		}
		r.JSON(t, &page)
		all = append(all, page.Data...)
		if !page.HasMore {
			return all
		}
		cursor = page.NextCursor
	}
}
