package wire

import "testing"

func TestProgressGolden(t *testing.T) {
	checkGolden(t, &Progress{ReqID: 7, Bytes: 4096, Confirmed: []FileRanges{{File: 0, Ranges: []Range{{Off: 0, Len: 4096}}}}, Complete: []uint32{0}},
		"0800000016a40107021910000381a2010002818200191000048100")
}

func TestProgressNamesGolden(t *testing.T) {
	checkGolden(t, &Progress{ReqID: 7, Bytes: 5, Complete: []uint32{1}, Names: []FileName{{File: 1, Name: "a (1).txt"}}},
		"0800000018a4010702050481010581a20101026961202831292e747874")
}
