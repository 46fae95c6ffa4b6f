package engine

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/dshare/dshare/peer/source"
	"github.com/dshare/dshare/wire"
)

// Sharer serves a folder, read-only, to getters. Each get arrives on a
// stream of its own and names paths and a priority. At most MaxActive gets
// are served at once; the others wait in a queue, hearing their place in
// it (Sleep) until their turn (Start). Higher priorities go first; within
// a priority, peers take turns, so that no peer starves another however
// many gets it opens. A get that starts is sent as a push, by Send, to the
// getter's own receiver: resume, verification and placement are the
// receiver's, as for any transfer.
type Sharer struct {
	Root *os.Root
	// Secret is the capability a getter must present (from the sharer's
	// ticket), unless Allow admits its peer. Compared in constant time.
	Secret []byte
	Allow  func(peer string) bool
	// MaxActive is how many gets are served at once (default 8).
	MaxActive int
	// Send pushes m to peer; the libp2p front opens the streams.
	Send func(ctx context.Context, peer string, m *source.Manifest, opts SendOptions) (*Result, error)
	// Pace, if set, paces each chunk sent to peer: rate limits.
	Pace func(ctx context.Context, peer string, n int) error
	// Notify, if set, hears what happens. It must not block for long.
	Notify func(ShareEvent)
	// Tick is how often a waiting getter hears its place (default 2 s).
	Tick time.Duration

	fair  fairShare
	lists chan struct{} // listings being built

	mu      sync.Mutex
	active  int
	seq     uint64
	turn    uint64
	waiting []*waiter
	served  map[string]uint64  // peer -> turn of its last admission
	perPeer map[string]int     // gets queued or active, per peer
	wrong   map[string]int     // wrong secrets, per peer
	places  map[placeKey]place // places of queued gets whose stream ended
	changed chan struct{}      // closed and replaced when the queue changes
}

// Bounds on what getters can make a sharer hold.
const (
	DefaultMaxActive = 8
	maxQueued        = 16384   // gets waiting, all peers together
	maxPerPeer       = 64      // gets queued or active from one peer
	maxWrongSecrets  = 3       // per peer, then it is refused for good
	maxRemembered    = 1 << 16 // peers whose wrong secrets or turns are kept
	getReadTimeout   = 10 * time.Second
)

// placeKept is how long a queued get that lost its stream keeps its
// place, should it ask again.
const placeKept = time.Minute

type placeKey struct {
	peer  string
	reqID uint64
}

type place struct {
	seq   uint64
	prio  int32
	until time.Time
}

// ShareEventKind says what a ShareEvent reports.
type ShareEventKind int

const (
	ShareListed ShareEventKind = iota + 1
	ShareQueued
	ShareStarted
	ShareDone
	ShareFailed
	ShareRefused
)

// ShareEvent is something that happened to one get.
type ShareEvent struct {
	Kind     ShareEventKind
	Peer     string
	ReqID    uint64
	Paths    []string
	Priority int32
	Position int // ShareQueued: the place in the queue, 1 is next
	Active   int // gets being served, after this event
	Queued   int // gets waiting, after this event
	Result   *Result
	Err      error
}

type waiter struct {
	peer  string
	reqID uint64
	prio  int32
	seq   uint64
	pos   int           // place in the queue, 1 is next
	ready chan struct{} // closed when admitted
}

// maxListings bounds the listings built at once.
const maxListings = 4

func (s *Sharer) listings() chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lists == nil {
		s.lists = make(chan struct{}, maxListings)
	}
	return s.lists
}

func (s *Sharer) notify(e ShareEvent) {
	if s.Notify != nil {
		e.Active, e.Queued = s.counts()
		s.Notify(e)
	}
}

func (s *Sharer) counts() (active, queued int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active, len(s.waiting)
}

