package edge

import (
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/assistiv/gateway/actors"
)

// Caller is who an in-process request acts as: the operator (Admin) or a
// principal, exactly as if its key had been presented. The dashboard uses
// it so every page goes through the same routes, validation, idempotency
// and tenant isolation as the REST API, without holding raw keys.
type Caller struct {
	Admin     bool
	Principal actors.Principal
}

// callerKey keys the in-process caller in a request's user values. User
// values are set only in-process, never from the wire, so a network
// request can never carry one.
type callerKey struct{}

// ServeInternal answers ctx through the gateway's own router as caller.
// The Authorization header is ignored on such a request.
func (s *Server) ServeInternal(ctx *fasthttp.RequestCtx, caller Caller) {
	ctx.SetUserValue(callerKey{}, caller)
	s.handle(ctx)
}

// mount is a handler serving a path prefix beside the router.
type mount struct {
	prefix string
	h      fasthttp.RequestHandler
}

// Mount serves every method under prefix (the path itself and everything
// below it) with h, on the gateway's listener. Call it before Serve.
func (s *Server) Mount(prefix string, h fasthttp.RequestHandler) {
	s.mounts = append(s.mounts, mount{prefix: strings.TrimSuffix(prefix, "/"), h: h})
}

// mounted returns the mount serving path, if any.
func (s *Server) mounted(path []byte) (mount, bool) {
	for _, m := range s.mounts {
		if string(path) == m.prefix || (len(path) > len(m.prefix) && string(path[:len(m.prefix)]) == m.prefix && path[len(m.prefix)] == '/') {
			return m, true
		}
	}
	return mount{}, false
}

func internalCaller(ctx *fasthttp.RequestCtx) (Caller, bool) {
	c, ok := ctx.UserValue(callerKey{}).(Caller)
	return c, ok
}
