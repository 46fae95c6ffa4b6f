package peer

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"golang.org/x/time/rate"
)

// RelayConfig configures a public relay node.
type RelayConfig struct {
	Host HostConfig
	// PeerRate caps the bytes per second each peer may push through the
	// relay; 0 means no cap.
	PeerRate int
	// MaxReservations caps relay slots in total and per IP address.
	MaxReservations, MaxReservationsPerIP int
	// MaxCircuits caps relayed connections per peer.
	MaxCircuits int
}

// NewRelayHost starts a public node for a team to run on a server: a
// circuit-relay v2 service for file transfers, AutoNAT for its clients,
// and (by the caller) a DHT server. libp2p's default relay limits of two
// minutes and 128 KiB per connection are meant for signalling; this relay
// has none per connection, and caps each peer's bandwidth and
// reservations instead.
func NewRelayHost(cfg RelayConfig) (host.Host, *relay.Relay, error) {
	listen := cfg.Host.Listen
	if listen == nil {
		listen = DefaultListen(DefaultPort)
	}
	rm, err := newResourceManager()
	if err != nil {
		return nil, nil, err
	}
	h, err := libp2p.New(
		libp2p.Identity(cfg.Host.Identity),
		libp2p.ListenAddrs(listen...),
		libp2p.ResourceManager(rm),
		libp2p.UserAgent("dshare-relay"),
		libp2p.EnableNATService(),
		libp2p.EnableAutoNATv2(),
		libp2p.ForceReachabilityPublic(),
		libp2p.DisableRelay(), // it relays for others; it never needs one
	)
	if err != nil {
		rm.Close()
		return nil, nil, fmt.Errorf("start relay host: %w", err)
	}
	res := relay.DefaultResources()
	res.Limit = nil // no per-connection caps: files are large
	res.BufferSize = 64 << 10
	if cfg.MaxReservations > 0 {
		res.MaxReservations = cfg.MaxReservations
	}
	if cfg.MaxReservationsPerIP > 0 {
		res.MaxReservationsPerIP = cfg.MaxReservationsPerIP
	}
	if cfg.MaxCircuits > 0 {
		res.MaxCircuits = cfg.MaxCircuits
	}
	var rh host.Host = h
	if cfg.PeerRate > 0 {
		rh = &throttledHost{Host: h, rate: cfg.PeerRate, limits: map[peer.ID]*rate.Limiter{}}
	}
	r, err := relay.New(rh, relay.WithResources(res))
	if err != nil {
		h.Close()
		return nil, nil, fmt.Errorf("start relay service: %w", err)
	}
	return h, r, nil
}

// throttledHost hands the relay service streams whose reads are paced
// per remote peer, so that every relayed byte counts against the peer
// that sent it.
type throttledHost struct {
	host.Host
	rate   int
	mu     sync.Mutex
	limits map[peer.ID]*rate.Limiter
}

func (h *throttledHost) limiter(p peer.ID) *rate.Limiter {
	h.mu.Lock()
	defer h.mu.Unlock()
	l := h.limits[p]
	if l == nil {
		l = rate.NewLimiter(rate.Limit(h.rate), max(h.rate/4, 64<<10))
		h.limits[p] = l
		// Forget idle peers; a new limiter starts with a full bucket,
		// which is at most a quarter second's worth.
		time.AfterFunc(10*time.Minute, func() {
			h.mu.Lock()
			delete(h.limits, p)
			h.mu.Unlock()
		})
	}
	return l
}

func (h *throttledHost) wrap(s network.Stream) network.Stream {
	return &throttledStream{Stream: s, l: h.limiter(s.Conn().RemotePeer())}
}

func (h *throttledHost) SetStreamHandler(pid protocol.ID, handler network.StreamHandler) {
	h.Host.SetStreamHandler(pid, func(s network.Stream) { handler(h.wrap(s)) })
}

func (h *throttledHost) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	s, err := h.Host.NewStream(ctx, p, pids...)
	if err != nil {
		return nil, err
	}
	return h.wrap(s), nil
}

type throttledStream struct {
	network.Stream
	l *rate.Limiter
}

func (s *throttledStream) Read(p []byte) (int, error) {
	if b := s.l.Burst(); len(p) > b {
		p = p[:b]
	}
	n, err := s.Stream.Read(p)
	if n > 0 {
		_ = s.l.WaitN(context.Background(), n)
	}
	return n, err
}
