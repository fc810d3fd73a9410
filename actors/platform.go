package actors

import (
	"context"
	"errors"
	"sort"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/internal/money"
	"github.com/assistiv/gateway/internal/pb"
	"github.com/assistiv/gateway/persistence"
)

// WalletAccount is the ledger account name of a platform's wallet.
const WalletAccount = "wallet"

// platformActor owns one platform: its settings, keys, wallet (with open
// reservations) and the creation of its end-users (serializing
// external_id idempotency).
type platformActor struct {
	base
	p *pb.Platform // nil: no such platform
	// wallet is the platform's money: its balance and ledger sequence are
	// stored in p.Wallet (written back by write), what it holds reserved
	// is the credit its leases hold (granted minus spend folded in).
	wallet account
	leases map[string]*pb.Lease // open leases of its wallet, by id
	// Auto top-up (autotopup.go): an intent in flight, and how many times
	// its outcome came back unknown.
	charging      bool
	intent        *pb.TopupIntent
	chargeRetries int
}

// newPlatformActor returns the actor of platform id; with a zero id it
// learns its identity from its name when it starts (see actorName).
func newPlatformActor(env *Env, id Identity) actor.Actor {
	return &platformActor{base: base{env: env, id: id}, leases: make(map[string]*pb.Lease)}
}

func (a *platformActor) Receive(c actor.Context) {
	msg := a.message(c)
	switch msg.(type) {
	case *actor.Started:
		if !a.started(c) {
			return
		}
		a.load()
		a.resumeAutoTopup(c) // payments: pending auto top-up intents
		a.idle(c)
		return
	case *actor.ReceiveTimeout:
		a.passivate(c)
		return
	case idleCheck:
		if !a.stopped && a.idleDue() {
			a.passivate(c)
		}
		return
	case *actor.Stopping, *actor.Stopped, *actor.Restarting:
		return
	case evictNow:
		a.stopped = true
		close(msg.(evictNow))
		return
	case evictDrain:
		a.draining = true
		msg.(evictDrain) <- !a.charging && a.pending.Load() == 0
		return
	}
	if a.receiveAutoTopup(c, msg) { // payments: autotopup.go
		return
	}
	if a.stopped || a.draining {
		a.refusePassivated(c)
		return
	}
	if a.p == nil {
		if m, ok := msg.(*pb.CreatePlatform); ok {
			a.create(c, m)
			return
		}
		a.fail(c, errorf(ErrPlatformNotFound, "platform %s not found", a.id.Platform))
		return
	}
	switch msg.(type) {
	case *pb.ListAPIKeys, *pb.RevokeAPIKey, *pb.CreateEndUser, *pb.ListLedger:
		a.readYourWrites() // they read records this actor writes
	}
	switch m := msg.(type) {
	case *pb.CreatePlatform:
		a.fail(c, errorf(ErrConflict, "platform %s already exists", a.id.Platform))
	case *pb.GetPlatform:
		a.respondDurable(c, &pb.PlatformView{Platform: snapshot(a.p)})
	case *pb.PatchPlatform:
		a.patch(c, m)
	case *pb.CreateAPIKey:
		a.createKey(c, m)
	case *pb.ListAPIKeys:
		a.listKeys(c)
	case *pb.RevokeAPIKey:
		a.revokeKey(c, m)
	case *pb.CreateEndUser:
		a.createEndUser(c, m)
	case *pb.WalletTopup:
		a.topup(c, m)
	case *pb.GetWallet:
		// Fold settled calls in first: the balance read is exact.
		a.flushLeases(c)
		a.respondDurable(c, a.walletView())
	case *pb.SetAutoTopup:
		a.setAutoTopup(c, m)
	case *pb.SetProvider:
		a.setProvider(c, m)
	case *pb.LeaseGrant:
		a.grant(c, m)
	case *pb.LeaseReturn:
		a.giveBack(c, m)
	case *pb.LeaseFlush:
		if m.LeaseId != "" {
			a.foldCarried(c, m)
			return
		}
		a.flushLeases(c)
		a.respond(c, &pb.Ack{})
	case *pb.ListLedger:
		a.flushLeases(c)
		a.readYourWrites()
		a.respondDurable(c, listLedger(a.env.Store, string(a.id.Platform), WalletAccount, m))
	default:
		if a.receivePayments(c, m) { // payments: payments.go
			return
		}
		a.fail(c, errorf(ErrInvalid, "platform actor cannot handle %T", m))
	}
}

