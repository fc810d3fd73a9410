package dashboard

import (
	"encoding/json"
	"net/url"
	"strings"
)

type endUsersData struct {
	Search  string
	Users   []endUserJSON
	Next    string
	Created *endUserJSON
	Form    map[string]string
}

func (d *Dashboard) endUsersData(r *req) (endUsersData, error) {
	q := url.Values{"limit": {"50"}}
	data := endUsersData{Search: strings.TrimSpace(r.query("external_id"))}
	if data.Search != "" {
		q.Set("external_id", data.Search)
	}
	if c := r.query("cursor"); c != "" {
		q.Set("cursor", c)
	}
	var l listOf[endUserJSON]
	if err := d.get(platformCaller(r.pid), "/v1/platforms/"+pathSeg(r.pid)+"/end-users", q, &l); err != nil {
		return data, err
	}
	data.Users = l.Data
	if l.NextCursor != nil {
		data.Next = *l.NextCursor
	}
	return data, nil
}

func (d *Dashboard) endUsers(r *req) error {
	data, err := d.endUsersData(r)
	if err != nil {
		return err
	}
	return r.render("end_users", "End-users", "end-users", data)
}

// createEndUser creates an end-user; its key is shown once on the answer.
func (d *Dashboard) createEndUser(r *req) error {
	body := map[string]any{"external_id": r.form("external_id")}
	if n := r.form("display_name"); n != "" {
		body["display_name"] = n
	}
	res, err := d.do(apiCall{As: platformCaller(r.pid), Method: "POST", Path: "/v1/platforms/" + pathSeg(r.pid) + "/end-users", Body: body})
	data, lerr := d.endUsersData(r)
	if lerr != nil {
		return lerr
	}
	data.Form = map[string]string{"external_id": r.form("external_id"), "display_name": r.form("display_name")}
	if err != nil {
		r.fail(err, "external_id", "display_name")
		return r.render("end_users", "End-users", "end-users", data)
	}
	var eu endUserJSON
	if err := json.Unmarshal(res.Body, &eu); err != nil {
		return err
	}
	data.Created = &eu
	data.Form = nil
	return r.render("end_users", "End-users", "end-users", data)
}

type endUserData struct {
	User     endUserJSON
	Ledger   []txJSON
	Next     string
	Calls    []logJSON
	Idem     string
	Form     map[string]string
	Replayed bool
}

func (d *Dashboard) userPath(r *req) string {
	return "/v1/platforms/" + pathSeg(r.pid) + "/end-users/" + pathSeg(r.param("eid"))
}

func (d *Dashboard) endUserData(r *req) (endUserData, error) {
	var data endUserData
	as := platformCaller(r.pid)
	if err := d.get(as, d.userPath(r), nil, &data.User); err != nil {
		return data, err
	}
	q := url.Values{"limit": {"20"}}
	if c := r.query("cursor"); c != "" {
		q.Set("cursor", c)
	}
	var l listOf[txJSON]
	if data.User.Budget != nil {
		if err := d.get(as, d.userPath(r)+"/budget/transactions", q, &l); err != nil {
			return data, err
		}
	}
	data.Ledger = l.Data
	if l.NextCursor != nil {
		data.Next = *l.NextCursor
	}
	var calls listOf[logJSON]
	if err := d.get(as, "/v1/platforms/"+pathSeg(r.pid)+"/logs", url.Values{"end_user_id": {data.User.ID}, "limit": {"10"}}, &calls); err == nil {
		data.Calls = calls.Data
	}
	data.Idem = newToken()
	return data, nil
}

func (d *Dashboard) endUser(r *req) error {
	data, err := d.endUserData(r)
	if err != nil {
		return err
	}
	return r.render("end_user", data.User.ExternalID, "end-users", data)
}

// after re-renders the end-user page with a failed form's error, or
// redirects with a flash on success.
func (d *Dashboard) after(r *req, err error, flash string, fields ...string) error {
	if err == nil {
		redirect(r.ctx, pp(r.pid, "end-users/"+url.PathEscape(r.param("eid")))+"?ok="+flash)
		return nil
	}
	r.fail(err, fields...)
	data, lerr := d.endUserData(r)
	if lerr != nil {
		return lerr
	}
	data.Form = map[string]string{}
	r.ctx.PostArgs().VisitAll(func(k, v []byte) {
		if string(k) != "csrf" {
			data.Form[string(k)] = string(v)
		}
	})
	if k := r.form("idempotency_key"); k != "" {
		data.Idem = k // a retry of the same form keeps its key
	}
	return r.render("end_user", data.User.ExternalID, "end-users", data)
}

func (d *Dashboard) setBudget(r *req) error {
	var u endUserJSON
	if err := d.get(platformCaller(r.pid), d.userPath(r), nil, &u); err != nil {
		return err
	}
	body := map[string]any{"amount_usd": usd(r.form("amount_usd")), "period": r.form("period")}
	if t := strings.TrimSpace(r.form("low_balance_threshold_usd")); t != "" {
		body["low_balance_threshold_usd"] = usd(t)
	}
	method := "POST"
	if u.Budget != nil {
		method = "PATCH"
	}
	_, err := d.do(apiCall{As: platformCaller(r.pid), Method: method, Path: d.userPath(r) + "/budget", Body: body})
	return d.after(r, err, "saved", "amount_usd", "period", "low_balance_threshold_usd")
}

// budgetMove tops up or debits with the idempotency key the page generated.
func (d *Dashboard) budgetMove(debit bool) func(*req) error {
	return func(r *req) error {
		op, flash := "topup", "topped_up"
		if debit {
			op, flash = "debit", "debited"
		}
		body := map[string]any{"amount_usd": usd(r.form("amount_usd"))}
		if reason := strings.TrimSpace(r.form("reason")); reason != "" {
			body["reason"] = reason
		}
		res, err := d.do(apiCall{As: platformCaller(r.pid), Method: "POST", Path: d.userPath(r) + "/budget/" + op, Body: body, Idempotency: r.form("idempotency_key")})
		if err == nil && res.Replayed {
			flash = "replayed"
		}
		return d.after(r, err, flash, "amount_usd", "reason", "Idempotency-Key")
	}
}

func (d *Dashboard) suspend(r *req) error {
	on := r.form("suspended") == "true"
	_, err := d.do(apiCall{As: platformCaller(r.pid), Method: "PATCH", Path: d.userPath(r) + "/budget", Body: map[string]any{"is_suspended": on}})
	flash := "unsuspended"
	if on {
		flash = "suspended"
	}
	return d.after(r, err, flash)
}

func (d *Dashboard) userRateLimits(r *req) error {
	var err error
	if r.form("clear") == "true" {
		_, err = d.do(apiCall{As: platformCaller(r.pid), Method: "DELETE", Path: d.userPath(r) + "/rate-limits"})
	} else {
		body := map[string]any{}
		for _, f := range []string{"requests_per_minute", "tokens_per_minute", "requests_per_day"} {
			if v := strings.TrimSpace(r.form(f)); v != "" {
				body[f] = intField(v)
			}
		}
		_, err = d.do(apiCall{As: platformCaller(r.pid), Method: "PUT", Path: d.userPath(r) + "/rate-limits", Body: body})
	}
	return d.after(r, err, "saved", "requests_per_minute", "tokens_per_minute", "requests_per_day")
}
