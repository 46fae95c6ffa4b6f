package wire

import "time"

// Sleep asks the peer to pause the request for Millis milliseconds, for
// example because a sharer is busy. A sharer that queues the request
// sends its place, Position (1 is next), and sends Sleep again before
// Millis have passed, until the request starts. Next free key: 4.
type Sleep struct {
	Millis   uint32 `cbor:"1,keyasint"`
	Reason   string `cbor:"2,keyasint,omitempty"`
	Position uint32 `cbor:"3,keyasint,omitempty"`
}

func (*Sleep) Type() Type { return TypeSleep }

// Duration returns the pause as a time.Duration.
func (s *Sleep) Duration() time.Duration { return time.Duration(s.Millis) * time.Millisecond }
