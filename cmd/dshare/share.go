package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	lpeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/skip2/go-qrcode"

	"github.com/dshare/dshare/peer"
	"github.com/dshare/dshare/peer/pair"
	"github.com/dshare/dshare/wire"
)

// shareMemoryLimit is a sharer's soft memory limit.
const shareMemoryLimit = 192 << 20

// shareSecretFile keeps the capability of this home's shares, so that a
// ticket stays good when the sharer restarts.
const shareSecretFile = "share-secret"

func loadShareSecret(home string) ([]byte, error) {
	p := filepath.Join(home, shareSecretFile)
	b, err := os.ReadFile(p)
	if err == nil && len(b) == 16 {
		return b, nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	b = make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(p, b, 0o600); err != nil {
		return nil, err
	}
	return b, nil
}

func runShare(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "share", "share DIR [--from PEER]... [--max-active N] [--rate SIZE] [--per-peer-rate SIZE] [--listen MULTIADDR]...")
	var listen, from listFlag
	fs.Var(&listen, "listen", "listen on `MULTIADDR` (repeatable; default all interfaces, port 4747)")
	fs.Var(&from, "from", "let `PEER` get without the ticket (repeatable)")
	maxActive := fs.Int("max-active", 8, "serve at most `N` gets at once; the others wait in a queue")
	rateFlag := fs.String("rate", "", "send at most `SIZE` bytes per second to all getters together (e.g. 50M)")
	perPeer := fs.String("per-peer-rate", "", "send at most `SIZE` bytes per second to each getter")
	var nf netFlags
	addNetFlags(fs, &nf)
	pos, err := parse(e, fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	} else if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{"share takes one folder: dshare share DIR"}
	}
	dir := pos[0]
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return usageError{fmt.Sprintf("%s is not a folder that can be shared", peer.Escape(dir))}
	}
	if *maxActive < 1 {
		return usageError{"--max-active must be at least 1"}
	}
	var rateAll, ratePeer uint64
	if *rateFlag != "" {
		if rateAll, err = parseSize(*rateFlag); err != nil {
			return usageError{fmt.Sprintf("bad --rate: %v", err)}
		}
	}
	if *perPeer != "" {
		if ratePeer, err = parseSize(*perPeer); err != nil {
			return usageError{fmt.Sprintf("bad --per-peer-rate: %v", err)}
		}
	}
	allow, err := parsePeers(from)
	if err != nil {
		return err
	}
	unlock, err := lockHome(e.home)
	if err != nil {
		return err
	}
	defer unlock()
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		// A crowd costs memory per connection; the collector returns it
		// promptly instead of letting the heap double first.
		debug.SetMemoryLimit(shareMemoryLimit)
	}
	secret, err := loadShareSecret(e.home)
	if err != nil {
		return fmt.Errorf("cannot keep the share's secret in %s: %w", peer.Escape(e.home), err)
	}
	sig := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	nf.crowd = true
	n, err := startNode(ctx, e, listen, &nf)
	if err != nil {
		return err
	}
	defer n.Close()
	h := n.h
	screen := &shareScreen{e: e, tty: !e.json && isTerminal(e.stderr)}
	s := &peer.Sharer{Host: h, Dir: dir, Secret: secret, MaxActive: *maxActive,
		Rate: float64(rateAll), PerPeerRate: float64(ratePeer), Notify: shareNotifier(e, screen)}
	if allow != nil {
		s.Allow = func(id lpeer.ID) bool { return allow[id] }
	}
	// Announced only once it answers: a getter that hears of it at once
	// must not be turned away.
	if err := s.Start(ctx); err != nil {
		return err
	}
	tk := pair.Ticket{Peer: []byte(h.ID()), Addrs: ticketAddrs(h)}
	copy(tk.Rand[:], secret)
	ticket := tk.String()
	e.events.emit("sharing", map[string]any{"peer": h.ID().String(), "addrs": fullAddrs(h), "ticket": ticket, "dir": dir})
	if !e.json {
		fmt.Fprintf(e.stderr, "Sharing %s as %s\nOn another machine run:\n  dshare get %s\n  dshare ls %s\n", peer.Escape(dir), h.ID(), ticket, ticket)
		if isTerminal(e.stderr) {
			if qr, err := qrcode.New(strings.ToUpper(ticket), qrcode.Low); err == nil {
				art := qr.ToSmallString(false)
				if cols, _ := termSize(e.stderr); strings.Index(art, "\n") < cols {
					fmt.Fprintf(e.stderr, "The ticket as a QR code:\n%s", art)
				}
			}
		}
	}
	defer beFindable(ctx, e, n, &nf, "this sharer")()
	screenDone := make(chan struct{})
	go func() { defer close(screenDone); screen.run(ctx, s.Status, 500*time.Millisecond) }()
	err = s.Serve(ctx)
	cancel()
	<-screenDone // no block is drawn after this one is cleared
	screen.clear()
	if sig.Err() != nil {
		return nil // stopping a sharer is how one ends it
	}
	return err
}

