package peer

import (
	"context"
	"math/bits"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/transport"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/multiformats/go-multistream"
	"github.com/quic-go/quic-go"

	"github.com/dshare/dshare/peer/engine"
	"github.com/dshare/dshare/wire"
)

// MaxLanes bounds the QUIC connections one send spreads its data over,
// the host's own included. The receiver admits this many connections
// from one peer, and a few more (rcmgr.go): each one a flooding peer
// holds costs the receiver memory, so the bound stays modest.
const MaxLanes = 64

// lanes are extra QUIC connections to the receiver for data streams.
// quic-go's congestion control is per connection, and on a lossy path one
// connection's window collapses at every loss: several connections, each
// with its own window, keep the path full. They are dialed by the host's
// own QUIC transport, so they are authenticated as this peer by libp2p's
// TLS handshake and leave from the host's UDP socket, through the same
// NAT mapping as the first connection.
//
// In auto mode a controller sets how many are in use: more while packets
// are lost but the round trip stays near its minimum (random loss, as on
// Wi-Fi or a long path), half as many as soon as the round trip grows (a
// queue is building: real congestion, where more windows would only
// crowd out others).
type lanes struct {
	h      host.Host
	target peer.ID
	max    int  // lanes at most, the host's connection included
	auto   bool // a controller sets active; otherwise active is max

	mu       sync.Mutex
	conns    []*lane       // dialed, in order; the first active-1 are in use
	used     []*lane       // every lane that carried a stream, for the diagnostics
	active   int           // lanes in use, the host's connection included
	hostOpen int           // data streams open on the host's own connection
	failed   bool          // dialing a lane failed: no more are tried
	dialing  bool          // lanes are being dialed, without mu held
	dialDone chan struct{} // closed when that dial ends
	dialWait time.Duration // how long a stream waits for it
	closed   bool          // close ran: lanes dialed meanwhile are closed at once
	started  bool          // the controller runs
	done     chan struct{}
	lost     uint64    // packets lost, at the controller's last look
	ctl      laneState // the controller's memory
	short    bool      // the controller saw a round trip under longPath
}

type lane struct {
	c    transport.CapableConn
	idx  int
	open int  // data streams open on it
	used bool // it carried a stream
}

func newLanes(h host.Host, target peer.ID, n int) *lanes {
	l := &lanes{h: h, target: target, max: MaxLanes, auto: true, active: 1, ctl: laneState{calm: calmLooks}, done: make(chan struct{}), dialWait: 250 * time.Millisecond}
	if n > 1 {
		l.max, l.auto, l.active = min(n, MaxLanes), false, min(n, MaxLanes)
	}
	return l
}

// hostConn returns the host's direct QUIC connection to the target, where
// lanes can go; nil if there is none (relayed, or TCP).
func (l *lanes) hostConn() network.Conn {
	for _, c := range l.h.Network().ConnsToPeer(l.target) {
		if IsRelayed(c) {
			continue
		}
		if _, err := c.RemoteMultiaddr().ValueForProtocol(ma.P_QUIC_V1); err == nil {
			return c
		}
	}
	return nil
}

// dial dials n lanes to addr in parallel, without l.mu held: a dial can
// take seconds, and streams keep opening and closing meanwhile.
func (l *lanes) dial(ctx context.Context, addr ma.Multiaddr, n int) (conns []transport.CapableConn, failed bool) {
	sw, ok := l.h.Network().(*swarm.Swarm)
	tpt := transport.Transport(nil)
	if ok {
		tpt = sw.TransportForDialing(addr)
	}
	if tpt == nil {
		return nil, true
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := tpt.Dial(ctx, addr, l.target)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed = true
				return
			}
			conns = append(conns, c)
			// Nothing is served on a lane: the receiver's own streams
			// (identify) are refused at once rather than left waiting.
			go func() {
				for {
					s, err := c.AcceptStream()
					if err != nil {
						return
					}
					_ = s.Reset()
				}
			}()
		}()
	}
	wg.Wait()
	return conns, failed
}

