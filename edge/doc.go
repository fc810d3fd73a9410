// Package edge is the gateway's HTTP front: a fasthttp server and router,
// authentication, request parsing and validation, and the one error writer
// that renders every failure as {"error":{"type","code","message",
// "request_id"}}.
//
// The edge does I/O and translation only: every decision about money,
// limits or ownership is an actor's (package actors), reached through an
// [actors.Directory]. Handlers copy what they need out of
// *fasthttp.RequestCtx before any call that may outlive them.
//
// Nothing imports edge except cmd/. Handlers run on fasthttp's worker
// goroutines and share only immutable configuration, the directory and the
// key cache, all safe for concurrent use.
package edge
