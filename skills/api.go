package skills

import (
	"encoding/base64"
	"errors"

	"github.com/assistiv/gateway/internal/ids"
)

// NewContent is one file of a skill to create: its path inside the skill
// folder and its bytes (checked by [Catalog.Create]).
func NewContent(path string, data []byte) Content { return Content{path: path, data: data} }

// Create checks name, description and files (paths, sizes, SKILL.md; the
// same rules as an archive) and stores them as a private skill of owner,
// created by the end-user creator ("" for the platform itself), within
// the quota.
func (c *Catalog) Create(owner ids.PlatformID, creator ids.EndUserID, name, description string, files []Content) (View, error) {
	if err := CheckMeta(name, description); err != nil {
		return View{}, err
	}
	if c.blobs == nil {
		return View{}, ErrUnavailable
	}
	if len(files) > c.cfg.Limits.MaxFiles {
		return View{}, refuse(400, ErrTooManyFiles.Code, "a skill holds at most %d files", c.cfg.Limits.MaxFiles)
	}
	files, err := CheckFiles(files, c.cfg.Limits)
	if err != nil {
		return View{}, err
	}
	r, err := c.create(owner, creator, name, description, files)
	if err != nil {
		return View{}, err
	}
	return c.skillView(r), nil
}

// FetchedFile is one file of a fetched skill: text as is, anything that is
// not UTF-8 text (or holds a NUL byte) as standard base64 with Base64 set.
type FetchedFile struct {
	Path    string `json:"path"`
	Size    int64  `json:"size"`
	SHA256  string `json:"sha256"`
	Base64  bool   `json:"base64,omitempty"`
	Content string `json:"content"`
}

// Fetched is a whole skill folder.
type Fetched struct {
	SkillID     string        `json:"skill_id"`
	Name        string        `json:"name"`
	Description string        `json:"description"`
	Files       []FetchedFile `json:"files"`
}

// Fetch returns every file of a skill viewer's platform may see, each
// checked against its digest.
func (c *Catalog) Fetch(viewer ids.PlatformID, id string) (Fetched, error) {
	if c.blobs == nil {
		return Fetched{}, ErrUnavailable
	}
	r, err := c.visibleSkill(viewer, id)
	if err != nil {
		return Fetched{}, err
	}
	out := Fetched{SkillID: r.ID, Name: r.Name, Description: r.Description, Files: make([]FetchedFile, 0, len(r.Files))}
	for _, f := range r.Files {
		data, err := c.blobs.get(f.SHA256)
		if err != nil {
			if _, again := c.loadSkill(id); errors.Is(again, ErrNotFound) {
				return Fetched{}, ErrNotFound // deleted while we read
			}
			return Fetched{}, err
		}
		ff := FetchedFile{Path: f.Path, Size: f.Size, SHA256: f.SHA256}
		if isText(data) {
			ff.Content = string(data)
		} else {
			ff.Base64, ff.Content = true, base64.StdEncoding.EncodeToString(data)
		}
		out.Files = append(out.Files, ff)
	}
	return out, nil
}

// Review records (or replaces) the end-user's review of a skill its
// platform may see and returns the skill's new scorecard. scores are
// correctness, clarity, safety and usefulness, each 1..5.
func (c *Catalog) Review(pid ids.PlatformID, eid ids.EndUserID, id string, scores [4]int64, text string) (Scorecard, error) {
	for _, v := range scores {
		if v < 1 || v > 5 {
			return Scorecard{}, invalidf("scores must be integers from 1 to 5")
		}
	}
	r, err := c.review(pid, eid, id, scores, text)
	if err != nil {
		return Scorecard{}, err
	}
	return c.skillView(r).Scorecard, nil
}
