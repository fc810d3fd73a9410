package skills

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/persistence"
)

// IDPrefix starts every skill id.
const IDPrefix = "skill_"

// Skill errors.
var (
	// ErrNotFound: no such skill, or one the caller may not see
	// (another platform's private skill answers exactly the same).
	ErrNotFound = errors.New("mcp: skill not found")
	// ErrNotOwned: the skill is visible (public) but the caller may
	// not change it.
	ErrNotOwned = errors.New("mcp: skill not owned by the caller")
	// ErrUnavailable: the node has no skills directory or keyring.
	ErrUnavailable = errors.New("mcp: skill storage is not configured")
)

// skillRecord is a skill's metadata (0x60 skillID, JSON). Its files'
// bytes are blobs; the first lines of SKILL.md, used for search, are
// sealed (additional data "skill_head|" + id) so no file content reaches
// Pebble in clear.
type skillRecord struct {
	ID          string     `json:"id"`
	Platform    string     `json:"platform,omitempty"` // "": public
	Creator     string     `json:"creator,omitempty"`  // end-user who created it with create_skill ("": the platform or operator)
	Name        string     `json:"name"`
	Description string     `json:"description"`
	Files       []File     `json:"files"`
	SealedHead  []byte     `json:"sealed_head,omitempty"`
	CreatedAtMs int64      `json:"created_at_ms"`
	Reviews     reviewSums `json:"reviews"`
}

// reviewSums are the sums of every current review's scores.
type reviewSums struct {
	Count  int64    `json:"count"`
	Scores [4]int64 `json:"scores"` // correctness, clarity, safety, usefulness
}

// ReviewDims names the four review dimensions, in reviewSums order.
var ReviewDims = [4]string{"correctness", "clarity", "safety", "usefulness"}

// review is one end-user's review of one skill (0x62, JSON).
type review struct {
	Scores      [4]int64 `json:"scores"`
	Text        string   `json:"text,omitempty"`
	UpdatedAtMs int64    `json:"updated_at_ms"`
}

