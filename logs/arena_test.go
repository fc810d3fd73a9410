package logs

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/assistiv/gateway/persistence"
)

// TestArenaSlicesNeverOverlap: slices the arena hands out, filled to
// their room and then appended past it, keep their own bytes.
func TestArenaSlicesNeverOverlap(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	ar := arena{next: 100}
	var got [][]byte
	var want [][]byte
	for i := range 2000 {
		n := r.IntN(700)
		b := ar.take(n)
		if len(b) != 0 || cap(b) != n {
			t.Fatalf("take(%d) = len %d cap %d", n, len(b), cap(b))
		}
		fill := bytes.Repeat([]byte{byte(i)}, n)
		b = append(b, fill...)
		if i%7 == 0 {
			b = append(b, 'x') // past its room: a copy, never the next slice's bytes
			fill = append(fill, 'x')
		}
		got, want = append(got, b), append(want, fill)
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("slice %d was overwritten", i)
		}
	}
}

// TestAppendedLogKeysMatch: the keys the writer builds in its arena are
// the keys readers look up.
func TestAppendedLogKeysMatch(t *testing.T) {
	for _, pid := range []string{"", "plat_01", "plat_01m99h5rkpr5nrzt4erajx9wen"} {
		for _, seq := range []uint64{0, 1, 1 << 40, ^uint64(0)} {
			if got, want := persistence.AppendLogEntryKey([]byte("pre"), pid, seq), append([]byte("pre"), persistence.LogEntryKey(pid, seq)...); !bytes.Equal(got, want) {
				t.Errorf("AppendLogEntryKey(%q, %d) = %q, want %q", pid, seq, got, want)
			}
		}
		// The layout readers scan and look up: family, platform, 0, seq.
		k := persistence.LogEntryKey(pid, 258)
		if want := append(append(append([]byte{persistence.FamilyLogEntry}, pid...), 0), 0, 0, 0, 0, 0, 0, 1, 2); !bytes.Equal(k, want) {
			t.Errorf("LogEntryKey(%q, 258) = %q, want %q", pid, k, want)
		}
		if !bytes.HasPrefix(k, persistence.LogEntriesPrefix(pid)) {
			t.Errorf("LogEntryKey(%q, 258) is not under LogEntriesPrefix", pid)
		}
		if got, want := persistence.LogRequestKey(pid, "req_1"), append(append(append([]byte{persistence.FamilyLogRequest}, pid...), 0), "req_1"...); !bytes.Equal(got, want) {
			t.Errorf("LogRequestKey(%q, req_1) = %q, want %q", pid, got, want)
		}
		for _, rid := range []string{"", "req_01m99h5rn82c4pjpk9h8rkk4ce"} {
			if got, want := persistence.AppendLogRequestKey(nil, pid, rid), persistence.LogRequestKey(pid, rid); !bytes.Equal(got, want) {
				t.Errorf("AppendLogRequestKey(%q, %q) = %q, want %q", pid, rid, got, want)
			}
		}
	}
}
