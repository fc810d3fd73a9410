package edge

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	"github.com/assistiv/gateway/actors"
	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/internal/money"
	"github.com/assistiv/gateway/internal/pb"
)

// ---- path parameters and tenancy ----

func (c *call) param(name string) string {
	v, _ := c.ctx.UserValue(name).(string)
	return v
}

// platformID returns the path's platform id. On platform-key routes
// ownPlatform has already checked it is the key's platform.
func (c *call) platformID() ids.PlatformID { return ids.PlatformID(c.param("platformId")) }

// endUserID returns the path's end-user id, or 404 for one that cannot exist.
func (c *call) endUserID() (ids.EndUserID, error) {
	v := c.param("endUserId")
	if !ids.Valid(ids.EndUserPrefix, v) {
		return "", errNotFound("end-user " + strconv.Quote(v))
	}
	return ids.EndUserID(v), nil
}

// ownPlatform makes every platform-scoped route answer 404 for another
// tenant's platform id, exactly as for one that does not exist.
func (s *Server) ownPlatform(h func(*call) error) func(*call) error {
	return func(c *call) error {
		if c.platformID() != c.principal.Platform {
			return errNotFound("platform " + strconv.Quote(string(c.platformID())))
		}
		return h(c)
	}
}

func (c *call) ask(id actors.Identity, msg proto.Message) (proto.Message, error) {
	ctx, cancel := c.context()
	defer cancel()
	return c.s.deps.Directory.Ask(ctx, id, msg)
}

func (c *call) askPlatform(msg proto.Message) (proto.Message, error) {
	return c.ask(actors.PlatformActor(c.platformID()), msg)
}

func (c *call) askEndUser(msg proto.Message) (proto.Message, error) {
	eid, err := c.endUserID()
	if err != nil {
		return nil, err
	}
	return c.ask(actors.EndUserActor(c.platformID(), eid), msg)
}

// ---- input validation ----

// validText checks a user-supplied string: UTF-8, no control characters,
// at most max bytes.
func validText(field, v string, max int, required bool) error {
	if v == "" {
		if required {
			return errBadRequest("missing_field", "%s is required", field)
		}
		return nil
	}
	if len(v) > max {
		return errBadRequest("invalid_field", "%s is longer than %d bytes", field, max)
	}
	if !utf8.ValidString(v) {
		return errBadRequest("invalid_field", "%s is not valid UTF-8", field)
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			return errBadRequest("invalid_field", "%s contains control characters", field)
		}
	}
	return nil
}

// idempotencyKey reads the Idempotency-Key header: at most 255 printable
// ASCII characters, sent at most once.
func (c *call) idempotencyKey() (string, error) {
	all := c.ctx.Request.Header.PeekAll("Idempotency-Key")
	if len(all) == 0 {
		return "", nil
	}
	if len(all) > 1 {
		return "", errBadRequest("invalid_idempotency_key", "send Idempotency-Key once")
	}
	k := string(all[0])
	if k == "" || len(k) > 255 {
		return "", errBadRequest("invalid_idempotency_key", "Idempotency-Key must be 1 to 255 characters")
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return "", errBadRequest("invalid_idempotency_key", "Idempotency-Key must be printable ASCII")
		}
	}
	return k, nil
}

type rateLimitsIn struct {
	RequestsPerMinute   *int64 `json:"requests_per_minute"`
	TokensPerMinute     *int64 `json:"tokens_per_minute"`
	RequestsPerDay      *int64 `json:"requests_per_day"`
	MaxParallelRequests *int64 `json:"max_parallel_requests"`
}

// maxParallelLimit bounds max_parallel_requests.
const maxParallelLimit = 100_000

const maxLimit = 1_000_000_000

func (r *rateLimitsIn) toPB() (*pb.RateLimits, error) {
	return r.fill(&pb.RateLimits{})
}

// toOverridePB is an end-user override: a field absent from the body is
// actors.InheritLimit (the platform default applies), 0 lifts the limit.
func (r *rateLimitsIn) toOverridePB() (*pb.RateLimits, error) {
	return r.fill(&pb.RateLimits{RequestsPerMinute: actors.InheritLimit, TokensPerMinute: actors.InheritLimit, RequestsPerDay: actors.InheritLimit})
}

