// Package ids defines the gateway's identifier types and API-key format.
//
// Distinct types keep a user id from landing where a platform id belongs.
// Generated ids are time-ordered (48-bit millisecond timestamp, then 80
// random bits, lower-case Crockford base32), so listing by id lists by
// creation time (within a millisecond too, for ids one node makes) and cursors stay stable while new ids arrive.
//
// API keys are `sk-plat_` or `sk-eu_` followed by 43 base62 characters of
// randomness (256 bits) and a 6-character base62 CRC-32 checksum, so a
// malformed or mistyped key is refused without a lookup. Only the SHA-256
// digest of a key is ever stored.
//
// The package is a leaf: it imports nothing of ours and is safe for
// concurrent use (one mutex orders the ids of a millisecond).
package ids

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"strings"
	"sync"
	"time"
)

// PlatformID names a platform (tenant): "plat_" + 26 characters.
type PlatformID string

// EndUserID names an end-user of a platform: "eu_" + 26 characters.
type EndUserID string

// KeyID names an API key record: "key_" + 26 characters.
type KeyID string

// Prefixes of generated ids.
const (
	PlatformPrefix = "plat_"
	EndUserPrefix  = "eu_"
	KeyPrefix      = "key_"
	EntryPrefix    = "txn_"
	RequestPrefix  = "req_"
)

const crockford = "0123456789abcdefghjkmnpqrstvwxyz"

// last is the newest id's millisecond and random part: an id made in the
// same millisecond as the one before it continues from it (the random part
// plus one), so ids this process makes in one millisecond sort in the order
// they were made.
var last struct {
	sync.Mutex
	ms  uint64
	rnd [10]byte
}

// New returns prefix + a 26-character time-ordered unique id for t. Within
// one process, ids of the same millisecond sort in creation order; an
// earlier t than the last id's gets fresh randomness (no order promised).
func New(prefix string, t time.Time) string {
	var b [16]byte
	ms := uint64(t.UnixMilli())
	binary.BigEndian.PutUint64(b[:8], ms<<16)
	last.Lock()
	if ms != last.ms || !increment(last.rnd[:]) {
		if _, err := rand.Read(last.rnd[:]); err != nil {
			last.Unlock()
			panic("ids: crypto/rand failed: " + err.Error()) // broken invariant: no entropy
		}
		last.ms = ms
	}
	copy(b[6:], last.rnd[:])
	last.Unlock()
	var buf [64]byte // prefixes are short: the id is built on the stack and copied once
	out := buf[:0]
	if len(prefix)+26 > len(buf) {
		out = make([]byte, 0, len(prefix)+26)
	}
	out = append(out, prefix...)
	out = out[:len(prefix)+26]
	// 128 bits → 26 base32 digits (130 bits, top 2 zero).
	hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	for i := 25; i >= 0; i-- {
		out[len(prefix)+i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out)
}

// increment adds one to the big-endian number b, reporting false (b then
// all zero) when it overflows.
func increment(b []byte) bool {
	for i := len(b) - 1; i >= 0; i-- {
		b[i]++
		if b[i] != 0 {
			return true
		}
	}
	return false
}

// Valid reports whether s is prefix followed by 26 Crockford base32
// characters, the shape [New] produces.
func Valid(prefix, s string) bool {
	if len(s) != len(prefix)+26 || !strings.HasPrefix(s, prefix) {
		return false
	}
	for i := len(prefix); i < len(s); i++ {
		if strings.IndexByte(crockford, s[i]) < 0 {
			return false
		}
	}
	return true
}

// KeyKind says what a key authorizes.
type KeyKind uint8

// Key kinds.
const (
	KindPlatform KeyKind = 1 // sk-plat_*: platform management
	KindEndUser  KeyKind = 2 // sk-eu_*: one end-user's inference and tools
	KindAdmin    KeyKind = 3 // operator API
)

// String names the kind as API responses do.
func (k KeyKind) String() string {
	switch k {
	case KindPlatform:
		return "platform"
	case KindEndUser:
		return "end_user"
	case KindAdmin:
		return "admin"
	}
	return "unknown"
}

// Raw key prefixes.
const (
	PlatformKeyPrefix = "sk-plat_"
	EndUserKeyPrefix  = "sk-eu_"
	AdminKeyPrefix    = "sk-admin_"
)

// KeyPrefixLen is how many leading characters of a key lists show.
const KeyPrefixLen = 12

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

const (
	keyRandomLen = 43
	keyCheckLen  = 6
)

// ErrMalformedKey is returned by [ParseKey] for text that cannot be a key.
var ErrMalformedKey = errors.New("ids: malformed API key")

// Digest is the SHA-256 of a raw key: what the store keeps.
type Digest [32]byte

// NewKey returns a fresh raw key of the kind, and its digest.
func NewKey(kind KeyKind) (string, Digest) {
	prefix := prefixOf(kind)
	b := make([]byte, 0, len(prefix)+keyRandomLen+keyCheckLen)
	b = append(b, prefix...)
	var rnd [keyRandomLen]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		panic("ids: crypto/rand failed: " + err.Error())
	}
	for _, r := range rnd {
		// 62*4 = 248: rejection-free mapping would bias; 256 bits of input
		// for 43 characters keeps > 250 bits of entropy even with the
		// slight bias of r%62, which is fine for a bearer token.
		b = append(b, base62[int(r)%62])
	}
	b = appendCheck(b, crc32.ChecksumIEEE(b))
	raw := string(b)
	return raw, sha256.Sum256(b)
}

