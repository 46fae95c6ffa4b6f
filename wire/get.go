package wire

import "fmt"

// Get asks a sharer for paths of its shared folder; no path is the whole
// folder. Higher Priority is served first. Secret is the capability from
// the sharer's ticket, if the getter has one. List asks for the entries
// only, answered as Offer parts, with no data. Next free key: 6.
type Get struct {
	ReqID    uint64   `cbor:"1,keyasint"`
	Paths    []string `cbor:"2,keyasint"`
	Priority int32    `cbor:"3,keyasint,omitempty"`
	Secret   []byte   `cbor:"4,keyasint,omitempty"`
	List     bool     `cbor:"5,keyasint,omitempty"`
}

func (*Get) Type() Type { return TypeGet }

// Bounds of a Get: a batch names at most MaxGetPaths paths (folders count
// as one), each at most MaxPathLen bytes.
const (
	MaxGetPaths  = 1024
	MaxPathLen   = 4096
	maxGetSecret = 64
)

func (g *Get) validate() error {
	if len(g.Paths) > MaxGetPaths {
		return fmt.Errorf("%w: a get of %d paths", ErrMalformed, len(g.Paths))
	}
	for _, p := range g.Paths {
		if len(p) > MaxPathLen {
			return fmt.Errorf("%w: a path of %d bytes", ErrMalformed, len(p))
		}
	}
	if len(g.Secret) > maxGetSecret {
		return fmt.Errorf("%w: a secret of %d bytes", ErrMalformed, len(g.Secret))
	}
	return nil
}
