package store

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// allocatedBytes is what name holds on disk.
func allocatedBytes(t *testing.T, name string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(name, &st); err != nil {
		t.Fatal(err)
	}
	return uint64(st.Blocks) * 512
}

// canPreallocate skips the test where dir's file system has no
// fallocate: there the store writes as if it had none.
func canPreallocate(t *testing.T, dir string) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "probe"))
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if err := unix.Fallocate(int(f.Fd()), 0, 0, 1<<20); err != nil {
		t.Skipf("the file system of %s cannot preallocate: %v", dir, err)
	}
}

// TestPreallocateAhead checks that chunks written in order find their
// blocks allocated ahead of them, and that the file stays whole.
func TestPreallocateAhead(t *testing.T) {
	dir := t.TempDir()
	canPreallocate(t, dir)
	s := openStore(t, dir, Options{})
	const cs = 64 << 10
	b := newBlob(newRand(t), "peerA", "big.bin", 40<<20+123, cs)
	f, err := s.Begin(b.key, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Release()
	part := stageFile(dir, b.key, partExt)
	var ahead uint64
	for i := range 128 { // 8 MiB
		b.write(t, f, i, i+1)
		held := uint64(i+1) * cs
		got := allocatedBytes(t, part)
		if got > 2*held+2*cs {
			t.Fatalf("after %d bytes in order, %d allocated", held, got)
		}
		ahead = max(ahead, got-min(got, held))
	}
	if ahead < 4<<20 {
		t.Fatalf("at most %d bytes were allocated ahead of 8 MiB written in order", ahead)
	}
	b.write(t, f, 128, b.chunks())
	if _, err := s.Commit([]*File{f}); err != nil {
		t.Fatal(err)
	}
	name, err := f.Place(b.root, false)
	if err != nil {
		t.Fatal(err)
	}
	mustContent(t, filepath.Join(dir, name), b.data)
}

// TestPreallocateBounded checks that a sender cannot make the receiver
// reserve much more disk than it sent: not by scattering chunks over a
// large file, nor by writing each one just where the blocks end.
func TestPreallocateBounded(t *testing.T) {
	dir := t.TempDir()
	canPreallocate(t, dir)
	s := openStore(t, dir, Options{})
	const cs = 64 << 10
	chunk := make([]byte, cs)

	k := Key{Peer: "peerA", Path: "scattered.bin", Size: 1 << 30, MTime: 1, ChunkSize: cs}
	f, err := s.Begin(k, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Release()
	var held uint64
	for i := 0; i < 16384; i += 1024 { // one chunk per 64 MiB
		if _, err := f.Write(i, chunk, [32]byte{}); err != nil {
			t.Fatal(err)
		}
		held += cs
	}
	if got := allocatedBytes(t, stageFile(dir, k, partExt)); got > 2*held+2*cs {
		t.Fatalf("scattered: %d bytes written, %d allocated", held, got)
	}

	k = Key{Peer: "peerA", Path: "edge.bin", Size: 1 << 30, MTime: 1, ChunkSize: cs}
	g, err := s.Begin(k, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Release()
	held = 0
	for range 40 {
		i := int(g.alloc.Load() / cs) // the first chunk past the blocks given
		if _, err := g.Write(i, chunk, [32]byte{}); err != nil {
			t.Fatal(err)
		}
		held += cs
		if got := allocatedBytes(t, stageFile(dir, k, partExt)); got > 2*held+2*cs {
			t.Fatalf("at the edge: %d bytes written, %d allocated", held, got)
		}
	}
}
