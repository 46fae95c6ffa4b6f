package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/dshare/dshare/discovery"
	"github.com/dshare/dshare/peer"
	"github.com/dshare/dshare/peer/pair"
	"github.com/dshare/dshare/wire"
)

func runSend(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "send", "send [flags] PATH... [PEER]")
	streams := fs.Int("streams", peer.DefaultStreams, "parallel data streams (large files on a short, fast path keep 2 per connection)")
	lanesN := fs.Int("lanes", 0, fmt.Sprintf("spread data over `N` QUIC connections, each with its own congestion window, for lossy long-distance links (0: as many as the path rewards, up to %d; 1: one)", peer.MaxLanes))
	wait := fs.Duration("wait", 10*time.Second, "how long to look for receivers on the LAN when no PEER is given; a PEER ID is looked for up to 6 times as long, on the LAN and in the DHT")
	retryFor := fs.Duration("retry-for", 2*time.Minute, "keep reconnecting and resuming this long after the connection fails (0: never)")
	var listen listFlag
	fs.Var(&listen, "listen", "listen on `MULTIADDR` (repeatable; default all interfaces, random port)")
	stdinName := fs.String("stdin-name", "stdin", "with PATH -, the `name` the piped data is saved under")
	name := fs.String("name", "", "show the receiver this `name` for this machine (a hint; the peer ID is what counts)")
	punch := fs.Duration("punch-wait", 0, "wait this `long` for hole punching before sending through an unlimited relay (default: start at once, and move to the direct path when a punch succeeds)")
	var q queueOptions
	queue := addQueueFlags(fs, &q)
	var nf netFlags
	addNetFlags(fs, &nf)
	pos, err := parse(e, fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	} else if err != nil {
		return err
	}
	paths, target := splitTarget(pos)
	if len(paths) == 0 {
		return usageError{"nothing to send: give at least one PATH"}
	}
	if last := paths[len(paths)-1]; target == "" {
		if _, err := os.Stat(last); err != nil {
			if looksLikeID(last) {
				return usageError{fmt.Sprintf("%s is neither a file nor a valid peer ID; check it for a typo", last)}
			}
			if looksLikeCodeAttempt(last) {
				_, cerr := pair.NormalizeCode(last)
				return usageError{fmt.Sprintf("%s is neither a file nor a valid code: %v", last, cerr)}
			}
		}
	}
	if *queue {
		if len(paths) == 1 && paths[0] == "-" {
			return usageError{"--queue sends files the agent can read later, not piped data"}
		}
		return queueSend(e, paths, target, &q)
	}
	if len(paths) == 1 && paths[0] == "-" {
		// Piped data is spooled to a private file first: the receiver
		// is told the size, and a lost connection resumes.
		p, cleanup, err := spoolStdin(e, *stdinName)
		if err != nil {
			return err
		}
		defer cleanup()
		paths = []string{p}
	}
	m, err := peer.BuildManifest(paths)
	if err != nil {
		return err
	}
	if len(listen) == 0 {
		for _, a := range peer.DefaultListen(0) {
			listen = append(listen, a.String())
		}
	}
	started := time.Now()
	n, err := startNode(ctx, e, listen, &nf)
	if err != nil {
		return err
	}
	defer n.Close()
	h := n.h

	info, words, err := reachTarget(ctx, e, n, &nf, target, *wait)
	if err != nil {
		return err
	}
	if words != "" {
		e.events.emit("paired", map[string]any{"peer": info.ID.String(), "words": words})
		if !e.json {
			fmt.Fprintf(e.stderr, "Paired with %s; its screen shows the same words: %s\n", info.ID, words)
		}
	}
	files, total := m.Files()
	var b *bars
	accepted := false
	var acceptedAt time.Time
	e.events.emit("sending", map[string]any{"peer": info.ID.String(), "files": files, "bytes": total})
	if !e.json {
		fmt.Fprintf(e.stderr, "Sending %s (%s) to %s; waiting for it to accept...\n", count(files, "file"), humanBytes(total), info.ID)
	}
	if len(*name) > peer.MaxNameLen {
		return usageError{fmt.Sprintf("--name is at most %d bytes", peer.MaxNameLen)}
	}
	res, err := peer.Send(ctx, h, info, m, *punch, peer.SendOptions{
		Name:     *name,
		Lanes:    *lanesN,
		Streams:  *streams,
		RetryFor: *retryFor,
		OnRetry: func(err error, wait time.Duration) {
			e.events.emit("retry", map[string]any{"error": err.Error(), "wait": wait.Seconds()})
			if !e.json {
				fmt.Fprintf(e.stderr, "\nConnection lost (%s); resuming in %v...\n", peer.EscapeText(err.Error()), wait)
			}
		},
		OnAccept: func(already uint64) {
			if !accepted {
				acceptedAt = time.Now()
			}
			accepted = true
			path := connPath(h, info.ID)
			e.events.emit("accepted", map[string]any{"peer": info.ID.String(), "path": path, "already": already})
			if !e.json && path == peer.PathRelayed {
				fmt.Fprintln(e.stderr, "Connected through a relay; hole punching did not get through (yet).")
			}
			if e.showBars() {
				b = newBars(e.stderr, total, already) // bars time the transfer, not the wait for a yes
			} else if !e.json && already > 0 {
				fmt.Fprintf(e.stderr, "Resuming: %s of %s were already there.\n", humanBytes(already), humanBytes(total))
			}
		},
		OnProgress: func(p peer.Progress) {
			e.events.emit("progress", map[string]any{"bytes": p.Confirmed, "total": p.Total, "sent": p.Sent})
			if b != nil {
				b.update(p)
			}
		},
	})
	if b != nil {
		b.finish()
	}
	if err != nil {
		if ctx.Err() != nil {
			if !accepted {
				return fmt.Errorf("%w before the receiver answered", errInterrupted)
			}
			return fmt.Errorf("%w; run the same command again to resume where it stopped", errInterrupted)
		}
		if re, ok := peer.RelayRefusal(err); ok && re.Permanent() {
			return fmt.Errorf("send to %s stopped, as the relay refused the connection: %s", info.ID, re.Reason)
		}
		return sendFailure(info.ID, err)
	}
	secs := res.Elapsed.Seconds()
	done := map[string]any{"peer": info.ID.String(), "files": res.Files, "bytes": res.Bytes,
		"sent": res.Sent, "skipped": res.Skipped, "sessions": res.Sessions, "seconds": secs,
		"path": res.Path, "relayed_bytes": res.RelayedBytes, "total_seconds": time.Since(started).Seconds(),
		"skipped_files": res.SkippedFiles}
	if len(res.Renamed) > 0 {
		done["renamed"] = res.Renamed
	}
	// The names the files have at the receiver, as far as a script needs.
	var names []string
	for _, en := range m.Entries {
		if en.Dir {
			continue
		}
		if len(names) == 1000 {
			done["names_truncated"] = true
			break
		}
		name := en.Path
		if r, ok := res.Renamed[en.Path]; ok {
			name = r
		}
		names = append(names, name)
	}
	done["names"] = names
	if !res.FirstByte.IsZero() {
		done["first_byte"] = res.FirstByte.Sub(started).Seconds()
	}
	if !acceptedAt.IsZero() {
		done["accepted"] = acceptedAt.Sub(started).Seconds()
	}
	goodput := float64(res.Sent) / max(secs, 0.001)
	done["goodput"] = goodput
	ls := res.Link
	done["conns"] = ls.Conns
	if ls.MinRTT > 0 {
		done["rtt_ms"] = float64(ls.MinRTT.Microseconds()) / 1000
		done["srtt_ms"] = float64(ls.SmoothedRTT.Microseconds()) / 1000
	}
	if ls.PacketsSent > 0 {
		done["loss"] = float64(ls.PacketsLost) / float64(ls.PacketsSent)
	}
	e.events.emit("done", done)
	if !e.json {
		fmt.Fprintf(e.stderr, "Sent %s (%s) in %.1fs, %s/s, %s; the receiver verified every byte.\n",
			count(res.Files, "file"), humanBytes(res.Bytes), secs, humanBytes(uint64(goodput)), linkSummary(res.Path, ls))
		if res.SkippedFiles > 0 {
			fmt.Fprintf(e.stderr, "%d of them were already there and were not sent again.\n", res.SkippedFiles)
		}
		if n := len(res.Renamed); n > 0 {
			fmt.Fprintf(e.stderr, "%d were saved under new names beside existing files with other content.\n", n)
		}
	}
	return nil
}

