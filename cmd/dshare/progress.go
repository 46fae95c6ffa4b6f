package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/dshare/dshare/peer"
)

const maxFileBars = 5

// bars draws one bar per file in flight plus a total on a terminal,
// redrawing the block in place. Updates come from any goroutine.
type bars struct {
	mu     sync.Mutex
	w      io.Writer
	total  *progressbar.ProgressBar
	files  map[int]*fileBar
	drawn  int // lines drawn last time
	last   time.Time
	closed bool
}

type fileBar struct {
	bar  *progressbar.ProgressBar
	seen time.Time
	done bool
}

func newBar(max int64, desc string) *progressbar.ProgressBar {
	return progressbar.NewOptions64(max,
		progressbar.OptionSetWriter(io.Discard), // bars composes the lines itself
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowBytes(true),
		progressbar.OptionUseIECUnits(true),
		progressbar.OptionSetWidth(24),
		progressbar.OptionThrottle(0),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetRenderBlankState(true),
	)
}

func newBars(w io.Writer, total uint64) *bars {
	return &bars{w: w, total: newBar(int64(total), "total"), files: map[int]*fileBar{}}
}

// update records confirmed progress and redraws at most every 100 ms.
func (b *bars) update(p peer.Progress) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	now := time.Now()
	_ = b.total.Set64(int64(p.Confirmed))
	for _, f := range p.Files {
		fb := b.files[f.Index]
		if fb == nil {
			fb = &fileBar{bar: newBar(int64(f.Size), shortName(f.Path))}
			b.files[f.Index] = fb
		}
		_ = fb.bar.Set64(int64(f.Confirmed))
		fb.seen, fb.done = now, f.Complete || f.Confirmed == f.Size
	}
	if now.Sub(b.last) >= 100*time.Millisecond {
		b.draw(now)
	}
}

func (b *bars) draw(now time.Time) {
	b.last = now
	var active []*fileBar
	for i, fb := range b.files {
		if fb.done {
			delete(b.files, i)
			continue
		}
		active = append(active, fb)
	}
	sort.Slice(active, func(i, j int) bool { return active[i].seen.After(active[j].seen) })
	if len(active) > maxFileBars {
		active = active[:maxFileBars]
	}
	var sb strings.Builder
	if b.drawn > 1 {
		fmt.Fprintf(&sb, "\033[%dA", b.drawn-1) // back to the first line of the block
	}
	sb.WriteString("\r")
	lines := 0
	for _, fb := range active {
		fmt.Fprintf(&sb, "\033[2K%s\n", fb.bar.String())
		lines++
	}
	fmt.Fprintf(&sb, "\033[2K%s", b.total.String())
	lines++
	for i := lines; i < b.drawn; i++ { // clear what a longer block left below
		sb.WriteString("\n\033[2K")
	}
	if extra := b.drawn - lines; extra > 0 {
		fmt.Fprintf(&sb, "\033[%dA", extra)
	}
	b.drawn = lines
	io.WriteString(b.w, sb.String())
}

// finish draws the final state and moves below the block.
func (b *bars) finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.draw(time.Now())
	io.WriteString(b.w, "\n")
	b.closed = true
}

func shortName(p string) string {
	r := []rune(peer.Escape(p))
	if len(r) > 32 {
		return "…" + string(r[len(r)-31:])
	}
	return string(r)
}
