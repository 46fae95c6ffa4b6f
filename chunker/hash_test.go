package chunker

import (
	"bytes"
	"encoding/hex"
	"testing"
)

func TestHashIsBLAKE3(t *testing.T) {
	// BLAKE3 of the empty input, from the reference test vectors.
	h := Hash(nil)
	if hex.EncodeToString(h[:]) != "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262" {
		t.Fatalf("got %x", h)
	}
}

func TestChunks(t *testing.T) {
	for _, tt := range []struct {
		size uint64
		cs   uint32
		n    int
	}{{0, 4, 0}, {1, 4, 1}, {4, 4, 1}, {5, 4, 2}, {1 << 30, 1 << 20, 1024}} {
		if got := Chunks(tt.size, tt.cs); got != tt.n {
			t.Errorf("Chunks(%d,%d) = %d, want %d", tt.size, tt.cs, got, tt.n)
		}
	}
	if r := ChunkRange(1, 5, 4); r != (Range{4, 5}) {
		t.Errorf("last chunk %v", r)
	}
}

func TestRootDependsOnEverything(t *testing.T) {
	sums := []Sum{Hash([]byte("a")), Hash([]byte("b"))}
	base := Root(8, 4, sums)
	swapped := Root(8, 4, []Sum{sums[1], sums[0]})
	if base == swapped || base == Root(7, 4, sums) || base == Root(8, 8, sums) {
		t.Fatal("root ignores order, size or chunk size")
	}
}

func TestVerifyAt(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 10) // 100 bytes, chunks of 16
	const cs = 16
	sums := make([]Sum, Chunks(100, cs))
	for i := range sums {
		r := ChunkRange(i, 100, cs)
		sums[i] = Hash(data[r.Off:r.End])
	}
	have := Full(100)
	have.Remove(32, 48)
	damaged := bytes.Clone(data)
	damaged[70] ^= 1 // chunk 4: [64, 80)
	good, err := VerifyAt(bytes.NewReader(damaged), 100, cs, have, sums)
	if err != nil {
		t.Fatal(err)
	}
	want := NewSet(Range{0, 32}, Range{48, 64}, Range{80, 100})
	if !good.Equal(want) {
		t.Fatalf("good %v, want %v", good.rs, want.rs)
	}
	good, _ = VerifyAt(bytes.NewReader(data[:90]), 100, cs, Full(100), sums)
	if good.Contains(80, 100) || !good.Contains(0, 80) {
		t.Fatalf("truncated file: %v", good.rs)
	}
}
