package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	lpeer "github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/dshare/dshare/peer"
	"github.com/dshare/dshare/peer/mailbox"
	"github.com/dshare/dshare/wire"
)

// inboxOf is the inbox of a home.
func inboxOf(home string) *mailbox.Inbox {
	return &mailbox.Inbox{Path: filepath.Join(home, "inbox.db")}
}

func absDir(dir string) string {
	if a, err := filepath.Abs(dir); err == nil {
		return a
	}
	return dir
}

func runAgent(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "agent", "agent [--dir DIR] [--from PEER]... [--yes] [--on-receive CMD] [--listen MULTIADDR]...")
	dir := fs.String("dir", ".", "save received files in `DIR`")
	var listen, from listFlag
	fs.Var(&listen, "listen", "listen on `MULTIADDR` (repeatable; default all interfaces, port 4747)")
	fs.Var(&from, "from", "accept deliveries from `PEER` (repeatable); trusted peers (dshare trust) are accepted too")
	yes := fs.Bool("yes", false, "accept deliveries from any peer")
	onReceive := fs.String("on-receive", "", "run `CMD` for every completed transfer, with its inbox entry as JSON on stdin (split on spaces, never run by a shell)")
	overwrite := fs.Bool("overwrite", false, "replace existing files instead of keeping both")
	var nf netFlags
	addNetFlags(fs, &nf)
	pos, err := parse(e, fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	} else if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError{fmt.Sprintf("agent takes no arguments (got '%s')", pos[0])}
	}
	hook := strings.Fields(*onReceive)
	if err := checkDir(*dir); err != nil {
		return err
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
	trusted, err := peer.LoadTrusted(e.home)
	if err != nil {
		return err
	}
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		debug.SetMemoryLimit(recvMemoryLimit)
	}
	out, err := mailbox.OpenOutbox(filepath.Join(e.home, "outbox.db"))
	if err != nil {
		return err
	}
	defer out.Close()
	if err := out.Recover(); err != nil {
		return err
	}
	sig := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n, err := startNode(ctx, e, listen, &nf)
	if err != nil {
		return err
	}
	defer n.Close()
	h := n.h
	ctl, err := listenControl(e.home)
	if err != nil {
		return fmt.Errorf("cannot open the control socket: %w", err)
	}
	defer ctl.Close()

	a := &agent{e: e, n: n, nf: &nf, out: out, wake: make(chan struct{}, 1), running: map[uint64]context.CancelFunc{}}
	ui := &recvUI{e: e, yes: true, cancel: func() {}, bars: map[uint64]*bars{}, trusted: trusted,
		skipped: map[uint64]int{}, renamed: map[uint64][]string{}, saved: map[uint64][]string{},
		inbox: inboxOf(e.home), via: "agent", dir: absDir(*dir)}
	// Announcements and hooks run outside the receiver, a few at a time:
	// a hung notifier or a slow hook never holds up a transfer.
	after := make(chan struct{}, 4)
	ui.onDone = func(ev peer.Event, en *mailbox.Entry) {
		e.events.emit("received", map[string]any{"peer": ev.Peer, "entry": en.ID, "files": en.FileCount, "tags": en.Tags, "note": en.Note})
		notify := ev.Offer.Announce == "notify"
		if !notify && len(hook) == 0 {
			return
		}
		select {
		case after <- struct{}{}:
		default:
			fmt.Fprintf(e.stderr, "dshare: too many hooks running; skipped the one for entry %d\n", en.ID)
			return
		}
		go func() {
			defer func() { <-after }()
			if notify {
				announce(e, ev.Peer, en)
			}
			if len(hook) > 0 {
				runHook(e, hook, en)
			}
		}()
	}
	r := &peer.Receiver{Host: h, Dir: *dir, Notify: ui.notify, Overwrite: *overwrite, Journal: peer.JournalPath(e.home, *dir),
		BeforeDone: ui.beforeDone,
		Decide: func(_ context.Context, o *peer.Offer) error {
			id, _ := lpeer.Decode(o.Peer)
			if *yes || allow[id] || trusted[id] {
				return nil
			}
			return fmt.Errorf("%w: this agent accepts deliveries only from the peers it was told to", wire.ErrRejected)
		}}
	if allow != nil && !*yes {
		r.Allow = func(id lpeer.ID) bool { return allow[id] || trusted[id] }
	}
	// Announced only once it handles streams.
	if err := r.Start(ctx); err != nil {
		return err
	}
	e.events.emit("agent", map[string]any{"peer": h.ID().String(), "addrs": fullAddrs(h), "dir": absDir(*dir)})
	if !e.json {
		fmt.Fprintf(e.stderr, "dshare agent for %s: receiving into %s; queue with dshare send --queue PATH... PEER\n", h.ID(), peer.Escape(*dir))
	}
	defer beFindable(ctx, e, n, &nf, "this agent")()

	go serveControl(ctl, a.control)
	go a.deliverLoop(ctx)
	err = r.Serve(ctx)
	a.stopAll()
	if sig.Err() != nil {
		return nil
	}
	return err
}

