// Package skills is the skill catalog: public skills (the operator's,
// POST /admin/v1/skills) and each platform's private skills (POST
// /v1/skills, or the MCP create_skill tool), their sealed files, reviews
// and quotas. Package mcp exposes it as the five skill tools; the edge
// serves its REST routes. A platform sees public skills and its own;
// another platform's private skill is [ErrNotFound] everywhere, never
// "forbidden".
//
// # Archives
//
// A skill arrives as a zip of its folder with SKILL.md at the root or
// inside the one top folder holding everything (that folder is stripped).
// Central-directory sizes are checked before anything is inflated, then
// re-checked while inflating: archive, per-file and total size, file
// count, compression ratio; paths must be relative, '/'-separated UTF-8
// without "." or ".." segments, backslashes, colons or control
// characters; no symlinks or other special entries; no duplicate paths
// (also ignoring case) and no path both file and folder. Limits are
// [Limits]; refusals are [*Error] with the API code and status.
//
// # Storage
//
// File contents are content-addressed by SHA-256 and stored once per
// digest, sealed (AES-256-GCM, additional data "skill_blob|" + hex
// digest), in Pebble (0x64), written in the same commit as the reference
// count (0x63) that first names them and deleted in the commit that drops
// it to zero; Postgres snapshots and `gateway restore --from-postgres`
// therefore carry skills whole. The first lines of SKILL.md (for search)
// are sealed too ("skill_head|" + id), so no file content is on disk in
// clear. Blob files of the earlier layout (Config.LegacyDir/blobs/…) are
// still read. Each platform's private skills are bounded by [Quota]
// (count and bytes, per platform and per creating end-user; 409
// too_many_skills / skill_storage_full):
//
//	0x60 skillID                             → skill JSON (files, review sums, creator)
//	0x61 owner 0x00 skillID                  → empty (owner "" = public)
//	0x62 skillID 0x00 platformID 0x00 endUserID → review JSON
//	0x63 sha256(32)                          → uint64 reference count
//	0x64 sha256(32)                          → sealed file bytes
//
// One review per end-user and skill; a resubmission replaces it, and the
// skill's sums change in the same commit. Find scans the public and the
// caller's owner index (linear in the visible catalog, which the quota
// bounds).
//
// # Concurrency and imports
//
// A [Catalog] is safe for concurrent use and starts no goroutine. One
// mutex serializes writes (records, review sums, blob reference counts
// and blobs; uploads run one at a time). skills imports persistence and
// internal packages only.
package skills

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/assistiv/gateway/internal/clock"
	"github.com/assistiv/gateway/internal/secrets"
	"github.com/assistiv/gateway/persistence"
)

// ErrInvalid wraps a message about invalid input, safe to show.
var ErrInvalid = errors.New("skills: invalid input")

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Config configures a [Catalog].
type Config struct {
	// Limits bounds each skill's archive and files. Default [DefaultLimits].
	Limits Limits
	// Quota bounds each platform's (and end-user's) skills. Default
	// [DefaultQuota].
	Quota Quota
	// LegacyDir is where an earlier version kept sealed blob files
	// (LegacyDir/blobs/…); they are still read and removed with their
	// skill. Default "": none.
	LegacyDir string
	// Clock stamps skills. Default the wall clock.
	Clock clock.Clock
	// Logger receives operational messages. Default slog.Default().
	Logger *slog.Logger
}

// Records is the store the catalog keeps its records and files in, with
// [persistence.Store]'s meanings ([persistence.ErrNotFound], atomic and
// durable Commit): a lone node's Pebble store, or in a cluster the
// records every node shares (cluster.Shared), so that a skill uploaded
// through one node is served by all.
type Records interface {
	Get(key []byte) ([]byte, error)
	Commit(ops ...persistence.Op) error
	ScanPrefix(prefix []byte, reverse bool, fn func(k, v []byte) bool) error
}

// Locker is an optional capability of a Records shared by several nodes
// (cluster.Shared): Lock takes the lock called name for every node that
// uses the same records, waiting a bounded time, and returns its
// release. A lone node's store has none: the package's mutex suffices.
type Locker interface {
	Lock(name string) (unlock func(), err error)
}

// Catalog is the skill catalog over a store. Safe for concurrent use.
type Catalog struct {
	cfg   Config
	store Records
	log   *slog.Logger
	blobs *blobStore // nil without a keyring: writes and fetches answer ErrUnavailable
	mu    sync.Mutex // serializes skill writes
}

// New returns the catalog over store; keyring seals the files (nil: the
// catalog answers ErrUnavailable to uploads and fetches).
func New(cfg Config, store Records, keyring *secrets.Keyring) (*Catalog, error) {
	if cfg.Limits == (Limits{}) {
		cfg.Limits = DefaultLimits()
	}
	if cfg.Quota == (Quota{}) {
		cfg.Quota = DefaultQuota()
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := cfg.Limits.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.Quota.Validate(); err != nil {
		return nil, err
	}
	if store == nil {
		return nil, errors.New("skills: a store is required")
	}
	c := &Catalog{cfg: cfg, store: store, log: cfg.Logger}
	if keyring != nil {
		c.blobs = &blobStore{dir: cfg.LegacyDir, store: store, keyring: keyring}
	}
	return c, nil
}

// Available reports whether the catalog can store and fetch files.
func (c *Catalog) Available() bool { return c.blobs != nil }

// Limits returns the per-skill limits in force.
func (c *Catalog) Limits() Limits { return c.cfg.Limits }

// lock serializes skill writes (blob reference counts, quotas): on this
// node with mu, and across nodes when the store is a [Locker].
func (c *Catalog) lock() (func(), error) {
	c.mu.Lock()
	l, ok := c.store.(Locker)
	if !ok {
		return c.mu.Unlock, nil
	}
	unlock, err := l.Lock("skills")
	if err != nil {
		c.mu.Unlock()
		return nil, err
	}
	return func() { unlock(); c.mu.Unlock() }, nil
}

func (c *Catalog) fmtTime(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z07:00")
}
