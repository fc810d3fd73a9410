package edge

import (
	"github.com/valyala/fasthttp"

	"github.com/assistiv/gateway/internal/ids"
)

func (s *Server) routes() {
	r := routeTable{s.router}
	r.GET("/healthz", s.healthz)
	r.GET("/readyz", s.readyz)
	r.GET("/metrics", s.metricsRoute())

	// Operator API.
	r.POST("/admin/v1/platforms", s.adminOnly(s.adminCreatePlatform))
	r.GET("/admin/v1/platforms", s.adminOnly(s.adminListPlatforms))
	r.GET("/admin/v1/platforms/{platformId}", s.adminOnly(s.adminGetPlatform))
	r.PATCH("/admin/v1/platforms/{platformId}", s.adminOnly(s.adminPatchPlatform))
	r.POST("/admin/v1/platforms/{platformId}/wallet/topup", s.adminOnly(s.walletTopup))
	r.GET("/admin/v1/platforms/{platformId}/wallet", s.adminOnly(s.walletGet))
	r.PUT("/admin/v1/platforms/{platformId}/wallet/auto-topup", s.adminOnly(s.walletAutoTopup))
	r.GET("/admin/v1/platforms/{platformId}/wallet/transactions", s.adminOnly(s.walletTransactions))
	r.GET("/admin/v1/platforms/{platformId}/rate-limits", s.adminOnly(s.getPlatformRateLimits))
	r.PUT("/admin/v1/platforms/{platformId}/rate-limits", s.adminOnly(s.putPlatformRateLimits))
	s.webhookRoutes(r)
	s.mcpRoutes(r)
	s.paymentRoutes(r)

	plat := func(h func(*call) error) fasthttp.RequestHandler {
		return s.withKey(s.ownPlatform(h), ids.KindPlatform)
	}
	any := func(h func(*call) error) fasthttp.RequestHandler {
		return s.withKey(h, ids.KindPlatform, ids.KindEndUser)
	}

	r.PUT("/admin/v1/platforms/{platformId}/llm-providers/{provider}", s.adminOnly(s.putProvider))
	r.DELETE("/admin/v1/platforms/{platformId}/llm-providers/{provider}", s.adminOnly(s.deleteProvider))
	r.GET("/admin/v1/platforms/{platformId}/llm-providers", s.adminOnly(s.listProviders))

	endUser := func(h func(*call) error) fasthttp.RequestHandler {
		return s.withKey(h, ids.KindEndUser)
	}
	r.POST("/v1/chat/completions", endUser(s.chatCompletions))
	r.POST("/v1/responses", endUser(s.createResponse))
	r.GET("/v1/responses/{responseId}", endUser(s.getResponse))
	r.DELETE("/v1/responses/{responseId}", endUser(s.deleteResponse))
	r.GET("/v1/models", any(s.models))

	r.GET("/v1/me", any(s.me))
	r.GET("/v1/platforms/{platformId}", plat(s.getOwnPlatform))
	r.PATCH("/v1/platforms/{platformId}", plat(s.patchOwnPlatform))
	r.GET("/v1/platforms/{platformId}/wallet", plat(s.walletGet))
	r.GET("/v1/platforms/{platformId}/wallet/transactions", plat(s.walletTransactions))
	r.GET("/v1/platforms/{platformId}/logs", plat(s.listLogs))
	r.GET("/v1/platforms/{platformId}/logs/{requestId}", plat(s.getLog))
	r.GET("/v1/platforms/{platformId}/api-keys", plat(s.listKeys))
	r.POST("/v1/platforms/{platformId}/api-keys", plat(s.createKey))
	r.DELETE("/v1/platforms/{platformId}/api-keys/{keyId}", plat(s.revokeKey))
	r.GET("/v1/platforms/{platformId}/rate-limits", plat(s.getPlatformRateLimits))
	r.PUT("/v1/platforms/{platformId}/rate-limits", plat(s.putPlatformRateLimits))

	r.POST("/v1/platforms/{platformId}/end-users", plat(s.createEndUser))
	r.GET("/v1/platforms/{platformId}/end-users", plat(s.listEndUsers))
	r.GET("/v1/platforms/{platformId}/end-users/{endUserId}", plat(s.getEndUser))
	r.PATCH("/v1/platforms/{platformId}/end-users/{endUserId}", plat(s.patchEndUser))
	r.DELETE("/v1/platforms/{platformId}/end-users/{endUserId}", plat(s.deleteEndUser))

	r.POST("/v1/platforms/{platformId}/end-users/{endUserId}/budget", plat(s.createBudget))
	r.GET("/v1/platforms/{platformId}/end-users/{endUserId}/budget", plat(s.getBudget))
	r.PATCH("/v1/platforms/{platformId}/end-users/{endUserId}/budget", plat(s.patchBudget))
	r.DELETE("/v1/platforms/{platformId}/end-users/{endUserId}/budget", plat(s.deleteBudget))
	r.POST("/v1/platforms/{platformId}/end-users/{endUserId}/budget/topup", plat(s.budgetTopup))
	r.POST("/v1/platforms/{platformId}/end-users/{endUserId}/budget/debit", plat(s.budgetDebit))
	r.GET("/v1/platforms/{platformId}/end-users/{endUserId}/budget/transactions", plat(s.budgetTransactions))

	r.GET("/v1/platforms/{platformId}/end-users/{endUserId}/rate-limits", plat(s.getUserRateLimits))
	r.PUT("/v1/platforms/{platformId}/end-users/{endUserId}/rate-limits", plat(s.putUserRateLimits))
	r.DELETE("/v1/platforms/{platformId}/end-users/{endUserId}/rate-limits", plat(s.deleteUserRateLimits))
}
