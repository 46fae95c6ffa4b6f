package wire

import (
	"errors"
	"testing"
)

func TestRejectGolden(t *testing.T) {
	checkGolden(t, &Reject{Code: CodeRejected, Reason: "declined"}, "030000000da2010302686465636c696e6564")
}

func TestRejectErr(t *testing.T) {
	err := (&Reject{Code: CodeNoSpace, Reason: "need 5 GB"}).Err()
	if !errors.Is(err, ErrNoSpace) || errors.Is(err, ErrRejected) {
		t.Fatalf("%v does not match its code only", err)
	}
}
