package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/dshare/dshare/discovery"
	"github.com/dshare/dshare/peer"
)

// relayStatsEvery is how often a relay on a terminal prints what it did.
const relayStatsEvery = time.Minute

func runRelay(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "relay", "relay (--allow PEER... | --allow-file FILE | --open) [--listen MULTIADDR]... [--bootstrap MULTIADDR]... [--peer-rate SIZE] [--max-rate SIZE] [--peer-quota SIZE]")
	var listen, bootstrap, allow listFlag
	fs.Var(&listen, "listen", "listen on `MULTIADDR` (repeatable; default all interfaces, port 4747)")
	fs.Var(&bootstrap, "bootstrap", "join other relays' DHT through `MULTIADDR` (repeatable; default none: this node starts one)")
	fs.Var(&allow, "allow", "let `PEER` reserve a slot, so that others can reach it through this relay (repeatable)")
	allowFile := fs.String("allow-file", "", "let the peers listed in `FILE` reserve a slot: one peer ID per line, # for comments; read again on SIGHUP")
	open := fs.Bool("open", false, "let any peer reserve a slot (a public relay, at your bandwidth's cost)")
	rate := fs.String("peer-rate", "50M", "bytes per second each peer may relay (`SIZE`; 0 for no cap)")
	maxRate := fs.String("max-rate", "0", "bytes per second all peers together may relay (`SIZE`; 0 for no cap)")
	quota := fs.String("peer-quota", "0", "bytes each peer may relay per day (`SIZE`; 0 for no cap)")
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
	listed := len(allow) > 0 || *allowFile != ""
	if !listed && !*open {
		return usageError{"a relay serves only the peers it is told to: pass --allow PEER or --allow-file FILE, or --open to serve anyone"}
	}
	if listed && *open {
		return usageError{"--open serves anyone, so it cannot go with --allow or --allow-file; drop one"}
	}
	cfg := peer.RelayConfig{MaxReservations: *maxRes, MaxReservationsPerIP: *perIP, MaxCircuits: *circuits}
	for _, f := range []struct {
		name, val string
		to        *int
	}{{"--peer-rate", *rate, &cfg.PeerRate}, {"--max-rate", *maxRate, &cfg.MaxRate}} {
		n, err := parseLimit(f.name, f.val, 1<<40)
		if err != nil {
			return err
		}
		*f.to = int(n)
	}
	if cfg.PeerQuota, err = parseLimit("--peer-quota", *quota, 1<<62); err != nil {
		return err
	}
	if listed {
		ids, err := parsePeerList("--allow", allow)
		if err != nil {
			return err
		}
		if cfg.Allow, err = peer.NewAllowList(ids, *allowFile); err != nil {
			return err
		}
	}
	unlock, err := lockHome(e.home)
	if err != nil {
		return err
	}
	defer unlock()
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
	cfg.OnEvent = func(ev peer.RelayEvent) { relayEvent(e, ev) }
	r, err := peer.NewRelayHost(cfg)
	if err != nil {
		return err
	}
	defer r.Close()
	h := r.Host
	d, err := discovery.StartDHT(ctx, h, boot, true)
	if err != nil {
		return err
	}
	defer d.Close()

	addrs := fullAddrs(h)
	fields := map[string]any{"peer": h.ID().String(), "addrs": addrs, "open": *open}
	if cfg.Allow != nil {
		fields["allowed"] = cfg.Allow.Len()
	}
	if *open {
		fmt.Fprintln(e.stderr, "dshare: warning: --open lets any peer that finds this relay reserve a slot and relay through it, on your bandwidth.")
	}
	e.events.emit("listening", fields)
	if !e.json {
		fmt.Fprintf(e.stderr, "Relay and DHT bootstrap node %s. Give peers one of:\n", h.ID())
		for _, a := range addrs {
			fmt.Fprintf(e.stderr, "  --bootstrap %s --relay %s\n", a, a)
		}
		if cfg.Allow != nil {
			fmt.Fprintf(e.stderr, "Serving %d allowed peers.\n", cfg.Allow.Len())
		}
	}
	hup := make(chan os.Signal, 1)
	if *allowFile != "" {
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
	}
	var tick <-chan time.Time
	if !e.json && isTerminal(e.stderr) {
		t := time.NewTicker(relayStatsEvery)
		defer t.Stop()
		tick = t.C
	}
	var last peer.RelayStats
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
			n, err := r.Reload()
			if err != nil {
				e.events.emit("reload", map[string]any{"allowed": n, "error": err.Error()})
				fmt.Fprintf(e.stderr, "dshare: kept the allow-list of %d peers: %s\n", n, peer.EscapeText(err.Error()))
				continue
			}
			e.events.emit("reload", map[string]any{"allowed": n})
			if !e.json {
				fmt.Fprintf(e.stderr, "Allow-list read again: %d peers.\n", n)
			}
		case <-tick:
			st := r.Stats()
			fmt.Fprintf(e.stderr, "%s  %d circuits open, %d opened, %s relayed in the last minute (%s in all), %d reservations and %d refusals in the last minute\n",
				time.Now().Format("15:04"), st.CircuitsOpen, st.Circuits-last.Circuits, humanBytes(st.Bytes-last.Bytes), humanBytes(st.Bytes),
				st.Reservations-last.Reservations, st.Refusals-last.Refusals)
			last = st
		}
	}
}

