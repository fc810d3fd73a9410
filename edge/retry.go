package edge

import (
	"context"
	"errors"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/assistiv/gateway/actors"
)

// movedRetry is the edge's own retry for requests in flight while an
// actor's ownership moves between nodes (a node joining or leaving): a
// refusal with actors.ErrMoved means the message was not processed, so it
// is sent again, with a growing pause, until the call's context ends. Any
// other answer is returned as is: a message that may have been processed
// is never sent twice here. On a single node ErrMoved never occurs and
// this costs one errors.Is per call.
type movedRetry struct{ actors.Directory }

func (r movedRetry) Ask(ctx context.Context, id actors.Identity, msg proto.Message) (proto.Message, error) {
	pause := 50 * time.Millisecond
	for {
		res, err := r.Directory.Ask(ctx, id, msg)
		if err == nil || !errors.Is(err, actors.ErrMoved) {
			return res, err
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
		pause = min(2*pause, time.Second)
	}
}