func prefixOf(kind KeyKind) string {
	switch kind {
	case KindPlatform:
		return PlatformKeyPrefix
	case KindEndUser:
		return EndUserKeyPrefix
	case KindAdmin:
		return AdminKeyPrefix
	}
	panic("ids: unknown key kind")
}

func appendCheck(b []byte, c uint32) []byte {
	var d [keyCheckLen]byte
	for i := keyCheckLen - 1; i >= 0; i-- {
		d[i] = base62[c%62]
		c /= 62
	}
	return append(b, d[:]...)
}

// ParseKey checks the shape and checksum of a raw key and returns its kind
// and digest. It reads only raw; the comparison against stored digests is by
// map lookup of the digest, which leaks nothing about the key's characters.
func ParseKey(raw string) (KeyKind, Digest, error) {
	var kind KeyKind
	var prefix string
	switch {
	case strings.HasPrefix(raw, PlatformKeyPrefix):
		kind, prefix = KindPlatform, PlatformKeyPrefix
	case strings.HasPrefix(raw, EndUserKeyPrefix):
		kind, prefix = KindEndUser, EndUserKeyPrefix
	case strings.HasPrefix(raw, AdminKeyPrefix):
		kind, prefix = KindAdmin, AdminKeyPrefix
	default:
		return 0, Digest{}, ErrMalformedKey
	}
	if len(raw) != len(prefix)+keyRandomLen+keyCheckLen {
		return 0, Digest{}, ErrMalformedKey
	}
	for i := len(prefix); i < len(raw); i++ {
		if !isBase62(raw[i]) {
			return 0, Digest{}, ErrMalformedKey
		}
	}
	// Every request's key is parsed: nothing here allocates.
	body := raw[:len(raw)-keyCheckLen]
	var want [keyCheckLen]byte
	if string(appendCheck(want[:0], crcIEEE(body))) != raw[len(body):] {
		return 0, Digest{}, ErrMalformedKey
	}
	var buf [maxKeyLen]byte
	return kind, sha256.Sum256(append(buf[:0], raw...)), nil
}

// crcIEEE is crc32.ChecksumIEEE of s, read in place (ChecksumIEEE takes a
// slice its assembly may keep, so a converted string goes to the heap).
func crcIEEE(s string) uint32 {
	crc := ^uint32(0)
	for i := 0; i < len(s); i++ {
		crc = crc32.IEEETable[byte(crc)^s[i]] ^ crc>>8
	}
	return ^crc
}

// maxKeyLen is the length of the longest well-formed raw key.
const maxKeyLen = max(len(PlatformKeyPrefix), len(EndUserKeyPrefix), len(AdminKeyPrefix)) + keyRandomLen + keyCheckLen

// isBase62 reports whether c is one of base62's characters.
func isBase62(c byte) bool {
	return '0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z'
}

// DisplayPrefix returns the first [KeyPrefixLen] characters of a raw key.
func DisplayPrefix(raw string) string {
	if len(raw) < KeyPrefixLen {
		return raw
	}
	return raw[:KeyPrefixLen]
}
