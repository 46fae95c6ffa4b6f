package source

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	"github.com/dshare/dshare/wire"
)

// Manifest is what a sender offers: wire entries and, for each, the local
// file it comes from.
type Manifest struct {
	Entries []wire.Entry
	Sources []string // local path per entry; "" for directories
	// Root, if set, is where Sources are: paths relative to it, opened
	// through it, so that nothing outside it is read.
	Root *os.Root
}

// Open returns the reader of entry i.
func (m *Manifest) Open(i int) *File {
	f := Open(m.Sources[i], m.Entries[i])
	f.root = m.Root
	return f
}

// Files returns the number of regular files and their total size.
func (m *Manifest) Files() (n int, bytes uint64) {
	for _, e := range m.Entries {
		if !e.Dir {
			n++
			bytes += e.Size
		}
	}
	return n, bytes
}

// BuildManifest walks paths. A file is offered under its base name and a
// directory under its base name with everything below it, empty
// directories included. Symbolic links inside a directory are followed to
// regular files; links to directories and special files are skipped.
func BuildManifest(paths []string) (*Manifest, error) {
	m := new(Manifest)
	seen := map[string]bool{}
	add := func(name, src string, fi fs.FileInfo) error {
		if fi.Mode().IsRegular() {
			// Found now, before the receiver has said yes and begun
			// files, rather than halfway through.
			if err := readable(src); err != nil {
				return cannotRead(src, err)
			}
		}
		if seen[name] {
			return fmt.Errorf("%s is offered twice; name each file or folder once", display(name))
		}
		seen[name] = true
		e := wire.Entry{Path: name, Mode: uint32(fi.Mode().Perm()), MTime: fi.ModTime().UnixNano()}
		if fi.IsDir() {
			e.Dir = true
			src = ""
		} else {
			e.Size = uint64(fi.Size())
		}
		m.Entries = append(m.Entries, e)
		m.Sources = append(m.Sources, src)
		return nil
	}
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, cannotRead(p, err)
		}
		base := filepath.Base(filepath.Clean(p))
		if base == "/" || base == "." || base == ".." {
			abs, err := filepath.Abs(p)
			if err != nil {
				return nil, err
			}
			base = filepath.Base(abs)
		}
		if !fi.IsDir() {
			if !fi.Mode().IsRegular() {
				return nil, fmt.Errorf("%s: not a regular file or directory", p)
			}
			if err := add(base, p, fi); err != nil {
				return nil, err
			}
			continue
		}
		err = filepath.WalkDir(p, func(src string, d fs.DirEntry, err error) error {
			if err != nil {
				return cannotRead(src, err)
			}
			rel, err := filepath.Rel(p, src)
			if err != nil {
				return err
			}
			name := path.Join(base, filepath.ToSlash(rel))
			fi, err := os.Stat(src) // follows links
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) && d.Type()&fs.ModeSymlink != 0 {
					return nil // dangling link
				}
				return cannotRead(src, err)
			}
			switch {
			case d.Type()&fs.ModeSymlink != 0 && !fi.Mode().IsRegular():
				return nil
			case fi.IsDir(), fi.Mode().IsRegular():
				return add(name, src, fi)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return m, nil
}

// cannotRead says in one sentence which source cannot be read and why.
func cannotRead(p string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s does not exist; check the path", ErrSource, display(p))
	}
	return fmt.Errorf("%w %s: %w; check its permissions, or leave it out", ErrSource, display(p), err)
}
