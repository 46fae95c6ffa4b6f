package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"sync"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/dshare/dshare/discovery"
	"github.com/dshare/dshare/peer"
)

// netFlags say how far beyond the LAN a command reaches.
type netFlags struct {
	crowd             bool // a sharer: many peers at once (not a flag)
	bootstrap, relays listFlag
	lanOnly           bool
}

func addNetFlags(fs *flag.FlagSet, n *netFlags) {
	fs.Var(&n.bootstrap, "bootstrap", "join the DHT through `MULTIADDR` (repeatable; default the public libp2p bootstrap peers)")
	fs.Var(&n.relays, "relay", "reserve a slot on relay `MULTIADDR` (repeatable; default relays found through the DHT)")
	fs.BoolVar(&n.lanOnly, "lan-only", false, "stay on the local network: no DHT, relays or hole punching")
}

// node is a host plus, unless offline or LAN-only, a DHT client that
// joins in the background so that LAN discovery never waits for it.
type node struct {
	h     host.Host
	ready chan struct{} // closed once dht is set or has failed
	dht   *discovery.DHT
	err   error
	stop  context.CancelFunc // ends a DHT join still under way
}

// Close never waits for the DHT: a join under way is abandoned.
func (n *node) Close() {
	n.stop()
	<-n.ready
	if n.dht != nil {
		n.dht.Close()
	}
	n.h.Close()
}

// global reports whether the node reaches beyond the LAN.
func global(e *env, nf *netFlags) bool { return !e.offline && !nf.lanOnly }

func startNode(ctx context.Context, e *env, listen []string, nf *netFlags) (*node, error) {
	key, err := peer.LoadIdentity(e.home)
	if err != nil {
		return nil, err
	}
	cfg := peer.HostConfig{Identity: key, Offline: e.offline, LANOnly: nf.lanOnly, Crowd: nf.crowd}
	if cfg.Listen, err = parseListen(listen); err != nil {
		return nil, err
	}
	bootstrap, err := discovery.ParseAddrs(nf.bootstrap)
	if err != nil {
		return nil, usageError{"bad --bootstrap: " + err.Error()}
	}
	if cfg.Relays, err = discovery.ParseAddrs(nf.relays); err != nil {
		return nil, usageError{"bad --relay: " + err.Error()}
	}
	if (e.offline || nf.lanOnly) && (len(bootstrap) > 0 || len(cfg.Relays) > 0) {
		return nil, usageError{"--bootstrap and --relay reach beyond the LAN; drop --offline or --lan-only"}
	}
	n := &node{ready: make(chan struct{}), stop: func() {}}
	// autorelay asks for candidates only after the DHT is up.
	cfg.RelaySource = func(ctx context.Context, num int) <-chan lpeer.AddrInfo {
		select {
		case <-n.ready:
		case <-ctx.Done():
		}
		if n.dht == nil {
			c := make(chan lpeer.AddrInfo)
			close(c)
			return c
		}
		return n.dht.RelayCandidates(ctx, num)
	}
	if n.h, err = peer.NewHost(cfg); err != nil {
		return nil, err
	}
	if !global(e, nf) {
		close(n.ready)
		return n, nil
	}
	if len(bootstrap) == 0 {
		bootstrap = discovery.DefaultBootstrap()
	}
	ctx, n.stop = context.WithCancel(ctx)
	go func() {
		defer close(n.ready)
		n.dht, n.err = discovery.StartDHT(ctx, n.h, bootstrap, false)
	}()
	return n, nil
}

// explicitRelays returns the relays named on the command line: with
// --relay, and with --bootstrap, as dshare relays are bootstrap nodes too.
func explicitRelays(nf *netFlags) []lpeer.AddrInfo {
	var out []lpeer.AddrInfo
	seen := map[lpeer.ID]bool{}
	for _, l := range []listFlag{nf.relays, nf.bootstrap} {
		infos, err := discovery.ParseAddrs(l)
		if err != nil {
			continue // reported by startNode
		}
		for _, ai := range infos {
			if !seen[ai.ID] {
				seen[ai.ID] = true
				out = append(out, ai)
			}
		}
	}
	return out
}

