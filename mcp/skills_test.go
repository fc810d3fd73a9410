package mcp_test

import (
	"archive/zip"
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"

	"github.com/assistiv/gateway/edge/edgetest"
	"github.com/assistiv/gateway/mcp"
	"github.com/assistiv/gateway/persistence"
	"github.com/assistiv/gateway/skills"
)

// skillEnv is a gateway with two platforms, both with skills enabled, and
// an end-user on each.
type skillEnv struct {
	g                  *edgetest.Gateway
	pidA, pkeyA, ukeyA string
	pidB, pkeyB, ukeyB string
	ukeyA2             string
	clientA, clientB   *client.Client
}

func setupSkills(t *testing.T, o edgetest.Options) *skillEnv {
	t.Helper()
	e := &skillEnv{g: edgetest.Start(t, o)}
	e.pidA, e.pkeyA = e.g.CreatePlatform(t, "acme")
	e.pidB, e.pkeyB = e.g.CreatePlatform(t, "globex")
	for _, p := range [][2]string{{e.pidA, e.pkeyA}, {e.pidB, e.pkeyB}} {
		enableSkills(t, e.g, p[0], p[1], true)
		fundWallet(t, e.g, p[0])
	}
	_, e.ukeyA = e.g.CreateEndUser(t, e.pidA, e.pkeyA, "alice")
	_, e.ukeyA2 = e.g.CreateEndUser(t, e.pidA, e.pkeyA, "carol")
	_, e.ukeyB = e.g.CreateEndUser(t, e.pidB, e.pkeyB, "bob")
	e.clientA = mcpClient(t, e.g.URL+"/mcp/skills", e.ukeyA)
	e.clientB = mcpClient(t, e.g.URL+"/mcp/skills", e.ukeyB)
	return e
}

func enableSkills(t *testing.T, g *edgetest.Gateway, pid, pkey string, on bool) {
	t.Helper()
	if r := g.Do(t, "PATCH", "/v1/platforms/"+pid, pkey, map[string]any{"skills_enabled": on}); r.Status != 200 {
		t.Fatalf("PATCH skills_enabled: %d %s", r.Status, r.Body)
	}
}

type zipEntry struct {
	name   string
	data   []byte
	mode   fs.FileMode // 0: regular 0644
	method uint16      // 0: deflate
}

