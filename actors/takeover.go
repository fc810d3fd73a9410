package actors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/internal/money"
	"github.com/assistiv/gateway/internal/pb"
	"github.com/assistiv/gateway/persistence"
)

// Crash take-over (README "Cluster", "Crash"). When a node dies, the
// accounts it owned activate on their new owners from the newest copy
// found (a live node's or the Postgres snapshot's), which may miss what
// the dead node acknowledged after its last snapshot. Until that tail is
// recovered the account is provisional: [Env.Provision] holds back every
// part of its balance above a configured credit with a takeover_hold
// ledger entry, so the account serves at once but can spend at most the
// credit. When the dead node returns, its tail is merged in by
// [Env.MergeTail] (each entry once, by entry id) and the hold is given
// back (takeover_release); when an operator declares the node lost, the
// hold is given back without a tail ([Env.ReleaseProvisional]).
//
// These functions touch an actor's records directly: call them only while
// no actor for the identity is active on this node (Local.Evict first, or
// from the fetch hook, before the actor reads).

// Ledger entry types of a crash take-over.
const (
	EntryTakeoverHold    = "takeover_hold"
	EntryTakeoverRelease = "takeover_release"
)

// Provisional is an account's take-over marker.
type Provisional struct {
	Node        string      // the crashed node
	Incarnation uint64      // the crashed node's run whose tail is missing
	Held        money.Nanos // what the takeover_hold entry took from the balance
}

func takeoverKey(id Identity) []byte {
	return persistence.TakeoverKey(byte(id.Kind), string(id.Platform), string(id.EndUser))
}

func encodeProvisional(p Provisional) []byte {
	b := binary.BigEndian.AppendUint64(nil, p.Incarnation)
	b = binary.BigEndian.AppendUint64(b, uint64(p.Held))
	return append(b, p.Node...)
}

func decodeProvisional(v []byte) (Provisional, error) {
	if len(v) < 16 {
		return Provisional{}, errors.New("actors: short take-over marker")
	}
	return Provisional{Incarnation: binary.BigEndian.Uint64(v), Held: money.Nanos(binary.BigEndian.Uint64(v[8:])), Node: string(v[16:])}, nil
}

// ProvisionalOf returns id's take-over marker on this node, if any.
func (e *Env) ProvisionalOf(id Identity) (Provisional, bool, error) {
	v, err := e.Store.Get(takeoverKey(id))
	if errors.Is(err, persistence.ErrNotFound) {
		return Provisional{}, false, nil
	}
	if err != nil {
		return Provisional{}, false, err
	}
	p, err := decodeProvisional(v)
	return p, err == nil, err
}

// Provisionals lists the take-over markers this node holds.
func (e *Env) Provisionals() (map[Identity]Provisional, error) {
	out := map[Identity]Provisional{}
	err := e.Store.ScanPrefix([]byte{persistence.FamilyTakeover}, false, func(k, v []byte) bool {
		id, ok := identityOfHoldingKey(k)
		if !ok {
			return true
		}
		if p, err := decodeProvisional(v); err == nil {
			out[id] = p
		}
		return true
	})
	return out, err
}

// identityOfHoldingKey parses a key of the form family kind(1) platform
// 0x00 endUser (FamilyHolding, FamilyTakeover).
func identityOfHoldingKey(k []byte) (Identity, bool) {
	if len(k) < 3 {
		return Identity{}, false
	}
	rest := k[2:]
	i := bytes.IndexByte(rest, 0)
	if i <= 0 {
		return Identity{}, false
	}
	id := Identity{Kind: Kind(k[1])}
	id.Platform, id.EndUser = ids.PlatformID(rest[:i]), ids.EndUserID(rest[i+1:])
	if (id.Kind == KindPlatform) != (id.EndUser == "") || (id.Kind != KindPlatform && id.Kind != KindEndUser) {
		return Identity{}, false
	}
	return id, true
}

// moneyRecord is the record that carries an account's balance and ledger
// sequence: an end-user (its budget) or a platform (its wallet).
type moneyRecord struct {
	key  []byte
	user *pb.EndUser
	plat *pb.Platform
	acct account
	// has reports whether the record holds a balance at all (an
	// end-user without a budget spends the wallet only).
	has bool
}

