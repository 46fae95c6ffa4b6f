package wire

// Entry is one manifest item: a regular file, or a directory (so that
// empty directories survive). Path is relative and slash-separated; the
// receiver validates it before using it. Next free key: 6.
type Entry struct {
	Path  string `cbor:"1,keyasint"`
	Size  uint64 `cbor:"2,keyasint,omitempty"`
	Mode  uint32 `cbor:"3,keyasint,omitempty"` // permission bits only
	Dir   bool   `cbor:"4,keyasint,omitempty"`
	MTime int64  `cbor:"5,keyasint,omitempty"` // Unix nanoseconds
}
