//go:build unix

package main

import "syscall"

// withUmask runs f with the file mode creation mask set to mask.
func withUmask(mask int, f func()) {
	old := syscall.Umask(mask)
	defer syscall.Umask(old)
	f()
}
