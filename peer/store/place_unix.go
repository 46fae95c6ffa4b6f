//go:build unix && !linux

package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// place puts the verified file f (named name in the staging directory)
// under base in dir, and checks that what landed there is f itself.
func (s *stage) place(f *os.File, name string, dir *os.File, base string, overwrite bool) error {
	dfd := int(dir.Fd())
	// Linked or moved by name: a link planted there would land under base.
	if !sameFile(f, s.dir, name) {
		return fmt.Errorf("%w: the temporary file of %s was replaced", errNotOurs, base)
	}
	var err error
	if overwrite {
		err = unix.Renameat(s.fd, name, dfd, base)
	} else if err = unix.Linkat(s.fd, name, dfd, base, 0); err == nil {
		s.remove(name)
	} else if errors.Is(err, unix.EEXIST) {
		return fs.ErrExist
	}
	if err != nil {
		return diskErr(err)
	}
	if !sameFile(f, dir, base) {
		return fmt.Errorf("%w: the file placed at %s is not the one verified", errNotOurs, base)
	}
	return nil
}

func (s *stage) syncAll(files []*os.File) error {
	for _, f := range files {
		if err := f.Sync(); err != nil {
			return diskErr(err)
		}
	}
	return diskErr(s.dir.Sync())
}

// syncOnEvict: a closed file could no longer be fsynced at commit.
const syncOnEvict = true

func setDirect(*os.File, bool) error { return errors.ErrUnsupported }

// preallocate does nothing here: writes allocate as they go.
func preallocate(*os.File, uint64, uint64) bool { return false }

// futimens: times are set by name, after checking the name.
func futimens(*os.File, *[2]unix.Timespec) error { return errors.ErrUnsupported }
