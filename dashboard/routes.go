package dashboard

import (
	"github.com/fasthttp/router"
	"github.com/valyala/fasthttp"
)

func (d *Dashboard) routes() {
	r := router.New()
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.NotFound = func(ctx *fasthttp.RequestCtx) {
		d.anon(ctx, 404, "error", "Not found", "There is no such page here.")
	}
	r.HandleMethodNotAllowed = false
	r.GET(Prefix+"/static/{file}", d.static)
	r.GET(Prefix+"/login", d.loginPage)
	r.POST(Prefix+"/login", d.login)
	r.GET(Prefix+"/claim", d.claimPage)
	r.POST(Prefix+"/claim", d.claim)
	r.GET(Prefix+"/invite/{token}", d.invitePage)
	r.POST(Prefix+"/invite/{token}", d.acceptInvite)

	any := func(h func(*req) error) fasthttp.RequestHandler { return d.authed(h, false) }
	r.GET(Prefix+"/", any(d.home))
	r.POST(Prefix+"/logout", any(d.logout))
	r.POST(Prefix+"/logout-all", any(d.logoutAll))

	r.GET(Prefix+"/operator/platforms", any(d.operatorPlatforms))
	r.POST(Prefix+"/operator/platforms", any(d.operatorCreatePlatform))
	r.POST(Prefix+"/operator/platforms/{pid}/owner-invite", any(d.operatorOwnerInvite))

	p := func(h func(*req) error) fasthttp.RequestHandler { return d.authed(h, true) }
	base := Prefix + "/p/{pid}"
	r.GET(base, p(func(r *req) error { redirect(r.ctx, pp(r.pid, "overview")); return nil }))
	r.GET(base+"/overview", p(d.overview))
	r.GET(base+"/end-users", p(d.endUsers))
	r.POST(base+"/end-users", p(d.createEndUser))
	r.GET(base+"/end-users/{eid}", p(d.endUser))
	r.POST(base+"/end-users/{eid}/budget", p(d.setBudget))
	r.POST(base+"/end-users/{eid}/topup", p(d.budgetMove(false)))
	r.POST(base+"/end-users/{eid}/debit", p(d.budgetMove(true)))
	r.POST(base+"/end-users/{eid}/suspend", p(d.suspend))
	r.POST(base+"/end-users/{eid}/rate-limits", p(d.userRateLimits))
	r.GET(base+"/logs", p(d.logsPage))
	r.GET(base+"/logs/{rid}", p(d.logDetail))
	r.GET(base+"/api-keys", p(d.apiKeys))
	r.POST(base+"/api-keys", p(d.createAPIKey))
	r.POST(base+"/api-keys/{kid}/revoke", p(d.revokeAPIKey))
	r.GET(base+"/billing", p(d.billing))
	r.POST(base+"/billing/topup", p(d.walletTopup))
	r.POST(base+"/billing/auto-topup", p(d.autoTopup))
	r.POST(base+"/billing/checkout", p(d.walletCheckout))
	r.GET(base+"/llm-configs", p(d.llmConfigs))
	r.POST(base+"/llm-configs/{provider}", p(d.putProvider))
	r.POST(base+"/llm-configs/{provider}/test", p(d.testProvider))
	r.GET(base+"/settings", p(d.settings))
	r.POST(base+"/settings", p(d.saveSettings))
	r.GET(base+"/team", p(d.team))
	r.POST(base+"/team/invite", p(d.invite))
	r.POST(base+"/team/role", p(d.setRole))
	r.POST(base+"/team/remove", p(d.removeMember))
	r.POST(base+"/team/sessions", p(d.endMemberSessions))
	r.GET(base+"/playground", p(d.playground))
	r.POST(base+"/playground", p(d.playgroundCall))
	r.POST(base+"/playground/stream", p(d.playgroundStream))
	r.GET(base+"/playground/calls/{rid}", p(d.playgroundCallInfo))
	r.GET(base+"/skills", p(d.skills))
	r.POST(base+"/skills", p(d.uploadSkill))
	r.GET(base+"/skills/{sid}", p(d.skill))
	r.POST(base+"/skills/{sid}/delete", p(d.deleteSkill))
	r.GET(base+"/mcp", p(d.mcpPage))
	r.POST(base+"/mcp/apps/{app}", p(d.putMCPApp))
	r.POST(base+"/mcp/skills", p(d.toggleSkills))
	r.GET(base+"/webhooks", p(d.webhooks))
	r.POST(base+"/webhooks", p(d.createWebhook))
	r.GET(base+"/webhooks/{wid}", p(d.webhook))
	r.POST(base+"/webhooks/{wid}/rotate", p(d.rotateWebhook))
	r.POST(base+"/webhooks/{wid}/update", p(d.updateWebhook))
	r.POST(base+"/webhooks/{wid}/delete", p(d.deleteWebhook))
	r.POST(base+"/webhooks/{wid}/test", p(d.testWebhook))
	r.POST(base+"/webhooks/{wid}/replay/{mid}", p(d.replayWebhook))
	d.router = r
}
