// Package secrets seals secrets at rest: upstream provider keys, OAuth client
// secrets and tokens, and webhook signing secrets. It owns the sealed format,
// the master-key [Keyring] and loading the master key from its base64 form or
// from a key file in the data directory.
//
// Sealed format (version 1), all integers big-endian:
//
//	+---------+------------+-------------+---------------------------+
//	| version | key id     | nonce       | ciphertext || GCM tag     |
//	| 1 byte  | 4 bytes    | 12 bytes    | len(plaintext) + 16 bytes |
//	+---------+------------+-------------+---------------------------+
//
// The cipher is AES-256-GCM with a random 96-bit nonce. The additional data
// authenticated by GCM is the 5-byte header (version and key id) followed by
// the caller's aad, which names the record the value belongs to, for example
// "provider_key|<platform_id>|openai". A sealed value copied to another
// tenant's row or to another field therefore fails to open.
//
// The key id is a fingerprint of the master key ([KeyIDOf]), so rotation needs
// no numbering scheme: the [Keyring] seals with its current key and opens with
// any key it holds. Re-sealing old rows is the caller's batch job
// ([SealedKeyID] finds them).
//
// Limits: with random nonces NIST SP 800-38D bounds one key to about 2^32
// seals. The values sealed here (keys, secrets, OAuth tokens on refresh) stay
// far below that per key; rotate the master key long before. A later format
// version can move to per-record keys or XAES-256-GCM without breaking old rows.
//
// Concurrency: a [Keyring] is safe for concurrent use. Seal and Open take no
// locks (they read an immutable snapshot); Add and Rotate serialize among
// themselves and publish a new snapshot.
//
// The package is a leaf: it imports nothing of ours.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

// KeySize is the length of a master key in bytes (AES-256).
const KeySize = 32

const (
	formatV1  byte = 1
	headerLen      = 1 + 4 // version + key id
	nonceLen       = 12
	tagLen         = 16
	overhead       = headerLen + nonceLen + tagLen
)

var (
	// ErrTampered means a sealed value failed authentication: it was modified,
	// truncated, sealed under other additional data, or is not a sealed value.
	ErrTampered = errors.New("secrets: sealed value tampered or bound to another record")
	// ErrUnknownKeyID means the value was sealed under a master key the
	// keyring does not hold.
	ErrUnknownKeyID = errors.New("secrets: unknown master key id")
	// ErrBadKey means a master key is malformed: wrong length, not standard
	// base64, or a key file with unsafe permissions.
	ErrBadKey = errors.New("secrets: bad master key")
)

// KeyID names a master key inside sealed values. It is the first four bytes
// of SHA-256("assistiv/secrets key id\x00" || key), so it reveals nothing
// useful about the key.
type KeyID uint32

// String formats the id as 8 hex digits.
func (id KeyID) String() string { return fmt.Sprintf("%08x", uint32(id)) }

// KeyIDOf returns the id the keyring gives key.
func KeyIDOf(key []byte) KeyID {
	h := sha256.New()
	h.Write([]byte("assistiv/secrets key id\x00"))
	h.Write(key)
	return KeyID(binary.BigEndian.Uint32(h.Sum(nil)))
}

// Keyring holds master keys: the current one seals, any of them opens.
// The raw key bytes are not retained, only the expanded AES key schedules.
// Build one with [NewKeyring] or [FromBase64]; a zero Keyring holds no key
// and refuses to seal. Safe for concurrent use.
type Keyring struct {
	mu   sync.Mutex // serializes Add and Rotate; readers use ring
	ring atomic.Pointer[ring]
}

// ring is an immutable snapshot of a Keyring.
type ring struct {
	current KeyID
	aeads   map[KeyID]cipher.AEAD
}

// NewKeyring returns a keyring that seals with current and can also open
// values sealed under any of old. Every key must be [KeySize] bytes.
// The keyring keeps no reference to the given slices.
func NewKeyring(current []byte, old ...[]byte) (*Keyring, error) {
	k := &Keyring{}
	for _, key := range old {
		if _, err := k.Add(key); err != nil {
			return nil, err
		}
	}
	if _, err := k.Rotate(current); err != nil {
		return nil, err
	}
	return k, nil
}

// FromBase64 parses the standard base64 form of a 32-byte master key (the
// ASSISTIV_MASTER_KEY format, see [ParseKey]) and returns a keyring with it
// as the current key.
func FromBase64(s string) (*Keyring, error) {
	key, err := ParseKey(s)
	if err != nil {
		return nil, err
	}
	return NewKeyring(key)
}

// ParseKey decodes the standard, padded base64 form of a [KeySize]-byte
// master key. Surrounding white space (a trailing newline from a file or a
// shell) is ignored. The error wraps [ErrBadKey] and never quotes s.
func ParseKey(s string) ([]byte, error) {
	key, err := base64.StdEncoding.Strict().DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("master key is not standard base64: %w", ErrBadKey)
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("master key is %d bytes, want %d: %w", len(key), KeySize, ErrBadKey)
	}
	return key, nil
}