func (r *rateLimitsIn) fill(out *pb.RateLimits) (*pb.RateLimits, error) {
	for _, f := range []struct {
		name string
		in   *int64
		out  *int64
	}{
		{"requests_per_minute", r.RequestsPerMinute, &out.RequestsPerMinute},
		{"tokens_per_minute", r.TokensPerMinute, &out.TokensPerMinute},
		{"requests_per_day", r.RequestsPerDay, &out.RequestsPerDay},
	} {
		if f.in == nil {
			continue
		}
		if *f.in < 0 || *f.in > maxLimit {
			return nil, errBadRequest("invalid_field", "%s must be between 0 (no limit) and %d", f.name, maxLimit)
		}
		*f.out = *f.in
	}
	if v := r.MaxParallelRequests; v != nil {
		// Absent: unset (inherited in an override, none in defaults).
		if *v < 0 || *v > maxParallelLimit {
			return nil, errBadRequest("invalid_field", "max_parallel_requests must be between 0 (no limit) and %d", maxParallelLimit)
		}
		out.MaxParallelRequests = proto.Int64(*v)
	}
	return out, nil
}

// ---- cursors ----

func encodeCursor(b []byte) *string {
	s := base64.RawURLEncoding.EncodeToString(b)
	return &s
}

func decodeCursor(s string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) == 0 || len(b) > 256 {
		return nil, errBadRequest("invalid_cursor", "cursor is not one this API returned")
	}
	return b, nil
}

func (c *call) limit(def, max int) (int, error) {
	v := c.ctx.QueryArgs().Peek("limit")
	if len(v) == 0 {
		return def, nil
	}
	n, err := strconv.Atoi(string(v))
	if err != nil || n < 1 {
		return 0, errBadRequest("invalid_limit", "limit must be a positive integer")
	}
	return min(n, max), nil
}

// ---- who am I ----

func (s *Server) me(c *call) error {
	p := c.principal
	out := map[string]any{
		"object":      "principal",
		"key_type":    p.Kind.String(),
		"platform_id": p.Platform,
		"key_id":      p.KeyID,
		"key_prefix":  p.Prefix,
	}
	if p.Kind == ids.KindEndUser {
		out["end_user_id"] = p.EndUser
	}
	return c.writeJSON(200, out)
}

// ---- platforms ----

type settingsIn struct {
	DisplayName         *string         `json:"display_name"`
	DefaultBudget       json.RawMessage `json:"default_budget"`
	MarkupPct           *json.Number    `json:"markup_pct"`
	DefaultRateLimits   *rateLimitsIn   `json:"default_rate_limits"`
	SkillsEnabled       *bool           `json:"skills_enabled"`
	WalletLowBalanceUSD *money.Nanos    `json:"wallet_low_balance_usd"`
	BudgetLowBalanceUSD *money.Nanos    `json:"budget_low_balance_usd"`
}

