// Package payments connects the gateway's wallet to Stripe with the
// official client (github.com/stripe/stripe-go/v82): Checkout Sessions
// for top-ups, the platform's customer, off-session PaymentIntents for
// auto top-up (it implements [actors.Payments]) and verification of
// Stripe's signed webhook events. Nothing here touches the store: the
// platform actor records and credits.
package payments

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v82"

	"github.com/assistiv/gateway/actors"
	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/internal/money"
)

// Metadata keys the gateway puts on Stripe objects.
const (
	MetaPlatform = "assistiv_platform_id"
	MetaIntent   = "assistiv_intent_id"
)

// Checkout amount bounds, in USD (whole cents only).
const (
	MinCheckoutUSD = 1
	MaxCheckoutUSD = 10_000
)

// DefaultWebhookTolerance is how old a signed event may be.
const DefaultWebhookTolerance = 5 * time.Minute

// idempotencyWindow is how long Stripe is known to keep an idempotency
// key (at least 24 hours); a replay older than this asks by search instead.
const idempotencyWindow = 23 * time.Hour

const centNanos = money.PerUSD / 100

// Config configures the Stripe connection.
type Config struct {
	SecretKey     string // sk_live_… or sk_test_…
	WebhookSecret string // whsec_… of the webhook endpoint
	// APIBase overrides Stripe's API URL (stripe-mock in tests). Default
	// https://api.stripe.com.
	APIBase string
	// HTTPClient makes the API calls. Default: 30 s timeout.
	HTTPClient *http.Client
	// MaxNetworkRetries is how often the client itself retries a request
	// that failed on the network (with the same idempotency key). Default 2.
	MaxNetworkRetries int64
	// WebhookTolerance bounds an event's signature age. Default 5 minutes.
	WebhookTolerance time.Duration
	Logger           *slog.Logger
	// Now is the clock for the idempotency-window decision. Default time.Now.
	Now func() time.Time
}

// Stripe is the gateway's Stripe client. Safe for concurrent use.
type Stripe struct {
	cfg Config
	sc  *stripe.Client
}

var _ actors.Payments = (*Stripe)(nil)

