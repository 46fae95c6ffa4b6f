package peer

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/dshare/dshare/peer/engine"
)

// Send offers m to target over h and sends it; see engine.Send. punchWait
// is how long a relayed connection waits for hole punching to give a
// direct one, per attempt (0: DefaultPunchWait; negative: not at all).
func Send(ctx context.Context, h host.Host, target peer.AddrInfo, m *Manifest, punchWait time.Duration, opts SendOptions) (*Result, error) {
	if punchWait == 0 {
		punchWait = DefaultPunchWait
	}
	l := &link{h: h, target: target, punchWait: punchWait}
	if opts.Lanes != 1 {
		l.lanes = newLanes(h, target.ID, opts.Lanes)
		defer l.lanes.close()
		if !l.lanes.auto {
			opts.Streams = max(opts.Streams, l.lanes.max)
		}
	}
	return engine.Send(ctx, l, m, opts)
}

// link is the engine's way to a receiver through a libp2p host.
type link struct {
	h         host.Host
	target    peer.AddrInfo
	punchWait time.Duration
	lanes     *lanes // nil: every stream on the host's connection
}

func (l *link) Connect(ctx context.Context) error {
	return connect(ctx, l.h, l.target, l.punchWait)
}

func (l *link) Open(ctx context.Context) (engine.Stream, error) {
	s, err := l.h.NewStream(ctx, l.target.ID, ProtocolID)
	if err != nil {
		return nil, err
	}
	_ = s.Scope().SetService(ServiceName)
	return stream{s}, nil
}

func (l *link) Relayed(s engine.Stream) bool {
	switch s := s.(type) {
	case stream:
		return IsRelayed(s.Conn())
	case *hostLaneStream:
		return IsRelayed(s.Conn())
	}
	return false // a lane is direct
}

func (l *link) DirectNow() bool { return hasDirect(l.h, l.target.ID) }

func (l *link) Drop() {
	if l.lanes != nil {
		l.lanes.close()
	}
	_ = l.h.Network().ClosePeer(l.target.ID)
}

var _ engine.Stream = stream{}
