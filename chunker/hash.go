package chunker

import (
	"errors"
	"fmt"
	"io"

	"lukechampine.com/blake3"
)

// SumSize is the size of a chunk hash.
const SumSize = 32

// Sum is the BLAKE3 hash of one chunk.
type Sum [SumSize]byte

// ErrHashMismatch is returned when data does not match its expected hash.
var ErrHashMismatch = errors.New("chunk hash mismatch")

// Hash returns the hash of p.
func Hash(p []byte) Sum { return sum256(p) }

// Root returns the whole-file hash: BLAKE3 over the chunk hashes in order,
// with the chunk size and file size mixed in, so a file is identified by
// its content and chunking without a separate hashing pass.
func Root(size uint64, chunkSize uint32, sums []Sum) Sum {
	h := blake3.New(SumSize, nil)
	var hdr [16]byte
	putUint64(hdr[:8], size)
	putUint64(hdr[8:], uint64(chunkSize))
	h.Write([]byte("dshare root v1\x00"))
	h.Write(hdr[:])
	for i := range sums {
		h.Write(sums[i][:])
	}
	var out Sum
	h.Sum(out[:0])
	return out
}

// Chunks returns how many chunks a file of size bytes has.
func Chunks(size uint64, chunkSize uint32) int {
	if size == 0 {
		return 0
	}
	return int((size-1)/uint64(chunkSize) + 1)
}

// ChunkRange returns the byte range of chunk i.
func ChunkRange(i int, size uint64, chunkSize uint32) Range {
	off := uint64(i) * uint64(chunkSize)
	return Range{off, min(off+uint64(chunkSize), size)}
}

// VerifyAt re-reads each range of have from r and checks it against sums,
// chunk by chunk. It returns the ranges that still verify; chunks that do
// not are left out, so the caller fetches them again.
func VerifyAt(r io.ReaderAt, size uint64, chunkSize uint32, have *Set, sums []Sum) (*Set, error) {
	good := new(Set)
	buf := make([]byte, chunkSize)
	for i := range Chunks(size, chunkSize) {
		cr := ChunkRange(i, size, chunkSize)
		if !have.Contains(cr.Off, cr.End) {
			continue
		}
		p := buf[:cr.Len()]
		if _, err := r.ReadAt(p, int64(cr.Off)); err != nil {
			if errors.Is(err, io.EOF) {
				continue // truncated file: the chunk is gone
			}
			return nil, fmt.Errorf("chunker: verify chunk %d: %w", i, err)
		}
		if Hash(p) == sums[i] {
			good.Add(cr.Off, cr.End)
		}
	}
	return good, nil
}
