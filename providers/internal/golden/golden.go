// Package golden runs the translation golden tests of the provider
// packages: an input file under testdata/ is translated and the result
// compared with its .golden twin. Run the tests with -update to rewrite the
// goldens, then review them as a diff. Only tests import it.
package golden

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/assistiv/gateway/providers"
)

var update = flag.Bool("update", false, "rewrite golden files")

// Inputs returns the files matching testdata/<dir>/*.<ext>, excluding
// goldens and companion files (names with a second dot-part such as
// x.request.json).
func Inputs(t testing.TB, dir, ext string) []string {
	t.Helper()
	all, err := filepath.Glob(filepath.Join("testdata", dir, "*."+ext))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range all {
		base := strings.TrimSuffix(filepath.Base(f), "."+ext)
		if !strings.Contains(base, ".") {
			out = append(out, f)
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		t.Fatalf("no inputs in testdata/%s", dir)
	}
	return out
}

// Companion returns the file next to input with suffix in place of its
// extension (x.json → x.request.json), or nil when there is none.
func Companion(t testing.TB, input, suffix string) []byte {
	t.Helper()
	p := strings.TrimSuffix(input, filepath.Ext(input)) + suffix
	b, err := os.ReadFile(p)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Read returns a file's bytes.
func Read(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Indent pretty-prints JSON for a readable golden.
func Indent(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Indent(&buf, b, "", "  "); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, b)
	}
	buf.WriteByte('\n')
	return buf.Bytes()
}

// Check compares got with input's golden (input minus extension plus
// ".golden" + ext), or writes it under -update.
func Check(t testing.TB, input, ext string, got []byte) {
	t.Helper()
	p := strings.TrimSuffix(input, filepath.Ext(input)) + ".golden" + ext
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("missing golden %s (run with -update): %v", p, err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s: output differs from golden %s\n--- got\n%s\n--- want\n%s", input, p, got, want)
	}
}

// SharedRequests returns the client requests every provider translates:
// ../testdata/requests/*.json, relative to a provider package.
func SharedRequests(t testing.TB) []string {
	t.Helper()
	all, err := filepath.Glob(filepath.Join("..", "testdata", "requests", "*.json"))
	if err != nil || len(all) == 0 {
		t.Fatalf("no shared requests: %v", err)
	}
	sort.Strings(all)
	return all
}

// CheckAt compares got with the golden file at path, or writes it under
// -update.
func CheckAt(t testing.TB, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("missing golden %s (run with -update): %v", path, err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from golden %s\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// RenderStream drains s into golden text: one chunk per line as compact
// JSON, then "# end: EOF" or "# error: <error>", then the reported usage.
func RenderStream(t testing.TB, s *providers.Stream) []byte {
	t.Helper()
	var buf bytes.Buffer
	for {
		c, err := s.Next()
		if errors.Is(err, io.EOF) {
			buf.WriteString("# end: EOF\n")
			break
		}
		if err != nil {
			fmt.Fprintf(&buf, "# error: %v\n", err)
			break
		}
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	u, ok := s.Usage()
	fmt.Fprintf(&buf, "# usage: prompt=%d completion=%d total=%d reported=%v\n", u.PromptTokens, u.CompletionTokens, u.TotalTokens, ok)
	return buf.Bytes()
}

// ParseRequest reads a ChatRequest.
func ParseRequest(t testing.TB, b []byte) *providers.ChatRequest {
	t.Helper()
	var r providers.ChatRequest
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("bad request fixture: %v", err)
	}
	return &r
}
