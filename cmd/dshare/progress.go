package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
	"golang.org/x/text/width"

	"github.com/dshare/dshare/peer"
)

const (
	maxFileBars = 5                      // per-file lines at most
	drawEvery   = 100 * time.Millisecond // redraw at most this often
	rateTau     = 3 * time.Second        // time constant of the smoothed rate
	rateAfter   = time.Second            // no rate or ETA before this much data
	narrowCols  = 40                     // below: no bar graphic, no per-file lines
	minBar      = 7                      // bar columns, brackets included
	maxBar      = 42
)

// bars draws one line per file in flight plus a total line on a
// terminal, redrawing the block in place. Updates come from any goroutine.
//
// Bytes that were at the receiver before this session (already) count in
// the bytes done and the percent, never in the rate or the ETA; the rate
// counts only what the confirmed total grows by after the first update, so
// a resume is not mistaken for a burst even if already is not known.
type bars struct {
	mu     sync.Mutex
	w      io.Writer
	now    func() time.Time // the clock; time.Now
	width  func() int       // terminal columns, read at each draw
	height func() int       // terminal rows, read at each draw; 0 if unknown

	total   uint64 // bytes in the transfer
	already uint64 // bytes at the receiver before this session
	done    uint64 // confirmed bytes, already included
	rate    rateMeter
	files   map[int]*fileBar

	drawn  int       // lines of the block drawn last time
	last   time.Time // time of the last draw
	headed bool      // the resume line is written
	closed bool
}

type fileBar struct {
	index      int
	name       string // escaped
	size, done uint64
	seen       time.Time
	complete   bool
}

func newBars(w io.Writer, total, already uint64) *bars {
	return &bars{
		w:       w,
		now:     time.Now,
		width:   func() int { c, _ := termSize(w); return c },
		height:  func() int { _, r := termSize(w); return r },
		total:   total,
		already: already,
		done:    already,
		files:   map[int]*fileBar{},
	}
}

// termSize is the size of the terminal w writes to: 80 columns and
// unknown rows (0) if it is not a terminal.
func termSize(w io.Writer) (cols, rows int) {
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		if c, r, err := term.GetSize(int(f.Fd())); err == nil && c > 0 {
			return c, r
		}
	}
	return 80, 0
}

// update records confirmed progress and redraws at most every drawEvery.
func (b *bars) update(p peer.Progress) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	now := b.now()
	if p.Total > 0 {
		b.total = p.Total
	}
	b.done = p.Confirmed
	b.rate.add(now, p.Confirmed)
	for _, f := range p.Files {
		fb := b.files[f.Index]
		if fb == nil {
			fb = &fileBar{index: f.Index, name: shortName(f.Path)}
			b.files[f.Index] = fb
		}
		fb.size, fb.done, fb.seen = f.Size, f.Confirmed, now
		fb.complete = f.Complete || f.Confirmed >= f.Size
	}
	if b.drawn == 0 || now.Sub(b.last) >= drawEvery {
		b.draw(now)
	}
}

// finish draws the final state and leaves the cursor at the start of the
// line below the block.
func (b *bars) finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.draw(b.now())
	io.WriteString(b.w, "\n")
	b.closed = true
}

// draw rewrites the block. The cursor rests at the end of the block's last
// line; no line reaches the terminal's last column, so none wraps, and
// each line drawn is one screen row: going back up drawn-1 rows reaches
// the block's first line.
func (b *bars) draw(now time.Time) {
	b.last = now
	cols := b.width()
	if cols <= 0 {
		cols = 80 // unknown
	}
	room := cols - 1 // never write in the last column
	wide := room >= narrowCols-1

	nfiles := 0
	if wide {
		nfiles = maxFileBars
		if h := b.height(); h > 0 {
			nfiles = min(nfiles, h-2) // the block fits on the screen with a row to spare
		}
	}
	active := b.active(max(nfiles, 0))

	label := 0
	if wide {
		label = len("total")
		for _, fb := range active {
			label = max(label, textCols(fb.name))
		}
		label = min(label, max(len("total"), room/5)) // room for the total's numbers
	}
	total, barW := b.totalLine(room, label, wide)
	lines := make([]string, 0, len(active)+1)
	for _, fb := range active {
		lines = append(lines, fileLine(fb, room, label, barW))
	}
	lines = append(lines, total)

	var sb strings.Builder
	sb.WriteString("\r")
	if b.drawn > 1 {
		fmt.Fprintf(&sb, "\033[%dA", b.drawn-1) // back to the block's first line
	}
	if !b.headed && b.already > 0 {
		// Once, above the block: say this is not a new transfer.
		fmt.Fprintf(&sb, "\033[2K%s\n", resumeLine(b.already, b.total, room))
	}
	b.headed = true
	for i, l := range lines {
		if i > 0 {
			sb.WriteString("\n")
		}
		sb.WriteString("\033[2K")
		sb.WriteString(l)
	}
	sb.WriteString("\033[J") // clear what a taller block left below
	b.drawn = len(lines)
	io.WriteString(b.w, sb.String())
}

