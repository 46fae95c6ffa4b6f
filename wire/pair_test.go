package wire

import (
	"bytes"
	"errors"
	"testing"
)

func TestPairGolden(t *testing.T) {
	checkGolden(t, &Pair{Tag: []byte{1, 2}, Nonce: []byte{3}, MAC: []byte{4, 5, 6}}, "0b0000000da3014201020241030343040506")
}

func TestPairFieldBound(t *testing.T) {
	b, err := AppendFrame(nil, &Pair{MAC: make([]byte, 65)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewReader(bytes.NewReader(b)).ReadMsg(); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a 65-byte MAC decoded: %v", err)
	}
}