// linkSummary says how the data travelled: "direct over 4 connections,
// round trip 41 ms, 0.52 % of packets lost".
func linkSummary(path string, ls peer.LinkStats) string {
	s := path
	if ls.Conns > 1 {
		s += fmt.Sprintf(" over %d connections", ls.Conns)
	}
	if ls.MinRTT > 0 {
		s += fmt.Sprintf(", round trip %s", ls.MinRTT.Round(100*time.Microsecond))
	}
	if ls.PacketsSent > 0 {
		s += fmt.Sprintf(", %.2g %% of packets lost", 100*float64(ls.PacketsLost)/float64(ls.PacketsSent))
	}
	return s
}

// splitTarget separates PATH... from a trailing PEER. The last argument is
// a peer if it is a /p2p/ multiaddr, or parses as a peer ID and is not the
// name of an existing file.
func splitTarget(pos []string) (paths []string, target string) {
	if len(pos) == 0 {
		return nil, ""
	}
	last := pos[len(pos)-1]
	if _, err := os.Stat(last); err == nil {
		return pos, ""
	}
	if pair.LooksLikeTicket(last) || pair.LooksLikeCode(last) {
		return pos[:len(pos)-1], last
	}
	if strings.HasPrefix(last, "/") {
		if a, err := ma.NewMultiaddr(last); err == nil {
			if _, err := lpeer.AddrInfoFromP2pAddr(a); err == nil {
				return pos[:len(pos)-1], last
			}
		}
		return pos, ""
	}
	if _, err := lpeer.Decode(last); err == nil {
		return pos[:len(pos)-1], last
	}
	return pos, ""
}