// relayEvent reports what the relay did: a JSON event, and on a terminal
// a line for each refusal.
func relayEvent(e *env, ev peer.RelayEvent) {
	f := map[string]any{}
	switch ev.Kind {
	case peer.RelayReservation:
		f["peer"], f["accepted"] = ev.Peer.String(), ev.Accepted
		if !ev.Accepted {
			f["reason"] = ev.Reason.Code()
		}
		e.events.emit("reservation", f)
		if !e.json && !ev.Accepted {
			fmt.Fprintf(e.stderr, "Refused a reservation to %s: %s.\n", ev.Peer, ownReason(ev.Reason))
		}
	case peer.RelayCircuitOpened:
		e.events.emit("circuit_opened", map[string]any{"src": ev.Peer.String(), "dst": ev.Dest.String()})
	case peer.RelayCircuitClosed:
		f = map[string]any{"src": ev.Peer.String(), "dst": ev.Dest.String(), "bytes": ev.Bytes, "seconds": ev.Duration.Seconds()}
		if ev.Reason != peer.ReasonNone {
			f["reason"] = ev.Reason.Code()
		}
		e.events.emit("circuit_closed", f)
		if !e.json && ev.Reason != peer.ReasonNone {
			fmt.Fprintf(e.stderr, "Ended a circuit from %s to %s after %s: %s.\n", ev.Peer, ev.Dest, humanBytes(ev.Bytes), ownReason(ev.Reason))
		}
	case peer.RelayCircuitRefused:
		e.events.emit("circuit_refused", map[string]any{"src": ev.Peer.String(), "dst": ev.Dest.String(), "reason": ev.Reason.Code()})
		if !e.json {
			fmt.Fprintf(e.stderr, "Refused a circuit from %s to %s: %s.\n", ev.Peer, ev.Dest, ownReason(ev.Reason))
		}
	}
}

// ownReason says a reason as the relay's operator reads it; the
// reason's own text is for the peer refused.
func ownReason(r peer.RelayReason) string {
	switch r {
	case peer.ReasonNotAllowed:
		return "not on the allow-list"
	case peer.ReasonQuota:
		return "a daily quota is used up"
	case peer.ReasonSlots:
		return "no free reservation slot"
	}
	return r.String()
}

// parseLimit reads a SIZE flag where 0 means no limit.
func parseLimit(name, v string, most uint64) (uint64, error) {
	if v == "0" {
		return 0, nil
	}
	n, err := parseSize(v)
	if err != nil || n > most {
		return 0, usageError{fmt.Sprintf("bad %s %q: give a size like 2M, or 0 for no limit", name, v)}
	}
	return n, nil
}

// parsePeerList decodes the values of a repeatable peer flag.
func parsePeerList(flagName string, ids []string) ([]lpeer.ID, error) {
	var out []lpeer.ID
	for _, s := range ids {
		id, err := lpeer.Decode(s)
		if err != nil {
			return nil, usageError{fmt.Sprintf("bad %s %q: not a peer ID", flagName, s)}
		}
		out = append(out, id)
	}
	return out, nil
}
