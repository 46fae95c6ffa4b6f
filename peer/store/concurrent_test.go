//go:build unix

package store

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"

	"github.com/dshare/dshare/chunker"
)

// alignedCopy returns a copy of p whose first byte is at an address
// aligned to directAlign, or, if odd, one that is not.
func alignedCopy(p []byte, odd bool) []byte {
	buf := make([]byte, len(p)+2*directAlign)
	off := directAlign - int(uintptr(unsafe.Pointer(&buf[0]))%directAlign)
	if odd {
		off++
	}
	q := buf[off : off+len(p)]
	copy(q, p)
	return q
}

// TestConcurrentWrites writes the chunks of one file from several
// goroutines, some through aligned buffers (which may switch the file to
// O_DIRECT) and some not, while another commits and saves the state in
// a loop, and eight more write the same chunk at once: exactly one of them
// may count it as new. Run it with -race.
func TestConcurrentWrites(t *testing.T) {
	const (
		writers = 4
		dups    = 8
		cs      = 16 << 10
	)
	ctx := testContext(t)
	rng := newRand(t)
	dir := t.TempDir()
	s := openStore(t, dir, Options{MaxOpen: 2})
	b := newBlob(rng, "p", "c.bin", 2<<20+cs/2, cs) // large enough for O_DIRECT
	f, err := s.Begin(b.key, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Release()
	// Another file shares the pool, so that descriptors are evicted
	// and reopened under the writers.
	other := newBlob(rng, "p", "o.bin", 64*1024, 4096)
	g, err := s.Begin(other.key, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Release()

	var (
		wg        sync.WaitGroup
		errs      = make(chan error, writers+dups+8)
		remaining atomic.Int32
		dupWrote  atomic.Int32
	)
	fail := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	remaining.Store(writers + dups + 1)
	dup := b.chunks() / 2 // written by dups other goroutines at once
	for w := range writers {
		wg.Go(func() {
			defer remaining.Add(-1)
			for i := w; i < b.chunks(); i += writers {
				if ctx.Err() != nil {
					fail(ctx.Err())
					return
				}
				if i == dup {
					continue
				}
				p := alignedCopy(b.chunk(i), i%3 == 0)
				if _, err := f.Write(i, p, b.sums[i]); err != nil {
					fail(err)
					return
				}
			}
		})
	}
	// The same chunk from several streams at once.
	for range dups {
		wg.Go(func() {
			defer remaining.Add(-1)
			wrote, err := f.Write(dup, alignedCopy(b.chunk(dup), false), b.sums[dup])
			if err != nil {
				fail(err)
			}
			if wrote {
				dupWrote.Add(1)
			}
		})
	}
	wg.Go(func() {
		defer remaining.Add(-1)
		for i := range other.chunks() {
			if _, err := g.Write(i, other.chunk(i), other.sums[i]); err != nil {
				fail(err)
				return
			}
		}
	})
	// Commit and save until the writers are done, as the receiver's
	// flusher does.
	wg.Go(func() {
		for remaining.Load() > 0 && ctx.Err() == nil {
			if _, err := s.Commit([]*File{f, g}); err != nil {
				fail(err)
				return
			}
			if err := f.SaveState(); err != nil {
				fail(err)
				return
			}
			_ = f.Held()
			_ = f.Full()
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := dupWrote.Load(); n != 1 {
		t.Fatalf("the duplicated chunk was counted as new by %d writers, want exactly 1", n)
	}
	if _, err := s.Commit([]*File{f, g}); err != nil {
		t.Fatal(err)
	}
	if !f.Full() || !f.Held().Equal(chunker.Full(b.key.Size)) {
		t.Fatalf("held %v after every chunk was written", f.Held())
	}
	if _, err := f.Place(b.root, false); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Place(other.root, false); err != nil {
		t.Fatal(err)
	}
	mustContent(t, filepath.Join(dir, "c.bin"), b.data)
	mustContent(t, filepath.Join(dir, "o.bin"), other.data)
}

// TestConcurrentVerify re-verifies a resumed file while the missing
// chunks are written, as the receiver does in the background.
func TestConcurrentVerify(t *testing.T) {
	ctx := testContext(t)
	rng := newRand(t)
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	b := newBlob(rng, "p", "v.bin", 64*4096, 4096)
	leavePartial(t, s, b, 32)
	corrupt(t, dir, b, 7)
	f, err := s.Begin(b.key, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Release()
	var (
		wg         sync.WaitGroup
		lost       uint64
		verr, werr error
	)
	wg.Go(func() { lost, verr = f.Verify(ctx) })
	wg.Go(func() {
		for i := 32; i < b.chunks() && werr == nil; i++ {
			_, werr = f.Write(i, b.chunk(i), b.sums[i])
		}
	})
	wg.Wait()
	if verr != nil || werr != nil {
		t.Fatalf("verify: %v; write: %v", verr, werr)
	}
	if lost != 4096 {
		t.Fatalf("lost %d bytes, want one chunk", lost)
	}
	finish(t, s, f, b)
	mustContent(t, filepath.Join(dir, "v.bin"), b.data)

	// A cancelled Verify stops and leaves the rest unverified.
	w := newBlob(rng, "p", "w.bin", 8*4096, 4096)
	leavePartial(t, s, w, 4)
	wf, err := s.Begin(w.key, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer wf.Release()
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := wf.Verify(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled verify: %v", err)
	}
	if !wf.Resumed() || wf.Verified() || wf.Held().Size() != 4*4096 {
		t.Fatalf("a cancelled verify changed what is held: %v", wf.Held())
	}
	if lost, err := wf.Verify(ctx); lost != 0 || err != nil || !wf.Verified() {
		t.Fatalf("verify: %d lost, %v", lost, err)
	}
}
