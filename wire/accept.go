package wire

// Accept answers an Offer with yes. Have lists the ranges the receiver
// already holds verified, so that only the rest is sent. Held lists the
// files (by manifest index) the receiver already holds complete: the
// sender sends none of their bytes, and its whole-file hash, sent in a
// Done frame as for any file, must match the copy held. The receiver
// never tells its own hash, which would tell a peer more about the
// receiver's files than that they exist. An answer too large for one
// frame comes in parts; all but the last set More. Next free key: 5.
type Accept struct {
	ReqID uint64       `cbor:"1,keyasint"`
	Have  []FileRanges `cbor:"2,keyasint,omitempty"`
	Held  []uint32     `cbor:"3,keyasint,omitempty"`
	More  bool         `cbor:"4,keyasint,omitempty"`
}

func (*Accept) Type() Type { return TypeAccept }

func (a *Accept) validate() error {
	return validateRanges(a.Have)
}
