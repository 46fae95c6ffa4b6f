package engine

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dshare/dshare/wire"
)

// heapPeak samples the heap in use until stop is called, and returns the
// highest sample.
func heapPeak() (stop func() uint64) {
	var peak atomic.Uint64
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-quit:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return func() uint64 { close(quit); wg.Wait(); return peak.Load() }
}

// A manifest of a million entries, in 1,000 directories, is validated
// and answered within 10 s, and the receiver's heap stays within bounds.
func TestEngineMillionEntries(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("a million entries, timed: skipped with -short and -race")
	}
	ctx := testCtx(t)
	r, _ := startReceiver(t, Limits{})
	const dirs, per = 1000, 1000
	entries := make([]wire.Entry, 0, dirs*(per+1))
	for d := range dirs {
		dir := fmt.Sprintf("photos/%04d", d)
		entries = append(entries, wire.Entry{Path: dir, Dir: true, Mode: 0o755, MTime: 1})
		for f := range per - 1 {
			entries = append(entries, wire.Entry{Path: fmt.Sprintf("%s/IMG_%06d.jpg", dir, f), Size: 1024, Mode: 0o644, MTime: 1})
		}
	}
	parts := wire.SplitOffer(11, testChunk, entries)
	entries = nil
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	peak := heapPeak()

	h := &hostile{t: t, ctx: ctx, link: link(t, ctx, r, "bulk")}
	_ = h.link.Connect(ctx)
	ctrl, rd := h.open()
	start := time.Now()
	go func() {
		for _, p := range parts {
			if wire.WriteMsg(ctrl, p) != nil {
				return
			}
		}
	}()
	var held, have int
	for {
		m, err := rd.ReadMsg()
		if err != nil {
			t.Fatalf("waiting for the answer: %v", err)
		}
		a, ok := m.(*wire.Accept)
		if !ok {
			if _, hb := m.(*wire.Progress); hb {
				continue
			}
			t.Fatalf("answered %v: %v", m.Type(), m)
		}
		held += len(a.Held)
		have += len(a.Have)
		if !a.More {
			break
		}
	}
	took := time.Since(start)
	top := peak()
	t.Logf("%d offer parts answered in %v; heap in use peaked %d MiB above the %d MiB before",
		len(parts), took.Round(time.Millisecond), (top-base.HeapInuse)>>20, base.HeapInuse>>20)
	if took > 10*time.Second {
		t.Errorf("answered after %v, want within 10 s", took)
	}
	if top > 512<<20 {
		t.Errorf("heap peaked at %d MiB", top>>20)
	}
	_ = ctrl.Reset(wire.CodeCanceled)
}