// Handle serves one get stream from peer, the authenticated remote.
func (s *Sharer) Handle(ctx context.Context, st Stream, peer string) {
	defer st.Close()
	_ = st.SetReadDeadline(time.Now().Add(getReadTimeout))
	m, err := wire.NewReader(st).ReadMsg()
	if err != nil {
		_ = st.Reset(wire.CodeOf(err))
		return
	}
	g, ok := m.(*wire.Get)
	if !ok {
		s.fail(st, fmt.Errorf("%w: %v where a get was expected", wire.ErrProtocol, m.Type()))
		return
	}
	_ = st.SetReadDeadline(time.Time{})
	ev := ShareEvent{Peer: peer, ReqID: g.ReqID, Paths: g.Paths, Priority: g.Priority}
	if err := s.authorize(peer, g.Secret); err != nil {
		s.end(st, ev, ShareRefused, err)
		return
	}
	if g.List {
		// Listings skip the queue but not a bound: each builds a manifest.
		select {
		case s.listings() <- struct{}{}:
			defer func() { <-s.listings() }()
		case <-ctx.Done():
			return
		}
		man, err := source.BuildShared(s.Root, g.Paths)
		if err != nil {
			s.end(st, ev, ShareRefused, err)
			return
		}
		for _, part := range wire.SplitOffer(g.ReqID, 0, man.Entries) {
			if err := s.write(st, part); err != nil {
				return
			}
		}
		ev.Kind = ShareListed
		s.notify(ev)
		return
	}
	// The paths are checked now, cheaply; the folders below them are
	// walked when the get's turn comes, so that a get waiting in the
	// queue holds no manifest, and sends the files as they are then.
	for _, p := range g.Paths {
		if err := source.CheckShared(s.Root, p); err != nil {
			s.end(st, ev, ShareRefused, err)
			return
		}
	}

	// The getter's side of the stream ends when it gives up: that cancels
	// its place, or its transfer. One byte is all it may read.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		var b [1]byte
		_, err := st.Read(b[:])
		if err == nil {
			err = fmt.Errorf("%w: a message after the get", wire.ErrProtocol)
		}
		cancel(fmt.Errorf("%w: the getter went away (%w)", wire.ErrCanceled, err))
	}()

	w, err := s.enqueue(peer, g.ReqID, g.Priority)
	if err != nil {
		s.end(st, ev, ShareRefused, err)
		return
	}
	defer s.release(w)
	if !s.wait(ctx, st, w, ev) {
		return
	}
	// Start first: from now on the getter waits without a deadline, and
	// walking a large folder may take a while.
	if err := s.write(st, &wire.Start{ReqID: g.ReqID}); err != nil {
		return
	}
	ev.Kind = ShareStarted
	share := s.fair.join(ActiveGet{Peer: peer, ReqID: g.ReqID, Paths: g.Paths, Priority: g.Priority, Since: time.Now()})
	defer s.fair.leave(share)
	s.notify(ev)
	man, err := source.BuildShared(s.Root, g.Paths)
	if err != nil {
		s.end(st, ev, ShareFailed, err)
		return
	}
	opts := SendOptions{RetryFor: 15 * time.Second}
	opts.Pace = func(ctx context.Context, n int) error {
		if s.Pace != nil {
			if err := s.Pace(ctx, peer, n); err != nil {
				return err
			}
		}
		return s.fair.wait(ctx, share, n)
	}
	res, err := s.Send(ctx, peer, man, opts)
	if err != nil {
		if c := context.Cause(ctx); c != nil {
			err = c
		}
		s.end(st, ev, ShareFailed, err)
		return
	}
	_ = s.write(st, &wire.Done{ReqID: g.ReqID, Final: true})
	ev.Kind, ev.Result = ShareDone, res
	s.notify(ev)
}

