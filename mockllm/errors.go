package mockllm

import (
	"strconv"
	"strings"
)

// dialect is the error and response format family of a request.
type dialect uint8

const (
	dialectOpenAI dialect = iota
	dialectXAI            // OpenAI wire format; errors as {"code","error"}
	dialectAnthropic
	dialectGemini
)

// dialectFor picks xAI for models named grok*, on the OpenAI route.
func dialectFor(r Route, model string) dialect {
	switch r {
	case RouteAnthropic:
		return dialectAnthropic
	case RouteGemini:
		return dialectGemini
	}
	if strings.HasPrefix(strings.ToLower(model), "grok") {
		return dialectXAI
	}
	return dialectOpenAI
}

// apiErr is one error answer: status and the provider's body.
type apiErr struct {
	status int
	body   []byte
}

// errorBody renders a provider-shaped error body for status with message
// msg (empty: the provider's usual message for that status). code is the
// OpenAI error code or Gemini ErrorInfo reason ("" for none).
func errorBody(d dialect, status int, msg, code string) []byte {
	b := make([]byte, 0, 256)
	switch d {
	case dialectOpenAI:
		typ := "invalid_request_error"
		switch {
		case status == 429:
			typ = "requests"
			if code == "" {
				code = "rate_limit_exceeded"
			}
		case status >= 500:
			typ = "server_error"
		}
		if msg == "" {
			msg = openAIMessage(status)
		}
		b = append(b, `{"error":{"message":`...)
		b = appendJSONString(b, msg)
		b = append(b, `,"type":`...)
		b = appendJSONString(b, typ)
		b = append(b, `,"param":null,"code":`...)
		if code == "" {
			b = append(b, "null"...)
		} else {
			b = appendJSONString(b, code)
		}
		b = append(b, "}}"...)
	case dialectXAI:
		if msg == "" {
			msg = openAIMessage(status)
		}
		b = append(b, `{"code":`...)
		b = appendJSONString(b, grpcDescription(status))
		b = append(b, `,"error":`...)
		b = appendJSONString(b, msg)
		b = append(b, '}')
	case dialectAnthropic:
		typ, def := anthropicType(status)
		if msg == "" {
			msg = def
		}
		b = append(b, `{"type":"error","error":{"type":`...)
		b = appendJSONString(b, typ)
		b = append(b, `,"message":`...)
		b = appendJSONString(b, msg)
		b = append(b, `},"request_id":"req_mock"}`...)
	case dialectGemini:
		st, def := geminiStatus(status)
		if msg == "" {
			msg = def
		}
		b = append(b, `{"error":{"code":`...)
		b = appendInt(b, status)
		b = append(b, `,"message":`...)
		b = appendJSONString(b, msg)
		b = append(b, `,"status":`...)
		b = appendJSONString(b, st)
		switch {
		case code != "":
			b = append(b, `,"details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":`...)
			b = appendJSONString(b, code)
			b = append(b, `,"domain":"googleapis.com","metadata":{"service":"generativelanguage.googleapis.com"}}]`...)
		case status == 429:
			b = append(b, `,"details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"1s"}]`...)
		}
		b = append(b, "}}"...)
	}
	return b
}

func openAIMessage(status int) string {
	switch status {
	case 400:
		return "Invalid request."
	case 401:
		return "Invalid authentication."
	case 403:
		return "You are not allowed to sample from this model."
	case 404:
		return "The model does not exist or you do not have access to it."
	case 429:
		return "Rate limit reached for requests. Please try again in 1s."
	case 500:
		return "The server had an error while processing your request. Sorry about that!"
	case 502:
		return "Bad gateway."
	case 503:
		return "The engine is currently overloaded, please try again later."
	}
	return "Injected error with status " + strconv.Itoa(status) + "."
}

