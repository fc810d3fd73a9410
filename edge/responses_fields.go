package edge

import (
	"encoding/json"
	"sort"
	"strconv"

	"github.com/assistiv/gateway/providers"
	"github.com/assistiv/gateway/providers/catalog"
)

// The audit of POST /v1/responses request fields against OpenAI's
// Responses API reference. Every top-level field is one of:
//
//   - supported: model, input, instructions, previous_response_id, store,
//     stream, tools (function tools), tool_choice, text.format,
//     max_output_tokens, temperature, top_p, parallel_tool_calls, metadata,
//     user;
//   - translated: safety_identifier (sent upstream as the end-user
//     identifier when user is absent), reasoning.effort (OpenAI's and
//     xAI's chat reasoning_effort; refused for Anthropic and Google models,
//     whose reasoning budgets the chat path does not translate yet);
//   - accepted with no effect, because what it asks is already true of
//     every answer: max_tool_calls (it bounds built-in tool calls; the
//     gateway runs none), truncation "disabled" or "auto" (the gateway
//     never drops input, so "auto" behaves as "disabled"),
//     stream_options.include_obfuscation (no obfuscation padding is sent),
//     prompt_cache_key, prompt_cache_retention, prompt_cache_options
//     (cache hints; providers cache on their own terms), service_tier
//     "auto" or "default", text.verbosity "medium", top_logprobs 0,
//     background false, reasoning without effort or summary, and include
//     values naming items the gateway never produces (hosted tool calls,
//     reasoning);
//   - refused with a 400 naming the field: background true, conversation,
//     prompt, context_management, moderation, reasoning.effort on
//     Anthropic and Google models, reasoning.summary, service_tier
//     "flex", "priority" or "scale", text.verbosity "low" or "high",
//     top_logprobs above 0, include "message.output_text.logprobs", and
//     any field not in the reference ("Unknown parameter", as OpenAI
//     answers).

// responsesFields are the top-level fields of the reference.
var responsesFields = map[string]bool{
	"background": true, "context_management": true, "conversation": true, "include": true,
	"input": true, "instructions": true, "max_output_tokens": true, "max_tool_calls": true,
	"metadata": true, "model": true, "moderation": true, "parallel_tool_calls": true,
	"previous_response_id": true, "prompt": true, "prompt_cache_key": true,
	"prompt_cache_options": true, "prompt_cache_retention": true, "reasoning": true,
	"safety_identifier": true, "service_tier": true, "store": true, "stream": true,
	"stream_options": true, "temperature": true, "text": true, "tool_choice": true,
	"tools": true, "top_logprobs": true, "top_p": true, "truncation": true, "user": true,
}

// refusedWhenSet are fields the gateway does not serve at all: any value but
// null is refused.
var refusedWhenSet = map[string]string{
	"conversation":       "conversations are not supported; carry state with previous_response_id or the input",
	"prompt":             "reusable prompt templates are not supported; send instructions and input",
	"context_management": "server-side context management is not supported",
	"moderation":         "moderation settings are not supported",
}

// includeValues are the include values accepted: each names output the
// gateway never produces, so including it changes nothing.
var includeValues = map[string]bool{
	"file_search_call.results": true, "web_search_call.results": true,
	"web_search_call.action.sources": true, "message.input_image.image_url": true,
	"computer_call_output.output.image_url": true, "code_interpreter_call.outputs": true,
	"reasoning.encrypted_content": true,
}

// checkResponsesFields audits the fields of a POST /v1/responses body (a
// JSON object) and refuses, naming it, the first field the gateway cannot
// honour.
func checkResponsesFields(body []byte) error {
	var all map[string]json.RawMessage
	if err := json.Unmarshal(body, &all); err != nil {
		return jsonError(err)
	}
	names := make([]string, 0, len(all))
	for k := range all {
		names = append(names, k)
	}
	sort.Strings(names) // the same body is refused for the same field
	for _, k := range names {
		if err := checkResponsesField(k, all[k]); err != nil {
			return err
		}
	}
	return nil
}

func unsupported(field, why string) *apiError {
	return errBadRequest("unsupported_parameter", "%s is not supported: %s", field, why)
}

