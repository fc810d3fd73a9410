package apps

import (
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
)

// Args reads a tool call's arguments with bounds; errors wrap ErrInvalid
// and name the argument.
type Args struct{ M map[string]any }

// ArgsOf returns the arguments of a tool call.
func ArgsOf(req mcpgo.CallToolRequest) Args { return Args{req.GetArguments()} }

// Str returns a string argument of at most max bytes.
func (a Args) Str(name string, required bool, max int) (string, error) {
	v, ok := a.M[name]
	if !ok || v == nil {
		if required {
			return "", Invalidf("%s is required", name)
		}
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", Invalidf("%s must be a string", name)
	}
	if required && strings.TrimSpace(s) == "" {
		return "", Invalidf("%s must not be empty", name)
	}
	if len(s) > max || !utf8.ValidString(s) {
		return "", Invalidf("%s must be UTF-8 of at most %d bytes", name, max)
	}
	return s, nil
}

// Integer returns an integer argument in [min, max], def when absent.
func (a Args) Integer(name string, def, min, max int64, required bool) (int64, error) {
	v, ok := a.M[name]
	if !ok || v == nil {
		if required {
			return 0, Invalidf("%s is required", name)
		}
		return def, nil
	}
	var n float64
	switch x := v.(type) {
	case float64:
		n = x
	case string: // ids are sometimes sent as strings
		f, err := strconv.ParseFloat(x, 64)
		if err != nil {
			return 0, Invalidf("%s must be an integer", name)
		}
		n = f
	default:
		return 0, Invalidf("%s must be an integer", name)
	}
	if n != math.Trunc(n) || n < float64(min) || n > float64(max) {
		return 0, Invalidf("%s must be an integer from %d to %d", name, min, max)
	}
	return int64(n), nil
}

func (a Args) Boolean(name string, def bool) (bool, error) {
	v, ok := a.M[name]
	if !ok || v == nil {
		return def, nil
	}
	b, ok := v.(bool)
	if !ok {
		return false, Invalidf("%s must be a boolean", name)
	}
	return b, nil
}

// Strs returns a list of at most maxN strings of at most max bytes each.
func (a Args) Strs(name string, maxN, max int) ([]string, error) {
	v, ok := a.M[name]
	if !ok || v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok || len(list) > maxN {
		return nil, Invalidf("%s must be a list of at most %d strings", name, maxN)
	}
	out := make([]string, 0, len(list))
	for _, e := range list {
		s, ok := e.(string)
		if !ok || s == "" || len(s) > max || !utf8.ValidString(s) {
			return nil, Invalidf("%s must hold non-empty strings of at most %d bytes", name, max)
		}
		out = append(out, s)
	}
	return out, nil
}

// Slug checks an identifier that becomes one URL path segment.
func Slug(name, v string) error {
	if v == "" || len(v) > 200 || v == "." || v == ".." {
		return Invalidf("%s is not a valid name", name)
	}
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return Invalidf("%s may hold only letters, digits, '-', '_' and '.'", name)
		}
	}
	return nil
}

// Schema helpers shared by the tools.
var (
	// ReadOnly marks a tool that changes nothing.
	ReadOnly = mcpgo.WithReadOnlyHintAnnotation(true)
	// Writes marks a tool that changes the app's data.
	Writes = mcpgo.WithReadOnlyHintAnnotation(false)
)