// agent delivers the outbox.
type agent struct {
	e    *env
	n    *node
	nf   *netFlags
	out  *mailbox.Outbox
	wake chan struct{}

	mu      sync.Mutex
	running map[uint64]context.CancelFunc // deliveries under way
	wg      sync.WaitGroup
}

func (a *agent) poke() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// idle reports whether item id is not being delivered now.
func (a *agent) idle(id uint64) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.running[id] == nil
}

func (a *agent) stopAll() {
	a.mu.Lock()
	for _, c := range a.running {
		c()
	}
	a.mu.Unlock()
	a.wg.Wait()
}

// control answers the control socket.
func (a *agent) control(req *controlRequest) *controlAnswer {
	fail := func(err error) *controlAnswer { return &controlAnswer{Error: err.Error()} }
	switch req.Op {
	case "queue":
		it := req.Item
		if it == nil || len(it.Paths) == 0 || it.Peer == "" {
			return fail(errors.New("a queued item needs paths and a peer"))
		}
		if req.Snapshot {
			dir, err := snapshot(a.e.home, it.Paths)
			if err != nil {
				return fail(err)
			}
			it.Snapshot = dir
			it.Paths = snapshotPaths(dir, it.Paths)
			it.Stamps = nil
		}
		id, err := a.out.Add(it)
		if err != nil {
			return fail(err)
		}
		a.e.events.emit("queued", map[string]any{"id": id, "peer": it.Peer, "priority": it.Priority, "bytes": it.Bytes})
		a.poke()
		return &controlAnswer{ID: id}
	case "list":
		items, err := a.out.List()
		if err != nil {
			return fail(err)
		}
		return &controlAnswer{Items: items}
	case "cancel":
		_, err := a.out.Update(req.ID, func(it *mailbox.Item) error {
			if it.State == mailbox.Delivered {
				return fmt.Errorf("item %d is delivered already", it.ID)
			}
			it.State = mailbox.Canceled
			return nil
		})
		if err != nil {
			return fail(err)
		}
		a.mu.Lock()
		if c := a.running[req.ID]; c != nil {
			c()
		}
		a.mu.Unlock()
		if it, err := a.out.Get(req.ID); err == nil && it.Snapshot != "" && a.idle(req.ID) {
			_ = os.RemoveAll(it.Snapshot)
		}
		return &controlAnswer{ID: req.ID}
	case "retry":
		a.mu.Lock()
		running := a.running[req.ID] != nil
		a.mu.Unlock()
		if running {
			return fail(fmt.Errorf("item %d is still being delivered or stopped; try again in a moment", req.ID))
		}
		_, err := a.out.Update(req.ID, func(it *mailbox.Item) error {
			switch it.State {
			case mailbox.Delivered, mailbox.Sending:
				return fmt.Errorf("item %d is %s", it.ID, it.State)
			}
			it.State, it.NextTry, it.Error = mailbox.Queued, time.Time{}, ""
			return nil
		})
		if err != nil {
			return fail(err)
		}
		a.poke()
		return &controlAnswer{ID: req.ID}
	}
	return fail(fmt.Errorf("unknown request %q", req.Op))
}

// deliverLoop starts the deliveries that are due, one per peer at a time.
func (a *agent) deliverLoop(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		due, err := a.out.Due(time.Now())
		if err == nil {
			for _, it := range due {
				a.start(ctx, it)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-a.wake:
		case <-tick.C:
		}
	}
}

func (a *agent) start(ctx context.Context, it mailbox.Item) {
	_, err := a.out.Update(it.ID, func(cur *mailbox.Item) error {
		if cur.State != mailbox.Queued {
			return errors.New("no longer queued")
		}
		cur.State = mailbox.Sending
		cur.Attempts++
		return nil
	})
	if err != nil {
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	a.mu.Lock()
	a.running[it.ID] = cancel
	a.mu.Unlock()
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		defer cancel()
		err := a.deliver(ctx, it)
		a.mu.Lock()
		delete(a.running, it.ID)
		a.mu.Unlock()
		a.finish(it, err, ctx.Err() != nil)
		a.poke() // the peer's next item may go
	}()
}

