//go:build unix

package store

import (
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dshare/dshare/chunker"
	"github.com/dshare/dshare/wire"
)

func TestRoundTrip(t *testing.T) {
	rng := newRand(t)
	for _, tt := range []struct {
		name string
		path string
		size int
		cs   uint32
		mode uint32
		perm fs.FileMode // before the umask
	}{
		{"many chunks", "many.bin", 5*4096 + 123, 4096, 0o644, 0o644},
		{"exact chunks", "exact.bin", 3 * 4096, 4096, 0o600, 0o600},
		{"one chunk", "one.bin", 4096, 4096, 0o755, 0o755},
		{"part of a chunk", "small.txt", 1000, 4096, 0o640, 0o640},
		{"empty", "empty", 0, 4096, 0o644, 0o644},
		{"special bits dropped", "special.bin", 3*4096 + 1, 4096, 0o7777, 0o777},
		{"no mode", "nomode.bin", 100, 4096, 0, 0o666},
		{"in a directory", "a/b/c.bin", 2*4096 + 5, 4096, 0o644, 0o644},
		{"large chunks", "large.bin", 3<<20 + 17, 1 << 20, 0o644, 0o644},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openStore(t, dir, Options{})
			b := newBlob(rng, "peerA", tt.path, tt.size, tt.cs)
			f, err := s.Begin(b.key, tt.mode)
			if err != nil {
				t.Fatal(err)
			}
			if f.Resumed() || !f.Verified() || f.Held().Size() != 0 || f.Key() != b.key {
				t.Fatalf("fresh file: resumed %v, verified %v, held %d", f.Resumed(), f.Verified(), f.Held().Size())
			}
			// Chunks arrive out of order.
			for i := b.chunks() - 1; i >= 0; i-- {
				r := chunker.ChunkRange(i, b.key.Size, b.key.ChunkSize)
				if idx, err := f.Chunk(r.Off, uint32(r.Len())); err != nil || idx != i {
					t.Fatalf("Chunk(%d, %d) = %d, %v", r.Off, r.Len(), idx, err)
				}
				if wrote, err := f.Write(i, b.chunk(i), b.sums[i]); err != nil || !wrote {
					t.Fatalf("write %d: %v, %v", i, wrote, err)
				}
			}
			if b.chunks() > 0 {
				if wrote, err := f.Write(0, b.chunk(0), b.sums[0]); err != nil || wrote {
					t.Fatalf("a chunk held already was written again: %v, %v", wrote, err)
				}
			}
			if !f.Held().Equal(chunker.Full(b.key.Size)) {
				t.Fatalf("held %v after writing everything", f.Held())
			}
			if tt.size > 0 {
				// Not durable yet: Place refuses.
				if f.Full() {
					t.Fatal("Full before Commit")
				}
				if _, err := f.Place(b.root, false); !errors.Is(err, wire.ErrInternal) {
					t.Fatalf("place before commit: %v", err)
				}
			}
			snaps, err := s.Commit([]*File{f})
			if err != nil {
				t.Fatal(err)
			}
			if !snaps[0].Equal(chunker.Full(b.key.Size)) || !f.Full() {
				t.Fatalf("commit made %v durable", snaps[0])
			}
			if err := f.SaveState(); err != nil {
				t.Fatal(err)
			}
			name, err := f.Place(b.root, false)
			if err != nil {
				t.Fatal(err)
			}
			if name != tt.path {
				t.Fatalf("placed at %q, want %q", name, tt.path)
			}
			final := filepath.Join(dir, filepath.FromSlash(name))
			mustContent(t, final, b.data)
			fi, err := os.Lstat(final)
			if err != nil {
				t.Fatal(err)
			}
			if want := tt.perm &^ fs.FileMode(umask); fi.Mode() != want {
				t.Errorf("mode %v, want %v (offered %o, umask %03o)", fi.Mode(), want, tt.mode, umask)
			}
			if fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0 {
				t.Errorf("mode %v carries special bits", fi.Mode())
			}
			if fi.ModTime().UnixNano() != b.key.MTime {
				t.Errorf("mtime %d, want %d", fi.ModTime().UnixNano(), b.key.MTime)
			}
			if names := stageNames(t, dir); len(names) != 0 {
				t.Errorf("staging directory still holds %q", names)
			}
			f.Release()
			s.Tidy()
			if exists(filepath.Join(dir, StageName)) {
				t.Error("Tidy left the empty staging directory")
			}
		})
	}
}