// shareNotifier turns the sharer's events into lines and JSON events.
func shareNotifier(e *env, screen *shareScreen) func(peer.ShareEvent) {
	var mu sync.Mutex
	started := map[string]time.Time{}
	return func(ev peer.ShareEvent) {
		mu.Lock()
		defer mu.Unlock()
		key := fmt.Sprintf("%s/%d", ev.Peer, ev.ReqID)
		what := "everything"
		if len(ev.Paths) > 0 {
			what = peer.EscapeText(strings.Join(ev.Paths, ", "))
		}
		base := map[string]any{"peer": ev.Peer, "paths": ev.Paths, "priority": ev.Priority, "active": ev.Active, "queued": ev.Queued}
		switch ev.Kind {
		case peer.ShareListed:
			e.events.emit("listed", base)
		case peer.ShareQueued:
			base["position"] = ev.Position
			e.events.emit("queued", base)
			if !e.json {
				screen.printf("%s asks for %s: #%d in the queue (%d active, %d waiting)\n", ev.Peer, what, ev.Position, ev.Active, ev.Queued)
			}
		case peer.ShareStarted:
			started[key] = time.Now()
			e.events.emit("started", base)
			if !e.json {
				screen.printf("%s gets %s (%d active, %d waiting)\n", ev.Peer, what, ev.Active, ev.Queued)
			}
		case peer.ShareDone:
			secs := time.Since(started[key]).Seconds()
			delete(started, key)
			base["sent"], base["skipped"], base["seconds"] = ev.Result.Sent, ev.Result.Skipped, secs
			e.events.emit("served", base)
			if !e.json {
				screen.printf("%s got %s: %s sent in %.1fs, %s/s (%d active, %d waiting)\n", ev.Peer, what,
					humanBytes(ev.Result.Sent), secs, humanBytes(uint64(float64(ev.Result.Sent)/max(secs, 0.001))), ev.Active, ev.Queued)
			}
		case peer.ShareFailed, peer.ShareRefused:
			delete(started, key)
			base["error"] = ev.Err.Error()
			base["code"] = int(wire.CodeOf(ev.Err))
			name := "failed"
			if ev.Kind == peer.ShareRefused {
				name = "refused"
			}
			e.events.emit(name, base)
			if !e.json {
				screen.printf("%s: %s %s: %s\n", ev.Peer, name, what, peer.EscapeText(ev.Err.Error()))
			}
		}
	}
}

// shareTarget reads TICKET|PEER: a ticket gives the sharer's addresses
// and its secret; a peer ID or address gives neither secret nor, for an
// ID, addresses, which are then looked up.
func shareTarget(ctx context.Context, e *env, n *node, nf *netFlags, target string) (lpeer.AddrInfo, []byte, error) {
	if pair.LooksLikeTicket(target) {
		tk, err := pair.ParseTicket(target)
		if err != nil {
			return lpeer.AddrInfo{}, nil, usageError{err.Error()}
		}
		info, _, err := parseTicketTarget(target)
		if err != nil {
			return lpeer.AddrInfo{}, nil, err
		}
		return info, tk.Rand[:], nil
	}
	info, err := resolveTarget(ctx, e, n, nf, target, 10*time.Second)
	return info, nil, err
}

// refind looks a sharer up again by its peer ID, after its addresses
// failed: it may have restarted elsewhere.
func refind(ctx context.Context, e *env, n *node, nf *netFlags, info lpeer.AddrInfo) lpeer.AddrInfo {
	if e.offline {
		return info
	}
	found, err := resolveTarget(ctx, e, n, nf, info.ID.String(), 10*time.Second)
	if err != nil {
		return info
	}
	found.Addrs = append(found.Addrs, info.Addrs...)
	return found
}

