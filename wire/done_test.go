package wire

import "testing"

func TestDoneGolden(t *testing.T) {
	checkGolden(t, &Done{ReqID: 7, Final: true, Sums: []FileSum{{File: 0, Sum: testHash}}},
		"090000002da3010702f50381a20100025820000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
}

func TestDoneStreamsGolden(t *testing.T) {
	checkGolden(t, &Done{ReqID: 7, Final: true, Streams: 8}, "0900000007a3010702f50408")
}
