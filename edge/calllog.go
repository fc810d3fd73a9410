package edge

import (
	"errors"
	"time"

	"github.com/assistiv/gateway/actors"

	"github.com/assistiv/gateway/internal/money"
	"github.com/assistiv/gateway/logs"
	"github.com/assistiv/gateway/providers"
	"github.com/assistiv/gateway/providers/catalog"
)

// callLog is one inference call's log entry, filled as the call proceeds.
// Everything it holds is copied out of the request context, so a stream
// writer may finish it after the handler returned.
type callLog struct {
	s      *Server
	e      logs.Entry
	start  time.Time
	markup int64
	b      *billing
}

func (s *Server) newLog(c *call, b *billing, start time.Time, stream bool) *callLog {
	l := &callLog{s: s, start: start}
	l.e = logs.Entry{
		RequestID: c.rid, PlatformID: c.principal.Platform, EndUserID: c.principal.EndUser,
		Kind: logs.KindChatCompletions, Stream: stream,
	}
	if b != nil {
		l.e.Model, l.e.Provider, l.markup = b.model.ID, b.model.Provider, b.markup
		l.b = b
	}
	return l
}

// finish records the outcome; the write never blocks the response.
func (l *callLog) finish(providerCost int64, u providers.Usage, ttft time.Duration, fail *apiError) {
	if l.s.deps.Logs == nil {
		return
	}
	l.e.StatusCode = 200
	if fail != nil {
		l.e.StatusCode, l.e.ErrorCode = fail.Status, fail.Code
	}
	l.e.PromptTokens, l.e.CompletionTokens = u.PromptTokens, u.CompletionTokens
	l.e.ProviderCost = money.Nanos(providerCost)
	l.e.Cost = money.Nanos(providerCost)
	if c, err := actors.WithMarkup(money.Nanos(providerCost), l.markup); err == nil {
		// The end-user's charge, by the rule the end-user actor charges.
		l.e.Cost = c
	}
	if l.b != nil && l.b.settled != nil {
		// What the ledgers charged, not a recomputation: the log agrees
		// with the budget's and the wallet's entries.
		if l.b.settled.HasBudget {
			l.e.Cost = money.Nanos(l.b.settled.ChargedNanos)
		}
		l.e.ProviderCost = money.Nanos(l.b.settled.WalletNanos)
	}
	l.e.Latency = time.Since(l.start)
	l.e.TTFT = ttft
	l.s.deps.Logs.Writer().Write(l.e)
}

// logCall records a non-streamed call (or a stream refused before it began).
func (s *Server) logCall(c *call, b *billing, providerCost int64, u providers.Usage, start time.Time, ttft time.Duration, stream bool, err error) {
	var fail *apiError
	if err != nil {
		fail = toAPIError(err, s.log, c.rid)
	}
	s.newLog(c, b, start, stream).finish(providerCost, u, ttft, fail)
}

// logRefusal records an inference call refused at admission (402: budget
// or wallet; 429: rate limit) so the logs API (status=429) and the
// dashboard's refusal chart see refusals; other errors stay unlogged.
func (s *Server) logRefusal(c *call, kind logs.Kind, model string, stream bool, start time.Time, err error) {
	var ae *apiError
	var e *actors.Error
	status := 0
	if errors.As(err, &ae) {
		status = ae.Status
	} else if errors.As(err, &e) {
		status = actorCodes[e.Code].status
	}
	if status != 402 && status != 429 {
		return
	}
	l := s.newLog(c, nil, start, stream)
	l.e.Kind, l.e.Model = kind, model
	if m, lerr := catalog.Lookup(model); lerr == nil {
		l.e.Provider = m.Provider
	}
	l.finish(0, providers.Usage{}, 0, toAPIError(err, s.log, c.rid))
}
