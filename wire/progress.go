package wire

// Progress is the receiver's confirmation: Confirmed lists ranges that are
// now verified and durable on its disk, Complete the files it has verified
// whole and renamed into place, and Bytes the total confirmed so far. Only
// Progress counts as delivery; bytes written into a stream do not.
// Next free key: 5.
type Progress struct {
	ReqID     uint64       `cbor:"1,keyasint"`
	Bytes     uint64       `cbor:"2,keyasint"`
	Confirmed []FileRanges `cbor:"3,keyasint,omitempty"`
	Complete  []uint32     `cbor:"4,keyasint,omitempty"`
}

func (*Progress) Type() Type { return TypeProgress }

func (p *Progress) validate() error { return validateRanges(p.Confirmed) }
