package dashboard

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/assistiv/gateway/actors"
)

func platPath(r *req, rest string) string { return "/v1/platforms/" + pathSeg(r.pid) + rest }
func adminPath(r *req, rest string) string {
	return "/admin/v1/platforms/" + pathSeg(r.pid) + rest
}

// ---- logs ----

type logsData struct {
	Filter map[string]string
	Logs   []logJSON
	Next   string
	// Names are the page's end-users' external ids by id.
	Names map[string]string
}

var logFilters = []string{"end_user_id", "model", "status", "kind", "start", "end"}

func (d *Dashboard) logsPage(r *req) error {
	data := logsData{Filter: map[string]string{}}
	q := url.Values{"limit": {"50"}}
	for _, f := range logFilters {
		if v := strings.TrimSpace(r.query(f)); v != "" {
			data.Filter[f] = v
			q.Set(f, v)
		}
	}
	if c := r.query("cursor"); c != "" {
		q.Set("cursor", c)
	}
	var l listOf[logJSON]
	if err := d.get(platformCaller(r.pid), platPath(r, "/logs"), q, &l); err != nil {
		var ae *apiError
		if !errors.As(err, &ae) || ae.Status != 400 {
			return err
		}
		r.fail(err, logFilters...)
	}
	data.Logs = l.Data
	if l.NextCursor != nil {
		data.Next = *l.NextCursor
	}
	var users []string
	for _, e := range l.Data {
		users = append(users, e.EndUserID)
	}
	data.Names = d.externalIDs(r, users)
	return r.render("logs", "Logs", "logs", data)
}

// NextQuery is the query string of the next page with the same filters.
func (l logsData) NextQuery() string {
	q := url.Values{}
	for k, v := range l.Filter {
		q.Set(k, v)
	}
	q.Set("cursor", l.Next)
	return q.Encode()
}

func (d *Dashboard) logDetail(r *req) error {
	var e logJSON
	if err := d.get(platformCaller(r.pid), platPath(r, "/logs/"+pathSeg(r.param("rid"))), nil, &e); err != nil {
		return err
	}
	return r.render("log", "Call "+e.RequestID, "logs", e)
}

// ---- API keys ----

type keysData struct {
	Keys    []keyJSON
	Created *keyJSON
}

func (d *Dashboard) keysData(r *req) (keysData, error) {
	var l listOf[keyJSON]
	err := d.get(platformCaller(r.pid), platPath(r, "/api-keys"), nil, &l)
	return keysData{Keys: l.Data}, err
}

func (d *Dashboard) apiKeys(r *req) error {
	data, err := d.keysData(r)
	if err != nil {
		return err
	}
	return r.render("api_keys", "API keys", "api-keys", data)
}

func (d *Dashboard) createAPIKey(r *req) error {
	res, err := d.do(apiCall{As: platformCaller(r.pid), Method: "POST", Path: platPath(r, "/api-keys"), Body: map[string]string{"name": r.form("name")}})
	var k keyJSON
	if err != nil {
		r.fail(err, "name")
	} else if err := json.Unmarshal(res.Body, &k); err != nil {
		return err
	}
	data, lerr := d.keysData(r)
	if lerr != nil {
		return lerr
	}
	if err == nil {
		data.Created = &k
	}
	return r.render("api_keys", "API keys", "api-keys", data)
}

func (d *Dashboard) revokeAPIKey(r *req) error {
	if _, err := d.do(apiCall{As: platformCaller(r.pid), Method: "DELETE", Path: platPath(r, "/api-keys/"+pathSeg(r.param("kid")))}); err != nil {
		return err
	}
	redirect(r.ctx, pp(r.pid, "api-keys?ok=revoked"))
	return nil
}

// ---- billing ----

type billingData struct {
	Wallet walletJSON
	Txs    []txJSON
	Next   string
	Idem   string
	Form   map[string]string
	// Card: the gateway has Stripe, so members may top up by card.
	Card bool
}

func (d *Dashboard) billingData(r *req) (billingData, error) {
	data := billingData{Idem: newToken(), Form: map[string]string{}, Card: d.card}
	if err := d.get(platformCaller(r.pid), platPath(r, "/wallet"), nil, &data.Wallet); err != nil {
		return data, err
	}
	q := url.Values{"limit": {"25"}}
	if c := r.query("cursor"); c != "" {
		q.Set("cursor", c)
	}
	var l listOf[txJSON]
	if err := d.get(operatorCaller(), adminPath(r, "/wallet/transactions"), q, &l); err != nil {
		return data, err
	}
	data.Txs = l.Data
	if l.NextCursor != nil {
		data.Next = *l.NextCursor
	}
	return data, nil
}

