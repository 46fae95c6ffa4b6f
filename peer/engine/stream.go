package engine

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/dshare/dshare/wire"
)

// Stream is one bidirectional, ordered byte stream to a peer: a QUIC
// stream in production, an in-memory pipe in tests.
type Stream interface {
	io.Reader
	io.Writer
	// CloseWrite ends the writing side; the peer reads EOF.
	CloseWrite() error
	// Close ends the stream gracefully in both directions.
	Close() error
	// Reset aborts the stream in both directions, telling the peer why
	// with a code of the one code space of package wire.
	Reset(code wire.Code) error
	SetReadDeadline(t time.Time) error
	SetWriteDeadline(t time.Time) error
}

// Link is a sender's way to one receiver. Each call to Open gives a new
// stream; streams may be spread over several connections.
type Link interface {
	// Connect makes sure a connection exists, waiting for a direct path
	// where one may come. An error with a method Permanent() bool that
	// returns true ends the send at once, without retrying.
	Connect(ctx context.Context) error
	// Open opens a new stream to the receiver.
	Open(ctx context.Context) (Stream, error)
	// Relayed reports whether s runs through a relay.
	Relayed(s Stream) bool
	// DirectNow reports whether a direct connection to the receiver
	// exists, so that a relayed data stream can move to it.
	DirectNow() bool
	// Drop closes the connections to the receiver, so that the next
	// session does not reuse one that failed.
	Drop()
}

// DataLink is a Link that opens data streams its own way, spread over
// connections of their own so that each has its own congestion window.
type DataLink interface {
	OpenData(ctx context.Context) (Stream, error)
	// Wanted is how many data streams the link can use now.
	Wanted() int
	// Retired reports whether st runs on a connection the link no
	// longer wants data on; the sender then moves to a new stream.
	Retired(st Stream) bool
}

// resetFor returns the code to reset a stream with when err ends it.
func resetFor(err error) wire.Code {
	if c := wire.CodeOf(err); c != wire.CodeInternal {
		return c
	}
	return wire.CodeCanceled
}

// Budget bounds the memory that all peers together can make a receiver
// hold for offers and data streams. Reservations never wait: a peer that
// finds the budget spent is told to come back later.
type Budget struct {
	mu    sync.Mutex
	limit int64
	used  int64
}

// NewBudget returns a budget of limit bytes.
func NewBudget(limit int64) *Budget { return &Budget{limit: limit} }

// reserve takes n bytes of the budget, or fails with wire.ErrBusy.
func (b *Budget) reserve(n int64, what string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.limit {
		return fmt.Errorf("%w: the receiver's memory for %s is in use by other transfers; it retries", wire.ErrBusy, what)
	}
	b.used += n
	return nil
}

func (b *Budget) release(n int64) {
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
}

// Used returns the bytes reserved now.
func (b *Budget) Used() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}
