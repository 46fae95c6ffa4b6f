package peer

import (
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Limits bound what peers can make a Receiver hold. Zero fields take the
// defaults below.
type Limits struct {
	// IdleTimeout drops a stream that sends nothing for this long while a
	// frame is due: the first frame, each part of an offer, each data
	// frame header.
	IdleTimeout time.Duration
	// MinRate is the slowest a chunk's payload may arrive, in bytes per
	// second, on top of IdleTimeout: a slow drip cannot hold a stream.
	MinRate int
	// StreamsPerPeer and Streams cap the dshare streams being served for
	// one peer and for all peers together. Beyond them streams are reset.
	StreamsPerPeer int
	Streams        int
	// MaxBytes refuses larger offers; 0 means no limit.
	MaxBytes uint64
	// FreeMargin is disk space an offer must leave free.
	FreeMargin uint64
}

// Default limits.
const (
	DefaultIdleTimeout    = 30 * time.Second
	DefaultMinRate        = 16 << 10
	DefaultStreamsPerPeer = 3 * maxDataStreams
	DefaultMaxStreams     = 1024
	DefaultFreeMargin     = 32 << 20
)

func (l Limits) withDefaults() Limits {
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = DefaultIdleTimeout
	}
	if l.MinRate <= 0 {
		l.MinRate = DefaultMinRate
	}
	if l.StreamsPerPeer <= 0 {
		l.StreamsPerPeer = DefaultStreamsPerPeer
	}
	if l.Streams <= 0 {
		l.Streams = DefaultMaxStreams
	}
	if l.FreeMargin == 0 {
		l.FreeMargin = DefaultFreeMargin
	}
	return l
}

// payloadDeadline is when a payload of n bytes must have arrived.
func (l Limits) payloadDeadline(n uint32) time.Time {
	return time.Now().Add(l.IdleTimeout + time.Duration(n)*time.Second/time.Duration(l.MinRate))
}

// streamCounter counts streams being served, per peer and in total.
type streamCounter struct {
	total   int
	perPeer map[peer.ID]int
}

func (c *streamCounter) acquire(p peer.ID, l Limits) bool {
	if c.total >= l.Streams || c.perPeer[p] >= l.StreamsPerPeer {
		return false
	}
	if c.perPeer == nil {
		c.perPeer = map[peer.ID]int{}
	}
	c.total++
	c.perPeer[p]++
	return true
}

func (c *streamCounter) release(p peer.ID) {
	c.total--
	if c.perPeer[p]--; c.perPeer[p] == 0 {
		delete(c.perPeer, p)
	}
}
