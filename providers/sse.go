package providers

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Event is one server-sent event. Data is the event's data lines joined with
// "\n"; it is only valid until the next call to [SSEReader.Next].
type Event struct {
	Type string // the "event:" field; "" means "message"
	ID   string
	Data []byte
}

// SSEReader reads server-sent events (the WHATWG text/event-stream format)
// with bounded memory: a line or an event larger than the limit is an error,
// not an allocation.
//
// It follows the format with two leniencies upstreams need: a trailing event
// not followed by a blank line is still delivered at end of input (its data
// is then checked by the JSON decoder), and a lone "\r" ends a line only
// when a "\n" line contains it. Comments (":" lines), "retry:" and unknown
// fields are ignored. Not safe for concurrent use.
type SSEReader struct {
	br       *bufio.Reader
	max      int
	line     []byte
	data     []byte
	typ      []byte
	id       []byte
	hasData  bool
	ev       Event
	pending  [][]byte // lines split from one read on lone '\r'
	err      error
	consumed int64
}

// NewSSEReader returns a reader of r whose lines and events may not exceed
// maxEvent bytes.
func NewSSEReader(r io.Reader, maxEvent int) *SSEReader {
	if maxEvent <= 0 {
		maxEvent = DefaultMaxEventBytes
	}
	size := 16 << 10
	if size > maxEvent {
		size = maxEvent
	}
	if size < 16 {
		size = 16
	}
	return &SSEReader{br: bufio.NewReaderSize(r, size), max: maxEvent}
}

// Consumed returns the bytes read from the input so far.
func (r *SSEReader) Consumed() int64 { return r.consumed }

// Next returns the next event. At the end of input it returns io.EOF; a
// line or event over the limit returns an [*Error] matching
// [ErrEventTooLarge]; read errors are returned as they are. After an error,
// Next keeps returning it.
func (r *SSEReader) Next() (*Event, error) {
	if r.err != nil {
		return nil, r.err
	}
	for {
		line, err := r.readLine()
		if err != nil {
			if err == io.EOF && r.hasData {
				// Leniency: deliver a final event without its blank line.
				r.err = io.EOF
				return r.dispatch(), nil
			}
			r.err = err
			return nil, err
		}
		if len(line) == 0 {
			if !r.hasData {
				r.typ, r.id = r.typ[:0], r.id[:0]
				continue
			}
			return r.dispatch(), nil
		}
		if line[0] == ':' {
			continue
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(field) {
		case "data":
			if len(r.data)+len(value)+1 > r.max {
				r.err = newErr(ErrEventTooLarge, fmt.Sprintf("SSE event larger than %d bytes", r.max))
				return nil, r.err
			}
			if r.hasData {
				r.data = append(r.data, '\n')
			}
			r.data = append(r.data, value...)
			r.hasData = true
		case "event":
			r.typ = append(r.typ[:0], value...)
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				r.id = append(r.id[:0], value...)
			}
		}
	}
}

// dispatch returns the event read: the same Event each time, its Data the
// reader's buffer (valid until the next call, as Event says), its Type and
// ID the previous event's strings when they are the same.
func (r *SSEReader) dispatch() *Event {
	if string(r.typ) != r.ev.Type {
		r.ev.Type = string(r.typ)
	}
	if string(r.id) != r.ev.ID {
		r.ev.ID = string(r.id)
	}
	r.ev.Data = r.data
	r.data = r.data[:0]
	r.typ, r.hasData = r.typ[:0], false
	return &r.ev
}

// readLine returns the next line without its terminator.
func (r *SSEReader) readLine() ([]byte, error) {
	if len(r.pending) > 0 {
		l := r.pending[0]
		r.pending = r.pending[1:]
		return l, nil
	}
	r.line = r.line[:0]
	var l []byte
	for {
		chunk, err := r.br.ReadSlice('\n')
		r.consumed += int64(len(chunk))
		if len(r.line)+len(chunk) > r.max+2 {
			return nil, newErr(ErrEventTooLarge, fmt.Sprintf("SSE line longer than %d bytes", r.max))
		}
		if err == nil && len(r.line) == 0 {
			l = chunk // a whole line in the buffer: used before the next read
			break
		}
		r.line = append(r.line, chunk...)
		l = r.line
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err == io.EOF {
			if len(r.line) == 0 {
				return nil, io.EOF
			}
			break // last line without a terminator
		}
		return nil, err
	}
	if n := len(l); n > 0 && l[n-1] == '\n' {
		l = l[:n-1]
	}
	if n := len(l); n > 0 && l[n-1] == '\r' {
		l = l[:n-1]
	}
	if bytes.IndexByte(l, '\r') >= 0 {
		parts := bytes.Split(l, []byte{'\r'})
		r.pending = parts[1:]
		return parts[0], nil
	}
	return l, nil
}
