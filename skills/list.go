package skills

import (
	"errors"
	"sort"

	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/persistence"
)

// Filter selects which visible skills List returns.
type Filter struct {
	// Visibility is "public", "private" or "" (both).
	Visibility string
	// After is the id of the last skill of the previous page ("" for the
	// first page).
	After string
	// Limit is the page size, at least 1.
	Limit int
}

// List returns the skills viewer's platform may see (public ones and
// its own private ones), oldest first by id, without their file lists
// (GET /v1/skills/{id} has them), and whether more follow. It reads the
// two owner indexes; cost is linear in what viewer may see, which the
// per-platform skill count bounds.
func (c *Catalog) List(viewer ids.PlatformID, f Filter) ([]View, bool, error) {
	if f.Visibility != "" && f.Visibility != "public" && f.Visibility != "private" {
		return nil, false, invalidf("visibility must be public or private")
	}
	if f.After != "" && !ids.Valid(IDPrefix, f.After) {
		return nil, false, invalidf("cursor is not a skill id")
	}
	var owners []string
	if f.Visibility != "private" {
		owners = append(owners, "")
	}
	if f.Visibility != "public" && viewer != "" {
		owners = append(owners, string(viewer))
	}
	var all []string
	for _, owner := range owners {
		prefix := persistence.SkillOwnerPrefix(owner)
		err := c.store.ScanPrefix(prefix, false, func(k, _ []byte) bool {
			if id := string(k[len(prefix):]); id > f.After {
				all = append(all, id)
			}
			return true
		})
		if err != nil {
			return nil, false, err
		}
	}
	sort.Strings(all)
	out := make([]View, 0, min(len(all), f.Limit))
	for _, id := range all {
		if len(out) == f.Limit {
			return out, true, nil
		}
		r, err := c.loadSkill(id)
		if errors.Is(err, ErrNotFound) {
			continue // deleted since the scan
		}
		if err != nil {
			return nil, false, err
		}
		v := c.skillView(r)
		v.Files = nil
		out = append(out, v)
	}
	return out, false, nil
}