func (e *Env) loadMoneyRecord(id Identity) (*moneyRecord, error) {
	r := &moneyRecord{}
	if id.Kind == KindEndUser {
		r.key = persistence.EndUserKey(string(id.Platform), string(id.EndUser))
	} else {
		r.key = persistence.PlatformKey(string(id.Platform))
	}
	raw, err := e.Store.Get(r.key)
	if err != nil {
		return nil, err
	}
	if id.Kind == KindEndUser {
		r.user = &pb.EndUser{}
		if err := proto.Unmarshal(raw, r.user); err != nil {
			return nil, err
		}
		r.acct = account{platform: r.user.PlatformId, name: r.user.Id, seq: r.user.LedgerSeq}
		if b := r.user.Budget; b != nil {
			r.acct.balance, r.has = money.Nanos(b.BalanceNanos), true
		}
		return r, nil
	}
	r.plat = &pb.Platform{}
	if err := proto.Unmarshal(raw, r.plat); err != nil {
		return nil, err
	}
	if r.plat.Wallet == nil {
		r.plat.Wallet = &pb.Wallet{}
	}
	r.acct = account{platform: r.plat.Id, name: WalletAccount, balance: money.Nanos(r.plat.Wallet.BalanceNanos), seq: r.plat.Wallet.LedgerSeq}
	r.has = true
	return r, nil
}

// op writes the record back with the account's balance and sequence.
func (r *moneyRecord) op() persistence.Op {
	if r.user != nil {
		r.user.LedgerSeq = r.acct.seq
		if r.user.Budget != nil {
			r.user.Budget.BalanceNanos = int64(r.acct.balance)
		}
		return persistence.Set(r.key, marshal(r.user))
	}
	r.plat.Wallet.BalanceNanos, r.plat.Wallet.LedgerSeq = int64(r.acct.balance), r.acct.seq
	return persistence.Set(r.key, marshal(r.plat))
}

// leased returns what the platform's lease records hold of its wallet.
func (e *Env) leased(platform string) (money.Nanos, error) {
	var sum money.Nanos
	var bad error
	err := e.Store.ScanPrefix(persistence.LeasesPrefix(platform), false, func(_, v []byte) bool {
		var l pb.Lease
		if err := proto.Unmarshal(v, &l); err != nil {
			bad = err
			return false
		}
		sum += money.Nanos(l.GrantedNanos - l.SpentNanos)
		return true
	})
	return sum, errors.Join(err, bad)
}

