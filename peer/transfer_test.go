package peer

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/dshare/dshare/wire"
)

func testHost(t *testing.T) host.Host {
	t.Helper()
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	h, err := NewHost(HostConfig{Identity: key, Offline: true,
		Listen: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/udp/0/quic-v1")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func writeRandom(t *testing.T, path string, n int, seed uint64) {
	t.Helper()
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, 7))
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
}

// startReceiver serves on a fresh host and returns its address and events.
func startReceiver(t *testing.T, r *Receiver) (peer.AddrInfo, <-chan Event) {
	t.Helper()
	r.Host = testHost(t)
	events := make(chan Event, 1024)
	r.Notify = func(e Event) { events <- e }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	time.Sleep(10 * time.Millisecond) // let Serve register its handler
	return peer.AddrInfo{ID: r.Host.ID(), Addrs: r.Host.Addrs()}, events
}

func TestSendDirectory(t *testing.T) {
	src := t.TempDir()
	writeRandom(t, filepath.Join(src, "d", "big.bin"), 3*DefaultChunkSize+123, 1)
	writeRandom(t, filepath.Join(src, "d", "sub", "small.txt"), 10, 2)
	writeRandom(t, filepath.Join(src, "d", "zero"), 0, 3)
	if err := os.MkdirAll(filepath.Join(src, "d", "empty", "deeper"), 0o755); err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	addr, events := startReceiver(t, &Receiver{Dir: dst})

	m, err := BuildManifest([]string{filepath.Join(src, "d")})
	if err != nil {
		t.Fatal(err)
	}
	var last Progress
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := Send(ctx, testHost(t), addr, m, 0, SendOptions{Streams: 3, OnProgress: func(p Progress) { last = p }})
	if err != nil {
		t.Fatal(err)
	}
	want := uint64(3*DefaultChunkSize + 123 + 10)
	if res.Files != 3 || res.Bytes != want || res.Sent != want || res.Skipped != 0 {
		t.Fatalf("result %+v", res)
	}
	if last.Confirmed != want || last.Total != want {
		t.Fatalf("last progress %+v", last)
	}
	for _, rel := range []string{"d/big.bin", "d/sub/small.txt", "d/zero"} {
		a, _ := os.ReadFile(filepath.Join(src, rel))
		b, err := os.ReadFile(filepath.Join(dst, rel))
		if err != nil || !bytes.Equal(a, b) {
			t.Fatalf("%s differs: %v", rel, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(dst, "d", "empty", "deeper")); err != nil || !fi.IsDir() {
		t.Fatalf("empty directory not created: %v", err)
	}
	if fi, _ := os.Stat(filepath.Join(dst, "d", "big.bin")); fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v", fi.Mode())
	}
	leftovers, _ := filepath.Glob(filepath.Join(dst, "d", ".*"))
	if len(leftovers) != 0 {
		t.Fatalf("temporary files left: %v", leftovers)
	}
	waitEvent(t, events, EventDone)
}

func waitEvent(t *testing.T, events <-chan Event, kind EventKind) Event {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case e := <-events:
			if e.Kind == kind {
				return e
			}
		case <-timeout:
			t.Fatalf("no event %v", kind)
		}
	}
}

func TestExistingFileIsKept(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	writeRandom(t, filepath.Join(src, "a.txt"), 100, 1)
	if err := os.WriteFile(filepath.Join(dst, "a.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	addr, _ := startReceiver(t, &Receiver{Dir: dst})
	m, _ := BuildManifest([]string{filepath.Join(src, "a.txt")})
	if _, err := Send(context.Background(), testHost(t), addr, m, 0, SendOptions{}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "a.txt")); string(b) != "mine" {
		t.Fatal("existing file was overwritten")
	}
	a, _ := os.ReadFile(filepath.Join(src, "a.txt"))
	if b, _ := os.ReadFile(filepath.Join(dst, "a (1).txt")); !bytes.Equal(a, b) {
		t.Fatal("new file not stored as a (1).txt")
	}
}

func TestRejected(t *testing.T) {
	src := t.TempDir()
	writeRandom(t, filepath.Join(src, "a"), 10, 1)
	addr, events := startReceiver(t, &Receiver{Dir: t.TempDir(), Decide: func(context.Context, *Offer) error {
		return wire.ErrRejected
	}})
	m, _ := BuildManifest([]string{filepath.Join(src, "a")})
	_, err := Send(context.Background(), testHost(t), addr, m, 0, SendOptions{})
	if !errors.Is(err, wire.ErrRejected) {
		t.Fatalf("got %v", err)
	}
	waitEvent(t, events, EventRejected)
}
