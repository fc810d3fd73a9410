package edge

import (
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/assistiv/gateway/actors"
	"github.com/assistiv/gateway/internal/pb"
)

// apiError is an error the edge renders as JSON with its own status and code.
type apiError struct {
	Status  int
	Type    string
	Code    string
	Message string
	Rate    *pb.RateLimitInfo
	Header  map[string]string
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

// Error types, as OpenAI-compatible clients expect them.
const (
	typeInvalid     = "invalid_request_error"
	typeAuth        = "authentication_error"
	typePerm        = "permission_error"
	typeNotFound    = "not_found_error"
	typeRate        = "rate_limit_error"
	typePayment     = "payment_required"
	typeConflict    = "conflict_error"
	typeInternal    = "api_error"
	typeOverload    = "overloaded_error"
	typeIdempotency = "idempotency_error"
)

func errBadRequest(code, format string, args ...any) *apiError {
	return &apiError{Status: 400, Type: typeInvalid, Code: code, Message: sprintf(format, args...)}
}

func errNotFound(what string) *apiError {
	return &apiError{Status: 404, Type: typeNotFound, Code: "not_found", Message: what + " not found"}
}

var (
	errMissingKey = &apiError{Status: 401, Type: typeAuth, Code: "missing_api_key", Message: "send your key as Authorization: Bearer <key>"}
	errInvalidKey = &apiError{Status: 401, Type: typeAuth, Code: "invalid_api_key", Message: "the API key is invalid or was revoked"}
	errKeyInQuery = &apiError{Status: 400, Type: typeInvalid, Code: "api_key_in_query", Message: "API keys are accepted only in the Authorization header"}
)

// actorCodes maps actor refusal codes to HTTP statuses and error types.
var actorCodes = map[string]struct {
	status int
	typ    string
}{
	actors.ErrNotFound.Code:           {404, typeNotFound},
	actors.ErrConflict.Code:           {409, typeConflict},
	actors.ErrInvalid.Code:            {400, typeInvalid},
	actors.ErrAmountOutOfRange.Code:   {400, typeInvalid},
	actors.ErrBudgetExhausted.Code:    {402, typePayment},
	actors.ErrBudgetSuspended.Code:    {402, typePayment},
	actors.ErrWalletInsufficient.Code: {402, typePayment},
	actors.ErrRateLimited.Code:        {429, typeRate},
	actors.ErrTooManyParallel.Code:    {429, typeRate},
	actors.ErrIdempotencyReused.Code:  {422, typeIdempotency},
	actors.ErrIdempotencyInUse.Code:   {409, typeIdempotency},
	actors.ErrUnavailable.Code:        {503, typeOverload},
	actors.ErrMoved.Code:              {503, typeOverload},
	actors.ErrStoreFailed.Code:        {503, typeInternal},
	actors.ErrReservationUnknown.Code: {409, typeConflict},
	actors.ErrProviderNotEnabled.Code: {400, typeInvalid},
}

// toAPIError maps any error to what the client sees. Unmapped errors are
// internal_error: logged with the request id, shown with a safe message.
func toAPIError(err error, log *slog.Logger, requestID string) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var e *actors.Error
	if errors.As(err, &e) {
		if m, ok := actorCodes[e.Code]; ok {
			ae := &apiError{Status: m.status, Type: m.typ, Code: e.Code, Message: e.Message, Rate: e.Rate}
			if e.Replayed {
				ae.Header = map[string]string{"Idempotent-Replayed": "true"}
			}
			return ae
		}
	}
	log.Error("internal error", "request_id", requestID, "err", err)
	return &apiError{Status: 500, Type: typeInternal, Code: "internal_error", Message: "internal error; quote request_id " + requestID + " when reporting it"}
}

type errorBody struct {
	Error errorFields `json:"error"`
}

type errorFields struct {
	Type      string `json:"type"`
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
}

// writeError renders e on ctx.
func writeError(ctx *fasthttp.RequestCtx, e *apiError, requestID string) {
	ctx.Response.Reset()
	ctx.Response.Header.Set("X-Request-Id", requestID)
	ctx.SetStatusCode(e.Status)
	ctx.SetContentType("application/json")
	for k, v := range e.Header {
		ctx.Response.Header.Set(k, v)
	}
	if e.Rate != nil {
		setRateHeaders(&ctx.Response.Header, e.Rate)
		if e.Rate.RetryAfterMs > 0 {
			secs := (e.Rate.RetryAfterMs + 999) / 1000
			ctx.Response.Header.Set("Retry-After", strconv.FormatInt(secs, 10))
		}
	}
	b, _ := json.Marshal(errorBody{errorFields{Type: e.Type, Code: e.Code, Message: e.Message, RequestID: requestID}})
	ctx.SetBody(b)
}

// setRateHeaders writes OpenAI's x-ratelimit-* headers.
func setRateHeaders(h *fasthttp.ResponseHeader, r *pb.RateLimitInfo) {
	if r.LimitRequests > 0 {
		h.Set("x-ratelimit-limit-requests", strconv.FormatInt(r.LimitRequests, 10))
		h.Set("x-ratelimit-remaining-requests", strconv.FormatInt(r.RemainingRequests, 10))
		h.Set("x-ratelimit-reset-requests", fmtReset(r.ResetRequestsMs))
	}
	if r.LimitTokens > 0 {
		h.Set("x-ratelimit-limit-tokens", strconv.FormatInt(r.LimitTokens, 10))
		h.Set("x-ratelimit-remaining-tokens", strconv.FormatInt(r.RemainingTokens, 10))
		h.Set("x-ratelimit-reset-tokens", fmtReset(r.ResetTokensMs))
	}
}

func fmtReset(ms int64) string {
	return (time.Duration(ms) * time.Millisecond).String()
}
