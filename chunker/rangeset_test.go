package chunker

import (
	"math/rand/v2"
	"testing"
)

// bitmap is the model: one bool per byte.
type bitmap []bool

func (b bitmap) set(off, end uint64, v bool) {
	for i := off; i < end && i < uint64(len(b)); i++ {
		b[i] = v
	}
}

func (b bitmap) ranges() []Range {
	var rs []Range
	for i := 0; i < len(b); i++ {
		if !b[i] {
			continue
		}
		j := i
		for j < len(b) && b[j] {
			j++
		}
		rs = append(rs, Range{uint64(i), uint64(j)})
		i = j
	}
	return rs
}

// check compares s against the model in every observable way.
func check(t *testing.T, s *Set, m bitmap) {
	t.Helper()
	want := m.ranges()
	var got []Range
	for r := range s.All() {
		got = append(got, r)
	}
	if len(got) != len(want) {
		t.Fatalf("ranges %v, model %v", got, want)
	}
	var size uint64
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("ranges %v, model %v", got, want)
		}
		size += want[i].Len()
	}
	if s.Size() != size || s.Len() != len(want) {
		t.Fatalf("size %d len %d, model %d %d", s.Size(), s.Len(), size, len(want))
	}
	for off := uint64(0); off <= uint64(len(m)); off++ {
		r, ok := s.Next(off)
		var wr Range
		var wok bool
		for i := off; i < uint64(len(m)); i++ {
			if m[i] {
				j := i
				for j < uint64(len(m)) && m[j] {
					j++
				}
				wr, wok = Range{i, j}, true
				break
			}
		}
		if ok != wok || r != wr {
			t.Fatalf("Next(%d) = %v %v, model %v %v", off, r, ok, wr, wok)
		}
	}
}

func containsModel(m bitmap, off, end uint64) bool {
	for i := off; i < end; i++ {
		if i >= uint64(len(m)) || !m[i] {
			return false
		}
	}
	return true
}

// runOps applies a sequence of operations decoded from ops to both the set
// and the model, checking after each.
func runOps(t *testing.T, ops []byte) {
	const size = 64
	s, other := new(Set), new(Set)
	m, om := make(bitmap, size), make(bitmap, size)
	for len(ops) >= 3 {
		op, a, b := ops[0]%6, uint64(ops[1]%size), uint64(ops[2]%(size+1))
		ops = ops[3:]
		off, end := min(a, b), max(a, b)
		switch op {
		case 0:
			s.Add(off, end)
			m.set(off, end, true)
		case 1:
			s.Remove(off, end)
			m.set(off, end, false)
		case 2:
			if s.Contains(off, end) != containsModel(m, off, end) {
				t.Fatalf("Contains(%d,%d) = %v, model disagrees", off, end, s.Contains(off, end))
			}
		case 3:
			other.Add(off, end)
			om.set(off, end, true)
		case 4:
			s.Union(other)
			for i := range m {
				m[i] = m[i] || om[i]
			}
		case 5:
			c := s.Clone()
			s.Subtract(other)
			for i := range m {
				m[i] = m[i] && !om[i]
			}
			if c.Equal(s) != (c.Size() == s.Size()) {
				t.Fatal("Equal disagrees with Size after Subtract")
			}
		}
		check(t, s, m)
	}
}

func TestSetAgainstBitmap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 300 {
		ops := make([]byte, 3*60)
		for i := range ops {
			ops[i] = byte(rng.UintN(256))
		}
		runOps(t, ops)
	}
}

func FuzzSet(f *testing.F) {
	f.Add([]byte{0, 3, 10, 1, 5, 7, 2, 3, 5, 3, 0, 64, 4, 0, 0, 5, 0, 0})
	f.Fuzz(func(t *testing.T, ops []byte) { runOps(t, ops) })
}

func TestSetLarge(t *testing.T) {
	s := Full(1 << 40)
	s.Remove(1<<20, 2<<20)
	if s.Contains(0, 2<<20) || !s.Contains(2<<20, 1<<40) || s.Size() != 1<<40-1<<20 {
		t.Fatalf("%v", s.rs)
	}
	if r, _ := s.Next(1 << 20); r.Off != 2<<20 {
		t.Fatalf("Next skipped wrong: %v", r)
	}
}
