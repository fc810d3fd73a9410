package dashboard

import (
	"encoding/json"
	"net/url"
	"strings"
)

type operatorData struct {
	Platforms []platformJSON
	Next      string
	Created   *platformJSON
	Key       string
	InviteFor string
	Link      string
	Form      map[string]string
}

func (d *Dashboard) operatorData(r *req) (operatorData, error) {
	q := url.Values{"limit": {"100"}}
	if c := r.query("cursor"); c != "" {
		q.Set("cursor", c)
	}
	var l listOf[platformJSON]
	err := d.get(operatorCaller(), "/admin/v1/platforms", q, &l)
	data := operatorData{Platforms: l.Data, Form: map[string]string{}}
	if l.NextCursor != nil {
		data.Next = *l.NextCursor
	}
	return data, err
}

func (d *Dashboard) operatorPlatforms(r *req) error {
	data, err := d.operatorData(r)
	if err != nil {
		return err
	}
	return r.render("operator", "Platforms", "operator", data)
}

// operatorCreatePlatform creates a platform (its key shown once) and, when
// an owner email is given, the owner's invite link.
func (d *Dashboard) operatorCreatePlatform(r *req) error {
	name := r.form("name")
	owner := strings.TrimSpace(r.form("owner_email"))
	if owner != "" {
		if _, err := normEmail(owner); err != nil {
			return d.operatorFail(r, map[string]string{"owner_email": "not an email address"})
		}
	}
	res, err := d.do(apiCall{As: operatorCaller(), Method: "POST", Path: "/admin/v1/platforms", Body: map[string]any{"name": name}})
	if err != nil {
		r.fail(err, "name")
		return d.operatorFail(r, r.errs)
	}
	var out struct {
		Platform platformJSON `json:"platform"`
		APIKey   keyJSON      `json:"api_key"`
	}
	if err := json.Unmarshal(res.Body, &out); err != nil {
		return err
	}
	data, err := d.operatorData(r)
	if err != nil {
		return err
	}
	data.Created, data.Key = &out.Platform, out.APIKey.RawKey
	if owner != "" {
		tok, err := d.accounts.CreateInvite(out.Platform.ID, owner, RoleOwner, "operator")
		if err != nil {
			r.errs = map[string]string{"owner_email": strings.TrimPrefix(err.Error(), "dashboard: ")}
		} else {
			data.InviteFor, data.Link = owner, d.inviteURL(r.ctx, tok)
		}
	}
	return r.render("operator", "Platforms", "operator", data)
}

func (d *Dashboard) operatorFail(r *req, errs map[string]string) error {
	data, err := d.operatorData(r)
	if err != nil {
		return err
	}
	if r.status == 0 {
		r.status = 400
	}
	r.errs = errs
	data.Form = map[string]string{"name": r.form("name"), "owner_email": r.form("owner_email")}
	return r.render("operator", "Platforms", "operator", data)
}

// operatorOwnerInvite invites an owner to an existing platform.
func (d *Dashboard) operatorOwnerInvite(r *req) error {
	pid := r.param("pid")
	var p platformJSON
	if err := d.get(operatorCaller(), "/admin/v1/platforms/"+pathSeg(pid), nil, &p); err != nil {
		return err
	}
	data, err := d.operatorData(r)
	if err != nil {
		return err
	}
	tok, err := d.accounts.CreateInvite(pid, r.form("email"), RoleOwner, "operator")
	if err != nil {
		r.status = 400
		r.errs = map[string]string{"invite_" + pid: strings.TrimPrefix(err.Error(), "dashboard: ")}
		return r.render("operator", "Platforms", "operator", data)
	}
	data.InviteFor, data.Link = r.form("email"), d.inviteURL(r.ctx, tok)
	return r.render("operator", "Platforms", "operator", data)
}
