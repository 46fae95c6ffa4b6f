package wire

import "testing"

func TestAcceptGolden(t *testing.T) {
	checkGolden(t, &Accept{ReqID: 7, Have: []FileRanges{{File: 0, Ranges: []Range{{Off: 0, Len: 4096}}}}},
		"020000000fa201070281a2010002818200191000")
}

func TestAcceptHeldGolden(t *testing.T) {
	checkGolden(t, &Accept{ReqID: 7, Held: []FileSum{{File: 2, Sum: testHash}}},
		"020000002ba201070381a20102025820000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
}

func TestAcceptMoreGolden(t *testing.T) {
	checkGolden(t, &Accept{ReqID: 7, More: true}, "0200000005a2010704f5")
}