// New returns a client; SecretKey and WebhookSecret are required.
func New(cfg Config) (*Stripe, error) {
	if cfg.SecretKey == "" || cfg.WebhookSecret == "" {
		return nil, errors.New("payments: Stripe needs both the secret key and the webhook signing secret")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.MaxNetworkRetries == 0 {
		cfg.MaxNetworkRetries = 2
	}
	if cfg.MaxNetworkRetries < 0 {
		cfg.MaxNetworkRetries = 0
	}
	if cfg.WebhookTolerance <= 0 {
		cfg.WebhookTolerance = DefaultWebhookTolerance
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	bc := &stripe.BackendConfig{
		HTTPClient:        cfg.HTTPClient,
		MaxNetworkRetries: stripe.Int64(cfg.MaxNetworkRetries),
		LeveledLogger:     slogLogger{cfg.Logger},
	}
	if cfg.APIBase != "" {
		bc.URL = stripe.String(strings.TrimRight(cfg.APIBase, "/"))
	}
	sc := stripe.NewClient(cfg.SecretKey, stripe.WithBackends(stripe.NewBackendsWithConfig(bc)))
	return &Stripe{cfg: cfg, sc: sc}, nil
}

// CreateCustomer creates the platform's Stripe customer. The idempotency
// key is the platform's, so concurrent first checkouts get one customer.
func (s *Stripe) CreateCustomer(ctx context.Context, platform ids.PlatformID, name string) (string, error) {
	p := &stripe.CustomerCreateParams{
		Name:        stripe.String(name),
		Description: stripe.String("Assistiv platform " + string(platform)),
	}
	p.AddMetadata(MetaPlatform, string(platform))
	p.SetIdempotencyKey("assistiv-customer-" + string(platform))
	c, err := s.sc.V1Customers.Create(ctx, p)
	if err != nil {
		return "", fmt.Errorf("payments: create customer: %w", err)
	}
	return c.ID, nil
}

// CheckoutRequest is one wallet top-up through Stripe Checkout.
type CheckoutRequest struct {
	Platform   ids.PlatformID
	Customer   string
	Amount     money.Nanos
	SuccessURL string
	CancelURL  string
	// IdempotencyKey, when set, makes a retried request return the same
	// session.
	IdempotencyKey string
}

// Checkout is a created Checkout Session.
type Checkout struct {
	ID  string
	URL string
}

// Cents converts an amount to whole US cents; ok is false when it has a
// fraction of a cent.
func Cents(n money.Nanos) (cents int64, ok bool) {
	return int64(n / centNanos), n%centNanos == 0
}

// CreateCheckout creates a Checkout Session in payment mode for the
// platform's customer, saving the card for off-session charges.
func (s *Stripe) CreateCheckout(ctx context.Context, r CheckoutRequest) (Checkout, error) {
	cents, ok := Cents(r.Amount)
	if !ok || cents <= 0 {
		return Checkout{}, fmt.Errorf("payments: %s is not a positive whole number of cents", r.Amount)
	}
	p := &stripe.CheckoutSessionCreateParams{
		Mode:              stripe.String(string(stripe.CheckoutSessionModePayment)),
		Customer:          stripe.String(r.Customer),
		ClientReferenceID: stripe.String(string(r.Platform)),
		SuccessURL:        stripe.String(r.SuccessURL),
		CancelURL:         stripe.String(r.CancelURL),
		LineItems: []*stripe.CheckoutSessionCreateLineItemParams{{
			Quantity: stripe.Int64(1),
			PriceData: &stripe.CheckoutSessionCreateLineItemPriceDataParams{
				Currency:   stripe.String("usd"),
				UnitAmount: stripe.Int64(cents),
				ProductData: &stripe.CheckoutSessionCreateLineItemPriceDataProductDataParams{
					Name: stripe.String("Assistiv wallet top-up"),
				},
			},
		}},
		PaymentIntentData: &stripe.CheckoutSessionCreatePaymentIntentDataParams{
			SetupFutureUsage: stripe.String(string(stripe.PaymentIntentSetupFutureUsageOffSession)),
			Metadata:         map[string]string{MetaPlatform: string(r.Platform)},
		},
	}
	p.AddMetadata(MetaPlatform, string(r.Platform))
	if r.IdempotencyKey != "" {
		p.SetIdempotencyKey(r.IdempotencyKey)
	}
	cs, err := s.sc.V1CheckoutSessions.Create(ctx, p)
	if err != nil {
		return Checkout{}, fmt.Errorf("payments: create checkout session: %w", err)
	}
	return Checkout{ID: cs.ID, URL: cs.URL}, nil
}

// PaymentMethodOf returns the payment method a PaymentIntent was paid with.
func (s *Stripe) PaymentMethodOf(ctx context.Context, paymentIntentID string) (string, error) {
	p := &stripe.PaymentIntentRetrieveParams{}
	p.AddExpand("payment_method")
	pi, err := s.sc.V1PaymentIntents.Retrieve(ctx, paymentIntentID, p)
	if err != nil {
		return "", fmt.Errorf("payments: retrieve payment intent: %w", err)
	}
	if pi.PaymentMethod == nil {
		return "", nil
	}
	return pi.PaymentMethod.ID, nil
}

// Charge creates and confirms an off-session PaymentIntent for an auto
// top-up with the intent id as Stripe's Idempotency-Key, so a replay
// returns the first outcome instead of charging again. Replays older than
// Stripe's idempotency window find the PaymentIntent by its metadata
// instead, and void the intent when Stripe has none. See [actors.Payments]
// for what the result means.
func (s *Stripe) Charge(ctx context.Context, req actors.ChargeRequest) (actors.ChargeResult, error) {
	cents, ok := Cents(req.Amount)
	if !ok || cents <= 0 {
		return actors.ChargeResult{Declined: fmt.Sprintf("amount %s USD is not a positive whole number of cents", req.Amount)}, nil
	}
	if req.Customer == "" {
		return actors.ChargeResult{Declined: "no saved card: top up once through Stripe Checkout first"}, nil
	}
	if !req.CreatedAt.IsZero() && s.cfg.Now().Sub(req.CreatedAt) > idempotencyWindow {
		pi, err := s.findIntent(ctx, req.IntentID)
		if err != nil {
			return actors.ChargeResult{}, err
		}
		if pi != nil {
			return s.outcome(ctx, pi)
		}
		// Never reached Stripe (a PaymentIntent is searchable well within
		// a day of its creation). A day-old need is stale: void it rather
		// than charge; the platform actor starts a fresh intent if the
		// wallet is still under its threshold.
		return actors.ChargeResult{Void: "no PaymentIntent at Stripe for this intent after " + idempotencyWindow.String()}, nil
	}
	pm := req.PaymentMethod
	if pm == "" {
		var err error
		if pm, err = s.firstCard(ctx, req.Customer); err != nil {
			return actors.ChargeResult{}, err
		}
		if pm == "" {
			return actors.ChargeResult{Declined: "no saved card: top up once through Stripe Checkout first"}, nil
		}
	}
	p := &stripe.PaymentIntentCreateParams{
		Amount:        stripe.Int64(cents),
		Currency:      stripe.String("usd"),
		Customer:      stripe.String(req.Customer),
		PaymentMethod: stripe.String(pm),
		Confirm:       stripe.Bool(true),
		OffSession:    stripe.Bool(true),
		Description:   stripe.String("Assistiv wallet auto top-up"),
	}
	p.AddMetadata(MetaPlatform, string(req.Platform))
	p.AddMetadata(MetaIntent, req.IntentID)
	p.SetIdempotencyKey(req.IntentID)
	pi, err := s.sc.V1PaymentIntents.Create(ctx, p)
	if err != nil {
		return declineOrUnknown(err)
	}
	return s.outcome(ctx, pi)
}

// outcome reads a PaymentIntent's state. A replayed answer is the first
// answer, so a state that was not final then is read afresh.
func (s *Stripe) outcome(ctx context.Context, pi *stripe.PaymentIntent) (actors.ChargeResult, error) {
	if pi.Status == stripe.PaymentIntentStatusProcessing {
		fresh, err := s.sc.V1PaymentIntents.Retrieve(ctx, pi.ID, nil)
		if err != nil {
			return actors.ChargeResult{}, fmt.Errorf("payments: retrieve payment intent: %w", err)
		}
		pi = fresh
	}
	switch pi.Status {
	case stripe.PaymentIntentStatusSucceeded:
		return actors.ChargeResult{ChargeID: pi.ID}, nil
	case stripe.PaymentIntentStatusProcessing:
		return actors.ChargeResult{}, fmt.Errorf("payments: payment intent %s is still processing", pi.ID)
	case stripe.PaymentIntentStatusRequiresAction, stripe.PaymentIntentStatusRequiresConfirmation:
		return actors.ChargeResult{Declined: "the card requires authentication, which an off-session charge cannot give (" + pi.ID + ")"}, nil
	case stripe.PaymentIntentStatusCanceled:
		return actors.ChargeResult{Declined: "the payment was canceled (" + pi.ID + ")"}, nil
	default:
		reason := "the payment was not completed: " + string(pi.Status)
		if e := pi.LastPaymentError; e != nil && e.Msg != "" {
			reason = describe(e)
		}
		return actors.ChargeResult{Declined: reason + " (" + pi.ID + ")"}, nil
	}
}

// declineOrUnknown tells a definite refusal (Stripe answered and did not
// charge) from an unknown outcome (network, Stripe's side, rate limits, a
// concurrent request with the same key).
func declineOrUnknown(err error) (actors.ChargeResult, error) {
	var se *stripe.Error
	if !errors.As(err, &se) {
		return actors.ChargeResult{}, fmt.Errorf("payments: charge: %w", err)
	}
	switch {
	case se.Type == stripe.ErrorTypeCard:
		return actors.ChargeResult{Declined: describe(se)}, nil
	case se.HTTPStatusCode == http.StatusBadRequest || se.HTTPStatusCode == http.StatusPaymentRequired || se.HTTPStatusCode == http.StatusNotFound:
		// Invalid request (a detached card, a deleted customer): retrying
		// the same request cannot succeed.
		return actors.ChargeResult{Declined: describe(se)}, nil
	default:
		return actors.ChargeResult{}, fmt.Errorf("payments: charge: %w", err)
	}
}

func describe(e *stripe.Error) string {
	var b strings.Builder
	if e.Code != "" {
		b.WriteString(string(e.Code))
	} else {
		b.WriteString(string(e.Type))
	}
	if e.DeclineCode != "" {
		b.WriteString(" (" + string(e.DeclineCode) + ")")
	}
	if e.Msg != "" {
		b.WriteString(": " + e.Msg)
	}
	return b.String()
}

// firstCard returns one of the customer's saved cards ("" when none).
func (s *Stripe) firstCard(ctx context.Context, customer string) (string, error) {
	p := &stripe.CustomerListPaymentMethodsParams{Customer: stripe.String(customer), Type: stripe.String("card")}
	p.Limit = stripe.Int64(1)
	for pm, err := range s.sc.V1Customers.ListPaymentMethods(ctx, p) {
		if err != nil {
			return "", fmt.Errorf("payments: list payment methods: %w", err)
		}
		return pm.ID, nil
	}
	return "", nil
}

// findIntent finds the PaymentIntent of an auto top-up intent by metadata.
func (s *Stripe) findIntent(ctx context.Context, intentID string) (*stripe.PaymentIntent, error) {
	p := &stripe.PaymentIntentSearchParams{}
	p.Query = fmt.Sprintf("metadata['%s']:'%s'", MetaIntent, intentID)
	p.Limit = stripe.Int64(10)
	for pi, err := range s.sc.V1PaymentIntents.Search(ctx, p) {
		if err != nil {
			return nil, fmt.Errorf("payments: search payment intents: %w", err)
		}
		if pi.Metadata[MetaIntent] == intentID {
			return pi, nil
		}
	}
	return nil, nil
}

// slogLogger routes stripe-go's own log lines to slog.
type slogLogger struct{ l *slog.Logger }

func (s slogLogger) Debugf(f string, v ...any) { s.l.Debug("stripe: " + fmt.Sprintf(f, v...)) }
func (s slogLogger) Infof(f string, v ...any)  { s.l.Debug("stripe: " + fmt.Sprintf(f, v...)) }
func (s slogLogger) Warnf(f string, v ...any)  { s.l.Warn("stripe: " + fmt.Sprintf(f, v...)) }
func (s slogLogger) Errorf(f string, v ...any) { s.l.Warn("stripe: " + fmt.Sprintf(f, v...)) }
