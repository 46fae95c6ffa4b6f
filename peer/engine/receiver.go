package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/dshare/dshare/peer/store"
	"github.com/dshare/dshare/wire"
)

// Offer is an incoming offer as shown to whoever decides on it.
type Offer struct {
	Peer string
	Name string // the name the sender gives itself, unverified, checked for display
	// The sender's labels, unverified; Tags and Note are escaped for
	// display. Item is the sender's outbox item, 0 for a plain send.
	Tags     []string
	Note     string
	Announce string
	Item     uint64
	Entries  []wire.Entry
	Files    int
	Bytes    uint64
}

// MaxNameLen bounds a peer's display name, in bytes.
const MaxNameLen = 64

// DisplayName returns a peer's name fit to show, or "" if it is too long
// or not text.
func DisplayName(name string) string {
	if len(name) > MaxNameLen || !utf8.ValidString(name) {
		return ""
	}
	return EscapeText(name)
}

// EventKind says what a receiver Event reports.
type EventKind int

const (
	EventAccepted EventKind = iota + 1 // a transfer starts
	EventProgress                      // bytes were confirmed
	EventDone                          // every file is verified and in place
	EventFailed                        // the transfer stopped; resumable state is kept
	EventRejected                      // an offer was refused
	EventFile                          // a file is verified and in place, or was already here
)

// Event reports what a Receiver does. Events of one transfer arrive in
// order, from one goroutine at a time.
type Event struct {
	Kind     EventKind
	Peer     string
	ReqID    uint64
	Offer    *Offer // EventAccepted, EventDone
	Progress Progress
	Err      error      // EventFailed, EventRejected
	File     FileResult // EventFile
}

// Receiver accepts offers on the streams handed to Handle and writes
// files below Dir.
type Receiver struct {
	Dir string
	// Decide is asked about every valid offer; a nil error accepts it. A
	// nil Decide accepts everything.
	Decide func(ctx context.Context, o *Offer) error
	// Notify, if set, receives events. It must not block for long.
	Notify func(Event)
	// Overwrite replaces existing files instead of keeping both.
	Overwrite bool
	// Allow, if set, names the only peers served. Streams from others are
	// refused before anything they send is read. The peer is the one the
	// connection authenticated, never one named in a message.
	Allow func(string) bool
	// Limits bound what peers can make the receiver hold.
	Limits Limits
	// Journal, if set, is the file that remembers the files received into
	// Dir, so that a re-offer of one is answered as held, not received
	// twice. See JournalPath.
	Journal string
	// BeforeDone, if set, runs once every file of a transfer is in place
	// and before the sender is told so; an error fails the transfer (the
	// sender retries, and every file is then already here).
	BeforeDone func(Event) error

	store  *store.Store
	budget *Budget
	wg     sync.WaitGroup // streams being handled

	mu        sync.Mutex
	stopped   bool
	transfers map[transferKey]*transfer
	streams   streamCounter
}

type transferKey struct {
	peer  string
	reqID uint64
}

// Start opens the directory; Handle may be called from then on.
func (r *Receiver) Start() error {
	r.Limits = r.Limits.withDefaults()
	st, err := store.Open(r.Dir, store.Options{Journal: r.Journal})
	if err != nil {
		return err
	}
	r.store = st
	r.budget = NewBudget(r.Limits.Memory)
	r.mu.Lock()
	r.transfers = map[transferKey]*transfer{}
	r.mu.Unlock()
	return nil
}

// Stop ends every transfer, keeping what they received for a resume,
// waits for the streams being handled and closes the directory. Streams
// handed to Handle afterwards are reset.
func (r *Receiver) Stop() {
	r.mu.Lock()
	r.stopped = true
	for _, t := range r.transfers {
		t.abort(wire.ErrCanceled)
	}
	r.mu.Unlock()
	r.wg.Wait()
	_ = r.store.Close()
}

