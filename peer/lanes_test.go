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
