package mcp

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

// SkillPrefix starts every skill id.
const SkillPrefix = "skill_"

// Skill errors.
var (
	// ErrSkillNotFound: no such skill, or one the caller may not see
	// (another platform's private skill answers exactly the same).
	ErrSkillNotFound = errors.New("mcp: skill not found")
	// ErrSkillNotOwned: the skill is visible (public) but the caller may
	// not change it.
	ErrSkillNotOwned = errors.New("mcp: skill not owned by the caller")
	// ErrSkillsUnavailable: the node has no skills directory or keyring.
	ErrSkillsUnavailable = errors.New("mcp: skill storage is not configured")
)

// skillRecord is a skill's metadata (0x60 skillID, JSON). Its files'
// bytes are blobs; the first lines of SKILL.md, used for search, are
// sealed (additional data "skill_head|" + id) so no file content reaches
// Pebble in clear.
type skillRecord struct {
	ID          string      `json:"id"`
	Platform    string      `json:"platform,omitempty"` // "": public
	Creator     string      `json:"creator,omitempty"`  // end-user who created it with create_skill ("": the platform or operator)
	Name        string      `json:"name"`
	Description string      `json:"description"`
	Files       []SkillFile `json:"files"`
	SealedHead  []byte      `json:"sealed_head,omitempty"`
	CreatedAtMs int64       `json:"created_at_ms"`
	Reviews     reviewSums  `json:"reviews"`
}

// reviewSums are the sums of every current review's scores.
type reviewSums struct {
	Count  int64    `json:"count"`
	Scores [4]int64 `json:"scores"` // correctness, clarity, safety, usefulness
}

// reviewDims names the four review dimensions, in reviewSums order.
var reviewDims = [4]string{"correctness", "clarity", "safety", "usefulness"}

// review is one end-user's review of one skill (0x62, JSON).
type review struct {
	Scores      [4]int64 `json:"scores"`
	Text        string   `json:"text,omitempty"`
	UpdatedAtMs int64    `json:"updated_at_ms"`
}

