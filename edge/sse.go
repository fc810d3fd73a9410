package edge

import (
	"bufio"
	"errors"
	"io"

	"github.com/valyala/fasthttp"
)

// Server-sent event bodies without a second goroutine.
//
// fasthttp's SetBodyStreamWriter runs the writer in a goroutine of its own
// that writes into an in-memory pipe, which the serving goroutine copies to
// the socket: every event crosses two goroutines and is copied twice, and
// a client that left is noticed only on a later flush. An eventStream is
// instead a body whose WriteTo fasthttp's serving goroutine calls itself
// (fasthttp.BodyWriterTo): each Flush of the events gathered is one HTTP
// chunk written and flushed to the socket, and a socket error is the
// Flush's error at once. At 1,000 concurrent streams this is half the
// goroutine switches per event.

// eventWriter is what a stream's writer writes to: Write gathers bytes,
// Flush sends what was gathered (one chunk) and says whether the client
// is still there. A *bufio.Writer is one.
type eventWriter interface {
	io.Writer
	Flush() error
}

// setEventStream makes write the response body: fasthttp calls it once,
// after the handler returned (so write must not touch the RequestCtx),
// with the connection as its eventWriter. When the body is never written
// (the client left before the headers went out) write still runs, once,
// on a writer that fails at the first Flush, so the upstream is stopped
// and what it produced is billed exactly as for a client that leaves
// mid-stream.
func setEventStream(ctx *fasthttp.RequestCtx, write func(w eventWriter)) {
	ctx.Response.SetBodyStream(&eventStream{write: write}, -1)
}

// eventStream is the body of one event stream. fasthttp uses one of its
// methods at a time, from the serving goroutine.
type eventStream struct {
	write func(w eventWriter)
	ran   bool          // write was started
	pipe  io.ReadCloser // the Read fallback's pipe, when fasthttp read instead
}

var _ fasthttp.BodyWriterTo = (*eventStream)(nil)

// SupportsBodyWriteTo tells fasthttp to call WriteTo rather than Read.
func (s *eventStream) SupportsBodyWriteTo() bool { return true }

// WriteTo runs the stream's writer on the serving goroutine; w is
// fasthttp's chunked framing, which flushes every chunk to the socket.
func (s *eventStream) WriteTo(w io.Writer) (int64, error) {
	if s.ran {
		return 0, nil
	}
	s.ran = true
	cw := &chunkWriter{w: w, buf: make([]byte, 0, 1024)}
	s.write(cw)
	_ = cw.Flush() // whatever the writer left unflushed
	return cw.n, cw.err
}

// Read is the fallback for a consumer that reads the body (fasthttp does
// not, for a chunked response, while SupportsBodyWriteTo says true): the
// writer then runs as SetBodyStreamWriter would run it, behind a pipe.
func (s *eventStream) Read(p []byte) (int, error) {
	if s.pipe == nil {
		if s.ran {
			return 0, io.EOF
		}
		s.ran = true
		s.pipe = fasthttp.NewStreamReader(func(bw *bufio.Writer) { s.write(bw) })
	}
	return s.pipe.Read(p)
}

// Close ends the body. A body never written runs its writer on a writer
// that fails, so the stream is closed and billed as for a client that left.
func (s *eventStream) Close() error {
	if s.pipe != nil {
		return s.pipe.Close()
	}
	if !s.ran {
		s.ran = true
		s.write(goneWriter{})
	}
	return nil
}

// chunkWriter gathers an event's bytes and writes them as one chunk.
type chunkWriter struct {
	w   io.Writer
	buf []byte
	n   int64
	err error
}

func (c *chunkWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	c.buf = append(c.buf, p...)
	return len(p), nil
}

func (c *chunkWriter) Flush() error {
	if c.err != nil || len(c.buf) == 0 {
		return c.err
	}
	n, err := c.w.Write(c.buf)
	c.n += int64(n)
	if err == nil && n < len(c.buf) {
		err = io.ErrShortWrite
	}
	c.buf = c.buf[:0]
	c.err = err
	return err
}

// errClientGone is what a goneWriter answers.
var errClientGone = errors.New("the client closed the connection before the stream began")

// goneWriter is the writer of a stream whose body was never written.
type goneWriter struct{}

func (goneWriter) Write([]byte) (int, error) { return 0, errClientGone }
func (goneWriter) Flush() error              { return errClientGone }
