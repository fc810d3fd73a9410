package postgres_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/assistiv/gateway/edge/edgetest"
	"github.com/assistiv/gateway/internal/secrets"
	"github.com/assistiv/gateway/persistence"
	"github.com/assistiv/gateway/persistence/postgres"
)

// fetchSkill calls the fetch_skill tool over a bare JSON-RPC POST and
// returns path → content (base64-decoded for binary files).
func fetchSkill(t *testing.T, g *edgetest.Gateway, key, id string) map[string][]byte {
	t.Helper()
	r := g.Do(t, "POST", "/mcp/skills", key, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"fetch_skill","arguments":{"skill_id":"`+id+`"}}}`)
	var rpc struct {
		Result struct {
			Content []struct{ Text string } `json:"content"`
			IsError bool                    `json:"isError"`
		} `json:"result"`
	}
	if err := json.Unmarshal(r.Body, &rpc); err != nil || r.Status != 200 || rpc.Result.IsError || len(rpc.Result.Content) == 0 {
		t.Fatalf("fetch_skill: %d %s", r.Status, r.Body)
	}
	var out struct {
		Files []struct {
			Path, Content string
			Base64        bool
		} `json:"files"`
	}
	if err := json.Unmarshal([]byte(rpc.Result.Content[0].Text), &out); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, f := range out.Files {
		b := []byte(f.Content)
		if f.Base64 {
			b, _ = base64.StdEncoding.DecodeString(f.Content)
		}
		files[f.Path] = b
	}
	return files
}

// Skills (records and their sealed blobs) reach the Postgres snapshot, so
// a data dir restored with `gateway restore --from-postgres` (and the
// master key) serves them byte for byte.
func TestSkillsSurviveSnapshotAndRestore(t *testing.T) {
	url := testURL(t)
	ctx := context.Background()
	g := edgetest.Start(t, edgetest.Options{})
	pid, pkey := g.CreatePlatform(t, "skills")
	if r := g.Do(t, "POST", "/admin/v1/platforms/"+pid+"/wallet/topup", edgetest.AdminKey, map[string]any{"amount_usd": 10}); r.Status != 200 {
		t.Fatalf("wallet topup: %d", r.Status)
	}
	if r := g.Do(t, "PATCH", "/v1/platforms/"+pid, pkey, map[string]any{"skills_enabled": true}); r.Status != 200 {
		t.Fatalf("skills_enabled: %d", r.Status)
	}
	_, ukey := g.CreateEndUser(t, pid, pkey, "agent")
	files := map[string][]byte{
		"SKILL.md":      []byte("# Restorable\nsurvives a restore\n"),
		"bin/data.bin":  {0, 1, 2, 0xff, 0xfe, 0x80},
		"docs/notes.md": bytes.Repeat([]byte("note "), 5000),
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, p := range []string{"SKILL.md", "bin/data.bin", "docs/notes.md"} {
		w, err := zw.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(files[p])
	}
	zw.Close()
	r := g.Do(t, "POST", "/v1/skills", pkey, map[string]any{"name": "Restorable", "description": "d", "archive_base64": base64.StdEncoding.EncodeToString(buf.Bytes())})
	if r.Status != 201 {
		t.Fatalf("upload: %d %s", r.Status, r.Body)
	}
	var sk struct{ ID string }
	r.JSON(t, &sk)
	if got := fetchSkill(t, g, ukey, sk.ID); len(got) != 3 {
		t.Fatalf("fetch before the snapshot: %d files", len(got))
	}

	cfg := postgres.DefaultConfig()
	cfg.URL, cfg.Logger = url, quiet()
	snap, err := postgres.Open(ctx, cfg, g.Store)
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Pool().Close()
	if _, err := snap.Round(ctx); err != nil {
		t.Fatalf("Round: %v", err)
	}
	key, err := os.ReadFile(filepath.Join(g.Dir, secrets.KeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	g.Close()

	dir := t.TempDir()
	scfg := persistence.DefaultConfig()
	scfg.Dir, scfg.Logger = dir, quiet()
	st, err := persistence.Open(scfg)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := postgres.Restore(ctx, snap.Pool(), st); err != nil || n == 0 {
		t.Fatalf("Restore = %d, %v", n, err)
	}
	st.Close()
	// The operator restores the master key too (ASSISTIV_MASTER_KEY or
	// the key file): sealed values open only under it.
	if err := os.WriteFile(filepath.Join(dir, secrets.KeyFileName), key, 0o600); err != nil {
		t.Fatal(err)
	}
	g2 := edgetest.Start(t, edgetest.Options{Dir: dir})
	if r := g2.Do(t, "GET", "/v1/skills/"+sk.ID, pkey, nil); r.Status != 200 {
		t.Fatalf("GET restored skill: %d %s", r.Status, r.Body)
	}
	got := fetchSkill(t, g2, ukey, sk.ID)
	for p, want := range files {
		if !bytes.Equal(got[p], want) {
			t.Errorf("restored %s differs (%d bytes, want %d)", p, len(got[p]), len(want))
		}
	}
}