// File is one file of a skill: its path inside the skill folder,
// size in bytes and the hex SHA-256 of its contents.
type File struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Scorecard aggregates a skill's reviews: each dimension's average (null
// without reviews) and the overall average of the four.
type Scorecard struct {
	ReviewCount int64    `json:"review_count"`
	Correctness *float64 `json:"correctness"`
	Clarity     *float64 `json:"clarity"`
	Safety      *float64 `json:"safety"`
	Usefulness  *float64 `json:"usefulness"`
	Overall     *float64 `json:"overall"`
}

// View is a skill as the API shows it.
type View struct {
	Object      string    `json:"object"` // "skill"
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Visibility  string    `json:"visibility"` // "public" or "private"
	PlatformID  string    `json:"platform_id,omitempty"`
	Files       []File    `json:"files,omitempty"` // absent in lists
	FileCount   int       `json:"file_count"`
	TotalBytes  int64     `json:"total_bytes"`
	CreatedAt   string    `json:"created_at"`
	Scorecard   Scorecard `json:"scorecard"`
}

// Input is a skill to create from a zip archive of its folder.
type Input struct {
	Name          string
	Description   string
	ArchiveBase64 string
}

func (c *Catalog) skillView(r *skillRecord) View {
	v := View{Object: "skill", ID: r.ID, Name: r.Name, Description: r.Description, Visibility: "public",
		Files: r.Files, FileCount: len(r.Files), CreatedAt: c.fmtTime(r.CreatedAtMs)}
	if r.Platform != "" {
		v.Visibility, v.PlatformID = "private", r.Platform
	}
	for _, f := range r.Files {
		v.TotalBytes += f.Size
	}
	v.Scorecard.ReviewCount = r.Reviews.Count
	if n := r.Reviews.Count; n > 0 {
		avg := func(sum int64) *float64 { x := math.Round(float64(sum)/float64(n)*100) / 100; return &x }
		sc := &v.Scorecard
		sc.Correctness, sc.Clarity, sc.Safety, sc.Usefulness = avg(r.Reviews.Scores[0]), avg(r.Reviews.Scores[1]), avg(r.Reviews.Scores[2]), avg(r.Reviews.Scores[3])
		o := math.Round(r.Reviews.overall()*100) / 100
		sc.Overall = &o
	}
	return v
}

// overall is the mean of every review's mean score (0 without reviews).
func (r reviewSums) overall() float64 {
	if r.Count == 0 {
		return 0
	}
	return float64(r.Scores[0]+r.Scores[1]+r.Scores[2]+r.Scores[3]) / 4 / float64(r.Count)
}

// rank is the review signal find_skill sorts by after relevance: the
// overall average pulled toward 3 by two phantom reviews, so one 5-star
// review does not outrank many 4-star ones.
func (r reviewSums) rank() float64 {
	return (r.overall()*float64(r.Count) + 3*2) / float64(r.Count+2)
}

func CheckMeta(name, description string) error {
	name = strings.TrimSpace(name)
	switch {
	case name == "" || len(name) > 100 || !utf8.ValidString(name) || strings.IndexFunc(name, unicode.IsControl) >= 0:
		return invalidf("name must be 1 to 100 bytes of UTF-8 without control characters")
	case len(description) > 2000 || !utf8.ValidString(description):
		return invalidf("description must be UTF-8 of at most 2000 bytes")
	}
	return nil
}

// Upload creates a skill from a zip archive of its folder: private to
// owner, or public when owner is "" (operator import). The archive is
// checked against Config.Skills; refusals are *Error (or wrap
// ErrInvalid for name and description). Safe for concurrent use; it
// writes blobs and one Pebble commit, serialized with other skill writes.
func (c *Catalog) Upload(owner ids.PlatformID, in Input) (View, error) {
	if err := CheckMeta(in.Name, in.Description); err != nil {
		return View{}, err
	}
	if c.blobs == nil {
		return View{}, ErrUnavailable
	}
	raw, err := decodeArchive(in.ArchiveBase64, c.cfg.Limits)
	if err != nil {
		return View{}, err
	}
	files, err := readArchive(raw, c.cfg.Limits)
	if err != nil {
		return View{}, err
	}
	rec, err := c.create(owner, "", in.Name, in.Description, files)
	if err != nil {
		return View{}, err
	}
	return c.skillView(rec), nil
}

// create stores checked, normalized files as a new skill.
// creator is the end-user creating it through the create_skill tool (""
// for an upload with a platform or admin key); the quota counts both.
func (c *Catalog) create(owner ids.PlatformID, creator ids.EndUserID, name, description string, files []Content) (*skillRecord, error) {
	if c.blobs == nil {
		return nil, ErrUnavailable
	}
	rec := &skillRecord{ID: ids.New(IDPrefix, c.cfg.Clock.Now()), Platform: string(owner), Creator: string(creator),
		Name: strings.TrimSpace(name), Description: description, CreatedAtMs: c.cfg.Clock.Now().UnixMilli()}
	refs := map[string]uint64{}
	data := map[string][]byte{}
	for _, f := range files {
		sum := sha256.Sum256(f.data)
		h := hex.EncodeToString(sum[:])
		rec.Files = append(rec.Files, File{Path: f.path, Size: int64(len(f.data)), SHA256: h})
		refs[h]++
		data[h] = f.data
		if f.path == "SKILL.md" {
			head, err := c.blobs.keyring.Seal(skillHead(f.data), headAAD(rec.ID))
			if err != nil {
				return nil, err
			}
			rec.SealedHead = head
		}
	}
	val, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	var size int64
	for _, f := range rec.Files {
		size += f.Size
	}
	unlock, err := c.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := c.checkQuotaLocked(owner, creator, size); err != nil {
		return nil, err
	}
	ops := []persistence.Op{
		persistence.Set(persistence.SkillKey(rec.ID), val),
		persistence.Set(persistence.SkillOwnerKey(rec.Platform, rec.ID), nil),
	}
	for h, n := range refs {
		cur, err := c.blobRefs(h)
		if err != nil {
			return nil, err
		}
		if cur == 0 { // a new blob: its bytes commit with its first reference
			op, err := c.blobs.putOp(h, data[h])
			if err != nil {
				return nil, err
			}
			ops = append(ops, op)
		}
		ops = append(ops, setRefs(h, cur+n))
	}
	if err := c.store.Commit(ops...); err != nil {
		return nil, err
	}
	return rec, nil
}

func headAAD(id string) []byte { return []byte("skill_head|" + id) }

// skillHead is what search reads of SKILL.md: its first 20 lines, at most
// 2 KiB.
func skillHead(b []byte) []byte {
	b = b[:min(len(b), 2048)]
	n := 0
	for i, c := range b {
		if c == '\n' {
			if n++; n == 20 {
				return b[:i]
			}
		}
	}
	return b
}

func refKey(h string) []byte {
	sum, _ := hex.DecodeString(h)
	return persistence.SkillBlobRefKey(sum)
}

func (c *Catalog) blobRefs(h string) (uint64, error) {
	v, err := c.store.Get(refKey(h))
	if errors.Is(err, persistence.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("skill blob ref %s: bad value", h)
	}
	return binary.BigEndian.Uint64(v), nil
}

func setRefs(h string, n uint64) persistence.Op {
	if n == 0 {
		return persistence.Delete(refKey(h))
	}
	return persistence.Set(refKey(h), binary.BigEndian.AppendUint64(nil, n))
}

func (c *Catalog) loadSkill(id string) (*skillRecord, error) {
	if !ids.Valid(IDPrefix, id) {
		return nil, ErrNotFound
	}
	raw, err := c.store.Get(persistence.SkillKey(id))
	if errors.Is(err, persistence.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	var r skillRecord
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("decode skill %s: %w", id, err)
	}
	return &r, nil
}

// visibleSkill loads a skill viewer may see: public ones and its own
// private ones. Any other answers ErrNotFound.
func (c *Catalog) visibleSkill(viewer ids.PlatformID, id string) (*skillRecord, error) {
	r, err := c.loadSkill(id)
	if err != nil {
		return nil, err
	}
	if r.Platform != "" && r.Platform != string(viewer) {
		return nil, ErrNotFound
	}
	return r, nil
}

// Get returns a skill viewer's platform may see, with its file list and
// scorecard; another platform's private skill is ErrNotFound.
func (c *Catalog) Get(viewer ids.PlatformID, id string) (View, error) {
	r, err := c.visibleSkill(viewer, id)
	if err != nil {
		return View{}, err
	}
	return c.skillView(r), nil
}

// Delete deletes a skill with its reviews, and every blob no other
// skill references. by is the deleting platform, which may delete only
// its own private skills (a public one is ErrNotOwned, another
// platform's ErrNotFound); by "" is the operator, who may delete any.
func (c *Catalog) Delete(by ids.PlatformID, id string) error {
	if c.blobs == nil {
		return ErrUnavailable
	}
	unlock, err := c.lock()
	if err != nil {
		return err
	}
	defer unlock()
	r, err := c.loadSkill(id)
	if err != nil {
		return err
	}
	if by != "" {
		switch r.Platform {
		case string(by):
		case "":
			return ErrNotOwned
		default:
			return ErrNotFound
		}
	}
	refs := map[string]uint64{}
	for _, f := range r.Files {
		refs[f.SHA256]++
	}
	rp := persistence.SkillReviewsPrefix(r.ID)
	ops := []persistence.Op{
		persistence.Delete(persistence.SkillKey(r.ID)),
		persistence.Delete(persistence.SkillOwnerKey(r.Platform, r.ID)),
		persistence.DeleteRange(rp, persistence.PrefixEnd(rp)),
	}
	var gone []string
	for h, n := range refs {
		cur, err := c.blobRefs(h)
		if err != nil {
			return err
		}
		left := cur - min(cur, n)
		if left == 0 {
			gone = append(gone, h)
			op, err := c.blobs.removeOp(h)
			if err != nil {
				return err
			}
			ops = append(ops, op)
		}
		ops = append(ops, setRefs(h, left))
	}
	if err := c.store.Commit(ops...); err != nil {
		return err
	}
	for _, h := range gone { // blob files of the earlier layout
		if err := c.blobs.removeLegacy(h); err != nil {
			c.log.Warn("remove skill blob file", "sha256", h, "err", err)
		}
	}
	return nil
}

// review records (or replaces) one end-user's review of a skill its
// platform may see and updates the skill's sums in the same commit.
func (c *Catalog) review(pid ids.PlatformID, eid ids.EndUserID, id string, scores [4]int64, text string) (*skillRecord, error) {
	unlock, err := c.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	r, err := c.visibleSkill(pid, id)
	if err != nil {
		return nil, err
	}
	key := persistence.SkillReviewKey(r.ID, string(pid), string(eid))
	old, err := c.store.Get(key)
	switch {
	case err == nil:
		var prev review
		if err := json.Unmarshal(old, &prev); err != nil {
			return nil, fmt.Errorf("decode review: %w", err)
		}
		r.Reviews.Count--
		for i := range prev.Scores {
			r.Reviews.Scores[i] -= prev.Scores[i]
		}
	case !errors.Is(err, persistence.ErrNotFound):
		return nil, err
	}
	r.Reviews.Count++
	for i := range scores {
		r.Reviews.Scores[i] += scores[i]
	}
	rv, err := json.Marshal(review{Scores: scores, Text: text, UpdatedAtMs: c.cfg.Clock.Now().UnixMilli()})
	if err != nil {
		return nil, err
	}
	val, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	if err := c.store.Commit(persistence.Set(key, rv), persistence.Set(persistence.SkillKey(r.ID), val)); err != nil {
		return nil, err
	}
	return r, nil
}

// Hit is one find_skill result.
type Hit struct {
	SkillID     string  `json:"skill_id"`
	Name        string  `json:"name"`
	Description string  `json:"description"`
	Visibility  string  `json:"visibility"`
	Relevance   int     `json:"relevance"`
	ReviewCount int64   `json:"review_count"`
	ReviewScore float64 `json:"review_average"`
	created     int64
	rank        float64
}

// Find searches public skills and pid's private skills. Relevance
// sums, per query token, 3 for a name word (2 for a name word it starts),
// 2 for a description word (1 if it starts one) and 1 for a word of
// SKILL.md's first lines. Results sort by relevance, then the review rank,
// the review count and recency. An empty query lists every visible skill
// by reviews.
func (c *Catalog) Find(pid ids.PlatformID, query string, limit int) ([]Hit, error) {
	q := words(query)
	if len(q) > 32 {
		q = q[:32]
	}
	var hits []Hit
	for _, owner := range []string{"", string(pid)} {
		var idsOf []string
		err := c.store.ScanPrefix(persistence.SkillOwnerPrefix(owner), false, func(k, _ []byte) bool {
			idsOf = append(idsOf, string(k[len(persistence.SkillOwnerPrefix(owner)):]))
			return true
		})
		if err != nil {
			return nil, err
		}
		for _, id := range idsOf {
			r, err := c.loadSkill(id)
			if errors.Is(err, ErrNotFound) {
				continue // deleted since the scan
			}
			if err != nil {
				return nil, err
			}
			score := 0
			if len(q) > 0 {
				score = c.relevance(r, q)
				if score == 0 {
					continue
				}
			}
			h := Hit{SkillID: r.ID, Name: r.Name, Description: r.Description, Visibility: "public", Relevance: score,
				ReviewCount: r.Reviews.Count, ReviewScore: math.Round(r.Reviews.overall()*100) / 100,
				created: r.CreatedAtMs, rank: r.Reviews.rank()}
			if r.Platform != "" {
				h.Visibility = "private"
			}
			hits = append(hits, h)
		}
	}
	sort.Slice(hits, func(i, j int) bool {
		a, b := hits[i], hits[j]
		switch {
		case a.Relevance != b.Relevance:
			return a.Relevance > b.Relevance
		case a.rank != b.rank:
			return a.rank > b.rank
		case a.ReviewCount != b.ReviewCount:
			return a.ReviewCount > b.ReviewCount
		case a.created != b.created:
			return a.created > b.created
		}
		return a.SkillID < b.SkillID
	})
	if len(hits) > limit {
		hits = hits[:limit]
	}
	return hits, nil
}

func (c *Catalog) relevance(r *skillRecord, q []string) int {
	name, desc := words(r.Name), words(r.Description)
	var head []string
	if len(r.SealedHead) > 0 {
		if b, err := c.blobs.keyring.Open(r.SealedHead, headAAD(r.ID)); err == nil {
			head = words(string(b))
		}
	}
	score := 0
	for _, t := range q {
		switch m := match(name, t); {
		case m == 2:
			score += 3
		case m == 1:
			score += 2
		}
		score += match(desc, t)
		if match(head, t) == 2 {
			score++
		}
	}
	return score
}

// match is 2 when t is one of ws, 1 when a word of ws starts with t (t of
// 3 bytes or more), else 0.
func match(ws []string, t string) int {
	best := 0
	for _, w := range ws {
		if w == t {
			return 2
		}
		if len(t) >= 3 && strings.HasPrefix(w, t) {
			best = 1
		}
	}
	return best
}

// words splits s into lowercase letter-and-digit words.
func words(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}

func isText(b []byte) bool { return utf8.Valid(b) && bytes.IndexByte(b, 0) < 0 }