// dialLocked starts dialing the lanes that active wants and that are not
// there yet, unless a dial runs or one failed.
func (l *lanes) dialLocked(ctx context.Context, hc network.Conn) {
	if n := l.active - 1 - len(l.conns); n > 0 && !l.failed && !l.dialing {
		l.dialing = true
		l.dialDone = make(chan struct{})
		go l.dialLanes(ctx, hc.RemoteMultiaddr(), n)
	}
}

// dialLanes dials n lanes, in the background of the streams that open
// meanwhile, and adds them; what a dial gets after close is closed.
func (l *lanes) dialLanes(ctx context.Context, addr ma.Multiaddr, n int) {
	conns, failed := l.dial(ctx, addr, n)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.dialing = false
	close(l.dialDone)
	if l.closed {
		// The send ended while this dial ran.
		l.closed = false
		for _, c := range conns {
			_ = c.Close()
		}
		return
	}
	l.failed = l.failed || failed
	for _, c := range conns {
		l.conns = append(l.conns, &lane{c: c, idx: len(l.conns)})
	}
}

// open opens a data stream on the least-loaded lane in use, or reports
// false if the host's own connection should carry it.
func (l *lanes) open(ctx context.Context) (network.MuxedStream, *lane, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	hc := l.hostConn()
	if hc == nil {
		return nil, nil, false, nil // relayed, or TCP: no lanes
	}
	if l.auto && !l.started {
		l.started = true
		// A long path is known by its handshake already: all lanes go up
		// before the data starts, rather than when the first loss has
		// cut the only window, with its streams' chunks still in flight.
		var qc *quic.Conn
		if hc.As(&qc) {
			if rtt := qc.ConnectionStats().MinRTT; rtt >= longPath {
				l.active = min(l.max, firstLanes)
				l.dialWait = min(3*rtt+50*time.Millisecond, 2*time.Second)
			}
		}
		go l.control(l.done)
	}
	// Lanes that died are dropped, so that others can take their place.
	live := l.conns[:0]
	for _, ln := range l.conns {
		if !ln.c.IsClosed() {
			ln.idx = len(live)
			live = append(live, ln)
		}
	}
	clear(l.conns[len(live):])
	l.conns = live
	l.dialLocked(ctx, hc)
	// A dial under way is waited for, briefly: streams opened meanwhile
	// go to the host's connection, and move (crowded) once the lanes are
	// up. A dial that is slow (a busy receiver) does not hold the data.
	if l.dialing {
		ch, wait := l.dialDone, l.dialWait
		l.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-ch:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
		l.mu.Lock()
		if ctx.Err() != nil {
			return nil, nil, false, context.Cause(ctx)
		}
	}
	var best *lane
	for _, ln := range l.conns {
		if ln.idx >= l.active-1 || ln.c.IsClosed() {
			continue
		}
		if best == nil || ln.open < best.open {
			best = ln
		}
	}
	// The host's connection carries an even share too.
	if best == nil || best.open > l.hostOpen {
		return nil, nil, false, nil
	}
	s, err := best.c.OpenStream(ctx)
	if err != nil {
		return nil, nil, false, err
	}
	best.open++
	if !best.used {
		best.used = true
		l.used = append(l.used, best)
	}
	return s, best, true, nil
}

func (l *lanes) release(ln *lane) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ln == nil {
		l.hostOpen--
		return
	}
	ln.open--
}

// wanted is how many data streams the lanes in use can carry.
func (l *lanes) wanted() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.short {
		return streamsPerLane * l.active
	}
	return max(engine.DefaultStreams, l.active)
}

