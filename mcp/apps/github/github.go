// Package github is the MCP client of one app: its OAuth endpoints and
// scopes and its tools over the app's REST API ([apps.Spec]).
package github

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	mcpgo "github.com/mark3labs/mcp-go/mcp"

	"github.com/assistiv/gateway/mcp/apps"
)

// Spec is GitHub (OAuth app or GitHub App user tokens; REST API v3).
func Spec() *apps.Spec {
	ownerRepo := []mcpgo.ToolOption{
		mcpgo.WithString("owner", mcpgo.Required(), mcpgo.Description("Repository owner (user or organization)"), mcpgo.MaxLength(100)),
		mcpgo.WithString("repo", mcpgo.Required(), mcpgo.Description("Repository name"), mcpgo.MaxLength(100)),
	}
	with := func(base []mcpgo.ToolOption, more ...mcpgo.ToolOption) []mcpgo.ToolOption {
		return append(append([]mcpgo.ToolOption{}, base...), more...)
	}
	issueNumber := mcpgo.WithNumber("issue_number", mcpgo.Required(), mcpgo.Description("Issue or pull request number"), mcpgo.Min(1.0))
	return &apps.Spec{
		Name: "github", Title: "GitHub",
		AuthorizeURL:  "https://github.com/login/oauth/authorize",
		TokenURL:      "https://github.com/login/oauth/access_token",
		APIBase:       "https://api.github.com",
		DefaultScopes: []string{"repo"}, ScopeSep: " ", ScopeParam: "scope", AuthScheme: "Bearer",
		Tools: []apps.Tool{
			{Def: mcpgo.NewTool("list_repositories",
				mcpgo.WithDescription("List repositories the connected GitHub user can access."),
				mcpgo.WithString("visibility", mcpgo.Enum("all", "public", "private"), mcpgo.Description("Filter by visibility (default all)")),
				mcpgo.WithString("sort", mcpgo.Enum("created", "updated", "pushed", "full_name"), mcpgo.Description("Sort order (default full_name)")),
				mcpgo.WithNumber("per_page", mcpgo.Min(1.0), mcpgo.Max(100.0), mcpgo.Description("Results per page, 1-100 (default 30)")),
				mcpgo.WithNumber("page", mcpgo.Min(1.0), mcpgo.Description("Page number (default 1)")),
				apps.ReadOnly,
			), Run: githubListRepos},
			{Def: mcpgo.NewTool("get_issue", with(ownerRepo, mcpgo.WithDescription("Get one GitHub issue."), issueNumber, apps.ReadOnly)...), Run: githubGetIssue},
			{Def: mcpgo.NewTool("create_issue", with(ownerRepo,
				mcpgo.WithDescription("Create a GitHub issue."),
				mcpgo.WithString("title", mcpgo.Required(), mcpgo.MaxLength(256), mcpgo.Description("Issue title")),
				mcpgo.WithString("body", mcpgo.MaxLength(65536), mcpgo.Description("Issue body (Markdown)")),
				mcpgo.WithArray("labels", mcpgo.WithStringItems(), mcpgo.MaxItems(20), mcpgo.Description("Label names")),
				mcpgo.WithArray("assignees", mcpgo.WithStringItems(), mcpgo.MaxItems(10), mcpgo.Description("Logins to assign")),
				apps.Writes)...), Run: githubCreateIssue},
			{Def: mcpgo.NewTool("comment_on_issue", with(ownerRepo,
				mcpgo.WithDescription("Add a comment to a GitHub issue or pull request."), issueNumber,
				mcpgo.WithString("body", mcpgo.Required(), mcpgo.MaxLength(65536), mcpgo.Description("Comment body (Markdown)")),
				apps.Writes)...), Run: githubComment},
			{Def: mcpgo.NewTool("search_issues",
				mcpgo.WithDescription("Search GitHub issues and pull requests with GitHub's search syntax."),
				mcpgo.WithString("query", mcpgo.Required(), mcpgo.MaxLength(256), mcpgo.Description("Search query, e.g. 'repo:owner/name is:open bug'")),
				mcpgo.WithNumber("per_page", mcpgo.Min(1.0), mcpgo.Max(100.0), mcpgo.Description("Results per page, 1-100 (default 30)")),
				mcpgo.WithNumber("page", mcpgo.Min(1.0), mcpgo.Description("Page number (default 1)")),
				apps.ReadOnly), Run: githubSearch},
			{Def: mcpgo.NewTool("get_file_contents", with(ownerRepo,
				mcpgo.WithDescription("Get a file's contents (or a directory listing) from a GitHub repository."),
				mcpgo.WithString("path", mcpgo.Required(), mcpgo.MaxLength(1024), mcpgo.Description("Path inside the repository")),
				mcpgo.WithString("ref", mcpgo.MaxLength(256), mcpgo.Description("Branch, tag or commit (default: the default branch)")),
				apps.ReadOnly)...), Run: githubFile},
		},
	}
}

func repoPath(a apps.Args) (string, error) {
	owner, err := a.Str("owner", true, 100)
	if err != nil {
		return "", err
	}
	repo, err := a.Str("repo", true, 100)
	if err != nil {
		return "", err
	}
	if err := apps.Slug("owner", owner); err != nil {
		return "", err
	}
	if err := apps.Slug("repo", repo); err != nil {
		return "", err
	}
	return "/repos/" + owner + "/" + repo, nil
}

func paging(a apps.Args, q url.Values) error {
	per, err := a.Integer("per_page", 30, 1, 100, false)
	if err != nil {
		return err
	}
	page, err := a.Integer("page", 1, 1, 10000, false)
	if err != nil {
		return err
	}
	q.Set("per_page", strconv.FormatInt(per, 10))
	q.Set("page", strconv.FormatInt(page, 10))
	return nil
}

