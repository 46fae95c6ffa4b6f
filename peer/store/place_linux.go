package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// place puts the verified file f (named name in the staging directory)
// under base in dir. Without overwrite an existing base is never
// replaced (fs.ErrExist). The file linked is f itself, through its
// descriptor, so the bytes placed are exactly the bytes verified.
func (s *stage) place(f *os.File, name string, dir *os.File, base string, overwrite bool) error {
	dfd := int(dir.Fd())
	if !overwrite {
		err := unix.Linkat(unix.AT_FDCWD, fmt.Sprintf("/proc/self/fd/%d", f.Fd()), dfd, base, unix.AT_SYMLINK_FOLLOW)
		switch {
		case err == nil:
			s.remove(name)
			return nil
		case errors.Is(err, unix.EEXIST):
			return fs.ErrExist
		}
		// No /proc, or no hard links on this filesystem: move the name,
		// if it still is the file verified.
		if !sameFile(f, s.dir, name) {
			return fmt.Errorf("%w: the temporary file of %s was replaced", errNotOurs, base)
		}
		err = unix.Renameat2(s.fd, name, dfd, base, unix.RENAME_NOREPLACE)
		switch {
		case errors.Is(err, unix.EEXIST):
			return fs.ErrExist
		case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOSYS):
			var st unix.Stat_t
			if unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
				return fs.ErrExist
			}
			err = unix.Renameat(s.fd, name, dfd, base)
		}
		if err != nil {
			return diskErr(err)
		}
	} else if !sameFile(f, s.dir, name) {
		// Moved by name, a link planted there would land under base.
		return fmt.Errorf("%w: the temporary file of %s was replaced", errNotOurs, base)
	} else if err := unix.Renameat(s.fd, name, dfd, base); err != nil {
		return diskErr(err)
	}
	if !sameFile(f, dir, base) {
		return fmt.Errorf("%w: the file placed at %s is not the one verified", errNotOurs, base)
	}
	return nil
}

// syncAll makes everything written to the staging directory's
// filesystem durable with one call, instead of one fsync per file.
func (s *stage) syncAll(_ []*os.File) error { return diskErr(unix.Syncfs(s.fd)) }

// syncOnEvict: syncfs covers closed files too, so eviction need not fsync.
const syncOnEvict = false

// futimens sets the access and modification times of f through its
// descriptor: utimensat with no path.
func futimens(f *os.File, ts *[2]unix.Timespec) error {
	_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, f.Fd(), 0, uintptr(unsafe.Pointer(ts)), 0, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// setDirect turns O_DIRECT on or off for f.
func setDirect(f *os.File, on bool) error {
	fl, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
	if err != nil {
		return err
	}
	if on {
		fl |= unix.O_DIRECT
	} else {
		fl &^= unix.O_DIRECT
	}
	_, err = unix.FcntlInt(f.Fd(), unix.F_SETFL, fl)
	return err
}

// preallocate gives f blocks for [from, to), and that size if it is
// smaller. It reports false where it could not, the disk being full
// included: the write itself then says whether its own bytes fit, as it
// did without preallocation.
func preallocate(f *os.File, from, to uint64) bool {
	return unix.Fallocate(int(f.Fd()), 0, int64(from), int64(to-from)) == nil
}
