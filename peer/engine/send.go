package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dshare/dshare/chunker"
	"github.com/dshare/dshare/peer/source"
	"github.com/dshare/dshare/wire"
)

// SendOptions tune a send. Zero values mean the defaults.
type SendOptions struct {
	Streams   int    // parallel data streams
	ChunkSize uint32 // bytes per chunk
	// RetryFor is how long to keep reconnecting and resuming after the
	// connection fails without progress; 0 disables retries.
	RetryFor time.Duration
	// OnRetry, if set, is told why a session ended and how long the
	// sender waits before the next one.
	OnRetry func(err error, wait time.Duration)
	// OnAccept, if set, is called once the receiver has accepted, with
	// the bytes it already holds from earlier runs.
	OnAccept func(already uint64)
	// OnProgress, if set, is called from one goroutine whenever the
	// receiver confirms bytes.
	OnProgress func(Progress)
	// Tags, Note and Announce travel in the offer for the receiver's
	// inbox and its user; Item is the outbox item being delivered.
	Tags     []string
	Note     string
	Announce string
	Item     uint64
	// Pace, if set, is called before each chunk of n bytes is written, and
	// may wait: a sharer's rate limits.
	Pace func(ctx context.Context, n int) error
	// Name is the sender's display name, shown to the receiver as a
	// hint; the peer ID is what counts.
	Name string
	// Lanes, above 1, is how many connections a link that can should
	// spread data streams over (see DataLink).
	Lanes int
}

// Result summarizes a finished send.
type Result struct {
	Files    int
	Bytes    uint64        // total size of the files
	Sent     uint64        // payload bytes transmitted in this run, over all sessions
	Skipped  uint64        // bytes the receiver already held when the run started
	Sessions int           // 1 plus the number of reconnections
	Elapsed  time.Duration // from the receiver's first acceptance to its final confirmation
	// Path is PathDirect or PathRelayed: how most bytes travelled.
	Path         string
	RelayedBytes uint64    // payload bytes sent through a relay
	FirstByte    time.Time // when the first chunk was written
	// SkippedFiles counts files the receiver already held complete when
	// the run started; their bytes count in Skipped.
	SkippedFiles int
	// Renamed maps offered paths to the names the receiver placed them
	// under, where those differ.
	Renamed map[string]string
	// Link is what the transport saw; the engine leaves it to the Link's
	// owner, who knows the connections.
	Link LinkStats
}

// LinkStats describes the connections a send used. Zero values are
// unknown (a relayed connection reports no round trip).
type LinkStats struct {
	Conns       int           // connections that carried data
	MinRTT      time.Duration // the least round trip seen
	SmoothedRTT time.Duration // the first connection's, at the end
	PacketsSent uint64
	PacketsLost uint64
}

// chunkSizeFor is DefaultChunkSize, or the least power of two above it
// that keeps the offer within the receiver's cap on chunks. It depends on
// the manifest alone, so that a resumed send finds the partial files the
// last one left: the chunk size is part of their identity.
func chunkSizeFor(entries []wire.Entry) uint32 {
	cs := uint64(DefaultChunkSize)
	for cs < wire.MaxChunkSize {
		var n uint64
		for _, e := range entries {
			n += (e.Size + cs - 1) / cs
		}
		if n <= maxChunks {
			break
		}
		cs *= 2
	}
	return uint32(cs)
}