// Handle serves one stream that the authenticated peer from opened. conn
// is the connection it came on; a new session of the same sender closes
// the connection of the one it supersedes. Handle returns when the
// stream is done with.
func (r *Receiver) Handle(ctx context.Context, s Stream, from string, conn io.Closer) {
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		_ = s.Reset(wire.CodeCanceled)
		return
	}
	if !r.streams.acquire(from, r.Limits) {
		r.mu.Unlock()
		_ = s.Reset(wire.CodeLimit)
		return
	}
	r.wg.Add(1)
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.streams.release(from)
		r.mu.Unlock()
		r.wg.Done()
	}()
	r.handle(ctx, s, from, conn)
}

func (r *Receiver) notify(e Event) {
	if r.Notify != nil {
		r.Notify(e)
	}
}

// handle dispatches a new stream on its first frame.
func (r *Receiver) handle(ctx context.Context, s Stream, from string, conn io.Closer) {
	stop := context.AfterFunc(ctx, func() { _ = s.Reset(wire.CodeCanceled) })
	defer stop()
	if r.Allow != nil && !r.Allow(from) {
		err := fmt.Errorf("%w: %s is not among the peers this receiver accepts", wire.ErrUnauthorized, from)
		r.notify(Event{Kind: EventRejected, Peer: from, Err: err})
		_ = s.SetWriteDeadline(time.Now().Add(r.Limits.IdleTimeout))
		_ = wire.WriteMsg(s, &wire.Reject{Code: wire.CodeUnauthorized, Reason: err.Error()})
		_ = s.Close()
		return
	}
	// What a stream makes the receiver hold, its read buffer and frame
	// bodies as they grow, comes out of the budget shared by all peers.
	var held atomic.Int64
	defer func() { r.budget.release(held.Load()) }()
	if err := r.budget.reserve(readBufSize, "streams"); err != nil {
		r.refuse(s, err)
		return
	}
	held.Store(readBufSize)
	_ = s.SetReadDeadline(time.Now().Add(r.Limits.IdleTimeout))
	rd := wire.NewReader(s)
	rd.Grow = func(n int) error {
		if err := r.budget.reserve(int64(n), "frames"); err != nil {
			return err
		}
		held.Add(int64(n))
		return nil
	}
	m, err := rd.ReadMsg()
	err = r.idleErr(err)
	if err == nil {
		switch m := m.(type) {
		case *wire.Offer:
			err = r.handleOffer(ctx, s, from, conn, rd, m)
		case *wire.Start:
			err = r.handleData(ctx, s, from, rd, m)
		default:
			err = fmt.Errorf("%w: %v as first frame", wire.ErrProtocol, m.Type())
		}
	}
	if err != nil {
		r.refuse(s, err)
		return
	}
	s.Close()
}

// readBufSize is what a stream's frame reader buffers.
const readBufSize = 64 << 10

// idleErr turns a read that hit the idle deadline into a timeout that
// says so.
func (r *Receiver) idleErr(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("%w: the peer sent nothing for %v", wire.ErrTimeout, r.Limits.IdleTimeout)
	}
	return err
}

// reported marks an error the peer has already been told about.
type reported struct{ error }

func (e reported) Unwrap() error { return e.error }

// refuse ends a stream over err. Unless the peer already knows, it is
// told the error's code and text first; the stream is then closed, not
// reset, so that the error frame is delivered.
func (r *Receiver) refuse(s Stream, err error) {
	if wire.CodeOf(err) == wire.CodeCanceled {
		_ = s.Reset(wire.CodeCanceled)
		return
	}
	if !errors.As(err, new(reported)) {
		_ = s.SetWriteDeadline(time.Now().Add(2 * time.Second))
		_ = wire.WriteMsg(s, forPeer(err))
	}
	_ = s.Close()
}