// toPatch turns the fields present in in into a PatchPlatform.
func (in *settingsIn) toPatch() (*pb.PatchPlatform, error) {
	p := &pb.PatchPlatform{Settings: &pb.PlatformSettings{}}
	if in.DisplayName != nil {
		if err := validText("display_name", *in.DisplayName, 255, false); err != nil {
			return nil, err
		}
		p.Settings.DisplayName = *in.DisplayName
		p.Fields = append(p.Fields, "display_name")
	}
	if len(in.DefaultBudget) > 0 {
		if string(in.DefaultBudget) == "null" {
			p.ClearDefaultBudget = true
		} else {
			var b struct {
				AmountUSD *money.Nanos `json:"amount_usd"`
				Period    string       `json:"period"`
			}
			if err := decodeStrict(in.DefaultBudget, &b); err != nil {
				return nil, err
			}
			if b.AmountUSD == nil || *b.AmountUSD < 0 {
				return nil, errBadRequest("invalid_field", "default_budget.amount_usd must be a non-negative number")
			}
			if b.Period == "" {
				b.Period = actors.PeriodOneTime
			}
			if !actors.ValidPeriod(b.Period) {
				return nil, errBadRequest("invalid_field", "default_budget.period must be one_time, daily or monthly")
			}
			p.Settings.DefaultBudget = &pb.BudgetTemplate{AmountNanos: int64(*b.AmountUSD), Period: b.Period}
			p.Fields = append(p.Fields, "default_budget")
		}
	}
	if in.MarkupPct != nil {
		n, err := money.ParseUSD(string(*in.MarkupPct))
		if err != nil || n < 0 || n%10_000_000 != 0 || n > 1000*money.PerUSD {
			return nil, errBadRequest("invalid_field", "markup_pct must be between 0 and 1000 with at most 2 decimals")
		}
		p.Settings.MarkupBps = int64(n / 10_000_000)
		p.Fields = append(p.Fields, "markup_pct")
	}
	if in.DefaultRateLimits != nil {
		l, err := in.DefaultRateLimits.toPB()
		if err != nil {
			return nil, err
		}
		p.Settings.DefaultRateLimits = l
		p.Fields = append(p.Fields, "default_rate_limits")
	}
	if in.SkillsEnabled != nil {
		p.Settings.SkillsEnabled = *in.SkillsEnabled
		p.Fields = append(p.Fields, "skills_enabled")
	}
	if in.WalletLowBalanceUSD != nil {
		if *in.WalletLowBalanceUSD < 0 {
			return nil, errBadRequest("invalid_field", "wallet_low_balance_usd must not be negative")
		}
		p.Settings.WalletLowBalanceNanos = int64(*in.WalletLowBalanceUSD)
		p.Fields = append(p.Fields, "wallet_low_balance_usd")
	}
	if in.BudgetLowBalanceUSD != nil {
		if *in.BudgetLowBalanceUSD < 0 {
			return nil, errBadRequest("invalid_field", "budget_low_balance_usd must not be negative")
		}
		p.Settings.BudgetLowBalanceNanos = int64(*in.BudgetLowBalanceUSD)
		p.Fields = append(p.Fields, "budget_low_balance_usd")
	}
	return p, nil
}

func (s *Server) adminCreatePlatform(c *call) error {
	var in struct {
		Name     string     `json:"name"`
		Settings settingsIn `json:"settings"`
	}
	if err := c.decodeJSON(&in, false); err != nil {
		return err
	}
	if err := validText("name", in.Name, 255, true); err != nil {
		return err
	}
	patch, err := in.Settings.toPatch()
	if err != nil {
		return err
	}
	settings := patch.Settings
	if patch.ClearDefaultBudget {
		settings.DefaultBudget = nil
	}
	id := ids.PlatformID(ids.New(ids.PlatformPrefix, c.s.deps.Clock.Now()))
	res, err := c.ask(actors.PlatformActor(id), &pb.CreatePlatform{Name: in.Name, Settings: settings, KeyName: "default"})
	if err != nil {
		return err
	}
	pc := res.(*pb.PlatformCreated)
	return c.writeJSON(201, map[string]any{
		"platform": platformView(pc.Platform, true),
		"api_key":  keyView(pc.Key, pc.RawKey),
	})
}

func (s *Server) adminListPlatforms(c *call) error {
	limit, err := c.limit(50, 200)
	if err != nil {
		return err
	}
	after := ""
	if cur := c.ctx.QueryArgs().Peek("cursor"); len(cur) > 0 {
		a, err := decodeCursor(string(cur))
		if err != nil {
			return err
		}
		after = string(a)
	}
	// Through every node's records, the owner's copy preferred.
	platforms, more, err := actors.ListPlatforms(c.ctx, s.deps.Peers, s.deps.Directory, after, limit)
	if err != nil {
		return err
	}
	out := listJSON[platformJSON]{Object: "list", Data: make([]platformJSON, 0, len(platforms)), HasMore: more}
	for _, p := range platforms {
		out.Data = append(out.Data, platformView(p, true))
	}
	if out.HasMore {
		out.NextCursor = encodeCursor([]byte(out.Data[len(out.Data)-1].ID))
	}
	return c.writeJSON(200, out)
}

