package peer

import (
	"os"
	"syscall"
	"unsafe"
)

const directAlign = 4096

// openDirect opens the temporary file for O_DIRECT writes once it exists,
// or returns nil where the filesystem does not support them.
func (f *rfile) openDirect(root *os.Root) *os.File {
	f.fmu.Lock()
	defer f.fmu.Unlock()
	if f.direct == nil && !f.noDirect {
		d, err := root.OpenFile(f.part, os.O_WRONLY|syscall.O_DIRECT, 0)
		if err != nil {
			f.noDirect = true
			return nil
		}
		f.direct = d
	}
	return f.direct
}

func directOK(p []byte, off uint64) bool {
	return len(p)%directAlign == 0 && off%directAlign == 0 &&
		uintptr(unsafe.Pointer(unsafe.SliceData(p)))%directAlign == 0
}

// alignedBuf returns n bytes aligned for O_DIRECT.
func alignedBuf(n int) []byte {
	b := make([]byte, n+directAlign)
	skip := (directAlign - int(uintptr(unsafe.Pointer(unsafe.SliceData(b)))%directAlign)) % directAlign
	return b[skip : skip+n : skip+n]
}