func (a *platformActor) idle(c actor.Context) {
	d := a.env.IdleTimeout
	if a.p == nil && d > time.Second {
		d = time.Second
	}
	a.startIdle(c, d)
}

func (a *platformActor) load() {
	a.env.fetchRecords(a.id)
	a.waitApplied()
	raw, err := a.env.Store.Get(persistence.PlatformKey(string(a.id.Platform)))
	if err != nil {
		return
	}
	var p pb.Platform
	if err := proto.Unmarshal(raw, &p); err != nil {
		a.env.Log.Error("corrupt platform record", "platform", a.id.Platform, "err", err)
		return
	}
	a.p = &p
	if a.p.Wallet == nil {
		a.p.Wallet = &pb.Wallet{}
	}
	a.wallet = account{platform: p.Id, name: WalletAccount, balance: money.Nanos(p.Wallet.BalanceNanos), seq: p.Wallet.LedgerSeq}
	a.env.publishPlatform(&p)
	a.loadLeases()
}

func (a *platformActor) passivate(c actor.Context) {
	if a.charging || a.pending.Load() > 0 {
		a.stayIdle() // try again later
		return
	}
	if a.env.dir != nil && !a.env.dir.tryPassivate(a.id, a.self) {
		a.stayIdle()
		return
	}
	a.stopped = true
	c.Stop(a.self)
}

// commitPublished commits a settings change and publishes the settings
// end-user actors read (markup, default limits, providers) only once it is
// durable: no call is admitted on a markup a crash could take back.
func (a *platformActor) commitPublished(c actor.Context, ops []persistence.Op, reply proto.Message) {
	p := snapshot(a.p)
	a.commitThen(c, ops, reply, false, func() { a.env.publishPlatform(p) })
}

// write returns the op that stores the platform record, its wallet's
// balance and ledger sequence brought up to date from the account.
func (a *platformActor) write() []persistence.Op {
	a.syncWallet()
	return []persistence.Op{persistence.Set(persistence.PlatformKey(a.p.Id), marshal(a.p))}
}

// syncWallet copies the wallet account into the platform record, whose
// format is unchanged: balance_nanos and ledger_seq of its Wallet.
func (a *platformActor) syncWallet() {
	a.p.Wallet.BalanceNanos, a.p.Wallet.LedgerSeq = int64(a.wallet.balance), a.wallet.seq
}

func (a *platformActor) create(c actor.Context, m *pb.CreatePlatform) {
	now := a.now()
	p := &pb.Platform{
		Id:          string(a.id.Platform),
		Name:        m.Name,
		CreatedAtMs: now.UnixMilli(),
		UpdatedAtMs: now.UnixMilli(),
		Settings:    m.Settings,
		Wallet:      &pb.Wallet{},
	}
	if p.Settings == nil {
		p.Settings = &pb.PlatformSettings{}
	}
	if p.Settings.DisplayName == "" {
		p.Settings.DisplayName = m.Name
	}
	a.p = p
	a.wallet = account{platform: p.Id, name: WalletAccount}
	a.env.publishPlatform(p)
	key, raw := a.newKey(now, ids.KindPlatform, "", m.KeyName)
	ops := append(a.write(), a.keyOps(key)...)
	a.commit(c, ops, &pb.PlatformCreated{Platform: snapshot(p), Key: key, RawKey: raw}, false)
}

func (a *platformActor) patch(c actor.Context, m *pb.PatchPlatform) {
	s := proto.Clone(a.p.Settings).(*pb.PlatformSettings)
	in := m.Settings
	if in == nil {
		in = &pb.PlatformSettings{}
	}
	for _, f := range m.Fields {
		switch f {
		case "display_name":
			s.DisplayName = in.DisplayName
		case "default_budget":
			s.DefaultBudget = in.DefaultBudget
		case "markup_pct":
			s.MarkupBps = in.MarkupBps
		case "default_rate_limits":
			s.DefaultRateLimits = in.DefaultRateLimits
		case "skills_enabled":
			s.SkillsEnabled = in.SkillsEnabled
		case "wallet_low_balance_usd":
			s.WalletLowBalanceNanos = in.WalletLowBalanceNanos
		case "budget_low_balance_usd":
			s.BudgetLowBalanceNanos = in.BudgetLowBalanceNanos
		default:
			a.fail(c, errorf(ErrInvalid, "unknown setting %q", f))
			return
		}
	}
	if m.ClearDefaultBudget {
		s.DefaultBudget = nil
	}
	a.p.Settings = s
	a.p.UpdatedAtMs = a.now().UnixMilli()
	a.commitPublished(c, a.write(), &pb.PlatformView{Platform: snapshot(a.p)})
}

