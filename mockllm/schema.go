package mockllm

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
)

// sampleJSON returns a compact JSON document that validates against the JSON
// schema in raw (JSON Schema as OpenAI and Anthropic take it, or Gemini's
// OpenAPI subset with upper-case types). Supported: type (string or list),
// properties, required, enum, const, items, prefixItems, minItems, maxItems,
// minLength, maxLength, minimum, maximum, exclusive bounds, multipleOf,
// format (date-time, date, time, email, uri, uuid), $ref into the same
// document, anyOf, oneOf and allOf. Required properties are filled; when a
// schema lists none, all its properties are. Property order follows Gemini's
// propertyOrdering when given, else the schema's order of appearance.
// An empty or unparsable schema yields {}.
func sampleJSON(raw []byte) string {
	if len(raw) == 0 {
		return "{}"
	}
	root, err := decodeOrdered(raw)
	if err != nil {
		return "{}"
	}
	g := schemaGen{root: root}
	return string(g.value(nil, root, "", 0, 0))
}

// omap is a JSON object that keeps its key order, so that generated objects
// list properties as the schema declares them.
type omap struct {
	keys []string
	vals map[string]any
}

func (m *omap) get(k string) (any, bool) {
	if m == nil {
		return nil, false
	}
	v, ok := m.vals[k]
	return v, ok
}

// decodeOrdered decodes JSON like encoding/json into any, except that objects
// become *omap and numbers json.Number.
func decodeOrdered(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	return decodeValue(dec)
}

func decodeValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			m := &omap{vals: map[string]any{}}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, _ := kt.(string)
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				if _, dup := m.vals[k]; !dup {
					m.keys = append(m.keys, k)
				}
				m.vals[k] = v
			}
			_, err := dec.Token()
			return m, err
		case '[':
			var a []any
			for dec.More() {
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				a = append(a, v)
			}
			_, err := dec.Token()
			return a, err
		}
	}
	return tok, nil
}

// appendAny appends a decoded value (as from decodeOrdered) as JSON.
func appendAny(dst []byte, v any) []byte {
	switch t := v.(type) {
	case nil:
		return append(dst, "null"...)
	case bool:
		return strconv.AppendBool(dst, t)
	case json.Number:
		return append(dst, t...)
	case string:
		return appendJSONString(dst, t)
	case []any:
		dst = append(dst, '[')
		for i, e := range t {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendAny(dst, e)
		}
		return append(dst, ']')
	case *omap:
		dst = append(dst, '{')
		for i, k := range t.keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, k)
			dst = append(dst, ':')
			dst = appendAny(dst, t.vals[k])
		}
		return append(dst, '}')
	}
	return append(dst, "null"...)
}

const maxSchemaDepth = 24

type schemaGen struct{ root any }

// resolve follows $ref (a JSON pointer into the root document) a bounded
// number of times.
func (g *schemaGen) resolve(s *omap) *omap {
	for range 8 {
		ref, ok := s.get("$ref")
		if !ok {
			return s
		}
		r, _ := ref.(string)
		target := g.pointer(r)
		next, ok := target.(*omap)
		if !ok {
			return s
		}
		s = next
	}
	return s
}

func (g *schemaGen) pointer(ref string) any {
	if !strings.HasPrefix(ref, "#") {
		return nil
	}
	cur := g.root
	for _, part := range strings.Split(strings.TrimPrefix(ref, "#"), "/") {
		if part == "" {
			continue
		}
		part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
		switch c := cur.(type) {
		case *omap:
			cur, _ = c.get(part)
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(c) {
				return nil
			}
			cur = c[i]
		default:
			return nil
		}
	}
	return cur
}

// merge folds allOf subschemas into one: properties and required are unioned,
// other keywords taken from the last subschema that has them.
func (g *schemaGen) merge(s *omap, depth int) *omap {
	all, ok := s.get("allOf")
	list, _ := all.([]any)
	if !ok || len(list) == 0 || depth > maxSchemaDepth {
		return s
	}
	out := &omap{vals: map[string]any{}}
	props := &omap{vals: map[string]any{}}
	var required []any
	add := func(m *omap) {
		for _, k := range m.keys {
			v := m.vals[k]
			switch k {
			case "allOf":
				continue
			case "properties":
				if pm, ok := v.(*omap); ok {
					for _, pk := range pm.keys {
						if _, dup := props.vals[pk]; !dup {
							props.keys = append(props.keys, pk)
						}
						props.vals[pk] = pm.vals[pk]
					}
				}
				continue
			case "required":
				if r, ok := v.([]any); ok {
					required = append(required, r...)
				}
				continue
			}
			if _, dup := out.vals[k]; !dup {
				out.keys = append(out.keys, k)
			}
			out.vals[k] = v
		}
	}
	add(s)
	for _, sub := range list {
		if m, ok := sub.(*omap); ok {
			add(g.merge(g.resolve(m), depth+1))
		}
	}
	if len(props.keys) > 0 {
		out.keys = append(out.keys, "properties")
		out.vals["properties"] = props
	}
	if len(required) > 0 {
		out.keys = append(out.keys, "required")
		out.vals["required"] = required
	}
	return out
}

