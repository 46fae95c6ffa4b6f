package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	libp2ppeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/dshare/dshare/peer"
	"github.com/dshare/dshare/peer/mailbox"
	"github.com/dshare/dshare/wire"
)

// recvMemoryLimit is the receiver's soft memory limit: the engine's
// budget for all peers plus room for the rest of the process.
const recvMemoryLimit = peer.DefaultMemory + 16<<20

func runRecv(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "recv", "recv [--dir DIR] [--listen MULTIADDR]... [--yes] [--once] [--overwrite] [--from PEER]... [--max-bytes SIZE]")
	dir := fs.String("dir", ".", "save received files in `DIR`")
	var listen listFlag
	fs.Var(&listen, "listen", "listen on `MULTIADDR` (repeatable; default all interfaces, port 4747)")
	yes := fs.Bool("yes", false, "accept every offer without asking")
	once := fs.Bool("once", false, "exit after one completed transfer")
	overwrite := fs.Bool("overwrite", false, "replace existing files instead of keeping both")
	var from listFlag
	fs.Var(&from, "from", "accept offers only from `PEER` (repeatable); others are refused unread")
	maxBytes := fs.String("max-bytes", "", "refuse offers larger than `SIZE` (e.g. 500M, 20G)")
	idle := fs.Duration("idle-timeout", peer.DefaultIdleTimeout, "drop a peer's stream that sends nothing for this `long`")
	toStdout := fs.Bool("stdout", false, "write the one file received to stdout once verified, then exit (for pipes: dshare recv --stdout > x.tar)")
	var nf netFlags
	addNetFlags(fs, &nf)
	pos, err := parse(e, fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	} else if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError{fmt.Sprintf("recv takes no arguments (got '%s')", pos[0])}
	}
	if *toStdout {
		if e.json {
			return usageError{"--stdout and --json both write to stdout; choose one"}
		}
		// The file is received, verified and placed in a private
		// directory as always, then copied out.
		tmp, err := os.MkdirTemp("", "dshare-stdout-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		*dir, *once = tmp, true
	}
	if err := checkDir(*dir); err != nil {
		return err
	}
	unlock, err := lockHome(e.home)
	if err != nil {
		return err
	}
	defer unlock()
	limits := peer.Limits{IdleTimeout: *idle}
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		// The engine's budget bounds what peers can make this process
		// hold; the limit makes the collector return it promptly, so
		// that what peers cost shows in the resident size only once.
		debug.SetMemoryLimit(recvMemoryLimit)
	}
	if *maxBytes != "" {
		if limits.MaxBytes, err = parseSize(*maxBytes); err != nil {
			return usageError{fmt.Sprintf("bad --max-bytes: %v", err)}
		}
	}
	allow, err := parsePeers(from)
	if err != nil {
		return err
	}
	trusted, err := peer.LoadTrusted(e.home)
	if err != nil {
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

	pairs := startPairing(ctx, e, n, !e.offline, global(e, &nf))
	addrs := fullAddrs(h)
	listening := map[string]any{"peer": h.ID().String(), "addrs": addrs, "ticket": pairs.ticket}
	if code := pairs.currentCode(); code != "" {
		listening["code"] = code
		listening["code_expires"] = codeTTL.Seconds()
	}
	ui := &recvUI{e: e, yes: *yes, once: *once, cancel: cancel, bars: map[uint64]*bars{}, trusted: trusted, pairs: pairs,
		skipped: map[uint64]int{}, renamed: map[uint64][]string{}, saved: map[uint64][]string{}}
	if e.interactive() && !*yes {
		ui.input() // from now on, every line typed is timestamped
	}
	ui.single = *toStdout
	if !*toStdout {
		ui.inbox, ui.via, ui.dir = inboxOf(e.home), "recv", absDir(*dir)
	}
	r := &peer.Receiver{Host: h, Dir: *dir, Decide: ui.decide, Notify: ui.notify, Overwrite: *overwrite, Limits: limits,
		Journal: peer.JournalPath(e.home, *dir), BeforeDone: ui.beforeDone}
	if *toStdout {
		r.Journal = "" // nothing to remember of a directory that goes away
	}
	if allow != nil {
		r.Allow = func(id libp2ppeer.ID) bool { return allow[id] }
	}
	// Announced only once it handles streams: a sender that hears of it
	// at once must not be turned away.
	if err := r.Start(ctx); err != nil {
		return err
	}
	e.events.emit("listening", listening)
	pairs.announce(*dir)
	defer beFindable(ctx, e, n, &nf, "this receiver")()
	err = r.Serve(ctx)
	ui.mu.Lock()
	active, completed := ui.active, ui.completed
	ui.mu.Unlock()
	if *toStdout && completed == 1 && err == nil {
		return copyOut(e, *dir, ui.lastSaved)
	}
	if sig.Err() != nil {
		// Stopping an idle receiver is how one ends it; stopping one in
		// the middle of a transfer interrupts that transfer.
		switch {
		case active > 0:
			return fmt.Errorf("%w with %s under way; what arrived is kept, and sending again resumes", errInterrupted, count(active, "transfer"))
		case *once && completed == 0:
			return fmt.Errorf("%w before any transfer arrived", errInterrupted)
		}
		return nil
	}
	return err
}

