package wire

import "fmt"

// Data announces Length raw payload bytes for manifest entry File at
// Offset. Hash is the BLAKE3 hash of the payload. Next free key: 5.
type Data struct {
	File   uint32 `cbor:"1,keyasint"`
	Offset uint64 `cbor:"2,keyasint"`
	Length uint32 `cbor:"3,keyasint"`
	Hash   []byte `cbor:"4,keyasint"`
}

func (*Data) Type() Type { return TypeData }

func (d *Data) validate() error {
	if d.Length > MaxChunkSize {
		return fmt.Errorf("%w: data of %d bytes", ErrFrameTooLarge, d.Length)
	}
	if d.Offset+uint64(d.Length) < d.Offset {
		return fmt.Errorf("%w: data range overflows", ErrMalformed)
	}
	if len(d.Hash) != HashSize {
		return fmt.Errorf("%w: hash of %d bytes", ErrMalformed, len(d.Hash))
	}
	return nil
}

// HashSize is the size of a BLAKE3 hash on the wire.
const HashSize = 32
