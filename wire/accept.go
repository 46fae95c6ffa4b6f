package wire

import "fmt"

// Accept answers an Offer with yes. Have lists the ranges the receiver
// already holds verified, so that only the rest is sent. Held lists files
// the receiver already holds complete, with their whole-file hashes: the
// sender sends none of their bytes and confirms each with its own hash
// in a Done frame. An answer too large for one frame comes in parts; all
// but the last set More. Next free key: 5.
type Accept struct {
	ReqID uint64       `cbor:"1,keyasint"`
	Have  []FileRanges `cbor:"2,keyasint,omitempty"`
	Held  []FileSum    `cbor:"3,keyasint,omitempty"`
	More  bool         `cbor:"4,keyasint,omitempty"`
}

func (*Accept) Type() Type { return TypeAccept }

func (a *Accept) validate() error {
	for _, s := range a.Held {
		if len(s.Sum) != HashSize {
			return fmt.Errorf("%w: held file sum of %d bytes", ErrMalformed, len(s.Sum))
		}
	}
	return validateRanges(a.Have)
}
