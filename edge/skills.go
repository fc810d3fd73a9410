package edge

import (
	"errors"
	"strings"

	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/skills"
)

// skillRoutes mounts the skill catalog's REST routes. Uploads are bounded
// first by the server's body limit (413 request_too_large), then by the
// MCP service's skill limits.
func (s *Server) skillRoutes(r routeTable) {
	r.POST("/admin/v1/skills", s.adminOnly(s.uploadSkill))
	r.DELETE("/admin/v1/skills/{skillId}", s.adminOnly(s.deleteSkill))
	r.POST("/v1/skills", s.withKey(s.uploadSkill, ids.KindPlatform))
	r.GET("/v1/skills", s.withKey(s.listSkills, ids.KindPlatform, ids.KindEndUser))
	r.GET("/v1/skills/{skillId}", s.withKey(s.getSkill, ids.KindPlatform, ids.KindEndUser))
	r.DELETE("/v1/skills/{skillId}", s.withKey(s.deleteSkill, ids.KindPlatform))
}

// skillError maps the skill catalog's errors to API errors.
func skillError(err error) error {
	var se *skills.Error
	switch {
	case errors.Is(err, skills.ErrNotFound):
		return &apiError{Status: 404, Type: typeNotFound, Code: "skill_not_found", Message: "no such skill"}
	case errors.Is(err, skills.ErrNotOwned):
		return &apiError{Status: 403, Type: typePerm, Code: "skill_not_owned", Message: "public skills are managed by the operator; a platform deletes only its private skills"}
	case errors.Is(err, skills.ErrUnavailable):
		return &apiError{Status: 503, Type: typeInternal, Code: "skills_unavailable", Message: "the skill catalog is not configured on this gateway"}
	case errors.Is(err, skills.ErrInvalid):
		return errBadRequest("invalid_field", "%s", strings.TrimPrefix(err.Error(), skills.ErrInvalid.Error()+": "))
	case errors.As(err, &se):
		return &apiError{Status: se.Status, Type: typeInvalid, Code: se.Code, Message: se.Message}
	}
	return err
}

type skillIn struct {
	Name          string `json:"name"`
	Description   string `json:"description"`
	ArchiveBase64 string `json:"archive_base64"`
}

// uploadSkill creates a private skill (platform key) or a public one
// (admin key) from a base64 zip archive of the skill folder.
func (s *Server) uploadSkill(c *call) error {
	var in skillIn
	if err := c.decodeJSON(&in, false); err != nil {
		return err
	}
	owner := c.principal.Platform // "" for the operator: public
	v, err := s.deps.MCP.Skills().Upload(owner, skills.Input{Name: in.Name, Description: in.Description, ArchiveBase64: in.ArchiveBase64})
	if err != nil {
		return skillError(err)
	}
	return c.writeJSON(201, v)
}

func (s *Server) getSkill(c *call) error {
	v, err := s.deps.MCP.Skills().Get(c.principal.Platform, c.param("skillId"))
	if err != nil {
		return skillError(err)
	}
	return c.writeJSON(200, v)
}

func (s *Server) deleteSkill(c *call) error {
	id := c.param("skillId")
	if err := s.deps.MCP.Skills().Delete(c.principal.Platform, id); err != nil {
		return skillError(err)
	}
	return c.writeJSON(200, map[string]any{"object": "skill", "id": id, "deleted": true})
}

// listSkills lists the skills the caller's platform may see (public and
// its own private ones), oldest first, ?visibility=public|private,
// ?limit= (default 20, at most 100) and the opaque ?cursor=.
func (s *Server) listSkills(c *call) error {
	limit, err := c.limit(20, 100)
	if err != nil {
		return err
	}
	f := skills.Filter{Visibility: string(c.ctx.QueryArgs().Peek("visibility")), Limit: limit}
	if cur := c.ctx.QueryArgs().Peek("cursor"); len(cur) > 0 {
		after, err := decodeCursor(string(cur))
		if err != nil {
			return err
		}
		if !ids.Valid(skills.IDPrefix, string(after)) {
			return errBadRequest("invalid_cursor", "cursor is not one this API returned")
		}
		f.After = string(after)
	}
	list, more, err := s.deps.MCP.Skills().List(c.principal.Platform, f)
	if err != nil {
		return skillError(err)
	}
	out := listJSON[skills.View]{Object: "list", Data: list, HasMore: more}
	if more && len(list) > 0 {
		out.NextCursor = encodeCursor([]byte(list[len(list)-1].ID))
	}
	return c.writeJSON(200, out)
}
