package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// The link emulator: a UDP proxy on loopback that plays a WAN link
// without root (no tc, no namespaces). Clients send to its port; it keeps
// one upstream socket per client address towards the target, so the
// target sees the proxy. Each direction is one link shared by all flows:
//
//   - rate: packets are serialized one after another,
//     txStart = max(now, lastTxEnd), txEnd = txStart + size*8/rate;
//   - queue: a packet is dropped at the tail when the bytes not yet
//     serialized, its own included, would exceed the queue;
//   - loss: a serialized packet is lost on the wire with probability
//     loss, drawn from a seeded RNG, so it still used the link's time;
//   - delay: a packet that survives arrives at txEnd + delay.
//
// Arrival times only grow, so one goroutine per direction delivers the
// packets in order, sleeping on a timer until the next one is due.

// linkConfig is one direction of the emulated link.
type linkConfig struct {
	Rate  float64       `json:"rate_bits_per_s"` // 0 is unlimited
	Delay time.Duration `json:"delay_ns"`        // one way, added after serialization
	Queue int           `json:"queue_bytes"`     // waiting for serialization; 0 is unlimited
	Loss  float64       `json:"loss"`            // probability in [0, 1)
}

// Hard bounds whatever the configuration: a link with no rate limit and a
// long delay must not hold unbounded memory.
const (
	maxQueued     = 1 << 14  // packets held per direction
	maxQueuedSize = 32 << 20 // bytes held per direction
	maxFlows      = 64       // client addresses served
	maxDatagram   = 65535
)

// linkStats counts what one direction did with the packets it was given.
type linkStats struct {
	Forwarded  int64 `json:"forwarded"`
	Lost       int64 `json:"lost"`
	QueueDrops int64 `json:"queue_drops"`
	Bytes      int64 `json:"bytes_forwarded"`
}

func (s linkStats) String() string {
	return fmt.Sprintf("%d forwarded, %d lost (%.2f%%), %d dropped by the queue",
		s.Forwarded, s.Lost, 100*float64(s.Lost)/max(1, float64(s.Forwarded+s.Lost)), s.QueueDrops)
}

type packet struct {
	data []byte
	at   time.Time // when it arrives at the far end
	to   *flow
}

// pipe is one direction of the link.
type pipe struct {
	cfg  linkConfig
	send func(*flow, []byte)

	mu        sync.Mutex
	rng       *rand.Rand
	lastTxEnd time.Time
	ring      [maxQueued]packet
	head, n   int
	held      int // bytes in ring
	stats     linkStats

	wake chan struct{}
	done chan struct{}
	// took, if set, hears of every datagram the pipe is handed, with mu
	// held; tests wait on it.
	took func()
}

func newPipe(cfg linkConfig, seed, stream uint64, send func(*flow, []byte), done chan struct{}) *pipe {
	return &pipe{cfg: cfg, send: send, rng: rand.New(rand.NewPCG(seed, stream)),
		wake: make(chan struct{}, 1), done: done}
}

// enqueue takes a datagram (which the pipe now owns) for delivery to f.
func (p *pipe) enqueue(f *flow, data []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.took != nil {
		p.took()
	}
	now := time.Now()
	size := len(data)
	if p.n == maxQueued || p.held+size > maxQueuedSize {
		p.stats.QueueDrops++
		return
	}
	txStart := now
	var txEnd time.Time
	if p.cfg.Rate > 0 {
		if p.lastTxEnd.After(now) {
			txStart = p.lastTxEnd
		}
		// What the link still has to serialize before this packet.
		backlog := float64(txStart.Sub(now)) / float64(time.Second) * p.cfg.Rate / 8
		if p.cfg.Queue > 0 && int(backlog)+size > p.cfg.Queue {
			p.stats.QueueDrops++
			return
		}
		txEnd = txStart.Add(time.Duration(float64(size*8) / p.cfg.Rate * float64(time.Second)))
		p.lastTxEnd = txEnd
	} else {
		txEnd = now
	}
	if p.cfg.Loss > 0 && p.rng.Float64() < p.cfg.Loss {
		p.stats.Lost++
		return
	}
	p.ring[(p.head+p.n)%maxQueued] = packet{data: data, at: txEnd.Add(p.cfg.Delay), to: f}
	p.n++
	p.held += size
	if p.n == 1 {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
}

// run delivers packets when they are due until done is closed.
func (p *pipe) run() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var due []packet
	for {
		p.mu.Lock()
		now := time.Now()
		due = due[:0]
		for p.n > 0 && !p.ring[p.head].at.After(now) {
			due = append(due, p.ring[p.head])
			p.ring[p.head] = packet{}
			p.head = (p.head + 1) % maxQueued
			p.n--
		}
		wait := time.Duration(-1)
		if p.n > 0 {
			wait = p.ring[p.head].at.Sub(now)
		}
		for _, pk := range due {
			p.held -= len(pk.data)
			p.stats.Forwarded++
			p.stats.Bytes += int64(len(pk.data))
		}
		p.mu.Unlock()

		for _, pk := range due {
			p.send(pk.to, pk.data)
		}
		if len(due) > 0 {
			continue // sending took time; more may be due
		}
		if wait < 0 {
			// Empty: sleep until a packet arrives. Packets queue in
			// arrival order, so a later one is never due earlier than
			// the head, and only an empty pipe needs waking.
			select {
			case <-p.wake:
			case <-p.done:
				return
			}
			continue
		}
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-p.done:
			return
		}
	}
}