// value appends a sample for schema s. idx varies scalars between array
// elements so that uniqueItems holds.
func (g *schemaGen) value(dst []byte, s any, name string, depth, idx int) []byte {
	m, ok := s.(*omap)
	if !ok || depth > maxSchemaDepth {
		// true, {} or unknown: any value validates.
		return appendJSONString(dst, "sample")
	}
	m = g.merge(g.resolve(m), depth)
	if c, ok := m.get("const"); ok {
		return appendAny(dst, c)
	}
	if e, ok := m.get("enum"); ok {
		if list, _ := e.([]any); len(list) > 0 {
			return appendAny(dst, list[idx%len(list)])
		}
	}
	for _, key := range []string{"anyOf", "oneOf"} {
		if alt, ok := m.get(key); ok {
			if list, _ := alt.([]any); len(list) > 0 {
				pick := list[0]
				for _, a := range list {
					if am, ok := a.(*omap); ok && schemaType(g.resolve(am)) != "null" {
						pick = a
						break
					}
				}
				return g.value(dst, pick, name, depth+1, idx)
			}
		}
	}
	switch schemaType(m) {
	case "null":
		return append(dst, "null"...)
	case "boolean":
		return append(dst, "true"...)
	case "integer":
		return g.number(dst, m, true, idx)
	case "number":
		return g.number(dst, m, false, idx)
	case "array":
		return g.array(dst, m, name, depth, idx)
	case "object":
		return g.object(dst, m, depth)
	default:
		return g.str(dst, m, name, idx)
	}
}

// schemaType returns the lower-cased first non-null type of m, inferring
// object or array from properties or items when type is absent, and "null"
// only when null is the sole type.
func schemaType(m *omap) string {
	t, ok := m.get("type")
	if !ok {
		switch {
		case has(m, "properties"), has(m, "required"), has(m, "additionalProperties"):
			return "object"
		case has(m, "items"), has(m, "prefixItems"):
			return "array"
		case has(m, "minimum"), has(m, "maximum"):
			return "number"
		}
		return "string"
	}
	switch v := t.(type) {
	case string:
		return strings.ToLower(v)
	case []any:
		for _, e := range v {
			if s, _ := e.(string); s != "" && !strings.EqualFold(s, "null") {
				return strings.ToLower(s)
			}
		}
		return "null"
	}
	return "string"
}

func has(m *omap, k string) bool { _, ok := m.get(k); return ok }

func numKey(m *omap, k string) (float64, bool) {
	v, ok := m.get(k)
	if !ok {
		return 0, false
	}
	switch n := v.(type) {
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	case string: // Gemini's OpenAPI schema encodes int64 fields as strings.
		f, err := strconv.ParseFloat(n, 64)
		return f, err == nil
	}
	return 0, false
}

func intKey(m *omap, k string) (int, bool) {
	f, ok := numKey(m, k)
	if !ok || f < 0 {
		return 0, ok
	}
	if f > 1<<20 {
		f = 1 << 20
	}
	return int(f), true
}