// authorize checks the getter: a peer Allow admits, or the secret.
func (s *Sharer) authorize(peer string, secret []byte) error {
	if s.Allow != nil && s.Allow(peer) {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.wrong[peer] >= maxWrongSecrets {
		return fmt.Errorf("%w: too many wrong tickets from this peer; ask the sharer for a new one", wire.ErrUnauthorized)
	}
	if len(s.Secret) > 0 && subtle.ConstantTimeCompare(secret, s.Secret) == 1 {
		return nil
	}
	if len(secret) > 0 {
		if s.wrong == nil || len(s.wrong) >= maxRemembered {
			s.wrong = map[string]int{} // bounded: a flood of identities forgets, it does not grow
		}
		s.wrong[peer]++
		return fmt.Errorf("%w: the ticket's secret is wrong; ask the sharer for its ticket", wire.ErrUnauthorized)
	}
	return fmt.Errorf("%w: this share needs its ticket; ask the sharer for it", wire.ErrUnauthorized)
}

// enqueue puts a get in the queue, or admits it at once.
func (s *Sharer) enqueue(peer string, reqID uint64, prio int32) (*waiter, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perPeer == nil {
		s.perPeer, s.served = map[string]int{}, map[string]uint64{}
	}
	if len(s.served) >= maxRemembered {
		// Turns are history: past this many peers, only those with gets
		// now keep theirs.
		for p := range s.served {
			if s.perPeer[p] == 0 {
				delete(s.served, p)
			}
		}
	}
	if s.perPeer[peer] >= maxPerPeer {
		return nil, fmt.Errorf("%w: %d gets from this peer are already queued or running", wire.ErrLimit, maxPerPeer)
	}
	if len(s.waiting) >= maxQueued {
		return nil, fmt.Errorf("%w: the sharer's queue is full; try again later", wire.ErrBusy)
	}
	s.perPeer[peer]++
	key := placeKey{peer, reqID}
	seq := s.seq + 1
	if p, ok := s.places[key]; ok {
		// The same get, back after losing its stream: its place again.
		delete(s.places, key)
		if time.Now().Before(p.until) && p.prio == prio {
			seq = p.seq
		}
	}
	s.seq = max(s.seq, seq)
	w := &waiter{peer: peer, reqID: reqID, prio: prio, seq: seq, ready: make(chan struct{})}
	s.waiting = append(s.waiting, w)
	s.admitLocked()
	return w, nil
}

// release ends a get, queued or served, and admits the next.
func (s *Sharer) release(w *waiter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perPeer[w.peer]--; s.perPeer[w.peer] <= 0 {
		delete(s.perPeer, w.peer)
	}
	select {
	case <-w.ready:
		s.active--
	default:
		for i, o := range s.waiting {
			if o == w {
				s.waiting = append(s.waiting[:i], s.waiting[i+1:]...)
				break
			}
		}
		// A getter whose connection drops asks again with the same
		// request: for a while, its place is kept for it.
		if s.places == nil || len(s.places) >= maxQueued {
			s.places = map[placeKey]place{} // bounded: a flood forgets
		}
		s.places[placeKey{w.peer, w.reqID}] = place{seq: w.seq, prio: w.prio, until: time.Now().Add(placeKept)}
	}
	s.admitLocked()
}

// admitLocked admits the best waiters while there is room, ranks the
// rest, and wakes everyone waiting on a change.
func (s *Sharer) admitLocked() {
	limit := s.MaxActive
	if limit <= 0 {
		limit = DefaultMaxActive
	}
	sort.Slice(s.waiting, func(i, j int) bool {
		a, b := s.waiting[i], s.waiting[j]
		if a.prio != b.prio {
			return a.prio > b.prio
		}
		if sa, sb := s.served[a.peer], s.served[b.peer]; sa != sb {
			return sa < sb // the peer served longest ago goes first
		}
		return a.seq < b.seq
	})
	for s.active < limit && len(s.waiting) > 0 {
		w := s.waiting[0]
		s.waiting = s.waiting[1:]
		s.active++
		s.turn++
		s.served[w.peer] = s.turn
		close(w.ready)
		// The admitted peer's next gets now rank after other peers'.
		sort.SliceStable(s.waiting, func(i, j int) bool {
			a, b := s.waiting[i], s.waiting[j]
			if a.prio != b.prio {
				return a.prio > b.prio
			}
			return s.served[a.peer] < s.served[b.peer]
		})
	}
	for i, w := range s.waiting {
		w.pos = i + 1
	}
	if s.changed != nil {
		close(s.changed)
	}
	s.changed = make(chan struct{})
}

// wait holds a queued get until its turn, telling the getter its place
// whenever it changes, and at least every Tick. It reports false if the
// get ended meanwhile.
func (s *Sharer) wait(ctx context.Context, st Stream, w *waiter, ev ShareEvent) bool {
	tick := s.Tick
	if tick <= 0 {
		tick = 2 * time.Second
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	last, told := -1, false
	for {
		s.mu.Lock()
		pos, changed := w.pos, s.changed
		s.mu.Unlock()
		select {
		case <-w.ready:
			return true
		default:
		}
		if pos != last {
			if !told {
				told = true
				ev.Kind, ev.Position = ShareQueued, pos
				s.notify(ev)
			}
			last = pos
			if s.write(st, &wire.Sleep{Millis: uint32(2 * tick / time.Millisecond), Reason: "the sharer is busy", Position: uint32(pos)}) != nil {
				return false
			}
			timer.Reset(tick)
		}
		select {
		case <-ctx.Done():
			return false
		case <-w.ready:
			return true
		case <-changed:
			// Bursts of changes are told at most every tenth of a tick.
			select {
			case <-ctx.Done():
				return false
			case <-time.After(tick / 10):
			}
		case <-timer.C:
			last = -2 // heartbeat: say the same place again
		}
	}
}

func (s *Sharer) write(st Stream, m wire.Message) error {
	_ = st.SetWriteDeadline(time.Now().Add(getReadTimeout))
	return wire.WriteMsg(st, m)
}

// end reports a get that ends over err, as kind, and tells the getter.
func (s *Sharer) end(st Stream, ev ShareEvent, kind ShareEventKind, err error) {
	ev.Kind, ev.Err = kind, err
	s.notify(ev)
	s.fail(st, err)
}

// fail tells the getter why its get ends.
func (s *Sharer) fail(st Stream, err error) {
	var re *wire.RemoteError
	if errors.As(err, &re) {
		err = re // the getter's own words back: not ours to rephrase
	}
	_ = s.write(st, wire.ErrorFor(err))
}

// Get asks a sharer, over st, for what g names, and waits until the
// sharer has sent it all to this side's receiver (nil), or says why not.
// onSleep, if set, hears the getter's place in the sharer's queue;
// onStart, once its turn has come.
func Get(ctx context.Context, st Stream, g *wire.Get, onSleep func(pos int), onStart func()) (err error) {
	stop := context.AfterFunc(ctx, func() { _ = st.Reset(wire.CodeCanceled) })
	defer stop()
	defer func() {
		if err != nil {
			_ = st.Reset(wire.CodeCanceled) // its resources go with it
		}
	}()
	_ = st.SetWriteDeadline(time.Now().Add(getReadTimeout))
	if err := wire.WriteMsg(st, g); err != nil {
		return ctxErr(ctx, err)
	}
	_ = st.SetWriteDeadline(time.Time{})
	rd := wire.NewReader(st)
	_ = st.SetReadDeadline(time.Now().Add(getReadTimeout))
	for {
		m, err := rd.ReadMsg()
		if err != nil {
			return ctxErr(ctx, err)
		}
		switch m := m.(type) {
		case *wire.Sleep:
			// The sharer speaks again before the pause is over.
			_ = st.SetReadDeadline(time.Now().Add(m.Duration() + getReadTimeout))
			if onSleep != nil {
				onSleep(int(m.Position))
			}
		case *wire.Start:
			if m.ReqID != g.ReqID {
				return fmt.Errorf("%w: start of request %d", wire.ErrProtocol, m.ReqID)
			}
			// The transfer runs on streams of its own; this one speaks
			// again at its end.
			_ = st.SetReadDeadline(time.Time{})
			if onStart != nil {
				onStart()
			}
		case *wire.Done:
			if !m.Final || m.ReqID != g.ReqID {
				return fmt.Errorf("%w: done of request %d", wire.ErrProtocol, m.ReqID)
			}
			_ = st.Close()
			return nil
		case *wire.Error:
			return m.Err()
		default:
			return fmt.Errorf("%w: %v in answer to a get", wire.ErrProtocol, m.Type())
		}
	}
}

// List asks a sharer, over st, for the entries below g's paths.
func List(ctx context.Context, st Stream, g *wire.Get) (_ []wire.Entry, err error) {
	stop := context.AfterFunc(ctx, func() { _ = st.Reset(wire.CodeCanceled) })
	defer stop()
	defer func() {
		if err != nil {
			_ = st.Reset(wire.CodeCanceled)
		}
	}()
	g.List = true
	_ = st.SetWriteDeadline(time.Now().Add(getReadTimeout))
	if err := wire.WriteMsg(st, g); err != nil {
		return nil, ctxErr(ctx, err)
	}
	rd := wire.NewReader(st)
	var entries []wire.Entry
	for part := uint32(0); ; part++ {
		_ = st.SetReadDeadline(time.Now().Add(getReadTimeout))
		m, err := rd.ReadMsg()
		if err != nil {
			return nil, ctxErr(ctx, err)
		}
		switch m := m.(type) {
		case *wire.Offer:
			if m.ReqID != g.ReqID || m.Part != part || len(entries)+len(m.Entries) > maxListEntries {
				return nil, fmt.Errorf("%w: listing part %d of request %d", wire.ErrProtocol, m.Part, m.ReqID)
			}
			entries = append(entries, m.Entries...)
			if !m.More {
				_ = st.Close()
				return entries, nil
			}
		case *wire.Error:
			return nil, m.Err()
		default:
			return nil, fmt.Errorf("%w: %v in answer to a listing", wire.ErrProtocol, m.Type())
		}
	}
}

// maxListEntries bounds a listing a getter holds.
const maxListEntries = 1_000_000

// ctxErr prefers the caller's reason to the stream error it caused.
func ctxErr(ctx context.Context, err error) error {
	if c := context.Cause(ctx); c != nil {
		return c
	}
	return err
}

// fairShare keeps the gets being served near an equal share of what the
// sharer sends. A getter whose side is slow (a busy machine, a slow disk)
// takes less, and the others would take its part: one get then finishes
// in a fraction of the others' time. A get that has sent more than
// fairSlack times the average over the last window waits, briefly, before
// its next chunk; the wait is bounded, so that the sharer never idles for
// long because its getters are slow.
type fairShare struct {
	mu     sync.Mutex
	gets   map[*fairGet]bool
	window time.Time // start of the current window
}

type fairGet struct {
	cur, prev int64 // bytes in the current and the previous window
	info      ActiveGet
}

const (
	fairWindow  = 500 * time.Millisecond
	fairSlack   = 1.3
	fairMaxWait = 50 * time.Millisecond // per chunk
	fairStep    = 5 * time.Millisecond
)

func (f *fairShare) join(info ActiveGet) *fairGet {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gets == nil {
		f.gets = map[*fairGet]bool{}
	}
	g := &fairGet{info: info}
	f.gets[g] = true
	return g
}

func (f *fairShare) leave(g *fairGet) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.gets, g)
}

