package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
)

// parseSize reads a byte count such as 1500, 500M, 20G or 1.5TiB; K, M,
// G and T are powers of 1024.
func parseSize(s string) (uint64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "I")
	mult := 1.0
	if n := len(t); n > 0 {
		if i := strings.IndexByte("KMGT", t[n-1]); i >= 0 {
			mult = float64(uint64(1) << (10 * (i + 1)))
			t = t[:n-1]
		}
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(t), 64)
	if err != nil || v <= 0 || v*mult > 1<<63 {
		return 0, fmt.Errorf("%q is not a size like 500M or 20G", s)
	}
	return uint64(v * mult), nil
}

// parsePeers decodes --from values; nil means the flag was not given.
func parsePeers(ids []string) (map[peer.ID]bool, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	out := map[peer.ID]bool{}
	for _, s := range ids {
		id, err := peer.Decode(s)
		if err != nil {
			return nil, usageError{fmt.Sprintf("bad --from %q: not a peer ID", s)}
		}
		out[id] = true
	}
	return out, nil
}
