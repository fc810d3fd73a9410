package whsig

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportsNothingOfOurs keeps the package a leaf (style.md §1): security
// primitives must not pull in the gateway's state or transport.
func TestImportsNothingOfOurs(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not found")
	}
	out, err := exec.Command(goBin, "list", "-deps", "-f", "{{.ImportPath}}", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	const self = "github.com/assistiv/gateway/webhooks/whsig"
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "github.com/assistiv/gateway/") && dep != self {
			t.Errorf("%s imports %s; it must import nothing of ours", self, dep)
		}
	}
}
