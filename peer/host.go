package peer

import (
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/autorelay"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
)

// DefaultPort is the UDP and TCP port a receiver listens on by default.
const DefaultPort = 4747

// HostConfig configures a libp2p host for dshare.
type HostConfig struct {
	Identity crypto.PrivKey
	// Listen addresses; nil means all interfaces on DefaultPort, falling
	// back to a random port if it is taken. Empty non-nil means none.
	Listen []ma.Multiaddr
	// Offline turns off everything that talks to anyone not dialed
	// explicitly: relays, NAT port mapping, AutoNAT.
	Offline bool
	// LANOnly keeps to the local network: no relays and no hole punching.
	LANOnly bool
	// Relays are static circuit-relay v2 relays to reserve a slot on, so
	// that peers behind other NATs can reach this host. Without them,
	// RelaySource (if set) supplies candidates, e.g. from the DHT.
	Relays      []peer.AddrInfo
	RelaySource autorelay.PeerSource
	// Crowd raises the limits on inbound connections and streams for a
	// host many peers come to at once (a sharer): its own queue bounds
	// what they cost.
	Crowd bool
}

// DefaultListen returns QUIC-v1 and TCP on all IPv4 and IPv6 interfaces.
func DefaultListen(port int) []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, s := range []string{
		"/ip4/0.0.0.0/udp/%d/quic-v1", "/ip6/::/udp/%d/quic-v1",
		"/ip4/0.0.0.0/tcp/%d", "/ip6/::/tcp/%d",
	} {
		out = append(out, ma.StringCast(fmt.Sprintf(s, port)))
	}
	return out
}

// NewHost starts a libp2p host with QUIC-v1 as the main transport and TCP
// as the fallback.
func NewHost(cfg HostConfig) (host.Host, error) {
	listen := cfg.Listen
	if listen == nil {
		h, err := newHost(cfg, DefaultListen(DefaultPort))
		if err == nil {
			return h, nil
		}
		listen = DefaultListen(0)
	}
	return newHost(cfg, listen)
}

func newHost(cfg HostConfig, listen []ma.Multiaddr) (host.Host, error) {
	rm, err := newResourceManager(cfg.Crowd)
	if err != nil {
		return nil, fmt.Errorf("resource manager: %w", err)
	}
	opts := []libp2p.Option{
		libp2p.ResourceManager(rm),
		libp2p.Identity(cfg.Identity),
		libp2p.ListenAddrs(listen...),
		libp2p.NoTransports,
		libp2p.Transport(quic.NewTransport),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.UserAgent("dshare"),
	}
	switch {
	case cfg.Offline:
		opts = append(opts, libp2p.DisableRelay())
	case cfg.LANOnly:
		opts = append(opts, libp2p.DisableRelay(), libp2p.NATPortMap())
	default:
		// AutoNAT v2 checks each address on its own, and until one is
		// confirmed reachable the host advertises its relay addresses; with
		// v1 alone they wait for a verdict on the whole host.
		opts = append(opts, libp2p.NATPortMap(), libp2p.EnableHolePunching(), libp2p.EnableAutoNATv2())
		ar := []autorelay.Option{autorelay.WithBootDelay(0), autorelay.WithBackoff(10 * time.Second)}
		if len(cfg.Relays) > 0 {
			opts = append(opts, libp2p.EnableAutoRelayWithStaticRelays(cfg.Relays, ar...))
		} else if cfg.RelaySource != nil {
			opts = append(opts, libp2p.EnableAutoRelayWithPeerSource(cfg.RelaySource, ar...))
		}
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		rm.Close()
		return nil, fmt.Errorf("start libp2p host: %w", err)
	}
	if len(cfg.Relays) > 0 && !cfg.Offline && !cfg.LANOnly {
		reserveNow(h)
	}
	return h, nil
}

// reserveNow starts the relay reservations at once. libp2p reserves only
// once AutoNAT reports this host unreachable, and AutoNAT waits 15 s
// before its first probe; a receiver given --relay would be unreachable
// from other networks all that time. Reporting reachability "unknown",
// which it is, starts autorelay; AutoNAT's own verdict follows later and
// stops it if the host turns out to be public.
func reserveNow(h host.Host) {
	em, err := h.EventBus().Emitter(new(event.EvtLocalReachabilityChanged), eventbus.Stateful)
	if err != nil {
		return
	}
	_ = em.Emit(event.EvtLocalReachabilityChanged{Reachability: network.ReachabilityUnknown})
	_ = em.Close()
}
