package peer

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	pbv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/pb"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/proto"
)

// RelayConfig configures a relay node.
type RelayConfig struct {
	Host HostConfig
	// Allow says who may reserve a slot, that is, who may be reached
	// through the relay; nil lets anyone.
	Allow *AllowList
	// PeerRate caps the bytes per second each peer may push through the
	// relay, and MaxRate all peers together; 0 means no cap.
	PeerRate, MaxRate int
	// PeerQuota caps the bytes each peer may push through the relay in a
	// day; 0 means no cap. A peer that reaches it has its circuits ended,
	// and new ones refused, until its day is over.
	PeerQuota uint64
	// MaxReservations caps relay slots in total and per IP address.
	MaxReservations, MaxReservationsPerIP int
	// MaxCircuits caps relayed connections per peer.
	MaxCircuits int
	// OnEvent, if set, hears of reservations and circuits. It is called
	// from the relay's goroutines and must not block.
	OnEvent func(RelayEvent)
}

// RelayEventKind says what a RelayEvent reports.
type RelayEventKind int

const (
	// RelayReservation: Peer asked for a slot; Accepted or Reason.
	RelayReservation RelayEventKind = iota
	// RelayCircuitOpened: Peer is relayed to Dest.
	RelayCircuitOpened
	// RelayCircuitClosed: a circuit from Peer to Dest ended after Bytes
	// (both ways) and Duration; Reason says why the relay ended it, if it did.
	RelayCircuitClosed
	// RelayCircuitRefused: Peer was refused a circuit to Dest, for Reason.
	RelayCircuitRefused
)

// RelayEvent is something a relay did for a peer.
type RelayEvent struct {
	Kind     RelayEventKind
	Peer     peer.ID // the peer reserving, or a circuit's source
	Dest     peer.ID // a circuit's destination
	Accepted bool
	Reason   RelayReason
	Bytes    uint64
	Duration time.Duration
}

// RelayReason says why a relay refused a peer or ended its circuit.
type RelayReason int

const (
	ReasonNone RelayReason = iota
	// ReasonNotAllowed: the peer is not on the relay's allow-list.
	ReasonNotAllowed
	// ReasonQuota: the daily quota of the source or destination is used up.
	ReasonQuota
	// ReasonSlots: no free reservation slot, in total or for the address.
	ReasonSlots
	// ReasonNoReservation: the destination holds no reservation.
	ReasonNoReservation
	// ReasonCircuits: too many circuits for a peer, or no memory for one.
	ReasonCircuits
	// ReasonUnreachable: the destination did not answer.
	ReasonUnreachable
	// ReasonOther: a malformed request, or one over a relayed connection.
	ReasonOther
)

var reasonText = [...]string{
	ReasonNone:          "",
	ReasonNotAllowed:    "not on its allow-list",
	ReasonQuota:         "the relay's daily quota for this peer is used up",
	ReasonSlots:         "it has no free reservation slot",
	ReasonNoReservation: "the destination holds no reservation on it",
	ReasonCircuits:      "too many relayed connections for this peer",
	ReasonUnreachable:   "the destination did not answer through it",
	ReasonOther:         "the request was not valid",
}

var reasonCode = [...]string{
	ReasonNone:          "",
	ReasonNotAllowed:    "not_allowed",
	ReasonQuota:         "quota",
	ReasonSlots:         "no_slot",
	ReasonNoReservation: "no_reservation",
	ReasonCircuits:      "circuit_limit",
	ReasonUnreachable:   "unreachable",
	ReasonOther:         "other",
}

// String says the reason in words, to follow "refused ...: ".
func (r RelayReason) String() string {
	if r < 0 || int(r) >= len(reasonText) {
		return reasonText[ReasonOther]
	}
	return reasonText[r]
}

// Code is a short stable name for JSON events.
func (r RelayReason) Code() string {
	if r < 0 || int(r) >= len(reasonCode) {
		return reasonCode[ReasonOther]
	}
	return reasonCode[r]
}

