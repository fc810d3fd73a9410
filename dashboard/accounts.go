package dashboard

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/assistiv/gateway/internal/clock"
	"github.com/assistiv/gateway/persistence"
)

// Roles of a platform team member.
const (
	RoleOwner  = "owner"
	RoleAdmin  = "admin"
	RoleViewer = "viewer"
)

// validRole reports whether r is a team role.
func validRole(r string) bool { return r == RoleOwner || r == RoleAdmin || r == RoleViewer }

// Errors of [Accounts].
var (
	ErrBadCredentials = errors.New("dashboard: wrong email or password")
	ErrNoSession      = errors.New("dashboard: no such session")
	ErrInviteInvalid  = errors.New("dashboard: the invite link is invalid, used or expired")
	ErrEmailTaken     = errors.New("dashboard: this email already has a dashboard account")
	ErrNotMember      = errors.New("dashboard: no such team member")
	ErrLastOwner      = errors.New("dashboard: a platform keeps at least one owner")
	ErrWeakPassword   = errors.New("dashboard: the password needs at least 12 characters")
	ErrBadEmail       = errors.New("dashboard: not an email address")
)

// Member is one platform team member.
type Member struct {
	Platform  string `json:"platform"`
	Email     string `json:"email"`
	Name      string `json:"name"`
	Role      string `json:"role"`
	Hash      []byte `json:"hash"`
	CreatedMs int64  `json:"created_ms"`
}

// Invite is a pending single-use invite.
type Invite struct {
	Platform  string `json:"platform"`
	Email     string `json:"email"`
	Role      string `json:"role"`
	ExpiresMs int64  `json:"expires_ms"`
	CreatedMs int64  `json:"created_ms"`
	By        string `json:"by"`
}

// Session is one signed-in browser. Operator sessions have no Platform.
type Session struct {
	Operator  bool   `json:"operator,omitempty"`
	Platform  string `json:"platform,omitempty"`
	Email     string `json:"email,omitempty"`
	CSRF      string `json:"csrf"`
	CreatedMs int64  `json:"created_ms"`
	ExpiresMs int64  `json:"expires_ms"`
	// KeyTag ties an operator session to the admin key it was opened
	// with: a changed ASSISTIV_ADMIN_KEY ends every operator session.
	KeyTag string `json:"key_tag,omitempty"`
	digest string
	// Role and Name are the member's current ones, filled on each lookup.
	Role string `json:"-"`
	Name string `json:"-"`
}

// Records is the store [Accounts] keeps members, invites and sessions
// in, with [persistence.Store]'s meanings (CommitUntracked: a write that
// snapshots need not copy): a lone node's Pebble store, or in a cluster
// the records every node shares (cluster.Shared), so that a session
// opened on one node is valid on all and a logout ends it on all at once.
type Records interface {
	Get(key []byte) ([]byte, error)
	Commit(ops ...persistence.Op) error
	CommitUntracked(ops ...persistence.Op) error
	ScanPrefix(prefix []byte, reverse bool, fn func(k, v []byte) bool) error
}

// Locker is an optional capability of a Records shared by several nodes
// (cluster.Shared): Lock takes the lock called name for every node that
// uses the same records, waiting a bounded time, and returns its
// release. A lone node's store has none: Accounts' mutex suffices.
type Locker interface {
	Lock(name string) (unlock func(), err error)
}

// lock serializes read-modify-write of member records: on this node with
// mu, and across nodes when the store is a [Locker].
func (a *Accounts) lock() (func(), error) {
	a.mu.Lock()
	l, ok := a.store.(Locker)
	if !ok {
		return a.mu.Unlock, nil
	}
	unlock, err := l.Lock("dashboard.members")
	if err != nil {
		a.mu.Unlock()
		return nil, err
	}
	return func() { unlock(); a.mu.Unlock() }, nil
}

// Accounts stores team members, invites and sessions in its [Records]
// (a node's Pebble, or a cluster's shared records). Safe for concurrent
// use.
type Accounts struct {
	store      Records
	clock      clock.Clock
	sessionTTL time.Duration
	inviteTTL  time.Duration
	cost       int
	mu         sync.Mutex // serialises read-modify-write of member records
	sweptMs    atomic.Int64
}

// sweepEvery is how often NewSession deletes expired sessions.
const sweepEvery = time.Hour

