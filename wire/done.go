package wire

import "fmt"

// Done tells the peer that a side has finished its part of request ReqID.
// From the sender, Sums carry the whole-file hashes of files whose chunks
// have all been sent, possibly over several Done frames; Final marks the
// last one, and Streams says how many data streams the sender opened, so
// the receiver knows when nothing more can arrive. From the receiver,
// Final means every file is verified and in place. Next free key: 5.
type Done struct {
	ReqID   uint64    `cbor:"1,keyasint"`
	Final   bool      `cbor:"2,keyasint,omitempty"`
	Sums    []FileSum `cbor:"3,keyasint,omitempty"`
	Streams uint32    `cbor:"4,keyasint,omitempty"`
}

// FileSum is the whole-file hash of manifest entry File. Next free key: 3.
type FileSum struct {
	File uint32 `cbor:"1,keyasint"`
	Sum  []byte `cbor:"2,keyasint"`
}

func (*Done) Type() Type { return TypeDone }

func (d *Done) validate() error {
	for _, s := range d.Sums {
		if len(s.Sum) != HashSize {
			return fmt.Errorf("%w: file sum of %d bytes", ErrMalformed, len(s.Sum))
		}
	}
	return nil
}