// newKey mints a key record for this platform (or one of its end-users)
// and caches it in Auth.
func (a *platformActor) newKey(now time.Time, kind ids.KeyKind, endUser, name string) (*pb.APIKey, string) {
	raw, digest := ids.NewKey(kind)
	k := &pb.APIKey{
		Id:          ids.New(ids.KeyPrefix, now),
		PlatformId:  string(a.id.Platform),
		EndUserId:   endUser,
		Kind:        int32(kind),
		Name:        name,
		Prefix:      ids.DisplayPrefix(raw),
		Digest:      digest[:],
		CreatedAtMs: now.UnixMilli(),
	}
	a.env.Auth.put(k)
	return k, raw
}

func (a *platformActor) keyOps(k *pb.APIKey) []persistence.Op {
	ops := []persistence.Op{persistence.Set(persistence.APIKeyKey(k.Digest), marshal(k))}
	if k.EndUserId == "" {
		ops = append(ops, persistence.Set(persistence.PlatformKeyIndex(k.PlatformId, k.Id), k.Digest))
	} else {
		ops = append(ops, persistence.Set(persistence.UserKeyIndex(k.PlatformId, k.EndUserId, k.Id), k.Digest))
	}
	return ops
}

func (a *platformActor) createKey(c actor.Context, m *pb.CreateAPIKey) {
	k, raw := a.newKey(a.now(), ids.KindPlatform, "", m.Name)
	a.commit(c, a.keyOps(k), &pb.APIKeyCreated{Key: k, RawKey: raw}, false)
}

func (a *platformActor) listKeys(c actor.Context) {
	var keys []*pb.APIKey
	st := a.env.Store
	err := st.ScanPrefix(persistence.PlatformKeysPrefix(string(a.id.Platform)), false, func(_, digest []byte) bool {
		raw, err := st.Get(persistence.APIKeyKey(digest))
		if err != nil {
			return true
		}
		var k pb.APIKey
		if proto.Unmarshal(raw, &k) == nil && k.RevokedAtMs == 0 {
			keys = append(keys, &k)
		}
		return true
	})
	if err != nil {
		a.fail(c, err)
		return
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].Id < keys[j].Id })
	a.respondDurable(c, &pb.APIKeyList{Keys: keys})
}

func (a *platformActor) revokeKey(c actor.Context, m *pb.RevokeAPIKey) {
	st := a.env.Store
	digest, err := st.Get(persistence.PlatformKeyIndex(string(a.id.Platform), m.KeyId))
	if errors.Is(err, persistence.ErrNotFound) {
		a.fail(c, errorf(ErrNotFound, "API key %s not found", m.KeyId))
		return
	}
	if err != nil {
		a.fail(c, err)
		return
	}
	raw, err := st.Get(persistence.APIKeyKey(digest))
	if err != nil {
		a.fail(c, err)
		return
	}
	var k pb.APIKey
	if err := proto.Unmarshal(raw, &k); err != nil {
		a.fail(c, err)
		return
	}
	a.env.Auth.revoke(digest)
	a.env.broadcast(&pb.KeysRevoked{Digests: [][]byte{digest}})
	k.RevokedAtMs = a.now().UnixMilli()
	ops := []persistence.Op{
		persistence.Set(persistence.APIKeyKey(digest), marshal(&k)),
		persistence.Delete(persistence.PlatformKeyIndex(k.PlatformId, k.Id)),
	}
	a.commit(c, ops, &pb.Ack{}, false)
}