func (d *Dashboard) billing(r *req) error {
	data, err := d.billingData(r)
	if err != nil {
		return err
	}
	return r.render("billing", "Billing", "billing", data)
}

// billingAfter redirects on success or re-renders with the API's error.
func (d *Dashboard) billingAfter(r *req, err error, flash string, fields ...string) error {
	if err == nil {
		redirect(r.ctx, pp(r.pid, "billing?ok="+flash))
		return nil
	}
	r.fail(err, fields...)
	data, lerr := d.billingData(r)
	if lerr != nil {
		return lerr
	}
	r.ctx.PostArgs().VisitAll(func(k, v []byte) { data.Form[string(k)] = string(v) })
	if k := r.form("idempotency_key"); k != "" {
		data.Idem = k
	}
	return r.render("billing", "Billing", "billing", data)
}

// walletTopup funds the wallet. With no payment provider in a self-hosted
// gateway, funding is the operator's act: members see the balance only.
func (d *Dashboard) walletTopup(r *req) error {
	if !r.sess.Operator {
		d.renderError(r, 403, "Wallet top-ups are made by your gateway's operator.")
		return nil
	}
	res, err := d.do(apiCall{As: operatorCaller(), Method: "POST", Path: adminPath(r, "/wallet/topup"),
		Body: map[string]any{"amount_usd": usd(r.form("amount_usd"))}, Idempotency: r.form("idempotency_key")})
	flash := "topped_up"
	if err == nil && res.Replayed {
		flash = "replayed"
	}
	return d.billingAfter(r, err, flash, "amount_usd")
}

// walletCheckout starts a card top-up: the API's checkout route creates a
// Stripe Checkout Session and records it pending, and the browser is sent
// to Stripe's page (303). Stripe sends it back to the billing page. The
// operator funds wallets directly, so the form is the team's.
func (d *Dashboard) walletCheckout(r *req) error {
	if r.sess.Operator {
		d.renderError(r, 403, "The operator tops up the wallet directly; card top-ups are for the platform's team.")
		return nil
	}
	back := d.absURL(r.ctx, pp(r.pid, "billing"))
	res, err := d.do(apiCall{As: platformCaller(r.pid), Method: "POST", Path: platPath(r, "/wallet/checkout"),
		Body: map[string]any{"amount_usd": usd(r.form("amount_usd")),
			"success_url": back + "?ok=card_paid", "cancel_url": back + "?ok=card_cancelled"},
		Idempotency: r.form("idempotency_key")})
	if err != nil {
		return d.billingAfter(r, err, "", "amount_usd")
	}
	var co struct {
		ID  string `json:"id"`
		URL string `json:"url"`
	}
	if err := json.Unmarshal(res.Body, &co); err != nil {
		return err
	}
	if u, perr := url.Parse(co.URL); perr != nil || u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("checkout session %s: not an https URL: %q", co.ID, co.URL)
	}
	r.ctx.Response.Header.Set("Location", co.URL)
	r.ctx.SetStatusCode(303)
	return nil
}

func (d *Dashboard) autoTopup(r *req) error {
	if !r.sess.Operator {
		d.renderError(r, 403, "Auto top-up is set by your gateway's operator.")
		return nil
	}
	body := map[string]any{"enabled": r.form("enabled") == "true"}
	for _, f := range []string{"threshold_usd", "amount_usd"} {
		if v := strings.TrimSpace(r.form(f)); v != "" {
			body[f] = usd(v)
		}
	}
	_, err := d.do(apiCall{As: operatorCaller(), Method: "PUT", Path: adminPath(r, "/wallet/auto-topup"), Body: body})
	return d.billingAfter(r, err, "saved", "threshold_usd", "amount_usd")
}

// ---- LLM configs ----

var providerNames = []string{"openai", "anthropic", "google", "xai"}

type llmRow struct {
	Name   string
	Config *providerJSON
}

type llmData struct {
	Rows   []llmRow
	Models []string
	// ModelsBy are the models by provider (owned_by of /v1/models).
	ModelsBy map[string][]string
	Users    []endUserJSON
	Form     map[string]string
	Failed   string
	// Tested is the provider of the last test call, with its outcome.
	Tested   string
	TestOK   bool
	TestText string
}

