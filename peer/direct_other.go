//go:build !linux

package peer

import "os"

func (f *rfile) openDirect(*os.Root) *os.File { return nil }

func directOK([]byte, uint64) bool { return false }

func alignedBuf(n int) []byte { return make([]byte, n) }
