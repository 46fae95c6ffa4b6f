package wire

// Reject answers an Offer or a Get with no. Next free key: 3.
type Reject struct {
	Code   Code   `cbor:"1,keyasint"`
	Reason string `cbor:"2,keyasint,omitempty"`
}

func (*Reject) Type() Type { return TypeReject }

// Err returns the rejection as an error matching the sentinel of its code.
func (r *Reject) Err() error { return &RemoteError{Code: r.Code, Message: r.Reason} }