// Send offers m to target and sends it. It returns only once the receiver
// has confirmed every file verified and in place, or on failure. A
// rejection matches wire.ErrRejected (or the sentinel of its code).
//
// Once the receiver has accepted, a session that fails on the way (a lost
// connection, a receiver that restarted, chunks that failed verification)
// is followed by a new one,
// after a backoff, for up to opts.RetryFor without progress. Each new
// session offers the same manifest, and the receiver's answer says what it
// holds, so only the rest is sent.
func Send(ctx context.Context, link Link, m *source.Manifest, opts SendOptions) (*Result, error) {
	if opts.Streams <= 0 {
		opts.Streams = DefaultStreams
	}
	if opts.ChunkSize == 0 {
		opts.ChunkSize = chunkSizeFor(m.Entries)
	}
	var (
		first      *Result // of the first session the receiver accepted
		accepted   time.Time
		sent       uint64
		relayed    uint64
		firstByte  time.Time
		renamed    map[string]string
		giveUpAt   time.Time
		backoff    = minBackoff
		onAccept   = opts.OnAccept
		onProgress = opts.OnProgress
	)
	opts.OnAccept = func(already uint64) {
		if accepted.IsZero() {
			accepted = time.Now()
			if onAccept != nil {
				onAccept(already)
			}
		}
	}
	for session := 1; ; session++ {
		s := &sendSession{m: m, opts: opts, reqID: newReqID(), link: link}
		if onProgress != nil {
			base := sent
			s.opts.OnProgress = func(p Progress) {
				p.Sent += base
				onProgress(p)
			}
		}
		err := s.connectAndRun(ctx)
		sent += s.sent.Load()
		relayed += s.relayed.Load()
		if fb := s.firstByte.Load(); fb != 0 && firstByte.IsZero() {
			firstByte = time.Unix(0, fb)
		}
		if first == nil && s.res != nil {
			first = s.res
		}
		s.namesMu.Lock()
		for p, name := range s.renamed {
			if renamed == nil {
				renamed = map[string]string{}
			}
			renamed[p] = name
		}
		s.namesMu.Unlock()
		if err == nil {
			res := *first
			res.Sent, res.Sessions, res.Elapsed = sent, session, time.Since(accepted)
			res.RelayedBytes, res.FirstByte, res.Path = relayed, firstByte, PathDirect
			res.Renamed = renamed
			if 2*relayed > sent {
				res.Path = PathRelayed
			}
			return &res, nil
		}
		// Retries resume a transfer the receiver has accepted; a peer that
		// was never reached, or said no, gets a prompt answer instead.
		// A receiver that saw the offer and went away before answering
		// (killed, say) may be back at once: that too is retried.
		if ctx.Err() != nil || opts.RetryFor <= 0 || first == nil && !s.offered.Load() || !retryable(err) {
			return nil, err
		}
		if s.progressed.Load() || giveUpAt.IsZero() {
			giveUpAt, backoff = time.Now().Add(opts.RetryFor), minBackoff
		}
		if time.Now().After(giveUpAt) {
			return nil, fmt.Errorf("gave up after %v without progress: %w", opts.RetryFor, err)
		}
		if opts.OnRetry != nil {
			opts.OnRetry(err, backoff)
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil, err
		}
		backoff = min(2*backoff, maxBackoff)
		link.Drop() // never reuse a connection that failed
	}
}

