package engine

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/dshare/dshare/wire"
)

// dataLink is a memLink that spreads nothing but says how many data
// streams it wants, and counts those open.
type dataLink struct {
	*memLink
	want int

	mu    sync.Mutex
	open  int
	peak  int   // most data streams open at once
	tail  []int // data streams open at each whole chunk written
	chunk int
}

func (l *dataLink) OpenData(ctx context.Context) (Stream, error) {
	s, err := l.Open(ctx)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.open++
	l.peak = max(l.peak, l.open)
	l.mu.Unlock()
	return &countedStream{Stream: s, l: l}, nil
}

func (l *dataLink) Wanted() int         { return l.want }
func (l *dataLink) Retired(Stream) bool { return false }

type countedStream struct {
	Stream
	l      *dataLink
	closed atomic.Bool
}

func (s *countedStream) Write(p []byte) (int, error) {
	if len(p) == s.l.chunk {
		s.l.mu.Lock()
		s.l.tail = append(s.l.tail, s.l.open)
		s.l.mu.Unlock()
	}
	return s.Stream.Write(p)
}

func (s *countedStream) done() {
	if s.closed.CompareAndSwap(false, true) {
		s.l.mu.Lock()
		s.l.open--
		s.l.mu.Unlock()
	}
}

func (s *countedStream) Close() error { s.done(); return s.Stream.Close() }

func (s *countedStream) Reset(c wire.Code) error { s.done(); return s.Stream.Reset(c) }

// TestEngineStreamsFollowTheLink: workers beyond what the link wants
// retire after a whole chunk, and small files keep them all.
func TestEngineStreamsFollowTheLink(t *testing.T) {
	ctx := testCtx(t)
	r, _ := startReceiver(t, Limits{})

	big := writeTree(t, 7, 200*testChunk)
	l := &dataLink{memLink: link(t, ctx, r, "alice"), want: 2, chunk: testChunk}
	if _, err := Send(ctx, l, manifest(t, big), SendOptions{ChunkSize: testChunk, Streams: 8}); err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	tail := l.tail[len(l.tail)-100:]
	l.mu.Unlock()
	for i, n := range tail {
		if n > 2 {
			t.Fatalf("chunk %d of the last 100 went out with %d data streams open; the link wants 2", i, n)
		}
	}

	sizes := make([]int, 200)
	for i := range sizes {
		sizes[i] = 1000 + i
	}
	small := writeTree(t, 8, sizes...)
	l = &dataLink{memLink: link(t, ctx, r, "bob"), want: 2, chunk: testChunk}
	if _, err := Send(ctx, l, manifest(t, small), SendOptions{ChunkSize: testChunk, Streams: 8}); err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	peak := l.peak
	l.mu.Unlock()
	if peak <= 2 {
		t.Fatalf("200 small files went over %d data streams at most; they keep the 8 asked for", peak)
	}
}
