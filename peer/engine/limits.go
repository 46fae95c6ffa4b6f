package engine

import "time"

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
	// Memory bounds what all peers together can make the receiver hold
	// for manifests and chunk buffers.
	Memory int64
}

// Default limits.
const (
	DefaultIdleTimeout    = 30 * time.Second
	DefaultMinRate        = 16 << 10
	DefaultStreamsPerPeer = 3 * MaxDataStreams
	DefaultMaxStreams     = 1024
	DefaultFreeMargin     = 32 << 20
	DefaultMemory         = 192 << 20
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
	if l.Memory <= 0 {
		l.Memory = DefaultMemory
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
	perPeer map[string]int
}

func (c *streamCounter) acquire(p string, l Limits) bool {
	if c.total >= l.Streams || c.perPeer[p] >= l.StreamsPerPeer {
		return false
	}
	if c.perPeer == nil {
		c.perPeer = map[string]int{}
	}
	c.total++
	c.perPeer[p]++
	return true
}

func (c *streamCounter) release(p string) {
	c.total--
	if c.perPeer[p]--; c.perPeer[p] == 0 {
		delete(c.perPeer, p)
	}
}
