package peer

import (
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"golang.org/x/time/rate"

	"github.com/dshare/dshare/peer/engine"
	"github.com/dshare/dshare/peer/source"
	"github.com/dshare/dshare/wire"
)

// GetProtocolID is the protocol of gets: one stream per get, from the
// getter to the sharer. The data comes back as a push on ProtocolID.
const GetProtocolID protocol.ID = "/dshare/get/1"

// Share events, re-exported for the CLI.
type (
	ShareEvent     = engine.ShareEvent
	ShareEventKind = engine.ShareEventKind
)

const (
	ShareListed  = engine.ShareListed
	ShareQueued  = engine.ShareQueued
	ShareStarted = engine.ShareStarted
	ShareDone    = engine.ShareDone
	ShareFailed  = engine.ShareFailed
	ShareRefused = engine.ShareRefused
)

// Sharer serves Dir, read-only, to getters on a libp2p host; see
// engine.Sharer for the queue and its order.
type Sharer struct {
	Host   host.Host
	Dir    string
	Secret []byte
	// Allow admits peers without the secret (--from).
	Allow     func(peer.ID) bool
	MaxActive int
	// Rate and PerPeerRate bound the bytes per second sent to all getters
	// together and to each one; 0 is no bound.
	Rate, PerPeerRate float64
	Notify            func(ShareEvent)

	mu     sync.Mutex
	engine *engine.Sharer
}

// ShareStatus is what a sharer is doing now; see Sharer.Status.
type (
	ShareStatus = engine.ShareStatus
	ActiveGet   = engine.ActiveGet
	QueuedGet   = engine.QueuedGet
)

// Status reports the gets being served and how many wait; nothing before
// Start.
func (s *Sharer) Status() ShareStatus {
	s.mu.Lock()
	e := s.engine
	s.mu.Unlock()
	if e == nil {
		return ShareStatus{}
	}
	return e.Status()
}

// Start registers the sharer on its host: once it returns, gets are
// answered, until ctx ends. Serve calls it if it was not called.
func (s *Sharer) Start(ctx context.Context) error {
	s.mu.Lock()
	started := s.engine != nil
	s.mu.Unlock()
	if started {
		return nil
	}
	root, err := os.OpenRoot(s.Dir)
	if err != nil {
		return err
	}
	context.AfterFunc(ctx, func() { root.Close() })
	e := &engine.Sharer{Root: root, Secret: s.Secret, MaxActive: s.MaxActive, Notify: s.Notify,
		Send: func(ctx context.Context, p string, m *source.Manifest, opts engine.SendOptions) (*engine.Result, error) {
			id, err := peer.Decode(p)
			if err != nil {
				return nil, err
			}
			return Send(ctx, s.Host, peer.AddrInfo{ID: id}, m, 0, opts)
		}}
	if s.Allow != nil {
		e.Allow = func(p string) bool { id, err := peer.Decode(p); return err == nil && s.Allow(id) }
	}
	if s.Rate > 0 || s.PerPeerRate > 0 {
		e.Pace = newPacer(s.Rate, s.PerPeerRate).wait
	}
	s.mu.Lock()
	s.engine = e
	s.mu.Unlock()
	// Get streams stay out of the dshare service's limits: they are
	// bounded by the protocol's own (rcmgr.go) and the sharer's queue.
	s.Host.SetStreamHandler(GetProtocolID, func(st network.Stream) {
		// A getter waiting in the queue keeps its connection: libp2p's
		// connection manager would otherwise trim it, and its place.
		p := st.Conn().RemotePeer()
		tag := fmt.Sprintf("dshare-get-%p", st)
		s.Host.ConnManager().Protect(p, tag)
		defer s.Host.ConnManager().Unprotect(p, tag)
		e.Handle(ctx, stream{st}, p.String())
	})
	return nil
}

// Serve answers gets until ctx ends.
func (s *Sharer) Serve(ctx context.Context) error {
	if err := s.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	s.Host.RemoveStreamHandler(GetProtocolID)
	return nil
}

// pacer holds sends to a global rate and a rate per peer.
type pacer struct {
	all     *rate.Limiter // nil: no global bound
	perPeer rate.Limit    // 0: no bound per peer

	mu    sync.Mutex
	peers map[string]*rate.Limiter
}

// paceBurst is the most a limiter lets through at once; larger writes
// wait in pieces.
const paceBurst = 256 << 10

func newPacer(all, perPeer float64) *pacer {
	p := &pacer{perPeer: rate.Limit(perPeer), peers: map[string]*rate.Limiter{}}
	if all > 0 {
		p.all = rate.NewLimiter(rate.Limit(all), paceBurst)
	}
	return p
}

func (p *pacer) wait(ctx context.Context, peerID string, n int) error {
	var own *rate.Limiter
	if p.perPeer > 0 {
		p.mu.Lock()
		own = p.peers[peerID]
		if own == nil {
			if len(p.peers) >= 1<<16 {
				clear(p.peers) // bounded: a crowd of identities forgets
			}
			own = rate.NewLimiter(p.perPeer, paceBurst)
			p.peers[peerID] = own
		}
		p.mu.Unlock()
	}
	for n > 0 {
		k := min(n, paceBurst)
		if own != nil {
			if err := own.WaitN(ctx, k); err != nil {
				return err
			}
		}
		if p.all != nil {
			if err := p.all.WaitN(ctx, k); err != nil {
				return err
			}
		}
		n -= k
	}
	return nil
}

// Get asks target for what g names and waits until it has all been sent
// to this host's receiver, which must serve ProtocolID for target.
func Get(ctx context.Context, h host.Host, target peer.AddrInfo, g *wire.Get, onSleep func(pos int), onStart func()) error {
	if err := connect(ctx, h, target, 0); err != nil {
		return err
	}
	st, err := h.NewStream(ctx, target.ID, GetProtocolID)
	if err != nil {
		return err
	}
	return engine.Get(ctx, stream{st}, g, onSleep, onStart)
}

// List asks target for the entries below g's paths.
func List(ctx context.Context, h host.Host, target peer.AddrInfo, g *wire.Get) ([]wire.Entry, error) {
	if err := connect(ctx, h, target, 0); err != nil {
		return nil, err
	}
	st, err := h.NewStream(ctx, target.ID, GetProtocolID)
	if err != nil {
		return nil, err
	}
	return engine.List(ctx, stream{st}, g)
}
