package actors

import (
	"google.golang.org/protobuf/proto"

	"github.com/assistiv/gateway/internal/pb"
	"github.com/assistiv/gateway/persistence"
)

// MaxKeysPerEndUser bounds an end-user's live keys. POST .../end-users is
// idempotent on external_id and mints a fresh key on every call; past the
// bound the oldest keys are revoked in the same commit as the new one, so
// an integration that re-creates its users on every login keeps working
// with its latest keys while the key space stays bounded.
const MaxKeysPerEndUser = 25

// retireOldestUserKeys returns the writes that revoke the end-user's
// oldest live keys so that one more key keeps it at MaxKeysPerEndUser,
// and marks them revoked in the auth cache (before the commit, like
// revokeKey). Key ids sort by creation time.
func (a *platformActor) retireOldestUserKeys(pid, eid string) ([]persistence.Op, error) {
	st := a.env.Store
	type entry struct{ index, digest []byte }
	var live []entry
	if err := st.ScanPrefix(persistence.UserKeysPrefix(pid, eid), false, func(k, v []byte) bool {
		live = append(live, entry{append([]byte(nil), k...), append([]byte(nil), v...)})
		return true
	}); err != nil {
		return nil, err
	}
	var ops []persistence.Op
	now := a.now().UnixMilli()
	for i := 0; i < len(live)-(MaxKeysPerEndUser-1); i++ {
		raw, err := st.Get(persistence.APIKeyKey(live[i].digest))
		if err != nil {
			return nil, err
		}
		var k pb.APIKey
		if err := proto.Unmarshal(raw, &k); err != nil {
			return nil, err
		}
		a.env.Auth.revoke(live[i].digest)
		k.RevokedAtMs = now
		ops = append(ops, persistence.Set(persistence.APIKeyKey(live[i].digest), marshal(&k)), persistence.Delete(live[i].index))
	}
	return ops, nil
}
