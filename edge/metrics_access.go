package edge

import (
	"crypto/sha256"
	"crypto/subtle"

	"github.com/valyala/fasthttp"
)

// metricsRoute is GET /metrics on the main listener. The series name
// tenants' routes and volumes, so it is not public:
//
//   - with Config.MetricsSeparate (ASSISTIV_METRICS_LISTEN set), the
//     metrics live only on their own listener ([Server.MetricsHandler])
//     and this route answers 404;
//   - otherwise it takes the operator's admin key, or the token whose
//     digest is Config.MetricsTokenDigest (ASSISTIV_METRICS_TOKEN), as a
//     bearer token; anything else is 401.
func (s *Server) metricsRoute() fasthttp.RequestHandler {
	serve := s.MetricsHandler()
	return s.wrap(func(c *call) error {
		if s.cfg.MetricsSeparate {
			return &apiError{Status: 404, Type: typeNotFound, Code: "route_not_found", Message: "metrics are served on the metrics listener (ASSISTIV_METRICS_LISTEN)"}
		}
		raw, err := bearer(c.ctx)
		if err != nil {
			return err
		}
		d := sha256.Sum256([]byte(raw))
		admin := subtle.ConstantTimeCompare(d[:], s.cfg.AdminKeyDigest[:]) == 1
		token := s.cfg.MetricsTokenDigest != [32]byte{} && subtle.ConstantTimeCompare(d[:], s.cfg.MetricsTokenDigest[:]) == 1
		if !admin && !token {
			return errInvalidKey
		}
		serve(c.ctx)
		return nil
	})
}

// MetricsHandler serves the Prometheus metrics without authentication,
// for the separate metrics listener (bind it to loopback or a private
// network).
func (s *Server) MetricsHandler() fasthttp.RequestHandler { return s.metricsHandler() }
