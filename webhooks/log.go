package webhooks

import (
	"context"
	"errors"
	"sort"

	"github.com/assistiv/gateway/internal/ids"
)

// LogQuery asks one node about its part of an endpoint's delivery log: a
// shared service's messages stay on the node that delivered them, so a
// read of the log goes to every node ([Sharing.AskLog]) and the answers
// are merged. Exactly one of the three is asked: a page (Query), one
// message (MessageID), or a replay (MessageID with Replay).
type LogQuery struct {
	Platform  string       `json:"platform"`
	Endpoint  string       `json:"endpoint"`
	Query     MessageQuery `json:"query"`
	MessageID string       `json:"message_id,omitempty"`
	Replay    bool         `json:"replay,omitempty"`
}

// LogAnswer is one node's answer to a [LogQuery]. Found is false when
// the node holds no such message; Conflict carries a replay's refusal.
type LogAnswer struct {
	Messages []Message   `json:"messages,omitempty"`
	More     bool        `json:"more,omitempty"`
	Found    bool        `json:"found,omitempty"`
	Conflict *FieldError `json:"conflict,omitempty"`
}

// AnswerLog answers q from this node's delivery log. The endpoint is
// checked by the asking node.
func (s *Service) AnswerLog(q LogQuery) (LogAnswer, error) {
	p := ids.PlatformID(q.Platform)
	switch {
	case q.MessageID != "" && q.Replay:
		m, err := s.replayHere(p, q.Endpoint, q.MessageID)
		var fe *FieldError
		switch {
		case errors.Is(err, ErrNotFound):
			return LogAnswer{}, nil
		case errors.As(err, &fe):
			return LogAnswer{Found: true, Conflict: &FieldError{Code: fe.Code, Message: fe.Message}}, nil
		case err != nil:
			return LogAnswer{}, err
		}
		return LogAnswer{Found: true, Messages: []Message{m}}, nil
	case q.MessageID != "":
		m, err := s.getMessage(p, q.Endpoint, q.MessageID)
		if errors.Is(err, ErrNotFound) {
			return LogAnswer{}, nil
		}
		if err != nil {
			return LogAnswer{}, err
		}
		return LogAnswer{Found: true, Messages: []Message{messageView(m)}}, nil
	}
	page, err := s.messagesHere(p, q.Endpoint, q.Query)
	if err != nil {
		return LogAnswer{}, err
	}
	return LogAnswer{Messages: page.Messages, More: page.Next != ""}, nil
}

// askLog sends q to every node (shared service only).
func (s *Service) askLog(q LogQuery) ([]LogAnswer, error) {
	ctx, cancel := context.WithTimeout(s.ctx, 2*announceTimeout)
	defer cancel()
	return s.shared.AskLog(ctx, q)
}

// mergePages merges the nodes' pages of one log query, newest first.
func mergePages(answers []LogAnswer, limit int) MessagePage {
	page := MessagePage{Messages: []Message{}}
	more := false
	for _, a := range answers {
		page.Messages = append(page.Messages, a.Messages...)
		more = more || a.More
	}
	sort.Slice(page.Messages, func(i, j int) bool { return page.Messages[i].ID > page.Messages[j].ID })
	if len(page.Messages) > limit {
		page.Messages, more = page.Messages[:limit], true
	}
	if more && len(page.Messages) > 0 {
		page.Next = page.Messages[len(page.Messages)-1].ID
	}
	return page
}

// foundIn returns the answer that holds the message, if any.
func foundIn(answers []LogAnswer) (LogAnswer, bool) {
	for _, a := range answers {
		if a.Found {
			return a, true
		}
	}
	return LogAnswer{}, false
}
