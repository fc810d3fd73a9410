// Package dashboard is the gateway's web console at /dashboard: server-
// rendered HTML (html/template, assets embedded with go:embed, one small
// script of our own under a strict Content-Security-Policy) for operators
// and platform team members.
//
// There is no second path to the data: every page reads and writes through
// the gateway's own REST routes, answered in-process by the edge's router
// (edge.Server.ServeInternal) as the signed-in caller, so validation,
// idempotency, tenant isolation and errors are the API's. The dashboard
// owns only its own records: team members, invites and sessions, kept in
// Pebble under persistence.FamilyDashboard by [Accounts].
package dashboard
