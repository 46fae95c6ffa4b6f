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
	var h Filling
	h.Reset(p)
	return h.Sum()
}

// Filling hashes a chunk while its buffer fills: each 16 KiB group is
// compressed as soon as it is there, while it is still in the CPU's cache.
// A chunk hashed after a 256 KiB read comes from memory, and hashed at
// half the speed.
//
//	h.Reset(p)
//	for filled < len(p) { filled += read(p[filled:]); h.Filled(filled) }
//	sum := h.Sum()
type Filling struct {
	p    []byte
	body int // bytes of p before its last BLAKE3 chunk
	done int // bytes of p compressed into t
	t    tree
}

// Reset starts the hash of p, whose bytes come in from the front.
func (h *Filling) Reset(p []byte) {
	// The last chunk, whole or not, becomes the root's rightmost leaf;
	// every chunk before it is merged into the tree as it is compressed,
	// as blake3.Hasher does.
	last := len(p) % guts.ChunkSize
	if last == 0 {
		last = guts.ChunkSize
	}
	h.p, h.body, h.done = p, max(len(p)-last, 0), 0
	h.t.counter = 0
}

// Filled says that p[:n] holds its final bytes. Whole 16-chunk groups
// among them are compressed now.
func (h *Filling) Filled(n int) {
	if len(h.p) <= group {
		return // one SIMD pass at the end
	}
	// Groups come first: a subtree of 16 or more chunks starts at every
	// multiple of 16 chunks while 16 or more remain before the last one.
	for h.done+group <= min(n, h.body) {
		node := guts.CompressBuffer((*[group]byte)(h.p[h.done:h.done+group]), group, &guts.IV, h.t.counter, 0)
		h.t.push(guts.ChainingValue(node), 4)
		h.done += group
	}
}

// Sum returns the hash of p, which must be filled.
func (h *Filling) Sum() Sum {
	p := h.p
	if len(p) <= group {
		return blake3.Sum256(p)
	}
	h.Filled(len(p))
	// Fewer than 16 chunks are left before the last: the largest
	// power-of-two subtrees that fit, in order.
	for body := p[h.done:h.body]; len(body) > 0; {
		height := bits.Len64(uint64(len(body)/guts.ChunkSize)) - 1
		var buf [group]byte
		k := copy(buf[:], body[:guts.ChunkSize<<height])
		node := guts.CompressBuffer(&buf, k, &guts.IV, h.t.counter, 0)
		h.t.push(guts.ChainingValue(node), height)
		body = body[k:]
	}
	n := guts.CompressChunk(p[h.body:], &guts.IV, h.t.counter, 0)
	for i := bits.TrailingZeros64(h.t.counter); i < bits.Len64(h.t.counter); i++ {
		if h.t.counter&(1<<i) != 0 {
			n = guts.ParentNode(h.t.stack[i], guts.ChainingValue(n), &guts.IV, 0)
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
