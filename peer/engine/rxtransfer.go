package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dshare/dshare/chunker"
	"github.com/dshare/dshare/peer/store"
	"github.com/dshare/dshare/wire"
)

// transfer is one accepted offer on the receiving side.
type transfer struct {
	r      *Receiver
	st     *store.Store
	peer   string
	reqID  uint64
	chunk  uint32
	offer  *Offer
	ctrl   Stream
	conn   io.Closer // the control stream's connection
	ctx    context.Context
	cancel context.CancelCauseFunc
	wake   chan struct{}

	wmu sync.Mutex // serializes writes on ctrl

	data     sync.WaitGroup // receiveData goroutines
	finished chan struct{}  // closed once the transfer has let go of its files
	hurry    atomic.Bool    // superseded: its sender is likely gone
	activity atomic.Int64   // when the transfer last made progress, Unix nanoseconds
	wrote    atomic.Int64   // when the sender was last written to, Unix nanoseconds
	heard    atomic.Int64   // the sender's last heartbeat, Unix nanoseconds
	// hashAllowance is how long the sender may take to hash what this
	// receiver holds, heartbeating, without new data.
	hashAllowance time.Duration

	mu          sync.Mutex
	files       []*rxFile // by manifest index; nil for directories
	dirty       map[*rxFile]bool
	candidates  map[*rxFile]bool // may be ready to place
	changed     map[*rxFile]bool
	complete    []uint32
	names       []wire.FileName
	placed      []FileResult
	confirmed   uint64
	received    uint64 // payload bytes read in this session
	remaining   int
	waiting     int        // files written whole, not yet placed
	room        *sync.Cond // on mu: signalled as waiting files are placed
	senderDone  bool
	over        bool // every file is in place and Done is on its way
	streams     int  // data streams open now
	ended       int  // data streams that have ended
	wantStreams int  // data streams the sender says it opened
	lastReport  time.Time
}

// rxFile is one file of the manifest. Guarded by the transfer's mutex,
// except f, whose own methods are safe for concurrent use once set.
type rxFile struct {
	idx      int
	f        *store.File  // nil until it holds something
	held     *store.Held  // the store holds it complete already
	sum      *chunker.Sum // whole-file hash from the sender
	written  bool         // every chunk is written; counted in waiting until placed
	complete bool
}

// entry returns rx's manifest entry.
func (t *transfer) entry(rx *rxFile) *wire.Entry { return &t.offer.Entries[rx.idx] }

// key returns rx's identity in the store.
func (t *transfer) key(rx *rxFile) store.Key {
	e := t.entry(rx)
	return store.Key{Peer: t.peer, Path: e.Path, Size: e.Size, MTime: e.MTime, ChunkSize: t.chunk}
}

// FileResult says where a received file ended up.
type FileResult struct {
	Index   int
	Path    string // as offered
	Name    string // as placed, relative to the directory
	Size    uint64
	Held    bool        // already here from an earlier run of the same sender: nothing was sent
	Present bool        // an identical copy was already at Name: nothing was sent
	Root    chunker.Sum // the whole-file BLAKE3 root the file was verified against
}

func newTransfer(ctx context.Context, r *Receiver, ctrl Stream, conn io.Closer, reqID uint64, chunk uint32, o *Offer) (*transfer, error) {
	t := &transfer{
		r: r, st: r.store, peer: o.Peer, reqID: reqID, chunk: chunk, offer: o, ctrl: ctrl, conn: conn,
		wake: make(chan struct{}, 1), files: make([]*rxFile, len(o.Entries)), finished: make(chan struct{}),
		dirty: map[*rxFile]bool{}, candidates: map[*rxFile]bool{}, changed: map[*rxFile]bool{},
	}
	t.ctx, t.cancel = context.WithCancelCause(ctx)
	t.room = sync.NewCond(&t.mu)
	context.AfterFunc(t.ctx, func() {
		t.mu.Lock()
		t.room.Broadcast() // data streams waiting for room give up
		t.mu.Unlock()
		// A write blocked on a sender that stopped reading (killed, or
		// superseded by its next session) gives up soon.
		_ = t.ctrl.SetWriteDeadline(time.Now().Add(t.lastWord()))
	})
	t.activity.Store(time.Now().UnixNano())
	if err := t.prepare(); err != nil {
		t.close()
		return nil, err
	}
	t.hashAllowance = time.Duration(t.confirmed/hashRate) * time.Second
	return t, nil
}

