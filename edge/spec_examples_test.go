package edge_test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/assistiv/gateway/edge/edgetest"
	"github.com/assistiv/gateway/mockllm"
	"github.com/assistiv/gateway/mockllm/mocktest"
)

// specFile is the product API reference whose curl examples we serve. It
// lives in shared/ beside the repository (CI lays a copy there);
// ASSISTIV_SPEC_FILE overrides the path.
func specFile(t *testing.T) []byte {
	t.Helper()
	path := os.Getenv("ASSISTIV_SPEC_FILE")
	if path == "" {
		path = filepath.Join("..", "..", "shared", "spec", "assistiv-api-reference.md")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the spec must be beside the repository under CI: %v", err)
		}
		t.Skipf("no spec file (%v); set ASSISTIV_SPEC_FILE", err)
	}
	return b
}

// curlCommand is one curl invocation of the spec, parsed.
type curlCommand struct {
	line    int // where it starts in the spec
	method  string
	url     string
	headers [][2]string
	body    string
}

// specCurls returns every curl command of the spec's fenced code blocks,
// in document order, with backslash-continued lines joined and comments
// dropped.
func specCurls(t *testing.T, spec []byte, vars map[string]string) []curlCommand {
	t.Helper()
	var out []curlCommand
	inBlock, start := false, 0
	var cmd strings.Builder
	sc := bufio.NewScanner(strings.NewReader(string(spec)))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inBlock = !inBlock
			continue
		}
		if !inBlock || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		if cmd.Len() == 0 {
			if !strings.HasPrefix(strings.TrimSpace(line), "curl ") {
				continue
			}
			start = n
		}
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			cmd.WriteString(cont + " ")
			continue
		}
		cmd.WriteString(line)
		c, err := parseCurl(cmd.String(), vars)
		if err != nil {
			t.Fatalf("spec line %d: %v", start, err)
		}
		c.line = start
		out = append(out, c)
		cmd.Reset()
	}
	return out
}

// shellWords splits s as a POSIX shell would for the forms the spec
// uses: single quotes, double quotes with $VAR expansion, and bare
// words with $VAR expansion.
func shellWords(s string, vars map[string]string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	expand := func(i int) (int, error) { // s[i] == '$'
		j := i + 1
		for j < len(s) && (s[j] == '_' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= '0' && s[j] <= '9') {
			j++
		}
		name := s[i+1 : j]
		v, ok := vars[name]
		if !ok {
			return 0, fmt.Errorf("unknown variable $%s", name)
		}
		w.WriteString(v)
		return j, nil
	}
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
			i++
		case c == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, fmt.Errorf("unclosed single quote in %q", s)
			}
			w.WriteString(s[i+1 : i+1+end])
			inWord, i = true, i+end+2
		case c == '"':
			inWord = true
			i++
			for i < len(s) && s[i] != '"' {
				if s[i] == '$' {
					j, err := expand(i)
					if err != nil {
						return nil, err
					}
					i = j
					continue
				}
				w.WriteByte(s[i])
				i++
			}
			if i >= len(s) {
				return nil, fmt.Errorf("unclosed double quote in %q", s)
			}
			i++
		case c == '$':
			j, err := expand(i)
			if err != nil {
				return nil, err
			}
			inWord, i = true, j
		default:
			w.WriteByte(c)
			inWord = true
			i++
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

// parseCurl understands the curl options the spec uses (-X, -H, -d, -N);
// any other option fails the test so a new example cannot be skipped.
func parseCurl(s string, vars map[string]string) (curlCommand, error) {
	words, err := shellWords(s, vars)
	if err != nil {
		return curlCommand{}, err
	}
	if len(words) == 0 || words[0] != "curl" {
		return curlCommand{}, fmt.Errorf("not a curl command: %q", s)
	}
	var c curlCommand
	for i := 1; i < len(words); i++ {
		arg := func() (string, error) {
			if i+1 >= len(words) {
				return "", fmt.Errorf("%s without a value", words[i])
			}
			i++
			return words[i], nil
		}
		switch w := words[i]; {
		case w == "-X" || w == "--request":
			if c.method, err = arg(); err != nil {
				return c, err
			}
		case w == "-H" || w == "--header":
			h, err := arg()
			if err != nil {
				return c, err
			}
			name, value, ok := strings.Cut(h, ":")
			if !ok {
				return c, fmt.Errorf("header %q has no colon", h)
			}
			c.headers = append(c.headers, [2]string{strings.TrimSpace(name), strings.TrimSpace(value)})
		case w == "-d" || w == "--data" || w == "--data-raw":
			if c.body, err = arg(); err != nil {
				return c, err
			}
		case w == "-N" || w == "--no-buffer" || w == "-s" || w == "--silent":
		case strings.HasPrefix(w, "-"):
			return c, fmt.Errorf("curl option %s is not understood by this test", w)
		default:
			c.url = w
		}
	}
	if c.method == "" {
		c.method = "GET"
		if c.body != "" {
			c.method = "POST"
		}
	}
	if c.url == "" {
		return c, fmt.Errorf("no URL in %q", s)
	}
	return c, nil
}

