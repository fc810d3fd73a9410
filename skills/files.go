package skills

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/assistiv/gateway/internal/secrets"
	"github.com/assistiv/gateway/persistence"
)

// Limits bound what one skill may hold. Every way in (the REST
// archive upload, the create_skill tool) checks them.
type Limits struct {
	// MaxArchiveBytes bounds a decoded zip archive. Default 8 MiB, range
	// 1 KiB..64 MiB. (The edge's request body limit applies first.)
	MaxArchiveBytes int64
	// MaxTotalBytes bounds the sum of a skill's file sizes, uncompressed.
	// Default 20 MiB, range 1 KiB..256 MiB.
	MaxTotalBytes int64
	// MaxFileBytes bounds one file, uncompressed. Default 5 MiB, range
	// 1 KiB..MaxTotalBytes.
	MaxFileBytes int64
	// MaxFiles bounds the number of files. Default 500, range 1..10000.
	MaxFiles int
	// MaxRatio bounds an archive entry's uncompressed/compressed size
	// ratio once it inflates past 64 KiB. Default 100, range 2..10000.
	MaxRatio int64
}

// DefaultLimits returns the defaults documented on [Limits].
func DefaultLimits() Limits {
	return Limits{MaxArchiveBytes: 8 << 20, MaxTotalBytes: 20 << 20, MaxFileBytes: 5 << 20, MaxFiles: 500, MaxRatio: 100}
}

// Validate reports the first invalid field.
func (l Limits) Validate() error {
	switch {
	case l.MaxArchiveBytes < 1<<10 || l.MaxArchiveBytes > 64<<20:
		return fmt.Errorf("mcp: Limits.MaxArchiveBytes %d out of range 1KiB..64MiB", l.MaxArchiveBytes)
	case l.MaxTotalBytes < 1<<10 || l.MaxTotalBytes > 256<<20:
		return fmt.Errorf("mcp: Limits.MaxTotalBytes %d out of range 1KiB..256MiB", l.MaxTotalBytes)
	case l.MaxFileBytes < 1<<10 || l.MaxFileBytes > l.MaxTotalBytes:
		return fmt.Errorf("mcp: Limits.MaxFileBytes %d out of range 1KiB..MaxTotalBytes", l.MaxFileBytes)
	case l.MaxFiles < 1 || l.MaxFiles > 10000:
		return fmt.Errorf("mcp: Limits.MaxFiles %d out of range 1..10000", l.MaxFiles)
	case l.MaxRatio < 2 || l.MaxRatio > 10000:
		return fmt.Errorf("mcp: Limits.MaxRatio %d out of range 2..10000", l.MaxRatio)
	}
	return nil
}

// ratioFloor is the inflated size below which an entry's compression ratio
// is not checked (small, highly repetitive text files compress well).
const ratioFloor = 64 << 10

// Error is a refused skill upload: Code is the API error code and
// Status the HTTP status (400, or 413 for size limits). Its message is safe
// to show. errors.Is matches another *Error with the same Code.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return "mcp: " + e.Code + ": " + e.Message }

// Is reports whether target is a *Error with the same code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