func (a *platformActor) createEndUser(c actor.Context, m *pb.CreateEndUser) {
	now := a.now()
	st := a.env.Store
	pid := string(a.id.Platform)
	existing, err := st.Get(persistence.ExternalKey(pid, m.ExternalId))
	if err == nil {
		raw, err := st.Get(persistence.EndUserKey(pid, string(existing)))
		if errors.Is(err, persistence.ErrNotFound) && a.env.Clustered() {
			// In a cluster the end-user's records live where its actor
			// runs: ask it (it is never this actor, so no cycle).
			ctx, cancel := context.WithTimeout(context.Background(), a.env.AskTimeout)
			res, aerr := a.env.ask(ctx, EndUserActor(a.id.Platform, ids.EndUserID(existing)), &pb.GetEndUser{})
			cancel()
			switch {
			case aerr == nil:
				raw, err = marshal(res.(*pb.EndUserView).EndUser), nil
			case !errors.Is(aerr, ErrNotFound):
				a.fail(c, aerr)
				return
			}
		}
		if err == nil {
			var u pb.EndUser
			if err := proto.Unmarshal(raw, &u); err != nil {
				a.fail(c, err)
				return
			}
			retire, err := a.retireOldestUserKeys(pid, u.Id)
			if err != nil {
				a.fail(c, err)
				return
			}
			k, rawKey := a.newKey(now, ids.KindEndUser, u.Id, "")
			a.commit(c, append(retire, a.keyOps(k)...), &pb.EndUserCreated{EndUser: &u, Key: k, RawKey: rawKey, Created: false}, false)
			return
		}
	} else if !errors.Is(err, persistence.ErrNotFound) {
		a.fail(c, err)
		return
	}
	u := &pb.EndUser{
		Id:           m.Id,
		PlatformId:   pid,
		ExternalId:   m.ExternalId,
		DisplayName:  m.DisplayName,
		MetadataJson: m.MetadataJson,
		CreatedAtMs:  now.UnixMilli(),
		UpdatedAtMs:  now.UnixMilli(),
	}
	if u.Id == "" {
		u.Id = ids.New(ids.EndUserPrefix, now)
	}
	var ops []persistence.Op
	if db := a.p.Settings.GetDefaultBudget(); db != nil {
		// The new end-user's budget opens through its account, as a POST
		// of a budget does: entry #1, budget_set.
		eu := newEndUser(u)
		var e *pb.LedgerEntry
		eu.budget, e = openBudget(&eu.money, now, money.Nanos(db.AmountNanos), db.Period, money.Nanos(a.p.Settings.BudgetLowBalanceNanos), "default_budget")
		u = eu.record()
		ops = append(ops, eu.money.entryOp(e))
	}
	k, rawKey := a.newKey(now, ids.KindEndUser, u.Id, "")
	ops = append(ops,
		persistence.Set(persistence.EndUserKey(pid, u.Id), marshal(u)),
		persistence.Set(persistence.ExternalKey(pid, u.ExternalId), []byte(u.Id)),
	)
	ops = append(ops, a.keyOps(k)...)
	a.commit(c, ops, &pb.EndUserCreated{EndUser: u, Key: k, RawKey: rawKey, Created: true}, false)
}

func (a *platformActor) topup(c actor.Context, m *pb.WalletTopup) {
	if m.IdempotencyKey != "" {
		rec, err := a.idempotent(&a.wallet, "topup", m.IdempotencyKey, m.RequestHash)
		if err != nil {
			a.fail(c, err)
			return
		}
		if rec != nil {
			var v pb.WalletView
			if err := proto.Unmarshal(rec.Reply, &v); err != nil {
				a.fail(c, err)
				return
			}
			v.Replayed = true
			a.respondDurable(c, &v)
			return
		}
	}
	amount := money.Nanos(m.AmountNanos)
	now := a.now()
	e, err := a.wallet.credit(now, EntryTopup, amount)
	if err != nil {
		a.fail(c, err)
		return
	}
	e.Reason, e.IdempotencyKey, e.RequestId = m.Reason, m.IdempotencyKey, m.RequestId
	ops := append(a.write(), a.wallet.entryOp(e))
	reply := &pb.WalletView{Wallet: snapshot(a.p.Wallet), Entry: e}
	ops = append(ops, a.walletEvent(now, EventWalletToppedUp, amount, e)...)
	if m.IdempotencyKey != "" {
		ops = append(ops, a.wallet.remember(now, "topup", m.IdempotencyKey, m.RequestHash, 200, reply))
	}
	a.commit(c, ops, reply, false)
}

func (a *platformActor) setAutoTopup(c actor.Context, m *pb.SetAutoTopup) {
	at := m.AutoTopup
	if at != nil && at.Enabled && (at.AmountNanos <= 0 || at.ThresholdNanos < 0 || at.AmountNanos > int64(money.MaxAmount)) {
		a.fail(c, errorf(ErrAmountOutOfRange, "auto top-up needs a positive amount and a non-negative threshold"))
		return
	}
	a.p.Wallet.AutoTopup = at
	a.p.UpdatedAtMs = a.now().UnixMilli()
	a.commit(c, a.write(), a.walletView(), false)
	a.maybeAutoTopup(c)
}

