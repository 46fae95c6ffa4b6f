package engine

import "unsafe"

// bufAlign lets the store write chunks with O_DIRECT, which needs
// buffers aligned to the device's block size.
const bufAlign = 4096

// alignedBuf returns n bytes aligned to bufAlign.
func alignedBuf(n int) []byte {
	b := make([]byte, n+bufAlign)
	skip := (bufAlign - int(uintptr(unsafe.Pointer(unsafe.SliceData(b)))%bufAlign)) % bufAlign
	return b[skip : skip+n : skip+n]
}
