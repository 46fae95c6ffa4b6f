package wire

// Error ends a request with a typed code and a human-readable message.
// Next free key: 3.
type Error struct {
	Code    Code   `cbor:"1,keyasint"`
	Message string `cbor:"2,keyasint,omitempty"`
}

func (*Error) Type() Type { return TypeError }

// Err returns e as an error matching the sentinel of its code.
func (e *Error) Err() error { return &RemoteError{Code: e.Code, Message: e.Message} }

// ErrorFor builds the Error frame that reports err to the peer.
func ErrorFor(err error) *Error { return &Error{Code: CodeOf(err), Message: err.Error()} }
