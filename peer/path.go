package peer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/dshare/dshare/peer/engine"
)

// Paths a transfer's data can take.
const (
	PathDirect  = engine.PathDirect
	PathRelayed = engine.PathRelayed
)

// ErrRelayLimited means the only connection to a peer runs through a
// relay that limits relayed connections (as public libp2p relays do, to
// 2 minutes and 128 KiB), and hole punching did not get through.
var ErrRelayLimited = errors.New("reachable only through a relay that limits relayed connections, and hole punching failed")

// Hole punching: how long to wait for a direct connection to replace a
// relayed one before trying again, and how often to try.
const (
	DefaultPunchWait = 4 * time.Second
	punchAttempts    = 2
	// dcutrReady bounds the wait for our own hole-punching service,
	// which starts only once this host knows a public address of its own.
	dcutrReady = 10 * time.Second
)

// IsRelayed reports whether c runs through a relay.
func IsRelayed(c network.Conn) bool {
	_, err := c.RemoteMultiaddr().ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

func hasDirect(h host.Host, p peer.ID) bool {
	for _, c := range h.Network().ConnsToPeer(p) {
		if !IsRelayed(c) {
			return true
		}
	}
	return false
}

// WaitHolePunchReady waits, up to a bound, until h answers hole-punch
// requests. libp2p registers DCUtR only once the host has learned a public
// address of its own (from identify, after a connection to a public
// peer); a peer that connects over a relay before that cannot be punched
// through, and libp2p does not try again.
func WaitHolePunchReady(ctx context.Context, h host.Host) bool {
	ctx, cancel := context.WithTimeout(ctx, dcutrReady)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if slices.Contains(h.Mux().Protocols(), holepunch.Protocol) {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
}

// connect connects to target and, when the connection is relayed, gives
// hole punching the chance to replace it with a direct one. The receiver
// starts the punch when our relayed connection arrives; if none succeeds
// in time, the relayed connection is dropped and made again, which starts
// a new attempt. It fails only if the relay limits relayed connections.
//
// punchWait <= 0 starts at once over an unlimited relay, where data
// flows while the punch goes on; it moves to a direct connection when one
// appears (see the engine's worker).
func connect(ctx context.Context, h host.Host, target peer.AddrInfo, punchWait time.Duration) error {
	for attempt := 1; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, connectTimeout)
		err := h.Connect(cctx, target)
		cancel()
		if err != nil {
			if re, ok := RelayRefusal(err); ok {
				// Say why in one sentence, not libp2p's list of dials.
				return fmt.Errorf("connect to %s: %w", target.ID, re)
			}
			return fmt.Errorf("connect to %s: %w", target.ID, err)
		}
		wait := punchWait
		if wait <= 0 {
			if unlimited(h, target.ID) {
				return nil
			}
			wait = DefaultPunchWait // a limited relay cannot carry data meanwhile
		}
		if hasDirect(h, target.ID) || waitDirect(ctx, h, target.ID, wait) {
			return nil
		}
		if attempt == punchAttempts {
			break
		}
		_ = h.Network().ClosePeer(target.ID)
	}
	if unlimited(h, target.ID) {
		return nil // an unlimited relay carries the transfer
	}
	return fmt.Errorf("%s: %w", target.ID, ErrRelayLimited)
}

// unlimited reports whether some connection to p can carry a transfer:
// libp2p marks connections through relays with per-connection caps as
// limited and opens no streams on them.
func unlimited(h host.Host, p peer.ID) bool {
	for _, c := range h.Network().ConnsToPeer(p) {
		if !c.Stat().Limited {
			return true
		}
	}
	return false
}

func waitDirect(ctx context.Context, h host.Host, p peer.ID, d time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if hasDirect(h, p) {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
}
