package mcp

import (
	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/persistence"
)

// PlatformSkills lists the private skills a platform owns, oldest id first
// (ids sort by creation time).
func (s *Service) PlatformSkills(owner ids.PlatformID) ([]SkillView, error) {
	if owner == "" {
		return nil, ErrInvalid
	}
	var skillIDs []string
	p := persistence.SkillOwnerPrefix(string(owner))
	err := s.store.ScanPrefix(p, false, func(k, _ []byte) bool {
		skillIDs = append(skillIDs, string(k[len(p):]))
		return true
	})
	if err != nil {
		return nil, err
	}
	out := make([]SkillView, 0, len(skillIDs))
	for _, id := range skillIDs {
		r, err := s.loadSkill(id)
		if err == ErrSkillNotFound {
			continue // deleted between the scan and the load
		}
		if err != nil {
			return nil, err
		}
		out = append(out, s.skillView(r))
	}
	return out, nil
}