func (s *Server) adminGetPlatform(c *call) error { return s.getOwnPlatform(c) }

func (s *Server) getOwnPlatform(c *call) error {
	res, err := c.askPlatform(&pb.GetPlatform{})
	if err != nil {
		return err
	}
	return c.writeJSON(200, platformView(res.(*pb.PlatformView).Platform, true))
}

func (s *Server) adminPatchPlatform(c *call) error {
	var in settingsIn
	if err := c.decodeJSON(&in, false); err != nil {
		return err
	}
	return s.applyPatch(c, &in)
}

// patchOwnPlatform lets a platform change its own settings, except the
// markup, which the operator sets.
func (s *Server) patchOwnPlatform(c *call) error {
	var in settingsIn
	if err := c.decodeJSON(&in, false); err != nil {
		return err
	}
	if in.MarkupPct != nil {
		return &apiError{Status: 403, Type: typePerm, Code: "forbidden_field", Message: "markup_pct is set by the operator"}
	}
	return s.applyPatch(c, &in)
}

func (s *Server) applyPatch(c *call, in *settingsIn) error {
	patch, err := in.toPatch()
	if err != nil {
		return err
	}
	res, err := c.askPlatform(patch)
	if err != nil {
		return err
	}
	if in.SkillsEnabled != nil && s.deps.MCP != nil {
		s.deps.MCP.NotifyToolsChanged(c.platformID())
	}
	return c.writeJSON(200, platformView(res.(*pb.PlatformView).Platform, true))
}

func (s *Server) getPlatformRateLimits(c *call) error {
	res, err := c.askPlatform(&pb.GetPlatform{})
	if err != nil {
		return err
	}
	return c.writeJSON(200, limitsView(res.(*pb.PlatformView).Platform.GetSettings().GetDefaultRateLimits()))
}

func (s *Server) putPlatformRateLimits(c *call) error {
	var in rateLimitsIn
	if err := c.decodeJSON(&in, false); err != nil {
		return err
	}
	l, err := in.toPB()
	if err != nil {
		return err
	}
	res, err := c.askPlatform(&pb.PatchPlatform{Settings: &pb.PlatformSettings{DefaultRateLimits: l}, Fields: []string{"default_rate_limits"}})
	if err != nil {
		return err
	}
	return c.writeJSON(200, limitsView(res.(*pb.PlatformView).Platform.GetSettings().GetDefaultRateLimits()))
}

// ---- wallet ----

func amountHash(key string, amount money.Nanos, reason string) []byte {
	if key == "" {
		return nil // no Idempotency-Key: nothing is remembered to compare with
	}
	b := strconv.AppendInt(make([]byte, 0, 24+len(reason)), int64(amount), 10)
	b = append(append(b, 0), reason...)
	h := sha256.Sum256(b) // the digest of "%d\x00%s", as records written before hold
	return h[:]
}

type amountIn struct {
	AmountUSD *money.Nanos `json:"amount_usd"`
	Reason    string       `json:"reason"`
}

func (c *call) amountBody() (money.Nanos, string, string, error) {
	var in amountIn
	if !c.jsonContentType() || !scanAmount(c.ctx.PostBody(), &in) {
		in = amountIn{}
		if err := c.decodeJSON(&in, false); err != nil {
			return 0, "", "", err
		}
	}
	if in.AmountUSD == nil {
		return 0, "", "", errBadRequest("missing_field", "amount_usd is required")
	}
	if *in.AmountUSD <= 0 {
		return 0, "", "", errBadRequest("invalid_amount", "amount_usd must be positive")
	}
	if err := validText("reason", in.Reason, 500, false); err != nil {
		return 0, "", "", err
	}
	key, err := c.idempotencyKey()
	if err != nil {
		return 0, "", "", err
	}
	return *in.AmountUSD, in.Reason, key, nil
}

func (c *call) replayed(r bool) {
	if r {
		c.ctx.Response.Header.Set("Idempotent-Replayed", "true")
	}
}

