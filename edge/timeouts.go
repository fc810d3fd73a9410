package edge

import (
	"bytes"
	"time"

	"github.com/valyala/fasthttp"
)

// longWritePaths are the routes whose answers may stream for as long as
// an upstream call (or an MCP exchange) lasts.
var longWritePaths = [][]byte{[]byte("/v1/chat/completions"), []byte("/v1/responses"), []byte("/mcp"), []byte("/mcp/skills")}

// headerConfig is fasthttp's HeaderReceived hook: the streaming routes get
// a write timeout of UpstreamTimeout + 1 min instead of WriteTimeout. The
// route is matched on the path alone, so a query string (or a fragment)
// does not cut a stream at WriteTimeout.
func (s *Server) headerConfig(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	if isLongWrite(h.RequestURI()) {
		return fasthttp.RequestConfig{WriteTimeout: s.cfg.UpstreamTimeout + time.Minute}
	}
	return fasthttp.RequestConfig{}
}

// isLongWrite reports whether a request URI's path is a streaming route.
func isLongWrite(uri []byte) bool {
	if i := bytes.IndexAny(uri, "?#"); i >= 0 {
		uri = uri[:i]
	}
	for _, p := range longWritePaths {
		if bytes.Equal(uri, p) {
			return true
		}
	}
	return false
}