// errChanged marks an item whose files changed after it was queued.
var errChanged = errors.New("changed after it was queued")

// deliver sends one item to its peer.
func (a *agent) deliver(ctx context.Context, it mailbox.Item) (err error) {
	e := a.e
	m, err := peer.BuildManifest(it.Paths)
	if err != nil {
		return err
	}
	// Non-volatile items: the files must be what they were when queued.
	if len(it.Stamps) > 0 {
		now := map[string]mailbox.Stamp{}
		for i, src := range m.Sources {
			if src != "" {
				now[src] = mailbox.Stamp{Path: src, Size: int64(m.Entries[i].Size), MTime: m.Entries[i].MTime}
			}
		}
		for _, s := range it.Stamps {
			if n, ok := now[s.Path]; !ok || n != s {
				return fmt.Errorf("%w: %s %w; queue it again, or queue with --snapshot to send a copy", errPermanent, peer.Escape(s.Path), errChanged)
			}
		}
	}
	e.events.emit("delivering", map[string]any{"id": it.ID, "peer": it.Peer, "attempt": it.Attempts + 1})
	info, err := agentTarget(ctx, e, a.n, a.nf, it)
	if err != nil {
		return err
	}
	var last time.Time
	defer func() {
		if errors.Is(err, wire.ErrSourceChanged) && len(it.Stamps) > 0 {
			err = fmt.Errorf("%w; it %w: queue it again, or queue with --snapshot to send a copy", err, errChanged)
		}
	}()
	_, err = peer.Send(ctx, a.n.h, info, m, 0, peer.SendOptions{
		Tags: it.Tags, Note: it.Note, Announce: it.Announce, Item: a.out.WireID(it.ID), RetryFor: 30 * time.Second,
		OnProgress: func(p peer.Progress) {
			if time.Since(last) < time.Second {
				return
			}
			last = time.Now()
			_, _ = a.out.Update(it.ID, func(cur *mailbox.Item) error { cur.Sent = p.Confirmed; return nil })
		},
	})
	return err
}

// errPermanent marks a delivery that retrying cannot help.
var errPermanent = errors.New("cannot be delivered")

// finish records how a delivery ended.
func (a *agent) finish(it mailbox.Item, err error, stopped bool) {
	e := a.e
	canceled := false
	_, _ = a.out.Update(it.ID, func(cur *mailbox.Item) error {
		switch {
		case cur.State == mailbox.Canceled:
			canceled = true
		case err == nil:
			cur.State, cur.Error, cur.Sent = mailbox.Delivered, "", cur.Bytes
		case stopped:
			cur.State = mailbox.Queued // the agent is stopping: the next one resumes it
		case permanent(err):
			cur.State, cur.Error = mailbox.Failed, err.Error()
		default:
			cur.State, cur.Error = mailbox.Queued, err.Error()
			cur.NextTry = time.Now().Add(backoffFor(cur.Attempts))
		}
		return nil
	})
	switch {
	case canceled:
		if it.Snapshot != "" {
			_ = os.RemoveAll(it.Snapshot)
		}
	case err == nil:
		if it.Snapshot != "" {
			_ = os.RemoveAll(it.Snapshot)
		}
		e.events.emit("delivered", map[string]any{"id": it.ID, "peer": it.Peer})
		if !e.json {
			fmt.Fprintf(e.stderr, "Delivered item %d to %s.\n", it.ID, it.Peer)
		}
	case stopped:
	case permanent(err):
		if it.Snapshot != "" {
			_ = os.RemoveAll(it.Snapshot) // failed for good: its copy goes
		}
		e.events.emit("failed", map[string]any{"id": it.ID, "peer": it.Peer, "error": err.Error()})
		if !e.json {
			fmt.Fprintf(e.stderr, "dshare: item %d to %s failed: %s\n", it.ID, it.Peer, peer.EscapeText(err.Error()))
		}
	default:
		e.events.emit("retry", map[string]any{"id": it.ID, "peer": it.Peer, "error": err.Error(), "wait": backoffFor(it.Attempts + 1).Seconds()})
	}
}

// permanent reports whether retrying a delivery cannot help.
func permanent(err error) bool {
	if errors.Is(err, errPermanent) || errors.Is(err, peer.ErrSource) {
		return true
	}
	for _, s := range []error{wire.ErrRejected, wire.ErrUnauthorized, wire.ErrBadPath, wire.ErrTooLarge, wire.ErrSourceChanged, wire.ErrStorage} {
		if errors.Is(err, s) {
			return true
		}
	}
	var u usageError
	return errors.As(err, &u)
}

