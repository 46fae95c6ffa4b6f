//go:build unix

package store

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/dshare/dshare/wire"
)

// plantKind plants something at name that points outside the store.
type plantKind struct {
	name  string
	plant func(t *testing.T, o *outside, name string)
}

var plantKinds = []plantKind{
	{"symlink to a file", func(t *testing.T, o *outside, name string) {
		if err := os.Symlink(o.path, name); err != nil {
			t.Fatal(err)
		}
	}},
	{"symlink to a directory", func(t *testing.T, o *outside, name string) {
		if err := os.Symlink(filepath.Dir(o.path), name); err != nil {
			t.Fatal(err)
		}
	}},
	{"hard link", func(t *testing.T, o *outside, name string) {
		if err := os.Link(o.path, name); err != nil {
			t.Fatal(err)
		}
	}},
}

// TestPlantedLinks plants links at every name the store uses in its
// staging directory, at every step of a transfer. Nothing outside may
// change; the transfer either arrives whole or fails with a clear error.
func TestPlantedLinks(t *testing.T) {
	rng := newRand(t)
	type target struct {
		name string
		path func(dir string, k Key) string
	}
	targets := []target{
		{"part", func(dir string, k Key) string { return stageFile(dir, k, partExt) }},
		{"state", func(dir string, k Key) string { return stageFile(dir, k, stateExt) }},
		{"stage", func(dir string, k Key) string { return filepath.Join(dir, StageName) }},
	}
	// Steps at which the link is planted. Where the name exists by then,
	// it is moved aside first, as someone planting a link would.
	steps := []string{"before Begin", "before writing", "before SaveState", "before Place"}
	for _, tg := range targets {
		for _, kind := range plantKinds {
			for _, step := range steps {
				t.Run(tg.name+"/"+kind.name+"/"+step, func(t *testing.T) {
					dir := t.TempDir()
					o := newOutside(t)
					outDir := filepath.Dir(o.path)
					s := openStore(t, dir, Options{})
					b := newBlob(rng, "p", "f.bin", 6*4096+1, 4096)
					// The stage exists, as left by an earlier transfer.
					if tg.name != "stage" || step != "before Begin" {
						leavePartial(t, s, newBlob(rng, "other", "g.bin", 2*4096, 4096), 1)
					}
					at := tg.path(dir, b.key)
					plant := func(now string) {
						if now != step {
							return
						}
						if exists(at) {
							if err := os.Rename(at, filepath.Join(dir, "moved-aside")); err != nil {
								t.Fatal(err)
							}
						}
						kind.plant(t, o, at)
					}

					name, err := plantedTransfer(t, s, b, plant)
					o.check(t)
					checkDir(t, outDir, filepath.Base(o.path))
					if fi, lerr := os.Lstat(o.path); lerr == nil {
						if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink != 1 && kind.name == "hard link" && tg.name != "stage" && err == nil {
							t.Errorf("the outside file still has %d links", st.Nlink)
						}
					}
					if err != nil {
						t.Logf("refused: %v", err)
						if tg.name == "stage" && !errors.Is(err, wire.ErrBadPath) {
							t.Errorf("a stage that is not ours: %v, want %v", err, wire.ErrBadPath)
						}
						if exists(filepath.Join(dir, "f.bin")) {
							fi, _ := os.Lstat(filepath.Join(dir, "f.bin"))
							t.Errorf("a failed transfer left f.bin (%v)", fi.Mode())
						}
						return
					}
					if name != "f.bin" {
						t.Fatalf("placed at %q", name)
					}
					mustContent(t, filepath.Join(dir, name), b.data)
				})
			}
		}
	}
}

// plantedTransfer receives b into s, calling plant before each step.
func plantedTransfer(t *testing.T, s *Store, b *blob, plant func(step string)) (string, error) {
	t.Helper()
	plant("before Begin")
	f, err := s.Begin(b.key, 0o644)
	if err != nil {
		return "", err
	}
	defer f.Release()
	// Something is written first, so that the temporary file exists.
	if _, err := f.Write(0, b.chunk(0), b.sums[0]); err != nil {
		return "", err
	}
	if _, err := s.Commit([]*File{f}); err != nil {
		return "", err
	}
	if err := f.SaveState(); err != nil {
		return "", err
	}
	plant("before writing")
	for i := 1; i < 3; i++ {
		if _, err := f.Write(i, b.chunk(i), b.sums[i]); err != nil {
			return "", err
		}
	}
	if _, err := s.Commit([]*File{f}); err != nil {
		return "", err
	}
	plant("before SaveState")
	if err := f.SaveState(); err != nil {
		return "", err
	}
	for i := 3; i < b.chunks(); i++ {
		if _, err := f.Write(i, b.chunk(i), b.sums[i]); err != nil {
			return "", err
		}
	}
	if _, err := s.Commit([]*File{f}); err != nil {
		return "", err
	}
	plant("before Place")
	return f.Place(b.root, false)
}