// TestCloseRemovesEmptyStage: Close removes the staging directory when
// it is empty and keeps it, with the partial file, when it is not.
func TestCloseRemovesEmptyStage(t *testing.T) {
	rng := newRand(t)
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	b := newBlob(rng, "p", "done.bin", 3*4096, 4096)
	b.receive(t, s, 0o644, false) // not released: Tidy cannot run, Close must
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if exists(filepath.Join(dir, StageName)) {
		t.Fatal("Close left the empty staging directory")
	}

	s = openStore(t, dir, Options{})
	part := newBlob(rng, "p", "part.bin", 3*4096, 4096)
	f, err := s.Begin(part.key, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	part.write(t, f, 0, 1)
	s.Tidy() // a live file: nothing to do
	if !exists(stageFile(dir, part.key, partExt)) {
		t.Fatal("Tidy removed the temporary file of a live transfer")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if !exists(stageFile(dir, part.key, partExt)) {
		t.Fatal("Close removed a partial file")
	}
}

func TestPlaceWrongRoot(t *testing.T) {
	rng := newRand(t)
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	b := newBlob(rng, "p", "x.bin", 3*4096, 4096)
	f, err := s.Begin(b.key, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Release()
	b.write(t, f, 0, b.chunks())
	if _, err := s.Commit([]*File{f}); err != nil {
		t.Fatal(err)
	}
	bad := b.root
	bad[0] ^= 1
	if _, err := f.Place(bad, false); !errors.Is(err, wire.ErrHashMismatch) {
		t.Fatalf("place with the wrong root: %v", err)
	}
	if exists(filepath.Join(dir, "x.bin")) {
		t.Fatal("a file that failed its root was placed")
	}
	if f.Held().Size() != 0 || exists(stageFile(dir, b.key, partExt)) {
		t.Fatal("a file that failed its root was kept")
	}
	// Sent again, it arrives.
	b.write(t, f, 0, b.chunks())
	if _, err := s.Commit([]*File{f}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Place(b.root, false); err != nil {
		t.Fatal(err)
	}
	mustContent(t, filepath.Join(dir, "x.bin"), b.data)
}

func TestChunkChecksBounds(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{})
	if _, err := s.Begin(Key{Peer: "p", Path: "z", Size: 10}, 0); !errors.Is(err, wire.ErrProtocol) {
		t.Fatalf("chunk size 0: %v", err)
	}
	f, err := s.Begin(Key{Peer: "p", Path: "x", Size: 10000, ChunkSize: 4096}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Release()
	for _, tt := range []struct {
		off uint64
		n   uint32
		idx int
		ok  bool
	}{
		{0, 4096, 0, true}, {4096, 4096, 1, true}, {8192, 10000 - 8192, 2, true},
		{1, 4096, 0, false}, {0, 4095, 0, false}, {8192, 4096, 0, false},
		{12288, 1, 0, false}, {1 << 62, 4096, 0, false},
	} {
		idx, err := f.Chunk(tt.off, tt.n)
		if tt.ok && (err != nil || idx != tt.idx) {
			t.Errorf("Chunk(%d, %d) = %d, %v; want %d", tt.off, tt.n, idx, err, tt.idx)
		}
		if !tt.ok && !errors.Is(err, wire.ErrProtocol) {
			t.Errorf("Chunk(%d, %d) = %d, %v; want a protocol error", tt.off, tt.n, idx, err)
		}
	}
}

func TestPlaceNeverOverwrites(t *testing.T) {
	rng := newRand(t)
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	old := filepath.Join(dir, "a.txt")
	if err := os.WriteFile(old, []byte("the user's own file"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(old, outsideTime, outsideTime); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Lstat(old)

	b1 := newBlob(rng, "p1", "a.txt", 2*4096+3, 4096)
	if name := b1.receive(t, s, 0o644, false); name != "a (1).txt" {
		t.Fatalf("placed at %q, want %q", name, "a (1).txt")
	}
	b2 := newBlob(rng, "p2", "a.txt", 10, 4096)
	if name := b2.receive(t, s, 0o644, false); name != "a (2).txt" {
		t.Fatalf("placed at %q, want %q", name, "a (2).txt")
	}
	after, _ := os.Lstat(old)
	if !os.SameFile(before, after) || !after.ModTime().Equal(outsideTime) || after.Mode() != before.Mode() {
		t.Fatal("the existing file was touched")
	}
	mustContent(t, old, []byte("the user's own file"))
	mustContent(t, filepath.Join(dir, "a (1).txt"), b1.data)
	mustContent(t, filepath.Join(dir, "a (2).txt"), b2.data)

	// Overwrite replaces the name itself.
	b3 := newBlob(rng, "p3", "a.txt", 4096+1, 4096)
	if name := b3.receive(t, s, 0o644, true); name != "a.txt" {
		t.Fatalf("overwrite placed at %q", name)
	}
	mustContent(t, old, b3.data)
	mustContent(t, filepath.Join(dir, "a (1).txt"), b1.data)

	// A directory at the name is not replaced either.
	if err := os.Mkdir(filepath.Join(dir, "d.bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	b4 := newBlob(rng, "p", "d.bin", 5, 4096)
	if name := b4.receive(t, s, 0o644, false); name != "d (1).bin" {
		t.Fatalf("placed at %q", name)
	}
}

func TestPlaceNeverFollowsLinks(t *testing.T) {
	rng := newRand(t)
	for _, overwrite := range []bool{false, true} {
		t.Run(map[bool]string{false: "keep", true: "overwrite"}[overwrite], func(t *testing.T) {
			dir := t.TempDir()
			s := openStore(t, dir, Options{})
			o := newOutside(t)
			link := filepath.Join(dir, "b.txt")
			if err := os.Symlink(o.path, link); err != nil {
				t.Fatal(err)
			}
			dangling := filepath.Join(dir, "c.txt")
			gone := filepath.Join(filepath.Dir(o.path), "gone")
			if err := os.Symlink(gone, dangling); err != nil {
				t.Fatal(err)
			}
			hard := filepath.Join(dir, "h.txt")
			if err := os.Link(o.path, hard); err != nil {
				t.Fatal(err)
			}
			b := newBlob(rng, "p", "b.txt", 2*4096+9, 4096)
			c := newBlob(rng, "p", "c.txt", 4096, 4096)
			h := newBlob(rng, "p", "h.txt", 3*4096, 4096)
			nb, nc := b.receive(t, s, 0o644, overwrite), c.receive(t, s, 0o644, overwrite)
			nh := h.receive(t, s, 0o644, overwrite)
			o.check(t)
			if exists(gone) {
				t.Fatal("a dangling link was followed")
			}
			if overwrite {
				if nb != "b.txt" || nc != "c.txt" || nh != "h.txt" {
					t.Fatalf("placed at %q, %q, %q", nb, nc, nh)
				}
				if fi, err := os.Lstat(link); err != nil || !fi.Mode().IsRegular() {
					t.Fatalf("the link was not replaced: %v", err)
				}
			} else {
				if nb != "b (1).txt" || nc != "c (1).txt" || nh != "h (1).txt" {
					t.Fatalf("placed at %q, %q, %q", nb, nc, nh)
				}
				if got, err := os.Readlink(link); err != nil || got != o.path {
					t.Fatalf("the link changed: %q, %v", got, err)
				}
			}
			mustContent(t, filepath.Join(dir, nb), b.data)
			mustContent(t, filepath.Join(dir, nc), c.data)
			mustContent(t, filepath.Join(dir, nh), h.data)
		})
	}
}

// TestPlaceLinkedDirectory: a directory on the way that is a link out of
// the target is refused, and nothing lands outside.
func TestPlaceLinkedDirectory(t *testing.T) {
	rng := newRand(t)
	dir := t.TempDir()
	out := t.TempDir()
	if err := os.Symlink(out, filepath.Join(dir, "sub")); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, dir, Options{})
	b := newBlob(rng, "p", "sub/x.bin", 4096+1, 4096)
	f, err := s.Begin(b.key, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Release()
	b.write(t, f, 0, b.chunks())
	if _, err := s.Commit([]*File{f}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Place(b.root, false); !errors.Is(err, wire.ErrBadPath) {
		t.Fatalf("place through a linked directory: %v", err)
	}
	checkDir(t, out)
}

func TestKeyIdentity(t *testing.T) {
	rng := newRand(t)
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	a := newBlob(rng, "peerA", "x.bin", 8*4096, 4096)
	b := newBlob(rng, "peerB", "x.bin", 8*4096, 4096)
	b.key.MTime = a.key.MTime
	if a.key.id() == b.key.id() || source(a.key.id()) == source(b.key.id()) {
		t.Fatal("two senders share temporary files")
	}
	fa, err := s.Begin(a.key, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fb, err := s.Begin(b.key, 0o644)
	if err != nil {
		t.Fatalf("two senders of one path: %v", err)
	}
	if _, err := s.Begin(a.key, 0o644); !errors.Is(err, ErrBusy) || !errors.Is(err, wire.ErrBusy) {
		t.Fatalf("a second Begin of a live key: %v", err)
	}
	a.write(t, fa, 0, 4)
	if _, err := s.Commit([]*File{fa, fb}); err != nil {
		t.Fatal(err)
	}
	if err := fa.SaveState(); err != nil {
		t.Fatal(err)
	}
	fa.Release()
	if fb.Held().Size() != 0 {
		t.Fatal("one sender's chunks count for another")
	}
	b.write(t, fb, 0, b.chunks())
	if _, err := s.Commit([]*File{fb}); err != nil {
		t.Fatal(err)
	}
	if name, err := fb.Place(b.root, false); err != nil || name != "x.bin" {
		t.Fatalf("place: %q, %v", name, err)
	}
	fb.Release()

	// A's partial file is untouched by B's transfer.
	fa, err = s.Begin(a.key, 0o644)
	if err != nil {
		t.Fatalf("Begin after Release: %v", err)
	}
	defer fa.Release()
	if want := chunker.NewSet(a.rng(0, 4)); !fa.Held().Equal(want) {
		t.Fatalf("resumed %v, want %v", fa.Held(), want)
	}
	if lost, err := fa.Verify(testContext(t)); err != nil || lost != 0 {
		t.Fatalf("verify: %d lost, %v", lost, err)
	}
	a.write(t, fa, 4, a.chunks())
	if _, err := s.Commit([]*File{fa}); err != nil {
		t.Fatal(err)
	}
	if name, err := fa.Place(a.root, false); err != nil || name != "x (1).bin" {
		t.Fatalf("place: %q, %v", name, err)
	}
	mustContent(t, filepath.Join(dir, "x.bin"), b.data)
	mustContent(t, filepath.Join(dir, "x (1).bin"), a.data)
}

// TestKeyIDGolden pins the temporary file names: a partial file left by
// one version is resumed by the next only if they agree.
func TestKeyIDGolden(t *testing.T) {
	k := Key{Peer: "12D3KooWPeer", Path: "dir/file.txt", Size: 123456, MTime: 1_700_000_000_000_000_001, ChunkSize: 1 << 20}
	const want = "8ca46c7430a81eac94ce3972-b4b8fd3ec92de24bd334cb31"
	got := k.id()
	if len(got) != 49 || got[24] != '-' {
		t.Fatalf("id %q: want <24 hex>-<24 hex>", got)
	}
	if got != want {
		t.Errorf("id %q, want %q: temporary files of earlier versions would no longer resume", got, want)
	}
	for _, other := range []Key{
		{Peer: k.Peer, Path: k.Path, Size: k.Size + 1, MTime: k.MTime, ChunkSize: k.ChunkSize},
		{Peer: k.Peer, Path: k.Path, Size: k.Size, MTime: k.MTime + 1, ChunkSize: k.ChunkSize},
		{Peer: k.Peer, Path: k.Path, Size: k.Size, MTime: k.MTime, ChunkSize: k.ChunkSize / 2},
	} {
		if id := other.id(); id == got || source(id) != source(got) {
			t.Errorf("%+v: id %q; want another version of the same source %q", other, id, source(got))
		}
	}
	// Lengths are part of the encoding: moving a byte between the
	// peer and the path changes the source.
	if (Key{Peer: "ab", Path: "c"}).id()[:24] == (Key{Peer: "a", Path: "bc"}).id()[:24] {
		t.Error("peer and path are not delimited")
	}
}

func TestBeginAfterReleaseAndBusy(t *testing.T) {
	rng := newRand(t)
	s := openStore(t, t.TempDir(), Options{})
	b := newBlob(rng, "p", "x", 100, 4096)
	f, err := s.Begin(b.key, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Begin(b.key, 0); !errors.Is(err, ErrBusy) {
		t.Fatalf("second Begin: %v", err)
	}
	f.Release()
	f.Release() // twice is harmless
	if wrote, err := f.Write(0, b.chunk(0), b.sums[0]); wrote || err != nil {
		t.Fatalf("write after Release: %v, %v", wrote, err)
	}
	g, err := s.Begin(b.key, 0)
	if err != nil {
		t.Fatalf("Begin after Release: %v", err)
	}
	f.Release() // the old File must not release the new one
	if _, err := s.Begin(b.key, 0); !errors.Is(err, ErrBusy) {
		t.Fatalf("a stale Release freed a live key: %v", err)
	}
	g.Release()
}

func TestPartialsDropOlderVersions(t *testing.T) {
	rng := newRand(t)
	dir := t.TempDir()
	s := openStore(t, dir, Options{})

	// No staging directory yet: nothing is partial.
	has, err := s.Partials()
	if err != nil {
		t.Fatal(err)
	}
	v1 := newBlob(rng, "p", "doc.bin", 6*4096, 4096)
	if has(v1.key, false) || s.PartialBytes(keysOf(v1.key)) != 0 {
		t.Fatal("a partial file before any was received")
	}

	leave := func(b *blob, n int) {
		t.Helper()
		f, err := s.Begin(b.key, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		b.write(t, f, 0, n)
		if _, err := s.Commit([]*File{f}); err != nil {
			t.Fatal(err)
		}
		f.Release() // saves the state
	}
	leave(v1, 3)
	other := newBlob(rng, "q", "doc.bin", 6*4096, 4096) // another sender
	leave(other, 2)
	for _, k := range []Key{v1.key, other.key} {
		for _, ext := range []string{partExt, stateExt} {
			if !exists(stageFile(dir, k, ext)) {
				t.Fatalf("Release left no %s", ext)
			}
		}
	}
	if n := s.PartialBytes(keysOf(v1.key)); n < 3*4096 || n > v1.key.Size {
		t.Errorf("PartialBytes %d, want at least %d", n, 3*4096)
	}

	// The same key is still partial.
	has, err = s.Partials()
	if err != nil {
		t.Fatal(err)
	}
	if !has(v1.key, false) || !has(other.key, false) {
		t.Fatal("Partials lost a partial file")
	}

	// A newer version of the same file from the same sender supersedes it,
	// but only if the older one is not being received now.
	v2 := newBlob(rng, "p", "doc.bin", 7*4096, 4096)
	live, err := s.Begin(v1.key, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	has, err = s.Partials()
	if err != nil {
		t.Fatal(err)
	}
	if has(v2.key, false) {
		t.Fatal("a new version is partial")
	}
	if !exists(stageFile(dir, v1.key, partExt)) {
		t.Fatal("Partials removed the temporary file of a live transfer")
	}
	live.Release()

	has, err = s.Partials()
	if err != nil {
		t.Fatal(err)
	}
	if has(v2.key, false) {
		t.Fatal("a new version is partial")
	}
	for _, ext := range []string{partExt, stateExt} {
		if exists(stageFile(dir, v1.key, ext)) {
			t.Errorf("the older version's %s is still there", ext)
		}
		if !exists(stageFile(dir, other.key, ext)) {
			t.Errorf("another sender's %s was removed", ext)
		}
	}
	f, err := s.Begin(v1.key, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Release()
	if f.Held().Size() != 0 {
		t.Fatal("the superseded version still resumes")
	}
}

func TestCompletedJournal(t *testing.T) {
	rng := newRand(t)
	dir := t.TempDir()
	jpath := filepath.Join(t.TempDir(), "state", "journal")
	s := openStore(t, dir, Options{Journal: jpath})
	if err := os.WriteFile(filepath.Join(dir, "a.bin"), []byte("taken"), 0o644); err != nil {
		t.Fatal(err)
	}
	a := newBlob(rng, "p", "a.bin", 3*4096+7, 4096)
	if _, ok := s.Completed(a.key); ok {
		t.Fatal("completed before it arrived")
	}
	name := a.receive(t, s, 0o644, false)
	if name != "a (1).bin" {
		t.Fatalf("placed at %q", name)
	}
	h, ok := s.Completed(a.key)
	if want := (Held{Name: name, Root: a.root}); !ok || h != want {
		t.Fatalf("Completed = %+v, %v; want %+v", h, ok, want)
	}

	// Another sender's file of the same path and size: present, to be
	// confirmed by the root.
	b := newBlob(rng, "p", "b.bin", 2*4096, 4096)
	b.receive(t, s, 0o644, false)
	fromQ := b.key
	fromQ.Peer = "q"
	if h, ok := s.Completed(fromQ); !ok || h != (Held{Name: "b.bin", Root: b.root, Present: true}) {
		t.Fatalf("same name from another sender: %+v, %v", h, ok)
	}
	fromQ.Size++
	if _, ok := s.Completed(fromQ); ok {
		t.Fatal("a file of another size counts as present")
	}

	// A new store on the same journal still knows both; a torn last line
	// is skipped and does not swallow the next record.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	jf, err := os.OpenFile(jpath, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jf.WriteString(`{"peer":"p","path":"c.bin","size":12,"mti`); err != nil {
		t.Fatal(err)
	}
	jf.Close()
	s = openStore(t, dir, Options{Journal: jpath})
	if h, ok := s.Completed(a.key); !ok || h.Name != name || h.Root != a.root {
		t.Fatalf("a new store forgot: %+v, %v", h, ok)
	}
	c := newBlob(rng, "p", "c.bin", 12, 4096)
	c.receive(t, s, 0o644, false)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, Options{Journal: jpath})
	for _, x := range []*blob{a, b, c} {
		if _, ok := s.Completed(x.key); !ok {
			t.Fatalf("%s forgotten after a torn line", x.key.Path)
		}
	}

	// A changed file no longer counts.
	final := filepath.Join(dir, name)
	mtime := time.Unix(0, a.key.MTime)
	if err := os.Chtimes(final, mtime, mtime.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Completed(a.key); ok {
		t.Fatal("completed after its mtime changed")
	}
	if err := os.Chtimes(final, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Completed(a.key); !ok {
		t.Fatal("not completed once restored")
	}
	if err := os.Truncate(final, int64(a.key.Size-1)); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(final, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Completed(a.key); ok {
		t.Fatal("completed after its size changed")
	}
	if err := os.Remove(final); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "b.bin"), final); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Completed(a.key); ok {
		t.Fatal("a link counts as completed")
	}

	// A contradicted file is received again.
	if _, ok := s.Completed(c.key); !ok {
		t.Fatal("c.bin not completed")
	}
	s.Contradict(c.key)
	if _, ok := s.Completed(c.key); ok {
		t.Fatal("completed after Contradict")
	}
}

// TestJournalGolden reads a journal line as an earlier version wrote it:
// the field names are a file format.
func TestJournalGolden(t *testing.T) {
	dir := t.TempDir()
	jpath := filepath.Join(t.TempDir(), "journal")
	data := []byte("hello")
	const mtime = 1_600_000_000_000_000_042
	if err := os.WriteFile(filepath.Join(dir, "got.txt"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(filepath.Join(dir, "got.txt"), time.Unix(0, mtime), time.Unix(0, mtime)); err != nil {
		t.Fatal(err)
	}
	b := blobOf("p", "got.txt", data, 4096, 1_500_000_000)
	line := `{"peer":"p","path":"got.txt","size":5,"mtime":1500000000,"chunk":4096,"id":"` + b.key.id() +
		`","root":"` + hex.EncodeToString(b.root[:]) + `","name":"got.txt","file_mtime":1600000000000000042}` + "\n"
	junk := "not json\n" + `{"peer":"p","id":"","root":"00"}` + "\n"
	if err := os.WriteFile(jpath, []byte(junk+line), 0o600); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, dir, Options{Journal: jpath})
	if h, ok := s.Completed(b.key); !ok || h != (Held{Name: "got.txt", Root: b.root}) {
		t.Fatalf("Completed = %+v, %v", h, ok)
	}
}

// keysOf yields keys to PartialBytes.
func keysOf(keys ...Key) func(*Key) bool {
	return func(k *Key) bool {
		if len(keys) == 0 {
			return false
		}
		*k, keys = keys[0], keys[1:]
		return true
	}
}
