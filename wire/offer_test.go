package wire

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestOfferGolden(t *testing.T) {
	checkGolden(t, &Offer{ReqID: 7, ChunkSize: 1 << 20, Files: 2, Bytes: 5, Entries: []Entry{
		{Path: "a/b.txt", Size: 5, Mode: 0o644, MTime: 1700000000000000000},
		{Path: "empty", Dir: true, Mode: 0o755},
	}}, "0100000037a50107041a00100000050206050782a40167612f622e7478740205031901a4051b17979cfe362a0000a30165656d707479031901ed04f5")
}

func TestSplitOffer(t *testing.T) {
	var entries []Entry
	long := strings.Repeat("x", 4000)
	var total uint64
	for i := range 1000 {
		entries = append(entries, Entry{Path: long + string(rune('a'+i%26)), Size: uint64(i), MTime: -1})
		total += uint64(i)
	}
	parts := SplitOffer(3, 1<<20, entries)
	if len(parts) < 4 {
		t.Fatalf("%d parts for ~4 MB of paths", len(parts))
	}
	var n int
	for i, p := range parts {
		if p.Part != uint32(i) || p.ReqID != 3 || p.More != (i < len(parts)-1) {
			t.Fatalf("part %d: %+v", i, p)
		}
		if _, err := AppendFrame(nil, p); err != nil {
			t.Fatalf("part %d does not fit a frame: %v", i, err)
		}
		n += len(p.Entries)
	}
	if n != 1000 || parts[0].Files != 1000 || parts[0].Bytes != total || parts[0].ChunkSize != 1<<20 {
		t.Fatalf("entries %d, head %+v", n, parts[0].Files)
	}
}

func TestOfferRejectsHugeChunk(t *testing.T) {
	if _, err := Decode(TypeOffer, mustBody(t, &Offer{ChunkSize: MaxChunkSize + 1})); err == nil {
		t.Fatal("accepted a chunk size above MaxChunkSize")
	}
}

func mustBody(t *testing.T, m Message) []byte {
	t.Helper()
	return mustFrame(t, m)[HeaderSize:]
}

func TestOfferLabelsGolden(t *testing.T) {
	checkGolden(t, &Offer{ReqID: 7, Entries: []Entry{{Path: "a", Size: 1}}, Tags: []string{"x"}, Note: "hi", Announce: "notify", Item: 3}, "010000001da601070781a20161610201098161780a6268690b666e6f746966790c03")
}

func TestOfferLabelBounds(t *testing.T) {
	for name, o := range map[string]*Offer{
		"too many tags": {Tags: make([]string, MaxTags+1)},
		"a long tag":    {Tags: []string{string(make([]byte, MaxTagLen+1))}},
		"a long note":   {Note: string(make([]byte, MaxNoteLen+1))},
	} {
		b, err := AppendFrame(nil, o)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := NewReader(bytes.NewReader(b)).ReadMsg(); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}
