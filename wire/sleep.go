package wire

import "time"

// Sleep asks the peer to pause the request for Millis milliseconds, for
// example because a sharer is busy. Next free key: 3.
type Sleep struct {
	Millis uint32 `cbor:"1,keyasint"`
	Reason string `cbor:"2,keyasint,omitempty"`
}

func (*Sleep) Type() Type { return TypeSleep }

// Duration returns the pause as a time.Duration.
func (s *Sleep) Duration() time.Duration { return time.Duration(s.Millis) * time.Millisecond }
