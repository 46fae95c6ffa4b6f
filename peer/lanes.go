package peer

import (
	"context"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/transport"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/multiformats/go-multistream"

	"github.com/dshare/dshare/peer/engine"
	"github.com/dshare/dshare/wire"
)

// MaxLanes bounds the QUIC connections one send spreads its data over.
const MaxLanes = 16

// lanes are extra QUIC connections to the receiver for data streams.
// quic-go's congestion control is per connection, and on a lossy path one
// connection's window collapses at every loss: several connections, each
// with its own window, keep the path full. They are dialed by the host's
// own QUIC transport, so they are authenticated as this peer by libp2p's
// TLS handshake and leave from the host's UDP socket, through the same
// NAT mapping as the first connection.
type lanes struct {
	h      host.Host
	target peer.ID
	want   int // lanes to use, the host's own connection included

	mu       sync.Mutex
	conns    []*lane
	hostOpen int  // data streams open on the host's own connection
	failed   bool // dialing a lane failed: use the host's connection only
}

type lane struct {
	c    transport.CapableConn
	open int // data streams open on it
}

// direct returns the address of the host's direct QUIC connection to the
// target, where lanes can go; nil if there is none.
func (l *lanes) direct() ma.Multiaddr {
	for _, c := range l.h.Network().ConnsToPeer(l.target) {
		if IsRelayed(c) {
			continue
		}
		a := c.RemoteMultiaddr()
		if _, err := a.ValueForProtocol(ma.P_QUIC_V1); err == nil {
			return a
		}
	}
	return nil
}

// dial adds lanes until there are want-1 of them, in parallel.
func (l *lanes) dial(ctx context.Context, addr ma.Multiaddr) {
	sw, ok := l.h.Network().(*swarm.Swarm)
	if !ok {
		l.failed = true
		return
	}
	tpt := sw.TransportForDialing(addr)
	if tpt == nil {
		l.failed = true
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	for range l.want - 1 - len(l.conns) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := tpt.Dial(ctx, addr, l.target)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				l.failed = true
				return
			}
			l.conns = append(l.conns, &lane{c: c})
			// Nothing is served on a lane: the receiver's own streams
			// (identify) are refused at once rather than left waiting.
			go func() {
				for {
					s, err := c.AcceptStream()
					if err != nil {
						return
					}
					_ = s.Reset()
				}
			}()
		}()
	}
	wg.Wait()
}

// open opens a data stream on the lane with the fewest, or reports false
// if the host's own connection should carry it.
func (l *lanes) open(ctx context.Context) (network.MuxedStream, *lane, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.failed && len(l.conns) < l.want-1 {
		addr := l.direct()
		if addr == nil {
			return nil, nil, false, nil // relayed, or TCP: no lanes
		}
		l.dial(ctx, addr)
	}
	// The host's connection counts as one lane: it carries a share too.
	var best *lane
	for _, ln := range l.conns {
		if ln.c.IsClosed() {
			continue
		}
		if best == nil || ln.open < best.open {
			best = ln
		}
	}
	if best == nil || best.open >= l.hostShare() {
		return nil, nil, false, nil
	}
	s, err := best.c.OpenStream(ctx)
	if err != nil {
		return nil, nil, false, err
	}
	best.open++
	return s, best, true, nil
}

// hostShare bounds the streams of the lane picked: a lane gets a stream
// while it has no more than the host's own connection, which gets the
// next one otherwise, so that all carry an even share.
func (l *lanes) hostShare() int { return l.hostOpen + 1 }

func (l *lanes) release(ln *lane) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ln == nil {
		l.hostOpen--
		return
	}
	ln.open--
}

// close closes every lane.
func (l *lanes) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ln := range l.conns {
		_ = ln.c.Close()
	}
	l.conns, l.failed = nil, false
}

// laneStream is a data stream on a lane.
type laneStream struct {
	network.MuxedStream
	l    *lanes
	ln   *lane
	once sync.Once
}

func (s *laneStream) done() { s.once.Do(func() { s.l.release(s.ln) }) }

func (s *laneStream) Read(p []byte) (int, error) {
	n, err := s.MuxedStream.Read(p)
	return n, resetErr(err)
}

func (s *laneStream) Write(p []byte) (int, error) {
	n, err := s.MuxedStream.Write(p)
	return n, resetErr(err)
}

func (s *laneStream) Close() error {
	s.done()
	return s.MuxedStream.Close()
}

func (s *laneStream) Reset(code wire.Code) error {
	s.done()
	return s.MuxedStream.ResetWithError(network.StreamErrorCode(code))
}

// OpenData opens a data stream: on a lane while lanes are wanted and can
// be had, else on the host's connection.
func (l *link) OpenData(ctx context.Context) (engine.Stream, error) {
	if l.lanes == nil {
		return l.Open(ctx)
	}
	ms, ln, ok, err := l.lanes.open(ctx)
	if err == nil && ok {
		if err := multistream.SelectProtoOrFail(ProtocolID, ms); err != nil {
			_ = ms.Reset()
			l.lanes.release(ln)
			return nil, err
		}
		return &laneStream{MuxedStream: ms, l: l.lanes, ln: ln}, nil
	}
	if err != nil {
		return nil, err
	}
	s, err := l.Open(ctx)
	if err != nil {
		return nil, err
	}
	l.lanes.mu.Lock()
	l.lanes.hostOpen++
	l.lanes.mu.Unlock()
	return &hostLaneStream{stream: s.(stream), l: l.lanes}, nil
}

// hostLaneStream is a data stream on the host's own connection, counted
// as that lane's.
type hostLaneStream struct {
	stream
	l    *lanes
	once sync.Once
}

func (s *hostLaneStream) done() { s.once.Do(func() { s.l.release(nil) }) }

func (s *hostLaneStream) Close() error {
	s.done()
	return s.stream.Close()
}

func (s *hostLaneStream) Reset(code wire.Code) error {
	s.done()
	return s.stream.Reset(code)
}
