package peer

import (
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/dshare/dshare/wire"
)

// stream adapts a libp2p stream to the engine. Resets carry codes of
// wire's code space both ways: a reset the peer sent reads as the error
// of its code, not as "stream reset".
type stream struct{ network.Stream }

func (s stream) Reset(code wire.Code) error {
	return s.Stream.ResetWithError(network.StreamErrorCode(code))
}

func (s stream) Read(p []byte) (int, error) {
	n, err := s.Stream.Read(p)
	return n, resetErr(err)
}

func (s stream) Write(p []byte) (int, error) {
	n, err := s.Stream.Write(p)
	return n, resetErr(err)
}

// libp2pCodes is where libp2p's own stream error codes start
// (network.StreamProtocolNegotiationFailed and up); wire's are below.
const libp2pCodes = 0x1000

// errRefusedStream is a stream that the peer's libp2p refused or reset.
var errRefusedStream = errors.New("the peer's network stack refused a stream")

// resetErr turns a reset into the error of its code.
func resetErr(err error) error {
	var se *network.StreamError
	if err == nil || !errors.As(err, &se) {
		return err
	}
	code := wire.Code(se.ErrorCode)
	if !se.Remote {
		// Our own reset: whoever reset the stream has the real cause.
		return fmt.Errorf("%w: stream closed here", code.Err())
	}
	if code == 0 {
		return fmt.Errorf("%w: the peer closed the stream", wire.ErrCanceled)
	}
	if se.ErrorCode >= libp2pCodes {
		// Not the peer's dshare but its libp2p, e.g. its resource
		// manager under a flood: a network condition, which a new
		// session may not meet, not the peer stopping the transfer.
		return fmt.Errorf("%w (libp2p code %#x)", errRefusedStream, uint32(se.ErrorCode))
	}
	return &wire.RemoteError{Code: code}
}