func (d *Dashboard) llmData(r *req) (llmData, error) {
	var l listOf[providerJSON]
	if err := d.get(operatorCaller(), adminPath(r, "/llm-providers"), nil, &l); err != nil {
		return llmData{}, err
	}
	data := llmData{Form: map[string]string{}}
	for _, n := range providerNames {
		row := llmRow{Name: n}
		for i := range l.Data {
			if l.Data[i].Provider == n {
				row.Config = &l.Data[i]
			}
		}
		data.Rows = append(data.Rows, row)
	}
	var models listOf[struct {
		ID      string `json:"id"`
		OwnedBy string `json:"owned_by"`
	}]
	data.ModelsBy = map[string][]string{}
	if err := d.get(platformCaller(r.pid), "/v1/models", nil, &models); err == nil {
		for _, m := range models.Data {
			data.Models = append(data.Models, m.ID)
			data.ModelsBy[m.OwnedBy] = append(data.ModelsBy[m.OwnedBy], m.ID)
		}
	}
	var users listOf[endUserJSON]
	if err := d.get(platformCaller(r.pid), platPath(r, "/end-users"), url.Values{"limit": {"100"}}, &users); err == nil {
		data.Users = users.Data
	}
	return data, nil
}

// testProvider makes one tiny completion (max 8 tokens) with the
// provider's first model, billed to the chosen end-user like any call, and
// shows the outcome on the provider's card.
func (d *Dashboard) testProvider(r *req) error {
	prov := r.param("provider")
	data, err := d.llmData(r)
	if err != nil {
		return err
	}
	data.Tested = prov
	models := data.ModelsBy[prov]
	eid := r.form("end_user_id")
	switch {
	case len(models) == 0:
		data.TestText = "No model of " + prov + " is available: set its key and enable it first."
	case eid == "":
		data.TestText = "Choose the end-user the test call is billed to (create one on End-users)."
	default:
		var eu endUserJSON
		if err := d.get(platformCaller(r.pid), platPath(r, "/end-users/"+pathSeg(eid)), nil, &eu); err != nil {
			return err
		}
		start := d.clock.Now()
		res, err := d.do(apiCall{As: endUserCaller(r.pid, eu.ID), Method: "POST", Path: "/v1/chat/completions",
			Body: map[string]any{"model": prov + "/" + models[0], "max_tokens": 8, "messages": []map[string]string{{"role": "user", "content": "Reply with OK."}}}})
		if err != nil {
			var ae *apiError
			if errors.As(err, &ae) {
				data.TestText = fmt.Sprintf("%s failed: %d %s: %s", models[0], ae.Status, ae.Code, ae.Message)
			} else {
				return err
			}
		} else {
			data.TestOK = true
			data.TestText = fmt.Sprintf("%s answered in %d ms", models[0], d.clock.Now().Sub(start).Milliseconds())
			if e := d.waitLog(r, res.RequestID); e != nil {
				data.TestText += fmt.Sprintf(", cost %s billed to %s", usdText(e.CostUSD), eu.ExternalID)
			}
			data.TestText += "."
		}
	}
	return r.render("llm_configs", "LLM Configs", "llm-configs", data)
}

func (d *Dashboard) llmConfigs(r *req) error {
	data, err := d.llmData(r)
	if err != nil {
		return err
	}
	return r.render("llm_configs", "LLM Configs", "llm-configs", data)
}

// putProvider sets a provider's key (write-only), base URL and state.
func (d *Dashboard) putProvider(r *req) error {
	prov := r.param("provider")
	body := map[string]any{"enabled": r.form("enabled") == "true"}
	if k := r.form("api_key"); k != "" {
		body["api_key"] = k
	}
	if u, ok := r.ctx.PostArgs().Peek("base_url"), r.ctx.PostArgs().Has("base_url"); ok {
		body["base_url"] = strings.TrimSpace(string(u))
	}
	_, err := d.do(apiCall{As: operatorCaller(), Method: "PUT", Path: adminPath(r, "/llm-providers/"+pathSeg(prov)), Body: body})
	if err == nil {
		redirect(r.ctx, pp(r.pid, "llm-configs?ok=saved"))
		return nil
	}
	r.fail(err, "api_key", "base_url")
	data, lerr := d.llmData(r)
	if lerr != nil {
		return lerr
	}
	data.Failed = prov
	data.Form["base_url"] = r.form("base_url")
	return r.render("llm_configs", "LLM Configs", "llm-configs", data)
}

// ---- settings ----

type settingsData struct {
	P    platformJSON
	Form map[string]string
}