func (g *schemaGen) number(dst []byte, m *omap, integer bool, idx int) []byte {
	lo, hi := math.Inf(-1), math.Inf(1)
	if v, ok := numKey(m, "minimum"); ok {
		lo = v
		if b, _ := m.get("exclusiveMinimum"); b == true { // draft 4
			lo = nextAbove(v, integer)
		}
	}
	if v, ok := numKey(m, "exclusiveMinimum"); ok {
		lo = math.Max(lo, nextAbove(v, integer))
	}
	if v, ok := numKey(m, "maximum"); ok {
		hi = v
		if b, _ := m.get("exclusiveMaximum"); b == true {
			hi = nextBelow(v, integer)
		}
	}
	if v, ok := numKey(m, "exclusiveMaximum"); ok {
		hi = math.Min(hi, nextBelow(v, integer))
	}
	v := 1.5
	if integer {
		v = 1
		lo, hi = math.Ceil(lo), math.Floor(hi)
	}
	v += float64(idx)
	if v < lo {
		v = lo + float64(idx)
	}
	if v > hi {
		v = hi
	}
	if step, ok := numKey(m, "multipleOf"); ok && step > 0 {
		k := math.Ceil(v / step)
		if k*step > hi {
			k = math.Floor(hi / step)
		}
		v = k * step
		if integer {
			v = math.Round(v)
		}
	}
	if integer {
		return strconv.AppendInt(dst, int64(v), 10)
	}
	return strconv.AppendFloat(dst, v, 'f', -1, 64)
}

func nextAbove(v float64, integer bool) float64 {
	if integer {
		return math.Floor(v) + 1
	}
	return v + math.Max(math.Abs(v)*1e-9, 1e-9)
}

func nextBelow(v float64, integer bool) float64 {
	if integer {
		return math.Ceil(v) - 1
	}
	return v - math.Max(math.Abs(v)*1e-9, 1e-9)
}

func (g *schemaGen) str(dst []byte, m *omap, name string, idx int) []byte {
	s := "sample"
	if name != "" {
		s = "sample " + name
	}
	if f, ok := m.get("format"); ok {
		switch f {
		case "date-time":
			s = "2025-01-01T00:00:00Z"
		case "date":
			s = "2025-01-01"
		case "time":
			s = "12:00:00Z"
		case "email":
			s = "user@example.com"
		case "uri", "url":
			s = "https://example.com/"
		case "uuid":
			s = "00000000-0000-4000-8000-000000000000"
		case "ipv4":
			s = "192.0.2.1"
		case "int64", "int32": // Gemini string-encoded integers
			s = "1"
		}
	}
	if idx > 0 {
		s += "-" + strconv.Itoa(idx)
	}
	if n, ok := intKey(m, "maxLength"); ok && len(s) > n {
		s = s[:n]
	}
	if n, ok := intKey(m, "minLength"); ok && len(s) < n {
		s += strings.Repeat("x", n-len(s))
	}
	return appendJSONString(dst, s)
}

func (g *schemaGen) array(dst []byte, m *omap, name string, depth, idx int) []byte {
	n := 1
	if v, ok := intKey(m, "minItems"); ok && v > n {
		n = v
	}
	if v, ok := intKey(m, "maxItems"); ok && v < n {
		n = v
	}
	var prefix []any
	if p, ok := m.get("prefixItems"); ok {
		prefix, _ = p.([]any)
	}
	items, _ := m.get("items")
	if tuple, ok := items.([]any); ok { // draft 4-2019 tuple form
		prefix, items = tuple, nil
		if ai, ok := m.get("additionalItems"); ok {
			items = ai
		}
	}
	if len(prefix) > n {
		n = len(prefix)
	}
	dst = append(dst, '[')
	for i := range n {
		if i > 0 {
			dst = append(dst, ',')
		}
		sub := items
		if i < len(prefix) {
			sub = prefix[i]
		}
		dst = g.value(dst, sub, name, depth+1, i)
	}
	return append(dst, ']')
}

func (g *schemaGen) object(dst []byte, m *omap, depth int) []byte {
	props, _ := m.get("properties")
	pm, _ := props.(*omap)
	var keys []string
	if r, ok := m.get("required"); ok {
		list, _ := r.([]any)
		for _, k := range list {
			if s, ok := k.(string); ok && !slices.Contains(keys, s) {
				keys = append(keys, s)
			}
		}
	}
	if len(keys) == 0 && pm != nil {
		keys = pm.keys
	}
	if o, ok := m.get("propertyOrdering"); ok {
		if order, ok := o.([]any); ok {
			sorted := make([]string, 0, len(keys))
			for _, k := range order {
				if s, _ := k.(string); slices.Contains(keys, s) && !slices.Contains(sorted, s) {
					sorted = append(sorted, s)
				}
			}
			for _, k := range keys {
				if !slices.Contains(sorted, k) {
					sorted = append(sorted, k)
				}
			}
			keys = sorted
		}
	}
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, k)
		dst = append(dst, ':')
		sub, _ := pm.get(k)
		dst = g.value(dst, sub, k, depth+1, 0)
	}
	return append(dst, '}')
}
