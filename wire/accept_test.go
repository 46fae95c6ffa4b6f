package wire

import "testing"

func TestAcceptGolden(t *testing.T) {
	checkGolden(t, &Accept{ReqID: 7, Have: []FileRanges{{File: 0, Ranges: []Range{{Off: 0, Len: 4096}}}}},
		"020000000fa201070281a2010002818200191000")
}
