package wire

import (
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// Limits on what a decoder accepts. They bound memory per frame, so a peer
// cannot make us allocate more than MaxBodySize for one message.
const (
	MaxBodySize    = 1 << 20 // largest CBOR body of one frame
	MaxChunkSize   = 16 << 20
	maxNesting     = 8
	maxArrayLength = 64 << 10
	maxMapPairs    = 64
)

var (
	decMode cbor.DecMode
	encMode cbor.EncMode
)

func init() {
	var err error
	decMode, err = cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		MaxNestedLevels:   maxNesting,
		MaxArrayElements:  maxArrayLength,
		MaxMapPairs:       maxMapPairs,
		ExtraReturnErrors: cbor.ExtraDecErrorNone, // unknown keys are ignored so messages can grow
	}.DecMode()
	if err != nil {
		panic(fmt.Sprintf("wire: cbor decode options: %v", err))
	}
	encMode, err = cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(fmt.Sprintf("wire: cbor encode options: %v", err))
	}
}

func marshal(v any) ([]byte, error) { return encMode.Marshal(v) }

func unmarshal(b []byte, v any) error {
	if err := decMode.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return nil
}