const (
	minBackoff = 250 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// retryable reports whether a new session may succeed where err ended one.
func retryable(err error) bool {
	var perm interface{ Permanent() bool }
	if errors.As(err, &perm) && perm.Permanent() {
		return false // the link knows that trying again cannot help
	}
	var re *wire.RemoteError
	if errors.As(err, &re) {
		switch re.Code {
		case wire.CodeHashMismatch, wire.CodeBusy, wire.CodeCanceled, wire.CodeInternal, wire.CodeLimit, wire.CodeTimeout:
			return true
		}
		return false
	}
	for _, local := range []error{source.ErrSource, wire.ErrSourceChanged, wire.ErrProtocol,
		wire.ErrMalformed, wire.ErrUnknownType, wire.ErrFrameTooLarge} {
		if errors.Is(err, local) {
			return false
		}
	}
	return true // the network: a lost connection, a reset, a timeout
}

func (s *sendSession) connectAndRun(ctx context.Context) error {
	if err := s.link.Connect(ctx); err != nil {
		return err
	}
	return s.run(ctx)
}

// sendSession is one run of a send, over one control stream and several
// data streams. Data streams come from the link, so that they may be
// spread over more than one connection.
type sendSession struct {
	m     *source.Manifest
	opts  SendOptions
	reqID uint64
	link  Link

	ctrl       Stream
	wmu        sync.Mutex
	files      []*sfile // by manifest index; nil for directories
	sent       atomic.Uint64
	relayed    atomic.Uint64 // of sent, through a relay
	firstByte  atomic.Int64  // Unix nanoseconds
	streams    atomic.Uint32 // data streams opened
	heard      atomic.Int64  // when the receiver last said anything, Unix nanoseconds
	progressed atomic.Bool   // the receiver confirmed new bytes in this session
	offered    atomic.Bool   // the whole offer was written
	res        *Result       // set once the receiver has accepted
	ctrlDone   chan struct{} // closed once the receiver's side of ctrl has ended
	accepted   atomic.Bool   // res is set and the control reader runs

	namesMu sync.Mutex
	renamed map[string]string // offered path -> name placed under, where they differ
}

func (s *sendSession) setName(p, name string) {
	s.namesMu.Lock()
	defer s.namesMu.Unlock()
	if s.renamed == nil {
		s.renamed = map[string]string{}
	}
	s.renamed[p] = name
}

// sfile is one file being sent.
type sfile struct {
	idx       int
	src       *source.File
	entry     wire.Entry
	sums      []chunker.Sum
	remaining atomic.Int64 // chunks not yet read and hashed
	confirmed uint64       // owned by the control reader
}

type job struct {
	f        *sfile
	chunk    int
	hashOnly bool // the receiver has it; hash it for the whole-file sum only
}

func (s *sendSession) run(ctx context.Context) (err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer func() {
		// Once the session is canceled, streams fail with resets; the
		// cause is what ended it.
		if cause := context.Cause(ctx); err != nil && cause != nil {
			err = cause
		}
		cancel(wire.ErrCanceled)
	}()
	ctrl, err := s.link.Open(ctx)
	if err != nil {
		return fmt.Errorf("open stream: %w", err)
	}
	s.ctrl = ctrl
	s.ctrlDone = make(chan struct{})
	ended := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(ended)
		// Only the caller's cancellation, a user's Ctrl-C, is worth a
		// word; a session that failed ends with its own error.
		if errors.Is(context.Cause(ctx), context.Canceled) && s.accepted.Load() {
			s.sayGoodbye()
		}
		_ = ctrl.Reset(resetFor(context.Cause(ctx)))
	})
	defer func() {
		if !stop() {
			<-ended // the goodbye is said before the caller closes the connection
		}
	}()

	rd := wire.NewReader(ctrl)
	parts := wire.SplitOffer(s.reqID, s.opts.ChunkSize, s.m.Entries)
	parts[0].Name = s.opts.Name
	parts[0].Tags, parts[0].Note, parts[0].Announce, parts[0].Item = s.opts.Tags, s.opts.Note, s.opts.Announce, s.opts.Item
	for _, part := range parts {
		if err := s.write(part); err != nil {
			// A receiver that refuses early stops reading; its reason
			// may already be waiting.
			_ = ctrl.SetReadDeadline(time.Now().Add(time.Second))
			if m, rerr := rd.ReadMsg(); rerr == nil {
				if r, ok := m.(*wire.Reject); ok {
					return r.Err()
				}
			}
			return fmt.Errorf("send offer: %w", err)
		}
	}
	s.offered.Store(true)
	accept, err := readAccept(ctrl, rd)
	if err != nil {
		return err
	}
	jobs, res, err := s.plan(accept)
	if err != nil {
		return err
	}
	if s.opts.OnAccept != nil {
		s.opts.OnAccept(res.Skipped)
	}
	s.res = res
	s.accepted.Store(true)
	defer s.closeFiles() // a failed session must not leave sources open for the next

	s.heard.Store(time.Now().UnixNano())
	final := make(chan error, 1)
	go func() {
		defer close(s.ctrlDone)
		final <- s.readControl(rd, res)
	}()
	go s.watchdog(ctx, cancel)
	go s.heartbeat(ctx)

	work := make(chan job)
	var wg sync.WaitGroup
	// Every worker, those the supervisor may add included, has room for
	// its error: a blocked send would keep wg.Wait from returning.
	workErr := make(chan error, s.opts.Streams+MaxDataStreams)
	var running atomic.Int32 // workers, less those that retired
	var bulk atomic.Bool     // the last job handed out was a whole chunk
	dl, _ := s.link.(DataLink)
	// surplus lets a worker that has just sent a whole chunk retire while
	// the link wants fewer streams than run: on a fast short path, eight
	// streams with a chunk buffer each cost a tenth more CPU per byte
	// than four, and the transfer is CPU-bound there. Small files keep
	// them all: there the receiver works on a file per stream.
	surplus := func() bool {
		if dl == nil {
			return false
		}
		want := int32(dl.Wanted())
		for {
			n := running.Load()
			if want <= 0 || n <= want {
				return false
			}
			if running.CompareAndSwap(n, n-1) {
				return true
			}
		}
	}
	startWorker := func() {
		running.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.worker(ctx, work, surplus)
			if errors.Is(err, errRetired) {
				return // surplus counted it out
			}
			if err != nil {
				workErr <- err
				cancel(err) // first: a failed worker is not replaced
			}
			running.Add(-1)
		}()
	}
	for range s.opts.Streams {
		startWorker()
	}
	dispatched := make(chan struct{})
	go func() {
		defer close(work)
		defer close(dispatched)
		for _, j := range jobs {
			bulk.Store(s.whole(j))
			select {
			case work <- j:
			case <-ctx.Done():
				return
			}
		}
	}()
	if dl != nil {
		// A link that spreads data over several connections may want
		// more streams as it adds some, and small files want the usual
		// number again after large ones: workers are added while there
		// is work to hand out. The supervisor counts in wg itself, so
		// that wg.Wait cannot return while it may still add.
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(laneCheckInterval)
			defer tick.Stop()
			for {
				select {
				case <-dispatched:
					return
				case <-tick.C:
					want := dl.Wanted()
					if !bulk.Load() {
						want = max(want, s.opts.Streams)
					}
					for ctx.Err() == nil && int(running.Load()) < min(want, MaxDataStreams) {
						startWorker()
					}
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-workErr:
		return err
	case err := <-final:
		return errOr(err, "receiver finished before all data was sent")
	default:
	}
	if err := s.write(&wire.Done{ReqID: s.reqID, Final: true, Streams: s.streams.Load()}); err != nil {
		return err
	}
	select {
	case err := <-final:
		if err != nil {
			return err
		}
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	_ = ctrl.Close()
	return nil
}

// readAccept reads the receiver's answer to the offer, in as many parts
// as it comes in.
func readAccept(ctrl Stream, rd *wire.Reader) (*wire.Accept, error) {
	var acc *wire.Accept
	defer func() { _ = ctrl.SetReadDeadline(time.Time{}) }()
	for {
		// A receiver that is still deciding says so every
		// heartbeatInterval; silence for longer means it went away.
		_ = ctrl.SetReadDeadline(time.Now().Add(stallTimeout))
		reply, err := rd.ReadMsg()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, fmt.Errorf("%w while waiting for its answer", errStalled)
		}
		if err != nil {
			return nil, fmt.Errorf("waiting for the receiver's answer: %w", err)
		}
		switch r := reply.(type) {
		case *wire.Progress:
			// A heartbeat while the receiver decides; it comes before
			// the answer only.
			if acc != nil {
				return nil, fmt.Errorf("%w: progress within the answer to an offer", wire.ErrProtocol)
			}
		case *wire.Accept:
			if acc == nil {
				acc = r
			} else if r.ReqID != acc.ReqID {
				return nil, fmt.Errorf("%w: accept parts of two requests", wire.ErrProtocol)
			} else {
				acc.Have = append(acc.Have, r.Have...)
				acc.Held = append(acc.Held, r.Held...)
			}
			if len(acc.Have)+len(acc.Held) > maxEntries {
				return nil, fmt.Errorf("%w: accept lists more files than offered", wire.ErrProtocol)
			}
			if !r.More {
				return acc, nil
			}
		case *wire.Reject:
			return nil, r.Err()
		case *wire.Error:
			return nil, r.Err()
		default:
			return nil, fmt.Errorf("%w: %v in answer to an offer", wire.ErrProtocol, r.Type())
		}
	}
}

// heartbeat tells the receiver, while no data may flow (hashing what it
// holds, say), that this sender is still at work.
func (s *sendSession) heartbeat(ctx context.Context) {
	tick := time.NewTicker(heartbeatInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if s.write(&wire.Done{ReqID: s.reqID}) != nil {
				return
			}
		}
	}
}

