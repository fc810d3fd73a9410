package providers

import (
	"encoding/json"
	"strconv"

	"github.com/assistiv/gateway/internal/jsonstr"
)

// AppendJSON appends r as json.Marshal writes it and returns the
// extended buffer. It writes each value once, where json.Marshal encodes
// the nested Message, Content and FinishReason through their MarshalJSON
// methods and then validates and copies each result again. Content
// given as parts (not sent by any provider's answer today) goes through
// json.Marshal. TestAppendJSONMatchesMarshal compares the two.
func (r *ChatResponse) AppendJSON(dst []byte) ([]byte, error) {
	dst = append(dst, `{"id":`...)
	dst = appendString(dst, r.ID)
	dst = append(dst, `,"object":`...)
	dst = appendString(dst, r.Object)
	dst = append(dst, `,"created":`...)
	dst = strconv.AppendInt(dst, r.Created, 10)
	dst = append(dst, `,"model":`...)
	dst = appendString(dst, r.Model)
	dst = append(dst, `,"choices":`...)
	if r.Choices == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '[')
		for i := range r.Choices {
			c := &r.Choices[i]
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"index":`...)
			dst = strconv.AppendInt(dst, int64(c.Index), 10)
			dst = append(dst, `,"message":`...)
			var err error
			if dst, err = c.Message.appendJSON(dst); err != nil {
				return nil, err
			}
			dst = append(dst, `,"finish_reason":`...)
			dst = c.FinishReason.appendJSON(dst)
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	if r.Usage != nil {
		dst = r.Usage.appendJSON(append(dst, `,"usage":`...))
	}
	if r.SystemFingerprint != "" {
		dst = append(dst, `,"system_fingerprint":`...)
		dst = appendString(dst, r.SystemFingerprint)
	}
	return append(dst, '}'), nil
}

// AppendJSON appends c as json.Marshal writes it (see
// [ChatResponse.AppendJSON]).
func (c *ChatChunk) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendString(dst, c.ID)
	dst = append(dst, `,"object":`...)
	dst = appendString(dst, c.Object)
	dst = append(dst, `,"created":`...)
	dst = strconv.AppendInt(dst, c.Created, 10)
	dst = append(dst, `,"model":`...)
	dst = appendString(dst, c.Model)
	dst = append(dst, `,"choices":`...)
	if c.Choices == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '[')
		for i := range c.Choices {
			ch := &c.Choices[i]
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"index":`...)
			dst = strconv.AppendInt(dst, int64(ch.Index), 10)
			dst = append(dst, `,"delta":{`...)
			d := &ch.Delta
			n := len(dst)
			if d.Role != "" {
				dst = appendString(append(dst, `"role":`...), d.Role)
			}
			if d.Content != nil {
				dst = appendString(append(comma(dst, n), `"content":`...), *d.Content)
			}
			if len(d.ToolCalls) > 0 {
				dst = append(comma(dst, n), `"tool_calls":[`...)
				for j := range d.ToolCalls {
					tc := &d.ToolCalls[j]
					if j > 0 {
						dst = append(dst, ',')
					}
					dst = append(dst, `{"index":`...)
					dst = strconv.AppendInt(dst, int64(tc.Index), 10)
					if tc.ID != "" {
						dst = appendString(append(dst, `,"id":`...), tc.ID)
					}
					if tc.Type != "" {
						dst = appendString(append(dst, `,"type":`...), tc.Type)
					}
					dst = tc.Function.appendJSON(append(dst, `,"function":`...))
					dst = append(dst, '}')
				}
				dst = append(dst, ']')
			}
			if d.Refusal != nil {
				dst = appendString(append(comma(dst, n), `"refusal":`...), *d.Refusal)
			}
			dst = append(dst, `},"finish_reason":`...)
			dst = ch.FinishReason.appendJSON(dst)
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	if c.Usage != nil {
		dst = c.Usage.appendJSON(append(dst, `,"usage":`...))
	}
	if c.SystemFingerprint != "" {
		dst = appendString(append(dst, `,"system_fingerprint":`...), c.SystemFingerprint)
	}
	return append(dst, '}')
}

// comma appends a member separator unless dst has grown no member since
// the object's opening at n.
func comma(dst []byte, n int) []byte {
	if len(dst) > n {
		return append(dst, ',')
	}
	return dst
}

func (u *Usage) appendJSON(dst []byte) []byte {
	dst = append(dst, `{"prompt_tokens":`...)
	dst = strconv.AppendInt(dst, u.PromptTokens, 10)
	dst = append(dst, `,"completion_tokens":`...)
	dst = strconv.AppendInt(dst, u.CompletionTokens, 10)
	dst = append(dst, `,"total_tokens":`...)
	dst = strconv.AppendInt(dst, u.TotalTokens, 10)
	return append(dst, '}')
}

func (f FinishReason) appendJSON(dst []byte) []byte {
	if f == "" {
		return append(dst, "null"...)
	}
	return appendString(dst, string(f))
}

func (f *FunctionCall) appendJSON(dst []byte) []byte {
	dst = append(dst, '{')
	if f.Name != "" {
		dst = append(appendString(append(dst, `"name":`...), f.Name), ',')
	}
	dst = appendString(append(dst, `"arguments":`...), f.Arguments)
	return append(dst, '}')
}

// appendJSON writes m as [Message.MarshalJSON] does.
func (m *Message) appendJSON(dst []byte) ([]byte, error) {
	dst = append(dst, `{"role":`...)
	dst = appendString(dst, m.Role)
	dst = append(dst, `,"content":`...)
	switch c := &m.Content; {
	case c.Parts != nil:
		b, err := json.Marshal(c.Parts)
		if err != nil {
			return nil, err
		}
		dst = append(dst, b...)
	case c.Text != "" || m.Role != RoleAssistant:
		dst = appendString(dst, c.Text)
	default:
		dst = append(dst, "null"...)
	}
	if m.Name != "" {
		dst = appendString(append(dst, `,"name":`...), m.Name)
	}
	if len(m.ToolCalls) > 0 {
		dst = append(dst, `,"tool_calls":[`...)
		for i := range m.ToolCalls {
			tc := &m.ToolCalls[i]
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(append(dst, `{"id":`...), tc.ID)
			dst = appendString(append(dst, `,"type":`...), tc.Type)
			dst = tc.Function.appendJSON(append(dst, `,"function":`...))
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	if m.ToolCallID != "" {
		dst = appendString(append(dst, `,"tool_call_id":`...), m.ToolCallID)
	}
	if m.Refusal != "" {
		dst = appendString(append(dst, `,"refusal":`...), m.Refusal)
	}
	return append(dst, '}'), nil
}

// appendString appends s as a JSON string the way encoding/json.Marshal
// writes it (HTML characters escaped).
func appendString(dst []byte, s string) []byte { return jsonstr.Append(dst, s, true) }
