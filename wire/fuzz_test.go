package wire

import (
	"bytes"
	"testing"
)

// allMessages has one valid instance of every message, to seed the fuzzer.
func allMessages() []Message {
	return []Message{
		&Offer{ReqID: 7, ChunkSize: 1 << 20, Files: 2, Bytes: 5, Entries: []Entry{{Path: "a/b.txt", Size: 5, Mode: 0o644, MTime: 1}, {Path: "e", Dir: true}}},
		&Accept{ReqID: 7, Have: []FileRanges{{File: 0, Ranges: []Range{{Off: 0, Len: 4096}}}}},
		&Accept{ReqID: 7, Held: []uint32{2}, More: true},
		&Reject{Code: CodeRejected, Reason: "declined"},
		&Get{ReqID: 9, Paths: []string{"docs/x.pdf"}, Priority: 2},
		&Start{ReqID: 7},
		&Data{File: 1, Offset: 1 << 20, Length: 3, Hash: testHash},
		&Sleep{Millis: 1500, Reason: "busy"},
		&Sleep{Millis: 2000, Position: 7},
		&Get{ReqID: 9, Priority: -1, Secret: []byte{1, 2, 3}, List: true},
		&Progress{ReqID: 7, Bytes: 4096, Confirmed: []FileRanges{{File: 0, Ranges: []Range{{Off: 0, Len: 4096}}}}, Complete: []uint32{0}},
		&Progress{ReqID: 7, Complete: []uint32{1}, Names: []FileName{{File: 1, Name: "a (1).txt"}}},
		&Done{ReqID: 7, Final: true, Sums: []FileSum{{File: 0, Sum: testHash}}},
		&Error{Code: CodeNoSpace, Message: "disk full"},
	}
}

// FuzzReadMsg feeds arbitrary bytes to the frame reader. It must never
// panic, and whatever it accepts must encode and decode to the same message.
func FuzzReadMsg(f *testing.F) {
	for _, m := range allMessages() {
		b, err := AppendFrame(nil, m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewReader(bytes.NewReader(in))
		for i := 0; i < 4; i++ {
			m, err := r.ReadMsg()
			if err != nil {
				return
			}
			b, err := AppendFrame(nil, m)
			if err != nil {
				t.Fatalf("re-encode %T: %v", m, err)
			}
			if _, err := NewReader(bytes.NewReader(b)).ReadMsg(); err != nil {
				t.Fatalf("re-decode %T: %v", m, err)
			}
		}
	})
}
