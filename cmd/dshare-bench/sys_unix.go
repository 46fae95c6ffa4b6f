//go:build unix

package main

import (
	"os"
	"runtime"
	"syscall"
)

// maxRSS reads the peak RSS that wait4 reported for an exited process.
func maxRSS(ps *os.ProcessState) int64 {
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0
	}
	if runtime.GOOS == "darwin" || runtime.GOOS == "ios" {
		return int64(ru.Maxrss) // bytes there
	}
	return int64(ru.Maxrss) << 10 // KiB on Linux and the BSDs
}

// settle writes back the bench's own dirty data (generated files, removed
// run directories) before a transfer: dshare's receiver calls syncfs,
// which would otherwise pay for them.
func settle() { syscall.Sync() }
