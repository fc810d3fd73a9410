package dashboard

import (
	"encoding/json"
	"net/url"
	"strings"
	"time"
)

type playgroundData struct {
	Users  []endUserJSON
	Models []string
	Form   map[string]string
	Answer string
	Call   *logJSON
	RID    string
}

func (d *Dashboard) playgroundData(r *req) (playgroundData, error) {
	data := playgroundData{Form: map[string]string{}}
	var users listOf[endUserJSON]
	if err := d.get(platformCaller(r.pid), platPath(r, "/end-users"), url.Values{"limit": {"100"}}, &users); err != nil {
		return data, err
	}
	data.Users = users.Data
	var models listOf[struct {
		ID string `json:"id"`
	}]
	if err := d.get(platformCaller(r.pid), "/v1/models", nil, &models); err != nil {
		return data, err
	}
	for _, m := range models.Data {
		data.Models = append(data.Models, m.ID)
	}
	return data, nil
}

func (d *Dashboard) playground(r *req) error {
	data, err := d.playgroundData(r)
	if err != nil {
		return err
	}
	data.Form["end_user_id"] = r.query("end_user_id")
	return r.render("playground", "Playground", "playground", data)
}

// playgroundCall makes one chat completion as the chosen end-user (billed
// to them like any call) and shows the answer with the call's logged cost.
func (d *Dashboard) playgroundCall(r *req) error {
	data, err := d.playgroundData(r)
	if err != nil {
		return err
	}
	eid := r.form("end_user_id")
	data.Form = map[string]string{"end_user_id": eid, "model": r.form("model"), "prompt": r.form("prompt")}
	// The end-user must be this platform's: the API answers 404 otherwise.
	var eu endUserJSON
	if err := d.get(platformCaller(r.pid), platPath(r, "/end-users/"+pathSeg(eid)), nil, &eu); err != nil {
		r.fail(err)
		r.errs["end_user_id"], r.formErr = r.formErr, ""
		return r.render("playground", "Playground", "playground", data)
	}
	body := map[string]any{"model": r.form("model"), "messages": []map[string]string{{"role": "user", "content": r.form("prompt")}}, "max_tokens": 256}
	res, err := d.do(apiCall{As: endUserCaller(r.pid, eu.ID), Method: "POST", Path: "/v1/chat/completions", Body: body})
	data.RID = res.RequestID
	if err != nil {
		r.fail(err, "model", "messages")
		if msg, ok := r.errs["messages"]; ok {
			r.errs["prompt"] = msg
		}
		return r.render("playground", "Playground", "playground", data)
	}
	var out struct {
		Choices []struct {
			Message struct {
				Content string `json:"content"`
			} `json:"message"`
		} `json:"choices"`
	}
	if err := json.Unmarshal(res.Body, &out); err != nil {
		return err
	}
	var sb strings.Builder
	for _, c := range out.Choices {
		sb.WriteString(c.Message.Content)
	}
	data.Answer = sb.String()
	data.Call = d.waitLog(r, res.RequestID)
	return r.render("playground", "Playground", "playground", data)
}

// waitLog reads a call's log entry, written off the response path: it
// retries briefly and gives up after a second.
func (d *Dashboard) waitLog(r *req, rid string) *logJSON {
	for i := 0; i < 20; i++ {
		var e logJSON
		if err := d.get(platformCaller(r.pid), platPath(r, "/logs/"+pathSeg(rid)), nil, &e); err == nil {
			return &e
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}