func githubListRepos(ctx context.Context, c *apps.Call, req mcpgo.CallToolRequest) (any, error) {
	a := apps.ArgsOf(req)
	q := url.Values{}
	if err := paging(a, q); err != nil {
		return nil, err
	}
	for _, f := range []string{"visibility", "sort"} {
		v, err := a.Str(f, false, 20)
		if err != nil {
			return nil, err
		}
		if v != "" {
			q.Set(f, v)
		}
	}
	raw, err := c.Do(ctx, http.MethodGet, "/user/repos", q, nil)
	if err != nil {
		return nil, err
	}
	var repos []struct {
		FullName      string `json:"full_name"`
		Private       bool   `json:"private"`
		Description   string `json:"description"`
		HTMLURL       string `json:"html_url"`
		DefaultBranch string `json:"default_branch"`
		UpdatedAt     string `json:"updated_at"`
	}
	if err := json.Unmarshal(raw, &repos); err != nil {
		return raw, nil
	}
	return map[string]any{"repositories": repos, "count": len(repos)}, nil
}

func issueNum(a apps.Args) (string, error) {
	n, err := a.Integer("issue_number", 0, 1, 1<<31, true)
	return strconv.FormatInt(n, 10), err
}

func githubGetIssue(ctx context.Context, c *apps.Call, req mcpgo.CallToolRequest) (any, error) {
	a := apps.ArgsOf(req)
	rp, err := repoPath(a)
	if err != nil {
		return nil, err
	}
	n, err := issueNum(a)
	if err != nil {
		return nil, err
	}
	return c.Do(ctx, http.MethodGet, rp+"/issues/"+n, nil, nil)
}

func githubCreateIssue(ctx context.Context, c *apps.Call, req mcpgo.CallToolRequest) (any, error) {
	a := apps.ArgsOf(req)
	rp, err := repoPath(a)
	if err != nil {
		return nil, err
	}
	title, err := a.Str("title", true, 256)
	if err != nil {
		return nil, err
	}
	body, err := a.Str("body", false, 65536)
	if err != nil {
		return nil, err
	}
	labels, err := a.Strs("labels", 20, 100)
	if err != nil {
		return nil, err
	}
	assignees, err := a.Strs("assignees", 10, 100)
	if err != nil {
		return nil, err
	}
	in := map[string]any{"title": title}
	if body != "" {
		in["body"] = body
	}
	if labels != nil {
		in["labels"] = labels
	}
	if assignees != nil {
		in["assignees"] = assignees
	}
	return c.Do(ctx, http.MethodPost, rp+"/issues", nil, in)
}

func githubComment(ctx context.Context, c *apps.Call, req mcpgo.CallToolRequest) (any, error) {
	a := apps.ArgsOf(req)
	rp, err := repoPath(a)
	if err != nil {
		return nil, err
	}
	n, err := issueNum(a)
	if err != nil {
		return nil, err
	}
	body, err := a.Str("body", true, 65536)
	if err != nil {
		return nil, err
	}
	return c.Do(ctx, http.MethodPost, rp+"/issues/"+n+"/comments", nil, map[string]any{"body": body})
}

func githubSearch(ctx context.Context, c *apps.Call, req mcpgo.CallToolRequest) (any, error) {
	a := apps.ArgsOf(req)
	query, err := a.Str("query", true, 256)
	if err != nil {
		return nil, err
	}
	q := url.Values{"q": {query}}
	if err := paging(a, q); err != nil {
		return nil, err
	}
	return c.Do(ctx, http.MethodGet, "/search/issues", q, nil)
}

func githubFile(ctx context.Context, c *apps.Call, req mcpgo.CallToolRequest) (any, error) {
	a := apps.ArgsOf(req)
	rp, err := repoPath(a)
	if err != nil {
		return nil, err
	}
	p, err := a.Str("path", true, 1024)
	if err != nil {
		return nil, err
	}
	var segs []string
	for _, s := range strings.Split(strings.Trim(p, "/"), "/") {
		if s == "" || s == "." || s == ".." {
			return nil, apps.Invalidf("path must not hold empty, '.' or '..' segments")
		}
		segs = append(segs, apps.PathEscape(s))
	}
	q := url.Values{}
	ref, err := a.Str("ref", false, 256)
	if err != nil {
		return nil, err
	}
	if ref != "" {
		q.Set("ref", ref)
	}
	raw, err := c.Do(ctx, http.MethodGet, rp+"/contents/"+strings.Join(segs, "/"), q, nil)
	if err != nil {
		return nil, err
	}
	var f struct {
		Type     string `json:"type"`
		Path     string `json:"path"`
		SHA      string `json:"sha"`
		Size     int64  `json:"size"`
		Encoding string `json:"encoding"`
		Content  string `json:"content"`
		HTMLURL  string `json:"html_url"`
	}
	if json.Unmarshal(raw, &f) != nil || f.Type != "file" {
		return raw, nil // a directory listing (an array) or a submodule/symlink: as GitHub sent it
	}
	out := map[string]any{"type": "file", "path": f.Path, "sha": f.SHA, "size": f.Size, "html_url": f.HTMLURL}
	if f.Encoding == "base64" {
		b, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(f.Content, "\n", ""))
		if err == nil && utf8.Valid(b) {
			out["encoding"], out["content"] = "utf-8", string(b)
			return out, nil
		}
	}
	out["encoding"], out["content"] = f.Encoding, f.Content
	return out, nil
}
