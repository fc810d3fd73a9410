package secrets

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

func newKey(tb testing.TB) []byte {
	tb.Helper()
	k := make([]byte, KeySize)
	rand.Read(k)
	return k
}

func newRing(tb testing.TB, key []byte, old ...[]byte) *Keyring {
	tb.Helper()
	k, err := NewKeyring(key, old...)
	if err != nil {
		tb.Fatalf("NewKeyring: %v", err)
	}
	return k
}

func TestSealOpenRoundTrip(t *testing.T) {
	k := newRing(t, newKey(t))
	tests := []struct {
		name      string
		plaintext []byte
		aad       []byte
	}{
		{"empty plaintext", nil, []byte("provider_key|plt_1|openai")},
		{"empty aad", []byte("sk-live-abc"), nil},
		{"provider key", []byte("sk-proj-0123456789abcdef"), []byte("provider_key|plt_1|openai")},
		{"binary", bytes.Repeat([]byte{0, 0xff}, 1000), []byte("oauth_token|plt_1|usr_9|github")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sealed, err := k.Seal(tt.plaintext, tt.aad)
			if err != nil {
				t.Fatalf("Seal: %v", err)
			}
			if len(sealed) != len(tt.plaintext)+overhead {
				t.Errorf("len(Seal) = %d, want %d", len(sealed), len(tt.plaintext)+overhead)
			}
			if len(tt.plaintext) > 4 && bytes.Contains(sealed, tt.plaintext) {
				t.Errorf("Seal output contains the plaintext")
			}
			got, err := k.Open(sealed, tt.aad)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if !bytes.Equal(got, tt.plaintext) {
				t.Errorf("Open = %q, want %q", got, tt.plaintext)
			}
		})
	}
}

func TestOneBitTamperAnywhereFails(t *testing.T) {
	k := newRing(t, newKey(t))
	aad := []byte("webhook_secret|plt_1|ep_1")
	sealed, err := k.Seal([]byte("whsec_abcdefghijklmnopqrstuvwxyz"), aad)
	if err != nil {
		t.Fatal(err)
	}
	for i := range sealed {
		for bit := range 8 {
			bad := bytes.Clone(sealed)
			bad[i] ^= 1 << bit
			if _, err := k.Open(bad, aad); err == nil {
				t.Fatalf("Open(sealed with byte %d bit %d flipped) succeeded", i, bit)
			} else if !errors.Is(err, ErrTampered) && !errors.Is(err, ErrUnknownKeyID) {
				t.Fatalf("Open(byte %d bit %d flipped) = %v, want ErrTampered or ErrUnknownKeyID", i, bit, err)
			}
		}
	}
	for n := range sealed {
		if _, err := k.Open(sealed[:n], aad); !errors.Is(err, ErrTampered) {
			t.Fatalf("Open(truncated to %d) = %v, want ErrTampered", n, err)
		}
	}
	if _, err := k.Open(append(bytes.Clone(sealed), 0), aad); !errors.Is(err, ErrTampered) {
		t.Fatalf("Open(extended) = %v, want ErrTampered", err)
	}
}

// TestSwappedBetweenTenantsOrFieldsFails is B-9's swap case: a ciphertext
// moved to another record's row does not open there.
func TestSwappedBetweenTenantsOrFieldsFails(t *testing.T) {
	k := newRing(t, newKey(t))
	sealed, err := k.Seal([]byte("sk-a"), []byte("provider_key|plt_A|openai"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, aad string }{
		{"other tenant", "provider_key|plt_B|openai"},
		{"other provider", "provider_key|plt_A|anthropic"},
		{"other field", "oauth_client_secret|plt_A|openai"},
		{"empty", ""},
		{"prefix", "provider_key|plt_A|opena"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := k.Open(sealed, []byte(tt.aad)); !errors.Is(err, ErrTampered) {
				t.Errorf("Open(aad %q) = %v, want ErrTampered", tt.aad, err)
			}
		})
	}
}

