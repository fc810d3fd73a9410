package mcp_test

import (
	"slices"
	"testing"

	"github.com/assistiv/gateway/edge/edgetest"
)

type skillPage struct {
	Data []struct {
		ID         string `json:"id"`
		Visibility string `json:"visibility"`
		Files      []any  `json:"files"`
		FileCount  int    `json:"file_count"`
	} `json:"data"`
	HasMore    bool    `json:"has_more"`
	NextCursor *string `json:"next_cursor"`
}

// GET /v1/skills lists public skills and the caller's own private ones,
// oldest first, pages with an opaque cursor, filters by visibility, and
// never shows another platform's private skill.
func TestListSkillsShowsPublicAndOwnOnlyWithPaging(t *testing.T) {
	e := setupSkills(t, edgetest.Options{})
	_, archive := sampleSkill()
	pub := mustUpload(t, e.g, edgetest.AdminKey, "Public one", "for everyone", archive)
	var mine []string
	for _, n := range []string{"A one", "A two", "A three"} {
		mine = append(mine, mustUpload(t, e.g, e.pkeyA, n, "private to A", archive).ID)
	}
	theirs := mustUpload(t, e.g, e.pkeyB, "B one", "private to B", archive)

	all := func(key, query string) []string {
		t.Helper()
		var got []string
		cursor := ""
		for pages := 0; pages < 10; pages++ {
			path := "/v1/skills?limit=2" + query
			if cursor != "" {
				path += "&cursor=" + cursor
			}
			r := e.g.Do(t, "GET", path, key, nil)
			if r.Status != 200 {
				t.Fatalf("GET %s: %d %s", path, r.Status, r.Body)
			}
			var p skillPage
			r.JSON(t, &p)
			for _, s := range p.Data {
				if s.Files != nil || s.FileCount == 0 {
					t.Fatalf("list item %+v: want file_count and no file list", s)
				}
				got = append(got, s.ID)
			}
			if !p.HasMore {
				return got
			}
			cursor = *p.NextCursor
		}
		t.Fatal("more than 10 pages")
		return nil
	}
	wantA := append([]string{pub.ID}, mine...)
	for _, key := range []string{e.pkeyA, e.ukeyA} { // platform and end-user keys
		if got := all(key, ""); !slices.Equal(got, wantA) {
			t.Fatalf("platform A's list = %v, want %v", got, wantA)
		}
	}
	if got := all(e.pkeyB, ""); !slices.Equal(got, []string{pub.ID, theirs.ID}) {
		t.Fatalf("platform B's list = %v", got)
	}
	if got := all(e.pkeyA, "&visibility=private"); !slices.Equal(got, mine) {
		t.Fatalf("A's private list = %v, want %v", got, mine)
	}
	if got := all(e.pkeyA, "&visibility=public"); !slices.Equal(got, []string{pub.ID}) {
		t.Fatalf("A's public list = %v", got)
	}
	for _, bad := range []struct{ path, code string }{
		{"/v1/skills?visibility=secret", "invalid_field"},
		{"/v1/skills?cursor=!!", "invalid_cursor"},
		{"/v1/skills?cursor=" + "bm90LWEtc2tpbGw", "invalid_cursor"}, // base64 of "not-a-skill"
		{"/v1/skills?limit=0", "invalid_limit"},
	} {
		if r := e.g.Do(t, "GET", bad.path, e.pkeyA, nil); r.Status != 400 || r.ErrorCode() != bad.code {
			t.Errorf("GET %s: %d %s, want 400 %s", bad.path, r.Status, r.Body, bad.code)
		}
	}
	if r := e.g.Do(t, "GET", "/v1/skills", "", nil); r.Status != 401 {
		t.Errorf("GET /v1/skills without a key: %d", r.Status)
	}
}