func refuse(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// The refusal codes, for errors.Is.
var (
	ErrInvalidArchive   = &Error{Code: "invalid_archive"}
	ErrArchiveTooLarge  = &Error{Code: "archive_too_large"}
	ErrFileTooLarge     = &Error{Code: "file_too_large"}
	ErrTooManyFiles     = &Error{Code: "too_many_files"}
	ErrCompressionRatio = &Error{Code: "compression_ratio_exceeded"}
	ErrUnsafePath       = &Error{Code: "unsafe_path"}
	ErrUnsupportedEntry = &Error{Code: "unsupported_entry"}
	ErrDuplicatePath    = &Error{Code: "duplicate_path"}
	ErrMissingSkillMD   = &Error{Code: "missing_skill_md"}
)

// Content is one file of a skill being created.
type Content struct {
	path string
	data []byte
}

// checkPath refuses a path that could escape or confuse the folder an
// agent unpacks the skill into: empty or "." / ".." segments, absolute
// paths, backslashes, colons (drive letters, alternate streams), invalid
// UTF-8 and control characters.
func checkPath(p string) error {
	switch {
	case p == "":
		return refuse(400, "unsafe_path", "an entry has an empty path")
	case !utf8.ValidString(p):
		return refuse(400, "unsafe_path", "entry path %q is not valid UTF-8", p)
	case len(p) > 512:
		return refuse(400, "unsafe_path", "entry path %.40q… is longer than 512 bytes", p)
	case strings.ContainsRune(p, '\\'):
		return refuse(400, "unsafe_path", "entry path %q contains a backslash", p)
	case strings.HasPrefix(p, "/"):
		return refuse(400, "unsafe_path", "entry path %q is absolute", p)
	case strings.ContainsRune(p, ':'):
		return refuse(400, "unsafe_path", "entry path %q contains a colon", p)
	}
	for _, r := range p {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return refuse(400, "unsafe_path", "entry path %q contains a control character", p)
		}
	}
	for _, seg := range strings.Split(p, "/") {
		switch {
		case seg == "":
			return refuse(400, "unsafe_path", "entry path %q has an empty segment", p)
		case seg == "." || seg == "..":
			return refuse(400, "unsafe_path", "entry path %q contains %q", p, seg)
		case len(seg) > 255:
			return refuse(400, "unsafe_path", "entry path %q has a segment longer than 255 bytes", p)
		}
	}
	return nil
}

// normalize checks a skill's file set as a whole and returns it sorted by
// path: no duplicate (also ignoring case), no path both a file and a
// folder, a SKILL.md at the root or inside the one top folder that holds
// every file (that folder is then stripped: it is the skill).
func normalize(files []Content) ([]Content, error) {
	if len(files) == 0 {
		return nil, refuse(400, "missing_skill_md", "the skill holds no files; it needs a SKILL.md")
	}
	seen := make(map[string]string, len(files))
	dirs := map[string]bool{}
	for _, f := range files {
		fold := strings.ToLower(f.path)
		if prev, ok := seen[fold]; ok {
			return nil, refuse(400, "duplicate_path", "entry path %q appears twice (as %q)", f.path, prev)
		}
		seen[fold] = f.path
		for i := strings.IndexByte(f.path, '/'); i >= 0; i = next(f.path, i) {
			dirs[strings.ToLower(f.path[:i])] = true
		}
	}
	for _, f := range files {
		if dirs[strings.ToLower(f.path)] {
			return nil, refuse(400, "duplicate_path", "entry path %q is both a file and a folder", f.path)
		}
	}
	if _, ok := seen["skill.md"]; !ok || seen["skill.md"] != "SKILL.md" {
		top, _, _ := strings.Cut(files[0].path, "/")
		strip := top + "/"
		for _, f := range files {
			if !strings.HasPrefix(f.path, strip) {
				return nil, refuse(400, "missing_skill_md", "SKILL.md must be at the archive's root or inside its one top folder")
			}
		}
		if seen[strings.ToLower(strip+"SKILL.md")] != strip+"SKILL.md" {
			return nil, refuse(400, "missing_skill_md", "SKILL.md must be at the archive's root or inside its one top folder")
		}
		for i := range files {
			files[i].path = strings.TrimPrefix(files[i].path, strip)
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].path < files[j].path })
	return files, nil
}

func next(p string, i int) int {
	j := strings.IndexByte(p[i+1:], '/')
	if j < 0 {
		return -1
	}
	return i + 1 + j
}

