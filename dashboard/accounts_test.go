package dashboard

import (
	"errors"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/assistiv/gateway/internal/clock"
	"github.com/assistiv/gateway/persistence"
)

func openStore(t *testing.T) *persistence.Store {
	t.Helper()
	cfg := persistence.DefaultConfig()
	cfg.Dir = t.TempDir()
	s, err := persistence.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestAccountsInvitesSessionsAndExpiry(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC))
	a := NewAccounts(openStore(t), clk, time.Hour, 2*time.Hour, bcrypt.MinCost)
	if _, err := a.CreateInvite("plat_a", "not an email", RoleAdmin, "x"); !errors.Is(err, ErrBadEmail) {
		t.Fatalf("bad email: %v", err)
	}
	tok, err := a.CreateInvite("plat_a", "Ann@Example.com", RoleOwner, "operator")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.AcceptInvite(tok, "Ann", "short"); !errors.Is(err, ErrWeakPassword) {
		t.Fatalf("weak password: %v", err)
	}
	m, err := a.AcceptInvite(tok, "Ann", "a long enough password")
	if err != nil || m.Email != "ann@example.com" || m.Role != RoleOwner {
		t.Fatalf("accept: %+v %v", m, err)
	}
	if _, err := a.AcceptInvite(tok, "Ann", "a long enough password"); !errors.Is(err, ErrInviteInvalid) {
		t.Fatalf("second use: %v", err)
	}
	if _, err := a.CreateInvite("plat_b", "ann@example.com", RoleAdmin, "x"); !errors.Is(err, ErrEmailTaken) {
		t.Fatalf("email taken: %v", err)
	}
	// An invite expires.
	late, _ := a.CreateInvite("plat_a", "late@example.com", RoleViewer, "ann")
	if _, err := a.CreateInvite("plat_b", "bob@example.com", RoleOwner, "operator"); err != nil {
		t.Fatal(err)
	}
	if inv, _ := a.Invites("plat_a"); len(inv) != 1 || inv[0].Email != "late@example.com" {
		t.Fatalf("plat_a's pending invites: %+v", inv)
	}
	clk.Advance(2 * time.Hour)
	if _, err := a.PeekInvite(late); !errors.Is(err, ErrInviteInvalid) {
		t.Fatalf("expired invite: %v", err)
	}
	if inv, _ := a.Invites("plat_a"); len(inv) != 0 {
		t.Fatalf("expired invites listed: %+v", inv)
	}
	// Wrong password and unknown email fail alike.
	for _, c := range [][2]string{{"ann@example.com", "wrong password!!"}, {"nobody@example.com", "a long enough password"}} {
		if _, err := a.Authenticate(c[0], c[1]); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("Authenticate(%s): %v", c[0], err)
		}
	}
	if _, err := a.Authenticate("ANN@example.com", "a long enough password"); err != nil {
		t.Fatalf("good credentials: %v", err)
	}
	raw, _, err := a.NewSession(Session{Platform: "plat_a", Email: "ann@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := a.Session(raw)
	if err != nil || s.Role != RoleOwner || !s.CheckCSRF(s.CSRF) || s.CheckCSRF("") || s.CheckCSRF(s.CSRF+"x") {
		t.Fatalf("session %+v %v", s, err)
	}
	if _, err := a.Session(raw + "x"); !errors.Is(err, ErrNoSession) {
		t.Fatalf("forged token: %v", err)
	}
	clk.Advance(time.Hour)
	if _, err := a.Session(raw); !errors.Is(err, ErrNoSession) {
		t.Fatalf("expired session: %v", err)
	}
	// The last owner can be neither demoted nor removed.
	if err := a.SetRole("plat_a", "ann@example.com", RoleViewer); !errors.Is(err, ErrLastOwner) {
		t.Fatalf("demote last owner: %v", err)
	}
	if err := a.Remove("plat_a", "ann@example.com"); !errors.Is(err, ErrLastOwner) {
		t.Fatalf("remove last owner: %v", err)
	}
	if err := a.Remove("plat_b", "ann@example.com"); !errors.Is(err, ErrNotMember) {
		t.Fatalf("remove from another platform: %v", err)
	}
}

func TestLimiterWindow(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC))
	l := newLimiter(clk, time.Minute, 3)
	for i := 0; i < 3; i++ {
		if b, _ := l.Blocked("k"); b {
			t.Fatalf("blocked after %d failures", i)
		}
		l.Fail("k")
		clk.Advance(10 * time.Second)
	}
	b, wait := l.Blocked("k")
	if !b || wait != 30*time.Second {
		t.Fatalf("after 3 failures: blocked %v, wait %v (want 30s: the first failure leaves the window then)", b, wait)
	}
	if b, _ := l.Blocked("other"); b {
		t.Fatal("another key is blocked")
	}
	clk.Advance(30 * time.Second)
	if b, _ := l.Blocked("k"); b {
		t.Fatal("still blocked after the oldest failure left the window")
	}
	l.Fail("k")
	l.Reset("k")
	if b, _ := l.Blocked("k"); b {
		t.Fatal("blocked after Reset")
	}
}

func TestExpiredSessionsAreSwept(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC))
	store := openStore(t)
	a := NewAccounts(store, clk, time.Hour, time.Hour, bcrypt.MinCost)
	count := func() int {
		n := 0
		_ = store.ScanPrefix([]byte{persistence.FamilyDashboard}, false, func(k, _ []byte) bool {
			if k[1] == 's' || k[1] == 'u' {
				n++
			}
			return true
		})
		return n
	}
	for i := 0; i < 3; i++ {
		if _, _, err := a.NewSession(Session{Platform: "plat_a", Email: "a@example.com"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := a.NewSession(Session{Operator: true}); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 7 { // 4 sessions + 3 member index entries
		t.Fatalf("%d session records, want 7", n)
	}
	clk.Advance(2 * time.Hour)
	if _, _, err := a.NewSession(Session{Operator: true}); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 1 {
		t.Fatalf("%d session records after the sweep, want 1 (the new one)", n)
	}
}
