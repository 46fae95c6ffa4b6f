//go:build unix

package engine

import (
	"golang.org/x/sys/unix"
)

// freeSpace returns the bytes an unprivileged writer may still use on
// the filesystem holding dir.
func freeSpace(dir string) (uint64, bool) {
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) != nil {
		return 0, false
	}
	return st.Bavail * uint64(st.Bsize), true
}
