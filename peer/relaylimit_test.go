package peer

import (
	"github.com/libp2p/go-libp2p/core/peer"

	"context"
	"sync"
	"testing"
	"time"
)

func TestMeterQuota(t *testing.T) {
	a, b := newID(t), newID(t)
	now := time.Unix(1_700_000_000, 0)
	m := newMeter(0, 0, 1000)
	m.now = func() time.Time { return now }
	var cut []string
	m.onQuota = func(p peer.ID) { cut = append(cut, p.String()) }
	ctx := context.Background()

	if !m.charge(ctx, a, 600) || m.exhausted(a) {
		t.Fatal("600 of 1000 bytes: quota used up")
	}
	if m.charge(ctx, a, 400) {
		t.Fatal("1000 of 1000 bytes: charge reports quota left")
	}
	if !m.exhausted(a) || m.exhausted(b) {
		t.Fatalf("exhausted: a %v b %v, want true false", m.exhausted(a), m.exhausted(b))
	}
	m.charge(ctx, a, 10)
	if len(cut) != 1 || cut[0] != a.String() {
		t.Fatalf("onQuota calls %v, want one for a", cut)
	}
	if m.used(a) != 1010 {
		t.Fatalf("used %d, want 1010", m.used(a))
	}

	now = now.Add(quotaWindow - time.Second)
	if !m.exhausted(a) {
		t.Fatal("quota back before the day is over")
	}
	now = now.Add(time.Second)
	if m.exhausted(a) || m.used(a) != 0 {
		t.Fatalf("a new day: exhausted %v, used %d", m.exhausted(a), m.used(a))
	}
	m.charge(ctx, a, 1000)
	if len(cut) != 2 {
		t.Fatalf("onQuota calls %d, want a second one on the new day", len(cut))
	}

	now = now.Add(quotaWindow + time.Minute)
	m.forget()
	if len(m.peers) != 0 {
		t.Fatalf("%d peers remembered after a day idle", len(m.peers))
	}
}

func TestMeterNoQuota(t *testing.T) {
	m := newMeter(0, 0, 0)
	a := newID(t)
	if !m.charge(context.Background(), a, 1<<40) || m.exhausted(a) {
		t.Fatal("no quota, yet used up")
	}
}

// TestMeterGlobalRate runs two peers, each under a generous rate of its
// own, against one global cap: together they get the cap, not twice it.
func TestMeterGlobalRate(t *testing.T) {
	const (
		global   = 4 << 20
		perPeer  = 16 << 20
		perSend  = 3 << 20
		chunk    = 64 << 10
		deadline = 10 * time.Second
	)
	m := newMeter(perPeer, global, 0)
	if got := m.maxRead(newID(t), 1<<30); got != burstFor(global) {
		t.Fatalf("maxRead %d, want the global bucket %d", got, burstFor(global))
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for range 2 {
		p := newID(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for sent := 0; sent < perSend; sent += chunk {
				m.charge(ctx, p, m.maxRead(p, chunk))
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		t.Fatalf("not done within %v", deadline)
	}
	elapsed := time.Since(start)
	// All but the initial bucket waits for the cap.
	least := time.Duration(float64(2*perSend-burstFor(global)) / global * float64(time.Second))
	t.Logf("%d bytes in %v; the cap allows them in no less than %v", 2*perSend, elapsed, least)
	if elapsed < least*95/100 {
		t.Fatalf("%v: faster than the global cap allows (%v)", elapsed, least)
	}
	if elapsed > 2*least {
		t.Fatalf("%v: far slower than the global cap (%v)", elapsed, least)
	}
}
