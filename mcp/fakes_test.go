package mcp_test

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// Canary prefixes: every secret a test hands the gateway or a fake issues
// starts with one, so a grep of the data dir, responses and logs finds any
// leak.
const (
	canarySecret  = "CANARYSECRET"
	canaryAccess  = "CANARYACCESS"
	canaryRefresh = "CANARYREFRESH"
)

func rnd() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// fakeApp is one app's outside world on 127.0.0.1: an OAuth 2.0
// authorization server that enforces PKCE S256 and the exact redirect_uri
// (and refresh-token rotation), and the app's REST API speaking its wire
// format. Safe for concurrent use.
type fakeApp struct {
	t        testing.TB
	name     string
	srv      *httptest.Server
	clientID string
	secret   string
	// redirect is the only redirect_uri the client registered.
	redirect string
	// expiresIn is the lifetime of issued access tokens (0: none).
	expiresIn int

	mu       sync.Mutex // guards the fields below
	codes    map[string]codeGrant
	access   map[string]bool
	refresh  map[string]bool
	refreshN int
	apiCalls []string
	posted   []map[string]any
	// tokenHook, when set, runs at the start of every token request
	// (after the client is checked) with its grant type; race tests block
	// in it to hold a token request in flight.
	tokenHook func(grantType string)
	// refreshStatus, when non-zero, answers refresh requests with this
	// status and no error code (429: a transient refusal).
	refreshStatus int
}

func (f *fakeApp) setTokenHook(h func(grantType string)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokenHook = h
}

func (f *fakeApp) setRefreshStatus(status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refreshStatus = status
}

type codeGrant struct {
	challenge, redirect, clientID string
}

func newFakeApp(t testing.TB, name string) *fakeApp {
	f := &fakeApp{t: t, name: name, clientID: "client-" + name, secret: canarySecret + "-" + name + "-" + rnd(),
		expiresIn: 3600, codes: map[string]codeGrant{}, access: map[string]bool{}, refresh: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /authorize", f.authorize)
	mux.HandleFunc("POST /token", f.token)
	mux.HandleFunc("/api/", f.api)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeApp) url(p string) string { return f.srv.URL + p }

// authorize plays the user consenting: it checks the request and
// redirects to redirect_uri with a code bound to the PKCE challenge.
func (f *fakeApp) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	switch {
	case q.Get("response_type") != "code", q.Get("client_id") != f.clientID:
		http.Error(w, "bad client or response_type", 400)
		return
	case q.Get("redirect_uri") != f.redirect:
		http.Error(w, "redirect_uri mismatch", 400)
		return
	case q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43:
		http.Error(w, "PKCE S256 required", 400)
		return
	case q.Get("state") == "":
		http.Error(w, "state required", 400)
		return
	}
	scopeParam := "scope"
	if f.name == "slack" {
		scopeParam = "user_scope"
	}
	if q.Get(scopeParam) == "" {
		http.Error(w, "no scopes requested in "+scopeParam, 400)
		return
	}
	code := "code-" + rnd()
	f.mu.Lock()
	f.codes[code] = codeGrant{challenge: q.Get("code_challenge"), redirect: q.Get("redirect_uri"), clientID: q.Get("client_id")}
	f.mu.Unlock()
	http.Redirect(w, r, q.Get("redirect_uri")+"?"+url.Values{"code": {code}, "state": {q.Get("state")}}.Encode(), http.StatusFound)
}