// sweep deletes every expired session (and its member index entry). It
// runs from NewSession at most once per sweepEvery, so sessions never
// presented again do not pile up.
func (a *Accounts) sweep(now time.Time) error {
	last := a.sweptMs.Load()
	if now.UnixMilli()-last < sweepEvery.Milliseconds() || !a.sweptMs.CompareAndSwap(last, now.UnixMilli()) {
		return nil
	}
	var ops []persistence.Op
	p := persistence.DashboardPrefix("s")
	err := a.store.ScanPrefix(p, false, func(k, v []byte) bool {
		var s Session
		if json.Unmarshal(v, &s) != nil || s.ExpiresMs <= now.UnixMilli() {
			d := string(k[len(p):])
			ops = append(ops, persistence.Delete(append([]byte(nil), k...)))
			if !s.Operator && s.Platform != "" {
				ops = append(ops, persistence.Delete(persistence.DashboardKey("u", s.Platform, s.Email, d)))
			}
		}
		return true
	})
	if err != nil || len(ops) == 0 {
		return err
	}
	return a.store.CommitUntracked(ops...)
}

// NewAccounts returns the component over store. cost is the bcrypt cost
// (bcrypt.DefaultCost when 0).
func NewAccounts(store Records, clk clock.Clock, sessionTTL, inviteTTL time.Duration, cost int) *Accounts {
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	return &Accounts{store: store, clock: clk, sessionTTL: sessionTTL, inviteTTL: inviteTTL, cost: cost}
}

func token() (raw, digest string) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	raw = base64.RawURLEncoding.EncodeToString(b[:])
	return raw, digestOf(raw)
}

func digestOf(raw string) string {
	d := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(d[:])
}

// normEmail lower-cases and checks an email address.
func normEmail(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || len(s) > 254 {
		return "", ErrBadEmail
	}
	return s, nil
}

func (a *Accounts) get(key []byte, v any) error {
	b, err := a.store.Get(key)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // plain structs always marshal
	}
	return b
}

// CreateInvite records an invite of email to platform with role and
// returns its raw token (shown once, in the link).
func (a *Accounts) CreateInvite(platform, email, role, by string) (string, error) {
	email, err := normEmail(email)
	if err != nil {
		return "", err
	}
	if !validRole(role) {
		return "", fmt.Errorf("dashboard: unknown role %q", role)
	}
	if _, err := a.store.Get(persistence.DashboardKey("e", email)); err == nil {
		return "", ErrEmailTaken
	} else if !errors.Is(err, persistence.ErrNotFound) {
		return "", err
	}
	raw, d := token()
	now := a.clock.Now()
	inv := Invite{Platform: platform, Email: email, Role: role, By: by, CreatedMs: now.UnixMilli(), ExpiresMs: now.Add(a.inviteTTL).UnixMilli()}
	return raw, a.store.Commit(
		persistence.Set(persistence.DashboardKey("i", d), mustJSON(inv)),
		persistence.Set(persistence.DashboardKey("j", platform, d), nil),
	)
}

// PeekInvite returns the invite of a raw token while it is usable.
func (a *Accounts) PeekInvite(raw string) (Invite, error) {
	var inv Invite
	if err := a.get(persistence.DashboardKey("i", digestOf(raw)), &inv); err != nil {
		return inv, ErrInviteInvalid
	}
	if a.clock.Now().UnixMilli() >= inv.ExpiresMs {
		return inv, ErrInviteInvalid
	}
	return inv, nil
}

// AcceptInvite consumes the invite and creates the member with a bcrypt
// hash of password. The invite and the member record change in one commit.
func (a *Accounts) AcceptInvite(raw, name, password string) (Member, error) {
	if len(password) < 12 {
		return Member{}, ErrWeakPassword
	}
	if len(password) > 72 {
		return Member{}, errors.New("dashboard: the password must be at most 72 bytes")
	}
	unlock, err := a.lock()
	if err != nil {
		return Member{}, err
	}
	defer unlock()
	inv, err := a.PeekInvite(raw)
	if err != nil {
		return Member{}, err
	}
	if _, err := a.store.Get(persistence.DashboardKey("e", inv.Email)); err == nil {
		return Member{}, ErrEmailTaken
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), a.cost)
	if err != nil {
		return Member{}, err
	}
	m := Member{Platform: inv.Platform, Email: inv.Email, Name: strings.TrimSpace(name), Role: inv.Role, Hash: hash, CreatedMs: a.clock.Now().UnixMilli()}
	err = a.store.Commit(
		persistence.Delete(persistence.DashboardKey("i", digestOf(raw))),
		persistence.Delete(persistence.DashboardKey("j", inv.Platform, digestOf(raw))),
		persistence.Set(persistence.DashboardKey("m", m.Platform, m.Email), mustJSON(m)),
		persistence.Set(persistence.DashboardKey("e", m.Email), []byte(m.Platform)),
	)
	return m, err
}

