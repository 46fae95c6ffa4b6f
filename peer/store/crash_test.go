//go:build unix

package store

import (
	"path/filepath"
	"testing"
)

// A receiver killed around placement never forgets a file it placed, so
// that the file is not received again as a copy: the journal records the
// file (by inode) before it is linked under its name.
func TestPlacementSurvivesCrash(t *testing.T) {
	rng := newRand(t)
	for _, crash := range []string{"after link", "before link"} {
		t.Run(crash, func(t *testing.T) {
			dir := t.TempDir()
			opts := Options{Journal: filepath.Join(t.TempDir(), "journal")}
			b := newBlob(rng, "peerA", "d/f.bin", 5*4096+3, 4096)
			s1, err := Open(dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			f, err := s1.Begin(b.key, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			b.write(t, f, 0, b.chunks())
			if _, err := s1.Commit([]*File{f}); err != nil {
				t.Fatal(err)
			}
			_ = f.SaveState()
			if err := f.Seal(b.root, false); err != nil {
				t.Fatal(err)
			}
			if err := s1.Sync(nil); err != nil {
				t.Fatal(err)
			}
			if crash == "after link" {
				if _, err := f.Link(); err != nil {
					t.Fatal(err)
				}
			}
			// The process dies here: s1 is never closed, nothing more is
			// written. A new receiver opens the same directory.
			s2 := openStore(t, dir, opts)
			h, held := s2.Completed(b.key)
			if crash == "after link" {
				if !held || h.Name != "d/f.bin" || h.Root != b.root {
					t.Fatalf("after a crash past the link: Completed = %+v, %v", h, held)
				}
				return
			}
			if held {
				t.Fatalf("a record whose name holds nothing counts as held: %+v", h)
			}
			partial, err := s2.Partials()
			if err != nil || !partial(b.key, false) {
				t.Fatalf("the sealed file's partial state is gone (%v)", err)
			}
			f2, err := s2.Begin(b.key, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			defer f2.Release()
			if !f2.Full() {
				t.Fatalf("resumed %d of %d bytes", f2.Held().Size(), b.key.Size)
			}
			name, err := f2.Place(b.root, false)
			if err != nil || name != "d/f.bin" {
				t.Fatalf("placed as %q (%v), want d/f.bin and no copy", name, err)
			}
			mustContent(t, filepath.Join(dir, name), b.data)
		})
	}
}
