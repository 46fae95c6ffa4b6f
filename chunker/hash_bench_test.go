package chunker

import (
	"testing"

	"lukechampine.com/blake3"
)

func BenchmarkHash1MiB(b *testing.B) {
	p := make([]byte, 1<<20)
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		Hash(p)
	}
}

func BenchmarkSum256Lib256K(b *testing.B) {
	p := make([]byte, 256<<10)
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		blake3.Sum256(p)
	}
}

func BenchmarkSum256Seq256K(b *testing.B) {
	p := make([]byte, 256<<10)
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		sum256(p)
	}
}
