package ids

import (
	"errors"
	"hash/crc32"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestNewIsTimeOrderedAndValid(t *testing.T) {
	t0 := time.UnixMilli(1_700_000_000_000)
	a := New(EndUserPrefix, t0)
	b := New(EndUserPrefix, t0.Add(time.Millisecond))
	if !(a < b) {
		t.Fatalf("New not time-ordered: %s !< %s", a, b)
	}
	if !Valid(EndUserPrefix, a) || Valid(PlatformPrefix, a) || Valid(EndUserPrefix, a[:len(a)-1]) {
		t.Fatalf("Valid disagrees with New for %s", a)
	}
	seen := map[string]bool{}
	for i := 0; i < 10000; i++ {
		id := New(KeyPrefix, t0)
		if seen[id] {
			t.Fatalf("duplicate id %s", id)
		}
		seen[id] = true
	}
}

func TestKeyRoundTrip(t *testing.T) {
	for _, kind := range []KeyKind{KindPlatform, KindEndUser, KindAdmin} {
		raw, d := NewKey(kind)
		k, d2, err := ParseKey(raw)
		if err != nil || k != kind || d != d2 {
			t.Fatalf("ParseKey(NewKey(%v)) = %v, %v", kind, k, err)
		}
	}
}

func TestParseKeyRefusesMalformed(t *testing.T) {
	raw, _ := NewKey(KindEndUser)
	flipped := []byte(raw)
	if flipped[10] == 'a' {
		flipped[10] = 'b'
	} else {
		flipped[10] = 'a'
	}
	tests := map[string]string{
		"empty":          "",
		"wrong prefix":   "sk-xyz_" + raw[6:],
		"short":          raw[:len(raw)-1],
		"long":           raw + "A",
		"bad checksum":   string(flipped),
		"bad characters": strings.Replace(raw, raw[8:9], "!", 1),
		"bearer word":    "Bearer " + raw,
	}
	for name, in := range tests {
		if _, _, err := ParseKey(in); !errors.Is(err, ErrMalformedKey) {
			t.Errorf("%s: ParseKey(%q) error = %v, want ErrMalformedKey", name, in, err)
		}
	}
}

// TestParseKeyCharactersAndAllocations: every byte outside base62, at any
// position of the random part, is refused (the range check agrees with
// the alphabet), and parsing allocates nothing (every request parses its
// key).
func TestParseKeyCharactersAndAllocations(t *testing.T) {
	for c := 0; c < 256; c++ {
		if isBase62(byte(c)) != (strings.IndexByte(base62, byte(c)) >= 0) {
			t.Fatalf("isBase62(%q) disagrees with the alphabet", byte(c))
		}
	}
	raw, want := NewKey(KindAdmin)
	for _, pos := range []int{len(AdminKeyPrefix), len(raw) - keyCheckLen - 1, len(raw) - 1} {
		b := []byte(raw)
		b[pos] = '-'
		if _, _, err := ParseKey(string(b)); !errors.Is(err, ErrMalformedKey) {
			t.Errorf("a '-' at %d: error = %v, want ErrMalformedKey", pos, err)
		}
	}
	if n := testing.AllocsPerRun(100, func() {
		if _, d, err := ParseKey(raw); err != nil || d != want {
			t.Fatal("ParseKey of a good key failed")
		}
	}); n != 0 {
		t.Errorf("ParseKey allocates %v times, want 0", n)
	}
}

func FuzzParseKey(f *testing.F) {
	raw, _ := NewKey(KindPlatform)
	f.Add(raw)
	f.Add("sk-eu_")
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := crcIEEE(s), crc32.ChecksumIEEE([]byte(s)); got != want {
			t.Fatalf("crcIEEE(%q) = %x, want %x", s, got, want)
		}
		k, _, err := ParseKey(s)
		if err == nil && k == 0 {
			t.Fatalf("ParseKey(%q) accepted with no kind", s)
		}
	})
}

// TestNewSortsInCreationOrderWithinAMillisecond: ids made in one
// millisecond (here all of them, at one fixed time) sort in the order they
// were made, also from concurrent callers' point of view per caller.
func TestNewSortsInCreationOrderWithinAMillisecond(t *testing.T) {
	at := time.UnixMilli(1_700_000_000_123)
	prev := New(EntryPrefix, at)
	for i := 0; i < 10_000; i++ {
		id := New(EntryPrefix, at)
		if id <= prev {
			t.Fatalf("id %d %q does not sort after %q", i, id, prev)
		}
		prev = id
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			prev := New(EntryPrefix, at)
			for i := 0; i < 2_000; i++ {
				id := New(EntryPrefix, at)
				if id <= prev {
					t.Errorf("concurrent: %q does not sort after %q", id, prev)
					return
				}
				prev = id
			}
		}()
	}
	wg.Wait()
	// A later millisecond still sorts after, an earlier one before.
	if later := New(EntryPrefix, at.Add(time.Millisecond)); later <= prev {
		t.Fatalf("next millisecond's id %q sorts before %q", later, prev)
	}
	if earlier := New(EntryPrefix, at.Add(-time.Millisecond)); earlier >= prev {
		t.Fatalf("previous millisecond's id %q sorts after %q", earlier, prev)
	}
}

func TestIncrementCarriesAndReportsOverflow(t *testing.T) {
	b := []byte{0x00, 0xff, 0xff}
	if !increment(b) || b[0] != 1 || b[1] != 0 || b[2] != 0 {
		t.Fatalf("carry: %x", b)
	}
	b = []byte{0xff, 0xff}
	if increment(b) || b[0] != 0 || b[1] != 0 {
		t.Fatalf("overflow: %x", b)
	}
}

// A prefix longer than the stack buffer still yields a whole id.
func TestNewWithALongPrefix(t *testing.T) {
	prefix := strings.Repeat("p", 50) + "_"
	id := New(prefix, time.Now())
	if !Valid(prefix, id) {
		t.Fatalf("%q is not a valid id with prefix %q", id, prefix)
	}
}

// BenchmarkNew: one allocation per id (the string itself).
func BenchmarkNew(b *testing.B) {
	b.ReportAllocs()
	now := time.Now()
	for b.Loop() {
		_ = New(RequestPrefix, now)
	}
}
