package providers

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// EventDecoder turns one provider's SSE events into Chat Completions chunks.
// Implementations live in the provider packages; a [Stream] drives one. Not
// safe for concurrent use.
type EventDecoder interface {
	// Decode handles one event. It returns the chunks the event produces
	// (often none), and done=true after the provider's terminal event, after
	// which no more events are read. An error ends the stream. The
	// returned slice, and the chunks, may be reused by the next call.
	Decode(ev *Event) (chunks []*ChatChunk, done bool, err error)
	// Finish is called when the body ends before a terminal event. It
	// returns the last chunks, if the provider's stream may end that way,
	// or an error matching [ErrTruncated].
	Finish() ([]*ChatChunk, error)
	// Usage returns the usage reported so far, and whether any was.
	Usage() (Usage, bool)
}

// StreamConfig tunes a [Stream].
type StreamConfig struct {
	// MaxEventBytes bounds one SSE line or event. Default DefaultMaxEventBytes.
	MaxEventBytes int
	// IncludeUsage adds a final chunk with no choices and the usage, as
	// stream_options.include_usage asks, when the upstream reported usage.
	IncludeUsage bool
}

// Stream yields a streamed completion as OpenAI-style chunks, whatever the
// upstream. Next and Usage belong to one goroutine; Close may be called
// from any goroutine at any time, and unblocks a pending Next.
type Stream struct {
	body   io.ReadCloser
	sse    *SSEReader
	dec    EventDecoder
	cfg    StreamConfig
	queue  []*ChatChunk // decoded, not yet returned: queue[head:]
	head   int
	last   ChatChunk // id, created, model of the latest chunk, for the usage chunk
	done   bool
	ended  bool
	err    error
	closer sync.Once
	// terminal: the provider's terminal event was read, so what is left
	// of the body is its framing; Close reads it to reuse the connection.
	terminal atomic.Bool
}

// NewStream returns a Stream reading SSE from body through dec. The Stream
// owns body and closes it.
func NewStream(body io.ReadCloser, dec EventDecoder, cfg StreamConfig) *Stream {
	return &Stream{body: body, sse: NewSSEReader(body, cfg.MaxEventBytes), dec: dec, cfg: cfg}
}

// Next returns the next chunk, io.EOF after the last one, or the error that
// ended the stream: ctx.Err() after a cancellation, or an [*Error]
// (upstream error event, malformed or truncated stream, bound hit). The
// returned chunk, and the bytes it holds (Raw), are valid until the next
// call: a relayed stream reuses them ([Collect] copies them).
func (s *Stream) Next() (*ChatChunk, error) {
	for {
		if s.head < len(s.queue) {
			c := s.queue[s.head]
			s.queue[s.head] = nil
			if s.head++; s.head == len(s.queue) {
				s.queue, s.head = s.queue[:0], 0
			}
			if c.ID != "" {
				s.last.ID, s.last.Created, s.last.Model = c.ID, c.Created, c.Model
			}
			return c, nil
		}
		if s.err != nil {
			return nil, s.err
		}
		if s.done {
			if !s.ended {
				s.ended = true
				if u, ok := s.dec.Usage(); ok && s.cfg.IncludeUsage {
					return &ChatChunk{
						ID: s.last.ID, Object: ObjectChatCompletionChunk, Created: s.last.Created,
						Model: s.last.Model, Choices: []ChunkChoice{}, Usage: &u,
					}, nil
				}
			}
			return nil, io.EOF
		}
		ev, err := s.sse.Next()
		switch {
		case err == io.EOF:
			chunks, ferr := s.dec.Finish()
			s.queue = append(s.queue, chunks...)
			if ferr != nil {
				s.err = ferr
			} else {
				s.done = true
			}
		case err != nil:
			s.err = err
		default:
			chunks, done, derr := s.dec.Decode(ev)
			s.queue = append(s.queue, chunks...)
			if derr != nil {
				s.err = derr
			} else if done {
				s.done = true
				s.terminal.Store(true)
			}
		}
	}
}

// Usage returns the usage the upstream reported so far and whether it
// reported any. After Next returned io.EOF it is the call's final usage;
// after an error or a cancellation it is what arrived before (possibly only
// the prompt tokens), and the caller should add an estimate for the output
// it relayed.
func (s *Stream) Usage() (Usage, bool) { return s.dec.Usage() }

// Close ends the stream and releases its connection. It is safe to call
// more than once and from another goroutine.
func (s *Stream) Close() error {
	var err error
	s.closer.Do(func() {
		if d, ok := s.body.(drainCloser); ok && s.terminal.Load() {
			d.drainAndClose(drainMaxBytes, drainWait)
			return
		}
		err = s.body.Close()
	})
	return err
}

// After a stream's terminal event, the body still holds the end of its
// HTTP framing (the last chunk of a chunked answer), which usually
// arrives with or just after the event. A connection whose body was not
// read to its end cannot be reused, so closing a finished stream reads
// that end first, within these bounds: an upstream that keeps sending
// or holds the connection open after its terminal event costs at most
// drainWait, and its connection is closed as before.
const (
	drainMaxBytes = 4 << 10
	drainWait     = 10 * time.Millisecond
)

// drainCloser is a body that can read its remainder before closing ([Body]).
type drainCloser interface {
	drainAndClose(max int64, wait time.Duration)
}

// Collect reads s to the end. It is for tests and tools; the edge relays
// chunks as they come.
func Collect(s *Stream) ([]*ChatChunk, error) {
	var out []*ChatChunk
	for {
		c, err := s.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		cp := *c
		cp.Raw = bytes.Clone(c.Raw)
		out = append(out, &cp)
	}
}
