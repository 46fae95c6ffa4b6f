//go:build !unix

package store

import (
	"errors"
	"io/fs"
	"os"
)

// Receiving needs openat-style calls that never follow links; this build
// has none, so it refuses to receive rather than receive unsafely.
var errUnsupported = errors.New("receiving files is supported on Unix-like systems only")

type stage struct{}

const syncOnEvict = true

func openStage(*os.File, bool) (*stage, error)                      { return nil, errUnsupported }
func removeStageIfEmpty(*os.File)                                   {}
func (*stage) close() error                                         { return nil }
func (*stage) create(string) (*os.File, error)                      { return nil, errUnsupported }
func (*stage) openOwn(string, int) (*os.File, error)                { return nil, errUnsupported }
func (*stage) readOwn(string, int64) ([]byte, error)                { return nil, errUnsupported }
func (*stage) remove(string)                                        {}
func (*stage) writeAtomic(string, []byte) error                     { return errUnsupported }
func (*stage) names() ([]string, error)                             { return nil, errUnsupported }
func (*stage) allocated(string) (uint64, bool)                      { return 0, false }
func (*stage) syncAll([]*os.File) error                             { return nil }
func (*stage) place(*os.File, string, *os.File, string, bool) error { return errUnsupported }
func setMeta(*os.File, string, *stage, uint32, int64) error         { return errUnsupported }
func setDirect(*os.File, bool) error                                { return errUnsupported }
func preallocate(*os.File, uint64, uint64) bool                     { return false }
func diskErr(err error) error                                       { return err }
func inode(fs.FileInfo) uint64                                      { return 0 }
func existsAt(*os.File, string) bool                                { return true }

type statInfo struct {
	regular bool
	size    uint64
	mtime   int64
	ino     uint64
}

func statAt(*os.File, string) (statInfo, bool) { return statInfo{}, false }
