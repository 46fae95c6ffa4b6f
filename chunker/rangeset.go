package chunker

import (
	"iter"
	"slices"
)

// Range is the half-open byte range [Off, End).
type Range struct {
	Off, End uint64
}

// Len returns the number of bytes in r.
func (r Range) Len() uint64 { return r.End - r.Off }

// Set is a set of bytes kept as sorted, disjoint, non-adjacent ranges.
// The zero value is empty.
type Set struct {
	rs []Range
}

// NewSet returns a set holding the given ranges.
func NewSet(rs ...Range) *Set {
	s := new(Set)
	for _, r := range rs {
		s.Add(r.Off, r.End)
	}
	return s
}

// Full returns the set [0, size).
func Full(size uint64) *Set { return NewSet(Range{0, size}) }

// search returns the index of the first range whose End is >= off.
func (s *Set) search(off uint64) int {
	i, _ := slices.BinarySearchFunc(s.rs, off, func(r Range, off uint64) int {
		if r.End < off {
			return -1
		}
		return 1
	})
	return i
}

// Add adds [off, end) to the set, merging with touching ranges.
func (s *Set) Add(off, end uint64) {
	if off >= end {
		return
	}
	i := s.search(off)
	j := i
	for j < len(s.rs) && s.rs[j].Off <= end {
		off = min(off, s.rs[j].Off)
		end = max(end, s.rs[j].End)
		j++
	}
	s.rs = slices.Replace(s.rs, i, j, Range{off, end})
}

// Remove removes [off, end) from the set.
func (s *Set) Remove(off, end uint64) {
	if off >= end {
		return
	}
	i := s.search(off + 1) // ranges ending at off are untouched
	var keep []Range
	j := i
	for j < len(s.rs) && s.rs[j].Off < end {
		r := s.rs[j]
		if r.Off < off {
			keep = append(keep, Range{r.Off, off})
		}
		if r.End > end {
			keep = append(keep, Range{end, r.End})
		}
		j++
	}
	s.rs = slices.Replace(s.rs, i, j, keep...)
}

// Contains reports whether every byte of [off, end) is in the set.
func (s *Set) Contains(off, end uint64) bool {
	if off >= end {
		return true
	}
	i := s.search(off + 1)
	return i < len(s.rs) && s.rs[i].Off <= off && s.rs[i].End >= end
}

// Next returns the first range of the set at or after off, clipped so that
// it starts no earlier than off.
func (s *Set) Next(off uint64) (Range, bool) {
	i := s.search(off + 1)
	if i == len(s.rs) {
		return Range{}, false
	}
	r := s.rs[i]
	r.Off = max(r.Off, off)
	return r, true
}

// All iterates over the ranges in order.
func (s *Set) All() iter.Seq[Range] {
	return func(yield func(Range) bool) {
		for _, r := range s.rs {
			if !yield(r) {
				return
			}
		}
	}
}

// Union adds every range of o to s.
func (s *Set) Union(o *Set) {
	for _, r := range o.rs {
		s.Add(r.Off, r.End)
	}
}

// Subtract removes every range of o from s.
func (s *Set) Subtract(o *Set) {
	for _, r := range o.rs {
		s.Remove(r.Off, r.End)
	}
}

// Size returns the number of bytes in the set.
func (s *Set) Size() uint64 {
	var n uint64
	for _, r := range s.rs {
		n += r.Len()
	}
	return n
}

// Len returns the number of disjoint ranges.
func (s *Set) Len() int { return len(s.rs) }

// Clone returns a copy of s.
func (s *Set) Clone() *Set { return &Set{rs: slices.Clone(s.rs)} }

// Equal reports whether s and o hold the same bytes.
func (s *Set) Equal(o *Set) bool { return slices.Equal(s.rs, o.rs) }
