package peer

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	ma "github.com/multiformats/go-multiaddr"
)

func loopbackHost(t *testing.T, opts ...libp2p.Option) host.Host {
	t.Helper()
	h, err := libp2p.New(append([]libp2p.Option{libp2p.ListenAddrStrings("/ip4/127.0.0.1/udp/0/quic-v1")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// relayedPair returns a sender and the receiver's address through a relay
// on loopback; the receiver is known to the sender by that address only.
func relayedPair(t *testing.T, relayOpts ...relay.Option) (host.Host, peer.AddrInfo) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r := loopbackHost(t, libp2p.DisableRelay())
	svc, err := relay.New(r, relayOpts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	rInfo := peer.AddrInfo{ID: r.ID(), Addrs: r.Addrs()}
	// The receiver listens on nothing, so the relay is its only way in,
	// as behind a NAT.
	recv, err := libp2p.New(libp2p.ListenAddrStrings("/p2p-circuit"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { recv.Close() })
	if err := recv.Connect(ctx, rInfo); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Reserve(ctx, recv, rInfo); err != nil {
		t.Fatal(err)
	}
	circuit := ma.StringCast("/ip4/127.0.0.1/udp/" + port(t, r) + "/quic-v1/p2p/" + r.ID().String() + "/p2p-circuit")
	return loopbackHost(t), peer.AddrInfo{ID: recv.ID(), Addrs: []ma.Multiaddr{circuit}}
}

func port(t *testing.T, h host.Host) string {
	p, err := h.Addrs()[0].ValueForProtocol(ma.P_UDP)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A relay with libp2p's default limits (2 minutes, 128 KiB per relayed
// connection) cannot carry a file: without a direct connection, connect
// must say so instead of starting a transfer that dies.
func TestConnectThroughLimitedRelay(t *testing.T) {
	sender, target := relayedPair(t)
	err := connect(context.Background(), sender, target, 100*time.Millisecond)
	if !errors.Is(err, ErrRelayLimited) {
		t.Fatalf("connect = %v, want ErrRelayLimited", err)
	}
}

// A relay without per-connection limits, like dshare's own, carries the
// transfer when no hole can be punched.
func TestConnectThroughUnlimitedRelay(t *testing.T) {
	sender, target := relayedPair(t, relay.WithInfiniteLimits())
	if err := connect(context.Background(), sender, target, 100*time.Millisecond); err != nil {
		t.Fatalf("connect = %v", err)
	}
	conns := sender.Network().ConnsToPeer(target.ID)
	if len(conns) == 0 || !IsRelayed(conns[0]) || conns[0].Stat().Limited {
		t.Fatalf("want one unlimited relayed connection, got %v", conns)
	}
}