func checkResponsesField(k string, v json.RawMessage) error {
	if !responsesFields[k] {
		return errBadRequest("unknown_parameter", "Unknown parameter: %s.", strconv.Quote(k))
	}
	if isNull(v) {
		return nil
	}
	if why, ok := refusedWhenSet[k]; ok {
		return unsupported(k, why)
	}
	switch k {
	case "reasoning":
		var m map[string]json.RawMessage
		if json.Unmarshal(v, &m) != nil {
			return errBadRequest("invalid_field", "reasoning must be an object")
		}
		for f, fv := range m {
			switch {
			case f == "effort":
				// Translated per provider by reasoningEffort.
			case f == "summary" || f == "generate_summary":
				if !isNull(fv) {
					return unsupported("reasoning."+f, "the gateway returns no reasoning items to summarise")
				}
			default:
				return errBadRequest("unknown_parameter", "Unknown parameter: %s.", strconv.Quote("reasoning."+f))
			}
		}
	case "include":
		var vals []string
		if json.Unmarshal(v, &vals) != nil {
			return errBadRequest("invalid_field", "include must be an array of strings")
		}
		for _, s := range vals {
			if s == "message.output_text.logprobs" {
				return unsupported("include "+strconv.Quote(s), "log probabilities are not returned")
			}
			if !includeValues[s] {
				return errBadRequest("invalid_field", "include: unknown value %s", strconv.Quote(s))
			}
		}
	case "service_tier":
		return oneOf(k, v, "auto", "default")
	case "truncation":
		return oneOf(k, v, "disabled", "auto")
	case "top_logprobs":
		var n int
		if json.Unmarshal(v, &n) != nil || n < 0 {
			return errBadRequest("invalid_field", "top_logprobs must be a non-negative integer")
		}
		if n > 0 {
			return unsupported("top_logprobs", "log probabilities are not returned")
		}
	case "text":
		var t map[string]json.RawMessage
		if json.Unmarshal(v, &t) != nil {
			return errBadRequest("invalid_field", "text must be an object")
		}
		for f, fv := range t {
			switch f {
			case "format":
			case "verbosity":
				if !isNull(fv) {
					if err := oneOf("text.verbosity", fv, "medium"); err != nil {
						return err
					}
				}
			default:
				return errBadRequest("unknown_parameter", "Unknown parameter: %s.", strconv.Quote("text."+f))
			}
		}
	case "stream_options":
		var so map[string]json.RawMessage
		if json.Unmarshal(v, &so) != nil {
			return errBadRequest("invalid_field", "stream_options must be an object")
		}
		for f := range so {
			if f != "include_obfuscation" {
				return errBadRequest("unknown_parameter", "Unknown parameter: %s.", strconv.Quote("stream_options."+f))
			}
		}
	}
	return nil
}

// oneOf accepts v when it is one of the strings ok; another string is
// refused as unsupported, anything else as invalid.
func oneOf(field string, v json.RawMessage, ok ...string) error {
	var s string
	if json.Unmarshal(v, &s) != nil {
		return errBadRequest("invalid_field", "%s must be a string", field)
	}
	for _, o := range ok {
		if s == o {
			return nil
		}
	}
	return unsupported(field+" "+strconv.Quote(s), "the gateway serves only "+quoteAll(ok))
}

func quoteAll(ss []string) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += " or "
		}
		out += strconv.Quote(s)
	}
	return out
}

// reasoningEffort translates reasoning.effort of raw (the request's
// reasoning object, which checkResponsesField has audited) into req: OpenAI
// and xAI chat models take it as reasoning_effort; the other providers'
// translations have no equivalent yet, so it is refused there, naming it.
func reasoningEffort(req *providers.ChatRequest, raw json.RawMessage) error {
	if isNull(raw) {
		return nil
	}
	var r struct {
		Effort json.RawMessage `json:"effort"`
	}
	if json.Unmarshal(raw, &r) != nil || isNull(r.Effort) {
		return nil
	}
	var effort string
	if json.Unmarshal(r.Effort, &effort) != nil || effort == "" {
		return errBadRequest("invalid_field", "reasoning.effort must be a string")
	}
	m, err := catalog.Lookup(req.Model)
	if err != nil {
		return nil // the unknown model is answered by admission, as for any request
	}
	switch m.Provider {
	case catalog.OpenAI, catalog.XAI:
		if req.Extra == nil {
			req.Extra = map[string]json.RawMessage{}
		}
		req.Extra["reasoning_effort"] = r.Effort
		return nil
	}
	return unsupported("reasoning.effort", "it is translated for OpenAI and xAI models only, not for "+m.Provider)
}
