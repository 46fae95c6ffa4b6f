package wire

import "fmt"

// Pair is one step of proving a shared code or ticket before an offer:
// the sender names the secret by Tag with its Nonce, the receiver answers
// with its Nonce, the sender proves with MAC, and the receiver proves
// back with MAC. A refusal is an Error frame. Next free key: 4.
type Pair struct {
	Tag   []byte `cbor:"1,keyasint,omitempty"`
	Nonce []byte `cbor:"2,keyasint,omitempty"`
	MAC   []byte `cbor:"3,keyasint,omitempty"`
}

func (*Pair) Type() Type { return TypePair }

// maxPairField bounds each field; real ones are 16 or 32 bytes.
const maxPairField = 64

func (p *Pair) validate() error {
	if len(p.Tag) > maxPairField || len(p.Nonce) > maxPairField || len(p.MAC) > maxPairField {
		return fmt.Errorf("%w: a pairing field over %d bytes", ErrMalformed, maxPairField)
	}
	return nil
}