// prepare creates the directories, finds the files already here and
// picks up what earlier runs left.
func (t *transfer) prepare() error {
	partial, err := t.st.Partials()
	if err != nil {
		return err
	}
	n := 0
	for _, e := range t.offer.Entries {
		if !e.Dir {
			n++
		}
	}
	slab := make([]rxFile, n) // one allocation, not one per file
	remembers := t.st.Remembers()
	made := map[string]bool{".": true}
	for i, e := range t.offer.Entries {
		dir := e.Path
		if !e.Dir {
			dir = path.Dir(e.Path)
		}
		if !made[dir] {
			if err := t.st.MkdirAll(dir); err != nil {
				return err
			}
			made[dir] = true
		}
		if e.Dir {
			continue
		}
		rx := &slab[0]
		slab = slab[1:]
		rx.idx = i
		t.files[i] = rx
		t.remaining++
		if !remembers {
			continue
		}
		key := t.key(rx).Identified()
		if h, ok := t.st.Completed(key); ok {
			rx.held = &h
			t.confirmed += e.Size
			partial(key, true)
			continue
		}
		if partial(key, false) {
			f, err := t.st.Begin(key, e.Mode)
			if err != nil {
				return err
			}
			rx.f = f
			t.confirmed += f.Held().Size()
		}
	}
	return nil
}

// fileOf returns rx's store file, beginning it on first use. Call with
// t.mu held.
func (t *transfer) fileOf(rx *rxFile) (*store.File, error) {
	if rx.f == nil {
		f, err := t.st.Begin(t.key(rx), t.entry(rx).Mode)
		if err != nil {
			return nil, err
		}
		rx.f = f
	}
	return rx.f, nil
}

// close stops the transfer, waits for its data streams, keeps what was
// received for a later resume, and releases the files.
func (t *transfer) close() {
	t.cancel(wire.ErrCanceled)
	t.data.Wait()
	t.mu.Lock()
	var open []*store.File
	for _, rx := range t.files {
		if rx != nil && rx.f != nil {
			open = append(open, rx.f)
			rx.f = nil
		}
	}
	t.mu.Unlock()
	// What was written becomes durable and is recorded, so that an
	// interrupted transfer loses nothing it had received.
	_, _ = t.st.Commit(open)
	for _, f := range open {
		f.Release()
	}
	t.st.Tidy()
	close(t.finished)
}

func (t *transfer) abort(err error) { t.cancel(err) }

// writeMsg writes m on the control stream. A sender that does not read
// holds it for the idle timeout at most, and for lastWordWait once the
// transfer has ended.
func (t *transfer) writeMsg(m wire.Message) error {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	now := time.Now()
	t.wrote.Store(now.UnixNano())
	_ = t.ctrl.SetWriteDeadline(now.Add(t.r.Limits.IdleTimeout))
	// Checked after the deadline is set, so that an end racing with
	// this write still shortens it.
	if t.ctx.Err() != nil {
		_ = t.ctrl.SetWriteDeadline(now.Add(t.lastWord()))
	}
	return wire.WriteMsg(t.ctrl, m)
}

// lastWord bounds a write to the sender once the transfer has ended:
// long enough to deliver the reason to a sender that reads, short enough
// that a gone one does not hold the files.
func (t *transfer) lastWord() time.Duration {
	if t.hurry.Load() {
		return 50 * time.Millisecond
	}
	return 2 * time.Second
}

// heartbeat tells the sender that this receiver is alive whenever it
// has said nothing for heartbeatInterval: placing many files or a slow
// disk can hold the commit loop for longer than the sender waits.
func (t *transfer) heartbeat() {
	tick := time.NewTicker(heartbeatInterval / 2)
	defer tick.Stop()
	for {
		select {
		case <-t.ctx.Done():
			return
		case now := <-tick.C:
			if now.Sub(time.Unix(0, t.wrote.Load())) < heartbeatInterval {
				continue
			}
			t.mu.Lock()
			over, confirmed := t.over, t.confirmed
			t.mu.Unlock()
			if over || t.writeMsg(&wire.Progress{ReqID: t.reqID, Bytes: confirmed}) != nil {
				return
			}
		}
	}
}

