package engine

import (
	"fmt"
	"math/bits"

	"github.com/dshare/dshare/wire"
)

// Bounds on one offer, so that a manifest cannot make the receiver
// allocate without limit before anything is transferred.
const (
	maxEntries       = 1_000_000
	maxManifestBytes = 160 << 20 // the entries as held in memory, roughly
	maxChunks        = 4 << 20   // per offer; each costs a 32-byte hash in memory
	minChunkSize     = 64 << 10
)

// entryCost is what an entry costs in memory besides its path: the entry
// itself, the receiver's per-file state and the manifest check's index.
const entryCost = 112

// CheckOffer validates an offer's header and its complete manifest before
// anything is written, and returns its total size. Errors wrap wire
// sentinels (ErrBadPath, ErrLimit, ErrTooLarge, ErrProtocol).
func CheckOffer(o *wire.Offer, entries []wire.Entry) (uint64, error) {
	cs := o.ChunkSize
	if cs < minChunkSize || cs > wire.MaxChunkSize || bits.OnesCount32(cs) != 1 {
		return 0, fmt.Errorf("%w: chunk size %d is not a power of two from %d to %d",
			wire.ErrProtocol, cs, minChunkSize, wire.MaxChunkSize)
	}
	if uint64(len(entries)) != o.Files {
		return 0, fmt.Errorf("%w: %d entries, %d announced", wire.ErrProtocol, len(entries), o.Files)
	}
	var total, chunks uint64
	for _, e := range entries {
		if e.Dir && e.Size != 0 {
			return 0, fmt.Errorf("%w: directory %s has a size", wire.ErrProtocol, Escape(e.Path))
		}
		if total+e.Size < total {
			return 0, fmt.Errorf("%w: sizes overflow", wire.ErrTooLarge)
		}
		total += e.Size
		chunks += e.Size / uint64(cs)
		if e.Size%uint64(cs) != 0 {
			chunks++
		}
	}
	if total != o.Bytes {
		return 0, fmt.Errorf("%w: sizes add up to %d, %d announced", wire.ErrProtocol, total, o.Bytes)
	}
	if chunks > maxChunks {
		return 0, fmt.Errorf("%w: %d chunks in one offer, at most %d", wire.ErrTooLarge, chunks, maxChunks)
	}
	return total, CheckManifest(entries)
}
