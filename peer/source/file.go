package source

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"

	"github.com/dshare/dshare/wire"
)

// ErrSource means a source file could not be read.
var ErrSource = errors.New("cannot read source")

// File reads one offered file. It is opened on first read, so that a
// manifest of any size holds no descriptors until its files are sent.
type File struct {
	root  *os.Root // nil: path is the file's own
	path  string
	size  uint64
	mtime int64

	once sync.Once
	f    *os.File
	err  error
}

// Open returns a reader of path, which was offered as e.
func Open(path string, e wire.Entry) *File {
	return &File{path: path, size: e.Size, mtime: e.MTime}
}

// ReadAt fills p from offset off.
func (f *File) ReadAt(p []byte, off uint64) error {
	f.once.Do(func() {
		if f.root != nil {
			// A shared file is never a link, and a FIFO swapped in for
			// it must not block the open.
			f.f, f.err = f.root.OpenFile(f.path, os.O_RDONLY|noFollow, 0)
			if f.err == nil {
				if fi, err := f.f.Stat(); err != nil || !fi.Mode().IsRegular() {
					f.f.Close()
					f.f, f.err = nil, fmt.Errorf("%w: %s is no longer a regular file", wire.ErrSourceChanged, display(f.path))
				}
			}
			return
		}
		f.f, f.err = os.Open(f.path)
	})
	if f.err != nil {
		return fmt.Errorf("%w: %w", ErrSource, f.err)
	}
	if _, err := f.f.ReadAt(p, int64(off)); err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: %s is shorter than when the transfer started", wire.ErrSourceChanged, display(f.path))
		}
		return fmt.Errorf("%w: %w", ErrSource, err)
	}
	return nil
}

// Finish closes the file once every chunk has been read, and reports
// whether it changed meanwhile: then the chunks read do not make one
// version of it.
func (f *File) Finish() error {
	if f.f == nil {
		return nil // empty, or never opened
	}
	fi, err := f.f.Stat()
	f.Close()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSource, err)
	}
	if uint64(fi.Size()) != f.size || fi.ModTime().UnixNano() != f.mtime {
		return fmt.Errorf("%w: %s changed while it was being sent", wire.ErrSourceChanged, display(f.path))
	}
	return nil
}

// Close releases the descriptor, if open.
func (f *File) Close() {
	if f.f != nil {
		_ = f.f.Close()
	}
}

// display shows a local path as it is, or quoted when it holds control
// or format characters that must not reach a terminal.
func display(s string) string {
	if q := strconv.Quote(s); q[1:len(q)-1] != s {
		return q
	}
	return s
}
