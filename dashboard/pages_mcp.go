package dashboard

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/url"
	"strings"
)

// ---- skills ----

type skillFile struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

type skillJSON struct {
	ID          string      `json:"id"`
	Name        string      `json:"name"`
	Description string      `json:"description"`
	Visibility  string      `json:"visibility"`
	Files       []skillFile `json:"files"`
	FileCount   int         `json:"file_count"`
	TotalBytes  int64       `json:"total_bytes"`
	CreatedAt   string      `json:"created_at"`
	Scorecard   struct {
		ReviewCount int64    `json:"review_count"`
		Correctness *float64 `json:"correctness"`
		Clarity     *float64 `json:"clarity"`
		Safety      *float64 `json:"safety"`
		Usefulness  *float64 `json:"usefulness"`
		Overall     *float64 `json:"overall"`
	} `json:"scorecard"`
}

type skillsData struct {
	Skills        []skillJSON
	SkillsEnabled bool
	Form          map[string]string
}

func (d *Dashboard) skillsData(r *req) (skillsData, error) {
	data := skillsData{Form: map[string]string{}}
	var l listOf[skillJSON]
	if err := d.get(platformCaller(r.pid), "/v1/skills", url.Values{"visibility": {"private"}, "limit": {"100"}}, &l); err != nil {
		return data, err
	}
	data.Skills = l.Data
	var p platformJSON
	if err := d.get(platformCaller(r.pid), platPath(r, ""), nil, &p); err != nil {
		return data, err
	}
	data.SkillsEnabled = p.Settings.SkillsEnabled
	return data, nil
}

func (d *Dashboard) skills(r *req) error {
	data, err := d.skillsData(r)
	if err != nil {
		return err
	}
	return r.render("skills", "Skills", "skills", data)
}

// maxSkillZip bounds an uploaded archive; its base64 form must fit the
// API's request body limit.
const maxSkillZip = 2 << 20

// uploadSkill sends the chosen zip to POST /v1/skills as base64.
func (d *Dashboard) uploadSkill(r *req) error {
	var archive []byte
	fh, err := r.ctx.FormFile("archive")
	if err == nil {
		if fh.Size > maxSkillZip {
			return d.skillFail(r, "archive", "the zip is larger than 2 MiB")
		}
		f, err := fh.Open()
		if err != nil {
			return err
		}
		archive, err = io.ReadAll(io.LimitReader(f, maxSkillZip+1))
		f.Close()
		if err != nil {
			return err
		}
	}
	if len(archive) == 0 {
		return d.skillFail(r, "archive", "choose a .zip of the skill's folder")
	}
	res, err := d.do(apiCall{As: platformCaller(r.pid), Method: "POST", Path: "/v1/skills", Body: map[string]string{
		"name": r.form("name"), "description": r.form("description"), "archive_base64": base64.StdEncoding.EncodeToString(archive)}})
	if err != nil {
		r.fail(err, "name", "description", "archive")
		if r.formErr != "" {
			r.errs["archive"], r.formErr = r.formErr, ""
		}
		return d.skillRender(r)
	}
	var s skillJSON
	if err := json.Unmarshal(res.Body, &s); err != nil {
		return err
	}
	redirect(r.ctx, pp(r.pid, "skills/"+url.PathEscape(s.ID)+"?ok=created"))
	return nil
}

func (d *Dashboard) skillFail(r *req, field, msg string) error {
	r.status = 400
	r.errs = map[string]string{field: msg}
	return d.skillRender(r)
}

func (d *Dashboard) skillRender(r *req) error {
	data, err := d.skillsData(r)
	if err != nil {
		return err
	}
	data.Form = map[string]string{"name": r.form("name"), "description": r.form("description")}
	return r.render("skills", "Skills", "skills", data)
}

func (d *Dashboard) skill(r *req) error {
	var s skillJSON
	if err := d.get(platformCaller(r.pid), "/v1/skills/"+pathSeg(r.param("sid")), nil, &s); err != nil {
		return err
	}
	return r.render("skill", s.Name, "skills", s)
}

func (d *Dashboard) deleteSkill(r *req) error {
	if _, err := d.do(apiCall{As: platformCaller(r.pid), Method: "DELETE", Path: "/v1/skills/" + pathSeg(r.param("sid"))}); err != nil {
		return err
	}
	redirect(r.ctx, pp(r.pid, "skills?ok=deleted"))
	return nil
}

// ---- MCP apps ----

type mcpAppJSON struct {
	App             string   `json:"app"`
	Active          bool     `json:"active"`
	Configured      bool     `json:"configured"`
	ClientID        string   `json:"client_id"`
	ClientSecretSet bool     `json:"client_secret_set"`
	LandingURL      string   `json:"landing_url"`
	Scopes          []string `json:"scopes"`
	Subdomain       string   `json:"subdomain"`
	Tools           []string `json:"tools"`
	UpdatedAt       *string  `json:"updated_at"`
}

type mcpData struct {
	Apps          []mcpAppJSON
	SkillsEnabled bool
	Failed        string
	Form          map[string]string
}

func (d *Dashboard) mcpData(r *req) (mcpData, error) {
	data := mcpData{Form: map[string]string{}}
	var l listOf[mcpAppJSON]
	if err := d.get(operatorCaller(), adminPath(r, "/mcp-apps"), nil, &l); err != nil {
		return data, err
	}
	data.Apps = l.Data
	var p platformJSON
	err := d.get(platformCaller(r.pid), platPath(r, ""), nil, &p)
	data.SkillsEnabled = p.Settings.SkillsEnabled
	return data, err
}

func (d *Dashboard) mcpPage(r *req) error {
	data, err := d.mcpData(r)
	if err != nil {
		return err
	}
	return r.render("mcp", "MCP", "mcp", data)
}

// putMCPApp activates or updates an app; the secret is write-only.
func (d *Dashboard) putMCPApp(r *req) error {
	app := r.param("app")
	body := map[string]any{"active": r.form("active") == "true", "scopes": strings.TrimSpace(r.form("scopes"))}
	for _, f := range []string{"client_id", "client_secret", "landing_url", "subdomain"} {
		if v := strings.TrimSpace(r.form(f)); v != "" {
			body[f] = v
		}
	}
	_, err := d.do(apiCall{As: operatorCaller(), Method: "PUT", Path: adminPath(r, "/mcp-apps/"+pathSeg(app)), Body: body})
	if err == nil {
		redirect(r.ctx, pp(r.pid, "mcp?ok=saved"))
		return nil
	}
	r.fail(err, "client_id", "client_secret", "landing_url", "scopes", "subdomain")
	data, lerr := d.mcpData(r)
	if lerr != nil {
		return lerr
	}
	data.Failed = app
	r.ctx.PostArgs().VisitAll(func(k, v []byte) { data.Form[string(k)] = string(v) })
	return r.render("mcp", "MCP", "mcp", data)
}

// toggleSkills sets skills_enabled through the platform settings route.
func (d *Dashboard) toggleSkills(r *req) error {
	on := r.form("skills_enabled") == "true"
	if _, err := d.do(apiCall{As: platformCaller(r.pid), Method: "PATCH", Path: platPath(r, ""), Body: map[string]any{"skills_enabled": on}}); err != nil {
		return err
	}
	back := "mcp"
	if r.form("back") == "skills" {
		back = "skills"
	}
	redirect(r.ctx, pp(r.pid, back+"?ok=saved"))
	return nil
}
