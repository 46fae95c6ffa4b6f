package chunker

import (
	"math/bits"

	"lukechampine.com/blake3"
	"lukechampine.com/blake3/guts"
)

// group is what guts compresses in one SIMD pass: 16 chunks of 1 KiB.
const group = guts.MaxSIMD * guts.ChunkSize

// sum256 is BLAKE3-256 of p, computed on the calling goroutine.
//
// blake3.Sum256 spreads an input of more than a few KiB over a goroutine
// per 16 KiB. Chunk hashes already run on every data stream at once, so on
// a small machine those goroutines add scheduling work and nothing else:
// they took a sixth of the hashing time, and they pre-empted the QUIC
// goroutines that the transfer waits on. This walks the same tree in the
// same order, one 16-chunk SIMD pass at a time, with guts.
func sum256(p []byte) Sum {
	if len(p) <= group {
		return blake3.Sum256(p)
	}
	// The last chunk, whole or not, becomes the root's rightmost leaf;
	// every chunk before it is merged into the stack as it is compressed,
	// as blake3.Hasher does.
	last := len(p) % guts.ChunkSize
	if last == 0 {
		last = guts.ChunkSize
	}
	var t tree
	body := p[:len(p)-last]
	for len(body) > 0 {
		// The largest subtree that may start here: aligned to its own
		// size and no larger than what is left.
		n := uint64(len(body) / guts.ChunkSize)
		height := min(bits.TrailingZeros64(t.counter|1<<63), bits.Len64(n)-1)
		if height >= 4 {
			// 2^height chunks: whole 16-chunk passes, merged as they go.
			for range 1 << (height - 4) {
				node := guts.CompressBuffer((*[group]byte)(body[:group]), group, &guts.IV, t.counter, 0)
				t.push(guts.ChainingValue(node), 4)
				body = body[group:]
			}
			continue
		}
		var buf [group]byte
		k := copy(buf[:], body[:guts.ChunkSize<<height])
		node := guts.CompressBuffer(&buf, k, &guts.IV, t.counter, 0)
		t.push(guts.ChainingValue(node), height)
		body = body[k:]
	}
	n := guts.CompressChunk(p[len(p)-last:], &guts.IV, t.counter, 0)
	for i := bits.TrailingZeros64(t.counter); i < bits.Len64(t.counter); i++ {
		if t.counter&(1<<i) != 0 {
			n = guts.ParentNode(t.stack[i], guts.ChainingValue(n), &guts.IV, 0)
		}
	}
	n.Flags |= guts.FlagRoot
	out := guts.WordsToBytes(guts.CompressNode(n))
	var s Sum
	copy(s[:], out[:])
	return s
}

// tree holds the roots of complete subtrees, one per height, as
// blake3.Hasher does; counter counts the chunks in them.
type tree struct {
	stack   [64][8]uint32
	counter uint64
}

func (t *tree) push(cv [8]uint32, height int) {
	i := height
	for t.counter&(1<<i) != 0 {
		cv = guts.ChainingValue(guts.ParentNode(t.stack[i], cv, &guts.IV, 0))
		i++
	}
	t.stack[i] = cv
	t.counter += 1 << height
}