func errOr(err error, msg string) error {
	if err != nil {
		return err
	}
	return fmt.Errorf("%w: %s", wire.ErrProtocol, msg)
}

// plan lists the chunks to send and the ones to hash only, and sends the
// whole-file hash of empty files straight away.
func (s *sendSession) plan(a *wire.Accept) ([]job, *Result, error) {
	if a.ReqID != s.reqID {
		return nil, nil, fmt.Errorf("%w: accept for request %d", wire.ErrProtocol, a.ReqID)
	}
	s.files = make([]*sfile, len(s.m.Entries))
	have := make(map[int]*chunker.Set)
	for _, fr := range a.Have {
		if int(fr.File) >= len(s.files) {
			return nil, nil, fmt.Errorf("%w: accept names file %d", wire.ErrProtocol, fr.File)
		}
		set := new(chunker.Set)
		for _, r := range fr.Ranges {
			end, _ := r.End()
			set.Add(r.Off, end)
		}
		have[int(fr.File)] = set
	}
	held := make(map[int]bool, len(a.Held))
	for _, i := range a.Held {
		if int(i) >= len(s.files) || s.m.Entries[i].Dir {
			return nil, nil, fmt.Errorf("%w: accept holds file %d", wire.ErrProtocol, i)
		}
		held[int(i)] = true
	}
	res := &Result{}
	// Chunks to send come first, and chunks the receiver holds (hashed
	// only, for the whole-file sums) after them, so that a resume starts
	// sending at once however much is already there.
	var jobs, hashOnly []job
	var empty []wire.FileSum
	for i, e := range s.m.Entries {
		if e.Dir {
			continue
		}
		n := chunker.Chunks(e.Size, s.opts.ChunkSize)
		f := &sfile{idx: i, src: s.m.Open(i), entry: e, sums: make([]chunker.Sum, n)}
		f.remaining.Store(int64(n))
		s.files[i] = f
		res.Files++
		res.Bytes += e.Size
		if n == 0 {
			root := chunker.Root(0, s.opts.ChunkSize, nil)
			empty = append(empty, wire.FileSum{File: uint32(i), Sum: root[:]})
		}
		if held[i] {
			res.SkippedFiles++
		}
		for c := range n {
			r := chunker.ChunkRange(c, e.Size, s.opts.ChunkSize)
			if held[i] || have[i] != nil && have[i].Contains(r.Off, r.End) {
				res.Skipped += r.Len()
				f.confirmed += r.Len()
				hashOnly = append(hashOnly, job{f: f, chunk: c, hashOnly: true})
			} else {
				jobs = append(jobs, job{f: f, chunk: c})
			}
		}
	}
	jobs = append(jobs, hashOnly...)
	for len(empty) > 0 {
		n := min(len(empty), 4096)
		if err := s.write(&wire.Done{ReqID: s.reqID, Sums: empty[:n]}); err != nil {
			return nil, nil, err
		}
		empty = empty[n:]
	}
	return jobs, res, nil
}