// over reports whether g is ahead of its share, rolling the window.
func (f *fairShare) over(g *fairGet) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	if now.Sub(f.window) >= fairWindow {
		for o := range f.gets {
			o.prev, o.cur = o.cur, 0
		}
		f.window = now
	}
	if len(f.gets) < 2 {
		return false
	}
	// Only gets that sent something count: a stalled getter does not
	// hold the others back.
	var total int64
	sending := 0
	for o := range f.gets {
		if n := o.cur + o.prev; n > 0 {
			total += n
			sending++
		}
	}
	mine := g.cur + g.prev
	return sending >= 2 && float64(mine) > fairSlack*float64(total)/float64(sending) && mine > 1<<20
}

// wait holds g's next chunk of n bytes while g is ahead of its share.
func (f *fairShare) wait(ctx context.Context, g *fairGet, n int) error {
	for waited := time.Duration(0); waited < fairMaxWait && f.over(g); waited += fairStep {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(fairStep):
		}
	}
	f.mu.Lock()
	g.cur += int64(n)
	g.info.Sent += int64(n)
	f.mu.Unlock()
	return nil
}

// ActiveGet is a get being served, as Status reports it.
type ActiveGet struct {
	Peer     string
	ReqID    uint64
	Paths    []string
	Priority int32
	Since    time.Time // when its turn came
	Sent     int64     // bytes sent so far
}

// QueuedGet is a get waiting for its turn, as Status reports it.
type QueuedGet struct {
	Peer     string
	Priority int32
	Position int // 1 is next
}

// ShareStatus is what a sharer is doing now.
type ShareStatus struct {
	Active  []ActiveGet // oldest first
	Queued  int
	Waiting []QueuedGet // the first maxStatusWaiting of the queue, in order
}

// maxStatusWaiting bounds the queue a status lists.
const maxStatusWaiting = 100

// Status reports the gets being served, with what each has been sent,
// and how many wait: the sharer's screen.
func (s *Sharer) Status() ShareStatus {
	var st ShareStatus
	s.mu.Lock()
	st.Queued = len(s.waiting)
	for i, w := range s.waiting[:min(len(s.waiting), maxStatusWaiting)] {
		st.Waiting = append(st.Waiting, QueuedGet{Peer: w.peer, Priority: w.prio, Position: i + 1})
	}
	s.mu.Unlock()
	s.fair.mu.Lock()
	for g := range s.fair.gets {
		st.Active = append(st.Active, g.info)
	}
	s.fair.mu.Unlock()
	sort.Slice(st.Active, func(i, j int) bool { return st.Active[i].Since.Before(st.Active[j].Since) })
	return st
}
