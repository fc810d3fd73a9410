package mcp_test

import (
	"crypto/rand"
	"strings"
	"testing"

	"github.com/assistiv/gateway/edge/edgetest"
	"github.com/assistiv/gateway/mcp"
	"github.com/assistiv/gateway/skills"
)

// A platform, and one end-user through create_skill, hit a clear 409 at
// their skill count and byte quotas, with nothing stored for the refused
// skill; deleting frees the quota; another platform is unaffected; public
// skills do not count.
func TestSkillQuotasPerPlatformAndEndUser(t *testing.T) {
	e := setupSkills(t, edgetest.Options{MCPConfig: func(c *mcp.Config) {
		c.SkillQuota = skills.Quota{MaxSkillsPerPlatform: 4, MaxBytesPerPlatform: 1 << 20, MaxSkillsPerEndUser: 2, MaxBytesPerEndUser: 2 << 10}
	}})
	small := func(n string) map[string]any {
		return map[string]any{"name": n, "files": []map[string]any{{"path": "SKILL.md", "content": "# " + n + "\n"}}}
	}
	// alice (an end-user of A) creates two skills, the third is refused.
	for _, n := range []string{"one", "two"} {
		mustCall(t, e.clientA, "create_skill", small(n))
	}
	r, err := callTool(t, e.clientA, "create_skill", small("three"))
	if err != nil || toolErrorCode(t, r) != "too_many_skills" {
		t.Fatalf("alice's third skill: %v %v, want the tool error too_many_skills", r, err)
	}
	// carol (same platform) is refused past her byte quota.
	carol := mcpClient(t, e.g.URL+"/mcp/skills", e.ukeyA2)
	big := map[string]any{"name": "big", "files": []map[string]any{{"path": "SKILL.md", "content": "# big\n" + strings.Repeat("x", 3<<10)}}}
	if r, err := callTool(t, carol, "create_skill", big); err != nil || toolErrorCode(t, r) != "skill_storage_full" {
		t.Fatalf("carol's 3 KiB skill: %v %v, want skill_storage_full", r, err)
	}

	// The platform itself: 2 of 4 used; two more, then 409.
	_, archive := sampleSkill()
	var last skills.View
	for _, n := range []string{"p1", "p2"} {
		last = mustUpload(t, e.g, e.pkeyA, n, "d", archive)
	}
	if r := upload(t, e.g, e.pkeyA, "p3", "d", archive); r.Status != 409 || r.ErrorCode() != "too_many_skills" {
		t.Fatalf("A's fifth skill: %d %s, want 409 too_many_skills", r.Status, r.Body)
	}
	blobs := countBlobs(t, e.g)
	// Another platform and the operator's public catalog are unaffected.
	mustUpload(t, e.g, e.pkeyB, "b1", "d", archive)
	mustUpload(t, e.g, edgetest.AdminKey, "public", "d", archive)
	// Deleting frees a slot.
	if r := e.g.Do(t, "DELETE", "/v1/skills/"+last.ID, e.pkeyA, nil); r.Status != 200 {
		t.Fatalf("delete: %d", r.Status)
	}
	mustUpload(t, e.g, e.pkeyA, "p3", "d", archive)

	// Bytes per platform: two incompressible 600 KiB skills exceed 1 MiB.
	e2 := setupSkills(t, edgetest.Options{MCPConfig: func(c *mcp.Config) {
		c.SkillQuota = skills.Quota{MaxSkillsPerPlatform: 10, MaxBytesPerPlatform: 1 << 20, MaxSkillsPerEndUser: 2, MaxBytesPerEndUser: 2 << 10}
	}})
	noise := func() []byte {
		b := make([]byte, 600<<10)
		_, _ = rand.Read(b)
		return b
	}
	a1 := makeZip(t, zipEntry{name: "SKILL.md", data: []byte("# n\n")}, zipEntry{name: "blob.bin", data: noise(), method: 0})
	a2 := makeZip(t, zipEntry{name: "SKILL.md", data: []byte("# m\n")}, zipEntry{name: "blob.bin", data: noise()})
	mustUpload(t, e2.g, e2.pkeyA, "n1", "d", a1)
	before := countBlobs(t, e2.g)
	if r := upload(t, e2.g, e2.pkeyA, "n2", "d", a2); r.Status != 409 || r.ErrorCode() != "skill_storage_full" {
		t.Fatalf("second 600 KiB skill: %d %s, want 409 skill_storage_full", r.Status, r.Body)
	}
	if got := countBlobs(t, e2.g); got != before {
		t.Fatalf("a refused skill left %d blobs behind", got-before)
	}
	if blobs == 0 {
		t.Fatal("no blobs were counted in the first gateway")
	}
}
