// Package xai calls xAI's Grok models. xAI speaks OpenAI's Chat Completions
// wire format (POST {base}/v1/chat/completions, Bearer key), so this package
// is package openai under another name and default base URL. max_tokens is
// passed through as sent (xAI documents both max_tokens and
// max_completion_tokens).
//
// It imports only providers and providers/openai. A client is safe for
// concurrent use.
package xai

import (
	"github.com/assistiv/gateway/providers"
	"github.com/assistiv/gateway/providers/openai"
)

// Name is the provider name used in errors and in "xai/<model>".
const Name = "xai"

// DefaultBaseURL is xAI's public endpoint.
const DefaultBaseURL = "https://api.x.ai"

// New returns a client for xAI.
func New(t *providers.Transport) *openai.Client {
	return openai.NewCompatible(t, Name, DefaultBaseURL)
}
