package peer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sync"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/dshare/dshare/chunker"
	"github.com/dshare/dshare/wire"
)

// transfer is one accepted offer on the receiving side.
type transfer struct {
	r      *Receiver
	peer   peer.ID
	reqID  uint64
	chunk  uint32
	offer  *Offer
	root   *os.Root
	ctrl   network.Stream
	ctx    context.Context
	cancel context.CancelCauseFunc
	wake   chan struct{}

	wmu sync.Mutex // serializes writes on ctrl

	data     sync.WaitGroup // receiveData goroutines
	finished chan struct{}  // closed once the transfer has let go of its files

	mu          sync.Mutex
	files       []*rfile // by manifest index; nil for directories
	dirty       map[*rfile]bool
	changed     map[*rfile]bool
	complete    []uint32
	confirmed   uint64
	received    uint64 // payload bytes read in this session
	remaining   int
	senderDone  bool
	over        bool // every file is in place and Done is on its way
	streams     int  // data streams open now
	ended       int  // data streams that have ended
	wantStreams int  // data streams the sender says it opened
	lastReport  time.Time
}

func newTransfer(ctx context.Context, r *Receiver, ctrl network.Stream, reqID uint64, chunk uint32, o *Offer) (*transfer, error) {
	root, err := os.OpenRoot(r.Dir)
	if err != nil {
		return nil, err
	}
	t := &transfer{
		r: r, peer: o.Peer, reqID: reqID, chunk: chunk, offer: o, root: root, ctrl: ctrl,
		wake: make(chan struct{}, 1), files: make([]*rfile, len(o.Entries)), finished: make(chan struct{}),
		dirty: map[*rfile]bool{}, changed: map[*rfile]bool{},
	}
	t.ctx, t.cancel = context.WithCancelCause(ctx)
	if err := t.prepare(); err != nil {
		t.close()
		return nil, err
	}
	return t, nil
}

// prepare creates the directories and picks up any resume state.
func (t *transfer) prepare() error {
	for i, e := range t.offer.Entries {
		dir := e.Path
		if !e.Dir {
			dir = path.Dir(e.Path)
		}
		if dir != "." {
			if err := t.root.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("%w: create %s: %w", wire.ErrBadPath, Escape(dir), err)
			}
		}
		if e.Dir {
			continue
		}
		f := newRFile(i, e, string(t.peer), t.chunk)
		for _, name := range []string{f.part, f.statePath} {
			// A planted link or directory where dshare keeps its own
			// files is refused; os.Root alone would only stop it late.
			if fi, err := t.root.Lstat(name); err == nil && !fi.Mode().IsRegular() {
				return fmt.Errorf("%w: %s exists and is not a regular file", wire.ErrBadPath, Escape(name))
			}
		}
		f.resume(t.root)
		t.files[i] = f
		t.confirmed += f.st.Have.Size()
		t.remaining++
	}
	return nil
}

// close stops the transfer, waits for its data streams, keeps what was
// received for a later resume, and releases the files.
func (t *transfer) close() {
	t.cancel(wire.ErrCanceled)
	t.data.Wait()
	t.flush()
	for _, f := range t.files {
		if f != nil {
			f.closeFile()
		}
	}
	t.root.Close()
	close(t.finished)
}

// flush makes pending data durable and records it in the resume state, so
// that an interrupted transfer loses nothing it had received.
func (t *transfer) flush() {
	t.mu.Lock()
	var dirty []*rfile
	for f := range t.dirty {
		if !f.complete {
			dirty = append(dirty, f)
		}
	}
	t.mu.Unlock()
	for _, f := range dirty {
		if f.sync() != nil {
			continue
		}
		t.mu.Lock()
		f.st.Have.Union(f.pending)
		f.pending = new(chunker.Set)
		delete(t.dirty, f)
		t.mu.Unlock()
		_ = t.saveState(f, true)
	}
}

func (t *transfer) abort(err error) { t.cancel(err) }

func (t *transfer) writeMsg(m wire.Message) error {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	return wire.WriteMsg(t.ctrl, m)
}

// run answers the offer and drives the transfer to its end.
func (t *transfer) run(rd *wire.Reader) error {
	defer t.close()
	accept := &wire.Accept{ReqID: t.reqID}
	for _, f := range t.files {
		if f != nil && f.st.Have.Size() > 0 {
			accept.Have = append(accept.Have, wire.FileRanges{File: uint32(f.idx), Ranges: toWire(f.st.Have)})
		}
	}
	if err := t.writeMsg(accept); err != nil {
		return err
	}
	ctrlErr := make(chan error, 1)
	go func() { ctrlErr <- t.readControl(rd) }()
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
		t.cancel(err)
		<-commitErr
		return err
	}
}

