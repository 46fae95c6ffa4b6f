package peer

import (
	"fmt"
	"os"

	"github.com/dshare/dshare/wire"
)

// checkSpace refuses an offer larger than MaxBytes, or one that would not
// fit on the disk with FreeMargin to spare. Bytes a previous run already
// holds in temporary files count as fitting.
func (r *Receiver) checkSpace(entries []wire.Entry, total uint64) error {
	if max := r.Limits.MaxBytes; max > 0 && total > max {
		return fmt.Errorf("%w: %s offered, this receiver takes at most %s", wire.ErrTooLarge, FormatBytes(total), FormatBytes(max))
	}
	free, ok := freeSpace(r.Dir)
	if !ok {
		return nil
	}
	need := total - r.held(entries)
	if need+r.Limits.FreeMargin > free {
		return fmt.Errorf("%w: %s to receive, %s free in %s (keeping %s spare)",
			wire.ErrNoSpace, FormatBytes(need), FormatBytes(free), r.Dir, FormatBytes(r.Limits.FreeMargin))
	}
	return nil
}

// held estimates the bytes temporary files already hold for entries,
// from the names alone: no resume state is loaded for an offer that may
// still be refused.
func (r *Receiver) held(entries []wire.Entry) uint64 {
	root, err := os.OpenRoot(r.Dir)
	if err != nil {
		return 0
	}
	defer root.Close()
	var n uint64
	for _, e := range entries {
		if e.Dir {
			continue
		}
		part, _ := tempNames(e.Path)
		if fi, err := root.Lstat(part); err == nil && fi.Mode().IsRegular() {
			n += min(allocated(fi), e.Size)
		}
	}
	return n
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