func TestUnknownKeyIDFails(t *testing.T) {
	k1 := newRing(t, newKey(t))
	k2 := newRing(t, newKey(t))
	sealed, err := k1.Seal([]byte("secret"), []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k2.Open(sealed, []byte("x")); !errors.Is(err, ErrUnknownKeyID) {
		t.Errorf("Open under another keyring = %v, want ErrUnknownKeyID", err)
	}
}

func TestRotationTransparent(t *testing.T) {
	key1, key2 := newKey(t), newKey(t)
	k := newRing(t, key1)
	aad := []byte("provider_key|plt_1|xai")
	old, err := k.Seal([]byte("old"), aad)
	if err != nil {
		t.Fatal(err)
	}
	id2, err := k.Rotate(key2)
	if err != nil {
		t.Fatal(err)
	}
	if k.Current() != id2 || id2 != KeyIDOf(key2) {
		t.Fatalf("Current() = %s after Rotate, want %s", k.Current(), id2)
	}
	cur, err := k.Seal([]byte("new"), aad)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		sealed []byte
		want   string
		keyID  KeyID
	}{
		{"sealed before rotation", old, "old", KeyIDOf(key1)},
		{"sealed after rotation", cur, "new", id2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := k.Open(tt.sealed, aad)
			if err != nil || string(got) != tt.want {
				t.Errorf("Open = %q, %v; want %q", got, err, tt.want)
			}
			if id, _ := SealedKeyID(tt.sealed); id != tt.keyID {
				t.Errorf("SealedKeyID = %s, want %s", id, tt.keyID)
			}
		})
	}

	// A node restarted with the new key current and the old one retained
	// reads both; one without the old key reports which key is missing.
	restarted := newRing(t, key2, key1)
	if _, err := restarted.Open(old, aad); err != nil {
		t.Errorf("Open(old) after restart with both keys: %v", err)
	}
	newOnly := newRing(t, key2)
	if _, err := newOnly.Open(old, aad); !errors.Is(err, ErrUnknownKeyID) {
		t.Errorf("Open(old) with only the new key = %v, want ErrUnknownKeyID", err)
	}
	// Add does not change the sealing key.
	if _, err := newOnly.Add(key1); err != nil || newOnly.Current() != id2 {
		t.Errorf("Add changed Current to %s (err %v), want %s", newOnly.Current(), err, id2)
	}
}

// TestNonceUniqueness seals 1,000,000 times (B-9) from several goroutines
// and checks no nonce repeats.
func TestNonceUniqueness(t *testing.T) {
	n := 1_000_000
	if testing.Short() {
		n = 50_000
	}
	k := newRing(t, newKey(t))
	workers := runtime.GOMAXPROCS(0)
	nonces := make([][nonceLen]byte, n)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				s, err := k.Seal(nil, nil)
				if err != nil {
					t.Error(err)
					return
				}
				copy(nonces[i][:], s[headerLen:headerLen+nonceLen])
			}
		}()
	}
	wg.Wait()
	seen := make(map[[nonceLen]byte]struct{}, n)
	for i, nc := range nonces {
		if _, dup := seen[nc]; dup {
			t.Fatalf("nonce %x repeated at seal %d", nc, i)
		}
		seen[nc] = struct{}{}
	}
}

func TestParseKey(t *testing.T) {
	good := newKey(t)
	enc := base64.StdEncoding.EncodeToString(good)
	tests := []struct {
		name    string
		in      string
		wantErr bool
	}{
		{"canonical", enc, false},
		{"trailing newline", enc + "\n", false},
		{"empty", "", true},
		{"not base64", "not base64 at all!!", true},
		{"url alphabet", base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 32)), true},
		{"unpadded", strings.TrimRight(enc, "="), true},
		{"16 bytes", base64.StdEncoding.EncodeToString(good[:16]), true},
		{"31 bytes", base64.StdEncoding.EncodeToString(good[:31]), true},
		{"33 bytes", base64.StdEncoding.EncodeToString(append(bytes.Clone(good), 1)), true},
		{"hex", fmt.Sprintf("%x", good), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, err := ParseKey(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrBadKey) {
					t.Errorf("ParseKey(%q) = %v, want ErrBadKey", tt.in, err)
				}
				if err != nil && tt.in != "" && strings.Contains(err.Error(), tt.in) {
					t.Errorf("ParseKey error quotes the input: %v", err)
				}
				return
			}
			if err != nil || !bytes.Equal(key, good) {
				t.Errorf("ParseKey(%q) = %x, %v; want %x", tt.in, key, err, good)
			}
		})
	}
	if _, err := FromBase64(enc); err != nil {
		t.Errorf("FromBase64: %v", err)
	}
	if _, err := NewKeyring(good[:31]); !errors.Is(err, ErrBadKey) {
		t.Errorf("NewKeyring(31 bytes) = %v, want ErrBadKey", err)
	}
}