func (d *Dashboard) settingsForm(p platformJSON) map[string]string {
	s := p.Settings
	f := map[string]string{
		"display_name": s.DisplayName, "markup_pct": string(s.MarkupPct),
		"rpm": itoa(s.DefaultRateLimits.RequestsPerMinute), "tpm": itoa(s.DefaultRateLimits.TokensPerMinute), "rpd": itoa(s.DefaultRateLimits.RequestsPerDay),
		"wallet_low_balance_usd": s.WalletLowBalanceUSD.String(), "budget_low_balance_usd": s.BudgetLowBalanceUSD.String(),
	}
	if s.SkillsEnabled {
		f["skills_enabled"] = "true"
	}
	if b := s.DefaultBudget; b != nil {
		f["default_budget_usd"], f["default_budget_period"] = b.AmountUSD.String(), b.Period
	}
	return f
}

func (d *Dashboard) settings(r *req) error {
	var p platformJSON
	if err := d.get(platformCaller(r.pid), platPath(r, ""), nil, &p); err != nil {
		return err
	}
	return r.render("settings", "Settings", "settings", settingsData{P: p, Form: d.settingsForm(p)})
}

func (d *Dashboard) saveSettings(r *req) error {
	body := map[string]any{
		"display_name":           r.form("display_name"),
		"skills_enabled":         r.form("skills_enabled") == "true",
		"wallet_low_balance_usd": usd(r.form("wallet_low_balance_usd")),
		"budget_low_balance_usd": usd(r.form("budget_low_balance_usd")),
		"default_rate_limits": map[string]any{"requests_per_minute": intField(r.form("rpm")),
			"tokens_per_minute": intField(r.form("tpm")), "requests_per_day": intField(r.form("rpd"))},
	}
	if a := strings.TrimSpace(r.form("default_budget_usd")); a != "" {
		body["default_budget"] = map[string]any{"amount_usd": usd(a), "period": r.form("default_budget_period")}
	} else {
		body["default_budget"] = nil
	}
	call := apiCall{As: platformCaller(r.pid), Method: "PATCH", Path: platPath(r, ""), Body: body}
	if r.sess.Operator { // the markup is the operator's to set
		body["markup_pct"] = usd(r.form("markup_pct"))
		call.As, call.Path = operatorCaller(), adminPath(r, "")
	}
	_, err := d.do(call)
	if err == nil {
		redirect(r.ctx, pp(r.pid, "settings?ok=saved"))
		return nil
	}
	r.fail(err, "display_name", "markup_pct", "default_budget", "requests_per_minute", "tokens_per_minute", "requests_per_day", "wallet_low_balance_usd", "budget_low_balance_usd")
	var p platformJSON
	if err := d.get(platformCaller(r.pid), platPath(r, ""), nil, &p); err != nil {
		return err
	}
	f := map[string]string{}
	r.ctx.PostArgs().VisitAll(func(k, v []byte) { f[string(k)] = string(v) })
	return r.render("settings", "Settings", "settings", settingsData{P: p, Form: f})
}

// ---- team ----

type teamData struct {
	Members []Member
	Invites []Invite
	Link    string
	Form    map[string]string
}

func (d *Dashboard) teamData(r *req) (teamData, error) {
	ms, err := d.accounts.Members(r.pid)
	if err != nil {
		return teamData{}, err
	}
	inv, err := d.accounts.Invites(r.pid)
	sort.Slice(inv, func(i, j int) bool { return inv[i].CreatedMs > inv[j].CreatedMs })
	return teamData{Members: ms, Invites: inv, Form: map[string]string{}}, err
}

func (d *Dashboard) team(r *req) error {
	data, err := d.teamData(r)
	if err != nil {
		return err
	}
	return r.render("team", "Team", "team", data)
}

func (d *Dashboard) ownerOnly(r *req) bool {
	if r.isOwner() {
		return true
	}
	d.renderError(r, 403, "Only owners manage the team.")
	return false
}

func (d *Dashboard) invite(r *req) error {
	if !d.ownerOnly(r) {
		return nil
	}
	by := r.sess.Email
	if r.sess.Operator {
		by = "operator"
	}
	tok, err := d.accounts.CreateInvite(r.pid, r.form("email"), r.form("role"), by)
	if err == nil {
		d.log.Info("dashboard invite", "platform", r.pid, "email", r.form("email"), "role", r.form("role"), "by", by)
	}
	data, lerr := d.teamData(r)
	if lerr != nil {
		return lerr
	}
	if err != nil {
		r.status = 400
		r.errs = map[string]string{"email": strings.TrimPrefix(err.Error(), "dashboard: ")}
		data.Form = map[string]string{"email": r.form("email"), "role": r.form("role")}
	} else {
		data.Link = d.inviteURL(r.ctx, tok)
	}
	return r.render("team", "Team", "team", data)
}