// Provision makes id provisional after a take-over from node's crashed
// run incarnation: whatever of the available balance exceeds credit is
// held back by a takeover_hold entry (a platform's available balance is
// its wallet minus what its known leases hold). An account already
// provisional, or with no record here, is left as it is. It returns what
// was held back.
func (e *Env) Provision(id Identity, node string, incarnation uint64, credit money.Nanos) (money.Nanos, error) {
	if _, ok, err := e.ProvisionalOf(id); err != nil || ok {
		return 0, err
	}
	r, err := e.loadMoneyRecord(id)
	if errors.Is(err, persistence.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	avail := r.acct.balance
	if id.Kind == KindPlatform {
		l, err := e.leased(string(id.Platform))
		if err != nil {
			return 0, err
		}
		avail -= l
	}
	var held money.Nanos
	var ops []persistence.Op
	if r.has && avail > credit {
		held = avail - credit
		en := r.acct.adjust(e.Clock.Now(), EntryTakeoverHold, -held)
		en.Reason = fmt.Sprintf("node %s crashed: its acknowledged operations since the last snapshot are being recovered; spendable credit capped at %s until then", node, credit)
		ops = append(ops, r.acct.entryOp(en), r.op())
	}
	ops = append(ops, persistence.Set(takeoverKey(id), encodeProvisional(Provisional{Node: node, Incarnation: incarnation, Held: held})))
	return held, e.Store.Commit(ops...)
}

// TailItem is one record of a crashed node's un-snapshotted tail.
type TailItem struct {
	Key, Value []byte
}

// MergeResult says what [Env.MergeTail] did.
type MergeResult struct {
	Applied int // ledger entries added
	Present int // ledger entries already here (by entry id or idempotency key)
	// Unsettled counts the calls the crashed node admitted and did not
	// settle (unsettled_on_crash entries added).
	Unsettled int
	Released  money.Nanos // the hold given back (0: none)
}

// MergeTail merges the tail of node's crashed run into id's records here:
// each ledger entry whose id is not yet in the ledger, and whose
// idempotency key (if any) was not already answered here, and which is not
// the usage of a request already charged here (the edge settled it again
// after the crash), is appended in
// the tail's order with a new sequence and balance, keeping its id, type,
// amount and metadata; the tail's idempotency records and lease records
// are added where this node has none; a reservation the tail holds open
// whose request has no usage entry here is recorded as an
// unsettled_on_crash entry (not charged), as a node's own recovery does. Then, when id is provisional for
// node, the hold is given back (takeover_release). All in one synced
// batch; merging the same tail again changes nothing. With no record of
// id here, the tail's items are written as they are.
func (e *Env) MergeTail(id Identity, node string, items []TailItem) (MergeResult, error) {
	var res MergeResult
	r, err := e.loadMoneyRecord(id)
	if errors.Is(err, persistence.ErrNotFound) {
		var ops []persistence.Op
		for _, it := range items {
			ops = append(ops, persistence.Set(it.Key, it.Value))
		}
		if len(ops) == 0 {
			return res, nil
		}
		return res, e.Store.Commit(ops...)
	}
	if err != nil {
		return res, err
	}
	p, prov := string(id.Platform), r.acct.name
	have := map[string]bool{}
	billed := map[string]bool{}  // request ids with a usage or unsettled_on_crash entry
	charged := map[string]bool{} // request ids with a usage entry made here (a late settlement)
	if err := e.Store.ScanPrefix(persistence.LedgerPrefix(p, prov), false, func(_, v []byte) bool {
		var en pb.LedgerEntry
		if proto.Unmarshal(v, &en) == nil {
			have[en.Id] = true
			if en.RequestId != "" && (en.Type == EntryUsage || en.Type == EntryUnsettledOnCrash) {
				billed[en.RequestId] = true
			}
			if en.RequestId != "" && en.Type == EntryUsage {
				charged[en.RequestId] = true
			}
		}
		return true
	}); err != nil {
		return res, err
	}
	var open []*pb.Reservation
	answered := map[string]bool{} // idempotency keys this node answered itself
	var entries []*pb.LedgerEntry
	var ops []persistence.Op
	for _, it := range items {
		if len(it.Key) == 0 {
			continue
		}
		switch it.Key[0] {
		case persistence.FamilyLedger:
			var en pb.LedgerEntry
			if err := proto.Unmarshal(it.Value, &en); err != nil {
				return res, err
			}
			entries = append(entries, &en)
		case persistence.FamilyReservation:
			var rv pb.Reservation
			if err := proto.Unmarshal(it.Value, &rv); err != nil {
				return res, err
			}
			open = append(open, &rv)
		case persistence.FamilyIdempotency, persistence.FamilyLease:
			_, err := e.Store.Get(it.Key)
			switch {
			case err == nil && it.Key[0] == persistence.FamilyIdempotency:
				var rec pb.IdempotencyRecord
				if proto.Unmarshal(it.Value, &rec) == nil {
					answered[rec.Key] = true
				}
			case errors.Is(err, persistence.ErrNotFound):
				ops = append(ops, persistence.Set(it.Key, it.Value))
			case err != nil:
				return res, err
			}
		}
	}
	slices.SortFunc(entries, func(a, b *pb.LedgerEntry) int {
		switch {
		case a.Seq < b.Seq:
			return -1
		case a.Seq > b.Seq:
			return 1
		}
		return 0
	})
	for _, en := range entries {
		if have[en.Id] || (en.IdempotencyKey != "" && answered[en.IdempotencyKey]) {
			res.Present++
			continue
		}
		if en.Type == EntryUsage && en.RequestId != "" && charged[en.RequestId] {
			// The call's settlement landed on the crashed node but its
			// answer did not reach the edge, which settled it again here
			// (settleLate): charged once already.
			res.Present++
			continue
		}
		have[en.Id] = true
		r.acct.balance += money.Nanos(en.AmountNanos)
		r.acct.seq++
		en.Seq, en.BalanceAfterNanos = r.acct.seq, int64(r.acct.balance)
		ops = append(ops, r.acct.entryOp(en))
		if en.RequestId != "" && (en.Type == EntryUsage || en.Type == EntryUnsettledOnCrash) {
			billed[en.RequestId] = true
		}
		res.Applied++
	}
	// A call the crashed node admitted and never settled there: its
	// settlement, if any, reached this node, which did not know the
	// reservation and charged nothing. Recorded as at any crash recovery
	// (not charged), once per request.
	for _, rv := range open {
		if rv.RequestId == "" || billed[rv.RequestId] {
			continue
		}
		billed[rv.RequestId] = true
		en := r.acct.note(e.Clock.Now(), EntryUnsettledOnCrash)
		en.RequestId, en.UnchargedNanos = rv.RequestId, rv.AmountNanos
		en.Reason = fmt.Sprintf("reservation %s open when node %s crashed", rv.Id, node)
		ops = append(ops, r.acct.entryOp(en))
		res.Unsettled++
	}
	pv, ok, err := e.ProvisionalOf(id)
	if err != nil {
		return res, err
	}
	if ok && pv.Node == node {
		ops = append(ops, e.releaseOps(id, r, pv, "recovered")...)
		res.Released = pv.Held
	}
	if res.Applied > 0 || res.Released > 0 || res.Unsettled > 0 {
		ops = append(ops, r.op())
	}
	if len(ops) == 0 {
		return res, nil
	}
	return res, e.Store.Commit(ops...)
}

// releaseOps deletes id's marker and gives its hold back to r.
func (e *Env) releaseOps(id Identity, r *moneyRecord, pv Provisional, why string) []persistence.Op {
	ops := []persistence.Op{persistence.Delete(takeoverKey(id))}
	if pv.Held > 0 && r != nil {
		en := r.acct.adjust(e.Clock.Now(), EntryTakeoverRelease, pv.Held)
		en.Reason = fmt.Sprintf("node %s %s: take-over hold given back", pv.Node, why)
		ops = append(ops, r.acct.entryOp(en))
	}
	return ops
}

// ReleaseProvisional ends id's provisional state for node without a tail
// (the node was declared lost, or never stopped): the hold is given back,
// the entry's reason saying why. It returns what was released and
// whether id was provisional for node.
func (e *Env) ReleaseProvisional(id Identity, node, why string) (money.Nanos, bool, error) {
	pv, ok, err := e.ProvisionalOf(id)
	if err != nil || !ok || pv.Node != node {
		return 0, false, err
	}
	r, err := e.loadMoneyRecord(id)
	if err != nil && !errors.Is(err, persistence.ErrNotFound) {
		return 0, false, err
	}
	ops := e.releaseOps(id, r, pv, why)
	if r != nil && pv.Held > 0 {
		ops = append(ops, r.op())
	}
	return pv.Held, true, e.Store.Commit(ops...)
}

// HoldingSeq returns the ledger sequence of id's account in h (0 when h
// has no record of id).
func HoldingSeq(id Identity, h Holding) uint64 {
	key := persistence.PlatformKey(string(id.Platform))
	if id.Kind == KindEndUser {
		key = persistence.EndUserKey(string(id.Platform), string(id.EndUser))
	}
	for i, k := range h.Keys {
		if !bytes.Equal(k, key) {
			continue
		}
		if id.Kind == KindEndUser {
			var u pb.EndUser
			if proto.Unmarshal(h.Values[i], &u) == nil {
				return u.LedgerSeq
			}
			return 0
		}
		var p pb.Platform
		if proto.Unmarshal(h.Values[i], &p) == nil {
			return p.GetWallet().GetLedgerSeq()
		}
	}
	return 0
}

// AdoptNewest is [Env.Adopt] at a crash take-over, with one more
// candidate, snap: a copy of id's records read from the Postgres snapshot.
// It wins when its ledger sequence is above that of the copy Adopt would
// keep (the newest by epoch among this node's and others). The epoch
// written is at least the current time in nanoseconds: the crashed node's
// own copy, which it may bring back with an epoch this node never saw, is
// older than this one (epochs grow by one per move, so a copy's epoch
// stays below the clock of any later take-over, clocks being roughly in
// step), and so never wins against it.
func (e *Env) AdoptNewest(id Identity, others []Holding, snap Holding) error {
	floor := uint64(e.Clock.Now().UnixNano())
	if len(snap.Keys) == 0 {
		return e.adopt(id, others, floor)
	}
	mine, err := e.Export(id)
	if err != nil {
		return err
	}
	best, top := mine, mine.Epoch
	for _, h := range others {
		if h.Epoch > top || (h.Epoch == top && len(h.Keys) > 0 && len(best.Keys) == 0) {
			best = h
		}
		top = max(top, h.Epoch)
	}
	if HoldingSeq(id, snap) > HoldingSeq(id, best) || (len(best.Keys) == 0 && len(snap.Keys) > 0) {
		snap.Epoch = top + 1
		others = append(slices.Clone(others), snap)
	}
	return e.adopt(id, others, floor)
}

// OwnedKeys returns the keys (exact) and key prefixes of the records an
// actor owns, as [Env.Export] gathers them (API key records, reached
// through the key index entries, excepted).
func OwnedKeys(id Identity) (exact, prefixes [][]byte) { return ownedPrefixes(id) }

// LedgerAccount returns the ledger account that carries id's money: the
// end-user's id or [WalletAccount].
func LedgerAccount(id Identity) string {
	if id.Kind == KindEndUser {
		return string(id.EndUser)
	}
	return WalletAccount
}

// NotHeld reports whether key is a record of an actor whose records this
// node does not hold (cluster mode): it never took the actor over, or
// another node took its copy since. Such a copy is older than the
// holder's, and the shared Postgres snapshot must not get it (a snapshot
// round of this node landing after the holder's would replace the newer
// value). Records that are no actor's (and API key records) are held.
func (e *Env) NotHeld(key []byte) bool {
	id, ok := actorOfKey(key)
	if !ok {
		return false
	}
	raw, err := e.Store.Get(holdingKey(id))
	if err != nil || len(raw) < 8 {
		return true // never taken over here: written for its owner, which takes it over
	}
	return len(raw) > 8 && raw[8] == surrenderedFlag
}

// actorOfKey returns the actor whose records include key (ownedPrefixes).
func actorOfKey(key []byte) (Identity, bool) {
	if len(key) < 2 {
		return Identity{}, false
	}
	parts := bytes.Split(key[1:], []byte{0})
	plat := func() (Identity, bool) { return PlatformActor(ids.PlatformID(parts[0])), len(parts[0]) > 0 }
	account := func() (Identity, bool) {
		if len(parts) < 2 || len(parts[0]) == 0 || len(parts[1]) == 0 {
			return Identity{}, false
		}
		if string(parts[1]) == WalletAccount {
			return plat()
		}
		return EndUserActor(ids.PlatformID(parts[0]), ids.EndUserID(parts[1])), true
	}
	switch key[0] {
	case persistence.FamilyPlatform:
		if len(parts) == 1 {
			return plat()
		}
	case persistence.FamilyPlatKeys, persistence.FamilyExternal, persistence.FamilyLease,
		persistence.FamilyPayment, persistence.FamilyPendingPayment:
		return plat()
	case persistence.FamilyEndUser, persistence.FamilyUserKeys, persistence.FamilyWindows,
		persistence.FamilyLedger, persistence.FamilyIdempotency, persistence.FamilyReservation:
		return account()
	case persistence.FamilyTakeover:
		return identityOfHoldingKey(key)
	}
	return Identity{}, false
}