// acceptParts answers the offer, in as many frames as it takes.
func (t *transfer) acceptParts() []*wire.Accept {
	const per = 4096
	var parts []*wire.Accept
	cur := &wire.Accept{ReqID: t.reqID}
	add := func() {
		if len(cur.Have)+len(cur.Held) >= per {
			cur.More = true
			parts = append(parts, cur)
			cur = &wire.Accept{ReqID: t.reqID}
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, rx := range t.files {
		switch {
		case rx == nil:
		case rx.held != nil:
			add()
			cur.Held = append(cur.Held, uint32(rx.idx))
		case rx.f != nil:
			if h := rx.f.Held(); h.Size() > 0 {
				add()
				cur.Have = append(cur.Have, wire.FileRanges{File: uint32(rx.idx), Ranges: toWire(h)})
			}
		}
	}
	return append(parts, cur)
}

// run answers the offer and drives the transfer to its end.
func (t *transfer) run(rd *wire.Reader) error {
	defer t.close()
	for _, a := range t.acceptParts() {
		if err := t.writeMsg(a); err != nil {
			return err
		}
	}
	ctrlErr := make(chan error, 1)
	go func() { ctrlErr <- t.readControl(rd) }()
	go t.verifyResumed()
	go t.heartbeat()
	commitErr := make(chan error, 1)
	go func() { commitErr <- t.commitLoop() }()
	select {
	case err := <-commitErr:
		if err != nil {
			t.cancel(err)
			return err
		}
		// Done is sent; the sender closes its side when it has read it.
		_ = t.ctrl.CloseWrite()
		_ = t.ctrl.SetReadDeadline(time.Now().Add(5 * time.Second))
		<-ctrlErr
		return nil
	case err := <-ctrlErr:
		t.mu.Lock()
		over := t.over
		t.mu.Unlock()
		if !over {
			t.cancel(err)
		}
		// The final Done was on its way: a sender that read it may close
		// before the commit loop has returned. Its outcome is the
		// transfer's.
		if cerr := <-commitErr; over && cerr == nil {
			return nil
		}
		// The first cause is the outcome: a sender that gives up because
		// this side failed (a full disk, say) is not why it ended.
		t.cancel(err)
		return context.Cause(t.ctx)
	}
}

// verifyResumed re-reads, in the background, the chunks earlier runs
// left, while the missing ones already flow. A chunk that fails ends the
// session; the next one fetches it again.
func (t *transfer) verifyResumed() {
	t.mu.Lock()
	var todo []*store.File
	for _, rx := range t.files {
		if rx != nil && rx.f != nil && rx.f.Resumed() {
			todo = append(todo, rx.f)
		}
	}
	t.mu.Unlock()
	for _, f := range todo {
		lost, err := f.Verify(t.ctx)
		if err != nil {
			return
		}
		if lost > 0 {
			t.abort(fmt.Errorf("%w: %s", store.ErrLost, Escape(f.Key().Path)))
			return
		}
		t.poke()
	}
}

func (t *transfer) poke() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// readControl reads the sender's control frames: file hashes and Done.
func (t *transfer) readControl(rd *wire.Reader) error {
	for {
		m, err := rd.ReadMsg()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("%w: the sender went away", wire.ErrCanceled)
			}
			return err
		}
		switch m := m.(type) {
		case *wire.Done:
			if err := t.onDone(m); err != nil {
				return err
			}
		case *wire.Error:
			return m.Err()
		default:
			return fmt.Errorf("%w: %v on the control stream", wire.ErrProtocol, m.Type())
		}
	}
}

