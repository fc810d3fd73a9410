package edge

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/assistiv/gateway/internal/jsonstr"
	"github.com/assistiv/gateway/internal/money"
)

// decodeJSON parses the request body into v strictly: JSON content type,
// one object, no unknown fields, no trailing data. optional lets an empty
// body stand for {}.
func (c *call) decodeJSON(v any, optional bool) error {
	body := c.ctx.PostBody()
	if len(bytes.TrimSpace(body)) == 0 {
		if optional {
			return nil
		}
		return errBadRequest("missing_body", "this route needs a JSON body")
	}
	if !c.jsonContentType() {
		ct := string(c.ctx.Request.Header.ContentType())
		return &apiError{Status: 415, Type: typeInvalid, Code: "unsupported_media_type",
			Message: fmt.Sprintf("Content-Type must be application/json, not %q", ct)}
	}
	return decodeStrict(body, v)
}

// jsonContentType reports whether the request says its body is JSON.
func (c *call) jsonContentType() bool {
	ct := string(c.ctx.Request.Header.ContentType())
	mt, _, _ := strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(mt), "application/json")
}

// scanAmount reads the usual body of a top-up or a debit, an object with
// amount_usd (a JSON number) and an optional reason (a string of
// printable ASCII without escapes), in one pass without encoding/json.
// Anything else (another member, a key repeated or spelt otherwise, null,
// escapes, non-ASCII, trailing data, an amount ParseUSD refuses) returns
// false: the caller then decodes strictly, so every refusal, and every
// case encoding/json reads in its own way, keeps encoding/json's answer.
// It accepts only what decodeStrict reads to the same values
// (FuzzScanAmountAgreesWithDecodeStrict).
func scanAmount(b []byte, in *amountIn) bool {
	i := jsonstr.SkipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = jsonstr.SkipSpace(b, i+1)
	seenAmount, seenReason := false, false
	for {
		key, end, ok := plainASCIIString(b, i)
		if !ok {
			return false
		}
		i = jsonstr.SkipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = jsonstr.SkipSpace(b, i+1)
		switch string(key) {
		case "amount_usd":
			if seenAmount {
				return false
			}
			seenAmount = true
			end := jsonstr.NumberEnd(b, i)
			if end < 0 {
				return false
			}
			n, err := money.ParseUSD(string(b[i:end]))
			if err != nil {
				return false
			}
			in.AmountUSD, i = &n, end
		case "reason":
			if seenReason {
				return false
			}
			seenReason = true
			r, end, ok := plainASCIIString(b, i)
			if !ok {
				return false
			}
			in.Reason, i = string(r), end
		default:
			return false
		}
		i = jsonstr.SkipSpace(b, i)
		switch {
		case i < len(b) && b[i] == ',':
			i = jsonstr.SkipSpace(b, i+1)
		case i < len(b) && b[i] == '}':
			return seenAmount && jsonstr.SkipSpace(b, i+1) == len(b)
		default:
			return false
		}
	}
}

// plainASCIIString reads a JSON string at b[i] made of printable ASCII
// without escapes: its inside and the index after its closing quote.
func plainASCIIString(b []byte, i int) (s []byte, end int, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, 0, false
	}
	j := i + 1
	for j < len(b) && b[j] >= 0x20 && b[j] < 0x7f && b[j] != '"' && b[j] != '\\' {
		j++
	}
	if j >= len(b) || b[j] != '"' {
		return nil, 0, false
	}
	return b[i+1 : j], j + 1, true
}

func decodeStrict(body []byte, v any) error {
	if !utf8.Valid(body) {
		return errBadRequest("invalid_json", "the body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errBadRequest("invalid_json", "unexpected data after the JSON object")
	}
	return nil
}

func jsonError(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return errBadRequest("invalid_json", "malformed JSON at byte %d", se.Offset)
	case errors.As(err, &te):
		return errBadRequest("invalid_field", "field %q must be a %s", te.Field, te.Type)
	case errors.Is(err, money.ErrPrecision):
		return errBadRequest("invalid_amount", "amounts take at most 9 decimal places")
	case errors.Is(err, money.ErrRange):
		return errBadRequest("invalid_amount", "amount out of range (at most %s USD)", money.MaxAmount)
	case errors.Is(err, money.ErrSyntax):
		return errBadRequest("invalid_amount", "amounts must be JSON numbers in USD")
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return errBadRequest("unknown_field", "%s", strings.TrimPrefix(err.Error(), "json: "))
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return errBadRequest("invalid_json", "the JSON body ended early")
	}
	return errBadRequest("invalid_json", "%v", err)
}

// writeJSON renders v with status.
func (c *call) writeJSON(status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	c.writeRaw(status, b)
	return nil
}

// writeRaw answers with b, a JSON body that is this answer's own (not
// copied: nothing may touch it afterwards).
func (c *call) writeRaw(status int, b []byte) {
	c.ctx.SetStatusCode(status)
	c.ctx.SetContentType("application/json")
	c.ctx.Response.SetBodyRaw(b)
}

// ts renders a unix-millisecond timestamp as RFC 3339 (UTC, milliseconds).
func ts(ms int64) string {
	if ms == 0 {
		return ""
	}
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// optTime renders a timestamp or null.
func optTime(ms int64) *string {
	if ms == 0 {
		return nil
	}
	s := ts(ms)
	return &s
}
