package mockllm

import (
	"bytes"
	"hash/maphash"
	"sync"
)

// conv is a parsed request, provider-neutral: what the reply depends on.
type conv struct {
	model        string
	stream       bool
	includeUsage bool // OpenAI stream_options.include_usage
	maxTokens    int  // 0: none
	promptTokens int
	last         lastKind
	lastText     string // the last user message's text: the reply's seed
	toolResult   string // the tool result quoted when last == lastToolResult
	tools        []toolDef
	choice       toolChoice
	format       formatKind
	schema       []byte // for formatSchema
}

type lastKind uint8

const (
	lastOther lastKind = iota
	lastUser
	lastToolResult
)

type toolDef struct {
	name   string
	schema []byte
}

type toolChoice struct {
	mode choiceMode
	name string // for choiceNamed
}

type choiceMode uint8

const (
	choiceAuto choiceMode = iota
	choiceNone
	choiceRequired
	choiceNamed
)

type formatKind uint8

const (
	formatText formatKind = iota
	formatJSONObject
	formatSchema
)

type replyKind uint8

const (
	replyText replyKind = iota
	replyJSON
	replyTool
)

type finishKind uint8

const (
	finishStop finishKind = iota
	finishLength
	finishTool
)

// plan is the complete, deterministic reply to one request, shared read-only
// by every request with the same cache key.
type plan struct {
	route      Route
	dialect    dialect
	conv       conv
	directives directives
	kind       replyKind
	pieces     []string // one token each
	text       string   // pieces joined (text and JSON replies)
	toolName   string
	toolID     string
	finish     finishKind
	id         string // response id
	// body is the rendered non-streaming reply; nil for streaming requests.
	body []byte
	// preamble is the text said before the tool call of a text-and-tool
	// reply, one token per piece; empty otherwise.
	preamble []string
	// key material, to rule out hash collisions on cache hits.
	keyPath  []byte
	keyBody  []byte
	keyShape shape
}

// shape is what the request's headers say about the reply itself, part of
// the reply cache key: its length (0: the directive's or the config's) and
// whether a tool call opens with text.
type shape struct {
	tokens   int
	textTool bool
}

// buildPlan decides the reply. tokens is the requested reply length
// (header, else directive, else config), before the max-tokens cap;
// textTool asks a tool call to open with a sentence of text.
func buildPlan(r Route, c conv, d directives, tokens int, textTool bool, bodyHash uint64) *plan {
	p := &plan{route: r, dialect: dialectFor(r, c.model), conv: c, directives: d}
	limit := c.maxTokens
	var tool *toolDef
	if c.last == lastUser && len(c.tools) > 0 && c.choice.mode != choiceNone {
		tool = &c.tools[0]
		if c.choice.mode == choiceNamed {
			for i := range c.tools {
				if c.tools[i].name == c.choice.name {
					tool = &c.tools[i]
				}
			}
		}
	}
	switch {
	case c.last == lastToolResult:
		p.kind = replyText
		var cut bool
		p.pieces, cut = wordPieces("The tool returned: "+c.toolResult, limit)
		if cut {
			p.finish = finishLength
		}
	case tool != nil:
		p.kind = replyTool
		p.toolName = tool.name
		p.toolID = hexID("", bodyHash^0x746f6f6c, 24)
		p.pieces = fragments(sampleJSON(tool.schema), limit)
		p.finish = finishTool
		// Text comes only when the model chose to call: a forced call
		// (tool_choice required or named; Anthropic "any"/"tool", which it
		// serves by prefilling the turn) starts with the call itself.
		if textTool && c.choice.mode == choiceAuto {
			p.preamble = sentencePieces("preamble "+c.lastText, min(tokens, preambleWords))
			p.text = join(p.preamble)
		}
	case c.format == formatSchema:
		p.kind = replyJSON
		p.pieces = fragments(sampleJSON(c.schema), limit)
	case c.format == formatJSONObject:
		p.kind = replyJSON
		n := min(tokens, 12)
		s := string(appendJSONString([]byte(`{"response":`), join(sentencePieces(c.lastText, n)))) + "}"
		p.pieces = fragments(s, limit)
	default:
		p.kind = replyText
		n := tokens
		if limit > 0 && limit < n {
			n = limit
			p.finish = finishLength
		}
		p.pieces = sentencePieces(c.lastText, n)
	}
	if p.kind != replyTool {
		p.text = join(p.pieces)
	}
	p.id = hexID("", bodyHash, 24)
	return p
}

// preambleWords bounds the text before a text-and-tool reply's call.
const preambleWords = 8

// completionTokens is the reply's token count: one per piece, the text
// before a tool call included.
func (p *plan) completionTokens() int { return len(p.preamble) + len(p.pieces) }

func join(pieces []string) string {
	n := 0
	for _, s := range pieces {
		n += len(s)
	}
	b := make([]byte, 0, n)
	for _, s := range pieces {
		b = append(b, s...)
	}
	return string(b)
}

// planCache maps request keys to plans. Bounded: once full, it stops
// admitting (benchmarks repeat a handful of requests; tests rarely fill it).
type planCache struct {
	seed maphash.Seed
	max  int
	mu   sync.RWMutex // guards m
	m    map[uint64]*plan
}

const maxCachedBody = 64 << 10

func newPlanCache(max int) *planCache {
	return &planCache{seed: maphash.MakeSeed(), max: max, m: make(map[uint64]*plan)}
}

func (c *planCache) key(r Route, path []byte, sh shape, body []byte) uint64 {
	tokens := sh.tokens
	var h maphash.Hash
	h.SetSeed(c.seed)
	h.WriteByte(byte(r.index()))
	h.Write(path)
	h.WriteByte(0)
	h.WriteByte(byte(tokens))
	h.WriteByte(byte(tokens >> 8))
	h.WriteByte(byte(tokens >> 16))
	if sh.textTool {
		h.WriteByte(1)
	} else {
		h.WriteByte(0)
	}
	h.Write(body)
	return h.Sum64()
}

func (c *planCache) get(k uint64, path []byte, sh shape, body []byte) *plan {
	if c.max == 0 {
		return nil
	}
	c.mu.RLock()
	p := c.m[k]
	c.mu.RUnlock()
	if p == nil || p.keyShape != sh || !bytes.Equal(p.keyPath, path) || !bytes.Equal(p.keyBody, body) {
		return nil
	}
	return p
}

func (c *planCache) put(k uint64, p *plan) {
	if c.max == 0 || len(p.keyBody) > maxCachedBody {
		return
	}
	c.mu.Lock()
	if len(c.m) < c.max {
		c.m[k] = p
	}
	c.mu.Unlock()
}

func (c *planCache) reset() {
	c.mu.Lock()
	clear(c.m)
	c.mu.Unlock()
}