func (t *transfer) onDone(d *wire.Done) error {
	if d.ReqID != t.reqID {
		return fmt.Errorf("%w: done for request %d", wire.ErrProtocol, d.ReqID)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.senderDone {
		// Until its final Done, a sender hashing what is held says so
		// every few seconds.
		t.heard.Store(time.Now().UnixNano())
	}
	for _, s := range d.Sums {
		rx, err := t.file(s.File)
		if err != nil {
			return err
		}
		if len(s.Sum) != len(chunker.Sum{}) {
			return fmt.Errorf("%w: a whole-file hash of %d bytes", wire.ErrProtocol, len(s.Sum))
		}
		sum := chunker.Sum(s.Sum)
		rx.sum = &sum
		t.candidates[rx] = true
	}
	if d.Final {
		t.senderDone = true
		t.wantStreams = int(d.Streams)
	}
	t.poke()
	return nil
}

// file returns manifest entry i if it is a regular file. Call with t.mu
// held or after prepare, as t.files does not change.
func (t *transfer) file(i uint32) (*rxFile, error) {
	if int(i) >= len(t.files) || t.files[i] == nil {
		return nil, fmt.Errorf("%w: no file %d in the manifest", wire.ErrProtocol, i)
	}
	return t.files[i], nil
}

// receiveData reads Data frames from one data stream until it ends.
func (t *transfer) receiveData(ctx context.Context, s Stream, rd *wire.Reader) error {
	t.mu.Lock()
	if t.over {
		t.mu.Unlock()
		return fmt.Errorf("%w: transfer %d has ended", wire.ErrNotFound, t.reqID)
	}
	// A sender has at most MaxDataStreams open, but one it has just
	// closed (to move it to another connection) may still be draining
	// here when its successor arrives.
	if t.streams >= 2*MaxDataStreams {
		t.mu.Unlock()
		return fmt.Errorf("%w: more than %d data streams", wire.ErrLimit, 2*MaxDataStreams)
	}
	t.streams++
	t.data.Add(1)
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		t.streams--
		t.ended++
		t.mu.Unlock()
		t.data.Done()
		t.poke()
	}()
	if err := t.r.budget.reserve(int64(t.chunk), "chunk buffers"); err != nil {
		return err
	}
	defer t.r.budget.release(int64(t.chunk))
	stop := context.AfterFunc(t.ctx, func() { _ = s.Reset(wire.CodeCanceled) })
	defer stop()

	buf := alignedBuf(int(t.chunk))
	h := new(chunker.Filling)
	for {
		_ = s.SetReadDeadline(time.Now().Add(t.r.Limits.IdleTimeout))
		m, err := rd.ReadMsg()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return t.r.idleErr(err)
		}
		d, ok := m.(*wire.Data)
		if !ok {
			return fmt.Errorf("%w: %v on a data stream", wire.ErrProtocol, m.Type())
		}
		if err := t.onData(s, rd, d, buf, h); err != nil {
			return err
		}
	}
}

// onData checks, reads, verifies and writes one chunk.
func (t *transfer) onData(s Stream, rd *wire.Reader, d *wire.Data, buf []byte, h *chunker.Filling) error {
	t.mu.Lock()
	rx, err := t.file(d.File)
	var f *store.File
	skip := false
	if err == nil {
		skip = rx.complete || rx.held != nil
		// Files written whole but not yet placed wait for a commit; a
		// new file waits for room among them, so that a sender faster
		// than the disk does not make the receiver hold every file of a
		// large folder at once.
		for !skip && rx.f == nil && t.waiting >= maxWaiting && t.ctx.Err() == nil {
			t.room.Wait()
		}
		if err = context.Cause(t.ctx); err == nil && !skip {
			f, err = t.fileOf(rx)
		}
	}
	t.mu.Unlock()
	if err != nil {
		return err
	}
	p := buf[:d.Length]
	if skip {
		// Already here: read the chunk and forget it.
		if d.Length > uint32(len(buf)) {
			return fmt.Errorf("%w: a chunk of %d bytes", wire.ErrProtocol, d.Length)
		}
		_ = s.SetReadDeadline(t.r.Limits.payloadDeadline(d.Length))
		return rd.Payload(p)
	}
	idx, err := f.Chunk(d.Offset, d.Length)
	if err != nil {
		return fmt.Errorf("%w (%s)", err, Escape(t.entry(rx).Path))
	}
	_ = s.SetReadDeadline(t.r.Limits.payloadDeadline(d.Length))
	h.Reset(p)
	if err := rd.PayloadSteps(p, hashStep, h.Filled); err != nil {
		return err
	}
	sum := h.Sum()
	t.mu.Lock()
	t.received += uint64(len(p))
	t.mu.Unlock()
	if string(sum[:]) != string(d.Hash) {
		return nil // damaged chunks are not recorded: a later session sends them again
	}
	wrote, err := f.Write(idx, p, sum)
	if err != nil {
		// A local failure, a full disk say, ends the transfer with its
		// reason; what is already written stays for a resume.
		t.abort(err)
		return err
	}
	if wrote {
		// Only a new, verified chunk is progress: a peer repeating
		// chunks or sending damaged ones does not hold a transfer open.
		t.activity.Store(time.Now().UnixNano())
		whole := f.Written()
		t.mu.Lock()
		if rx.f == f {
			t.dirty[rx] = true
			if whole && !rx.written {
				rx.written = true
				if t.waiting++; t.waiting >= maxWaiting/4 {
					t.poke() // enough to place: do not wait for the tick
				}
			}
		}
		t.mu.Unlock()
	}
	return nil
}

