package mcp

// SessionCount is how many MCP sessions the list_changed index holds.
func (s *Service) SessionCount() int { return s.sessions.len() }
