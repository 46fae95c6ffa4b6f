package wire

// Accept answers an Offer with yes. Have lists the ranges the receiver
// already holds verified, so that only the rest is sent. Next free key: 3.
type Accept struct {
	ReqID uint64       `cbor:"1,keyasint"`
	Have  []FileRanges `cbor:"2,keyasint,omitempty"`
}

func (*Accept) Type() Type { return TypeAccept }

func (a *Accept) validate() error { return validateRanges(a.Have) }
