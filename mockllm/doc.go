// Package mockllm is a deterministic mock of the upstream LLM providers the
// gateway calls: it speaks the wire formats of OpenAI chat completions (and
// xAI, which uses the same format), Anthropic Messages and Google Gemini
// generateContent, streaming and not, for the gateway's tests, demo and
// benchmarks. It owns nothing of the gateway and imports nothing of ours.
//
// # Routes
//
//	POST /v1/chat/completions        OpenAI and xAI; Authorization: Bearer KEY
//	POST /v1/messages                Anthropic; x-api-key: KEY and anthropic-version required
//	POST /v1beta/models/{model}:generateContent
//	POST /v1beta/models/{model}:streamGenerateContent[?alt=sse]
//	                                 Gemini; x-goog-api-key: KEY or ?key=KEY (also under /v1/models/)
//	GET  /mock/stats                 JSON [Stats]
//	POST /mock/reset                 zero the stats (see [Server.Reset])
//	GET  /healthz                    "ok"
//
// A missing or wrong key gets the provider's own answer: OpenAI 401
// (code invalid_api_key when wrong); xAI (models named grok*) 400
// {"code","error"}; Anthropic 401 authentication_error; Gemini 403
// PERMISSION_DENIED when missing and 400 API_KEY_INVALID when wrong, as the
// real API does. By default any non-empty key is accepted; [Config.APIKey]
// pins one.
//
// # Replies
//
// Everything in a reply derives from the request, so the same request gets
// the same bytes (ids are hashes of the body; OpenAI's "created" is fixed).
//
//   - Text: a sentence of [Config.Tokens] words (default 20) drawn from a
//     fixed word list, seeded by a hash of the last user message. One word
//     is one token; a stream sends one token per event. max_tokens
//     (max_completion_tokens, Gemini maxOutputTokens) caps the reply, which
//     then ends with finish reason length / max_tokens / MAX_TOKENS.
//   - Usage: prompt tokens are the whitespace-separated words of every
//     input message and the system prompt (at least 1); completion tokens
//     are the reply's tokens. Streams report usage as the provider does:
//     OpenAI in a final chunk with empty choices only when
//     stream_options.include_usage is set (earlier chunks then carry
//     "usage":null); Anthropic input tokens in message_start and the output
//     total in message_delta; Gemini usageMetadata on every chunk,
//     candidatesTokenCount cumulative.
//   - Tool calls: when the request has tools, the last message is a user
//     message and tool choice is not none, the mock calls the first tool (or
//     the one tool_choice / allowedFunctionNames names) with arguments
//     generated from its JSON schema (required properties, or all when none
//     are required, filled with sample values by type, enum and format).
//     The arguments are one token per ~8 bytes, streamed as OpenAI
//     tool_calls deltas, Anthropic input_json_delta events, or whole in one
//     Gemini functionCall chunk.
//   - Text and a tool call in one turn: with [Config.TextAndTool], the
//     X-Mock-Text-And-Tool: true header or the mock-text-and-tool model
//     directive, a tool-call reply the model chose to make (tool choice
//     auto, not a forced call) first says a short sentence (up to 8
//     words, billed as output tokens): OpenAI content beside tool_calls
//     (streamed as content deltas, then the tool_calls deltas), an
//     Anthropic text block before the tool_use block, a Gemini text part
//     before the functionCall part (streamed as text chunks, then the call).
//   - Tool results: when the last message is a tool result (OpenAI role
//     tool, Anthropic tool_result blocks, Gemini functionResponse), the
//     reply is "The tool returned: " followed by the result text verbatim.
//   - Structured output: OpenAI response_format json_schema and Gemini
//     responseMimeType application/json with responseSchema (or
//     responseJsonSchema) get a JSON document generated from the schema;
//     json_object (or JSON mime type without schema) gets
//     {"response":"<sentence>"}.
//
// # Per-request controls
//
// Each knob has a server default in [Config] and can be overridden per
// request by a model directive or, winning over both, a header. Model
// directives exist for tests that cannot set headers through the gateway.
//
//	Header                        Model directive       Effect
//	X-Mock-Latency: 250ms         mock-latency-250ms    wait before any response byte
//	X-Mock-TTFT: 100ms            mock-ttft-100ms       wait before the first token
//	X-Mock-Tokens-Per-Second: 50  mock-tps-50           pace tokens after the first
//	X-Mock-Tokens: 5              mock-tokens-5         text reply length in words
//	X-Mock-Error: 429             mock-error-429        answer that status with the provider's body
//	X-Mock-Error: hang            mock-hang             no answer until the client leaves or HangMax
//	X-Mock-Error: malformed_stream  mock-malformed-stream  cut JSON mid-stream (non-stream: half a body, 200)
//	X-Mock-Error: disconnect      mock-disconnect       close the connection mid-stream (non-stream: before any byte)
//	X-Mock-Error: stall           mock-stall            stop mid-stream, close after HangMax (non-stream: hang)
//	X-Mock-Error: stream_error    mock-stream-error     provider's in-stream error event mid-stream (non-stream: 529 Anthropic, else 500)
//	X-Mock-Fail-First: 2          mock-fail-first-2     fail the first 2 matching requests, then answer normally
//	X-Mock-Fail-Key: abc          -                     key for fail-first counting
//	X-Mock-Text-And-Tool: true    mock-text-and-tool    a tool call opens with text in the same turn
//
// Durations are Go durations or bare milliseconds. A model directive is any
// "mock-" segment of the model name, so directives combine and may follow a
// real name: "gpt-4o-mock-tokens-5-mock-error-429", "mock-hang",
// "claude-sonnet-4-mock-fail-first-2-mock-error-529". Unknown directives are
// ignored (a model called "mock-model" is a plain model); a known directive
// with a bad value, or a bad X-Mock-* header, is answered 400. Injected
// statuses 429, 503 and 529 carry Retry-After ([Config.RetryAfter]).
//
// Fail-first counts requests per key: X-Mock-Fail-Key when sent, else the
// request itself (route, model path, body and X-Mock-Tokens), so that a
// client's retries of one request share a count. The failure is the
// X-Mock-Error / mock-error fault when one is given, else
// [Config.ErrorStatus]. [Config.ErrorRate] fails an even, deterministic share
// of the other requests.
//
// Mid-stream faults strike at the middle token event: after half the tokens
// were sent, so a client sees some output first.
//
// # Observability
//
// [Server.Stats] (GET /mock/stats) counts requests per route, streams, and
// outcomes ([Outcome]); [Server.LastRequests] returns the last
// [Config.RecordRequests] requests of a route (URI, headers, body) so tests
// can check what the gateway sent.
//
// # Performance and concurrency
//
// The server is fasthttp. A reply is planned once per distinct request and
// cached ([Config.CacheEntries]); a repeated non-streaming request costs a
// hash, a map lookup and one write of pre-rendered bytes. Streams run in
// fasthttp's stream writer, flush each event as produced, and never touch the
// RequestCtx after the handler returns. Counters are atomics; the request
// recorder, the plan cache, fail-first counts and the server's hang set each
// have their own mutex, never held together. Hangs and streams end on
// [Server.Close]; [Server.Shutdown] lets streams finish.
//
// For tests, package mocktest starts a server on 127.0.0.1 and stops it at
// the end of the test.
package mockllm
