package mcp

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/assistiv/gateway/actors"
	"github.com/assistiv/gateway/mcp/apps"
	"github.com/assistiv/gateway/skills"
)

// skillTools returns the five skill tools. The tool filter shows them only
// when the caller's platform has skills_enabled (on /mcp and /mcp/skills
// alike); every call counts against the end-user's request rate limit and
// sees public skills and its own platform's private skills only.
func (s *Service) skillTools() []server.ServerTool {
	review := mcpgo.NewTool("submit_skill_review",
		mcpgo.WithDescription("Review a skill you used. Score each of the four dimensions from 1 (poor) to 5 (excellent). One review per end-user and skill: submitting again replaces your earlier review."),
		mcpgo.WithString("skill_id", mcpgo.Required(), mcpgo.MaxLength(64), mcpgo.Description("The skill's id")),
		mcpgo.WithString("text", mcpgo.MaxLength(4000), mcpgo.Description("What worked and what did not (optional)")),
		apps.Writes)
	dims := map[string]any{}
	for _, d := range skills.ReviewDims {
		dims[d] = map[string]any{"type": "integer", "minimum": 1, "maximum": 5, "description": "Score for " + d + ", 1 to 5"}
	}
	review.InputSchema.Properties["scores"] = map[string]any{
		"type": "object", "properties": dims, "required": skills.ReviewDims[:], "additionalProperties": false,
		"description": "Scores from 1 to 5 for correctness, clarity, safety and usefulness",
	}
	review.InputSchema.Required = append(review.InputSchema.Required, "scores")

	fileItem := map[string]any{
		"type": "object",
		"properties": map[string]any{
			"path":    map[string]any{"type": "string", "maxLength": 512, "description": "Path inside the skill folder, '/'-separated, e.g. SKILL.md or scripts/run.py"},
			"content": map[string]any{"type": "string", "description": "The file's contents: text, or standard base64 when base64 is true"},
			"base64":  map[string]any{"type": "boolean", "description": "content is base64 (for binary files)"},
		},
		"required": []string{"path", "content"},
	}
	return []server.ServerTool{
		{Tool: mcpgo.NewTool("find_skill",
			mcpgo.WithDescription("Search the skill catalog (public skills and your platform's private skills) by name, description and SKILL.md. Results are ranked by relevance, then reviews."),
			mcpgo.WithString("query", mcpgo.MaxLength(500), mcpgo.Description("Words to look for; empty lists every skill by reviews")),
			mcpgo.WithNumber("limit", mcpgo.Min(1.0), mcpgo.Max(50.0), mcpgo.Description("Results to return, 1-50 (default 10)")),
			apps.ReadOnly), Handler: s.skillHandler("find_skill", s.toolFindSkill)},
		{Tool: mcpgo.NewTool("fetch_skill",
			mcpgo.WithDescription("Download a skill's whole folder: every file's path and contents (text as is; binary files base64 with base64=true)."),
			mcpgo.WithString("skill_id", mcpgo.Required(), mcpgo.MaxLength(64), mcpgo.Description("The skill's id, from find_skill")),
			apps.ReadOnly), Handler: s.skillHandler("fetch_skill", s.toolFetchSkill)},
		{Tool: mcpgo.NewTool("create_skill",
			mcpgo.WithDescription("Create a private skill for your platform from files. It needs a SKILL.md at its root."),
			mcpgo.WithString("name", mcpgo.Required(), mcpgo.MaxLength(100), mcpgo.Description("Skill name")),
			mcpgo.WithString("description", mcpgo.MaxLength(2000), mcpgo.Description("Short description of what the skill does")),
			mcpgo.WithArray("files", mcpgo.Required(), mcpgo.MinItems(1), mcpgo.Items(fileItem), mcpgo.Description("The skill's files")),
			apps.Writes), Handler: s.skillHandler("create_skill", s.toolCreateSkill)},
		{Tool: mcpgo.NewTool("delete_skill",
			mcpgo.WithDescription("Delete one of your platform's private skills."),
			mcpgo.WithString("skill_id", mcpgo.Required(), mcpgo.MaxLength(64), mcpgo.Description("The skill's id")),
			mcpgo.WithDestructiveHintAnnotation(true), apps.Writes), Handler: s.skillHandler("delete_skill", s.toolDeleteSkill)},
		{Tool: review, Handler: s.skillHandler("submit_skill_review", s.toolReview)},
	}
}

type skillRun func(ctx context.Context, p actors.Principal, a apps.Args) (any, error)

func (s *Service) skillHandler(name string, run skillRun) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
		r := requestFrom(ctx)
		if r == nil {
			return nil, errors.New("mcp: request without principal")
		}
		start := time.Now()
		res, out := s.countCall(ctx, r.p)
		if res == nil {
			res, out = s.runSkillTool(ctx, r.p, name, run, apps.ArgsOf(req))
		}
		s.logCall(r.p, skillsApp, name, start, out)
		return res, nil
	}
}