func TestKeyFileCreatedOnceThenReused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	key1, created, err := LoadOrCreateKeyFile(dir)
	if err != nil || !created {
		t.Fatalf("first LoadOrCreateKeyFile = created %v, %v; want created", created, err)
	}
	fi, err := os.Stat(filepath.Join(dir, KeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode = %v, want 0600", fi.Mode().Perm())
	}
	key2, created, err := LoadOrCreateKeyFile(dir)
	if err != nil || created {
		t.Fatalf("second LoadOrCreateKeyFile = created %v, %v; want loaded", created, err)
	}
	if !bytes.Equal(key1, key2) {
		t.Fatalf("second load returned another key")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("data dir holds %d entries, want only %s", len(entries), KeyFileName)
	}
	// The file holds the ASSISTIV_MASTER_KEY form.
	data, _ := os.ReadFile(filepath.Join(dir, KeyFileName))
	if k, err := ParseKey(string(data)); err != nil || !bytes.Equal(k, key1) {
		t.Errorf("key file content does not parse as the key: %v", err)
	}
}

func TestKeyFileConcurrentFirstStartAgree(t *testing.T) {
	dir := t.TempDir()
	const n = 8
	keys := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, _, err := LoadOrCreateKeyFile(dir)
			if err != nil {
				t.Error(err)
			}
			keys[i] = k
		}()
	}
	wg.Wait()
	for i := 1; i < n; i++ {
		if !bytes.Equal(keys[i], keys[0]) {
			t.Fatalf("concurrent first starts produced different keys")
		}
	}
}

func TestKeyFileRejected(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions")
	}
	tests := []struct {
		name    string
		content string
		mode    os.FileMode
	}{
		{"world readable", base64.StdEncoding.EncodeToString(make([]byte, 32)), 0o644},
		{"short key", base64.StdEncoding.EncodeToString(make([]byte, 16)), 0o600},
		{"garbage", "hello", 0o600},
		{"empty", "", 0o600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, KeyFileName)
			if err := os.WriteFile(p, []byte(tt.content), tt.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, tt.mode); err != nil {
				t.Fatal(err)
			}
			if _, _, err := LoadOrCreateKeyFile(dir); !errors.Is(err, ErrBadKey) {
				t.Errorf("LoadOrCreateKeyFile = %v, want ErrBadKey", err)
			}
			if data, _ := os.ReadFile(p); string(data) != tt.content {
				t.Errorf("bad key file was overwritten")
			}
		})
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"empty", "", ""},
		{"short", "abc", "…"},
		{"eleven", "sk-12345678", "…"},
		{"provider key", "sk-proj-0123456789abcd", "…abcd"},
		{"multibyte tail", "secret-value-ключ", "…ключ"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Redact(tt.in); got != tt.want {
				t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestKeyringPrintsNoKeyMaterial(t *testing.T) {
	k := newRing(t, newKey(t))
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		got := fmt.Sprintf(format, k)
		if !strings.HasPrefix(got, "secrets.Keyring{current: ") {
			t.Errorf("Sprintf(%q, keyring) = %q", format, got)
		}
	}
}

func BenchmarkSeal(b *testing.B) {
	k := newRing(b, newKey(b))
	pt, aad := []byte("sk-proj-0123456789abcdef0123456789"), []byte("provider_key|plt_1|openai")
	for b.Loop() {
		if _, err := k.Seal(pt, aad); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	k := newRing(b, newKey(b))
	aad := []byte("provider_key|plt_1|openai")
	s, _ := k.Seal([]byte("sk-proj-0123456789abcdef0123456789"), aad)
	for b.Loop() {
		if _, err := k.Open(s, aad); err != nil {
			b.Fatal(err)
		}
	}
}

func TestZeroKeyringRefuses(t *testing.T) {
	var k Keyring
	if _, err := k.Seal([]byte("x"), nil); !errors.Is(err, ErrUnknownKeyID) {
		t.Errorf("zero Keyring Seal = %v, want ErrUnknownKeyID", err)
	}
	sealed, _ := newRing(t, newKey(t)).Seal([]byte("x"), nil)
	if _, err := k.Open(sealed, nil); !errors.Is(err, ErrUnknownKeyID) {
		t.Errorf("zero Keyring Open = %v, want ErrUnknownKeyID", err)
	}
	key := newKey(t)
	if id, err := k.Add(key); err != nil || k.Current() != id || id != KeyIDOf(key) || !k.Has(id) {
		t.Errorf("zero Keyring Add = %s, %v; Current %s", id, err, k.Current())
	}
	if _, err := k.Seal([]byte("x"), nil); err != nil {
		t.Errorf("Seal after first Add = %v", err)
	}
}
