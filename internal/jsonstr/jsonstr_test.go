package jsonstr

import (
	"bytes"
	"encoding/json"
	"testing"
)

// Append writes what encoding/json writes, with and without HTML escaping.
func FuzzAppendMatchesEncodingJSON(f *testing.F) {
	for _, s := range []string{"", "plain", `q"b\s`, "\b\f\n\r\t\x00\x1f", "<a&b>", "\u2028\u2029", "\xff\xfe", "é漢🙂"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		for _, html := range []bool{true, false} {
			want.Reset()
			enc.SetEscapeHTML(html)
			if err := enc.Encode(s); err != nil {
				t.Fatal(err)
			}
			w := bytes.TrimSuffix(want.Bytes(), []byte("\n"))
			if got := Append(nil, s, html); !bytes.Equal(got, w) {
				t.Fatalf("Append(%q, html=%v) = %s, encoding/json writes %s", s, html, got, w)
			}
		}
	})
}