// readOffer reads the remaining parts of a manifest, each within the idle
// timeout. What the manifest will cost in memory is reserved from the
// budget shared by all peers as the parts arrive; the caller releases
// *reserved once the transfer is over.
func (r *Receiver) readOffer(s Stream, rd *wire.Reader, first *wire.Offer, reserved *int64) ([]wire.Entry, error) {
	if first.Part != 0 || first.Files > maxEntries {
		return nil, fmt.Errorf("%w: an offer of %d entries, this receiver takes at most %d; send the folder in parts",
			wire.ErrLimit, first.Files, maxEntries)
	}
	parts := [][]wire.Entry{first.Entries}
	n := uint64(len(first.Entries))
	charge := func(entries []wire.Entry) error {
		cost := manifestCost(entries)
		if *reserved+cost > maxManifestBytes {
			return fmt.Errorf("%w: the offer's list of files is over %d MiB; send the folder in parts", wire.ErrLimit, maxManifestBytes>>20)
		}
		if err := r.budget.reserve(cost, "offers"); err != nil {
			return err
		}
		*reserved += cost
		return nil
	}
	if err := charge(first.Entries); err != nil {
		return nil, err
	}
	for o := first; o.More; {
		_ = s.SetReadDeadline(time.Now().Add(r.Limits.IdleTimeout))
		m, err := rd.ReadMsg()
		if err != nil {
			return nil, r.idleErr(err)
		}
		next, ok := m.(*wire.Offer)
		if !ok || next.ReqID != first.ReqID || next.Part != o.Part+1 {
			return nil, fmt.Errorf("%w: expected offer part %d", wire.ErrProtocol, o.Part+1)
		}
		if n += uint64(len(next.Entries)); n > first.Files {
			return nil, fmt.Errorf("%w: more entries than announced", wire.ErrProtocol)
		}
		if err := charge(next.Entries); err != nil {
			return nil, err
		}
		parts = append(parts, next.Entries)
		o = next
	}
	// One array of the final size: appending part by part would leave
	// copies of the growing array behind.
	entries := make([]wire.Entry, 0, n)
	for _, p := range parts {
		entries = append(entries, p...)
	}
	return entries, nil
}

func manifestCost(entries []wire.Entry) int64 {
	var n int64
	for _, e := range entries {
		n += int64(len(e.Path)) + entryCost
	}
	return n
}

func (r *Receiver) handleOffer(ctx context.Context, s Stream, from string, conn io.Closer, rd *wire.Reader, first *wire.Offer) error {
	reject := func(err error) error {
		err = storageErr(err)
		r.notify(Event{Kind: EventRejected, Peer: from, ReqID: first.ReqID, Err: err})
		m := forPeer(err)
		_ = wire.WriteMsg(s, &wire.Reject{Code: m.Code, Reason: m.Message})
		return nil
	}
	var reserved int64
	defer func() { r.budget.release(reserved) }()
	entries, err := r.readOffer(s, rd, first, &reserved)
	if err != nil {
		return reject(err)
	}
	total, err := CheckOffer(first, entries)
	if err != nil {
		return reject(err)
	}
	if err := r.checkSpace(from, first.ChunkSize, entries, total); err != nil {
		return reject(err)
	}
	offer := &Offer{Peer: from, Name: DisplayName(first.Name), Entries: entries, Bytes: total,
		Note: EscapeText(first.Note), Announce: first.Announce, Item: first.Item}
	for _, tag := range first.Tags {
		offer.Tags = append(offer.Tags, EscapeText(tag))
	}
	for _, e := range entries {
		if !e.Dir {
			offer.Files++
		}
	}
	_ = s.SetReadDeadline(time.Time{}) // a person may take a while to decide
	if r.Decide != nil {
		// Meanwhile the sender hears that this receiver is alive, so that
		// it tells a slow decision from a receiver that went away.
		// A sender that goes away meanwhile withdraws its offer: the
		// question ends instead of waiting for an answer nobody needs.
		dctx, gone := context.WithCancel(ctx)
		stop := r.heartbeat(s, first.ReqID, gone)
		err := r.Decide(dctx, offer)
		stop()
		gone()
		if err != nil {
			return reject(err)
		}
	}
	r.supersede(from, conn, entries)
	t, err := newTransfer(ctx, r, s, conn, first.ReqID, first.ChunkSize, offer)
	if err != nil {
		return reject(err)
	}
	key := transferKey{from, first.ReqID}
	r.mu.Lock()
	if _, dup := r.transfers[key]; dup {
		r.mu.Unlock()
		t.close()
		return reject(fmt.Errorf("%w: request %d is already running", wire.ErrProtocol, first.ReqID))
	}
	r.transfers[key] = t
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.transfers, key)
		r.mu.Unlock()
	}()
	r.notify(Event{Kind: EventAccepted, Peer: from, ReqID: first.ReqID, Offer: offer, Progress: t.progressNow()})
	err = t.run(rd)
	if err != nil {
		err = storageErr(err)
		r.notify(Event{Kind: EventFailed, Peer: from, ReqID: first.ReqID, Err: err, Progress: t.progressNow()})
		if !errors.Is(err, io.EOF) {
			_ = t.writeMsg(forPeer(err))
		}
		return reported{err}
	}
	r.notify(Event{Kind: EventDone, Peer: from, ReqID: first.ReqID, Offer: offer, Progress: t.progressNow()})
	return nil
}

