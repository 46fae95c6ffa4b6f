package wire

import "testing"

func TestStartGolden(t *testing.T) {
	checkGolden(t, &Start{ReqID: 7}, "0500000003a10107")
}