// Add makes key available for opening without changing the key that seals.
// Adding a key already held is a no-op. It returns the key's id.
func (k *Keyring) Add(key []byte) (KeyID, error) { return k.add(key, false) }

// Rotate adds key (if new) and makes it the key that seals from now on.
// Values sealed under earlier keys still open.
func (k *Keyring) Rotate(key []byte) (KeyID, error) { return k.add(key, true) }

// snapshot returns the current ring; a zero Keyring has an empty one.
func (k *Keyring) snapshot() *ring {
	if r := k.ring.Load(); r != nil {
		return r
	}
	return &ring{}
}

func (k *Keyring) add(key []byte, makeCurrent bool) (KeyID, error) {
	if len(key) != KeySize {
		return 0, fmt.Errorf("master key is %d bytes, want %d: %w", len(key), KeySize, ErrBadKey)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	id := KeyIDOf(key)

	k.mu.Lock()
	defer k.mu.Unlock()
	old := k.snapshot()
	next := &ring{current: old.current, aeads: make(map[KeyID]cipher.AEAD, len(old.aeads)+1)}
	for i, a := range old.aeads {
		next.aeads[i] = a
	}
	if _, ok := next.aeads[id]; !ok {
		next.aeads[id] = aead
	}
	// A 32-bit fingerprint collision between two different keys is
	// astronomically unlikely; if it happens the first key wins and the
	// second cannot be used, which Open would report as ErrTampered.
	if makeCurrent || len(old.aeads) == 0 {
		next.current = id
	}
	k.ring.Store(next)
	return id, nil
}

// Current returns the id of the key that seals.
func (k *Keyring) Current() KeyID { return k.snapshot().current }

// Has reports whether the keyring holds the key with id.
func (k *Keyring) Has(id KeyID) bool {
	_, ok := k.snapshot().aeads[id]
	return ok
}

// String describes the keyring without key material.
func (k *Keyring) String() string {
	r := k.snapshot()
	return fmt.Sprintf("secrets.Keyring{current: %s, keys: %d}", r.current, len(r.aeads))
}

// GoString is String, so %#v cannot print key schedules either.
func (k *Keyring) GoString() string { return k.String() }

// Seal encrypts plaintext under the current key, binding it to aad. The
// result is a fresh slice in the format drawn in the package doc; sealing the
// same input twice gives different outputs. aad is not stored: Open needs the
// same aad. Safe for concurrent use.
func (k *Keyring) Seal(plaintext, aad []byte) ([]byte, error) {
	r := k.snapshot()
	aead, ok := r.aeads[r.current]
	if !ok {
		return nil, fmt.Errorf("keyring has no current key: %w", ErrUnknownKeyID)
	}
	out := make([]byte, headerLen, len(plaintext)+overhead)
	out[0] = formatV1
	binary.BigEndian.PutUint32(out[1:headerLen], uint32(r.current))
	// NewGCMWithRandomNonce draws the nonce from crypto/rand and writes it
	// before the ciphertext, so the nonce can never be reused by mistake.
	return aead.Seal(out, nil, plaintext, fullAAD(out[:headerLen], aad)), nil
}

// Open authenticates and decrypts a value produced by [Keyring.Seal] with
// the same aad. It returns [ErrUnknownKeyID] when the value names a key the
// keyring lacks and [ErrTampered] for every other failure. Safe for
// concurrent use.
func (k *Keyring) Open(sealed, aad []byte) ([]byte, error) {
	id, err := SealedKeyID(sealed)
	if err != nil {
		return nil, err
	}
	aead, ok := k.snapshot().aeads[id]
	if !ok {
		return nil, fmt.Errorf("key %s: %w", id, ErrUnknownKeyID)
	}
	pt, err := aead.Open(nil, nil, sealed[headerLen:], fullAAD(sealed[:headerLen], aad))
	if err != nil {
		return nil, ErrTampered
	}
	return pt, nil
}

// SealedKeyID returns the id of the key sealed was sealed under, without
// authenticating it. A re-encryption job uses it to find values whose id is
// not the keyring's [Keyring.Current].
func SealedKeyID(sealed []byte) (KeyID, error) {
	if len(sealed) < overhead {
		return 0, fmt.Errorf("sealed value is %d bytes, shorter than the %d-byte minimum: %w", len(sealed), overhead, ErrTampered)
	}
	if sealed[0] != formatV1 {
		return 0, fmt.Errorf("unknown sealed format version %d: %w", sealed[0], ErrTampered)
	}
	return KeyID(binary.BigEndian.Uint32(sealed[1:headerLen])), nil
}

func fullAAD(header, aad []byte) []byte {
	// header has a fixed length, so header||aad is unambiguous.
	full := make([]byte, 0, len(header)+len(aad))
	return append(append(full, header...), aad...)
}

// Redact returns a form of s safe to show or log: an ellipsis and the last
// four characters ("…abcd"). Values shorter than 12 characters show nothing
// but the ellipsis, since four characters would be a third of them; the
// empty string stays empty.
func Redact(s string) string {
	if s == "" {
		return ""
	}
	n := utf8.RuneCountInString(s)
	if n < 12 {
		return "…"
	}
	r := []rune(s)
	return "…" + string(r[n-4:])
}
