package chunker

import (
	"math/rand/v2"
	"testing"

	"lukechampine.com/blake3"
)

// seeded returns a random source with a logged seed, and n bytes from it.
func seeded(t *testing.T, n int) (*rand.Rand, []byte) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(rng.Uint32())
	}
	return rng, p
}

// TestSum256MatchesBlake3 checks the one-goroutine tree walk against the
// library at every size class: around each chunk and 16-chunk boundary,
// at powers of two and their neighbours, and at random sizes.
func TestSum256MatchesBlake3(t *testing.T) {
	rng, p := seeded(t, 4<<20+3)
	var sizes []int
	for _, base := range []int{0, 1, 64, 1024, 16 << 10, 32 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20} {
		for d := -3; d <= 3; d++ {
			if n := base + d; n >= 0 && n <= len(p) {
				sizes = append(sizes, n)
			}
		}
	}
	for k := 1; k <= 300; k++ {
		sizes = append(sizes, k*1024, k*1024+1, k*1024-1)
	}
	for range 200 {
		sizes = append(sizes, rng.IntN(len(p)+1))
	}
	for _, n := range sizes {
		if got, want := sum256(p[:n]), Sum(blake3.Sum256(p[:n])); got != want {
			t.Fatalf("size %d: sum256 %x, blake3 %x", n, got, want)
		}
	}
}

// TestFillingMatchesBlake3 fills buffers in random steps, as reads from a
// stream do, and checks the hash taken on the way.
func TestFillingMatchesBlake3(t *testing.T) {
	rng, p := seeded(t, 1<<20+5)
	var h Filling
	for range 300 {
		n := rng.IntN(len(p) + 1)
		if rng.IntN(4) == 0 {
			n = (rng.IntN(64) + 1) * 16 << 10 // whole groups
		}
		h.Reset(p[:n])
		for filled := 0; filled < n; {
			filled = min(n, filled+1+rng.IntN(40<<10))
			h.Filled(filled)
		}
		if got, want := h.Sum(), Sum(blake3.Sum256(p[:n])); got != want {
			t.Fatalf("size %d: %x, blake3 %x", n, got, want)
		}
	}
}