// sayGoodbye tells the receiver that this sender was stopped on purpose,
// so that it does not report a network failure, and waits a moment for
// it to hear: closing the connection at once would drop the message.
func (s *sendSession) sayGoodbye() {
	const wait = 500 * time.Millisecond
	_ = s.ctrl.SetWriteDeadline(time.Now().Add(wait))
	if s.write(&wire.Error{Code: wire.CodeCanceled, Message: "the sender was stopped by its user"}) != nil {
		return
	}
	select {
	case <-s.ctrlDone:
	case <-time.After(wait):
	}
}

func (s *sendSession) write(m wire.Message) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return wire.WriteMsg(s.ctrl, m)
}

// errRetired ends a worker that the link no longer needs.
var errRetired = errors.New("worker retired")

// whole reports whether j sends a whole chunk.
func (s *sendSession) whole(j job) bool {
	return !j.hashOnly && chunker.ChunkRange(j.chunk, j.f.entry.Size, s.opts.ChunkSize).Len() == uint64(s.opts.ChunkSize)
}

// worker sends chunks over a data stream of its own. After a whole chunk
// it retires, with errRetired, if surplus says so.
func (s *sendSession) worker(ctx context.Context, work <-chan job, surplus func() bool) error {
	var st Stream
	defer func() {
		if st != nil {
			_ = st.Close()
		}
	}()
	buf := make([]byte, s.opts.ChunkSize)
	for j := range work {
		r := chunker.ChunkRange(j.chunk, j.f.entry.Size, s.opts.ChunkSize)
		p := buf[:r.Len()]
		// One read: the kernel's copy leaves the chunk in the cache
		// for the hash; reading it in steps cost more calls than that.
		if err := j.f.src.ReadAt(p, r.Off); err != nil {
			return err
		}
		sum := chunker.Hash(p)
		j.f.sums[j.chunk] = sum
		if j.hashOnly && st != nil {
			// Hash-only jobs come last: no more data follows on this
			// stream, and an idle open stream would look like a stall.
			_ = st.Close()
			st = nil
		}
		if !j.hashOnly {
			if st != nil && s.link.Relayed(st) && s.link.DirectNow() {
				// Hole punching has succeeded: a new stream goes over the
				// best connection, the direct one, and the transfer
				// moves there without restarting.
				_ = st.Close()
				st = nil
			}
			if dl, ok := s.link.(DataLink); ok && st != nil && dl.Retired(st) {
				// Its connection is no longer one the link wants used
				// (the path is congested): the stream moves.
				_ = st.Close()
				st = nil
			}
			if st == nil {
				var err error
				if st, err = s.openData(ctx); err != nil {
					return err
				}
			}
			if s.opts.Pace != nil {
				if err := s.opts.Pace(ctx, len(p)); err != nil {
					return err
				}
			}
			s.firstByte.CompareAndSwap(0, time.Now().UnixNano())
			if err := wire.WriteData(st, &wire.Data{File: uint32(j.f.idx), Offset: r.Off, Hash: sum[:]}, p); err != nil {
				// On a lane that died too: what it carried unconfirmed
				// is lost with it, and the next session sends it again.
				return fmt.Errorf("send %s: %w", j.f.entry.Path, err)
			}
			s.sent.Add(r.Len())
			if s.link.Relayed(st) {
				s.relayed.Add(r.Len())
			}
		}
		if j.f.remaining.Add(-1) == 0 {
			if err := s.fileRead(j.f); err != nil {
				return err
			}
		}
		if s.whole(j) && surplus() {
			return errRetired
		}
	}
	return nil
}