func (d *Dashboard) teamAfter(r *req, err error, flash string) error {
	if err == nil {
		redirect(r.ctx, pp(r.pid, "team?ok="+flash))
		return nil
	}
	if errors.Is(err, ErrNotMember) {
		d.notFound(r)
		return nil
	}
	data, lerr := d.teamData(r)
	if lerr != nil {
		return lerr
	}
	r.status, r.formErr = 409, strings.TrimPrefix(err.Error(), "dashboard: ")
	return r.render("team", "Team", "team", data)
}

func (d *Dashboard) setRole(r *req) error {
	if !d.ownerOnly(r) {
		return nil
	}
	return d.teamAfter(r, d.accounts.SetRole(r.pid, r.form("email"), r.form("role")), "saved")
}

// endMemberSessions signs a teammate out of every browser.
func (d *Dashboard) endMemberSessions(r *req) error {
	if !d.ownerOnly(r) {
		return nil
	}
	if _, err := d.accounts.Member(r.pid, r.form("email")); err != nil {
		return d.teamAfter(r, err, "")
	}
	return d.teamAfter(r, d.accounts.EndSessionsOf(r.pid, r.form("email")), "signed_out_member")
}

func (d *Dashboard) removeMember(r *req) error {
	if !d.ownerOnly(r) {
		return nil
	}
	err := d.accounts.Remove(r.pid, r.form("email"))
	if err == nil {
		d.log.Info("dashboard member removed", "platform", r.pid, "email", r.form("email"), "by", r.sess.Email)
	}
	return d.teamAfter(r, err, "removed")
}

// ---- webhooks ----

var eventTypes = []string{actors.EventBudgetToppedUp, actors.EventBudgetDebited, actors.EventBudgetLowBalance,
	actors.EventBudgetSuspended, actors.EventBudgetUnsuspend, actors.EventWalletLowBalance, actors.EventWalletToppedUp}

type endpointJSON struct {
	ID             string   `json:"id"`
	URL            string   `json:"url"`
	Description    string   `json:"description"`
	EventTypes     []string `json:"event_types"`
	Enabled        bool     `json:"enabled"`
	DisabledReason *string  `json:"disabled_reason"`
	CreatedAt      string   `json:"created_at"`
}

type messageJSON struct {
	ID               string  `json:"id"`
	EventType        string  `json:"event_type"`
	Status           string  `json:"status"`
	Attempts         int     `json:"attempts"`
	LastResponseCode *int    `json:"last_response_code"`
	LastError        *string `json:"last_error"`
	NextRetryAt      *string `json:"next_retry_at"`
	DeliveredAt      *string `json:"delivered_at"`
	CreatedAt        string  `json:"created_at"`
}

type webhooksData struct {
	Endpoints  []endpointJSON
	EventTypes []string
	Form       map[string]string
}

func (d *Dashboard) webhooksData(r *req) (webhooksData, error) {
	var l listOf[endpointJSON]
	err := d.get(operatorCaller(), adminPath(r, "/webhook-endpoints"), nil, &l)
	return webhooksData{Endpoints: l.Data, EventTypes: eventTypes, Form: map[string]string{}}, err
}

func (d *Dashboard) webhooks(r *req) error {
	data, err := d.webhooksData(r)
	if err != nil {
		return err
	}
	return r.render("webhooks", "Webhooks", "webhooks", data)
}

func (d *Dashboard) createWebhook(r *req) error {
	var types []string
	r.ctx.PostArgs().VisitAll(func(k, v []byte) {
		if string(k) == "event_types" {
			types = append(types, string(v))
		}
	})
	if types == nil {
		types = []string{}
	}
	res, err := d.do(apiCall{As: operatorCaller(), Method: "POST", Path: adminPath(r, "/webhook-endpoints"),
		Body: map[string]any{"url": strings.TrimSpace(r.form("url")), "description": r.form("description"), "event_types": types}})
	if err == nil {
		var e endpointJSON
		if err := json.Unmarshal(res.Body, &e); err != nil {
			return err
		}
		redirect(r.ctx, pp(r.pid, "webhooks/"+url.PathEscape(e.ID)+"?ok=created"))
		return nil
	}
	r.fail(err, "url", "event_types", "description")
	data, lerr := d.webhooksData(r)
	if lerr != nil {
		return lerr
	}
	data.Form = map[string]string{"url": r.form("url"), "description": r.form("description")}
	return r.render("webhooks", "Webhooks", "webhooks", data)
}