// recvUI turns receiver events into prompts, bars and JSON events.
type recvUI struct {
	e         *env
	yes, once bool
	trusted   map[libp2ppeer.ID]bool // accepted without asking
	pairs     *pairing               // peers that proved a code or ticket
	cancel    func()
	askMu     sync.Mutex // one question at a time
	inputOnce sync.Once
	lines     <-chan line

	mu        sync.Mutex
	bars      map[uint64]*bars
	skipped   map[uint64]int      // files already here, per transfer
	renamed   map[uint64][]string // lines about files saved under new names
	saved     map[uint64][]string // final names, per transfer, up to maxNamesListed
	completed int
	active    int      // transfers accepted and not yet ended
	single    bool     // --stdout: one file only
	lastSaved []string // the names the last completed transfer saved

	// The inbox, if set, gets an entry for every completed transfer:
	// via says which command received it, dir where.
	inbox    *mailbox.Inbox
	via, dir string
	files    map[uint64][]mailbox.InFile
	counts   map[uint64][2]uint64      // files and bytes, per transfer, all of them
	entries  map[uint64]*mailbox.Entry // recorded, waiting for their EventDone
	// onDone, if set, runs once a transfer is done, with its entry; it
	// must not block.
	onDone func(ev peer.Event, entry *mailbox.Entry)
}

// maxInboxFiles bounds the files one inbox entry lists; the entry counts
// them all. A folder of a million files costs the receiver no more.
const maxInboxFiles = 10_000

// beforeDone records a completed transfer in the inbox before the sender
// is told it is done: a receiver killed in between is asked again.
func (u *recvUI) beforeDone(ev peer.Event) error {
	u.mu.Lock()
	files, n := u.files[ev.ReqID], u.counts[ev.ReqID]
	delete(u.files, ev.ReqID)
	delete(u.counts, ev.ReqID)
	u.mu.Unlock()
	en := &mailbox.Entry{Time: time.Now(), Peer: ev.Peer, Via: u.via, Dir: u.dir, Files: files,
		FileCount: n[0], Bytes: n[1], Tags: ev.Offer.Tags, Note: ev.Offer.Note}
	if ev.Offer.Item != 0 {
		// A delivery repeated after a crash is the same entry.
		en.Key = fmt.Sprintf("%s/%d", ev.Peer, ev.Offer.Item)
	}
	if u.inbox != nil {
		if err := u.inbox.Add(en); err != nil {
			return err
		}
	}
	u.mu.Lock()
	if u.entries == nil {
		u.entries = map[uint64]*mailbox.Entry{}
	}
	u.entries[ev.ReqID] = en
	u.mu.Unlock()
	return nil
}

