package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"

	"github.com/dshare/dshare/peer/store"
	"github.com/dshare/dshare/wire"
)

// checkSpace refuses an offer larger than MaxBytes, or one that would not
// fit on the disk with FreeMargin to spare. Bytes a previous run already
// holds in temporary files count as fitting.
func (r *Receiver) checkSpace(from string, chunk uint32, entries []wire.Entry, total uint64) error {
	if max := r.Limits.MaxBytes; max > 0 && total > max {
		return fmt.Errorf("%w: %s offered, this receiver takes at most %s", wire.ErrTooLarge, FormatBytes(total), FormatBytes(max))
	}
	free, ok := freeSpace(r.Dir)
	if !ok || total+r.Limits.FreeMargin <= free {
		return nil // fits whatever is held already: no need to look
	}
	i := 0
	held := r.store.PartialBytes(func(k *store.Key) bool {
		for ; i < len(entries); i++ {
			if e := entries[i]; !e.Dir {
				*k = store.Key{Peer: from, Path: e.Path, Size: e.Size, MTime: e.MTime, ChunkSize: chunk}
				i++
				return true
			}
		}
		return false
	})
	need := total - min(total, held)
	if need+r.Limits.FreeMargin > free {
		return fmt.Errorf("%w: %s to receive, %s free (keeping %s spare)",
			wire.ErrNoSpace, FormatBytes(need), FormatBytes(free), FormatBytes(r.Limits.FreeMargin))
	}
	return nil
}

// JournalPath is where a receiver whose home is home remembers the files
// it received into dir: one journal per directory, outside it, so that
// the directory holds only what was received.
func JournalPath(home, dir string) string {
	abs, err := filepath.Abs(dir)
	if err == nil {
		if real, err := filepath.EvalSymlinks(abs); err == nil {
			abs = real
		}
	}
	sum := sha256.Sum256([]byte(abs))
	return filepath.Join(home, "received", hex.EncodeToString(sum[:12])+".log")
}

// FormatBytes formats n with binary units: "1.5 GiB".
func FormatBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