// resolveTarget turns the PEER argument into addresses: a multiaddr is
// used as it is; nothing means a receiver on the LAN; a peer ID is looked
// for on the LAN (mDNS) and in the DHT at once, and the first answer wins.
func resolveTarget(ctx context.Context, e *env, n *node, nf *netFlags, target string, wait time.Duration) (lpeer.AddrInfo, error) {
	if strings.HasPrefix(target, "/") {
		a, err := ma.NewMultiaddr(target)
		if err != nil {
			return lpeer.AddrInfo{}, usageError{fmt.Sprintf("bad PEER %q: %v", target, err)}
		}
		info, err := lpeer.AddrInfoFromP2pAddr(a)
		if err != nil {
			return lpeer.AddrInfo{}, usageError{fmt.Sprintf("bad PEER %q: %v", target, err)}
		}
		return *info, nil
	}
	if target == "" {
		if e.offline {
			return lpeer.AddrInfo{}, usageError{"--offline needs a PEER: there is no discovery to find one"}
		}
		e.events.emit("looking", map[string]any{"lan": true, "dht": false})
		if !e.json {
			fmt.Fprintln(e.stderr, "Looking for the receiver on the local network...")
		}
		found, err := browse(ctx, n.h, "", wait)
		if errors.Is(err, discovery.ErrNoLAN) {
			return lpeer.AddrInfo{}, sentence{"no receiver can be found, as no network interface here reaches a local network; connect to a network, or give the receiver's address as PEER", err}
		} else if err != nil {
			return lpeer.AddrInfo{}, err
		}
		if ctx.Err() != nil {
			return lpeer.AddrInfo{}, fmt.Errorf("%w while looking for a receiver", errInterrupted)
		}
		switch len(found) {
		case 0:
			return lpeer.AddrInfo{}, fmt.Errorf("no receiver found on the local network within %v; is 'dshare recv' running there?", wait)
		case 1:
			return found[0], nil
		}
		return choose(e, found)
	}
	want, err := lpeer.Decode(target)
	if err != nil {
		return lpeer.AddrInfo{}, usageError{fmt.Sprintf("bad PEER %q: %v", target, err)}
	}
	if e.offline {
		return lpeer.AddrInfo{}, usageError{"--offline needs PEER as a multiaddr ending in /p2p/ID, as there is no discovery"}
	}
	where := "the local network"
	if global(e, nf) {
		where = "the local network and the DHT"
		wait *= 6
	}
	e.events.emit("looking", map[string]any{"peer": want.String(), "lan": true, "dht": global(e, nf)})
	if !e.json {
		fmt.Fprintf(e.stderr, "Looking for %s on %s...\n", want, where)
	}
	outer := ctx
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	type answer struct {
		info lpeer.AddrInfo
		via  string
		err  error
	}
	answers := make(chan answer, 2)
	go func() {
		found, err := browse(ctx, n.h, want, wait)
		if len(found) > 0 {
			answers <- answer{found[0], "mdns", nil}
			return
		}
		answers <- answer{err: err}
	}()
	lookups := 1
	if global(e, nf) {
		lookups++
		go func() {
			select {
			case <-n.ready:
			case <-ctx.Done():
				answers <- answer{err: ctx.Err()}
				return
			}
			if n.dht == nil {
				answers <- answer{err: fmt.Errorf("DHT: %w", n.err)}
				return
			}
			info, err := findAndConnect(ctx, n, want, explicitRelays(nf))
			answers <- answer{info, "dht", err}
		}()
	}
	var reasons []string
	var errs []error
	for range lookups {
		a := <-answers
		var unreachable unreachableError
		if errors.As(a.err, &unreachable) {
			return lpeer.AddrInfo{}, a.err // a relay said why: no use waiting for mDNS
		}
		if a.err != nil || a.info.ID == "" {
			errs = append(errs, a.err)
			switch {
			case errors.Is(a.err, discovery.ErrNoLAN):
				reasons = append(reasons, "no network interface here reaches a local network")
			case errors.Is(a.err, discovery.ErrUnreachable):
				reasons = append(reasons, "the DHT cannot be reached from here")
			}
			continue
		}
		e.events.emit("found", map[string]any{"peer": want.String(), "via": a.via, "addrs": addrStrings(a.info)})
		return a.info, nil
	}
	err = errors.Join(errs...)
	switch {
	case outer.Err() != nil:
		return lpeer.AddrInfo{}, fmt.Errorf("%w while looking for %s", errInterrupted, want)
	case len(reasons) == lookups:
		// Every way to look failed at once: waiting cannot help.
		return lpeer.AddrInfo{}, sentence{fmt.Sprintf("%s cannot be looked for: %s; check this machine's network connection, or give the receiver's full address",
			want, strings.Join(reasons, ", and ")), err}
	}
	return lpeer.AddrInfo{}, sentence{fmt.Sprintf("%s was not found on %s within %v; is 'dshare recv' running there?", want, where, wait), err}
}

