package webhooks

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/assistiv/gateway/internal/egress"
	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/persistence"
)

// userAgent identifies our deliveries.
const userAgent = "assistiv-webhooks/1"

// pruneEvery is how often delivered and failed messages past
// Config.Retention are removed.
const pruneEvery = time.Hour

// scheduleLoop starts due deliveries whenever it is woken (new messages,
// a finished attempt, an endpoint change) or the earliest known due time
// comes, until Close.
func (s *Service) scheduleLoop() {
	defer s.wg.Done()
	timer := time.NewTimer(0)
	defer timer.Stop()
	var lastPrune time.Time
	for {
		if s.cfg.Retention > 0 && time.Since(lastPrune) >= pruneEvery {
			lastPrune = time.Now()
			s.prune()
		}
		next := s.scheduleOnce()
		wait := s.cfg.PollInterval // a fake clock still moves things along
		if next != noDue {
			wait = min(wait, max(time.Duration(next-s.nowMs())*time.Millisecond, time.Millisecond))
		}
		timer.Reset(wait)
		select {
		case <-s.ctx.Done():
			return
		case <-s.wakeSched:
		case <-timer.C:
		}
	}
}

// scheduleOnce starts every due delivery that the concurrency bounds
// allow and returns the earliest due time it is waiting for (noDue if
// none). An endpoint at its PerEndpoint bound, or any endpoint while all
// Workers are busy, is looked at again when a delivery finishes.
func (s *Service) scheduleOnce() int64 {
	now := s.nowMs()
	next := int64(noDue)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return noDue
	}
	for p, eps := range s.endpoints {
		for eid, e := range eps {
			if !e.rec.Enabled || len(e.inflight) >= s.cfg.PerEndpoint || s.active >= s.cfg.Workers {
				continue
			}
			if e.nextDue > now {
				next = min(next, e.nextDue)
				continue
			}
			if err := s.scanLocked(p, eid, e, now); err != nil {
				s.log.Error("scan due messages", "endpoint", eid, "err", err)
				e.nextDue = now + s.cfg.PollInterval.Milliseconds() // try again later
				next = min(next, e.nextDue)
				continue
			}
			if e.nextDue > now {
				next = min(next, e.nextDue)
			}
		}
	}
	return next
}

// scanLocked walks endpoint eid's due entries in time order, starting a
// delivery for each one due by now while the bounds allow, and records in
// e.nextDue the first entry it left.
func (s *Service) scanLocked(p ids.PlatformID, eid string, e *endpoint, now int64) error {
	prefix := persistence.WebhookDuePrefix(string(p), eid)
	e.nextDue = noDue
	return s.store.ScanPrefix(prefix, false, func(k, _ []byte) bool {
		if len(k) < len(prefix)+8 {
			return true
		}
		due := int64(binary.BigEndian.Uint64(k[len(prefix):]))
		msgID := string(k[len(prefix)+8:])
		if e.inflight[msgID] {
			return true
		}
		if due > now || len(e.inflight) >= s.cfg.PerEndpoint || s.active >= s.cfg.Workers {
			e.nextDue = due
			return false
		}
		e.inflight[msgID] = true
		s.active++
		s.wg.Add(1)
		go s.deliver(p, eid, msgID, bytes.Clone(k))
		return true
	})
}

// result is the outcome of one attempt.
type result struct {
	msg     *messageRecord
	skip    bool // the message or endpoint is gone; record nothing
	cut     bool // interrupted by Close; record nothing, retry after restart
	code    int
	latency time.Duration
	err     string
	// retryAfter is the receiver's Retry-After (delay-seconds form), which
	// stretches the next delay of the schedule, never shortens it.
	retryAfter time.Duration
}

// maxRetryAfter caps how far a receiver's Retry-After can push an attempt.
const maxRetryAfter = 24 * time.Hour

func (s *Service) deliver(p ids.PlatformID, eid, msgID string, dueKey []byte) {
	defer s.wg.Done()
	res := s.attempt(p, eid, msgID)
	s.finish(p, eid, msgID, dueKey, res)
}

