package providers

import (
	"bytes"
	"encoding/json"
	"testing"
)

// scanAll collects scanObject's members, the last value of a repeated key
// winning (as encoding/json's map decode does).
func scanAll(b []byte) (map[string]json.RawMessage, error) {
	out := map[string]json.RawMessage{}
	err := scanObject(b, func(k string, v []byte) bool {
		out[k] = append(json.RawMessage(nil), v...)
		return true
	})
	return out, err
}

func TestScanObjectMatchesEncodingJSON(t *testing.T) {
	for _, in := range []string{
		`{}`, ` { } `, `{"a":1}`, `{"a" : "x\"}y" , "b":[1,{"c":"]"}], "d":null,"e":true,"f":-1.5e3}`,
		`{"k\u0065y":{"n":{"m":[[]]}},"s":"\\"}`, "{\n\t\"a\":\n[ ]\r\n}", `{"a":1,"a":2}`,
	} {
		var want map[string]json.RawMessage
		if err := json.Unmarshal([]byte(in), &want); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		got, err := scanAll([]byte(in))
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d members, want %d", in, len(got), len(want))
		}
		for k, v := range want {
			if !bytes.Equal(bytes.TrimSpace(got[k]), bytes.TrimSpace(v)) {
				t.Fatalf("%s: %q = %s, want %s", in, k, got[k], v)
			}
		}
	}
	for _, bad := range []string{``, `[]`, `"x"`, `{"a"}`, `{"a":}`} {
		if _, err := scanAll([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// FuzzScanObject: on every input encoding/json accepts as an object,
// scanObject finds the same members with the same raw values.
func FuzzScanObject(f *testing.F) {
	for _, s := range []string{`{"model":"m","messages":[{"role":"user","content":"hi"}],"x":{"y":[1,"]}"]}}`, `{"a\n":"\u00e9","b":[]}`, `{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var want map[string]json.RawMessage
		if json.Unmarshal(b, &want) != nil {
			return
		}
		got, err := scanAll(b)
		if err != nil {
			t.Fatalf("%q: %v", b, err)
		}
		if len(got) != len(want) {
			t.Fatalf("%q: %d members, want %d", b, len(got), len(want))
		}
		for k, v := range want {
			// encoding/json's RawMessage keeps the value's bytes as sent.
			if !bytes.Equal(bytes.TrimSpace(got[k]), bytes.TrimSpace(v)) {
				t.Fatalf("%q: member %q = %q, want %q", b, k, got[k], v)
			}
		}
	})
}

// decodeTwice is how ChatRequest was parsed before the scanner: the body
// decoded into the struct, then again into a map for the unknown fields.
// Kept as the benchmark's baseline.
func decodeTwice(b []byte) (*ChatRequest, error) {
	var a chatRequestAlias
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return nil, err
	}
	for k, v := range all {
		if !knownRequestFields[k] && !droppedRequestFields[k] {
			if a.Extra == nil {
				a.Extra = map[string]json.RawMessage{}
			}
			a.Extra[k] = v
		}
	}
	r := ChatRequest(a)
	return &r, nil
}

// BenchmarkChatRequestDecode compares the ways of reading a request:
// Parse (one pass), json.Unmarshal into ChatRequest (encoding/json's
// validation, then the one pass), the encoding/json reader with the
// top-level scanner that Parse falls back to, and the earlier two full
// decodes.
//
//	go test ./providers -run '^$' -bench BenchmarkChatRequestDecode -benchmem
func BenchmarkChatRequestDecode(b *testing.B) {
	body := []byte(`{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a travel planner. Answer briefly."},` +
		`{"role":"user","content":"Plan three days in Tokyo in spring, with one day trip, and list the trains to take."}],` +
		`"max_tokens":512,"temperature":0.7,"stream":false,"logprobs":false,"metadata":{"trace":"abc"}}`)
	b.Run("parse", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			var r ChatRequest
			if err := r.Parse(body); err != nil || len(r.Extra) != 2 {
				b.Fatal(err, r.Extra)
			}
		}
	})
	b.Run("unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			var r ChatRequest
			if err := json.Unmarshal(body, &r); err != nil || len(r.Extra) != 2 {
				b.Fatal(err, r.Extra)
			}
		}
	})
	b.Run("scanner", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			var r ChatRequest
			if err := json.Unmarshal(body, (*slowChatRequest)(&r)); err != nil || len(r.Extra) != 2 {
				b.Fatal(err, r.Extra)
			}
		}
	})
	b.Run("two-decodes", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			r, err := decodeTwice(body)
			if err != nil || len(r.Extra) != 2 {
				b.Fatal(err)
			}
		}
	})
}