func (s *Server) walletTopup(c *call) error {
	amount, reason, key, err := c.amountBody()
	if err != nil {
		return err
	}
	res, err := c.askPlatform(&pb.WalletTopup{AmountNanos: int64(amount), IdempotencyKey: key,
		RequestHash: amountHash(key, amount, reason), Reason: reason, RequestId: c.rid})
	if err != nil {
		return err
	}
	v := res.(*pb.WalletView)
	c.replayed(v.Replayed)
	return c.writeJSON(200, map[string]any{"wallet": walletView(v.Wallet, v.ReservedNanos), "transaction": txView(v.Entry)})
}

func (s *Server) walletGet(c *call) error {
	res, err := c.askPlatform(&pb.GetWallet{})
	if err != nil {
		return err
	}
	v := res.(*pb.WalletView)
	return c.writeJSON(200, walletView(v.Wallet, v.ReservedNanos))
}

func (s *Server) walletAutoTopup(c *call) error {
	var in struct {
		Enabled      bool         `json:"enabled"`
		ThresholdUSD *money.Nanos `json:"threshold_usd"`
		AmountUSD    *money.Nanos `json:"amount_usd"`
	}
	if err := c.decodeJSON(&in, false); err != nil {
		return err
	}
	at := &pb.AutoTopup{Enabled: in.Enabled}
	if in.Enabled && (in.ThresholdUSD == nil || in.AmountUSD == nil) {
		return errBadRequest("missing_field", "threshold_usd and amount_usd are required to enable auto top-up")
	}
	if in.ThresholdUSD != nil {
		at.ThresholdNanos = int64(*in.ThresholdUSD)
	}
	if in.AmountUSD != nil {
		at.AmountNanos = int64(*in.AmountUSD)
	}
	if err := s.chargeableAmount(at); err != nil { // payments.go
		return err
	}
	res, err := c.askPlatform(&pb.SetAutoTopup{AutoTopup: at})
	if err != nil {
		return err
	}
	v := res.(*pb.WalletView)
	return c.writeJSON(200, walletView(v.Wallet, v.ReservedNanos))
}

func (s *Server) walletTransactions(c *call) error {
	return s.transactions(c, actors.PlatformActor(c.platformID()), actors.WalletAccount)
}

func (s *Server) transactions(c *call, id actors.Identity, account string) error {
	limit, err := c.limit(100, 1000)
	if err != nil {
		return err
	}
	req := &pb.ListLedger{Account: account, Limit: int32(limit)}
	if cur := c.ctx.QueryArgs().Peek("cursor"); len(cur) > 0 {
		b, err := decodeCursor(string(cur))
		if err != nil {
			return err
		}
		if len(b) != 8 {
			return errBadRequest("invalid_cursor", "cursor is not one this API returned")
		}
		req.BeforeSeq = binary.BigEndian.Uint64(b)
	}
	res, err := c.ask(id, req)
	if err != nil {
		return err
	}
	page := res.(*pb.LedgerPage)
	out := listJSON[transactionJSON]{Object: "list", Data: make([]transactionJSON, 0, len(page.Entries))}
	for _, e := range page.Entries {
		out.Data = append(out.Data, txView(e))
	}
	if page.NextBeforeSeq > 0 {
		out.HasMore = true
		out.NextCursor = encodeCursor(binary.BigEndian.AppendUint64(nil, page.NextBeforeSeq))
	}
	return c.writeJSON(200, out)
}

// ---- API keys ----

func (s *Server) listKeys(c *call) error {
	res, err := c.askPlatform(&pb.ListAPIKeys{})
	if err != nil {
		return err
	}
	keys := res.(*pb.APIKeyList).Keys
	out := listJSON[apiKeyJSON]{Object: "list", Data: make([]apiKeyJSON, 0, len(keys))}
	for _, k := range keys {
		out.Data = append(out.Data, keyView(k, ""))
	}
	return c.writeJSON(200, out)
}

func (s *Server) createKey(c *call) error {
	var in struct {
		Name string `json:"name"`
	}
	if err := c.decodeJSON(&in, true); err != nil {
		return err
	}
	if err := validText("name", in.Name, 255, false); err != nil {
		return err
	}
	res, err := c.askPlatform(&pb.CreateAPIKey{Name: in.Name})
	if err != nil {
		return err
	}
	kc := res.(*pb.APIKeyCreated)
	return c.writeJSON(201, keyView(kc.Key, kc.RawKey))
}

