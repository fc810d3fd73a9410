package edge

import (
	"errors"

	"github.com/assistiv/gateway/actors"
	"github.com/assistiv/gateway/internal/pb"
)

// liveEndUserView renders one end-user with the reservations open on its
// budget. The end-user record does not carry them (they live in the actor),
// so the budget part comes from one GetBudget answer: balance, reserved
// and available are of the same moment. A budget deleted in between is
// shown as none.
func (c *call) liveEndUserView(v *pb.EndUserView) endUserJSON {
	out := endUserView(v.EndUser, v.EffectiveRateLimits)
	if v.EndUser.Budget == nil {
		return out
	}
	res, err := c.askEndUser(&pb.GetBudget{})
	var bv *pb.BudgetView
	if err == nil {
		bv, _ = res.(*pb.BudgetView)
	}
	switch {
	case bv != nil && bv.Budget != nil:
		b := budgetView(v.EndUser.Id, bv.Budget, bv.ReservedNanos)
		out.Budget = &b
	case errors.Is(err, actors.ErrNotFound):
		out.Budget = nil
	}
	// Any other failure keeps the record's budget with reserved unknown
	// (null), never a made-up 0.
	return out
}