// TestPlantedLinkOverwrite: with overwrite on, a temporary file replaced
// by a link is never moved under the final name.
func TestPlantedLinkOverwrite(t *testing.T) {
	rng := newRand(t)
	for _, kind := range plantKinds {
		t.Run(kind.name, func(t *testing.T) {
			dir := t.TempDir()
			o := newOutside(t)
			s := openStore(t, dir, Options{})
			if err := os.WriteFile(filepath.Join(dir, "f.bin"), []byte("old"), 0o644); err != nil {
				t.Fatal(err)
			}
			b := newBlob(rng, "p", "f.bin", 3*4096, 4096)
			f, err := s.Begin(b.key, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Release()
			b.write(t, f, 0, b.chunks())
			if _, err := s.Commit([]*File{f}); err != nil {
				t.Fatal(err)
			}
			at := stageFile(dir, b.key, partExt)
			if err := os.Rename(at, filepath.Join(dir, "moved-aside")); err != nil {
				t.Fatal(err)
			}
			kind.plant(t, o, at)
			name, err := f.Place(b.root, true)
			o.check(t)
			got, rerr := os.ReadFile(filepath.Join(dir, "f.bin"))
			if rerr != nil {
				t.Fatal(rerr)
			}
			if err != nil {
				t.Logf("refused: %v", err)
				if string(got) != "old" {
					t.Fatalf("a failed overwrite left %d bytes under the name", len(got))
				}
				return
			}
			if name != "f.bin" || string(got) != string(b.data) {
				t.Fatalf("placed at %q: %d bytes", name, len(got))
			}
		})
	}
}

// TestStageOfAnotherUser: a staging directory another user owns is
// refused, and nothing is written into it.
func TestStageOfAnotherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give the staging directory to another user")
	}
	rng := newRand(t)
	dir := t.TempDir()
	stage := filepath.Join(dir, StageName)
	if err := os.Mkdir(stage, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(stage, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, dir, Options{})
	b := newBlob(rng, "p", "f.bin", 3*4096, 4096)
	_, err := plantedTransfer(t, s, b, func(string) {})
	if !errors.Is(err, wire.ErrBadPath) {
		t.Fatalf("a stage of another user: %v", err)
	}
	if _, err := s.Partials(); !errors.Is(err, wire.ErrBadPath) {
		t.Fatalf("Partials on a stage of another user: %v", err)
	}
	checkDir(t, stage)
	checkDir(t, dir, StageName)
}

// TestStageTightened: a staging directory others may enter is made
// private before anything is written into it.
func TestStageTightened(t *testing.T) {
	rng := newRand(t)
	dir := t.TempDir()
	stage := filepath.Join(dir, StageName)
	if err := os.Mkdir(stage, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(stage, 0o777); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, dir, Options{})
	b := newBlob(rng, "p", "f.bin", 3*4096, 4096)
	f, err := s.Begin(b.key, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Release()
	b.write(t, f, 0, 1)
	fi, err := os.Lstat(stage)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Fatalf("staging directory mode %v, want 0700", fi.Mode().Perm())
	}
	pfi, err := os.Lstat(stageFile(dir, b.key, partExt))
	if err != nil {
		t.Fatal(err)
	}
	if pfi.Mode().Perm()&0o077 != 0 {
		t.Fatalf("temporary file mode %v", pfi.Mode().Perm())
	}
}

// TestStageFIFO: a FIFO where a temporary file or a state should be
// is removed, and opening it never blocks.
func TestStageFIFO(t *testing.T) {
	rng := newRand(t)
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	b := newBlob(rng, "p", "f.bin", 4*4096, 4096)
	leavePartial(t, s, b, 2)
	for _, ext := range []string{partExt, stateExt} {
		name := stageFile(dir, b.key, ext)
		if err := os.Remove(name); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mkfifo(name, 0o600); err != nil {
			t.Skipf("mkfifo: %v", err)
		}
	}
	ctx := testContext(t)
	done := make(chan error, 1)
	go func() {
		f, err := s.Begin(b.key, 0o644)
		if err == nil {
			f.Release()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("begin: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("Begin blocked on a FIFO")
	}
	for _, ext := range []string{partExt, stateExt} {
		if exists(stageFile(dir, b.key, ext)) {
			t.Errorf("the FIFO at %s is still there", ext)
		}
	}
	b.receive(t, s, 0o644, false)
	mustContent(t, filepath.Join(dir, "f.bin"), b.data)
}
