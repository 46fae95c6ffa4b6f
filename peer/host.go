package peer

import (
	"fmt"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
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
	rm, err := newResourceManager()
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
	if cfg.Offline {
		opts = append(opts, libp2p.DisableRelay())
	} else {
		opts = append(opts, libp2p.NATPortMap())
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("start libp2p host: %w", err)
	}
	return h, nil
}