type webhookData struct {
	EventTypes []string
	Endpoint   endpointJSON
	Messages   []messageJSON
	Next       string
	Secret     string
}

func (d *Dashboard) webhook(r *req) error {
	data := webhookData{EventTypes: eventTypes}
	base := adminPath(r, "/webhook-endpoints/"+pathSeg(r.param("wid")))
	if err := d.get(operatorCaller(), base, nil, &data.Endpoint); err != nil {
		return err
	}
	q := url.Values{"limit": {"25"}}
	if c := r.query("cursor"); c != "" {
		q.Set("cursor", c)
	}
	var l listOf[messageJSON]
	if err := d.get(operatorCaller(), base+"/messages", q, &l); err != nil {
		return err
	}
	data.Messages = l.Data
	if l.NextCursor != nil {
		data.Next = *l.NextCursor
	}
	if r.query("reveal") == "1" && r.canWrite() {
		var s struct {
			Secret string `json:"secret"`
		}
		if err := d.get(operatorCaller(), base+"/secret", nil, &s); err != nil {
			return err
		}
		data.Secret = s.Secret
	}
	return r.render("webhook", "Webhook endpoint", "webhooks", data)
}

// updateWebhook sets an endpoint's event types and enabled state.
func (d *Dashboard) updateWebhook(r *req) error {
	types := []string{}
	r.ctx.PostArgs().VisitAll(func(k, v []byte) {
		if string(k) == "event_types" {
			types = append(types, string(v))
		}
	})
	_, err := d.do(apiCall{As: operatorCaller(), Method: "PATCH", Path: adminPath(r, "/webhook-endpoints/"+pathSeg(r.param("wid"))),
		Body: map[string]any{"enabled": r.form("enabled") == "true", "event_types": types}})
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.Status == 400 {
			r.fail(err)
			return d.webhook(r)
		}
		return err
	}
	redirect(r.ctx, pp(r.pid, "webhooks/"+url.PathEscape(r.param("wid"))+"?ok=saved"))
	return nil
}

// testWebhook sends a signed "webhook.test" delivery to the endpoint.
func (d *Dashboard) testWebhook(r *req) error {
	if _, err := d.do(apiCall{As: operatorCaller(), Method: "POST", Path: adminPath(r, "/webhook-endpoints/"+pathSeg(r.param("wid"))+"/test")}); err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.Status == 409 {
			r.fail(err)
			return d.webhook(r)
		}
		return err
	}
	redirect(r.ctx, pp(r.pid, "webhooks/"+url.PathEscape(r.param("wid"))+"?ok=sent"))
	return nil
}

func (d *Dashboard) deleteWebhook(r *req) error {
	if _, err := d.do(apiCall{As: operatorCaller(), Method: "DELETE", Path: adminPath(r, "/webhook-endpoints/"+pathSeg(r.param("wid")))}); err != nil {
		return err
	}
	redirect(r.ctx, pp(r.pid, "webhooks?ok=deleted"))
	return nil
}

func (d *Dashboard) rotateWebhook(r *req) error {
	_, err := d.do(apiCall{As: operatorCaller(), Method: "POST", Path: adminPath(r, "/webhook-endpoints/"+pathSeg(r.param("wid"))+"/secret/rotate"), Body: map[string]any{}})
	if err != nil {
		return err
	}
	redirect(r.ctx, pp(r.pid, "webhooks/"+url.PathEscape(r.param("wid"))+"?ok=rotated"))
	return nil
}

func (d *Dashboard) replayWebhook(r *req) error {
	_, err := d.do(apiCall{As: operatorCaller(), Method: "POST", Path: adminPath(r, "/webhook-endpoints/"+pathSeg(r.param("wid"))+"/messages/"+pathSeg(r.param("mid"))+"/replay")})
	if err != nil {
		return err
	}
	redirect(r.ctx, pp(r.pid, "webhooks/"+url.PathEscape(r.param("wid"))+"?ok=sent"))
	return nil
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// dayUTC is the UTC day of an RFC 3339 timestamp.
func dayUTC(s string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, false
	}
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC), true
}
