package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/dshare/dshare/discovery"
	"github.com/dshare/dshare/peer"
)

func runRelay(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "relay", "relay [--listen MULTIADDR]... [--bootstrap MULTIADDR]... [--peer-rate SIZE]")
	var listen, bootstrap listFlag
	fs.Var(&listen, "listen", "listen on `MULTIADDR` (repeatable; default all interfaces, port 4747)")
	fs.Var(&bootstrap, "bootstrap", "join other relays' DHT through `MULTIADDR` (repeatable; default none: this node starts one)")
	rate := fs.String("peer-rate", "50M", "bytes per second each peer may relay (`SIZE`; 0 for no cap)")
	maxRes := fs.Int("max-reservations", 256, "relay slots in total")
	perIP := fs.Int("max-reservations-per-ip", 8, "relay slots per IP address")
	circuits := fs.Int("max-circuits", 16, "relayed connections per peer")
	pos, err := parse(e, fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	} else if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError{fmt.Sprintf("relay takes no arguments (got %q)", pos[0])}
	}
	if e.offline {
		return usageError{"a relay exists to be reached: --offline makes no sense here"}
	}
	cfg := peer.RelayConfig{MaxReservations: *maxRes, MaxReservationsPerIP: *perIP, MaxCircuits: *circuits}
	if *rate != "0" {
		r, err := parseSize(*rate)
		if err != nil || r > 1<<40 {
			return usageError{fmt.Sprintf("bad --peer-rate %q", *rate)}
		}
		cfg.PeerRate = int(r)
	}
	key, err := peer.LoadIdentity(e.home)
	if err != nil {
		return err
	}
	cfg.Host.Identity = key
	if cfg.Host.Listen, err = parseListen(listen); err != nil {
		return err
	}
	boot, err := discovery.ParseAddrs(bootstrap)
	if err != nil {
		return usageError{"bad --bootstrap: " + err.Error()}
	}
	h, r, err := peer.NewRelayHost(cfg)
	if err != nil {
		return err
	}
	defer h.Close()
	defer r.Close()
	d, err := discovery.StartDHT(ctx, h, boot, true)
	if err != nil {
		return err
	}
	defer d.Close()

	addrs := fullAddrs(h)
	e.events.emit("listening", map[string]any{"peer": h.ID().String(), "addrs": addrs})
	if !e.json {
		fmt.Fprintf(e.stderr, "Relay and DHT bootstrap node %s. Give peers one of:\n", h.ID())
		for _, a := range addrs {
			fmt.Fprintf(e.stderr, "  --bootstrap %s --relay %s\n", a, a)
		}
	}
	<-ctx.Done()
	return nil
}
