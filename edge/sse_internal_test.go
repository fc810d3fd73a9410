package edge

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
)

// writes records each Write it is given (one per chunk) and fails from
// the failAt-th on (0: never).
type writes struct {
	got    []string
	failAt int
}

func (w *writes) Write(p []byte) (int, error) {
	if w.failAt > 0 && len(w.got)+1 >= w.failAt {
		return 0, errors.New("broken pipe")
	}
	w.got = append(w.got, string(p))
	return len(p), nil
}

func TestEventStreamWritesOneChunkPerFlush(t *testing.T) {
	var sink writes
	s := &eventStream{write: func(w eventWriter) {
		_, _ = w.Write([]byte("data: a"))
		_, _ = w.Write([]byte("\n\n"))
		if err := w.Flush(); err != nil {
			t.Errorf("flush: %v", err)
		}
		_ = w.Flush() // nothing gathered: nothing written
		_, _ = w.Write([]byte("data: [DONE]\n\n"))
		// left unflushed: WriteTo flushes it
	}}
	n, err := s.WriteTo(&sink)
	if err != nil || n != int64(len("data: a\n\ndata: [DONE]\n\n")) {
		t.Fatalf("WriteTo = %d, %v", n, err)
	}
	if want := []string{"data: a\n\n", "data: [DONE]\n\n"}; strings.Join(sink.got, "|") != strings.Join(want, "|") {
		t.Fatalf("chunks %q, want %q", sink.got, want)
	}
	// Close after a written body runs nothing again.
	ran := false
	s.write = func(eventWriter) { ran = true }
	if err := s.Close(); err != nil || ran {
		t.Fatalf("Close after WriteTo: err %v, ran again %v", err, ran)
	}
}

func TestEventStreamReportsTheClientLeavingAtTheFlush(t *testing.T) {
	sink := writes{failAt: 2}
	var errs []error
	s := &eventStream{write: func(w eventWriter) {
		for i := 0; i < 3; i++ {
			_, _ = w.Write([]byte("data: x\n\n"))
			errs = append(errs, w.Flush())
		}
		if _, err := w.Write([]byte("more")); err == nil {
			t.Error("a Write after a failed Flush succeeded")
		}
	}}
	if _, err := s.WriteTo(&sink); err == nil {
		t.Fatal("WriteTo returned no error after the socket failed")
	}
	if errs[0] != nil || errs[1] == nil || errs[2] == nil {
		t.Fatalf("flush errors %v, want nil then failures", errs)
	}
	if len(sink.got) != 1 {
		t.Fatalf("%d chunks written, want 1", len(sink.got))
	}
}

func TestEventStreamNeverWrittenRunsItsWriterAsGone(t *testing.T) {
	runs := 0
	var flushErr error
	s := &eventStream{write: func(w eventWriter) {
		runs++
		_, _ = w.Write([]byte("data: x\n\n"))
		flushErr = w.Flush()
	}}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	if runs != 1 || !errors.Is(flushErr, errClientGone) {
		t.Fatalf("runs %d, flush error %v; want one run that sees the client gone", runs, flushErr)
	}
	if _, err := s.WriteTo(io.Discard); err != nil || runs != 1 {
		t.Fatalf("WriteTo after Close: err %v, runs %d", err, runs)
	}
}

func TestEventStreamReadFallbackYieldsTheSameBytes(t *testing.T) {
	s := &eventStream{write: func(w eventWriter) {
		for _, e := range []string{"data: 1\n\n", "data: 2\n\n"} {
			_, _ = w.Write([]byte(e))
			_ = w.Flush()
		}
	}}
	b, err := io.ReadAll(s)
	if err != nil || string(b) != "data: 1\n\ndata: 2\n\n" {
		t.Fatalf("read %q, %v", b, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// Over a real fasthttp server: each event reaches the client before the
// next one exists, and fasthttp wrote the body through WriteTo (the
// writer got a chunkWriter, not the pipe fallback's bufio.Writer).
func TestEventStreamOverHTTPDeliversEachEventBeforeTheNext(t *testing.T) {
	ln := fasthttputil.NewInmemoryListener()
	defer ln.Close()
	gate := make(chan struct{})
	direct := make(chan bool, 1)
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("text/event-stream")
		ctx.Response.ImmediateHeaderFlush = true
		setEventStream(ctx, func(w eventWriter) {
			_, ok := w.(*chunkWriter)
			direct <- ok
			_, _ = w.Write([]byte("data: first\n\n"))
			_ = w.Flush()
			<-gate
			_, _ = w.Write([]byte("data: second\n\n"))
			_ = w.Flush()
		})
	}}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Shutdown() //nolint:errcheck

	c := &fasthttp.Client{Dial: func(string) (net.Conn, error) { return ln.Dial() }, StreamResponseBody: true}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://gateway.test/stream")
	if err := c.Do(req, resp); err != nil {
		t.Fatal(err)
	}
	defer resp.CloseBodyStream() //nolint:errcheck
	br := bufio.NewReader(resp.BodyStream())
	got := make(chan string, 1)
	go func() {
		line, _ := br.ReadString('\n')
		got <- line
	}()
	select {
	case line := <-got:
		if line != "data: first\n" {
			t.Fatalf("first line %q", line)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the first event did not arrive before the second existed")
	}
	close(gate)
	if !<-direct {
		t.Error("fasthttp read the body through the pipe fallback, not WriteTo")
	}
	rest, err := io.ReadAll(br)
	if err != nil || !bytes.Contains(rest, []byte("data: second\n\n")) {
		t.Fatalf("rest %q, %v", rest, err)
	}
}