// SkillFile is one file of a skill: its path inside the skill folder,
// size in bytes and the hex SHA-256 of its contents.
type SkillFile struct {
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

// SkillView is a skill as the API shows it.
type SkillView struct {
	Object      string      `json:"object"` // "skill"
	ID          string      `json:"id"`
	Name        string      `json:"name"`
	Description string      `json:"description"`
	Visibility  string      `json:"visibility"` // "public" or "private"
	PlatformID  string      `json:"platform_id,omitempty"`
	Files       []SkillFile `json:"files,omitempty"` // absent in lists
	FileCount   int         `json:"file_count"`
	TotalBytes  int64       `json:"total_bytes"`
	CreatedAt   string      `json:"created_at"`
	Scorecard   Scorecard   `json:"scorecard"`
}

// SkillInput is a skill to create from a zip archive of its folder.
type SkillInput struct {
	Name          string
	Description   string
	ArchiveBase64 string
}

func (s *Service) skillView(r *skillRecord) SkillView {
	v := SkillView{Object: "skill", ID: r.ID, Name: r.Name, Description: r.Description, Visibility: "public",
		Files: r.Files, FileCount: len(r.Files), CreatedAt: s.fmtTime(r.CreatedAtMs)}
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

func checkMeta(name, description string) error {
	name = strings.TrimSpace(name)
	switch {
	case name == "" || len(name) > 100 || !utf8.ValidString(name) || strings.IndexFunc(name, unicode.IsControl) >= 0:
		return invalidf("name must be 1 to 100 bytes of UTF-8 without control characters")
	case len(description) > 2000 || !utf8.ValidString(description):
		return invalidf("description must be UTF-8 of at most 2000 bytes")
	}
	return nil
}

// UploadSkill creates a skill from a zip archive of its folder: private to
// owner, or public when owner is "" (operator import). The archive is
// checked against Config.Skills; refusals are *SkillError (or wrap
// ErrInvalid for name and description). Safe for concurrent use; it
// writes blobs and one Pebble commit, serialized with other skill writes.
func (s *Service) UploadSkill(owner ids.PlatformID, in SkillInput) (SkillView, error) {
	if err := checkMeta(in.Name, in.Description); err != nil {
		return SkillView{}, err
	}
	if s.blobs == nil {
		return SkillView{}, ErrSkillsUnavailable
	}
	raw, err := decodeArchive(in.ArchiveBase64, s.cfg.Skills)
	if err != nil {
		return SkillView{}, err
	}
	files, err := readArchive(raw, s.cfg.Skills)
	if err != nil {
		return SkillView{}, err
	}
	rec, err := s.createSkill(owner, "", in.Name, in.Description, files)
	if err != nil {
		return SkillView{}, err
	}
	return s.skillView(rec), nil
}

// createSkill stores checked, normalized files as a new skill.
// creator is the end-user creating it through the create_skill tool (""
// for an upload with a platform or admin key); the quota counts both.
func (s *Service) createSkill(owner ids.PlatformID, creator ids.EndUserID, name, description string, files []skillContent) (*skillRecord, error) {
	if s.blobs == nil {
		return nil, ErrSkillsUnavailable
	}
	rec := &skillRecord{ID: ids.New(SkillPrefix, s.cfg.Clock.Now()), Platform: string(owner), Creator: string(creator),
		Name: strings.TrimSpace(name), Description: description, CreatedAtMs: s.cfg.Clock.Now().UnixMilli()}
	refs := map[string]uint64{}
	data := map[string][]byte{}
	for _, f := range files {
		sum := sha256.Sum256(f.data)
		h := hex.EncodeToString(sum[:])
		rec.Files = append(rec.Files, SkillFile{Path: f.path, Size: int64(len(f.data)), SHA256: h})
		refs[h]++
		data[h] = f.data
		if f.path == "SKILL.md" {
			head, err := s.blobs.keyring.Seal(skillHead(f.data), headAAD(rec.ID))
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
	s.skillMu.Lock()
	defer s.skillMu.Unlock()
	if err := s.checkQuotaLocked(owner, creator, size); err != nil {
		return nil, err
	}
	ops := []persistence.Op{
		persistence.Set(persistence.SkillKey(rec.ID), val),
		persistence.Set(persistence.SkillOwnerKey(rec.Platform, rec.ID), nil),
	}
	for h, n := range refs {
		cur, err := s.blobRefs(h)
		if err != nil {
			return nil, err
		}
		if cur == 0 { // a new blob: its bytes commit with its first reference
			op, err := s.blobs.putOp(h, data[h])
			if err != nil {
				return nil, err
			}
			ops = append(ops, op)
		}
		ops = append(ops, setRefs(h, cur+n))
	}
	if err := s.store.Commit(ops...); err != nil {
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

func (s *Service) blobRefs(h string) (uint64, error) {
	v, err := s.store.Get(refKey(h))
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

func (s *Service) loadSkill(id string) (*skillRecord, error) {
	if !ids.Valid(SkillPrefix, id) {
		return nil, ErrSkillNotFound
	}
	raw, err := s.store.Get(persistence.SkillKey(id))
	if errors.Is(err, persistence.ErrNotFound) {
		return nil, ErrSkillNotFound
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
// private ones. Any other answers ErrSkillNotFound.
func (s *Service) visibleSkill(viewer ids.PlatformID, id string) (*skillRecord, error) {
	r, err := s.loadSkill(id)
	if err != nil {
		return nil, err
	}
	if r.Platform != "" && r.Platform != string(viewer) {
		return nil, ErrSkillNotFound
	}
	return r, nil
}

// Skill returns a skill viewer's platform may see, with its file list and
// scorecard; another platform's private skill is ErrSkillNotFound.
func (s *Service) Skill(viewer ids.PlatformID, id string) (SkillView, error) {
	r, err := s.visibleSkill(viewer, id)
	if err != nil {
		return SkillView{}, err
	}
	return s.skillView(r), nil
}

// DeleteSkill deletes a skill with its reviews, and every blob no other
// skill references. by is the deleting platform, which may delete only
// its own private skills (a public one is ErrSkillNotOwned, another
// platform's ErrSkillNotFound); by "" is the operator, who may delete any.
func (s *Service) DeleteSkill(by ids.PlatformID, id string) error {
	if s.blobs == nil {
		return ErrSkillsUnavailable
	}
	s.skillMu.Lock()
	defer s.skillMu.Unlock()
	r, err := s.loadSkill(id)
	if err != nil {
		return err
	}
	if by != "" {
		switch r.Platform {
		case string(by):
		case "":
			return ErrSkillNotOwned
		default:
			return ErrSkillNotFound
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
		cur, err := s.blobRefs(h)
		if err != nil {
			return err
		}
		left := cur - min(cur, n)
		if left == 0 {
			gone = append(gone, h)
			op, err := s.blobs.removeOp(h)
			if err != nil {
				return err
			}
			ops = append(ops, op)
		}
		ops = append(ops, setRefs(h, left))
	}
	if err := s.store.Commit(ops...); err != nil {
		return err
	}
	for _, h := range gone { // blob files of the earlier layout
		if err := s.blobs.removeLegacy(h); err != nil {
			s.log.Warn("remove skill blob file", "sha256", h, "err", err)
		}
	}
	return nil
}

// submitReview records (or replaces) one end-user's review of a skill its
// platform may see and updates the skill's sums in the same commit.
func (s *Service) submitReview(pid ids.PlatformID, eid ids.EndUserID, id string, scores [4]int64, text string) (*skillRecord, error) {
	s.skillMu.Lock()
	defer s.skillMu.Unlock()
	r, err := s.visibleSkill(pid, id)
	if err != nil {
		return nil, err
	}
	key := persistence.SkillReviewKey(r.ID, string(pid), string(eid))
	old, err := s.store.Get(key)
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
	rv, err := json.Marshal(review{Scores: scores, Text: text, UpdatedAtMs: s.cfg.Clock.Now().UnixMilli()})
	if err != nil {
		return nil, err
	}
	val, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	if err := s.store.Commit(persistence.Set(key, rv), persistence.Set(persistence.SkillKey(r.ID), val)); err != nil {
		return nil, err
	}
	return r, nil
}

// skillHit is one find_skill result.
type skillHit struct {
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

// findSkills searches public skills and pid's private skills. Relevance
// sums, per query token, 3 for a name word (2 for a name word it starts),
// 2 for a description word (1 if it starts one) and 1 for a word of
// SKILL.md's first lines. Results sort by relevance, then the review rank,
// the review count and recency. An empty query lists every visible skill
// by reviews.
func (s *Service) findSkills(pid ids.PlatformID, query string, limit int) ([]skillHit, error) {
	q := words(query)
	if len(q) > 32 {
		q = q[:32]
	}
	var hits []skillHit
	for _, owner := range []string{"", string(pid)} {
		var idsOf []string
		err := s.store.ScanPrefix(persistence.SkillOwnerPrefix(owner), false, func(k, _ []byte) bool {
			idsOf = append(idsOf, string(k[len(persistence.SkillOwnerPrefix(owner)):]))
			return true
		})
		if err != nil {
			return nil, err
		}
		for _, id := range idsOf {
			r, err := s.loadSkill(id)
			if errors.Is(err, ErrSkillNotFound) {
				continue // deleted since the scan
			}
			if err != nil {
				return nil, err
			}
			score := 0
			if len(q) > 0 {
				score = s.relevance(r, q)
				if score == 0 {
					continue
				}
			}
			h := skillHit{SkillID: r.ID, Name: r.Name, Description: r.Description, Visibility: "public", Relevance: score,
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

func (s *Service) relevance(r *skillRecord, q []string) int {
	name, desc := words(r.Name), words(r.Description)
	var head []string
	if len(r.SealedHead) > 0 {
		if b, err := s.blobs.keyring.Open(r.SealedHead, headAAD(r.ID)); err == nil {
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

// fetchedFile is one file fetch_skill returns: text as is, anything that
// is not UTF-8 text (or holds a NUL byte) as standard base64 with Base64
// set.
type fetchedFile struct {
	Path    string `json:"path"`
	Size    int64  `json:"size"`
	SHA256  string `json:"sha256"`
	Base64  bool   `json:"base64,omitempty"`
	Content string `json:"content"`
}

func isText(b []byte) bool { return utf8.Valid(b) && bytes.IndexByte(b, 0) < 0 }