// laneCheckInterval is how often a session asks a DataLink how many
// streams it wants.
const laneCheckInterval = 250 * time.Millisecond

// errStalled ends a session whose receiver has gone silent.
var errStalled = errors.New("receiver stopped answering")

// watchdog cancels the session when the receiver, which reports at least
// every heartbeatInterval, has said nothing for stallTimeout: the
// connection may look open long after the peer is gone.
func (s *sendSession) watchdog(ctx context.Context, cancel context.CancelCauseFunc) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			if now.Sub(time.Unix(0, s.heard.Load())) > stallTimeout {
				cancel(fmt.Errorf("%w for %v", errStalled, stallTimeout))
				return
			}
		}
	}
}

func (s *sendSession) openData(ctx context.Context) (Stream, error) {
	open := s.link.Open
	if dl, ok := s.link.(DataLink); ok {
		open = dl.OpenData
	}
	st, err := open(ctx)
	if err != nil {
		return nil, fmt.Errorf("open data stream: %w", err)
	}
	s.streams.Add(1)
	context.AfterFunc(ctx, func() { _ = st.Reset(resetFor(context.Cause(ctx))) })
	if err := wire.WriteMsg(st, &wire.Start{ReqID: s.reqID}); err != nil {
		return nil, err
	}
	return st, nil
}