// noReservationGrace is how long a sender believes relays that say the
// receiver holds no slot on them: a receiver that has just started takes
// a moment to reserve one.
const noReservationGrace = 10 * time.Second

// findAndConnect looks want up in the DHT and connects, again and again
// until ctx ends: a receiver that has just started may not be in the DHT
// yet, or only with addresses behind its NAT until its relay slot is up.
// With relays named on the command line, it also asks them for a circuit
// to want: their answer is quick, and says why when there is none.
func findAndConnect(ctx context.Context, n *node, want lpeer.ID, relays []lpeer.AddrInfo) (lpeer.AddrInfo, error) {
	circuits := circuitAddrs(relays)
	var last error
	var refused time.Time // since when the relays have said no
	for {
		fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		info, err := n.dht.Find(fctx, want)
		cancel()
		if len(circuits) > 0 && (err != nil || !hasRelayedAddr(info)) {
			peer.WaitHolePunchReady(ctx, n.h)
			via := lpeer.AddrInfo{ID: want, Addrs: circuits}
			cerr := connectFresh(ctx, n.h, via)
			if cerr == nil {
				return via, nil
			}
			if re, ok := peer.RelayRefusal(cerr); ok {
				if refused.IsZero() {
					refused = time.Now()
				}
				if re.Permanent() {
					return lpeer.AddrInfo{}, unreachableError{re.Error()}
				}
				if re.Reason == peer.ReasonNoReservation && time.Since(refused) >= noReservationGrace {
					return lpeer.AddrInfo{}, unreachableError{fmt.Sprintf(
						"%s cannot be reached: the relay holds no reservation for it, so it is not on the relay's allow-list or not running", want)}
				}
			}
			last = cerr
		}
		if err == nil {
			if hasRelayedAddr(info) {
				// Behind a NAT: be ready to punch before connecting
				// through its relay, or its attempt meets no one.
				peer.WaitHolePunchReady(ctx, n.h)
			}
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err = n.h.Connect(cctx, info)
			cancel()
			if err == nil {
				return info, nil
			}
			if re, ok := peer.RelayRefusal(err); ok && re.Permanent() {
				return lpeer.AddrInfo{}, unreachableError{re.Error()}
			}
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return lpeer.AddrInfo{}, last
		case <-time.After(time.Second):
		}
	}
}

// unreachableError is a relay's verdict that a receiver cannot be
// reached through it, in one sentence.
type unreachableError struct{ msg string }

func (e unreachableError) Error() string { return e.msg }

