package wire

// Get asks a sharer for paths of its shared folder. Higher Priority is
// served first. Next free key: 4.
type Get struct {
	ReqID    uint64   `cbor:"1,keyasint"`
	Paths    []string `cbor:"2,keyasint"`
	Priority int32    `cbor:"3,keyasint,omitempty"`
}

func (*Get) Type() Type { return TypeGet }
