package peer

import (
	"context"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/dshare/dshare/peer/engine"
	"github.com/dshare/dshare/wire"
)

// Send offers m to target over h and sends it; see engine.Send. punchWait
// is how long a connection through an unlimited relay waits for hole
// punching before data flows over it (0 or less: not at all; the data
// moves to the direct path when a punch succeeds). A limited relay
// cannot carry data, so there the wait is always DefaultPunchWait.
func Send(ctx context.Context, h host.Host, target peer.AddrInfo, m *Manifest, punchWait time.Duration, opts SendOptions) (*Result, error) {
	l := &link{h: h, target: target, punchWait: punchWait}
	if opts.Lanes != 1 {
		l.lanes = newLanes(h, target.ID, opts.Lanes)
		defer l.lanes.close()
		if !l.lanes.auto {
			opts.Streams = max(opts.Streams, l.lanes.max)
		}
	}
	res, err := engine.Send(ctx, l, m, opts)
	if res != nil {
		res.Link = linkStats(h, target.ID, l.lanes)
	}
	return res, err
}

// link is the engine's way to a receiver through a libp2p host.
type link struct {
	h         host.Host
	target    peer.AddrInfo
	punchWait time.Duration
	lanes     *lanes // nil: every stream on the host's connection

	mu         sync.Mutex
	relayOpen  int           // data streams open over a relay
	relayFreed chan struct{} // closed and replaced when one of them closes
}

// relayStreams bounds the data streams over a relay while no direct path
// exists. One relayed connection gains nothing from more, and each holds
// a chunk in flight that must still cross the relay, however slow, after
// a hole punch has moved the rest of the transfer to the direct path.
const relayStreams = 2

// relaySlot waits until a data stream may be opened: at once when the
// path is direct, else when fewer than relayStreams streams are open over
// the relay. It reports whether the caller took a relay slot.
func (l *link) relaySlot(ctx context.Context) (bool, error) {
	tick := time.NewTicker(50 * time.Millisecond) // a punch shows up only as a new connection
	defer tick.Stop()
	for {
		if hasDirect(l.h, l.target.ID) || len(l.h.Network().ConnsToPeer(l.target.ID)) == 0 {
			return false, nil
		}
		l.mu.Lock()
		if l.relayFreed == nil {
			l.relayFreed = make(chan struct{})
		}
		freed := l.relayFreed
		if l.relayOpen < relayStreams {
			l.relayOpen++
			l.mu.Unlock()
			return true, nil
		}
		l.mu.Unlock()
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-freed:
		case <-tick.C:
		}
	}
}

func (l *link) relayRelease() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.relayOpen--
	if l.relayFreed != nil {
		close(l.relayFreed)
		l.relayFreed = nil
	}
}

// relayedStream is a data stream over a relay, holding a relay slot.
type relayedStream struct {
	engine.Stream
	l    *link
	once sync.Once
}

func (s *relayedStream) done() { s.once.Do(s.l.relayRelease) }

func (s *relayedStream) Close() error {
	s.done()
	return s.Stream.Close()
}

func (s *relayedStream) Reset(code wire.Code) error {
	s.done()
	return s.Stream.Reset(code)
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
	case *relayedStream:
		return true
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
