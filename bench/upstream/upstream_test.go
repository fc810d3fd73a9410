package upstream

import (
	"bytes"
	"io"
	"testing"
	"time"
)

func TestStreamEmitsChunksThenDone(t *testing.T) {
	s := &stream{cfg: Config{Chunks: 3}, start: time.Now()}
	got, err := io.ReadAll(s)
	if err != nil {
		t.Fatalf("ReadAll(stream) error = %v", err)
	}
	want := append(bytes.Repeat(chunkEvent, 3), doneEvent...)
	if !bytes.Equal(got, want) {
		t.Errorf("stream body = %q, want %q", got, want)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"default", DefaultConfig(), true},
		{"negative chunks", Config{Chunks: -1}, false},
		{"huge interval", Config{ChunkInterval: time.Minute}, false},
	} {
		if err := tc.cfg.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: Validate() = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}