// fileRead runs when every chunk of f has been read: it checks that the
// source did not change meanwhile and sends the whole-file hash.
func (s *sendSession) fileRead(f *sfile) error {
	if err := f.src.Finish(); err != nil {
		return err
	}
	root := chunker.Root(f.entry.Size, s.opts.ChunkSize, f.sums)
	return s.write(&wire.Done{ReqID: s.reqID, Sums: []wire.FileSum{{File: uint32(f.idx), Sum: root[:]}}})
}

// closeFiles closes the sources still open. It runs after the workers
// have stopped.
func (s *sendSession) closeFiles() {
	for _, f := range s.files {
		if f != nil {
			f.src.Close()
		}
	}
}

// readControl reads the receiver's confirmations until its final Done.
func (s *sendSession) readControl(rd *wire.Reader, res *Result) error {
	var total, confirmed uint64
	for _, f := range s.files {
		if f != nil {
			total += f.entry.Size
			confirmed += f.confirmed
		}
	}
	for {
		m, err := rd.ReadMsg()
		if err != nil {
			return fmt.Errorf("receiver: %w", err)
		}
		s.heard.Store(time.Now().UnixNano())
		switch m := m.(type) {
		case *wire.Progress:
			if m.Bytes > confirmed {
				confirmed = m.Bytes
				s.progressed.Store(true)
			}
			for _, fn := range m.Names {
				if int(fn.File) >= len(s.files) || s.files[fn.File] == nil {
					return fmt.Errorf("%w: name for file %d", wire.ErrProtocol, fn.File)
				}
				s.setName(s.files[fn.File].entry.Path, fn.Name)
			}
			if s.opts.OnProgress == nil {
				continue
			}
			p := Progress{Confirmed: m.Bytes, Total: total, Sent: s.sent.Load()}
			for _, fr := range m.Confirmed {
				if int(fr.File) >= len(s.files) || s.files[fr.File] == nil {
					return fmt.Errorf("%w: progress for file %d", wire.ErrProtocol, fr.File)
				}
				f := s.files[fr.File]
				for _, r := range fr.Ranges {
					f.confirmed += r.Len
				}
				p.Files = append(p.Files, FileProgress{Index: f.idx, Path: f.entry.Path, Size: f.entry.Size, Confirmed: f.confirmed})
			}
			for _, i := range m.Complete {
				if int(i) < len(s.files) && s.files[i] != nil {
					f := s.files[i]
					p.Files = append(p.Files, FileProgress{Index: f.idx, Path: f.entry.Path, Size: f.entry.Size, Confirmed: f.entry.Size, Complete: true})
				}
			}
			s.opts.OnProgress(p)
		case *wire.Done:
			if m.Final {
				return nil
			}
		case *wire.Error:
			return m.Err()
		default:
			return fmt.Errorf("%w: %v from the receiver", wire.ErrProtocol, m.Type())
		}
	}
}
