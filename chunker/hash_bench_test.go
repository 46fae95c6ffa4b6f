package chunker

import "testing"

func BenchmarkHash1MiB(b *testing.B) {
	p := make([]byte, 1<<20)
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		Hash(p)
	}
}