// idle returns an error once the transfer has made no progress for the
// idle timeout. A sender that says it is still hashing what the receiver
// holds gets the time that hashing takes at a modest rate on top, and no
// more: heartbeats alone do not hold a transfer open.
func (t *transfer) idle(now time.Time) error {
	limit := t.r.Limits.IdleTimeout
	idle := now.Sub(time.Unix(0, t.activity.Load()))
	if idle <= limit {
		return nil
	}
	if now.Sub(time.Unix(0, t.heard.Load())) <= limit && idle <= limit+t.hashAllowance {
		return nil
	}
	return fmt.Errorf("%w: the sender made no progress for %v", wire.ErrTimeout, idle.Round(time.Second))
}

// hashRate is the slowest rate at which a sender is expected to hash what
// the receiver holds before its final Done.
const hashRate = 32 << 20

// commitLoop makes received data durable at a steady pace, confirms it to
// the sender and places files. It returns nil once everything is done.
func (t *transfer) commitLoop() error {
	tick := time.NewTicker(stateInterval)
	defer tick.Stop()
	lastCommit := time.Now()
	for {
		select {
		case <-t.ctx.Done():
			return context.Cause(t.ctx)
		case now := <-tick.C:
			if err := t.idle(now); err != nil {
				return err
			}
			if now.Sub(lastCommit) < commitInterval {
				t.recordWritten()
				continue
			}
		case <-t.wake:
		}
		lastCommit = time.Now()
		finished, err := t.commit()
		if err != nil {
			return err
		}
		if finished {
			if t.r.BeforeDone != nil {
				// Recorded before the sender hears: a receiver killed in
				// between is asked again, and the record repeats.
				if err := t.r.BeforeDone(Event{Kind: EventDone, Peer: t.peer, ReqID: t.reqID, Offer: t.offer, Progress: t.progressNow()}); err != nil {
					return fmt.Errorf("%w: the receiver could not record the transfer: %w", wire.ErrBusy, err)
				}
			}
			t.mu.Lock()
			t.over = true // from now on, data streams are refused as unknown
			t.mu.Unlock()
			return t.writeMsg(&wire.Done{ReqID: t.reqID, Final: true})
		}
	}
}