func (f *fakeApp) tokenError(w http.ResponseWriter, code string) {
	if f.name == "slack" { // Slack answers 200 with ok:false
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": code})
		return
	}
	if f.name == "github" { // GitHub answers 200 with an error member
		_ = json.NewEncoder(w).Encode(map[string]any{"error": code, "error_description": code})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(400)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": code})
}

func (f *fakeApp) token(w http.ResponseWriter, r *http.Request) {
	form := url.Values{}
	if f.name == "zendesk" { // Zendesk's grant-type tokens endpoint takes JSON
		if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			http.Error(w, "JSON body required", 400)
			return
		}
		var m map[string]string
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			http.Error(w, "bad JSON", 400)
			return
		}
		for k, v := range m {
			form.Set(k, v)
		}
	} else {
		b, _ := io.ReadAll(r.Body)
		form, _ = url.ParseQuery(string(b))
	}
	if form.Get("client_id") != f.clientID || form.Get("client_secret") != f.secret {
		f.tokenError(w, "invalid_client")
		return
	}
	f.mu.Lock()
	hook, refreshStatus := f.tokenHook, f.refreshStatus
	f.mu.Unlock()
	if hook != nil {
		hook(form.Get("grant_type"))
	}
	if refreshStatus != 0 && form.Get("grant_type") == "refresh_token" {
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(refreshStatus)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch form.Get("grant_type") {
	case "authorization_code":
		g, ok := f.codes[form.Get("code")]
		delete(f.codes, form.Get("code")) // single use
		sum := sha256.Sum256([]byte(form.Get("code_verifier")))
		switch {
		case !ok:
			f.tokenError(w, "invalid_grant")
			return
		case form.Get("redirect_uri") != g.redirect || g.redirect != f.redirect:
			f.tokenError(w, "redirect_uri_mismatch")
			return
		case base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge:
			f.tokenError(w, "invalid_grant") // PKCE verification failed
			return
		}
	case "refresh_token":
		if !f.refresh[form.Get("refresh_token")] {
			f.tokenError(w, "invalid_grant")
			return
		}
		delete(f.refresh, form.Get("refresh_token")) // rotation: one use
		f.refreshN++
	default:
		f.tokenError(w, "unsupported_grant_type")
		return
	}
	at, rt := canaryAccess+"-"+f.name+"-"+rnd(), canaryRefresh+"-"+f.name+"-"+rnd()
	f.access[at], f.refresh[rt] = true, true
	w.Header().Set("Content-Type", "application/json")
	if f.name == "slack" {
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "app_id": "A1", "access_token": "xoxb-bot-unused",
			"token_type": "bot", "scope": "commands",
			"authed_user": map[string]any{"id": "U1", "scope": "channels:read,chat:write", "access_token": at,
				"token_type": "user", "refresh_token": rt, "expires_in": f.expiresIn}})
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": at, "token_type": "bearer", "refresh_token": rt,
		"expires_in": f.expiresIn, "scope": "repo"})
}

// authorized checks the API call's token in the app's scheme.
func (f *fakeApp) authorized(r *http.Request) bool {
	scheme := "Bearer "
	if f.name == "zoho_mail" {
		scheme = "Zoho-oauthtoken "
	}
	h := r.Header.Get("Authorization")
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.HasPrefix(h, scheme) && f.access[strings.TrimPrefix(h, scheme)]
}

// expireAccessTokens makes every issued access token invalid (as the
// clock passing their expiry would).
func (f *fakeApp) expireAccessTokens() {
	f.mu.Lock()
	f.access = map[string]bool{}
	f.mu.Unlock()
}

func (f *fakeApp) refreshes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refreshN
}

func (f *fakeApp) calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.apiCalls...)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeApp) api(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, "/api")
	f.mu.Lock()
	f.apiCalls = append(f.apiCalls, r.Method+" "+path)
	f.mu.Unlock()
	if !f.authorized(r) {
		if f.name == "slack" {
			writeJSON(w, 200, map[string]any{"ok": false, "error": "invalid_auth"})
			return
		}
		writeJSON(w, 401, map[string]any{"message": "Bad credentials"})
		return
	}
	var body map[string]any
	if r.Body != nil && (r.Method == "POST" || r.Method == "PUT") {
		_ = json.NewDecoder(r.Body).Decode(&body)
		f.mu.Lock()
		f.posted = append(f.posted, body)
		f.mu.Unlock()
	}
	switch f.name {
	case "github":
		f.github(w, r, path, body)
	case "slack":
		f.slack(w, r, path, body)
	case "zoho_mail":
		f.zoho(w, r, path, body)
	case "zendesk":
		f.zendesk(w, r, path, body)
	}
}

func (f *fakeApp) github(w http.ResponseWriter, r *http.Request, path string, body map[string]any) {
	if r.Header.Get("X-GitHub-Api-Version") == "" || r.Header.Get("User-Agent") == "" {
		writeJSON(w, 400, map[string]any{"message": "missing API version or User-Agent"})
		return
	}
	switch {
	case r.Method == "GET" && path == "/user/repos":
		writeJSON(w, 200, []map[string]any{{"id": 1, "full_name": "octo/hello", "private": false, "html_url": "https://github.com/octo/hello",
			"description": "fake repo", "default_branch": "main", "updated_at": "2025-01-01T00:00:00Z"}})
	case r.Method == "GET" && path == "/repos/octo/hello/issues/7":
		writeJSON(w, 200, map[string]any{"number": 7, "title": "Fake issue seven", "state": "open"})
	case r.Method == "POST" && path == "/repos/octo/hello/issues":
		writeJSON(w, 201, map[string]any{"number": 8, "title": body["title"], "state": "open"})
	case r.Method == "POST" && path == "/repos/octo/hello/issues/7/comments":
		writeJSON(w, 201, map[string]any{"id": 99, "body": body["body"]})
	case r.Method == "GET" && path == "/search/issues":
		writeJSON(w, 200, map[string]any{"total_count": 1, "items": []map[string]any{{"number": 7, "title": "match for " + r.URL.Query().Get("q")}}})
	case r.Method == "GET" && path == "/repos/octo/hello/contents/docs/README.md":
		writeJSON(w, 200, map[string]any{"type": "file", "path": "docs/README.md", "sha": "abc", "size": 11, "encoding": "base64",
			"content": base64.StdEncoding.EncodeToString([]byte("hello world")) + "\n"})
	default:
		writeJSON(w, 404, map[string]any{"message": "Not Found"})
	}
}