// decodeArchive decodes the base64 of a zip archive, refusing one larger
// than the limits before decoding.
func decodeArchive(b64 string, lim Limits) ([]byte, error) {
	b64 = strings.TrimSpace(b64)
	if b64 == "" {
		return nil, refuse(400, "invalid_archive", "archive_base64 is required")
	}
	if int64(base64.StdEncoding.DecodedLen(len(b64))) > lim.MaxArchiveBytes+3 {
		return nil, refuse(413, "archive_too_large", "the archive exceeds %d bytes", lim.MaxArchiveBytes)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		if raw, err = base64.RawStdEncoding.DecodeString(b64); err != nil {
			return nil, refuse(400, "invalid_archive", "archive_base64 is not valid base64")
		}
	}
	if int64(len(raw)) > lim.MaxArchiveBytes {
		return nil, refuse(413, "archive_too_large", "the archive exceeds %d bytes", lim.MaxArchiveBytes)
	}
	return raw, nil
}

// readArchive unpacks a zip archive in memory under the limits. Sizes are
// checked from the central directory before inflating anything and again
// while inflating (the reader refuses an entry longer than it declared).
func readArchive(raw []byte, lim Limits) ([]Content, error) {
	zr, err := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) { // insecure paths are refused below, with a clearer code
		return nil, refuse(400, "invalid_archive", "the archive is not a readable zip file")
	}
	if len(zr.File) > 2*lim.MaxFiles+64 { // folders count here too, generously
		return nil, refuse(400, "too_many_files", "the archive holds more than %d files", lim.MaxFiles)
	}
	var files []Content
	var total int64
	for _, f := range zr.File {
		name := f.Name
		isDir := strings.HasSuffix(name, "/")
		if err := checkPath(strings.TrimSuffix(name, "/")); err != nil {
			return nil, err
		}
		mode := f.Mode()
		switch {
		case mode&fs.ModeSymlink != 0:
			return nil, refuse(400, "unsupported_entry", "entry %q is a symbolic link; links are not allowed", name)
		case isDir || mode.IsDir():
			continue
		case mode.Type() != 0:
			return nil, refuse(400, "unsupported_entry", "entry %q is not a regular file", name)
		case f.Flags&0x1 != 0:
			return nil, refuse(400, "invalid_archive", "entry %q is encrypted", name)
		case f.Method != zip.Store && f.Method != zip.Deflate:
			return nil, refuse(400, "invalid_archive", "entry %q uses an unsupported compression method", name)
		}
		if len(files) == lim.MaxFiles {
			return nil, refuse(400, "too_many_files", "the archive holds more than %d files", lim.MaxFiles)
		}
		size := f.UncompressedSize64
		if size > uint64(lim.MaxFileBytes) {
			return nil, refuse(413, "file_too_large", "entry %q exceeds %d bytes", name, lim.MaxFileBytes)
		}
		if total += int64(size); total > lim.MaxTotalBytes {
			return nil, refuse(413, "archive_too_large", "the files exceed %d bytes in total, uncompressed", lim.MaxTotalBytes)
		}
		if size > ratioFloor && size > uint64(lim.MaxRatio)*max(f.CompressedSize64, 1) {
			return nil, refuse(400, "compression_ratio_exceeded", "entry %q inflates more than %d times", name, lim.MaxRatio)
		}
		data, err := inflate(f, lim.MaxFileBytes)
		if err != nil {
			return nil, err
		}
		files = append(files, Content{path: name, data: data})
	}
	return normalize(files)
}

func inflate(f *zip.File, limit int64) ([]byte, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, refuse(400, "invalid_archive", "entry %q cannot be read", f.Name)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, min(int64(f.UncompressedSize64), limit)+1))
	switch {
	case err != nil:
		return nil, refuse(400, "invalid_archive", "entry %q is corrupt", f.Name)
	case uint64(len(data)) != f.UncompressedSize64:
		return nil, refuse(400, "invalid_archive", "entry %q is not the size it declares", f.Name)
	}
	return data, nil
}