// commit makes written chunks durable, places whole files, and reports
// progress. It reports whether the transfer is complete.
func (t *transfer) commit() (bool, error) {
	t.mu.Lock()
	dirty := make([]*rxFile, 0, len(t.dirty))
	files := make([]*store.File, 0, len(t.dirty))
	for rx := range t.dirty {
		if rx.f == nil {
			continue // placed meanwhile
		}
		dirty = append(dirty, rx)
		files = append(files, rx.f)
	}
	clear(t.dirty)
	t.mu.Unlock()

	snaps, err := t.st.Commit(files)
	if err != nil {
		return false, err
	}
	var confirmed []wire.FileRanges
	t.mu.Lock()
	for i, rx := range dirty {
		if n := snaps[i].Size(); n > 0 {
			t.confirmed += n
			confirmed = append(confirmed, wire.FileRanges{File: uint32(rx.idx), Ranges: toWire(snaps[i])})
			t.changed[rx] = true
		}
		if rx.sum != nil {
			t.candidates[rx] = true
		}
	}
	// A bounded batch, so that progress reports flow and an abort is
	// noticed however many files wait; the rest go in the next commit,
	// at once.
	var ready []*rxFile
	for rx := range t.candidates {
		if len(ready) == maxPlaceBatch {
			t.poke()
			break
		}
		ready = append(ready, rx)
	}
	t.mu.Unlock()

	// Seal every file that is ready, make the journal's records of them
	// durable, then link them under their names: a receiver killed
	// between the link and the journal would otherwise forget a file it
	// placed, and receive it again as a copy.
	var sealed []*rxFile
	for _, rx := range ready {
		if t.ctx.Err() != nil {
			return false, context.Cause(t.ctx)
		}
		ok, err := t.seal(rx)
		if err != nil {
			return false, err
		}
		if ok {
			sealed = append(sealed, rx)
		}
	}
	if len(sealed) > 0 {
		if err := t.st.Sync(nil); err != nil {
			return false, err
		}
		for _, rx := range sealed {
			if err := t.link(rx); err != nil {
				return false, err
			}
		}
		// The names become durable before the sender hears that the
		// files are in place.
		if err := t.st.Sync(nil); err != nil {
			return false, err
		}
	}

	t.mu.Lock()
	msg := &wire.Progress{ReqID: t.reqID, Bytes: t.confirmed, Confirmed: confirmed, Complete: t.complete, Names: t.names}
	t.complete, t.names = nil, nil
	placedNow := t.placed
	t.placed = nil
	finished := t.remaining == 0 && t.senderDone
	// Everything the sender sent has arrived, yet files are missing
	// chunks: some failed verification. Ending the session keeps what is
	// good; the sender's next session sends only the rest.
	stuck := !finished && t.senderDone && t.ended >= t.wantStreams && len(t.dirty) == 0 && len(t.candidates) == 0
	missing := t.remaining
	now := time.Now()
	heartbeat := now.Sub(t.lastReport) >= heartbeatInterval
	if len(msg.Confirmed) > 0 || len(msg.Complete) > 0 || heartbeat {
		t.lastReport = now
	} else {
		msg = nil
	}
	t.mu.Unlock()
	for _, fr := range placedNow {
		t.r.notify(Event{Kind: EventFile, Peer: t.peer, ReqID: t.reqID, File: fr})
	}
	if stuck {
		return false, fmt.Errorf("%w: %d files still miss chunks that failed verification", wire.ErrHashMismatch, missing)
	}
	if msg != nil {
		for _, part := range splitProgress(msg) {
			if err := t.writeMsg(part); err != nil {
				return false, err
			}
		}
		t.r.notify(Event{Kind: EventProgress, Peer: t.peer, ReqID: t.reqID, Progress: t.progressNow()})
	}
	return finished, nil
}

// maxPlaceBatch bounds the files placed in one commit.
const maxPlaceBatch = 2048

// maxWaiting bounds the files written whole but not yet placed; data for
// further files waits until some are placed.
const maxWaiting = 4096

// seal prepares rx to be placed if it is whole, verified and its hash has
// come; or confirms a held copy against the sender's hash, which
// completes it at once. It reports whether rx waits to be linked.
func (t *transfer) seal(rx *rxFile) (bool, error) {
	t.mu.Lock()
	if rx.complete || rx.sum == nil {
		delete(t.candidates, rx)
		t.mu.Unlock()
		return false, nil
	}
	sum, held := *rx.sum, rx.held
	var f *store.File
	var err error
	if held == nil {
		f, err = t.fileOf(rx)
	}
	t.mu.Unlock()
	if err != nil {
		return false, err
	}
	if held != nil {
		if held.Root != sum {
			// The copy here is not what the sender has now: receive it
			// again, beside the copy, in the next session.
			t.st.Contradict(t.key(rx))
			return false, fmt.Errorf("%w: %s differs from the copy already here; sending again keeps both", wire.ErrHashMismatch, Escape(t.entry(rx).Path))
		}
		t.completed(rx, held.Name, !held.Present, held.Present, sum)
		return false, nil
	}
	if !f.Full() || !f.Verified() {
		return false, nil
	}
	if err := f.Seal(sum, t.r.Overwrite); err != nil {
		return false, err
	}
	return true, nil
}

