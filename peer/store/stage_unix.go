//go:build unix

package store

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dshare/dshare/wire"
)

// umask is the process's file mode creation mask, read once before any
// goroutine creates files; received modes honour it.
var umask = func() uint32 {
	old := unix.Umask(0o022)
	unix.Umask(old)
	return uint32(old)
}()

// errNotOurs means a name in the staging directory is not a file dshare
// created: a link, a directory, a file with other links or owners.
var errNotOurs = errors.New("not a file of dshare's own")

// stage is the staging directory, opened without following links. Every
// name in it is a flat file name; nothing is resolved through a path.
type stage struct {
	dir *os.File
	fd  int
}

// openStage opens DIR/.dshare, creating it with mode 0700. A link or a
// directory of another owner there is refused: another local user must
// not be able to steer where received bytes go.
func openStage(target *os.File, create bool) (*stage, error) {
	tfd := int(target.Fd())
	if create {
		if err := unix.Mkdirat(tfd, StageName, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
			return nil, diskErr(fmt.Errorf("create %s: %w", StageName, err))
		}
	}
	fd, err := unix.Openat(tfd, StageName, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, fs.ErrNotExist
		}
		return nil, fmt.Errorf("%w: the receiver's staging directory is not its own (%w); the receiver's owner must remove it", wire.ErrBadPath, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if int(st.Uid) != os.Geteuid() {
		unix.Close(fd)
		return nil, fmt.Errorf("%w: the receiver's staging directory belongs to another user; the receiver's owner must remove it", wire.ErrBadPath)
	}
	if st.Mode&0o077 != 0 {
		if err := unix.Fchmod(fd, 0o700); err != nil {
			unix.Close(fd)
			return nil, err
		}
	}
	return &stage{dir: os.NewFile(uintptr(fd), StageName), fd: fd}, nil
}

func (s *stage) close() error { return s.dir.Close() }

// create creates name exclusively; it never opens an existing file.
func (s *stage) create(name string) (*os.File, error) {
	fd, err := unix.Openat(s.fd, name, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, diskErr(&fs.PathError{Op: "create", Path: name, Err: err})
	}
	return os.NewFile(uintptr(fd), name), nil
}

// openOwn reopens a file dshare created: a regular file with one link,
// owned by this user. Anything else is removed by name (which cannot
// touch what a planted link points to) and reported as errNotOurs.
func (s *stage) openOwn(name string, flag int) (*os.File, error) {
	fd, err := unix.Openat(s.fd, name, flag|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, fs.ErrNotExist
		}
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EISDIR) || errors.Is(err, unix.ENXIO) {
			s.remove(name)
			return nil, errNotOurs
		}
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Nlink != 1 || int(st.Uid) != os.Geteuid() {
		unix.Close(fd)
		s.remove(name)
		return nil, errNotOurs
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), name), nil
}

// readOwn reads a small file of dshare's own, refusing one over max bytes
// before reading it.
func (s *stage) readOwn(name string, max int64) ([]byte, error) {
	f, err := s.openOwn(name, unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > max {
		return nil, fmt.Errorf("%s: %d bytes, at most %d expected", name, fi.Size(), max)
	}
	return io.ReadAll(io.LimitReader(f, max))
}

func (s *stage) remove(name string) { _ = unix.Unlinkat(s.fd, name, 0) }

// writeAtomic replaces name with b through a fresh exclusive temporary
// file and a rename, so that a planted file at either name is never
// written through.
func (s *stage) writeAtomic(name string, b []byte) error {
	tmp := fmt.Sprintf("%s.%x.tmp", name, time.Now().UnixNano())
	f, err := s.create(tmp)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = unix.Renameat(s.fd, tmp, s.fd, name)
	}
	if err != nil {
		s.remove(tmp)
		return diskErr(err)
	}
	return nil
}

// names lists the staging directory.
func (s *stage) names() ([]string, error) {
	fd, err := unix.Openat(s.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	d := os.NewFile(uintptr(fd), StageName)
	defer d.Close()
	return d.Readdirnames(-1)
}

// removeIfEmpty removes the staging directory once it holds nothing.
func removeStageIfEmpty(target *os.File) {
	_ = unix.Unlinkat(int(target.Fd()), StageName, unix.AT_REMOVEDIR)
}

// setMeta gives a verified temporary file its final mode and time. Modes
// honour the umask and never carry setuid, setgid or sticky bits.
func setMeta(f *os.File, name string, s *stage, mode uint32, mtime int64) error {
	perm := mode & 0o777
	if perm == 0 {
		perm = 0o666
	}
	if err := f.Chmod(fs.FileMode(perm &^ umask)); err != nil {
		return err
	}
	if mtime == 0 {
		return nil
	}
	ts := [2]unix.Timespec{unix.NsecToTimespec(mtime), unix.NsecToTimespec(mtime)}
	// Through the descriptor where the system can: set by name, the times
	// would go to whatever replaced the name, a link to another file say.
	if err := futimens(f, &ts); !errors.Is(err, errors.ErrUnsupported) {
		return err
	}
	if !sameFile(f, s.dir, name) {
		return fmt.Errorf("%w: the temporary file %s was replaced", errNotOurs, name)
	}
	return unix.UtimesNanoAt(s.fd, name, ts[:], unix.AT_SYMLINK_NOFOLLOW)
}

// statInfo is what statAt reports.
type statInfo struct {
	regular bool
	size    uint64
	mtime   int64
	ino     uint64
}

// statAt stats name in dir without following a link.
func statAt(dir *os.File, name string) (statInfo, bool) {
	var st unix.Stat_t
	if unix.Fstatat(int(dir.Fd()), name, &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
		return statInfo{}, false
	}
	return statInfo{regular: st.Mode&unix.S_IFMT == unix.S_IFREG, size: uint64(st.Size),
		mtime: st.Mtim.Nano(), ino: uint64(st.Ino)}, true
}

// existsAt reports whether name exists in dir, link or not.
func existsAt(dir *os.File, name string) bool {
	var st unix.Stat_t
	return unix.Fstatat(int(dir.Fd()), name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil
}

// inode returns fi's inode number.
func inode(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino)
	}
	return 0
}

// sameFile reports whether base in dir is the file f.
func sameFile(f *os.File, dir *os.File, base string) bool {
	var a, b unix.Stat_t
	if unix.Fstat(int(f.Fd()), &a) != nil {
		return false
	}
	if unix.Fstatat(int(dir.Fd()), base, &b, unix.AT_SYMLINK_NOFOLLOW) != nil {
		return false
	}
	return a.Dev == b.Dev && a.Ino == b.Ino
}

// diskErr marks a full disk with wire.ErrNoSpace, so the peer learns why.
func diskErr(err error) error {
	if errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT) {
		return fmt.Errorf("%w: %w", wire.ErrNoSpace, err)
	}
	return err
}

// allocated returns the bytes name occupies on disk, if it is a regular
// file.
func (s *stage) allocated(name string) (uint64, bool) {
	var st unix.Stat_t
	if unix.Fstatat(s.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return 0, false
	}
	return uint64(st.Blocks) * 512, true
}