// grpcDescription is the gRPC status description xAI puts in "code".
func grpcDescription(status int) string {
	switch status {
	case 400:
		return "Client specified an invalid argument"
	case 401:
		return "The request does not have valid authentication credentials"
	case 403:
		return "The caller does not have permission to execute the specified operation"
	case 404:
		return "Some requested entity was not found"
	case 429:
		return "Some resource has been exhausted"
	case 503:
		return "The service is currently unavailable"
	case 504:
		return "The deadline expired before the operation could complete"
	}
	return "Internal error"
}

func anthropicType(status int) (typ, msg string) {
	switch status {
	case 400:
		return "invalid_request_error", "Invalid request."
	case 401:
		return "authentication_error", "invalid x-api-key"
	case 402:
		return "billing_error", "Your credit balance is too low."
	case 403:
		return "permission_error", "Your API key does not have permission to use the specified resource."
	case 404:
		return "not_found_error", "The requested resource could not be found."
	case 413:
		return "request_too_large", "Request exceeds the maximum allowed number of bytes."
	case 429:
		return "rate_limit_error", "Number of requests has exceeded your rate limit. Please try again later."
	case 503, 529:
		return "overloaded_error", "Overloaded"
	case 504:
		return "timeout_error", "Request timed out."
	}
	if status < 500 {
		return "invalid_request_error", "Invalid request."
	}
	return "api_error", "Internal server error"
}

func geminiStatus(status int) (st, msg string) {
	switch status {
	case 400:
		return "INVALID_ARGUMENT", "Request contains an invalid argument."
	case 401:
		return "UNAUTHENTICATED", "Request had invalid authentication credentials."
	case 403:
		return "PERMISSION_DENIED", "The caller does not have permission"
	case 404:
		return "NOT_FOUND", "Requested entity was not found."
	case 429:
		return "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."
	case 503:
		return "UNAVAILABLE", "The model is overloaded. Please try again later."
	case 504:
		return "DEADLINE_EXCEEDED", "Deadline expired before operation could complete."
	}
	if status < 500 {
		return "FAILED_PRECONDITION", "Precondition check failed."
	}
	return "INTERNAL", "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"
}

// authError is the provider's answer to a missing (key == "") or wrong key.
func authError(d dialect, key string) apiErr {
	switch d {
	case dialectOpenAI:
		if key == "" {
			return apiErr{401, errorBody(d, 401, "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the API from your browser and are prompted for a username and password. You can obtain an API key from https://platform.openai.com/account/api-keys.", "")}
		}
		return apiErr{401, errorBody(d, 401, "Incorrect API key provided: "+redactKey(key)+". You can find your API key at https://platform.openai.com/account/api-keys.", "invalid_api_key")}
	case dialectXAI:
		if key == "" {
			return apiErr{400, errorBody(d, 400, "No API key provided. You can obtain an API key from https://console.x.ai.", "")}
		}
		return apiErr{400, errorBody(d, 400, "Incorrect API key provided: "+redactKey(key)+". You can obtain an API key from https://console.x.ai.", "")}
	case dialectAnthropic:
		if key == "" {
			return apiErr{401, errorBody(d, 401, "x-api-key header is required", "")}
		}
		return apiErr{401, errorBody(d, 401, "invalid x-api-key", "")}
	default:
		if key == "" {
			return apiErr{403, errorBody(d, 403, "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.", "")}
		}
		return apiErr{400, errorBody(d, 400, "API key not valid. Please pass a valid API key.", "API_KEY_INVALID")}
	}
}

// redactKey shows a key the way providers echo it: a few characters at each
// end.
func redactKey(k string) string {
	if len(k) <= 6 {
		return "***"
	}
	return k[:3] + "***" + k[len(k)-2:]
}

// streamErrorEvent is the provider's in-stream error event, as bytes ready to
// write.
func streamErrorEvent(d dialect) []byte {
	switch d {
	case dialectAnthropic:
		return []byte("event: error\ndata: " + string(errorBody(d, 529, "", "")) + "\n\n")
	case dialectGemini:
		return []byte("data: " + string(errorBody(d, 500, "", "")) + "\r\n\r\n")
	}
	return []byte("data: " + string(errorBody(d, 500, "", "")) + "\n\n")
}
