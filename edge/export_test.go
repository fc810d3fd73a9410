package edge

// RouteList returns the registered routes by method, so the tenancy tests
// in package edge_test cover every route, including ones added later.
func (s *Server) RouteList() map[string][]string { return s.router.List() }
