package wire

// Progress is the receiver's confirmation: Confirmed lists ranges that are
// now verified and durable on its disk, Complete the files it has verified
// whole and placed, and Bytes the total confirmed so far. Names gives the
// name a completed file was placed under, where that is not the offered
// path (a numbered copy beside an existing file, or a copy already
// present). Only Progress counts as delivery; bytes written into a stream
// do not. Next free key: 6.
type Progress struct {
	ReqID     uint64       `cbor:"1,keyasint"`
	Bytes     uint64       `cbor:"2,keyasint"`
	Confirmed []FileRanges `cbor:"3,keyasint,omitempty"`
	Complete  []uint32     `cbor:"4,keyasint,omitempty"`
	Names     []FileName   `cbor:"5,keyasint,omitempty"`
}

// FileName is the name manifest entry File was placed under, relative to
// the receiver's directory. Next free key: 3.
type FileName struct {
	File uint32 `cbor:"1,keyasint"`
	Name string `cbor:"2,keyasint"`
}

func (*Progress) Type() Type { return TypeProgress }

func (p *Progress) validate() error { return validateRanges(p.Confirmed) }