const (
	maxRenamedShown = 20
	maxNamesShown   = 10   // saved names a summary prints
	maxNamesListed  = 1000 // saved names a done event carries
)

func (u *recvUI) decide(ctx context.Context, o *peer.Offer) error {
	id, _ := libp2ppeer.Decode(o.Peer)
	trusted := u.trusted[id]
	if u.single && (o.Files != 1 || len(o.Entries) != 1) {
		return fmt.Errorf("%w: this receiver writes one file to its output, and %s were offered; send a single file", wire.ErrRejected, count(o.Files, "file"))
	}
	words, paired := u.pairs.words(o.Peer)
	offer := map[string]any{"peer": o.Peer, "files": o.Files, "bytes": o.Bytes, "trusted": trusted}
	if o.Note != "" || len(o.Tags) > 0 {
		offer["note"], offer["tags"] = o.Note, o.Tags
	}
	if o.Name != "" {
		offer["name"] = o.Name
	}
	if paired {
		offer["words"] = words
	}
	u.e.events.emit("offer", offer)
	if u.yes || trusted {
		return nil
	}
	if !u.e.interactive() {
		fmt.Fprintf(u.e.stderr, "dshare: refused %s (%s) from %s, as there is no terminal to ask; run recv with --yes to accept offers\n",
			count(o.Files, "file"), humanBytes(o.Bytes), o.Peer)
		return fmt.Errorf("%w: the receiver has no terminal to ask and was not started with --yes", wire.ErrRejected)
	}
	u.askMu.Lock()
	defer u.askMu.Unlock()
	fmt.Fprint(u.e.stderr, describeOffer(o))
	if paired {
		fmt.Fprintf(u.e.stderr, "It proved your code or ticket; its screen must show: %s\n", words)
	}
	// Keys pressed before the question (a stray Enter, say) do not
	// answer it: whatever the terminal holds is flushed, and any line
	// read before the question was shown is dropped.
	lines := u.input()
	flushInput(u.e.stdin)
	// Taken before the question is shown: an answer typed the moment it
	// appears may be read before this goroutine runs again.
	asked := time.Now()
	fmt.Fprint(u.e.stderr, "Accept? [y/N] ")
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				fmt.Fprintln(u.e.stderr)
				return fmt.Errorf("%w: the receiver's input is closed, so nobody can answer", wire.ErrRejected)
			}
			if l.at.Before(asked) {
				continue
			}
			a := strings.TrimSpace(strings.ToLower(l.text))
			if a == "y" || a == "yes" {
				return nil
			}
			return fmt.Errorf("%w: declined by the user", wire.ErrRejected)
		case <-ctx.Done():
			// The sender gave up or went away: the question is
			// withdrawn, and the next answer goes to the next question.
			fmt.Fprintln(u.e.stderr, "\n(withdrawn: the sender is gone)")
			return wire.ErrCanceled
		}
	}
}

// line is a line typed on stdin and when it was read.
type line struct {
	text string
	at   time.Time
}

// input returns the lines typed on stdin, read by one goroutine for the
// life of the process, so that no reader left behind by a withdrawn
// question takes the answer to the next one. The channel closes at the
// end of input.
func (u *recvUI) input() <-chan line {
	u.inputOnce.Do(func() {
		ch := make(chan line, 16)
		u.lines = ch
		go func() {
			defer close(ch)
			sc := bufio.NewScanner(u.e.stdin)
			for sc.Scan() {
				ch <- line{sc.Text(), time.Now()}
			}
		}()
	})
	return u.lines
}

