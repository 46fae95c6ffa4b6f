package chunker

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// State is the resume state of one partial file: which transfer it belongs
// to, which chunks are verified and durable, and their hashes.
type State struct {
	Peer      string // sender's peer ID
	Path      string // manifest path
	Size      uint64
	MTime     int64 // source modification time, Unix nanoseconds
	ChunkSize uint32
	Have      *Set  // verified, durable ranges; chunk-aligned
	Sums      []Sum // per chunk; meaningful where Have covers the chunk
}

// Errors from UnmarshalBinary.
var (
	ErrCorrupt = errors.New("resume state corrupt")
	ErrVersion = errors.New("resume state of another version")
)

const (
	stateMagic   = "DSRS"
	stateVersion = 1
	maxStateStr  = 64 << 10
)

// NewState returns the state of a file of which nothing is held yet.
func NewState(peer, path string, size uint64, mtime int64, chunkSize uint32) *State {
	return &State{Peer: peer, Path: path, Size: size, MTime: mtime, ChunkSize: chunkSize,
		Have: new(Set), Sums: make([]Sum, Chunks(size, chunkSize))}
}

// Matches reports whether s belongs to the same transfer of the same file.
func (s *State) Matches(o *State) bool {
	return s.Peer == o.Peer && s.Path == o.Path && s.Size == o.Size &&
		s.MTime == o.MTime && s.ChunkSize == o.ChunkSize
}

// MarshalBinary encodes s: magic, version, fields, ranges, hashes, and a
// BLAKE3 checksum of all that, so that any damage is detected on load.
func (s *State) MarshalBinary() ([]byte, error) {
	if len(s.Sums) != Chunks(s.Size, s.ChunkSize) {
		return nil, fmt.Errorf("chunker: %d sums for %d chunks", len(s.Sums), Chunks(s.Size, s.ChunkSize))
	}
	b := make([]byte, 0, 64+len(s.Peer)+len(s.Path)+16*s.Have.Len()+SumSize*len(s.Sums))
	b = append(b, stateMagic...)
	b = append(b, stateVersion)
	b = binary.AppendUvarint(b, uint64(len(s.Peer)))
	b = append(b, s.Peer...)
	b = binary.AppendUvarint(b, uint64(len(s.Path)))
	b = append(b, s.Path...)
	b = binary.BigEndian.AppendUint64(b, s.Size)
	b = binary.BigEndian.AppendUint64(b, uint64(s.MTime))
	b = binary.BigEndian.AppendUint32(b, s.ChunkSize)
	b = binary.AppendUvarint(b, uint64(s.Have.Len()))
	for r := range s.Have.All() {
		b = binary.BigEndian.AppendUint64(b, r.Off)
		b = binary.BigEndian.AppendUint64(b, r.End)
	}
	for i := range s.Sums {
		b = append(b, s.Sums[i][:]...)
	}
	sum := Hash(b)
	return append(b, sum[:]...), nil
}

// UnmarshalBinary decodes what MarshalBinary wrote. Damaged input gives
// ErrCorrupt, another format version ErrVersion.
func (s *State) UnmarshalBinary(b []byte) error {
	if len(b) < len(stateMagic)+1+SumSize || string(b[:4]) != stateMagic {
		return ErrCorrupt
	}
	body, tail := b[:len(b)-SumSize], b[len(b)-SumSize:]
	if Hash(body) != Sum(tail) {
		return ErrCorrupt
	}
	if body[4] != stateVersion {
		return fmt.Errorf("%w: %d", ErrVersion, body[4])
	}
	d := decoder{b: body[5:]}
	st := State{Peer: d.str(), Path: d.str(), Size: d.u64(), MTime: int64(d.u64()), ChunkSize: d.u32()}
	n := d.uvarint()
	if d.err != nil || st.ChunkSize == 0 || n > uint64(len(d.b))/16 {
		return ErrCorrupt
	}
	st.Have = new(Set)
	for range n {
		off, end := d.u64(), d.u64()
		if off >= end || end > st.Size {
			return ErrCorrupt
		}
		st.Have.Add(off, end)
	}
	chunks := Chunks(st.Size, st.ChunkSize)
	if d.err != nil || uint64(len(d.b)) != uint64(chunks)*SumSize {
		return ErrCorrupt
	}
	st.Sums = make([]Sum, chunks)
	for i := range st.Sums {
		copy(st.Sums[i][:], d.b[i*SumSize:])
	}
	*s = st
	return nil
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) take(n uint64) []byte {
	if d.err != nil || n > uint64(len(d.b)) {
		d.err = ErrCorrupt
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = ErrCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) str() string {
	n := d.uvarint()
	if n > maxStateStr {
		d.err = ErrCorrupt
	}
	return string(d.take(n))
}

func (d *decoder) u64() uint64 {
	p := d.take(8)
	if p == nil {
		return 0
	}
	return binary.BigEndian.Uint64(p)
}

func (d *decoder) u32() uint32 {
	p := d.take(4)
	if p == nil {
		return 0
	}
	return binary.BigEndian.Uint32(p)
}

func putUint64(b []byte, v uint64) { binary.BigEndian.PutUint64(b, v) }
