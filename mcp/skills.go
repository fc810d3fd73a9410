package mcp

import "github.com/mark3labs/mcp-go/server"

// skillTools returns the five skill tools (find_skill, fetch_skill,
// create_skill, delete_skill, submit_skill_review). Not built yet: the
// skills catalog is a later step; with none registered, /mcp/skills lists
// no tools.
func (s *Service) skillTools() []server.ServerTool { return nil }
