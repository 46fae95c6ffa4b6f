package wire

import "testing"

func TestAcceptGolden(t *testing.T) {
	checkGolden(t, &Accept{ReqID: 7, Have: []FileRanges{{File: 0, Ranges: []Range{{Off: 0, Len: 4096}}}}},
		"020000000fa201070281a2010002818200191000")
}

func TestAcceptHeldGolden(t *testing.T) {
	checkGolden(t, &Accept{ReqID: 7, Held: []uint32{2}}, "0200000006a20107038102")
}

func TestAcceptMoreGolden(t *testing.T) {
	checkGolden(t, &Accept{ReqID: 7, More: true}, "0200000005a2010704f5")
}