// resumeLine says in room columns how much was there before.
func resumeLine(already, total uint64, room int) string {
	a, t := humanBytes(already), humanBytes(total)
	var s string
	for _, s = range []string{
		fmt.Sprintf("Resuming: %s of %s were already transferred.", a, t),
		fmt.Sprintf("Resuming from %s of %s.", a, t),
		fmt.Sprintf("Resuming from %s.", strings.TrimSpace(pctText(already, total))),
	} {
		if textCols(s) <= room {
			break
		}
	}
	return fitCols(s, room)
}

// active drops complete files and returns up to n of the others, the most
// recently updated ones, in index order so that lines do not jump.
func (b *bars) active(n int) []*fileBar {
	var act []*fileBar
	for i, fb := range b.files {
		if fb.complete {
			delete(b.files, i)
			continue
		}
		act = append(act, fb)
	}
	sort.Slice(act, func(i, j int) bool {
		if !act[i].seen.Equal(act[j].seen) {
			return act[i].seen.After(act[j].seen)
		}
		return act[i].index < act[j].index
	})
	act = act[:min(n, len(act))]
	sort.Slice(act, func(i, j int) bool { return act[i].index < act[j].index })
	return act
}

// totalLine composes the total line in room columns and returns it with
// the width of its bar (0 if the bar did not fit), for the file lines.
func (b *bars) totalLine(room, label int, wide bool) (string, int) {
	var fs []lineField
	if wide {
		fs = append(fs, lineField{text: padCols("total", label), prio: 0})
		fs = append(fs, lineField{bar: true, prio: 5})
	}
	fs = append(fs, lineField{text: pctText(b.done, b.total), prio: 1})
	fs = append(fs, lineField{text: byteCounts(b.done, b.total), prio: 4})
	rate, ok := b.rate.rate()
	if !ok {
		fs = append(fs, lineField{text: fmt.Sprintf("%10s", "--- /s"), prio: 2})
	} else {
		fs = append(fs, lineField{text: fmt.Sprintf("%10s", formatRate(rate)), prio: 2})
		if b.done < b.total {
			fs = append(fs, lineField{text: fmt.Sprintf("%-9s", "ETA "+formatETA(float64(b.total-b.done), rate)), prio: 3})
		}
	}
	return fitFields(fs, room, minBar, maxBar, func(n int) string {
		return drawBar(n, b.done, min(b.already, b.done), b.total)
	})
}

// fileLine is one file's line: its name in label columns, then a bar as
// wide as the total's (none if barW is 0), the percent and the bytes.
func fileLine(fb *fileBar, room, label, barW int) string {
	fs := []lineField{
		{text: padCols(tailCols(fb.name, label), label), prio: 0},
		{text: pctText(fb.done, fb.size), prio: 1},
		{text: byteCounts(fb.done, fb.size), prio: 2},
	}
	if barW > 0 {
		fs = append(fs[:1], append([]lineField{{bar: true, prio: 3}}, fs[1:]...)...)
	}
	line, _ := fitFields(fs, room, barW, barW, func(n int) string { return drawBar(n, fb.done, 0, fb.size) })
	return line
}

// lineField is one part of a line; the lower its prio, the more it matters.
type lineField struct {
	text string
	bar  bool // the bar graphic, as wide as there is room for
	prio int
}

// fitFields joins fields with two spaces in at most room columns, leaving
// out the least important ones that do not fit. The bar, if it fits at
// minW columns, grows into what is left up to maxW; its width is returned.
func fitFields(fs []lineField, room, minW, maxW int, bar func(int) string) (string, int) {
	order := make([]int, len(fs))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(i, j int) bool { return fs[order[i]].prio < fs[order[j]].prio })
	keep := make([]bool, len(fs))
	used, hasBar := -2, false
	for _, i := range order {
		w := textCols(fs[i].text)
		if fs[i].bar {
			if minW <= 2 {
				continue
			}
			w = minW
		}
		if used+2+w <= room {
			keep[i] = true
			used += 2 + w
			hasBar = hasBar || fs[i].bar
		}
	}
	barW := 0
	if hasBar {
		barW = min(maxW, minW+room-used)
	}
	var parts []string
	for i, f := range fs {
		switch {
		case !keep[i]:
		case f.bar:
			parts = append(parts, bar(barW))
		default:
			parts = append(parts, f.text)
		}
	}
	return fitCols(strings.TrimSpace(strings.Join(parts, "  ")), room), barW
}

