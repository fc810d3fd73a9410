package mcp

import (
	"context"
	"errors"
	"time"

	"github.com/assistiv/gateway/actors"
	"github.com/assistiv/gateway/internal/pb"
)

// PaymentCheck reports whether p may call tools now: not while the
// end-user's budget is suspended ([actors.ErrBudgetSuspended]) or the
// platform's wallet has nothing left beyond its open reservations
// ([actors.ErrWalletInsufficient]). Both are HTTP 402 on the MCP
// endpoints. An end-user without a budget is not limited by one. Other
// errors are the directory's (the caller answers 503).
//
// It asks two actors and may block up to 5 s; safe for concurrent use.
func (s *Service) PaymentCheck(ctx context.Context, p actors.Principal) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	res, err := s.dir.Ask(ctx, actors.EndUserActor(p.Platform, p.EndUser), &pb.GetBudget{})
	switch {
	case errors.Is(err, actors.ErrNotFound):
	case err != nil:
		return err
	default:
		if b, _ := res.(*pb.BudgetView); b.GetBudget().GetIsSuspended() {
			return &actors.Error{Code: actors.ErrBudgetSuspended.Code, Message: "the end-user's budget is suspended; tool calls resume when it is unsuspended"}
		}
	}
	res, err = s.dir.Ask(ctx, actors.PlatformActor(p.Platform), &pb.GetWallet{})
	if err != nil {
		return err
	}
	if w, _ := res.(*pb.WalletView); w.GetWallet().GetBalanceNanos()-w.GetReservedNanos() <= 0 {
		return &actors.Error{Code: actors.ErrWalletInsufficient.Code, Message: "the platform's wallet is empty; tool calls resume after a top-up"}
	}
	return nil
}

// HoldsToolCall reports whether an MCP POST body (one JSON-RPC message or
// a batch) holds a tools/call request.
func HoldsToolCall(body []byte) bool { return holdsToolCall(body) }

// paymentRefusal turns a PaymentCheck refusal into a tool error (the
// in-handler check closes the window between the edge's check and the
// call).
func (s *Service) paymentRefusal(ctx context.Context, p actors.Principal) (bool, callOutcome, string, string) {
	err := s.PaymentCheck(ctx, p)
	var ae *actors.Error
	switch {
	case err == nil:
		return false, callOutcome{}, "", ""
	case errors.As(err, &ae) && (errors.Is(err, actors.ErrBudgetSuspended) || errors.Is(err, actors.ErrWalletInsufficient)):
		return true, callOutcome{402, ae.Code}, ae.Code, ae.Message
	default:
		s.log.Error("payment check", "err", err)
		return true, callOutcome{503, "unavailable"}, "unavailable", "the gateway could not admit the call; retry"
	}
}