func (s *Service) runSkillTool(ctx context.Context, p actors.Principal, name string, run skillRun, a apps.Args) (*mcpgo.CallToolResult, callOutcome) {
	if !s.skills.Available() {
		return toolError("unavailable", "the skill catalog is not configured on this gateway"), callOutcome{503, "unavailable"}
	}
	v, err := run(ctx, p, a)
	var se *skills.Error
	switch {
	case err == nil:
		return toolJSON(v), callOutcome{status: 200}
	case errors.Is(err, skills.ErrNotFound):
		return toolError("not_found", "no such skill"), callOutcome{404, "not_found"}
	case errors.Is(err, skills.ErrNotOwned):
		return toolError("forbidden", "only the operator may change a public skill; you may delete your platform's private skills"), callOutcome{403, "forbidden"}
	case errors.Is(err, ErrInvalid):
		return toolError("invalid_arguments", "%s", strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": ")), callOutcome{400, "invalid_arguments"}
	case errors.Is(err, skills.ErrInvalid):
		return toolError("invalid_arguments", "%s", strings.TrimPrefix(err.Error(), skills.ErrInvalid.Error()+": ")), callOutcome{400, "invalid_arguments"}
	case errors.As(err, &se):
		return toolError(se.Code, "%s", se.Message), callOutcome{se.Status, se.Code}
	default:
		s.log.Error("skill tool failed", "tool", name, "err", err)
		return toolError("internal_error", "the skill catalog failed; retry later"), callOutcome{500, "internal_error"}
	}
}

func (s *Service) toolFindSkill(_ context.Context, p actors.Principal, a apps.Args) (any, error) {
	q, err := a.Str("query", false, 500)
	if err != nil {
		return nil, err
	}
	limit, err := a.Integer("limit", 10, 1, 50, false)
	if err != nil {
		return nil, err
	}
	hits, err := s.skills.Find(p.Platform, q, int(limit))
	if err != nil {
		return nil, err
	}
	if hits == nil {
		hits = []skills.Hit{}
	}
	return map[string]any{"skills": hits}, nil
}

func (s *Service) toolFetchSkill(_ context.Context, p actors.Principal, a apps.Args) (any, error) {
	id, err := a.Str("skill_id", true, 64)
	if err != nil {
		return nil, err
	}
	return s.skills.Fetch(p.Platform, id)
}

func (s *Service) toolCreateSkill(_ context.Context, p actors.Principal, a apps.Args) (any, error) {
	name, err := a.Str("name", true, 100)
	if err != nil {
		return nil, err
	}
	desc, err := a.Str("description", false, 2000)
	if err != nil {
		return nil, err
	}
	list, ok := a.M["files"].([]any)
	if !ok || len(list) == 0 {
		return nil, invalidf("files must be a non-empty list of {path, content}")
	}
	if max := s.skills.Limits().MaxFiles; len(list) > max {
		return nil, &skills.Error{Status: 400, Code: skills.ErrTooManyFiles.Code, Message: fmt.Sprintf("a skill holds at most %d files", max)}
	}
	files := make([]skills.Content, 0, len(list))
	for i, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, invalidf("files[%d] must be an object {path, content}", i)
		}
		fa := apps.Args{M: m}
		path, err := fa.Str("path", true, 512)
		if err != nil {
			return nil, invalidf("files[%d].path must be a non-empty string of at most 512 bytes", i)
		}
		content, ok := m["content"].(string)
		if !ok {
			return nil, invalidf("files[%d].content must be a string", i)
		}
		b64, err := fa.Boolean("base64", false)
		if err != nil {
			return nil, err
		}
		data := []byte(content)
		if b64 {
			if data, err = base64.StdEncoding.DecodeString(content); err != nil {
				return nil, invalidf("files[%d].content is not valid base64", i)
			}
		}
		files = append(files, skills.NewContent(path, data))
	}
	return s.skills.Create(p.Platform, p.EndUser, name, desc, files)
}

func (s *Service) toolDeleteSkill(_ context.Context, p actors.Principal, a apps.Args) (any, error) {
	id, err := a.Str("skill_id", true, 64)
	if err != nil {
		return nil, err
	}
	if err := s.skills.Delete(p.Platform, id); err != nil {
		return nil, err
	}
	return map[string]any{"skill_id": id, "deleted": true}, nil
}

func (s *Service) toolReview(_ context.Context, p actors.Principal, a apps.Args) (any, error) {
	id, err := a.Str("skill_id", true, 64)
	if err != nil {
		return nil, err
	}
	text, err := a.Str("text", false, 4000)
	if err != nil {
		return nil, err
	}
	m, ok := a.M["scores"].(map[string]any)
	if !ok {
		return nil, invalidf("scores must be an object with correctness, clarity, safety and usefulness")
	}
	var scores [4]int64
	for i, d := range skills.ReviewDims {
		if scores[i], err = (apps.Args{M: m}).Integer(d, 0, 1, 5, true); err != nil {
			return nil, invalidf("scores.%s must be an integer from 1 to 5", d)
		}
	}
	sc, err := s.skills.Review(p.Platform, p.EndUser, id, scores, text)
	if err != nil {
		return nil, err
	}
	return map[string]any{"skill_id": id, "scorecard": sc}, nil
}