// crowded reports whether the host's connection carries more than its
// share of streams while lanes are in use.
func (l *lanes) crowded() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.active <= 1 || len(l.conns) == 0 {
		return false
	}
	least := -1
	for _, ln := range l.conns {
		if ln.idx < l.active-1 && !ln.c.IsClosed() && (least < 0 || ln.open < least) {
			least = ln.open
		}
	}
	return least >= 0 && l.hostOpen > least+1
}

// retired reports whether ln is no longer in use, or carries more than
// its share of streams: lanes dialed while streams were opening start
// empty, and the streams move to them one chunk at a time.
func (l *lanes) retired(ln *lane) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ln.idx >= l.active-1 {
		return true
	}
	least := l.hostOpen
	for _, o := range l.conns {
		if o.idx < l.active-1 && !o.c.IsClosed() && o.open < least {
			least = o.open
		}
	}
	return ln.open > least+1
}

// linkStats reports the host's connection to target and, with lanes,
// every lane that carried data; call it before the lanes close.
func linkStats(h host.Host, target peer.ID, l *lanes) engine.LinkStats {
	var conns []interface{ As(any) bool }
	var ls engine.LinkStats
	for _, c := range h.Network().ConnsToPeer(target) {
		if !IsRelayed(c) {
			conns = append(conns, c)
			break
		}
	}
	if l != nil {
		l.mu.Lock()
		for _, ln := range l.used {
			conns = append(conns, ln.c)
		}
		l.mu.Unlock()
	}
	for _, c := range conns {
		var qc *quic.Conn
		if !c.As(&qc) {
			continue
		}
		st := qc.ConnectionStats()
		ls.Conns++
		if ls.SmoothedRTT == 0 {
			ls.SmoothedRTT = st.SmoothedRTT
		}
		if st.MinRTT > 0 && (ls.MinRTT == 0 || st.MinRTT < ls.MinRTT) {
			ls.MinRTT = st.MinRTT
		}
		ls.PacketsSent += st.PacketsSent
		ls.PacketsLost += st.PacketsLost
	}
	if ls.Conns == 0 && len(h.Network().ConnsToPeer(target)) > 0 {
		ls.Conns = 1 // relayed, or TCP: one connection, nothing known of it
	}
	return ls
}

// stats adds up what quic-go reports of the host's connection and the
// lanes: the least minimum round trip, the host's smoothed one, and the
// packets lost.
func (l *lanes) stats() (minRTT, srtt time.Duration, lost, sent uint64, ok bool) {
	var conns []interface{ As(any) bool }
	if hc := l.hostConn(); hc != nil {
		conns = append(conns, hc)
	}
	l.mu.Lock()
	for _, ln := range l.conns {
		conns = append(conns, ln.c)
	}
	l.mu.Unlock()
	for i, c := range conns {
		var qc *quic.Conn
		if !c.As(&qc) {
			continue
		}
		st := qc.ConnectionStats()
		if st.MinRTT > 0 && (minRTT == 0 || st.MinRTT < minRTT) {
			minRTT = st.MinRTT
		}
		if i == 0 {
			srtt = st.SmoothedRTT
		}
		lost += st.PacketsLost
		sent += st.BytesSent
		ok = true
	}
	return minRTT, srtt, lost, sent, ok && minRTT > 0 && srtt > 0
}

// control adjusts the lanes in use until done is closed.
func (l *lanes) control(done <-chan struct{}) {
	tick := time.NewTicker(laneInterval)
	defer tick.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-done; cancel() }()
	// Losses from before the data flowed (hole punching, the offer)
	// are not the path's: only new ones count.
	var sentBefore uint64
	looked := time.Now()
	if _, _, lost, sent, ok := l.stats(); ok {
		l.mu.Lock()
		l.lost = lost
		l.mu.Unlock()
		sentBefore = sent
	}
	for {
		select {
		case <-done:
			return
		case <-tick.C:
		}
		minRTT, srtt, lost, sent, ok := l.stats()
		now := time.Now()
		rate := float64(sent-min(sent, sentBefore)) / now.Sub(looked).Seconds()
		sentBefore, looked = sent, now
		if !ok {
			continue
		}
		l.mu.Lock()
		l.ctl.active = l.active
		most := l.max
		if l.failed {
			most = min(l.max, len(l.conns)+1) // the lanes there are
		}
		l.ctl = nextLanes(l.ctl, most, minRTT, srtt, lost > l.lost, rate)
		l.short = minRTT < longPath
		l.active = l.ctl.active
		l.lost = lost
		// Lanes come when wanted, not only when a stream opens: the
		// streams already open would otherwise never see them.
		if hc := l.hostConn(); hc != nil {
			l.dialLocked(ctx, hc)
		}
		l.mu.Unlock()
	}
}

