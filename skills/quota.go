package skills

import (
	"errors"
	"fmt"

	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/persistence"
)

// Quota bounds what one platform (and one of its end-users, through
// the create_skill tool) may store in the catalog. Public skills (the
// operator's) are not counted. A refusal is a [*Error] with status
// 409 and code too_many_skills or skill_storage_full; deleting skills
// frees the quota.
type Quota struct {
	// MaxSkillsPerPlatform bounds a platform's private skills. Default
	// 1000, range 1..100000.
	MaxSkillsPerPlatform int
	// MaxBytesPerPlatform bounds the sum of a platform's skills' file
	// sizes (uncompressed, before deduplication). Default 1 GiB, range
	// 1 MiB..1 TiB.
	MaxBytesPerPlatform int64
	// MaxSkillsPerEndUser bounds the skills one end-user created with the
	// create_skill tool. Default 50, range 1..MaxSkillsPerPlatform.
	MaxSkillsPerEndUser int
	// MaxBytesPerEndUser bounds their total size. Default 100 MiB, range
	// 1 KiB..MaxBytesPerPlatform.
	MaxBytesPerEndUser int64
}

// DefaultQuota returns the defaults documented on [Quota].
func DefaultQuota() Quota {
	return Quota{MaxSkillsPerPlatform: 1000, MaxBytesPerPlatform: 1 << 30, MaxSkillsPerEndUser: 50, MaxBytesPerEndUser: 100 << 20}
}

// Validate reports the first invalid field.
func (q Quota) Validate() error {
	switch {
	case q.MaxSkillsPerPlatform < 1 || q.MaxSkillsPerPlatform > 100000:
		return fmt.Errorf("mcp: Quota.MaxSkillsPerPlatform %d out of range 1..100000", q.MaxSkillsPerPlatform)
	case q.MaxBytesPerPlatform < 1<<20 || q.MaxBytesPerPlatform > 1<<40:
		return fmt.Errorf("mcp: Quota.MaxBytesPerPlatform %d out of range 1MiB..1TiB", q.MaxBytesPerPlatform)
	case q.MaxSkillsPerEndUser < 1 || q.MaxSkillsPerEndUser > q.MaxSkillsPerPlatform:
		return fmt.Errorf("mcp: Quota.MaxSkillsPerEndUser %d out of range 1..MaxSkillsPerPlatform", q.MaxSkillsPerEndUser)
	case q.MaxBytesPerEndUser < 1<<10 || q.MaxBytesPerEndUser > q.MaxBytesPerPlatform:
		return fmt.Errorf("mcp: Quota.MaxBytesPerEndUser %d out of range 1KiB..MaxBytesPerPlatform", q.MaxBytesPerEndUser)
	}
	return nil
}

// Quota refusals, for errors.Is.
var (
	ErrTooManySkills = &Error{Code: "too_many_skills"}
	ErrStorageFull   = &Error{Code: "skill_storage_full"}
)

// checkQuotaLocked refuses a new skill of size bytes by owner (creator
// "": the platform itself) past the quota. The caller holds skillMu, so
// the usage it reads cannot change before the skill commits. Linear in
// the owner's skills, which the quota bounds.
func (c *Catalog) checkQuotaLocked(owner ids.PlatformID, creator ids.EndUserID, size int64) error {
	if owner == "" {
		return nil // public skills: the operator's catalog
	}
	q := c.cfg.Quota
	var n, nUser int
	var bytes, bytesUser int64
	prefix := persistence.SkillOwnerPrefix(string(owner))
	var idsOf []string
	if err := c.store.ScanPrefix(prefix, false, func(k, _ []byte) bool {
		idsOf = append(idsOf, string(k[len(prefix):]))
		return true
	}); err != nil {
		return err
	}
	for _, id := range idsOf {
		r, err := c.loadSkill(id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		var sz int64
		for _, f := range r.Files {
			sz += f.Size
		}
		n, bytes = n+1, bytes+sz
		if creator != "" && r.Creator == string(creator) {
			nUser, bytesUser = nUser+1, bytesUser+sz
		}
	}
	switch {
	case n+1 > q.MaxSkillsPerPlatform:
		return refuse(409, ErrTooManySkills.Code, "the platform has %d private skills, the most it may hold; delete one first", n)
	case bytes+size > q.MaxBytesPerPlatform:
		return refuse(409, ErrStorageFull.Code, "the platform's skills would take %d bytes, over its %d-byte quota", bytes+size, q.MaxBytesPerPlatform)
	case creator != "" && nUser+1 > q.MaxSkillsPerEndUser:
		return refuse(409, ErrTooManySkills.Code, "this end-user created %d skills, the most one end-user may; delete one first", nUser)
	case creator != "" && bytesUser+size > q.MaxBytesPerEndUser:
		return refuse(409, ErrStorageFull.Code, "this end-user's skills would take %d bytes, over the %d-byte quota", bytesUser+size, q.MaxBytesPerEndUser)
	}
	return nil
}