// readControl reads the sender's control frames: file hashes and Done.
func (t *transfer) readControl(rd *wire.Reader) error {
	for {
		m, err := rd.ReadMsg()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("%w: sender went away", wire.ErrCanceled)
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
	for _, s := range d.Sums {
		f, err := t.file(s.File)
		if err != nil {
			return err
		}
		f.sum = s.Sum
	}
	if d.Final {
		t.senderDone = true
		t.wantStreams = int(d.Streams)
	}
	select {
	case t.wake <- struct{}{}:
	default:
	}
	return nil
}

// file returns manifest entry i if it is a regular file. Call with t.mu
// held or after prepare, as t.files does not change.
func (t *transfer) file(i uint32) (*rfile, error) {
	if int(i) >= len(t.files) || t.files[i] == nil {
		return nil, fmt.Errorf("%w: no file %d in the manifest", wire.ErrProtocol, i)
	}
	return t.files[i], nil
}

// receiveData reads Data frames from one data stream until it ends.
func (t *transfer) receiveData(ctx context.Context, s network.Stream, rd *wire.Reader) error {
	t.mu.Lock()
	if t.over {
		t.mu.Unlock()
		return fmt.Errorf("%w: transfer %d has ended", wire.ErrNotFound, t.reqID)
	}
	if t.streams >= maxDataStreams {
		t.mu.Unlock()
		return fmt.Errorf("%w: more than %d data streams", wire.ErrLimit, maxDataStreams)
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
		select {
		case t.wake <- struct{}{}:
		default:
		}
	}()
	if err := s.Scope().ReserveMemory(int(t.chunk), network.ReservationPriorityHigh); err != nil {
		return fmt.Errorf("%w: %w", wire.ErrBusy, err)
	}
	defer s.Scope().ReleaseMemory(int(t.chunk))
	stop := context.AfterFunc(t.ctx, func() { s.ResetWithError(resetCanceled) })
	defer stop()

	buf := alignedBuf(int(t.chunk))
	for {
		_ = s.SetReadDeadline(time.Now().Add(t.r.Limits.IdleTimeout))
		m, err := rd.ReadMsg()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		d, ok := m.(*wire.Data)
		if !ok {
			return fmt.Errorf("%w: %v on a data stream", wire.ErrProtocol, m.Type())
		}
		f, err := t.file(d.File)
		if err != nil {
			return err
		}
		idx, err := f.checkChunk(d.Offset, d.Length)
		if err != nil {
			return err
		}
		p := buf[:d.Length]
		_ = s.SetReadDeadline(t.r.Limits.payloadDeadline(d.Length))
		if err := rd.Payload(p); err != nil {
			return err
		}
		sum := chunker.Hash(p)
		t.mu.Lock()
		t.received += uint64(len(p))
		held := f.complete || f.st.Have.Contains(d.Offset, d.Offset+uint64(d.Length))
		t.mu.Unlock()
		if string(sum[:]) != string(d.Hash) {
			continue // damaged: not recorded, so a later session sends it again
		}
		if held {
			continue
		}
		if err := f.writeAt(t.root, p, d.Offset); err != nil {
			// A local failure, a full disk say, ends the transfer with
			// its reason; what is already written stays for a resume.
			t.abort(err)
			return err
		}
		t.mu.Lock()
		f.st.Sums[idx] = sum
		f.pending.Add(d.Offset, d.Offset+uint64(d.Length))
		t.dirty[f] = true
		t.mu.Unlock()
	}
}

// commitLoop makes received data durable at a steady pace, confirms it to
// the sender and finishes files. It returns nil once everything is done.
func (t *transfer) commitLoop() error {
	tick := time.NewTicker(stateInterval)
	defer tick.Stop()
	lastCommit := time.Now()
	for {
		select {
		case <-t.ctx.Done():
			return context.Cause(t.ctx)
		case now := <-tick.C:
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
			t.mu.Lock()
			t.over = true // from now on, data streams are refused as unknown
			t.mu.Unlock()
			return t.writeMsg(&wire.Done{ReqID: t.reqID, Final: true})
		}
	}
}

// commit fsyncs files with pending data, records their new ranges,
// finishes whole files and reports progress. It reports whether the
// transfer is complete.
func (t *transfer) commit() (bool, error) {
	type work struct {
		f    *rfile
		snap *chunker.Set
	}
	var todo []work
	t.mu.Lock()
	for f := range t.dirty {
		todo = append(todo, work{f, f.pending.Clone()})
	}
	for _, f := range t.files {
		if f != nil && !f.complete && !t.dirty[f] && f.sum != nil && f.full() {
			todo = append(todo, work{f, new(chunker.Set)})
		}
	}
	t.mu.Unlock()

	var confirmed []wire.FileRanges
	for _, w := range todo {
		if w.snap.Size() > 0 {
			if err := w.f.sync(); err != nil {
				return false, err
			}
		}
		t.mu.Lock()
		w.f.st.Have.Union(w.snap)
		w.f.pending.Subtract(w.snap)
		if w.f.pending.Size() == 0 {
			delete(t.dirty, w.f)
		}
		t.confirmed += w.snap.Size()
		if w.snap.Size() > 0 {
			confirmed = append(confirmed, wire.FileRanges{File: uint32(w.f.idx), Ranges: toWire(w.snap)})
			t.changed[w.f] = true
		}
		ready := w.f.full() && w.f.sum != nil
		t.mu.Unlock()
		var err error
		if ready {
			err = t.finish(w.f)
		} else if w.snap.Size() > 0 {
			err = t.saveState(w.f, true)
		}
		if err != nil {
			return false, err
		}
	}

	t.mu.Lock()
	msg := &wire.Progress{ReqID: t.reqID, Bytes: t.confirmed, Confirmed: confirmed, Complete: t.complete}
	t.complete = nil
	finished := t.remaining == 0 && t.senderDone
	// Everything the sender sent has arrived, yet files are missing
	// chunks: some failed verification. Ending the session keeps what is
	// good; the sender's next session sends only the rest.
	stuck := !finished && t.senderDone && t.ended >= t.wantStreams && len(t.dirty) == 0
	missing := t.remaining
	now := time.Now()
	heartbeat := now.Sub(t.lastReport) >= heartbeatInterval
	if len(msg.Confirmed) > 0 || len(msg.Complete) > 0 || heartbeat {
		t.lastReport = now
	} else {
		msg = nil
	}
	t.mu.Unlock()
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

// splitProgress keeps Progress frames well under the frame size limit.
func splitProgress(p *wire.Progress) []*wire.Progress {
	const per = 4096
	if len(p.Confirmed) <= per && len(p.Complete) <= per {
		return []*wire.Progress{p}
	}
	var out []*wire.Progress
	for len(p.Confirmed) > 0 || len(p.Complete) > 0 {
		q := &wire.Progress{ReqID: p.ReqID, Bytes: p.Bytes}
		n := min(per, len(p.Confirmed))
		q.Confirmed, p.Confirmed = p.Confirmed[:n], p.Confirmed[n:]
		n = min(per, len(p.Complete))
		q.Complete, p.Complete = p.Complete[:n], p.Complete[n:]
		out = append(out, q)
	}
	return out
}

// progressNow snapshots progress, listing files changed since last time.
func (t *transfer) progressNow() Progress {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := Progress{Confirmed: t.confirmed, Total: t.offer.Bytes, Received: t.received}
	for f := range t.changed {
		p.Files = append(p.Files, FileProgress{Index: f.idx, Path: f.entry.Path, Size: f.entry.Size,
			Confirmed: f.st.Have.Size(), Complete: f.complete})
	}
	clear(t.changed)
	return p
}

// finish verifies a whole file against the sender's hash and moves it to
// its final name.
func (t *transfer) finish(f *rfile) error {
	t.mu.Lock()
	got := chunker.Root(f.entry.Size, t.chunk, f.st.Sums)
	want := f.sum
	t.mu.Unlock()
	if string(got[:]) != string(want) {
		f.discard(t.root)
		return fmt.Errorf("%w: %s does not match the sender's hash", wire.ErrHashMismatch, Escape(f.entry.Path))
	}
	name, err := f.place(t.root, t.r.Overwrite)
	if err != nil {
		return err
	}
	_ = t.root.Remove(f.statePath)
	syncDir(t.root, path.Dir(name))
	t.mu.Lock()
	f.complete = true
	f.final = name
	t.remaining--
	t.complete = append(t.complete, uint32(f.idx))
	t.changed[f] = true
	t.mu.Unlock()
	return nil
}

// recordWritten saves the resume state of files that received chunks
// since their state was last saved. Between two commits this is what keeps
// a killed receiver from losing what it had written: the state lists
// written chunks before they are durable, and a resume verifies every
// listed chunk against the file before trusting it.
func (t *transfer) recordWritten() {
	t.mu.Lock()
	var todo []*rfile
	for f := range t.dirty {
		if f.pending.Size() != f.savedPending {
			todo = append(todo, f)
		}
	}
	t.mu.Unlock()
	for _, f := range todo {
		_ = t.saveState(f, false) // best effort; commit reports errors
	}
}

// saveState writes f's resume state: its durable chunks and those written
// since. durable also fsyncs the state file.
func (t *transfer) saveState(f *rfile, durable bool) error {
	t.mu.Lock()
	st := *f.st
	st.Have = f.st.Have.Clone()
	st.Have.Union(f.pending)
	f.savedPending = f.pending.Size()
	b, err := st.MarshalBinary()
	t.mu.Unlock()
	if err != nil {
		return err
	}
	return writeFileAtomic(t.root, f.statePath, b, durable)
}

func toWire(s *chunker.Set) []wire.Range {
	var out []wire.Range
	for r := range s.All() {
		out = append(out, wire.Range{Off: r.Off, Len: r.Len()})
	}
	return out
}

// diskErr marks a full disk with wire.ErrNoSpace, so the peer learns why.
func diskErr(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %w", wire.ErrNoSpace, err)
	}
	return err
}

// writeFileAtomic writes b to name through a temporary file and a rename.
func writeFileAtomic(root *os.Root, name string, b []byte, durable bool) error {
	tmp := name + ".tmp"
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return diskErr(err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return diskErr(err)
	}
	if durable {
		if err := f.Sync(); err != nil {
			f.Close()
			return diskErr(err)
		}
	}
	if err := f.Close(); err != nil {
		return diskErr(err)
	}
	return root.Rename(tmp, name)
}

func syncDir(root *os.Root, dir string) {
	d, err := root.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	d.Close()
}