// reasonFor maps a relay's answer to a request to a reason.
func reasonFor(status pbv2.Status, reserve bool) RelayReason {
	switch status {
	case pbv2.Status_OK:
		return ReasonNone
	case pbv2.Status_PERMISSION_DENIED:
		// dshare relays deny reservations only by the allow-list, and
		// circuits only by the quota (besides requests made over relayed
		// connections, which dshare peers never make).
		if reserve {
			return ReasonNotAllowed
		}
		return ReasonQuota
	case pbv2.Status_RESERVATION_REFUSED:
		return ReasonSlots
	case pbv2.Status_NO_RESERVATION:
		return ReasonNoReservation
	case pbv2.Status_RESOURCE_LIMIT_EXCEEDED:
		return ReasonCircuits
	case pbv2.Status_CONNECTION_FAILED:
		return ReasonUnreachable
	}
	return ReasonOther
}

// RelayStats counts what a relay did since it started.
type RelayStats struct {
	Reservations, Refusals int    // requests accepted; requests of either kind refused
	Circuits, CircuitsOpen int    // circuits opened; of them, still open
	Bytes                  uint64 // relayed, both ways, in circuits closed or open
}

// Relay is a running relay node: a libp2p host with the circuit-relay v2
// service on it.
type Relay struct {
	Host    host.Host
	svc     *relay.Relay
	allow   *AllowList
	meter   *meter
	onEvent func(RelayEvent)
	cancel  func()

	mu       sync.Mutex
	circuits map[*circuit]bool
	reserved map[peer.ID]bool // peers granted a slot, for Reload
	stats    RelayStats
}

// NewRelayHost starts a relay node for a team to run on a server: a
// circuit-relay v2 service for file transfers, AutoNAT for its clients,
// and (by the caller) a DHT server. libp2p's default relay limits of two
// minutes and 128 KiB per connection are meant for signalling; this relay
// has none per connection. It serves only the peers on its allow-list,
// and caps each peer's bandwidth, daily total and reservations, and the
// bandwidth of all.
func NewRelayHost(cfg RelayConfig) (*Relay, error) {
	listen := cfg.Host.Listen
	if listen == nil {
		listen = DefaultListen(DefaultPort)
	}
	rm, err := newResourceManager(false)
	if err != nil {
		return nil, err
	}
	h, err := libp2p.New(
		libp2p.Identity(cfg.Host.Identity),
		libp2p.ListenAddrs(listen...),
		libp2p.ResourceManager(rm),
		libp2p.UserAgent("dshare-relay"),
		libp2p.EnableNATService(),
		libp2p.EnableAutoNATv2(),
		libp2p.ForceReachabilityPublic(),
		libp2p.DisableRelay(), // it relays for others; it never needs one
	)
	if err != nil {
		rm.Close()
		return nil, fmt.Errorf("start relay host: %w", err)
	}
	res := relay.DefaultResources()
	res.Limit = nil // no per-connection caps: files are large
	res.BufferSize = 64 << 10
	if cfg.MaxReservations > 0 {
		res.MaxReservations = cfg.MaxReservations
	}
	if cfg.MaxReservationsPerIP > 0 {
		res.MaxReservationsPerIP = cfg.MaxReservationsPerIP
	}
	if cfg.MaxCircuits > 0 {
		res.MaxCircuits = cfg.MaxCircuits
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Relay{
		Host: h, allow: cfg.Allow, onEvent: cfg.OnEvent, cancel: cancel,
		meter:    newMeter(cfg.PeerRate, cfg.MaxRate, cfg.PeerQuota),
		circuits: map[*circuit]bool{}, reserved: map[peer.ID]bool{},
	}
	r.meter.onQuota = r.cutPeer
	acl := &relayACL{allow: cfg.Allow, meter: r.meter}
	r.svc, err = relay.New(&relayHost{Host: h, r: r}, relay.WithResources(res), relay.WithACL(acl))
	if err != nil {
		cancel()
		h.Close()
		return nil, fmt.Errorf("start relay service: %w", err)
	}
	go func() {
		t := time.NewTicker(10 * time.Minute)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				r.meter.forget()
			}
		}
	}()
	return r, nil
}

// Close stops the relay service and the host.
func (r *Relay) Close() error {
	r.cancel()
	return errors.Join(r.svc.Close(), r.Host.Close())
}

// Stats returns what the relay did so far.
func (r *Relay) Stats() RelayStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.stats
	for c := range r.circuits {
		st.Bytes += c.bytes.Load()
	}
	return st
}