// backoffFor is how long an item waits after its n-th failed attempt.
func backoffFor(n int) time.Duration {
	d := 2 * time.Second
	for i := 1; i < n && d < 5*time.Minute; i++ {
		d *= 2
	}
	return min(d, 5*time.Minute)
}

// agentTarget finds a queued item's peer: at the addresses it was last
// known at, else, as peers move, on the LAN and in the DHT by its ID.
func agentTarget(ctx context.Context, e *env, n *node, nf *netFlags, it mailbox.Item) (lpeer.AddrInfo, error) {
	id, err := lpeer.Decode(it.Peer)
	if err != nil {
		return lpeer.AddrInfo{}, usageError{fmt.Sprintf("%s is not a peer ID", it.Peer)}
	}
	info := lpeer.AddrInfo{ID: id}
	for _, s := range it.Addrs {
		if a, err := ma.NewMultiaddr(s); err == nil {
			info.Addrs = append(info.Addrs, a)
		}
	}
	if len(info.Addrs) > 0 {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := n.h.Connect(cctx, info)
		cancel()
		if err == nil || e.offline {
			return info, err
		}
	}
	if e.offline {
		return lpeer.AddrInfo{}, fmt.Errorf("%s has no known address, and --offline looks up nothing", id)
	}
	quiet := *e
	quiet.json, quiet.stderr = true, io.Discard // lookups say nothing of their own
	return resolveTarget(ctx, &quiet, n, nf, id.String(), 10*time.Second)
}

// announce tells the user that a transfer asking for it arrived: a
// desktop notification where there is one, else a line.
func announce(e *env, from string, en *mailbox.Entry) {
	text := fmt.Sprintf("%d file(s) from %s", en.FileCount, from)
	if en.Note != "" {
		text += ": " + en.Note // escaped when it arrived
	}
	if p, err := exec.LookPath("notify-send"); err == nil && os.Getenv("DBUS_SESSION_BUS_ADDRESS") != "" {
		// Arguments, never a shell: the note is the peer's text, and
		// notification servers read markup, so it is escaped for that too.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := exec.CommandContext(ctx, p, "--app-name=dshare", "dshare", html.EscapeString(text)).Run()
		cancel()
		if err == nil {
			return
		}
	}
	fmt.Fprintf(e.stderr, "dshare: arrived: %s\n", text)
}

// runHook runs the user's --on-receive command with the entry on stdin.
// The command line is the user's own; the peer's text only ever reaches
// it as JSON data.
func runHook(e *env, argv []string, en *mailbox.Entry) {
	b, err := json.Marshal(en)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin = strings.NewReader(string(b) + "\n")
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	err = cmd.Run()
	ev := map[string]any{"entry": en.ID}
	if err != nil {
		ev["error"] = err.Error()
		fmt.Fprintf(e.stderr, "dshare: --on-receive %s: %v\n", argv[0], err)
	}
	e.events.emit("hook", ev) // scripts (and tests) learn that it ran
}

// snapshot copies paths into a private folder of the home, so that the
// originals may change or go: a clone where the filesystem can make one
// (copy-on-write), a copy otherwise.
func snapshot(home string, paths []string) (string, error) {
	// What a send would send: links followed as BuildManifest follows them.
	m, err := peer.BuildManifest(paths)
	if err != nil {
		return "", err
	}
	base := filepath.Join(home, "outbox")
	if err := os.MkdirAll(base, 0o700); err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp(base, "item-")
	if err != nil {
		return "", err
	}
	for i, en := range m.Entries {
		to := filepath.Join(dir, filepath.FromSlash(en.Path))
		if en.Dir {
			err = os.MkdirAll(to, 0o700)
		} else if err = os.MkdirAll(filepath.Dir(to), 0o700); err == nil {
			err = cloneFile(m.Sources[i], to)
		}
		if err != nil {
			_ = os.RemoveAll(dir)
			return "", fmt.Errorf("snapshot of %s: %w", peer.Escape(en.Path), err)
		}
	}
	return dir, nil
}

// snapshotPaths are the copies of paths in dir: each under its base name,
// as the manifest names it.
func snapshotPaths(dir string, paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = filepath.Join(dir, filepath.Base(filepath.Clean(p)))
	}
	return out
}

// cloneFile copies src to dst, by reflink (FICLONE) where it can.
func cloneFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fi.Mode().Perm()|0o600)
	if err != nil {
		return err
	}
	if !reflink(out, in) {
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	// The mtime goes with it: the receiver names a file's version by it.
	return os.Chtimes(dst, fi.ModTime(), fi.ModTime())
}
