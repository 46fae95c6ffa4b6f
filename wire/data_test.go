package wire

import "testing"

func TestDataGolden(t *testing.T) {
	checkGolden(t, &Data{File: 1, Offset: 1 << 20, Length: 3, Hash: testHash},
		"060000002ea40101021a001000000303045820000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
}
