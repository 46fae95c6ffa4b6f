package source

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/dshare/dshare/wire"
)

// ErrNotShared means a requested path is not in the shared folder: it does
// not exist, leaves the folder, or is a link or a special file.
var ErrNotShared = fmt.Errorf("%w: not in the shared folder", wire.ErrNotFound)

// BuildShared lists paths of the folder root for a getter. Paths are
// slash-separated and relative to root; none, or ".", is the whole folder,
// each top-level entry under its own name. Otherwise each path is offered
// under its base name, as send does. Everything is read through root, and
// symbolic links are never followed or offered, so nothing outside root
// can be named, listed or read.
func BuildShared(root *os.Root, paths []string) (*Manifest, error) {
	m := &Manifest{Root: root}
	seen := map[string]bool{}
	add := func(name, src string, fi fs.FileInfo) error {
		if seen[name] {
			return fmt.Errorf("%w: %s is asked for twice; name each file or folder once", wire.ErrBadPath, display(name))
		}
		seen[name] = true
		e := wire.Entry{Path: name, Mode: uint32(fi.Mode().Perm()), MTime: fi.ModTime().UnixNano()}
		if fi.IsDir() {
			e.Dir, src = true, ""
		} else {
			e.Size = uint64(fi.Size())
		}
		m.Entries = append(m.Entries, e)
		m.Sources = append(m.Sources, src)
		return nil
	}
	walk := func(p, base string) error {
		return fs.WalkDir(root.FS(), p, func(src string, d fs.DirEntry, err error) error {
			if err != nil {
				return fmt.Errorf("%w: %s: %w", ErrSource, display(src), err)
			}
			if !d.IsDir() && !d.Type().IsRegular() {
				return nil // links and special files are not shared
			}
			fi, err := d.Info()
			if err != nil {
				return fmt.Errorf("%w: %s: %w", ErrSource, display(src), err)
			}
			if fi.Mode().IsRegular() {
				// Found now, before the getter has waited its turn.
				if f, err := root.Open(src); err != nil {
					return fmt.Errorf("%w: the sharer cannot read %s", wire.ErrNotFound, display(src))
				} else {
					f.Close()
				}
			}
			rel := src // below ".", names are the paths themselves
			if p != "." {
				rel = strings.TrimPrefix(strings.TrimPrefix(src, p), "/")
			}
			name := path.Join(base, rel)
			if name == "." || name == "" {
				return nil // the folder itself, when all of it is asked for
			}
			return add(name, src, fi)
		})
	}
	if len(paths) == 0 {
		paths = []string{"."}
	}
	for _, p := range paths {
		clean, ok := sharedPath(p)
		if !ok || linked(root, clean) {
			return nil, fmt.Errorf("%w: %s", ErrNotShared, display(p))
		}
		fi, err := root.Lstat(clean)
		if err != nil || !(fi.IsDir() || fi.Mode().IsRegular()) {
			return nil, fmt.Errorf("%w: %s", ErrNotShared, display(p))
		}
		base := path.Base(clean)
		if clean == "." {
			base = ""
		}
		if !fi.IsDir() {
			if err := add(base, clean, fi); err != nil {
				return nil, err
			}
			continue
		}
		if err := walk(clean, base); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// linked reports whether a folder on the way to p is a symbolic link:
// os.Root would follow it (inside the root), and links are not shared.
func linked(root *os.Root, p string) bool {
	for dir := path.Dir(p); dir != "." && dir != "/"; dir = path.Dir(dir) {
		fi, err := root.Lstat(dir)
		if err != nil || fi.Mode()&fs.ModeSymlink != 0 {
			return true
		}
	}
	return false
}

// CheckShared reports whether p names something BuildShared would serve,
// cheaply: the path, its folders and itself, not what is below it.
func CheckShared(root *os.Root, p string) error {
	clean, ok := sharedPath(p)
	if !ok || linked(root, clean) {
		return fmt.Errorf("%w: %s", ErrNotShared, display(p))
	}
	fi, err := root.Lstat(clean)
	if err != nil || !(fi.IsDir() || fi.Mode().IsRegular()) {
		return fmt.Errorf("%w: %s", ErrNotShared, display(p))
	}
	return nil
}

// sharedPath cleans a getter's path, refusing what is not plainly inside
// the folder: absolute paths, "..", backslashes and NUL.
func sharedPath(p string) (string, bool) {
	if p == "" {
		return ".", true
	}
	if strings.ContainsAny(p, "\\\x00") || path.IsAbs(p) {
		return "", false
	}
	clean := path.Clean(p)
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return "", false
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return "", false
		}
	}
	return clean, true
}
