package oauthconn

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"

	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/persistence"
)

// Pending records (0x42) are bounded two ways:
//
//   - per end-user and app there is at most one authorization in progress
//     and one grant awaiting confirmation: a flow pointer (kind "flow" or
//     "gflow", keyed by a digest of platform, end-user and app) names the
//     current one, and starting another deletes it in the same commit;
//   - every record expires after Config.StateTTL and the sweeper
//     (Config.SweepInterval) deletes expired ones, used or not.
//
// So an end-user holds at most 2 × len(AppNames) pending records plus
// their pointers, whatever it sends.

// flowKey is the pointer to the current pending record of its kind.
func flowKey(kind string, pid ids.PlatformID, eid ids.EndUserID, app string) []byte {
	d := sha256.Sum256([]byte(kind + "|" + string(pid) + "\x00" + string(eid) + "\x00" + app))
	return persistence.OAuthStateKey(d[:])
}

// replacePending stores rec at key as the current pending record of its
// flow, deleting the previous one in the same commit. rec's Kind is ""
// (authorization) or kindGrant.
func (m *Manager) replacePending(key []byte, rec pendingAuth) error {
	pointerKind := "flow"
	if rec.Kind == kindGrant {
		pointerKind = "gflow"
	}
	pk := flowKey(pointerKind, ids.PlatformID(rec.PlatformID), ids.EndUserID(rec.EndUserID), rec.App)
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	ptr, err := json.Marshal(pendingAuth{Kind: pointerKind, PlatformID: rec.PlatformID, EndUserID: rec.EndUserID, App: rec.App,
		Current: hex.EncodeToString(key), CreatedAtMs: rec.CreatedAtMs, ExpiresAtMs: rec.ExpiresAtMs})
	if err != nil {
		return err
	}
	unlock, err := m.lockBoth(&m.stateMu, "oauth.state")
	if err != nil {
		return err
	}
	defer unlock()
	ops := []persistence.Op{persistence.Set(key, b), persistence.Set(pk, ptr)}
	raw, err := m.store.Get(pk)
	switch {
	case err == nil:
		var old pendingAuth
		if json.Unmarshal(raw, &old) == nil {
			if prev, err := hex.DecodeString(old.Current); err == nil && len(prev) > 0 && string(prev) != string(key) {
				ops = append([]persistence.Op{persistence.Delete(prev)}, ops...)
			}
		}
	case !errors.Is(err, persistence.ErrNotFound):
		return err
	}
	return m.store.Commit(ops...)
}

// SweepPending deletes every pending record (authorizations, grants
// awaiting confirmation, flow pointers) expired at now, and returns how
// many it deleted. The sweeper calls it every Config.SweepInterval; safe
// for concurrent use.
func (m *Manager) SweepPending(now time.Time) (int, error) {
	var expired [][]byte
	prefix := []byte{persistence.FamilyOAuthState}
	err := m.store.ScanPrefix(prefix, false, func(k, v []byte) bool {
		var p pendingAuth
		if json.Unmarshal(v, &p) != nil || now.UnixMilli() >= p.ExpiresAtMs {
			expired = append(expired, append([]byte(nil), k...))
		}
		return true
	})
	if err != nil {
		return 0, err
	}
	unlock, err := m.lockBoth(&m.stateMu, "oauth.state")
	if err != nil {
		return 0, err
	}
	defer unlock()
	for i := 0; i < len(expired); i += 256 {
		batch := expired[i:min(i+256, len(expired))]
		ops := make([]persistence.Op, 0, len(batch))
		for _, k := range batch {
			ops = append(ops, persistence.Delete(k))
		}
		if err := m.store.Commit(ops...); err != nil {
			return i, err
		}
	}
	return len(expired), nil
}

// CountPending returns how many pending records (0x42) the store holds.
func (m *Manager) CountPending() (int, error) {
	n := 0
	err := m.store.ScanPrefix([]byte{persistence.FamilyOAuthState}, false, func(_, _ []byte) bool { n++; return true })
	return n, err
}

// sweep runs SweepPending every Config.SweepInterval until stop closes.
func (m *Manager) sweep(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(m.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if n, err := m.SweepPending(m.cfg.Clock.Now()); err != nil {
				m.log.Warn("sweep pending authorizations", "err", err)
			} else if n > 0 {
				m.log.Debug("swept pending authorizations", "deleted", n)
			}
		}
	}
}
