//go:build unix

package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/dshare/dshare/chunker"
)

// testContext returns a context that ends before the test's own deadline,
// or after a minute when go test was given none.
func testContext(t *testing.T) context.Context {
	t.Helper()
	d := time.Now().Add(time.Minute)
	if td, ok := t.Deadline(); ok && td.Add(-5*time.Second).Before(d) {
		d = td.Add(-5 * time.Second)
	}
	ctx, cancel := context.WithDeadline(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// newRand returns a generator seeded from STORE_TEST_SEED or the clock,
// and logs the seed so that a failure replays.
func newRand(t *testing.T) *rand.Rand {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("STORE_TEST_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("STORE_TEST_SEED: %v", err)
		}
		seed = v
	}
	t.Logf("seed %d (set STORE_TEST_SEED=%d to replay)", seed, seed)
	return rand.New(rand.NewPCG(seed, 0x5eed))
}

// blob is the content of one offered file, with its key and hashes as a
// sender would compute them.
type blob struct {
	key  Key
	data []byte
	sums []chunker.Sum
	root chunker.Sum
}

func newBlob(rng *rand.Rand, peer, p string, size int, cs uint32) *blob {
	data := make([]byte, size+8)
	for i := 0; i < size; i += 8 {
		binary.LittleEndian.PutUint64(data[i:], rng.Uint64())
	}
	data = data[:size:size]
	return blobOf(peer, p, data, cs, 1_700_000_000_123_456_789+rng.Int64N(1e12))
}

func blobOf(peer, p string, data []byte, cs uint32, mtime int64) *blob {
	key := Key{Peer: peer, Path: p, Size: uint64(len(data)), MTime: mtime, ChunkSize: cs}
	sums := make([]chunker.Sum, chunker.Chunks(key.Size, cs))
	b := &blob{key: key, data: data, sums: sums}
	for i := range sums {
		sums[i] = chunker.Hash(b.chunk(i))
	}
	b.root = chunker.Root(key.Size, cs, sums)
	return b
}

func (b *blob) chunks() int { return len(b.sums) }

func (b *blob) chunk(i int) []byte {
	r := chunker.ChunkRange(i, b.key.Size, b.key.ChunkSize)
	return b.data[r.Off:r.End]
}

func (b *blob) rng(i, j int) chunker.Range {
	return chunker.Range{Off: chunker.ChunkRange(i, b.key.Size, b.key.ChunkSize).Off,
		End: chunker.ChunkRange(j-1, b.key.Size, b.key.ChunkSize).End}
}

// write writes chunks [from, to) of b to f.
func (b *blob) write(t *testing.T, f *File, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if _, err := f.Write(i, b.chunk(i), b.sums[i]); err != nil {
			t.Fatalf("write chunk %d of %s: %v", i, b.key.Path, err)
		}
	}
}

// receive runs a whole transfer of b into s and returns the name used.
func (b *blob) receive(t *testing.T, s *Store, mode uint32, overwrite bool) string {
	t.Helper()
	f, err := s.Begin(b.key, mode)
	if err != nil {
		t.Fatalf("begin %s: %v", b.key.Path, err)
	}
	defer f.Release()
	b.write(t, f, 0, b.chunks())
	if _, err := s.Commit([]*File{f}); err != nil {
		t.Fatalf("commit: %v", err)
	}
	name, err := f.Place(b.root, overwrite)
	if err != nil {
		t.Fatalf("place %s: %v", b.key.Path, err)
	}
	return name
}

func openStore(t *testing.T, dir string, opts Options) *Store {
	t.Helper()
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// stageFile returns the path of a temporary file of k.
func stageFile(dir string, k Key, ext string) string {
	return filepath.Join(dir, StageName, k.id()+ext)
}

func mustContent(t *testing.T, name string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes differ from the %d sent", name, len(got), len(want))
	}
}

func exists(name string) bool {
	_, err := os.Lstat(name)
	return err == nil
}

func stageNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, StageName))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// outside is a file outside the store's directory that a planted link
// points to; check fails the test if anything about it changed.
type outside struct {
	path  string
	data  []byte
	mtime time.Time
}

var outsideTime = time.Date(2001, 2, 3, 4, 5, 6, 7, time.UTC)

func newOutside(t *testing.T) *outside {
	t.Helper()
	o := &outside{path: filepath.Join(t.TempDir(), "precious"), data: []byte("outside: must never change\n"), mtime: outsideTime}
	if err := os.WriteFile(o.path, o.data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(o.path, o.mtime, o.mtime); err != nil {
		t.Fatal(err)
	}
	return o
}

func (o *outside) check(t *testing.T) {
	t.Helper()
	fi, err := os.Lstat(o.path)
	if err != nil {
		t.Fatalf("outside file: %v", err)
	}
	if !fi.Mode().IsRegular() || fi.Size() != int64(len(o.data)) || !fi.ModTime().Equal(o.mtime) {
		t.Errorf("outside file changed: mode %v, size %d, mtime %v", fi.Mode(), fi.Size(), fi.ModTime())
	}
	mustContent(t, o.path, o.data)
}

// checkDir fails the test if dir holds anything but want.
func checkDir(t *testing.T, dir string, want ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if len(got) != len(want) {
		t.Fatalf("%s holds %q, want %q", dir, got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s holds %q, want %q", dir, got, want)
		}
	}
}
