package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/internal/pb"
	"github.com/assistiv/gateway/oauthconn"
	"github.com/assistiv/gateway/skills"
	"github.com/assistiv/gateway/webhooks"
)

// TopicWebhooks is the topic of webhook endpoint changes ([Shared.Announce]).
const TopicWebhooks = "webhooks"

// topicWebhookLog is the topic of delivery log queries ([Shared.Query]).
const topicWebhookLog = "webhooks.log"

// ShareWebhooks makes svc one of the cluster's webhook services: its
// endpoints live in s, a change on any node is announced to the others,
// which reload the platform's endpoints, and each reloads them all every
// resync (webhooks.Sharing.Resync; 0: the default). Call it before
// svc.Start.
func (s *Shared) ShareWebhooks(svc *webhooks.Service, resync time.Duration) error {
	sh := webhooks.Sharing{
		Resync:  resync,
		Records: s,
		Announce: func(ctx context.Context, p ids.PlatformID) error {
			return s.Announce(ctx, TopicWebhooks, string(p))
		},
		PlatformExists: s.PlatformExists,
		AskLog: func(ctx context.Context, q webhooks.LogQuery) ([]webhooks.LogAnswer, error) {
			body, err := json.Marshal(q)
			if err != nil {
				return nil, err
			}
			res, qerr := s.Query(ctx, topicWebhookLog, body)
			out := make([]webhooks.LogAnswer, 0, len(res))
			for _, b := range res {
				var a webhooks.LogAnswer
				if err := json.Unmarshal(b, &a); err != nil {
					return nil, fmt.Errorf("cluster: a webhook log answer: %w", err)
				}
				out = append(out, a)
			}
			return out, qerr
		},
	}
	if err := svc.Share(sh); err != nil {
		return err
	}
	s.HandleQuery(topicWebhookLog, func(body []byte) ([]byte, error) {
		var q webhooks.LogQuery
		if err := json.Unmarshal(body, &q); err != nil {
			return nil, err
		}
		a, err := svc.AnswerLog(q)
		if err != nil {
			return nil, err
		}
		return json.Marshal(a)
	})
	s.Watch(TopicWebhooks, func(p string) {
		if p == "" {
			return
		}
		if err := svc.Reload(ids.PlatformID(p)); err != nil && !errors.Is(err, webhooks.ErrClosed) {
			s.log.Warn("reloading a platform's webhook endpoints on another node's change", "platform", p, "err", err)
		}
	})
	return nil
}

// PlatformExists reports whether some node holds platform p's record (a
// fan-out of [pb.PlatformQuery]). It fails only when no node that answered
// has it and some node did not answer.
func (s *Shared) PlatformExists(ctx context.Context, p ids.PlatformID) (bool, error) {
	if s.peers == nil {
		return false, errors.New("cluster: PlatformExists needs peers")
	}
	res, err := s.peers.FanOut(ctx, &pb.PlatformQuery{PlatformId: string(p)})
	for _, m := range res {
		if a, ok := m.(*pb.PlatformAnswer); ok && a.Platform != nil {
			return true, nil
		}
	}
	if err != nil {
		return false, err
	}
	return false, nil
}

// The stores Shared stands in for, in the packages that use it (the
// dashboard's Records is the same set plus CommitUntracked; the dashboard
// sits above the edge, which this package does not import).
var (
	_ webhooks.EndpointRecords = (*Shared)(nil)
	_ skills.Records           = (*Shared)(nil)
	_ oauthconn.Records        = (*Shared)(nil)
)
