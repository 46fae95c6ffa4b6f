//go:build linux

package main

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// flushInput discards what was typed on a terminal and not yet read.
func flushInput(r io.Reader) {
	if f, ok := r.(*os.File); ok && isTerminal(f) {
		_ = unix.IoctlSetInt(int(f.Fd()), unix.TCFLSH, unix.TCIFLUSH)
	}
}