func (s *Server) revokeKey(c *call) error {
	kid := c.param("keyId")
	if !ids.Valid(ids.KeyPrefix, kid) {
		return errNotFound("API key " + strconv.Quote(kid))
	}
	if _, err := c.askPlatform(&pb.RevokeAPIKey{KeyId: kid}); err != nil {
		return err
	}
	return c.writeJSON(200, map[string]any{"id": kid, "object": "api_key", "revoked": true})
}

// ---- end-users ----

type endUserIn struct {
	ExternalID  *string         `json:"external_id"`
	DisplayName *string         `json:"display_name"`
	Metadata    json.RawMessage `json:"metadata"`
}

func validMetadata(m json.RawMessage) ([]byte, error) {
	if len(m) == 0 || string(m) == "null" {
		return nil, nil
	}
	if len(m) > 16<<10 {
		return nil, errBadRequest("invalid_field", "metadata is larger than 16 KiB")
	}
	// Numbers stay json.Number, their text as sent: float64 would round
	// ids and amounts past 2^53.
	var obj map[string]any
	dec := json.NewDecoder(bytes.NewReader(m))
	dec.UseNumber()
	if err := dec.Decode(&obj); err != nil {
		return nil, errBadRequest("invalid_field", "metadata must be a JSON object")
	}
	return json.Marshal(obj) // compact, canonical key order
}

func (s *Server) createEndUser(c *call) error {
	var in endUserIn
	if err := c.decodeJSON(&in, false); err != nil {
		return err
	}
	if in.ExternalID == nil {
		return errBadRequest("missing_field", "external_id is required")
	}
	if err := validText("external_id", *in.ExternalID, 255, true); err != nil {
		return err
	}
	var name string
	if in.DisplayName != nil {
		name = *in.DisplayName
		if err := validText("display_name", name, 255, false); err != nil {
			return err
		}
	}
	md, err := validMetadata(in.Metadata)
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		res, err := c.askPlatform(&pb.CreateEndUser{ExternalId: *in.ExternalID, DisplayName: name, MetadataJson: md})
		if err != nil {
			return err
		}
		ec := res.(*pb.EndUserCreated)
		status := 201
		if !ec.Created {
			// The platform actor minted a key for an existing end-user; a
			// DELETE of that end-user may be racing. Its actor orders the
			// two: if the end-user is still there, a later delete revokes
			// the new key with the others; if not, sweep the key and
			// create afresh.
			status = 200
			eu := actors.EndUserActor(c.platformID(), ids.EndUserID(ec.EndUser.Id))
			if _, err := c.ask(eu, &pb.GetEndUser{}); actors.ErrIsNotFound(err) && attempt < 2 {
				if _, err := c.ask(eu, &pb.DeleteEndUser{}); err != nil && !actors.ErrIsNotFound(err) {
					return err
				}
				continue
			} else if err != nil {
				return err
			}
		}
		return c.writeJSON(status, struct {
			endUserJSON
			APIKey apiKeyJSON `json:"api_key"`
		}{endUserView(ec.EndUser, nil), keyView(ec.Key, ec.RawKey)})
	}
}

func (s *Server) listEndUsers(c *call) error {
	limit, err := c.limit(20, 100)
	if err != nil {
		return err
	}
	after := ""
	if cur := c.ctx.QueryArgs().Peek("cursor"); len(cur) > 0 {
		a, err := decodeCursor(string(cur))
		if err != nil {
			return err
		}
		if !ids.Valid(ids.EndUserPrefix, string(a)) {
			return errBadRequest("invalid_cursor", "cursor is not one this API returned")
		}
		after = string(a)
	}
	extFilter := string(c.ctx.QueryArgs().Peek("external_id"))
	// Through every node's records, the owner's copy preferred.
	users, more, err := actors.ListEndUsers(c.ctx, s.deps.Peers, s.deps.Directory, c.platformID(), after, limit, extFilter)
	if err != nil {
		return err
	}
	out := listJSON[endUserJSON]{Object: "list", Data: make([]endUserJSON, 0, len(users)), HasMore: more}
	for _, u := range users {
		out.Data = append(out.Data, endUserView(u, nil))
	}
	if out.HasMore {
		out.NextCursor = encodeCursor([]byte(out.Data[len(out.Data)-1].ID))
	}
	return c.writeJSON(200, out)
}

