package chunker

import (
	"errors"
	"reflect"
	"testing"
)

func sampleState() *State {
	s := NewState("12D3KooWPeer", "dir/file.bin", 10<<20+5, 1700000000123456789, 1<<20)
	s.Have.Add(0, 3<<20)
	s.Have.Add(5<<20, 10<<20+5)
	for i := range s.Sums {
		s.Sums[i] = Hash([]byte{byte(i)})
	}
	return s
}

func TestStateRoundTrip(t *testing.T) {
	s := sampleState()
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var got State
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&got, s) || !got.Matches(s) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, s)
	}
}

func TestStateDamage(t *testing.T) {
	b, _ := sampleState().MarshalBinary()
	for i := 0; i < len(b); i += 7 {
		c := append([]byte(nil), b...)
		c[i] ^= 0x40
		var s State
		if err := s.UnmarshalBinary(c); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("flipped byte %d: got %v", i, err)
		}
	}
	for n := 0; n < len(b); n += 11 {
		var s State
		if err := s.UnmarshalBinary(b[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d: got %v", n, err)
		}
	}
	var s State
	if err := s.UnmarshalBinary([]byte("garbage that is long enough to have a checksum at its end")); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("garbage: %v", err)
	}
}

func TestStateOtherVersion(t *testing.T) {
	b, _ := sampleState().MarshalBinary()
	body := b[:len(b)-SumSize]
	body[4] = 99
	sum := Hash(body)
	copy(b[len(b)-SumSize:], sum[:])
	var s State
	if err := s.UnmarshalBinary(b); !errors.Is(err, ErrVersion) {
		t.Fatalf("got %v", err)
	}
}

func TestStateMatches(t *testing.T) {
	a, b := sampleState(), sampleState()
	b.MTime++
	if a.Matches(b) {
		t.Fatal("a changed source mtime must not match")
	}
}

func FuzzStateUnmarshal(f *testing.F) {
	b, _ := sampleState().MarshalBinary()
	f.Add(b)
	f.Fuzz(func(t *testing.T, in []byte) {
		var s State
		if s.UnmarshalBinary(in) != nil {
			return
		}
		if _, err := s.MarshalBinary(); err != nil {
			t.Fatalf("accepted state does not re-encode: %v", err)
		}
	})
}