// ErrHasOwner refuses a platform-key claim once the platform has a team.
var ErrHasOwner = errors.New("dashboard: this platform already has a team; ask its owner for an invite")

// ClaimOwner creates the first owner of a platform that has no team yet
// (the platform key's holder claiming dashboard access once).
func (a *Accounts) ClaimOwner(platform, email, name, password string) (Member, error) {
	email, err := normEmail(email)
	if err != nil {
		return Member{}, err
	}
	if len(password) < 12 {
		return Member{}, ErrWeakPassword
	}
	if len(password) > 72 {
		return Member{}, errors.New("dashboard: the password must be at most 72 bytes")
	}
	unlock, err := a.lock()
	if err != nil {
		return Member{}, err
	}
	defer unlock()
	if ms, err := a.Members(platform); err != nil || len(ms) > 0 {
		if err != nil {
			return Member{}, err
		}
		return Member{}, ErrHasOwner
	}
	if _, err := a.store.Get(persistence.DashboardKey("e", email)); err == nil {
		return Member{}, ErrEmailTaken
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), a.cost)
	if err != nil {
		return Member{}, err
	}
	m := Member{Platform: platform, Email: email, Name: strings.TrimSpace(name), Role: RoleOwner, Hash: hash, CreatedMs: a.clock.Now().UnixMilli()}
	err = a.store.Commit(
		persistence.Set(persistence.DashboardKey("m", m.Platform, m.Email), mustJSON(m)),
		persistence.Set(persistence.DashboardKey("e", m.Email), []byte(m.Platform)),
	)
	return m, err
}

// dummyHash is compared against when the email is unknown, so a miss
// takes as long as a wrong password.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("dashboard-dummy-password"), bcrypt.DefaultCost)

// Authenticate checks an email and password.
func (a *Accounts) Authenticate(email, password string) (Member, error) {
	email, err := normEmail(email)
	if err != nil {
		_ = bcrypt.CompareHashAndPassword(dummyHash, []byte(password))
		return Member{}, ErrBadCredentials
	}
	m, err := a.memberByEmail(email)
	if err != nil {
		_ = bcrypt.CompareHashAndPassword(dummyHash, []byte(password))
		return Member{}, ErrBadCredentials
	}
	if bcrypt.CompareHashAndPassword(m.Hash, []byte(password)) != nil {
		return Member{}, ErrBadCredentials
	}
	return m, nil
}

func (a *Accounts) memberByEmail(email string) (Member, error) {
	p, err := a.store.Get(persistence.DashboardKey("e", email))
	if err != nil {
		return Member{}, ErrNotMember
	}
	return a.Member(string(p), email)
}

// Member returns one member of platform.
func (a *Accounts) Member(platform, email string) (Member, error) {
	var m Member
	if err := a.get(persistence.DashboardKey("m", platform, email), &m); err != nil {
		return m, ErrNotMember
	}
	return m, nil
}

// Members lists a platform's team, by email.
func (a *Accounts) Members(platform string) ([]Member, error) {
	var out []Member
	err := a.store.ScanPrefix(persistence.DashboardPrefix("m", platform), false, func(_, v []byte) bool {
		var m Member
		if json.Unmarshal(v, &m) == nil {
			out = append(out, m)
		}
		return true
	})
	return out, err
}

// Invites lists a platform's pending invites and deletes its expired ones.
func (a *Accounts) Invites(platform string) ([]Invite, error) {
	var out []Invite
	var expired []persistence.Op
	now := a.clock.Now().UnixMilli()
	p := persistence.DashboardPrefix("j", platform)
	err := a.store.ScanPrefix(p, false, func(k, _ []byte) bool {
		d := string(k[len(p):])
		var inv Invite
		if a.get(persistence.DashboardKey("i", d), &inv) != nil || inv.ExpiresMs <= now {
			expired = append(expired, persistence.Delete(append([]byte(nil), k...)), persistence.Delete(persistence.DashboardKey("i", d)))
			return true
		}
		out = append(out, inv)
		return true
	})
	if err == nil && len(expired) > 0 {
		err = a.store.Commit(expired...)
	}
	return out, err
}

func (a *Accounts) owners(platform string) (int, error) {
	ms, err := a.Members(platform)
	n := 0
	for _, m := range ms {
		if m.Role == RoleOwner {
			n++
		}
	}
	return n, err
}