// setProvider stores a provider config; the key arrives sealed.
func (a *platformActor) setProvider(c actor.Context, m *pb.SetProvider) {
	in := m.Config
	if in == nil || in.Provider == "" {
		a.fail(c, errorf(ErrInvalid, "provider name required"))
		return
	}
	if a.p.Providers == nil {
		a.p.Providers = map[string]*pb.ProviderConfig{}
	}
	if m.Delete {
		if _, ok := a.p.Providers[in.Provider]; !ok {
			a.fail(c, errorf(ErrNotFound, "provider %s is not configured", in.Provider))
			return
		}
		delete(a.p.Providers, in.Provider)
		a.p.UpdatedAtMs = a.now().UnixMilli()
		a.commitPublished(c, a.write(), &pb.Ack{})
		return
	}
	cur := a.p.Providers[in.Provider]
	if cur == nil {
		if !m.SetKey {
			a.fail(c, errorf(ErrInvalid, "api_key is required when configuring %s", in.Provider))
			return
		}
		cur = &pb.ProviderConfig{Provider: in.Provider, Enabled: true}
	} else {
		cur = proto.Clone(cur).(*pb.ProviderConfig)
	}
	if m.SetKey {
		cur.SealedApiKey, cur.KeyLast4 = in.SealedApiKey, in.KeyLast4
	}
	if m.SetBaseUrl {
		cur.BaseUrl = in.BaseUrl
	}
	if m.SetEnabled {
		cur.Enabled = in.Enabled
	}
	cur.UpdatedAtMs = a.now().UnixMilli()
	// Rotation replaces the sealed key in the same record write: one
	// atomic commit, never a moment without a key.
	a.p.Providers[in.Provider] = cur
	a.p.UpdatedAtMs = cur.UpdatedAtMs
	a.commitPublished(c, a.write(), &pb.ProviderView{Config: cur})
}

// listLedger reads one account's entries, newest first, before a sequence.
func listLedger(st *persistence.Store, platformID, account string, m *pb.ListLedger) proto.Message {
	limit := int(m.Limit)
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	prefix := persistence.LedgerPrefix(platformID, account)
	end := persistence.PrefixEnd(prefix)
	if m.BeforeSeq > 0 {
		end = persistence.LedgerKey(platformID, account, m.BeforeSeq)
	}
	page := &pb.LedgerPage{}
	var failure error
	err := st.Scan(prefix, end, true, func(_, v []byte) bool {
		if len(page.Entries) == limit {
			page.NextBeforeSeq = page.Entries[limit-1].Seq
			return false
		}
		var e pb.LedgerEntry
		if err := proto.Unmarshal(v, &e); err != nil {
			failure = err
			return false
		}
		page.Entries = append(page.Entries, &e)
		return true
	})
	if err == nil {
		err = failure
	}
	if err != nil {
		return (&Error{Code: "internal_error", Message: err.Error()}).failure()
	}
	return page
}

func (a *platformActor) walletEvent(now time.Time, typ string, amount money.Nanos, e *pb.LedgerEntry) []persistence.Op {
	if !a.env.wantsEvent(a.id.Platform, typ) {
		return nil
	}
	d := map[string]any{"balance_usd": usd(int64(a.wallet.balance)), "amount_usd": usd(int64(amount))}
	if e != nil {
		d["transaction_id"] = e.Id
		d["transaction_type"] = e.Type
	}
	return a.env.event(a.id.Platform, typ, now, d)
}

// walletLowEvent fires wallet.low_balance when a debit takes the balance
// from at-or-above to below the platform's low-balance threshold or the
// auto top-up threshold; it is written with the debit, so it precedes the
// auto top-up charge that the same debit starts.
func (a *platformActor) walletLowEvent(now time.Time, before money.Nanos) []persistence.Op {
	after := a.wallet.balance
	thresholds := []int64{a.p.Settings.GetWalletLowBalanceNanos()}
	if at := a.p.Wallet.GetAutoTopup(); at != nil && at.Enabled {
		thresholds = append(thresholds, at.ThresholdNanos)
	}
	for _, t := range thresholds {
		if t > 0 && before >= money.Nanos(t) && after < money.Nanos(t) {
			d := map[string]any{"balance_usd": usd(int64(after)), "threshold_usd": usd(t)}
			if at := a.p.Wallet.GetAutoTopup(); at != nil && at.Enabled {
				d["auto_topup_amount_usd"] = usd(at.AmountNanos)
			}
			return a.env.event(a.id.Platform, EventWalletLowBalance, now, d)
		}
	}
	return nil
}