func (f *fakeApp) slack(w http.ResponseWriter, r *http.Request, path string, body map[string]any) {
	switch path {
	case "/conversations.list":
		writeJSON(w, 200, map[string]any{"ok": true, "channels": []map[string]any{{"id": "C1", "name": "general"}}, "response_metadata": map[string]any{"next_cursor": ""}})
	case "/chat.postMessage":
		if body["channel"] == nil || body["text"] == nil {
			writeJSON(w, 200, map[string]any{"ok": false, "error": "no_text"})
			return
		}
		writeJSON(w, 200, map[string]any{"ok": true, "channel": body["channel"], "ts": "1700000000.000100", "message": map[string]any{"text": body["text"]}})
	case "/conversations.history":
		if r.URL.Query().Get("channel") != "C1" {
			writeJSON(w, 200, map[string]any{"ok": false, "error": "channel_not_found"})
			return
		}
		writeJSON(w, 200, map[string]any{"ok": true, "messages": []map[string]any{{"type": "message", "text": "fake history line", "ts": "1.0"}}, "has_more": false})
	case "/search.messages":
		writeJSON(w, 200, map[string]any{"ok": true, "query": r.URL.Query().Get("query"), "messages": map[string]any{"total": 1, "matches": []map[string]any{{"text": "found it"}}}})
	default:
		writeJSON(w, 200, map[string]any{"ok": false, "error": "unknown_method"})
	}
}

func (f *fakeApp) zoho(w http.ResponseWriter, r *http.Request, path string, body map[string]any) {
	ok := func(data any) {
		writeJSON(w, 200, map[string]any{"status": map[string]any{"code": 200, "description": "success"}, "data": data})
	}
	switch {
	case path == "/accounts":
		ok([]map[string]any{{"accountId": "5550001", "primaryEmailAddress": "me@example.com"}})
	case path == "/accounts/5550001/folders":
		ok([]map[string]any{{"folderId": "100", "folderName": "Inbox"}})
	case path == "/accounts/5550001/messages/view":
		ok([]map[string]any{{"messageId": "m1", "folderId": r.URL.Query().Get("folderId"), "subject": "fake zoho subject"}})
	case path == "/accounts/5550001/folders/100/messages/m1/content":
		ok(map[string]any{"messageId": "m1", "content": "<p>fake zoho body</p>"})
	case r.Method == "POST" && path == "/accounts/5550001/messages":
		if body["fromAddress"] != "me@example.com" {
			writeJSON(w, 400, map[string]any{"status": map[string]any{"code": 400, "description": "fromAddress"}})
			return
		}
		ok(map[string]any{"messageId": "m2", "subject": body["subject"]})
	default:
		writeJSON(w, 404, map[string]any{"status": map[string]any{"code": 404, "description": "not found"}})
	}
}

func (f *fakeApp) zendesk(w http.ResponseWriter, r *http.Request, path string, body map[string]any) {
	switch {
	case path == "/search.json":
		writeJSON(w, 200, map[string]any{"results": []map[string]any{{"id": 42, "subject": "fake ticket", "result_type": "ticket"}}, "count": 1, "query": r.URL.Query().Get("query")})
	case r.Method == "GET" && path == "/tickets/42.json":
		writeJSON(w, 200, map[string]any{"ticket": map[string]any{"id": 42, "subject": "fake ticket", "status": "open"}})
	case r.Method == "POST" && path == "/tickets.json":
		t, _ := body["ticket"].(map[string]any)
		writeJSON(w, 201, map[string]any{"ticket": map[string]any{"id": 43, "subject": t["subject"]}})
	case r.Method == "PUT" && path == "/tickets/42.json":
		writeJSON(w, 200, map[string]any{"ticket": map[string]any{"id": 42}, "audit": map[string]any{"events": []any{body}}})
	default:
		writeJSON(w, 404, map[string]any{"error": "RecordNotFound"})
	}
}