// TestSpecCurlExamplesSucceed runs every curl block of the API reference,
// in document order, against a real gateway whose four providers point at
// the mock upstream: the spec's hosts become the gateway's URL and its
// variables our platform, end-user and keys. Each must answer 2xx.
func TestSpecCurlExamplesSucceed(t *testing.T) {
	spec := specFile(t)
	mockURL, _ := mocktest.Start(t, mockllm.DefaultConfig())
	g := edgetest.Start(t, edgetest.Options{})
	pid, pkey := g.CreatePlatform(t, "spec")
	for _, p := range []string{"openai", "anthropic", "google", "xai"} {
		if r := g.Do(t, "PUT", "/admin/v1/platforms/"+pid+"/llm-providers/"+p, edgetest.AdminKey,
			map[string]any{"api_key": "sk-upstream-spec", "base_url": mockURL, "enabled": true}); r.Status != 200 {
			t.Fatalf("configure %s: %d %s", p, r.Status, r.Body)
		}
	}
	if r := g.Do(t, "POST", "/admin/v1/platforms/"+pid+"/wallet/topup", edgetest.AdminKey, map[string]any{"amount_usd": 100}); r.Status != 200 {
		t.Fatalf("wallet topup: %d %s", r.Status, r.Body)
	}
	uid, ukey := g.CreateEndUser(t, pid, pkey, "spec-user")
	if r := g.Do(t, "POST", "/v1/platforms/"+pid+"/end-users/"+uid+"/budget", pkey, map[string]any{"amount_usd": 10, "period": "monthly"}); r.Status != 201 {
		t.Fatalf("budget: %d %s", r.Status, r.Body)
	}
	vars := map[string]string{
		"ASSISTIV_PLATFORM_ID": pid, "ASSISTIV_PLATFORM_KEY": pkey,
		"END_USER_ID": uid, "END_USER_KEY": ukey,
	}
	cmds := specCurls(t, spec, vars)
	if len(cmds) < 10 {
		t.Fatalf("found %d curl examples in the spec, want at least 10: is the parser broken?", len(cmds))
	}
	client := &http.Client{Timeout: 30 * time.Second}
	for _, c := range cmds {
		u := c.url
		for _, host := range []string{"https://api.assistiv.ai", "https://mcp.assistiv.ai"} {
			if rest, ok := strings.CutPrefix(u, host); ok {
				u = g.URL + rest
			}
		}
		if !strings.HasPrefix(u, g.URL) {
			t.Fatalf("spec line %d: URL %s is on no known host", c.line, c.url)
		}
		req, err := http.NewRequest(c.method, u, strings.NewReader(c.body))
		if err != nil {
			t.Fatalf("spec line %d: %v", c.line, err)
		}
		for _, h := range c.headers {
			req.Header.Add(h[0], h[1])
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("spec line %d: %s %s: %v", c.line, c.method, u, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("spec line %d: reading the answer: %v", c.line, err)
		}
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			t.Errorf("spec line %d: %s %s = %d %s, want 2xx", c.line, c.method, c.url, resp.StatusCode, body)
			continue
		}
		if strings.Contains(string(body), `"error":{`) {
			t.Errorf("spec line %d: %s %s = %d with an error body %s", c.line, c.method, c.url, resp.StatusCode, body)
		}
		if strings.Contains(c.body, `"tools/list"`) && !strings.Contains(string(body), `"tools":[`) {
			t.Errorf("spec line %d: %s %s answered no tool list: %s", c.line, c.method, c.url, body)
		}
		t.Logf("spec line %d: %s %s = %d", c.line, c.method, c.url, resp.StatusCode)
	}
}

func TestShellWords(t *testing.T) {
	vars := map[string]string{"K": "k1", "ID": "p_1"}
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{`curl -X POST https://h/v1/$ID/x`, []string{"curl", "-X", "POST", "https://h/v1/p_1/x"}},
		{`-H "Authorization: Bearer $K"`, []string{"-H", "Authorization: Bearer k1"}},
		{`-d '{"a":"$K"}'`, []string{"-d", `{"a":"$K"}`}},
		{`"https://h/l?u=$ID&s=1"  x`, []string{"https://h/l?u=p_1&s=1", "x"}},
	} {
		got, err := shellWords(tc.in, vars)
		if err != nil || strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("shellWords(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if _, err := shellWords(`"$NOPE"`, vars); err == nil {
		t.Error("shellWords accepted an unknown variable")
	}
	if _, err := parseCurl(`curl -F x=1 https://h`, vars); err == nil {
		t.Error("parseCurl accepted an option it does not understand")
	}
}