// checkRelays says, once per relay named with --relay, whether it gave
// this receiver a slot: a relay that refuses is otherwise silent.
func checkRelays(ctx context.Context, e *env, h host.Host, nf *netFlags) {
	relays, err := discovery.ParseAddrs(nf.relays)
	if err != nil || len(relays) == 0 {
		return
	}
	go peer.CheckRelays(ctx, h, relays, func(c peer.RelayCheck) {
		if ctx.Err() != nil {
			return
		}
		f := map[string]any{"relay": c.Relay.String(), "reserved": c.Err == nil}
		if c.Err != nil {
			f["error"] = c.Err.Error()
			if re, ok := c.Err.(*peer.RelayRefusedError); ok {
				f["reason"] = re.Reason.Code()
			}
		}
		if c.Err != nil {
			fmt.Fprintf(e.stderr, "dshare: %s; peers on other networks cannot reach this receiver through it.\n", peer.EscapeText(c.Err.Error()))
		}
		e.events.emit("relay", f)
	})
}

func parseListen(listen []string) ([]ma.Multiaddr, error) {
	var out []ma.Multiaddr
	for _, s := range listen {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, usageError{fmt.Sprintf("bad --listen %q: %v", s, err)}
		}
		out = append(out, a)
	}
	return out, nil
}

// fullAddrs returns the host's addresses, each ending in /p2p/ID.
func fullAddrs(h host.Host) []string {
	var out []string
	for _, a := range h.Addrs() {
		out = append(out, a.String()+"/p2p/"+h.ID().String())
	}
	return out
}

func hasCircuit(addrs []string) bool {
	for _, a := range addrs {
		if strings.Contains(a, "/p2p-circuit") {
			return true
		}
	}
	return false
}

// reportAddrs emits an "addrs" event whenever the host's addresses change,
// and says once when the host becomes reachable through a relay.
func reportAddrs(ctx context.Context, e *env, h host.Host) {
	sub, err := h.EventBus().Subscribe(new(event.EvtLocalAddressesUpdated))
	if err != nil {
		return
	}
	var once sync.Once
	go func() {
		defer sub.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case <-sub.Out():
			}
			addrs := fullAddrs(h)
			relayed := hasCircuit(addrs)
			e.events.emit("addrs", map[string]any{"addrs": addrs, "relayed": relayed})
			if relayed {
				once.Do(func() {
					// Peers behind other NATs can now connect, and punch
					// through once our hole-punching service is up.
					punch := peer.WaitHolePunchReady(ctx, h)
					e.events.emit("reachable", map[string]any{"addrs": fullAddrs(h), "holepunch": punch})
					if !e.json {
						fmt.Fprintln(e.stderr, "Reachable from other networks through a relay.")
					}
				})
			}
		}
	}()
}

// beFindable makes a listening node findable: announced on the LAN, and,
// beyond it, reachable through relays and advertised in the DHT under its
// peer ID. what names it in messages ("this receiver"). The returned
// function ends the LAN announcement.
func beFindable(ctx context.Context, e *env, n *node, nf *netFlags, what string) (stop func()) {
	stop = func() {}
	if !e.offline {
		if s, err := discovery.Announce(n.h); err != nil {
			fmt.Fprintf(e.stderr, "dshare: LAN announcement off: %v\n", err)
		} else {
			stop = s
		}
	}
	if global(e, nf) {
		reportAddrs(ctx, e, n.h)
		checkRelays(ctx, e, n.h, nf)
		go func() {
			<-n.ready
			if n.dht != nil {
				n.dht.Advertise(ctx) // peers find us by peer ID
			} else if n.err != nil {
				e.events.emit("dht", map[string]any{"error": n.err.Error()})
				fmt.Fprintf(e.stderr, "dshare: %v; peers on other networks cannot look %s up, those on this network still can\n", n.err, what)
			}
		}()
	}
	return stop
}
