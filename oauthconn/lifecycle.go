package oauthconn

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"

	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/persistence"
)

// A connection's lifecycle is one serialized state machine:
//
//	(none) ──connect──▶ connected ──refresh──▶ connected (rev+1)
//	   ▲                    │
//	   └──disconnect────────┤   (DELETE, or the token endpoint's definitive
//	   └──deactivate────────┘    refusal of the refresh token)
//
// Every transition commits under the connection's mutex (connMu shard),
// and a transition computed from an earlier read commits only if the
// record is still the one it read (compare-and-set on rev): a refresh
// whose connection was disconnected, replaced or voided while its token
// request was in flight stores nothing. The network exchange itself runs
// outside connMu (refreshes of one connection are serialized by
// refreshMu, so a rotating refresh token is used once), so a disconnect
// never waits for an authorization server.
//
// Deactivation takes the app's gate exclusively for its commit (epoch+1
// and the range delete); every connection commit holds the gate shared
// while it checks the epoch and writes. A token exchange racing a
// deactivation therefore either commits first (and is range-deleted) or
// sees the new epoch and stores nothing.
//
// Lock order: appMu → appGate → connMu. refreshMu is taken before either
// gate and held across the token request.

// errStale means a transition's read is no longer current: the connection
// was disconnected, replaced, or the app deactivated since.
var errStale = errors.New("oauthconn: the connection changed while the transition ran")

// lockShards is the number of connMu, refreshMu and appGate shards.
const lockShards = 256

type lifecycleLocks struct {
	seed      maphash.Seed
	connMu    [lockShards]sync.Mutex   // serializes commits of one connection
	refreshMu [lockShards]sync.Mutex   // serializes token refreshes of one connection
	appGate   [lockShards]sync.RWMutex // deactivation (W) vs connection commits (R)
}

func (l *lifecycleLocks) shard(parts ...string) uint64 {
	var h maphash.Hash
	h.SetSeed(l.seed)
	for _, p := range parts {
		h.WriteString(p)
		h.WriteByte(0)
	}
	return h.Sum64() % lockShards
}

func (m *Manager) connMuFor(pid ids.PlatformID, eid ids.EndUserID, app string) *sync.Mutex {
	return &m.locks.connMu[m.locks.shard(string(pid), string(eid), app)]
}

func (m *Manager) refreshLock(pid ids.PlatformID, eid ids.EndUserID, app string) *sync.Mutex {
	return &m.locks.refreshMu[m.locks.shard(string(pid), string(eid), app)]
}

// connLockName names one connection's cross-node lock of a kind ("conn":
// its commits), for lockBoth.
func connLockName(kind string, pid ids.PlatformID, eid ids.EndUserID, app string) string {
	return "oauth." + kind + "/" + string(pid) + "/" + string(eid) + "/" + app
}

func (m *Manager) appGate(pid ids.PlatformID, app string) *sync.RWMutex {
	return &m.locks.appGate[m.locks.shard(string(pid), app)]
}

// storedConnection reads the raw record, whatever its epoch (nil: none).
func (m *Manager) storedConnection(pid ids.PlatformID, eid ids.EndUserID, app string) (*connection, error) {
	raw, err := m.store.Get(persistence.MCPConnKey(string(pid), app, string(eid)))
	if errors.Is(err, persistence.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var c connection
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("decode connection: %w", err)
	}
	return &c, nil
}

// commitConnection stores c with tokens t as the next state of the
// connection. With fresh (a completed connect) it replaces whatever is
// stored; otherwise the stored record must still have revision
// expectRev. Either way the app must still be active at c's epoch.
// errStale when not.
func (m *Manager) commitConnection(pid ids.PlatformID, eid ids.EndUserID, c *connection, t Tokens, fresh bool, expectRev uint64) error {
	gate := m.appGate(pid, c.App)
	gate.RLock()
	defer gate.RUnlock()
	unlock, err := m.lockBoth(m.connMuFor(pid, eid, c.App), connLockName("conn", pid, eid, c.App))
	if err != nil {
		return err
	}
	defer unlock()
	act, err := m.LoadActivation(pid, c.App)
	if err != nil {
		return err
	}
	if act == nil || !act.Active || act.Epoch != c.Epoch {
		return errStale
	}
	cur, err := m.storedConnection(pid, eid, c.App)
	if err != nil {
		return err
	}
	switch {
	case fresh && cur != nil:
		c.Rev = cur.Rev + 1
	case fresh:
		c.Rev = 1
	case cur == nil || cur.Rev != expectRev || cur.Epoch != c.Epoch:
		return errStale
	default:
		c.Rev = expectRev + 1
	}
	return m.saveConnection(pid, eid, c, t)
}

// removeConnection deletes the connection (idempotent). With onlyRev != 0
// it deletes only the record of that revision (a refresh refused for an
// older grant must not delete a newer one).
func (m *Manager) removeConnection(pid ids.PlatformID, eid ids.EndUserID, app string, onlyRev uint64) (bool, error) {
	unlock, err := m.lockBoth(m.connMuFor(pid, eid, app), connLockName("conn", pid, eid, app))
	if err != nil {
		return false, err
	}
	defer unlock()
	if onlyRev != 0 {
		cur, err := m.storedConnection(pid, eid, app)
		if err != nil || cur == nil || cur.Rev != onlyRev {
			return false, err
		}
	}
	if err := m.store.Commit(persistence.Delete(persistence.MCPConnKey(string(pid), app, string(eid)))); err != nil {
		return false, err
	}
	return true, nil
}

// definitiveRefusal reports whether a token endpoint's refusal of a
// refresh token means the grant is gone (the user must connect again), as
// opposed to a transient failure (429, 5xx, timeouts) after which the
// connection stays and the call may be retried.
func definitiveRefusal(te *errTokenEndpoint) bool {
	switch te.code {
	case "invalid_grant", "bad_refresh_token", "invalid_refresh_token", "token_revoked", "token_expired", "refresh_token_expired":
		return true
	case "http_400", "http_401":
		return true // a bare 400/401 from the token endpoint: the grant was refused
	}
	return false
}