// Reload reads the allow-list file again, and disconnects peers holding a
// slot that are no longer on it. It returns the number of peers on the list.
func (r *Relay) Reload() (int, error) {
	if r.allow == nil {
		return 0, nil
	}
	if err := r.allow.Reload(); err != nil {
		return r.allow.Len(), err
	}
	r.mu.Lock()
	var drop []peer.ID
	for p := range r.reserved {
		if !r.allow.Allowed(p) {
			drop = append(drop, p)
			delete(r.reserved, p)
		}
	}
	r.mu.Unlock()
	for _, p := range drop {
		_ = r.Host.Network().ClosePeer(p)
	}
	return r.allow.Len(), nil
}

func (r *Relay) emit(ev RelayEvent) {
	if r.onEvent != nil {
		r.onEvent(ev)
	}
}

// answered is called once the relay has answered a request on a hop stream.
func (r *Relay) answered(s *hopStream, req *pbv2.HopMessage, status pbv2.Status) {
	src := s.Conn().RemotePeer()
	reserve := req.GetType() == pbv2.HopMessage_RESERVE
	reason := reasonFor(status, reserve)
	var dest peer.ID
	if !reserve {
		dest, _ = peer.IDFromBytes(req.GetPeer().GetId())
	}
	r.mu.Lock()
	if status != pbv2.Status_OK {
		r.stats.Refusals++
	} else if reserve {
		r.stats.Reservations++
		if r.allow != nil { // only an allow-list can drop a peer later
			r.reserved[src] = true
		}
	}
	r.mu.Unlock()
	if reserve {
		r.emit(RelayEvent{Kind: RelayReservation, Peer: src, Accepted: status == pbv2.Status_OK, Reason: reason})
		return
	}
	if status != pbv2.Status_OK {
		r.emit(RelayEvent{Kind: RelayCircuitRefused, Peer: src, Dest: dest, Reason: reason})
		return
	}
	c := &circuit{src: src, dest: dest, start: time.Now(), hop: s.Stream}
	r.mu.Lock()
	r.circuits[c] = true
	r.stats.Circuits++
	r.stats.CircuitsOpen++
	r.mu.Unlock()
	s.c.Store(c)
	r.emit(RelayEvent{Kind: RelayCircuitOpened, Peer: src, Dest: dest})
}

// closed is called once when a circuit's hop stream is closed.
func (r *Relay) closed(c *circuit) {
	r.mu.Lock()
	delete(r.circuits, c)
	r.stats.CircuitsOpen--
	r.stats.Bytes += c.bytes.Load()
	r.mu.Unlock()
	r.emit(RelayEvent{Kind: RelayCircuitClosed, Peer: c.src, Dest: c.dest, Bytes: c.bytes.Load(),
		Duration: time.Since(c.start), Reason: RelayReason(c.reason.Load())})
}

// cutPeer ends the circuits from and to p, whose quota is used up.
func (r *Relay) cutPeer(p peer.ID) {
	r.mu.Lock()
	var cut []*circuit
	for c := range r.circuits {
		if c.src == p || c.dest == p {
			cut = append(cut, c)
		}
	}
	r.mu.Unlock()
	for _, c := range cut {
		c.reason.Store(int32(ReasonQuota))
		_ = c.hop.Reset() // the relay then resets the other side
	}
}

// circuit is one relayed connection.
type circuit struct {
	src, dest peer.ID
	start     time.Time
	hop       network.Stream // the source's side, unwrapped
	bytes     atomic.Uint64  // relayed, both ways
	reason    atomic.Int32   // a RelayReason, if the relay ended it
}

// relayACL is the relay service's access control: reservations for the
// peers on the allow-list, circuits for peers within their quota.
type relayACL struct {
	allow *AllowList
	meter *meter
}

func (a *relayACL) AllowReserve(p peer.ID, _ ma.Multiaddr) bool {
	return a.allow == nil || a.allow.Allowed(p)
}

func (a *relayACL) AllowConnect(src peer.ID, _ ma.Multiaddr, dest peer.ID) bool {
	return !a.meter.exhausted(src) && !a.meter.exhausted(dest)
}

// relayHost is the host as the relay service sees it: its streams, on
// the hop protocol that it serves and the stop protocol that it opens,
// are metered, and the hop streams are watched for what they carry.
type relayHost struct {
	host.Host
	r *Relay
}

