package peer

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// With lanes, data streams are spread over several QUIC connections to
// the receiver, each authenticated as the sender, and the file arrives
// whole; one lane dying mid-transfer costs a new session, which sends
// only what is missing.
func TestLanes(t *testing.T) {
	src := t.TempDir()
	const size = 24*DefaultChunkSize + 77
	writeRandom(t, filepath.Join(src, "big.bin"), size, 9)
	dst := t.TempDir()
	r := &Receiver{Dir: dst}
	addr, events := startReceiver(t, r)
	m, err := BuildManifest([]string{filepath.Join(src, "big.bin")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sender := testHost(t)
	maxConns, killed := 0, false // OnProgress runs on one goroutine
	res, err := Send(ctx, sender, addr, m, 0, SendOptions{Streams: 4, Lanes: 4, ChunkSize: 256 << 10, RetryFor: 30 * time.Second,
		OnProgress: func(p Progress) {
			conns := r.Host.Network().ConnsToPeer(sender.ID())
			maxConns = max(maxConns, len(conns))
			if !killed && len(conns) > 2 && p.Confirmed < size {
				// The receiver drops one lane: its streams fail, the
				// session retries, and the rest goes on.
				killed = true
				_ = conns[len(conns)-1].Close()
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	if !killed {
		t.Fatal("no lane was up to be closed mid-transfer")
	}
	if maxConns < 3 {
		t.Fatalf("the receiver saw at most %d connections from the sender, want the host's plus lanes", maxConns)
	}
	a, _ := os.ReadFile(filepath.Join(src, "big.bin"))
	b, err := os.ReadFile(filepath.Join(dst, "big.bin"))
	if err != nil || !bytes.Equal(a, b) {
		t.Fatalf("the file differs: %v", err)
	}
	t.Logf("%d connections at most, a lane closed mid-transfer: %v, %d sessions", maxConns, killed, res.Sessions)
	waitEvent(t, events, EventDone)
}

func TestNextLanes(t *testing.T) {
	const ms = time.Millisecond
	for _, c := range []struct {
		name           string
		active, queued int
		minRTT, srtt   time.Duration
		loss           bool
		want, wantQ    int
	}{
		{"short path never uses lanes", 4, 0, 2 * ms, 2 * ms, true, 1, 0},
		{"long path, first loss", 1, 0, 40 * ms, 41 * ms, true, 2, 0},
		{"random loss doubles", 8, 0, 40 * ms, 42 * ms, true, 16, 0},
		{"at most the maximum", MaxLanes * 3 / 4, 0, 40 * ms, 42 * ms, true, MaxLanes, 0},
		{"no loss, no queue: hold", 8, 3, 40 * ms, 42 * ms, false, 8, 0},
		{"a queue is counted", 16, 2, 40 * ms, 80 * ms, true, 16, 3},
		{"a lasting queue shrinks", 16, queuedLooks - 1, 40 * ms, 80 * ms, false, 12, 0},
		{"never below one", 1, queuedLooks - 1, 40 * ms, 80 * ms, false, 1, 0},
	} {
		got, q := nextLanes(c.active, MaxLanes, c.queued, c.minRTT, c.srtt, c.loss)
		if got != c.want || q != c.wantQ {
			t.Errorf("%s: nextLanes = %d, %d; want %d, %d", c.name, got, q, c.want, c.wantQ)
		}
	}
}