// heartbeat sends an empty Progress every heartbeatInterval until the
// returned function is called, and calls gone if the sender can no
// longer be written to; stop returns once no heartbeat is being written.
func (r *Receiver) heartbeat(s Stream, reqID uint64, gone func()) (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(heartbeatInterval)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				return
			case <-tick.C:
				_ = s.SetWriteDeadline(time.Now().Add(r.Limits.IdleTimeout))
				if wire.WriteMsg(s, &wire.Progress{ReqID: reqID}) != nil {
					gone()
					return
				}
				_ = s.SetWriteDeadline(time.Time{})
			}
		}
	}()
	return func() { close(quit); <-done }
}

// supersede ends the transfers of the same peer that offer any of the
// same files: a new offer for them is the sender's next session (after a
// kill or a lost connection the old one may not have noticed yet).
// Transfers of other files from the same peer, a second send from
// another terminal say, go on.
func (r *Receiver) supersede(from string, conn io.Closer, entries []wire.Entry) {
	r.mu.Lock()
	var mine []*transfer
	for k, t := range r.transfers {
		if k.peer == from {
			mine = append(mine, t)
		}
	}
	r.mu.Unlock()
	if len(mine) == 0 {
		return
	}
	paths := make(map[string]struct{}, len(entries))
	for _, e := range entries {
		if !e.Dir {
			paths[e.Path] = struct{}{}
		}
	}
	var old []*transfer
	for _, t := range mine {
		for _, e := range t.offer.Entries {
			if _, ok := paths[e.Path]; ok && !e.Dir {
				// Its sender is most likely gone: the reason is worth
				// no wait.
				t.hurry.Store(true)
				t.abort(fmt.Errorf("%w: superseded by a new offer of the same files", wire.ErrCanceled))
				old = append(old, t)
				break
			}
		}
	}
	for _, t := range old {
		<-t.finished
		// The old session's connection would linger until QUIC's idle
		// timeout, holding resource-manager slots.
		if t.conn != nil && t.conn != conn {
			_ = t.conn.Close()
		}
	}
}

func (r *Receiver) handleData(ctx context.Context, s Stream, from string, rd *wire.Reader, st *wire.Start) error {
	key := transferKey{from, st.ReqID}
	r.mu.Lock()
	t := r.transfers[key]
	r.mu.Unlock()
	if t == nil {
		return fmt.Errorf("%w: no transfer %d", wire.ErrNotFound, st.ReqID)
	}
	err := t.receiveData(ctx, s, rd)
	if wire.CodeOf(err) == wire.CodeProtocol {
		// Bad ranges, sizes or frames: the sender is broken or hostile,
		// and its transfer ends here.
		t.abort(err)
	}
	return err
}

// storageErr marks a local failure to write, which trying again cannot
// mend, as wire.ErrStorage: the sender stops at once instead of retrying.
func storageErr(err error) error {
	if wire.CodeOf(err) != wire.CodeInternal {
		return err
	}
	if errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS) {
		return fmt.Errorf("%w: %w", wire.ErrStorage, err)
	}
	return err
}

// forPeer is what the sender is told of err: of a local failure, a
// storage or an internal one, only the reason; its paths and details are
// none of the sender's business.
func forPeer(err error) *wire.Error {
	code := wire.CodeOf(err)
	if code != wire.CodeStorage && code != wire.CodeInternal {
		return wire.ErrorFor(err)
	}
	msg := code.Err().Error()
	var errno syscall.Errno
	if errors.As(err, &errno) {
		msg += " (" + errno.Error() + ")"
	}
	return &wire.Error{Code: code, Message: msg}
}
