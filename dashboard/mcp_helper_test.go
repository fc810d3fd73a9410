package dashboard_test

import (
	"archive/zip"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	mcpgo "github.com/mark3labs/mcp-go/mcp"
)

// findSkill calls the find_skill tool over MCP (streamable HTTP) as an
// end-user and returns the tool's text answer.
func findSkill(t *testing.T, base, key, query string) string {
	t.Helper()
	c, err := client.NewStreamableHttpClient(base+"/mcp/skills", transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + key}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatalf("MCP start: %v", err)
	}
	init := mcpgo.InitializeRequest{}
	init.Params.ProtocolVersion = "2025-06-18"
	init.Params.ClientInfo = mcpgo.Implementation{Name: "dashboard-test", Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatalf("MCP initialize: %v", err)
	}
	req := mcpgo.CallToolRequest{}
	req.Params.Name = "find_skill"
	req.Params.Arguments = map[string]any{"query": query}
	r, err := c.CallTool(ctx, req)
	if err != nil {
		t.Fatalf("find_skill: %v", err)
	}
	var b strings.Builder
	for _, ct := range r.Content {
		if tc, ok := ct.(mcpgo.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	if r.IsError {
		t.Fatalf("find_skill tool error: %s", b.String())
	}
	return b.String()
}

// skillZip writes a small skill folder as a zip and returns its path.
func skillZip(t *testing.T, name string) string {
	t.Helper()
	var buf bytes.Buffer
	z := zip.NewWriter(&buf)
	for p, body := range map[string]string{
		"SKILL.md":       "# " + name + "\n\nTurns receipts into expense reports.\n",
		"scripts/run.py": "print('expense report')\n",
	} {
		w, err := z.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(body))
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "skill.zip")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