// laneState is what the controller remembers between looks.
type laneState struct {
	active int    // lanes in use, the host's connection included
	queued int    // looks in a row that saw a queue
	calm   int    // looks in a row that saw the round trip flat
	raised uint16 // the last 16 looks, a bit set for each that did not
}

// nextLanes is the controller's rule: lanes double while packets are lost
// with the round trip flat, near its minimum (random loss, which more
// windows ride out), and shrink by a quarter once it has stayed well above
// it for two seconds (a queue: real congestion, where more windows would
// only crowd out others). A flow beside ours keeps a smaller queue
// standing: lanes also shrink while the round trip is raised in most
// looks of the last four seconds, and a loss counts as random only after
// a second in which it stayed flat (a loss is found a round trip or more
// after the queue that caused it).
func nextLanes(st laneState, most int, minRTT, srtt time.Duration, newLoss bool, rate float64) laneState {
	if minRTT < longPath {
		// A short path: one window recovers from a loss within a few
		// milliseconds. But a fast one makes the transfer CPU-bound,
		// and quic-go handles each connection in one goroutine: a
		// second connection puts the other core to work.
		switch {
		case st.active < 2 && rate >= fastPath:
			return laneState{active: min(2, most)}
		case st.active >= 2 && rate >= fastPath/2:
			return laneState{active: min(2, most)}
		}
		return laneState{active: 1}
	}
	flat := srtt <= minRTT+minRTT/8+2*time.Millisecond
	st.raised <<= 1
	if !flat {
		st.raised |= 1
		st.calm = 0
	}
	if srtt > minRTT+minRTT/2+5*time.Millisecond {
		st.queued++
		if st.queued >= queuedLooks {
			st.active, st.queued = max(1, st.active*3/4), 0
		}
		return st
	}
	st.queued = 0
	if bits.OnesCount16(st.raised) >= raisedLooks {
		st.active, st.raised = max(1, st.active*3/4), 0
		return st
	}
	if !flat {
		return st
	}
	st.calm++
	if newLoss && st.calm > calmLooks {
		st.active = min(most, st.active*2)
	}
	return st
}

// fastPath is the rate, in bytes per second, above which a short path
// gets a second connection: beyond gigabit Ethernet, where one core's
// worth of QUIC is the limit rather than the link.
const fastPath = 150e6

// raisedLooks is how many of the last 16 looks must see the round trip
// raised, though not by a full queue, before lanes shrink.
const raisedLooks = 12

// calmLooks is how many looks in a row must see no queue before a loss
// counts as random.
const calmLooks = 4

// queuedLooks is how many looks in a row must see a queue before lanes
// shrink: a burst of a few round trips is not congestion.
const queuedLooks = 8

// longPath is the minimum round trip above which one window is slow to
// recover from a loss.
const longPath = 10 * time.Millisecond

// firstLanes is how many lanes a long path starts with: enough that one
// loss does not stall the transfer, few enough that their slow starts
// together do not overflow a queue of one bandwidth-delay product.
const firstLanes = 4

// laneInterval is how often the controller looks at the connections: a
// few round trips of a long path.
const laneInterval = 250 * time.Millisecond

