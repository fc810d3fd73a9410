// Package providers holds what every upstream adapter shares: the canonical
// OpenAI-compatible Chat Completions types the edge parses client requests
// into ([ChatRequest]) and writes responses from ([ChatResponse],
// [ChatChunk]); the upstream error type ([Error]) and its sentinels; the
// bounded server-sent-events reader ([SSEReader]); the generic [Stream]; and
// the fasthttp-based [Transport] with its retry policy.
//
// One sub-package per upstream does the translation both ways and owns the
// wire format: openai, xai (the OpenAI format at api.x.ai), anthropic
// (Messages API) and google (Gemini generateContent). catalog embeds the model
// table with exact integer prices.
//
// # Imports
//
// This tree imports nothing else of ours: not edge, actors, persistence or
// cluster. Sub-packages import this package; this package imports none of
// them.
//
// # Flow
//
//	edge ── ChatRequest ──▶ <provider>.Client.Complete / .Stream
//	                            │ translate request (pure)
//	                            ▼
//	                        Transport.Do / Transport.Open ── fasthttp ──▶ Upstream.BaseURL only
//	                            │ retry 429/5xx/connect failures with backoff + jitter,
//	                            │ never once a stream has been handed to the caller
//	                            ▼
//	                        translate response / SSE events (pure) ──▶ ChatResponse / ChatChunk
//
// # Errors
//
// Every error that Complete, Stream and Stream.Next return is either the
// context's error (context.Canceled, context.DeadlineExceeded) or an [*Error]
// carrying an OpenAI-style status, type and code. Sentinels ([ErrTimeout],
// [ErrConnect], [ErrMalformed], ...) are matched with errors.Is through it.
//
// # Concurrency
//
// Types in this package are plain values; a [Transport] and the provider
// clients built on it are safe for concurrent use. A [Stream] belongs to one
// goroutine, except Close, which may be called from any goroutine at any
// time. Cancelling the context given to Complete or Stream aborts the
// upstream call: it closes the response body, which unblocks a read at once.
package providers
