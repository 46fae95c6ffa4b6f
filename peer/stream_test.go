package peer

import (
	"errors"
	"testing"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/dshare/dshare/wire"
)

// A reset by the peer's libp2p (its resource manager, say) is a network
// condition; one with a wire code is the peer's dshare speaking.
func TestResetErr(t *testing.T) {
	err := resetErr(&network.StreamError{ErrorCode: network.StreamResourceLimitExceeded, Remote: true})
	var re *wire.RemoteError
	if !errors.Is(err, errRefusedStream) || errors.As(err, &re) {
		t.Errorf("libp2p's resource limit reads as %v", err)
	}
	err = resetErr(&network.StreamError{ErrorCode: network.StreamErrorCode(wire.CodeBusy), Remote: true})
	if !errors.As(err, &re) || re.Code != wire.CodeBusy {
		t.Errorf("the peer's busy reads as %v", err)
	}
	if err := resetErr(&network.StreamError{ErrorCode: 0, Remote: true}); !errors.Is(err, wire.ErrCanceled) {
		t.Errorf("a close reads as %v", err)
	}
}
