//go:build unix

package source

import "golang.org/x/sys/unix"

// readable checks that this process may read the file at p, without
// opening it: one system call, no descriptor, for folders of any size.
func readable(p string) error {
	return unix.Access(p, unix.R_OK)
}

// noFollow opens a shared file without following a link or blocking on a
// FIFO.
const noFollow = unix.O_NOFOLLOW | unix.O_NONBLOCK