func (h *relayHost) SetStreamHandler(pid protocol.ID, handler network.StreamHandler) {
	h.Host.SetStreamHandler(pid, func(s network.Stream) {
		handler(&hopStream{meteredStream: meteredStream{Stream: s, m: h.r.meter, p: s.Conn().RemotePeer()}, r: h.r})
	})
}

func (h *relayHost) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	s, err := h.Host.NewStream(ctx, p, pids...)
	if err != nil {
		return nil, err
	}
	// A stop stream: it carries only a circuit, so the quota holds at once.
	return &meteredStream{Stream: s, m: h.r.meter, p: p, quota: true}, nil
}

// errQuotaUsed ends a circuit whose peer used up its quota.
var errQuotaUsed = errors.New("relay quota used up")

// meteredStream paces its reads by the meter and counts them against
// the remote peer.
type meteredStream struct {
	network.Stream
	m     *meter
	p     peer.ID
	quota bool // reads fail once p's quota is used up
}

func (s *meteredStream) Read(b []byte) (int, error) { return s.read(b, s.quota) }

func (s *meteredStream) read(b []byte, quota bool) (int, error) {
	if quota && s.m.exhausted(s.p) {
		_ = s.Stream.Reset()
		return 0, errQuotaUsed
	}
	if len(b) > 0 {
		b = b[:s.m.maxRead(s.p, len(b))]
	}
	n, err := s.Stream.Read(b)
	if n > 0 {
		s.m.charge(context.Background(), s.p, n)
	}
	return n, err
}

// maxHopMessage bounds a hop message, as the relay service does.
const maxHopMessage = 4096

// hopStream watches a hop stream: the request read from the peer and the
// relay's answer, and then the bytes of the circuit, if one opens.
type hopStream struct {
	meteredStream
	r *Relay

	mu       sync.Mutex
	in, out  []byte // the request and the answer, until each is whole
	req      *pbv2.HopMessage
	watching bool // false once the answer is seen or cannot be parsed
	c        atomic.Pointer[circuit]
	once     sync.Once
}

func (s *hopStream) Read(b []byte) (int, error) {
	c := s.c.Load()
	n, err := s.read(b, c != nil)
	if c != nil {
		c.bytes.Add(uint64(n))
		return n, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.req == nil && n > 0 && len(s.in) <= maxHopMessage+binary.MaxVarintLen64 {
		s.in = append(s.in, b[:n]...)
		var msg pbv2.HopMessage
		if whole, bad := parseDelimited(s.in, &msg); whole {
			s.req, s.in, s.watching = &msg, nil, true
		} else if bad {
			s.in = nil
		}
	}
	return n, err
}

func (s *hopStream) Write(b []byte) (int, error) {
	n, err := s.Stream.Write(b)
	if c := s.c.Load(); c != nil {
		c.bytes.Add(uint64(n))
		return n, err
	}
	s.mu.Lock()
	if !s.watching || n == 0 {
		s.mu.Unlock()
		return n, err
	}
	s.out = append(s.out, b[:n]...)
	var msg pbv2.HopMessage
	whole, bad := parseDelimited(s.out, &msg)
	if whole || bad || len(s.out) > maxHopMessage+binary.MaxVarintLen64 {
		s.watching, s.out = false, nil
	}
	req := s.req
	s.mu.Unlock()
	if whole && msg.GetType() == pbv2.HopMessage_STATUS {
		s.r.answered(s, req, msg.GetStatus())
	}
	return n, err
}

func (s *hopStream) Close() error {
	if c := s.c.Load(); c != nil {
		s.once.Do(func() { s.r.closed(c) })
	}
	return s.Stream.Close()
}

// parseDelimited decodes a varint-length-prefixed message from the start
// of buf. It reports whole once it has, and bad if buf cannot hold one.
func parseDelimited(buf []byte, msg proto.Message) (whole, bad bool) {
	l, n := binary.Uvarint(buf)
	switch {
	case n == 0:
		return false, false
	case n < 0 || l > maxHopMessage:
		return false, true
	case uint64(len(buf)-n) < l:
		return false, false
	}
	if proto.Unmarshal(buf[n:n+int(l)], msg) != nil {
		return false, true
	}
	return true, false
}