// circuitAddrs returns, for each relay, the address of a circuit through it.
func circuitAddrs(relays []lpeer.AddrInfo) []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, r := range relays {
		via := ma.StringCast("/p2p/" + r.ID.String() + "/p2p-circuit")
		for _, a := range r.Addrs {
			out = append(out, a.Encapsulate(via))
		}
	}
	return out
}

// connectFresh connects to info through a relay only, so that the
// relay's own answer comes back: it forgets earlier failed dials, which
// would give the swarm's "dial backoff" instead, and the peer's other
// addresses, whose dials would outlast the relay's answer, and a timeout
// would then hide it. The caller's next Connect adds them again.
func connectFresh(ctx context.Context, h host.Host, info lpeer.AddrInfo) error {
	if sw, ok := h.Network().(*swarm.Swarm); ok {
		sw.Backoff().Clear(info.ID)
	}
	h.Peerstore().ClearAddrs(info.ID)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return h.Connect(ctx, info)
}

func addrStrings(info lpeer.AddrInfo) []string {
	var out []string
	for _, a := range info.Addrs {
		out = append(out, a.String())
	}
	return out
}

// hasRelayedAddr reports whether some of a peer's addresses are relayed:
// it is likely behind a NAT.
func hasRelayedAddr(info lpeer.AddrInfo) bool { return hasCircuit(addrStrings(info)) }

// connPath says whether the best connection to p is direct or relayed.
func connPath(h host.Host, p lpeer.ID) string {
	conns := h.Network().ConnsToPeer(p)
	for _, c := range conns {
		if !peer.IsRelayed(c) {
			return peer.PathDirect
		}
	}
	if len(conns) == 0 {
		return ""
	}
	return peer.PathRelayed
}

// browse collects receivers from mDNS. Looking for one ID, it stops when
// that is found; otherwise it stops a moment after the first answer, so
// that several receivers can show up.
func browse(ctx context.Context, h host.Host, want lpeer.ID, wait time.Duration) ([]lpeer.AddrInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	var mu sync.Mutex
	var found []lpeer.AddrInfo
	var settle sync.Once
	err := discovery.Browse(ctx, h.ID(), func(info lpeer.AddrInfo) {
		mu.Lock()
		defer mu.Unlock()
		if want != "" {
			if info.ID == want {
				found = append(found, info)
				cancel()
			}
			return
		}
		found = append(found, info)
		settle.Do(func() { time.AfterFunc(750*time.Millisecond, cancel) })
	})
	mu.Lock()
	defer mu.Unlock()
	return found, err
}

// choose asks which receiver to use, or fails listing them when it
// cannot ask.
func choose(e *env, found []lpeer.AddrInfo) (lpeer.AddrInfo, error) {
	var sb strings.Builder
	for i, f := range found {
		fmt.Fprintf(&sb, "  %d) %s\n", i+1, f.ID)
	}
	if !e.interactive() {
		return lpeer.AddrInfo{}, fmt.Errorf("%d receivers on the local network; give one as PEER:\n%s", len(found), strings.TrimRight(sb.String(), "\n"))
	}
	fmt.Fprintf(e.stderr, "Several receivers found:\n%sSend to which one? [1-%d] ", sb.String(), len(found))
	line, _ := bufio.NewReader(e.stdin).ReadString('\n')
	n, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || n < 1 || n > len(found) {
		return lpeer.AddrInfo{}, errors.New("no receiver chosen")
	}
	return found[n-1], nil
}

// sentence is an error with a message written for a person; it still
// matches what it wraps.
type sentence struct {
	msg string
	err error
}

func (s sentence) Error() string { return s.msg }
func (s sentence) Unwrap() error { return s.err }

// sendFailure says in one sentence why a send to id failed.
func sendFailure(id lpeer.ID, err error) error {
	var re *wire.RemoteError
	if !errors.As(err, &re) {
		return sentence{fmt.Sprintf("send to %s failed: %v", id, err), err}
	}
	words := peerWords(re)
	switch re.Code {
	case wire.CodeRejected:
		return sentence{fmt.Sprintf("%s rejected the offer: %s", id, words), err}
	case wire.CodeUnauthorized:
		return sentence{fmt.Sprintf("%s refused this sender as not authorized: %s", id, words), err}
	case wire.CodeNoSpace:
		return sentence{fmt.Sprintf("%s has not enough disk space: %s; once it has room, sending again resumes", id, words), err}
	}
	if code := re.Code.String(); words != code {
		words = code + ": " + words
	}
	return sentence{fmt.Sprintf("%s stopped the transfer: %s", id, words), err}
}