// drawBar draws a bar n columns wide, brackets included: '+' for the
// bytes that were there before, '=' for those since, '>' at the head.
func drawBar(n int, done, already, total uint64) string {
	inner := n - 2
	cell := func(v uint64) int {
		if total == 0 {
			return inner
		}
		return int(float64(inner) * min(float64(v)/float64(total), 1))
	}
	fill, pre := cell(done), cell(already)
	var sb strings.Builder
	sb.WriteByte('[')
	for i := range inner {
		switch {
		case i < pre:
			sb.WriteByte('+')
		case i < fill:
			sb.WriteByte('=')
		case i == fill && done < total:
			sb.WriteByte('>')
		default:
			sb.WriteByte(' ')
		}
	}
	sb.WriteByte(']')
	return sb.String()
}

// pctText is done of total, rounded down: 100% only when all is there.
func pctText(done, total uint64) string {
	p := 100
	if total > 0 && done < total {
		p = int(float64(done) / float64(total) * 100)
		p = min(p, 99)
	}
	return fmt.Sprintf("%3d%%", p)
}

// byteCounts is "12.3 MiB / 1.2 GiB", the first right-aligned so that the
// line does not shift as it grows.
func byteCounts(done, total uint64) string {
	d, t := humanBytes(done), humanBytes(total)
	return fmt.Sprintf("%*s / %s", len(t), d, t)
}

func formatRate(r float64) string { return humanBytes(uint64(r+0.5)) + "/s" }

// formatETA is the time left for rest bytes at rate bytes a second:
// "4s", "3m12s", "1h05m"; "--" if that is beyond 999 hours.
func formatETA(rest, rate float64) string {
	if rest <= 0 {
		return "0s"
	}
	s := rest / max(rate, 0)
	if math.IsInf(s, 0) || math.IsNaN(s) || s >= 999*3600 {
		return "--"
	}
	secs := max(int64(math.Round(s)), 1)
	switch {
	case secs < 60:
		return fmt.Sprintf("%ds", secs)
	case secs < 3600:
		return fmt.Sprintf("%dm%02ds", secs/60, secs%60)
	default:
		return fmt.Sprintf("%dh%02dm", secs/3600, secs%3600/60)
	}
}

// rateMeter smooths a byte rate: the bytes and the seconds between
// samples both decay with time constant rateTau, and the rate is their
// ratio, so that an interval weighs by its length and its age. Until
// rateTau has passed this is the plain average since the first sample,
// which is the baseline: what it counts is not in the rate.
type rateMeter struct {
	started   bool
	first, at time.Time // first and latest sample
	bytes     uint64    // the latest sample
	num, den  float64   // decayed bytes and seconds
}

func (m *rateMeter) add(t time.Time, n uint64) {
	if !m.started || n < m.bytes {
		*m = rateMeter{started: true, first: t, at: t, bytes: n} // a new baseline
		return
	}
	dt := max(t.Sub(m.at).Seconds(), 0)
	decay := math.Exp(-dt / rateTau.Seconds())
	m.num = m.num*decay + float64(n-m.bytes)
	m.den = m.den*decay + dt
	m.at, m.bytes = t, n
}

// rate is in bytes a second; ok is false until rateAfter of data is seen.
func (m *rateMeter) rate() (r float64, ok bool) {
	if !m.started || m.at.Sub(m.first) < rateAfter || m.den <= 0 {
		return 0, false
	}
	return m.num / m.den, true
}

// runeCols is the columns r takes on a terminal: two for East Asian wide
// and fullwidth runes, else one (which overcounts combining marks: safe).
func runeCols(r rune) int {
	switch width.LookupRune(r).Kind() {
	case width.EastAsianWide, width.EastAsianFullwidth:
		return 2
	}
	return 1
}

// textCols is the columns s takes; s holds no control characters.
func textCols(s string) int {
	n := 0
	for _, r := range s {
		n += runeCols(r)
	}
	return n
}

// fitCols cuts s to at most n columns.
func fitCols(s string, n int) string {
	used := 0
	for i, r := range s {
		if used += runeCols(r); used > n {
			return s[:i]
		}
	}
	return s
}

// tailCols keeps the end of s in at most n columns, marking a cut with "…".
func tailCols(s string, n int) string {
	if textCols(s) <= n {
		return s
	}
	if n < 1 {
		return ""
	}
	r := []rune(s)
	i, used := len(r), 1
	for i > 0 && used+runeCols(r[i-1]) <= n {
		i--
		used += runeCols(r[i])
	}
	return "…" + string(r[i:])
}

// padCols pads s with spaces to n columns.
func padCols(s string, n int) string {
	if c := textCols(s); c < n {
		return s + strings.Repeat(" ", n-c)
	}
	return s
}

func shortName(p string) string {
	r := []rune(peer.Escape(p))
	if len(r) > 32 {
		return "…" + string(r[len(r)-31:])
	}
	return string(r)
}