func runLs(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "ls", "ls TICKET|PEER [PATH]")
	var nf netFlags
	addNetFlags(fs, &nf)
	pos, err := parse(e, fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	} else if err != nil {
		return err
	}
	if len(pos) < 1 || len(pos) > 2 {
		return usageError{"ls takes the sharer and at most one path: dshare ls TICKET [PATH]"}
	}
	var paths []string
	if len(pos) == 2 {
		paths = pos[1:]
	}
	n, err := startNode(ctx, e, nil, &nf)
	if err != nil {
		return err
	}
	defer n.Close()
	info, secret, err := shareTarget(ctx, e, n, &nf, pos[0])
	if err != nil {
		return err
	}
	entries, err := peer.List(ctx, n.h, info, &wire.Get{ReqID: newReqID(), Paths: paths, Secret: secret})
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%w while listing", errInterrupted)
		}
		return getFailure(info.ID, err)
	}
	for _, en := range entries {
		if err := peer.CheckPath(en.Path); err != nil {
			return sentence{fmt.Sprintf("%s listed an unsafe name; nothing is trusted from it", info.ID), err}
		}
		e.events.emit("entry", map[string]any{"path": en.Path, "size": en.Size, "dir": en.Dir, "mtime": en.MTime})
		if e.json {
			continue
		}
		if en.Dir {
			fmt.Fprintf(e.stdout, "%10s  %s/\n", "-", peer.Escape(en.Path))
		} else {
			fmt.Fprintf(e.stdout, "%10s  %s\n", humanBytes(en.Size), peer.Escape(en.Path))
		}
	}
	return nil
}

