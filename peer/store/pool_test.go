//go:build unix

package store

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// openFDs counts the descriptors the process holds, the one reading
// /proc/self/fd included.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestPoolBoundsOpenFiles receives many files at once, chunks
// interleaved, and checks that the descriptors held stay within MaxOpen.
func TestPoolBoundsOpenFiles(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("counts descriptors in /proc/self/fd")
	}
	const (
		maxOpen = 8
		files   = 100
		slack   = 4 // the directory a file is placed in, and one being opened
	)
	ctx := testContext(t)
	rng := newRand(t)
	dir := t.TempDir()
	s := openStore(t, dir, Options{MaxOpen: maxOpen, Journal: filepath.Join(t.TempDir(), "journal")})
	// Warm up: the staging directory and the runtime's poller are open
	// from here on.
	newBlob(rng, "p", "warm", 2*4096, 4096).receive(t, s, 0o644, false)
	base := openFDs(t)
	limit := base + maxOpen + slack
	peak := base
	check := func(what string) {
		t.Helper()
		n := openFDs(t)
		peak = max(peak, n)
		if n > limit {
			t.Fatalf("%s: %d descriptors open, baseline %d, MaxOpen %d", what, n, base, maxOpen)
		}
		if p := s.pool.open(); p > maxOpen {
			t.Fatalf("%s: pool holds %d, MaxOpen %d", what, p, maxOpen)
		}
	}

	blobs := make([]*blob, files)
	fs := make([]*File, files)
	for i := range blobs {
		blobs[i] = newBlob(rng, "p", fmt.Sprintf("d/f%03d.bin", i), 3*4096+i, 4096)
		f, err := s.Begin(blobs[i].key, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Release()
		fs[i] = f
	}
	for c := range blobs[files-1].chunks() {
		for i, b := range blobs {
			if err := ctx.Err(); err != nil {
				t.Fatal(err)
			}
			if c >= b.chunks() {
				continue
			}
			b.write(t, fs[i], c, c+1)
			check(fmt.Sprintf("chunk %d of file %d", c, i))
		}
		if _, err := s.Commit(fs); err != nil {
			t.Fatal(err)
		}
		for i := range fs {
			if err := fs[i].SaveState(); err != nil {
				t.Fatal(err)
			}
			check(fmt.Sprintf("state of file %d", i))
		}
	}
	for i, b := range blobs {
		if _, err := fs[i].Place(b.root, false); err != nil {
			t.Fatalf("place %d: %v", i, err)
		}
		check(fmt.Sprintf("place %d", i))
	}
	t.Logf("descriptors: baseline %d, peak %d", base, peak)
	for _, b := range blobs {
		mustContent(t, filepath.Join(dir, filepath.FromSlash(b.key.Path)), b.data)
	}
	if n := s.pool.open(); n != 0 {
		t.Errorf("%d descriptors still in the pool after every file was placed", n)
	}
}
