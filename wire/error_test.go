package wire

import (
	"errors"
	"fmt"
	"testing"
)

func TestErrorGolden(t *testing.T) {
	checkGolden(t, &Error{Code: CodeNoSpace, Message: "disk full"}, "0a0000000ea2010702696469736b2066756c6c")
}

func TestCodesMapBothWays(t *testing.T) {
	for c := Code(1); c <= lastCode; c++ {
		wrapped := fmt.Errorf("context: %w", c.Err())
		if got := CodeOf(wrapped); got != c {
			t.Errorf("CodeOf(%v) = %v", c, got)
		}
		remote := ErrorFor(wrapped).Err()
		if !errors.Is(remote, c.Err()) {
			t.Errorf("remote %v does not match %v", remote, c.Err())
		}
	}
	if (Code(999)).Err() != ErrInternal {
		t.Error("unknown code must map to ErrInternal")
	}
	if CodeOf(errors.New("plain")) != CodeInternal {
		t.Error("plain error must map to CodeInternal")
	}
}

// A peer's message that starts with its code's text is not prefixed with
// it again: "not enough disk space: not enough disk space" read badly.
func TestRemoteErrorNoDoubledText(t *testing.T) {
	for _, tc := range []struct {
		e    RemoteError
		want string
	}{
		{RemoteError{Code: CodeNoSpace, Message: "not enough disk space: 3 GiB to receive, 1 GiB free"}, "peer: not enough disk space: 3 GiB to receive, 1 GiB free"},
		{RemoteError{Code: CodeNoSpace, Message: "the disk is full"}, "peer: not enough disk space: the disk is full"},
		{RemoteError{Code: CodeHashMismatch}, "peer: hash mismatch"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}
