// Architecture tests: the dependency direction of style.md §1 and the
// package documentation of §9, checked on every `make test`.
package gateway_test

import (
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/assistiv/gateway"

// rule forbids packages under from to depend (directly or not) on any
// package under one of the listed prefixes.
type rule struct {
	from   string
	forbid []string
	why    string
	allow  []string // exceptions under a forbidden prefix
}

var rules = []rule{
	{"internal/", []string{""}, "internal packages are leaves: they import nothing of ours", nil},
	{"persistence", []string{"actors", "edge", "cluster", "providers", "mcp", "oauthconn", "skills", "webhooks", "logs", "cmd", "bench", "mockllm"}, "persistence imports no sibling", nil},
	{"providers", []string{"actors", "edge", "cluster", "persistence", "mcp", "oauthconn", "skills", "webhooks", "logs", "cmd", "bench", "mockllm"}, "providers are pure translation + client; they import no sibling", nil},
	{"actors", []string{"cluster", "edge", "cmd", "mcp", "oauthconn", "skills", "webhooks", "logs", "bench"}, "actors never import cluster or edge; feature homes call actors, not the reverse", nil},
	{"cluster", []string{"edge", "cmd"}, "nothing imports edge or cmd", nil},
	{"mcp", []string{"edge", "cmd"}, "feature homes never import edge", nil},
	{"mcp/apps", []string{"mcp", "oauthconn", "actors", "edge", "cmd", "persistence", "skills", "logs", "webhooks", "cluster", "providers", "bench", "mockllm"}, "app clients know only their spec, their call and the app's API; the MCP server registers them", nil},
	{"oauthconn", []string{"mcp", "actors", "edge", "cmd", "skills", "logs", "webhooks", "cluster", "providers", "bench", "mockllm"}, "the OAuth connections know the app specs (mcp/apps) and the store, not the MCP server that uses them", []string{"mcp/apps"}},
	{"skills", []string{"actors", "edge", "cmd", "mcp", "oauthconn", "cluster", "providers", "webhooks", "logs", "bench", "mockllm"}, "the skill catalog stands on persistence alone; mcp serves it as tools, the edge as REST", nil},
	{"webhooks", []string{"edge", "cmd"}, "feature homes never import edge", nil},
	{"logs", []string{"edge", "cmd"}, "feature homes never import edge", nil},
	{"mockllm", []string{"actors", "edge", "cluster", "persistence", "cmd", "mcp", "oauthconn", "skills", "webhooks", "logs"}, "the mock upstream stands alone", nil},
	{"edge", []string{"cmd", "dashboard", "cluster"}, "nothing imports cmd; the dashboard sits above the edge; the edge knows nothing of the cluster (actors.Directory and actors.Peers are its interfaces)", nil},
	{"dashboard", []string{"cmd"}, "the dashboard calls the edge in-process; only cmd wires it", nil},
	{"payments", []string{"edge", "cmd", "cluster", "mcp", "oauthconn", "skills", "webhooks", "logs", "bench", "mockllm", "dashboard"}, "payments talks to Stripe only; the platform actor records", nil},
}

func TestDependencyDirection(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Deps}} {{.}}{{end}}`, "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], module+"/")
		for _, r := range rules {
			if !under(pkg, r.from) {
				continue
			}
			checked++
			for _, dep := range fields[1:] {
				if !strings.HasPrefix(dep, module+"/") {
					continue
				}
				d := strings.TrimPrefix(dep, module+"/")
				for _, f := range r.forbid {
					if f == "" && !under(d, r.from) && !under(d, "internal/") {
						t.Errorf("%s imports %s: %s", pkg, d, r.why)
					}
					if f != "" && under(d, f) && !under(d, r.from) && !allowed(d, r.allow) {
						t.Errorf("%s imports %s: %s", pkg, d, r.why)
					}
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no package matched any rule; is the module path right?")
	}
}

// allowed reports whether d is under one of the exceptions.
func allowed(d string, allow []string) bool {
	for _, a := range allow {
		if under(d, a) {
			return true
		}
	}
	return false
}

// under reports whether pkg is prefix or inside it ("edge" matches
// "edge/edgetest" but not "edgex").
func under(pkg, prefix string) bool {
	prefix = strings.TrimSuffix(prefix, "/")
	return pkg == prefix || strings.HasPrefix(pkg, prefix+"/")
}

func TestEveryPackageHasADocComment(t *testing.T) {
	dirs := map[string]bool{}
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "bin" || d.Name() == "data" || d.Name() == "node_modules") && path != "." {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			dirs[filepath.Dir(path)] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for dir := range dirs {
		pkgs, err := parser.ParseDir(token.NewFileSet(), dir, func(fi os.FileInfo) bool {
			return !strings.HasSuffix(fi.Name(), "_test.go")
		}, parser.ParseComments|parser.PackageClauseOnly)
		if err != nil {
			t.Errorf("parse %s: %v", dir, err)
			continue
		}
		for name, p := range pkgs {
			documented := false
			for _, f := range p.Files {
				if f.Doc != nil && strings.TrimSpace(f.Doc.Text()) != "" {
					documented = true
				}
			}
			if !documented {
				t.Errorf("package %s in %s has no package doc comment (style.md §9)", name, dir)
			}
		}
	}
}

// TestNoMergeConflictMarkers: no tracked file keeps the markers of an
// unresolved merge (one README did, unnoticed, for a session).
func TestNoMergeConflictMarkers(t *testing.T) {
	out, err := exec.Command("git", "ls-files").Output()
	if err != nil {
		t.Skipf("not a git checkout: %v", err)
	}
	for _, f := range strings.Fields(string(out)) {
		switch filepath.Ext(f) {
		case ".go", ".md", ".sh", ".ts", ".js", ".yaml", ".yml", ".proto", ".html", ".css", "":
		default:
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			continue // deleted in the working tree
		}
		for i, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "<<<<<<< ") || strings.HasPrefix(line, ">>>>>>> ") {
				t.Errorf("%s:%d: merge conflict marker %q", f, i+1, line)
			}
		}
	}
}