// close closes every lane and stops the controller.
func (l *lanes) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ln := range l.conns {
		_ = ln.c.Close()
	}
	l.conns, l.used, l.failed, l.hostOpen = nil, nil, false, 0
	// A dial under way finds closed set and closes what it got.
	l.closed = l.dialing
	if l.started {
		close(l.done)
		l.started = false
		l.done = make(chan struct{})
	}
}

// laneStream is a data stream on a lane.
type laneStream struct {
	network.MuxedStream
	l    *lanes
	ln   *lane
	once sync.Once
}

func (s *laneStream) done() { s.once.Do(func() { s.l.release(s.ln) }) }

func (s *laneStream) Read(p []byte) (int, error) {
	n, err := s.MuxedStream.Read(p)
	return n, resetErr(err)
}

func (s *laneStream) Write(p []byte) (int, error) {
	n, err := s.MuxedStream.Write(p)
	return n, resetErr(err)
}

func (s *laneStream) Close() error {
	s.done()
	return s.MuxedStream.Close()
}

func (s *laneStream) Reset(code wire.Code) error {
	s.done()
	return s.MuxedStream.ResetWithError(network.StreamErrorCode(code))
}

// Wanted is how many data streams the link can use now for whole chunks:
// on a short path streamsPerLane per lane in use, elsewhere at least the
// engine's default and one per lane.
func (l *link) Wanted() int {
	if l.lanes == nil {
		return 0
	}
	return l.lanes.wanted()
}

// streamsPerLane keeps a lane busy on a short path: one stream writes
// while the other reads and hashes its next chunk. In paired 1 GiB
// loopback runs, 2 per lane (4 in all) made 376 MB/s against 340 MB/s
// with 8, with a tenth less CPU on both sides.
const streamsPerLane = 2

// Retired reports whether st is on a lane no longer in use, or is one of
// more streams on its lane, or on the host's connection, than its share.
func (l *link) Retired(st engine.Stream) bool {
	switch s := st.(type) {
	case *laneStream:
		return l.lanes.retired(s.ln)
	case *hostLaneStream:
		return l.lanes.crowded()
	}
	return false
}

// OpenData opens a data stream: on a lane while lanes are wanted and can
// be had, else on the host's connection; over a relay, only a few.
func (l *link) OpenData(ctx context.Context) (engine.Stream, error) {
	slot, err := l.relaySlot(ctx)
	if err != nil {
		return nil, err
	}
	st, err := l.openData(ctx)
	if !slot {
		return st, err
	}
	if err != nil || !l.Relayed(st) {
		l.relayRelease() // the punch won the race
		return st, err
	}
	return &relayedStream{Stream: st, l: l}, nil
}

func (l *link) openData(ctx context.Context) (engine.Stream, error) {
	if l.lanes == nil {
		return l.Open(ctx)
	}
	ms, ln, ok, err := l.lanes.open(ctx)
	if err == nil && ok {
		if err := multistream.SelectProtoOrFail(ProtocolID, ms); err != nil {
			_ = ms.Reset()
			l.lanes.release(ln)
			return nil, err
		}
		return &laneStream{MuxedStream: ms, l: l.lanes, ln: ln}, nil
	}
	if err != nil {
		return nil, err
	}
	s, err := l.Open(ctx)
	if err != nil {
		return nil, err
	}
	l.lanes.mu.Lock()
	l.lanes.hostOpen++
	l.lanes.mu.Unlock()
	return &hostLaneStream{stream: s.(stream), l: l.lanes}, nil
}

// hostLaneStream is a data stream on the host's own connection, counted
// as that lane's.
type hostLaneStream struct {
	stream
	l    *lanes
	once sync.Once
}

func (s *hostLaneStream) done() { s.once.Do(func() { s.l.release(nil) }) }

func (s *hostLaneStream) Close() error {
	s.done()
	return s.stream.Close()
}

func (s *hostLaneStream) Reset(code wire.Code) error {
	s.done()
	return s.stream.Reset(code)
}