func runGet(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "get", "get TICKET|PEER [PATH]... [--dir DIR] [--priority N]")
	dir := fs.String("dir", ".", "save the files in `DIR`")
	priority := fs.Int("priority", 0, "ask to be served before gets of lower `N` (negative: after)")
	retryFor := fs.Duration("retry-for", 2*time.Minute, "keep asking again this `long` after the sharer stops answering (0: never)")
	overwrite := fs.Bool("overwrite", false, "replace existing files instead of keeping both")
	var nf netFlags
	addNetFlags(fs, &nf)
	pos, err := parse(e, fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	} else if err != nil {
		return err
	}
	if len(pos) < 1 {
		return usageError{"get needs the sharer: dshare get TICKET [PATH]..."}
	}
	if *priority < -1000 || *priority > 1000 {
		return usageError{"--priority is between -1000 and 1000"}
	}
	if len(pos)-1 > wire.MaxGetPaths {
		return usageError{fmt.Sprintf("get takes at most %d paths at once; name a folder instead", wire.MaxGetPaths)}
	}
	paths := pos[1:]
	// Each path arrives under its base name, as send does.
	var want map[string]bool // nil: everything
	if len(paths) > 0 {
		want = map[string]bool{}
	}
	for _, p := range paths {
		clean := path.Clean(strings.TrimPrefix(p, "./"))
		if clean == "." || clean == "/" {
			want = nil // all of it
			break
		}
		want[path.Base(clean)] = true
	}
	if err := checkDir(*dir); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n, err := startNode(ctx, e, nil, &nf)
	if err != nil {
		return err
	}
	defer n.Close()
	info, secret, err := shareTarget(ctx, e, n, &nf, pos[0])
	if err != nil {
		return err
	}

	// The data comes as a push from the sharer, to a receiver that
	// takes nothing from anyone else, and only what was asked for.
	done := make(chan peer.Event, 4)
	sharer := info.ID // info is looked up again on retries; the sharer stays
	ui := &recvUI{e: e, bars: map[uint64]*bars{}, skipped: map[uint64]int{}, renamed: map[uint64][]string{}, saved: map[uint64][]string{},
		inbox: inboxOf(e.home), via: "get", dir: absDir(*dir)}
	r := &peer.Receiver{Host: n.h, Dir: *dir, Overwrite: *overwrite, Journal: peer.JournalPath(e.home, *dir), BeforeDone: ui.beforeDone,
		Allow: func(id lpeer.ID) bool { return id == sharer },
		Decide: func(_ context.Context, o *peer.Offer) error {
			for _, en := range o.Entries {
				top, _, _ := strings.Cut(en.Path, "/")
				if want != nil && !want[top] {
					return fmt.Errorf("%w: %s was not asked for", wire.ErrRejected, peer.Escape(en.Path))
				}
			}
			return nil
		},
		Notify: func(ev peer.Event) {
			ui.notify(ev)
			if ev.Kind == peer.EventDone || ev.Kind == peer.EventFailed {
				select {
				case done <- ev:
				default:
				}
			}
		}}
	// The sharer pushes as soon as the get's turn comes: the receiver
	// must be there before the get is sent.
	if err := r.Start(ctx); err != nil {
		return err
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- r.Serve(ctx) }()

	g := &wire.Get{ReqID: newReqID(), Paths: paths, Priority: int32(*priority), Secret: secret}
	lastPos := 0
	onSleep := func(p int) {
		if p == lastPos {
			return
		}
		lastPos = p
		e.events.emit("waiting", map[string]any{"peer": info.ID.String(), "position": p})
		if !e.json {
			fmt.Fprintf(e.stderr, "Waiting: #%d in %s's queue...\n", p, info.ID)
		}
	}
	served := false
	onStart := func() {
		lastPos, served = 0, true
		e.events.emit("started", map[string]any{"peer": sharer.String()})
	}
	backoff := time.Second
	lastTry := time.Now()
	for {
		// Events of an earlier attempt are not this one's end.
		for len(done) > 0 {
			<-done
		}
		served = false
		err := peer.Get(ctx, n.h, info, g, onSleep, onStart)
		if err == nil {
			// The sharer has heard this side confirm everything; the
			// receiver's own end (its summary, the inbox) follows.
			timeout := time.After(10 * time.Second)
			for waiting := true; waiting; {
				select {
				case ev := <-done:
					waiting = ev.Kind != peer.EventDone
				case <-timeout:
					waiting = false
				}
			}
			return nil
		}
		if served {
			lastTry = time.Now() // served, then cut off: the clock starts over
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%w; run the same command again to resume where it stopped", errInterrupted)
		}
		if !retryable(err) || *retryFor <= 0 || time.Since(lastTry) > *retryFor {
			return getFailure(info.ID, err)
		}
		e.events.emit("retry", map[string]any{"error": err.Error(), "wait": backoff.Seconds()})
		if !e.json {
			fmt.Fprintf(e.stderr, "Lost %s (%s); asking again in %v...\n", info.ID, peer.EscapeText(err.Error()), backoff)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w; run the same command again to resume where it stopped", errInterrupted)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
		info = refind(ctx, e, n, &nf, info)
	}
}

// retryable reports whether a failed get may succeed if asked again: the
// connection or the sharer went away, or it is busy, but not a refusal.
func retryable(err error) bool {
	var re *wire.RemoteError
	if !errors.As(err, &re) {
		return true // the network, not the sharer, said no
	}
	switch re.Code {
	case wire.CodeCanceled, wire.CodeBusy, wire.CodeTimeout, wire.CodeSourceChanged, wire.CodeHashMismatch:
		return true
	}
	return false
}

// getFailure says in one sentence why a get or a listing from id failed.
func getFailure(id lpeer.ID, err error) error {
	switch {
	case errors.Is(err, wire.ErrUnauthorized):
		return sentence{fmt.Sprintf("%s refused: %s", id, peer.EscapeText(strings.TrimPrefix(err.Error(), "peer: "))), err}
	case errors.Is(err, wire.ErrNotFound):
		what := err.Error()
		if i := strings.LastIndex(what, "not in the shared folder: "); i >= 0 {
			what = what[i+len("not in the shared folder: "):]
		}
		return sentence{fmt.Sprintf("%s does not share %s; see what it shares with dshare ls", id, peer.EscapeText(what)), err}
	}
	return sendFailure(id, err)
}

// newReqID returns a random request ID.
func newReqID() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}

// shareScreen is the sharer's screen: the gets being served, each with
// its rate, and the queue. On a terminal it is a block redrawn every
// tick below the lines of events; with --json it is a "status" event
// every tick while anything is served or waiting.
type shareScreen struct {
	e   *env
	tty bool

	mu    sync.Mutex
	lines int // lines of the block on the screen now
}