func (s *Server) getEndUser(c *call) error {
	res, err := c.askEndUser(&pb.GetEndUser{})
	if err != nil {
		return err
	}
	return c.writeJSON(200, c.liveEndUserView(res.(*pb.EndUserView)))
}

func (s *Server) patchEndUser(c *call) error {
	var in endUserIn
	if err := c.decodeJSON(&in, false); err != nil {
		return err
	}
	if in.ExternalID != nil {
		return errBadRequest("immutable_field", "external_id cannot change; create another end-user")
	}
	m := &pb.PatchEndUser{}
	if in.DisplayName != nil {
		if err := validText("display_name", *in.DisplayName, 255, false); err != nil {
			return err
		}
		m.DisplayName, m.SetDisplayName = *in.DisplayName, true
	}
	if len(in.Metadata) > 0 {
		md, err := validMetadata(in.Metadata)
		if err != nil {
			return err
		}
		m.MetadataJson, m.SetMetadata = md, true
	}
	res, err := c.askEndUser(m)
	if err != nil {
		return err
	}
	return c.writeJSON(200, c.liveEndUserView(res.(*pb.EndUserView)))
}

func (s *Server) deleteEndUser(c *call) error {
	if _, err := c.askEndUser(&pb.DeleteEndUser{}); err != nil {
		return err
	}
	return c.writeJSON(200, map[string]any{"id": c.param("endUserId"), "object": "end_user", "deleted": true})
}

// ---- budgets ----

type budgetIn struct {
	AmountUSD              *money.Nanos `json:"amount_usd"`
	Period                 *string      `json:"period"`
	IsSuspended            *bool        `json:"is_suspended"`
	LowBalanceThresholdUSD *money.Nanos `json:"low_balance_threshold_usd"`
}

func (in *budgetIn) toPB(create bool) (*pb.SetBudget, error) {
	m := &pb.SetBudget{Create: create, Budget: &pb.Budget{}}
	if in.AmountUSD != nil {
		if *in.AmountUSD < 0 {
			return nil, errBadRequest("invalid_amount", "amount_usd must not be negative")
		}
		m.Budget.AmountNanos = int64(*in.AmountUSD)
		m.Fields = append(m.Fields, "amount_usd")
	} else if create {
		return nil, errBadRequest("missing_field", "amount_usd is required")
	}
	if in.Period != nil {
		if !actors.ValidPeriod(*in.Period) {
			return nil, errBadRequest("invalid_field", "period must be one_time, daily or monthly")
		}
		m.Budget.Period = *in.Period
		m.Fields = append(m.Fields, "period")
	}
	if in.IsSuspended != nil {
		m.Budget.IsSuspended = *in.IsSuspended
		m.Fields = append(m.Fields, "is_suspended")
	}
	if in.LowBalanceThresholdUSD != nil {
		if *in.LowBalanceThresholdUSD < 0 {
			return nil, errBadRequest("invalid_amount", "low_balance_threshold_usd must not be negative")
		}
		m.Budget.LowBalanceNanos = int64(*in.LowBalanceThresholdUSD)
		m.Fields = append(m.Fields, "low_balance_threshold_usd")
	}
	return m, nil
}

func (s *Server) setBudget(c *call, create bool) error {
	var in budgetIn
	if err := c.decodeJSON(&in, false); err != nil {
		return err
	}
	m, err := in.toPB(create)
	if err != nil {
		return err
	}
	res, err := c.askEndUser(m)
	if err != nil {
		return err
	}
	v := res.(*pb.BudgetView)
	status := 200
	if create {
		status = 201
	}
	return c.writeJSON(status, budgetView(c.param("endUserId"), v.Budget, v.ReservedNanos))
}