func (p *pipe) snapshot() linkStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// flow is one client address and its socket towards the target.
type flow struct {
	client *net.UDPAddr
	up     *net.UDPConn
}

// netem is the proxy: up carries client → target, down target → client.
type netem struct {
	ln     *net.UDPConn
	target *net.UDPAddr
	up     *pipe
	down   *pipe
	seed   uint64

	mu     sync.Mutex
	flows  map[string]*flow
	closed bool

	done chan struct{}
	wg   sync.WaitGroup
}

// newNetem starts a proxy on 127.0.0.1 towards target with the same link
// in both directions. The two directions draw losses from separate
// streams of seed.
func newNetem(target *net.UDPAddr, cfg linkConfig, seed uint64) (*netem, error) {
	if !target.IP.IsLoopback() {
		return nil, fmt.Errorf("the emulator only forwards to loopback, not %s", target)
	}
	if cfg.Loss < 0 || cfg.Loss >= 1 || cfg.Rate < 0 || cfg.Queue < 0 || cfg.Delay < 0 {
		return nil, errors.New("the emulated link needs a loss in [0, 1) and no negative rate, queue or delay")
	}
	ln, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	setBuffers(ln)
	e := &netem{ln: ln, target: target, seed: seed, flows: map[string]*flow{}, done: make(chan struct{})}
	e.up = newPipe(cfg, seed, 1, func(f *flow, b []byte) { _, _ = f.up.Write(b) }, e.done)
	e.down = newPipe(cfg, seed, 2, func(f *flow, b []byte) { _, _ = e.ln.WriteToUDP(b, f.client) }, e.done)
	e.wg.Add(3)
	go func() { defer e.wg.Done(); e.up.run() }()
	go func() { defer e.wg.Done(); e.down.run() }()
	go func() { defer e.wg.Done(); e.serve() }()
	return e, nil
}

// setBuffers asks for socket buffers that hold a burst at the emulated
// rate; the kernel caps them without root, which only costs drops that
// the counters then show as missing packets.
func setBuffers(c *net.UDPConn) {
	_ = c.SetReadBuffer(4 << 20)
	_ = c.SetWriteBuffer(4 << 20)
}

// addr is where clients send.
func (e *netem) addr() *net.UDPAddr { return e.ln.LocalAddr().(*net.UDPAddr) }

func (e *netem) serve() {
	buf := make([]byte, maxDatagram)
	for {
		n, client, err := e.ln.ReadFromUDP(buf)
		if err != nil {
			return
		}
		if f := e.flow(client); f != nil {
			e.up.enqueue(f, append([]byte(nil), buf[:n]...))
		}
	}
}

// flow returns client's flow, opening its upstream socket and the reader
// of the target's answers on first sight.
func (e *netem) flow(client *net.UDPAddr) *flow {
	e.mu.Lock()
	defer e.mu.Unlock()
	if f := e.flows[client.String()]; f != nil {
		return f
	}
	if e.closed || len(e.flows) >= maxFlows {
		return nil // beyond the bound, a new client's packets are dropped
	}
	up, err := net.DialUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}, e.target)
	if err != nil {
		return nil
	}
	setBuffers(up)
	f := &flow{client: client, up: up}
	e.flows[client.String()] = f
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		buf := make([]byte, maxDatagram)
		for errs := 0; errs < 1000; {
			n, err := up.Read(buf)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil {
				// E.g. ECONNREFUSED for an earlier packet while the
				// target was not up; only a run of them ends the flow.
				errs++
				continue
			}
			errs = 0
			e.down.enqueue(f, append([]byte(nil), buf[:n]...))
		}
	}()
	return f
}

// stats returns the counters of both directions.
func (e *netem) stats() (up, down linkStats) { return e.up.snapshot(), e.down.snapshot() }

// close stops the proxy and waits for its goroutines.
func (e *netem) close() {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	e.closed = true
	close(e.done)
	e.ln.Close()
	for _, f := range e.flows {
		f.up.Close()
	}
	e.mu.Unlock()
	e.wg.Wait()
}
