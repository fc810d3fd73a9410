package actors

import (
	"fmt"

	"github.com/assistiv/gateway/internal/pb"
)

// Error is a refusal from an actor, carried across nodes as a [pb.Failure].
// Code is one of the API error codes; errors.Is matches by code, so
// errors.Is(err, ErrBudgetExhausted) holds for any budget_exhausted refusal.
type Error struct {
	Code    string
	Message string
	Rate    *pb.RateLimitInfo // set with rate_limited
	// Replayed marks the stored refusal of an earlier request made with
	// the same Idempotency-Key (Stripe replays errors too).
	Replayed bool
}

func (e *Error) Error() string { return "actors: " + e.Message }

// Is matches another *Error with the same code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

func (e *Error) failure() *pb.Failure {
	return &pb.Failure{Code: e.Code, Message: e.Message, Rate: e.Rate, Replayed: e.Replayed}
}

func errorf(base *Error, format string, args ...any) *Error {
	return &Error{Code: base.Code, Message: fmt.Sprintf(format, args...)}
}

func fromFailure(f *pb.Failure) *Error {
	return &Error{Code: f.Code, Message: f.Message, Rate: f.Rate, Replayed: f.Replayed}
}

// Refusals. The edge maps each code to its HTTP status in one table.
var (
	ErrNotFound           = &Error{Code: "not_found", Message: "not found"}
	ErrConflict           = &Error{Code: "conflict", Message: "already exists"}
	ErrInvalid            = &Error{Code: "invalid_request", Message: "invalid request"}
	ErrBudgetExhausted    = &Error{Code: "budget_exhausted", Message: "budget exhausted"}
	ErrBudgetSuspended    = &Error{Code: "budget_suspended", Message: "budget suspended"}
	ErrWalletInsufficient = &Error{Code: "wallet_insufficient", Message: "platform wallet balance is insufficient"}
	ErrRateLimited        = &Error{Code: "rate_limited", Message: "rate limit exceeded"}
	ErrTooManyParallel    = &Error{Code: "too_many_parallel_requests", Message: "too many calls in flight for this end-user"}
	ErrIdempotencyReused  = &Error{Code: "idempotency_key_reused", Message: "Idempotency-Key was used with a different request"}
	ErrIdempotencyInUse   = &Error{Code: "idempotency_key_in_use", Message: "a request with this Idempotency-Key is in flight"}
	ErrUnavailable        = &Error{Code: "unavailable", Message: "actor unavailable"}
	ErrStoreFailed        = &Error{Code: "store_failed", Message: "the store failed; the request was not acknowledged"}
	ErrReservationUnknown = &Error{Code: "reservation_unknown", Message: "no such reservation"}
	ErrEndUserDeleted     = &Error{Code: "not_found", Message: "end-user not found"}
	ErrPlatformNotFound   = &Error{Code: "not_found", Message: "platform not found"}
	ErrAmountOutOfRange   = &Error{Code: "invalid_amount", Message: "amount out of range"}
	ErrProviderNotEnabled = &Error{Code: "provider_not_enabled", Message: "the model's provider is not enabled for this platform"}
	// ErrMoved: the actor's ownership moved to another node while the
	// request was on its way; it was not processed and may be sent again
	// (the edge retries it once the cluster has settled).
	ErrMoved      = &Error{Code: "moved", Message: "the actor moved to another node; retry"}
	errPassivated = &Error{Code: "passivated", Message: "actor passivated; retry"}
)