// CheckFiles applies the limits to files given directly (create_skill).
func CheckFiles(files []Content, lim Limits) ([]Content, error) {
	if len(files) > lim.MaxFiles {
		return nil, refuse(400, "too_many_files", "a skill holds at most %d files", lim.MaxFiles)
	}
	var total int64
	for _, f := range files {
		if err := checkPath(f.path); err != nil {
			return nil, err
		}
		if int64(len(f.data)) > lim.MaxFileBytes {
			return nil, refuse(413, "file_too_large", "file %q exceeds %d bytes", f.path, lim.MaxFileBytes)
		}
		if total += int64(len(f.data)); total > lim.MaxTotalBytes {
			return nil, refuse(413, "archive_too_large", "the files exceed %d bytes in total", lim.MaxTotalBytes)
		}
	}
	return normalize(files)
}

// blobStore keeps file contents content-addressed by the SHA-256 of their
// plaintext, sealed with AES-256-GCM (additional data "skill_blob|" + hex
// digest), in Pebble under [persistence.SkillDataKey]: a blob is written
// in the same commit as the reference count that first names it and
// deleted in the same commit as the count that drops to zero, so a crash
// leaves neither an orphan nor a dangling reference, and Postgres
// snapshots (and `gateway restore --from-postgres`) carry skills whole.
// Blob files of the earlier layout (dir/blobs/ab/cdef…) are still read
// when Pebble has no copy, and removed with the blob. The caller
// serializes writes of the same digest (Service.skillMu).
type blobStore struct {
	dir     string // legacy files; "" for none
	store   Records
	keyring *secrets.Keyring
}

func blobAAD(hexSum string) []byte { return []byte("skill_blob|" + hexSum) }

func (b *blobStore) path(hexSum string) string {
	return filepath.Join(b.dir, "blobs", hexSum[:2], hexSum[2:])
}

func dataKey(hexSum string) ([]byte, error) {
	sum, err := hex.DecodeString(hexSum)
	if err != nil || len(sum) != sha256.Size {
		return nil, fmt.Errorf("skill blob %q: not a SHA-256", hexSum)
	}
	return persistence.SkillDataKey(sum), nil
}

// putOp returns the write that stores data under its digest, to commit
// with the reference count that first names it.
func (b *blobStore) putOp(hexSum string, data []byte) (persistence.Op, error) {
	key, err := dataKey(hexSum)
	if err != nil {
		return persistence.Op{}, err
	}
	sealed, err := b.keyring.Seal(data, blobAAD(hexSum))
	if err != nil {
		return persistence.Op{}, err
	}
	return persistence.Set(key, sealed), nil
}

// removeOp returns the write that deletes a blob, to commit with the
// reference count that drops to zero.
func (b *blobStore) removeOp(hexSum string) (persistence.Op, error) {
	key, err := dataKey(hexSum)
	if err != nil {
		return persistence.Op{}, err
	}
	return persistence.Delete(key), nil
}

// removeLegacy deletes a blob file of the earlier layout, if any.
func (b *blobStore) removeLegacy(hexSum string) error {
	if b.dir == "" {
		return nil
	}
	err := os.Remove(b.path(hexSum))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// get opens the blob and checks its digest.
func (b *blobStore) get(hexSum string) ([]byte, error) {
	key, err := dataKey(hexSum)
	if err != nil {
		return nil, err
	}
	sealed, err := b.store.Get(key)
	if errors.Is(err, persistence.ErrNotFound) && b.dir != "" {
		sealed, err = os.ReadFile(b.path(hexSum))
	}
	if err != nil {
		return nil, fmt.Errorf("read skill blob %s: %w", hexSum, err)
	}
	data, err := b.keyring.Open(sealed, blobAAD(hexSum))
	if err != nil {
		return nil, fmt.Errorf("open skill blob %s: %w", hexSum, err)
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != hexSum {
		return nil, fmt.Errorf("skill blob %s: digest mismatch", hexSum)
	}
	return data, nil
}