// peerWords returns what a peer said, without the code's own text that
// its message usually starts with.
func peerWords(re *wire.RemoteError) string {
	code := re.Code.String()
	msg := strings.TrimPrefix(re.Message, code+": ")
	if msg == "" || msg == code {
		return code
	}
	return msg
}

// looksLikeID reports whether s was probably meant as a peer ID: the
// prefix of every Ed25519 or RSA peer ID, and no path separator.
func looksLikeID(s string) bool {
	return (strings.HasPrefix(s, "12D3KooW") || strings.HasPrefix(s, "Qm")) && len(s) > 40 && !strings.ContainsAny(s, `/\.`)
}

// looksLikeCodeAttempt reports whether s has the shape of a code: words
// of letters joined by dashes.
func looksLikeCodeAttempt(s string) bool {
	parts := strings.Split(s, "-")
	if len(parts) < 3 || len(parts) > 5 {
		return false
	}
	for _, p := range parts {
		if p == "" || strings.TrimFunc(p, func(r rune) bool { return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' }) != "" {
			return false
		}
	}
	return true
}

// reachTarget connects to the receiver PEER names: by ticket or code,
// proving it, or by peer ID or address. It returns the verification
// words of a pairing.
func reachTarget(ctx context.Context, e *env, n *node, nf *netFlags, target string, wait time.Duration) (lpeer.AddrInfo, string, error) {
	switch {
	case pair.LooksLikeTicket(target):
		info, sec, err := parseTicketTarget(target)
		if err != nil {
			return lpeer.AddrInfo{}, "", err
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = n.h.Connect(cctx, info)
		cancel()
		if err != nil && !e.offline {
			// Its addresses may have changed: look for its peer ID.
			info, err = resolveTarget(ctx, e, n, nf, info.ID.String(), wait)
		}
		if err != nil {
			if ctx.Err() != nil {
				return lpeer.AddrInfo{}, "", fmt.Errorf("%w while connecting", errInterrupted)
			}
			return lpeer.AddrInfo{}, "", err
		}
		words, err := peer.Pair(ctx, n.h, info.ID, sec)
		if err != nil {
			return lpeer.AddrInfo{}, "", pairFailure(info.ID, err)
		}
		return info, words, nil
	case pair.LooksLikeCode(target):
		if e.offline {
			return lpeer.AddrInfo{}, "", usageError{"--offline cannot look up a code; give the receiver's ticket instead"}
		}
		code, _ := pair.NormalizeCode(target)
		sec, err := pair.FromCode(code)
		if err != nil {
			return lpeer.AddrInfo{}, "", usageError{err.Error()}
		}
		e.events.emit("looking", map[string]any{"code": true, "lan": true, "dht": global(e, nf)})
		if !e.json {
			fmt.Fprintf(e.stderr, "Looking for the receiver of %s...\n", code)
		}
		return findByCode(ctx, e, n, nf, code, sec, wait)
	}
	info, err := resolveTarget(ctx, e, n, nf, target, wait)
	return info, "", err
}

// pairFailure says in one sentence why proving a ticket to id failed.
func pairFailure(id lpeer.ID, err error) error {
	switch {
	case errors.Is(err, pair.ErrNoCode):
		return sentence{fmt.Sprintf("%s no longer accepts this ticket (it was restarted?); ask for a new one", id), err}
	case errors.Is(err, pair.ErrWrongCode), errors.Is(err, pair.ErrBurned):
		return sentence{fmt.Sprintf("%s did not accept the ticket: %v", id, err), err}
	}
	return sentence{fmt.Sprintf("pairing with %s failed: %v", id, err), err}
}

// spoolStdin copies what is piped into stdin to a private file named
// name, and returns its path and how to remove it.
func spoolStdin(e *env, name string) (string, func(), error) {
	if isTerminal(e.stdin) {
		return "", nil, usageError{"PATH - reads what is piped into dshare, and nothing is; try: tar c dir | dshare send - CODE"}
	}
	if err := peer.CheckPath(name); err != nil || strings.Contains(name, "/") {
		return "", nil, usageError{fmt.Sprintf("--stdin-name %s is not a plain file name", peer.Escape(name))}
	}
	dir, err := os.MkdirTemp("", "dshare-stdin-")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	p := filepath.Join(dir, name)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		_, err = io.Copy(f, e.stdin)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		cleanup()
		return "", nil, fmt.Errorf("reading the piped data: %w", err)
	}
	return p, cleanup, nil
}
