package mcp

import (
	"github.com/assistiv/gateway/mcp/apps"
	"github.com/assistiv/gateway/mcp/apps/github"
	"github.com/assistiv/gateway/mcp/apps/slack"
	"github.com/assistiv/gateway/mcp/apps/zendesk"
	"github.com/assistiv/gateway/mcp/apps/zohomail"
)

// AppNames lists the supported apps.
var AppNames = []string{"github", "slack", "zoho_mail", "zendesk"}

// registry holds each app's spec by name (packages mcp/apps/<app>).
var registry = map[string]*apps.Spec{}

func register(a *apps.Spec) { registry[a.Name] = a }

func init() {
	register(github.Spec())
	register(slack.Spec())
	register(zohomail.Spec())
	register(zendesk.Spec())
}
