//go:build unix

package store

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/dshare/dshare/chunker"
	"github.com/dshare/dshare/wire"
)

// leavePartial receives chunks [0, n) of b and releases the file, as a
// receiver that stops midway does.
func leavePartial(t *testing.T, s *Store, b *blob, n int) {
	t.Helper()
	f, err := s.Begin(b.key, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	b.write(t, f, 0, n)
	if _, err := s.Commit([]*File{f}); err != nil {
		t.Fatal(err)
	}
	if err := f.SaveState(); err != nil {
		t.Fatal(err)
	}
	f.Release()
}

// finish receives the rest of b into f and places it.
func finish(t *testing.T, s *Store, f *File, b *blob) string {
	t.Helper()
	b.write(t, f, 0, b.chunks()) // held chunks are skipped
	if _, err := s.Commit([]*File{f}); err != nil {
		t.Fatal(err)
	}
	name, err := f.Place(b.root, false)
	if err != nil {
		t.Fatalf("place: %v", err)
	}
	return name
}

func TestResume(t *testing.T) {
	rng := newRand(t)
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	b := newBlob(rng, "p", "r.bin", 16*4096-100, 4096)
	leavePartial(t, s, b, 8)

	// Even another Store, as after a restart.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, Options{})
	has, err := s.Partials()
	if err != nil || !has(b.key, false) {
		t.Fatalf("Partials: %v", err)
	}
	f, err := s.Begin(b.key, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Release()
	if want := chunker.NewSet(b.rng(0, 8)); !f.Held().Equal(want) {
		t.Fatalf("held %v, want %v", f.Held(), want)
	}
	if !f.Resumed() || f.Verified() {
		t.Fatalf("resumed %v, verified %v", f.Resumed(), f.Verified())
	}
	if wrote, err := f.Write(3, b.chunk(3), b.sums[3]); wrote || err != nil {
		t.Fatalf("a resumed chunk was written again: %v, %v", wrote, err)
	}
	if lost, err := f.Verify(testContext(t)); lost != 0 || err != nil {
		t.Fatalf("verify: %d lost, %v", lost, err)
	}
	if f.Resumed() || !f.Verified() {
		t.Fatalf("after Verify: resumed %v, verified %v", f.Resumed(), f.Verified())
	}
	if name := finish(t, s, f, b); name != "r.bin" {
		t.Fatalf("placed at %q", name)
	}
	mustContent(t, filepath.Join(dir, "r.bin"), b.data)
}

// corrupt flips a byte of chunk idx of k's temporary file.
func corrupt(t *testing.T, dir string, b *blob, idx int) {
	t.Helper()
	pf, err := os.OpenFile(stageFile(dir, b.key, partExt), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	off := int64(chunker.ChunkRange(idx, b.key.Size, b.key.ChunkSize).Off) + 17
	p := []byte{b.data[off] ^ 0xff}
	if _, err := pf.WriteAt(p, off); err != nil {
		t.Fatal(err)
	}
}

func TestResumeCorruptChunk(t *testing.T) {
	rng := newRand(t)
	t.Run("Verify", func(t *testing.T) {
		dir := t.TempDir()
		s := openStore(t, dir, Options{})
		b := newBlob(rng, "p", "c.bin", 16*4096, 4096)
		leavePartial(t, s, b, 8)
		corrupt(t, dir, b, 2)
		f, err := s.Begin(b.key, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Release()
		if !f.Held().Contains(0, 8*4096) {
			t.Fatal("resumed chunks are not held before Verify")
		}
		lost, err := f.Verify(testContext(t))
		if err != nil || lost != 4096 {
			t.Fatalf("verify: %d lost, %v; want one chunk", lost, err)
		}
		want := chunker.NewSet(b.rng(0, 2), b.rng(3, 8))
		if !f.Held().Equal(want) {
			t.Fatalf("held %v, want %v", f.Held(), want)
		}
		if wrote, err := f.Write(2, b.chunk(2), b.sums[2]); !wrote || err != nil {
			t.Fatalf("the lost chunk was not written again: %v, %v", wrote, err)
		}
		finish(t, s, f, b)
		mustContent(t, filepath.Join(dir, "c.bin"), b.data)
	})
	t.Run("Place", func(t *testing.T) {
		dir := t.TempDir()
		s := openStore(t, dir, Options{})
		b := newBlob(rng, "p", "c.bin", 16*4096, 4096)
		leavePartial(t, s, b, 8)
		corrupt(t, dir, b, 5)
		f, err := s.Begin(b.key, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Release()
		b.write(t, f, 8, b.chunks())
		if _, err := s.Commit([]*File{f}); err != nil {
			t.Fatal(err)
		}
		_, err = f.Place(b.root, false)
		if !errors.Is(err, ErrLost) || !errors.Is(err, wire.ErrHashMismatch) {
			t.Fatalf("place with a corrupt resumed chunk: %v", err)
		}
		if exists(filepath.Join(dir, "c.bin")) {
			t.Fatal("a corrupt file was placed")
		}
		r := b.rng(5, 6)
		if f.Held().Contains(r.Off, r.Off+1) || f.Full() {
			t.Fatal("the corrupt chunk is still held")
		}
		finish(t, s, f, b)
		mustContent(t, filepath.Join(dir, "c.bin"), b.data)
	})
	t.Run("part gone", func(t *testing.T) {
		dir := t.TempDir()
		s := openStore(t, dir, Options{})
		b := newBlob(rng, "p", "g.bin", 8*4096, 4096)
		leavePartial(t, s, b, 4)
		f, err := s.Begin(b.key, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Release()
		if err := os.Remove(stageFile(dir, b.key, partExt)); err != nil {
			t.Fatal(err)
		}
		lost, err := f.Verify(testContext(t))
		if err != nil || lost != 4*4096 || f.Held().Size() != 0 {
			t.Fatalf("verify without the file: %d lost, %v, held %v", lost, err, f.Held())
		}
	})
	t.Run("truncated part", func(t *testing.T) {
		dir := t.TempDir()
		s := openStore(t, dir, Options{})
		b := newBlob(rng, "p", "t.bin", 8*4096, 4096)
		leavePartial(t, s, b, 4)
		if err := os.Truncate(stageFile(dir, b.key, partExt), 3*4096+1); err != nil {
			t.Fatal(err)
		}
		f, err := s.Begin(b.key, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Release()
		if lost, err := f.Verify(testContext(t)); err != nil || lost != 4096 {
			t.Fatalf("verify of a truncated file: %d lost, %v", lost, err)
		}
		finish(t, s, f, b)
		mustContent(t, filepath.Join(dir, "t.bin"), b.data)
	})
}

// TestResumeBadState: whatever is wrong with the state, the transfer
// starts over, and the leftovers are removed.
func TestResumeBadState(t *testing.T) {
	rng := newRand(t)
	for _, tt := range []struct {
		name  string
		spoil func(t *testing.T, dir string, b *blob)
	}{
		{"huge", func(t *testing.T, dir string, b *blob) {
			// Sparse: costs no disk, but reading it would cost 1 GiB.
			if err := os.Truncate(stageFile(dir, b.key, stateExt), 1<<30); err != nil {
				t.Fatal(err)
			}
		}},
		{"damaged", func(t *testing.T, dir string, b *blob) {
			name := stageFile(dir, b.key, stateExt)
			st, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			st[len(st)/2] ^= 1
			if err := os.WriteFile(name, st, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"empty", func(t *testing.T, dir string, b *blob) {
			if err := os.Truncate(stageFile(dir, b.key, stateExt), 0); err != nil {
				t.Fatal(err)
			}
		}},
		{"another file's", func(t *testing.T, dir string, b *blob) {
			other := *b
			other.key.MTime++
			st := chunker.State{Peer: other.key.Peer, Path: other.key.Path, Size: other.key.Size,
				MTime: other.key.MTime, ChunkSize: other.key.ChunkSize, Have: chunker.Full(b.key.Size), Sums: b.sums}
			enc, err := st.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(stageFile(dir, b.key, stateExt), enc, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"no part", func(t *testing.T, dir string, b *blob) {
			if err := os.Remove(stageFile(dir, b.key, partExt)); err != nil {
				t.Fatal(err)
			}
		}},
		{"no state", func(t *testing.T, dir string, b *blob) {
			if err := os.Remove(stageFile(dir, b.key, stateExt)); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openStore(t, dir, Options{})
			b := newBlob(rng, "p", "s.bin", 256*4096, 4096)
			leavePartial(t, s, b, 100)
			tt.spoil(t, dir, b)

			var m0, m1 runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&m0)
			f, err := s.Begin(b.key, 0o644)
			runtime.ReadMemStats(&m1)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Release()
			if d := m1.TotalAlloc - m0.TotalAlloc; d > 4<<20 {
				t.Errorf("Begin allocated %d bytes for a %d-byte file's state", d, 256*48)
			}
			if f.Held().Size() != 0 || f.Resumed() {
				t.Fatalf("resumed %v from a bad state", f.Held())
			}
			if exists(stageFile(dir, b.key, stateExt)) || exists(stageFile(dir, b.key, partExt)) {
				t.Fatal("the bad leftovers are still there")
			}
			finish(t, s, f, b)
			mustContent(t, filepath.Join(dir, "s.bin"), b.data)
		})
	}
}

// TestResumeSmallFile: a file of one chunk keeps no state; what an
// earlier run left of it is not trusted, and is replaced when the file is
// written again.
func TestResumeSmallFile(t *testing.T) {
	rng := newRand(t)
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	b := newBlob(rng, "p", "one.bin", 4000, 4096)
	f, err := s.Begin(b.key, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	b.write(t, f, 0, 1)
	if _, err := s.Commit([]*File{f}); err != nil {
		t.Fatal(err)
	}
	f.Release()
	if exists(stageFile(dir, b.key, stateExt)) {
		t.Fatal("state saved for a one-chunk file")
	}
	if !exists(stageFile(dir, b.key, partExt)) {
		t.Fatal("no temporary file")
	}
	f, err = s.Begin(b.key, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Release()
	if f.Held().Size() != 0 {
		t.Fatal("a one-chunk leftover was trusted")
	}
	finish(t, s, f, b)
	mustContent(t, filepath.Join(dir, "one.bin"), b.data)
	if exists(stageFile(dir, b.key, partExt)) {
		t.Fatal("a one-chunk leftover was kept")
	}
}

// TestSaveStateOnlyOnChange: an unchanged file saves nothing, so a
// planted or removed state stays as it is until something changes.
func TestSaveStateOnlyOnChange(t *testing.T) {
	rng := newRand(t)
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	b := newBlob(rng, "p", "x.bin", 8*4096, 4096)
	f, err := s.Begin(b.key, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Release()
	if err := f.SaveState(); err != nil || exists(stageFile(dir, b.key, stateExt)) {
		t.Fatalf("state saved for an empty file: %v", err)
	}
	b.write(t, f, 0, 2)
	if err := f.SaveState(); err != nil || !exists(stageFile(dir, b.key, stateExt)) {
		t.Fatalf("state not saved: %v", err)
	}
	if err := os.Remove(stageFile(dir, b.key, stateExt)); err != nil {
		t.Fatal(err)
	}
	if err := f.SaveState(); err != nil || exists(stageFile(dir, b.key, stateExt)) {
		t.Fatalf("an unchanged state was saved again: %v", err)
	}
	b.write(t, f, 2, 3)
	if err := f.SaveState(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(stageFile(dir, b.key, stateExt))
	if err != nil {
		t.Fatal(err)
	}
	var st chunker.State
	if err := st.UnmarshalBinary(raw); err != nil {
		t.Fatal(err)
	}
	if !st.Matches(chunker.NewState(b.key.Peer, b.key.Path, b.key.Size, b.key.MTime, b.key.ChunkSize)) ||
		!st.Have.Equal(chunker.NewSet(b.rng(0, 3))) {
		t.Fatalf("state %+v", st)
	}
	for i := range 3 {
		if st.Sums[i] != b.sums[i] {
			t.Fatalf("state sum %d differs", i)
		}
	}
	if names := stageNames(t, dir); len(names) != 2 {
		t.Fatalf("stage holds %q: a temporary state file was left", names)
	}
}

// TestSaveStateDuePaced: a periodic save of a large state waits
// statePace per MiB since the last one, one of a small state never waits,
// and Release saves whatever was held back.
func TestSaveStateDuePaced(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	chunk := make([]byte, 4096)
	held := func(k Key) uint64 {
		raw, err := os.ReadFile(stageFile(dir, k, stateExt))
		if err != nil {
			t.Fatal(err)
		}
		var st chunker.State
		if err := st.UnmarshalBinary(raw); err != nil {
			t.Fatal(err)
		}
		return st.Have.Size()
	}
	setSaved := func(f *File, at time.Time) {
		f.mu.Lock()
		f.savedAt = at
		f.mu.Unlock()
	}

	// 1 GiB in 4 KiB chunks: an 8 MiB state, 200 ms apart.
	big := Key{Peer: "p", Path: "big.bin", Size: 1 << 30, MTime: 1, ChunkSize: 4096}
	f, err := s.Begin(big, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := f.Write(i, chunk, chunker.Sum{}); err != nil {
			t.Fatal(err)
		}
		setSaved(f, time.Now())
		if err := f.SaveStateDue(); err != nil {
			t.Fatal(err)
		}
		if i > 0 && held(big) != 4096 {
			t.Fatalf("a save of 8 MiB came at once after the last one: %d bytes held", held(big))
		}
		if i == 0 {
			setSaved(f, time.Now().Add(-8*statePace))
			if err := f.SaveStateDue(); err != nil || held(big) != 4096 {
				t.Fatalf("a due save did not come: %v", err)
			}
		}
	}
	f.Release()
	if held(big) != 3*4096 {
		t.Fatalf("Release kept %d bytes in the state, not %d", held(big), 3*4096)
	}

	// A state of 256 bytes is saved at every call.
	small := Key{Peer: "p", Path: "small.bin", Size: 8 * 4096, MTime: 1, ChunkSize: 4096}
	g, err := s.Begin(small, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Release()
	for i := range 3 {
		if _, err := g.Write(i, chunk, chunker.Sum{}); err != nil {
			t.Fatal(err)
		}
		setSaved(g, time.Now())
		if err := g.SaveStateDue(); err != nil || held(small) != uint64(i+1)*4096 {
			t.Fatalf("save %d of a small state: %v", i, err)
		}
	}
}

// TestStateAfterLoss: chunks dropped by Verify leave the saved state too,
// even when as many new chunks arrive as were dropped; otherwise the
// next run would claim the bad chunk again and forget the new one.
func TestStateAfterLoss(t *testing.T) {
	rng := newRand(t)
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	b := newBlob(rng, "p", "l.bin", 16*4096, 4096)
	leavePartial(t, s, b, 8)
	corrupt(t, dir, b, 2)
	f, err := s.Begin(b.key, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if lost, err := f.Verify(testContext(t)); err != nil || lost != 4096 {
		t.Fatalf("verify: %d lost, %v", lost, err)
	}
	b.write(t, f, 8, 9) // as many bytes as were lost
	if _, err := s.Commit([]*File{f}); err != nil {
		t.Fatal(err)
	}
	f.Release()

	f, err = s.Begin(b.key, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Release()
	if want := chunker.NewSet(b.rng(0, 2), b.rng(3, 9)); !f.Held().Equal(want) {
		t.Fatalf("resumed %v, want %v", f.Held(), want)
	}
	if lost, err := f.Verify(testContext(t)); err != nil || lost != 0 {
		t.Fatalf("verify after resume: %d lost, %v", lost, err)
	}
}
