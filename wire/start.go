package wire

// Start is the first frame of a data stream: it binds the stream to the
// accepted request ReqID of the same authenticated peer. Next free key: 2.
type Start struct {
	ReqID uint64 `cbor:"1,keyasint"`
}

func (*Start) Type() Type { return TypeStart }
