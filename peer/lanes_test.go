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
	const calm = calmLooks
	for _, c := range []struct {
		name         string
		st           laneState
		minRTT, srtt time.Duration
		loss         bool
		rate         float64
		want         laneState
	}{
		{"a short path uses one connection", laneState{4, 0, calm, 0}, 2 * ms, 2 * ms, true, 0, laneState{1, 0, 0, 0}},
		{"a fast short path uses two", laneState{1, 0, 0, 0}, 100 * time.Microsecond, 200 * time.Microsecond, false, 300e6, laneState{2, 0, 0, 0}},
		{"and keeps them at half the rate", laneState{2, 0, 0, 0}, 100 * time.Microsecond, 200 * time.Microsecond, false, fastPath / 2, laneState{2, 0, 0, 0}},
		{"a short path at gigabit speed uses one", laneState{1, 0, 0, 0}, 200 * time.Microsecond, 300 * time.Microsecond, false, 117e6, laneState{1, 0, 0, 0}},
		{"long path, first loss", laneState{1, 0, calm, 0}, 40 * ms, 41 * ms, true, 0, laneState{2, 0, calm + 1, 0}},
		{"random loss doubles", laneState{8, 0, calm, 0}, 40 * ms, 42 * ms, true, 0, laneState{16, 0, calm + 1, 0}},
		{"at most the maximum", laneState{MaxLanes * 3 / 4, 0, calm, 0}, 40 * ms, 42 * ms, true, 0, laneState{MaxLanes, 0, calm + 1, 0}},
		{"no loss, no queue: hold", laneState{8, 3, 0, 0b1}, 40 * ms, 42 * ms, false, 0, laneState{8, 0, 1, 0b10}},
		{"a loss soon after a raised round trip is not random", laneState{8, 0, calm - 1, 0}, 40 * ms, 42 * ms, true, 0, laneState{8, 0, calm, 0}},
		{"a raised round trip stops growth", laneState{8, 1, calm + 2, 0}, 40 * ms, 48 * ms, true, 0, laneState{8, 0, 0, 0b1}},
		{"a round trip raised in most looks shrinks", laneState{8, 0, 0, 0b1111_1111_1110}, 40 * ms, 48 * ms, false, 0, laneState{6, 0, 0, 0}},
		{"raised in fewer looks holds", laneState{8, 0, 0, 0b1010_1010_1010}, 40 * ms, 48 * ms, false, 0, laneState{8, 0, 0, 0b1_0101_0101_0101}},
		{"a queue is counted", laneState{16, 2, 5, 0}, 40 * ms, 80 * ms, true, 0, laneState{16, 3, 0, 0b1}},
		{"a lasting queue shrinks", laneState{16, queuedLooks - 1, 0, 0}, 40 * ms, 80 * ms, false, 0, laneState{12, 0, 0, 0b1}},
		{"never below one", laneState{1, queuedLooks - 1, 0, 0}, 40 * ms, 80 * ms, false, 0, laneState{1, 0, 0, 0b1}},
	} {
		if got := nextLanes(c.st, MaxLanes, c.minRTT, c.srtt, c.loss, c.rate); got != c.want {
			t.Errorf("%s: nextLanes = %+v, want %+v", c.name, got, c.want)
		}
	}
}