func (s *Server) createBudget(c *call) error { return s.setBudget(c, true) }
func (s *Server) patchBudget(c *call) error  { return s.setBudget(c, false) }

func (s *Server) getBudget(c *call) error {
	res, err := c.askEndUser(&pb.GetBudget{})
	if err != nil {
		return err
	}
	v := res.(*pb.BudgetView)
	return c.writeJSON(200, budgetView(c.param("endUserId"), v.Budget, v.ReservedNanos))
}

func (s *Server) deleteBudget(c *call) error {
	if _, err := c.askEndUser(&pb.DeleteBudget{}); err != nil {
		return err
	}
	return c.writeJSON(200, map[string]any{"object": "budget", "end_user_id": c.param("endUserId"), "deleted": true})
}

func (s *Server) budgetMove(c *call, debit bool) error {
	amount, reason, key, err := c.amountBody()
	if err != nil {
		return err
	}
	res, err := c.askEndUser(&pb.BudgetTopup{AmountNanos: int64(amount), IdempotencyKey: key,
		RequestHash: amountHash(key, amount, reason), Reason: reason, RequestId: c.rid, Debit: debit})
	if err != nil {
		return err
	}
	v := res.(*pb.BudgetView)
	c.replayed(v.Replayed)
	out := budgetMoveJSON{Budget: budgetView(c.param("endUserId"), v.Budget, v.ReservedNanos), Transaction: txView(v.Entry)}
	c.writeRaw(200, out.appendJSON(make([]byte, 0, 640)))
	return nil
}

// budgetMoveJSON is a top-up's or a debit's answer (a struct, not a map:
// encoding/json sorts and reflects over a map's keys on every call).
type budgetMoveJSON struct {
	Budget      budgetJSON      `json:"budget"`
	Transaction transactionJSON `json:"transaction"`
}

// appendJSON appends v as encoding/json.Marshal writes it, without
// reflection (the hot path of a debit; TestViewEncodersMatchMarshal).
func (v *budgetMoveJSON) appendJSON(b []byte) []byte {
	b = v.Budget.appendJSON(append(b, `{"budget":`...))
	b = v.Transaction.appendJSON(append(b, `,"transaction":`...))
	return append(b, '}')
}

func (s *Server) budgetTopup(c *call) error { return s.budgetMove(c, false) }
func (s *Server) budgetDebit(c *call) error { return s.budgetMove(c, true) }

func (s *Server) budgetTransactions(c *call) error {
	eid, err := c.endUserID()
	if err != nil {
		return err
	}
	return s.transactions(c, actors.EndUserActor(c.platformID(), eid), string(eid))
}

// ---- end-user rate limits ----

func (s *Server) getUserRateLimits(c *call) error {
	res, err := c.askEndUser(&pb.GetEndUser{})
	if err != nil {
		return err
	}
	v := res.(*pb.EndUserView)
	return c.writeJSON(200, map[string]any{
		"object": "rate_limits", "end_user_id": v.EndUser.Id,
		"override": overrideView(v.EndUser.RateLimits), "effective": limitsView(v.EffectiveRateLimits),
		"inherited": inheritedFields(v.EndUser.RateLimits),
	})
}

func (s *Server) putUserRateLimits(c *call) error {
	var in rateLimitsIn
	if err := c.decodeJSON(&in, false); err != nil {
		return err
	}
	l, err := in.toOverridePB()
	if err != nil {
		return err
	}
	return s.setUserLimits(c, l)
}

func (s *Server) deleteUserRateLimits(c *call) error { return s.setUserLimits(c, nil) }

func (s *Server) setUserLimits(c *call, l *pb.RateLimits) error {
	res, err := c.askEndUser(&pb.SetRateLimits{Limits: l})
	if err != nil {
		return err
	}
	v := res.(*pb.EndUserView)
	return c.writeJSON(200, map[string]any{
		"object": "rate_limits", "end_user_id": v.EndUser.Id,
		"override": overrideView(v.EndUser.RateLimits), "effective": limitsView(v.EffectiveRateLimits),
		"inherited": inheritedFields(v.EndUser.RateLimits),
	})
}

var _ = strings.TrimSpace