// SetRole changes a member's role; the last owner cannot be demoted.
func (a *Accounts) SetRole(platform, email, role string) error {
	if !validRole(role) {
		return fmt.Errorf("dashboard: unknown role %q", role)
	}
	unlock, err := a.lock()
	if err != nil {
		return err
	}
	defer unlock()
	m, err := a.Member(platform, email)
	if err != nil {
		return err
	}
	if m.Role == RoleOwner && role != RoleOwner {
		if n, err := a.owners(platform); err != nil || n <= 1 {
			return ErrLastOwner
		}
	}
	m.Role = role
	return a.store.Commit(persistence.Set(persistence.DashboardKey("m", platform, email), mustJSON(m)))
}

// Remove deletes a member and every session of theirs in one commit; the
// member's next request is refused.
func (a *Accounts) Remove(platform, email string) error {
	unlock, err := a.lock()
	if err != nil {
		return err
	}
	defer unlock()
	m, err := a.Member(platform, email)
	if err != nil {
		return err
	}
	if m.Role == RoleOwner {
		if n, err := a.owners(platform); err != nil || n <= 1 {
			return ErrLastOwner
		}
	}
	ops := []persistence.Op{
		persistence.Delete(persistence.DashboardKey("m", platform, email)),
		persistence.Delete(persistence.DashboardKey("e", email)),
	}
	err = a.store.ScanPrefix(persistence.DashboardPrefix("u", platform, email), false, func(k, _ []byte) bool {
		d := k[len(persistence.DashboardPrefix("u", platform, email)):]
		ops = append(ops, persistence.Delete(append([]byte(nil), k...)), persistence.Delete(persistence.DashboardKey("s", string(d))))
		return true
	})
	if err != nil {
		return err
	}
	return a.store.Commit(ops...)
}

// NewSession starts a session and returns its raw token (the cookie value).
func (a *Accounts) NewSession(s Session) (string, Session, error) {
	raw, d := token()
	csrf, _ := token()
	now := a.clock.Now()
	if err := a.sweep(now); err != nil {
		return "", Session{}, err
	}
	s.CSRF, s.CreatedMs, s.ExpiresMs, s.digest = csrf, now.UnixMilli(), now.Add(a.sessionTTL).UnixMilli(), d
	ops := []persistence.Op{persistence.Set(persistence.DashboardKey("s", d), mustJSON(s))}
	if !s.Operator {
		ops = append(ops, persistence.Set(persistence.DashboardKey("u", s.Platform, s.Email, d), nil))
	}
	return raw, s, a.store.CommitUntracked(ops...)
}

// Session returns the live session of a raw token, with the member's
// current role; a removed member's or an expired session is refused.
func (a *Accounts) Session(raw string) (Session, error) {
	if raw == "" {
		return Session{}, ErrNoSession
	}
	var s Session
	d := digestOf(raw)
	if err := a.get(persistence.DashboardKey("s", d), &s); err != nil {
		return Session{}, ErrNoSession
	}
	s.digest = d
	if a.clock.Now().UnixMilli() >= s.ExpiresMs {
		_ = a.EndSession(s)
		return Session{}, ErrNoSession
	}
	if s.Operator {
		return s, nil
	}
	m, err := a.Member(s.Platform, s.Email)
	if err != nil {
		return Session{}, ErrNoSession
	}
	s.Role, s.Name = m.Role, m.Name
	return s, nil
}

// EndSession deletes a session (sign-out).
func (a *Accounts) EndSession(s Session) error {
	ops := []persistence.Op{persistence.Delete(persistence.DashboardKey("s", s.digest))}
	if !s.Operator {
		ops = append(ops, persistence.Delete(persistence.DashboardKey("u", s.Platform, s.Email, s.digest)))
	}
	return a.store.CommitUntracked(ops...)
}

// EndSessionsOf deletes every session of a member ("sign out everywhere").
func (a *Accounts) EndSessionsOf(platform, email string) error {
	var ops []persistence.Op
	p := persistence.DashboardPrefix("u", platform, email)
	err := a.store.ScanPrefix(p, false, func(k, _ []byte) bool {
		ops = append(ops, persistence.Delete(append([]byte(nil), k...)), persistence.Delete(persistence.DashboardKey("s", string(k[len(p):]))))
		return true
	})
	if err != nil || len(ops) == 0 {
		return err
	}
	return a.store.CommitUntracked(ops...)
}

// CheckCSRF compares a submitted token with the session's in constant time.
func (s Session) CheckCSRF(got string) bool {
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s.CSRF)) == 1
}