// describeOffer lists an offer with every name escaped, so that no control
// character in a name can rewrite the terminal.
func describeOffer(o *peer.Offer) string {
	var sb strings.Builder
	who := o.Peer
	if o.Name != "" {
		// Escaped already; the quotes mark it as the sender's own claim.
		who = fmt.Sprintf(`"%s" (%s)`, o.Name, o.Peer)
	}
	fmt.Fprintf(&sb, "\n%s wants to send %s, %s in total:\n", who, count(o.Files, "file"), humanBytes(o.Bytes))
	// Escaped already, as the sender's own words.
	if o.Note != "" {
		fmt.Fprintf(&sb, "  note: %q\n", o.Note)
	}
	if len(o.Tags) > 0 {
		fmt.Fprintf(&sb, "  tags: %s\n", strings.Join(o.Tags, ", "))
	}
	shown := 0
	for _, en := range o.Entries {
		if en.Dir {
			continue
		}
		if shown == 20 {
			fmt.Fprintf(&sb, "  ... and %d more\n", o.Files-shown)
			break
		}
		fmt.Fprintf(&sb, "  %s  (%s)\n", peer.Escape(en.Path), humanBytes(en.Size))
		shown++
	}
	return sb.String()
}

func (u *recvUI) notify(ev peer.Event) {
	u.mu.Lock()
	defer u.mu.Unlock()
	b := u.bars[ev.ReqID]
	switch ev.Kind {
	case peer.EventAccepted:
		u.active++
		already := ev.Progress.Confirmed
		u.e.events.emit("accepted", map[string]any{"peer": ev.Peer, "files": ev.Offer.Files, "bytes": ev.Offer.Bytes, "already": already})
		if u.e.showBars() {
			u.bars[ev.ReqID] = newBars(u.e.stderr, ev.Offer.Bytes, already)
		} else if !u.e.json && already > 0 {
			fmt.Fprintf(u.e.stderr, "Resuming: %s of %s were already here.\n", humanBytes(already), humanBytes(ev.Offer.Bytes))
		}
	case peer.EventProgress:
		u.e.events.emit("progress", map[string]any{"bytes": ev.Progress.Confirmed, "total": ev.Progress.Total})
		if b != nil {
			b.update(ev.Progress)
		}
	case peer.EventDone:
		u.active--
		if b != nil {
			b.update(ev.Progress)
			b.finish()
			delete(u.bars, ev.ReqID)
		}
		saved := u.saved[ev.ReqID]
		done := map[string]any{"peer": ev.Peer, "files": ev.Offer.Files, "bytes": ev.Offer.Bytes, "names": saved}
		if len(saved) < ev.Offer.Files {
			done["names_truncated"] = true
		}
		u.e.events.emit("done", done)
		if !u.e.json {
			fmt.Fprintf(u.e.stderr, "Received %s (%s) from %s, saved as:\n", count(ev.Offer.Files, "file"), humanBytes(ev.Offer.Bytes), ev.Peer)
			for i, name := range saved {
				if i == maxNamesShown {
					fmt.Fprintf(u.e.stderr, "  ... and %d more\n", ev.Offer.Files-i)
					break
				}
				fmt.Fprintf(u.e.stderr, "  %s\n", peer.Escape(name))
			}
			if n := u.skipped[ev.ReqID]; n > 0 {
				fmt.Fprintf(u.e.stderr, "%d of them were already here and were not received again.\n", n)
			}
			for _, line := range u.renamed[ev.ReqID] {
				fmt.Fprint(u.e.stderr, line)
			}
		}
		delete(u.skipped, ev.ReqID)
		delete(u.renamed, ev.ReqID)
		u.lastSaved = saved
		delete(u.saved, ev.ReqID)
		if en := u.entries[ev.ReqID]; en != nil && u.onDone != nil {
			u.onDone(ev, en)
		}
		delete(u.entries, ev.ReqID)
		u.completed++
		if u.once {
			u.cancel()
		}
	case peer.EventFailed:
		u.active--
		delete(u.files, ev.ReqID)
		if b != nil {
			b.finish()
			delete(u.bars, ev.ReqID)
		}
		u.e.events.emit("failed", map[string]any{"peer": ev.Peer, "error": ev.Err.Error(), "code": int(wire.CodeOf(ev.Err)),
			"bytes": ev.Progress.Confirmed, "received": ev.Progress.Received})
		fmt.Fprintf(u.e.stderr, "dshare: %s\n", stoppedSentence(ev.Peer, ev.Err))
	case peer.EventFile:
		f := ev.File
		if u.files == nil {
			u.files, u.counts = map[uint64][]mailbox.InFile{}, map[uint64][2]uint64{}
		}
		u.counts[ev.ReqID] = [2]uint64{u.counts[ev.ReqID][0] + 1, u.counts[ev.ReqID][1] + f.Size}
		if len(u.files[ev.ReqID]) < maxInboxFiles {
			u.files[ev.ReqID] = append(u.files[ev.ReqID], mailbox.InFile{Name: f.Name, Size: f.Size, Root: hex.EncodeToString(f.Root[:])})
		}
		u.e.events.emit("file", map[string]any{"peer": ev.Peer, "path": f.Path, "name": f.Name,
			"size": f.Size, "held": f.Held, "present": f.Present})
		if f.Held || f.Present {
			u.skipped[ev.ReqID]++
		}
		if len(u.saved[ev.ReqID]) < maxNamesListed {
			u.saved[ev.ReqID] = append(u.saved[ev.ReqID], f.Name)
		}
		if f.Name != f.Path && len(u.renamed[ev.ReqID]) < maxRenamedShown {
			how := "saved as"
			if f.Present {
				how = "already here as"
			}
			u.renamed[ev.ReqID] = append(u.renamed[ev.ReqID], fmt.Sprintf("  %s %s %s\n", peer.Escape(f.Path), how, peer.Escape(f.Name)))
		}
	case peer.EventRejected:
		u.e.events.emit("rejected", map[string]any{"peer": ev.Peer, "error": ev.Err.Error(), "code": int(wire.CodeOf(ev.Err))})
		switch {
		case u.e.json, errors.Is(ev.Err, wire.ErrCanceled):
			// A withdrawn question has said so already.
		case errors.Is(ev.Err, wire.ErrRejected):
			why := strings.TrimPrefix(ev.Err.Error(), wire.ErrRejected.Error()+": ")
			fmt.Fprintf(u.e.stderr, "dshare: declined the offer from %s: %s\n", ev.Peer, peer.EscapeText(why))
		default:
			fmt.Fprintf(u.e.stderr, "dshare: refused an offer from %s: %s\n", ev.Peer, peer.EscapeText(ev.Err.Error()))
		}
	}
}