// attempt makes one delivery: POST the payload with the Standard Webhooks
// headers, bounded by RequestTimeout, through the egress policy's dialer,
// never following a redirect.
func (s *Service) attempt(p ids.PlatformID, eid, msgID string) result {
	raw, err := s.store.Get(persistence.WebhookMessageKey(string(p), eid, msgID))
	if errors.Is(err, persistence.ErrNotFound) {
		return result{skip: true}
	}
	if err != nil {
		return result{skip: true, err: err.Error()}
	}
	m, err := decodeMessage(raw)
	if err != nil {
		s.log.Error("undecodable message record", "endpoint", eid, "message", msgID, "err", err)
		return result{skip: true}
	}
	s.mu.Lock()
	var rec *endpointRecord
	if e := s.endpoints[p][eid]; e != nil && !e.deleted {
		rec = e.rec
	}
	s.mu.Unlock()
	if rec == nil {
		return result{skip: true}
	}
	res := result{msg: m}
	now := s.clk.Now()
	keys, err := s.signingSecrets(rec, now)
	if err != nil {
		// Never include the secret; the keyring's errors do not.
		res.err = "cannot open the signing secret: " + err.Error()
		return res
	}
	sig, err := sign(m.ID, now, m.Payload, keys)
	if err != nil {
		res.err = "cannot sign: " + err.Error()
		return res
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rec.URL, bytes.NewReader(m.Payload))
	if err != nil {
		res.err = "bad endpoint URL"
		return res
	}
	if req.URL.Scheme != "https" && !s.cfg.Egress.AllowPrivate {
		// Registered while private egress was allowed; not any more.
		res.err = "https required: " + egress.ErrForbiddenScheme.Error()
		return res
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("webhook-id", m.ID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	req.Header.Set("webhook-signature", sig)
	endTrace := s.traceAttempt(req, p, eid, m)
	defer func() { endTrace(&res) }()
	start := time.Now()
	resp, err := s.http.Do(req)
	if err == nil {
		// Read a bounded amount so the connection can be reused; the body
		// itself is not kept.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		res.code = resp.StatusCode
		if secs, err := strconv.ParseInt(resp.Header.Get("Retry-After"), 10, 64); err == nil && secs > 0 {
			res.retryAfter = min(time.Duration(secs)*time.Second, maxRetryAfter)
		}
	}
	res.latency = time.Since(start)
	switch {
	case err != nil && s.ctx.Err() != nil:
		res.cut = true
	case err != nil:
		res.err = describe(err, s.cfg.RequestTimeout)
	case res.code >= 300 && res.code < 400:
		res.err = fmt.Sprintf("redirect (%d) not followed; update the endpoint URL", res.code)
	case res.code == http.StatusGone:
		res.err = "410 Gone: endpoint disabled"
	case res.code < 200 || res.code >= 300:
		res.err = fmt.Sprintf("HTTP %d", res.code)
	}
	return res
}

// describe renders a transport error without the URL (which may carry a
// token in its query).
func describe(err error, timeout time.Duration) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		return fmt.Sprintf("timeout: no complete response within %v", timeout)
	}
	msg := err.Error()
	if len(msg) > 500 {
		msg = msg[:500]
	}
	return msg
}

// delay returns the wait before the attempt at schedule position i, with
// jitter.
func (s *Service) delay(i int) time.Duration {
	d := s.cfg.Schedule[i]
	if d <= 0 || s.cfg.Jitter == 0 {
		return d
	}
	f := 1 + s.cfg.Jitter*(2*rand.Float64()-1)
	return time.Duration(float64(d) * f)
}