// link places a sealed file under its final name.
func (t *transfer) link(rx *rxFile) error {
	t.mu.Lock()
	f, sum := rx.f, *rx.sum // sealed against it
	t.mu.Unlock()
	name, err := f.Link()
	if err != nil {
		return err
	}
	f.Release()
	t.completed(rx, name, false, false, sum)
	return nil
}

// completed records that rx is in place under name.
func (t *transfer) completed(rx *rxFile, name string, held, present bool, root chunker.Sum) {
	e := t.entry(rx)
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.candidates, rx)
	delete(t.dirty, rx)
	rx.complete, rx.f, rx.sum = true, nil, nil
	if rx.written {
		rx.written = false
		t.waiting--
		t.room.Broadcast()
	}
	t.activity.Store(time.Now().UnixNano()) // placing files is progress too
	t.remaining--
	t.complete = append(t.complete, uint32(rx.idx))
	if name != e.Path {
		t.names = append(t.names, wire.FileName{File: uint32(rx.idx), Name: name})
	}
	t.placed = append(t.placed, FileResult{Index: rx.idx, Path: e.Path, Size: e.Size, Name: name, Held: held, Present: present, Root: root})
	t.changed[rx] = true
}

// splitProgress keeps Progress frames well under the frame size limit.
func splitProgress(p *wire.Progress) []*wire.Progress {
	const per = 2048
	if len(p.Confirmed) <= per && len(p.Complete) <= per && len(p.Names) <= per {
		return []*wire.Progress{p}
	}
	var out []*wire.Progress
	for len(p.Confirmed) > 0 || len(p.Complete) > 0 || len(p.Names) > 0 {
		q := &wire.Progress{ReqID: p.ReqID, Bytes: p.Bytes}
		n := min(per, len(p.Confirmed))
		q.Confirmed, p.Confirmed = p.Confirmed[:n], p.Confirmed[n:]
		n = min(per, len(p.Complete))
		q.Complete, p.Complete = p.Complete[:n], p.Complete[n:]
		n = min(per, len(p.Names))
		q.Names, p.Names = p.Names[:n], p.Names[n:]
		out = append(out, q)
	}
	return out
}

// progressNow snapshots progress, listing files changed since last time.
func (t *transfer) progressNow() Progress {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := Progress{Confirmed: t.confirmed, Total: t.offer.Bytes, Received: t.received}
	for rx := range t.changed {
		e := t.entry(rx)
		fp := FileProgress{Index: rx.idx, Path: e.Path, Size: e.Size, Complete: rx.complete}
		switch {
		case rx.complete:
			fp.Confirmed = e.Size
		case rx.f != nil:
			fp.Confirmed = rx.f.Held().Size()
		}
		p.Files = append(p.Files, fp)
	}
	clear(t.changed)
	return p
}

// recordWritten saves the resume state of files that received chunks
// since their state was last saved. Between two commits this is what keeps
// a killed receiver from losing what it had written: the state lists
// written chunks before they are durable, and a resume verifies every
// listed chunk against the file before trusting it.
func (t *transfer) recordWritten() {
	t.mu.Lock()
	todo := make([]*store.File, 0, len(t.dirty))
	for rx := range t.dirty {
		if rx.f != nil {
			todo = append(todo, rx.f)
		}
	}
	t.mu.Unlock()
	for _, f := range todo {
		_ = f.SaveStateDue() // best effort; commit reports errors
	}
}

func toWire(s *chunker.Set) []wire.Range {
	var out []wire.Range
	for r := range s.All() {
		out = append(out, wire.Range{Off: r.Off, Len: r.Len()})
	}
	return out
}