func makeZip(t *testing.T, entries ...zipEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		if e.method != 0 {
			h.Method = e.method
		}
		h.SetMode(0o644)
		if e.mode != 0 {
			h.SetMode(e.mode)
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatalf("zip %q: %v", e.name, err)
		}
		if _, err := w.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func upload(t *testing.T, g *edgetest.Gateway, key, name, desc string, archive []byte) *edgetest.Response {
	t.Helper()
	path := "/v1/skills"
	if key == edgetest.AdminKey {
		path = "/admin/v1/skills"
	}
	return g.Do(t, "POST", path, key, map[string]any{"name": name, "description": desc, "archive_base64": base64.StdEncoding.EncodeToString(archive)})
}

func mustUpload(t *testing.T, g *edgetest.Gateway, key, name, desc string, archive []byte) skills.View {
	t.Helper()
	r := upload(t, g, key, name, desc, archive)
	if r.Status != 201 {
		t.Fatalf("upload %s: %d %s", name, r.Status, r.Body)
	}
	var v skills.View
	r.JSON(t, &v)
	return v
}

type fetched struct {
	SkillID string `json:"skill_id"`
	Files   []struct {
		Path    string `json:"path"`
		Content string `json:"content"`
		Base64  bool   `json:"base64"`
	} `json:"files"`
}

func fetchFiles(t *testing.T, c *client.Client, id string) map[string][]byte {
	t.Helper()
	var f fetched
	if err := json.Unmarshal([]byte(mustCall(t, c, "fetch_skill", map[string]any{"skill_id": id})), &f); err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, x := range f.Files {
		b := []byte(x.Content)
		if x.Base64 {
			var err error
			if b, err = base64.StdEncoding.DecodeString(x.Content); err != nil {
				t.Fatal(err)
			}
		}
		out[x.Path] = b
	}
	return out
}

func findIDs(t *testing.T, c *client.Client, query string) []string {
	t.Helper()
	var res struct {
		Skills []struct {
			SkillID string `json:"skill_id"`
		} `json:"skills"`
	}
	if err := json.Unmarshal([]byte(mustCall(t, c, "find_skill", map[string]any{"query": query, "limit": 50})), &res); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range res.Skills {
		out = append(out, s.SkillID)
	}
	return out
}

// countBlobs counts the blob files under the gateway's skills directory.
// countBlobs counts the stored skill blobs (sealed, in Pebble).
func countBlobs(t *testing.T, g *edgetest.Gateway) int {
	t.Helper()
	n := 0
	if err := g.Store.ScanPrefix([]byte{persistence.FamilySkillData}, false, func(_, _ []byte) bool { n++; return true }); err != nil {
		t.Fatal(err)
	}
	return n
}

const canary = "CANARY-7f3a9c-skill-body-never-in-clear"

func sampleSkill() (map[string][]byte, []byte) {
	bin := []byte{0x00, 0xff, 0xfe, 'P', 'N', 'G', 0x00, 0x80, 0x81}
	files := map[string][]byte{
		"SKILL.md":          []byte("# Invoice parser\n\nParses PDF invoices into JSON. " + canary + "\n"),
		"scripts/run.py":    []byte("print('hello <&> world')\r\n\ttabs\x01ok\n"),
		"assets/logo.bin":   bin,
		"README.md":         []byte("unicode: héllo ✓\n"),
		"scripts/empty.txt": {},
	}
	var entries []zipEntry
	for _, p := range []string{"SKILL.md", "scripts/run.py", "assets/logo.bin", "README.md", "scripts/empty.txt"} {
		entries = append(entries, zipEntry{name: "invoice-parser/" + p, data: files[p]})
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		w, _ := zw.Create(e.name)
		_, _ = w.Write(e.data)
	}
	_ = zw.Close()
	return files, buf.Bytes()
}

func TestSkillUploadFindFetchIsByteIdenticalDedupedAndSealed(t *testing.T) {
	e := setupSkills(t, edgetest.Options{})
	files, archive := sampleSkill()
	v := mustUpload(t, e.g, e.pkeyA, "Invoice parser", "Turns PDF invoices into structured JSON", archive)
	if v.Visibility != "private" || v.FileCount != len(files) || v.PlatformID != e.pidA {
		t.Fatalf("upload view = %+v", v)
	}

	if ids := findIDs(t, e.clientA, "invoice json"); !slices.Contains(ids, v.ID) {
		t.Fatalf("find_skill(invoice json) = %v, want %s", ids, v.ID)
	}
	got := fetchFiles(t, e.clientA, v.ID)
	if len(got) != len(files) {
		t.Fatalf("fetch_skill returned %d files, want %d", len(got), len(files))
	}
	for p, want := range files {
		if !bytes.Equal(got[p], want) {
			t.Errorf("fetch_skill file %q = %q, want %q", p, got[p], want)
		}
	}

	blobs := countBlobs(t, e.g)
	if blobs != len(files) {
		t.Fatalf("blob files = %d, want %d", blobs, len(files))
	}
	v2 := mustUpload(t, e.g, e.pkeyA, "Invoice parser copy", "same bytes", archive)
	if n := countBlobs(t, e.g); n != blobs {
		t.Fatalf("after an identical upload blob files = %d, want %d (deduplicated)", n, blobs)
	}
	// Deleting one copy keeps the shared blobs; deleting both removes them.
	if r := e.g.Do(t, "DELETE", "/v1/skills/"+v2.ID, e.pkeyA, nil); r.Status != 200 {
		t.Fatalf("DELETE: %d %s", r.Status, r.Body)
	}
	if got := fetchFiles(t, e.clientA, v.ID); !bytes.Equal(got["SKILL.md"], files["SKILL.md"]) {
		t.Fatal("fetch after deleting the duplicate lost content")
	}

	// No file under the data dir holds a skill file's bytes in clear.
	if err := e.g.Store.Barrier(); err != nil {
		t.Fatal(err)
	}
	_ = filepath.WalkDir(e.g.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		b, _ := os.ReadFile(p)
		if bytes.Contains(b, []byte(canary)) || bytes.Contains(b, []byte("hello <&> world")) {
			t.Errorf("%s holds skill content in clear", p)
		}
		return nil
	})

	mustCall(t, e.clientA, "delete_skill", map[string]any{"skill_id": v.ID})
	if n := countBlobs(t, e.g); n != 0 {
		t.Fatalf("after deleting every skill blob files = %d, want 0", n)
	}
	if r := e.g.Do(t, "GET", "/v1/skills/"+v.ID, e.pkeyA, nil); r.Status != 404 {
		t.Fatalf("GET deleted skill = %d, want 404", r.Status)
	}
}