// finish records an attempt: the message's new state and due entry, and
// the endpoint's failure history, in one write. 2xx delivers; 410 fails the
// message and disables the endpoint; anything else (3xx, 4xx, 5xx,
// transport error, timeout) schedules the next attempt or, after the
// last, fails the message. An endpoint whose attempts have all failed for
// DisableAfter is disabled.
func (s *Service) finish(p ids.PlatformID, eid, msgID string, dueKey []byte, res result) {
	now := s.clk.Now()
	nowMs := now.UnixMilli()
	s.mu.Lock()
	e := s.endpoints[p][eid]
	if res.skip || res.cut || e == nil || e.deleted {
		if e != nil {
			delete(e.inflight, msgID)
		}
		s.active--
		s.mu.Unlock()
		s.wakeScheduler()
		return
	}
	m := res.msg
	m.Attempts++
	m.LastAttemptMs = nowMs
	m.LastStatusCode = res.code
	m.LastLatencyMs = res.latency.Milliseconds()
	m.LastError = res.err
	ops := []persistence.Op{persistence.Delete(dueKey)}
	r := *e.rec
	epChanged := false
	if res.err == "" {
		m.Status, m.DeliveredAtMs, m.NextAttemptMs = StatusDelivered, nowMs, 0
		if r.FailingSinceMs != 0 {
			r.FailingSinceMs, epChanged = 0, true
		}
	} else {
		if r.FailingSinceMs == 0 {
			r.FailingSinceMs, epChanged = nowMs, true
		}
		i := m.Attempts - m.RoundStart
		switch {
		case res.code == http.StatusGone:
			m.Status, m.NextAttemptMs = StatusFailed, 0
			if r.Enabled {
				r.Enabled, r.DisabledReason, epChanged = false, DisabledGone, true
				s.log.Warn("webhook endpoint disabled: the receiver answered 410 Gone",
					"platform", p, "endpoint", eid, "message", msgID)
			}
		case i < len(s.cfg.Schedule):
			m.NextAttemptMs = nowMs + max(s.delay(i), res.retryAfter).Milliseconds()
			ops = append(ops, persistence.Set(persistence.WebhookDueKey(string(p), eid, m.NextAttemptMs, msgID), nil))
		default:
			m.Status, m.NextAttemptMs = StatusFailed, 0
		}
		if r.Enabled && s.cfg.DisableAfter > 0 && nowMs-r.FailingSinceMs >= s.cfg.DisableAfter.Milliseconds() {
			r.Enabled, r.DisabledReason, epChanged = false, DisabledFailing, true
			s.log.Warn("webhook endpoint disabled: every attempt failed for too long",
				"platform", p, "endpoint", eid, "failing_since", time.UnixMilli(r.FailingSinceMs).UTC(),
				"disable_after", s.cfg.DisableAfter, "last_error", res.err)
		}
	}
	ops = append(ops, persistence.Set(persistence.WebhookMessageKey(string(p), eid, msgID), encode(m)))
	if epChanged {
		r.UpdatedAtMs = nowMs
		e.rec = &r
		if s.shared == nil {
			ops = append(ops, persistence.Set(persistence.WebhookEndpointKey(string(p), eid), encode(&r)))
		}
		if !r.Enabled {
			s.publishLocked(p)
		}
	}
	done := s.submitLocked(ops)
	s.mu.Unlock()
	if err := <-done; err != nil {
		s.log.Error("record delivery attempt", "endpoint", eid, "message", msgID, "err", err)
	}
	if epChanged && s.shared != nil {
		s.shareFailure(p, eid, &r)
	}
	// Only now may the scheduler see this message again: the old due entry
	// is gone from what it scans.
	s.mu.Lock()
	delete(e.inflight, msgID)
	s.active--
	if m.Status == StatusPending {
		e.nextDue = min(e.nextDue, m.NextAttemptMs)
	}
	s.mu.Unlock()
	s.wakeScheduler()
}

// prune removes delivered and failed messages older than Retention.
func (s *Service) prune() {
	cutoff := s.clk.Now().Add(-s.cfg.Retention).UnixMilli()
	s.mu.Lock()
	var ops []persistence.Op
	for p, eps := range s.endpoints {
		for eid := range eps {
			_ = s.store.ScanPrefix(persistence.WebhookMessagesPrefix(string(p), eid), false, func(k, v []byte) bool {
				m, err := decodeMessage(v)
				if err != nil || m.CreatedAtMs >= cutoff || len(ops) >= 10_000 {
					return false // ids are time-ordered: the rest is newer
				}
				if m.Status != StatusPending {
					ops = append(ops, persistence.Delete(bytes.Clone(k)))
				}
				return true
			})
		}
	}
	if len(ops) == 0 {
		s.mu.Unlock()
		return
	}
	done := s.submitLocked(ops)
	s.mu.Unlock()
	if err := <-done; err != nil {
		s.log.Error("prune delivery log", "err", err)
	}
}