// stoppedSentence says in one sentence why a transfer from peer stopped,
// and that nothing received is lost. The error may quote the peer's own
// words: they are escaped.
func stoppedSentence(from string, err error) string {
	var re *wire.RemoteError
	if errors.As(err, &re) && re.Code == wire.CodeCanceled {
		return fmt.Sprintf("%s stopped sending; what arrived is kept, and sending again resumes", from)
	}
	return fmt.Sprintf("the transfer from %s stopped: %s; what arrived is kept, and sending again resumes",
		from, peer.EscapeText(err.Error()))
}

// checkDir makes sure files can be received into dir, creating it if
// need be, before any sender is told yes.
func checkDir(dir string) error {
	fail := func(err error) error {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("cannot receive into %s: %w; choose another --dir, or fix its permissions", peer.Escape(dir), err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(err)
	}
	f, err := os.CreateTemp(dir, ".dshare-check-*")
	if err != nil {
		return fail(err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// copyOut writes the one file received into dir to stdout.
func copyOut(e *env, dir string, saved []string) error {
	if len(saved) != 1 {
		return fmt.Errorf("expected one file to write out, got %d", len(saved))
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	f, err := root.Open(saved[0])
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.Copy(e.stdout, f); err != nil {
		return fmt.Errorf("writing the received file to the output: %w", err)
	}
	return nil
}
