package payments

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/stripe/stripe-go/v82"
	"github.com/stripe/stripe-go/v82/webhook"

	"github.com/assistiv/gateway/actors"
	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/internal/pb"
)

// ErrBadSignature is a webhook whose Stripe-Signature does not verify (a
// wrong secret, an altered body, or a timestamp outside the tolerance).
var ErrBadSignature = errors.New("payments: Stripe-Signature does not verify")

// Event is a verified Stripe event, reduced to what the gateway acts on.
type Event struct {
	ID   string
	Type string
	// Checkout is set for the checkout.session.* events the gateway
	// handles; nil for every other type (acknowledged and ignored).
	Checkout *CheckoutEvent
}

// CheckoutEvent is a checkout.session.* event.
type CheckoutEvent struct {
	// Platform is the session's platform, from the metadata and
	// client_reference_id the gateway set ("" when the session is not
	// one of the gateway's).
	Platform ids.PlatformID
	Outcome  *pb.CheckoutOutcome
}

// handled lists the event types that reach the platform actor.
var handled = map[string]bool{
	actors.StripeCheckoutCompleted:      true,
	actors.StripeCheckoutAsyncSucceeded: true,
	actors.StripeCheckoutAsyncFailed:    true,
	actors.StripeCheckoutExpired:        true,
}

// ParseEvent verifies payload against its Stripe-Signature header (HMAC
// with the webhook secret, timestamp within the tolerance) and decodes it.
// Events of any API version are accepted: the gateway reads only fields
// that are the same in every version (the session's id, payment_status,
// payment_intent, amount_total, currency, metadata, client_reference_id).
func (s *Stripe) ParseEvent(payload []byte, sigHeader string) (*Event, error) {
	ev, err := webhook.ConstructEventWithOptions(payload, sigHeader, s.cfg.WebhookSecret, webhook.ConstructEventOptions{
		Tolerance:                s.cfg.WebhookTolerance,
		IgnoreAPIVersionMismatch: true,
	})
	if err != nil {
		if errors.Is(err, webhook.ErrNotSigned) || errors.Is(err, webhook.ErrNoValidSignature) ||
			errors.Is(err, webhook.ErrTooOld) || errors.Is(err, webhook.ErrInvalidHeader) {
			return nil, fmt.Errorf("%w: %v", ErrBadSignature, err)
		}
		return nil, fmt.Errorf("payments: decode event: %w", err)
	}
	out := &Event{ID: ev.ID, Type: string(ev.Type)}
	if !handled[out.Type] || ev.Data == nil {
		return out, nil
	}
	var cs stripe.CheckoutSession
	if err := json.Unmarshal(ev.Data.Raw, &cs); err != nil {
		return nil, fmt.Errorf("payments: decode checkout session of %s: %w", ev.ID, err)
	}
	o := &pb.CheckoutOutcome{
		SessionId:        cs.ID,
		EventType:        out.Type,
		PaymentStatus:    string(cs.PaymentStatus),
		AmountTotalCents: cs.AmountTotal,
		Currency:         string(cs.Currency),
	}
	if cs.PaymentIntent != nil {
		o.PaymentIntentId = cs.PaymentIntent.ID
	}
	p := cs.Metadata[MetaPlatform]
	if p == "" {
		p = cs.ClientReferenceID
	}
	out.Checkout = &CheckoutEvent{Platform: ids.PlatformID(p), Outcome: o}
	return out, nil
}