func TestSkillOfAnotherPlatformIsNeverFoundFetchedOrDeleted(t *testing.T) {
	e := setupSkills(t, edgetest.Options{})
	_, archive := sampleSkill()
	priv := mustUpload(t, e.g, e.pkeyB, "Globex secret invoice skill", "B only", archive)
	pub := mustUpload(t, e.g, edgetest.AdminKey, "Public invoice skill", "for everyone", archive)
	if pub.Visibility != "public" {
		t.Fatalf("admin upload visibility = %q", pub.Visibility)
	}

	ids := findIDs(t, e.clientA, "invoice")
	if slices.Contains(ids, priv.ID) || !slices.Contains(ids, pub.ID) {
		t.Fatalf("A's find_skill(invoice) = %v: must hold public %s and not B's %s", ids, pub.ID, priv.ID)
	}
	if ids := findIDs(t, e.clientB, "invoice"); !slices.Contains(ids, priv.ID) {
		t.Fatalf("B's find_skill = %v, want its own %s", ids, priv.ID)
	}
	for _, tool := range []string{"fetch_skill", "delete_skill"} {
		r, err := callTool(t, e.clientA, tool, map[string]any{"skill_id": priv.ID})
		if err != nil {
			t.Fatal(err)
		}
		if code := toolErrorCode(t, r); code != "not_found" {
			t.Errorf("%s of B's skill by A = %s, want not_found", tool, code)
		}
	}
	r, _ := callTool(t, e.clientA, "submit_skill_review", map[string]any{"skill_id": priv.ID,
		"scores": map[string]any{"correctness": 5, "clarity": 5, "safety": 5, "usefulness": 5}})
	if code := toolErrorCode(t, r); code != "not_found" {
		t.Errorf("review of B's skill by A = %s, want not_found", code)
	}
	for _, key := range []string{e.pkeyA, e.ukeyA} {
		if r := e.g.Do(t, "GET", "/v1/skills/"+priv.ID, key, nil); r.Status != 404 || r.ErrorCode() != "skill_not_found" {
			t.Errorf("GET B's skill with an A key = %d %s, want 404 skill_not_found", r.Status, r.Body)
		}
	}
	if r := e.g.Do(t, "DELETE", "/v1/skills/"+priv.ID, e.pkeyA, nil); r.Status != 404 {
		t.Errorf("DELETE B's skill with A's key = %d, want 404", r.Status)
	}
	// A public skill is visible but not A's to delete.
	if r := e.g.Do(t, "DELETE", "/v1/skills/"+pub.ID, e.pkeyA, nil); r.Status != 403 || r.ErrorCode() != "skill_not_owned" {
		t.Errorf("DELETE public skill with a platform key = %d %s, want 403 skill_not_owned", r.Status, r.Body)
	}
	r, _ = callTool(t, e.clientA, "delete_skill", map[string]any{"skill_id": pub.ID})
	if code := toolErrorCode(t, r); code != "forbidden" {
		t.Errorf("delete_skill of a public skill = %s, want forbidden", code)
	}
	// B still has its skill, and A's end-user can read the public one.
	if r := e.g.Do(t, "GET", "/v1/skills/"+priv.ID, e.ukeyB, nil); r.Status != 200 {
		t.Errorf("GET own skill with B's end-user key = %d", r.Status)
	}
	if r := e.g.Do(t, "GET", "/v1/skills/"+pub.ID, e.ukeyA, nil); r.Status != 200 {
		t.Errorf("GET public skill with A's end-user key = %d", r.Status)
	}
}

