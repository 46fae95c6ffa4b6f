package wire

import "fmt"

// Range is a byte range [Off, Off+Len) of one file. It is a fixed tuple on
// the wire.
type Range struct {
	_   struct{} `cbor:",toarray"`
	Off uint64
	Len uint64
}

// End returns the first offset past r, or an error if it overflows.
func (r Range) End() (uint64, error) {
	end := r.Off + r.Len
	if end < r.Off {
		return 0, fmt.Errorf("%w: range %d+%d overflows", ErrMalformed, r.Off, r.Len)
	}
	return end, nil
}

// FileRanges lists byte ranges of the manifest entry with index File.
// Next free key: 3.
type FileRanges struct {
	File   uint32  `cbor:"1,keyasint"`
	Ranges []Range `cbor:"2,keyasint"`
}

func validateRanges(frs []FileRanges) error {
	for _, fr := range frs {
		for _, r := range fr.Ranges {
			if _, err := r.End(); err != nil {
				return err
			}
		}
	}
	return nil
}
