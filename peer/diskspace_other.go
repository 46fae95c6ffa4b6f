//go:build !unix

package peer

import "io/fs"

func freeSpace(string) (uint64, bool) { return 0, false }

func allocated(fi fs.FileInfo) uint64 { return uint64(fi.Size()) }