func TestSkillArchiveAttacksAreRefused(t *testing.T) {
	e := setupSkills(t, edgetest.Options{MCPConfig: func(c *mcp.Config) {
		c.Skills = skills.Limits{MaxArchiveBytes: 1 << 20, MaxTotalBytes: 1 << 20, MaxFileBytes: 512 << 10, MaxFiles: 20, MaxRatio: 100}
	}})
	skillMD := zipEntry{name: "SKILL.md", data: []byte("# ok\n")}
	random := func(n int) []byte { b := make([]byte, n); _, _ = rand.Read(b); return b }
	many := []zipEntry{skillMD}
	for i := range 21 {
		many = append(many, zipEntry{name: "f" + string(rune('a'+i)) + ".txt", data: []byte("x")})
	}
	cases := []struct {
		name    string
		archive []byte
		status  int
		code    string
	}{
		{"zip bomb by ratio", makeZip(t, skillMD, zipEntry{name: "zeros.bin", data: make([]byte, 500<<10)}), 400, "compression_ratio_exceeded"},
		{"zip bomb by total size", makeZip(t, skillMD,
			zipEntry{name: "a.bin", data: random(400 << 10), method: zip.Store},
			zipEntry{name: "b.bin", data: random(400 << 10), method: zip.Store},
			zipEntry{name: "c.bin", data: random(400 << 10), method: zip.Store}), 413, "archive_too_large"},
		{"file too large", makeZip(t, skillMD, zipEntry{name: "big.bin", data: random(600 << 10), method: zip.Store}), 413, "file_too_large"},
		{"archive too large", random(1<<20 + 10), 413, "archive_too_large"},
		{"dot-dot traversal", makeZip(t, skillMD, zipEntry{name: "../evil.sh", data: []byte("rm -rf /")}), 400, "unsafe_path"},
		{"nested traversal", makeZip(t, skillMD, zipEntry{name: "scripts/../../evil.sh", data: []byte("x")}), 400, "unsafe_path"},
		{"absolute path", makeZip(t, skillMD, zipEntry{name: "/etc/cron.d/evil", data: []byte("x")}), 400, "unsafe_path"},
		{"backslash", makeZip(t, skillMD, zipEntry{name: "..\\evil.bat", data: []byte("x")}), 400, "unsafe_path"},
		{"drive letter", makeZip(t, skillMD, zipEntry{name: "C:/evil.bat", data: []byte("x")}), 400, "unsafe_path"},
		{"symlink entry", makeZip(t, skillMD, zipEntry{name: "link", data: []byte("/etc/passwd"), mode: fs.ModeSymlink | 0o777}), 400, "unsupported_entry"},
		{"non-UTF-8 name", makeZip(t, skillMD, zipEntry{name: "bad\xff\xfe.txt", data: []byte("x")}), 400, "unsafe_path"},
		{"control character name", makeZip(t, skillMD, zipEntry{name: "bad\x1b[31m.txt", data: []byte("x")}), 400, "unsafe_path"},
		{"too many files", makeZip(t, many...), 400, "too_many_files"},
		{"duplicate path", makeZip(t, skillMD, zipEntry{name: "a.txt", data: []byte("1")}, zipEntry{name: "a.txt", data: []byte("2")}), 400, "duplicate_path"},
		{"duplicate path by case", makeZip(t, skillMD, zipEntry{name: "A.txt", data: []byte("1")}, zipEntry{name: "a.txt", data: []byte("2")}), 400, "duplicate_path"},
		{"file and folder", makeZip(t, skillMD, zipEntry{name: "x", data: []byte("1")}, zipEntry{name: "x/y", data: []byte("2")}), 400, "duplicate_path"},
		{"no SKILL.md", makeZip(t, zipEntry{name: "README.md", data: []byte("x")}), 400, "missing_skill_md"},
		{"SKILL.md two folders down", makeZip(t, zipEntry{name: "a/b/SKILL.md", data: []byte("x")}), 400, "missing_skill_md"},
		{"not a zip", []byte("this is not a zip archive at all"), 400, "invalid_archive"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := upload(t, e.g, e.pkeyA, "attack", "", tc.archive)
			if r.Status != tc.status || r.ErrorCode() != tc.code {
				t.Errorf("upload = %d %s, want %d %s", r.Status, r.Body, tc.status, tc.code)
			}
		})
	}
	t.Run("oversized body", func(t *testing.T) {
		// Announced past the edge's 4 MiB body limit: refused before the
		// body is read (raw HTTP: a client still sending would see a reset).
		conn, err := net.Dial("tcp", strings.TrimPrefix(e.g.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		head := "POST /v1/skills HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + e.pkeyA +
			"\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(5<<20) + "\r\n\r\n"
		if _, err := conn.Write([]byte(head)); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 413 || !strings.Contains(string(body), `"request_too_large"`) {
			t.Errorf("oversized body = %d %s, want 413 request_too_large", resp.StatusCode, body)
		}
	})
	t.Run("invalid base64", func(t *testing.T) {
		r := e.g.Do(t, "POST", "/v1/skills", e.pkeyA, map[string]any{"name": "x", "archive_base64": "%%%not base64"})
		if r.Status != 400 || r.ErrorCode() != "invalid_archive" {
			t.Errorf("bad base64 = %d %s, want 400 invalid_archive", r.Status, r.Body)
		}
	})
	// create_skill applies the same rules.
	for _, tc := range []struct {
		name  string
		files []map[string]any
		code  string
	}{
		{"traversal", []map[string]any{{"path": "SKILL.md", "content": "# x"}, {"path": "../x", "content": "y"}}, "unsafe_path"},
		{"absolute", []map[string]any{{"path": "/SKILL.md", "content": "# x"}}, "unsafe_path"},
		{"no SKILL.md", []map[string]any{{"path": "README.md", "content": "# x"}}, "missing_skill_md"},
		{"too large", []map[string]any{{"path": "SKILL.md", "content": strings.Repeat("x", 600<<10)}}, "file_too_large"},
	} {
		r, err := callTool(t, e.clientA, "create_skill", map[string]any{"name": "n", "files": tc.files})
		if err != nil {
			t.Fatalf("create_skill %s: %v", tc.name, err)
		}
		if code := toolErrorCode(t, r); code != tc.code {
			t.Errorf("create_skill %s = %s, want %s", tc.name, code, tc.code)
		}
	}
	if n := countBlobs(t, e.g); n != 0 {
		t.Errorf("refused uploads left %d blobs", n)
	}
}

func TestCreateSkillToolRoundTripsTextAndBinary(t *testing.T) {
	e := setupSkills(t, edgetest.Options{})
	bin := []byte{0, 1, 2, 0xff, 0xc3, 0x28}
	var v skills.View
	out := mustCall(t, e.clientA, "create_skill", map[string]any{"name": "Weather lookup", "description": "Fetches forecasts",
		"files": []map[string]any{
			{"path": "SKILL.md", "content": "# Weather\nuse the forecast API\n"},
			{"path": "bin/data.bin", "content": base64.StdEncoding.EncodeToString(bin), "base64": true},
		}})
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.Visibility != "private" || v.PlatformID != e.pidA {
		t.Fatalf("create_skill = %s (%v)", out, err)
	}
	got := fetchFiles(t, e.clientA, v.ID)
	if string(got["SKILL.md"]) != "# Weather\nuse the forecast API\n" || !bytes.Equal(got["bin/data.bin"], bin) {
		t.Fatalf("fetch_skill = %q", got)
	}
	// Search reaches SKILL.md's first lines, not only name and description.
	if ids := findIDs(t, e.clientA, "forecast"); !slices.Contains(ids, v.ID) {
		t.Fatalf("find_skill(forecast) = %v", ids)
	}
	if ids := findIDs(t, e.clientB, "weather"); slices.Contains(ids, v.ID) {
		t.Fatalf("B found A's created skill: %v", ids)
	}
}

func TestSkillReviewsAggregateOnePerEndUser(t *testing.T) {
	e := setupSkills(t, edgetest.Options{})
	_, archive := sampleSkill()
	v := mustUpload(t, e.g, edgetest.AdminKey, "Invoice parser", "public", archive)
	review := func(c *client.Client, s [4]int) {
		t.Helper()
		mustCall(t, c, "submit_skill_review", map[string]any{"skill_id": v.ID, "text": "ok",
			"scores": map[string]any{"correctness": s[0], "clarity": s[1], "safety": s[2], "usefulness": s[3]}})
	}
	review(e.clientA, [4]int{5, 4, 3, 2})
	review(e.clientA, [4]int{4, 4, 4, 4}) // replaces the first
	review(mcpClient(t, e.g.URL+"/mcp/skills", e.ukeyA2), [4]int{2, 2, 2, 2})
	review(e.clientB, [4]int{3, 3, 3, 5}) // another platform's user: a public skill's reviews are global

	var got skills.View
	e.g.Do(t, "GET", "/v1/skills/"+v.ID, e.pkeyA, nil).JSON(t, &got)
	sc := got.Scorecard
	if sc.ReviewCount != 3 || *sc.Correctness != 3 || *sc.Clarity != 3 || *sc.Safety != 3 || *sc.Usefulness != 3.67 || *sc.Overall != 3.17 {
		b, _ := json.Marshal(sc)
		t.Fatalf("scorecard = %s, want 3 reviews 3/3/3/3.67 overall 3.17", b)
	}

	for _, bad := range []map[string]any{
		{"correctness": 6, "clarity": 1, "safety": 1, "usefulness": 1},
		{"correctness": 0, "clarity": 1, "safety": 1, "usefulness": 1},
		{"correctness": 2.5, "clarity": 1, "safety": 1, "usefulness": 1},
		{"correctness": 1, "clarity": 1, "safety": 1},
	} {
		r, err := callTool(t, e.clientA, "submit_skill_review", map[string]any{"skill_id": v.ID, "scores": bad})
		if err == nil && !r.IsError {
			t.Errorf("review with scores %v was accepted", bad)
		}
	}
}

func TestFindSkillRanksByRelevanceThenReviews(t *testing.T) {
	e := setupSkills(t, edgetest.Options{})
	mk := func(name, desc string) string {
		return mustUpload(t, e.g, edgetest.AdminKey, name, desc, makeZip(t, zipEntry{name: "SKILL.md", data: []byte("# " + name)})).ID
	}
	exact := mk("PDF invoice extractor", "reads invoices")
	weak := mk("Spreadsheet helper", "can also export invoices")
	good := mk("Invoice tool", "invoices")
	other := mk("Invoice tool", "invoices")
	mk("Weather", "forecasts")
	review := func(id string, n int) {
		mustCall(t, e.clientA, "submit_skill_review", map[string]any{"skill_id": id,
			"scores": map[string]any{"correctness": n, "clarity": n, "safety": n, "usefulness": n}})
	}
	review(good, 5)
	review(other, 1)
	ids := findIDs(t, e.clientA, "pdf invoice")
	want := []string{exact, good, other, weak}
	if !slices.Equal(ids, want) {
		t.Fatalf("find_skill(pdf invoice) = %v, want %v", ids, want)
	}
}

func TestSkillToolsFollowSkillsEnabled(t *testing.T) {
	g := edgetest.Start(t, edgetest.Options{})
	pid, pkey := g.CreatePlatform(t, "acme")
	fundWallet(t, g, pid)
	_, ukey := g.CreateEndUser(t, pid, pkey, "alice")
	skillNames := []string{"create_skill", "delete_skill", "fetch_skill", "find_skill", "submit_skill_review"}

	all := mcpClient(t, g.URL+"/mcp", ukey)
	skills := mcpClient(t, g.URL+"/mcp/skills", ukey)
	if got := toolNames(t, all); len(got) != 0 {
		t.Fatalf("/mcp tools with skills disabled = %v, want none", got)
	}
	if got := toolNames(t, skills); len(got) != 0 {
		t.Fatalf("/mcp/skills tools with skills disabled = %v, want none", got)
	}
	if _, err := callTool(t, skills, "find_skill", map[string]any{"query": "x"}); err == nil {
		t.Fatal("find_skill with skills disabled succeeded, want tool not found")
	}

	enableSkills(t, g, pid, pkey, true)
	for _, c := range []*client.Client{all, skills} {
		if got := toolNames(t, c); !slices.Equal(got, skillNames) {
			t.Fatalf("tools with skills enabled = %v, want %v", got, skillNames)
		}
	}
	mustCall(t, skills, "find_skill", map[string]any{"query": "x"})

	enableSkills(t, g, pid, pkey, false)
	if got := toolNames(t, skills); len(got) != 0 {
		t.Fatalf("/mcp/skills tools after disabling = %v, want none", got)
	}
}