// maxScreenRows bounds the gets the block lists.
const maxScreenRows = 10

// printf prints a line of events above the block.
func (sc *shareScreen) printf(format string, args ...any) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.clearLocked()
	fmt.Fprintf(sc.e.stderr, format, args...)
}

func (sc *shareScreen) clear() {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.clearLocked()
}

func (sc *shareScreen) clearLocked() {
	if sc.lines > 0 {
		fmt.Fprintf(sc.e.stderr, "\x1b[%dA\x1b[J", sc.lines)
		sc.lines = 0
	}
}

type sentAt struct {
	sent int64
	at   time.Time
}

// run shows status() every tick until ctx ends. A get's rate is what it
// was sent since the last tick, or since its turn came.
func (sc *shareScreen) run(ctx context.Context, status func() peer.ShareStatus, tick time.Duration) {
	t := time.NewTicker(tick)
	defer t.Stop()
	prev := map[string]sentAt{}
	idle := true
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st, now := status(), time.Now()
		if len(st.Active) == 0 && st.Queued == 0 && idle {
			continue
		}
		idle = len(st.Active) == 0 && st.Queued == 0
		next := make(map[string]sentAt, len(st.Active))
		gets := make([]map[string]any, 0, len(st.Active))
		rates := make([]float64, len(st.Active))
		for i, g := range st.Active {
			key := fmt.Sprintf("%s/%d", g.Peer, g.ReqID)
			from, ok := prev[key]
			if !ok {
				from = sentAt{0, g.Since}
			}
			if dt := now.Sub(from.at).Seconds(); dt > 0 {
				rates[i] = float64(g.Sent-from.sent) / dt
			}
			next[key] = sentAt{g.Sent, now}
			gets = append(gets, map[string]any{"peer": g.Peer, "paths": g.Paths, "priority": g.Priority,
				"sent": g.Sent, "rate": rates[i], "seconds": now.Sub(g.Since).Seconds(), "full_tick": ok})
		}
		prev = next
		waiting := make([]map[string]any, 0, len(st.Waiting))
		for _, w := range st.Waiting {
			waiting = append(waiting, map[string]any{"peer": w.Peer, "priority": w.Priority, "position": w.Position})
		}
		sc.e.events.emit("status", map[string]any{"active": gets, "queued": st.Queued, "waiting": waiting})
		if sc.tty {
			sc.draw(st, rates)
		}
	}
}

func (sc *shareScreen) draw(st peer.ShareStatus, rates []float64) {
	var b strings.Builder
	n := 0
	line := func(format string, args ...any) {
		fmt.Fprintf(&b, format, args...)
		b.WriteString("\x1b[K\n")
		n++
	}
	var total float64
	for _, r := range rates {
		total += r
	}
	line("Serving %d, %d waiting, %s/s in all", len(st.Active), st.Queued, humanBytes(uint64(total)))
	for i, g := range st.Active {
		if i == maxScreenRows {
			line("  and %d more", len(st.Active)-i)
			break
		}
		what := "everything"
		if len(g.Paths) > 0 {
			what = peer.EscapeText(strings.Join(g.Paths, ", "))
		}
		if r := []rune(what); len(r) > 40 {
			what = string(r[:39]) + "…"
		}
		id := shortPeer(g.Peer)
		line("  %-11s %-40s %10s/s %10s sent", id, what, humanBytes(uint64(rates[i])), humanBytes(uint64(g.Sent)))
	}
	if len(st.Waiting) > 0 {
		var wb strings.Builder
		for i, w := range st.Waiting[:min(len(st.Waiting), 5)] {
			if i > 0 {
				wb.WriteString(", ")
			}
			fmt.Fprintf(&wb, "#%d %s", w.Position, shortPeer(w.Peer))
			if w.Priority != 0 {
				fmt.Fprintf(&wb, " (priority %d)", w.Priority)
			}
		}
		if st.Queued > 5 {
			fmt.Fprintf(&wb, ", and %d more", st.Queued-5)
		}
		line("  waiting: %s", wb.String())
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.clearLocked()
	fmt.Fprint(sc.e.stderr, b.String())
	sc.lines = n
}

// shortPeer is the tail of a peer ID, enough to tell getters apart.
func shortPeer(id string) string {
	if len(id) > 12 {
		return "…" + id[len(id)-10:]
	}
	return id
}
